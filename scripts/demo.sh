#!/usr/bin/env bash
# The paired demos a learner runs, each bounded in time; about 9 seconds in all.
# Everything stays on 127.0.0.1; the server is started here and killed by its PID.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ -z "${BIN_DIR:-}" ]; then
    cargo build --quiet --workspace --manifest-path "$root/Cargo.toml"
fi
need udp-server udp-client udp-broadcast udp-relay
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }

step "A server binds a port and waits" "udp-server --bind 127.0.0.1:0"
start server "$bin/udp-server" --bind 127.0.0.1:0
addr=$(listening server)
cat "$work/server.out" "$work/server.err"

step "Echo: the client sends one datagram and prints the reply" "udp-client $addr hello"
timeout 10 "$bin/udp-client" "$addr" hello

step "Chat: each line typed is one datagram; replies print as they arrive" "udp-client $addr"
{ echo "hi server"; sleep 0.5; echo "how are you?"; sleep 0.5; echo "你好"; } | timeout 10 "$bin/udp-client" "$addr"

step "Ping: numbered datagrams, round-trip times, a summary" "udp-client $addr --count 5 --interval 200ms"
timeout 10 "$bin/udp-client" "$addr" --count 5 --interval 200ms

nobody=127.0.0.1:$(free_port)
step "Nobody listening: the client is told at once (ICMP port unreachable)" "udp-client $nobody hello"
timeout 10 "$bin/udp-client" "$nobody" hello || echo "(exit code $?)"

step "What the server saw (Ctrl-C or SIGTERM prints its summary)" "kill -TERM <server pid>"
kill -TERM "${pids[0]}"
wait "${pids[0]}" || true
cat "$work/server.out"
tail -1 "$work/server.err"

step "Watch UDP lose messages: a server that drops, duplicates and reorders on purpose" \
    "udp-server --drop 0.2 --duplicate 0.2 --reorder 0.2 --seed 6 & udp-client --count 12 --interval 50ms"
start lossy timeout 20 "$bin/udp-server" --bind 127.0.0.1:0 --drop 0.2 --duplicate 0.2 --reorder 0.2 --seed 6
addr=$(listening lossy)
timeout 10 "$bin/udp-client" "$addr" --count 12 --interval 50ms 2>&1 | grep -v "sending to" || true
kill -TERM "${pids[-1]}"
wait "${pids[-1]}" || true
tail -1 "$work/lossy.err"

step "A bad network between two programs: a relay that loses requests and delays replies" \
    "udp-relay --to SERVER --up-drop 0.2 --down-delay 20ms..80ms --seed 4 & udp-client RELAY --count 8 --interval 100ms"
start upstream timeout 20 "$bin/udp-server" --bind 127.0.0.1:0 -q
server=$(listening upstream)
start relay timeout 20 "$bin/udp-relay" --bind 127.0.0.1:0 --to "$server" --up-drop 0.2 --down-delay 20ms..80ms --seed 4
relay=$(listening relay)
timeout 10 "$bin/udp-client" "$relay" --count 8 --interval 100ms 2>&1 | grep -v "sending to" || true
echo "-- the chapter's own Python client, through the same relay:"
timeout 10 python3 "$root/scripts/peers/chapter_client.py" 127.0.0.1 "${relay##*:}" "hello from Python" || echo "(lost on the way: exit code $?)"
kill -TERM "${pids[-1]}"
wait "${pids[-1]}" || true
echo "-- what the relay saw ('>' up to the server, '<' down to the client; the same seed, the same losses):"
cat "$work/relay.out"
grep "udp-relay: " "$work/relay.err" | grep -v "injecting\|only programs\|relaying to" || true

step "Chat: two clients, each bound to a port of its own (NetAssist's local port)" \
    "udp-client --bind A B   and   udp-client --bind B A"
a=$(free_port); b=$(free_port)
{ sleep 0.3; echo "hello from A"; sleep 0.5; } | timeout 5 "$bin/udp-client" --bind "$a" "$b" --timeout 300ms >"$work/chat_a.out" 2>/dev/null &
pids+=("$!")
{ sleep 0.5; echo "hi from B"; sleep 0.3; } | timeout 5 "$bin/udp-client" --bind "$b" "$a" --timeout 300ms >"$work/chat_b.out" 2>/dev/null &
pids+=("$!")
wait "${pids[-2]}" "${pids[-1]}" || true
echo "-- A saw:"; cat "$work/chat_a.out"
echo "-- B saw:"; cat "$work/chat_b.out"

step "A file across UDP: whole on loopback, with holes through --drop" \
    "udp-server --reply none --save OUT & udp-client --file FILE --no-reply"
head -c 200000 /dev/urandom >"$work/file.bin"
chunks=$(( (200000 + 1471) / 1472 ))   # the server stops once every chunk has arrived
for drop in 0 0.05; do
    start "file$drop" timeout 20 "$bin/udp-server" --bind 127.0.0.1:0 --reply none -q --drop "$drop" --seed 3 \
        --count "$chunks" --save "$work/saved$drop.bin"
    addr=$(listening "file$drop")
    timeout 10 "$bin/udp-client" "$addr" --file "$work/file.bin" --no-reply 2>/dev/null
    wait "${pids[-1]}" || true
    if cmp -s "$work/file.bin" "$work/saved$drop.bin"; then same="identical"; else same="DIFFERENT"; fi
    echo "--drop $drop: sent $(wc -c <"$work/file.bin") B, saved $(wc -c <"$work/saved$drop.bin") B: $same"
done

step "A device before the device exists: a sensor made of rules" \
    "udp-server --rules scripts/rules/sensor.rules --max-reply-ratio 4"
start sensor timeout 20 "$bin/udp-server" --bind 127.0.0.1:0 --rules "$root/scripts/rules/sensor.rules" --max-reply-ratio 4 -q
addr=$(listening sensor)
for question in PING "READ TEMP" "SET LED=ON"; do
    timeout 10 "$bin/udp-client" "$addr" "$question" 2>/dev/null
done
echo "-- and a Modbus slave (hex, CRC-16/MODBUS checked and appended by both sides):"
start slave timeout 20 "$bin/udp-server" --bind 127.0.0.1:0 -e hex --checksum crc16-modbus --rules "$root/scripts/rules/modbus.rules" -q
addr=$(listening slave)
timeout 10 "$bin/udp-client" "$addr" -e hex --checksum crc16-modbus "01 03 00 00 00 01" 2>/dev/null

step "Test a device: a script of sends and expectations, every reply checked" \
    "udp-server --rules scripts/rules/at.rules & udp-client --script scripts/at-session.script"
start atdev timeout 20 "$bin/udp-server" --bind 127.0.0.1:0 --escapes --max-reply-ratio 8 --rules "$root/scripts/rules/at.rules" -q
addr=$(listening atdev)
timeout 20 "$bin/udp-client" --script "$root/scripts/at-session.script" --escapes "$addr" 2>&1 | grep -v "sending to" | tail -6 || true
echo "-- and a Modbus poll (each request with its CRC; the patterns are written without one):"
start mbdev timeout 20 "$bin/udp-server" --bind 127.0.0.1:0 -e hex --checksum crc16-modbus --rules "$root/scripts/rules/modbus.rules" -q
addr=$(listening mbdev)
timeout 20 "$bin/udp-client" --script "$root/scripts/modbus-poll.script" -e hex --checksum crc16-modbus "$addr" 2>&1 | grep -v "sending to" | tail -4 || true

step "Find devices: one probe, every responder" \
    "udp-server --reuse --answer-broadcasts --rule 'who=>…' (twice) & udp-client --broadcast 127.255.255.255:PORT who"
start dev1 timeout 20 "$bin/udp-server" --bind 0.0.0.0:0 --reuse --answer-broadcasts --max-reply-ratio 4 --rule "who=>sensor 1" -q
port=$(listening dev1); port=${port##*:}
start dev2 timeout 20 "$bin/udp-server" --bind "0.0.0.0:$port" --reuse --answer-broadcasts --max-reply-ratio 4 --rule "who=>sensor 2" -q
listening dev2 >/dev/null
timeout 10 "$bin/udp-client" --broadcast "127.255.255.255:$port" who --timeout 500ms 2>&1 | grep -v "listing every reply" || true

step "Broadcast: one sender, two listeners on one port, and a board" \
    "udp-broadcast listen & udp-broadcast listen --board & udp-broadcast send --feed quotes --count 8"
start listener timeout 20 "$bin/udp-broadcast" listen --bind 0.0.0.0:0 --count 8
port=$(listening listener); port=${port##*:}
start board timeout 20 "$bin/udp-broadcast" listen --bind "0.0.0.0:$port" --count 8 --board
listening board >/dev/null
timeout 10 "$bin/udp-broadcast" send --to "127.255.255.255:$port" --feed quotes --count 8 --interval 100ms 2>/dev/null >/dev/null
wait "${pids[-2]}" "${pids[-1]}" || true
echo "-- listener 1: every message"
cat "$work/listener.out"
echo "-- listener 2: the board (the latest price per symbol; one line per update when not a terminal)"
cat "$work/board.out"
