#!/usr/bin/env python3
"""GET /v1/audit, /v1/me, /v1/admin/users and /v1/admin/keys against the
real built daemon (docs/api.md, "Audit trail and admin views"): filters,
cursor pages, a user seeing only their own rows, an admin everybody's, the
admin views hidden (404) from other users, and bad query arguments (400
naming the argument).

Usage: audit_api_test.py AIRLOCKD_BIN SESSION_BIN CASE"""

import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SKIP, Daemon, check, run_case, wait_until  # noqa: E402

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def audit(d, key, **args):
    q = urllib.parse.urlencode(args)
    r = d.get("/v1/audit" + ("?" + q if q else ""), key=key)
    check(r.status == 200, f"GET /v1/audit?{q} as {key}", r)
    j = r.json
    check(isinstance(j.get("rows"), list) and "next_cursor" in j,
          "audit answers {rows, next_cursor}", j)
    return j


def marks(d, user, n, tag):
    """n audited calls of `user` (a DELETE of a session that does not exist:
    404, still a changing call with its audit row) with `tag` in the path."""
    for i in range(n):
        r = d.delete(f"/v1/sessions/{tag}-{i}", key=user)
        check(r.status == 404, "DELETE of an unknown session is 404", r)


@case
def audit_rows_own_and_all(d):
    t0 = int(time.time() * 1000)
    marks(d, "alice", 3, "alicemark")
    marks(d, "bob", 2, "bobmark")
    sid = d.create(key="alice")
    d.delete(f"/v1/sessions/{sid}", key="alice")

    rows = audit(d, "alice", limit=500)["rows"]
    check(rows, "alice sees rows", rows)
    check(all(r["user"] == "alice" for r in rows), "alice sees only her rows", rows)
    check(not any("bobmark" in r["path"] for r in rows), "bob's rows invisible to alice", rows)
    paths = [r["path"] for r in rows]
    check(sum("alicemark" in p for p in paths) == 3, "alice's three calls are rows", paths)
    seqs = [r["seq"] for r in rows]
    check(seqs == sorted(seqs, reverse=True), "newest first", seqs)
    for r in rows:
        for k in ("seq", "time", "time_ms", "user", "key_id", "method", "path", "status",
                  "session"):
            check(k in r, f"row has {k}", r)
    check(rows[-1]["time_ms"] >= t0 - 1000, "times are Unix ms", rows[-1])

    # another user named by a non-admin: nothing, never their rows
    check(audit(d, "alice", user="bob")["rows"] == [], "alice asking for bob's rows gets none")
    check(audit(d, "bob", q="alicemark")["rows"] == [], "bob cannot find alice's rows by text")

    # the admin sees everybody, and filters by user
    allrows = audit(d, "root-admin", limit=500)["rows"]
    users = {r["user"] for r in allrows}
    check({"alice", "bob"} <= users, "the admin sees alice's and bob's rows", users)
    bobs = audit(d, "root-admin", user="bob", limit=500)["rows"]
    check(bobs and all(r["user"] == "bob" for r in bobs), "user filter", bobs)

    # session filter: the create/delete of the real session
    srows = audit(d, "alice", session=sid)["rows"]
    check(srows and all(r["session"] == sid for r in srows), "session filter", srows)
    check({r["method"] for r in srows} == {"POST", "DELETE"}, "create and delete rows", srows)
    check(audit(d, "bob", session=sid)["rows"] == [], "bob cannot see alice's session's rows")

    # method and text filters
    drows = audit(d, "alice", method="DELETE", limit=500)["rows"]
    check(len(drows) == 4 and all(r["method"] == "DELETE" for r in drows), "method filter",
          drows)
    trows = audit(d, "alice", q="alicemark-1")["rows"]
    check(len(trows) == 1 and "alicemark-1" in trows[0]["path"], "text filter", trows)

    # time window
    now = int(time.time() * 1000) + 1000
    check(audit(d, "alice", since=now)["rows"] == [], "since in the future: nothing")
    check(audit(d, "alice", until=t0 - 60000)["rows"] == [], "until in the past: nothing")
    check(len(audit(d, "alice", since=t0 - 1000, until=now, limit=500)["rows"]) == len(rows),
          "a window around the test holds every row")

    # cursor pages: every row once, in order
    seen, cursor, pages = [], None, 0
    while True:
        args = {"limit": 2}
        if cursor:
            args["cursor"] = cursor
        j = audit(d, "alice", **args)
        check(len(j["rows"]) <= 2, "a page holds at most limit rows", j)
        seen += [r["seq"] for r in j["rows"]]
        pages += 1
        cursor = j["next_cursor"]
        check(pages < 100, "pages end")
        if not cursor:
            break
    check(seen == seqs, "pages hold every row once, newest first", (seen, seqs))


@case
def audit_bad_args(d):
    bad = [("limit", "0"), ("limit", "501"), ("limit", "x"), ("cursor", "-1"),
           ("cursor", "abc"), ("since", "yesterday"), ("since", "-5"), ("until", "1.5"),
           ("user", "Not A User"), ("user", "../x"), ("session", "s" * 65),
           ("method", "post"), ("method", "P0ST"), ("method", "A" * 17), ("q", "x" * 201)]
    for name, value in bad:
        r = d.get("/v1/audit?" + urllib.parse.urlencode({name: value}), key="alice")
        check(r.status == 400, f"{name}={value[:20]} is 400", r)
        e = r.json["error"]
        check(e["code"] == "invalid_value" and e.get("field") == name,
              f"the error names {name}", r)
    r = d.get("/v1/audit", key=None)
    check(r.status == 401, "no key: 401", r)
    d.healthy()


@case
def me_and_admin_views(d):
    me = d.get("/v1/me", key="alice")
    check(me.status == 200, "GET /v1/me", me)
    j = me.json
    check(j["user"] == "alice" and j["admin"] is False and j["key_id"], "alice is no admin", j)
    ja = d.get("/v1/me", key="root-admin").json
    check(ja["user"] == "root-admin" and ja["admin"] is True, "the admin is one", ja)
    check(d.get("/v1/me", key=None).status == 401, "/v1/me needs a key")

    sid = d.create(key="bob")
    d.new_key("bob")  # bob has two live keys now
    u = d.get("/v1/admin/users", key="root-admin")
    check(u.status == 200, "admin lists users", u)
    users = {x["name"]: x for x in u.json["users"]}
    check(set(users) == {"alice", "bob", "root-admin"}, "every user", users)
    check(users["bob"]["keys"] == 2 and users["bob"]["live_sessions"] == 1, "bob's counts",
          users["bob"])
    check(users["alice"]["live_sessions"] == 0 and users["root-admin"]["admin"] is True,
          "alice's counts, the admin flag", users)
    check(isinstance(users["alice"]["created_at"], str), "created_at", users["alice"])

    k = d.get("/v1/admin/keys", key="root-admin")
    check(k.status == 200, "admin lists keys", k)
    keys = k.json["keys"]
    check(len(keys) == 4, "four keys (alice, bob x2, admin)", keys)
    for key in keys:
        check(set(key) <= {"id", "user", "name", "created_at", "revoked_at"},
              "a key's fields, never the key or its hash", key)
    body = k.body.decode()
    for secret in d.keys.values():
        check(secret not in body, "no key value in the listing")
    kb = d.get("/v1/admin/keys?user=bob", key="root-admin").json["keys"]
    check(len(kb) == 2 and all(x["user"] == "bob" for x in kb), "keys of bob", kb)
    r = d.get("/v1/admin/keys?user=B%20B", key="root-admin")
    check(r.status == 400 and r.json["error"].get("field") == "user", "bad user: 400", r)

    # not an admin: the admin views are not there (404, like an unknown route)
    for path in ("/v1/admin/users", "/v1/admin/keys", "/v1/admin/keys?user=alice"):
        r = d.get(path, key="alice")
        check(r.status == 404 and r.error_code() == "not_found", f"{path} as alice: 404", r)
        check(b"root-admin" not in r.body and b"bob" not in r.body, "nothing leaks", r)
    d.delete(f"/v1/sessions/{sid}", key="bob")


@case
def audit_network_rows(d):
    """A network decision of the egress proxy is an audit row (method NET),
    not only an event: durable, and found with the filters."""
    settings = {"network": {"deniedDomains": ["denied.test"]}}
    sid = d.create(key="alice", settings=settings)
    d.run(sid, "curl -sS -o /dev/null http://denied.test/ 2>/dev/null; true", key="alice")
    got = {}

    def net_row():
        rows = audit(d, "alice", session=sid, method="NET")["rows"]
        got["rows"] = rows
        return any(r["path"].startswith("network denied.test deny") for r in rows)

    wait_until(30, net_row, "a NET audit row for the refused request")
    row = [r for r in got["rows"] if "denied.test" in r["path"]][0]
    check(row["user"] == "alice" and row["session"] == sid, "the row names user and session",
          row)
    check(audit(d, "bob", method="NET")["rows"] == [], "bob sees none of alice's NET rows")
    check(audit(d, "root-admin", method="NET", q="denied.test")["rows"],
          "the admin finds it by text")
    d.delete(f"/v1/sessions/{sid}", key="alice")


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in CASES:
        print(__doc__)
        return 2
    binary, _session, name = sys.argv[1:]
    if not os.access(binary, os.X_OK):
        print(f"SKIP: {binary} is not built")
        return SKIP
    return run_case(Daemon(binary, {}, name=name), name, CASES[name])


if __name__ == "__main__":
    sys.exit(main())
