//! An app's crate whose test uses the testkit: README.md, "Testing your own code without a
//! Fly Machine" (the snippet is in tests/readme.rs, and runs).
