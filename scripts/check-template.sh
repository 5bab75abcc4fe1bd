#!/usr/bin/env bash
# Proves a crate can be copied out as the start of a real program: copies the crate,
# crates/common and crates/testkit (its tests' harness, a dev-dependency) side by side, as
# the path dependencies expect, to a temporary folder outside the workspace, and runs
# `cargo test` there with no edit. A copy of udp-client must build `common` with no feature
# at all (no receive path and its system calls), and no program links testkit.
#   scripts/check-template.sh [CRATE...]      (default: udp-client udp-server)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(udp-client udp-server)
for crate in "${crates[@]}"; do
    rm -rf "${dest:?}/$crate" "$dest/common" "$dest/testkit"
    cp -r "$root/crates/$crate" "$root/crates/common" "$root/crates/testkit" "$dest/"
    rm -rf "$dest/$crate/target" "$dest/common/target" "$dest/testkit/target"
    # The workspace's lock file pins the same dependency versions; cargo drops what is unused.
    cp "$root/Cargo.lock" "$dest/$crate/"
    echo "check-template: cargo test in a copy of crates/$crate at $dest/$crate"
    (cd "$dest/$crate" && CARGO_TARGET_DIR="$dest/target" cargo test --quiet 2>&1 | grep -E '^test result|FAILED|panicked|error' )
    echo "check-template: $crate builds and passes its tests outside the workspace"
    if (cd "$dest/$crate" && cargo tree --quiet -e normal,build | grep -q '^testkit\|[ ─]testkit v'); then
        echo "check-template: FAIL: $crate links the test harness into the program"
        exit 1
    fi
    if [ "$crate" = udp-client ]; then
        features=$(cd "$dest/$crate" && cargo tree --quiet -e normal,features -i common | grep -o 'common feature "[a-z0-9_-]*"' | grep -v '"default"' || true)
        if [ -n "$features" ]; then
            echo "check-template: FAIL: a copy of udp-client turns on $features"
            exit 1
        fi
        echo "check-template: udp-client's copy builds common with no feature (no receive path)"
    fi
done
