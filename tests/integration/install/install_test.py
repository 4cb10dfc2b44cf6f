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
     API, exec `echo ok` in it, delete it, and leave nothing behind;
  4. (issue 12, Done-when 4) every man page of docs/man installed in
     share/man/manN, rendered by `man -l` and `groff -ww` without a warning,
     its options the same as its program's --help (both ways) and every
     command of that usage named; the bash completion completing a few
     prefixes in a real bash, the zsh one parsed, loaded by compinit and run;
     every installed program's --version naming the version and the commit.

usage: install_test.py BUILD_DIR SOURCE_DIR      exit 0 pass, 1 fail, 77 skip"""

import glob
import json
import os
import re
import shlex
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


# man page -> the command whose --help lists the same options (argv after
# the installed bin/); None: a page of a file format
MAN_HELP = {
    "airlock.1": ["airlock"], "airlock-run.1": ["airlock", "run"],
    "airlock-doctor.1": ["airlock", "doctor"], "airlock-session.1": ["airlock", "session"],
    "airlock-creds.1": ["airlock-creds"], "airlock-connect.1": ["airlock-connect"],
    "airlock-settings.5": None, "airlockd.8": ["airlockd"], "airlock-up.8": ["airlock", "up"],
    "airlock-admin.8": ["airlock", "admin"], "airlock-netproxy.8": ["airlock-netproxy"],
    "airlock-gitproxy.8": ["airlock-gitproxy"],
}
# options every program takes, whether or not its usage lists them
UNIVERSAL = {"--help", "--version"}
OPT_RE = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def roff_text(src):
    """The roff source as plain text: \- as -, font escapes dropped."""
    src = src.replace("\\-", "-")
    return re.sub(r"\\f(\[[A-Z]*\]|[A-Z])", "", src)


def roff_sections(text, names):
    """The text of the .SH sections `names` of a page."""
    out, on = [], False
    for ln in text.splitlines():
        if ln.startswith(".SH"):
            on = ln[3:].strip().strip('"') in names
            continue
        if on:
            out.append(ln)
    return "\n".join(out)


def check_man(prefix, src):
    sources = sorted(os.path.basename(p)[:-3]
                     for p in glob.glob(os.path.join(src, "docs", "man", "*.in")))
    check(set(sources) == set(MAN_HELP), "every page in docs/man is known to this test",
          sorted(set(sources) ^ set(MAN_HELP)))
    have_groff = shutil.which("groff") is not None
    for page in sources:
        section = page.rsplit(".", 1)[1]
        path = os.path.join(prefix, "share", "man", f"man{section}", page)
        check(os.path.isfile(path), f"{page} installed in share/man/man{section}", path)
        with open(path) as f:
            text = f.read()
        check("@AIRLOCK_VERSION@" not in text, f"{page}: the version is filled in")
        r = subprocess.run(["man", "-l", path], env=dict(os.environ, MANWIDTH="80"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        check(r.returncode == 0 and r.stderr == "", f"man -l {page}: no warning",
              (r.returncode, r.stderr))
        check("NAME" in r.stdout and len(r.stdout.splitlines()) > 10, f"man -l {page} renders",
              r.stdout[:500])
        if have_groff:
            g = subprocess.run(["groff", "-ww", "-z", "-man", path], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=60)
            check(g.returncode == 0 and g.stdout == "", f"groff -ww {page}: no warning", g.stdout)
        argv = MAN_HELP[page]
        if argv is None:
            print(f"ok: man -l {page}")
            continue
        h = subprocess.run([os.path.join(prefix, "bin", argv[0])] + argv[1:] + ["--help"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        check(h.returncode == 0, f"{' '.join(argv)} --help", h.stdout)
        in_help = set(OPT_RE.findall(h.stdout))
        plain = roff_text(text)
        in_man = set(OPT_RE.findall(plain))
        listed = set(OPT_RE.findall(roff_sections(plain, {"SYNOPSIS", "OPTIONS", "COMMANDS"})))
        missing = sorted(in_help - in_man)
        check(not missing, f"{page} has every option of `{' '.join(argv)} --help`", missing)
        # and every command of the usage ("  create ...", "  user add ...")
        words = set()
        for ln in h.stdout.splitlines():
            m = re.match(r"  ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?(?: |$)", ln)
            if m:
                words |= {w for w in m.groups() if w}
        absent = sorted(w for w in words
                        if not re.search(r"(?<![\w-])" + re.escape(w) + r"(?![\w-])", plain))
        check(not absent, f"{page} names every command of `{' '.join(argv)} --help`", absent)
        extra = sorted(listed - in_help - UNIVERSAL)
        check(not extra, f"{page} lists no option `{' '.join(argv)} --help` lacks", extra)
        print(f"ok: man -l {page}: {len(in_help)} options, as in `{' '.join(argv)} --help`")


# (words on the line, a completion that must be offered)
BASH_CASES = [
    (["r"], "run"), ([""], "session"), (["--v"], "--version"), (["run", "--al"], "--allow-write"),
    (["run", "--decision"], "--decision-log"), (["doctor", "--se"], "--settings"),
    (["up", "--st"], "--state-dir"), (["session", "ex"], "exec"),
    (["session", "exec", "--merge"], "--merge-stderr"), (["session", "create", "--re"], "--repo"),
    (["creds", "a"], "add"), (["creds", "add", "--mas"], "--master-key"),
    (["token", "mint", "--push"], "--push-ref"), (["key", "g"], "generate"),
    (["admin", "u"], "user"), (["admin", "user", "a"], "add"),
    (["admin", "user", "add", "--max-s"], "--max-sessions"),
]


def check_completion(prefix):
    bash = os.path.join(prefix, "share", "bash-completion", "completions", "airlock")
    zsh = os.path.join(prefix, "share", "zsh", "site-functions", "_airlock")
    check(os.path.isfile(bash) and os.path.isfile(zsh), "bash and zsh completions installed",
          (bash, zsh))
    airlock = os.path.join(prefix, "bin", "airlock")
    # AIRLOCK_API_KEY unset: no session listing is attempted
    env = {k: v for k, v in os.environ.items() if k != "AIRLOCK_API_KEY"}
    env["PATH"] = "/usr/bin:/bin"
    script = ["source " + shlex.quote(bash), "c() {",
              '  COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _airlock',
              "  printf '%s\\n' \"${COMPREPLY[*]}\"", "}"]
    for words, _ in BASH_CASES:
        script.append("c " + " ".join(shlex.quote(w) for w in [airlock] + words))
    script.append("complete -p airlock")
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(script)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    lines = r.stdout.splitlines()
    check(r.returncode == 0 and r.stderr == "" and len(lines) == len(BASH_CASES) + 1,
          "the bash completion runs", (r.returncode, r.stdout, r.stderr))
    for (words, want), got in zip(BASH_CASES, lines):
        offered = got.split()
        prefix_word = words[-1]
        check(want in offered and all(o.startswith(prefix_word) for o in offered),
              f"bash: airlock {' '.join(words)}<TAB> offers {want}", offered)
    check(lines[-1] == "complete -F _airlock airlock", "registered for airlock", lines[-1])
    print(f"ok: bash completion: {len(BASH_CASES)} prefixes")
    if shutil.which("zsh") is None:
        print("note: no zsh here (deploy/install-deps.sh installs it): zsh completion unchecked")
        return
    r = subprocess.run(["zsh", "-n", zsh], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    check(r.returncode == 0 and r.stdout == "", "zsh -n _airlock", r.stdout)
    fdir = os.path.dirname(zsh)
    load = (f"fpath=({shlex.quote(fdir)} $fpath); autoload -Uz compinit; "
            f"compinit -u -D; print -r -- ${{_comps[airlock]}}")
    r = subprocess.run(["zsh", "-f", "-c", load], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    check(r.returncode == 0 and r.stdout.strip() == "_airlock",
          "compinit finds _airlock for airlock", r.stdout)
    # run it, with compadd/_files standing in for the completion system's
    for words, want in BASH_CASES[:8]:
        run_it = ("compadd() { [[ $1 == -a ]] && print -rl -- ${(P)2} }; _files() { :; }; "
                  "_command_names() { :; }; "
                  f"words=({' '.join(shlex.quote(w) for w in [airlock] + words)}); "
                  f"CURRENT={len(words) + 1}; PREFIX={shlex.quote(words[-1])}; "
                  f"source {shlex.quote(zsh)}")
        r = subprocess.run(["zsh", "-f", "-c", run_it], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        check(r.returncode == 0 and r.stderr == "" and want in r.stdout.split(),
              f"zsh: airlock {' '.join(words)}<TAB> offers {want}", (r.stdout, r.stderr))
    print("ok: zsh completion: parsed, loaded by compinit, 8 prefixes")


def check_version(prefix, build, src):
    with open(os.path.join(build, "generated", "airlock", "version.h")) as f:
        header = f.read()
    commit = re.search(r'#define AL_COMMIT\s+"([^"]*)"', header).group(1)
    version = re.search(r'#define AL_VERSION\s+"([^"]*)"', header).group(1)
    check(commit != "", "the build names a commit")
    for name in BIN + LIBEXEC:
        where = "bin" if name in BIN else os.path.join("libexec", "airlock")
        rc, out = run([os.path.join(prefix, where, name), "--version"])
        check(rc == 0 and out == f"{name} {version} (commit {commit})\n",
              f"installed {name} --version", (rc, out))
    print(f"ok: --version of {len(BIN + LIBEXEC)} programs: {version} (commit {commit})")


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
        check_man(prefix, src)
        check_completion(prefix)
        check_version(prefix, build, src)
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
