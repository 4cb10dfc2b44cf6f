"""Plays airlockd's side of the control protocol (docs/control-protocol.md)
for the proxy integration tests: starts a proxy with --control on one end of
a socketpair, hands it listening sockets with SCM_RIGHTS, sends requests and
collects acks and events."""
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
import procmem  # noqa: E402

WAIT = 60  # seconds before a missing answer counts as a hang (not a timing assertion)

PASSES = 0
FAILS = 0


def check(name, ok, detail=""):
    global PASSES, FAILS
    if ok:
        PASSES += 1
        print("PASS: " + name, flush=True)
    else:
        FAILS += 1
        print("FAIL: " + name + (("\n    | " + str(detail).replace("\n", "\n    | ")) if detail else ""),
              flush=True)


def finish(what):
    print("%s: %d passed, %d failed" % (what, PASSES, FAILS), flush=True)
    sys.exit(1 if FAILS else 0)


def listener():
    """A listening TCP socket on 127.0.0.1 (any port) and its port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s, s.getsockname()[1]


def frame(msg):
    body = json.dumps(msg, separators=(",", ":")).encode()
    return struct.pack(">I", len(body)) + body


class Proxy:
    def __init__(self, argv, log_path):
        self.sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv + ["--control", str(child.fileno())],
                                     pass_fds=[child.fileno()], stdout=self.log,
                                     stderr=self.log)
        child.close()
        self.seq = 0
        self.events = []
        self.buf = b""
        self.hello = self.next_message()

    # ---- raw frames ----
    def send_raw(self, data, fds=()):
        if fds:
            n = socket.send_fds(self.sock, [data], [f.fileno() if hasattr(f, "fileno") else f
                                                   for f in fds])
            if n < len(data):
                self.sock.sendall(data[n:])
        else:
            self.sock.sendall(data)

    def send(self, msg, fds=()):
        msg = dict(msg)
        msg["v"] = 1
        if fds:
            msg["fds"] = len(fds)
        self.send_raw(frame(msg), fds)

    def _read(self, n):
        while len(self.buf) < n:
            r, _, _ = select.select([self.sock], [], [], WAIT)
            if not r:
                raise TimeoutError("no answer from the proxy")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("control socket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def next_message(self):
        (n,) = struct.unpack(">I", self._read(4))
        msg = json.loads(self._read(n))
        assert msg.get("v") == 1, msg
        return msg

    # ---- requests ----
    def request(self, type_, fds=(), **fields):
        """Sends a request and returns its ack; events seen meanwhile are kept."""
        self.seq += 1
        seq = self.seq
        msg = dict(fields, type=type_, seq=seq)
        self.send(msg, fds)
        return self.wait_ack(seq)

    def wait_ack(self, seq):
        while True:
            m = self.next_message()
            if m["type"] == "ack" and m.get("seq") == seq:
                return m
            if m["type"] == "event":
                self.events.append(m)

    def wait_event(self, pred):
        """Returns the first event (already seen or arriving) for which pred is true."""
        deadline = time.time() + WAIT
        while True:
            for i, e in enumerate(self.events):
                if pred(e):
                    return self.events.pop(i)
            if time.time() > deadline:
                return None
            try:
                m = self.next_message()
            except (TimeoutError, EOFError):
                return None
            if m["type"] == "event":
                self.events.append(m)

    def pump(self):
        """Collects events that have already arrived, without waiting."""
        while select.select([self.sock], [], [], 0)[0]:
            try:
                m = self.next_message()
            except EOFError:
                return
            if m["type"] == "event":
                self.events.append(m)

    def exit_status(self):
        try:
            return self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            return None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.sock.close()

    def close(self):
        self.sock.close()
        rc = self.exit_status()
        if rc is None:
            self.proc.kill()
        return rc


proc_status = procmem.status


def runs_as_nobody(pid):
    st = proc_status(pid)
    return (st["Uid"] == ["65534"] * 4 and st["Gid"][0] != "0" and st["Groups"] == []
            and st["NoNewPrivs"] == ["1"] and int(st["CapEff"][0], 16) == 0
            and int(st["CapPrm"][0], 16) == 0), st


def malformed_cases(start, name):
    """Each malformed frame on a fresh proxy: it must answer with an error ack
    and live on, or exit cleanly (status 1, no signal, nothing from ASan)."""
    cases = [
        ("garbage", b"\x00\x00\x00\x05hello", None),
        ("oversized", struct.pack(">I", (1 << 20) + 1) + b"{", None),
        ("zero_length", b"\x00\x00\x00\x00", None),
        ("not_an_object", frame([1, 2, 3]), None),
        ("wrong_version", frame({"v": 2, "type": "session_add", "seq": 1}), None),
        ("fds_missing", frame({"v": 1, "type": "session_add", "seq": 1, "session": "x", "fds": 2,
                               "listeners": [{"kind": "git", "fd": 0}]}), None),
    ]
    for label, data, _ in cases:
        p = start()
        p.send_raw(data)
        rc = p.exit_status()
        log = open(p.log.name, "rb").read().decode(errors="replace")
        check("%s_malformed_%s_exits_cleanly" % (name, label),
              rc == 1 and "AddressSanitizer" not in log and "runtime error" not in log,
              "exit status %s\n%s" % (rc, log[-2000:]))
        p.sock.close()
    # Semantic errors are answered and the proxy carries on.
    p = start()
    lst, _ = listener()
    bad = [
        ("unknown_type", dict(type_="frobnicate")),
        ("bad_session_id", dict(type_="session_add", session="../x", listeners=[])),
        ("wrong_field_types", dict(type_="session_add", session=7, listeners="x")),
        ("fd_index_out_of_range", dict(type_="session_add", session="s-bad",
                                       listeners=[{"kind": "git", "fd": 3}])),
        ("fd_not_listening", dict(type_="session_add", session="s-bad", fds=[p.sock.fileno()],
                                  listeners=[{"kind": "git", "fd": 0}])),
    ]
    for label, kw in bad:
        t = kw.pop("type_")
        fds = kw.pop("fds", ())
        ack = p.request(t, fds=fds, **kw)
        check("%s_error_ack_%s" % (name, label), ack["ok"] is False and ack.get("error"), ack)
    p.send({"type": "session_remove", "session": "s-x"})  # no seq
    m = p.next_message()
    check("%s_error_ack_without_seq" % name,
          m["type"] == "ack" and m["seq"] is None and m["ok"] is False, m)
    check("%s_survives_bad_requests" % name, p.proc.poll() is None)
    rc = p.close()
    log = open(p.log.name, "rb").read().decode(errors="replace")
    check("%s_exits_0_when_control_closes" % name,
          rc == 0 and "AddressSanitizer" not in log, "status %s\n%s" % (rc, log[-1500:]))
    lst.close()


def control_path_case(argv, log_path, name):
    """--control-path: the proxy connects to the daemon's socket, says hello,
    answers, and exits 0 when the daemon closes the connection."""
    import tempfile
    d = tempfile.mkdtemp(prefix="airlock-ctl.", dir="/var/tmp")
    path = os.path.join(d, "ctl.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    log = open(log_path, "ab")
    proc = subprocess.Popen(argv + ["--control-path", path], stdout=log, stderr=log)
    srv.settimeout(WAIT)
    try:
        conn, _ = srv.accept()
    except OSError:
        conn = None
    ok = False
    detail = ""
    if conn:
        p = Proxy.__new__(Proxy)
        p.sock, p.buf, p.events, p.seq, p.proc, p.log = conn, b"", [], 0, proc, log
        try:
            hello = p.next_message()
            ack = p.request("hello")
            ok = hello["type"] == "hello" and hello["pid"] == proc.pid and ack["ok"]
            detail = (hello, ack)
        except (EOFError, TimeoutError, ValueError) as e:
            detail = e
        conn.close()
    try:
        rc = proc.wait(WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = None
    srv.close()
    os.unlink(path)
    os.rmdir(d)
    check("%s_control_path" % name, ok and rc == 0, (detail, rc))
