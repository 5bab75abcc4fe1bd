#!/usr/bin/env python3
"""Capture one UDP datagram to PORT off the wire and print its header fields.

A raw socket (root only) receives a copy of every UDP packet this host gets, IP header
included: the checksum printed is the one the sender's kernel put on the wire, computed
independently of our programs. Usage: capture_udp.py PORT [TIMEOUT_SECONDS]
"""
import socket
import sys

port = int(sys.argv[1])
timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 15.0
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
raw.settimeout(timeout)
print("ready", flush=True)
while True:
    packet, _ = raw.recvfrom(65535)
    ihl = (packet[0] & 0x0F) * 4
    udp = packet[ihl:ihl + 8]
    if int.from_bytes(udp[2:4], "big") == port:
        src = int.from_bytes(udp[0:2], "big")
        length = int.from_bytes(udp[4:6], "big")
        checksum = int.from_bytes(udp[6:8], "big")
        print("src_port %d dst_port %d length %d checksum %#06x" % (src, port, length, checksum), flush=True)
        break
