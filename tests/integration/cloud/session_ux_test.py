"""Sessions that fail say why (issue 12, item 5), against a running `airlock
up` with the real gitproxy and the real git http-backend upstream (cloud.sh
sets them up: git.test/o has the real token, git.test/bad a token upstream
refuses, refused.test an upstream port nothing listens on, nxdomain.test an
upstream name that never resolves; refused.test/o and nxdomain.test/o have
credentials). Each case runs `airlock session create --repo ...` as a user
does and checks the words on the terminal, then the gitproxy's log line.
Usage: session_ux_test.py SETTINGS_JSON (written by cloud.sh)."""
import json
import os
import subprocess
import sys
import time

with open(sys.argv[1]) as _f:
    CONF = json.load(_f)
API = CONF["API"]
AIRLOCK = CONF["AIRLOCK"]
LOG = os.path.join(CONF["T"], "cloud", "airlockd.log")
ENV = dict(os.environ, AIRLOCK_URL=API, AIRLOCK_API_KEY=CONF["KEY_ALICE"])
WAIT = 180  # seconds before a missing answer counts as a hang (not a timing assertion)

PASSES = 0
FAILS = 0


def check(name, ok, detail=""):
    global PASSES, FAILS
    if ok:
        PASSES += 1
        print("PASS: " + name, flush=True)
    else:
        FAILS += 1
        print("FAIL: " + name + (("\n    | " + str(detail).replace("\n", "\n    | "))
                                 if detail else ""), flush=True)


def session(*args, stdin=None):
    r = subprocess.run([AIRLOCK, "session"] + list(args), capture_output=True, env=ENV,
                       input=stdin, timeout=WAIT)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def log_lines(marker):
    """The log's lines after the first `marker` bytes (a position)."""
    with open(LOG, "rb") as f:
        f.seek(marker)
        return f.read().decode(errors="replace")


def log_size():
    return os.path.getsize(LOG)


def failed_create(name, repo, want, extra=(), log_want=None):
    """`session create --repo REPO` fails with exit 1 and one error whose
    words include every string of `want`; the gitproxy's log line for the
    request carries `log_want` (the reason)."""
    mark = log_size()
    rc, out, err = session("create", "--repo", repo, *extra)
    check(name + "_fails", rc == 1 and out == "", (rc, out, err))
    check(name + "_is_502_clone_failed", err.startswith("airlock: session: 502 clone_failed: "
                                                        "cannot clone " + repo + ": "), err)
    for w in want:
        check(name + "_says: " + w, w in err, err)
    check(name + "_points_at_nothing_gone", "p_1" not in err and "see the output" not in err,
          err)
    check(name + "_terminal_safe", all(c == "\n" or 0x20 <= ord(c) < 0x7f for c in err), err)
    if log_want:
        # the gitproxy's request line names the reason, not only "-> 502"
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            lines = [x for x in log_lines(mark).splitlines() if "/info/refs" in x and "-> 5" in x
                     or "-> 4" in x]
            if any(log_want in x and "reason=" in x for x in lines):
                break
            time.sleep(0.2)
        check(name + "_gitproxy_log_has_the_reason",
              any(log_want in x and "reason=" in x for x in lines), "\n".join(lines[-5:]))
    return err


# no credential for the owner: names the owner and the command that adds one
failed_create("create_no_credential", "https://git.test/nocred/r",
              ["no upstream credential for git.test/nocred/r",
               "airlock creds add --scope git.test/nocred`",
               "returned error: 502"],
              log_want="no upstream credential for git.test/nocred/r")

# unknown host: the upstream's name does not resolve
failed_create("create_unknown_host", "https://nxdomain.test/o/r",
              ["upstream nxdomain.test unreachable: unknown host (the name does not resolve)"],
              log_want="unknown host")

# connection refused
failed_create("create_refused_port", "https://refused.test/o/r",
              ["upstream refused.test unreachable: connection refused"],
              log_want="connection refused")

# upstream 401 to the proxy's credential
failed_create("create_upstream_401", "https://git.test/bad/r",
              ["upstream refused airlock's credential for git.test/bad/r (HTTP 401"],
              log_want="refused airlock's credential")

# upstream 404
failed_create("create_upstream_404", "https://git.test/o/missing",
              ["git.test/o/missing not found upstream (404)", "not found"],
              log_want="not found upstream")

# missing base branch: named
failed_create("create_missing_base", "https://git.test/o/r.git",
              ['the base branch "no-such-base" does not exist upstream',
               "no-such-base"], extra=("--base", "no-such-base"))

# the session the failure left is failed, with the reason
rc, out, err = session("ls", "--json")
mine = [s for s in json.loads(out) if s.get("state") == "failed"] if rc == 0 else []
check("failed_sessions_listed_with_reason", len(mine) >= 6 and all(
    "cannot clone" in (s.get("end_reason") or "") for s in mine), mine[:2])

# and good ones still work, with or without ".git" (the git proxy serves
# NAME.git: a repository given without it used to fail its clone, 404)
for repo in ("https://git.test/o/r.git", "https://git.test/o/r"):
    rc, out, err = session("create", "--repo", repo)
    sid = out.strip()
    check("create_works: " + repo, rc == 0 and sid.startswith("s_"), (rc, out, err))
    if sid.startswith("s_"):
        rc, out, err = session("exec", sid, "--shell", "git remote -v; git fetch -q && echo fetched")
        check("the clone fetches again: " + repo, rc == 0 and "fetched" in out
              and "origin\t" + repo in out, (rc, out, err))
        session("rm", sid)

print("session ux: %d passed, %d failed" % (PASSES, FAILS), flush=True)
sys.exit(1 if FAILS else 0)
