fn main() {
    println!("orders, ours");
}
