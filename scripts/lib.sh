# Helpers the scripts share. Source it; it expects `set -euo pipefail`.
# Every wait here has a deadline; every process started is recorded and killed by PID.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Where cargo puts what it builds (CARGO_TARGET_DIR, a .cargo/config, or target/): cargo says.
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" 2>/dev/null \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null) \
    || target_dir=${CARGO_TARGET_DIR:-$root/target}
bin=${BIN_DIR:-$target_dir/debug}

# need PROGRAM...: each must be built; if one is not, that is the one line this script says.
need() {
    local p
    for p in "$@"; do
        if [ ! -x "$bin/$p" ]; then
            echo "$(basename "$0"): $bin/$p is missing: build it with cargo build --workspace (or set BIN_DIR)" >&2
            exit 1
        fi
    done
}
work=$(mktemp -d)
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# start NAME CMD...: runs CMD in the background, stdout to $work/NAME.out, stderr to .err.
start() {
    local name=$1; shift
    "$@" >"$work/$name.out" 2>"$work/$name.err" &
    pids+=("$!")
}

# listening NAME: waits (5 s at most) for "listening on IP:PORT" (or its --json form,
# {"event":"listening","addr":"IP:PORT"}) in NAME's output; prints IP:PORT.
listening() {
    local i addr
    for i in $(seq 100); do
        addr=$(sed -n -e 's/^listening on \([^ ]*\).*/\1/p' \
                      -e 's/^{"addr":"\([^"]*\)","event":"listening"}$/\1/p' "$work/$1.out" 2>/dev/null | head -1)
        if [ -n "$addr" ]; then
            echo "$addr"
            return 0
        fi
        sleep 0.05
    done
    echo "timed out waiting for $1 to listen; its stderr:" >&2
    cat "$work/$1.err" >&2
    return 1
}

# free_port: a UDP port on 127.0.0.1 that was free a moment ago, for peers (nc, socat) that
# cannot bind port 0 and say which port they got. Another program could take it in between.
free_port() {
    python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_text FILE TEXT: waits (5 s at most) until FILE contains TEXT.
wait_for_text() {
    local i
    for i in $(seq 100); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
