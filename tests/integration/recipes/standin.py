#!/usr/bin/env python3
"""A static file server that stands in for a package registry, an index or
a mirror in the recipe tests.

    standin.py ROOT ADDR PORTFILE LOG [CERT KEY]

Serves ROOT on ADDR (HTTPS with CERT and KEY), port chosen by the kernel and
written to PORTFILE once listening. GET/HEAD only, except for git: a git
repository under ROOT is also served with git's smart HTTP protocol
(`git http-backend` as a CGI program: /REPO/info/refs?service=..., POST
/REPO/git-upload-pack), which libgit2 (cargo's git) needs; git's own client
can also use the static files of `git update-server-info` (dumb HTTP). A
path naming a directory is answered with its index.json or index.html
(npm's package documents live at /NAME, next to /NAME/-/NAME-1.0.0.tgz).
Every request is appended to LOG as
"METHOD PATH HOST" so a test can show the stand-in was reached through the
name it was given."""
import http.server
import os
import ssl
import subprocess
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

    def _log(self):
        with open(LOG, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, self.headers.get("Host", "-")))

    def _git(self):
        """Runs git http-backend for a smart-HTTP request; False if it is none."""
        path, _, query = self.path.partition("?")
        smart = (self.command == "GET" and path.endswith("/info/refs")
                 and query.startswith("service=git-")) or (
                 self.command == "POST" and path.endswith("/git-upload-pack"))
        if not smart:
            return False
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": ROOT,
               "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
               "REQUEST_METHOD": self.command, "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
               "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
               "REMOTE_ADDR": self.client_address[0]}
        out = subprocess.run(["git", "http-backend"], input=body, env=env,
                             stdout=subprocess.PIPE, check=False).stdout
        head, _, data = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return True

    def do_POST(self):
        self._log()
        if not self._git():
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_GET(self, body=True):
        self._log()
        if body and self._git():
            return
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
