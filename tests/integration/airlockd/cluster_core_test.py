#!/usr/bin/env python3
"""Two airlockd nodes sharing one PostgreSQL (issue 13, docs/cluster.md):
registration, placement rows, failure, re-adoption, fencing and a database
outage. Run under tests/unit/airlockd/pg_run.sh (AIRLOCK_TEST_PG,
AIRLOCK_TEST_PG_CTL). Both nodes run on loopback with their own state dirs,
ports and node ids and the same cluster key and master key; heartbeat_ms 500,
down_after_ms 3000.

cluster_core:
  * both nodes register (nodes rows up, with their capacity);
  * a create on each node makes a row that names that node;
  * a user's quota counts their sessions on every node;
  * a job queued while n1 drains is claimed by n2 and its session made there;
  * kill -9 of n2: its sessions become `lost` ("node-down: n2: ...") within
    down_after + heartbeat (+ slack), an SSE subscriber on n1's /v1/events
    gets `state` lost, and n1 keeps answering;
  * n2 restarts: it ends the sandboxes of its lost sessions (no process is
    left for their ids) and does not write their rows;
  * kill -9 of n1 and a restart at once (< down_after): its sessions are
    re-adopted and run commands;
  * fencing: the database gives n1's session away while n1 runs (its node
    row down, the session lost, as a sweep by another node does): n1 ends the
    sandbox without writing the row (it stays lost) and registers again with
    a new epoch;
  * PostgreSQL stopped for 10 s: afterwards no node is marked down (the
    sweep waits for an unbroken streak of the sweeper's own heartbeats).

    cluster_core_test.py AIRLOCKD AIRLOCK_SESSION CASE"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SKIP, Daemon, Fail, SSEParser, check, cleanup, free_port,  # noqa: E402
                     leftovers, run_guarded, session_processes, wait_until)
from pgcluster import Shared, case_args, cluster_node, pg_ctl, psql  # noqa: E402

HEARTBEAT_MS = 500
DOWN_AFTER_MS = 3000
OUTAGE_S = 10
# "lost within down_after + heartbeat" on a busy machine: the kill itself,
# a sweep that runs every heartbeat, scheduling slack
LOST_WITHIN_S = (DOWN_AFTER_MS + HEARTBEAT_MS) / 1000 + 4


def node_rows():
    return {r[0]: {"state": r[1], "epoch": int(r[2]), "cap_sessions": int(r[3]),
                   "cap_cpu_m": int(r[4])}
            for r in psql("SELECT id, state, epoch, cap_sessions, cap_cpu_m FROM nodes")}


def row_of(sid):
    rows = psql(f"SELECT state, node, pub FROM sessions WHERE id = '{sid}'")
    if not rows:
        return None
    return {"state": rows[0][0], "node": rows[0][1], "pub": json.loads(rows[0][2])}


class Node(Daemon):
    def __init__(self, binary, name, shared, caps):
        self.cluster_port = free_port()
        super().__init__(binary, name=f"cluster-{name}")
        self.node_id = name
        cluster_node(self, name, shared, self.cluster_port, heartbeat_ms=HEARTBEAT_MS,
                     down_after_ms=DOWN_AFTER_MS,
                     capacity={"sessions": caps, "memory_mb": 8192, "cpus": 2})


def subscribe(node, box, ready):
    """Reads n1's /v1/events (admin) in a thread until a `state` lost event
    arrives; box["events"] / box["error"]. The cluster's stream ends when a
    node's part ends (docs/api.md); like an EventSource it then reconnects
    with the Last-Event-ID vector it has. Reads through http.client's
    chunked decoding, so the end of a stream is seen."""
    events, last = [], None
    try:
        for _ in range(4):
            c = node.conn(timeout=60)
            h = node._headers("root-admin", None, None)
            if last:
                h["Last-Event-ID"] = last
            c.request("GET", "/v1/events", headers=h)
            r = c.getresponse()
            ready.set()
            parser = SSEParser()
            while True:
                line = r.readline()
                if not line:
                    break  # the stream ended: reconnect
                ev = parser.feed(line)
                if ev:
                    events.append(ev)
                    last = ev["id"] or last
                    if ev["event"] == "state" and ev["data"].get("state") == "lost":
                        box["events"] = events
                        return
            c.close()
        box["error"] = f"no state lost event in 4 streams: {events}"
    except Exception as e:  # noqa: BLE001
        box["error"] = repr(e)
        ready.set()


def cluster_core(n1, n2):
    # -- registration ------------------------------------------------------
    nodes = node_rows()
    check(set(nodes) == {"n1", "n2"}, "both nodes registered", nodes)
    check(all(n["state"] == "up" for n in nodes.values()), "both up", nodes)
    check(nodes["n1"]["cap_sessions"] == 4 and nodes["n2"]["cap_sessions"] == 8 and
          nodes["n1"]["cap_cpu_m"] == 2000, "with their capacity", nodes)

    # -- placement rows ----------------------------------------------------
    # Creates through either node are placed by free capacity; keep making
    # them until each node holds two (the rest are deleted again).
    held = {"n1": [], "n2": []}
    by_id = {"n1": n1, "n2": n2}
    extra = []
    for i in range(10):
        if all(len(v) >= 2 for v in held.values()):
            break
        entry = (n1, n2)[i % 2]
        sid = entry.create()
        row = row_of(sid)
        check(row and row["node"] in held and row["state"] == "ready",
              f"{sid}'s row names the node it runs on", row)
        entry.sessions.discard(sid)
        by_id[row["node"]].sessions.add(sid)
        (held[row["node"]] if len(held[row["node"]]) < 2 else extra).append((row["node"], sid))
    check(all(len(v) == 2 for v in held.values()), "creates reach both nodes", held)
    for node, sid in extra:
        check(by_id[node].delete(f"/v1/sessions/{sid}").status == 200, "extra deleted")
        by_id[node].sessions.discard(sid)
    (_, a1), (_, a2) = held["n1"]
    (_, b1), (_, b2) = held["n2"]
    check(n1.run(a1, "echo one") == b"one\n", "a session on n1 runs commands")
    check(n2.run(b1, "echo two") == b"two\n", "a session on n2 runs commands")
    check(n2.run(b2, "sleep 600 & echo started") == b"started\n", "a background process on n2")

    # -- quotas are the cluster's, not a node's -----------------------------
    n2.keys["carol"] = n1.add_user("carol", max_sessions=2)
    c1 = n1.create(key="carol")
    c2 = n2.create(key="carol")
    r = n2.post("/v1/sessions", {}, key="carol")
    check(r.status == 429 and r.error_code() == "quota_exceeded",
          "a third session of a user with max_sessions 2 is refused on either node", r)
    check("2 sessions" in r.json["error"]["message"], "counting both nodes' sessions", r)
    for node, sid in ((n1, c1), (n2, c2)):
        # deleted through the entry node, forwarded to the owner when needed
        check(node.delete(f"/v1/sessions/{sid}", key="carol").status == 200, "deleted")
        node.sessions.discard(sid)

    # -- jobs: claimed by a node that is up, not by a draining one ----------
    psql("UPDATE nodes SET state = 'draining' WHERE id = 'n1'")
    wait_until(10, lambda: "node n1 is draining" in n1.log_tail(20000),
               "n1 sees its drain on its next heartbeat")
    r = n1.post("/v1/jobs", {"command": ["sleep", "600"]})
    check(r.status in (200, 201, 202), "a job is queued through n1", r)
    jid = r.json["id"]
    job = wait_until(30, lambda: (lambda j: j if j.get("state") == "running" and
                                  j.get("session") else None)(n1.get(f"/v1/jobs/{jid}").json),
                     "the job runs")
    jrow = psql(f"SELECT node FROM jobs WHERE id = '{jid}'")
    check(jrow == [["n2"]], "the job was claimed by n2, not the draining n1", jrow)
    check(row_of(job["session"])["node"] == "n2", "its session is on n2 (placed locally)")
    n2.sessions.add(job["session"])
    psql("UPDATE nodes SET state = 'up' WHERE id = 'n1'")
    wait_until(10, lambda: "node n1 is up" in n1.log_tail(20000), "n1 is undrained")

    # -- n2 dies: its sessions are lost, announced on n1 -------------------
    box, ready = {}, threading.Event()
    t = threading.Thread(target=subscribe, args=(n1, box, ready), daemon=True)
    t.start()
    ready.wait(30)
    n2.kill9()
    t0 = time.monotonic()
    wait_until(LOST_WITHIN_S, lambda: all((row_of(s) or {}).get("state") == "lost"
                                          for s in (b1, b2)),
               f"n2's sessions are lost within {LOST_WITHIN_S} s")
    print(f"n2's sessions lost after {time.monotonic() - t0:.1f} s")
    reason = row_of(b1)["pub"].get("end_reason") or ""
    check(reason.startswith("node-down: n2"), "the reason names the down node", reason)
    check(node_rows()["n2"]["state"] == "down", "n2 is down", node_rows())
    t.join(60)
    check("error" not in box, "the event stream", box.get("error"))
    lost = [e for e in box.get("events", []) if e["event"] == "state" and
            e["data"].get("state") == "lost"]
    check(lost and lost[0]["data"]["session"] in (b1, b2) and
          lost[0]["data"]["reason"].startswith("node-down: n2"),
          "n1's /v1/events says state lost with the reason", lost)
    j = wait_until(10, lambda: (lambda j: j if j.get("state") == "failed" else None)(
        n1.get(f"/v1/jobs/{jid}").json), "n2's running job fails")
    check(j["error"].startswith("node-down: n2") and j["error"].count("node-down") == 1,
          "with the reason node-down (once)", j)
    r = n1.get(f"/v1/sessions/{b1}")
    check(r.status == 200 and r.json["state"] == "lost", "n1 shows the session lost", r)
    check(n1.run(a1, "echo still") == b"still\n", "n1 keeps working")
    check(session_processes([b1, b2]), "n2's sandboxes outlived it (for now)")

    # -- n2 comes back: it ends what the cluster gave up on ----------------
    n2.start()
    wait_until(30, lambda: not session_processes([b1, b2, job["session"]]),
               "n2's restart ends the sandboxes of its lost sessions")
    check(all(row_of(s)["state"] == "lost" for s in (b1, b2, job["session"])),
          "their rows stay lost")
    check(n2.get(f"/v1/jobs/{jid}").json["state"] == "failed", "the job stays failed")
    check(node_rows()["n2"]["state"] == "up", "n2 is up again", node_rows())
    check("the cluster gave it up" in n2.log_tail(20000), "n2 says why it ended them")
    b3 = n2.create()
    check(row_of(b3)["node"] == "n2", "n2 takes new sessions")

    # -- n1 restarts at once: re-adoption ----------------------------------
    n1.kill9()
    n1.start()
    for sid in (a1, a2):
        check(n1.session(sid)["state"] == "ready", f"{sid} re-adopted")
    check(n1.run(a2, "echo back") == b"back\n", "a re-adopted session runs commands")
    check(all(row_of(s)["node"] == "n1" for s in (a1, a2)), "still n1's")

    # -- fencing: the cluster gives a session of a running node away -------
    epoch = node_rows()["n1"]["epoch"]
    psql("UPDATE nodes SET state = 'down', down_ms = 0, down_reason = 'test' WHERE id = 'n1';"
         f"UPDATE sessions SET state = 'lost', pub = jsonb_set(jsonb_set(pub::jsonb, '{{state}}',"
         f" '\"lost\"'), '{{end_reason}}', '\"node-down: n1: test\"')::text WHERE id = '{a2}'")
    wait_until(30, lambda: not session_processes([a2]),
               "the fenced node ends the session it lost")
    wait_until(30, lambda: node_rows()["n1"]["state"] == "up" and
               node_rows()["n1"]["epoch"] > epoch, "and registers again with a new epoch")
    check(row_of(a2)["state"] == "lost", "without writing the lost row", row_of(a2))
    check(n1.get(f"/v1/sessions/{a2}").json.get("state") == "lost", "the API says lost")
    check(n1.run(a1, "echo kept") == b"kept\n", "its other session (still its own) runs")

    # -- a database outage marks no node down -------------------------------
    epochs = {k: v["epoch"] for k, v in node_rows().items()}
    pg_ctl("stop")
    try:
        time.sleep(OUTAGE_S)
    finally:
        pg_ctl("start")
    # both nodes heartbeat again; give every sweep its chance
    wait_until(60, lambda: n1.get(f"/v1/sessions/{a1}").status == 200, "n1 answers again")
    time.sleep(2 * DOWN_AFTER_MS / 1000 + 1)
    nodes = node_rows()
    check(all(n["state"] == "up" for n in nodes.values()) and
          {k: v["epoch"] for k, v in nodes.items()} == epochs,
          "no node was marked down after the outage (nor fenced and registered again)",
          (epochs, nodes))
    check(row_of(a1)["state"] == "ready" and row_of(b3)["state"] == "ready",
          "no session was lost", (row_of(a1), row_of(b3)))
    check(n1.run(a1, "echo after") == b"after\n", "n1 works after the outage")
    check(n2.run(b3, "echo after") == b"after\n", "n2 works after the outage")


CASES = {"cluster_core": cluster_core}


def main():
    binary, name = case_args(CASES)
    shared = Shared("airlockd-cluster-shared")
    n1 = Node(binary, "n1", shared, 4)
    n2 = Node(binary, "n2", shared, 8)

    def body():
        try:
            n1.start()
            n2.start()
        except Fail as e:
            if "cluster store not built yet" in n2.log_tail() + n1.log_tail():
                print("SKIP: the cluster store (adapters/store_nodes.c) is not built yet")
                return SKIP
            raise e
        n1.standard_users()
        n2.keys = dict(n1.keys)  # the users are in the shared database
        cluster_core(n1, n2)
        n1.healthy()
        n2.healthy()
        return None

    def finish():
        ids = [s for s in n1.sessions | n2.sessions if s]
        for n in (n1, n2):  # each deletes its own (the others' are not forwarded here)
            n.teardown(check_leftovers=False)
        left = leftovers(ids, n1.state) + leftovers(ids, n2.state)
        cleanup(ids, n1.state)
        cleanup(ids, n2.state)
        shared.remove()
        return left

    return run_guarded(name, body, finish,
                       lambda: [(f"{n.node_id} log (tail)", n.final_log) for n in (n1, n2)])


if __name__ == "__main__":
    sys.exit(main())
