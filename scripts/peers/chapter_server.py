# The chapter's UDP server, as the textbook writes it: socket, bind, recvfrom, sendto, close.
# Two changes so scripts can use it: the port comes from the command line (0 = any free
# port, printed as "listening on IP:PORT"), and it stops after COUNT datagrams (0: never).
# Usage: python3 chapter_server.py PORT COUNT
# On Windows this server, exactly as the chapter writes it, dies after answering a client
# that has gone: Windows reports the ICMP "port unreachable" of that reply on the next
# recvfrom, even on this unconnected socket, as ConnectionResetError [WinError 10054].
# The one-line fix, around the recvfrom:  except ConnectionResetError: continue
import socket
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)      # 1. socket()
sock.bind(('127.0.0.1', port))                                # 2. bind()
print('listening on %s:%d' % sock.getsockname(), flush=True)
served = 0
while count == 0 or served < count:
    data, addr = sock.recvfrom(1024)                          # 3. recvfrom()
    if count:                                                 # (a benchmark runs it quiet)
        print('%s:%d %s' % (addr[0], addr[1], data.decode('utf-8', 'replace')), flush=True)
    sock.sendto(data, addr)                                   # 4. sendto()
    served += 1
sock.close()                                                  # 5. close()
