# The chapter's UDP server, as the textbook writes it: socket, bind, recvfrom, sendto, close,
# line for line beside crates/udp-server/examples/chapter_server.rs. As the Rust: optional
# PORT (default 8888; 0 = any free port, printed as "listening on IP:PORT") and COUNT (stop
# after COUNT datagrams; 0, the default, = never); each datagram is printed as it arrives;
# an error is one line, and exit code 1 (2 for a bad command line).
# Usage: python3 chapter_server.py [PORT [COUNT]]
# On Windows the chapter's server, exactly as written, dies after answering a client that
# has gone: Windows reports the ICMP "port unreachable" of that reply on the next recvfrom,
# even on this unconnected socket, as ConnectionResetError [WinError 10054]. The one-line
# fix is the `except ConnectionResetError: continue` below.
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


port, count = number(1, 8888), number(2, 0)
if port is None or count is None or len(sys.argv) > 3:
    fail(2, 'usage: chapter_server.py [PORT [COUNT]]')
at = '127.0.0.1:%d' % port
signal.signal(signal.SIGINT, signal.SIG_DFL)                  # Ctrl-C stops it, as it stops the Rust one
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)      # 1. socket()
try:
    sock.bind(('127.0.0.1', port))                            # 2. bind()
except OSError as e:
    fail(1, 'cannot bind %s: %s' % (at, (e.strerror or str(e)).lower()))
print('listening on %s:%d' % sock.getsockname(), flush=True)
served = 0
while count == 0 or served < count:
    try:
        data, addr = sock.recvfrom(1024)                      # 3. recvfrom()
    except ConnectionResetError:                              # Windows: a gone client's "port unreachable"
        continue
    except OSError as e:
        fail(1, 'cannot receive on %s: %s' % (at, (e.strerror or str(e)).lower()))
    print('%s:%d %s' % (addr[0], addr[1], data.decode('utf-8', 'replace')), flush=True)
    sock.sendto(data, addr)                                   # 4. sendto()
    served += 1
sock.close()                                                  # 5. close()
