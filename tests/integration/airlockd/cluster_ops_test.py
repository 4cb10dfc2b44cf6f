#!/usr/bin/env python3
"""A cluster node's operations surface (docs/cluster.md): one real airlockd
node (cluster section, PostgreSQL under tests/unit/airlockd/pg_run.sh).

cluster_ops:
  * /healthz says "db": "up" and "node": "up"; /healthz?ready=1 is 200;
  * /metrics has airlock_db_up, the node gauges and the cluster gauges from
    the cached node list, and the lost state in airlock_sessions;
  * approvals (regular mode) are rows of the approvals table as they are
    asked for and decided (exec allowed, denied), and once the session
    ended GET …/approvals answers from the table;
  * `airlock admin node ls` shows the registered node; `node drain` turns
    /healthz's node to "draining" and placement refuses creates (503);
    `node undrain` brings it back;
  * PostgreSQL stopped: /healthz stays 200 with "db": "down: …" while
    /healthz?ready=1 is 503; once it is back, ready is 200 again.

    cluster_ops_test.py AIRLOCKD AIRLOCK_SESSION cluster_ops"""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, check, free_port, run_case, thread, wait_until  # noqa: E402
from pgcluster import Shared, case_args, cluster_node, pg_ctl, psql  # noqa: E402

HEARTBEAT_MS = 500
DOWN_AFTER_MS = 3000


class Node(Daemon):
    def __init__(self, binary, name, shared):
        self.cluster_port = free_port()
        super().__init__(binary, name=f"cluster-ops-{name}")
        self.node_id = name
        cluster_node(self, name, shared, self.cluster_port, heartbeat_ms=HEARTBEAT_MS,
                     down_after_ms=DOWN_AFTER_MS,
                     capacity={"sessions": 4, "memory_mb": 8192, "cpus": 2})


def healthz(d, ready=False):
    r = d.get("/healthz?ready=1" if ready else "/healthz", key=None)
    return r.status, r.json


def metric(text, name):
    """The value of the sample `name` (with its labels, exactly), or None."""
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def cluster_ops(d):
    # -- healthz -----------------------------------------------------------
    st, h = healthz(d)
    check(st == 200 and h.get("db") == "up" and h.get("node") == "up", "/healthz db and node", h)
    st, h = healthz(d, ready=True)
    check(st == 200 and h.get("status") == "ok", "/healthz?ready=1", (st, h))

    # -- metrics -----------------------------------------------------------
    def metrics():
        r = d.get("/metrics", key=None)
        check(r.status == 200, "/metrics", r.status)
        return r.body.decode()

    # the cluster gauges come from the node list cached every 5th beat
    text = wait_until(20, lambda: (lambda t: t if "airlock_cluster_nodes{" in t else None)(
        metrics()), "the cluster gauges")
    for name, want in [("airlock_db_up", 1), ('airlock_node_state{state="up"}', 1),
                       ('airlock_node_state{state="fenced"}', 0),
                       ("airlock_node_capacity_sessions", 4),
                       ("airlock_node_capacity_memory_mb", 8192),
                       ('airlock_cluster_nodes{state="up"}', 1),
                       ('airlock_cluster_nodes{state="down"}', 0),
                       ('airlock_sessions{state="lost"}', 0)]:
        check(metric(text, name) == want, f"metric {name} = {want}", metric(text, name))
    check(re.search(r'^airlock_node_info\{node="n1",version="[^"]+"\} 1$', text, re.M),
          "airlock_node_info", text[-2000:])
    check(metric(text, 'airlock_cluster_sessions{node="n1"}') is not None and
          metric(text, 'airlock_cluster_heartbeat_age_seconds{node="n1"}') is not None,
          "cluster sessions and heartbeat age of n1", text[-2000:])

    # -- approvals in the table -----------------------------------------------
    sid = d.create(mode="regular")
    P = f"/v1/sessions/{sid}"
    check(metric(metrics(), "airlock_node_sessions") == 1, "airlock_node_sessions 1")

    def decide_when_pending(decision):
        a = wait_until(20, lambda: [x for x in d.get(P + "/approvals").json["approvals"]
                                    if x["state"] == "pending"], "a pending approval")[0]
        rows = psql(f"SELECT state, kind FROM approvals WHERE session = '{sid}'"
                    f" AND id = '{a['id']}'")
        check(rows == [["pending", "exec"]], "the pending approval is a row", rows)
        r = d.post(P + f"/approvals/{a['id']}", {"decision": decision})
        check(r.status == 200, "decide", r)
        return a

    h = thread(decide_when_pending, "allow")
    res = d.exec(sid, argv=["echo", "allowed"])
    a1 = h.result()
    check(res[0] == 200 and res[1] == b"allowed\n", "an allowed exec runs", res)
    h = thread(decide_when_pending, "deny")
    res = d.exec(sid, argv=["echo", "denied"])
    a2 = h.result()
    check(res[0] == 403, "a denied exec is refused", res)
    rows = {r[0]: r for r in psql("SELECT id, state, kind, body, decided_ms IS NOT NULL,"
                                  " coalesce(decided_by, '')"
                                  f" FROM approvals WHERE session = '{sid}'")}
    check(rows.get(a1["id"], [""] * 6)[5] == "alice" and rows.get(a2["id"], [""] * 6)[5] == "alice",
          "each decided row names who decided", rows)
    check(rows.get(a1["id"], [None, None])[1] == "allowed" and rows[a1["id"]][4] == "t",
          "the allowed approval's row, decided", rows.get(a1["id"]))
    check(rows.get(a2["id"], [None, None])[1] == "denied", "the denied approval's row",
          rows.get(a2["id"]))
    body = json.loads(rows[a1["id"]][3]) if a1["id"] in rows else {}
    check(body.get("argv") == ["echo", "allowed"] and body.get("state") == "allowed",
          "the row's body is the approval's JSON", body)
    live = d.get(P + "/approvals").json["approvals"]
    r = d.delete(P)
    check(r.status in (200, 202, 204), "delete", r)
    wait_until(30, lambda: d.session(sid)["state"] == "deleted", "the session deleted")
    gone = d.get(P + "/approvals")
    check(gone.status == 200 and [x["id"] for x in gone.json["approvals"]] ==
          [x["id"] for x in live] and
          [x["state"] for x in gone.json["approvals"]] == ["allowed", "denied"],
          "an ended session's approvals come from the table", (gone.status, gone.json, live))

    # -- node ls / drain / undrain -----------------------------------------------
    def admin(*args):
        r = subprocess.run([d.binary, "admin", *args, "--config", d.conf_path],
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    rc, out, err = admin("node", "ls")
    n1 = [ln.split() for ln in out.splitlines() if ln.startswith("n1 ")]
    check(rc == 0 and n1 and n1[0][1] == "up" and n1[0][2] == "0/4" and
          n1[0][-1] == f"127.0.0.1:{d.cluster_port}", "node ls shows n1", (rc, out, err))
    rc, out, err = admin("node", "drain", "n1")
    check(rc == 0, "node drain n1", (rc, out, err))
    wait_until(20, lambda: healthz(d)[1].get("node") == "draining", "/healthz node draining")
    r = d.post("/v1/sessions", {})
    check(r.status == 503, "no placement on a draining node", r)
    check(metric(metrics(), 'airlock_node_state{state="draining"}') == 1,
          "airlock_node_state draining")
    rc, out, err = admin("node", "undrain", "n1")
    check(rc == 0, "node undrain n1", (rc, out, err))
    wait_until(20, lambda: healthz(d)[1].get("node") == "up", "/healthz node up again")
    rc, out, err = admin("node", "rm", "n1")
    check(rc == 1 and "stop its airlockd first" in err, "node rm of the running node refused",
          (rc, err))

    # -- the database down: readiness ----------------------------------------
    pg_ctl("stop")
    try:
        def unready():
            st, h = healthz(d, ready=True)
            return (st, h) if st == 503 else None
        st, h = wait_until(30, unready, "/healthz?ready=1 503 while the database is down")
        check(h.get("db", "").startswith("down: "), "db: down: REASON", h)
        st, h = healthz(d)
        check(st == 200 and h.get("db", "").startswith("down"), "/healthz itself stays 200",
              (st, h))
        check(metric(metrics(), "airlock_db_up") == 0, "airlock_db_up 0")
    finally:
        pg_ctl("start")
    wait_until(60, lambda: healthz(d, ready=True)[0] == 200, "ready again after the outage")


CASES = {"cluster_ops": cluster_ops}


def main():
    binary, name = case_args(CASES)
    shared = Shared("airlockd-cluster-ops")
    d = Node(binary, "n1", shared)
    return run_case(d, name, CASES[name], cleanup=shared.remove)


if __name__ == "__main__":
    sys.exit(main())
