#!/usr/bin/env python3
"""Sends stdin's bytes to 127.0.0.1:PORT in one write and copies everything
the server answers to stdout, until it closes (at most 60 s).
Usage: rawreq.py PORT < request > response"""
import socket
import sys

data = sys.stdin.buffer.read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
s.sendall(data)
out = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
except (ConnectionResetError, socket.timeout):
    pass
sys.stdout.buffer.write(out)
