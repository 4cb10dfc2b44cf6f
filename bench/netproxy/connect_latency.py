#!/usr/bin/env python3
"""p50 time, in microseconds, until a TCP path to TARGET is usable.
usage: connect_latency.py TARGET_PORT [PROXY_PORT]
Without PROXY_PORT: connect() to 127.0.0.1:TARGET_PORT. With it: connect()
to the proxy, send CONNECT 127.0.0.1:TARGET_PORT, wait for the 200."""
import socket
import sys
import time

target = int(sys.argv[1])
proxy = int(sys.argv[2]) if len(sys.argv) > 2 else None
req = ("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (target, target)).encode()
ts = []
for _ in range(300):
    t0 = time.perf_counter()
    if proxy is None:
        s = socket.create_connection(("127.0.0.1", target))
    else:
        s = socket.create_connection(("127.0.0.1", proxy))
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(1024)
            if not d:
                break
            buf += d
        if b" 200" not in buf.split(b"\r\n")[0]:
            sys.exit("proxy refused: %r" % buf[:80])
    ts.append(time.perf_counter() - t0)
    s.close()
ts.sort()
print("%.0f" % (ts[len(ts) // 2] * 1e6))
