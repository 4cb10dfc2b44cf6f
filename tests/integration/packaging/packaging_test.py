#!/usr/bin/env python3
"""Issue 12 item 8 (packaging) with the real built programs:

  version_build        every program's --version names the version and the
                       commit of the source tree (git describe), as built
  version_script       cmake/version.cmake in a scratch git repository: the
                       header follows HEAD (and -dirty), is left untouched
                       when nothing changed, says "unknown" outside git, and
                       takes -DCOMMIT=
  decision_log         airlock run --decision-log FILE: one JSON record per
                       request in FILE, allowed and denied, nothing else;
                       the terminal lines stay on stderr
  decision_log_stderr  --decision-log -: the records on stderr in place of
                       the blocked-network lines
  airlockd_json_log    airlockd --log-format json (debug level, a session, a
                       request with odd bytes): every line of the shared
                       stderr (airlockd and its netproxy) is one JSON object
                       with time, level, component, message, fields
  up_stop              `airlock up` stopped with SIGINT says how many
                       sessions keep running and how to re-adopt and end
                       them; the next `airlock up` re-adopts the session;
                       stopped with none: says so
  reaped_after_restart sessions re-adopted after a SIGTERM restart and after
                       a SIGKILL of airlockd, then ended: their airlock-init
                       is reaped (by airlockd's reaper, its parent once
                       airlockd is gone), no zombie is left

usage: packaging_test.py BUILD_DIR SOURCE_DIR CASE   exit 0 pass, 1 fail, 77 skip"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "airlockd"))
from harness import SKIP, Daemon, Fail, check, init_pid, wait_until  # noqa: E402

# program -> its path in the build tree
PROGRAMS = {
    "airlock": "cli/airlock", "airlock-session": "cli/airlock-session",
    "airlock-creds": "creds/airlock-creds", "airlock-netproxy": "netproxy/airlock-netproxy",
    "airlock-connect": "netproxy/airlock-connect",
    "airlock-gitproxy": "gitproxy/airlock-gitproxy",
    "git-remote-airlock": "gitproxy/git-remote-airlock",
    "airlock-init": "session/airlock-init", "airlockd": "airlockd/airlockd",
}


def run(argv, **kw):
    """(exit status, stdout, stderr) of argv, as text."""
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       errors="replace", timeout=kw.pop("timeout", 120), **kw)
    return r.returncode, r.stdout, r.stderr


def project_version(src):
    with open(os.path.join(src, "CMakeLists.txt")) as f:
        return re.search(r"project\(airlock VERSION ([0-9.]+)", f.read()).group(1)


def case_version_build(build, src, scratch):
    version = project_version(src)
    with open(os.path.join(build, "generated", "airlock", "version.h")) as f:
        header = f.read()
    commit = re.search(r'#define AL_COMMIT\s+"([^"]*)"', header).group(1)
    rc, head, _ = run(["git", "-C", src, "rev-parse", "HEAD"])
    if rc == 0:
        # the build ran `git describe --always --dirty`: the abbreviated
        # HEAD (a later edit may have changed the -dirty part since)
        check(re.fullmatch(r"[0-9a-f]{12}(-dirty)?|.*-g[0-9a-f]{12}(-dirty)?", commit),
              "the commit is a git describe", commit)
        # the commit the build was made from: HEAD, unless a commit came
        # after the build (then the binaries are stale, and say so truly)
        short = re.sub(r"-dirty$", "", commit).split("-g")[-1]
        rc, _, err = run(["git", "-C", src, "cat-file", "-e", short + "^{commit}"])
        check(rc == 0, "the commit named is one of this repository's", (commit, err))
        if not head.strip().startswith(short):
            print(f"note: built from {commit}, HEAD is now {head.strip()[:12]}: rebuild")
    else:
        check(commit == "unknown", "outside git the commit is unknown", commit)
    for name, rel in PROGRAMS.items():
        rc, out, err = run([os.path.join(build, rel), "--version"])
        want = f"{name} {version} (commit {commit})\n"
        check(rc == 0 and out == want and err == "", f"{name} --version", (rc, out, err, want))
        print(f"ok: {out.strip()}")


def case_version_script(build, src, scratch):
    if shutil.which("git") is None:
        print("SKIP: no git")
        return SKIP
    repo = os.path.join(scratch, "repo")
    out = os.path.join(scratch, "gen", "airlock", "version.h")
    script = os.path.join(src, "cmake", "version.cmake")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")

    def gen(where, *extra):
        rc, o, e = run(["cmake", f"-DSRC={where}", f"-DOUT={out}", "-DVERSION=9.8.7", *extra,
                        "-P", script], env=env)
        check(rc == 0, "cmake -P version.cmake", (o, e))
        with open(out) as f:
            text = f.read()
        return re.search(r'#define AL_COMMIT\s+"([^"]*)"', text).group(1), os.stat(out).st_mtime_ns

    def git(*args):
        rc, o, e = run(["git", "-C", repo, *args], env=env)
        check(rc == 0, f"git {' '.join(args)}", e)
        return o.strip()

    os.makedirs(repo)
    git("init", "-q")
    with open(os.path.join(repo, "f"), "w") as f:
        f.write("1\n")
    git("add", "f")
    git("commit", "-qm", "one")
    one = git("rev-parse", "--short=12", "HEAD")
    c, m1 = gen(repo)
    check(c == one, "the header names HEAD", (c, one))
    with open(out) as f:
        check('#define AL_VERSION "9.8.7"' in f.read(), "and the version")
    time.sleep(0.05)
    c, m2 = gen(repo)
    check(c == one and m2 == m1, "same HEAD: the header is not rewritten (nothing recompiles)",
          (m1, m2))
    with open(os.path.join(repo, "f"), "w") as f:
        f.write("2\n")
    c, _ = gen(repo)
    check(c == one + "-dirty", "an uncommitted change: -dirty", c)
    git("commit", "-qam", "two")
    two = git("rev-parse", "--short=12", "HEAD")
    c, _ = gen(repo)
    check(c == two and two != one, "a new commit: the header follows HEAD", (c, two))
    # the scratch dir is in the build tree, often in a checkout: git must
    # not look above it
    plain = os.path.join(scratch, "not-a-checkout")
    os.makedirs(plain)
    env["GIT_CEILING_DIRECTORIES"] = scratch
    c, _ = gen(plain)
    check(c == "unknown", "outside a git checkout: unknown", c)
    c, _ = gen(plain, "-DCOMMIT=abc123def456")
    check(c == "abc123def456", "-DCOMMIT= names it (a tarball build)", c)
    c, _ = gen(plain, "-DCOMMIT=x\"; evil")
    check(c == "unknown", "a COMMIT that is not a describe does not reach the C string", c)
    print(f"ok: version.cmake: {one}, {one}-dirty, {two}, unknown, -DCOMMIT")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_upstream(scratch):
    """A python3 HTTP server on loopback; returns (process, port)."""
    www = tempfile.mkdtemp(prefix="www.", dir=scratch)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hello from upstream\n")
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                          "--directory", www], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_until(20, up, "the HTTP upstream listens")
    return p, port


def decision_run(build, scratch, log_arg):
    """airlock run with allowed.test allowed and denied.test not, both on the
    loopback upstream: curl to each. Returns (rc, stdout, stderr, port)."""
    settings = os.path.join(scratch, "net.json")
    with open(settings, "w") as f:
        json.dump({"sandbox": {"network": {"allowedDomains": ["allowed.test"],
                                           "allowedAddresses": ["127.0.0.1/32"]}}}, f)
    upstream, port = http_upstream(scratch)
    try:
        rc, out, err = run([os.path.join(build, "cli", "airlock"), "run", "--settings", settings,
                            "--add-host", "allowed.test=127.0.0.1",
                            "--add-host", "denied.test=127.0.0.1", "--decision-log", log_arg,
                            "--", "sh", "-c",
                            f"curl -sS http://allowed.test:{port}/; "
                            f"curl -sS -o /dev/null -w '%{{http_code}}\\n' "
                            f"http://denied.test:{port}/"], cwd=scratch)
    finally:
        upstream.terminate()
        upstream.wait()
    return rc, out, err, port


def check_records(lines, port):
    """Every line one decision record; one allow of allowed.test and one
    deny of denied.test among them."""
    recs = []
    for ln in lines:
        try:
            recs.append(json.loads(ln))
        except ValueError:
            raise Fail(f"not a JSON record: {ln!r}")
    for r in recs:
        check(isinstance(r, dict) and {"decision", "host", "port", "reason"} <= set(r),
              "a decision record has decision, host, port, reason", r)
    check(any(r["decision"] == "allow" and r["host"] == "allowed.test" and r["port"] == port
              for r in recs), "allowed.test was recorded as allowed", recs)
    check(any(r["decision"] == "deny" and r["host"] == "denied.test" for r in recs),
          "denied.test was recorded as denied", recs)
    return recs


def case_decision_log(build, src, scratch):
    path = os.path.join(scratch, "decisions.jsonl")
    rc, out, err, port = decision_run(build, scratch, path)
    check(rc == 0 and "hello from upstream" in out and "403" in out, "the command ran",
          (rc, out, err))
    with open(path) as f:
        text = f.read()
    check(text.endswith("\n"), "whole lines", text)
    recs = check_records(text.splitlines(), port)
    check(oct(os.stat(path).st_mode & 0o777) == oct(0o600), "created mode 0600")
    check(f"airlock: blocked network: denied.test:{port}" in err,
          "the terminal line is still on stderr", err)
    check("{" not in err, "no record on stderr", err)
    print(f"ok: {len(recs)} records in {path}; stderr keeps the blocked-network line")
    # appended, not truncated
    rc, out, err, port = decision_run(build, scratch, path)
    with open(path) as f:
        n = len(f.read().splitlines())
    check(n >= 2 * len(recs) - 1, "a second run appends", n)
    # no network in the policy: the file is created, empty
    empty = os.path.join(scratch, "none.jsonl")
    rc, out, err = run([os.path.join(build, "cli", "airlock"), "run", "--decision-log", empty,
                        "--", "true"], cwd=scratch)
    check(rc == 0 and os.path.getsize(empty) == 0, "no network: an empty file", (rc, err))
    rc, out, err = run([os.path.join(build, "cli", "airlock"), "run", "--decision-log",
                        os.path.join(scratch, "no", "such", "dir", "x"), "--", "true"],
                       cwd=scratch)
    check(rc == 125 and "--decision-log" in err, "an unwritable path: exit 125, named",
          (rc, err))
    rc, out, err = run([os.path.join(build, "cli", "airlock"), "run", "--decision-log"])
    check(rc == 125 and "--decision-log needs a value" in err, "a missing value is named",
          (rc, err))
    print("ok: appended; empty without network; bad paths named")


def case_decision_log_stderr(build, src, scratch):
    rc, out, err, port = decision_run(build, scratch, "-")
    check(rc == 0 and "hello from upstream" in out, "the command ran", (rc, out, err))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    # the command's curl prints nothing on stderr here: stderr is the records
    check_records(lines, port)
    check("blocked network" not in err, "no blocked-network line among them", err)
    print(f"ok: stderr holds {len(lines)} records and nothing else")


def case_airlockd_json_log(build, src, scratch):
    d = Daemon(os.path.join(build, "airlockd", "airlockd"),
               {"log_format": "json", "log_level": "debug"}, name="jsonlog")
    failed = None
    try:
        d.start()
        d.add_user("alice")
        sid = d.create()
        check(d.run(sid, "echo ok") == b"ok\n", "a session works")
        # a path with a quote, a backslash, control and non-UTF-8 bytes
        d.request("GET", "/v1/sessions/%22%5c%0a%1b%ff%c0", key="alice")
        r = d.request("GET", "/v1/sessions/s_\"\\x/exec", key="alice")
        check(r.status >= 400, "an odd path is refused", r)
        d.delete_all()
        d.stop()
        with open(d.log, "rb") as f:
            raw = f.read()
        lines = raw.split(b"\n")
        check(lines[-1] == b"", "the log ends with a newline", raw[-200:])
        comps, sessions = set(), set()
        for ln in lines[:-1]:
            try:
                o = json.loads(ln.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise Fail(f"a log line is not JSON ({e}): {ln[:300]!r}")
            check(isinstance(o, dict) and set(o) == {"time", "level", "component", "message",
                                                      "fields"},
                  "time, level, component, message, fields", o)
            check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["time"]),
                  "time is UTC ISO 8601 with ms", o)
            check(o["level"] in ("error", "warn", "info", "debug"), "a level name", o)
            check(isinstance(o["fields"].get("pid"), int), "fields.pid", o)
            comps.add(o["component"])
            if "session" in o["fields"]:
                sessions.add(o["fields"]["session"])
        check("airlockd" in comps, "airlockd's lines", comps)
        check(sid in sessions, "the session's lines carry fields.session", sessions)
        print(f"ok: {len(lines) - 1} lines, all JSON; components {sorted(comps)}; "
              f"session {sid} in fields")
    except Fail as e:
        failed = str(e)
    finally:
        left = d.teardown()
    if left:
        failed = (failed + "; " if failed else "") + f"left behind: {left}"
    if failed:
        raise Fail(failed + "\n" + d.final_log[-2000:])


class UpDaemon(Daemon):
    """`airlock up --config CONF --state-dir STATE`: what a user runs, on the
    harness's configuration (its port and state dir)."""

    def __init__(self, airlock, *a, **kw):
        super().__init__(*a, **kw)
        self.airlock = airlock

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([self.airlock, "up", "--config", self.conf_path,
                                      "--state-dir", self.state],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if wait:
            wait_until(60, self._healthy, "airlock up answers /healthz")
        return self

    def interrupt(self):
        """Ctrl-C; returns what it printed from then on."""
        size = os.path.getsize(self.log)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)
        self.logf.close()
        check(self.proc.returncode == 0, "airlock up exits 0 on SIGINT", self.log_tail())
        with open(self.log, "rb") as f:
            f.seek(size)
            return f.read().decode(errors="replace")


def case_up_stop(build, src, scratch):
    d = UpDaemon(os.path.join(build, "cli", "airlock"), os.path.join(build, "airlockd", "airlockd"),
                 name="upstop")
    failed = None
    try:
        d.start()
        d.add_user("alice")
        sid = d.create()
        check(d.run(sid, "echo ok") == b"ok\n", "a session works")
        said = d.interrupt()
        want = (f"airlock up: stopped; 1 session keeps running (sandboxes and their processes). "
                f"`airlock up --state-dir {d.state}` re-adopts it; to end it, run "
                f"`airlock session rm ID...` against it")
        check(want in said, "airlock up says what keeps running and what to do", said)
        print(f"ok: {[ln for ln in said.splitlines() if 'stopped' in ln][-1]}")
        d.start()
        check(d.run(sid, "echo again") == b"again\n", "the next airlock up re-adopted it")
        r = d.delete(f"/v1/sessions/{sid}")
        check(r.status == 200, "and it can be ended", r)
        said = d.interrupt()
        check("airlock up: stopped; no session was running" in said,
              "with none left it says so", said)
        print("ok: re-adopted, ended; then: airlock up: stopped; no session was running")
    except Fail as e:
        failed = str(e)
    finally:
        left = d.teardown()
        for leaf in ("-proxy-home", "-gitproxy-cache"):
            shutil.rmtree(d.state + leaf, ignore_errors=True)
    if left:
        failed = (failed + "; " if failed else "") + f"left behind: {left}"
    if failed:
        raise Fail(failed + "\n" + d.final_log[-2000:])


def proc_status(pid):
    """{"State": ..., "PPid": ..., "Name": ...} of /proc/PID/status; {} when
    the process is gone (reaped)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(ln.rstrip("\n").split(":\t", 1) for ln in f if ":\t" in ln)
    except OSError:
        return {}


def case_reaped_after_restart(build, src, scratch):
    d = Daemon(os.path.join(build, "airlockd", "airlockd"), name="reaped")
    failed = None
    inits = {}
    try:
        d.start()
        d.add_user("alice")
        a, b = d.create(), d.create()
        for sid in (a, b):
            check(d.run(sid, "echo ok") == b"ok\n", "a session works")
            inits[sid] = init_pid(sid)
            check(inits[sid], f"the init of {sid}")
        # 1. a SIGTERM restart: the inits' parent is now the reaper
        d.stop()
        for sid, pid in inits.items():
            st = proc_status(pid)
            parent = proc_status(int(st.get("PPid", "0")))
            check(st and parent.get("Name") == "airlockd-reaper" and st["PPid"] != "1",
                  f"with airlockd stopped, {sid}'s init is the reaper's child", (st, parent))
        print(f"ok: stopped: the inits' parent is airlockd-reaper (pid {parent_pid(inits[a])})")
        d.start()
        check(d.run(a, "echo again") == b"again\n", "re-adopted after the restart")
        r = d.delete(f"/v1/sessions/{a}")
        check(r.status == 200, "the re-adopted session is ended", r)
        wait_until(30, lambda: not proc_status(inits[a]),
                   "its airlock-init is reaped (no zombie)")
        print(f"ok: re-adopted {a} ended: init {inits[a]} reaped")
        # 2. airlockd killed (SIGKILL of the process that was started): the
        # daemon goes with it, the sandbox stays, and is reaped once ended
        daemon = d.daemon_pid()
        check(daemon, "the daemon runs as the reaper's child")
        d.kill9()
        check(not os.path.exists(f"/proc/{daemon}"), "the daemon went with it (and was reaped)")
        st = proc_status(inits[b])
        check(st and not st["State"].startswith("Z"), "the sandbox stays", st)
        d.start()
        check(d.run(b, "echo again") == b"again\n", "re-adopted after the kill")
        r = d.delete(f"/v1/sessions/{b}")
        check(r.status == 200, "the re-adopted session is ended", r)
        wait_until(30, lambda: not proc_status(inits[b]),
                   "its airlock-init is reaped (no zombie)")
        r = subprocess.run(["ps", "-o", "pid=,stat=,ppid=,comm=", "-p",
                            ",".join(str(p) for p in inits.values())],
                           stdout=subprocess.PIPE, text=True)
        check(r.stdout.strip() == "", "ps: none of the inits is left, zombie or not", r.stdout)
        print(f"ok: killed and restarted: {b} ended: init {inits[b]} reaped")
    except Fail as e:
        failed = str(e)
    finally:
        left = d.teardown()
    if left:
        failed = (failed + "; " if failed else "") + f"left behind: {left}"
    if failed:
        raise Fail(failed + "\n" + d.final_log[-2000:])


def parent_pid(pid):
    return int(proc_status(pid).get("PPid", "0"))


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    build, src, case = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
    fn = globals().get(f"case_{case}")
    if fn is None:
        print(f"unknown case {case}", file=sys.stderr)
        return 2
    if case not in ("version_build", "version_script") and os.geteuid() != 0:
        print("SKIP: needs root")
        return SKIP
    scratch = tempfile.mkdtemp(prefix=f"packaging-{case}.", dir=build)
    try:
        rc = fn(build, src, scratch)
        return rc if rc else 0
    except Fail as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
