#!/usr/bin/env python3
"""Test upstream: an HTTP/1.1 keep-alive server on a loopback address.

usage: upstream.py BIND_IP PORT_FILE LOG_FILE NAME [CERT KEY]
Binds BIND_IP:0, writes the port to PORT_FILE, appends "METHOD PATH HOST" for
every request to LOG_FILE (and "CONNECT-ONLY" for a connection that sent
nothing), answers "NAME PATH" with a Content-Length. With CERT/KEY it speaks
TLS.
"""
import http.server
import os
import socketserver
import ssl
import sys

bind_ip, port_file, log_file, name = sys.argv[1:5]
tls = sys.argv[5:7]


def log(line):
    with open(log_file, "a") as f:
        f.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle(self):
        log("ACCEPT")
        super().handle()

    def _answer(self):
        log("%s %s %s" % (self.command, self.path, self.headers.get("Host")))
        if (self.headers.get("Upgrade") or "").lower() == "echo":
            # after the 101, echo raw bytes until EOF
            self.send_response(101)
            self.send_header("Upgrade", "echo")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            while True:
                d = self.connection.recv(65536)
                if not d:
                    break
                self.connection.sendall(d)
            self.close_connection = True
            return
        body_in = b""
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                body_in += self.rfile.read(size)
                self.rfile.readline()
        else:
            n = int(self.headers.get("Content-Length") or 0)
            body_in = self.rfile.read(n) if n else b""
        body = ("%s %s %d\n" % (name, self.path, len(body_in))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer
    do_HEAD = _answer

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server((bind_ip, 0), Handler)
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls[0], tls[1])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
tmp = port_file + ".tmp"
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, port_file)
srv.serve_forever()
