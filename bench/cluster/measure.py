#!/usr/bin/env python3
"""bench/cluster's measurements (run by bench/cluster/run through
tests/cluster/run.sh, which makes the namespaces, the upstream and the
PostgreSQL): airlockd nodes on this machine, each in its own network
namespace, sharing one PostgreSQL (tests/cluster/cluster.py).

  * creates/s with 1, 2 and 3 nodes: N creates from 16 client threads,
    round-robin over the nodes' APIs; equal capacity per node, the same
    machine, so the figure shows what the cluster adds (placement, the
    forward to the owner), not more hardware;
  * exec round trip of `true` (fresh connection each, Python client) through
    the owner's API against through another node's (forwarded), M times each
    in alternating blocks;
  * node death to `lost`: kill -9 of a node holding sessions, its rows
    polled every 50 ms until every one is lost; 5 times each with
    down_after_ms 3000 (heartbeat 500) and 1000 (heartbeat 200).

    measure.py SETTINGS.json [--creates N] [--execs M] [--deaths K] [--out FILE]

Prints a markdown table; --out also writes it (and the raw figures as JSON
beside it)."""

import argparse
import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "cluster"))
from cluster import Cluster, Fail, check, load_settings, wait_until  # noqa: E402

QUOTAS = {"quotas": {"max_sessions": 100000, "max_memory_mb": 1 << 30},
          "limits": {"default": {"memory_mb": 64, "pids": 64, "cpu": 0.1, "ttl_s": 3600,
                                 "idle_s": 3600},
                     "max": {"memory_mb": 2048, "pids": 4096, "cpu": 2.0, "ttl_s": 86400,
                             "idle_s": 86400}}}


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def node_of(cl, sid):
    rows = cl.psql(f"SELECT node FROM sessions WHERE id = '{sid}'")
    return rows[0][0] if rows and rows[0] else None


def creates_per_s(settings, k, creates, threads=16):
    cl = Cluster(settings, f"bench-c{k}", n=k, caps=(creates + 16,) * k, node_config=QUOTAS,
                 dbname=f"bench_c{k}")
    try:
        cl.start()
        for n in cl.nodes:
            n.create()  # warm: the first create of a node sets up its proxies' state
        ids, errors = [], []
        lock = threading.Lock()
        todo = list(range(creates))

        def worker():
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                n = cl.nodes[i % k]
                try:
                    r = n.post("/v1/sessions", {}, timeout=300)
                    with lock:
                        if r.status == 201:
                            ids.append(r.json["id"])
                            cl.sessions.add(r.json["id"])
                        else:
                            errors.append((r.status, r.body[:200]))
                except OSError as e:
                    with lock:
                        errors.append(repr(e))
        t0 = time.monotonic()
        ts = [threading.Thread(target=worker) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        took = time.monotonic() - t0
        spread = {}
        for sid in ids:
            nd = node_of(cl, sid) or "?"
            spread[nd] = spread.get(nd, 0) + 1
        return {"nodes": k, "creates": len(ids), "errors": len(errors),
                "first_errors": errors[:3], "seconds": took, "per_s": len(ids) / took,
                "spread": spread}
    finally:
        cl.teardown(check_leftovers=False)


def exec_rtt(settings, execs, block=20):
    cl = Cluster(settings, "bench-exec", n=3, caps=(16, 16, 16), node_config=QUOTAS,
                 dbname="bench_exec")
    try:
        cl.start()
        sid = cl.nodes[0].create()
        owner = cl.node(node_of(cl, sid))
        other = [n for n in cl.nodes if n is not owner][0]
        times = {"owner": [], "other": []}
        for n in (owner, other):  # warm
            n.run(sid, "true")
        done = 0
        while done < execs:
            for name, n in (("owner", owner), ("other", other)):
                for _ in range(min(block, execs - done)):
                    t0 = time.perf_counter()
                    st, *_ = n.exec(sid, argv=["true"])
                    times[name].append((time.perf_counter() - t0) * 1000)
                    check(st == 200, "exec true", st)
            done += block
        return {k: {"p50": pct(v, 50), "p99": pct(v, 99), "n": len(v)} for k, v in times.items()}
    finally:
        cl.teardown(check_leftovers=False)


def death_to_lost(settings, down_after_ms, heartbeat_ms, deaths):
    cl = Cluster(settings, f"bench-d{down_after_ms}", n=3, caps=(8, 8, 8),
                 heartbeat_ms=heartbeat_ms, down_after_ms=down_after_ms, node_config=QUOTAS,
                 dbname=f"bench_d{down_after_ms}")
    out = []
    try:
        cl.start()
        victim = cl.nodes[2]
        for _ in range(deaths):
            mine = []
            for _ in range(12):
                sid = cl.nodes[0].create()
                if node_of(cl, sid) == victim.node_id:
                    mine.append(sid)
                if len(mine) >= 2:
                    break
            check(mine, "a session on the victim", mine)
            t0 = time.monotonic()
            victim.kill9()
            while True:
                rows = cl.psql("SELECT count(*) FROM sessions WHERE node = '%s' AND state IN "
                               "('placed','creating','ready','deleting')" % victim.node_id)
                if rows and rows[0][0] == "0":
                    break
                if time.monotonic() - t0 > 60:
                    raise Fail("not lost within 60 s")
                time.sleep(0.05)
            out.append((time.monotonic() - t0) * 1000)
            victim.start()
            wait_until(60, lambda: (cl.psql("SELECT state FROM nodes WHERE id = '%s'" %
                                            victim.node_id) or [[""]])[0][0] == "up",
                       "the victim up again")
        return {"down_after_ms": down_after_ms, "heartbeat_ms": heartbeat_ms, "ms": out,
                "median": statistics.median(out), "max": max(out), "min": min(out)}
    finally:
        cl.teardown(check_leftovers=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("settings")
    ap.add_argument("--creates", type=int, default=200)
    ap.add_argument("--execs", type=int, default=200)
    ap.add_argument("--deaths", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    settings = load_settings(a.settings)
    res = {"creates": [], "exec": None, "death": []}
    for k in (1, 2, 3):
        r = creates_per_s(settings, k, a.creates)
        print(f"creates with {k} node(s): {r}", flush=True)
        res["creates"].append(r)
    res["exec"] = exec_rtt(settings, a.execs)
    print(f"exec round trip: {res['exec']}", flush=True)
    for down, hb in ((3000, 500), (1000, 200)):
        r = death_to_lost(settings, down, hb, a.deaths)
        print(f"death to lost: {r}", flush=True)
        res["death"].append(r)

    lines = ["| measure | 1 node | 2 nodes | 3 nodes |", "|---|---:|---:|---:|"]
    c = {r["nodes"]: r for r in res["creates"]}
    lines.append("| creates/s (%d creates, 16 clients, round-robin over the APIs) | %s |" % (
        a.creates, " | ".join(f"{c[k]['per_s']:.1f}" + (f" ({c[k]['errors']} errors)"
                                                        if c[k]["errors"] else "")
                              for k in (1, 2, 3))))
    lines.append("| spread of the creates | %s |" % " | ".join(
        ", ".join(f"{n}: {v}" for n, v in sorted(c[k]["spread"].items())) for k in (1, 2, 3)))
    lines += ["", "| exec round trip of `true` (3 nodes, %d each, Python client, new connection "
              "each) | p50 | p99 |" % a.execs, "|---|---:|---:|"]
    for name, what in (("owner", "through the owner's API"),
                       ("other", "through another node's API (forwarded)")):
        e = res["exec"][name]
        lines.append(f"| {what} | {e['p50']:.2f} ms | {e['p99']:.2f} ms |")
    lines += ["", "| node death (kill -9) to its sessions `lost` (%d times) | median | min | max |"
              % a.deaths, "|---|---:|---:|---:|"]
    for r in res["death"]:
        lines.append(f"| down_after_ms {r['down_after_ms']}, heartbeat_ms {r['heartbeat_ms']} | "
                     f"{r['median']:.0f} ms | {r['min']:.0f} ms | {r['max']:.0f} ms |")
    # ratios against the peer measured in the same run: one node, and the
    # exec through the owner
    o, f = res["exec"]["owner"], res["exec"]["other"]
    lines += ["", "Ratios in this run: creates/s with 2 nodes / 1 node = %.2f, 3 nodes / 1 node"
              " = %.2f; forwarded exec p50 / owner's p50 = %.2f (+%.2f ms a request)." % (
                  c[2]["per_s"] / c[1]["per_s"], c[3]["per_s"] / c[1]["per_s"],
                  f["p50"] / o["p50"], f["p50"] - o["p50"])]
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "w") as f:
            f.write(table + "\n")
        with open(a.out + ".json", "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
