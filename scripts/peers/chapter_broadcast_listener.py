# A broadcast listener written the chapter's way: socket, bind(('', PORT)), recvfrom, close.
# It prints COUNT messages, then stops; PORT 0 picks a free port, printed first.
# Usage: python3 chapter_broadcast_listener.py PORT COUNT
import socket
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)             # 1. socket()
sock.bind(('', port))                                               # 2. bind() to every address
print('listening on 0.0.0.0:%d' % sock.getsockname()[1], flush=True)
for _ in range(count):
    data, addr = sock.recvfrom(65535)                               # 3. recvfrom()
    print(data.decode('utf-8', 'replace'), flush=True)
sock.close()                                                        # 4. close()
