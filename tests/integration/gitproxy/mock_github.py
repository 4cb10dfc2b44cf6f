#!/usr/bin/env python3
"""Mock of GitHub's POST /app/installations/{id}/access_tokens.

Verifies the RS256 JWT (signature with the App's public key via openssl,
iss, iat/exp window), the JSON body (repositories, permissions), answers
GitHub's JSON. Usage: mock_github.py PORT PUBKEY APP_ID TOKEN EXPIRES_FILE HITS_FILE
EXPIRES_FILE holds the seconds until expiry to announce (re-read per request).
Every accepted request appends a line to HITS_FILE.
"""
import base64, json, os, subprocess, sys, tempfile, time
from http.server import BaseHTTPRequestHandler, HTTPServer

port, pubkey, app_id, token, expires_file, hits_file = sys.argv[1:7]


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def fail(self, code, msg):
        body = json.dumps({"message": msg}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["app", "installations"] or parts[3] != "access_tokens":
            return self.fail(404, "Not Found")
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self.fail(401, "A JSON web token could not be decoded")
        jwt = auth[7:]
        try:
            h, c, s = jwt.split(".")
            header, claims = json.loads(b64d(h)), json.loads(b64d(c))
        except Exception:
            return self.fail(401, "A JSON web token could not be decoded")
        with tempfile.TemporaryDirectory() as d:
            open(d + "/in", "wb").write((h + "." + c).encode())
            open(d + "/sig", "wb").write(b64d(s))
            ok = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pubkey, "-signature",
                                 d + "/sig", d + "/in"], capture_output=True).returncode == 0
        now = time.time()
        if not ok or header.get("alg") != "RS256":
            return self.fail(401, "'Issuer' claim ('iss') must be an Integer")
        if str(claims.get("iss")) != app_id or not (claims["iat"] <= now <= claims["exp"]) \
                or claims["exp"] - claims["iat"] > 600:
            return self.fail(401, "'Expiration time' claim ('exp') is too far in the future")
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n) or b"{}")
        if not isinstance(body.get("repositories"), list) or \
                body.get("permissions") != {"contents": "write"}:
            return self.fail(422, "Invalid request")
        expires_in = int(open(expires_file).read().strip())
        with open(hits_file, "a") as f:
            f.write("%s %s\n" % (parts[2], ",".join(body["repositories"])))
        exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + expires_in))
        out = json.dumps({"token": token, "expires_at": exp,
                          "permissions": {"contents": "write"},
                          "repository_selection": "selected"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


HTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
