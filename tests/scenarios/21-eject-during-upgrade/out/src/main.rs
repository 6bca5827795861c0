fn main() {
    println!("orders v2.0.0 audit=true");
}
