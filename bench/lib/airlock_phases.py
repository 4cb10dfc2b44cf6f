#!/usr/bin/env python3
"""Wall time of each phase of `airlock run -- true`, from `perf trace` output.

usage: airlock_phases.py TRACE...

Each TRACE is the output of
  perf trace -e execve,getcwd,clone,write,pipe2,sethostname,pivot_root,\
umount2,landlock_create_ruleset,landlock_restrict_self,seccomp,\
exit_group \
    -o TRACE -- /bin/sh -c 'exec "$0" run -- true' build/cli/airlock
Only those system calls are traced (filtered in the kernel), so the run is
barely slowed down, unlike under strace. Phases are cut at marker calls that
follow the order of session/src/sandbox.c and init.c; a phase whose markers
are missing in a trace is left out of that trace. Prints, per phase, the
median over the traces in microseconds and its share of the median total.
"""
import re
import statistics
import sys

EVENT = re.compile(
    r"^\s*(?P<ts>[\d.]+|\?) \(\s*(?:(?P<dur>[\d.]+) ms)?\s*\): "
    r"(?P<comm>.*?)/(?P<tid>\d+)\s+(?P<rest>.*)$")
CALL = re.compile(r"^(?P<name>\w+)\((?P<args>.*?)\)\s*(?:=\s*(?P<ret>\S+))?")
CONTINUED = re.compile(
    r"^\.\.\. \[continued\]: (?P<name>\w+)\(\)\)\s*=\s*(?P<ret>\S+)?")


class Call:
    __slots__ = ("tid", "start", "dur", "name", "args", "ret")

    def __init__(self, tid, start, dur, name, args, ret):
        self.tid, self.start, self.dur = tid, start, dur
        self.name, self.args, self.ret = name, args, ret

    @property
    def end(self):
        return self.start + (self.dur or 0.0)


def parse(path):
    """Calls with a start time, in file order (perf trace sorts by time)."""
    calls, pending = [], {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = EVENT.match(line.rstrip("\n"))
            if not m or m.group("ts") == "?":
                continue
            tid = int(m.group("tid"))
            dur = float(m.group("dur")) if m.group("dur") else None
            k = CONTINUED.match(m.group("rest"))
            if k:
                # The end of a call that another process's event interrupted.
                call = pending.pop(tid, None)
                if call is not None and call.name == k.group("name"):
                    call.dur, call.ret = dur, k.group("ret")
                continue
            c = CALL.match(m.group("rest"))
            if not c:
                continue
            call = Call(tid, float(m.group("ts")), dur, c.group("name"),
                        c.group("args"), c.group("ret"))
            if m.group("rest").rstrip().endswith("..."):
                pending[tid] = call
            calls.append(call)
    return calls


def first(calls, tid, name, after=float("-inf"), pred=None):
    for c in calls:
        if c.tid == tid and c.name == name and c.start >= after and \
                (pred is None or pred(c)):
            return c
    return None


def last(calls, tid, name, before=float("inf"), pred=None):
    found = None
    for c in calls:
        if c.tid == tid and c.name == name and c.start <= before and \
                (pred is None or pred(c)):
            found = c
    return found


def phases(calls):
    """[(phase name, milliseconds)] of one trace; missing markers skip."""
    out = []
    ex = next((c for c in calls if c.name == "execve" and c.dur is not None
               and c.ret == "0"), None)
    if ex is None:
        return out
    p0 = ex.tid
    ns_clone = first(calls, p0, "clone", pred=lambda c: "NEWUSER" in c.args)
    if ns_clone is None or not (ns_clone.ret or "").isdigit():
        return out
    p1 = int(ns_clone.ret)
    go = first(calls, p0, "write", after=ns_clone.start,
               pred=lambda c: "count: 1)" in c.args + ")")
    piv = [c for c in calls if c.tid == p1 and c.name == "pivot_root"]
    umt = [c for c in calls if c.tid == p1 and c.name == "umount2"]
    host = first(calls, p1, "sethostname")
    ll_first = first(calls, p1, "landlock_create_ruleset")
    ll_done = first(calls, p1, "landlock_restrict_self")
    # The filter is loaded with seccomp(SECCOMP_SET_MODE_FILTER) (libseccomp)
    # or with prctl(PR_SET_SECCOMP), which is not traced (capability drops
    # make dozens of prctl calls): then the seccomp phase ends where init
    # next shows up, making the pipe for the command's exec status.
    after_ll = ll_done.end if ll_done else 0
    sec = last(calls, p1, "seccomp", pred=lambda c: c.ret == "0")
    sec_end = sec.end if sec else None
    if sec_end is None:
        nxt = next((c for c in calls if c.tid == p1 and c.start >= after_ll
                    and c.name in ("pipe2", "clone")), None)
        sec_end = nxt.start if nxt else None
    cmd_clone = first(calls, p1, "clone", after=sec_end or after_ll)
    # The command's pid as clone() returns it is in the sandbox's pid
    # namespace; its host tid is the first new one that shows up.
    p2 = next((c.tid for c in calls if cmd_clone and c.start >= cmd_clone.start
               and c.tid not in (p0, p1)), None)
    cmd_exec = first(calls, p2, "execve", pred=lambda c: c.ret == "0") \
        if p2 else None
    cmd_exit = first(calls, p2, "exit_group") if p2 else None
    p0_exit = last(calls, p0, "exit_group")

    def add(name, a, b):
        if a is not None and b is not None and b >= a:
            out.append((name, b - a))

    add("exec airlock, dynamic loading (execve of airlock)", ex.start, ex.end)
    cwd = first(calls, p0, "getcwd", after=ex.end)
    first_p0 = next((c for c in calls if c.tid == p0 and c.start >= ex.end
                     and c.name != "getcwd"), None)
    add("ld.so: load and relocate libraries, libc start (until getcwd)",
        ex.end, cwd.start if cwd else None)
    add("main: options, settings, policy, plan (until the pipes)",
        cwd.start if cwd else None, first_p0.start if first_p0 else None)
    add("cgroup, janitor, pipes (until clone)",
        first_p0.start if first_p0 else None, ns_clone.start)
    add("clone() with user+mnt+pid+net+ipc+uts namespaces", ns_clone.start,
        ns_clone.end)
    add("parent: setgroups/uid_map/gid_map, release child",
        ns_clone.end, go.end if go else None)
    add("init: wake-up until sethostname", go.end if go else None,
        host.start if host else None)
    add("init: hostname, loopback up, tmpfs root (until 1st pivot_root)",
        host.start if host else None, piv[0].start if piv else None)
    if piv and umt:
        add("mounts: binds of system dirs, /proc, /dev, workspace, denied "
            "paths", piv[0].start, umt[0].start)
        add("umount2(old root, MNT_DETACH)", umt[0].start, umt[0].end)
    if len(piv) > 1 and len(umt) > 1:
        add("final pivot_root + umount2", umt[0].end, umt[1].end)
        add("rlimits, no_new_privs, capabilities (until Landlock)",
            umt[1].end, ll_first.start if ll_first else None)
    add("Landlock: ruleset, rules, restrict_self",
        ll_first.start if ll_first else None, ll_done.end if ll_done else None)
    add("seccomp: load the filter (and build it, if built at run time)",
        ll_done.end if ll_done else None, sec_end)
    add("fork of the command (clone in init)", sec_end,
        cmd_clone.end if cmd_clone else None)
    add("command: signals, setsid, chdir, PATH search, until execve",
        cmd_clone.end if cmd_clone else None,
        cmd_exec.start if cmd_exec else None)
    add("execve of the command (true)", cmd_exec.start if cmd_exec else None,
        cmd_exec.end if cmd_exec else None)
    add("command runs (true: dynamic loading, exit)",
        cmd_exec.end if cmd_exec else None,
        cmd_exit.start if cmd_exit else None)
    p1_exit = last(calls, p1, "exit_group")
    add("teardown: init wakes, reaps, reports (until its exit_group)",
        cmd_exit.start if cmd_exit else None,
        p1_exit.start if p1_exit else None)
    add("teardown: init exits, namespaces and mounts destroyed, airlock "
        "wakes (until its exit_group)", p1_exit.start if p1_exit else None,
        p0_exit.start if p0_exit else None)
    add("TOTAL (execve of airlock to its exit_group)", ex.start,
        p0_exit.start if p0_exit else None)
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: airlock_phases.py TRACE...")
    order, samples = [], {}
    for path in sys.argv[1:]:
        for name, ms in phases(parse(path)):
            if name not in samples:
                order.append(name)
                samples[name] = []
            samples[name].append(ms)
    if not order:
        sys.exit("airlock_phases.py: no airlock run found in the traces")
    total = statistics.median(samples.get(order[-1], [0.0])) or 1.0
    print(f"{'median':>10} {'share':>6} {'min':>9} {'n':>4}  phase "
          "(min: the least-disturbed run)")
    for name in order:
        v = samples[name]
        med = statistics.median(v)
        print(f"{med * 1000:7.0f} us {med / total * 100:5.1f}% "
              f"{min(v) * 1000:6.0f} us {len(v):4d}  {name}")


if __name__ == "__main__":
    main()
