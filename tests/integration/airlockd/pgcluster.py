"""What the tests of airlockd on a shared PostgreSQL (pgstore_test.py,
cluster_*_test.py, tests/cluster) share: they run under
tests/unit/airlockd/pg_run.sh, which starts a scratch PostgreSQL and sets
AIRLOCK_TEST_PG (its libpq conninfo) and AIRLOCK_TEST_PG_CTL (a command
that takes "stop" or "start").

  * pg_ctl, psql_run, psql, psql_text: the scratch server and its rows;
  * unavailable: the API's answer while the database is down;
  * private_file, key_file: files of secrets (0600, never overwritten);
  * Shared: the files every node of a cluster reads (the conninfo file,
    the cluster key, the credential store's master key) in a directory of
    their own;
  * use_postgres, cluster_node: a Daemon's store and cluster sections;
  * case_args: the command line and environment check of a test's main()."""

import glob
import json
import os
import subprocess
import sys

from harness import SKIP, Fail, check


def pg_ctl(what):
    """Stops ("stop") or starts ("start") the scratch PostgreSQL."""
    subprocess.run(os.environ["AIRLOCK_TEST_PG_CTL"].split() + [what], check=True, timeout=60)


def psql_run(sql, *opts, conninfo=None):
    """Runs `sql` with psql (unaligned, tuples only, `opts` before -c)
    against `conninfo` (default: AIRLOCK_TEST_PG); the CompletedProcess."""
    exe = (sorted(glob.glob("/usr/lib/postgresql/*/bin/psql")) or ["psql"])[-1]
    return subprocess.run([exe, conninfo or os.environ["AIRLOCK_TEST_PG"], "-v",
                           "ON_ERROR_STOP=1", "-At", *opts, "-c", sql],
                          capture_output=True, text=True, timeout=30)


def psql(sql):
    """The rows of `sql`, each a list of its tab-separated columns; raises
    Fail when psql fails."""
    r = psql_run(sql, "-F", "\t")
    if r.returncode != 0:
        raise Fail(f"psql {sql!r}: {r.stderr}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]


def psql_text(sql):
    """What `sql` prints, stripped; raises Fail when psql fails."""
    r = psql_run(sql)
    if r.returncode != 0:
        raise Fail(f"psql {sql!r}: {r.stderr}")
    return r.stdout.strip()


def unavailable(r, what):
    """Checks that the response `r` is the API's answer while the database
    is down: 503 "unavailable" with a message that gives the database's
    reason."""
    check(r.status == 503, f"{what}: 503 while the database is down", r)
    e = r.json.get("error", {})
    check(e.get("code") == "unavailable", f"{what}: error code unavailable", r)
    check("database" in e.get("message", "") and len(e["message"]) > len("database"),
          f"{what}: the message gives the database's reason", r)


def private_file(path, data):
    """Writes `data` (bytes) to the new file `path`, mode 0600; fails when
    it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def key_file(path):
    """A new 32-byte random key at `path` (0600)."""
    private_file(path, os.urandom(32))


def conninfo_file(path, conninfo=None):
    """The conninfo file `path` (0600) holding `conninfo` (default:
    AIRLOCK_TEST_PG), as store.conninfo_file reads it."""
    private_file(path, ((conninfo or os.environ["AIRLOCK_TEST_PG"]) + "\n").encode())
    return path


class Shared:
    """The files the nodes of one cluster share, in a new directory `name`
    (+ ".PID") under AIRLOCKD_TEST_SCRATCH (default /var/tmp): .conninfo,
    .cluster_key and .master_key. remove() deletes them and the directory."""

    def __init__(self, name):
        base = os.environ.get("AIRLOCKD_TEST_SCRATCH", "/var/tmp")
        self.dir = os.path.join(base, f"{name}.{os.getpid()}")
        os.makedirs(self.dir, mode=0o700)
        self.conninfo = conninfo_file(os.path.join(self.dir, "pg.conninfo"))
        self.cluster_key = os.path.join(self.dir, "cluster.key")
        self.master_key = os.path.join(self.dir, "master.key")
        key_file(self.cluster_key)
        key_file(self.master_key)

    def remove(self):
        for path in (self.conninfo, self.cluster_key, self.master_key):
            try:
                os.unlink(path)
            except OSError:
                pass
        os.rmdir(self.dir)


def use_postgres(d, conninfo, timeout_ms=2000):
    """Points the Daemon `d`'s store at PostgreSQL through the conninfo file
    `conninfo`, with statement and connect timeouts of `timeout_ms`."""
    d.config["store"] = {"driver": "postgres", "conninfo_file": conninfo,
                         "statement_timeout_ms": timeout_ms, "connect_timeout_ms": timeout_ms}


def write_config(d):
    with open(d.conf_path, "w") as f:
        json.dump(d.config, f, indent=1)


def cluster_node(d, node_id, shared, listen_port, timeout_ms=2000, **cluster):
    """Makes the Daemon `d` (not started) the cluster node `node_id` of
    `shared`: its store on the shared PostgreSQL, the shared master key, a
    cluster section with the node id, listen address 127.0.0.1:listen_port,
    the shared cluster key and `cluster` (heartbeat_ms, capacity, ...); and
    writes its configuration."""
    use_postgres(d, shared.conninfo, timeout_ms)
    d.config["proxies"] = {"master_key": shared.master_key}
    d.config["cluster"] = {"node_id": node_id, "listen": f"127.0.0.1:{listen_port}",
                           "key_file": shared.cluster_key, **cluster}
    write_config(d)


def case_args(cases=None):
    """The (binary, case name) of `AIRLOCKD AIRLOCK_SESSION CASE` (CASE one
    of `cases`), or with cases None (binary, None) of `AIRLOCKD`. Exits with
    the usage (2), SKIP when the binary is not built, or 2 when not run
    under pg_run.sh."""
    if cases is None:
        if len(sys.argv) != 2:
            print(f"usage: {sys.argv[0]} AIRLOCKD", file=sys.stderr)
            sys.exit(2)
        binary, name = sys.argv[1], None
    else:
        if len(sys.argv) != 4 or sys.argv[3] not in cases:
            print(f"usage: {sys.argv[0]} AIRLOCKD AIRLOCK_SESSION CASE", file=sys.stderr)
            sys.exit(2)
        binary, name = sys.argv[1], sys.argv[3]
    if not os.access(binary, os.X_OK):
        print(f"SKIP: {binary} is not built")
        sys.exit(SKIP)
    if not os.environ.get("AIRLOCK_TEST_PG"):
        print("run under tests/unit/airlockd/pg_run.sh (AIRLOCK_TEST_PG is not set)",
              file=sys.stderr)
        sys.exit(2)
    return binary, name
