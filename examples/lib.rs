//! Runnable examples of federated cloud access from Fly.io Machines; see `examples/*.rs`
//! and run one with `cargo run -p fly-oidc-examples --example <name>`.
