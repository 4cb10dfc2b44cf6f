#!/usr/bin/env python3
"""The forge side of jobs (issue 14, docs/forge.md) against real parts:

* forge_pr: ald_forge_open_pr (through forge_pr_client, a small C program
  linked with airlockd's adapters, reading an airlockd config file) opens
  pull requests on fake_github.py, a stand-in for GitHub's REST API over
  HTTPS with the test's own CA. The REAL credential of the credential
  store (the one the gitproxy injects) is what reaches the API; 422, 401,
  404, a redirect, an untrusted certificate and a host without an API
  each give a clear error, and the token never shows in what it prints.
* hook_github: POST /v1/hooks/github of the real airlockd: signatures
  (good, bad, missing), ping, events and comments it ignores (2xx with a
  reason), malformed JSON, a comment that starts a job (seen in GET
  /v1/jobs, the comment passed in its environment), GitHub's redelivery
  (same X-GitHub-Delivery: the same job).
* hook_not_configured: without hooks.github the route is 404.

usage: forge_test.py AIRLOCKD FORGE_PR_CLIENT AIRLOCK_CREDS CASE
Exit 0 pass, 1 fail, 77 skip."""

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_github import FakeGitHub  # noqa: E402
from harness import SKIP, Daemon, Fail, check, run_case, wait_until  # noqa: E402

REAL = "ghp_R3alUpstr3amT0kenR3alUpstr3amT0ken42"
WRONG = "ghp_N0tTheR1ghtT0kenN0tTheR1ghtT0ken007"
HOOK_SECRET = "hook-secret-0123456789abcdef"
JOB_ID = re.compile(r"^j_[0-9a-f]{20}$")
FINAL = ("succeeded", "failed", "cancelled", "timed_out")
CASES = {}
CLIENT = CREDS_TOOL = None


def case(fn):
    CASES[fn.__name__] = fn
    return fn


# -- pull requests ------------------------------------------------------------

def creds_add(store, master, scope, token):
    r = subprocess.run([CREDS_TOOL, "creds", "add", "--store", store, "--master-key", master,
                        "--scope", scope], input=token + "\n", capture_output=True, text=True,
                       timeout=60)
    check(r.returncode == 0, f"creds add --scope {scope}", r)


def open_pr(conf, repo, head, base="main", title="t", body=None):
    args = [CLIENT, conf, repo, head, base, title] + ([body] if body is not None else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    check(REAL not in r.stdout + r.stderr and WRONG not in r.stdout + r.stderr,
          "the token never shows in what the client prints", r)
    check(r.returncode in (0, 2), "forge_pr_client ran", r)
    return r.returncode, json.loads(r.stdout)


def forge_pr():
    base = tempfile.mkdtemp(prefix="airlockd-forge.")
    try:
        gh = FakeGitHub(base, REAL, ["octo/widget", "wrongorg/widget"]).start()
        master = os.path.join(base, "master.key")
        store = os.path.join(base, "creds.store")
        subprocess.run([CREDS_TOOL, "key", "generate", master], check=True)
        creds_add(store, master, "github.test/octo", REAL)
        creds_add(store, master, "github.test/wrongorg", WRONG)
        creds_add(store, master, "github.test/redirect", REAL)
        creds_add(store, master, "untrusted.test/octo", REAL)
        conf = os.path.join(base, "airlockd.json")
        with open(conf, "w") as f:
            json.dump({"state_dir": os.path.join(base, "state"),
                       "proxies": {"credential_store": store, "master_key": master},
                       "forge": {"hosts": {
                           "github.test": {"api": gh.api + "/", "ca_file": gh.ca},
                           # the same server, its CA not given: the system's CAs refuse it
                           "untrusted.test": {"api": gh.api}}}}, f)

        # 1. opened, with the real credential and GitHub's headers
        rc, out = open_pr(conf, "https://github.test/octo/widget.git", "airlock/j_1", "main",
                          "Fix the test", "Made by a job.")
        check(rc == 0 and out["url"] == "https://github.test/octo/widget/pull/1",
              "the pull request's html_url", out)
        reqs = gh.received("/repos/octo/widget/pulls")
        check(len(reqs) == 1, "one request reached the API", gh.requests)
        h = reqs[0]["headers"]
        check(h.get("authorization") == f"Bearer {REAL}",
              "the REAL upstream credential reached the forge API", h.get("authorization"))
        check(h.get("accept") == "application/vnd.github+json"
              and h.get("x-github-api-version") == "2022-11-28"
              and h.get("user-agent", "").startswith("airlockd/"), "GitHub's headers", h)
        check(json.loads(reqs[0]["body"]) == {"title": "Fix the test", "head": "airlock/j_1",
                                              "base": "main", "body": "Made by a job."},
              "GitHub's body", reqs[0]["body"])

        # 2. a second for the same head: 422 -> conflict with GitHub's message
        rc, out = open_pr(conf, "https://github.test/octo/widget", "airlock/j_1")
        check(rc == 2 and out["code"] == "conflict"
              and "A pull request already exists" in out["message"], "422 is a conflict", out)

        # 3. a credential the forge refuses: 401 -> forbidden
        rc, out = open_pr(conf, "https://github.test/wrongorg/widget", "airlock/j_2")
        check(rc == 2 and out["code"] == "forbidden" and "401" in out["message"],
              "401 is forbidden", out)
        check(gh.received("/repos/wrongorg")[-1]["headers"]["authorization"] == f"Bearer {WRONG}",
              "each repository's own credential is used", gh.requests[-1])

        # 4. a repository the forge does not know: 404 -> not_found
        creds_add(store, master, "github.test/octo/nothere", REAL)
        rc, out = open_pr(conf, "https://github.test/octo/nothere", "airlock/j_3")
        check(rc == 2 and out["code"] == "not_found", "404 is not_found", out)

        # 5. no credential for the repository: nothing is sent
        n = len(gh.requests)
        rc, out = open_pr(conf, "https://github.test/nobody/widget", "airlock/j_4")
        check(rc == 2 and out["code"] == "forbidden" and "no upstream credential" in out["message"],
              "no credential: forbidden", out)
        check(len(gh.requests) == n, "nothing sent without a credential", gh.requests[n:])

        # 6. a redirect is not followed: the token goes nowhere else
        rc, out = open_pr(conf, "https://github.test/redirect/repo", "airlock/j_5")
        check(rc == 2 and out["code"] == "upstream", "a redirect is an upstream error", out)
        check(not gh.received("/stolen"), "the redirect was not followed", gh.requests)

        # 7. TLS is verified: a certificate the system's CAs do not know
        n = len(gh.requests)
        rc, out = open_pr(conf, "https://untrusted.test/octo/widget", "airlock/j_6")
        check(rc == 2 and out["code"] == "upstream", "an untrusted certificate fails", out)
        check(len(gh.requests) == n, "no request over an unverified connection", gh.requests[n:])

        # 8. a host without a configured API, and repository URLs it cannot use
        for bad in ("https://gitlab.test/o/r", "http://github.test/octo/widget",
                    "https://github.test/octo", "https://github.test/../octo/widget",
                    "https://github.test/octo/wid get", "https://user@github.test/octo/widget"):
            rc, out = open_pr(conf, bad, "airlock/j_7")
            check(rc == 2 and out["code"] == "invalid_value", f"{bad} refused", out)
        rc, out = open_pr(conf, "https://github.test/octo/widget", "bad branch")
        check(rc == 2 and out["code"] == "invalid_value", "a bad head branch refused", out)
        check(len(gh.received("/repos/octo/widget")) == 2, "none of them was sent", gh.requests)
        gh.stop()
        print("ok: forge_pr")
        return 0
    except Fail as e:
        print(f"FAIL: forge_pr: {e}")
        return 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- the hook -----------------------------------------------------------------

def sign(body, secret=HOOK_SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hook(d, event, payload, sig=True, delivery=None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "User-Agent": "GitHub-Hookshot/test"}
    if sig is True:
        headers["X-Hub-Signature-256"] = sign(body)
    elif sig:
        headers["X-Hub-Signature-256"] = sig
    return d.request("POST", "/v1/hooks/github", raw=body, key=None, headers=headers,
                     ctype="application/json")


def comment(text, repo="Octo/Widget", association="COLLABORATOR", number=7, pr=False, cid=1,
            age_s=0):
    """A comment event as GitHub sends it, the comment made age_s ago."""
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - age_s))
    issue = {"number": number, "title": "a bug"}
    if pr:
        issue["pull_request"] = {"url": "https://api.github.test/repos/octo/widget/pulls/7"}
    return {"action": "created", "issue": issue,
            "comment": {"id": cid, "body": text, "user": {"login": "octocat"},
                        "created_at": created, "updated_at": created,
                        "author_association": association,
                        "html_url": f"https://github.test/{repo}/issues/{number}#issuecomment-1"},
            "repository": {"full_name": repo,
                           "clone_url": f"https://github.test/{repo}.git"},
            "sender": {"login": "octocat"}}


def ignored(r, what, reason):
    check(r.status == 200 and r.json.get("ignored") is True
          and reason in r.json.get("reason", ""), f"{what}: 200, ignored ({reason})", r)


def jobs_of(d, key="alice"):
    r = d.get("/v1/jobs", key=key)
    check(r.status == 200, "GET /v1/jobs", r)
    j = r.json
    return j.get("jobs", j.get("items", j)) if isinstance(j, dict) else j


@case
def hook_github(d):
    # authentication: the signature over the raw body
    p = comment("/airlock fix the failing test")
    body = json.dumps(p).encode()
    for sig, what in ((None, "no signature"), ("sha256=" + "0" * 64, "a wrong signature"),
                      (sign(body, "another-secret"), "another secret's signature"),
                      (sign(body)[:-1], "a truncated signature"),
                      ("sha1=" + hashlib.sha1(body).hexdigest(), "a sha1 signature"),
                      (sign(body + b" "), "the signature of another body")):
        r = hook(d, "issue_comment", None, sig=sig or False, raw=body)
        check(r.status == 401 and r.error_code() == "unauthorized", f"{what}: 401 JSON error", r)
    check(len(jobs_of(d)) == 0, "no job from an unsigned delivery", jobs_of(d))

    # what is read and ignored, with the reason
    ignored(hook(d, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1}), "ping", "ping")
    ignored(hook(d, "push", {"ref": "refs/heads/main"}), "a push", "not a comment event")
    ignored(hook(d, "issue_comment", comment("please fix it")), "a comment without the command",
            "does not start with /airlock")
    ignored(hook(d, "issue_comment", comment("/airlockfix")), "a longer word",
            "does not start with /airlock")
    e = comment("/airlock fix")
    e["action"] = "edited"
    ignored(hook(d, "issue_comment", e), "an edited comment", "not \"created\"")
    ignored(hook(d, "issue_comment", comment("/airlock fix", repo="octo/other")),
            "an unmapped repository", "no template")
    ignored(hook(d, "issue_comment", comment("/airlock fix", association="NONE")),
            "a stranger's comment", "may not start jobs")
    r = hook(d, "issue_comment", None, raw=b'{"action": "created", "comment": ')
    check(r.status == 400 and r.error_code(), "signed malformed JSON: 400 JSON error", r)
    r = hook(d, "issue_comment", {"action": "created", "comment": {"body": "/airlock"}})
    check(r.status == 400 and r.error_code(), "a comment event without its fields: 400", r)
    check(len(jobs_of(d)) == 0, "nothing above started a job", jobs_of(d))

    # a comment that starts a job, as the template's user
    delivery = str(uuid.uuid4())
    p = comment("/airlock fix the failing test\nplease", pr=True)
    r = hook(d, "issue_comment", p, delivery=delivery)
    check(r.status == 201 and r.json.get("started") is True, "201, a job started", r)
    job = r.json["job"]
    check(JOB_ID.match(job["id"]) and job["user"] == "alice", "alice's job", job)
    listed = [j["id"] for j in jobs_of(d)]
    check(listed == [job["id"]], "GET /v1/jobs lists it", listed)
    got = {}

    def finished():
        g = d.get(f"/v1/jobs/{job['id']}", key="alice")
        check(g.status == 200, "GET /v1/jobs/ID", g)
        got["j"] = g.json
        if g.json.get("session"):
            d.sessions.add(g.json["session"])
        return g.json["state"] in FINAL
    wait_until(120, finished, "the hook's job finishes")
    check(got["j"]["state"] == "succeeded", "the job succeeded", got["j"])
    out = d.get(f"/v1/jobs/{job['id']}/output", key="alice")
    check(out.status == 200, "GET output", out)
    text = out.body.decode(errors="replace")
    check("args=[fix the failing test\nplease]" in text and "pr=7 issue=7" in text
          and "repo=Octo/Widget" in text and "author=octocat" in text
          and "comment=[/airlock fix the failing test\nplease]" in text,
          "the comment reached the job's environment", text)

    # GitHub's redelivery: the same delivery id, the same job
    r = hook(d, "issue_comment", p, delivery=delivery)
    check(r.status == 200 and r.json.get("job", {}).get("id") == job["id"]
          and r.json.get("replayed") is True, "a redelivery answers the same job", r)
    # the same signed body under another delivery id (the header is not
    # signed): still the same job, keyed by the signed comment id
    r = hook(d, "issue_comment", p)
    check(r.status == 200 and r.json.get("job", {}).get("id") == job["id"],
          "a replayed body with a new delivery id answers the same job", r)
    check([j["id"] for j in jobs_of(d)] == [job["id"]], "still one job", jobs_of(d))
    # another comment is another job
    r = hook(d, "issue_comment", comment("/airlock again", cid=2))
    check(r.status == 201 and r.json["job"]["id"] != job["id"], "another comment, another job",
          r)
    second = r.json["job"]["id"]
    wait_until(120, lambda: d.get(f"/v1/jobs/{second}", key="alice").json["state"] in FINAL,
               "the second job finishes")
    sid = d.get(f"/v1/jobs/{second}", key="alice").json.get("session")
    if sid:
        d.sessions.add(sid)
    # bob (not the template's user) does not see it
    check(d.get(f"/v1/jobs/{job['id']}", key="bob").status == 404, "bob does not see it")
    # A signed body captured once (a log, a proxy, the repository's
    # delivery list) and replayed once its Idempotency-Key (24 h) is gone
    # must not start the job again: a comment older than 23 h is ignored;
    # one GitHub cannot have sent without a date is not started either.
    before = len(jobs_of(d))
    ignored(hook(d, "issue_comment", comment("/airlock replayed", cid=3, age_s=2 * 86400)),
            "a two-day-old comment (a replayed delivery)", "older than")
    undated = comment("/airlock undated", cid=4)
    del undated["comment"]["created_at"]
    ignored(hook(d, "issue_comment", undated), "a comment without created_at", "created_at")
    bad = comment("/airlock bad date", cid=5)
    bad["comment"]["created_at"] = "yesterday"
    r = hook(d, "issue_comment", bad)
    check(r.status == 400 and r.error_code(), "a malformed created_at: 400", r)
    check(len(jobs_of(d)) == before, "no job from an old, undated or misdated comment",
          jobs_of(d))


@case
def hook_not_configured(d):
    body = json.dumps(comment("/airlock x")).encode()
    r = hook(d, "issue_comment", None, raw=body)
    check(r.status == 404 and r.error_code() == "not_found", "no hooks.github: 404 JSON error", r)


def main():
    global CLIENT, CREDS_TOOL
    if len(sys.argv) != 5 or sys.argv[4] not in list(CASES) + ["forge_pr"]:
        print(f"usage: {sys.argv[0]} AIRLOCKD FORGE_PR_CLIENT AIRLOCK_CREDS CASE\n"
              f"cases: forge_pr {' '.join(CASES)}", file=sys.stderr)
        return 2
    binary, CLIENT, CREDS_TOOL, name = sys.argv[1:]
    for b in (binary, CLIENT, CREDS_TOOL):
        if not os.access(b, os.X_OK):
            print(f"SKIP: {b} is not built")
            return SKIP
    if not shutil.which("openssl"):
        print("SKIP: needs openssl")
        return SKIP
    if name == "forge_pr":
        return forge_pr()
    config = {}
    scratch = tempfile.mkdtemp(prefix="airlockd-hook.")
    if name == "hook_github":
        secret = os.path.join(scratch, "hook.secret")
        with open(secret, "w") as f:
            f.write(HOOK_SECRET + "\n")
        os.chmod(secret, 0o600)
        script = ('echo "comment=[$AIRLOCK_COMMENT]"; echo "args=[$AIRLOCK_COMMENT_ARGS]"; '
                  'echo "pr=$AIRLOCK_PR_NUMBER issue=$AIRLOCK_ISSUE_NUMBER"; '
                  'echo "repo=$AIRLOCK_REPOSITORY author=$AIRLOCK_COMMENT_AUTHOR"')
        config["hooks"] = {"github": {
            "secret_file": secret, "host": "github.test",
            "repos": {"octo/widget": {"user": "alice", "job": {
                "repo": None, "command": ["sh", "-c", script]}}}}}
    d = Daemon(binary, config, name=name)
    try:
        return run_case(d, name, CASES[name])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
