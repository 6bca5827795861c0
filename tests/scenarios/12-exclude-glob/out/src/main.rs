fn main() {
    println!("orders v1.0.0");
}
