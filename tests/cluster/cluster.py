"""Harness for tests/cluster and bench/cluster: several real airlockd nodes on
this machine sharing one PostgreSQL, each in a network namespace of its own
(tests/cluster/netns.sh: namespace alnTAG-i, address 10.231.SUB.1i), built on
tests/integration/airlockd/harness.py.

run.sh makes the namespaces and the upstream (tests/integration/gitproxy/
env.sh with UPSTREAM_ADDR = the bridge's address, ENV_NO_PROXY=1) and runs
the test under tests/unit/airlockd/pg_run.sh; it hands over its settings in a
JSON file (T, UP, REAL_TOKEN, SRV, STATE, BUILD, TAG, SUB, GITCONFIG).

Each node: `nsenter --net=/run/netns/alnTAG-i -- airlockd --config ...` (not
`ip netns exec`, which also remounts /sys and so hides the cgroup tree), API on
10.231.SUB.1i:7070, the node listener on :7071, its own state dir (so its own
uid range), the store in PostgreSQL (AIRLOCK_TEST_PG), the shared cluster key
and master key (0600) in the cluster's scratch dir, its own gitproxy
configuration whose git.test upstream is env.sh's nginx on the bridge, its own
copy of env.sh's credential store (sealed with the shared master key).
Without `cluster=True` the nodes are plain daemons on one PostgreSQL."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "airlockd"))
from harness import (SKIP, Daemon, Fail, check, cleanup, leftovers,  # noqa: E402,F401
                     run_guarded, wait_until)
from pgcluster import conninfo_file, key_file, private_file, psql_run  # noqa: E402

API_PORT = 7070
NODE_PORT = 7071


class Node(Daemon):
    """One airlockd in its network namespace. `i` is 1-based."""

    def __init__(self, cl, i, config=None):
        self.cl = cl
        self.i = i
        self.node_id = f"n{i}"
        self.ns = f"aln{cl.tag}-{i}"
        self.addr = f"10.231.{cl.sub}.1{i}"
        super().__init__(cl.airlockd, config, name=f"{cl.name}-n{i}")
        # the gitproxy's cache (beside the state dir) must be reachable by
        # the proxy user
        os.chmod(self.dir, 0o755)
        self.port = API_PORT
        self.url = f"http://{self.addr}:{API_PORT}"
        self.keys = cl.keys  # users and keys are the cluster's (one database)
        self.sessions = cl.sessions
        s = cl.settings
        store = os.path.join(self.dir, "creds.store")
        shutil.copyfile(os.path.join(s["STATE"], "creds.store"), store)
        os.chmod(store, 0o600)
        token_key = os.path.join(self.dir, "token.key")
        subprocess.run([os.path.join(s["BUILD"], "creds", "airlock-creds"), "key", "generate",
                        token_key], check=True, capture_output=True)
        gp = os.path.join(self.dir, "gitproxy.json")
        with open(gp, "w") as f:
            json.dump({"store": store, "master_key": cl.master_key,
                       "upstreams": {"git.test": {"url": s["UP"]}},
                       "cache_dir": os.path.join(self.dir, "gitproxy-cache"),
                       "audit_log": os.path.join(self.dir, "git-audit.jsonl"),
                       "leak_guard": True, "check_fast_forward": True}, f, indent=1)
        os.chmod(gp, 0o600)
        self.config.update({
            "listen": f"{self.addr}:{API_PORT}",
            "store": {"driver": "postgres", "conninfo_file": cl.conninfo,
                      "statement_timeout_ms": 2000, "connect_timeout_ms": 2000},
            "proxies": {"gitproxy_config": gp, "credential_store": store,
                        "master_key": cl.master_key,
                        "token_keys": [{"kid": "k1", "file": token_key}]},
        })
        if cl.clustered:
            cap = cl.caps[i - 1]
            self.config["cluster"] = {
                "node_id": self.node_id,
                "listen": f"{self.addr}:{NODE_PORT}",
                "key_file": cl.cluster_key,
                "heartbeat_ms": cl.heartbeat_ms, "down_after_ms": cl.down_after_ms,
                # memory and cpus in proportion to sessions: placement weighs
                # all three, so the spread follows the session capacity
                "capacity": {"sessions": cap, "memory_mb": cap * 256, "cpus": cap},
            }
        for k, v in (config or {}).items():
            self.config[k] = v
        self.write_config()

    def write_config(self):
        with open(self.conf_path, "w") as f:
            json.dump(self.config, f, indent=1)

    def conn(self, timeout=120):
        return http.client.HTTPConnection(self.addr, self.port, timeout=timeout)

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.ns}", "--", self.binary, "--config",
             self.conf_path], stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            wait_until(60, self._healthy, f"{self.node_id} answers /healthz")
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def admin_run(self, *args, timeout=120):
        """`airlockd admin --config` of this node: (exit code, stdout, stderr)."""
        r = subprocess.run([self.binary, "admin", "--config", self.conf_path, *args],
                           capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr


class Cluster:
    """`n` nodes with capacities `caps` (sessions; memory and cpus in
    proportion). clustered=False: no "cluster" section (plain daemons on one
    PostgreSQL)."""

    def __init__(self, settings, name, clustered=True, n=3, caps=(4, 8, 12),
                 heartbeat_ms=500, down_after_ms=3000, node_config=None, dbname=None):
        self.settings = settings
        self.name = name
        self.tag = settings["TAG"]
        self.sub = settings["SUB"]
        self.airlockd = os.path.join(settings["BUILD"], "airlockd", "airlockd")
        self.cli = os.path.join(settings["BUILD"], "cli", "airlock")
        self.clustered = clustered
        self.caps = caps
        self.heartbeat_ms = heartbeat_ms
        self.down_after_ms = down_after_ms
        base = os.environ.get("AIRLOCKD_TEST_SCRATCH", "/var/tmp")
        os.makedirs(base, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=f"airlock-cluster-{name}.", dir=base)
        self.cluster_key = os.path.join(self.dir, "cluster.key")
        key_file(self.cluster_key)
        self.master_key = os.path.join(self.dir, "master.key")
        with open(os.path.join(settings["STATE"], "master.key"), "rb") as f:
            private_file(self.master_key, f.read())
        # dbname: a database of its own in the test's PostgreSQL (clusters
        # made one after the other, each with its own cluster key)
        conninfo = os.environ["AIRLOCK_TEST_PG"]
        if dbname:
            check(self.psql(f"CREATE DATABASE {dbname}") is not None, f"CREATE DATABASE {dbname}")
            conninfo = " ".join(w for w in conninfo.split() if not w.startswith("dbname="))
            conninfo += f" dbname={dbname}"
        self.pg = conninfo
        self.conninfo = conninfo_file(os.path.join(self.dir, "pg.conninfo"), conninfo)
        self.keys = {}
        self.sessions = set()
        self.nodes = [Node(self, i + 1, node_config) for i in range(n)]

    def node(self, node_id):
        return self.nodes[int(node_id[1:]) - 1]

    def start(self):
        # one at a time: the first migrates the schema
        for n in self.nodes:
            n.start()
        n1 = self.nodes[0]
        n1.add_user("alice")
        n1.add_user("bob")
        n1.add_user("root-admin", admin=True)
        if self.clustered:
            for n in self.nodes:
                wait_until(30, lambda: self.sees_all_up(n),
                           f"{n.node_id}'s view of the cluster has every node up")
        return self

    def sees_all_up(self, n):
        """1 when node `n`'s cached node list (its /metrics) has every node
        of the cluster up: a node refuses requests of nodes it does not
        know up yet."""
        m = n.get("/metrics", key="root-admin")
        want = f'airlock_cluster_nodes{{state="up"}} {len(self.nodes)}'
        return m.status == 200 and want in m.body.decode()

    def any_alive(self):
        for n in self.nodes:
            if n.alive():
                return n
        return None

    def delete_all(self):
        """Deletes every session created through the harness, as the admin,
        through the first live node that takes it (without a "cluster"
        section only the holder does)."""
        for sid in list(self.sessions):
            if not sid:
                continue
            for n in self.nodes:
                if not n.alive():
                    continue
                try:
                    r = n.delete(f"/v1/sessions/{sid}", key="root-admin", timeout=60)
                except OSError:
                    continue
                if os.environ.get("CLUSTER_DEBUG"):
                    print(f"delete {sid} via {n.node_id}: {r}", flush=True)
                # (a plain daemon answers 200 with the row, still "ready",
                # for a session of another daemon: not a delete)
                if r.status == 404 or (r.status in (200, 202) and
                                       b'"state":"ready"' not in r.body):
                    break

    def psql(self, sql):
        """Runs `sql` with psql against the test's PostgreSQL; returns the
        rows (lists of fields) or None when it failed."""
        r = psql_run(sql, "-F", "\t", conninfo=getattr(self, "pg", None))
        if r.returncode != 0:
            return None
        return [line.split("\t") for line in r.stdout.splitlines()]

    def teardown(self, check_leftovers=True):
        """Deletes the sessions (through any live node), stops the nodes,
        checks and removes what the sessions left, removes the scratch dirs.
        Returns the leftovers."""
        left = []
        try:
            self.delete_all()
        finally:
            for n in self.nodes:
                try:
                    n.stop()
                except Exception:  # noqa: BLE001
                    pass
            ids = [s for s in self.sessions if s]
            if check_leftovers:
                for n in self.nodes:
                    left += leftovers(ids, n.state, wait=15)
            for n in self.nodes:
                cleanup(ids, n.state)
                n.final_log = n.log_tail()
            if not os.environ.get("AIRLOCKD_TEST_KEEP"):
                for n in self.nodes:
                    shutil.rmtree(n.dir, ignore_errors=True)
                shutil.rmtree(self.dir, ignore_errors=True)
        return sorted(set(left))


def load_settings(path):
    with open(path) as f:
        s = json.load(f)
    return s


def run_cluster_case(cl, name, case):
    """Starts the cluster, runs case(cl), checks every live node still
    answers, tears down; prints "ok: NAME" or the failure and the nodes'
    logs. Returns 0 or 1."""
    def body():
        cl.start()
        case(cl)
        for n in cl.nodes:
            if n.alive():
                n.healthy()

    return run_guarded(name, body, cl.teardown,
                       lambda: [(f"{n.node_id} airlockd log (tail)", n.final_log)
                                for n in cl.nodes])
