#!/usr/bin/env python3
"""Tunnel integrity and half-close through the proxy.

usage: tunnel_check.py http|socks PROXY_PORT NAME
An upstream on 127.0.0.2 (NAME must resolve there through the proxy's
override table) reads until EOF, then answers the SHA-256 of what it got
followed by 3 MiB of pseudo-random bytes, and closes. The client sends
8 MiB, shuts down its write side (the half-close must reach the upstream),
reads to EOF and checks both digests. Prints "ok" or what went wrong."""
import hashlib
import os
import socket
import sys
import threading

mode, proxy_port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
up = socket.socket()
up.bind(("127.0.0.2", 0))
up.listen(1)
port = up.getsockname()[1]
reply_tail = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32)


def serve():
    c, _ = up.accept()
    h = hashlib.sha256()
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        h.update(d)
    c.sendall(h.hexdigest().encode() + b"\n" + reply_tail)
    c.close()


threading.Thread(target=serve, daemon=True).start()

s = socket.create_connection(("127.0.0.1", proxy_port), timeout=30)
if mode == "http":
    s.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (name, port, name, port)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(1)
    if b" 200 " not in buf.split(b"\r\n")[0]:
        sys.exit("refused: %r" % buf)
else:
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name.encode() + port.to_bytes(2, "big"))
    rep = s.recv(10)
    if len(rep) < 2 or rep[1] != 0:
        sys.exit("refused: %r" % rep)

payload = os.urandom(8 * 1024 * 1024)
s.sendall(payload)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = s.recv(1 << 16)
    if not d:
        break
    got += d
line, _, rest = got.partition(b"\n")
if line.decode() != hashlib.sha256(payload).hexdigest():
    sys.exit("upstream received different bytes (%d bytes answered)" % len(got))
if rest != reply_tail:
    sys.exit("client received %d bytes, want %d identical" % (len(rest), len(reply_tail)))
print("ok")
