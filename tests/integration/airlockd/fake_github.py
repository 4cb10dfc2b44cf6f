#!/usr/bin/env python3
"""A stand-in for GitHub's REST API, for tests (docs/forge.md): HTTPS on
loopback with a certificate from the test's own CA (made here with
openssl), speaking GitHub's wire format for

    POST /repos/{owner}/{repo}/pulls     {"title", "head", "base", "body"}
    GET  /repos/{owner}/{repo}           200 {"full_name", "default_branch"}
                                         (default_branch: FakeGitHub.default_branch)

  201 {"id", "number", "html_url", "url", "state", "title", "body",
       "head": {"ref", "label", "sha", "repo"}, "base": {...}, "user": {...}}
  401 {"message": "Bad credentials"} unless Authorization is
       "Bearer TOKEN" (or "token TOKEN") with the token it was given
  404 {"message": "Not Found"} for a repository it does not know
  422 {"message": "Validation Failed", "errors": [...]} for a missing
       field or a second open pull request for the same head and base
  307 to /stolen for the repository "redirect/repo" (a client that follows
       redirects would send its token there: it is recorded)

Every request is recorded (method, path, headers, body) for the test to
read: FakeGitHub.requests. Used as a module (FakeGitHub(...).start()), or
run alone: fake_github.py DIR TOKEN OWNER/REPO... prints the port."""

import http.server
import json
import os
import ssl
import subprocess
import sys
import threading


def make_ca(dir_, names=("127.0.0.1",)):
    """A CA and a server certificate for `names` (IP addresses or DNS
    names) in dir_: ca.pem, srv.pem, srv.key. Returns the CA's path."""
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    t = dir_
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", "/CN=airlock test forge CA", "-keyout", f"{t}/ca.key",
        "-out", f"{t}/ca.pem")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", "/CN=fake github", "-keyout", f"{t}/srv.key", "-out", f"{t}/srv.csr")
    san = ",".join(("IP:" if n.replace(".", "").isdigit() else "DNS:") + n for n in names)
    with open(f"{t}/ext.cnf", "w") as f:
        f.write(f"subjectAltName={san}\n")
    run("openssl", "x509", "-req", "-in", f"{t}/srv.csr", "-CA", f"{t}/ca.pem", "-CAkey",
        f"{t}/ca.key", "-CAcreateserial", "-days", "2", "-extfile", f"{t}/ext.cnf", "-out",
        f"{t}/srv.pem")
    return f"{t}/ca.pem"


class FakeGitHub:
    def __init__(self, dir_, token, repos, web_host="github.test"):
        self.dir = dir_
        self.token = token
        self.repos = {r.lower() for r in repos}
        self.web_host = web_host
        self.requests = []
        self.pulls = {}  # repo -> list of pull dicts
        self.default_branch = "main"
        self.lock = threading.Lock()
        self.ca = make_ca(dir_)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, obj, extra=None):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self.handle_any(b"")

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.handle_any(self.rfile.read(n) if n else b"")

            def handle_any(self, body):
                with outer.lock:
                    outer.requests.append({"method": self.command, "path": self.path,
                                           "headers": {k.lower(): v for k, v in
                                                       self.headers.items()},
                                           "body": body.decode(errors="replace")})
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) == 3 and parts[0] == "repos" and self.command == "GET":
                    repo = f"{parts[1]}/{parts[2]}"
                    auth = self.headers.get("Authorization", "")
                    if auth not in (f"Bearer {outer.token}", f"token {outer.token}"):
                        return self.reply(401, {"message": "Bad credentials"})
                    if repo.lower() not in outer.repos:
                        return self.reply(404, {"message": "Not Found"})
                    return self.reply(200, {"full_name": repo, "name": parts[2],
                                            "default_branch": outer.default_branch})
                if len(parts) != 4 or parts[0] != "repos" or parts[3] != "pulls" or \
                        self.command != "POST":
                    return self.reply(404, {"message": "Not Found"})
                repo = f"{parts[1]}/{parts[2]}"
                if repo == "redirect/repo":
                    return self.reply(307, {"message": "Moved"},
                                      {"Location": f"https://127.0.0.1:{outer.port}/stolen"})
                auth = self.headers.get("Authorization", "")
                if auth not in (f"Bearer {outer.token}", f"token {outer.token}"):
                    return self.reply(401, {"message": "Bad credentials",
                                            "documentation_url": "https://docs.github.com/rest"})
                if repo.lower() not in outer.repos:
                    return self.reply(404, {"message": "Not Found"})
                try:
                    req = json.loads(body)
                except ValueError:
                    return self.reply(400, {"message": "Problems parsing JSON"})
                missing = [k for k in ("title", "head", "base")
                           if not isinstance(req.get(k), str) or not req.get(k)]
                if missing:
                    return self.reply(422, {"message": "Validation Failed", "errors": [
                        {"resource": "PullRequest", "field": missing[0], "code": "missing_field"}]})
                with outer.lock:
                    pulls = outer.pulls.setdefault(repo.lower(), [])
                    if any(p["head"]["ref"] == req["head"] and p["base"]["ref"] == req["base"]
                           for p in pulls):
                        return self.reply(422, {"message": "Validation Failed", "errors": [
                            {"resource": "PullRequest", "code": "custom",
                             "message": f"A pull request already exists for "
                                        f"{parts[1]}:{req['head']}."}]})
                    num = len(pulls) + 1
                    repo_obj = {"full_name": repo, "name": parts[2],
                                "owner": {"login": parts[1]}}
                    pull = {
                        "id": 1000 + num, "number": num, "state": "open",
                        "url": f"https://127.0.0.1:{outer.port}/repos/{repo}/pulls/{num}",
                        "html_url": f"https://{outer.web_host}/{repo}/pull/{num}",
                        "title": req["title"], "body": req.get("body"),
                        "head": {"ref": req["head"], "label": f"{parts[1]}:{req['head']}",
                                 "sha": "0" * 40, "repo": repo_obj},
                        "base": {"ref": req["base"], "label": f"{parts[1]}:{req['base']}",
                                 "sha": "1" * 40, "repo": repo_obj},
                        "user": {"login": "airlock-bot"},
                    }
                    pulls.append(pull)
                return self.reply(201, pull, {"Location": pull["url"]})

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{dir_}/srv.pem", f"{dir_}/srv.key")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.api = f"https://127.0.0.1:{self.port}"

    def start(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.httpd.shutdown()

    def received(self, path_prefix=""):
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(path_prefix)]


if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    g = FakeGitHub(sys.argv[1], sys.argv[2], sys.argv[3:]).start()
    print(g.port, flush=True)
    threading.Event().wait()
