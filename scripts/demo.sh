#!/usr/bin/env bash
# shellcheck disable=SC2016 # the commands are shown as typed, then evaluated
# The main job, end to end, on any machine, as a tutorial: each command is printed (`$ ...`)
# before it runs, and can be copied into a shell in the repository.
#
# Local stand-ins (examples/fake_fly_api) replace what a Fly Machine and the clouds provide: a
# fake Fly Machines API for /.fly/api, a fake AWS STS that checks the token like a role's trust
# policy, and a fake Google STS and IAM Credentials. fly-oidc fetches and decodes a token, trades
# it for AWS credentials (and shows a trust failure with its diagnosis) and for a Google access
# token (with service-account impersonation). Then the real AWS CLI uses fly-oidc through
# `credential_process` against moto_server (STS and S3). moto and the AWS CLI are installed into
# a virtualenv at target/test-venv when missing. Nothing is left behind: the stand-ins, moto and
# the temporary directory are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

# Commands in bold on a terminal.
if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD='' PLAIN=''; fi
# Print a command as it would be typed, then run it in this shell.
run() {
  printf '\n%s$ %s%s\n' "$BOLD" "$1" "$PLAIN"
  eval "$1"
}
# The same, for a command expected to fail: show its exit status and carry on.
run_failing() {
  printf '\n%s$ %s%s\n' "$BOLD" "$1" "$PLAIN"
  local status=0
  eval "$1" || status=$?
  [ "$status" -ne 0 ] || { echo "error: expected this command to fail" >&2; exit 1; }
  echo "(exit status $status)"
}
# Shorten secrets in JSON on stdin, so the demo's output shows shapes, not credentials.
redact() {
  python3 -c '
import json, sys
d = json.load(sys.stdin)
for k in ("SecretAccessKey", "SessionToken", "access_token"):
    if k in d: d[k] = d[k][:8] + "...(redacted)"
print(json.dumps(d, indent=2))'
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fly-oidc-demo.XXXXXX")
cleanup() {
  # SIGTERM: fake_fly_api removes its socket directory as it stops; wait for both to exit.
  for pid in ${FAKE_PID:-} ${MOTO_PID:-}; do kill "$pid" 2>/dev/null || true; done
  for pid in ${FAKE_PID:-} ${MOTO_PID:-}; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> 1. Build fly-oidc and the local stand-ins (the first build takes a few minutes)"
run 'cargo build -p fly-oidc-cli -p fly-oidc-examples --example fake_fly_api'
run 'export PATH="$PWD/target/debug:$PATH"'

echo
echo "==> 2. Start fake Fly, AWS STS and Google endpoints; they print the settings fly-oidc reads"
run './target/debug/examples/fake_fly_api > "$WORK/fake-fly.env" &'
FAKE_PID=$!
for _ in $(seq 1 100); do
  grep -q '^# ready' "$WORK/fake-fly.env" 2>/dev/null && break
  kill -0 "$FAKE_PID" 2>/dev/null || { echo "error: fake_fly_api exited" >&2; exit 1; }
  sleep 0.1
done
grep -q '^# ready' "$WORK/fake-fly.env" || { echo "error: fake_fly_api did not start" >&2; exit 1; }
run 'cat "$WORK/fake-fly.env"'
run 'source "$WORK/fake-fly.env"'

echo
echo "==> 3. A Fly OIDC token and its claims: what a cloud's trust policy compares (iss, aud, sub)"
run 'fly-oidc token --claims --audience sts.amazonaws.com'

echo
echo "==> 4. AWS: the token for role credentials (AWS_ROLE_ARN, at AWS_ENDPOINT_URL_STS: the fake STS)"
run 'fly-oidc aws credential-process --no-cache | redact'

echo
echo "==> 5. A trust failure: a role whose trust policy names another app (sub acme:other-app:*)"
echo "    fly-oidc says what STS answered and which of the token's values to compare with the policy."
run_failing 'fly-oidc aws credential-process --no-cache --sts-endpoint "$FAKE_STS_OTHER_APP_URL"'
echo "    fly-oidc doctor walks the whole chain, one line per step, and names the broken one with its fix"
echo "    (--offline: this machine cannot fetch the issuer's keys from oidc.fly.io)."
run_failing 'fly-oidc doctor --offline --aws-sts-endpoint "$FAKE_STS_OTHER_APP_URL"'

echo
echo "==> 6. Google Cloud: the token for an access token (Google STS), then the service account's (IAM)"
run 'fly-oidc gcp access-token --json --sts-url "$FLY_OIDC_GCP_STS_URL" --iam-url "$FLY_OIDC_GCP_IAM_URL" | redact'

echo
echo "==> 7. The AWS CLI with a credential_process profile, against moto_server (AWS STS and S3)"
# shellcheck source=scripts/python-tools.sh
source scripts/python-tools.sh
if ensure_python_tools && command -v moto_server >/dev/null && command -v aws >/dev/null; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  run "moto_server -H 127.0.0.1 -p $PORT > \"\$WORK/moto.log\" 2>&1 &"
  MOTO_PID=$!
  for _ in $(seq 1 150); do curl -fsS "http://127.0.0.1:$PORT/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done
  run "cat > \"\$WORK/aws-config\" <<CONFIG
[profile fly]
region = us-east-1
credential_process = \$PWD/target/debug/fly-oidc aws credential-process --role-arn arn:aws:iam::123456789012:role/demo --sts-endpoint http://127.0.0.1:$PORT
CONFIG"
  run 'export AWS_CONFIG_FILE="$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE=/dev/null XDG_CACHE_HOME="$WORK/cache"'
  run "aws --profile fly --endpoint-url http://127.0.0.1:$PORT sts get-caller-identity"
  run "aws --profile fly --endpoint-url http://127.0.0.1:$PORT s3 mb s3://fly-oidc-demo"
  run "aws --profile fly --endpoint-url http://127.0.0.1:$PORT s3 ls"
else
  echo "(skipping the AWS CLI part: moto and the AWS CLI could not be installed into target/test-venv)"
fi

echo
echo "==> done. On a Fly Machine the same commands need no stand-ins: see \"Deploy on Fly\" in the README."
