#!/usr/bin/env bash
# Whole-process benchmarks of `fly-oidc aws credential-process` (release build) against the
# testkit's fake Machines API (Unix socket) and moto_server (STS):
#
#   1. warm cache: median wall time (goal <= 3 ms) and peak RSS (goal <= 15 MiB);
#   2. cold: a fresh Fly token + AssumeRoleWithWebIdentity, vs a bare curl POST of
#      AssumeRoleWithWebIdentity to the same moto (goal <= 1.5x);
#   3. the shell-script route, `aws sts assume-role-with-web-identity` with a token from
#      `fly-oidc token` (goal: fly-oidc >= 40x faster).
#
# Needs moto_server and aws (pip install 'moto[server]' awscli) and curl; uses hyperfine when
# installed (apt-get install hyperfine), else (or with NO_HYPERFINE=1) a `date +%s%N` loop.
# RUNS=N and SLOW_RUNS=N set the run counts.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-200}
SLOW_RUNS=${SLOW_RUNS:-15}
ROLE=arn:aws:iam::123456789012:role/bench

for tool in moto_server aws curl python3; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
cargo build -q --release -p fly-oidc-cli -p fly-oidc-examples --example fake_fly_api
BIN="$PWD/target/release/fly-oidc"
WORK=$(mktemp -d)
FAKE=""; MOTO=""
cleanup() {
  [ -n "$FAKE" ] && kill "$FAKE" 2>/dev/null || true
  [ -n "$MOTO" ] && kill "$MOTO" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

./target/release/examples/fake_fly_api >"$WORK/fly.env" &
FAKE=$!
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO=$!
STS="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do
  grep -q '^JWKS_URL=' "$WORK/fly.env" 2>/dev/null && curl -fs "$STS/moto-api/" >/dev/null 2>&1 && break
  sleep 0.1
done
SOCK=$(sed -n 's/^FLY_OIDC_SOCKET=//p' "$WORK/fly.env")

# Every run gets the same small, explicit environment.
export HOME="$WORK/home" XDG_CACHE_HOME="$WORK/cache" AWS_CONFIG_FILE=/dev/null \
  AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
mkdir -p "$HOME"
CP="$BIN aws credential-process --socket $SOCK --role-arn $ROLE --sts-endpoint $STS"
TOKEN=$("$BIN" token --socket "$SOCK" --audience sts.amazonaws.com)
CURL="curl -fsS -o /dev/null $STS/ --data Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=$ROLE&RoleSessionName=bench&DurationSeconds=3600&WebIdentityToken=$TOKEN"
SHELL_ROUTE="aws sts assume-role-with-web-identity --endpoint-url $STS --role-arn $ROLE --role-session-name bench --web-identity-token \"\$($BIN token --socket $SOCK --audience sts.amazonaws.com)\" --output json"

# median_ms NAME RUNS COMMAND [PREPARE]: the median wall time in ms (also kept in $WORK/NAME).
# With hyperfine, COMMAND runs without a shell (-N) unless SHELL_MODE=1, when hyperfine
# subtracts the shell's start-up. Without hyperfine, a `date +%s%N` loop through sh.
median_ms() {
  local name=$1 runs=$2 cmd=$3 prepare=${4:-true}
  if [ -z "${NO_HYPERFINE:-}" ] && command -v hyperfine >/dev/null; then
    local mode=-N
    [ "${SHELL_MODE:-0}" = 1 ] && mode=""
    hyperfine $mode --warmup 3 --runs "$runs" --prepare "$prepare" \
      --export-json "$WORK/$name.json" "$cmd" >/dev/null
    python3 -c 'import json,statistics,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.3f" % (statistics.median(r["times"])*1000))' \
      "$WORK/$name.json" >"$WORK/$name"
  else
    for _ in $(seq 1 "$runs"); do
      sh -c "$prepare"
      s=$(date +%s%N)
      if [ "${SHELL_MODE:-0}" = 1 ]; then sh -c "$cmd" >/dev/null; else $cmd >/dev/null; fi
      e=$(date +%s%N); echo $(( (e - s) / 1000 ))
    done | sort -n | awk '{a[NR]=$1} END {printf "%.3f\n", a[int((NR+1)/2)]/1000}' >"$WORK/$name"
  fi
  cat "$WORK/$name"
}

echo "fly-oidc $(stat -c %s "$BIN") bytes; moto $(python3 -c 'import moto; print(moto.__version__)'); $(aws --version 2>&1)"
$CP >/dev/null # prime the cache
warm=$(median_ms warm "$RUNS" "$CP")
rss=$(/usr/bin/time -f %M $CP 2>&1 >/dev/null | tail -1)
echo "warm cache:                        median $warm ms   (goal <= 3 ms)"
echo "warm cache peak RSS:               $rss KiB = $(awk "BEGIN {printf \"%.1f\", $rss/1024}") MiB   (goal <= 15 MiB)"

cold=$(median_ms cold "$((RUNS / 4))" "$CP --no-cache")
cold_cache=$(median_ms cold_cache "$((RUNS / 4))" "$CP" "sh -c 'rm -f $XDG_CACHE_HOME/fly-oidc/aws-*.json'")
rss_cold=$(/usr/bin/time -f %M $CP --no-cache 2>&1 >/dev/null | tail -1)
curl_ms=$(median_ms curl "$((RUNS / 4))" "$CURL")
echo "cold (--no-cache; Fly token + STS): median $cold ms   peak RSS $rss_cold KiB"
echo "cold (empty cache, writes entry):   median $cold_cache ms"
echo "bare curl AssumeRoleWithWebIdentity: median $curl_ms ms"
echo "cold / curl:                       $(awk "BEGIN {printf \"%.2f\", $cold/$curl_ms}")x   (goal <= 1.5x)"

shell_ms=$(SHELL_MODE=1 median_ms shell "$SLOW_RUNS" "$SHELL_ROUTE")
echo "shell route (aws CLI + fly-oidc token): median $shell_ms ms"
echo "shell route / fly-oidc warm:       $(awk "BEGIN {printf \"%.0f\", $shell_ms/$warm}")x faster   (goal >= 40x)"
echo "shell route / fly-oidc cold:       $(awk "BEGIN {printf \"%.1f\", $shell_ms/$cold}")x faster"
