#!/usr/bin/env python3
"""The table of bench/netproxy/tls_term from its result directory.
usage: tls_term_report.py RESDIR CONNS ROUNDS PATH...
RESDIR holds, per path P and round R: P.ka1.R (tls_client's summary line and
"cpu_ticks N tck HZ"), P.ka1.R.lat (µs per request), P.kaCONNS.R, P.cold.R(.lat)
and P.warm.R(.lat) ("total_us hs_us" per connection)."""
import os
import statistics
import sys

res, conns, rounds, paths = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]


def summary(name):
    """key -> value of a tls_client summary file (plus cpu_ticks/tck)."""
    out = {}
    with open(os.path.join(res, name)) as f:
        for line in f:
            w = line.split()
            for k, v in zip(w[0::2], w[1::2]):
                out[k] = float(v)
    return out


def lats(p, kind, col=0):
    v = []
    for r in range(1, rounds + 1):
        fn = os.path.join(res, f"{p}.{kind}.{r}.lat")
        if os.path.exists(fn):
            with open(fn) as f:
                v.extend(float(l.split()[col]) for l in f if l.strip())
    v.sort()
    return v


def pct(v, q):
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))] if v else float("nan")


m = {}
per_round = {}
for p in paths:
    ka1 = [summary(f"{p}.ka1.{r}") for r in range(1, rounds + 1)]
    kac = [summary(f"{p}.ka{conns}.{r}") for r in range(1, rounds + 1)]
    l1 = lats(p, "ka1")
    cold, warm = lats(p, "cold"), lats(p, "warm")
    per_round[p] = ([s["rps"] for s in ka1], [s["rps"] for s in kac])
    nreq = sum(s["requests"] for s in ka1)
    cpu = sum(s["cpu_ticks"] / s["tck"] for s in ka1)
    m[p] = {
        "rps1": statistics.median(s["rps"] for s in ka1),
        "rpsc": statistics.median(s["rps"] for s in kac),
        "err": sum(s["errors"] for s in ka1 + kac),
        "p50": pct(l1, 0.5), "p99": pct(l1, 0.99),
        "cpu": 1e6 * cpu / nreq if nreq and p != "direct" else None,
        "cold": pct(cold, 0.5) / 1000, "cold99": pct(cold, 0.99) / 1000,
        "warm": pct(warm, 0.5) / 1000, "warm99": pct(warm, 0.99) / 1000,
        "coldhs": pct(lats(p, "cold", 1), 0.5) / 1000,
    }

d = m["direct"]
print(f"| path | keep-alive req/s, 1 conn (median of {rounds}) | req/s, {conns} conns | p50 / p99 per request (µs) | added p50 vs direct (µs) | proxy CPU per request (µs) | new connection, cold: p50 / p99 (ms) | new connection, warm: p50 / p99 (ms) |")
print("|---|---|---|---|---|---|---|---|")
for p in paths:
    x = m[p]
    cpu = "-" if x["cpu"] is None else f"{x['cpu']:.0f}"
    added = "0" if p == "direct" else f"{x['p50'] - d['p50']:.0f}"
    err = f" ({x['err']:.0f} errors)" if x["err"] else ""
    print(f"| {p} | {x['rps1']:.0f}{err} | {x['rpsc']:.0f} | {x['p50']:.0f} / {x['p99']:.0f} | {added} | {cpu} "
          f"| {x['cold']:.2f} / {x['cold99']:.2f} | {x['warm']:.2f} / {x['warm99']:.2f} |")
print()


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "-"


def round_ratio(a, b, i):
    """median over rounds of path a's req/s over path b's in the same round
    (i = 0: 1 conn, 1: CONNS conns)"""
    return statistics.median(x / y for x, y in zip(per_round[a][i], per_round[b][i]) if y)


if "airlock-term" in m:
    a = m["airlock-term"]
    print("Ratios (airlock-term against the others):")
    print()
    if "srt-term" in m:
        s = m["srt-term"]
        aa, sa = a["p50"] - d["p50"], s["p50"] - d["p50"]
        print(f"* against srt-term: req/s {round_ratio('airlock-term', 'srt-term', 0):.2f}x (1 conn), "
              f"{round_ratio('airlock-term', 'srt-term', 1):.2f}x ({conns} conns); added p50 {aa:.0f} µs vs {sa:.0f} µs "
              f"(srt adds {ratio(sa, aa)} as much); proxy CPU per request {ratio(s['cpu'], a['cpu'])} less; "
              f"new connection {ratio(s['cold'], a['cold'])} faster cold, {ratio(s['warm'], a['warm'])} faster warm")
    t = m["tunnel"]
    print(f"* against tunnel (opaque CONNECT): req/s {100 * round_ratio('airlock-term', 'tunnel', 0):.0f}% (1 conn), "
          f"{100 * round_ratio('airlock-term', 'tunnel', 1):.0f}% ({conns} conns); p50 {a['p50'] - t['p50']:+.0f} µs; "
          f"new connection {a['cold'] - t['cold']:+.2f} ms cold, {a['warm'] - t['warm']:+.2f} ms warm")
    print(f"* against direct TLS: req/s {100 * round_ratio('airlock-term', 'direct', 0):.0f}% (1 conn), "
          f"{100 * round_ratio('airlock-term', 'direct', 1):.0f}% ({conns} conns); p50 {a['p50'] - d['p50']:+.0f} µs")
    print()
    print("(req/s ratios: median over rounds of the ratio within a round)")
