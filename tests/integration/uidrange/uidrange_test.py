#!/usr/bin/env python3
"""Session uid ranges that never collide (docs/airlockd.md, "Session uids"):
the real built airlockd, several at once on scratch state dirs, sharing the
host's /run/airlock/uid-ranges records with every other daemon of the box.

usage: uidrange_test.py AIRLOCKD CASE

Cases (one ctest test each; they may run at the same time as each other and
as every other test that starts airlockd, so each case's explicit ranges lie
in a region of its own, far from the automatic ones):
  explicit_overlap  a second daemon whose uid_range overlaps a running one's
                    is refused, naming the first one's state dir and pid; a
                    neighbouring range runs; sessions get uids of their range
  auto_ranges       two daemons without uid_range get different ranges; a
                    restart of the same state dir (a session still running)
                    keeps its range
  stale_record      a daemon killed with SIGKILL leaves a stale record that
                    does not block the next start; while a killed daemon's
                    sandbox still runs, its range stays reserved
  host_files        /etc/subuid and /etc/passwd lines in the range refuse the
                    start; the automatic range avoids them; a kept range that
                    a new line overlaps is refused, not moved (the daemon runs
                    in a private mount namespace where a scratch copy of the
                    file is bound over the real one: no test hook in airlockd)

Exit 0 pass, 1 fail, 77 skip (not root, airlockd not built)."""

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "airlockd"))
from harness import SKIP, Daemon, Fail, check, wait_until  # noqa: E402

RUN_DIR = "/run/airlock/uid-ranges"
AUTO_FIRST = 0x70000000


def home_slot_start(state_dir):
    """The first id of the slot where airlockd's search for a free range
    starts for this state dir (SHA-256 of its real path; docs/airlockd.md)."""
    h = int.from_bytes(hashlib.sha256(os.path.realpath(state_dir).encode()).digest()[:8], "big")
    return AUTO_FIRST + (h % ((AUTO_END - AUTO_FIRST) // 65536)) * 65536
AUTO_END = 0x7FFE0000
CASES = {}
BINARY = None


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def region(index):
    """A block of 1,000,000 ids for one case's explicit ranges: below the
    automatic region, above what the other tests configure."""
    return 1_500_000_000 + index * 1_000_000


class Wrapped(Daemon):
    """A harness daemon whose command line may start with a wrapper
    (`wrap`, a list: see bound_over)."""

    wrap = []

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.wrap + [self.binary, "--config", self.conf_path],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if wait:
            wait_until(30, self._healthy, "airlockd answers /healthz")
        return self


class Run:
    """The daemons of one case, torn down at its end."""

    def __init__(self):
        self.daemons = []

    def daemon(self, name, uid_range=None, **extra):
        config = {"proxies": {"enabled": False}}
        if uid_range is not None:
            config["uid_range"] = uid_range
        config.update(extra)
        d = Wrapped(BINARY, config, name=f"uidr-{name}")
        self.daemons.append(d)
        return d

    def teardown(self):
        left = []
        for d in reversed(self.daemons):
            left += d.teardown()
        return left


def started(d):
    d.start()
    d.add_user("alice")
    d.add_user("root-admin", admin=True)
    return d


def refused(d, wrap=None):
    """Starts the daemon; it must refuse to start (exit non-zero) rather than
    answer /healthz. Returns what it printed."""
    cmd = [d.binary, "--config", d.conf_path]
    with open(d.log, "wb") as logf:
        p = subprocess.Popen((wrap or []) + cmd, stdout=logf, stderr=subprocess.STDOUT,
                             start_new_session=True)

    def up():
        try:
            return d.get("/healthz", key=None).status == 200
        except OSError:
            return False
    try:
        wait_until(120, lambda: p.poll() is not None or up(), "airlockd exits or answers")
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    out = d.log_tail()
    check(p.returncode not in (0, -9), "airlockd refuses to start (it started instead)", out)
    return out


def kept(d):
    """The range the daemon keeps in its state dir: (start, count)."""
    with open(os.path.join(d.state, "uid-range.json")) as f:
        j = json.load(f)
    return j["start"], j["count"]


def record_of(d):
    """The /run record naming this daemon's state dir (a dict with its file
    name under "file"), or None."""
    want = os.path.realpath(d.state)
    for path in glob.glob(os.path.join(RUN_DIR, "*.range")):
        try:
            with open(path) as f:
                rec = json.load(f)
        except (OSError, ValueError):
            continue
        if rec.get("state_dir") == want:
            rec["file"] = path
            return rec
    return None


@contextlib.contextmanager
def records_held():
    """Holds the records directory's own lock (the one a starting airlockd
    takes to check and write records): while held, no other daemon of the
    box (other tests run in parallel) probes a record's lock or removes a
    stale record, so what this test sees of a record is the daemon's doing."""
    os.makedirs(RUN_DIR, exist_ok=True)
    fd = os.open(os.path.join(RUN_DIR, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def record_locked(rec):
    """True while a live daemon holds the record's lock (call inside
    records_held(): another daemon's probe also holds it, briefly)."""
    with open(rec["file"]) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def session_uid(d, sid):
    """The host uid the session's sandbox runs as (its workspace's owner)."""
    return os.stat(os.path.join(d.state, "sessions", sid, "workspace")).st_uid


def in_range(uid, start, count):
    return start <= uid < start + count


@case
def explicit_overlap():
    base = region(0)
    run = Run()
    try:
        a = started(run.daemon("a", {"start": base, "count": 1000}))
        # overlapping by one id at either end
        for start in (base + 999, base - 499):
            b = run.daemon("b", {"start": start, "count": 500})
            out = refused(b)
            want = (f"uid_range {start}+500 overlaps the range of the airlockd with state dir "
                    f"{os.path.realpath(a.state)} (pid {a.proc.pid})")
            check(want in out, "the refusal names the overlap", out)
            check(record_of(b) is None, "a refused daemon leaves no record")
        rec = record_of(a)
        check(rec is not None and rec["pid"] == a.proc.pid and rec["start"] == base and
              rec["count"] == 1000, "a's record under /run names its range and pid", rec)
        check(record_locked(rec), "a holds the lock on its record", rec)
        # a second daemon on a's state dir is refused too
        twin = run.daemon("twin", {"start": base + 500000, "count": 10}, state_dir=a.state)
        out = refused(twin)
        check(f"another airlockd (pid {a.proc.pid}) runs with state dir" in out,
              "one daemon per state dir", out)
        # next to it: both run, each session in its own range
        c = started(run.daemon("c", {"start": base + 1000, "count": 1000}))
        sa, sc = a.create(), c.create()
        check(in_range(session_uid(a, sa), base, 1000), "a's session uid is in a's range")
        check(in_range(session_uid(c, sc), base + 1000, 1000), "c's session uid is in c's range")
        a.healthy()
        c.healthy()
        # a clean stop with no sandbox left removes the record
        a.delete_all()
        a.stop()
        check(record_of(a) is None, "a clean stop removes the record")
        b = started(run.daemon("b2", {"start": base + 999, "count": 1}))
        b.healthy()
    finally:
        left = run.teardown()
    check(not left, "nothing left behind", left)


@case
def auto_ranges():
    run = Run()
    try:
        a = started(run.daemon("a"))
        b = started(run.daemon("b"))
        sa, sb = a.create(), b.create()
        uid_a, uid_b = session_uid(a, sa), session_uid(b, sb)
        check(uid_a != uid_b, "the two daemons' sessions have different host uids",
              (uid_a, uid_b))
        ra, rb = kept(a), kept(b)
        check(ra[1] == 60000 and rb[1] == 60000, "the default count", (ra, rb))
        check(ra[0] + ra[1] <= rb[0] or rb[0] + rb[1] <= ra[0], "different ranges", (ra, rb))
        for r in (ra, rb):
            check(AUTO_FIRST <= r[0] and r[0] + r[1] <= AUTO_END and
                  (r[0] - AUTO_FIRST) % 65536 == 0, "picked in the documented region", r)
        st = os.stat(os.path.join(a.state, "uid-range.json"))
        check(st.st_mode & 0o777 == 0o600, "uid-range.json is 0600", oct(st.st_mode))
        check(record_of(a)["start"] == ra[0] and record_of(b)["start"] == rb[0],
              "the records hold the picked ranges")
        check(in_range(uid_a, *ra), "a's session uid is in a's range", (uid_a, ra))
        check(in_range(uid_b, *rb), "b's session uid is in b's range", (uid_b, rb))
        # restart a with its session running: same range, the session kept
        a.stop()  # (which takes the records' lock itself, to release its record)
        with records_held():
            rec = record_of(a)
            check(rec is not None and not record_locked(rec),
                  "a stopped daemon whose sandbox runs leaves its record (unlocked)", rec)
        a.start()
        check(kept(a) == ra, "a restart keeps the range", (kept(a), ra))
        check(record_of(a)["pid"] == a.proc.pid, "the record is taken over")
        check(a.session(sa)["state"] == "ready", "the session was re-adopted")
        check(session_uid(a, sa) == uid_a, "and keeps its uid")
        s2 = a.create()
        check(in_range(session_uid(a, s2), *ra), "a new session uid is in the same range")
        check(a.run(sa, "id -u").strip() == b"1000", "the sandbox still works")
    finally:
        left = run.teardown()
    check(not left, "nothing left behind", left)


@case
def stale_record():
    base = region(1)
    run = Run()
    try:
        # killed while a sandbox runs: its range stays reserved
        c = started(run.daemon("c", {"start": base + 1000, "count": 100}))
        sc = c.create()
        uid_c = session_uid(c, sc)
        c.kill9()
        d = run.daemon("d", {"start": base + 1050, "count": 100})
        out = refused(d)
        want = (f"uid_range {base + 1050}+100 overlaps the range of the airlockd with state dir "
                f"{os.path.realpath(c.state)} (pid ")
        check(want in out and "gone; its sandboxes still run" in out and
              f"as uid {uid_c}" in out, "the killed daemon's sandbox keeps its range", out)
        # its own daemon takes it back and adopts the session
        c.start()
        check(c.session(sc)["state"] == "ready", "the session was re-adopted")
        c.delete_all()
        c.stop()
        d.start()
        d.healthy()
        # killed with nothing running: the stale record is removed by the
        # next daemon, which may then take the range
        a = started(run.daemon("a", {"start": base, "count": 100}))
        rec = record_of(a)
        with records_held():
            a.kill9()
            check(os.path.exists(rec["file"]) and not record_locked(rec),
                  "a killed daemon leaves its record, unlocked", rec)
        b = started(run.daemon("b", {"start": base + 50, "count": 100}))
        check(not os.path.exists(rec["file"]) or record_of(a) is None,
              "the stale record was removed")
        b.healthy()
    finally:
        left = run.teardown()
    check(not left, "nothing left behind", left)


def bound_over(files):
    """A command prefix running the daemon in a private mount namespace
    where each host path in `files` has a scratch file bound over it."""
    script = "set -e\n"
    args = []
    for i, (target, scratch) in enumerate(files.items()):
        script += f'mount --bind "${i * 2 + 1}" "${i * 2 + 2}"\n'
        args += [scratch, target]
    n = len(args)
    script += f'shift {n}\nexec "$@"\n'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"] + args


def scratch_copy(d, path, extra):
    """A copy of the host file `path` (empty when missing) with `extra`
    lines appended, in the daemon's scratch dir."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if text and not text.endswith("\n"):
        text += "\n"
    out = os.path.join(d.dir, os.path.basename(path))
    with open(out, "w") as f:
        f.write(text + extra)
    return out


@case
def host_files():
    for path in ("/etc/subuid", "/etc/passwd"):
        if not os.path.exists(path):
            print(f"SKIP: {path} does not exist (nothing to bind a copy over)")
            return SKIP
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        print("SKIP: unshare --mount does not work here")
        return SKIP
    base = region(2)
    run = Run()
    try:
        # a subordinate range inside an explicit range
        a = run.daemon("a", {"start": base + 1000, "count": 1000})
        line = f"airlock-uidr-test:{base}:65536"
        sub = scratch_copy(a, "/etc/subuid", line + "\n")
        out = refused(a, bound_over({"/etc/subuid": sub}))
        check(f"uid_range {base + 1000}+1000 overlaps /etc/subuid: {line}" in out,
              "the refusal names the subuid line", out)
        # a user's uid inside it
        pw = scratch_copy(a, "/etc/passwd",
                          f"airlock-uidr-test:x:{base + 1500}:{base + 1500}::/nonexistent:"
                          "/usr/sbin/nologin\n")
        out = refused(a, bound_over({"/etc/passwd": pw}))
        check(f"overlaps /etc/passwd: user airlock-uidr-test uid {base + 1500}" in out,
              "the refusal names the passwd line", out)
        # without those lines it runs (the real files)
        a.start()
        a.healthy()
        a.stop()
        # the automatic range avoids a subordinate range over the slot its
        # search starts at (the state dir's own: docs/airlockd.md)
        b = run.daemon("b")
        home = home_slot_start(b.state)
        sub_b = scratch_copy(b, "/etc/subuid", f"airlock-uidr-test:{home}:{2 * 65536}\n")
        b.wrap = bound_over({"/etc/subuid": sub_b})
        b.start()
        check(b.proc.pid == record_of(b)["pid"], "the wrapper execs airlockd")
        start, count = kept(b)
        check(start + count <= home or start >= home + 2 * 65536,
              "the picked range avoids the subuid line over its home slot", (start, count, home))
        b.stop()
        # a line added later inside the kept range: refused, not moved
        sub_b2 = scratch_copy(b, "/etc/subuid", f"airlock-uidr-test:{start + 10}:1\n")
        out = refused(b, bound_over({"/etc/subuid": sub_b2}))
        check(f"uid_range {start}+{count} (kept in {os.path.realpath(b.state)}/uid-range.json"
              in out and f"/etc/subuid: airlock-uidr-test:{start + 10}:1" in out,
              "a kept range that now overlaps is refused", out)
        check(kept(b) == (start, count), "and is not moved")
    finally:
        left = run.teardown()
    check(not left, "nothing left behind", left)


def main():
    global BINARY
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print(f"usage: {sys.argv[0]} AIRLOCKD CASE\ncases: {' '.join(CASES)}", file=sys.stderr)
        return 2
    BINARY, name = sys.argv[1:]
    if not os.access(BINARY, os.X_OK):
        print(f"SKIP: {BINARY} is not built")
        return SKIP
    if os.geteuid() != 0:
        print("SKIP: airlockd needs root")
        return SKIP
    try:
        rc = CASES[name]()
        if rc == SKIP:
            return SKIP
    except Fail as e:
        print(f"FAIL: {name}: {e}")
        return 1
    print(f"ok: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
