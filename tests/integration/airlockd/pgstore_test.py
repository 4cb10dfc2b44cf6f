#!/usr/bin/env python3
"""airlockd with its state in PostgreSQL (docs/airlockd.md "Store"; issue 13,
"State in PostgreSQL"). Run under tests/unit/airlockd/pg_run.sh, which starts
a scratch PostgreSQL on a unix socket and sets AIRLOCK_TEST_PG (the conninfo)
and AIRLOCK_TEST_PG_CTL (stop/start it).

store_postgres: the real daemon with "store": {"driver": "postgres"} creates
a session, runs a command, lists it, restarts and still sees it (with no
SQLite file made); then PostgreSQL is stopped for about 10 s: every request
of that time is answered (never hangs) with 503 "unavailable" whose message
gives the database's reason, a command that runs in the sandbox across the
outage runs to its end, and once PostgreSQL is back the API recovers by
itself.

    pgstore_test.py AIRLOCKD AIRLOCK_SESSION CASE"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, check, run_case, thread, wait_until  # noqa: E402
from pgcluster import (case_args, conninfo_file, pg_ctl, psql_run, unavailable,  # noqa: E402
                       use_postgres, write_config)

OUTAGE_S = 10
REQUEST_TIMEOUT_S = 15  # a request not answered by then counts as hung


def stored_proc(sid, num):
    """The process row as PostgreSQL holds it (psql), or None."""
    r = psql_run(f"SELECT pub FROM processes WHERE session = '{sid}' AND num = {num}")
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None


def store_postgres(d):
    sid = d.create()
    d.run(sid, "echo kept > f")
    listed = d.get("/v1/sessions")
    check(listed.status == 200 and sid in [s["id"] for s in listed.json["sessions"]],
          "the session is listed", listed)
    procs = d.get(f"/v1/sessions/{sid}/processes")
    check(procs.status == 200 and len(procs.json["processes"]) == 1, "its process is listed",
          procs)

    # a restart: the state comes back from PostgreSQL
    d.stop()
    d.start()
    check(d.session(sid)["state"] == "ready", "the session survives a restart")
    check(d.run(sid, "cat f") == b"kept\n", "and works")
    check(sid in [s["id"] for s in d.get("/v1/sessions").json["sessions"]],
          "and is listed after the restart")
    check(not os.path.exists(os.path.join(d.state, "airlockd.db")),
          "no SQLite database is made with driver postgres")

    # the outage: a command keeps running in the sandbox across it
    h = thread(lambda: d.exec(sid, shell=f"for i in $(seq 1 {OUTAGE_S + 4}); do sleep 1; done;"
                              " echo through"))
    # and one that ends during the outage: its exit is kept and written later
    bg = d.post(f"/v1/sessions/{sid}/exec", {"shell": "sleep 3; exit 7", "background": True})
    check(bg.status == 202, "background exec", bg)
    bg_num = int(bg.json["id"][2:])
    time.sleep(1)
    pg_ctl("stop")
    n = 0
    try:
        end = time.monotonic() + OUTAGE_S
        while time.monotonic() < end:
            unavailable(d.get(f"/v1/sessions/{sid}", timeout=REQUEST_TIMEOUT_S), "GET session")
            unavailable(d.get("/v1/sessions", timeout=REQUEST_TIMEOUT_S), "GET sessions")
            unavailable(d.post("/v1/sessions", {}, timeout=REQUEST_TIMEOUT_S), "POST sessions")
            n += 3
            time.sleep(0.3)
    finally:
        pg_ctl("start")
    print(f"{n} requests answered 503 during the outage")
    check(n >= 6, "requests were made during the outage", n)

    # back: the API recovers by itself (reconnect with backoff)
    wait_until(60, lambda: d.get(f"/v1/sessions/{sid}", timeout=REQUEST_TIMEOUT_S).status == 200,
               "the API answers 200 again once PostgreSQL is back")
    st, out, err, ex, _ = h.result(120)
    check(st == 200 and out == b"through\n" and ex.get("code") == 0,
          "the command run across the outage finished undisturbed", (st, out, err, ex))
    check(d.session(sid)["state"] == "ready", "the session is ready")
    check(d.run(sid, "cat f") == b"kept\n", "and works after the outage")
    # the exit that happened during the outage reaches the database by itself
    row = wait_until(60, lambda: (lambda p: p if p and p.get("state") == "exited" else None)(
        stored_proc(sid, bg_num)), "the exit during the outage is written once PostgreSQL is back")
    check(row["exit"]["code"] == 7, "with its exit code", row)
    d.stop()
    d.start()
    p = d.get(f"/v1/sessions/{sid}/processes/{bg.json['id']}")
    check(p.status == 200 and p.json.get("state") == "exited" and p.json["exit"]["code"] == 7,
          "and a restarted daemon shows it", p)
    sid2 = d.create()
    check(sid2 != sid, "a new session after the outage")


CASES = {"store_postgres": store_postgres}


def main():
    binary, name = case_args(CASES)
    d = Daemon(binary, name=name)
    use_postgres(d, conninfo_file(os.path.join(d.dir, "pg.conninfo")))
    write_config(d)
    return run_case(d, name, CASES[name])


if __name__ == "__main__":
    sys.exit(main())
