#!/usr/bin/env bash
# The test suite, as CI runs it (.ci/run, which then runs scripts/demo.sh). In order:
#   1. the tools the tests drive: the Python ones (moto_server, the AWS CLI, boto3, google-auth,
#      gcp-storage-emulator) into a virtualenv at target/test-venv, never into your interpreter;
#      the Node.js ones (AWS SDK v3, google-auth-library) into tests/node/node_modules (npm ci);
#   2. one moto_server on loopback for the suite (stopped on exit);
#   3. cargo fmt --check and clippy -D warnings (lints);
#   4. the binary, the examples and the fuzz targets (run them with ./scripts/fuzz.sh), then
#      every test (unit, integration, end to end, the benches once) and doc test, then the
#      flood tests alone, on the release binary (ignored in the parallel run);
#   5. cargo doc with warnings denied (broken intra-doc links fail).
# Then a summary of the tests that skipped because a tool was missing. Under CI=true there are
# none: a missing tool fails its test instead.
# Not run here: scripts/check-dockerfile.sh and scripts/demo.sh (.ci/run runs them after this).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

in_ci() { [ -n "${CI:-}" ] && [ "${CI:-}" != "false" ] && [ "${CI:-}" != "0" ]; }

# --- 1. tools ----------------------------------------------------------------------------
# shellcheck source=scripts/python-tools.sh
source scripts/python-tools.sh
ensure_python_tools || exit 1
VENV=$TEST_VENV
[ "$(command -v python3)" = "$VENV/bin/python3" ] || { echo "error: python3 is not the venv's" >&2; exit 1; }
for tool in moto_server aws gcp-storage-emulator; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing from target/test-venv" >&2; exit 1; }
done

# Node.js consumers (tests/tests/node_consumers.rs): one install, reused while the lock is unchanged.
NODE_STAMP="$ROOT/tests/node/node_modules/.fly-oidc-lock"
if ! command -v npm >/dev/null; then
  if in_ci; then echo "error: npm is required in CI (Node.js 20 and npm)" >&2; exit 1; fi
  echo "==> npm not found: the Node.js consumer tests will skip"
elif [ -f "$NODE_STAMP" ] && cmp -s "$NODE_STAMP" tests/node/package-lock.json; then
  echo "==> Node.js test packages: up to date in tests/node/node_modules"
else
  echo "==> installing the Node.js test packages (npm ci --prefix tests/node)"
  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
  cp tests/node/package-lock.json "$NODE_STAMP"
fi

# --- 2. moto_server ------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOTO_PORT=$(free_port)
MOTO_LOG="$ROOT/target/moto-server.log"
echo "==> starting moto_server on 127.0.0.1:$MOTO_PORT (log: target/moto-server.log)"
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null || { echo "error: moto_server did not start" >&2; cat "$MOTO_LOG" >&2; exit 1; }
export MOTO_ENDPOINT="http://127.0.0.1:$MOTO_PORT"

# --- 3. lints --------------------------------------------------------------------------------
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> the docs snippets' lock file is up to date (scripts/check-snippets.sh builds them after the tests)"
cargo metadata --locked --format-version 1 --manifest-path tests/readme-snippets/Cargo.toml >/dev/null || {
  echo "error: tests/readme-snippets/Cargo.lock is stale: run scripts/check-snippets.sh --update and commit it" >&2
  exit 1
}
echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

# --- 4. tests ----------------------------------------------------------------------------------
echo "==> cargo build (the binary and the examples, which the end-to-end tests run as processes; the fuzz targets)"
cargo build --workspace --bins --examples --all-features
# libtest's --show-output keeps what passing tests printed; this filter hides those blocks and
# keeps their "SKIPPED:" lines for the summary. The full output is in target/test-output.log.
SKIPS="$ROOT/target/test-skips.txt"
: >"$SKIPS"
: >"$ROOT/target/test-output.log"
show_tests() {
  tee -a "$ROOT/target/test-output.log" | awk -v skips="$SKIPS" '
    /^successes:$/ { quiet = 1; next }
    /^failures:$/ { quiet = 0 }
    quiet && /^---- .* stdout ----$/ { name = $2; next }
    quiet && /SKIPPED:/ { sub(/^.*SKIPPED: */, ""); print name ": " $0 >> skips; next }
    /^test result:/ { quiet = 0 }
    !quiet { print; fflush() }'
}
echo "==> cargo test"
# Every target with tests (libraries, the binary, integration tests) and the benches, once; not
# the examples, which hold none (built above, the tests run them as processes), nor the fuzz
# targets (`test = false`).
cargo test --workspace --tests --benches --all-features -- --show-output | show_tests
cargo test --workspace --doc --all-features -- --show-output | show_tests
echo "==> the flood tests, alone, on the release binary (the server under 10,000 hostile connections needs the machine to itself)"
cargo build --release --locked -p fly-oidc-cli
cargo test -p fly-oidc-cli --all-features --test cli -- --ignored server_flood --show-output | show_tests

# --- 5. docs ------------------------------------------------------------------------------------
echo "==> cargo doc (broken intra-doc links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features

echo
if [ -s "$SKIPS" ]; then
  echo "==> passed; these tests skipped for a missing tool (CI=true makes them fail):"
  sort -u "$SKIPS" | sed 's/^/    /'
else
  echo "==> passed; no test skipped"
fi
