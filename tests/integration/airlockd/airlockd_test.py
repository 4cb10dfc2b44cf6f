#!/usr/bin/env python3
"""airlockd against its contract (docs/api.md): one case per ctest test.

usage: airlockd_test.py AIRLOCKD AIRLOCK_SESSION CASE

Each case starts its own daemon (harness.Daemon) with users alice, bob and
an admin, runs, tears down, and checks that no session left a process, a
cgroup or a mount. Exit 0 pass, 1 fail, 77 skip (airlockd not built)."""

import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SKIP, Daemon, Resp, check, init_pid, leftovers,  # noqa: E402
                     read_exec_stream, run_case, sha256, sse_events, thread, wait_until)

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def expect_error(d, r, status, code, field=None):
    """r is an error with that status and code (and field); the daemon still
    answers /healthz afterwards."""
    check(r.status == status, f"status {status} ({code})", r)
    got = r.error_code()
    check(got == code, f"error code {code}", r)
    if field is not None:
        check(r.json["error"].get("field") == field, f"error names field {field}", r)
    d.healthy()


# -- sessions ---------------------------------------------------------------

@case
def sessions_crud(d):
    sid = d.create(metadata={"ticket": "ENG-42"}, env={"FOO": "bar"})
    s = d.session(sid)
    check(s["user"] == "alice", "session user", s)
    check(s["mode"] == "auto-allow", "default mode", s)
    check(s["workspace"] == "/workspace", "workspace", s)
    check(s["metadata"] == {"ticket": "ENG-42"}, "metadata kept", s)
    lim = s["limits"]
    check(lim == {"memory_mb": 256, "pids": 256, "cpu": 1.0, "ttl_s": 3600, "idle_s": 900},
          "missing limits take the config's defaults", lim)
    for k in ("created_at", "last_active_at", "expires_at"):
        check(isinstance(s.get(k), str) and s[k].endswith("Z") and "T" in s[k],
              f"{k} is RFC 3339 UTC", s.get(k))
    check(s["ended_at"] is None and s["end_reason"] is None, "not ended", s)
    check(d.run(sid, "echo $FOO") == b"bar\n", "env of the session reaches commands")
    # list, filter, paginate
    ids = [sid] + [d.create() for _ in range(2)]
    r = d.get("/v1/sessions")
    check(r.status == 200, "list", r)
    listed = [x["id"] for x in r.json["sessions"]]
    check(listed == ids, "list: oldest first, all of mine", listed)
    check(r.json["next_cursor"] is None, "single page: next_cursor null", r.json)
    r = d.get("/v1/sessions?limit=2")
    check(len(r.json["sessions"]) == 2 and r.json["next_cursor"], "limit=2 pages", r.json)
    r2 = d.get("/v1/sessions?limit=2&cursor=" + r.json["next_cursor"])
    check([x["id"] for x in r2.json["sessions"]] == ids[2:], "second page", r2.json)
    # keepalive
    r = d.post(f"/v1/sessions/{sid}/keepalive")
    check(r.status == 200 and r.json["id"] == sid, "keepalive returns the session", r)
    # delete
    r = d.delete(f"/v1/sessions/{ids[1]}")
    check(r.status == 200 and r.json["state"] == "deleted", "DELETE returns deleted", r)
    check(r.json["ended_at"] is not None, "deleted: ended_at set", r.json)
    r2 = d.delete(f"/v1/sessions/{ids[1]}")
    check(r2.status == 200 and r2.json == r.json, "deleting again returns it unchanged", r2)
    check(d.session(ids[1])["state"] == "deleted", "ended sessions stay listed")
    r = d.get("/v1/sessions?state=ready")
    check([x["id"] for x in r.json["sessions"]] == [ids[0], ids[2]], "state=ready filter", r)
    r = d.get("/v1/sessions?state=deleted")
    check([x["id"] for x in r.json["sessions"]] == [ids[1]], "state=deleted filter", r)
    expect_error(d, d.post(f"/v1/sessions/{ids[1]}/keepalive"), 409, "conflict")
    expect_error(d, d.post(f"/v1/sessions/{ids[1]}/exec", {"argv": ["true"]}), 409,
                 "conflict")
    left = leftovers([ids[1]], d.state)
    check(not left, "a deleted session leaves nothing", left)


@case
def sessions_errors(d):
    P = "/v1/sessions"
    expect_error(d, d.post(P, raw=b"{not json", ctype="application/json"), 400, "invalid_json")
    expect_error(d, d.post(P, raw=b"[1,2]", ctype="application/json"), 400, "invalid_json")
    expect_error(d, d.post(P, raw=b"\"x\"", ctype="application/json"), 400, "invalid_json")
    expect_error(d, d.post(P, {"limts": {}}), 400, "unknown_field", "limts")
    expect_error(d, d.post(P, {"limits": {"memory": 5}}), 400, "unknown_field")
    expect_error(d, d.post(P, {"limits": "big"}), 400, "wrong_type", "limits")
    expect_error(d, d.post(P, {"limits": {"memory_mb": "512"}}), 400, "wrong_type")
    expect_error(d, d.post(P, {"env": ["A=1"]}), 400, "wrong_type", "env")
    expect_error(d, d.post(P, {"metadata": {"a": 1}}), 400, "wrong_type")
    expect_error(d, d.post(P, {"mode": 3}), 400, "wrong_type", "mode")
    expect_error(d, d.post(P, {"mode": "yolo"}), 400, "invalid_value", "mode")
    expect_error(d, d.post(P, {"limits": {"memory_mb": 999999}}), 400, "invalid_value")
    expect_error(d, d.post(P, {"limits": {"ttl_s": 10 ** 9}}), 400, "invalid_value")
    expect_error(d, d.post(P, {"env": {"1BAD": "x"}}), 400, "invalid_value")
    expect_error(d, d.post(P, {"env": {"A-B": "x"}}), 400, "invalid_value")
    expect_error(d, d.post(P, {"metadata": {f"k{i}": "v" for i in range(33)}}), 400,
                 "invalid_value")
    expect_error(d, d.post(P, {"metadata": {"k": "v" * 257}}), 400, "invalid_value")
    # Settings that widen what the session reaches: 403 (docs/api.md).
    for settings in ({"sandbox": {"excludedCommands": ["docker"]}},
                     {"sandbox": {"allowUnsandboxedCommands": True}},
                     {"sandbox": {"enableWeakerNestedSandbox": True}},
                     {"sandbox": {"network": {"allowUnixSockets": ["/run/x.sock"]}}},
                     {"sandbox": {"network": {"allowAllUnixSockets": True}}}):
        r = d.post(P, {"settings": settings})
        check(r.status == 403, f"settings {settings} refused", r)
        check(r.error_code() == "forbidden", "a widening setting is forbidden", r)
        d.healthy()
    for settings in ({"sandbox": {"filesystem": {"allowWrite": ["/etc"]}}},
                     {"sandbox": {"filesystem": {"allowRead": ["/root"]}}}):
        r = d.post(P, {"settings": settings})
        check(r.status == 400, f"settings {settings} refused", r)
        check(r.error_code() in ("invalid_value", "unknown_field"),
              "a refused setting is invalid_value", r)
        d.healthy()
    # A restricting setting is fine.
    d.create(settings={"sandbox": {"filesystem": {"denyRead": ["/opt/vendor/.env*"]}}})
    # body too large, wrong media type
    big = json.dumps({"metadata": {"k": "x" * (2 * 1024 * 1024)}}).encode()
    expect_error(d, d.raw_request("POST", P, big, ctype="application/json"), 413, "too_large")
    expect_error(d, d.post(P, raw=b"{}", ctype="text/plain"), 415, "unsupported_media_type")
    # routes, methods, ids
    expect_error(d, d.get("/v1/nope"), 404, "not_found")
    expect_error(d, d.get("/v2/sessions"), 404, "not_found")
    r = d.request("PUT", P, raw=b"{}", ctype="application/json")
    expect_error(d, r, 405, "method_not_allowed")
    check(r.header("Allow") and "POST" in r.header("Allow"), "405 sets Allow", r.headers)
    r = d.request("PATCH", "/v1/sessions/s_00000000000000000000")
    expect_error(d, r, 405, "method_not_allowed")
    for path in ("/v1/sessions/s_00000000000000000000", "/v1/sessions/bogus",
                 "/v1/sessions/s_00000000000000000000/processes",
                 "/v1/sessions/s_00000000000000000000/files/a"):
        expect_error(d, d.get(path), 404, "not_found")
    expect_error(d, d.delete("/v1/sessions/s_00000000000000000000"), 404, "not_found")
    expect_error(d, d.get("/v1/sessions?limit=0"), 400, "invalid_value")
    expect_error(d, d.get("/v1/sessions?limit=501"), 400, "invalid_value")
    expect_error(d, d.get("/v1/sessions?state=bogus"), 400, "invalid_value")
    expect_error(d, d.get("/v1/sessions?cursor=zzz"), 400, "invalid_value")


@case
def sessions_cursor_nul(d):
    # A cursor holding a NUL byte is malformed like any other (airlockd
    # answered 200 with a page before 0d839f1).
    d.create()
    expect_error(d, d.get("/v1/sessions?cursor=%00garbage"), 400, "invalid_value")


def raw_bytes(d, method, path, headers=b"", body=b"", key="alice"):
    """Sends a request whose path (and extra header lines) are bytes as
    they are, which http.client would refuse or re-encode. Returns a Resp."""
    head = ((method if isinstance(method, bytes) else method.encode()) + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + b"Authorization: Bearer " + d.keys[key].encode() + b"\r\n" + headers
            + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
    s = socket.create_connection(("127.0.0.1", d.port), timeout=60)
    try:
        s.sendall(head + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    headpart, _, rest = data.partition(b"\r\n\r\n")
    lines = headpart.decode("latin-1").split("\r\n")
    check(lines and lines[0].startswith("HTTP/1."), "an HTTP response", data[:200])
    headers_out = [tuple(x.split(": ", 1)) for x in lines[1:] if ": " in x]
    return Resp(int(lines[0].split()[1]), headers_out, rest)


def expect_clean_error(d, what, r, status, code, field=None):
    """Like expect_error, and the body is valid UTF-8 JSON whose message
    holds no control character (a request's CR, LF or NUL) and no
    raw byte (the bytes are quoted as \\xHH or left out)."""
    check(r.status == status, f"{what}: status {status} ({code})", r)
    check(r.error_code() == code, f"{what}: error code {code}", r)
    msg = r.json["error"]["message"]
    check(not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in msg),
          f"{what}: no control characters in the message", msg)
    if field is not None:
        check(r.json["error"].get("field") == field, f"{what}: error names field {field}", r)


@case
def url_bytes(d):
    # Issue 12 item 7: a byte that is not UTF-8 (or a CR, LF, NUL) in a URL,
    # a query or a header answers what its valid form gets, never
    # "500 internal: out of memory" (the message used to repeat the bytes,
    # so the error's JSON could not be encoded).
    sid = d.create()
    bg = d.post(f"/v1/sessions/{sid}/exec", {"argv": ["sleep", "60"], "background": True})
    check(bg.status == 202, "background exec", bg)
    S, P = f"/v1/sessions/{sid}", f"/v1/sessions/{sid}/processes"
    oct = "application/octet-stream"
    nf, bad_path, bad_value = (404, "not_found"), (400, "invalid_path"), (400, "invalid_value")
    cases = [
        # the requests
        ("GET", "/v1/sessions/s_%FF%FE", None, nf),
        ("DELETE", "/v1/sessions/%C3%28", None, nf),
        ("POST", "/v1/sessions/%FF/exec", {"argv": ["true"]}, nf),
        ("GET", P + "/p_%FF", None, nf),
        ("GET", "/v1/sessions?state=%FF", None, bad_value + ("state",)),
        # CR, LF, NUL in the same places
        ("GET", "/v1/sessions/s_%0D%0A", None, nf),
        ("DELETE", "/v1/sessions/s_%0D%0ASet-Cookie:%20x", None, nf),
        ("GET", "/v1/sessions/s_%00", None, bad_path),
        ("GET", P + "/p_%0D%0A", None, nf),
        ("GET", P + "/p_1%00", None, bad_path),
        ("GET", "/v1/sessions?state=%0D%0A", None, bad_value + ("state",)),
        ("GET", "/v1/sessions?state=%00", None, bad_value + ("state",)),
        ("GET", "/v1/sessions?cursor=%FF", None, bad_value + ("cursor",)),
        ("GET", "/v1/sessions?limit=%FF", None, bad_value + ("limit",)),
        ("GET", "/v1/sessions?%FF%00=1", None, bad_value),
        # every route with a session id
        ("GET", "/v1/sessions/%FF", None, nf),
        ("PATCH", "/v1/sessions/%FF/policy", {}, nf),
        ("POST", "/v1/sessions/%FF/keepalive", {}, nf),
        ("GET", "/v1/sessions/%FF/processes", None, nf),
        ("GET", "/v1/sessions/%FF/processes/p_1", None, nf),
        ("GET", "/v1/sessions/%FF/approvals", None, nf),
        ("POST", "/v1/sessions/%FF/approvals/a_1", {"decision": "allow"}, nf),
        ("GET", "/v1/sessions/%FF/files/a", None, nf),
        ("DELETE", "/v1/sessions/%FF%0A/files/a", None, nf),
        ("GET", "/v1/sessions/%E2%82/events", None, nf),
        # every route with a process or approval id
        ("GET", P + "/p_%C3%28/output", None, nf),
        ("POST", P + "/p_%FF/signal", {"signal": "KILL"}, nf),
        ("POST", P + "/%FF%0D/stdin", b"x", nf),
        ("POST", S + "/approvals/a_%FF%FE", {"decision": "deny"}, nf),
        ("POST", S + "/approvals/%0D%0A", {"decision": "deny"}, nf),
        # file paths: not UTF-8 or a control byte is invalid_path (docs/api.md)
        ("GET", S + "/files/%FF", None, bad_path),
        ("PUT", S + "/files/a%0D%0Ab", b"x", bad_path),
        ("DELETE", S + "/files/%C3%28", None, bad_path),
        ("GET", S + "/files/a%00", None, bad_path),
        # an unknown route
        ("GET", "/v1/nope%FF", None, nf),
    ]
    for method, path, body, want in cases:
        if isinstance(body, bytes):
            r = d.request(method, path, raw=body, ctype=oct)
        else:
            r = d.request(method, path, body=body)
        expect_clean_error(d, f"{method} {path}", r, *want)
    # raw bytes in the request line, not percent-encoded
    for method, path, want in (("GET", b"/v1/sessions/s_\xff\xfe", nf),
                               ("DELETE", b"/v1/sessions/s_\xc3\x28", nf),
                               ("GET", P.encode() + b"/p_\xff", nf),
                               ("GET", b"/v1/nope\xff", nf),
                               ("GET", b"/v1/sessions?state=\xff", bad_value),
                               (b"G\xffT", b"/v1/sessions", (405, "method_not_allowed")),
                               (b"FOO\x01", b"/v1/nope\xff", nf)):
        expect_clean_error(d, f"raw {method!r} {path!r}", raw_bytes(d, method, path), *want)
    # header values echoed in an error, or checked
    r = d.post("/v1/sessions", raw=b"{}", ctype="text/\xff\xfe")
    expect_clean_error(d, "Content-Type not UTF-8", r, 415, "unsupported_media_type")
    r = raw_bytes(d, "POST", b"/v1/sessions", b"Content-Type: application/json\r\n"
                  b"Idempotency-Key: \xff\xfe\r\n", b"{}")
    expect_clean_error(d, "Idempotency-Key not UTF-8", r, 400, "invalid_value", "Idempotency-Key")
    r = d.get(f"{S}/events", headers={"Last-Event-ID": "\xff"})
    expect_clean_error(d, "Last-Event-ID not UTF-8", r, 400, "invalid_value", "Last-Event-ID")
    # a body key cut inside a UTF-8 character by the message's bounds
    r = d.post("/v1/sessions", {"metadata": {"k" * 99 + "\u00e9": 1}})
    expect_clean_error(d, "a cut character", r, 400, "wrong_type")
    # valid UTF-8 names keep working, and their messages show them as they are
    r = d.request("PUT", S + "/files/caf%C3%A9.txt", raw=b"x", ctype=oct)
    check(r.status == 201 and r.json.get("name") == "caf\u00e9.txt", "a UTF-8 file name", r)
    r = d.get(S + "/files/no%C3%A9")
    expect_clean_error(d, "missing UTF-8 name", r, 404, "not_found", "path")
    check("no\u00e9" in r.json["error"]["message"], "the name is shown as it is", r.json)
    r = d.get("/v1/sessions/s_%FF%0A")
    check(r.json["error"]["message"] == "no session s_\\xFF\\x0A",
          "the id's bytes are quoted, escaped", r.json)
    # the audit rows of those calls are printable ASCII, no session for an
    # id that named none
    import sqlite3
    db = sqlite3.connect(f"file:{d.state}/airlockd.db?mode=ro", uri=True)
    db.text_factory = bytes
    rows = db.execute("SELECT method, path, status, session FROM audit").fetchall()
    db.close()
    check(all(all(0x20 < c < 0x7f for c in p) for _, p, _, _ in rows),
          "audit paths are printable ASCII", [p for _, p, _, _ in rows])
    check((b"DELETE", b"/v1/sessions/s_%C3(", 404, None) in rows,
          "a raw byte is percent-encoded in the audit path", rows[-12:])
    check(all(se is None or se == sid.encode() for _, _, _, se in rows),
          "the audit's session is one that exists", rows)
    d.delete(S)


@case
def auth(d):
    for key in (None, "k_0000000000000000", "not-a-key"):
        r = d.get("/v1/sessions", key=key)
        expect_error(d, r, 401, "unauthorized")
    r = d.request("GET", "/v1/sessions", key=None, headers={"Authorization": "Basic Zm9vOmJhcg=="})
    expect_error(d, r, 401, "unauthorized")
    # A revoked key stops working; the user's other key does not.
    old = d.keys["alice"]
    d.new_key("alice")
    out = d.admin("key", "ls", "--user", "alice")
    kids = sorted(set(__import__("re").findall(r"k_[0-9a-f]{16}", out)))
    check(len(kids) == 2, "key ls shows both key ids", out)
    check(old not in out and d.keys["alice"] not in out, "key ls never shows a key", out)
    # Revoke every key id whose use fails afterwards is the old one: try both.
    d.admin("key", "revoke", kids[0])
    a = d.get("/v1/sessions", key=old).status
    b = d.get("/v1/sessions").status
    check(sorted([a, b]) == [200, 401], "revoking one key id leaves the other working", (a, b))
    check(d.get("/healthz", key=None).status == 200, "/healthz needs no key")
    check(d.get("/metrics", key=None).status == 200, "/metrics needs no key")


@case
def audit(d):
    # The audit log (docs/api.md "Users and keys"; state/airlockd.db as in
    # docs/airlockd.md) holds every changing call, refused ones included.
    sid = d.create()
    d.post(f"/v1/sessions/{sid}/keepalive")
    # A quick command's exit is saved with its exec's audit row, in one
    # transaction: both must be there.
    ex = d.post(f"/v1/sessions/{sid}/exec", {"argv": ["sh", "-c", "exit 3"]})
    pid = ex.header("X-Airlock-Process")
    check(ex.status == 200 and pid, "exec of a quick command", ex)
    d.post("/v1/sessions", {"bogus": 1})
    import sqlite3
    db = sqlite3.connect(f"file:{d.state}/airlockd.db?mode=ro", uri=True)
    saved = db.execute("SELECT running, pub FROM processes WHERE session = ? AND num = ?",
                       (sid, int(pid[2:]))).fetchall()
    db.close()
    code = (json.loads(saved[0][1]).get("exit") or {}).get("code") if saved else None
    check(len(saved) == 1 and saved[0][0] == 0 and code == 3,
          "the quick command's exit is saved", saved)
    d.delete(f"/v1/sessions/{sid}")
    db = sqlite3.connect(f"file:{d.state}/airlockd.db?mode=ro", uri=True)
    rows = db.execute("SELECT user, key_id, method, path, status, session FROM audit "
                      "ORDER BY seq").fetchall()
    db.close()
    want = [("POST", "/v1/sessions", 201, sid), ("POST", f"/v1/sessions/{sid}/keepalive", 200,
                                                    sid),
            ("POST", f"/v1/sessions/{sid}/exec", 200, sid),
            ("POST", "/v1/sessions", 400, None), ("DELETE", f"/v1/sessions/{sid}", 200, sid)]
    got = [(m, p, st, se) for u, k, m, p, st, se in rows if u == "alice"][-5:]
    check(got == want, "audit rows", rows[-6:])
    check(all(k and k.startswith("k_") for u, k, *_ in rows if u == "alice"), "key ids",
          rows[-6:])
    check(not any(r[2] == "GET" for r in rows), "reads are not audited", rows)


@case
def isolation(d):
    sid = d.create()
    bg = d.post(f"/v1/sessions/{sid}/exec", {"argv": ["sleep", "60"], "background": True})
    check(bg.status == 202, "background exec", bg)
    pid = bg.json["id"]
    d.run(sid, "echo hi > a.txt")
    routes = [
        ("GET", f"/v1/sessions/{sid}", None),
        ("DELETE", f"/v1/sessions/{sid}", None),
        ("POST", f"/v1/sessions/{sid}/keepalive", None),
        ("POST", f"/v1/sessions/{sid}/exec", {"argv": ["true"]}),
        ("GET", f"/v1/sessions/{sid}/processes", None),
        ("GET", f"/v1/sessions/{sid}/processes/{pid}", None),
        ("GET", f"/v1/sessions/{sid}/processes/{pid}/output", None),
        ("POST", f"/v1/sessions/{sid}/processes/{pid}/signal", {"signal": "KILL"}),
        ("GET", f"/v1/sessions/{sid}/files/a.txt", None),
        ("GET", f"/v1/sessions/{sid}/files/", None),
        ("DELETE", f"/v1/sessions/{sid}/files/a.txt", None),
        ("GET", f"/v1/sessions/{sid}/approvals", None),
        ("POST", f"/v1/sessions/{sid}/approvals/a_0000000000000000", {"decision": "allow"}),
        ("GET", f"/v1/sessions/{sid}/events", None),
    ]
    for method, path, body in routes:
        r = d.request(method, path, body=body, key="bob", timeout=10)
        expect_error(d, r, 404, "not_found")
    r = d.request("PUT", f"/v1/sessions/{sid}/files/b.txt", raw=b"x", key="bob",
                  ctype="application/octet-stream")
    expect_error(d, r, 404, "not_found")
    r = d.request("POST", f"/v1/sessions/{sid}/processes/{pid}/stdin", raw=b"x", key="bob",
                  ctype="application/octet-stream")
    expect_error(d, r, 404, "not_found")
    check(d.session(sid)["state"] == "ready", "bob's calls changed nothing")
    check(d.get(f"/v1/sessions/{sid}/files/a.txt").body == b"hi\n", "file still there")
    p = d.get(f"/v1/sessions/{sid}/processes/{pid}").json
    check(p["state"] == "running", "alice's process still runs", p)
    bsid = d.create(key="bob")
    check([s["id"] for s in d.get("/v1/sessions", key="bob").json["sessions"]] == [bsid],
          "bob lists only his own")
    check([s["id"] for s in d.get("/v1/sessions").json["sessions"]] == [sid],
          "alice lists only her own")
    allids = [s["id"] for s in d.get("/v1/sessions", key="root-admin").json["sessions"]]
    check(sid in allids and bsid in allids, "the admin lists both", allids)
    check(d.session(sid, key="root-admin")["user"] == "alice", "the admin reads alice's")
    check(d.run(bsid, "echo x", key="root-admin") == b"x\n", "the admin execs in bob's")
    r = d.delete(f"/v1/sessions/{bsid}", key="root-admin")
    check(r.status == 200 and r.json["state"] == "deleted", "the admin deletes bob's", r)


@case
def quotas(d):
    d.add_user("carol", max_sessions=2)
    d.add_user("dave", max_memory_mb=300)
    a = d.create(key="carol")
    d.create(key="carol")
    r = d.create(key="carol", expect=429)
    expect_error(d, r, 429, "quota_exceeded")
    d.delete(f"/v1/sessions/{a}", key="carol")
    d.create(key="carol")
    d.create(key="dave", limits={"memory_mb": 200})
    r = d.create(key="dave", expect=429, limits={"memory_mb": 200})
    expect_error(d, r, 429, "quota_exceeded")
    d.create(key="dave", limits={"memory_mb": 100})
    # Other users are not affected.
    d.create(key="bob")
    # Concurrent creates cannot overrun the quota.
    from concurrent.futures import ThreadPoolExecutor
    d.add_user("erin", max_sessions=3)
    with ThreadPoolExecutor(10) as ex:
        rs = list(ex.map(lambda i: d.post("/v1/sessions", {}, key="erin"), range(10)))
    for r in rs:
        if r.status == 201:
            d.sessions.add(r.json["id"])
    codes = sorted(r.status for r in rs)
    check(codes == [201] * 3 + [429] * 7, "10 concurrent creates, quota 3", codes)


@case
def uid_range_exhausted(d):
    # uid_range of 2 (see main): a third live session has no uid: 503; a
    # deleted session gives its uid back.
    a = d.create()
    d.create(key="bob")
    r = d.create(expect=503)
    expect_error(d, r, 503, "unavailable")
    d.delete(f"/v1/sessions/{a}")
    d.create()


@case
def expiry(d):
    ttl = d.create(limits={"ttl_s": 2})
    idle = d.create(limits={"idle_s": 2})
    kept = d.create(limits={"idle_s": 3})
    busy = d.create(limits={"idle_s": 2})
    bp = d.post(f"/v1/sessions/{busy}/exec", {"argv": ["sleep", "6"], "background": True})
    check(bp.status == 202, "background in busy", bp)
    # keepalive holds `kept` past its idle time
    end = time.monotonic() + 6
    while time.monotonic() < end:
        r = d.post(f"/v1/sessions/{kept}/keepalive")
        check(r.status == 200, "keepalive", r)
        time.sleep(0.5)
    check(d.session(kept)["state"] == "ready", "keepalive resets the idle timer")
    # A session with a running process is not idle (read the session first:
    # if the process still runs after that, it ran when the state was read).
    bs = d.session(busy)
    still = d.get(f"/v1/sessions/{busy}/processes/{bp.json['id']}").json["state"] == "running"
    if still:
        check(bs["state"] == "ready", "a running process keeps the session from idling", bs)
    for sid, reason in ((ttl, "ttl"), (idle, "idle"), (kept, "idle"), (busy, "idle")):
        s = wait_until(30, lambda: (lambda s: s if s["state"] == "expired" else None)(
            d.session(sid)), f"{sid} expires")
        check(s["end_reason"] == reason, f"end_reason {reason}", s)
        check(s["ended_at"] is not None, "expired: ended_at", s)
        expect_error(d, d.post(f"/v1/sessions/{sid}/exec", {"argv": ["true"]}), 409,
                     "conflict")
        left = leftovers([sid], d.state)
        check(not left, "an expired session leaves nothing", left)


@case
def exec_exit_listed_at_once(d):
    """A foreground command's exit is applied before its exec answer ends:
    asked right after, the process is exited, never still running. The
    command outlives the quick-exit wait (so its output streams), and its
    exit is heard on the watch socket while the daemon's control thread
    would apply it a moment later: the race this case repeats."""
    sid = d.create()
    for i in range(40):
        st, out, err, ex, start = d.exec(sid, shell="sleep 0.03; echo x; exit 4")
        check(ex["code"] == 4 and out == b"x\n", "exit 4", (ex, out))
        p = d.get(f"/v1/sessions/{sid}/processes/{start['process']}")
        check(p.status == 200 and p.json["state"] == "exited" and p.json["exit"]["code"] == 4,
              f"listed exited at once (run {i})", p)


@case
def exec_exit_listed_repeated(d):
    """The exit line of a foreground command goes out only once the exit is
    in the process table, whichever thread applied it (the request thread
    hearing it on the watch socket, or the control thread, which saves and
    publishes it a moment after marking it exited): asked right after, by
    id or in the list, the process is exited with its code, every time.
    The command prints, so its response streams and the two threads race
    for the exit; 200 runs repeat the window."""
    sid = d.create()
    P = f"/v1/sessions/{sid}/processes"
    for i in range(200):
        st, out, err, ex, start = d.exec(sid, shell="echo x; exit 5")
        check(ex["code"] == 5 and out == b"x\n", "exit 5", (ex, out))
        p = d.get(f"{P}/{start['process']}")
        check(p.status == 200 and p.json["state"] == "exited" and p.json["exit"]["code"] == 5,
              f"got exited at once (run {i})", p)
        r = d.get(P)
        mine = [x for x in r.json["processes"] if x["id"] == start["process"]] \
            if r.status == 200 else []
        check(len(mine) == 1 and mine[0]["state"] == "exited" and mine[0]["exit"]["code"] == 5,
              f"listed exited at once (run {i})", (r, mine))


@case
def exec_foreground(d):
    sid = d.create()
    st, out, err, ex, start = d.exec(sid, argv=["sh", "-c", "echo out; echo err >&2; exit 3"])
    check(out == b"out\n" and err == b"err\n", "stdout and stderr apart", (out, err))
    check(ex["code"] == 3 and ex["signal"] is None and ex["reason"] == "exited", "exit 3", ex)
    check(isinstance(ex.get("duration_ms"), int), "duration_ms", ex)
    check(start and start["process"].startswith("p_") and isinstance(start["pid"], int),
          "start line first", start)
    fg = start["process"]
    p = d.get(f"/v1/sessions/{sid}/processes/{fg}")
    check(p.status == 200 and p.json["background"] is False and p.json["state"] == "exited"
          and p.json["exit"]["code"] == 3 and p.json["output"] is None,
          "a foreground process is listed, exited, without stored output", p)
    expect_error(d, d.get(f"/v1/sessions/{sid}/processes/{fg}/output"), 404, "not_found")
    c, r = d.stream("POST", f"/v1/sessions/{sid}/exec", {"argv": ["true"]})
    check((r.getheader("X-Airlock-Process") or "").startswith("p_"), "X-Airlock-Process",
          r.getheaders())
    read_exec_stream(r)
    c.close()
    # binary, not UTF-8 -> data_b64; NUL bytes; byte-exact
    blob = bytes(range(256)) * 64
    d.request("PUT", f"/v1/sessions/{sid}/files/blob", raw=blob,
              ctype="application/octet-stream")
    st, out, err, ex, _ = d.exec(sid, argv=["cat", "blob"])
    check(out == blob, "binary output byte-exact", len(out))
    # Control bytes (valid UTF-8, escaped 6x in JSON) and NULs, 1 MB each.
    st, out, err, ex, _ = d.exec(sid, shell="head -c 1000000 /dev/zero | tr '\\0' '\\1'")
    check(out == b"\x01" * 1000000, "1 MB of control bytes", (len(out), ex))
    st, out, err, ex, _ = d.exec(sid, shell="head -c 1000000 /dev/zero")
    check(out == b"\0" * 1000000, "1 MB of NUL bytes", (len(out), ex))
    st, out, err, ex, _ = d.exec(sid, shell="printf '\\303\\251t\\303\\251'")
    check(out == "été".encode(), "UTF-8 output", out)
    # signal
    st, out, err, ex, _ = d.exec(sid, shell="kill -TERM $$")
    check(ex["reason"] == "signaled" and ex["signal"] in (15, "TERM", "SIGTERM"),
          "killed by a signal", ex)
    # not found / not executable
    st, out, err, ex, _ = d.exec(sid, argv=["no-such-command-xyz"])
    check(ex["code"] == 127 and ex["reason"] == "not-found", "not-found is 127", ex)
    d.request("PUT", f"/v1/sessions/{sid}/files/noexec.sh", raw=b"#!/bin/sh\necho no\n",
              ctype="application/octet-stream")
    st, out, err, ex, _ = d.exec(sid, argv=["./noexec.sh"])
    check(ex["code"] == 126 and ex["reason"] == "not-executable", "not-executable is 126", ex)
    # timeout
    st, out, err, ex, _ = d.exec(sid, argv=["sleep", "60"], timeout_s=1)
    check(ex["reason"] == "timeout", "timeout", ex)
    # cwd, env, stdin, shell, merge_stderr
    d.run(sid, "mkdir -p sub")
    st, out, err, ex, _ = d.exec(sid, argv=["pwd"], cwd="/workspace/sub")
    check(out == b"/workspace/sub\n", "cwd", out)
    st, out, err, ex, _ = d.exec(sid, argv=["pwd"])
    check(out == b"/workspace\n", "cwd defaults to /workspace", out)
    st, out, err, ex, _ = d.exec(sid, shell="echo $DEBUG", env={"DEBUG": "1"})
    check(out == b"1\n", "env", out)
    st, out, err, ex, _ = d.exec(sid, argv=["cat"], stdin="text in")
    check(out == b"text in", "stdin", out)
    st, out, err, ex, _ = d.exec(sid, argv=["cat"], stdin_b64=base64.b64encode(blob).decode())
    check(out == blob, "stdin_b64", len(out))
    st, out, err, ex, _ = d.exec(sid, argv=["cat"])
    check(out == b"" and ex["code"] == 0, "no stdin: empty", (out, ex))
    st, out, err, ex, _ = d.exec(sid, shell="echo a; echo b >&2", merge_stderr=True)
    check(out == b"a\nb\n" and err == b"", "merge_stderr", (out, err))
    # memory limit
    small = d.create(limits={"memory_mb": 64})
    st, out, err, ex, _ = d.exec(small, argv=["python3", "-c",
                                             "b = bytearray(512 * 1024 * 1024); print(len(b))"])
    check(ex["reason"] == "memory", "killed by the memory limit", (ex, err[-300:]))
    metrics = d.get("/metrics", key=None).body.decode()
    for lim in ("memory", "timeout"):
        line = [x for x in metrics.splitlines()
                if x.startswith(f'airlock_limit_kills_total{{limit="{lim}"}}')]
        check(line and float(line[0].split()[-1]) >= 1, f"limit kill counted: {lim}", line)
    # errors
    P = f"/v1/sessions/{sid}/exec"
    expect_error(d, d.post(P, {"argv": ["a"], "shell": "b"}), 400, "invalid_value")
    expect_error(d, d.post(P, {}), 400, "invalid_value")
    expect_error(d, d.post(P, {"argv": []}), 400, "invalid_value")
    expect_error(d, d.post(P, {"argv": "ls"}), 400, "wrong_type", "argv")
    expect_error(d, d.post(P, {"argv": [1]}), 400, "wrong_type")
    expect_error(d, d.post(P, {"argv": ["cat"], "stdin": "a", "stdin_b64": "YQ=="}), 400,
                 "invalid_value")
    expect_error(d, d.post(P, {"argv": ["cat"], "stdin_b64": "!!"}), 400, "invalid_value")
    expect_error(d, d.post(P, {"argv": ["true"], "timeout_s": -1}), 400, "invalid_value")
    expect_error(d, d.post(P, {"argv": ["true"], "nope": 1}), 400, "unknown_field", "nope")
    expect_error(d, d.post(P, {"argv": ["true"], "env": {"A": 1}}), 400, "wrong_type")
    expect_error(d, d.post(P, raw=b"{", ctype="application/json"), 400, "invalid_json")
    big = json.dumps({"argv": ["echo", "x" * (2 * 1024 * 1024)]}).encode()
    expect_error(d, d.raw_request("POST", P, big, ctype="application/json"), 413, "too_large")
    expect_error(d, d.post("/v1/sessions/s_00000000000000000000/exec", {"argv": ["true"]}),
                 404, "not_found")
    # A client that goes away kills the command.
    c, r = d.stream("POST", P, {"shell": "echo started; exec sleep 1000"})
    r.fp.readline()
    c.close()
    wait_until(20, lambda: not any(b"sleep 1000" in line for line in ps_in(d, sid)),
               "a disconnected foreground command is killed")


def ps_in(d, sid):
    out = d.run(sid, "ps -eo args 2>/dev/null || cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
    return out.splitlines()


@case
def delete_during_exec(d):
    # Deleting a session ends the commands running in it: a foreground
    # stream ends with its exit line, a follower of background output ends.
    sid = d.create()
    P = f"/v1/sessions/{sid}"
    bg = d.post(P + "/exec", {"shell": "echo bg; exec sleep 1000", "background": True}).json
    wait_until(20, lambda: d.get(P + f"/processes/{bg['id']}/output").body == b"bg\n",
               "background output")
    c2, follower = d.stream("GET", P + f"/processes/{bg['id']}/output?follow=1")
    h = thread(lambda: d.exec(sid, shell="echo fg; exec sleep 1000"))
    wait_until(20, lambda: len([p for p in d.get(P + "/processes").json["processes"]
                                if p["state"] == "running"]) == 2, "both running")
    r = d.delete(P)
    check(r.status == 200 and r.json["state"] == "deleted", "delete", r)
    st, out, err, ex, _ = h.result(60)
    check(out == b"fg\n" and ex["reason"] in ("session-ended", "signaled"),
          "the foreground stream ends with an exit line", ex)
    follower.fp.raw._sock.settimeout(60)
    check(follower.read() == b"bg\n", "the follower ends")
    c2.close()
    left = leftovers([sid], d.state)
    check(not left, "nothing left", left)


@case
def processes(d):
    sid = d.create()
    P = f"/v1/sessions/{sid}"
    r = d.post(P + "/exec", {"shell": "for i in 1 2 3; do echo line$i; done; sleep 60",
                             "background": True})
    check(r.status == 202, "background exec is 202", r)
    p = r.json
    for k in ("id", "session", "pid", "argv", "background", "state", "started_at", "output"):
        check(k in p, f"process object has {k}", p)
    check(p["background"] is True and p["session"] == sid, "process fields", p)
    pid = p["id"]
    r = d.get(P + "/processes")
    check(r.status == 200 and pid in [x["id"] for x in r.json["processes"]], "listed", r)
    out = wait_until(20, lambda: (lambda r: r.body if r.body == b"line1\nline2\nline3\n"
                                  else None)(d.get(P + f"/processes/{pid}/output")),
                     "background output")
    r = d.get(P + f"/processes/{pid}/output?offset=6")
    check(r.status == 200 and r.body == b"line2\nline3\n", "output from an offset", r)
    check(r.header("X-Airlock-Offset") == "6", "X-Airlock-Offset", r.headers)
    check(r.header("Content-Type").startswith("application/octet-stream"), "octet-stream", r)
    r = d.get(P + f"/processes/{pid}/output?offset=1000")
    check(r.status == 200 and r.body == b"", "offset past the end: empty", r)
    r = d.get(P + f"/processes/{pid}/output?stream=stderr")
    check(r.status == 200 and r.body == b"", "stderr stream", r)
    expect_error(d, d.get(P + f"/processes/{pid}/output?stream=both"), 400, "invalid_value")
    expect_error(d, d.get(P + "/processes/p_999999"), 404, "not_found")
    r = d.post(P + f"/processes/{pid}/signal", {"signal": "TERM"})
    check(r.status == 200 and r.json["id"] == pid, "signal returns the process", r)
    p = wait_until(20, lambda: (lambda j: j if j["state"] == "exited" else None)(
        d.get(P + f"/processes/{pid}").json), "signalled process exits")
    check(p["exit"]["reason"] == "signaled", "exit reason signaled", p)
    check(p["output"]["stdout"] == 18, "output sizes", p)
    expect_error(d, d.post(P + f"/processes/{pid}/signal", {"signal": "TERM"}), 409,
                 "conflict")
    # follow streams until exit; numbers and names for signals
    r = d.post(P + "/exec", {"shell": "sleep 0.5; echo a; sleep 0.5; echo b",
                             "background": True})
    r = d.get(P + f"/processes/{r.json['id']}/output?follow=1", timeout=60)
    check(r.status == 200 and r.body == b"a\nb\n", "follow streams to the end", r)
    r = d.post(P + "/exec", {"argv": ["sleep", "60"], "background": True})
    q = r.json["id"]
    expect_error(d, d.post(P + f"/processes/{q}/signal", {"signal": "BOGUS"}), 400,
                 "invalid_value")
    check(d.post(P + f"/processes/{q}/signal", {"signal": 9}).status == 200, "signal by number")
    p = wait_until(20, lambda: (lambda j: j if j["state"] == "exited" else None)(
        d.get(P + f"/processes/{q}").json), "killed process exits")
    check(p["exit"]["signal"] in (9, "KILL", "SIGKILL"), "signal 9", p)
    # stdin of a background process
    r = d.post(P + "/exec", {"argv": ["cat"], "background": True})
    c = r.json["id"]
    r = d.request("POST", P + f"/processes/{c}/stdin", raw=b"hello ",
                  ctype="application/octet-stream")
    check(r.status == 200, "stdin write", r)
    r = d.request("POST", P + f"/processes/{c}/stdin?eof=1", raw=b"world",
                  ctype="application/octet-stream")
    check(r.status == 200, "stdin write + eof", r)
    r = d.get(P + f"/processes/{c}/output?follow=1", timeout=60)
    check(r.body == b"hello world", "stdin reached the process", r)
    r = d.request("POST", P + f"/processes/{c}/stdin", raw=b"more",
                  ctype="application/octet-stream")
    expect_error(d, r, 409, "conflict")


@case
def output_truncated(d):
    # The process lives on after writing, as a long job would: the oldest
    # bytes past max_output_bytes (64 KiB here) are dropped meanwhile.
    check_truncated(d, "head -c 300000 /dev/zero | tr '\\0' x; sleep 3")


@case
def output_truncated_quick_exit(d):
    # Output is trimmed at exit too (before 0d839f1 only while the process
    # ran, so a process that wrote too much and exited at once kept it all).
    check_truncated(d, "head -c 300000 /dev/zero | tr '\\0' x")


def check_truncated(d, cmd):
    sid = d.create()
    P = f"/v1/sessions/{sid}"
    r = d.post(P + "/exec", {"shell": cmd, "background": True})
    pid = r.json["id"]
    wait_until(30, lambda: d.get(P + f"/processes/{pid}").json["state"] == "exited", "exits")
    r = d.get(P + f"/processes/{pid}/output?offset=0")
    expect_error(d, r, 410, "output_truncated")
    early = r.json["error"].get("earliest_offset")
    check(isinstance(early, int) and 0 < early <= 300000 - 65536, "earliest_offset", r.json)
    r = d.get(P + f"/processes/{pid}/output?offset={early}")
    check(r.status == 200 and r.body == b"x" * (300000 - early), "the kept tail", len(r.body))


@case
def files(d):
    sid = d.create()
    F = f"/v1/sessions/{sid}/files/"
    oct = "application/octet-stream"
    r = d.request("PUT", F + "a.txt", raw=b"abc", ctype=oct)
    check(r.status == 201, "PUT a new file: 201", r)
    check(r.json.get("name") == "a.txt" and r.json.get("size") == 3, "PUT returns the entry",
          r.json)
    r = d.request("PUT", F + "a.txt", raw=b"abcd", ctype=oct)
    check(r.status == 200, "PUT replaces: 200", r)
    r = d.get(F + "a.txt")
    check(r.status == 200 and r.body == b"abcd", "GET the bytes", r)
    check(r.header("Content-Type").startswith(oct), "octet-stream", r.headers)
    r = d.request("PUT", F + "deep/er/b%20c.bin", raw=bytes(range(256)), ctype=oct)
    check(r.status == 201, "missing parents created", r)
    check(d.run(sid, "cat 'deep/er/b c.bin' | od -An -tx1 | head -1").split()[:3]
          == [b"00", b"01", b"02"], "percent-encoded name")
    check(d.run(sid, "stat -c %u 'deep/er/b c.bin'") == b"1000\n",
          "files belong to the sandbox's user")
    r = d.request("PUT", F + "newdir?type=dir", raw=b"", ctype=oct)
    check(r.status == 201, "PUT ?type=dir", r)
    expect_error(d, d.request("PUT", F, raw=b"x", ctype=oct), 400, "invalid_path")
    r = d.delete(F)
    check(400 <= r.status < 500 and r.error_code(), "the root cannot be deleted", r)
    d.healthy()
    d.run(sid, "ln -s a.txt link; ln -s /etc/passwd out; ln -s ../../../../.. up; "
               "ln -s /etc outdir")
    r = d.get(F)
    check(r.status == 200 and r.json.get("path") in ("", "/", "."), "GET files/ lists root",
          r.json)
    ents = {e["name"]: e for e in r.json["entries"]}
    check(ents["a.txt"]["type"] == "file" and ents["a.txt"]["size"] == 4, "file entry", ents)
    check(ents["deep"]["type"] == "dir" and ents["newdir"]["type"] == "dir", "dir entries", ents)
    check(ents["link"]["type"] == "symlink", "symlink entry", ents)
    check(ents["a.txt"]["mode"] == "0644" or len(ents["a.txt"]["mode"]) == 4, "mode", ents)
    check(ents["a.txt"]["mtime"].endswith("Z"), "mtime", ents)
    r = d.get(F + "deep")
    check(r.status == 200 and [e["name"] for e in r.json["entries"]] == ["er"], "sub listing",
          r.json)
    check(d.get(F + "link").body == b"abcd", "a symlink inside the workspace is followed")
    # bad paths
    for bad in ("../etc/passwd", "..", "a/../../etc/passwd", "%2e%2e/etc/passwd",
                "/etc/passwd", "%2Fetc%2Fpasswd", "a%00b", "out", "outdir/passwd",
                "up/etc/passwd"):
        r = d.get(F + bad)
        expect_error(d, r, 400, "invalid_path")
    for bad in ("../x", "outdir/x", "up/tmp/x", "/tmp/x"):
        r = d.request("PUT", F + bad, raw=b"x", ctype=oct)
        expect_error(d, r, 400, "invalid_path")
        r = d.delete(F + bad)
        expect_error(d, r, 400, "invalid_path")
    # /tmp/x may be anything another program made (a directory, say): only
    # a regular file holding the PUT's byte would mean a write escaped
    check(not os.path.isfile("/tmp/x") or open("/tmp/x", "rb").read() != b"x",
          "nothing written outside")
    expect_error(d, d.get(F + "missing"), 404, "not_found")
    # A FIFO is refused, not opened (which would hang the request).
    d.run(sid, "mkfifo fifo")
    expect_error(d, d.request("GET", F + "fifo", timeout=30), 400, "invalid_path")
    r = d.request("PUT", F + "a.txt/sub", raw=b"x", ctype=oct)
    expect_error(d, r, 409, "conflict")
    big = b"z" * (5 * 1024 * 1024)
    r = d.raw_request("PUT", F + "big", big)
    expect_error(d, r, 413, "too_large")
    check(d.get(F + "big").status == 404, "a refused upload leaves no file")
    # delete
    r = d.delete(F + "a.txt")
    check(r.status == 200 and r.json == {"deleted": "a.txt"}, "DELETE a file", r)
    check(d.get(F + "a.txt").status == 404, "gone")
    r = d.delete(F + "deep")
    check(400 <= r.status < 500, "DELETE a non-empty dir without recursive fails", r)
    r.error_code()
    r = d.delete(F + "deep?recursive=1")
    check(r.status == 200, "DELETE ?recursive=1", r)
    check(d.get(F + "deep").status == 404, "tree gone")
    r = d.delete(F + "newdir")
    check(r.status == 200, "DELETE an empty dir", r)
    check(d.run(sid, "ls /etc/passwd >/dev/null && echo ok") == b"ok\n", "host file untouched")


@case
def approvals(d):
    sid = d.create(mode="regular")
    check(d.session(sid)["mode"] == "regular", "mode regular")
    P = f"/v1/sessions/{sid}"
    c, ev = d.stream("GET", P + "/events")
    check(ev.status == 200, "events", ev.status)

    def decide_when_pending(decision):
        a = wait_until(20, lambda: [x for x in d.get(P + "/approvals").json["approvals"]
                                    if x["state"] == "pending"], "a pending approval")[0]
        check(a["id"].startswith("a_") and a["kind"] == "exec", "approval object", a)
        if decision:
            r = d.post(P + f"/approvals/{a['id']}", {"decision": decision})
            check(r.status == 200, "decide", r)
            check(r.json["state"] == ("allowed" if decision == "allow" else "denied"),
                  "decided state", r.json)
        return a

    h = thread(decide_when_pending, "allow")
    st, out, err, ex, _ = d.exec(sid, argv=["echo", "allowed"])
    a = h.result()
    check(st == 200 and out == b"allowed\n", "an allowed exec runs", (st, out))
    check(a["argv"] == ["echo", "allowed"], "approval argv", a)
    expect_error(d, d.post(P + f"/approvals/{a['id']}", {"decision": "deny"}), 409, "conflict")
    h = thread(decide_when_pending, "deny")
    st, r = d.exec(sid, argv=["echo", "denied"])
    h.result()
    expect_error(d, r, 403, "approval_denied")
    h = thread(decide_when_pending, None)
    st, r = d.exec(sid, argv=["echo", "nobody"])
    h.result()
    expect_error(d, r, 403, "approval_timeout")
    listed = d.get(P + "/approvals").json["approvals"]
    states = sorted(x["state"] for x in listed)
    check(states == ["allowed", "denied", "timed-out"], "approval states", states)
    # docs/api.md: oldest first (the allowed one was asked for first)
    check([x["argv"][1] for x in listed] == ["allowed", "denied", "nobody"],
          "approvals listed oldest first", listed)
    expect_error(d, d.post(P + "/approvals/a_0000000000000000", {"decision": "allow"}), 404,
                 "not_found")
    expect_error(d, d.post(P + f"/approvals/{a['id']}", {"decision": "maybe"}), 400,
                 "invalid_value")
    evs = sse_events(ev, until=lambda e: e["event"] == "approval")
    check(evs[-1]["data"]["session"] == sid, "approval event", evs[-1])
    c.close()


@case
def host_hidden(d):
    # Attack: from inside a session, read the daemon's state (database with
    # every user's sessions and key hashes, other workspaces, control
    # sockets) or the host's private places. All invisible.
    sid = d.create()
    other = d.create(key="bob")
    d.exec(other, key="bob", shell="echo bob-secret > mine.txt")
    db = os.path.join(d.state, "airlockd.db")
    st, out, err, ex, _ = d.exec(sid, shell=(
        f"ls -a {d.state} 2>&1; cat {db} 2>&1 | head -c 64; "
        f"cat {d.state}/sessions/{other}/workspace/mine.txt 2>&1; "
        "ls -A /home /root /var/lib /var/log /var/tmp 2>&1; echo end"))
    check(b"SQLite" not in out and b"No such file" in out.split(b"\n", 1)[0],
          "the state dir is invisible", out)
    check(b"bob-secret" not in out, "another session's workspace is invisible", out)
    check(out.rstrip().endswith(b"end"), "the probe ran", out)
    for path in (b"/home:", b"/root:", b"/var/lib:", b"/var/log:", b"/var/tmp:"):
        part = out.split(path, 1)[1].split(b"\n\n", 1)[0] if path in out else b"?"
        check(part.strip() in (b"", b"end"), f"{path.decode()} is empty inside", out)
    check(oct(os.stat(d.state).st_mode & 0o777) == "0o700", "the state dir is root-only",
          oct(os.stat(d.state).st_mode))


@case
def settings_deny_read(d):
    # A deny entry inside /workspace cannot be enforced (the workspace starts
    # empty and belongs to the sandbox user): it is refused, never ignored.
    for field, entry in (("denyRead", "/workspace/secret.txt"), ("denyRead", "/workspace/.env*"),
                         ("denyWrite", "/workspace/.git/hooks"), ("denyRead", "~/.ssh")):
        r = d.post("/v1/sessions", {"settings": {"sandbox": {"filesystem": {field: [entry]}}}})
        expect_error(d, r, 400, "invalid_value", f"settings.{field}")
        check("inside /workspace" in r.json["error"]["message"], "the message says why", r)
    # Outside the workspace, denyRead works: the file is hidden in the session.
    sid = d.create(settings={"sandbox": {"filesystem": {"denyRead": ["/etc/hostname"]}}})
    st, out, err, ex, _ = d.exec(sid, shell="cat /etc/hostname; echo rc=$?")
    host = open("/etc/hostname", "rb").read().strip()
    check(host not in out, "the host file's content is not visible", out)


@case
def idempotency(d):
    h = {"Idempotency-Key": "create-1"}
    body = {"metadata": {"n": "1"}}
    r1 = d.post("/v1/sessions", body, headers=h)
    check(r1.status == 201, "first create", r1)
    d.sessions.add(r1.json["id"])
    r2 = d.post("/v1/sessions", body, headers=h)
    check(r2.status == 200 and r2.json["id"] == r1.json["id"], "replay returns the first", r2)
    check((r2.header("Idempotent-Replayed") or "").lower() == "true",
          "Idempotent-Replayed: true", r2.headers)
    check(r1.header("Idempotent-Replayed") in (None, "false"), "no replay header at first",
          r1.headers)
    r3 = d.post("/v1/sessions", {"metadata": {"n": "2"}}, headers=h)
    expect_error(d, r3, 409, "conflict")
    r4 = d.post("/v1/sessions", body, headers=h, key="bob")
    check(r4.status == 201 and r4.json["id"] != r1.json["id"], "keys are per user", r4)
    d.sessions.add(r4.json["id"])
    # Concurrent creates with one new key: one session, every answer names it.
    from concurrent.futures import ThreadPoolExecutor
    h2 = {"Idempotency-Key": "race-1"}
    with ThreadPoolExecutor(6) as ex:
        rs = list(ex.map(lambda i: d.post("/v1/sessions", {}, headers=h2), range(6)))
    for r in rs:
        if r.status in (200, 201):
            d.sessions.add(r.json["id"])
    check(all(r.status in (200, 201) for r in rs), "concurrent replays succeed", rs)
    check(len({r.json["id"] for r in rs}) == 1, "one session for one key",
          [r.json["id"] for r in rs])
    check(sorted(r.status for r in rs) == [200] * 5 + [201], "one 201, replays 200",
          [r.status for r in rs])
    d.delete(f"/v1/sessions/{rs[0].json['id']}")
    r5 = d.post("/v1/sessions", body, headers={"Idempotency-Key": "x" * 129})
    expect_error(d, r5, 400, "invalid_value")
    r6 = d.post("/v1/sessions", body, headers={"Idempotency-Key": "bad\x01key"})
    check(r6.status == 400, "non-printable key refused", r6)
    live = d.get("/v1/sessions?state=ready").json["sessions"]
    check(len(live) == 1, "alice has one live session", live)


@case
def events(d):
    sid = d.create()
    P = f"/v1/sessions/{sid}"
    c, r = d.stream("GET", P + "/events")
    check(r.status == 200 and r.getheader("Content-Type", "").startswith("text/event-stream"),
          "SSE", r.getheaders())
    ca, ra = d.stream("GET", "/v1/events")
    cadm, radm = d.stream("GET", "/v1/events", key="root-admin")
    cb, rb = d.stream("GET", "/v1/events", key="bob")
    d.run(sid, "echo hi")
    evs = sse_events(r, until=lambda e: e["event"] == "process_exit")
    types = [e["event"] for e in evs]
    check("process_start" in types, "process_start event", types)
    ex = evs[-1]["data"]
    check(ex["session"] == sid and ex["code"] == 0 and ex["reason"] == "exited"
          and ex["process"].startswith("p_"), "process_exit data", ex)
    ids = [int(e["id"]) for e in evs]
    check(ids == sorted(ids) and len(set(ids)) == len(ids), "ids increase", ids)
    for resp in (ra, radm):
        e = sse_events(resp, until=lambda e: e["event"] == "process_exit")
        check(e[-1]["data"]["session"] == sid, "/v1/events (user, admin)", e)
    d.delete(P)
    evs2 = sse_events(r, until=lambda e: e["event"] == "state"
                      and e["data"]["state"] == "deleted")
    check(evs2[-1]["data"]["session"] == sid, "state event", evs2)
    c.close()
    # replay from Last-Event-ID
    c2, r2 = d.stream("GET", P + "/events", headers={"Last-Event-ID": str(ids[0])})
    replay = sse_events(r2, until=lambda e: e["event"] == "state"
                        and e["data"]["state"] == "deleted")
    check(int(replay[0]["id"]) > ids[0], "replay starts after Last-Event-ID", replay[0])
    check([int(e["id"]) for e in replay[:len(ids) - 1]] == ids[1:], "replayed ids", replay)
    c2.close()
    # bob saw nothing of alice: his stream gets his own event first
    bsid = d.create(key="bob")
    d.run(bsid, "true", key="bob")
    e = sse_events(rb, until=lambda e: e["event"] == "process_exit")
    check(all(x["data"].get("session") == bsid for x in e), "bob sees only his events", e)
    for cc in (ca, cadm, cb):
        cc.close()


@case
def events_replay_from_zero(d):
    # "Last-Event-ID: 0" replays every retained event (before 0d839f1 it
    # replayed nothing).
    sid = d.create()
    d.run(sid, "true")
    c, r = d.stream("GET", f"/v1/sessions/{sid}/events", headers={"Last-Event-ID": "0"})
    evs = sse_events(r, until=lambda e: e["event"] == "process_exit", deadline=10)
    check(evs[0]["event"] == "state", "replay from the first event", evs)
    c.close()


@case
def metrics(d):
    sid = d.create()
    d.run(sid, "true")
    d.get("/v1/nope")
    r = d.get("/healthz", key=None)
    check(r.status == 200 and r.json.get("status") == "ok" and r.json.get("sessions") == 1,
          "/healthz", r)
    r = d.get("/metrics", key=None)
    check(r.status == 200 and r.header("Content-Type").startswith("text/plain"), "metrics", r)
    text = r.body.decode()
    for series in ('airlock_sessions{state="ready"} 1', "airlock_execs_total",
                   "airlock_exec_seconds_bucket", "airlock_exec_seconds_count",
                   "airlock_exec_seconds_sum", "airlock_limit_kills_total",
                   'airlock_http_requests_total{code="404"}',
                   'airlock_http_requests_total{code="200"}'):
        check(series in text, f"/metrics has {series}", text[:2000])
    check("# TYPE airlock_exec_seconds histogram" in text, "histogram TYPE", text[:2000])


# -- proxy acks ------------------------------------------------------------------
# A create returns only once every proxy acknowledged the session (proxies.c),
# so the session's first request cannot race its registration. The gitproxy
# here is fake_gitproxy.py (its mode is set in main()); the netproxy is real.

FAKE_GP = None  # the fake gitproxy's configuration file


def fake_gp_log():
    with open(FAKE_GP + ".log") as f:
        return f.read().splitlines()


def create_error(d):
    r = d.create(expect=500)
    check(r.error_code() == "internal", "create fails", r)
    return r.json["error"]["message"]


@case
def proxy_ack_after_restart(d):
    """The gitproxy dies on its first session_add without an ack: the create
    returns once the restarted gitproxy acked the re-sent session_add."""
    sid = d.create()
    lines = fake_gp_log()
    check(len([x for x in lines if x.startswith("start ")]) >= 2, "the gitproxy restarted", lines)
    check(lines.count("session_add " + sid) >= 2, "the session was re-sent to it", lines)
    st, out, _, ex, _ = d.exec(sid, argv=["echo", "ok"])
    check(st == 200 and out == b"ok\n", "the session works", (st, out))


@case
def proxy_ack_refused(d):
    msg = create_error(d)
    check("gitproxy refused session" in msg and "fake refusal" in msg, "the refusal is the reason",
          msg)
    check(all(s["state"] in ("failed", "deleted") for s in d.get("/v1/sessions").json["sessions"]),
          "the session did not stay", d.get("/v1/sessions").json)


@case
def proxy_ack_timeout(d):
    msg = create_error(d)
    check("gitproxy did not acknowledge session" in msg and "within 10 s" in msg,
          "no ack is the reason", msg)
    check(any(x.startswith("session_add ") for x in fake_gp_log()), "the add was sent",
          fake_gp_log())


# -- the client ----------------------------------------------------------------

def cli(d, args, key="alice", stdin=None, timeout=120):
    env = dict(os.environ, AIRLOCK_URL=d.url, AIRLOCK_API_KEY=d.keys.get(key, key))
    return subprocess.run([CLIENT] + args, input=stdin, capture_output=True, env=env,
                          timeout=timeout)


@case
def client_cli(d):
    r = cli(d, ["create", "--memory", "128", "--ttl", "600", "--env", "A=1", "--meta", "t=x"])
    check(r.returncode == 0, "create", r)
    sid = r.stdout.decode().strip()
    check(sid.startswith("s_"), "create prints the id", r.stdout)
    d.sessions.add(sid)
    s = d.session(sid)
    check(s["limits"]["memory_mb"] == 128 and s["limits"]["ttl_s"] == 600
          and s["metadata"] == {"t": "x"}, "create flags reach the API", s)
    # --settings: the document reaches the server (one it must refuse)
    sf = os.path.join(d.dir, "settings.json")
    with open(sf, "w") as f:
        json.dump({"sandbox": {"excludedCommands": ["docker"]}}, f)
    r = cli(d, ["create", "--settings", sf])
    check(r.returncode == 1 and b"403 forbidden" in r.stderr, "create --settings", r)
    with open(sf, "w") as f:
        f.write("{not json")
    r = cli(d, ["create", "--settings", sf])
    check(r.returncode == 2 and b"settings.json" in r.stderr, "bad --settings file: 2", r)
    r = cli(d, ["create", "--json", "--idempotency-key", "k1"])
    j = json.loads(r.stdout)
    d.sessions.add(j["id"])
    r2 = cli(d, ["create", "--idempotency-key", "k1"])
    check(r2.stdout.decode().strip() == j["id"], "idempotency key", r2)
    for code in (0, 1, 7, 255):
        r = cli(d, ["exec", sid, "--", "sh", "-c", f"exit {code}"])
        check(r.returncode == code, f"exit status {code} propagates", r)
    r = cli(d, ["exec", sid, "--shell", "kill -TERM $$"])
    check(r.returncode == 143, "signal: 128+15", r)
    r = cli(d, ["exec", sid, "--timeout", "1", "--", "sleep", "30"])
    check(r.returncode == 124, "timeout: 124", r)
    r = cli(d, ["exec", sid, "--", "no-such-cmd-xyz"])
    check(r.returncode == 127, "not found: 127", r)
    small = cli(d, ["create", "--memory", "64"]).stdout.decode().strip()
    d.sessions.add(small)
    r = cli(d, ["exec", small, "--", "python3", "-c", "b = bytearray(512 << 20)"])
    check(r.returncode == 137, "memory limit: 137", r)
    r = cli(d, ["exec", sid, "--shell", "printf 'o\\000\\377'; printf 'e\\001' >&2; echo $A"])
    check(r.stdout == b"o\x00\xff1\n" and r.stderr == b"e\x01", "stdout/stderr byte-exact", r)
    # 16 MB of random bytes through the client's stream parser (data_b64)
    want = d.run(sid, "head -c 16000000 /dev/urandom > big && sha256sum big").split()[0]
    r = cli(d, ["exec", sid, "--", "cat", "big"])
    check(r.returncode == 0 and len(r.stdout) == 16000000
          and sha256(r.stdout).encode() == want, "16 MB through exec, byte-exact",
          (r.returncode, len(r.stdout), r.stderr[-300:]))
    r = cli(d, ["exec", sid, "--shell", "head -c 1000000 /dev/zero | tr '\\0' '\\1'"])
    check(r.returncode == 0 and r.stdout == b"\x01" * 1000000, "control bytes via the client",
          (r.returncode, len(r.stdout), r.stderr[-300:]))
    r = cli(d, ["exec", sid, "--shell", "cat big >&2"])
    check(sha256(r.stderr).encode() == want, "16 MB on stderr, byte-exact")
    r = cli(d, ["exec", sid, "--stdin", "--", "sha256sum"], stdin=b"\x00\x01abc" * 1000)
    check(r.stdout.split()[0].decode() == sha256(b"\x00\x01abc" * 1000), "--stdin", r)
    r = cli(d, ["exec", sid, "--cwd", "/tmp", "--env", "X=y", "--shell", "echo $PWD $X"])
    check(r.stdout == b"/tmp y\n", "--cwd --env", r)
    # cp round trip, byte-exact, through a temp dir
    tmp = tempfile.mkdtemp(dir=d.dir)
    data = random.Random(7).randbytes(3 * 1024 * 1024 + 17)
    src = os.path.join(tmp, "src.bin")
    with open(src, "wb") as f:
        f.write(data)
    r = cli(d, ["cp", src, f"{sid}:dir/data.bin"])
    check(r.returncode == 0, "cp up", r)
    check(d.run(sid, "sha256sum dir/data.bin").split()[0].decode() == sha256(data),
          "uploaded byte-exact")
    r = cli(d, ["cp", f"{sid}:/workspace/dir/data.bin", os.path.join(tmp, "back.bin")])
    check(r.returncode == 0, "cp down", r)
    with open(os.path.join(tmp, "back.bin"), "rb") as f:
        check(f.read() == data, "cp round trip byte-exact")
    r = cli(d, ["cp", f"{sid}:dir/data.bin", tmp])
    with open(os.path.join(tmp, "data.bin"), "rb") as f:
        check(f.read() == data, "cp into a directory keeps the name")
    r = cli(d, ["cp", f"{sid}:dir/data.bin", "-"])
    check(r.stdout == data, "cp to stdout")
    r = cli(d, ["cp", "-", f"{sid}:piped"], stdin=b"from stdin")
    check(r.returncode == 0 and d.get(f"/v1/sessions/{sid}/files/piped").body == b"from stdin",
          "cp from stdin", r)
    r = cli(d, ["cp", f"{sid}:nope", os.path.join(tmp, "nope")])
    check(r.returncode == 1 and b"404 not_found" in r.stderr, "cp of a missing file", r)
    check(not os.path.exists(os.path.join(tmp, "nope")), "no partial file left")
    r = cli(d, ["cp", f"{sid}:../x", os.path.join(tmp, "x")])
    check(r.returncode == 1 and b"400 invalid_path" in r.stderr, "cp ..", r)
    # background, ps, output, kill
    r = cli(d, ["exec", sid, "--background", "--shell", "echo bg; sleep 100"])
    pid = r.stdout.decode().strip()
    check(r.returncode == 0 and pid.startswith("p_"), "exec --background prints the id", r)
    wait_until(20, lambda: cli(d, ["output", sid, pid]).stdout == b"bg\n", "output")
    r = cli(d, ["output", sid, pid, "--offset", "1"])
    check(r.stdout == b"g\n", "output --offset", r)
    r = cli(d, ["ps", sid])
    check(r.returncode == 0 and pid.encode() in r.stdout, "ps", r)
    r = cli(d, ["kill", sid, pid, "--signal", "KILL"])
    check(r.returncode == 0, "kill", r)
    r = cli(d, ["output", sid, pid, "--follow"], timeout=60)
    check(r.returncode == 0 and r.stdout == b"bg\n", "output --follow ends at exit", r)
    # ls, show, keepalive, events, errors
    r = cli(d, ["ls"])
    check(r.returncode == 0 and sid.encode() in r.stdout, "ls", r)
    r = cli(d, ["ls", "--json"])
    check(sid in [s["id"] for s in json.loads(r.stdout)], "ls --json", r)
    r = cli(d, ["show", sid])
    check(json.loads(r.stdout)["id"] == sid, "show", r)
    check(cli(d, ["keepalive", sid]).returncode == 0, "keepalive")
    r = cli(d, ["events", sid, "--last-event-id", "1", "--count", "2"], timeout=30)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    check(r.returncode == 0 and len(lines) == 2 and all("event" in x and "data" in x
                                                         for x in lines), "events", r)
    r = cli(d, ["events", "--last-event-id", "0", "--count", "1"], timeout=30)
    check(r.returncode == 0 and json.loads(r.stdout)["data"]["session"], "events of all", r)
    r = cli(d, ["show", "s_00000000000000000000"])
    check(r.returncode == 1 and r.stderr.startswith(b"airlock: session: 404 not_found: "),
          "API error: one line, exit 1", r)
    check(r.stderr.count(b"\n") == 1, "one line", r.stderr)
    r = cli(d, ["show", sid], key="bob")
    check(r.returncode == 1 and b"404 not_found" in r.stderr, "bob: 404", r)
    r = cli(d, ["ls"], key="wrong")
    check(r.returncode == 1 and b"401 unauthorized" in r.stderr, "bad key: 401", r)
    r = cli(d, ["exec", sid])
    check(r.returncode == 2, "usage: 2", r)
    r = cli(d, ["create", "--memory", "lots"])
    check(r.returncode == 2, "bad flag value: 2", r)
    r = cli(d, ["frobnicate"])
    check(r.returncode == 2, "unknown subcommand: 2", r)
    # `airlock session ...` runs this same client.
    airlock = os.path.join(os.path.dirname(CLIENT), "airlock")
    if os.access(airlock, os.X_OK):
        env = dict(os.environ, AIRLOCK_URL=d.url, AIRLOCK_API_KEY=d.keys["alice"])
        r = subprocess.run([airlock, "session", "exec", sid, "--", "sh", "-c", "echo via; exit 5"],
                           capture_output=True, env=env, timeout=60)
        check(r.returncode == 5 and r.stdout == b"via\n", "airlock session dispatches", r)
    r = cli(d, ["rm", sid])
    check(r.returncode == 0 and d.session(sid)["state"] == "deleted", "rm", r)
    r = cli(d, ["exec", sid, "--", "true"])
    check(r.returncode == 1 and b"409 conflict" in r.stderr, "exec in a deleted session", r)
    # approvals through the client
    reg = cli(d, ["create", "--mode", "regular"]).stdout.decode().strip()
    d.sessions.add(reg)

    def approve():
        def pending():
            out = cli(d, ["approve", reg, "--json"]).stdout
            return [a for a in json.loads(out)["approvals"] if a["state"] == "pending"]
        a = wait_until(20, pending, "pending approval")[0]
        return cli(d, ["approve", reg, a["id"]])
    h = thread(approve)
    r = cli(d, ["exec", reg, "--", "echo", "ok"])
    check(h.result().returncode == 0, "approve")
    check(r.returncode == 0 and r.stdout == b"ok\n", "approved exec through the client", r)
    d.healthy()


# -- reliability ----------------------------------------------------------------

# a request to a host in neither list, from inside the sandbox; what the
# proxy answered ("403" when refused, whether at once or after a hold)
CURL_NEW = ("curl -sS -o /dev/null -w '%{http_code}' --max-time 100 http://new.test/; echo")


def approve_exec_when_pending(d, sid):
    """Regular mode: allows the exec that waits for its approval."""
    P = f"/v1/sessions/{sid}"
    a = wait_until(20, lambda: [x for x in d.get(P + "/approvals").json["approvals"]
                                if x["state"] == "pending" and x["kind"] == "exec"],
                   "a pending exec approval")[0]
    r = d.post(P + f"/approvals/{a['id']}", {"decision": "allow"})
    check(r.status == 200, "exec approved", r)


@case
def strict_allowlist(d):
    # issue 12: strictAllowlist (Claude Code's sandbox.network.strictAllowlist,
    # srt's network.strictAllowlist) in a regular-mode session: a host outside
    # the allowlist is refused at once, no approval is raised, and the
    # decision says why
    for settings in ({"sandbox": {"network": {"allowedDomains": ["allowed.test"],
                                              "strictAllowlist": True}}},
                     {"network": {"allowedDomains": ["allowed.test"], "strictAllowlist": True}}):
        sid = d.create(mode="regular", settings=settings)
        P = f"/v1/sessions/{sid}"
        got = d.get(P + "/policy").json["network"]
        check(got.get("strictAllowlist") is True, "GET .../policy shows strictAllowlist", got)
        c, ev = d.stream("GET", P + "/events")
        h = thread(approve_exec_when_pending, d, sid)
        st, out, err, ex, _ = d.exec(sid, shell=CURL_NEW)
        h.result()
        check(st == 200 and out == b"403\n", "new.test refused", (st, out, err))
        net = [x for x in d.get(P + "/approvals").json["approvals"] if x["kind"] == "network"]
        check(net == [], "no network approval was raised", net)
        evs = sse_events(ev, until=lambda e: e["event"] == "network"
                         and e["data"].get("host") == "new.test")
        c.close()
        dec = evs[-1]["data"]
        check(dec["decision"] == "deny" and dec["reason"] == "blocked-by-policy"
              and dec["rule"] == "strictAllowlist" and "strictAllowlist" in dec["detail"],
              "the decision says it was strictAllowlist", dec)
    # PATCH and GET .../policy agree: the document GET gives is what PATCH
    # takes, strictAllowlist included, and it can be turned off and on
    r = d.request("PATCH", P + "/policy", {"network": {"allowedDomains": ["allowed.test"]}})
    check(r.status == 200, "PATCH without strictAllowlist", r)
    got = d.get(P + "/policy").json
    check(got["network"]["strictAllowlist"] is False, "PATCH replaced it: off", got)
    got["network"]["strictAllowlist"] = True
    r = d.request("PATCH", P + "/policy", got)
    check(r.status == 200, "PATCH of what GET gave, strictAllowlist on", r)
    check(d.get(P + "/policy").json == got, "GET gives back what PATCH took", got)
    # the CLI: `policy` shows it and keeps it across an edit; exec says why
    sid = d.create(settings={"network": {"allowedDomains": ["allowed.test"],
                                         "strictAllowlist": True}})
    r = cli(d, ["policy", sid, "--allow-domain", "b.test"])
    check(r.returncode == 0 and b"strictAllowlist    on\n" in r.stdout, "policy keeps it on", r)
    r = cli(d, ["exec", sid, "--shell", CURL_NEW])
    check(r.returncode == 0 and r.stdout == b"403\n", "CLI exec: refused", r)
    want = (f"airlock: blocked network: new.test:80 (not in the allowlist, and the session's "
            f"network.strictAllowlist is set: nobody is asked): to allow it, add \"new.test\" "
            f"to the session's network.allowedDomains (airlock session policy {sid} "
            f"--allow-domain new.test)\n").encode()
    check(want in r.stderr, "CLI exec says strictAllowlist", r.stderr)


@case
def strict_allowlist_control(d):
    # the control of strict_allowlist: the same regular-mode session without
    # strictAllowlist holds the host for an approval (denied here)
    sid = d.create(mode="regular", settings={"network": {"allowedDomains": ["allowed.test"]}})
    P = f"/v1/sessions/{sid}"
    check(d.get(P + "/policy").json["network"].get("strictAllowlist") is False,
          "GET .../policy: strictAllowlist off", d.get(P + "/policy").json)

    def approve_exec_then_deny_network():
        approve_exec_when_pending(d, sid)
        a = wait_until(60, lambda: [x for x in d.get(P + "/approvals").json["approvals"]
                                    if x["state"] == "pending" and x["kind"] == "network"],
                       "a pending network approval")[0]
        r = d.post(P + f"/approvals/{a['id']}", {"decision": "deny"})
        check(r.status == 200, "network approval denied", r)
        return a

    h = thread(approve_exec_then_deny_network)
    st, out, err, ex, _ = d.exec(sid, shell=CURL_NEW)
    a = h.result()
    check(a["host"] == "new.test" and a["port"] == 80, "the approval names the host", a)
    check(st == 200 and out == b"403\n", "refused after the deny", (st, out, err))


@case
def strict_allowlist_restart(d):
    # a session re-adopted after a restart keeps strictAllowlist; one whose
    # stored policy has no strict_allowlist (saved by the previous version,
    # which did not honour the key) goes on as it ran: held for an approval
    # (docs/control-protocol.md)
    settings = {"network": {"allowedDomains": ["allowed.test"], "strictAllowlist": True}}
    strict, old = d.create(settings=settings), d.create(settings=settings)
    d.proc.send_signal(signal.SIGTERM)
    check(d.proc.wait(60) == 0, "airlockd exits 0 after draining")
    d.logf.close()
    import sqlite3
    try:
        db = sqlite3.connect(os.path.join(d.state, "airlockd.db"))
        (priv,) = db.execute("SELECT priv FROM sessions WHERE id = ?", (old,)).fetchone()
        priv = json.loads(priv)
        had = priv["netpolicy"].pop("strict_allowlist", None)
        db.execute("UPDATE sessions SET priv = ? WHERE id = ?", (json.dumps(priv), old))
        db.commit()
        db.close()
    finally:
        d.start()  # whatever happened: the teardown needs the daemon
    check(had is True, "stored with the key", priv)
    P = f"/v1/sessions/{strict}"
    check(d.get(P + "/policy").json["network"]["strictAllowlist"] is True,
          "re-adopted: still strict", d.get(P + "/policy").json)
    st, out, err, ex, _ = d.exec(strict, shell=CURL_NEW)
    check(st == 200 and out == b"403\n", "re-adopted: refused", (st, out, err))
    net = [x for x in d.get(P + "/approvals").json["approvals"] if x["kind"] == "network"]
    check(net == [], "re-adopted: no network approval", net)
    P = f"/v1/sessions/{old}"
    check(d.get(P + "/policy").json["network"]["strictAllowlist"] is False,
          "stored without the key: not strict", d.get(P + "/policy").json)

    def deny_network():
        a = wait_until(60, lambda: [x for x in d.get(P + "/approvals").json["approvals"]
                                    if x["state"] == "pending" and x["kind"] == "network"],
                       "a pending network approval")[0]
        check(d.post(P + f"/approvals/{a['id']}", {"decision": "deny"}).status == 200, "denied")

    h = thread(deny_network)
    st, out, err, ex, _ = d.exec(old, shell=CURL_NEW)
    h.result()
    check(st == 200 and out == b"403\n", "held, then refused after the deny", (st, out, err))


@case
def settings_warnings(d):
    # issue 12: the settings loader's warnings reach the API caller (create
    # and PATCH .../policy) and `airlock session create` prints them
    settings = {"sandbox": {"network": {"allowedDomains": ["b.test"]}},
                "allowedDomain": ["a.test"]}
    r = d.post("/v1/sessions", {"settings": settings})
    check(r.status == 201, "created", r)
    d.sessions.add(r.json["id"])
    w = r.json.get("warnings")
    check(w == ["settings: allowedDomain: unknown key, ignored (not a Claude Code or airlock "
                "setting)"], "the create response has the warning, naming the key", r.json)
    sid = r.json["id"]
    r = d.post("/v1/sessions", {"settings": {"sandbox": {"network": {
        "allowedDomains": ["b.test"]}}}})
    check(r.status == 201 and r.json.get("warnings") == [], "no warning: an empty list", r.json)
    d.sessions.add(r.json["id"])
    r = d.request("PATCH", f"/v1/sessions/{sid}/policy",
                  {"sandbox": {"network": {"allowedDomains": ["b.test"],
                                           "allowManagedDomainsOnly": True}}})
    check(r.status == 200 and len(r.json.get("warnings", [])) == 1
          and r.json["warnings"][0].startswith(
              "settings: sandbox.network.allowManagedDomainsOnly: ignored"),
          "PATCH: the warning, naming the key", r)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(settings, f)
        f.flush()
        r = cli(d, ["create", "--settings", f.name])
    check(r.returncode == 0, "CLI create", r)
    d.sessions.add(r.stdout.decode().strip())
    check(r.stderr == b"airlock: warning: settings: allowedDomain: unknown key, ignored (not a "
          b"Claude Code or airlock setting)\n", "CLI create prints the warning", r.stderr)


@case
def concurrent_create(d):
    # Before e6a0e0e (runtime) some of these failed after 10 s, "sandbox
    # setup did not finish": the sandbox child of a threaded daemon hung in
    # glibc's setxid broadcast.
    concurrent_creates(d, 50)


def concurrent_creates(d, n):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(n) as ex:
        rs = list(ex.map(lambda i: d.post("/v1/sessions", {"metadata": {"i": str(i)}},
                                          timeout=300), range(n)))
    for r in rs:
        if r.status == 201:
            d.sessions.add(r.json["id"])
    bad = [r for r in rs if r.status != 201]
    check(not bad, f"{n} concurrent creates all succeed", bad[:3])
    ids = {r.json["id"] for r in rs}
    check(len(ids) == n, f"{n} distinct ids", len(ids))
    with ThreadPoolExecutor(10) as ex:
        outs = list(ex.map(lambda s: d.run(s, "echo $$"), sorted(ids)))
    check(all(o.strip() for o in outs), "each session runs a command")
    with ThreadPoolExecutor(25) as ex:
        rs = list(ex.map(lambda s: d.delete(f"/v1/sessions/{s}", timeout=300), sorted(ids)))
    check(all(r.status == 200 for r in rs), "concurrent deletes", [r for r in rs
                                                                    if r.status != 200][:3])
    left = leftovers(list(ids), d.state)
    check(not left, f"{n} deleted sessions leave nothing", left[:10])


STREAM_BYTES = 20_000_000


@case
def concurrent_streams(d):
    from concurrent.futures import ThreadPoolExecutor
    sids = [d.create() for _ in range(5)]
    # Each command writes pseudo-random bytes to stdout and their sha256 to
    # stderr, computed inside the sandbox from the same file.
    cmd = (f"head -c {STREAM_BYTES} /dev/urandom > /workspace/d.$$ && "
           "sha256sum /workspace/d.$$ >&2 && cat /workspace/d.$$ && rm /workspace/d.$$")

    def one(i):
        st, out, err, ex, _ = d.exec(sids[i % 5], shell=cmd)
        check(st == 200 and ex["code"] == 0, "stream exec", (st, ex, err[-300:]))
        check(len(out) == STREAM_BYTES, "all bytes arrived", len(out))
        check(err.split()[0].decode() == sha256(out), "byte-exact (sha256)")
        return True
    with ThreadPoolExecutor(20) as ex:
        results = list(ex.map(one, range(20)))
    check(all(results), "20 concurrent 20 MB streams")
    d.healthy()


@case
def reattach(d):
    sid = d.create()
    P = f"/v1/sessions/{sid}"
    # 1..200000, one per line, written over a second or two.
    expected = b"".join(b"%d\n" % i for i in range(1, 200001))
    r = d.post(P + "/exec", {"shell": "i=0; while [ $i -lt 20 ]; do "
                             "seq $((i*10000+1)) $((i*10000+10000)); i=$((i+1)); sleep 0.1; "
                             "done", "background": True})
    check(r.status == 202, "background", r)
    pid = r.json["id"]
    got = bytearray()
    # Attach, read a little, drop the connection; three times.
    for _ in range(3):
        c, resp = d.stream("GET", P + f"/processes/{pid}/output?follow=1&offset={len(got)}")
        check(resp.status == 200, "output follow", resp.status)
        check(resp.getheader("X-Airlock-Offset") == str(len(got)), "offset header")
        got += resp.read1(50000)
        c.close()
        time.sleep(0.3)
    p = d.get(P + f"/processes/{pid}").json
    check(p["state"] in ("running", "exited"), "the process survives its reader", p)
    r = d.get(P + f"/processes/{pid}/output?follow=1&offset={len(got)}", timeout=120)
    check(r.status == 200, "re-attach", r)
    got += r.body
    check(bytes(got) == expected, "every byte, in order, after re-attaching",
          (len(got), len(expected)))
    p = d.get(P + f"/processes/{pid}").json
    check(p["state"] == "exited" and p["exit"]["code"] == 0, "ran to the end", p)


@case
def restart(d):
    a, b, dead = d.create(), d.create(), d.create()
    short = d.create(limits={"ttl_s": 3})
    short_born = time.monotonic()
    P = "/v1/sessions/"
    r = d.post(P + a + "/exec", {"shell": "echo before; sleep 3; echo after", "background": True})
    bg = r.json["id"]
    d.run(b, "echo keep > kept.txt")

    # load while the daemon dies: a few execs in flight
    def busy(sid):
        try:
            d.exec(sid, shell="sleep 2; echo done")
        except Exception:  # noqa: BLE001 - the daemon dies under it
            pass
    hs = [thread(busy, s) for s in (a, b, a, b)]
    time.sleep(0.5)
    d.kill9()
    for h in hs:
        h.result(60)
    ipid = init_pid(dead)
    check(ipid, "found the init of the session to kill")
    os.kill(ipid, signal.SIGKILL)
    # `short` outlives its ttl while nobody watches.
    time.sleep(max(0.0, short_born + 4 - time.monotonic()))
    d.start()
    for sid in (a, b):
        wait_until(30, lambda: d.session(sid)["state"] == "ready", f"{sid} re-adopted")
        check(d.run(sid, "echo again") == b"again\n", "exec works after the restart")
    check(d.get(f"{P}{b}/files/kept.txt").body == b"keep\n", "workspace kept")
    s = wait_until(30, lambda: (lambda s: s if s["state"] == "failed" else None)(
        d.session(dead)), "the dead session is marked failed")
    check(s["end_reason"] and "died" in s["end_reason"], "end_reason sandbox-died", s)
    left = leftovers([dead], d.state)
    check(not left, "the dead session is cleaned up", left)
    s = wait_until(30, lambda: (lambda s: s if s["state"] == "expired" else None)(
        d.session(short)), "a session whose ttl passed while airlockd was down expires")
    check(s["end_reason"] == "ttl", "end_reason ttl", s)
    left = leftovers([short], d.state)
    check(not left, "the expired session is cleaned up", left)
    p = wait_until(30, lambda: (lambda j: j if j["state"] == "exited" else None)(
        d.get(f"{P}{a}/processes/{bg}").json), "the background process is seen to exit")
    r = d.get(f"{P}{a}/processes/{bg}/output")
    check(r.body == b"before\nafter\n", "background output survived the restart", r)
    # No orphan of the old daemon's requests: no stray sleep 2 left running.
    for sid in (a, b):
        check(b"sleep 2" not in b"\n".join(ps_in(d, sid)), "no stray process", ps_in(d, sid))
    d.healthy()


@case
def idle_connections(d):
    # 300 connections that sent half a request and wait: the daemon still
    # serves everybody else.
    import socket
    socks = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        d.healthy()
        sid = d.create()
        check(d.run(sid, "echo ok") == b"ok\n", "exec while 300 requests hang")
    finally:
        for s in socks:
            s.close()
    d.healthy()


@case
def graceful_restart(d):
    # SIGTERM: the exec in flight finishes with all its output, the daemon
    # exits 0, and after a start the sessions are there and work.
    sid = d.create()
    d.run(sid, "echo kept > f")
    h = thread(lambda: d.exec(sid, shell="sleep 2; echo done"))
    time.sleep(0.5)
    d.proc.send_signal(signal.SIGTERM)
    st, out, err, ex, _ = h.result(60)
    check(st == 200 and out == b"done\n" and ex["code"] == 0, "the exec in flight finishes",
          (out, ex))
    check(d.proc.wait(60) == 0, "airlockd exits 0 after draining")
    d.logf.close()
    d.start()
    check(d.session(sid)["state"] == "ready", "the session survives a restart")
    check(d.run(sid, "cat f") == b"kept\n", "and works")


@case
def drain(d):
    # SIGTERM (docs/airlockd.md, "Draining"): the listening socket closes at
    # once (new connections are refused); requests on connections already
    # open get 503 (/healthz "draining"); the exec in flight runs to its end;
    # the daemon exits 0.
    import http.client
    sid = d.create()
    keep = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    keep.request("GET", "/healthz")
    r = keep.getresponse()
    r.read()
    check(r.status == 200, "healthz before the drain", r.status)
    h = thread(lambda: d.exec(sid, shell="sleep 3; echo done"))
    time.sleep(0.5)
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    keep.request("GET", "/healthz")
    r = keep.getresponse()
    body = json.loads(r.read())
    check(r.status == 503 and body.get("status") == "draining", "/healthz draining", body)
    keep.request("POST", "/v1/sessions", body=b"{}",
                 headers={"Authorization": "Bearer " + d.keys["alice"],
                          "Content-Type": "application/json"})
    r = keep.getresponse()
    body = json.loads(r.read())
    check(r.status == 503 and body["error"]["code"] == "unavailable", "503 unavailable", body)
    refused = False
    try:
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
        c.request("GET", "/healthz")
        c.getresponse().read()
    except OSError:
        refused = True
    check(refused, "new connections are refused while draining", refused)
    keep.close()
    st, out, err, ex, _ = h.result(60)
    check(st == 200 and out == b"done\n" and ex["code"] == 0, "the exec in flight finished", out)
    check(d.proc.wait(60) == 0, "exit 0 after the drain", d.proc.returncode)
    d.logf.close()
    d.start()


def main():
    global CLIENT
    if len(sys.argv) != 4 or sys.argv[3] not in CASES:
        print(f"usage: {sys.argv[0]} AIRLOCKD AIRLOCK_SESSION CASE\ncases: {' '.join(CASES)}",
              file=sys.stderr)
        return 2
    binary, CLIENT, name = sys.argv[1:]
    if not os.access(binary, os.X_OK):
        print(f"SKIP: {binary} is not built")
        return SKIP
    config = {}
    if name == "approvals" or name == "client_cli":
        config["approval_timeout_s"] = 2
    if name == "uid_range_exhausted":
        config["uid_range"] = {"count": 2}  # start picked free by the daemon
    if name.startswith("output_truncated"):
        config["max_output_bytes"] = 65536
    if "create_" in name:
        config["quotas"] = {"max_sessions": 60, "max_memory_mb": 1 << 20}
    if name.startswith("proxy_ack_"):
        global FAKE_GP
        FAKE_GP = os.path.join(tempfile.mkdtemp(prefix="airlockd-fakegp."), "gitproxy.json")
        mode = {"proxy_ack_after_restart": "crash_once", "proxy_ack_refused": "refuse",
                "proxy_ack_timeout": "silent"}[name]
        with open(FAKE_GP, "w") as f:
            json.dump({"mode": mode, "marker": FAKE_GP + ".crashed"}, f)
        # airlockd mints with its own token key and sends it to the gitproxy
        key = os.path.join(os.path.dirname(FAKE_GP), "token.key")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
        config["proxies"] = {"gitproxy_config": FAKE_GP, "gitproxy": os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "fake_gitproxy.py"),
            "token_keys": [{"kid": "k1", "file": key}]}
    d = Daemon(binary, config, name=name)
    def remove_fake_gitproxy():
        if FAKE_GP:
            import shutil
            shutil.rmtree(os.path.dirname(FAKE_GP), ignore_errors=True)

    return run_case(d, name, CASES[name], remove_fake_gitproxy)


if __name__ == "__main__":
    sys.exit(main())
