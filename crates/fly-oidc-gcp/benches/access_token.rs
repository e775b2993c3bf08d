//! Benchmarks of the GCP provider (being written).
fn main() {}
