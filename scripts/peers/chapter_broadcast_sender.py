# A broadcaster written the chapter's way: socket, setsockopt(SO_BROADCAST), sendto, close.
# It sends COUNT numbered messages to 127.255.255.255 (this machine only) on PORT.
# Usage: python3 chapter_broadcast_sender.py PORT COUNT
import socket
import sys
import time

port, count = int(sys.argv[1]), int(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)             # 1. socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)          # 2. allow broadcast
for n in range(1, count + 1):
    sock.sendto(('seq=%d AAPL %.2f' % (n, 189 + n / 100)).encode(), ('127.255.255.255', port))  # 3. sendto()
    time.sleep(0.02)
sock.close()                                                        # 4. close()
