//! The `prometheus-multiproc` command.
fn main() {}
