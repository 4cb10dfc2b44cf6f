#!/usr/bin/env python3
"""Plain-HTTP backend behind the test's nginx (which terminates the
upstream TLS): appends every request (method, path, headers, body) to
LOG_FILE and answers with the body it got, so a test sees both what reached
the upstream and what the sandbox gets back.
usage: tls_backend.py PORT_FILE LOG_FILE"""
import http.server
import os
import socketserver
import sys

port_file, log_file = sys.argv[1:3]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        body = b""
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(log_file, "ab") as f:
            f.write(b"%s %s\n%s\nBODY %s\n--\n" % (self.command.encode(), self.path.encode(),
                                                   bytes(self.headers).strip(), body))
        out = b"got " + body + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Got-Length", str(len(body)))
        if self.path.startswith("/chunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            # the value split over two chunks: re-masking must still find it
            half = len(out) // 2
            for part in (out[:half], out[half:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
