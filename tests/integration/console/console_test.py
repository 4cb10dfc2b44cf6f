#!/usr/bin/env python3
"""airlockd's web console (docs/console.md) against the real daemon.

usage: console_test.py AIRLOCKD CASE [SCREENSHOT_DIR]

  console_files      every embedded file under /console/ with its type,
                     the security headers, ETag/304, no inline code, no
                     URL to another origin
  console_traversal  attacks on the file lookup: "..", %2e%2e, encoded
                     slashes, backslashes, NUL, doubled slashes: 404 or
                     400, never a file outside the console, never a route
                     of the API behind the prefix
  console_browser    tests/browser/console.test.mjs drives Debian's
                     chromium headless (puppeteer-core) through the
                     console; screenshots go to SCREENSHOT_DIR

Each case starts its own daemon (tests/integration/airlockd/harness.py)
with alice, bob and an admin. Exit 0 pass, 1 fail, 77 skip (airlockd not
built; for console_browser also chromium or tests/browser/node_modules
missing, unless AIRLOCK_REQUIRE_BROWSER=1, as deploy/test.sh sets)."""

import http.client
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "airlockd"))
from harness import SKIP, Daemon, Fail, check, run_case  # noqa: E402

CONSOLE = os.path.join(ROOT, "airlockd", "console")
BROWSER = os.path.join(ROOT, "tests", "browser")
CASES = {}
SHOTS = None

TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml",
         ".json": "application/json", ".png": "image/png", ".txt": "text/plain; charset=utf-8"}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def raw_get(d, path, headers=None):
    """GET with the path's bytes as given (http.client does not normalise)."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
    try:
        c.putrequest("GET", path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def console_files_on_disk():
    out = []
    for dirpath, _, names in os.walk(CONSOLE):
        for n in names:
            rel = os.path.relpath(os.path.join(dirpath, n), CONSOLE)
            if rel == "embed.cmake" or n == "README.md" or n.startswith("LICENSE"):
                continue
            out.append(rel)
    return sorted(out)


def check_security_headers(h, what):
    csp = h.get("content-security-policy", "")
    directives = {p.strip().split(" ", 1)[0]: p.strip() for p in csp.split(";") if p.strip()}
    check(directives.get("default-src") == "default-src 'self'", f"{what}: CSP default-src 'self'", csp)
    check(directives.get("frame-ancestors") == "frame-ancestors 'none'", f"{what}: frame-ancestors 'none'", csp)
    check(directives.get("connect-src") == "connect-src 'self'", f"{what}: connect-src 'self'", csp)
    for d in ("script-src", "style-src"):
        check(directives.get(d) == f"{d} 'self'", f"{what}: {d} 'self' only (no inline, no eval)", csp)
    check("unsafe" not in csp, f"{what}: nothing unsafe in the CSP", csp)
    check(h.get("x-content-type-options") == "nosniff", f"{what}: nosniff", h)
    check(h.get("cache-control") == "no-cache", f"{what}: Cache-Control no-cache", h)
    check("set-cookie" not in h, f"{what}: no cookie", h)


@case
def console_files(d):
    st, h, body = raw_get(d, "/console")
    check(st == 301 and h.get("location") == "/console/", "/console redirects to /console/", (st, h))
    st, h, index = raw_get(d, "/console/")
    check(st == 200 and h.get("content-type") == TYPES[".html"], "/console/ is index.html", (st, h))
    check_security_headers(h, "/console/")
    check(index == open(os.path.join(CONSOLE, "index.html"), "rb").read(),
          "/console/ serves index.html's bytes")
    files = console_files_on_disk()
    check("index.html" in files and "js/app.js" in files, "console files found", files)
    for rel in files:
        data = open(os.path.join(CONSOLE, rel), "rb").read()
        st, h, body = raw_get(d, "/console/" + rel)
        check(st == 200 and body == data, f"/console/{rel} served as on disk", (st, len(body), len(data)))
        ext = os.path.splitext(rel)[1]
        check(h.get("content-type") == TYPES[ext], f"/console/{rel} Content-Type", h.get("content-type"))
        check_security_headers(h, rel)
        etag = h.get("etag", "")
        check(re.fullmatch(r'"[0-9a-f]{32}"', etag), f"{rel}: a strong ETag", etag)
        st2, h2, body2 = raw_get(d, "/console/" + rel, {"If-None-Match": etag})
        check(st2 == 304 and body2 == b"" and h2.get("etag") == etag, f"{rel}: If-None-Match gives 304", (st2, h2))
        st3, _, body3 = raw_get(d, "/console/" + rel, {"If-None-Match": '"0000"'})
        check(st3 == 200 and body3 == data, f"{rel}: another ETag gives the file", st3)
        text = data.decode("utf-8", errors="replace")
        if ext == ".html":
            # no inline code at all: every script has a src, no on* handler,
            # no style attribute or element (the CSP would block them anyway)
            for m in re.finditer(r"<script\b([^>]*)>", text, re.I):
                check("src=" in m.group(1), f"{rel}: no inline <script>", m.group(0))
            check(not re.search(r"\son[a-z]+\s*=", text, re.I), f"{rel}: no on* attribute")
            check(not re.search(r"<style\b|\sstyle\s*=", text, re.I), f"{rel}: no inline style")
        # nothing from another origin: no CDN
        for m in re.finditer(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", text, re.I):
            check(False, f"{rel}: no file from another origin", m.group(0))
        check(not re.search(r"""from\s+["'](?:https?:)?//|import\(\s*["'](?:https?:)?//""", text),
              f"{rel}: no module from another origin")
        check(".innerHTML" not in text and "insertAdjacentHTML" not in text and "document.write" not in text,
              f"{rel}: no HTML built from strings")
    # a query string does not change what is served
    st, _, body = raw_get(d, "/console/index.html?x=1")
    check(st == 200 and body == index, "query ignored", st)
    # no key is needed for the files; the API behind stays closed
    st, _, _ = raw_get(d, "/v1/sessions")
    check(st == 401, "the API still needs a key", st)
    # another method
    r = d.request("POST", "/console/", body={}, key=None)
    check(r.status == 405, "POST /console/ is 405", r)


@case
def console_traversal(d):
    secret = open("/etc/passwd", "rb").read()[:16]
    attacks = [
        "/console/..", "/console/../", "/console/../healthz", "/console/../../etc/passwd",
        "/console/../v1/sessions", "/console/js/../index.html", "/console/js/../../etc/passwd",
        "/console/%2e%2e/%2e%2e/etc/passwd", "/console/%2E%2E/healthz", "/console/.%2e/healthz",
        "/console/js/%2e%2e/index.html", "/console/js%2fapp.js", "/console/js%2Fapp.js",
        "/console/js/..%2fapp.js", "/console/..%2f..%2fetc%2fpasswd", "/console/%2fetc%2fpasswd",
        "/console//etc/passwd", "/console/js//app.js", "/console/./index.html",
        "/console/js/./app.js", "/console/index.html/", "/console/js/", "/console/js",
        "/console/js\\app.js", "/console/js%5capp.js", "/console/..\\..\\etc\\passwd",
        "/console/index.html%00", "/console/index.html%00.js", "/console/%00",
        "/console/%252e%252e/healthz", "/console/%c0%ae%c0%ae/healthz", "/console/%ff",
        "/console/embed.cmake", "/console/INDEX.HTML", "/console/index.htm",
        "/console/" + "a/" * 200 + "index.html", "/console/airlockd.json",
    ]
    for path in attacks:
        st, h, body = raw_get(d, path)
        check(st in (400, 404), f"{path}: refused (400/404)", (st, body[:200]))
        check(b'"error"' in body and secret not in body and b"<html" not in body.lower(),
              f"{path}: a JSON error, no file", body[:200])
    # raw bytes in the request line (a client may send them). libmicrohttpd
    # hands airlockd the URL as a C string, so a raw NUL ends it: the
    # answer may only be what the bytes before it name ("/console/" is
    # index.html), never a file named by what follows.
    index = open(os.path.join(CONSOLE, "index.html"), "rb").read()
    for raw in (b"/console/\x00index.html", b"/console/js/\x00../../etc/passwd",
                b"/console/js/\xff.js", b"/console/ ../", b"/console/\x00/../../etc/passwd"):
        import socket
        s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        try:
            s.sendall(b"GET " + raw + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        status = data.split(b" ", 2)[1] if data.startswith(b"HTTP/1.") else b""
        body = data.partition(b"\r\n\r\n")[2]
        if raw.startswith(b"/console/\x00") and status == b"200":
            check(body == index, f"raw {raw!r}: only what precedes the NUL", data[:200])
        else:
            check(status in (b"400", b"404"), f"raw {raw!r}: refused", data[:200])
        check(secret not in data, f"raw {raw!r}: no file outside the console", data[:200])
    # the real files still come
    st, _, _ = raw_get(d, "/console/js/app.js")
    check(st == 200, "js/app.js still served", st)


def browser_ready():
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    node = shutil.which("node")
    mod = os.path.join(BROWSER, "node_modules", "puppeteer-core")
    missing = [w for w, ok in (("chromium", chromium), ("node", node), ("tests/browser/node_modules (npm ci)", os.path.isdir(mod))) if not ok]
    return chromium, node, missing


@case
def console_browser(d):
    chromium, node, missing = browser_ready()
    check(not missing, "browser test prerequisites", missing)
    d.add_user("carol")
    os.makedirs(SHOTS, exist_ok=True)
    env = dict(os.environ, AIRLOCK_URL=d.url, AIRLOCK_KEY=d.keys["alice"],
               AIRLOCK_KEY_OTHER=d.keys["carol"], AIRLOCK_KEY_ADMIN=d.keys["root-admin"],
               CHROMIUM=chromium, SCREENSHOT_DIR=SHOTS)
    try:
        r = subprocess.run([node, os.path.join(BROWSER, "console.test.mjs")], env=env,
                           timeout=170)
    finally:
        # the browser made sessions the harness did not: hand them to the
        # teardown, which deletes them and checks they left nothing running
        # (they used to outlive the test with the daemon's reaper)
        cursor = ""
        for _ in range(20):
            lst = d.get("/v1/sessions?limit=100" + cursor, key="root-admin")
            if lst.status != 200:
                break
            d.sessions.update(x["id"] for x in lst.json.get("sessions", []))
            if not lst.json.get("next_cursor"):
                break
            cursor = "&cursor=" + lst.json["next_cursor"]
    check(r.returncode == 0, "the browser test passed (see its output above)", r.returncode)


def main():
    global SHOTS
    if len(sys.argv) not in (3, 4) or sys.argv[2] not in CASES:
        print(f"usage: {sys.argv[0]} AIRLOCKD CASE [SCREENSHOT_DIR]\ncases: {' '.join(CASES)}",
              file=sys.stderr)
        return 2
    binary, name = sys.argv[1:3]
    SHOTS = sys.argv[3] if len(sys.argv) == 4 else os.path.join(os.getcwd(), "browser-screenshots")
    if not os.access(binary, os.X_OK):
        print(f"SKIP: {binary} is not built")
        return SKIP
    if name == "console_browser":
        _, _, missing = browser_ready()
        if missing and os.environ.get("AIRLOCK_REQUIRE_BROWSER") != "1":
            print(f"SKIP: missing {', '.join(missing)} (deploy/test.sh installs them)")
            return SKIP
    d = Daemon(binary, {}, name=name)
    return run_case(d, name, CASES[name])


if __name__ == "__main__":
    sys.exit(main())
