"""A job that commits and pushes (issue 14, docs/jobs.md), against the set-up
of tests/integration/cloud/cloud.sh: `airlock up` supervising the real
airlock-gitproxy, whose upstream git.test is git http-backend behind nginx
accepting only the real token. The job's push runs inside its sandbox
through the git listener, as a session's own push does, so the gitproxy's
checks apply and the real token never enters the sandbox.
Usage: jobs_push_test.py SETTINGS_JSON (written by cloud.sh)."""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

with open(sys.argv[1]) as _f:
    CONF = json.load(_f)
API = CONF["API"]
SRV = CONF["SRV"]
REAL_TOKEN = CONF["REAL_TOKEN"]
ALICE = CONF["KEY_ALICE"]
BOB = CONF["KEY_BOB"]
GIT_ENV = dict(os.environ, GIT_CONFIG_GLOBAL=CONF["GITCONFIG"], GIT_CONFIG_NOSYSTEM="1",
               GIT_TERMINAL_PROMPT="0", LC_ALL="C")
WAIT = 120  # seconds before a job that has not finished counts as a hang
REPO = "https://git.test/o/r.git"
FAILS = 0


def check(name, ok, detail=""):
    global FAILS
    if ok:
        print("PASS: " + name, flush=True)
    else:
        FAILS += 1
        print("FAIL: " + name + (("\n    | " + str(detail).replace("\n", "\n    | "))
                                 if detail else ""), flush=True)


def call(key, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + key)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def submit(body, key=ALICE):
    code, text = call(key, "POST", "/v1/jobs", body)
    return code, json.loads(text) if text else {}


def finished(jid, key=ALICE):
    deadline = time.monotonic() + WAIT
    j = {}
    while time.monotonic() < deadline:
        code, text = call(key, "GET", "/v1/jobs/" + jid)
        j = json.loads(text) if code == 200 else {}
        if j.get("state") in ("succeeded", "failed", "cancelled", "timed_out"):
            return j
        time.sleep(0.2)
    return j


def output(jid, key=ALICE):
    return call(key, "GET", "/v1/jobs/%s/output" % jid)[1]


def push_event(sid):
    """The gitproxy's "push" event for the session (replayed from the
    start of the event log), or None."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        req = urllib.request.Request(API + "/v1/events")
        req.add_header("Authorization", "Bearer " + ALICE)
        req.add_header("Last-Event-ID", "0")
        etype = None
        try:
            with urllib.request.urlopen(req, timeout=3) as r:
                for raw in r:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        etype = line[7:]
                    elif line.startswith("data: ") and etype == "push":
                        data = json.loads(line[6:])
                        if data.get("session") == sid:
                            return data
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    return None


def upstream_ref(ref):
    r = subprocess.run(["git", "-c", "safe.directory=*", "-C", SRV + "/o/r.git", "rev-parse",
                        "-q", "--verify", ref], capture_output=True, text=True, env=GIT_ENV)
    return r.stdout.strip() or None


def upstream_file(ref, path):
    r = subprocess.run(["git", "-c", "safe.directory=*", "-C", SRV + "/o/r.git", "show",
                        "%s:%s" % (ref, path)], capture_output=True, text=True, env=GIT_ENV)
    return r.stdout if r.returncode == 0 else None


COMMIT = ("git config user.email job@example.com && git config user.name job"
          " && echo from-the-job > job.txt && git add job.txt && git commit -qm job"
          " && git rev-parse HEAD")

# ---- a job that commits; airlockd pushes its branch ----
code, j = submit({"repo": REPO, "script": COMMIT, "push": True})
check("job_push_accepted", code == 201 and j.get("repo") == REPO and j.get("push") is True,
      (code, j))
j = finished(j.get("id", ""))
head = output(j.get("id", "")).decode(errors="replace").strip().splitlines()
branch = j.get("branch") or ""
check("job_push_succeeded", j.get("state") == "succeeded" and j.get("exit_code") == 0, j)
check("job_push_branch_is_the_sessions", branch == "airlock/" + (j.get("session") or "-"), j)
check("job_push_pushed_commit", head and j.get("pushed_commit") == head[-1], (j, head))
check("job_push_branch_on_upstream",
      branch and upstream_ref("refs/heads/" + branch) == j.get("pushed_commit")
      and upstream_file("refs/heads/" + branch, "job.txt") == "from-the-job\n",
      upstream_ref("refs/heads/" + branch))
check("job_push_no_real_token_in_output", REAL_TOKEN.encode() not in output(j.get("id", "")))
ev = push_event(j.get("session"))
check("job_push_went_through_the_gitproxy", ev is not None and ev.get("decision") == "forwarded",
      ev)
# ... and a durable audit row (GET /v1/audit, method GIT) with the ref
sid = j.get("session") or "-"
code, a = call(ALICE, "GET", "/v1/audit?method=GIT&session=" + sid)
try:
    a = json.loads(a)
except ValueError:
    a = {}
rows = a.get("rows") or []
want_ref = " refs/heads/%s=%s..%s" % (branch, "0" * 12, (j.get("pushed_commit") or "-")[:12])
check("job_push_audit_row", code == 200 and any(
    r.get("path", "").startswith("push ") and " forwarded" in r.get("path", "")
    and want_ref in r.get("path", "") and r.get("user") == "alice" for r in rows), (code, a))

# ---- nothing new: nothing pushed ----
code, j = submit({"repo": REPO, "command": ["git", "status", "--short"], "push": True})
j = finished(j.get("id", ""))
check("job_push_nothing_new", j.get("state") == "succeeded" and j.get("pushed_commit") is None
      and j.get("branch") and upstream_ref("refs/heads/" + j["branch"]) is None, j)

# ---- push: false leaves the commit in the sandbox ----
code, j = submit({"repo": REPO, "script": COMMIT})
j = finished(j.get("id", ""))
check("job_no_push_flag", j.get("state") == "succeeded" and j.get("pushed_commit") is None
      and upstream_ref("refs/heads/" + (j.get("branch") or "-")) is None, j)

# ---- a failing command is not pushed ----
code, j = submit({"repo": REPO, "script": COMMIT + " && exit 5", "push": True})
j = finished(j.get("id", ""))
check("job_failed_not_pushed", j.get("state") == "failed" and j.get("exit_code") == 5
      and j.get("pushed_commit") is None
      and upstream_ref("refs/heads/" + (j.get("branch") or "-")) is None, j)

# ---- a push that is refused fails the job: the command pushed the branch
# itself, then rewrote it; airlockd's push of the new HEAD is not a
# fast-forward ----
REWRITE = (COMMIT + " && git push -q origin HEAD 2>&1 && git reset -q --hard HEAD~1"
           " && echo other > other.txt && git add other.txt && git commit -qm other")
code, j = submit({"repo": REPO, "script": REWRITE, "push": True})
j = finished(j.get("id", ""))
check("job_push_rejected_fails_the_job", j.get("state") == "failed" and j.get("exit_code") == 0
      and j.get("pushed_commit") is None and "push" in (j.get("error") or ""), j)

# ---- a push step whose output the sandbox fills: the job's error is still
# there, without the terminal escapes and bytes that are not UTF-8 (its
# HOME is /workspace: a pre-push hook of its own runs in airlockd's push
# step and prints what it likes) ----
HOOK = (COMMIT + " && mkdir -p /workspace/.hk && printf '#!/bin/sh\\nprintf "
        "\"evil\\\\033[2J\\\\033]0;title\\\\007\\\\377\\\\376 end\\\\n\" >&2\\nexit 1\\n' "
        "> /workspace/.hk/pre-push && chmod +x /workspace/.hk/pre-push"
        " && git config --global core.hooksPath /workspace/.hk && cat /workspace/.hk/pre-push")
code, j = submit({"repo": REPO, "script": HOOK, "push": True})
j = finished(j.get("id", ""))
err = j.get("error") or ""
check("job_push_error_survives_hostile_output",
      j.get("state") == "failed" and "push" in err and "evil" in err and " end" in err
      and "\x1b" not in err and "\x07" not in err and "\ufffd" not in err,
      (j, output(j.get("id", ""))))

# ---- a repository that cannot be cloned: failed, with the reason ----
code, j = submit({"repo": "https://git.test/o/nosuch.git", "command": ["true"], "push": True})
check("job_bad_repo_accepted", code == 201, (code, j))
j = finished(j.get("id", ""))
check("job_bad_repo_failed", j.get("state") == "failed" and j.get("session") is None
      and (j.get("error") or "").startswith("session:"), j)

# ---- a repository outside what the operator allows: 4xx at POST ----
code, j = submit({"repo": "http://git.test/o/r.git", "command": ["true"]})
check("job_repo_url_checked_at_post", 400 <= code < 500 and "error" in j, (code, j))

# ---- a pull request, opened on a stand-in for GitHub's API (fake_github.py)
# with the real credential of git.test/o, after the push: the forge's API
# base goes in airlockd.json, then airlock up is restarted ----
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_github import FakeGitHub  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402

gh_dir = tempfile.mkdtemp(prefix="airlockd-jobs-gh.")
gh = FakeGitHub(gh_dir, REAL_TOKEN, ["o/r"], web_host="git.test").start()
ALD = CONF["ALD"]
with open(ALD + "/airlockd.json") as f:
    conf = json.load(f)
conf["forge"] = {"hosts": {"git.test": {"api": gh.api, "ca_file": gh.ca}}}
with open(ALD + "/airlockd.json", "w") as f:
    json.dump(conf, f, indent=2)
os.kill(int(CONF["ALD_PID"]), signal.SIGTERM)
deadline = time.monotonic() + WAIT
while time.monotonic() < deadline and os.path.exists("/proc/%s" % CONF["ALD_PID"]):
    try:
        with open("/proc/%s/stat" % CONF["ALD_PID"]) as f:
            if f.read().split(") ")[1].startswith("Z"):
                break
    except OSError:
        break
    time.sleep(0.05)
os.unlink(ALD + "/airlockd.addr")
log = open(CONF["LOG2"], "w")
ald2 = subprocess.Popen([CONF["AIRLOCK"], "up", "--state-dir", ALD, "--listen", CONF["LISTEN"]],
                        stdout=log, stderr=log)
deadline = time.monotonic() + WAIT
while time.monotonic() < deadline and not os.path.exists(ALD + "/airlockd.addr"):
    time.sleep(0.05)
with open(ALD + "/airlockd.addr") as f:
    API = "http://" + f.read().strip()
try:
    code, j = submit({"repo": REPO, "base": "main", "script": COMMIT, "push": True,
                      "pull_request": {"title": "A job's change", "body": "made by a job"}})
    check("job_pr_accepted", code == 201 and j.get("pull_request", {}).get("title")
          == "A job's change", (code, j))
    j = finished(j.get("id", ""))
    check("job_pr_succeeded", j.get("state") == "succeeded" and j.get("pushed_commit")
          and j.get("pull_request_url") == "https://git.test/o/r/pull/1",
          (j, output(j.get("id", ""))))
    reqs = gh.received("/repos/o/r/pulls")
    body = json.loads(reqs[0]["body"]) if reqs else {}
    check("job_pr_sent_with_the_real_credential", len(reqs) == 1
          and reqs[0]["headers"].get("authorization") in ("Bearer " + REAL_TOKEN,
                                                          "token " + REAL_TOKEN)
          and body.get("head") == j.get("branch") and body.get("base") == "main"
          and body.get("title") == "A job's change" and body.get("body") == "made by a job",
          (reqs, j))
    check("job_pr_real_token_not_in_output", REAL_TOKEN.encode() not in output(j.get("id", "")))
    # the API refuses (a second one for the same head cannot happen: each
    # job has its own branch); a job whose pull request fails is failed
    gh.token = "something-else"
    code, j = submit({"repo": REPO, "script": COMMIT, "push": True,
                      "pull_request": {"title": "refused"}})
    j = finished(j.get("id", ""))
    check("job_pr_refused_fails_the_job", j.get("state") == "failed" and j.get("pushed_commit")
          and j.get("pull_request_url") is None
          and (j.get("error") or "").startswith("pull request:"), j)
finally:
    if FAILS:
        print("--- the restarted airlockd's log (tail)")
        print(open(CONF["LOG2"]).read()[-6000:])
    ald2.send_signal(signal.SIGTERM)
    try:
        ald2.wait(60)
    except subprocess.TimeoutExpired:
        ald2.kill()
    gh.stop()

sys.exit(1 if FAILS else 0)
