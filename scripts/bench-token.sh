#!/usr/bin/env bash
# `fly-oidc token` wall time against the testkit's fake Machines API socket, and the release
# binary's size. Uses hyperfine (apt-get install hyperfine) when present, else a timing loop.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
cargo build -q --release -p fly-oidc-cli
cargo build -q --release -p fly-oidc-examples --example fake_fly_api
BIN="$PWD/target/release/fly-oidc"
WORK=$(mktemp -d)
trap 'kill $FAKE 2>/dev/null || true; rm -rf "$WORK"' EXIT
./target/release/examples/fake_fly_api >"$WORK/env" &
FAKE=$!
for _ in $(seq 1 100); do grep -q '^JWKS_URL=' "$WORK/env" 2>/dev/null && break; sleep 0.1; done
SOCK=$(sed -n 's/^FLY_OIDC_SOCKET=//p' "$WORK/env")
echo "release binary: $(stat -c %s "$BIN") bytes ($(( $(stat -c %s "$BIN") / 1024 )) KiB)"
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/t.json" \
    "$BIN token --socket $SOCK --audience sts.amazonaws.com" >/dev/null
  python3 - "$WORK/t.json" <<'PY'
import json, sys, statistics
r = json.load(open(sys.argv[1]))["results"][0]
t = sorted(x * 1000 for x in r["times"])
print(f"fly-oidc token over the socket: median {statistics.median(t):.2f} ms, min {t[0]:.2f} ms, max {t[-1]:.2f} ms ({len(t)} runs)")
PY
else
  for _ in $(seq 1 "$RUNS"); do
    s=$(date +%s%N); "$BIN" token --socket "$SOCK" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000 ))
  done | sort -n | awk '{a[NR]=$1} END {printf "fly-oidc token over the socket: median %.2f ms (%d runs)\n", a[int((NR+1)/2)]/1000, NR}'
fi
/usr/bin/time -f "peak RSS: %M KiB" "$BIN" token --socket "$SOCK" >/dev/null
