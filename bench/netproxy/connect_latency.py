#!/usr/bin/env python3
"""p50 time, in microseconds, until a TCP path to TARGET is usable, for a
direct connect() and for each proxy, measured in interleaved blocks (BLOCK
samples of one path, then the next path, ... for ROUNDS rounds) so that
drifting machine load affects every path alike, while samples of one path
do not overlap with another path's connection teardown.
usage: connect_latency.py TARGET_PORT [PROXY_PORT...]
Prints one p50 per line: direct first, then each proxy in order. Direct:
connect() to 127.0.0.1:TARGET_PORT. Proxy: connect() to it, send CONNECT
127.0.0.1:TARGET_PORT, wait for the 200."""
import os
import socket
import sys
import time

target = int(sys.argv[1])
proxies = [int(p) for p in sys.argv[2:]]
rounds = int(os.environ.get("ROUNDS", "20"))
block = int(os.environ.get("BLOCK", "50"))
req = ("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (target, target)).encode()


def direct():
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", target))
    t = time.perf_counter() - t0
    s.close()
    return t


def through(port):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(1024)
        if not d:
            break
        buf += d
    t = time.perf_counter() - t0
    if b" 200" not in buf.split(b"\r\n")[0]:
        sys.exit("proxy on %d refused: %r" % (port, buf[:80]))
    s.close()
    return t


samples = [[] for _ in range(1 + len(proxies))]
for _ in range(rounds):
    for _ in range(block):
        samples[0].append(direct())
    for i, p in enumerate(proxies):
        for _ in range(block):
            samples[i + 1].append(through(p))
for ts in samples:
    ts.sort()
    print("%.0f" % (ts[len(ts) // 2] * 1e6))
