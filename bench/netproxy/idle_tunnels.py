#!/usr/bin/env python3
"""Opens N idle CONNECT tunnels through an HTTP proxy to TARGET and holds
them until stdin closes. Prints how many were established.
usage: idle_tunnels.py PROXY_PORT TARGET N"""
import selectors
import socket
import sys

port, target, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
req = ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode()
socks, ok = [], 0
sel = selectors.DefaultSelector()
pending = {}
for i in range(n):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    socks.append(s)
    sel.register(s, selectors.EVENT_WRITE)
    pending[s] = b""
    # keep the number of handshakes in flight bounded
    while len(pending) > 200 or (i == n - 1 and pending):
        for key, ev in sel.select(timeout=10):
            s2 = key.fileobj
            if ev & selectors.EVENT_WRITE:
                try:
                    s2.send(req)
                except OSError:
                    sel.unregister(s2)
                    del pending[s2]
                    continue
                sel.modify(s2, selectors.EVENT_READ)
            else:
                try:
                    data = s2.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s2)
                    del pending[s2]
                    continue
                pending[s2] += data
                if b"\r\n\r\n" in pending[s2]:
                    if b" 200" in pending[s2].split(b"\r\n")[0]:
                        ok += 1
                    sel.unregister(s2)
                    del pending[s2]
        else:
            if not sel.get_map():
                break
print(ok, flush=True)
sys.stdin.read()
