# A broadcast listener written the chapter's way: socket, bind(('', PORT)), recvfrom, close,
# line for line beside the listener in crates/udp-broadcast/examples/chapter_broadcast.rs.
# It prints COUNT messages (default 10), then stops; PORT (default 7788) 0 picks a free port,
# printed first. An error is one line, and exit code 1 (2 for a bad command line).
# Usage: python3 chapter_broadcast_listener.py [PORT [COUNT]]
import signal
import socket
import sys


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
    fail(2, 'usage: chapter_broadcast_listener.py [PORT [COUNT]]')
at = '0.0.0.0:%d' % port
signal.signal(signal.SIGINT, signal.SIG_DFL)                  # Ctrl-C stops it, as it stops the Rust one
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)      # 1. socket()
try:
    sock.bind(('', port))                                     # 2. bind() to every address
except OSError as e:
    fail(1, 'cannot bind %s: %s' % (at, (e.strerror or str(e)).lower()))
print('listening on 0.0.0.0:%d' % sock.getsockname()[1], flush=True)
for _ in range(count):
    try:
        data, addr = sock.recvfrom(65535)                     # 3. recvfrom()
    except OSError as e:
        fail(1, 'cannot receive on %s: %s' % (at, (e.strerror or str(e)).lower()))
    print(data.decode('utf-8', 'replace'), flush=True)
sock.close()                                                  # 4. close()
