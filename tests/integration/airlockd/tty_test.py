#!/usr/bin/env python3
"""Terminals in sessions against the real airlockd (docs/api.md, "Terminals"):
exec with "tty", the resize route, the WebSocket GET …/processes/{pid}/tty
and `airlock session shell` run under a real pseudo-terminal.

usage: tty_test.py AIRLOCKD AIRLOCK_SESSION CASE

Each case starts its own daemon (harness.Daemon) with alice, bob and an
admin, and checks at teardown that nothing was left behind. No timing
assertions: waits are bounded only so that a hang fails instead of
blocking ctest. Exit 0 pass, 1 fail, 77 skip."""

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SKIP, Daemon, Fail, check, run_case  # noqa: E402
from wsclient import BINARY, CLOSE, CONT, PING, PONG, TEXT, WS, Refused  # noqa: E402

CASES = {}
CLIENT = None
WAIT = 60  # seconds a step may take before the case fails as hung


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def start_tty(d, sid, argv, rows=24, cols=80, key="alice", background=True, env=None):
    """Starts argv on a terminal; returns the process id ("p_N")."""
    body = {"argv": argv, "tty": {"rows": rows, "cols": cols}, "background": background,
            "env": env or {"TERM": "xterm"}}
    r = d.post(f"/v1/sessions/{sid}/exec", body, key=key)
    check(r.status == 202, "exec with tty answers 202", r)
    check(r.json["tty"] is True and r.json["output"] is None, "the process is on a terminal", r)
    return r.json["id"]


def attach(d, sid, pid, key="alice", **kw):
    return WS(d.port, f"/v1/sessions/{sid}/processes/{pid}/tty",
              auth=d.keys.get(key, key) if key else None, **kw)


def refused(fn, status, what):
    try:
        w = fn()
    except Refused as e:
        check(e.status == status, f"{what}: HTTP {status}", (e.status, e.body[:300]))
        return e
    w.close()
    raise Fail(f"{what}: the WebSocket was accepted")


def expect_close(w, code, what):
    """Reads until the server's close frame; it carries `code`."""
    w.sock.settimeout(WAIT)
    out, _, closed = w.read_to_close()
    check(closed is not None and closed[0] == code, f"{what}: close {code}", (closed, out[-200:]))


@case
def tty_websocket(d):
    """A shell on a terminal over the WebSocket: a real /dev/pts of the
    sandbox, the size given at start and changed by a text frame and by the
    resize route, job control, the exit status in the last frames."""
    sid = d.create()
    pid = start_tty(d, sid, ["bash", "--norc", "-i"], rows=33, cols=101)
    w = attach(d, sid, pid)
    w.sock.settimeout(WAIT)
    w.send_bytes(b"tty; stty size; echo M$((1+1))\r")
    out = w.read_until(b"M2\r\n")
    check(re.search(rb"/dev/pts/\d+\r\n33 101\r\n", out), "tty names /dev/pts/N; 33x101", out)
    w.send_text(json.dumps({"resize": {"rows": 40, "cols": 120}}))
    w.send_bytes(b"stty size; echo M$((2+1))\r")
    check(b"40 120\r\n" in w.read_until(b"M3\r\n"), "a text frame resizes", None)
    r = d.post(f"/v1/sessions/{sid}/processes/{pid}/resize", {"rows": 50, "cols": 132})
    check(r.status == 200, "POST resize", r)
    w.send_bytes(b"stty size; echo M$((3+1))\r")
    check(b"50 132\r\n" in w.read_until(b"M4\r\n"), "the resize route resizes", None)
    w.send_bytes(b"sleep 100 &\rjobs; echo M$((4+1))\r")
    out = w.read_until(b"M5\r\n")
    check(re.search(rb"\[1\]\+ +Running +sleep 100 &", out), "job control: jobs lists it", out)
    # a fragmented binary message with a ping between its fragments
    w.send_frame(BINARY, b"kill %1; ec", fin=False)
    w.send_frame(PING, b"hi")
    w.send_frame(CONT, b"ho M$((5+1)); exit 7\r", fin=True)
    out, ex, closed = w.read_to_close()
    check(b"M6" in out, "fragments joined", out[-300:])
    check(ex == {"code": 7, "signal": None, "reason": "exited"}, "exit frame", ex)
    check(closed == (1000, "exit 7"), "close 1000 with the status", closed)
    p = d.get(f"/v1/sessions/{sid}/processes/{pid}").json
    check(p["state"] == "exited" and p["exit"]["code"] == 7, "listed exited, code 7", p)
    refused(lambda: attach(d, sid, pid), 409, "an exited process's terminal")
    # a command over before anyone attached: its first reader still gets
    # what it wrote and its status; nobody after
    pid = start_tty(d, sid, ["sh", "-c", "echo early-bird; exit 5"])
    wait_exit(d, sid, pid)
    w = attach(d, sid, pid)
    w.sock.settimeout(WAIT)
    out, ex, closed = w.read_to_close()
    check(b"early-bird" in out and ex["code"] == 5 and closed == (1000, "exit 5"),
          "a late first reader gets the output and the exit", (out, ex, closed))
    refused(lambda: attach(d, sid, pid), 409, "a second reader of an exited terminal")


@case
def tty_websocket_auth(d):
    """Only the session's owner (or an admin) reaches a terminal: a missing
    or wrong key is 401, another user's session 404; the key may come as a
    Sec-WebSocket-Protocol (for browsers)."""
    sid = d.create()
    pid = start_tty(d, sid, ["cat"])
    refused(lambda: attach(d, sid, pid, key=None), 401, "no key")
    refused(lambda: attach(d, sid, pid, key="alk_" + "0" * 40), 401, "an unknown key")
    refused(lambda: WS(d.port, f"/v1/sessions/{sid}/processes/{pid}/tty",
                       protocols=["airlock.v1", "airlock.bearer.alk_nope"]), 401,
            "an unknown key as a protocol")
    refused(lambda: attach(d, sid, pid, key="bob"), 404, "bob on alice's session")
    bob_sid = d.create(key="bob")
    refused(lambda: attach(d, bob_sid, pid, key="bob"), 404, "alice's process under bob's session")
    # not a process on a terminal
    r = d.post(f"/v1/sessions/{sid}/exec", {"argv": ["sleep", "100"], "background": True})
    refused(lambda: attach(d, sid, r.json["id"]), 409, "a process without a terminal")
    # the key as a protocol works, and the chosen protocol is echoed
    w = WS(d.port, f"/v1/sessions/{sid}/processes/{pid}/tty",
           protocols=["airlock.v1", "airlock.bearer." + d.keys["alice"]])
    check(w.headers.get("sec-websocket-protocol") == "airlock.v1", "protocol echoed", w.headers)
    # one reader at a time
    refused(lambda: attach(d, sid, pid, key="root-admin"), 409, "a second reader")
    w.sock.settimeout(WAIT)
    w.send_bytes(b"ping\r")
    check(b"ping" in w.read_until(b"ping\r\n"), "cat echoes", None)
    w.close()
    # the client went away: the terminal hangs up (SIGHUP), cat ends
    wait_exit(d, sid, pid)
    r = d.get(f"/v1/sessions/{sid}/processes/{pid}").json
    check(r["exit"]["signal"] == signal.SIGHUP, "hung up", r)
    # a plain GET (no upgrade) and a bad version
    r = d.get(f"/v1/sessions/{sid}/processes/{pid}/tty")
    check(r.status == 400, "a GET without the handshake is 400", r)


def wait_exit(d, sid, pid):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        p = d.get(f"/v1/sessions/{sid}/processes/{pid}").json
        if p["state"] == "exited":
            return p
        time.sleep(0.1)
    raise Fail(f"{pid} did not exit")


@case
def tty_websocket_frames(d):
    """Frames a client must not send close the connection with 1002
    (unmasked, reserved bits, fragmented control frame, continuation of
    nothing) or 1009 (over 64 KiB, refused from the header), a bad text
    message with 1007; the terminal is hung up each time."""
    sid = d.create()
    attacks = [
        ("an unmasked frame", lambda w: w.send_frame(BINARY, b"echo owned\r", mask=False), 1002),
        ("an oversized frame",
         lambda w: w.send_frame(BINARY, b"x" * 16, claim_len=1 << 20), 1009),
        ("an oversized frame, 64-bit length",
         lambda w: w.send_frame(BINARY, b"", claim_len=1 << 40), 1009),
        ("reserved bits", lambda w: w.send_frame(BINARY, b"x", rsv=4), 1002),
        ("a fragmented ping", lambda w: w.send_frame(PING, b"x", fin=False), 1002),
        ("a continuation of nothing", lambda w: w.send_frame(CONT, b"x"), 1002),
        ("a text message that is not a resize", lambda w: w.send_text('{"rows": 1}'), 1007),
        ("a resize out of range",
         lambda w: w.send_text('{"resize": {"rows": 0, "cols": 80}}'), 1007),
    ]
    for what, attack, code in attacks:
        pid = start_tty(d, sid, ["cat"])
        w = attach(d, sid, pid)
        attack(w)
        expect_close(w, code, what)
        w.close()
        p = wait_exit(d, sid, pid)
        check(p["exit"]["signal"] == signal.SIGHUP, f"{what}: the terminal hung up", p)
    # a frame just under the limit is fine
    # (not before the terminal is out of canonical mode, whose line buffer
    # would drop what is past 4 KiB without a newline)
    pid = start_tty(d, sid, ["sh", "-c", "stty -icanon -echo; echo ready;"
                                         " head -c 65536 >/dev/null; echo got"])
    w = attach(d, sid, pid)
    w.sock.settimeout(WAIT)
    w.read_until(b"ready\r\n")
    w.send_frame(BINARY, b"y" * 65536)
    out, ex, closed = w.read_to_close()
    check(b"got" in out and ex and ex["code"] == 0, "a 64 KiB frame goes through", (out[-100:], ex))


@case
def tty_exec_foreground(d):
    """A foreground exec on a terminal streams stdout and stderr as one
    stream, from a terminal; body errors are 400."""
    sid = d.create()
    st, out, err, ex, _ = d.exec(sid, argv=["sh", "-c", "tty; stty size; echo e >&2; exit 4"],
                                 tty={"rows": 12, "cols": 34})
    check(re.match(rb"/dev/pts/\d+\r\n12 34\r\ne\r\n$", out) and err == b"",
          "one stream from a terminal", (out, err))
    check(ex["code"] == 4, "exit 4", ex)
    for bad, field in [({"rows": 0, "cols": 1}, "tty.rows"), ({"rows": 1}, "tty.cols"),
                       ({"rows": 1, "cols": 4097}, "tty.cols"), ([24, 80], "tty"),
                       ({"rows": 1, "cols": 1, "x": 1}, "tty.x")]:
        r = d.post(f"/v1/sessions/{sid}/exec", {"argv": ["true"], "tty": bad})
        check(r.status == 400 and r.json["error"].get("field") == field, f"tty {bad}", r)
    r = d.post(f"/v1/sessions/{sid}/exec",
               {"argv": ["true"], "tty": {"rows": 1, "cols": 1}, "stdin": "x"})
    check(r.status == 400, "tty with stdin", r)
    r = d.post(f"/v1/sessions/{sid}/exec", {"argv": ["sleep", "100"], "background": True})
    r = d.post(f"/v1/sessions/{sid}/processes/{r.json['id']}/resize", {"rows": 1, "cols": 1})
    check(r.status == 409, "resizing a process without a terminal", r)
    r = d.post(f"/v1/sessions/{sid}/processes/p_999/resize", {"rows": 1, "cols": 1})
    check(r.status == 404, "resizing no process", r)


@case
def tty_restart(d):
    """A terminal's master goes with the airlockd that started the command:
    after a restart the process is listed (tty true) but its terminal is
    409; it can still be signalled, and its end is recorded."""
    sid = d.create()
    pid = start_tty(d, sid, ["sleep", "300"])
    d.proc.send_signal(signal.SIGTERM)
    check(d.proc.wait(60) == 0, "airlockd exits 0")
    d.logf.close()
    d.start()
    p = d.get(f"/v1/sessions/{sid}/processes/{pid}").json
    check(p["tty"] is True and p["state"] == "running", "re-adopted, on a terminal", p)
    e = refused(lambda: attach(d, sid, pid), 409, "a terminal of the old daemon")
    check(b"went with the airlockd" in e.body, "says why", e.body)
    r = d.post(f"/v1/sessions/{sid}/processes/{pid}/signal", {"signal": "KILL"})
    check(r.status == 200, "still signalled", r)
    p = wait_exit(d, sid, pid)
    check(p["exit"]["signal"] == signal.SIGKILL, "its end recorded", p)


class Pty:
    """`airlock session shell` on a real pseudo-terminal of ours."""

    def __init__(self, d, args, rows=30, cols=90, key="alice"):
        env = dict(os.environ, AIRLOCK_URL=d.url, AIRLOCK_API_KEY=d.keys.get(key, key),
                   TERM="xterm")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(CLIENT, [CLIENT] + args, env)
        self.resize(rows, cols)
        self.out = b""

    def resize(self, rows, cols):
        # the kernel sends SIGWINCH to the client, our pty's foreground group
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def send(self, data):
        os.write(self.fd, data)

    def expect(self, pattern):
        """Reads until `pattern` (bytes regex) matches the output since the
        last expect; returns the match."""
        deadline = time.monotonic() + WAIT
        while True:
            m = re.search(pattern, self.out)
            if m:
                self.out = self.out[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fail(f"no {pattern!r} in the shell's output: {self.out[-500:]!r}")
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise Fail(f"the shell ended before {pattern!r}: {self.out[-500:]!r}")
                self.out += chunk

    def lflag(self):
        """Our terminal's local modes (the client's view of its terminal)."""
        return termios.tcgetattr(self.fd)[3]

    def wait(self):
        """The client's exit status; self.restored: our terminal is back in
        canonical mode with echo (raw mode undone) once it exited."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                os.read(self.fd, 65536)
            except OSError:
                pass
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                lf = self.lflag()
                self.restored = bool(lf & termios.ICANON and lf & termios.ECHO)
                os.close(self.fd)
                return os.waitstatus_to_exitcode(st)
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        raise Fail("airlock session shell did not exit")


@case
def shell_cli(d):
    """`airlock session shell SID` under a real terminal: a pts of the
    sandbox, our size and its changes, job control, ^C reaching the remote
    foreground job, the exit status passed through; our terminal's mode
    restored afterwards."""
    sid = d.create()
    t = Pty(d, ["shell", sid], rows=30, cols=90)
    t.expect(rb"\$ ")  # the login shell's prompt: raw mode is on by now
    t.send(b"tty; stty size; echo M$((1+1))\r")
    m = t.expect(rb"(/dev/pts/\d+)\r\n(\d+ \d+)\r\nM2")
    check(m.group(2) == b"30 90", "stty size is ours", m.group(0))
    t.resize(44, 111)
    # the resize travels as a message: ask until the shell sees it
    for i in range(200):
        t.send(b"stty size; echo R$((%d+1))\r" % i)
        m = t.expect(rb"(\d+ \d+)\r\nR%d" % (i + 1))
        if m.group(1) == b"44 111":
            break
    check(m.group(1) == b"44 111", "stty size follows a resize", m.group(0))
    t.send(b"sleep 100 &\r")
    t.send(b"jobs; echo J$((1+1))\r")
    t.expect(rb"\[1\]\+ +Running +sleep 100 &.*\r\nJ2")
    # ^C goes raw to the remote terminal, whose foreground job gets SIGINT
    # (once READY is out, the job owns the terminal and its trap is set)
    t.send(b"sh -c 'trap \"exit 130\" INT; echo READY; while :; do sleep 1; done';"
           b" echo after-int $?\r")
    t.expect(rb"\rREADY\r\n")
    t.send(b"\x03")
    t.expect(rb"after-int 130")
    lf = t.lflag()
    check(not lf & termios.ICANON and not lf & termios.ECHO, "raw while it runs", lf)
    t.send(b"kill %1; exit 42\r")
    rc = t.wait()
    check(rc == 42, "the remote exit status is ours", rc)
    check(t.restored, "our terminal's mode restored", None)
    # killed: our terminal restored, 128+15, the remote shell hung up
    t = Pty(d, ["shell", sid])
    t.expect(rb"\$ ")
    t.send(b"echo $$; echo P$((1+1))\r")
    remote_pid = int(t.expect(rb"\r(\d+)\r\nP2").group(1))
    procs = d.get(f"/v1/sessions/{sid}/processes").json["processes"]
    mine = [p for p in procs if p["pid"] == remote_pid and p["state"] == "running"]
    check(len(mine) == 1, "the shell is listed running", procs)
    os.kill(t.pid, signal.SIGTERM)
    check(t.wait() == 128 + signal.SIGTERM, "SIGTERM: 143", None)
    check(t.restored, "our terminal's mode restored after SIGTERM", None)
    p = wait_exit(d, sid, mine[0]["id"])
    check(p["exit"]["signal"] == signal.SIGHUP, "the remote shell got SIGHUP", p)
    # with a command
    t = Pty(d, ["shell", sid, "--", "sh", "-c", "test -t 0 && tty && exit 3"])
    t.expect(rb"/dev/pts/\d+")
    check(t.wait() == 3, "shell -- CMD: its status", None)


@case
def shell_cli_no_tty(d):
    """Without a local terminal, shell refuses and says what to use."""
    import subprocess
    sid = d.create()
    env = dict(os.environ, AIRLOCK_URL=d.url, AIRLOCK_API_KEY=d.keys["alice"])
    r = subprocess.run([CLIENT, "shell", sid], stdin=subprocess.DEVNULL, capture_output=True,
                       env=env, timeout=WAIT)
    check(r.returncode == 2 and b"needs a terminal" in r.stderr, "refused", r)
    # another user's session: the API's 404, nothing started
    t = Pty(d, ["shell", sid], key="bob")
    t.expect(rb"404")
    check(t.wait() == 1, "404 exits 1", None)


def main():
    global CLIENT
    if len(sys.argv) != 4 or sys.argv[3] not in CASES:
        print(f"usage: {sys.argv[0]} AIRLOCKD AIRLOCK_SESSION CASE\ncases: {' '.join(CASES)}",
              file=sys.stderr)
        return 2
    binary, CLIENT, name = sys.argv[1:]
    if not os.access(binary, os.X_OK):
        print(f"SKIP: {binary} is not built")
        return SKIP
    d = Daemon(binary, {}, name=name)
    return run_case(d, name, CASES[name])


if __name__ == "__main__":
    sys.exit(main())
