#!/usr/bin/env python3
"""TCP server for tests: sends back everything it reads, upper-cased, and
when the client half-closes, a last line "EOF <bytes read>" before closing
(so a test sees that the half-close travelled through).
usage: echo_server.py IP PORTFILE"""
import os
import socket
import sys
import threading

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], 0))
srv.listen(16)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])


def serve(c):
    total = 0
    while True:
        d = c.recv(65536)
        if not d:
            break
        total += len(d)
        c.sendall(d.upper())
    c.sendall(b"EOF %d\n" % total)
    c.close()


while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
