#!/usr/bin/env python3
"""A tiny DNS responder on UDP loopback for tests: answers A queries for the
names given on the command line, NXDOMAIN for any other name, an empty
answer for other types of a known name. Logs every question.
usage: dns_server.py PORTFILE LOG NAME=IP [NAME=IP...]"""
import socket
import struct
import sys

portfile, log = sys.argv[1], sys.argv[2]
table = {}
for arg in sys.argv[3:]:
    name, ip = arg.split("=", 1)
    table[name.lower().rstrip(".")] = ip

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
with open(portfile + ".tmp", "w") as f:
    f.write(str(sock.getsockname()[1]))
import os
os.rename(portfile + ".tmp", portfile)


def parse_question(msg):
    labels, i = [], 12
    while True:
        n = msg[i]
        i += 1
        if n == 0:
            break
        labels.append(msg[i:i + n].decode("ascii", "replace"))
        i += n
    qtype, qclass = struct.unpack("!HH", msg[i:i + 4])
    return ".".join(labels).lower(), qtype, msg[12:i + 4]


while True:
    msg, peer = sock.recvfrom(4096)
    if len(msg) < 17:
        continue
    qid, = struct.unpack("!H", msg[:2])
    try:
        name, qtype, question = parse_question(msg)
    except (IndexError, struct.error):
        continue
    with open(log, "a") as f:
        f.write("%s %d\n" % (name, qtype))
    answers = b""
    rcode = 0
    if name not in table:
        rcode = 3  # NXDOMAIN
    elif qtype == 1:
        answers = (b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) +
                   socket.inet_aton(table[name]))
    flags = 0x8180 | rcode  # response, recursion desired + available
    head = struct.pack("!HHHHHH", qid, flags, 1, 1 if answers else 0, 0, 0)
    sock.sendto(head + question + answers, peer)
