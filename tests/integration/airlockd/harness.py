"""Harness for the airlockd integration tests: starts the real built daemon
on a free loopback port with a scratch state dir and config, creates users
(alice, bob, an admin) with `airlockd admin`, talks HTTP to it, and tears
everything down, checking that no session left a process, cgroup or mount
behind.

Used by airlockd_test.py (one ctest test per case) and bench/sessions.
Only the Python standard library; HTTP with http.client so every byte of a
request is what the test says (no path normalisation)."""

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import random
import socket
import subprocess
import tempfile
import threading
import time

SKIP = 77


class Fail(Exception):
    pass


class PortTaken(Exception):
    """The API port free_port() picked was taken before airlockd bound it."""


def check(cond, what, detail=None):
    """Fails the test with `what` (and `detail`) unless `cond`."""
    if not cond:
        raise Fail(what + ("" if detail is None else f": {detail!r}"[:2000]))


def wait_until(seconds, fn, what):
    """Polls fn() until it returns a true value (returned) or `seconds`
    pass (then fails with `what`). A readiness wait, not a timing
    assertion: the bounds are generous."""
    end = time.monotonic() + seconds
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise Fail(f"not within {seconds}s: {what}")
        time.sleep(0.05)


def free_port():
    """A port free now, below the kernel's ephemeral range: one from that
    range can be taken by any client connection's source port between this
    pick and the daemon's bind (a full parallel ctest makes many)."""
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    for _ in range(200):
        port = random.randrange(20000, min(lo, 32768))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise Fail(f"status {self.status}: body is not JSON: {self.body[:300]!r}")

    def error_code(self):
        j = self.json
        check(isinstance(j, dict) and isinstance(j.get("error"), dict),
              "error body is {\"error\": {...}}", self.body[:300])
        e = j["error"]
        check(isinstance(e.get("code"), str) and isinstance(e.get("message"), str),
              "error has code and message strings", e)
        return e["code"]

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


SESSION_ID = re.compile(r"^s_[0-9a-f]{20}$")


class Daemon:
    """One airlockd under test. `config` entries override the test defaults."""

    def __init__(self, binary, config=None, name="t"):
        self.binary = binary
        base = os.environ.get("AIRLOCKD_TEST_SCRATCH", "/var/tmp")
        os.makedirs(base, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=f"airlockd-{name}.", dir=base)
        self.state = os.path.join(self.dir, "state")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf_path = os.path.join(self.dir, "airlockd.json")
        self.config = {
            "listen": f"127.0.0.1:{self.port}",
            "state_dir": self.state,
            "log_level": "info",
            "limits": {
                "default": {"memory_mb": 256, "pids": 256, "cpu": 1.0,
                            "ttl_s": 3600, "idle_s": 900},
                "max": {"memory_mb": 2048, "pids": 4096, "cpu": 2.0,
                        "ttl_s": 86400, "idle_s": 86400},
            },
            "quotas": {"max_sessions": 100, "max_memory_mb": 1 << 20},
            "max_body_bytes": 1024 * 1024,
            "max_upload_bytes": 4 * 1024 * 1024,
            "max_output_bytes": 64 * 1024 * 1024,
            "approval_timeout_s": 30,
        }
        for k, v in (config or {}).items():
            self.config[k] = v
        # No uid_range: each daemon picks a free range of its own and records
        # it under /run (docs/airlockd.md), so daemons of tests that run in
        # parallel never share uids; an explicit range would be refused when
        # it met another test's.
        with open(self.conf_path, "w") as f:
            json.dump(self.config, f, indent=1)
        self.proc = None
        self.keys = {}
        self.sessions = set()  # every id created through this harness
        self.log = os.path.join(self.dir, "airlockd.log")
        self.final_log = ""

    # -- process -----------------------------------------------------------

    def start(self, wait=True):
        """Starts airlockd. free_port() is a guess that another test may
        take first: the first start of a daemon whose API port turned out to
        be taken moves to another port (up to 3 times)."""
        first = getattr(self, "proc", None) is None
        for attempt in range(4):
            # airlockd writes <state>/airlockd.addr once it listens: until
            # then a /healthz answer on the port is someone else's
            try:
                os.unlink(os.path.join(self.state, "airlockd.addr"))
            except OSError:
                pass
            try:
                self._log_from = os.path.getsize(self.log)
            except OSError:
                self._log_from = 0
            self.logf = open(self.log, "ab")
            self.proc = subprocess.Popen([self.binary, "--config", self.conf_path],
                                         stdout=self.logf, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            if not wait:
                return self
            try:
                wait_until(30, self._healthy, "airlockd answers /healthz")
                return self
            except PortTaken:
                self.proc.wait(timeout=30)
                self.logf.close()
                if not first or attempt == 3:
                    raise Fail(f"airlockd: port {self.port} taken: {self.log_tail()}")
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
                self.config["listen"] = f"127.0.0.1:{self.port}"
                with open(self.conf_path, "w") as f:
                    json.dump(self.config, f, indent=1)
        return self

    def _healthy(self):
        try:
            with open(self.log, "rb") as f:
                f.seek(getattr(self, "_log_from", 0))
                new = f.read().decode(errors="replace")
        except OSError:
            new = ""
        if f"error: listen on 127.0.0.1:{self.port}: Address already in use" in new:
            raise PortTaken()
        if self.proc.poll() is not None:
            raise Fail(f"airlockd exited with {self.proc.returncode}: {self.log_tail()}")
        if not os.path.exists(os.path.join(self.state, "airlockd.addr")):
            return False
        try:
            return self.get("/healthz", key=None).status == 200
        except OSError:
            return False

    def healthy(self):
        """Fails unless the daemon still answers /healthz with ok."""
        r = self.get("/healthz", key=None)
        check(r.status == 200 and r.json.get("status") == "ok", "/healthz ok", r)

    def daemon_pid(self):
        """The pid of the daemon proper: the process started runs it as the
        child of its reaper (docs/airlockd.md, "Who reaps a sandbox that
        outlived its daemon"). None when there is none."""
        for r in pgrep_children(self.proc.pid, "airlockd-reaper"):
            for d in pgrep_children(r, "airlockd"):
                return d
        return None

    def kill9(self):
        """SIGKILL of the process started, as `kill -9 airlockd`: its reaper
        kills the daemon at once; returns when that one is gone too."""
        daemon = self.daemon_pid()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.logf.close()
        if daemon:
            # gone: reaped by the reaper (a zombie's other threads may still
            # hold its files; a reaped process holds nothing)
            wait_until(30, lambda: not os.path.exists(f"/proc/{daemon}"),
                       "the killed airlockd's daemon is gone")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()

    def log_tail(self, n=3000):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    # -- users -------------------------------------------------------------

    def admin(self, *args):
        r = subprocess.run([self.binary, "admin", "--config", self.conf_path, *args],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise Fail(f"airlockd admin {' '.join(args)}: exit {r.returncode}: "
                       f"{r.stdout} {r.stderr}")
        return r.stdout

    def add_user(self, name, admin=False, max_sessions=None, max_memory_mb=None):
        args = ["user", "add", name]
        if admin:
            args.append("--admin")
        if max_sessions is not None:
            args += ["--max-sessions", str(max_sessions)]
        if max_memory_mb is not None:
            args += ["--max-memory-mb", str(max_memory_mb)]
        self.admin(*args)
        return self.new_key(name)

    def new_key(self, user):
        out = self.admin("key", "create", "--user", user)
        lines = out.split()
        check(len(lines) == 1, "airlockd admin key create prints the key alone", out)
        self.keys[user] = lines[0]
        return self.keys[user]

    def standard_users(self):
        self.add_user("alice")
        self.add_user("bob")
        self.add_user("root-admin", admin=True)
        return self

    # -- HTTP --------------------------------------------------------------

    def conn(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def _headers(self, key, headers, ctype):
        h = {}
        if key is not None:
            k = self.keys.get(key, key)
            h["Authorization"] = f"Bearer {k}"
        if ctype:
            h["Content-Type"] = ctype
        h.update(headers or {})
        return h

    def request(self, method, path, body=None, key="alice", headers=None, raw=None,
                ctype=None, timeout=120):
        """One request on a fresh connection. `body` is sent as JSON, `raw`
        as is (bytes). Returns a Resp with the whole body."""
        if body is not None:
            raw = json.dumps(body).encode()
            ctype = ctype or "application/json"
        c = self.conn(timeout)
        try:
            c.request(method, path, body=raw, headers=self._headers(key, headers, ctype))
            r = c.getresponse()
            data = r.read()
            return Resp(r.status, r.getheaders(), data)
        finally:
            c.close()

    def raw_request(self, method, path, raw, key="alice", ctype="application/octet-stream"):
        """Sends a request over a plain socket and reads the answer even when
        the server answers (413) and closes before the whole body was sent,
        which http.client cannot. Returns a Resp."""
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {self.keys.get(key, key)}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(raw)}\r\n"
                "Connection: close\r\n\r\n").encode()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        try:
            try:
                s.sendall(head + raw)
            except (BrokenPipeError, ConnectionResetError):
                pass
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
        finally:
            s.close()
        headpart, _, body = data.partition(b"\r\n\r\n")
        lines = headpart.decode("latin-1").split("\r\n")
        check(lines and lines[0].startswith("HTTP/1."), "an HTTP response", data[:200])
        status = int(lines[0].split()[1])
        headers = [tuple(x.split(": ", 1)) for x in lines[1:] if ": " in x]
        if any(k.lower() == "transfer-encoding" and "chunked" in v for k, v in headers):
            out, rest = b"", body
            while rest:
                size, _, rest = rest.partition(b"\r\n")
                n = int(size, 16)
                if n == 0:
                    break
                out, rest = out + rest[:n], rest[n + 2:]
            body = out
        return Resp(status, headers, body)

    def stream(self, method, path, body=None, key="alice", headers=None, timeout=120):
        """Starts a request and returns (connection, response) unread."""
        raw = None
        ctype = None
        if body is not None:
            raw = json.dumps(body).encode()
            ctype = "application/json"
        c = self.conn(timeout)
        c.request(method, path, body=raw, headers=self._headers(key, headers, ctype))
        return c, c.getresponse()

    def get(self, path, key="alice", **kw):
        return self.request("GET", path, key=key, **kw)

    def post(self, path, body=None, key="alice", **kw):
        return self.request("POST", path, body=body, key=key, **kw)

    def delete(self, path, key="alice", **kw):
        return self.request("DELETE", path, key=key, **kw)

    # -- sessions ----------------------------------------------------------

    def create(self, key="alice", expect=201, **body):
        r = self.post("/v1/sessions", body, key=key)
        if r.status in (200, 201):
            self.sessions.add(r.json.get("id"))
        check(r.status == expect, f"create answers {expect}", r)
        if expect in (200, 201):
            s = r.json
            check(SESSION_ID.match(s.get("id", "")), "session id is s_ + 20 hex", s)
            check(s.get("state") == "ready", "a created session is ready", s)
            return s["id"]
        return r

    def session(self, sid, key="alice"):
        r = self.get(f"/v1/sessions/{sid}", key=key)
        check(r.status == 200, f"GET session {sid}", r)
        return r.json

    def exec(self, sid, key="alice", **body):
        """Foreground exec; returns (status, stdout bytes, stderr bytes, exit
        dict, start dict) or (status, Resp) on an HTTP error."""
        c, r = self.stream("POST", f"/v1/sessions/{sid}/exec", body, key=key)
        try:
            if r.status != 200:
                return r.status, Resp(r.status, r.getheaders(), r.read())
            ctype = r.getheader("Content-Type", "")
            check(ctype.startswith("application/x-ndjson"), "exec streams NDJSON", ctype)
            return (200,) + read_exec_stream(r)
        finally:
            c.close()

    def run(self, sid, cmd, key="alice", **body):
        """Runs a shell command; fails unless it exits 0. Returns stdout."""
        st, *rest = self.exec(sid, key=key, shell=cmd, **body)
        check(st == 200, f"exec {cmd!r}", rest)
        out, err, ex, _ = rest
        check(ex.get("code") == 0, f"{cmd!r} exits 0", (ex, out[-500:], err[-500:]))
        return out

    def delete_all(self):
        """Deletes every session this harness created (as the admin when
        there is one)."""
        key = "root-admin" if "root-admin" in self.keys else None
        for sid in list(self.sessions):
            if sid is None:
                continue
            try:
                if key:
                    self.delete(f"/v1/sessions/{sid}", key=key, timeout=60)
                else:
                    for user in self.keys:
                        if self.delete(f"/v1/sessions/{sid}", key=user,
                                       timeout=60).status == 200:
                            break
            except OSError:
                pass

    def teardown(self, check_leftovers=True):
        """Deletes the sessions, stops the daemon, checks and removes what
        they left (processes, cgroups, mounts), removes the scratch dir.
        Returns a list of leftover descriptions."""
        left = []
        try:
            if self.proc and self.proc.poll() is None:
                self.delete_all()
        finally:
            self.stop()
            ids = [s for s in self.sessions if s]
            if check_leftovers:
                left = leftovers(ids, self.state)
            cleanup(ids, self.state)
            self.final_log = self.log_tail()
            if not os.environ.get("AIRLOCKD_TEST_KEEP"):
                shutil.rmtree(self.dir, ignore_errors=True)
        return left


def read_exec_stream(r):
    """Reads an exec NDJSON stream to its end: (stdout, stderr, exit, start)."""
    out, err = bytearray(), bytearray()
    ex = start = None
    for line in r:
        if not line.strip():
            continue
        check(ex is None, "exit is the last line", line[:200])
        ev = json.loads(line)
        t = ev.get("type")
        if t == "start":
            start = ev
        elif t in ("stdout", "stderr"):
            buf = out if t == "stdout" else err
            if "data" in ev and ev["data"] is not None:
                buf += ev["data"].encode("utf-8", "surrogatepass")
            else:
                buf += base64.b64decode(ev["data_b64"], validate=True)
        elif t == "exit":
            ex = ev
        else:
            raise Fail(f"unknown exec line type {t!r}")
    check(ex is not None, "the stream ends with an exit line", bytes(out[-200:]))
    return bytes(out), bytes(err), ex, start


class SSEParser:
    """Server-sent events from the lines of a stream: feed(line) takes one
    line (bytes, with its end of line) and returns the event a blank line
    completes, {"id", "event", "data"} (data parsed as JSON), or None."""

    def __init__(self):
        self.cur = {"data": []}

    def feed(self, line):
        line = line.rstrip(b"\r\n").decode()
        if line == "":
            cur, self.cur = self.cur, {"data": []}
            if not cur["data"]:
                return None
            return {"id": cur.get("id"), "event": cur.get("event", "message"),
                    "data": json.loads("\n".join(cur["data"]))}
        if not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self.cur["data"].append(value)
            elif name in ("id", "event"):
                self.cur[name] = value
        return None


def sse_events(resp, count=None, until=None, deadline=30):
    """Reads server-sent events from `resp` (an http.client response) until
    `count` events were read or until(event) is true; returns the list of
    {"id", "event", "data"} (data parsed as JSON). Fails after `deadline`
    seconds."""
    events = []
    parser = SSEParser()
    end = time.monotonic() + deadline
    resp.fp.raw._sock.settimeout(deadline)
    while True:
        if time.monotonic() > end:
            raise Fail(f"events: not within {deadline}s; got {events}")
        line = resp.fp.readline()
        if not line:
            raise Fail(f"event stream ended; got {events}")
        ev = parser.feed(line)
        if ev:
            events.append(ev)
            if (count and len(events) >= count) or (until and until(ev)):
                return events


# -- what a session may leave behind ----------------------------------------

def cgroup_roots():
    roots = []
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if parts[2] in ("cgroup2", "cgroup"):
                roots.append(parts[1])
    return roots


def _hexpart(sid):
    return sid[2:] if sid.startswith("s_") else sid


def session_cgroups(ids):
    """Cgroup dirs (any v1 or v2 hierarchy) whose name holds one of the
    session ids."""
    found = []
    keys = [_hexpart(i) for i in ids]
    if not keys:
        return found
    for root in cgroup_roots():
        for dirpath, dirnames, _ in os.walk(root):
            for d in dirnames:
                if any(k in d for k in keys):
                    found.append(os.path.join(dirpath, d))
    return found


def session_processes(ids):
    """Host pids whose cgroup path names one of the session ids."""
    keys = [_hexpart(i) for i in ids]
    pids = []
    if not keys:
        return pids
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cgroup") as f:
                cg = f.read()
        except OSError:
            continue
        if any(k in cg for k in keys):
            pids.append(int(p))
    return pids


def session_mounts(ids, state_dir):
    keys = [_hexpart(i) for i in ids]
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            mp = line.split()[1]
            if mp.startswith(state_dir + "/") or any(k in mp for k in keys):
                found.append(mp)
    return found


def pgrep_children(parent, name):
    """Pids of the children of `parent` named `name` (comm, exact)."""
    r = subprocess.run(["pgrep", "-P", str(parent), "-x", name], stdout=subprocess.PIPE,
                       text=True)
    return [int(p) for p in r.stdout.split()]


def init_pid(sid):
    """Host pid of the session's airlock-init (pid 1 of its pid namespace)."""
    for pid in session_processes([sid]):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("NSpid:"):
                        ns = line.split()[1:]
                        if len(ns) > 1 and ns[-1] == "1":
                            return pid
        except OSError:
            continue
    return None


def leftovers(ids, state_dir, wait=10):
    """What the sessions `ids` left: processes, cgroups, mounts. Waits up to
    `wait` seconds for teardown in progress to finish."""
    def scan():
        return ([f"process {p}" for p in session_processes(ids)] +
                [f"cgroup {c}" for c in session_cgroups(ids)] +
                [f"mount {m}" for m in session_mounts(ids, state_dir)])
    end = time.monotonic() + wait
    left = scan()
    while left and time.monotonic() < end:
        time.sleep(0.1)
        left = scan()
    return left


def cleanup(ids, state_dir):
    """Removes what a failed test left, so the next one starts clean."""
    for _ in range(50):
        pids = session_processes(ids)
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    for m in sorted(session_mounts(ids, state_dir), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
    for c in sorted(session_cgroups(ids), key=len, reverse=True):
        for dirpath, dirnames, _ in os.walk(c, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def thread(fn, *args):
    """Runs fn(*args) in a thread; .result() joins and returns or re-raises."""
    box = {}

    def run():
        try:
            box["v"] = fn(*args)
        except BaseException as e:  # noqa: B902 - re-raised in result()
            box["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()

    class H:
        def result(self, timeout=300):
            t.join(timeout)
            if t.is_alive():
                raise Fail("thread did not finish")
            if "e" in box:
                raise box["e"]
            return box.get("v")
    return H()


def run_guarded(name, body, finish, logs):
    """Runs the test `name`: body(), then (always) finish(), which tears
    down and returns what was left behind (a list). Prints "ok: NAME", or
    the failure (a Fail's message or the traceback), the leftovers and
    logs() (a list of (title, text), read after finish). Returns the exit
    status for the test: 0 or 1, or what body() returned when not None
    (e.g. SKIP; then nothing is printed)."""
    failed = False
    try:
        rc = body()
        if rc is not None:
            return rc
    except Fail as e:
        print(f"FAIL: {name}: {e}", flush=True)
        failed = True
    except Exception:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        failed = True
    finally:
        left = finish()
        if left:
            print(f"FAIL: {name}: left behind: {left[:20]}")
            failed = True
        if failed:
            for title, text in logs():
                print(f"--- {title} ---")
                print(text)
    if failed:
        return 1
    print(f"ok: {name}")
    return 0


def run_case(d, name, case, cleanup=None):
    """Runs one test case against the daemon `d` (started here, with the
    standard users), checks it stayed healthy and left nothing behind, then
    calls `cleanup` (if any). Prints "ok: NAME" or the failure and the
    daemon's log; returns the exit status for the test (0 or 1)."""
    def body():
        d.start()
        d.standard_users()
        case(d)
        d.healthy()

    def finish():
        left = d.teardown()
        if cleanup:
            cleanup()
        return left

    return run_guarded(name, body, finish, lambda: [("airlockd log (tail)", d.final_log)])
