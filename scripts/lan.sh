#!/usr/bin/env bash
# A small LAN on one machine: three hosts (network namespaces h1, h2, h3 with 10.99.0.1-3/24)
# on a bridge in a fourth namespace. Shows the programs across real interfaces: a broadcast
# from h1 (to 255.255.255.255 and to the subnet's 10.99.0.255) reaching h2 and h3, a client
# on h3 talking to `udp-server --bind 0.0.0.0` on h2, and IPv4 and IPv6 multicast from h1
# to h2, and a client on h1 reaching a server on h3 through `udp-relay` on h2 that loses
# datagrams on the way. Everything it sends stays inside the namespaces it made, and it removes them on
# exit. Without root or `ip netns`, it says why and exits 0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "lan: skipped: creating network namespaces needs root"; exit 0
fi
if ! command -v ip >/dev/null 2>&1; then
    echo "lan: skipped: the ip command is missing (apt-get install iproute2)"; exit 0
fi
tag="ul$$"
if ! ip netns add "${tag}sw" 2>/dev/null; then
    echo "lan: skipped: this machine does not allow network namespaces (ip netns add failed)"; exit 0
fi
lan_cleanup() {
    cleanup
    for ns in "${tag}sw" "${tag}h1" "${tag}h2" "${tag}h3"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap lan_cleanup EXIT
if [ -z "${BIN_DIR:-}" ]; then
    cargo build --quiet --workspace --manifest-path "$root/Cargo.toml"
fi
need udp-server udp-client udp-broadcast udp-relay

# The switch: a bridge, forwarding at once (no STP delay).
ip -n "${tag}sw" link add br0 type bridge forward_delay 0
ip -n "${tag}sw" link set br0 up
for i in 1 2 3; do
    h="${tag}h$i"
    ip netns add "$h"
    # A cable: one end (port$i) in the switch, the other (eth0) in the host. Both ends are
    # created inside the namespaces; nothing touches this machine's own interfaces.
    ip link add "port$i" netns "${tag}sw" type veth peer name eth0 netns "$h"
    ip -n "${tag}sw" link set "port$i" master br0 up
    # No duplicate address detection, so IPv6 link-local addresses are usable at once.
    ip netns exec "$h" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
    ip -n "$h" addr add "10.99.0.$i/24" dev eth0
    ip -n "$h" link set lo up
    ip -n "$h" link set eth0 up
    # 255.255.255.255 leaves through the default route: here, this host's only cable.
    ip -n "$h" route add default dev eth0
done
on() { local h="${tag}$1"; shift; ip netns exec "$h" "$@"; }
# Every process started below is wrapped in `timeout`, so a lost datagram cannot hang a wait.

passed=0 failed=0
check() {
    if [[ "$3" == *"$2"* ]]; then passed=$((passed + 1)); echo "ok    $1"
    else failed=$((failed + 1)); echo "FAIL  $1: expected '$2' in: $3"; fi
}

echo "== a broadcast from h1 reaches h2 and h3"
start b2 on h2 timeout 20 "$bin/udp-broadcast" listen --count 2
start b3 on h3 timeout 20 "$bin/udp-broadcast" listen --count 2
listening b2 >/dev/null && listening b3 >/dev/null
on h1 "$bin/udp-broadcast" send --to 255.255.255.255:7788 --count 1 "to every host" >/dev/null 2>&1
on h1 "$bin/udp-broadcast" send --to 10.99.0.255:7788 --count 1 "to the subnet" >/dev/null 2>&1
wait "${pids[-2]}" "${pids[-1]}" || true
for h in b2 b3; do
    check "$h: limited broadcast (255.255.255.255) from h1" "10.99.0.1:" "$(grep 'to every host' "$work/$h.out" || true)"
    check "$h: directed broadcast (10.99.0.255) from h1" "seq=1" "$(grep 'to the subnet' "$work/$h.out" || true)"
done

echo "== a client on h3, a server on h2 bound to 0.0.0.0"
start server on h2 timeout 20 "$bin/udp-server" --bind 0.0.0.0:8888 --count 1
listening server >/dev/null
check "h3 gets the echo from h2" "10.99.0.2:8888  14 B  across the LAN" \
    "$(on h3 timeout 10 "$bin/udp-client" 10.99.0.2:8888 across the LAN 2>/dev/null)"
wait "${pids[-1]}" || true
check "h2 saw h3's address" "10.99.0.3:" "$(cat "$work/server.out")"

echo "== one probe from h1 finds the devices on h2 and h3 (udp-client --broadcast)"
start dev2 on h2 timeout 20 "$bin/udp-server" --bind 0.0.0.0:8266 --answer-broadcasts --max-reply-ratio 4 --rule "who=>sensor on h2" --count 1
start dev3 on h3 timeout 20 "$bin/udp-server" --bind 0.0.0.0:8266 --answer-broadcasts --max-reply-ratio 4 --rule "who=>sensor on h3" --count 1
listening dev2 >/dev/null && listening dev3 >/dev/null
probe=$(on h1 timeout 10 "$bin/udp-client" --broadcast 10.99.0.255:8266 "who" --timeout 1s 2>&1 || true)
wait "${pids[-2]}" "${pids[-1]}" || true
check "h2 answers the probe from its own address" "10.99.0.2:8266  12 B  sensor on h2" "$probe"
check "h3 answers the probe from its own address" "10.99.0.3:8266  12 B  sensor on h3" "$probe"
check "the probe counts two responders" "2 replies from 2 responders" "$probe"

echo "== multicast from h1 to h2 (IPv4 and IPv6, on eth0)"
start m4 on h2 timeout 20 "$bin/udp-broadcast" listen --bind 0.0.0.0:7790 --group 239.1.2.3 --interface 10.99.0.2 --count 1
start m6 on h2 timeout 20 "$bin/udp-broadcast" listen --bind "[::]:7791" --group ff02::4242 --interface eth0 --count 1
listening m4 >/dev/null && listening m6 >/dev/null
on h1 "$bin/udp-broadcast" send --to 239.1.2.3:7790 --interface 10.99.0.1 --count 1 "ipv4 group" >/dev/null 2>&1
on h1 "$bin/udp-broadcast" send --to "[ff02::4242]:7791" --interface eth0 --count 1 "ipv6 group" >/dev/null 2>&1
wait "${pids[-2]}" "${pids[-1]}" || true
check "IPv4 group 239.1.2.3 joined on h2" "ipv4 group" "$(cat "$work/m4.out")"
check "IPv6 group ff02::4242 joined on h2's eth0" "ipv6 group" "$(cat "$work/m6.out")"
check "IPv6 multicast comes from h1's link-local address" "[fe80::" "$(cat "$work/m6.out")"

echo "== a client on h1, a relay on h2 that loses 30% going up, a server on h3"
# Started with ip netns exec itself, not the `on` function: the PID to stop must be the
# program's (through timeout), not a subshell's.
start rserver ip netns exec "${tag}h3" timeout 20 "$bin/udp-server" --bind 0.0.0.0:8888 --json
start relay ip netns exec "${tag}h2" timeout 20 "$bin/udp-relay" --bind 0.0.0.0:9000 --allow 10.99.0.1 --to 10.99.0.3:8888 \
    --up-drop 0.3 --seed 5 --json
listening rserver >/dev/null && listening relay >/dev/null
ping=$(on h1 timeout 20 "$bin/udp-client" 10.99.0.2:9000 --count 20 --interval 20ms --timeout 1s --json -q 2>/dev/null | tail -1)
# h3 is not in --allow: the relay refuses it (and counts it), the client hears nothing.
on h3 timeout 10 "$bin/udp-client" 10.99.0.2:9000 "not allowed" --timeout 500ms >/dev/null 2>&1 || true
kill -TERM "${pids[-1]}" "${pids[-2]}" 2>/dev/null || true
wait "${pids[-1]}" "${pids[-2]}" || true
relay_sum=$(grep '"summary"' "$work/relay.out" || true)
server_sum=$(grep '"summary"' "$work/rserver.out" || true)
field() { grep -o "\"$1\":{[^}]*}" <<<"$2" | grep -o "\"$3\":[0-9]*" | cut -d: -f2; }
top() { grep -o "\"$1\":[0-9]*" <<<"$2" | head -1 | cut -d: -f2; }
# Without both summaries the equalities below would compare nothing with nothing.
check "the relay stopped by SIGTERM with its summary" '"event":"summary"' "$relay_sum"
check "the server stopped by SIGTERM with its summary" '"event":"summary"' "$server_sum"
check "the relay lost some requests going up (seeded)" "dropped" "$(field up "$relay_sum" dropped | grep -v '^0$' | sed 's/^/dropped /')"
check "the server received what the relay forwarded up" "received=$(field up "$relay_sum" forwarded)" "received=$(top received "$server_sum")"
check "h1 received what the relay sent down" "received=$(field down "$relay_sum" forwarded)" "received=$(top received "$ping")"
check "h1's losses are the relay's drops" "lost=$(field up "$relay_sum" dropped)" "lost=$(top lost "$ping")"
check "the server saw the relay (h2), not the client" '"peer":"10.99.0.2:' "$(grep -m1 '"event":"recv"' "$work/rserver.out" || true)"
check "the relay refused h3 (outside --allow)" '"not_allowed":1' "$relay_sum"
check "the relay's lines show h1 going up" '"direction":"up"' "$(grep -m1 '"client":"10.99.0.1:' "$work/relay.out" || true)"

echo "== the UDP checksum on the wire (h1 to h2) is the one --show-header computes"
# Checksum offload would leave the field for a network card to fill; with it off on h1's
# eth0 the kernel computes the RFC 768 checksum itself, and a raw socket on h2 sees it.
if ! command -v ethtool >/dev/null 2>&1; then
    echo "skip  checksum on the wire: ethtool is missing (apt-get install ethtool; .ci/run does)"
elif ! command -v python3 >/dev/null 2>&1; then
    echo "skip  checksum on the wire: python3 is missing (the capture is a Python raw socket)"
else
    on h1 ethtool -K eth0 tx off >/dev/null 2>&1
    start cap on h2 timeout 20 python3 "$root/scripts/peers/capture_udp.py" 8899
    start hdr on h2 timeout 20 "$bin/udp-server" --bind 0.0.0.0:8899 --show-header --json --reply none --count 1
    wait_for_text "$work/cap.out" ready
    listening hdr >/dev/null
    on h1 timeout 10 "$bin/udp-client" --no-reply 10.99.0.2:8899 hello >/dev/null 2>&1
    wait "${pids[-2]}" "${pids[-1]}" || true
    wire=$(grep -o 'checksum 0x[0-9a-f]*' "$work/cap.out" | cut -d' ' -f2 || true)
    check "captured: 5 bytes + 8 = length 13" "length 13" "$(cat "$work/cap.out")"
    check "--show-header's checksum equals the captured $wire" "\"checksum\":\"${wire:-none}\"" "$(cat "$work/hdr.out")"
    check "--show-header's length is 13" '"length":13' "$(cat "$work/hdr.out")"
fi

echo "lan: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
