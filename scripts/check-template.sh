#!/usr/bin/env bash
# Proves a crate can be copied out as the start of a real program, by the steps the README
# prints, from the workspace root:
#   mkdir ../my-tool
#   cp -r crates/udp-client crates/common crates/testkit ../my-tool/
#   sed -n '/^\[profile\./,$p' Cargo.toml >> ../my-tool/udp-client/Cargo.toml
#   cp Cargo.lock ../my-tool/udp-client/
#   cd ../my-tool/udp-client && cargo test
# The crate, `common` and `testkit` (its tests' harness, a dev-dependency) go side by side,
# as the path dependencies expect. The third step carries the release profile: cargo reads
# it from the root manifest only, and a copy without it builds a client binary about a
# quarter larger. The lock file pins the versions the workspace was tested with (cargo drops
# what the copy does not use).
# Then a copy of udp-client must build `common` with no feature but `pcap` (--pcap and
# --replay), `pattern` (--expect) and `offload` (GSO for its bulk sends; never the receive path), no program may link testkit,
# and a release build of the copy must be within 5% of the workspace's own binary. That last
# check builds both with fat LTO (about 40 s each on 2 cores) and proves the same appended
# profile for every crate, so it runs for the crates in SIZE_CHECK only (default:
# udp-client, the README's example).
#   scripts/check-template.sh [CRATE...]      (default: udp-client udp-server)
#   SIZE_CHECK="udp-client udp-server" scripts/check-template.sh udp-client udp-server
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
workspace_target=${CARGO_TARGET_DIR:-$root/target}

# The root manifest keeps its profiles last: what the copy step appends must be profiles only.
profiles=$(sed -n '/^\[profile\./,$p' "$root/Cargo.toml")
if [ -z "$profiles" ] || grep '^\[' <<<"$profiles" | grep -qv '^\[profile\.'; then
    echo "check-template: FAIL: the root Cargo.toml must end with its [profile.*] sections, and only those"
    exit 1
fi

crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(udp-client udp-server)
for crate in "${crates[@]}"; do
    tool="$dest/my-$crate"
    echo "check-template: copying crates/$crate to $tool/$crate as the README prints it"
    (
        cd "$root"
        mkdir "$tool"
        cp -r "crates/$crate" crates/common crates/testkit "$tool/"
        sed -n '/^\[profile\./,$p' Cargo.toml >>"$tool/$crate/Cargo.toml"
        cp Cargo.lock "$tool/$crate/"
    )
    # A build made in the workspace folder is not part of what a clone would copy.
    rm -rf "$tool/$crate/target" "$tool/common/target" "$tool/testkit/target"
    # One target folder for every copy, so their shared dependencies build once.
    (cd "$tool/$crate" && CARGO_TARGET_DIR="$dest/target" cargo test --quiet 2>&1 | grep -E '^test result|FAILED|panicked|error')
    echo "check-template: $crate builds and passes its tests outside the workspace"
    if (cd "$tool/$crate" && cargo tree --quiet -e normal,build | grep -q '^testkit\|[ ─]testkit v'); then
        echo "check-template: FAIL: $crate links the test harness into the program"
        exit 1
    fi
    if [ "$crate" = udp-client ]; then
        features=$(cd "$tool/$crate" && cargo tree --quiet -e normal,features -i common | grep -o 'common feature "[a-z0-9_-]*"' | grep -v '"default"\|"pcap"\|"pattern"\|"offload"' || true)
        if [ -n "$features" ]; then
            echo "check-template: FAIL: a copy of udp-client turns on $features"
            exit 1
        fi
        echo "check-template: udp-client's copy builds common with no feature but pcap, pattern and offload (no receive path)"
    fi
    if ! grep -qw -- "$crate" <<<"${SIZE_CHECK:-udp-client}"; then
        echo "check-template: $crate's release size not compared (not in SIZE_CHECK; the profile step is the same as udp-client's)"
        continue
    fi
    (cd "$root" && cargo build --quiet --release -p "$crate")
    (cd "$tool/$crate" && CARGO_TARGET_DIR="$dest/target" cargo build --quiet --release)
    ours=$(wc -c <"$workspace_target/release/$crate")
    copy=$(wc -c <"$dest/target/release/$crate")
    if ! awk -v a="$ours" -v b="$copy" 'BEGIN { d = (b - a) / a; exit !(d <= 0.05 && d >= -0.05) }'; then
        echo "check-template: FAIL: the copy's release $crate is $copy bytes, the workspace's $ours: more than 5% apart (is the release profile in the copy's Cargo.toml?)"
        exit 1
    fi
    echo "check-template: the copy's release $crate is $copy bytes, the workspace's $ours (within 5%)"
done
