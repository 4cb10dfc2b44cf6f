#!/usr/bin/env python3
"""Where a sandbox's start-up time goes, from `strace -f -ttt -T` traces.

usage: strace_steps.py TRACE...

Picks the trace with the median span (first to last event), then prints:
  * a timeline of the steps that build a sandbox (clone, namespaces, uid
    maps, mounts, pivot_root, Landlock, seccomp, prctl, execve, exit), with
    the time since the first event and each call's own duration;
  * the slowest system calls;
  * the longest gaps between two system calls of one process: time spent in
    user space (e.g. compiling a seccomp filter) or waiting to be scheduled.
strace slows every system call down, so read figures as proportions.
"""
import re
import statistics
import sys

LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
CALL = re.compile(r"^([a-z_0-9]+)\((.*)$")
RESUMED = re.compile(r"^<\.\.\. ([a-z_0-9]+) resumed>(.*)$")
DURATION = re.compile(r"<(\d+\.\d+)>\s*$")

# System calls that mark a step of sandbox construction.
STEP_CALLS = {
    "clone", "clone3", "fork", "vfork", "unshare", "setns", "mount",
    "umount2", "pivot_root", "chroot", "mount_setattr", "open_tree",
    "move_mount", "fsopen", "fsmount", "landlock_create_ruleset",
    "landlock_add_rule", "landlock_restrict_self", "seccomp", "prctl",
    "execve", "execveat", "setsid", "setgroups", "setresuid", "setresgid",
    "capset", "setrlimit", "prlimit64", "sethostname", "exit_group",
    "wait4", "waitid", "socket", "ioctl",
}
# Writes that matter (uid/gid maps, cgroup files) are recognised by path.
STEP_PATHS = ("uid_map", "gid_map", "setgroups", "cgroup", "/proc/sys")
# Calls that block until another process does something; their duration is
# waiting, not cost.
BLOCKING = {"wait4", "waitid", "read", "poll", "ppoll", "epoll_wait",
            "epoll_pwait", "select", "pselect6", "futex", "clock_nanosleep",
            "rt_sigsuspend", "rt_sigtimedwait", "pidfd_wait", "recvmsg"}


class Event:
    __slots__ = ("pid", "start", "end", "name", "args", "dur")

    def __init__(self, pid, start, name, args, dur):
        self.pid, self.start, self.name, self.args = pid, start, name, args
        self.dur = dur
        self.end = start + dur


def parse(path):
    """Returns the list of completed system calls in PATH, by start time."""
    events, pending = [], {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            pid, ts, rest = int(m.group(1)), float(m.group(2)), m.group(3)
            if rest.startswith("+++") or rest.startswith("---"):
                continue
            d = DURATION.search(rest)
            r = RESUMED.match(rest)
            if r:
                start_ts, name, args = pending.pop(pid, (ts, r.group(1), ""))
                args += r.group(2)
                dur = float(d.group(1)) if d else 0.0
                events.append(Event(pid, start_ts, name, args, dur))
                continue
            c = CALL.match(rest)
            if not c:
                continue
            if rest.endswith("<unfinished ...>"):
                pending[pid] = (ts, c.group(1), c.group(2)[:-len("<unfinished ...>")])
                continue
            events.append(Event(pid, ts, c.group(1), c.group(2),
                                float(d.group(1)) if d else 0.0))
    for pid, (ts, name, args) in pending.items():  # e.g. exit_group
        events.append(Event(pid, ts, name, args, 0.0))
    events.sort(key=lambda e: e.start)
    return events


def span(events):
    return max(e.end for e in events) - events[0].start if events else 0.0


def short(args, width=70):
    args = " ".join(args.split())
    return args if len(args) <= width else args[:width - 3] + "..."


def us(seconds):
    return f"{seconds * 1e6:9.0f} us"


def is_step(e):
    if e.name in STEP_CALLS:
        return True
    if e.name in ("openat", "write", "open") and any(p in e.args for p in STEP_PATHS):
        return True
    return False


def report(path, events):
    t0 = events[0].start
    pids = {}
    for e in events:
        pids.setdefault(e.pid, len(pids))
    print(f"trace {path}: {len(events)} system calls, {len(pids)} processes, "
          f"span {span(events) * 1e3:.2f} ms (under strace)")
    print()
    print("timeline of sandbox steps (t = since first call; dur = the call)")
    print(f"{'t':>12} {'dur':>12}  proc  call")
    steps = [e for e in events if is_step(e)]
    i = 0
    while i < len(steps):
        # A run of the same call in one process is one line: its first
        # call's arguments, the count and the summed duration.
        e, j = steps[i], i + 1
        while j < len(steps) and steps[j].pid == e.pid and steps[j].name == e.name \
                and e.name not in ("execve", "clone", "clone3", "mount"):
            j += 1
        dur = sum(x.dur for x in steps[i:j])
        more = f"  [x{j - i}, until {us(steps[j - 1].end - t0).strip()}]" \
            if j - i > 1 else ""
        print(f"{us(e.start - t0)} {us(dur)}  p{pids[e.pid]:<3} "
              f"{e.name}({short(e.args)}{more}")
        i = j
    print()
    print("slowest system calls (blocking waits marked *)")
    for e in sorted(events, key=lambda x: x.dur, reverse=True)[:15]:
        mark = "*" if e.name in BLOCKING else " "
        print(f"{us(e.dur)} {mark} p{pids[e.pid]:<3} at {us(e.start - t0)}  "
              f"{e.name}({short(e.args, 60)}")
    print()
    print("longest gaps between two calls of one process (user space or "
          "run queue)")
    last, gaps = {}, []
    for e in events:
        prev = last.get(e.pid)
        if prev is not None:
            gaps.append((e.start - prev.end, prev, e))
        last[e.pid] = e
    for gap, prev, nxt in sorted(gaps, key=lambda g: g[0], reverse=True)[:12]:
        print(f"{us(gap)}   p{pids[nxt.pid]:<3} at {us(prev.end - t0)}  after "
              f"{prev.name}({short(prev.args, 28)}  before "
              f"{nxt.name}({short(nxt.args, 28)}")
    print()
    print("time per system call name, all processes (blocking ones excluded)")
    per = {}
    for e in events:
        if e.name not in BLOCKING:
            n, t = per.get(e.name, (0, 0.0))
            per[e.name] = (n + 1, t + e.dur)
    for name, (n, t) in sorted(per.items(), key=lambda kv: kv[1][1],
                               reverse=True)[:15]:
        print(f"{us(t)}  {n:5d} x {name}")


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: strace_steps.py TRACE...")
    traces = [(p, parse(p)) for p in sys.argv[1:]]
    traces = [t for t in traces if t[1]]
    if not traces:
        sys.exit("strace_steps.py: no system calls in the traces")
    spans = [span(ev) for _, ev in traces]
    med = statistics.median_low(spans)
    path, events = traces[spans.index(med)]
    print("spans of all traces: " +
          ", ".join(f"{s * 1e3:.2f} ms" for s in sorted(spans)))
    report(path, events)


if __name__ == "__main__":
    main()
