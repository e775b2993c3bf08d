//! Shared helpers for the end-to-end tests in `tests/tests/`.
#![warn(missing_docs)]

use std::path::PathBuf;

/// The path of the built `fly-oidc` binary in this target directory.
///
/// `cargo test --workspace` builds it (the CLI package has integration tests); when running
/// this package alone, build it first with `cargo build -p fly-oidc-cli`.
pub fn fly_oidc_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test-binary>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a target/<profile>/deps layout");
    let bin = profile_dir.join("fly-oidc");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p fly-oidc-cli` (or `cargo test --workspace`) first",
        bin.display()
    );
    bin
}

/// Whether the suite runs in CI, where a missing tool is a failure rather than a skip.
pub fn in_ci() -> bool {
    #[allow(clippy::disallowed_methods)] // reads the test harness's own setting, not config
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skip a test (with a printed reason) when a tool is missing locally; fail in CI.
pub fn require_tool(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(!in_ci(), "{tool} is required in CI but is not installed");
        eprintln!("SKIPPED: {tool} is not installed (CI installs it)");
    }
    found
}
