#!/usr/bin/env bash
# Proves that `cargo test` sends nothing to the programs' default ports: starts a
# `udp-broadcast listen` (0.0.0.0:7788) and a `udp-server` (127.0.0.1:8888) as a learner
# would leave them running, runs the whole suite, stops both by PID and reads their
# summaries: each must have received 0 datagrams.
# As root it runs inside a network namespace of its own (`unshare -n`, only `lo`), so that
# other programs on this host neither disturb the count nor are disturbed by it.
#   tests/quiet-ports.sh [CARGO TEST ARGS...]      (default: --workspace --no-fail-fast)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${QUIET_PORTS_INSIDE:-}" != 1 ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    exec env QUIET_PORTS_INSIDE=1 unshare -n "$0" "$@"
fi
[ "${QUIET_PORTS_INSIDE:-}" = 1 ] && ip link set lo up
cd "$root"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--workspace --no-fail-fast)
cargo build --quiet --bin udp-server --bin udp-broadcast
bin=${CARGO_TARGET_DIR:-$root/target}/debug
out=$(mktemp -d)
"$bin/udp-broadcast" listen --json >"$out/listen" 2>"$out/listen.err" &
listen=$!
"$bin/udp-server" --json >"$out/server" 2>"$out/server.err" &
server=$!
trap 'kill "$listen" "$server" 2>/dev/null || true; rm -rf "$out"' EXIT
# Ready when each has printed its listening line (no sleep guesses).
for f in listen server; do
    for _ in $(seq 100); do grep -q '"event":"listening"' "$out/$f" && break; sleep 0.1; done
    grep -q '"event":"listening"' "$out/$f" || { echo "quiet-ports: $f did not start"; cat "$out/$f.err"; exit 1; }
done
status=0
cargo test "${args[@]}" || status=$?
kill -INT "$listen" "$server"
wait "$listen" "$server" || true
heard=0
for f in listen server; do
    summary=$(grep '"event":"summary"' "$out/$f" || true)
    echo "quiet-ports: $f: $summary"
    if ! grep -q '"received":0,' <<<"$summary"; then
        heard=1
        echo "quiet-ports: FAIL: the test run sent to $f's default port:"
        grep '"event":"recv"' "$out/$f" | head -5
    fi
done
[ "$status" = 0 ] || { echo "quiet-ports: FAIL: cargo test failed"; exit 1; }
[ "$heard" = 0 ] || exit 1
echo "quiet-ports: the suite passed and sent nothing to 7788 or 8888"
