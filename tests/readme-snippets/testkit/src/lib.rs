//! An app's crate whose test uses the testkit: docs/development.md, "Test your own code
//! without a Fly Machine", and crates/fly-oidc-testkit/README.md (the snippet is in
//! tests/readme.rs, and runs).
