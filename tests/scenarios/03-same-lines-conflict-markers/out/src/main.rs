fn main() {
<<<<<<< yours
    println!("orders, ours");
=======
    println!("orders v2.0.0 audit=true");
>>>>>>> template demo 2.0.0
}
