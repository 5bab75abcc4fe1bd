#!/usr/bin/env bash
# The Windows builds, run where the chapter's readers run them: built for
# x86_64-pc-windows-gnu with mingw-w64, started under Wine on loopback, and paired with real
# Linux peers (the chapter's Python client, nc -u, the Linux programs). Installs mingw-w64 and
# Wine when it is root with apt-get; otherwise it skips with one loud line. Every process is
# killed by PID (and this script's own Wine server by its prefix); every wait has a deadline.
#   scripts/windows.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
target=x86_64-pc-windows-gnu
passed=0 failed=0

skip_all() {
    echo "windows: SKIPPED, NOTHING CHECKED: $1"
    exit 0
}

# Tools: the target, the mingw-w64 linker, Wine (Debian puts wine64 outside PATH).
rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target" >/dev/null 2>&1 \
    || skip_all "rustup cannot add $target"
wine=/usr/lib/wine/wine64
if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || [ ! -x "$wine" ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "windows: installing gcc-mingw-w64-x86-64 and wine64 (about two minutes)"
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-mingw-w64-x86-64 wine64 >/dev/null 2>&1 \
            || skip_all "apt-get could not install gcc-mingw-w64-x86-64 and wine64"
    else
        skip_all "needs gcc-mingw-w64-x86-64 and wine64 (apt-get install them as root)"
    fi
fi
[ -x "$wine" ] || skip_all "wine64 is installed but $wine is missing"

# Build: the Linux programs (the peers) and the Windows ones.
cargo build --quiet --workspace --manifest-path "$root/Cargo.toml"
cargo build --quiet --workspace --bins --target "$target" --manifest-path "$root/Cargo.toml" \
    --config "target.$target.linker=\"x86_64-w64-mingw32-gcc\""
exe=$target_dir/$target/debug
linux=$target_dir/debug

# Wine 8 has no bcryptprimitives.dll, whose ProcessPrng Rust's std imports: a ten-line shim
# next to the .exe files hands the call to RtlGenRandom (advapi32's SystemFunction036).
cat >"$work/shim.c" <<'EOF'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) { return SystemFunction036(data, (ULONG)len); }
EOF
x86_64-w64-mingw32-gcc -shared -o "$exe/bcryptprimitives.dll" "$work/shim.c" -ladvapi32

export WINEPREFIX=$work/wine WINEDEBUG=-all
stop_wine() { "$(dirname "$wine")/wineserver" -k 2>/dev/null || true; }
trap 'stop_wine; cleanup' EXIT
timeout 120 "$wine" wineboot --init >/dev/null 2>&1 || skip_all "wineboot could not make a Wine prefix"

# check NAME EXPECTED ACTUAL: ACTUAL must contain EXPECTED.
check() {
    if [[ "$3" == *"$2"* ]]; then
        passed=$((passed + 1)); echo "ok    $1"
    else
        failed=$((failed + 1)); echo "FAIL  $1: expected '$2' in: $3"
    fi
}
# code NAME EXPECTED CMD...: CMD's exit code must be EXPECTED.
code() {
    local name=$1 want=$2 got=0; shift 2
    "$@" >/dev/null 2>&1 || got=$?
    check "$name" "exit $want" "exit $got"
}

echo "== udp-server.exe, with the chapter's Python client and nc -u"
start wserver "$wine" "$exe/udp-server.exe" --bind 127.0.0.1:0
addr=$(listening wserver); port=${addr##*:}
check "server.exe answers the chapter's Python client" "hello from python" \
    "$(timeout 10 python3 "$root/scripts/peers/chapter_client.py" 127.0.0.1 "$port" 'hello from python' 2>&1)"
if command -v nc >/dev/null 2>&1; then
    check "server.exe answers nc -u" "hi nc" "$(printf 'hi nc' | timeout 5 nc -u -w1 127.0.0.1 "$port" 2>&1 || true)"
else
    check "server.exe answers nc -u (nc is not installed)" "nc" "missing"
fi
check "server.exe printed the datagram" "  17 B  hello from python" "$(cat "$work/wserver.out")"

echo "== udp-server.exe --encoding gbk shows Chinese from a GBK datagram"
start wgbk "$wine" "$exe/udp-server.exe" --bind 127.0.0.1:0 --encoding gbk --count 1
gaddr=$(listening wgbk)
python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto('你好'.encode('gbk'), ('127.0.0.1', int(sys.argv[1])))" "${gaddr##*:}"
wait_for_text "$work/wgbk.out" "你好" || true
check "GBK bytes c4e3 bac3 shown as 你好" "  4 B  你好" "$(cat "$work/wgbk.out")"

echo "== udp-client.exe against the Linux udp-server"
start lserver "$linux/udp-server" --bind 127.0.0.1:0
laddr=$(listening lserver)
check "one-shot: the reply line" "$laddr  5 B  hello  rtt " "$(timeout 20 "$wine" "$exe/udp-client.exe" "$laddr" hello 2>&1)"
code "one-shot: exit 0 on a reply" 0 timeout 20 "$wine" "$exe/udp-client.exe" "$laddr" hello
check "--count 5: the ping summary" "5 sent, 5 received, 0.0% loss" \
    "$(timeout 30 "$wine" "$exe/udp-client.exe" "$laddr" --count 5 --interval 50ms 2>&1)"
check "interactive: two lines from a pipe, two echoes" "sent 2 datagrams, received 2" \
    "$(printf 'one\ntwo\n' | timeout 20 "$wine" "$exe/udp-client.exe" "$laddr" 2>&1)"
json=$(timeout 20 "$wine" "$exe/udp-client.exe" "$laddr" --count 3 --interval 20ms --json 2>/dev/null || true)
check "--json: every line parses, the last is the summary" "summary 3 3" \
    "$(python3 -c 'import json,sys; l=[json.loads(x) for x in sys.stdin.read().splitlines()]; print(l[-1]["event"], l[-1]["sent"], l[-1]["received"])' <<<"$json" 2>&1)"
code "bad usage: exit 2" 2 timeout 20 "$wine" "$exe/udp-client.exe" --count x
code "no reply (Wine reports no ICMP): exit 1" 1 timeout 20 "$wine" "$exe/udp-client.exe" "$(free_port)" hi --timeout 500ms

echo "== udp-broadcast.exe on 127.255.255.255 with the Linux one"
start wlisten "$wine" "$exe/udp-broadcast.exe" listen --bind 0.0.0.0:0 --count 2
waddr=$(listening wlisten)
"$linux/udp-broadcast" send --to "127.255.255.255:${waddr##*:}" --count 2 --interval 50ms quote >/dev/null 2>&1
wait_for_text "$work/wlisten.out" "seq=2" || true
check "listen.exe hears the Linux sender's broadcast" "seq=2" "$(cat "$work/wlisten.out")"
start llisten "$linux/udp-broadcast" listen --bind 0.0.0.0:0 --count 2
lport=$(listening llisten); lport=${lport##*:}
timeout 20 "$wine" "$exe/udp-broadcast.exe" send --to "127.255.255.255:$lport" --count 2 --interval 50ms quote >/dev/null 2>&1 || true
wait_for_text "$work/llisten.out" "seq=2" || true
check "send.exe's broadcast reaches the Linux listener" "seq=2" "$(cat "$work/llisten.out")"

echo "== --timestamp is local time (TZ=Asia/Shanghai: UTC+8)"
start wtime env TZ=Asia/Shanghai "$wine" "$exe/udp-server.exe" --bind 127.0.0.1:0 --json --timestamp --count 1
taddr=$(listening wtime)
python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'when', ('127.0.0.1', int(sys.argv[1])))" "${taddr##*:}"
wait_for_text "$work/wtime.out" '"time"' || true
time=$(grep -o '"time":"[^"]*"' "$work/wtime.out" || true)
check "the offset is +08:00" "+08:00" "$time"
# The hour, as UTC + 8 now (or a moment ago, should the hour have turned since).
hours=$(for t in now '-1 minute'; do printf '%02d ' $(( (10#$(date -u -d "$t" +%H) + 8) % 24 )); done)
hour=$(sed -n 's/.*T\([0-9][0-9]\):.*/\1/p' <<<"$time")
check "the hour is UTC + 8 ($hours)" "${hour:-no hour}" "$hours"

echo "windows: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
