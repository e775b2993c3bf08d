#!/usr/bin/env bash
# The main job, end to end, on any machine: a fake Fly Machines API (the testkit) stands in
# for /.fly/api, and `fly-oidc` fetches and decodes a token from it.
# When moto_server (pip install 'moto[server]') and the AWS CLI are available, it also
# exchanges the token for AWS credentials through STS and uses them with the AWS CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> building fly-oidc"
cargo build -q -p fly-oidc-cli
cargo build -q -p fly-oidc-examples --example fake_fly_api
BIN="$PWD/target/debug/fly-oidc"
WORK=$(mktemp -d)
cleanup() { kill "${FAKE_PID:-}" "${MOTO_PID:-}" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

echo "==> starting a fake Fly Machines API (stands in for /.fly/api)"
./target/debug/examples/fake_fly_api >"$WORK/fake.env" &
FAKE_PID=$!
for _ in $(seq 1 100); do grep -q '^JWKS_URL=' "$WORK/fake.env" 2>/dev/null && break; sleep 0.1; done
FLY_OIDC_SOCKET=$(sed -n 's/^FLY_OIDC_SOCKET=//p' "$WORK/fake.env")
export FLY_OIDC_SOCKET

echo "==> fly-oidc token --claims --audience sts.amazonaws.com"
"$BIN" token --claims --audience sts.amazonaws.com

if "$BIN" aws credential-process --help >/dev/null 2>&1 && command -v moto_server >/dev/null && command -v aws >/dev/null; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  echo "==> starting moto_server (AWS STS/S3 emulator) on 127.0.0.1:$PORT"
  moto_server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done
  cat >"$WORK/aws-config" <<CFG
[profile fly]
region = us-east-1
credential_process = $BIN aws credential-process --role-arn arn:aws:iam::123456789012:role/demo --sts-endpoint http://127.0.0.1:$PORT
CFG
  export AWS_CONFIG_FILE="$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/none" XDG_CACHE_HOME="$WORK/cache"
  echo "==> aws sts get-caller-identity --profile fly   (credentials from fly-oidc aws credential-process)"
  aws --profile fly --endpoint-url "http://127.0.0.1:$PORT" sts get-caller-identity
  echo "==> aws s3 mb + ls with the same federated credentials"
  aws --profile fly --endpoint-url "http://127.0.0.1:$PORT" s3 mb s3://fly-oidc-demo
  aws --profile fly --endpoint-url "http://127.0.0.1:$PORT" s3 ls
else
  echo "(skipping the AWS part: needs 'fly-oidc aws credential-process', moto_server and the aws CLI: pip install 'moto[server]' awscli)"
fi
echo "==> done"
