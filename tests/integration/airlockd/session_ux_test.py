#!/usr/bin/env python3
"""`airlock session` as a user sees it (issue 12, item 5): what the client
prints when a command waits for a network approval, is refused the network,
times out, is not found or not executable, runs out of memory, or is given a
directory that does not exist; `cp -r` both ways (and its attack tests: a
symlink and hostile names must never make it write outside the target
directory); `ls` of the workspace; `policy` show and change; `ps` with
commands holding newlines and control bytes. Each case runs the real built
airlockd (harness.Daemon, with its real netproxy) and the real client
binary, and checks the words on the terminal.

usage: session_ux_test.py AIRLOCKD AIRLOCK_SESSION CASE"""

import http.server
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SKIP, Daemon, check, run_case, wait_until  # noqa: E402

CASES = {}
CLIENT = None


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def cli(d, args, key="alice", stdin=None, timeout=120, url=None):
    env = dict(os.environ, AIRLOCK_URL=url or d.url, AIRLOCK_API_KEY=d.keys.get(key, key))
    return subprocess.run([CLIENT] + args, input=stdin, capture_output=True, env=env,
                          timeout=timeout)


def text(b):
    return b.decode(errors="replace")


@case
def ux_exec_explains(d):
    sid = d.create()
    r = cli(d, ["exec", sid, "--timeout", "1", "--", "sleep", "30"])
    check(r.returncode == 124, "timeout: 124", r)
    check(b"airlock: timed out after 1 s (--timeout): killed the command\n" in r.stderr,
          "timeout explained", r.stderr)
    r = cli(d, ["exec", sid, "--", "no-such-cmd-xyz", "arg"])
    check(r.returncode == 127, "not found: 127", r)
    check(r.stderr == b"airlock: no-such-cmd-xyz: command not found in the sandbox\n",
          "not found explained", r.stderr)
    d.run(sid, "printf 'echo hi' > noexec.sh && chmod 644 noexec.sh")
    r = cli(d, ["exec", sid, "--", "/workspace/noexec.sh"])
    check(r.returncode == 126, "not executable: 126", r)
    check(r.stderr == b"airlock: /workspace/noexec.sh: not executable in the sandbox "
          b"(permission denied)\n", "not executable explained", r.stderr)
    small = d.create(limits={"memory_mb": 64})
    r = cli(d, ["exec", small, "--", "python3", "-c", "b = bytearray(512 << 20)"])
    check(r.returncode == 137, "memory: 137", r)
    check(b"airlock: killed: the session's memory limit was reached" in r.stderr,
          "memory explained", r.stderr)
    # a command's own exit 127/124 is its own business: nothing added
    r = cli(d, ["exec", sid, "--shell", "echo mine >&2; exit 127"])
    check(r.returncode == 127 and r.stderr == b"mine\n", "own 127 not explained", r)
    # a missing --cwd is not "command not found"
    r = cli(d, ["exec", sid, "--cwd", "/workspace/no-such-dir", "--", "true"])
    check(r.returncode == 1, "missing cwd: exit 1 (an API refusal), not 127", r)
    check(r.stderr == b'airlock: session: 400 invalid_value: cwd "/workspace/no-such-dir": '
          b"no such directory in the sandbox\n", "missing cwd names the directory", r.stderr)
    r = cli(d, ["exec", sid, "--cwd", "rel-missing", "--", "no-such-cmd-xyz"])
    check(r.returncode == 1 and b'cwd "/workspace/rel-missing"' in r.stderr,
          "relative missing cwd named, before the command", r)
    r = cli(d, ["exec", sid, "--background", "--cwd", "/nope", "--", "true"])
    check(r.returncode == 1 and b'cwd "/nope": no such directory' in r.stderr,
          "background: the same refusal", r)
    d.run(sid, "touch afile")
    r = cli(d, ["exec", sid, "--cwd", "afile", "--", "true"])
    check(r.returncode == 1 and b'cwd "/workspace/afile": Not a directory' in r.stderr,
          "a file as cwd", r)
    r = cli(d, ["exec", sid, "--cwd", "/tmp", "--", "sh", "-c", "pwd"])
    check(r.returncode == 0 and r.stdout == b"/tmp\n", "an existing cwd still works", r)


@case
def ux_exec_network(d):
    settings = {"network": {"allowedDomains": ["allowed.test"],
                            "deniedDomains": ["denied.test"]}}
    sid = d.create(settings=settings)
    # refused at once: the line names the rule and the command that lifts it
    r = cli(d, ["exec", sid, "--shell",
                "curl -sS -o /dev/null http://denied.test/ 2>/dev/null; echo rc=$?; sleep 3"])
    check(r.stdout == b"rc=56\n" or r.stdout.startswith(b"rc="), "curl ran", r)
    want = (f'airlock: blocked network: denied.test:80 (denied by the session\'s '
            f'network.deniedDomains entry "denied.test": airlock session policy {sid} '
            f'--forget-domain denied.test)\n').encode()
    check(want in r.stderr, "blocked line on stderr", r.stderr)
    # a host in neither list waits for an approval: said at once, with the
    # command that gives it; the approvals table shows the host
    env = dict(os.environ, AIRLOCK_URL=d.url, AIRLOCK_API_KEY=d.keys["alice"])
    p = subprocess.Popen([CLIENT, "exec", sid, "--shell",
                          "curl -sS -o /dev/null -w '%{http_code}' http://new.test/; echo"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = p.stderr.readline()
        m = re.match(rb"airlock: waiting for approval of new\.test:80 \(approve with: "
                     rb"airlock session approve (s_[0-9a-f]+) (n_\d+); refuse with --deny\)\n$",
                     line)
        check(m is not None and m.group(1).decode() == sid, "waiting line, at once", line)
        aid = m.group(2).decode()
        t = cli(d, ["approve", sid])
        row = [x for x in t.stdout.splitlines() if x.startswith(aid.encode())]
        check(len(row) == 1 and b"pending" in row[0] and b"network" in row[0]
              and row[0].rstrip().endswith(b"new.test:80"), "approvals table shows the host",
              t.stdout)
        t = cli(d, ["approve", sid, aid, "--deny"])
        check(t.returncode == 0, "deny through the client", t)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check(p.returncode == 0 and out == b"403\n", "the request was refused after the deny",
          (p.returncode, out, err))
    check(b"airlock: blocked network: new.test:80" in err, "the refusal is told too", err)
    # allowed: nothing said
    d.run(sid, "true")
    r = cli(d, ["exec", sid, "--", "true"])
    check(r.returncode == 0 and r.stderr == b"", "a quiet command prints nothing", r)


@case
def ux_exec_approval_regular(d):
    # a regular-mode session holds the exec itself for its approval: the
    # client says so (after a second) with the command that gives it
    sid = d.create(mode="regular")
    env = dict(os.environ, AIRLOCK_URL=d.url, AIRLOCK_API_KEY=d.keys["alice"])
    for decision in ("allow", "deny"):
        p = subprocess.Popen([CLIENT, "exec", sid, "--", "echo", "ok"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        try:
            line = p.stderr.readline()
            m = re.match(rb"airlock: waiting for approval of the command \(approve with: "
                         rb"airlock session approve (s_[0-9a-f]+) (a_[0-9a-f]+); refuse with "
                         rb"--deny\)\n$", line)
            check(m is not None and m.group(1).decode() == sid, "waiting line", line)
            args = ["approve", sid, m.group(2).decode()] + (["--deny"] if decision == "deny"
                                                              else [])
            t = cli(d, args)
            check(t.returncode == 0, "decided through the client", t)
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        if decision == "allow":
            check(p.returncode == 0 and out == b"ok\n" and err == b"", "approved: it ran",
                  (p.returncode, out, err))
        else:
            check(p.returncode == 1 and b"403 approval_denied" in err, "denied: said",
                  (p.returncode, out, err))


def make_tree(root):
    rnd = random.Random(5)
    files = {
        "a.txt": b"alpha\n",
        "empty": b"",
        "bin/blob.bin": rnd.randbytes(300000),
        "sub dir/with space.txt": b"space\n",
        "sub dir/deeper/x/y/z.txt": b"deep\n",
        "dot/.hidden": b"hidden\n",
        "unicode/caf\u00e9.txt": "caf\u00e9\n".encode(),
    }
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(root, "emptydir"))
    return files


def read_tree(root):
    got = {}
    dirs = set()
    for base, ds, fs in os.walk(root):
        for n in ds:
            dirs.add(os.path.relpath(os.path.join(base, n), root))
        for n in fs:
            p = os.path.join(base, n)
            with open(p, "rb") as f:
                got[os.path.relpath(p, root)] = f.read()
    return got, dirs


@case
def ux_cp_recursive(d):
    sid = d.create()
    tmp = tempfile.mkdtemp(dir=d.dir)
    src = os.path.join(tmp, "proj")
    files = make_tree(src)
    # up, into a new name
    r = cli(d, ["cp", "-r", src, f"{sid}:copy"])
    check(r.returncode == 0 and r.stderr == b"", "cp -r up", r)
    sums = d.run(sid, "cd copy && find . -type f -exec sha256sum {} + | sort -k2")
    want = subprocess.run("cd '%s' && find . -type f -exec sha256sum {} + | sort -k2" % src,
                          shell=True, capture_output=True).stdout
    check(sums == want, "uploaded tree byte-exact", (sums[:500], want[:500]))
    check(d.run(sid, "test -d copy/emptydir && echo yes") == b"yes\n", "empty dir made")
    # up again, into an existing directory: under the local name (as cp -r)
    d.run(sid, "mkdir -p into")
    r = cli(d, ["cp", "-r", src + "/", f"{sid}:/workspace/into"])
    check(r.returncode == 0 and d.run(sid, "cat into/proj/a.txt") == b"alpha\n",
          "cp -r into an existing directory keeps the name", r)
    # down, into a new local name, then into an existing directory
    back = os.path.join(tmp, "back")
    r = cli(d, ["cp", "-r", f"{sid}:copy", back])
    check(r.returncode == 0 and r.stderr == b"", "cp -r down", r)
    got, dirs = read_tree(back)
    check(got == {k: v for k, v in files.items()}, "round trip byte-exact",
          sorted(set(got) ^ set(files)))
    check("emptydir" in dirs, "empty dir comes back", dirs)
    r = cli(d, ["cp", "-r", f"{sid}:copy", tmp])
    check(r.returncode == 0 and read_tree(os.path.join(tmp, "copy"))[0] == files,
          "cp -r down into an existing directory keeps the remote name", r)
    # a file with -r is a plain copy
    r = cli(d, ["cp", "-r", f"{sid}:copy/a.txt", os.path.join(tmp, "one.txt")])
    check(r.returncode == 0 and open(os.path.join(tmp, "one.txt"), "rb").read() == b"alpha\n",
          "cp -r of a file", r)
    # a directory without -r: said so
    r = cli(d, ["cp", src, f"{sid}:x"])
    check(r.returncode == 1 and b"is a directory (cp -r copies directories)" in r.stderr,
          "a directory needs -r", r)
    r = cli(d, ["cp", "-r", f"{sid}:no/such", os.path.join(tmp, "none")])
    check(r.returncode == 1 and b"404 not_found" in r.stderr
          and not os.path.exists(os.path.join(tmp, "none")), "missing remote dir", r)


@case
def ux_cp_attack_symlinks(d):
    # Attack: the sandbox plants symlinks (to a host file, to /, to a
    # directory above) and a directory of a name that is a symlink in the
    # local target: `cp -r` from the sandbox writes only inside the target,
    # never through a link, and never follows one out.
    sid = d.create()
    tmp = tempfile.mkdtemp(dir=d.dir)
    outside = os.path.join(tmp, "outside")
    os.makedirs(outside)
    victim = os.path.join(outside, "victim.txt")
    with open(victim, "w") as f:
        f.write("untouched\n")
    d.run(sid, "mkdir -p t/d t/sub && echo payload > t/victim.txt && echo inner > t/d/f.txt"
               " && ln -s /etc/passwd t/passwd && ln -s / t/root && ln -s .. t/sub/up"
               " && ln -s ../../.. t/sub/escape && echo ok > t/sub/ok.txt")
    dst = os.path.join(tmp, "dst")
    os.makedirs(dst)
    r = cli(d, ["cp", "-r", f"{sid}:t/", dst + "/t0"])  # a new name: a plain copy first
    check(r.returncode == 0, "cp -r of a tree with symlinks", r)
    got, dirs = read_tree(dst + "/t0")
    check(got == {"victim.txt": b"payload\n", "d/f.txt": b"inner\n", "sub/ok.txt": b"ok\n"},
          "only the regular files came", got)
    check(all(not os.path.islink(os.path.join(b, n)) for b, ds, fs in os.walk(dst + "/t0")
              for n in ds + fs), "no symlink made locally")
    check(b"t/passwd: a symlink, not copied" in r.stderr
          and b"t/sub/escape: a symlink, not copied" in r.stderr, "skips are said", r.stderr)
    # into a target that holds links out, named as the remote entries
    planted = os.path.join(tmp, "t")
    os.makedirs(planted)
    os.symlink(victim, os.path.join(planted, "victim.txt"))
    os.symlink(outside, os.path.join(planted, "d"))
    r = cli(d, ["cp", "-r", f"{sid}:t", tmp])  # tmp/t exists: the copy goes into it
    check(open(victim).read() == "untouched\n",
          "a planted file link is replaced, not written through")
    check(os.listdir(outside) == ["victim.txt"], "a planted directory link is not entered",
          os.listdir(outside))
    check(not os.path.islink(os.path.join(planted, "victim.txt"))
          and open(os.path.join(planted, "victim.txt")).read() == "payload\n",
          "the file took the link's place")
    check(os.path.islink(os.path.join(planted, "d")), "the directory link is left alone")
    check(r.returncode == 1 and b"d: exists and is not a directory" in r.stderr,
          "the planted directory link is refused and said", r)
    check(open(os.path.join(planted, "sub", "ok.txt")).read() == "ok\n",
          "the rest of the tree still came")


class FakeFiles(http.server.BaseHTTPRequestHandler):
    """A hostile API server: its listings name entries "..", "../escape",
    "a/b", "x\\ny", "" and a NUL; its file bodies say "pwned"."""
    listing = None

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        tail = path.split("/files/", 1)[1] if "/files/" in path else ""
        if tail == "":
            body = json.dumps({"path": "", "entries": [{"name": "evil", "type": "dir"}]})
            body, ctype = body.encode(), "application/json"
        elif tail.rstrip("/") == "evil":
            body = json.dumps({"path": "evil", "entries": FakeFiles.listing}).encode()
            ctype = "application/json"
        elif tail == "evil/ok.txt":
            body, ctype = b"fine\n", "application/octet-stream"
        else:
            body, ctype = b"pwned\n", "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@case
def ux_cp_attack_names(d):
    # Attack: the listing is the server's (or whoever answers in its place):
    # names that are paths ("..", "../escape", "a/b", "/abs"), hold a newline
    # or a NUL, or are empty must not become local paths.
    FakeFiles.listing = [
        {"name": "..", "type": "dir"},
        {"name": "../escape", "type": "file"},
        {"name": "../../escape2", "type": "dir"},
        {"name": "a/b", "type": "file"},
        {"name": "/abs", "type": "file"},
        {"name": "x\ny", "type": "file"},
        {"name": "nul\u0000x", "type": "file"},
        {"name": "", "type": "file"},
        {"name": ".", "type": "dir"},
        {"name": "ok.txt", "type": "file"},
    ]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeFiles)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        tmp = tempfile.mkdtemp(dir=d.dir)
        box = os.path.join(tmp, "box")
        os.makedirs(box)
        url = "http://127.0.0.1:%d" % srv.server_address[1]
        r = cli(d, ["cp", "-r", "s_00000000000000000000:evil", os.path.join(box, "in")],
                url=url)
        before = sorted(os.listdir(tmp))
        check(before == ["box"], "nothing beside the target", before)
        check(sorted(os.listdir(box)) == ["in"], "only the target in its parent",
              os.listdir(box))
        check(sorted(os.listdir(os.path.join(box, "in"))) == ["ok.txt"],
              "only the good name inside", os.listdir(os.path.join(box, "in")))
        check(not os.path.exists("/escape") and not os.path.exists(os.path.join(d.dir, "escape")),
              "no escape")
        check(open(os.path.join(box, "in", "ok.txt"), "rb").read() == b"fine\n",
              "the good entry came")
        check(r.returncode == 1 and r.stderr.count(b"refused an entry named") == 9,
              "each hostile name refused, out loud", r.stderr)
        check(all(ch >= 0x20 or ch == 0x0a for ch in r.stderr),
              "the messages are terminal-safe", r.stderr)
    finally:
        srv.shutdown()


@case
def ux_ls(d):
    sid = d.create()
    d.run(sid, "mkdir -p src/sub && printf 12345 > src/five.txt && ln -s five.txt src/link"
               " && touch 'src/we ird' && printf 'x' > top.txt")
    r = cli(d, ["ls", sid])
    check(r.returncode == 0 and r.stdout.splitlines() == [b"src/", b"top.txt"]
          or sorted(r.stdout.splitlines()) == [b"src/", b"top.txt"], "ls root", r)
    r = cli(d, ["ls", sid, "src"])
    check(sorted(r.stdout.splitlines()) == [b"five.txt", b"link@", b"sub/", b"we ird"],
          "ls a directory", r)
    r = cli(d, ["ls", "-l", sid, "/workspace/src"])
    rows = {x.split()[-1]: x.split() for x in r.stdout.splitlines()}
    check(rows.get(b"five.txt", [b""])[0] == b"file" and rows[b"five.txt"][2] == b"5"
          and rows.get(b"sub/", [b""])[0] == b"dir", "ls -l: type, mode, size, mtime, name",
          r.stdout)
    r = cli(d, ["ls", "-l", sid, "src/five.txt"])
    check(r.returncode == 0 and r.stdout.split()[-1] == b"five.txt"
          and r.stdout.split()[2] == b"5", "ls of a file: its entry", r)
    r = cli(d, ["ls", "--json", sid, "src"])
    check(sorted(e["name"] for e in json.loads(r.stdout)["entries"]) ==
          ["five.txt", "link", "sub", "we ird"], "ls --json", r)
    r = cli(d, ["ls", sid, "nope"])
    check(r.returncode == 1 and b"404 not_found" in r.stderr, "ls of a missing path", r)
    r = cli(d, ["ls", sid, "../x"])
    check(r.returncode == 1 and b"400 invalid_path" in r.stderr, "ls ..", r)
    r = cli(d, ["ls"])
    check(r.returncode == 0 and sid.encode() in r.stdout, "ls without an id lists sessions", r)


@case
def ux_ps_multiline(d):
    sid = d.create()
    r = cli(d, ["exec", sid, "--background", "--shell",
                "sleep 100\necho 'two\tlines' \x1b[31mred\x07 \\ end"])
    pid = r.stdout.decode().strip()
    check(r.returncode == 0 and pid.startswith("p_"), "background exec", r)
    r = cli(d, ["ps", sid])
    lines = r.stdout.split(b"\n")
    check(r.returncode == 0 and lines[-1] == b"" and len(lines) == 3,
          "one line per process (header + one)", r.stdout)
    row = lines[1]
    check(row.startswith(pid.encode()), "the row is the process", row)
    check(b"sleep 100\\necho 'two\\tlines' \\x1b[31mred\\x07 \\\\ end" in row,
          "newline, tab, ESC, BEL and backslash escaped", row)
    check(all(0x20 <= ch < 0x7f for ch in row), "no control byte reaches the terminal", row)
    cli(d, ["kill", sid, pid, "--signal", "KILL"])


@case
def ux_policy(d):
    sid = d.create(settings={"network": {"allowedDomains": ["a.test"],
                                         "deniedDomains": ["c.test"]}})
    r = cli(d, ["policy", sid])
    check(r.returncode == 0 and r.stdout == (
        b"allowedDomains     a.test\n"
        b"deniedDomains      c.test\n"
        b"allowedAddresses   (none)\n"
        b"allowAllDomains    off\n"
        b"requireSniMatch    on\n"
        b"strictAllowlist    off\n"), "policy shows the lists", r)
    r = cli(d, ["policy", sid, "--allow-domain", "b.test", "--allow-domain", "c.test",
                "--deny-domain", "*.bad.test"])
    check(r.returncode == 0 and r.stdout.startswith(
        b"allowedDomains     a.test, b.test, c.test\n"
        b"deniedDomains      *.bad.test\n"), "allow and deny, printed after", r)
    got = d.get(f"/v1/sessions/{sid}/policy").json["network"]
    check(got["allowedDomains"] == ["a.test", "b.test", "c.test"]
          and got["deniedDomains"] == ["*.bad.test"], "the API has it", got)
    r = cli(d, ["policy", sid, "--forget-domain", "a.test", "--json"])
    check(r.returncode == 0 and json.loads(r.stdout)["network"]["allowedDomains"] ==
          ["b.test", "c.test"], "forget, --json", r)
    # the netproxy applies it: a newly allowed domain is no longer held
    st, out, err, ex, _ = d.exec(sid, shell="curl -sS -o /dev/null -w '%{http_code}' "
                                 "--max-time 20 http://x.bad.test/ ; echo")
    check(out.startswith(b"403"), "a denied pattern refuses", (out, err))
    # a widening the operator did not grant is the API's refusal, said
    r = cli(d, ["policy", sid, "--allow-address", "10.1.2.3"])
    check(r.returncode == 1 and b"403 forbidden" in r.stderr
          and b"allowedAddresses" in r.stderr, "an ungranted address: 403, named", r)
    r = cli(d, ["policy", sid, "--allow-all-domains", "maybe"])
    check(r.returncode == 2, "bad value: usage error", r)
    r = cli(d, ["policy", "s_00000000000000000000"])
    check(r.returncode == 1 and b"404 not_found" in r.stderr, "no such session", r)
    r = cli(d, ["policy", sid], key="bob")
    check(r.returncode == 1 and b"404 not_found" in r.stderr, "bob cannot read it", r)


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
    config = {"approval_timeout_s": 30}
    d = Daemon(binary, config, name=name)
    return run_case(d, name, CASES[name])


if __name__ == "__main__":
    sys.exit(main())
