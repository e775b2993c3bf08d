//! The docs' Rust blocks and dependency blocks (README.md, docs/*.md, crates/*/README.md) are
//! the ones the `readme-*` packages of tests/readme-snippets compile, and their Cargo.lock
//! holds the repository's versions.

use std::path::Path;

#[test]
fn readme_snippets_are_the_ones_compiled() {
    let snippets = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Err(problems) = readme_drift::check(&snippets.join("../.."), &snippets) {
        panic!(
            "the docs and tests/readme-snippets differ:\n- {}\n",
            problems.join("\n- ")
        );
    }
}

#[test]
fn snippet_lock_holds_the_workspace_versions() {
    let snippets = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Err(problems) = readme_drift::check_lock(
        &snippets.join("../../Cargo.lock"),
        &snippets.join("Cargo.lock"),
    ) {
        panic!(
            "tests/readme-snippets/Cargo.lock has versions the workspace's Cargo.lock does not \
             (run scripts/check-snippets.sh --update):\n- {}\n",
            problems.join("\n- ")
        );
    }
}
