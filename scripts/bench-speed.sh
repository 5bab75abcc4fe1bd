# Two sections of bench.sh (sourced by it: it needs lib.sh, $rel, $work and json).
#
# against_c_mmsg: udp-server --batch 64 against a C recvmmsg/sendmmsg echo loop (64 per
# call), both loaded by the C load client keeping 64 datagrams in flight, at 64 and 1400
# bytes; the C sources are those of the load-client comparison ($BENCH_DIR).
#
# throughput: one way on loopback, udp-client floods udp-server with no replies awaited,
# with and without the kernel's offloads, against iperf3 -u -b 0 -l 1400 in the same run. Each run lasts $TP_SECS
# seconds; each sender/receiver pair runs $TP_REPS times, the pairs taking turns (the order
# rotated each round) so that noise from this shared machine hits them alike; the table
# shows medians, the spread, and the median of each run's ratio to iperf3 in that round.
#
# What is received counts, not what is sent: loss is what the sender sent and the receiver
# never got (the receive queue overflowed: `kernel drops`). A rate that loses more is not
# faster. Our datagrams are `seq=N` and padding, 1393-1400 bytes as N grows (iperf3: 1400).

tp_secs=${TP_SECS:-5} tp_reps=${TP_REPS:-3}

# c_flood NAME SIZE CMD...: starts CMD ({port} in it), floods it for 1.2 s with the C load
# client; prints "echoes_per_s cpu_us_per_echo".
c_flood() {
    local name=$1 size=$2 port; shift 2
    port=$(free_port)
    start "$name-$size-${#pids[@]}" "${@//\{port\}/$port}"
    local pid=${pids[-1]} line before after ok
    "$work/udp_load" wait -p "$port" -T 5 >/dev/null
    before=$(cpu_ticks "$pid")
    line=$(timeout 30 "$work/udp_load" flood -p "$port" -m "$size" -t 1.2 -W 64 || true)
    after=$(cpu_ticks "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    ok=$(grep -o ' ok=[0-9]*' <<<"$line" | cut -d= -f2)
    awk -v r="$(grep -o ' rate=[0-9]*' <<<"$line" | cut -d= -f2)" -v t=$((after - before)) -v hz="$ticks" -v ok="${ok:-0}" \
        'BEGIN { printf "%d %.2f\n", r, (ok > 0 ? t / hz * 1e6 / ok : 0) }'
}

# against_c_mmsg: 5 rounds (C_REPS), the two servers in turns (the order rotated), at 64
# and 1400 bytes; medians, the spread, and the median of each round's ratio.
against_c_mmsg() {
    local bench=${BENCH_DIR:-$root/../shared/bench}
    if ! command -v gcc >/dev/null 2>&1 || [ ! -f "$bench/peers/echo_mmsg.c" ]; then
        echo "bench: gcc or $bench missing: --batch against the C recvmmsg loop is skipped" >&2
        return
    fi
    gcc -O2 -o "$work/udp_load" "$bench/peers/udp_load.c"
    gcc -O2 -o "$work/echo_mmsg" "$bench/peers/echo_mmsg.c"
    local reps=${C_REPS:-5} round size k results=$work/c_mmsg.txt
    for round in $(seq "$reps"); do
        for size in 64 1400; do
            for k in 0 1; do
                if [ $(((k + round) % 2)) -eq 0 ]; then
                    echo "$round $size c_mmsg $(c_flood c_mmsg "$size" "$work/echo_mmsg" "{port}")" >>"$results"
                else
                    echo "$round $size batch $(c_flood batch "$size" "$rel/udp-server" --bind "127.0.0.1:{port}" -q --batch 64)" >>"$results"
                fi
            done
        done
    done
    echo "udp-server --batch 64 against the C recvmmsg echo loop (c_mmsg), 64 in flight, $reps rounds, medians [min-max]; x = median of per-round ratios"
    python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    rnd, size, name, rate, us = line.split()
    runs.setdefault((size, name), {})[rnd] = (float(rate), float(us))
for size in ("64", "1400"):
    c, b = runs.get((size, "c_mmsg"), {}), runs.get((size, "batch"), {})
    for name, r in (("c_mmsg", c), ("udp-server --batch 64", b)):
        if not r:
            continue
        rates = [v[0] for v in r.values()]
        x = [v[0] / c[k][0] for k, v in r.items() if k in c and c[k][0]]
        xu = [v[1] / c[k][1] for k, v in r.items() if k in c and c[k][1]]
        print("%5s B  %-22s %7.0fk [%.0fk-%.0fk] echoes/s x%.2f [x%.2f-x%.2f]   cpu %.2f us/echo x%.2f" % (
            size, name, statistics.median(rates) / 1e3, min(rates) / 1e3, max(rates) / 1e3,
            statistics.median(x), min(x), max(x), statistics.median([v[1] for v in r.values()]), statistics.median(xu)))
PY
}
tp_pad=$(printf 'x%.0s' $(seq 1388))

# tp_ours NAME "SERVER ARGS" "CLIENT ARGS": one run; prints "received bytes seconds sent drops".
tp_ours() {
    local name=$1 server_args=$2 client_args=$3 n=$((${#pids[@]}))
    # shellcheck disable=SC2086 # the argument lists are split on purpose
    start "tp-$name-$n" "$rel/udp-server" --bind 127.0.0.1:0 -q --reply none $server_args
    local pid=${pids[-1]} addr t0 t1 summary
    addr=$(listening "tp-$name-$n")
    t0=$(date +%s.%N)
    # Stopped by SIGTERM after the run's time (it stops at once and prints its summary);
    # the count only bounds it.
    # shellcheck disable=SC2086
    summary=$(timeout -s TERM "$tp_secs" "$rel/udp-client" "$addr" -n 1000000000 -i 0 --no-reply -q --json \
        $client_args "$tp_pad" 2>/dev/null | tail -1 || true)
    t1=$(date +%s.%N)
    sleep 0.2 # what is still queued is read before the server stops
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local got drops
    got=$(sed -n 's/.*received \([0-9]*\) datagrams\? (\([0-9]*\) B).*/\1 \2/p' "$work/tp-$name-$n.err" | tail -1)
    drops=$(sed -n 's/.*the kernel dropped \([0-9]*\).*/\1/p' "$work/tp-$name-$n.err" | tail -1)
    echo "${got:-0 0} $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') $(json sent "$summary") ${drops:-0}"
}

# tp_iperf: one iperf3 run, both ends on 127.0.0.1; prints "received bytes seconds sent -".
tp_iperf() {
    local port n=${#pids[@]} i
    port=$(free_port)
    # One test (-1), and a deadline of its own: a server left waiting cannot hold the bench.
    start "tp-iperf3-$n" timeout $((tp_secs + 30)) iperf3 -s -B 127.0.0.1 -p "$port" -1 -J
    local pid=${pids[-1]}
    # iperf3 -J says nothing until the end: the client starts once the port is listening
    # (a client that connects too early can leave the one-test server waiting).
    for i in $(seq 50); do
        ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && break
        sleep 0.1
    done
    timeout $((tp_secs + 10)) iperf3 -u -b 0 -l 1400 -c 127.0.0.1 -B 127.0.0.1 -p "$port" -t "$tp_secs" -J \
        >"$work/tp-iperf3-$n.client" 2>&1 || true
    wait "$pid" 2>/dev/null || true
    python3 - "$work/tp-iperf3-$n.client" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))["end"]["sum_received"]
    print(r["packets"] - r["lost_packets"], r["bytes"], r["seconds"], r["packets"], "-")
except (KeyError, ValueError, OSError):
    print("0 0 1 0 -")
PY
}

# The pairs: name, then how each end is run.
tp_names=(iperf3 offloads batch plain)
tp_label() {
    case $1 in
        iperf3) echo "iperf3 -u -b 0 -l 1400 (both ends)" ;;
        offloads) echo "udp-client -> udp-server --batch 64 --offload (GSO + GRO)" ;;
        batch) echo "both --no-offload, udp-server --batch 64" ;;
        plain) echo "both --no-offload, udp-server's plain loop" ;;
    esac
}
tp_run() {
    case $1 in
        iperf3) tp_iperf ;;
        offloads) tp_ours offloads "--batch 64 --offload" "" ;;
        batch) tp_ours batch "--batch 64 --no-offload" "--no-offload" ;;
        plain) tp_ours plain "--no-offload" "--no-offload" ;;
    esac
}

throughput() {
    local names=("${tp_names[@]}")
    if ! command -v iperf3 >/dev/null 2>&1; then
        echo "bench: SKIPPED iperf3 in the throughput section: iperf3 is not installed (apt-get install iperf3); our rows only, ratios to the first" >&2
        names=("${tp_names[@]:1}")
    fi
    echo "throughput: one way, ~1400-byte datagrams, $tp_secs s per run, $tp_reps runs of each (order rotated), medians [min-max]; x = median of per-round ratios to ${names[0]}"
    local round k name results=$work/throughput.txt
    # Not in a subshell: every process started is in `pids`, for lib.sh to stop on exit.
    for round in $(seq "$tp_reps"); do
        for k in $(seq 0 $((${#names[@]} - 1))); do
            name=${names[$(((k + round) % ${#names[@]}))]}
            printf '%s %s ' "$round" "$name" >>"$results"
            tp_run "$name" >>"$results"
        done
    done
    local labels=()
    for name in "${names[@]}"; do labels+=("$name=$(tp_label "$name")"); done
    python3 -c '
import statistics, sys
labels = dict(a.split("=", 1) for a in sys.argv[1:])
names = list(labels)
runs = {}
for line in sys.stdin:
    rnd, name, got, nbytes, secs, sent, drops = line.split()
    secs = max(float(secs), 1e-9)
    runs.setdefault(name, {})[rnd] = dict(rate=int(got) / secs, gbit=int(nbytes) * 8 / secs / 1e9,
        loss=100 * (1 - int(got) / int(sent)) if int(sent) else 0.0, drops=drops)
base = names[0]
print("%-58s %22s %7s %6s %13s %12s" % ("sender -> receiver", "received/s", "Gbit/s", "x", "loss %", "kernel drops"))
for name in names:
    r = runs.get(name, {})
    rates = [v["rate"] for v in r.values()]
    if not rates:
        continue
    ratios = [v["rate"] / runs[base][k]["rate"] for k, v in r.items() if runs[base].get(k, {}).get("rate")]
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    spread = f"[{min(rates)/1e3:.0f}k-{max(rates)/1e3:.0f}k]"
    loss = [v["loss"] for v in r.values()]
    drops = "/".join(v["drops"] for v in r.values())
    gbit = med([v["gbit"] for v in r.values()])
    print("%-58s %7.0fk %14s %7.2f x%-5.2f %5.1f [%.0f-%.0f] %12s" % (labels[name], med(rates) / 1e3, spread,
          gbit, med(ratios), med(loss), min(loss), max(loss), drops))
' "${labels[@]}" <"$results"
    echo "throughput: loss = sent - received over sent (iperf3: its lost_percent); our kernel drops count lost receive buffers, each up to 64 datagrams with GRO"
}
