#!/usr/bin/env python3
"""`airlock run` on a real pseudo-terminal (issue 12, items 3 and 4): the
command's own terminal (tty, job control, window size, Ctrl-C, exit
status), the user's terminal out of its reach, and the network questions
airlock owns (y / a / n, "always" read back, a reading child, a spinner,
the timeout line, mode "regular").

    run_pty_test.py AIRLOCK CASE
"""
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import termios
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ptydrive import Term  # noqa: E402

AIRLOCK = os.path.abspath(sys.argv[1])
CASE = sys.argv[2]
QUESTION = rb"airlock: allow network access to ask\.test:%d\? \[y\]es/\[a\]lways/\[N\]o "


def fail(msg, term=None):
    if term is not None:
        msg += "\noutput:\n%r" % term.out
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


# ---- scratch: a workspace as cwd, a fake HOME, settings ------------------
TMPD = tempfile.mkdtemp(prefix="airlock-pty.")
WS = os.path.join(TMPD, "ws")
HOME = os.path.join(TMPD, "home")
os.makedirs(WS)
os.makedirs(os.path.join(HOME, ".config", "airlock"))
os.chdir(WS)
ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": HOME,
    "AIRLOCK_CONFIG_DIR": os.path.join(HOME, ".config", "airlock"),
    "TERM": "xterm",
    "LANG": "C",
    "PS1": "PROMPT$ ",
}


def airlock(*args, **kw):
    return Term([AIRLOCK, "run"] + list(args), env=ENV, **kw)


# ---- a local HTTP upstream, reached through the proxy --------------------
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from upstream\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def upstream():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def net_settings():
    # No allowedDomains: ask.test is in neither list, so airlock asks.
    with open("net.json", "w") as f:
        json.dump({"sandbox": {"network": {"allowedAddresses": ["127.0.0.1/32"]}}}, f)
    return ["--settings", "net.json", "--add-host", "ask.test=127.0.0.1"]


def curl(port):
    return ["curl", "-sS", "http://ask.test:%d/" % port]


# ---- the terminal ----------------------------------------------------------
def case_tty_name():
    t = airlock("--", "sh", "-c", "tty; readlink /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2")
    code = t.exit_code()
    if code != 0:
        fail("exit status %d" % code, t)
    if b"not a tty" in t.out or not re.search(rb"^/dev/pts/\d+\r\n(/dev/pts/\d+\r\n){3}", t.out, re.M):
        fail("`tty` and the std descriptors do not name the sandbox's /dev/pts/N", t)


def case_job_control():
    t = airlock("--pass-env", "PS1", "--", "bash", "--norc", "--noprofile", "-i")
    t.expect(rb"PROMPT\$ ")
    t.send("sleep 100 &\r")
    t.expect(rb"\[1\] \d+")
    t.send("jobs\r")
    t.expect(rb"\[1\]\+ +Running +sleep 100")
    t.send("fg\r")
    t.expect(rb"fg\r\n(\x1b\[\?2004l)?\r?sleep 100\r\n")
    # ^Z reaches the job once bash gave it the terminal: until then bash
    # ignores it; so type it until the job stops.
    for _ in range(30):
        t.send(b"\x1a")
        try:
            t.expect(rb"Stopped +sleep 100", timeout=2)
            break
        except AssertionError:
            pass
    t.expect(rb"Stopped +sleep 100")
    mark = len(t.out)
    t.send("kill -KILL %1; wait; echo killed-$?\r")
    t.expect(rb"killed-\d+", start=mark)
    # Now and then (a few times in CI, 3 runs in 5 on a loaded box) bash's
    # `wait` still finds the job stopped ("warning: job 1[3] stopped") and
    # `exit` answers "There are stopped jobs."; a second `exit` is bash's
    # own way out (it hangs up the stopped job). Cause not found yet: see
    # the issue 15 stop note.
    mark = len(t.out)
    t.send("exit 7\r")
    try:
        t.expect(rb"There are stopped jobs", start=mark, timeout=5)
        t.send("exit 7\r")
    except AssertionError:
        pass  # bash exited at once
    code = t.exit_code()
    if code != 7:
        fail("exit status %d, expected bash's 7" % code, t)
    for bad in (b"cannot set terminal process group", b"no job control"):
        if bad in t.out:
            fail("bash said %r" % bad, t)


def case_window_size():
    t = airlock("--", "sh", "-c", "stty size; while read x; do stty size; done")
    t.expect(rb"24 80\r\n")
    t.set_size(33, 101)
    mark = len(t.out)
    for _ in range(30):
        t.send("\r")
        try:
            t.expect(rb"33 101\r\n", timeout=2, start=mark)
            break
        except AssertionError:
            pass
    t.expect(rb"33 101\r\n", start=mark)
    t.send(b"\x04")
    code = t.exit_code()
    if code != 0:
        fail("exit status %d" % code, t)


def case_ctrl_c():
    t = airlock("--", "sh", "-c", "echo ready; exec sleep 100")
    t.expect(rb"ready\r\n")
    t.send(b"\x03")
    code = t.exit_code()  # fails if airlock itself died of the signal
    if code != 130:
        fail("exit status %d, expected 130 (the command killed by SIGINT)" % code, t)


def case_exit_status():
    for cmd, want in (("exit 42", 42), ("kill -TERM $$", 143), ("exit 0", 0)):
        t = airlock("--", "sh", "-c", cmd)
        code = t.exit_code()
        if code != want:
            fail("%s: exit status %d, expected %d" % (cmd, code, want), t)
        t.close()


def case_background_fg():
    # `airlock run ... &` from an interactive shell: stopped until `fg`,
    # then the command gets the keys, and the shell its modes back.
    t = Term(["bash", "--norc", "--noprofile", "-i"], env=ENV)
    t.expect(rb"PROMPT\$ ")
    t.send("%s run -- sh -c 'echo st\"\"arted; read x; echo got-$x' &\r" % AIRLOCK)
    t.send("sleep 1; jobs\r")
    t.expect(rb"\[1\]\+ +Stopped")
    t.send("fg\r")
    t.expect(rb"started\r\n")
    t.send("hello\r")
    mark = t.expect(rb"got-hello\r\n").end()
    mark = t.expect(rb"PROMPT\$ ", start=mark).end()
    t.send("stty -a | grep -o -e '-*icanon' -e '-*echo ' | tr '\\n' ,; echo\r")
    t.expect(rb"\ricanon,echo ,\r\n", start=mark)
    t.send("exit\r")
    t.wait()


# What the command tries on every terminal it holds: inject input, change
# the modes, change the size.
ATTACK = r"""
import fcntl, os, struct, termios
fds = [0, 1, 2]
try:
    fds.append(os.open("/dev/tty", os.O_RDWR))
except OSError as e:
    print("open /dev/tty:", e)
for fd in fds:
    for what, f in (
        ("TIOCSTI", lambda: [fcntl.ioctl(fd, termios.TIOCSTI, c) for c in b"echo INJECTED\n"]),
        ("TIOCSWINSZ", lambda: fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 11, 77, 0, 0))),
        ("tcsetattr", lambda: termios.tcsetattr(fd, termios.TCSANOW, [m if i != 3 else m & ~(termios.ECHO | termios.ICANON) for i, m in enumerate(termios.tcgetattr(fd))])),
    ):
        try:
            f()
            print(fd, what, "done")
        except OSError as e:
            print(fd, what, e.strerror)
print("attack over")
"""


def case_real_tty_untouched():
    t = airlock("--", "/usr/bin/python3", "-c", ATTACK)
    t.expect(rb"attack over")
    code = t.exit_code()
    if code != 0:
        fail("exit status %d" % code, t)
    if t.size() != (24, 80):
        fail("the sandbox changed the size of the user's terminal to %r" % (t.size(),), t)
    lflag = t.modes()[3]
    if not (lflag & termios.ECHO) or not (lflag & termios.ICANON):
        fail("the sandbox changed the modes of the user's terminal (lflag %#x)" % lflag, t)
    if t.pending_input():
        fail("%d bytes were pushed into the user's terminal's input" % t.pending_input(), t)


# ---- the questions ---------------------------------------------------------
def case_approve_yes():
    port = upstream()
    t = airlock(*net_settings(), "--", *curl(port))
    t.expect(QUESTION % port)
    t.send("y\r")
    t.expect(rb"hello from upstream")
    if t.exit_code() != 0:
        fail("curl failed after y", t)


def case_approve_no():
    port = upstream()
    t = airlock(*net_settings(), "--", *curl(port))
    t.expect(QUESTION % port)
    t.send("n\r")
    # The same what-to-add line as a policy refusal, on a line of its own.
    t.expect(rb"\r\nairlock: blocked network: ask\.test:%d \(not approved at the prompt\): "
             rb'add "ask\.test" to sandbox\.network\.allowedDomains in net\.json\r\n' % port)
    t.exit_code()
    if b"hello from upstream" in t.out:
        fail("the request went through after n", t)


def case_approve_always():
    port = upstream()
    args = net_settings()
    t = airlock(*args, "--", *curl(port))
    t.expect(QUESTION % port)
    t.send("a\r")
    t.expect(rb"hello from upstream")
    if t.exit_code() != 0:
        fail("curl failed after a", t)
    with open("settings.local.json") as f:
        local = json.load(f)
    entries = local["sandbox"]["network"]["allowedDomains"]
    if "ask.test:%d" % port not in entries:
        fail("settings.local.json beside net.json lacks the host: %r" % local)
    t.close()
    # The next identical run reads settings.local.json and does not ask.
    t = airlock(*args, "--", *curl(port))
    code = t.exit_code()
    if code != 0 or b"hello from upstream" not in t.out:
        fail("second run: exit status %d" % code, t)
    if b"allow network access" in t.out:
        fail("the second run asked again", t)


def case_child_reads_stdin():
    port = upstream()
    t = airlock(*net_settings(), "--", "sh", "-c",
                'curl -sS http://ask.test:%d/ & read line; echo "child got [$line]"; wait' % port)
    t.expect(QUESTION % port)
    t.send("y\r")
    t.expect(rb"hello from upstream")
    if b"child got" in t.out:
        fail("the child read the answer", t)
    t.send("typed later\r")
    t.expect(rb"child got \[typed later\]")
    if t.exit_code() != 0:
        fail("exit status", t)


def case_spinner():
    port = upstream()
    spin = (r'(curl -sS http://ask.test:%d/ >/dev/null; touch /tmp/done) & '
            r'i=0; while [ ! -e /tmp/done ]; do printf "\033[1G\033[0Kworking %%s" $i; '
            r'i=$((i+1)); sleep 0.05; done; echo; echo spinner-done') % port
    t = airlock(*net_settings(), "--", "sh", "-c", spin)
    t.expect(QUESTION % port)
    # The spinner would draw 20 frames a second; whatever it does while the
    # question is up, the question must stay the last thing on the line.
    t.read_for(2)
    last_q, last_clear = t.out.rfind(b"allow network access"), t.out.rfind(b"\x1b[0K")
    if last_clear > last_q:
        fail("a spinner frame cleared the line after the question", t)
    t.send("y\r")
    t.expect(rb"spinner-done")
    t.exit_code()


def case_timeout_line():
    port = upstream()
    t = airlock("--ask-timeout", "2", *net_settings(), "--", *curl(port))
    t.expect(QUESTION % port)
    t.expect((QUESTION % port) + rb"\r\nairlock: no answer in 2 s: denied\r\n")
    t.expect(rb"\r\nairlock: blocked network: ask\.test:%d \(not approved at the prompt\): "
             rb'add "ask\.test"' % port)
    t.exit_code()


def case_timeout_line_no_pty():
    port = upstream()
    t = airlock("--no-pty", "--ask-timeout", "2", *net_settings(), "--", *curl(port))
    t.expect(rb"airlock: allow network access to ask\.test:%d\? \[y\]es/\[a\]lways/\[N\]o "
             rb"\r\nairlock: no answer in 2 s: denied\r\n" % port)
    t.exit_code()


def case_regular_prompt():
    with open("regular.json", "w") as f:
        json.dump({"sandbox": {"mode": "regular"}}, f)
    t = airlock("--settings", "regular.json", "--", "printf", "%s|", "a b", "x'y", "\x1b[2J")
    t.expect(re.escape(b"airlock: run printf '%s|' 'a b' 'x'\\''y' '?[2J' in the sandbox? [y/N] "))
    t.send("y\r")
    t.expect(re.escape(b"a b|x'y|"))
    if t.exit_code() != 0:
        fail("exit status", t)


def case_stdout_pipe():
    # `airlock run -- cmd | less`: no terminal of its own, bytes unchanged.
    t = Term(["sh", "-c", '"$0" run -- sh -c "test -t 1 || echo stdout-is-a-pipe" | od -c', AIRLOCK],
             env=ENV)
    t.exit_code()
    # od -c shows the bytes: "\n" alone, no "\r" a terminal would add.
    if not re.search(rb"p +i +p +e", t.out) or b"\\n" not in t.out or b"\\r" in t.out:
        fail("the command's stdout was not the pipe", t)


try:
    globals()["case_" + CASE]()
finally:
    shutil.rmtree(TMPD, ignore_errors=True)
print("ok", CASE)
