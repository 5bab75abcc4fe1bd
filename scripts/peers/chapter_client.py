# The chapter's UDP client, as the textbook writes it: socket, sendto, recvfrom, close.
# No bind: the OS picks the client's port. A timeout is added so a lost reply cannot hang
# a script. Usage: python3 chapter_client.py HOST PORT MESSAGE
import socket
import sys

host, port, message = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)      # 1. socket()
sock.settimeout(5)
sock.sendto(message.encode('utf-8'), (host, port))            # 2. sendto()
data, addr = sock.recvfrom(1024)                              # 3. recvfrom()
print(data.decode('utf-8', 'replace'))
sock.close()                                                  # 4. close()
