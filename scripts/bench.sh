#!/usr/bin/env bash
# Performance on loopback, as ratios inside one run (this machine is shared and noisy):
# udp-server (default and --batch) against the chapter's Python server and socat (when
# installed), each measured with udp-client's own ping and flood modes; then udp-client's
# flood against the C load tool of ../shared/bench (when gcc and that folder are there).
# Then the relay: echo through udp-relay against straight to the server and through socat's
# fork-per-datagram relay (when installed), in the same run.
# Last, throughput one way: udp-client flooding udp-server (no replies) with and without
# the kernel's offloads (GSO, GRO), against iperf3 -u in the same run (skipped, loudly,
# when iperf3 is not installed: apt-get install iperf3).
# Every run is bounded by a count and a timeout; servers are stopped by PID.
#   scripts/bench.sh            (FLOOD_N=200000 PING_N=2000 to change the sizes;
#                                REL_DIR=target/debug for a quick smoke run without a release build)
#   ONLY=relay scripts/bench.sh             only the direct row and the relay rows
#   RELAY_BEFORE=DIR/udp-relay scripts/bench.sh   also an older relay binary, in the same run
#                                (built from another commit), to quote before/after
#   THROUGHPUT_ONLY=1 scripts/bench.sh   only the throughput section (TP_SECS=5 per run,
#                                TP_REPS=3 runs of each, order rotated; medians)
#   BATCH_ONLY=1 scripts/bench.sh        only udp-server --batch 64 against the C recvmmsg
#                                echo loop (C_REPS=5 rounds; needs gcc and BENCH_DIR's C tools)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
if [ -z "${REL_DIR:-}" ]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml"
fi
rel=${REL_DIR:-$target_dir/release}
flood_n=${FLOOD_N:-200000} ping_n=${PING_N:-2000}
ticks=$(getconf CLK_TCK)

# ready PORT: waits (5 s at most) until something on 127.0.0.1:PORT echoes a probe.
ready() {
    local i
    for i in $(seq 50); do
        timeout 5 "$rel/udp-client" "$1" probe --timeout 100ms -q >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
json() { grep -o "\"$1\":[0-9.]*" <<<"$2" | head -1 | cut -d: -f2; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# --batch against the C recvmmsg loop, and throughput against iperf3: at the end, or alone.
. "$(dirname "$0")/bench-speed.sh"
if [ -n "${THROUGHPUT_ONLY:-}" ]; then
    throughput
    exit 0
fi
if [ -n "${BATCH_ONLY:-}" ]; then
    against_c_mmsg
    exit 0
fi

# measure NAME FLOOD_COUNT CMD… ({port} in CMD): one row of the table.
measure() {
    local name=$1 n=$2; shift 2
    # ONLY=relay: the relay rows and the direct row they are compared with.
    if [ "${ONLY:-}" = relay ] && [ "$name" != udp-server ] && [[ "$name" != *relay* ]]; then
        return
    fi
    local port; port=$(free_port)
    local cmd=("${@//\{port\}/$port}")
    # Not wrapped in `timeout`: its PID must be the server's, for CPU and memory. It is
    # stopped by PID below, and on exit by lib.sh.
    start "$name" "${cmd[@]}"
    local pid=${pids[-1]}
    ready "$port" || { echo "$name: not ready, skipped"; kill "$pid" 2>/dev/null || true; return; }
    local ping flood before after
    ping=$(timeout 60 "$rel/udp-client" "$port" -n "$ping_n" -i 1ms -q --json 2>/dev/null | tail -1)
    before=$(cpu_ticks "$pid")
    flood=$(timeout 120 "$rel/udp-client" "$port" -n "$n" -i 0 -w 64 -q --json 2>/dev/null | tail -1)
    after=$(cpu_ticks "$pid")
    local rss; rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # Our server's summary says what reached it: one probe, the pings and the flood.
    local got; got=$(grep -o 'received [0-9]* datagrams' "$work/$name.err" | cut -d' ' -f2 || true)
    if [ -n "$got" ]; then
        checks+=("$name: received $got of the $((1 + ping_n + n)) datagrams sent (probe, pings, flood); the client lost $(json lost "$ping") + $(json lost "$flood")")
    fi
    local received; received=$(json received "$flood")
    local us="-"
    [ "${received:-0}" -gt 0 ] && us=$(awk -v t=$((after - before)) -v hz="$ticks" -v r="$received" 'BEGIN {printf "%.2f", t / hz * 1e6 / r}')
    rows+=("$name $(json p50 "$ping") $(json rate_per_s "$flood") $us $(json loss_percent "$flood") $rss")
}

rows=() checks=()
echo "bench: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r); ping $ping_n at 1 ms, flood $flood_n with 64 in flight, 64-byte datagrams"
measure udp-server "$flood_n" "$rel/udp-server" --bind "127.0.0.1:{port}" -q
measure udp-server-batch "$flood_n" "$rel/udp-server" --bind "127.0.0.1:{port}" -q --batch 64
measure python-chapter "$flood_n" python3 "$root/scripts/peers/chapter_server.py" "{port}" 0
if command -v socat >/dev/null 2>&1; then
    measure socat-fork 5000 socat "UDP4-RECVFROM:{port},bind=127.0.0.1,fork" PIPE
else
    echo "bench: socat not installed, skipped"
fi

# The relay rows: the same echo server behind udp-relay, and behind socat as a relay.
start upstream "$rel/udp-server" --bind 127.0.0.1:0 -q
upstream=$(listening upstream)
if [ -n "${RELAY_BEFORE:-}" ]; then
    measure udp-relay-before "$flood_n" "$RELAY_BEFORE" --bind "127.0.0.1:{port}" --to "$upstream" -q
fi
measure udp-relay "$flood_n" "$rel/udp-relay" --bind "127.0.0.1:{port}" --to "$upstream" -q
if command -v socat >/dev/null 2>&1; then
    # socat forks a process per datagram (each lives -T 1 s): fewer datagrams, or hundreds
    # of processes at once.
    ping_n=$(( ping_n < 200 ? ping_n : 200 )) measure socat-relay 1000 \
        socat -T 1 "UDP4-RECVFROM:{port},bind=127.0.0.1,fork" "UDP4-SENDTO:$upstream"
else
    echo "bench: SKIPPED the socat relay row: socat is not installed (apt-get install socat)" >&2
fi

printf '%-18s %12s %6s %12s %6s %12s %6s %7s %9s\n' server "ping p50 ms" x "flood/s" x "cpu us/reply" x "loss %" "RSS kB"
read -r _ base_p50 base_rate base_us _ _ <<<"${rows[0]}"
for row in "${rows[@]}"; do
    read -r name p50 rate us loss rss <<<"$row"
    awk -v n="$name" -v p="$p50" -v bp="$base_p50" -v r="$rate" -v br="$base_rate" -v u="$us" -v bu="$base_us" -v l="$loss" -v m="$rss" \
        'function x(a, b) { return (a == "-" || b == "-" || b == 0) ? "-" : sprintf("x%.2f", a / b) }
         BEGIN { printf "%-18s %12.3f %6s %12d %6s %12s %6s %7s %9s\n", n, p, x(p, bp), r, x(r, br), u, x(u, bu), l, m }'
done

printf '%s\n' "${checks[@]}"

# The relay's cost, as ratios of the rows above: through it against straight to the server,
# and against socat as the relay.
# row NAME: that row of the table, or nothing (and still success, as the script runs under set -e).
row() { local r; for r in "${rows[@]}"; do [ "${r%% *}" = "$1" ] && { echo "$r"; return; }; done; return 0; }
direct=$(row udp-server) relayed=$(row udp-relay) socat_relayed=$(row socat-relay) before=$(row udp-relay-before)
if [ -n "$relayed" ]; then
    read -r _ dp dr _ _ _ <<<"$direct"
    read -r _ rp rr ru _ _ <<<"$relayed"
    awk -v dp="$dp" -v dr="$dr" -v rp="$rp" -v rr="$rr" \
        'BEGIN { printf "relay: through udp-relay %d echoes/s = x%.2f of straight to the server (%d/s); ping p50 x%.2f\n", rr, rr / dr, dr, rp / dp }'
    if [ -n "$before" ]; then
        read -r _ _ br bu _ _ <<<"$before"
        awk -v dr="$dr" -v br="$br" -v rr="$rr" -v bu="$bu" -v ru="$ru" -v b="$RELAY_BEFORE" \
            'BEGIN { printf "relay: before (%s) %d echoes/s = x%.2f of straight; now x%.2f the echoes/s of before, relay cpu us/reply %s before, %s now\n", b, br, br / dr, rr / br, bu, ru }'
    fi
    if [ -n "$socat_relayed" ]; then
        read -r _ sp sr _ _ _ <<<"$socat_relayed"
        awk -v rr="$rr" -v sr="$sr" -v rp="$rp" -v sp="$sp" \
            'BEGIN { printf "relay: udp-relay x%.1f the echoes/s of socat fork-per-datagram (%d/s); ping p50 x%.2f of socat'"'"'s\n", (sr > 0 ? rr / sr : 0), sr, (sp > 0 ? rp / sp : 0) }'
    fi
fi

[ "${ONLY:-}" = relay ] && exit 0

# udp-client as a load tool: its flood against the C echo loop, next to the C load client's.
bench=${BENCH_DIR:-$root/../shared/bench}
if command -v gcc >/dev/null 2>&1 && [ -f "$bench/peers/udp_load.c" ]; then
    gcc -O2 -o "$work/udp_load" "$bench/peers/udp_load.c" && gcc -O2 -o "$work/echo_block" "$bench/peers/echo_block.c"
    port=$(free_port)
    start c-echo "$work/echo_block" "$port"
    ready "$port"
    c_rate=$(timeout 30 "$work/udp_load" flood -p "$port" -m 64 -t 2 -W 64 | grep -o ' rate=[0-9]*' | cut -d= -f2)
    ours=$(timeout 60 "$rel/udp-client" "$port" -n "$flood_n" -i 0 -w 64 -q --json 2>/dev/null | tail -1)
    awk -v c="$c_rate" -v r="$(json rate_per_s "$ours")" -v l="$(json lost "$ours")" \
        'BEGIN { printf "load client vs the C echo loop: udp_load %d/s, udp-client %d/s (x%.2f), udp-client lost %d\n", c, r, r / c, l }'
else
    echo "bench: gcc or $bench missing: the load-client comparison is skipped"
fi

# An idle server must cost next to nothing: CPU over 10 s with no traffic, and its memory.
start idle "$rel/udp-server" --bind 127.0.0.1:0 -q
listening idle >/dev/null
pid=${pids[-1]}
before=$(cpu_ticks "$pid")
sleep 10
after=$(cpu_ticks "$pid")
awk -v t=$((after - before)) -v hz="$ticks" -v m="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")" \
    'BEGIN { printf "idle udp-server: %.2f%% of a core over 10 s, peak RSS %d kB\n", t / hz / 10 * 100, m }'

against_c_mmsg
throughput
