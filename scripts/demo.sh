#!/usr/bin/env bash
# The main job, end to end, on any machine: a fake Fly Machines API (the testkit) stands in
# for /.fly/api, and `fly-oidc` fetches and decodes a token from it.
# It then exchanges the token for Google Cloud access tokens at the testkit's fake Google STS
# (with service-account impersonation), and for AWS credentials at moto_server's STS, used by
# the real AWS CLI through `credential_process`. moto and the AWS CLI are pip-installed if missing.
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

setting() { sed -n "s/^$1=//p" "$WORK/fake.env"; }
echo "==> fly-oidc gcp access-token --service-account ... --json   (Fly token -> Google STS -> IAM impersonation, fake Google)"
"$BIN" gcp access-token --json --provider "$(setting FLY_OIDC_GCP_PROVIDER)" \
  --service-account "$(setting FLY_OIDC_GCP_SERVICE_ACCOUNT)" \
  --sts-url "$(setting GOOGLE_STS_URL)" --iam-url "$(setting GOOGLE_IAM_URL)" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); d["access_token"]=d["access_token"][:12]+"..."; print(json.dumps(d, indent=2))'

# The interpreter's script directory holds moto_server and aws (pyenv shims lag behind installs).
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH
if ! command -v moto_server >/dev/null || ! command -v aws >/dev/null; then
  echo "==> installing moto (AWS STS/S3 emulator) and the AWS CLI with pip"
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.1' 'awscli==1.45.11' || true
  hash -r
fi

if command -v moto_server >/dev/null && command -v aws >/dev/null; then
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
  echo "(skipping the AWS part: moto_server and the aws CLI could not be installed: pip install 'moto[server]' awscli)"
fi
echo "==> done"
