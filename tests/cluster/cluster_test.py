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
from cluster import (SKIP, Cluster, Fail, check, load_settings, run_cluster_case,  # noqa: E402
                     wait_until)
from harness import SSEParser, leftovers, sse_events, sha256, thread  # noqa: E402
from pgcluster import pg_ctl, unavailable  # noqa: E402

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

def sign(key, method, uri, node, principal_b64, body=b"", t_ms=None, nonce=None, to="n3"):
    """The node-request headers of design §5.1 (the receiving node `to` is
    signed too, docs/cluster.md), made by the test with the shared cluster
    key."""
    k_req = hmac.new(key, b"airlock node request v1", hashlib.sha256).digest()
    t = str(t_ms if t_ms is not None else int(time.time() * 1000))
    nonce = nonce or secrets.token_hex(16)
    bsha = hashlib.sha256(body).hexdigest()
    signed = "\n".join(["airlock-node-v1", method, uri, t, nonce, node, to, principal_b64, bsha,
                        ""])
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


class Sections:
    """Runs a case's parts one after the other; a part that fails is
    reported ("FAIL part: ...") and the next runs (unless it was `fatal`),
    so one run shows every part's result; done() fails the case if any
    part failed."""

    def __init__(self):
        self.failed = []

    def __call__(self, name, fn, *args, fatal=False):
        t0 = time.monotonic()
        try:
            v = fn(*args)
            print(f"pass: {name} ({time.monotonic() - t0:.1f} s)", flush=True)
            return v
        except (Fail, OSError, ValueError, KeyError, IndexError) as e:
            # (OSError: a socket timeout of a stream that went silent)
            e = e if isinstance(e, Fail) else f"{type(e).__name__}: {e}"
            print(f"FAIL part: {name}: {e}", flush=True)
            self.failed.append(name)
            if fatal:
                raise
        return None

    def done(self):
        check(not self.failed, "every part passes; failed", self.failed)


def spread_forward(cl):
    n1, n2, n3 = cl.nodes
    part = Sections()
    st8 = {}

    def spread():
        # 12 creates through n1 land by capacity 4/8/12: 2/4/6 (+-1)
        sids = [n1.create() for _ in range(12)]
        where = {sid: node_of(cl, sid) for sid in sids}
        counts = {f"n{i}": list(where.values()).count(f"n{i}") for i in (1, 2, 3)}
        print(f"spread of 12 creates through n1: {counts}", flush=True)
        st8["where"] = where
        st8["remote"] = [s for s, nd in where.items() if nd == "n3"][0]
        for nid, want in (("n1", 2), ("n2", 4), ("n3", 6)):
            check(abs(counts[nid] - want) <= 1, f"{nid} holds {want} +-1 of 12 sessions", counts)
        # GET through any node shows it
        for n in cl.nodes:
            check(n.session(st8["remote"])["state"] == "ready", f"{n.node_id} shows the session")
    part("12 creates through n1 spread 2/4/6 by capacity", spread, fatal=True)
    remote = st8["remote"]
    where = st8["where"]

    def exec_stream():
        st, out, err, ex, _ = n1.exec(remote, shell="for i in 1 2 3; do echo line$i; done")
        check(st == 200 and out == b"line1\nline2\nline3\n" and ex.get("code") == 0,
              "exec through n1 on a session of n3 streams its output", (st, out, err, ex))
    part("exec through n1 on a session of n3", exec_stream)

    def files():
        blob = os.urandom(5 * 1024 * 1024)
        r = n1.request("PUT", f"/v1/sessions/{remote}/files/big.bin", raw=blob,
                       ctype="application/octet-stream", timeout=120)
        check(r.status in (200, 201), "file PUT of 5 MiB through n1", r)
        r = n2.get(f"/v1/sessions/{remote}/files/big.bin", timeout=120)
        check(r.status == 200 and sha256(r.body) == sha256(blob),
              "file GET through n2 has the same SHA-256", (r.status, len(r.body)))
        check(n3.run(remote, "sha256sum big.bin").split()[0].decode() == sha256(blob),
              "the owner has the same bytes")
    part("5 MiB file PUT through n1, GET through n2", files)

    def events():
        c, resp = n2.stream("GET", f"/v1/sessions/{remote}/events")
        try:
            check(resp.status == 200, "events through n2", resp.status)
            n1.run(remote, "true")
            evs = sse_events(resp, until=lambda e: e["event"] == "process_exit", deadline=30)
            check(evs[-1]["data"].get("session") == remote,
                  "SSE through n2 sees the process_exit of an exec run through n1", evs)
        finally:
            c.close()
    part("SSE events through n2 of an exec through n1", events)
    part("tty WebSocket through n1", tty_echo, n1, remote)
    part("exec approval: exec through n1, decided through n2", approval_through, cl, n1, n2)

    def pushes():
        # placement picks the node: create until each holds a session on
        # the repository
        on = {}
        for k in range(9):
            if len(on) == 3:
                break
            sid = cl.nodes[k % 3].create(repo="https://git.test/o/r.git")
            on.setdefault(node_of(cl, sid), sid)
        check(len(on) == 3, "sessions on the repository on every node", on)
        for nid, sid in sorted(on.items()):
            push_from(cl.node(nid), sid)
            # and its repository through a node that does not hold it
            other = cl.nodes[int(nid[1:]) % 3]
            out = other.run(sid, "git log -1 --format=%s")
            check(out == b"agent\n", "the session's repository through another node", out)
    part("a git push from a session on each node", pushes)

    def peer_auth():
        with open(cl.cluster_key, "rb") as f:
            key = f.read()
        pr = base64.urlsafe_b64encode(json.dumps({"user": "alice", "key_id": "t", "admin": False,
                                                  "max_sessions": 100,
                                                  "max_memory_mb": 1 << 20})
                                      .encode()).decode().rstrip("=")
        path = f"/v1/sessions/{remote}/processes"
        good = sign(key, "GET", path, "n1", pr)
        got = {"signed": peer_get(n3, path, good)[0],
               "replayed nonce": peer_get(n3, path, good)[0],
               "signed for n3, replayed at n2": peer_get(n2, path, good)[0]}
        bad = sign(key, "GET", path, "n1", pr)
        bad["X-Airlock-Signature"] = "v1=" + "0" * 64
        got["bad signature"] = peer_get(n3, path, bad)[0]
        skew = sign(key, "GET", path, "n1", pr, t_ms=int(time.time() * 1000) - 120000)
        got["time 120 s off"] = peer_get(n3, path, skew)[0]
        got["API key"] = peer_get(n3, path, {"Authorization": f"Bearer {cl.keys['alice']}"})[0]
        # every attempt is made before any is judged, so one run shows each
        want = {"signed": 200, "replayed nonce": 401, "signed for n3, replayed at n2": 401,
                "bad signature": 401,
                "time 120 s off": 401, "API key": 401}
        wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
        check(not wrong, "the node listener answers (got, want)", wrong)
    part("node listener: signed 200; bad signature, replay (also at another node), skew,"
         " API key 401", peer_auth)

    def fanin():
        on2 = [s for s, nd in where.items() if nd == "n2"][0]
        c, resp = n1.stream("GET", "/v1/events")
        try:
            check(resp.status == 200, "/v1/events on n1", resp.status)
            marks = [on2, remote]
            time.sleep(0.5)
            for sid in marks:
                st, *_ = n1.exec(sid, shell="true")
                check(st == 200, "exec for the fan-in", st)
            seen = {}

            def got_both(e):
                if e["event"] == "process_exit":
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
                  "/v1/events on n1 sees the exit of sessions on n2 and n3 once each", seen)
        finally:
            c.close()
    part("/v1/events on n1 fans in n2's and n3's events once each", fanin)
    part.done()


def ws_attach(n, sid, pid, key="alice"):
    """wsclient.WS to node `n` (wsclient connects to 127.0.0.1: its socket
    module is swapped for one that connects to the node's address)."""
    import types
    import wsclient
    real = wsclient.socket
    shim = types.SimpleNamespace(**{k: getattr(real, k) for k in dir(real)
                                    if not k.startswith("__")})
    shim.create_connection = lambda a, timeout=None: real.create_connection((n.addr, a[1]),
                                                                           timeout=timeout)
    wsclient.socket = shim
    try:
        return wsclient.WS(n.port, f"/v1/sessions/{sid}/processes/{pid}/tty",
                           auth=n.keys[key])
    finally:
        wsclient.socket = real


def tty_echo(n, sid):
    """A shell on a terminal, started and attached through `n` (not the
    holder): the WebSocket echoes; the exit comes in the last frames."""
    r = n.post(f"/v1/sessions/{sid}/exec", {"argv": ["sh"], "tty": {"rows": 24, "cols": 80},
                                             "background": True, "env": {"TERM": "xterm"}})
    check(r.status == 202, "exec with a tty through another node answers 202", r)
    w = ws_attach(n, sid, r.json["id"])
    try:
        w.sock.settimeout(30)
        w.send_bytes(b"echo M$((40+2))\r")
        out = w.read_until(b"M42")
        check(b"M42" in out, "the tty echoes through the forwarding node", out[-300:])
        w.send_bytes(b"exit 3\r")
        out, ex, closed = w.read_to_close()
        check(ex and ex.get("code") == 3, "the exit frame through the forwarding node", ex)
    finally:
        w.close()


def approval_through(cl, n1, n2):
    """A session in mode regular held by a node other than n1 and n2... or
    any: the exec is sent through n1, the approval listed and allowed
    through n2 (neither of which needs to hold it)."""
    sid = n1.create(mode="regular")
    P = f"/v1/sessions/{sid}"

    def pending():
        r = n2.get(P + "/approvals")
        return r.status == 200 and [x for x in r.json["approvals"] if x["state"] == "pending"]
    h = thread(lambda: n1.exec(sid, argv=["echo", "allowed"]))
    a = wait_until(30, pending, "a pending approval listed through n2")[0]
    r = n2.post(P + f"/approvals/{a['id']}", {"decision": "allow"})
    check(r.status == 200 and r.json.get("state") == "allowed", "allowed through n2", r)
    st, out, err, ex, _ = h.result(60)
    check(st == 200 and out == b"allowed\n", "the exec through n1 ran once allowed through n2",
          (st, out, ex))
    rows = cl.psql(f"SELECT state FROM approvals WHERE session = '{sid}'")
    check(rows == [["allowed"]], "the approval's row in the database", rows)


# ---- failure ------------------------------------------------------------------

def rows_of(cl, nid):
    """{session id: (state, end_reason)} of node `nid`'s rows."""
    rows = cl.psql("SELECT id, state, coalesce(pub::json->>'end_reason', '') FROM sessions"
                   f" WHERE node = '{nid}'") or []
    return {r[0]: (r[1], r[2]) for r in rows if len(r) == 3}


def node_states(cl):
    return {r[0]: r[1] for r in (cl.psql("SELECT id, state FROM nodes") or []) if len(r) == 2}


def spread_until(cl, want, via, most=16):
    """Creates through `via` until every node in `want` ({node: count})
    holds that many; returns {node: [ids]}."""
    held = {}
    for _ in range(most):
        if all(len(held.get(n, [])) >= k for n, k in want.items()):
            break
        sid = via.create()
        held.setdefault(node_of(cl, sid), []).append(sid)
    check(all(len(held.get(n, [])) >= k for n, k in want.items()),
          f"creates reached {want}", held)
    return held


class Poller:
    """Asks each of `nodes` for GET /v1/sessions every 100 ms in a thread;
    `bad` collects every answer that is not 2xx (and every error)."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.bad = []
        self.n = 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            for n in self.nodes:
                try:
                    r = n.get("/v1/sessions", timeout=15)
                    if not 200 <= r.status < 300:
                        self.bad.append((n.node_id, r.status, r.body[:200]))
                except OSError as e:
                    self.bad.append((n.node_id, repr(e)))
                self.n += 1
            time.sleep(0.1)

    def stop(self):
        self.stop_ev.set()
        self.t.join(30)
        return self.bad


class FanIn:
    """A reader of /v1/events on node `n` (the cluster's fan-in) that
    follows the stream the way a client must (design §5.5): it keeps the
    last id per node ("n3:9") and, when the stream ends because the set of
    nodes changed, reconnects with the vector Last-Event-ID."""

    def __init__(self, n, key="alice"):
        self.n = n
        self.key = key
        self.last = {}
        self.reconnects = 0
        self._open()

    def _open(self):
        hdrs = {}
        if self.last:
            hdrs["Last-Event-ID"] = ",".join(f"{k}:{v}" for k, v in sorted(self.last.items()))
        self.c, self.r = self.n.stream("GET", "/v1/events", key=self.key, headers=hdrs)
        check(self.r.status == 200, "/v1/events", (self.r.status, hdrs))

    def close(self):
        self.c.close()

    def until(self, pred, deadline=20):
        """Reads events until pred(event) (returned); fails after
        `deadline` seconds."""
        end = time.monotonic() + deadline
        parser = SSEParser()
        seen = []
        while True:
            left = end - time.monotonic()
            check(left > 0, f"an event within {deadline}s; got", seen[-10:])
            self.r.fp.raw._sock.settimeout(max(0.1, left))
            try:
                line = self.r.readline()
            except TimeoutError:
                continue
            if not line:  # the stream ended: reconnect from where it was
                self.c.close()
                self.reconnects += 1
                self._open()
                parser = SSEParser()
                continue
            ev = parser.feed(line)
            if ev:
                seen.append(ev)
                if ev["id"] and ":" in ev["id"]:
                    node, _, num = ev["id"].rpartition(":")
                    self.last[node] = num
                if pred(ev):
                    return ev


def failure(cl):
    n1, n2, n3 = cl.nodes
    part = Sections()
    held = spread_until(cl, {"n1": 1, "n2": 2, "n3": 2}, n1)
    lost_ids = held["n2"]
    keep = held["n3"]
    # a subscriber on n1 to every event of alice's sessions (fan-in); it
    # has seen an event of each node before the kill
    fan = FanIn(n1)
    for sid in (held["n1"][0], lost_ids[0], keep[0]):
        n1.run(sid, "true")
        fan.until(lambda e, sid=sid: e["event"] == "process_exit" and
                  e["data"].get("session") == sid)
    poll = Poller([n1, n3])
    time.sleep(0.5)

    # kill -9 of n2: its sessions are lost within the configured time
    t0 = time.monotonic()
    n2.kill9()

    def lost():
        def all_lost():
            rows = rows_of(cl, "n2")
            return all(rows.get(s, ("",))[0] == "lost" for s in lost_ids) and rows
        rows = wait_until(30, all_lost, "n2's sessions marked lost")
        took = time.monotonic() - t0
        print(f"n2 killed: its {len(lost_ids)} sessions lost after {took:.2f} s "
              f"(deadline {LOST_DEADLINE_S:.1f} s)", flush=True)
        check(took <= LOST_DEADLINE_S, f"lost within down_after + heartbeat + 1 s slack "
              f"({LOST_DEADLINE_S:.1f} s)", took)
        for sid in lost_ids:
            check(rows[sid][1].startswith("node-down: n2"), "the reason is node-down: n2...",
                  rows[sid])
            s = n1.session(sid)
            check(s["state"] == "lost" and (s.get("end_reason") or "").startswith("node-down: n2"),
                  "GET through n1 shows it lost with the reason", s)
        check(node_states(cl).get("n2") == "down", "n2 is down", node_states(cl))
    part("kill -9 n2: its sessions lost (node-down: n2...) in time", lost)

    def lost_event():
        try:
            fan.until(lambda e: e["event"] == "state" and e["data"].get("state") == "lost" and
                      e["data"].get("session") == lost_ids[0], deadline=20)
            print(f"the subscriber on n1 heard state lost ({fan.reconnects} reconnects with "
                  "Last-Event-ID)", flush=True)
        finally:
            fan.close()
    part("an SSE subscriber on n1 hears state lost", lost_event)

    def lost_409():
        r = n1.post(f"/v1/sessions/{lost_ids[0]}/exec", {"shell": "true"})
        check(r.status == 409, "exec on a lost session through n1 answers 409", r)
    part("exec on a lost session answers 409", lost_409)

    def creates_avoid():
        for _ in range(4):
            sid = n1.create()
            check(node_of(cl, sid) in ("n1", "n3"), "a create after n2's death avoids n2", sid)
    part("creates after n2's death go to n1/n3", creates_avoid)

    def api_up():
        bad = poll.stop()
        print(f"API poller: {poll.n} requests to n1 and n3, {len(bad)} not 2xx", flush=True)
        check(not bad, "n1 and n3 answered every request while n2 died", bad[:10])
    part("n1 and n3 answered every request throughout", api_up)

    def readopt():
        t1 = time.monotonic()
        n3.kill9()
        n3.start()
        back = time.monotonic() - t1
        print(f"n3 killed and restarted in {back:.2f} s (down_after {DOWN_AFTER_MS / 1000} s)",
              flush=True)
        for sid in keep:
            wait_until(30, lambda: n1.session(sid)["state"] == "ready", "n3's session ready")
            check(n1.run(sid, "echo readopted") == b"readopted\n",
                  "exec through n1 on a session re-adopted by n3")
        check(node_states(cl).get("n3") == "up", "n3 is up", node_states(cl))
    part("kill -9 n3 + restart before down_after: re-adopted, exec through n1", readopt)

    def n2_back():
        n2.start()
        left = leftovers(lost_ids, n2.state, wait=30)
        check(not left, "the restarted n2 ended its lost sessions' sandboxes", left)
        for sid in lost_ids:
            st = n1.session(sid)["state"]
            check(st == "lost", "and they stay lost", (sid, st))
        wait_until(30, lambda: node_states(cl).get("n2") == "up", "n2 up again")
    part("n2 restarted: ends its lost sandboxes, nothing left", n2_back)

    def outage():
        for n in cl.nodes:
            if not n.alive():
                n.start()
        sid = keep[0]
        h = thread(lambda: n3.exec(sid, shell=f"for i in $(seq 1 {OUTAGE_S + 4}); do sleep 1; "
                                   "done; echo through"))
        time.sleep(1)
        pg_ctl("stop")
        k = 0
        try:
            end = time.monotonic() + OUTAGE_S
            while time.monotonic() < end:
                for n in cl.nodes:
                    unavailable(n.get(f"/v1/sessions/{sid}", timeout=15),
                                f"GET session on {n.node_id}")
                    unavailable(n.post("/v1/sessions", {}, timeout=15),
                                f"POST sessions on {n.node_id}")
                    k += 2
                time.sleep(0.3)
        finally:
            pg_ctl("start")
        print(f"{k} requests answered 503 during the outage", flush=True)
        for n in cl.nodes:
            wait_until(60, lambda: n.get(f"/v1/sessions/{sid}", timeout=15).status == 200,
                       f"{n.node_id} answers 200 again once PostgreSQL is back")
        st, out, err, ex, _ = h.result(120)
        check(st == 200 and out == b"through\n" and ex.get("code") == 0,
              "the command run across the outage finished undisturbed", (st, out, err, ex))
        # no node is marked down by the outage: watch for two down_after periods
        end = time.monotonic() + 2 * DOWN_AFTER_MS / 1000
        while time.monotonic() < end:
            ns = node_states(cl)
            check(ns and all(v == "up" for v in ns.values()),
                  "no node marked down after the outage", ns)
            time.sleep(0.2)
        for sid in keep + held["n1"]:
            check(n2.session(sid)["state"] == "ready", "sessions of n1 and n3 still ready", sid)
        check(n2.run(keep[0], "echo after") == b"after\n", "exec through n2 after the outage")
        sid = n2.create()
        check(n2.run(sid, "echo new") == b"new\n", "a new session after the outage")
    part("PostgreSQL stopped 10 s: 503s with the reason, recovery, no node marked down", outage)
    poll.stop()
    part.done()


# ---- drain ---------------------------------------------------------------------

def drain(cl):
    n1, n2, n3 = cl.nodes
    part = Sections()
    held = spread_until(cl, {"n1": 2, "n2": 1, "n3": 1}, n2)

    def ls():
        rc, out, err = n1.admin_run("node", "ls")
        check(rc == 0, "node ls", (rc, out, err))
        print(out, flush=True)
        lines = {ln.split()[0]: ln.split() for ln in out.splitlines()[1:] if ln.strip()}
        for nid, cap in (("n1", 4), ("n2", 8), ("n3", 12)):
            check(nid in lines and lines[nid][1] == "up", f"node ls: {nid} up", out)
            check(lines[nid][2] == f"{len(held.get(nid, []))}/{cap}",
                  f"node ls: {nid}'s sessions/capacity", out)
            check("ago" in " ".join(lines[nid]), f"node ls: {nid}'s heartbeat age", out)
    part("node ls: states, sessions/capacity, heartbeat age", ls)

    p = subprocess.Popen([n1.binary, "admin", "--config", n1.conf_path, "node", "drain", "n1",
                          "--wait", "--timeout", "60"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        def draining():
            wait_until(30, lambda: node_states(cl).get("n1") == "draining", "n1 draining")
            wait_until(10, lambda: n1.get("/healthz", key=None).json.get("node") == "draining",
                       "/healthz of n1 says draining")
        part("drain n1: its row and /healthz say draining", draining, fatal=True)

        def creates_avoid():
            for n in (n1, n2, n1, n2, n3, n1):
                sid = n.create()
                check(node_of(cl, sid) in ("n2", "n3"), "creates avoid the draining n1", sid)
            check(p.poll() is None, "drain --wait waits while n1 holds sessions")
        part("creates through every node avoid the draining n1; --wait waits", creates_avoid)

        def still_works():
            check(n3.run(held["n1"][0], "echo draining") == b"draining\n",
                  "a session of the draining n1 works (through n3)")
        part("a session of the draining n1 still works", still_works)
        for sid in held["n1"]:
            r = n3.delete(f"/v1/sessions/{sid}")
            check(r.status == 200, "delete n1's session through n3", r)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            out, err = p.communicate()
    print(out, err, flush=True)

    def wait_done():
        check(p.returncode == 0, "drain --wait exits 0 once n1 is empty", (p.returncode, out, err))
        check("n1: 0 sessions left" in out, "drain --wait says n1: 0 sessions left", out)
        rc, o, e = n1.admin_run("node", "ls")
        check(rc == 0 and "draining" in o, "node ls shows n1 draining", (o, e))
    part("drain --wait exits 0 once n1's sessions are deleted", wait_done)

    def undrain():
        rc, o, e = n1.admin_run("node", "undrain", "n1")
        check(rc == 0, "undrain", (rc, o, e))
        check(node_states(cl).get("n1") == "up", "n1 up again", node_states(cl))
        # the emptiest node by capacity is n1 now: the next create lands there
        wait_until(10, lambda: n1.get("/healthz", key=None).json.get("node") == "up",
                   "/healthz of n1 says up")
        sid = n2.create()
        check(node_of(cl, sid) == "n1", "a create lands on the undrained n1", sid)
    part("undrain: n1 up, takes creates again", undrain)
    part.done()


CASES = {"plumbing": (plumbing, False), "spread_forward": (spread_forward, True),
         "failure": (failure, True), "drain": (drain, True)}


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
