#!/usr/bin/env python3
"""`cmake --install` to a scratch prefix, then airlock used from there the
way an operator would (as root, root's own HOME):

  1. the layout: every program in bin/ or libexec/airlock/, every
     add_executable of the tree installed unless it is a build tool or a
     benchmark, every ExecStart of deploy/systemd/*.service and every
     program path of deploy/airlockd.example.json present once /usr/local
     is replaced by the prefix;
  2. the installed `airlock doctor`, `airlock run` (whose network helper
     airlock-connect must be the installed one) and the tools `airlock`
     runs from its own directory (session, creds, admin);
  3. the installed airlockd on a scratch state dir: it must find its
     netproxy beside itself and airlock-init and git-remote-airlock in
     ../libexec/airlock (its log names them), create a session through the
     API, exec `echo ok` in it, delete it, and leave nothing behind.

usage: install_test.py BUILD_DIR SOURCE_DIR      exit 0 pass, 1 fail, 77 skip"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "airlockd"))
from harness import SKIP, Daemon, Fail, check  # noqa: E402

BIN = ["airlock", "airlock-session", "airlock-creds", "airlock-netproxy", "airlock-gitproxy",
       "airlock-connect", "airlockd"]
LIBEXEC = ["airlock-init", "git-remote-airlock"]
# add_executable targets that are not installed: a build step and benchmarks.
NOT_INSTALLED = {"gen_seccomp", "sbs_bench", "gp_scan_bench"}
UNIT_PREFIX = "/usr/local"


def run(argv, **kw):
    """Runs argv; returns (exit status, stdout + stderr as text)."""
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=kw.pop("timeout", 120), **kw)
    return r.returncode, r.stdout


def check_layout(prefix, src):
    for name in BIN:
        p = os.path.join(prefix, "bin", name)
        check(os.access(p, os.X_OK), f"{p} installed and executable")
    for name in LIBEXEC:
        p = os.path.join(prefix, "libexec", "airlock", name)
        check(os.access(p, os.X_OK), f"{p} installed and executable")
    installed = {os.path.basename(p) for p in glob.glob(os.path.join(prefix, "*", "**"),
                                                        recursive=True) if os.path.isfile(p)}
    # every program the tree builds (tests and benchmarks' own folders aside)
    programs = set()
    for cml in glob.glob(os.path.join(src, "**", "CMakeLists.txt"), recursive=True):
        rel = os.path.relpath(cml, src)
        if rel.startswith(("tests" + os.sep, "build")):
            continue
        with open(cml) as f:
            programs |= set(re.findall(r"add_executable\(\s*([A-Za-z0-9_.+-]+)", f.read()))
    check(programs >= set(BIN + LIBEXEC), "the tree's add_executable list was read",
          sorted(programs))
    missing = sorted(programs - NOT_INSTALLED - installed)
    check(not missing, "every program the tree builds is installed", missing)
    print(f"ok: layout: {len(BIN)} programs in bin/, {len(LIBEXEC)} in libexec/airlock/; "
          f"not installed (tools): {sorted(NOT_INSTALLED & programs)}")
    # the systemd units and the example config name installed paths
    for unit in sorted(glob.glob(os.path.join(src, "deploy", "systemd", "*.service"))):
        with open(unit) as f:
            execs = re.findall(r"^ExecStart=(\S+)", f.read(), re.M)
        check(execs, f"{unit} has an ExecStart")
        for e in execs:
            check(e.startswith(UNIT_PREFIX + "/"), f"{unit}: ExecStart under {UNIT_PREFIX}", e)
            p = prefix + e[len(UNIT_PREFIX):]
            check(os.access(p, os.X_OK), f"{os.path.basename(unit)}: {e} is installed", p)
            print(f"ok: {os.path.basename(unit)} runs {e}: installed")
    with open(os.path.join(src, "deploy", "airlockd.example.json")) as f:
        example = json.load(f)
    for key, path in sorted(example.get("proxies", {}).items()):
        if isinstance(path, str) and path.startswith(UNIT_PREFIX + "/bin/"):
            p = prefix + path[len(UNIT_PREFIX):]
            check(os.access(p, os.X_OK), f"airlockd.example.json proxies.{key}: {path} installed")
            print(f"ok: airlockd.example.json proxies.{key} = {path}: installed")


def check_cli(prefix, scratch):
    airlock = os.path.join(prefix, "bin", "airlock")
    ws = os.path.join(scratch, "ws")
    os.makedirs(ws)
    rc, out = run([airlock, "doctor"], cwd=ws)
    print(out)
    check(rc == 0 and "all checks passed" in out, "installed airlock doctor passes", out[-1000:])
    rc, out = run([airlock, "run", "--", "echo", "ok"], cwd=ws)
    check(rc == 0 and out == "ok\n", "installed airlock run -- echo ok", (rc, out[-1000:]))
    print("ok: airlock run -- echo ok")
    # with the network on, GIT_SSH_COMMAND names the installed airlock-connect
    settings = os.path.join(scratch, "settings.json")
    with open(settings, "w") as f:
        json.dump({"sandbox": {"network": {"allowedDomains": ["example.test"]}}}, f)
    rc, out = run([airlock, "run", "--settings", settings, "--", "sh", "-c",
                   'echo "$GIT_SSH_COMMAND"; test -x "$0" && echo helper-visible',
                   os.path.join(prefix, "bin", "airlock-connect")], cwd=ws)
    want = os.path.realpath(os.path.join(prefix, "bin", "airlock-connect"))
    check(rc == 0 and want in out and "helper-visible" in out,
          "airlock run uses the installed airlock-connect, visible inside", (rc, out[-1000:]))
    print(f"ok: GIT_SSH_COMMAND uses {want}")
    # the tools `airlock` runs from its own directory (before PATH, which
    # here holds none of them: an installed copy elsewhere cannot stand in)
    env = dict(os.environ, PATH="/usr/bin:/bin")
    for sub, tool in ((["session", "--help"], "airlock-session"),
                      (["creds", "--help"], "airlock-creds"),
                      (["admin", "--help"], "airlockd")):
        rc, out = run([airlock] + sub, cwd=ws, env=env)
        check("cannot run" not in out and rc != 125,
              f"airlock {' '.join(sub)} runs the installed {tool}", (rc, out[-600:]))
        print(f"ok: airlock {' '.join(sub)} ran {tool} (exit {rc})")


def check_airlockd(prefix, scratch):
    airlockd = os.path.join(prefix, "bin", "airlockd")
    # a stand-in gitproxy (tests/integration/airlockd/fake_gitproxy.py, acking
    # every request) so that airlockd looks for git-remote-airlock too
    fake_conf = os.path.join(scratch, "fake-gitproxy.json")
    marker = fake_conf + ".crashed"
    open(marker, "w").close()
    with open(fake_conf, "w") as f:
        json.dump({"mode": "crash_once", "marker": marker}, f)
    key = os.path.join(scratch, "token.key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    config = {"proxies": {"gitproxy_config": fake_conf,
                          "gitproxy": os.path.join(HERE, "..", "airlockd", "fake_gitproxy.py"),
                          "token_keys": [{"kid": "k1", "file": key}]}}
    d = Daemon(airlockd, config, name="install")
    failed = None
    try:
        d.start()
        d.add_user("alice")
        log = d.log_tail(20000)
        real = os.path.realpath(prefix)
        for what, path in (("netproxy", os.path.join(real, "bin", "airlock-netproxy")),
                           ("init", os.path.join(real, "libexec", "airlock", "airlock-init")),
                           ("git helper",
                            os.path.join(real, "libexec", "airlock", "git-remote-airlock"))):
            # the log may name it unnormalised (bin/../libexec/...)
            found = [ln for ln in log.splitlines()
                     if any(os.path.realpath(m) == path for m in re.findall(r"/[^\s,()]+", ln))]
            check(found, f"airlockd found the installed {what} at {path}", log[-3000:])
            print(f"ok: airlockd uses {path}: {found[0].strip()}")
        sid = d.create()
        out = d.run(sid, "echo ok")
        check(out == b"ok\n", "echo ok in a session of the installed airlockd", out)
        print(f"ok: session {sid}: echo ok")
        r = d.delete(f"/v1/sessions/{sid}")
        check(r.status == 200, "the session is deleted", r)
        print(f"ok: session {sid} deleted")
    except Fail as e:
        failed = str(e)
    finally:
        left = d.teardown()
    if left:
        failed = (failed + "; " if failed else "") + f"left behind: {left}"
    if failed:
        raise Fail(failed + "\n" + d.final_log[-3000:])


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    build, src = (os.path.abspath(a) for a in sys.argv[1:])
    if shutil.which("cmake") is None:
        print("SKIP: no cmake")
        return SKIP
    # in the build tree: a sandbox session masks /var/tmp and has a private
    # /tmp, and a real prefix (/usr/local) is visible in sessions too
    scratch = tempfile.mkdtemp(prefix="install-test.", dir=build)
    prefix = os.path.join(scratch, "prefix")
    try:
        rc, out = run(["cmake", "--install", build, "--prefix", prefix], timeout=300)
        check(rc == 0, "cmake --install", out[-2000:])
        print(out)
        check_layout(prefix, src)
        check_cli(prefix, scratch)
        check_airlockd(prefix, scratch)
    except Fail as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
