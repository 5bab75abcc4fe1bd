#!/usr/bin/env bash
# Proves a crate can be copied out as the start of a real program: copies the crate and
# crates/common (side by side, as the path dependency expects) to a temporary folder
# outside the workspace, and runs `cargo test` there with no edit.
#   scripts/check-template.sh [CRATE...]      (default: udp-client udp-server)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(udp-client udp-server)
for crate in "${crates[@]}"; do
    rm -rf "${dest:?}/$crate" "$dest/common"
    cp -r "$root/crates/$crate" "$root/crates/common" "$dest/"
    rm -rf "$dest/$crate/target" "$dest/common/target"
    # The workspace's lock file pins the same dependency versions; cargo drops what is unused.
    cp "$root/Cargo.lock" "$dest/$crate/"
    echo "check-template: cargo test in a copy of crates/$crate at $dest/$crate"
    (cd "$dest/$crate" && CARGO_TARGET_DIR="$dest/target" cargo test --quiet 2>&1 | grep -E '^test result|FAILED|panicked|error' )
    echo "check-template: $crate builds and passes its tests outside the workspace"
done
