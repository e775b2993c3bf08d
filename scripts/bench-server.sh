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
#   3. throughput and p99 at 64 and 256 connections (goal >= 20,000 requests/s at 64), and
#      nginx (Debian's nginx-light, one worker, keep-alive) answering the same credentials JSON
#      from a file, measured by the same wrk in the same run: the server's p99 over nginx's
#      (goal: <= 1);
#   4. the server's peak RSS (VmHWM) after all of it (goal <= 15 MiB).
#
# Needs wrk and nginx (apt-get update && apt-get install -y wrk nginx-light; NGINX=/path/to/nginx
# for another), moto_server (pip install 'moto[server]'), python3, curl. DURATION=10s sets each
# run's length. PIN=1 runs the servers (ours and nginx alike) on CPU 0 and wrk on CPU 1 (one
# wrk thread), so the client does not take the servers' core: the servers' own tails, not the
# scheduler's (needs two cores and taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
# The open-loop rate (requests/s) and oha's connection pool for it.
RATE=${RATE:-5000}
OHA_CONNECTIONS=${OHA_CONNECTIONS:-16}
OHA=${OHA:-$(command -v oha || true)}
ROLE=arn:aws:iam::123456789012:role/bench

NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
# PIN=1: servers on CPU 0, the client on CPU 1.
SERVER_CPU=(); CLIENT_CPU=(); WRK_THREADS=2
if [ "${PIN:-0}" = 1 ]; then
  SERVER_CPU=(taskset -c 0); CLIENT_CPU=(taskset -c 1); WRK_THREADS=1
fi
for tool in wrk moto_server python3 curl "$NGINX"; do
  command -v "$tool" >/dev/null || {
    echo "missing: $tool (apt-get update && apt-get install -y wrk nginx-light; pip install 'moto[server]')" >&2
    exit 1
  }
done
cargo build -q --release -p fly-oidc-cli
cargo build -q --release -p fly-oidc-examples --example fake_fly_api
BIN="$PWD/target/release/fly-oidc"
WORK=$(mktemp -d)
FAKE=""; MOTO=""; SERVER=""; NGINX_PID=""
cleanup() {
  for pid in "$SERVER" "$FAKE" "$MOTO" "$NGINX_PID"; do
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
"${SERVER_CPU[@]}" "$BIN" serve --listen "127.0.0.1:$PORT" --env-file "$WORK/server.env" \
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
# The child environment names the token's file (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), as
# the EKS Pod Identity agent does; the plain variable only with --aws-auth-token-env.
AUTH_TOKEN=$(cat "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
curl -fsS -o /dev/null -H "Authorization: $AUTH_TOKEN" "$AWS_URL"
curl -fsS -o /dev/null -H "Metadata-Flavor: Google" "$GCE_URL"

# nginx, one worker, serving the same credentials JSON from a file at the same path.
NGINX_PORT=$(free_port)
mkdir -p "$WORK/www/v1/aws"
curl -fsS -H "Authorization: $AUTH_TOKEN" "$AWS_URL" >"$WORK/www/v1/aws/credentials"
chmod 755 "$WORK" "$WORK/www" "$WORK/www/v1" "$WORK/www/v1/aws"
chmod 644 "$WORK/www/v1/aws/credentials"
cat >"$WORK/nginx.conf" <<NGINX_CONF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
    default_type application/json;
  }
}
NGINX_CONF
"${SERVER_CPU[@]}" "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!
NGINX_URL="http://127.0.0.1:$NGINX_PORT/v1/aws/credentials"
for _ in $(seq 1 100); do curl -fs -o /dev/null "$NGINX_URL" && break; sleep 0.05; done
curl -fsS -o /dev/null "$NGINX_URL"
echo "server pid $SERVER on 127.0.0.1:$PORT; RSS after warm-up: $(grep VmRSS /proc/$SERVER/status | awk '{print $2, $3}')"

percentiles() { # wrk --latency output -> "p50 p99 req/s errors"
  awk '/^ +50%/{p50=$2} /^ +99%/{p99=$2} /^Requests\/sec/{rps=$2}
       /Non-2xx|Socket errors/{err=err" "$0} END{print "p50=" p50, "p99=" p99, "req/s=" rps, (err ? "ERRORS:" err : "errors=0")}'
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)${PIN:+, PIN=$PIN}"
echo "== 1. one client (one keep-alive connection), $DURATION"
echo -n "AWS endpoint:      "; "${CLIENT_CPU[@]}" wrk -t1 -c1 -d"$DURATION" --latency -H "Authorization: $AUTH_TOKEN" "$AWS_URL" | percentiles
echo -n "GCE token:         "; "${CLIENT_CPU[@]}" wrk -t1 -c1 -d"$DURATION" --latency -H "Metadata-Flavor: Google" "$GCE_URL" | percentiles

echo "== 2. open loop, ${RATE} requests/s (oha -q, latency corrected), $DURATION"
if [ -n "$OHA" ]; then
  for which in AWS GCE; do
    if [ "$which" = AWS ]; then url=$AWS_URL; header="Authorization: $AUTH_TOKEN"
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

echo "== 3. throughput and tail: the server, and nginx (one worker) serving the same JSON from a file"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
p99_us() { # "... p99=1.23ms ..." -> microseconds
  sed -n 's/.*p99=\([0-9.]*\)\(us\|ms\|s\) .*/\1 \2/p' |
    awk '{v=$1; if ($2=="ms") v*=1000; else if ($2=="s") v*=1000000; printf "%.0f", v}'
}
for conns in 64 256; do
  aws=$("${CLIENT_CPU[@]}" wrk -t"$WRK_THREADS" -c"$conns" -d"$DURATION" --latency -H "Authorization: $AUTH_TOKEN" "$AWS_URL" | percentiles)
  echo "AWS endpoint, $conns connections: $aws"
  echo -n "GCE token,    $conns connections: "
  "${CLIENT_CPU[@]}" wrk -t"$WRK_THREADS" -c"$conns" -d"$DURATION" --latency -H "Metadata-Flavor: Google" "$GCE_URL" | percentiles
  nginx=$("${CLIENT_CPU[@]}" wrk -t"$WRK_THREADS" -c"$conns" -d"$DURATION" --latency "$NGINX_URL" | percentiles)
  echo "nginx (file),  $conns connections: $nginx"
  a=$(echo "$aws" | p99_us); n=$(echo "$nginx" | p99_us)
  if [ -n "$a" ] && [ -n "$n" ] && [ "$n" -gt 0 ]; then
    echo "p99 at $conns connections: server ${a}us, nginx ${n}us, server/nginx $(awk -v a="$a" -v n="$n" 'BEGIN{printf "%.2f", a/n}')"
  fi
done

echo "== 4. server memory"
grep -E 'VmHWM|VmRSS' "/proc/$SERVER/status"
echo "STS (moto) requests during the whole run: $(grep -c '"POST / ' "$WORK/moto.log" || true) (1 expected: the start)"
