"""Done-when 1 of issue 14 end to end (docs/forge.md), in the set-up of
tests/integration/cloud/cloud.sh (`airlock up` with the real gitproxy,
git.test = git http-backend behind nginx accepting only the real token):
a signed GitHub comment webhook starts the repository's job template; the
job commits, airlockd pushes its branch through the gitproxy and opens a
pull request on fake_github.py (GitHub's API over HTTPS with the test's
CA). The Authorization that reached the forge is the REAL token; the job,
which prints everything its sandbox could hand out (environment, git
config, what git's credential helper answers for git.test), never saw it.
Usage: forge_job_test.py SETTINGS_JSON (written by cloud.sh)."""
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_github import FakeGitHub  # noqa: E402

with open(sys.argv[1]) as _f:
    CONF = json.load(_f)
REAL_TOKEN = CONF["REAL_TOKEN"]
ALICE = CONF["KEY_ALICE"]
ALD = CONF["ALD"]
WAIT = 120
SECRET = "forge-job-hook-secret"
FAILS = 0


def check(name, ok, detail=""):
    global FAILS
    if ok:
        print("PASS: " + name, flush=True)
    else:
        FAILS += 1
        print("FAIL: " + name + (("\n    | " + str(detail).replace("\n", "\n    | "))
                                 if detail else ""), flush=True)


def call(api, method, path, body=None, headers=None, raw=None, key=ALICE):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(api + path, data=data, method=method)
    if key:
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


# What the job prints: all its sandbox can hand out about credentials, then
# a commit of its own.
SCRIPT = ("env; git config --list --show-origin;"
          " printf 'protocol=https\\nhost=git.test\\npath=o/r.git\\n\\n' | git credential fill;"
          " cat ~/.git-credentials 2>/dev/null;"
          " git config user.email job@example.com && git config user.name job"
          " && echo \"$AIRLOCK_COMMENT_ARGS\" > asked.txt && git add asked.txt"
          " && git commit -qm \"asked in #$AIRLOCK_ISSUE_NUMBER\"")

gh_dir = tempfile.mkdtemp(prefix="airlockd-forge-job.")
gh = FakeGitHub(gh_dir, REAL_TOKEN, ["o/r"], web_host="git.test").start()
secret_file = os.path.join(gh_dir, "hook.secret")
with open(secret_file, "w") as f:
    f.write(SECRET)
os.chmod(secret_file, 0o600)
with open(ALD + "/airlockd.json") as f:
    conf = json.load(f)
conf["forge"] = {"hosts": {"git.test": {"api": gh.api, "ca_file": gh.ca}}}
conf["hooks"] = {"github": {"secret_file": secret_file, "host": "git.test", "repos": {
    "o/r": {"user": "alice", "job": {
        "base": "main", "script": SCRIPT, "push": True,
        "pull_request": {"title": "From a comment", "body": "Asked for on GitHub."}}}}}}
with open(ALD + "/airlockd.json", "w") as f:
    json.dump(conf, f, indent=2)
# restart `airlock up` on the changed config
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
    payload = {"action": "created",
               "issue": {"number": 12, "pull_request": {"url": "x"}},
               "comment": {"id": 777, "body": "/airlock please add asked.txt",
                           "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "user": {"login": "octocat"}, "author_association": "OWNER",
                           "html_url": "https://git.test/o/r/pull/12#issuecomment-777"},
               "repository": {"full_name": "o/r", "clone_url": "https://git.test/o/r.git"}}
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": str(uuid.uuid4()),
               "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body,
                                                           hashlib.sha256).hexdigest()}
    bad = dict(headers, **{"X-Hub-Signature-256": "sha256=" + "0" * 64})
    code, text = call(API, "POST", "/v1/hooks/github", raw=body, headers=bad, key=None)
    check("hook_bad_signature_401", code == 401 and b"unauthorized" in text, (code, text))
    code, text = call(API, "POST", "/v1/hooks/github", raw=body, headers=headers, key=None)
    j = json.loads(text) if text else {}
    check("hook_started_a_job", code == 201 and j.get("job", {}).get("user") == "alice",
          (code, text))
    jid = j.get("job", {}).get("id", "")
    deadline = time.monotonic() + WAIT
    job = {}
    while time.monotonic() < deadline:
        code, text = call(API, "GET", "/v1/jobs/" + jid)
        job = json.loads(text) if code == 200 else {}
        if job.get("state") in ("succeeded", "failed", "cancelled", "timed_out"):
            break
        time.sleep(0.2)
    out = call(API, "GET", "/v1/jobs/%s/output" % jid)[1]
    check("hook_job_pushed_and_opened_a_pull_request",
          job.get("state") == "succeeded" and job.get("pushed_commit")
          and job.get("pull_request_url") == "https://git.test/o/r/pull/1", (job, out))
    reqs = gh.received("/repos/o/r/pulls")
    sent = json.loads(reqs[0]["body"]) if reqs else {}
    check("the_real_credential_reached_the_forge", len(reqs) == 1
          and reqs[0]["headers"].get("authorization") == "Bearer " + REAL_TOKEN
          and sent.get("head") == job.get("branch") and sent.get("base") == "main"
          and sent.get("title") == "From a comment", reqs)
    check("the_job_looked_for_credentials", b"AIRLOCK_COMMENT=" in out and b"password=" in out,
          out)
    check("the_sandbox_never_saw_the_real_credential", REAL_TOKEN.encode() not in out, out)
    # GitHub redelivers: the same job, no second pull request
    code, text = call(API, "POST", "/v1/hooks/github", raw=body,
                      headers=dict(headers, **{"X-GitHub-Delivery": str(uuid.uuid4())}), key=None)
    j2 = json.loads(text) if text else {}
    check("hook_redelivery_same_job", code == 200 and j2.get("job", {}).get("id") == jid,
          (code, text))
    check("one_pull_request", len(gh.received("/repos/o/r/pulls")) == 1, gh.requests)
    # A job that names no base: its pull request goes to the repository's
    # default branch as the forge says it (GET /repos/o/r, with the real
    # credential), never to a base the sandbox chose. The job repoints its
    # own origin/HEAD at a ref of its making before airlockd's push step.
    hostile = ("git config user.email job@example.com && git config user.name job"
               " && echo x > planted.txt && git add planted.txt && git commit -qm planted"
               " && git update-ref refs/remotes/origin/sandbox-chosen refs/remotes/origin/main"
               " && git symbolic-ref refs/remotes/origin/HEAD refs/remotes/origin/sandbox-chosen"
               " && git symbolic-ref refs/remotes/origin/HEAD")
    code, text = call(API, "POST", "/v1/jobs", {
        "repo": "https://git.test/o/r.git", "script": hostile, "push": True,
        "pull_request": {"title": "No base given"}})
    jid2 = json.loads(text).get("id", "") if code == 201 else ""
    check("job_without_base_created", code == 201, (code, text))
    deadline = time.monotonic() + WAIT
    job2 = {}
    while jid2 and time.monotonic() < deadline:
        code, text = call(API, "GET", "/v1/jobs/" + jid2)
        job2 = json.loads(text) if code == 200 else {}
        if job2.get("state") in ("succeeded", "failed", "cancelled", "timed_out"):
            break
        time.sleep(0.2)
    out2 = call(API, "GET", "/v1/jobs/%s/output" % jid2)[1] if jid2 else b""
    sent2 = [json.loads(r["body"]) for r in gh.received("/repos/o/r/pulls")
             if r["method"] == "POST" and json.loads(r["body"]).get("head") == job2.get("branch")]
    check("pull_request_base_is_the_forges_default_branch_not_the_sandboxs",
          job2.get("state") == "succeeded" and len(sent2) == 1
          and sent2[0].get("base") == "main", (job2, out2, sent2))
finally:
    ald2.send_signal(signal.SIGTERM)
    try:
        ald2.wait(60)
    except subprocess.TimeoutExpired:
        ald2.kill()
    gh.stop()

sys.exit(1 if FAILS else 0)
