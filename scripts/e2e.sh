#!/usr/bin/env bash
# End-to-end scenarios against the built binaries, including real peers that nobody here
# wrote: the chapter's Python client and server, `nc -u` and socat (each skipped, with the
# reason printed, when it is not installed). Everything stays on 127.0.0.1; every process
# started is killed by PID on exit; every wait has a deadline. Exits non-zero on a failure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ -z "${BIN_DIR:-}" ]; then
    cargo build --quiet --workspace --manifest-path "$root/Cargo.toml"
fi
need udp-server udp-client udp-broadcast
server=$bin/udp-server
client=$bin/udp-client
bcast=$bin/udp-broadcast
passed=0 failed=0 skipped=0

# check NAME EXPECTED ACTUAL: ACTUAL must contain EXPECTED.
check() {
    if [[ "$3" == *"$2"* ]]; then
        passed=$((passed + 1)); echo "ok    $1"
    else
        failed=$((failed + 1)); echo "FAIL  $1: expected '$2' in: $3"
    fi
}
skip() { skipped=$((skipped + 1)); echo "skip  $1: $2"; }
have() { command -v "$1" >/dev/null 2>&1; }

# bound PORT: waits (5 s at most) until something is bound to UDP 127.0.0.1:PORT.
bound() {
    local i
    for i in $(seq 100); do
        ss -Huln "sport = :$1" 2>/dev/null | grep -q . && return 0
        sleep 0.05
    done
    return 1
}

echo "== our client and our server"
# 1 + 5 + 5000 + 2 datagrams reach this server below; its summary must say so.
start echo "$server" --bind 127.0.0.1:0
addr=$(listening echo)
check "one-shot echo" "$addr  5 B  hello" "$(timeout 10 "$client" "$addr" hello 2>/dev/null)"
wait_for_text "$work/echo.out" "  5 B  hello" || true
check "the server printed it" "  5 B  hello" "$(cat "$work/echo.out")"
check "ping: 5 of 5" "5 sent, 5 received, 0.0% loss" "$(timeout 10 "$client" "$addr" -n 5 -i 20ms 2>&1)"
check "flood: 5000 echoed" '"received":5000' "$(timeout 20 "$client" "$addr" -n 5000 -i 0 --json 2>/dev/null)"
check "interactive: two lines, two echoes" "sent 2 datagrams, received 2" "$(printf 'a\nb\n' | timeout 10 "$client" "$addr" 2>&1)"
check "a second server on the same port is refused" "address already in use" "$(timeout 10 "$server" --bind "$addr" 2>&1 || true)"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
check "SIGTERM prints the summary" "received 5008 datagrams (63950 B) from 4 peers, replied 5008" "$(cat "$work/echo.err")"
closed=$(closed_port=$(free_port); timeout 10 "$client" --timeout 5s "$closed_port" hi 2>&1 || true)
check "nobody listening is said at once" "no one is listening at" "$closed"

echo "== faults injected by the server, counted by the client"
start lossy timeout 30 "$server" --bind 127.0.0.1:0 --drop 0.3 --duplicate 0.1 --seed 7 --json -q
addr=$(listening lossy)
ping=$(timeout 20 "$client" "$addr" -n 50 -i 5ms --json 2>/dev/null | tail -1)
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || true
served=$(tail -1 "$work/lossy.out")
field() { grep -o "\"$1\":[0-9]*" <<<"$2" | cut -d: -f2; }
check "client lost = server dropped" "lost $(field dropped "$served")" "lost $(field lost "$ping")"
check "client duplicates = server duplicated" "dup $(field duplicated "$served")" "dup $(field duplicates "$ping")"

echo "== the chapter's Python programs"
if have python3; then
    start pyserver timeout 20 python3 "$root/scripts/peers/chapter_server.py" 0 1
    addr=$(listening pyserver)
    check "our client, the chapter's server" "hello chapter" "$(timeout 10 "$client" "$addr" hello chapter 2>/dev/null)"
    wait_for_text "$work/pyserver.out" "hello chapter" && check "the chapter's server saw it" "hello chapter" "$(cat "$work/pyserver.out")"
    start counted timeout 20 "$server" --bind 127.0.0.1:0 --count 1
    addr=$(listening counted)
    check "the chapter's client, our server" "你好 from python" \
        "$(timeout 10 python3 "$root/scripts/peers/chapter_client.py" 127.0.0.1 "${addr##*:}" "你好 from python")"
    wait "${pids[-1]}"
    check "our server printed the chapter client's datagram" "  18 B  你好 from python" "$(cat "$work/counted.out")"
else
    skip "the chapter's Python programs" "python3 is not installed"
fi

echo "== broadcast: our programs and the chapter's Python ones"
start listen1 timeout 20 "$bcast" listen --bind 0.0.0.0:0 --count 6
port=$(listening listen1); port=${port##*:}
start listen2 timeout 20 "$bcast" listen --bind "0.0.0.0:$port" --count 6
listening listen2 >/dev/null
timeout 10 "$bcast" send --to "127.255.255.255:$port" --count 3 --interval 20ms "from rust" 2>/dev/null >/dev/null
# The second sender is the chapter's Python broadcaster, or ours again without python3.
if have python3; then
    timeout 10 python3 "$root/scripts/peers/chapter_broadcast_sender.py" "$port" 3
    second="seq=3 AAPL 189.03"
else
    timeout 10 "$bcast" send --to "127.255.255.255:$port" --count 3 --interval 20ms "again" 2>/dev/null >/dev/null
    second="seq=3 session="
    skip "the chapter's Python broadcaster" "python3 is not installed; our sender stands in"
fi
wait "${pids[-2]}" "${pids[-1]}"
check "listener 1 heard our sender" "seq=3 session=" "$(cat "$work/listen1.out")"
check "listener 1 heard the second sender" "$second" "$(cat "$work/listen1.out")"
check "listener 2 heard all six" "received 6 messages from 2 senders: 0 lost" "$(cat "$work/listen2.err")"
if have python3; then
    start pylisten timeout 20 python3 "$root/scripts/peers/chapter_broadcast_listener.py" 0 2
    port=$(listening pylisten); port=${port##*:}
    timeout 10 "$bcast" send --to "127.255.255.255:$port" --count 2 --interval 20ms "to python" 2>/dev/null >/dev/null
    wait "${pids[-1]}"
    check "a plain Python listener hears our sender" "seq=2 session=" "$(cat "$work/pylisten.out")"
fi

echo "== nc -u (netcat-openbsd)"
if have nc && have ss; then
    start ncpeer "$server" --bind 127.0.0.1:0
    addr=$(listening ncpeer)
    check "nc -u sends, our server echoes" "hi from nc" "$(printf 'hi from nc' | timeout 10 nc -u -w1 127.0.0.1 "${addr##*:}")"
    port=$(free_port)
    start nclisten nc -u -l 127.0.0.1 "$port"
    bound "$port"
    timeout 10 "$client" --no-reply "$port" "hi nc, from udp-client" 2>/dev/null
    wait_for_text "$work/nclisten.out" "hi nc" || true
    check "nc -u -l receives our datagram" "hi nc, from udp-client" "$(cat "$work/nclisten.out")"
    # --crlf: nc -u -l gets the bytes 41 54 0d 0a.
    port=$(free_port)
    start nccrlf nc -u -l 127.0.0.1 "$port"
    bound "$port"
    timeout 10 "$client" --no-reply --crlf "$port" AT 2>/dev/null
    wait_for_text "$work/nccrlf.out" "AT" || true
    check "nc -u -l receives AT\\r\\n from --crlf" "41 54 0d 0a" "$(od -An -tx1 "$work/nccrlf.out" | tr -s ' \n' ' ')"
    # --bind: nc -u -p PORT talks to a client bound to a port of our choosing, and back.
    cport=$(free_port); cport=${cport##*:}; nport=$(free_port); nport=${nport##*:}
    mkfifo "$work/toclient"
    exec 9<>"$work/toclient"   # the client's stdin, held open (read-write: opening it does not block)
    # (Not through `start`: a background job's stdin is /dev/null unless redirected on it.)
    "$client" --bind "$cport" "$nport" --timeout 1s <"$work/toclient" >"$work/bound_client.out" 2>"$work/bound_client.err" &
    pids+=("$!")
    wait_for_text "$work/bound_client.err" "bound with --bind" || true
    start ncbound sh -c "(echo 'from nc'; sleep 2) | timeout 5 nc -u -w1 -p $nport 127.0.0.1 $cport"
    wait_for_text "$work/bound_client.out" "from nc" || true
    echo "from udp-client" >&9
    wait_for_text "$work/ncbound.out" "from udp-client" || true
    exec 9>&-
    check "nc -u -p reaches a client bound with --bind" "127.0.0.1:$nport  8 B  from nc" "$(cat "$work/bound_client.out")"
    check "the bound client reaches nc -u -p" "from udp-client" "$(cat "$work/ncbound.out")"
else
    skip "nc -u" "nc or ss is not installed (apt-get install netcat-openbsd iproute2)"
fi

echo "== on a terminal (tmux): --graph draws bars and loss marks, a flood shows its progress"
if have tmux; then
    start graphsrv "$server" --bind 127.0.0.1:0 -q --drop 0.2 --seed 4
    gaddr=$(listening graphsrv)
    session="udp-e2e-$$"
    tmux new-session -d -s "$session" -x 120 -y 20 \
        "$client $gaddr --count 40 --interval 20ms --timeout 200ms --graph; sleep 10"
    for i in $(seq 100); do
        tmux capture-pane -p -t "$session" | grep -q "ping statistics" && break
        sleep 0.1
    done
    pane=$(tmux capture-pane -p -t "$session")
    tmux kill-session -t "$session"
    check "--graph: the legend" "one bar per reply, in ms:" "$pane"
    check "--graph: bars" "▂" "$(grep -v 'one bar per reply' <<<"$pane")"
    check "--graph: a mark per lost request (--drop 0.2)" "✗" "$(grep -v 'one bar per reply' <<<"$pane")"
    tmux new-session -d -s "$session" -x 120 -y 10 "$client $gaddr --count 2000000 --interval 0 --no-reply -q; sleep 10"
    progress=""
    for i in $(seq 50); do
        progress=$(tmux capture-pane -p -t "$session" | grep "datagrams sent" || true)
        [ -n "$progress" ] && break
        sleep 0.1
    done
    tmux kill-session -t "$session"
    check "a flood's progress line on a terminal" "/2000000 datagrams sent" "$progress"
else
    skip "--graph and progress on a terminal" "tmux is not installed (apt-get install tmux; .ci/run does)"
fi

echo "== socat"
if have socat && have ss; then
    start socatpeer "$server" --bind 127.0.0.1:0
    addr=$(listening socatpeer)
    check "socat sends, our server echoes" "hi from socat" \
        "$(printf 'hi from socat' | timeout 10 socat -t 1 - "UDP4:$addr")"
    port=$(free_port)
    start socatecho socat "UDP4-RECVFROM:$port,bind=127.0.0.1,fork" PIPE
    bound "$port"
    check "our client, socat's echo" "127.0.0.1:$port  8 B  hi socat" "$(timeout 10 "$client" "$port" hi socat 2>/dev/null)"
    check "ping through socat: 5 of 5" "5 sent, 5 received" "$(timeout 10 "$client" "$port" -n 5 -i 50ms 2>&1)"
else
    skip "socat" "socat or ss is not installed (apt-get install socat iproute2)"
fi

echo "e2e: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
