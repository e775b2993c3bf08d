#!/usr/bin/env bash
# shellcheck disable=SC2016 # the commands are shown as typed, then evaluated
# The "Try it locally" tour (docs/try-it-locally.md), end to end, on any machine, as a
# tutorial: each command is printed (`$ ...`) exactly as it runs, and can be pasted into a shell at the repository's root
# (the files it writes are in target/).
#
# Local stand-ins (examples/fake_fly_api) replace what a Fly Machine and the clouds provide: a
# fake Fly Machines API for /.fly/api, a fake AWS STS that checks the token like a role's trust
# policy, and a fake Google STS and IAM Credentials. fly-oidc fetches and decodes a token, trades
# it for AWS credentials (and shows a trust failure with its diagnosis) and for a Google access
# token (with service-account impersonation); `doctor` walks the chain. Then programs that know
# nothing of fly-oidc get its credentials: the real AWS CLI under `fly-oidc exec`, from
# `fly-oidc aws env`, from the env file of `fly-oidc serve`, and through `credential_process`
# against moto_server (STS and S3). moto and the AWS CLI are installed into a virtualenv at
# target/test-venv when missing (under CI=true, failing to is an error; else that part is
# skipped). Nothing is left behind: the stand-ins, the servers and moto are stopped on exit, and
# the files removed.
#
# The build is the tests' (scripts/test.sh): same profile, same features, so CI builds once.
set -euo pipefail
cd "$(dirname "$0")/.."

in_ci() { [ -n "${CI:-}" ] && [ "${CI:-}" != "false" ] && [ "${CI:-}" != "0" ]; }

# Commands in bold on a terminal.
if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD='' PLAIN=''; fi
show() { printf '\n%s$ %s%s\n' "$BOLD" "$1" "$PLAIN"; }
# Print a command as it is typed, then run it in this shell.
run() {
  show "$1"
  eval "$1"
}
# The same, for a command expected to fail: show its exit status and carry on.
run_failing() {
  show "$1"
  local status=0
  eval "$1" || status=$?
  [ "$status" -ne 0 ] || { echo "error: expected this command to fail" >&2; exit 1; }
  echo "(exit status $status)"
}
# The same, for a command that prints credentials: they are shortened (the demo's output shows
# shapes, not secrets, even the stand-ins').
run_redacted() {
  show "$1"
  eval "$1" | redact
}
redact() {
  python3 -c '
import json, sys
text = sys.stdin.read()
short = lambda s: s[:8] + "...(redacted)"
try:
    d = json.loads(text)
except ValueError:
    print("\n".join(short(line) for line in text.splitlines()))
else:
    for k in ("SecretAccessKey", "SessionToken", "access_token"):
        if k in d: d[k] = short(d[k])
    print(json.dumps(d, indent=2))'
}

# The tour's files, all in target/ (FAKE_PID, SERVE_PID, MOTO_PID: its background processes).
FILES=(target/fake-fly.env target/fly-oidc.env target/demo-aws-config target/demo-moto.log)
cleanup() {
  # SIGTERM: fake_fly_api removes its socket directory, serve its env file, as they stop.
  for pid in ${SERVE_PID:-} ${FAKE_PID:-} ${MOTO_PID:-}; do kill "$pid" 2>/dev/null || true; done
  for pid in ${SERVE_PID:-} ${FAKE_PID:-} ${MOTO_PID:-}; do wait "$pid" 2>/dev/null || true; done
  rm -f "${FILES[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> 1. Build fly-oidc and the local stand-ins, as the tests do (the first build takes a few minutes)"
run 'cargo build --workspace --bins --examples --all-features'
run 'export PATH="$PWD/target/debug:$PATH"'

echo
echo "==> 2. Start fake Fly, AWS STS and Google endpoints (job %1); they print the settings fly-oidc reads"
run './target/debug/examples/fake_fly_api > target/fake-fly.env &'
FAKE_PID=$!
run "while ! grep -qs '^# ready' target/fake-fly.env && kill -0 %1; do sleep 0.1; done"
grep -q '^# ready' target/fake-fly.env || { echo "error: fake_fly_api did not start" >&2; exit 1; }
run 'cat target/fake-fly.env'
run 'source target/fake-fly.env'

echo
echo "==> 3. A Fly OIDC token and its claims: what a cloud's trust policy compares (iss, aud, sub)"
run 'fly-oidc token --claims'

echo
echo "==> 4. AWS: the token for role credentials (AWS_ROLE_ARN, at AWS_ENDPOINT_URL_STS: the fake STS)"
run_redacted 'fly-oidc aws credential-process'
echo
echo "    Trust failures: a role whose trust policy names another app (sub acme:other-app:*), and an"
echo "    audience the OIDC provider does not list. fly-oidc says what STS answered and which of the"
echo "    token's values to compare with the policy."
run_failing 'fly-oidc aws credential-process --sts-endpoint "$FAKE_STS_OTHER_APP_URL"'
run_failing 'fly-oidc aws credential-process --audience something-else'

echo
echo "==> 5. Google Cloud: the token for an access token (Google STS), then the service account's (IAM)"
run_redacted 'fly-oidc gcp access-token'

echo
echo "==> 6. fly-oidc doctor walks the whole chain, one line per step, and names a broken one with its fix."
echo "    Its signature step fetches the issuer's keys from oidc.fly.io, which did not sign the"
echo "    stand-ins' tokens: locally, --jwks-url gives it the fake issuer's keys (or --offline skips it)."
run 'fly-oidc doctor --jwks-url "$FAKE_FLY_JWKS_URL"'
run_failing 'fly-oidc doctor --jwks-url "$FAKE_FLY_JWKS_URL" --aws-sts-endpoint "$FAKE_STS_OTHER_APP_URL"'

echo
echo "==> 7. Programs that know nothing of fly-oidc: the AWS CLI (in a virtualenv at target/test-venv)"
# shellcheck source=scripts/python-tools.sh
if run 'source scripts/python-tools.sh && ensure_python_tools' && command -v aws >/dev/null && command -v moto_server >/dev/null; then
  echo
  echo "    fly-oidc exec serves the role's credentials on loopback and runs the command with the"
  echo "    variables every AWS SDK reads; the child keeps AWS_ENDPOINT_URL_STS, so the CLI asks the"
  echo "    fake STS who it is (it answers GetCallerIdentity for the credentials it issued)."
  run 'fly-oidc exec -- aws sts get-caller-identity'
  echo
  echo "    Role chaining: the role the token assumed then assumes a role in another account"
  echo "    (sts:AssumeRole, signed with its credentials), and the command gets that role's."
  run 'fly-oidc exec --aws-chain-role-arn arn:aws:iam::210987654321:role/demo-data -- aws sts get-caller-identity'
  echo
  echo "    The same credentials as variables, in a subshell:"
  run '(eval "$(fly-oidc aws env)" && aws sts get-caller-identity)'
  echo
  echo "    fly-oidc serve (job %2) serves them until stopped, and writes an env file for the app"
  echo "    to source (--listen 127.0.0.1:0: a free port; the default is 8675)."
  run 'fly-oidc serve --listen 127.0.0.1:0 --aws-region us-east-1 --env-file target/fly-oidc.env &'
  SERVE_PID=$!
  run 'while [ ! -s target/fly-oidc.env ] && kill -0 %2; do sleep 0.1; done'
  run '(. target/fly-oidc.env && aws sts get-caller-identity)'
  run 'kill %2'
  wait "$SERVE_PID" || true
  SERVE_PID=

  echo
  echo "    A credential_process profile, against moto_server (AWS STS and S3)"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  run "moto_server -H 127.0.0.1 -p $PORT > target/demo-moto.log 2>&1 &"
  MOTO_PID=$!
  for _ in $(seq 1 150); do curl -fsS "http://127.0.0.1:$PORT/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done
  run "cat > target/demo-aws-config <<CONFIG
[profile fly]
region = us-east-1
credential_process = $PWD/target/debug/fly-oidc aws credential-process --role-arn arn:aws:iam::123456789012:role/demo --sts-endpoint http://127.0.0.1:$PORT
CONFIG"
  run 'export AWS_CONFIG_FILE=target/demo-aws-config AWS_SHARED_CREDENTIALS_FILE=/dev/null'
  run "aws --profile fly --endpoint-url http://127.0.0.1:$PORT sts get-caller-identity"
  run "aws --profile fly --endpoint-url http://127.0.0.1:$PORT s3 mb s3://fly-oidc-demo"
  run "aws --profile fly --endpoint-url http://127.0.0.1:$PORT s3 ls"
  run 'kill %moto_server'
  wait "$MOTO_PID" 2>/dev/null || true
  MOTO_PID=
elif in_ci; then
  echo "error: the AWS CLI and moto could not be installed into target/test-venv (CI=true)" >&2
  exit 1
else
  echo "(skipping the AWS CLI part: moto and the AWS CLI could not be installed into target/test-venv)"
fi

echo
echo "==> 8. Stop the stand-ins: they remove their temporary directory"
run 'kill %1'
wait "$FAKE_PID" || true
FAKE_PID=

echo
echo "==> done. On a Fly Machine the same commands need no stand-ins: see docs/deploy.md."
