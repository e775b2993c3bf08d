#!/usr/bin/env bash
# Benchmarks of the credential server (`fly-oidc serve`, release build) with warm credentials,
# fed by the testkit's fake Machines API and fake Google (examples/fake_fly_api.rs) and
# moto_server (STS):
#
#   1. latency p50/p99 with one client (one keep-alive connection), for the AWS endpoint and
#      the metadata token endpoint (goal: p50 <= 100 us, p99 <= 1 ms);
#   2. open-loop latency at a fixed 5,000 requests/s (RATE=...), `oha -q 5000
#      --latency-correction` (a sender that does not wait for answers, so queueing shows as
#      latency), for both endpoints, when oha is installed (`cargo install oha --locked`, or
#      OHA=/path/to/oha); skipped otherwise (wrk is closed-loop);
#   3. throughput at 64 and 256 connections (goal >= 20,000 requests/s at 64);
#   4. the server's peak RSS (VmHWM) after all of it (goal <= 15 MiB).
#
# Needs wrk (apt-get install wrk), moto_server (pip install 'moto[server]'), python3.
# DURATION=10s sets each run's length.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
# The open-loop rate (requests/s) and oha's connection pool for it.
RATE=${RATE:-5000}
OHA_CONNECTIONS=${OHA_CONNECTIONS:-16}
OHA=${OHA:-$(command -v oha || true)}
ROLE=arn:aws:iam::123456789012:role/bench

for tool in wrk moto_server python3 curl; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
cargo build -q --release -p fly-oidc-cli
cargo build -q --release -p fly-oidc-examples --example fake_fly_api
BIN="$PWD/target/release/fly-oidc"
WORK=$(mktemp -d)
FAKE=""; MOTO=""; SERVER=""
cleanup() {
  for pid in "$SERVER" "$FAKE" "$MOTO"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

./target/release/examples/fake_fly_api >"$WORK/fly.env" &
FAKE=$!
MOTO_PORT=$(free_port)
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO=$!
for _ in $(seq 1 300); do
  grep -q '^# ready' "$WORK/fly.env" 2>/dev/null && curl -fs "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null && break
  sleep 0.1
done
set -a; . "$WORK/fly.env"; set +a
# The server's own flags name the role and STS (moto) below.
unset FLY_API_HOSTNAME FLY_API_TOKEN AWS_ROLE_ARN AWS_ENDPOINT_URL_STS

PORT=$(free_port)
"$BIN" serve --listen "127.0.0.1:$PORT" --env-file "$WORK/server.env" \
  --aws-role-arn "$ROLE" --aws-sts-endpoint "http://127.0.0.1:$MOTO_PORT" \
  --gcp-provider "$FLY_OIDC_GCP_PROVIDER" --gcp-service-account "$FLY_OIDC_GCP_SERVICE_ACCOUNT" \
  --gcp-sts-url "$FLY_OIDC_GCP_STS_URL" --gcp-iam-url "$FLY_OIDC_GCP_IAM_URL" 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 1 600); do
  [ -f "$WORK/server.env" ] && break
  kill -0 "$SERVER" 2>/dev/null || { echo "serve exited:" >&2; cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.05
done
[ -f "$WORK/server.env" ] || { echo "serve did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }
. "$WORK/server.env"
AWS_URL="$AWS_CONTAINER_CREDENTIALS_FULL_URI"
GCE_URL="http://$GCE_METADATA_HOST/computeMetadata/v1/instance/service-accounts/default/token"
curl -fsS -o /dev/null -H "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" "$AWS_URL"
curl -fsS -o /dev/null -H "Metadata-Flavor: Google" "$GCE_URL"
echo "server pid $SERVER on 127.0.0.1:$PORT; RSS after warm-up: $(grep VmRSS /proc/$SERVER/status | awk '{print $2, $3}')"

percentiles() { # wrk --latency output -> "p50 p99 req/s errors"
  awk '/^ +50%/{p50=$2} /^ +99%/{p99=$2} /^Requests\/sec/{rps=$2}
       /Non-2xx|Socket errors/{err=err" "$0} END{print "p50=" p50, "p99=" p99, "req/s=" rps, (err ? "ERRORS:" err : "errors=0")}'
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
echo "== 1. one client (one keep-alive connection), $DURATION"
echo -n "AWS endpoint:      "; wrk -t1 -c1 -d"$DURATION" --latency -H "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" "$AWS_URL" | percentiles
echo -n "GCE token:         "; wrk -t1 -c1 -d"$DURATION" --latency -H "Metadata-Flavor: Google" "$GCE_URL" | percentiles

echo "== 2. open loop, ${RATE} requests/s (oha -q, latency corrected), $DURATION"
if [ -n "$OHA" ]; then
  for which in AWS GCE; do
    if [ "$which" = AWS ]; then url=$AWS_URL; header="Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN"
    else url=$GCE_URL; header="Metadata-Flavor: Google"; fi
    printf '%-19s' "$which endpoint:"
    "$OHA" -q "$RATE" -z "$DURATION" -c "$OHA_CONNECTIONS" --no-tui --latency-correction \
      --output-format json -H "$header" "$url" | python3 -c '
import json, sys
r = json.load(sys.stdin)
p = r["latencyPercentiles"]; s = r["summary"]
codes = r.get("statusCodeDistribution", {})
us = lambda v: "%.0fus" % (v * 1e6) if v is not None else "n/a"
print("p50=%s p99=%s req/s=%.0f success=%.4f status=%s" % (us(p["p50"]), us(p["p99"]), s["requestsPerSec"], s["successRate"], codes))'
  done
else
  echo "skipped: oha is not installed (cargo install oha --locked, or OHA=/path/to/oha)"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== 3. throughput"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for conns in 64 256; do
  echo -n "AWS endpoint, $conns connections: "
  wrk -t2 -c"$conns" -d"$DURATION" --latency -H "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" "$AWS_URL" | percentiles
  echo -n "GCE token,    $conns connections: "
  wrk -t2 -c"$conns" -d"$DURATION" --latency -H "Metadata-Flavor: Google" "$GCE_URL" | percentiles
done

echo "== 4. server memory"
grep -E 'VmHWM|VmRSS' "/proc/$SERVER/status"
echo "STS (moto) requests during the whole run: $(grep -c '"POST / ' "$WORK/moto.log" || true) (1 expected: the start)"
