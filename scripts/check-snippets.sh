#!/usr/bin/env bash
# The docs' Rust snippets (README.md, docs/*.md, crates/*/README.md) compile as shown, as an
# outside user's crates (tests/readme-snippets: a workspace of its own, one package per
# dependency block of the docs, path dependencies for the git ones, a committed Cargo.lock).
# In order:
#   1. readme-drift: each Rust block of the docs is, line for line, in its package, whose
#      dependency tables are exactly the block's; the lock holds the workspace's versions;
#   2. each package built on its own with --locked (so none borrows another's features);
#   3. the testkit snippet runs (it needs no Fly Machine).
# The build shares the workspace's target/ (CARGO_TARGET_DIR), so what the tests built with
# the same features is reused.
#
#   scripts/check-snippets.sh            check (CI)
#   scripts/check-snippets.sh --update   refresh tests/readme-snippets/Cargo.lock from the
#                                        workspace's Cargo.lock (after a dependency change)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SNIPPETS=tests/readme-snippets
MANIFEST=$SNIPPETS/Cargo.toml
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

if [ "${1:-}" = "--update" ]; then
  # Seeded with the workspace's lock, cargo keeps its versions, adds what is missing and drops
  # what the snippets do not use.
  cp Cargo.lock "$SNIPPETS/Cargo.lock"
  cargo metadata --format-version 1 --manifest-path "$MANIFEST" >/dev/null
  echo "==> $SNIPPETS/Cargo.lock refreshed; commit it"
  exit 0
elif [ -n "${1:-}" ]; then
  echo "usage: scripts/check-snippets.sh [--update]" >&2
  exit 2
fi

# --locked fails on a stale lock; say how to fix it.
locked() {
  "$@" --locked || {
    echo "error: '$*' failed; if it says the lock file needs updating, run scripts/check-snippets.sh --update" >&2
    exit 1
  }
}

echo "==> docs snippets: the drift check (readme-drift)"
locked cargo test --manifest-path "$MANIFEST" -p readme-drift
for package in $(sed -n 's/^members = \[\(.*\)\]/\1/p' "$MANIFEST" | tr -d '",'); do
  [ "$package" = drift ] && continue
  echo "==> docs snippets: readme-$package"
  locked cargo build --manifest-path "$MANIFEST" -p "readme-$package" --all-targets
done
echo "==> docs snippets: run the testkit snippet"
locked cargo test --manifest-path "$MANIFEST" -p readme-testkit
