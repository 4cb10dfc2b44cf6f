#!/usr/bin/env python3
"""Raw clients for the attack suite (cases curl cannot express).

  client.py http PORT REQUEST...   send each REQUEST (Python-escaped string)
                                   on one connection, print each response's
                                   status code and X-Airlock-Error
  client.py socks PORT ATYP HOST DSTPORT [CMD]
                                   SOCKS5 request; prints the reply code (hex)
  client.py slow PORT DELAY_S      slowloris: one header byte every DELAY_S;
                                   prints the status the proxy answers with
  client.py connect-then PORT HOST:PORT HEX
                                   CONNECT, then send bytes; prints "closed"
                                   if the proxy cuts the tunnel without data
"""
import socket
import sys
import time


def read_response(f):
    line = f.readline()
    if not line:
        return None, None, b""
    status = int(line.split()[1])
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = f.read(n) if n else b""
    return status, headers, body


def cmd_http(port, reqs):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = s.makefile("rb")
    for r in reqs:
        data = r.encode().decode("unicode_escape").encode("latin-1")
        try:
            s.sendall(data)
        except OSError:
            print("closed")
            return
        status, headers, body = read_response(f)
        if status is None:
            print("closed")
            return
        print(status, headers.get("x-airlock-error", "-"), body.decode(errors="replace").strip())


def cmd_socks(port, atyp, host, dport, cmd=1):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    if atyp == 1:
        addr = socket.inet_pton(socket.AF_INET, host)
    elif atyp == 4:
        addr = socket.inet_pton(socket.AF_INET6, host)
    else:
        name = host.encode().decode("unicode_escape").encode("latin-1")
        addr = bytes([len(name)]) + name
    s.sendall(bytes([5, cmd, 0, atyp]) + addr + dport.to_bytes(2, "big"))
    rep = s.recv(262)
    print("%02x" % rep[1] if len(rep) > 1 else "closed")


def cmd_slow(port, delay):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = b"GET http://ok.test/ HTTP/1.1\r\nHost: ok.test\r\nX-Slow: " + b"a" * 200
    f = s.makefile("rb")
    for b in head:
        try:
            s.sendall(bytes([b]))
        except OSError:
            break
        time.sleep(delay)
        s.setblocking(False)
        try:
            peek = s.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            peek = None
        s.setblocking(True)
        if peek is not None:
            break
    status, headers, _ = read_response(f)
    print(status if status else "closed", (headers or {}).get("x-airlock-error", "-"))


def cmd_connect_then(port, target, payload_hex):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    f = s.makefile("rb")
    status, _, _ = read_response(f)
    if status != 200:
        print("status", status)
        return
    s.sendall(bytes.fromhex(payload_hex))
    try:
        data = s.recv(100)
    except OSError:
        data = b""
    print("closed" if not data else "data")


def cmd_upgrade(port, target):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(("GET http://%s/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: echo\r\n"
               "Connection: Upgrade\r\n\r\n" % (target, target)).encode())
    f = s.makefile("rb")
    status, _, _ = read_response(f)
    if status != 101:
        print("status", status)
        return
    raw = b"\x00\xffnot http\r\n\r\nGET http://evil.test/ HTTP/1.1\r\n\r\n"
    s.sendall(raw)
    got = f.read(len(raw))
    print("echo" if got == raw else "got %r" % got)


def main():
    what, port = sys.argv[1], int(sys.argv[2])
    if what == "http":
        cmd_http(port, sys.argv[3:])
    elif what == "socks":
        cmd_socks(port, int(sys.argv[3]), sys.argv[4], int(sys.argv[5]),
                  int(sys.argv[6]) if len(sys.argv) > 6 else 1)
    elif what == "slow":
        cmd_slow(port, float(sys.argv[3]))
    elif what == "upgrade":
        cmd_upgrade(port, sys.argv[3])
    elif what == "connect-then":
        cmd_connect_then(port, sys.argv[3], sys.argv[4])


main()
