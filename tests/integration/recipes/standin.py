#!/usr/bin/env python3
"""A static file server that stands in for a package registry, an index or
a mirror in the recipe tests.

    standin.py ROOT ADDR PORTFILE LOG [CERT KEY]

Serves ROOT on ADDR (HTTPS with CERT and KEY), port chosen by the kernel and
written to PORTFILE once listening. GET/HEAD only. A path naming a directory is answered with its
index.json or index.html (npm's package documents live at /NAME, next to
/NAME/-/NAME-1.0.0.tgz). Every request is appended to LOG as
"METHOD PATH HOST" so a test can show the stand-in was reached through the
name it was given."""
import http.server
import os
import ssl
import sys

ROOT, ADDR, PORTFILE, LOG = sys.argv[1:5]
TYPES = {".json": "application/json", ".html": "text/html", ".tgz": "application/octet-stream"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _file(self):
        path = os.path.normpath(self.path.split("?", 1)[0]).lstrip("/")
        full = os.path.join(ROOT, path)
        if os.path.isdir(full):
            for name in ("index.json", "index.html"):
                if os.path.isfile(os.path.join(full, name)):
                    return os.path.join(full, name)
            return None
        return full if os.path.isfile(full) else None

    def do_GET(self, body=True):
        with open(LOG, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, self.headers.get("Host", "-")))
        full = self._file()
        if full is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(full, "rb").read()
        self.send_response(200)
        ext = os.path.splitext(full)[1]
        self.send_header("Content-Type", TYPES.get(ext, "application/octet-stream"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_HEAD(self):
        self.do_GET(body=False)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that drops the TLS handshake is not the test's business


srv = Server((ADDR, 0), Handler)
if len(sys.argv) > 6:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[5], sys.argv[6])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(PORTFILE + ".tmp", "w") as f:
    f.write("%d\n" % srv.server_address[1])
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
