#!/usr/bin/env python3
"""Summarise one run of bench/run_startup.

usage: startup_report.py RESULTS_DIR [--markdown]

RESULTS_DIR holds what run_startup wrote:
  meta.json             machine, versions, commands, run counts, skipped tools
  hf-<tool>-<round>.json hyperfine --export-json output, one result per tool
  rss-<tool>.txt        GNU time %M (KiB) of each peak-RSS run, one per line

Prints a plain-text summary (default) or the "## sandbox startup" section of
docs/benchmarks.md (--markdown). Times of all rounds of a tool are pooled
before the median is taken. Targets are reported, never enforced: the exit
status is 0 whether they are met or not.
"""
import glob
import json
import os
import statistics
import sys
import textwrap

TOOLS = ("airlock", "bwrap", "srt")
TARGET_VS_BWRAP = 1.5  # airlock median at most this many times bwrap's
TARGET_VS_SRT = 40.0  # srt median at least this many times airlock's
TARGET_RSS_KIB = 8 * 1024  # airlock peak RSS at most 8 MiB


def load(results):
    with open(os.path.join(results, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    stats = {}
    for tool in TOOLS:
        times, user, system = [], 0.0, 0.0
        for path in sorted(glob.glob(os.path.join(results, f"hf-{tool}-*.json"))):
            with open(path, encoding="utf-8") as f:
                for r in json.load(f)["results"]:
                    n = len(r["times"])
                    times += r["times"]
                    user += r["user"] * n
                    system += r["system"] * n
        rss, cpu, procs = [], [], []
        usage_path = os.path.join(results, f"usage-{tool}.txt")
        if os.path.exists(usage_path):
            with open(usage_path, encoding="utf-8") as f:
                for line in f:
                    fields = line.split()
                    if len(fields) != 6:
                        continue
                    rss.append(int(fields[0]))
                    cpu.append(float(fields[1]) + float(fields[2]))
                    procs.append(int(fields[4]))
        if not times:
            continue
        stats[tool] = {
            "runs": len(times),
            "median": statistics.median(times),
            "mean": statistics.fmean(times),
            "stddev": statistics.stdev(times) if len(times) > 1 else 0.0,
            "min": min(times),
            "max": max(times),
            "user": user / len(times),
            "system": system / len(times),
            "rss_max": max(rss) if rss else None,
            "rss_median": statistics.median(rss) if rss else None,
            "rss_runs": len(rss),
            "cpu": statistics.median(cpu) if cpu else None,
            "procs": max(procs) if procs else None,
        }
    return meta, stats


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def cpu(st):
    return "n/a" if st["cpu"] is None else ms(st["cpu"])


def mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def targets(stats):
    """Returns [(name, measured text, verdict)] for the three targets."""
    a, b, s = (stats.get(t) for t in TOOLS)
    out = []
    if a and b:
        r = a["median"] / b["median"]
        out.append((f"airlock median <= {TARGET_VS_BWRAP:g}x bwrap median",
                    f"{r:.2f}x", "PASS" if r <= TARGET_VS_BWRAP else "FAIL"))
    else:
        out.append((f"airlock median <= {TARGET_VS_BWRAP:g}x bwrap median",
                    "n/a", "SKIP"))
    if a and s:
        r = s["median"] / a["median"]
        out.append((f"airlock >= {TARGET_VS_SRT:g}x faster than srt (median)",
                    f"{r:.1f}x", "PASS" if r >= TARGET_VS_SRT else "FAIL"))
    else:
        out.append((f"airlock >= {TARGET_VS_SRT:g}x faster than srt (median)",
                    "n/a", "SKIP"))
    if a and a["rss_max"] is not None:
        out.append((f"airlock peak RSS <= {TARGET_RSS_KIB // 1024} MiB",
                    mib(a["rss_max"]),
                    "PASS" if a["rss_max"] <= TARGET_RSS_KIB else "FAIL"))
    else:
        out.append((f"airlock peak RSS <= {TARGET_RSS_KIB // 1024} MiB",
                    "n/a", "SKIP"))
    return out


def informational(stats):
    """Ratios that are not targets but help read the run."""
    a, b, s = (stats.get(t) for t in TOOLS)
    out = []
    if a and b:
        line = (f"airlock/bwrap: median wall {a['median'] / b['median']:.2f}x,"
                f" min wall {a['min'] / b['min']:.2f}x")
        if a["cpu"] and b["cpu"]:
            line += f", CPU {a['cpu'] / b['cpu']:.2f}x"
        out.append(line)
    if a and s:
        line = f"srt/airlock: median wall {s['median'] / a['median']:.1f}x"
        if a["cpu"] and s["cpu"]:
            line += f", CPU {s['cpu'] / a['cpu']:.1f}x"
        out.append(line)
    return out


def text(meta, stats):
    lines = []
    head = f"{'sandbox':<9} {'median':>10} {'mean ± sd':>20} {'min':>10} " \
           f"{'cpu':>10} {'runs':>5} {'peak RSS':>9} {'(median)':>9}"
    lines.append(head)
    lines.append("-" * len(head))
    for tool in TOOLS:
        st = stats.get(tool)
        if not st:
            reason = meta["tools"].get(tool, {}).get("reason", "not measured")
            lines.append(f"{tool:<9} skipped: {reason}")
            continue
        sd = f"{st['mean'] * 1000:.2f} ± {st['stddev'] * 1000:.2f} ms"
        lines.append(f"{tool:<9} {ms(st['median']):>10} {sd:>20} "
                     f"{ms(st['min']):>10} "
                     f"{cpu(st):>10} {st['runs']:>5} "
                     f"{mib(st['rss_max']):>9} {mib(st['rss_median']):>9}")
    lines.append("")
    lines += [f"  {x}" for x in informational(stats)]
    lines.append("  (CPU: median user+system time of the whole process tree)")
    lines.append("")
    lines.append("targets (reported, not enforced):")
    for name, measured, verdict in targets(stats):
        lines.append(f"  {verdict:<4}  {name:<44} {measured}")
    lines.append("")
    lines.append(f"results: {meta['results_dir']}")
    return "\n".join(lines)


def para(text, bullet=False):
    """TEXT wrapped at 79 columns, as a "* " bullet if BULLET."""
    return textwrap.fill(text, width=79, break_long_words=False,
                         break_on_hyphens=False,
                         initial_indent="* " if bullet else "",
                         subsequent_indent="  " if bullet else "")


def markdown(meta, stats):
    m, v, runs = meta["machine"], meta["versions"], meta["runs"]
    out = ["## sandbox startup", ""]
    out.append(para(
        "Time to start a sandbox around `true`, wait for it and tear the "
        "sandbox down, and the peak resident memory that costs, for airlock "
        "and its peers, all measured in the same run on the same machine "
        "from the same scratch working directory."))
    out += ["", "Reproduce from the repository root (rewrites this section):",
            "", "```", meta["reproduce"], "```", ""]
    out.append(para(
        f"Last run: {m['date']}; {m['nproc']} cores ({m['cpu']}), kernel "
        f"{m['kernel']}, {m['os']}; load average at start {m['load']}."))
    try:
        load1 = float(m["load"].split()[0])
    except (ValueError, IndexError):
        load1 = 0.0
    if load1 > m["nproc"] / 2:
        out += ["", para(
            f"The machine was busy with other work during this run (load "
            f"average {load1:g} on {m['nproc']} cores): absolute times are "
            f"inflated and noisy. The ratios compare tools measured in the "
            f"same rounds; the min and CPU columns are the least disturbed "
            f"figures.")]
    out += ["",
            "| sandbox | median | mean ± σ | min | CPU (tree) | runs "
            "| peak RSS, max (median) |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for tool in TOOLS:
        st = stats.get(tool)
        if not st:
            reason = meta["tools"].get(tool, {}).get("reason", "not measured")
            out.append(f"| {tool} | skipped: {reason} | | | | | |")
            continue
        out.append(
            f"| {tool} | {ms(st['median'])} | {st['mean'] * 1000:.2f} ± "
            f"{st['stddev'] * 1000:.2f} ms | {ms(st['min'])} | "
            f"{cpu(st)} | {st['runs']} | "
            f"{mib(st['rss_max'])} ({mib(st['rss_median'])}) |")
    out += ["", "| target | measured | |", "|---|---:|---|"]
    for name, measured, verdict in targets(stats):
        out.append(f"| {name} | {measured} | {verdict} |")
    info = informational(stats)
    if info:
        out += ["", para("Other ratios, not targets: " + "; ".join(info) +
                         ". The minimum is the least disturbed run; CPU is "
                         "user + system time, which load from other work on "
                         "the machine disturbs less than wall time.")]
    out += ["", "Commands, each run from the scratch working directory:", "",
            "```"]
    for tool in TOOLS:
        t = meta["tools"].get(tool, {})
        if t.get("command"):
            out.append(f"{tool + ':':<9}{t['command']}")
    out += ["```", ""]
    ver = []
    if v.get("airlock"):
        ver.append(f"airlock {v['airlock']}")
    for key, label in (("bwrap", "bubblewrap"), ("srt", "sandbox-runtime"),
                       ("node", "node"), ("socat", "socat"),
                       ("ripgrep", "ripgrep"), ("hyperfine", "hyperfine")):
        if v.get(key):
            ver.append(f"{label} {v[key]}")
    out += [para("Versions: " + ", ".join(ver) + "."), "",
            "How it is measured:", ""]
    out.append(para(
        f"Wall time: hyperfine `-N` (the command is executed directly, no "
        f"intermediate shell to subtract), {runs['warmup']} warm-up runs per "
        f"round ({'1' if runs['warmup'] else '0'} for srt), "
        f"{runs['rounds']} rounds that alternate the tools so that load from "
        f"other work on the machine falls on all of them; the runs of all "
        f"rounds are pooled ({runs['fast']} for airlock and bwrap, "
        f"{runs['srt']} for srt, which takes far longer) and the median is "
        f"reported. Ratios are of medians.", True))
    out.append(para(
        f"Peak RSS and CPU: {runs['rss']} more runs of each command under "
        "`bench/lib/treeusage.c`, which makes itself a child subreaper "
        "(`PR_SET_CHILD_SUBREAPER`), forks and execs the command, reaps "
        "until no child is left, then reads `getrusage(RUSAGE_CHILDREN)`. "
        "Peak RSS is the largest value over the runs (median in brackets), "
        "CPU (tree) the median user + system time. `ru_maxrss` is the "
        "high-water resident set of the *largest single process* of the "
        "tree, not a sum over processes; a process's mark survives its "
        "`execve`s (so the figure includes the launcher's pre-exec fork, "
        "about 1 MiB).", True))
    out.append(para(
        "Why not GNU time `-f %M` alone: it reports the `rusage` that "
        "`wait4()` returns for its child, which only covers descendants "
        "that were waited for inside the tree. bwrap's outer process never "
        "waits for the sandbox's pid 1 (it learns the exit status through "
        "an eventfd and exits; pid 1 is reaped by whoever inherits it), so "
        "`time` sees neither bwrap's pid 1 nor the command, and hyperfine's "
        "user/system times miss them too. airlock's janitor (a double fork, "
        "started only when there is a cgroup or placeholder to clean) would "
        "be missed the same way. With the subreaper every process of every "
        "tree is counted: the fifth column of `usage-*.txt` in the results "
        "is the number of processes the subreaper reaped per run (airlock "
        f"{stats.get('airlock', {}).get('procs', 'n/a')}, bwrap "
        f"{stats.get('bwrap', {}).get('procs', 'n/a')}, srt "
        f"{stats.get('srt', {}).get('procs', 'n/a')}, counting only those "
        "that reached the subreaper: processes reaped by their own parent "
        "inside the tree are counted in the rusage but not in that "
        "number).", True))
    srt = meta["tools"].get("srt", {})
    if srt.get("settings"):
        out.append(para(
            "srt runs with an explicit settings file, `srt-settings.json`, "
            "that mirrors airlock's default policy (working directory "
            "writable, no network, credential stores unreadable), so no "
            "`~/.srt-settings.json` on the machine changes the result: `"
            + json.dumps(srt["settings"], separators=(",", ":")) + "`.",
            True))
    if v.get("srt_latest") and v.get("srt") and v["srt_latest"] != v["srt"]:
        out.append(para(
            f"npm installed sandbox-runtime {v['srt']}, the newest release "
            f"whose `engines` accepts the local node {v.get('node', '')}; "
            f"the newest release, {v['srt_latest']}, needs a newer node.",
            True))
    out.append(para(
        "Before timing, each sandbox is checked to confine: `true` must "
        "succeed in it, `touch` of a file under `/etc` must fail and the "
        "file must not appear on the host.", True))
    for note in meta.get("notes", []):
        out.append(para(note, True))
    phases = os.path.join(meta["results_dir"], "profile", "phases.txt")
    if os.path.exists(phases):
        with open(phases, encoding="utf-8") as f:
            table = f.read().rstrip("\n")
        out += ["", "### where airlock's start-up goes", ""]
        out.append(para(
            "From `--profile`: `perf trace` of a few marker system calls "
            "(filtered in the kernel, so the runs are barely slowed), cut "
            "into phases that follow session/src/sandbox.c and init.c "
            "(bench/lib/airlock_phases.py). The minimum is the least "
            "disturbed run; the phases do not add up exactly to the total "
            "because each column is taken over the runs separately."))
        out += ["", "```", table, "```"]
    return "\n".join(out) + "\n"


def main():
    args = sys.argv[1:]
    if not args or len(args) > 2 or (len(args) == 2 and args[1] != "--markdown"):
        sys.exit("usage: startup_report.py RESULTS_DIR [--markdown]")
    meta, stats = load(args[0])
    print(markdown(meta, stats) if len(args) == 2 else text(meta, stats))


if __name__ == "__main__":
    main()
