#!/usr/bin/env python3
"""`airlock admin node ls|drain|undrain|rm` (docs/cluster.md, "Operations")
on a real PostgreSQL store. Run under tests/unit/airlockd/pg_run.sh, which
starts a scratch PostgreSQL on a unix socket and sets AIRLOCK_TEST_PG.

The nodes and their sessions are rows the test writes with psql (as the
nodes' heartbeats would), with the database's clock, so that the commands
are checked against known rows: the listing's states, session counts,
capacity and heartbeat ages; drain and undrain change the row; rm is
refused for a node that is up with a fresh heartbeat and allowed for one
whose heartbeat is older than cluster.down_after_ms, or that is down;
`drain --wait --timeout` exits 1 while sessions are left and 0 once they
have ended; and a store without nodes says "no cluster".

    cluster_admin_test.py AIRLOCKD"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgcluster import conninfo_file, psql_text as psql  # noqa: E402

AIRLOCKD = sys.argv[1]
PG = os.environ.get("AIRLOCK_TEST_PG")
NOW = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
failures = []


def check(cond, what, detail=None):
    if cond:
        print(f"ok: {what}")
    else:
        print(f"FAIL: {what}: {detail!r}")
        failures.append(what)


def admin(cfg, *args, timeout=60):
    r = subprocess.run([AIRLOCKD, "admin", *args, "--config", cfg], capture_output=True,
                       text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def node_state(n):
    return psql(f"SELECT state FROM nodes WHERE id = '{n}'")


def main():
    if not PG:
        print("SKIP: run under pg_run.sh (AIRLOCK_TEST_PG unset)")
        return 77
    work = tempfile.mkdtemp(prefix="airlock-w4-nodeadmin-")
    conninfo = conninfo_file(os.path.join(work, "pg.conf"))
    cfg = os.path.join(work, "airlockd.json")
    with open(cfg, "w") as f:
        json.dump({"state_dir": os.path.join(work, "state"),
                   "store": {"driver": "postgres", "conninfo_file": conninfo}}, f)

    # a PostgreSQL store no node registered in: no cluster
    rc, out, err = admin(cfg, "node", "ls")
    check(rc == 1 and "no cluster: this store has no nodes" in err,
          "node ls without nodes: no cluster", (rc, out, err))
    rc, out, err = admin(cfg, "node", "drain", "n1")
    check(rc == 1 and "no cluster" in err, "node drain without nodes: no cluster", (rc, err))

    # three nodes as their heartbeats leave them: n1 up and fresh, n2 up
    # but silent for 60 s, n3 down; n1 runs two sessions, n2 one
    def node(nid, state, age_ms, reason="NULL"):
        psql("INSERT INTO nodes(id, address, api_address, state, version, epoch, cap_sessions,"
             " cap_memory_mb, cap_cpu_m, started_ms, heartbeat_ms, down_ms, down_reason)"
             f" VALUES ('{nid}', '10.0.0.{nid[1]}:7071', '10.0.0.{nid[1]}:7070', '{state}',"
             f" '0.1.0', 1, 500, 15000, 2000, {NOW} - 100000, {NOW} - {age_ms}, NULL, {reason})")

    node("n1", "up", 0)
    node("n2", "up", 60000)
    node("n3", "down", 120000, "'no heartbeat for 20 s'")

    def session(sid, nid, state, mem):
        psql("INSERT INTO sessions(id, \"user\", state, pub, priv, node, memory_mb, cpu_m)"
             f" VALUES ('{sid}', 'alice', '{state}', '{{\"id\":\"{sid}\",\"state\":\"{state}\"}}',"
             f" '{{}}', '{nid}', {mem}, 1000)")

    session("s_a1", "n1", "ready", 512)
    session("s_a2", "n1", "creating", 1024)
    session("s_a3", "n1", "deleted", 4096)  # ended: not counted
    session("s_b1", "n2", "ready", 256)

    rc, out, err = admin(cfg, "node", "ls")
    lines = {ln.split()[0]: ln for ln in out.splitlines()[1:] if ln.strip()}
    check(rc == 0 and set(lines) == {"n1", "n2", "n3"}, "node ls lists the three nodes",
          (rc, out, err))
    check(out.splitlines()[0].split()[:6] == ["NODE", "STATE", "SESSIONS", "MEMORY_MB", "CPUS",
                                              "HEARTBEAT"], "node ls header", out)
    n1 = lines.get("n1", "").split()
    check(n1[1:5] == ["up", "2/500", "1536/15000", "2.0"], "n1: up, 2 of 500 sessions, memory",
          n1)
    check(n1[5].endswith("s") and float(n1[5][:-1]) < 30, "n1: a fresh heartbeat age", n1)
    n2 = lines.get("n2", "").split()
    check(n2[1:3] == ["up", "1/500"] and float(n2[5][:-1]) >= 60, "n2: silent for 60 s", n2)
    check("down" in lines.get("n3", "") and "(no heartbeat for 20 s)" in lines.get("n3", ""),
          "n3: down, with its reason", lines.get("n3"))
    rc, out, err = admin(cfg, "node", "ls", "--json")
    try:
        rows = {n["id"]: n for n in json.loads(out)}
    except ValueError:
        rows = {}
    check(rc == 0 and rows.get("n1", {}).get("sessions") == 2 and
          rows["n1"]["capacity"]["sessions"] == 500 and rows["n1"]["state"] == "up",
          "node ls --json", out)

    # drain / undrain
    rc, out, err = admin(cfg, "node", "drain", "n1")
    check(rc == 0 and "node n1: draining" in out and node_state("n1") == "draining",
          "node drain n1", (rc, out, err))
    rc, out, err = admin(cfg, "node", "ls")
    check("draining" in [ln.split()[1] for ln in out.splitlines() if ln.startswith("n1 ")],
          "node ls shows n1 draining", out)
    rc, out, err = admin(cfg, "node", "undrain", "n1")
    check(rc == 0 and node_state("n1") == "up", "node undrain n1", (rc, out, err))
    rc, out, err = admin(cfg, "node", "undrain", "n1")
    check(rc == 1 and "not draining" in err, "undrain of an up node is refused", (rc, err))
    rc, out, err = admin(cfg, "node", "drain", "n9")
    check(rc == 1 and "no node n9" in err, "drain of an unknown node", (rc, err))

    # rm: refused while the node is up with a fresh heartbeat
    rc, out, err = admin(cfg, "node", "rm", "n1")
    check(rc == 1 and "stop its airlockd first" in err and node_state("n1") == "up",
          "node rm of a live node is refused", (rc, err))
    rc, out, err = admin(cfg, "node", "rm", "n2")
    check(rc == 0 and node_state("n2") == "left", "node rm of a silent node", (rc, out, err))
    rc, out, err = admin(cfg, "node", "rm", "n3")
    check(rc == 0 and node_state("n3") == "left", "node rm of a down node", (rc, out, err))

    # drain --wait: still 2 sessions after the timeout -> 1
    t0 = time.monotonic()
    rc, out, err = admin(cfg, "node", "drain", "n1", "--wait", "--timeout", "2")
    check(rc == 1 and "n1: 2 sessions left" in out and "after 2 s" in err,
          "drain --wait --timeout 2 with sessions left exits 1", (rc, out, err))
    check(time.monotonic() - t0 < 30, "and returns", time.monotonic() - t0)
    admin(cfg, "node", "undrain", "n1")

    # drain --wait: the sessions end while it waits -> 0
    res = {}

    def waiter():
        res["r"] = admin(cfg, "node", "drain", "n1", "--wait", "--timeout", "60", timeout=90)

    th = threading.Thread(target=waiter)
    th.start()
    deadline = time.monotonic() + 30
    while node_state("n1") != "draining" and time.monotonic() < deadline:
        time.sleep(0.2)
    psql("UPDATE sessions SET state = 'deleted' WHERE id = 's_a1'")
    time.sleep(1.5)
    psql("UPDATE sessions SET state = 'expired' WHERE id = 's_a2'")
    th.join(90)
    rc, out, err = res.get("r", (None, "", ""))
    check(rc == 0 and "n1: 0 sessions left" in out and node_state("n1") == "draining",
          "drain --wait exits 0 once the node's sessions ended", (rc, out, err))

    subprocess.run(["rm", "-rf", work])
    if failures:
        print(f"{len(failures)} failed: {failures}")
        return 1
    print("all ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
