// orders: started by the payments team
fn main() {
    println!("orders v1.0.0");
}
