#!/usr/bin/env bash
# The crates are ready to publish: `cargo package` packs every crate that does not say
# `publish = false` (cargo packs interdependent workspace crates together, the later ones
# resolved against the earlier ones' .crate files) and verifies each: unpacked on its own, with
# only what its .crate holds, it builds against crates.io and the other packed crates.
#
# The verification builds share the workspace's target directory (CARGO_TARGET_DIR, default
# target/) and are given the workspace's dev profile (a packed manifest carries no profile), so
# they build dependencies without debug info, like the tests, and reuse what matches.
# The .crate files are left in $CARGO_TARGET_DIR/package/.
#
#   scripts/check-package.sh               pack and verify (CI)
#   scripts/check-package.sh --no-verify   pack only: the file lists and manifests (seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"

# The publishable packages, by cargo's own answer ("publish": null), as name-version.
mapfile -t CRATES < <(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json, sys; print("\n".join(p["name"] + "-" + p["version"] for p in json.load(sys.stdin)["packages"] if p["publish"] is None))')
[ "${#CRATES[@]}" -gt 0 ] || { echo "error: no publishable package found" >&2; exit 1; }
args=()
for crate in "${CRATES[@]}"; do args+=(-p "${crate%-*}"); done

# cargo unpacks the packed crates into $CARGO_HOME/registry/src/-<hash>/ (a directory named after
# target/package/tmp-registry) and, registry crates being immutable, never unpacks them again,
# nor rebuilds what it built of them (their fingerprint is their version): a later run would
# verify against an earlier run's code. Drop those copies of ours and our crates' fingerprints
# first (a fresh machine has neither).
for crate in "${CRATES[@]}"; do
  rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/"$crate"
done
rm -rf "$TARGET"/debug/.fingerprint/fly-oidc-*

echo "==> cargo package ${CRATES[*]}"
cargo package --locked "${args[@]}" "$@" \
  --config 'profile.dev.debug="line-tables-only"' \
  --config 'profile.dev.package."*".debug=false' \
  --config 'profile.dev.package.num-bigint-dig.opt-level=3' \
  --config 'profile.dev.package.rsa.opt-level=3'

# Each package holds both license files.
for crate in "${CRATES[@]}"; do
  listing=$(tar -tzf "$TARGET/package/$crate.crate")
  for file in LICENSE-MIT LICENSE-APACHE; do
    grep -qx "[^/]*/$file" <<<"$listing" || { echo "error: $crate's package has no $file" >&2; exit 1; }
  done
done
ls -l "$TARGET"/package/*.crate
