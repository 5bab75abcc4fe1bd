# The chapter's UDP client, as the textbook writes it: socket, sendto, recvfrom, close, line
# for line beside crates/udp-client/examples/chapter_client.rs. No bind: the OS picks the
# client's port. As the Rust: HOST PORT MESSAGE (default 127.0.0.1 8888 hello), a 5-second
# timeout so a lost reply cannot hang a script, and one line on an error, with exit code 1
# (2 for a bad command line).
# Usage: python3 chapter_client.py HOST PORT MESSAGE
import signal
import socket
import sys


def number(i, default):
    """sys.argv[i] as a port (0..65535, like the Rust u16), or None if it is not one."""
    text = sys.argv[i] if len(sys.argv) > i else str(default)
    return int(text) if text.isascii() and text.isdigit() and int(text) < 65536 else None


def fail(code, line):
    """One plain line on stderr, instead of a traceback, and the exit code."""
    print(line, file=sys.stderr)
    sys.exit(code)


host = sys.argv[1] if len(sys.argv) > 1 else '127.0.0.1'
port = number(2, 8888)
message = sys.argv[3] if len(sys.argv) > 3 else 'hello'
if port is None or len(sys.argv) > 4 or host.startswith('-'):
    fail(2, 'usage: chapter_client.py HOST PORT MESSAGE')
to = '%s:%d' % (host, port)
signal.signal(signal.SIGINT, signal.SIG_DFL)                  # Ctrl-C stops it, as it stops the Rust one
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)      # 1. socket()
sock.settimeout(5)
try:
    sock.sendto(message.encode('utf-8'), (host, port))        # 2. sendto()
except OSError as e:
    fail(1, 'cannot send to %s: %s' % (to, (e.strerror or str(e)).lower()))
try:
    data, addr = sock.recvfrom(1024)                          # 3. recvfrom()
except OSError:                                               # the timeout (or, on Windows, nothing listens)
    fail(1, 'no reply within 5 s: is a server running on %s?' % to)
print(data.decode('utf-8', 'replace'))
sock.close()                                                  # 4. close()
