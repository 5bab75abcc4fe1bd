# A broadcaster written the chapter's way: socket, setsockopt(SO_BROADCAST), sendto, close,
# line for line beside the sender in crates/udp-broadcast/examples/chapter_broadcast.rs.
# It sends COUNT numbered messages (default 10) to 127.255.255.255 (this machine only) on
# PORT (default 7788). An error is one line, and exit code 1 (2 for a bad command line).
# Usage: python3 chapter_broadcast_sender.py [PORT [COUNT]]
import socket
import sys
import time


def number(i, default):
    """sys.argv[i] as a port or a count (0..65535, like the Rust u16), or None if it is not one."""
    text = sys.argv[i] if len(sys.argv) > i else str(default)
    return int(text) if text.isascii() and text.isdigit() and int(text) < 65536 else None


def fail(code, line):
    """One plain line on stderr, instead of a traceback, and the exit code."""
    print(line, file=sys.stderr)
    sys.exit(code)


port, count = number(1, 7788), number(2, 10)
if port is None or count is None or len(sys.argv) > 3:
    fail(2, 'usage: chapter_broadcast_sender.py [PORT [COUNT]]')
to = '127.255.255.255:%d' % port
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)             # 1. socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)          # 2. allow broadcast, or EACCES
for n in range(1, count + 1):
    try:
        sock.sendto(('seq=%d AAPL %.2f' % (n, 189 + n / 100)).encode(), ('127.255.255.255', port))  # 3. sendto()
    except OSError as e:
        fail(1, 'cannot send to %s: %s' % (to, (e.strerror or str(e)).lower()))
    time.sleep(0.02)
sock.close()                                                        # 4. close()
