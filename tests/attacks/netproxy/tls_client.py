#!/usr/bin/env python3
"""Raw clients for attacks on TLS-terminated tunnels. Each opens a CONNECT
tunnel through the HTTP proxy at 127.0.0.1:PROXY_PORT to HOST:PORT, then:

  sni PROXY_PORT HOST PORT SNI CA
      TLS handshake with server name SNI; prints "handshake-ok" or
      "handshake-failed".
  pipeline PROXY_PORT HOST PORT CA PATH1 HEADER2
      TLS (verified against CA, server name HOST), then two requests in ONE
      write (one TLS record): GET PATH1, then GET /second with HEADER2.
      Prints the status line of each response received, then "closed".
  hold PROXY_PORT HOST PORT CA FLAG
      TLS, one keep-alive request, then creates file FLAG and waits for the
      proxy to close the connection; prints "closed" (or "timeout").
  upgrade PROXY_PORT HOST PORT CA
      TLS, a request with "Upgrade: echo", then raw bytes after the 101;
      prints the status line and what was echoed.
  plain PROXY_PORT HOST PORT HEADER
      no TLS at all: a plaintext HTTP request with HEADER inside the
      tunnel. Prints what came back (first line) or "closed".
"""
import re
import socket
import ssl
import sys


def tunnel(pport, host, port):
    s = socket.create_connection(("127.0.0.1", int(pport)), timeout=10)
    s.sendall(b"CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n" % (host.encode(), port.encode(),
                                                                   host.encode(), port.encode()))
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise SystemExit("tunnel refused")
        buf += d
    if not buf.startswith(b"HTTP/1.1 200"):
        raise SystemExit("tunnel refused: " + buf.split(b"\r\n")[0].decode())
    return s


def read_all(s):
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ssl.SSLError, ConnectionResetError):
        pass
    return out


def main():
    mode = sys.argv[1]
    if mode == "sni":
        pport, host, port, sni, ca = sys.argv[2:7]
        s = tunnel(pport, host, port)
        ctx = ssl.create_default_context(cafile=ca)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            t = ctx.wrap_socket(s, server_hostname=sni)
            t.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode())
            print("handshake-ok")
        except (ssl.SSLError, OSError):
            print("handshake-failed")
    elif mode == "pipeline":
        pport, host, port, ca, path1, header2 = sys.argv[2:8]
        s = tunnel(pport, host, port)
        ctx = ssl.create_default_context(cafile=ca)
        t = ctx.wrap_socket(s, server_hostname=host)
        hp = ("%s:%s" % (host, port)).encode()
        reqs = (b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path1.encode(), hp) +
                b"GET /second HTTP/1.1\r\nHost: %s\r\n%s\r\n\r\n" % (hp, header2.encode()))
        t.sendall(reqs)  # one write, one TLS record
        data = read_all(t)
        for line in re.findall(rb"HTTP/1\.1 [0-9]{3}[^\r\n]*", data):
            print(line.decode())
        print("closed")
    elif mode == "hold":
        pport, host, port, ca, flag = sys.argv[2:7]
        s = tunnel(pport, host, port)
        t = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname=host)
        t.sendall(b"GET /hold HTTP/1.1\r\nHost: %s:%s\r\n\r\n" % (host.encode(), port.encode()))
        t.settimeout(30)
        got = t.recv(65536)
        if not got.startswith(b"HTTP/1.1 200"):
            print("no answer")
            return
        open(flag, "w").close()
        try:
            while t.recv(65536):
                pass
            print("closed")
        except socket.timeout:
            print("timeout")
        except (ssl.SSLError, OSError):
            print("closed")
    elif mode == "upgrade":
        pport, host, port, ca = sys.argv[2:6]
        s = tunnel(pport, host, port)
        t = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname=host)
        t.sendall(b"GET /ws HTTP/1.1\r\nHost: %s:%s\r\nConnection: Upgrade\r\n"
                  b"Upgrade: echo\r\n\r\n" % (host.encode(), port.encode()))
        head = b""
        while b"\r\n\r\n" not in head:
            d = t.recv(4096)
            if not d:
                break
            head += d
        status = head.split(b"\r\n")[0].decode()
        t.sendall(b"raw bytes after the upgrade")
        echoed = b""
        while len(echoed) < 27:
            d = t.recv(4096)
            if not d:
                break
            echoed += d
        print(status, echoed.decode())
    elif mode == "plain":
        pport, host, port, header = sys.argv[2:6]
        s = tunnel(pport, host, port)
        s.sendall(b"GET /auth HTTP/1.1\r\nHost: %s:%s\r\n%s\r\n\r\n" % (host.encode(),
                                                                       port.encode(),
                                                                       header.encode()))
        data = read_all(s)
        print(data.split(b"\r\n")[0].decode() if data else "closed")


main()
