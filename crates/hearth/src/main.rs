//! The `hearth` command line.
fn main() {}
