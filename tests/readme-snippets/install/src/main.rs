//! README.md, "Install": the dependency block alone (no Rust block follows it).
#![allow(unused)]

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}
