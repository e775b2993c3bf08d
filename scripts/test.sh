#!/usr/bin/env bash
# The test suite: formatting, lints, and every test, with the tools the tests use.
# Installs the Python consumers/emulators (AWS CLI, boto3, moto, google-auth, the GCS
# emulator) if missing, starts one moto_server on loopback for the suite, and stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

PY_PACKAGES=(
  'moto[server]==5.2.1'
  'awscli==1.45.11'
  'boto3==1.43.11'
  'google-auth==2.63.0'
  'requests>=2.31'
  'gcp-storage-emulator==2026.7.19'
)
echo "==> installing Python test tools"
python3 -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
# Put the interpreter's script directory (moto_server, aws) on PATH: under pyenv, new scripts
# get no shim until a rehash.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH
hash -r
for tool in moto_server aws; do
  command -v "$tool" >/dev/null || { echo "error: $tool not on PATH after pip install" >&2; exit 1; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOTO_PORT=$(free_port)
echo "==> starting moto_server on 127.0.0.1:$MOTO_PORT"
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"${TMPDIR:-/tmp}/fly-oidc-moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null || { echo "error: moto_server did not start" >&2; cat "${TMPDIR:-/tmp}/fly-oidc-moto.log" >&2; exit 1; }
export MOTO_ENDPOINT="http://127.0.0.1:$MOTO_PORT"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "==> cargo build (the binary and the examples, which the end-to-end tests run as processes)"
cargo build --workspace --bins --examples --all-features
echo "==> cargo test"
cargo test --workspace --all-targets --all-features
cargo test --workspace --doc --all-features
echo "==> cargo doc (broken intra-doc links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features
echo "==> fuzz targets build (run them with ./scripts/fuzz.sh)"
cargo build --manifest-path fuzz/Cargo.toml --target-dir target
