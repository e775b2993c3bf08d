#!/usr/bin/env bash
# Run every fuzz target for a while (default 60 s each) with cargo-fuzz (libFuzzer).
#   ./scripts/fuzz.sh            # all targets, 60 s each
#   SECONDS_PER_TARGET=600 ./scripts/fuzz.sh jwt_parse
# Needs `cargo install cargo-fuzz`. On a stable toolchain, RUSTC_BOOTSTRAP=1 lets cargo-fuzz
# pass the sanitizer flags it needs. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
# fuzz/ is a member of the main workspace, whose release profile strips symbols and uses LTO:
# keep symbols and line tables in the fuzz builds so a crash's stack trace is readable.
export CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=1 CARGO_PROFILE_RELEASE_LTO=false
SECS=${SECONDS_PER_TARGET:-60}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(cargo fuzz list)
cargo fuzz build
for t in "${TARGETS[@]}"; do
  echo "==> $t for ${SECS}s"
  mkdir -p "corpus/$t"
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$SECS" -print_final_stats=1 2>&1 \
    | grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|ERROR|panicked|SUMMARY" || true
done
