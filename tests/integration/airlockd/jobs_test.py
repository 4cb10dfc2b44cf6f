#!/usr/bin/env python3
"""Jobs (issue 14, docs/jobs.md) against the real airlockd: POST /v1/jobs
runs a command in a session of its own to its end; the job keeps its state,
exit code and output; queued while the running-job limits are used;
cancelled, timed out, retried with an Idempotency-Key, picked up again
after a restart; bad input refused with a JSON error. (A job that pushes
through the real git proxy: jobs_push_test.py.)

usage: jobs_test.py AIRLOCKD CASE     Exit 0 pass, 1 fail, 77 skip."""

import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SKIP, Daemon, check, run_case, wait_until  # noqa: E402

JOB_ID = re.compile(r"^j_[0-9a-f]{20}$")
FINAL = ("succeeded", "failed", "cancelled", "timed_out")
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def submit(d, body, key="alice", expect=201, headers=None):
    r = d.post("/v1/jobs", body, key=key, headers=headers)
    check(r.status == expect, f"POST /v1/jobs answers {expect}", r)
    if r.status in (200, 201):
        check(JOB_ID.match(r.json.get("id", "")), "a job id is j_ + 20 hex", r.json)
    return r


def job(d, jid, key="alice"):
    r = d.get(f"/v1/jobs/{jid}", key=key)
    check(r.status == 200, f"GET /v1/jobs/{jid}", r)
    if r.json.get("session"):
        d.sessions.add(r.json["session"])  # the harness checks what it leaves
    return r.json


def wait_state(d, jid, states, seconds=120, key="alice"):
    got = {}

    def reached():
        got["j"] = job(d, jid, key)
        return got["j"]["state"] in states
    wait_until(seconds, reached, f"job {jid} reaches {states}")
    return got["j"]


def output(d, jid, key="alice"):
    r = d.get(f"/v1/jobs/{jid}/output", key=key)
    check(r.status == 200, "GET output", r)
    return r


def session_exec(d, sid, cmd):
    return d.run(sid, cmd)


@case
def job_no_repo(d):
    """The issue's whole job: a command, nothing else."""
    r = submit(d, {"command": ["sh", "-c", "echo hi; echo err >&2"]})
    j = r.json
    check(j["state"] in ("queued", "running") and j["user"] == "alice"
          and j["command"] == ["sh", "-c", "echo hi; echo err >&2"] and j["exit_code"] is None,
          "the job as queued", j)
    j = wait_state(d, j["id"], FINAL)
    check(j["state"] == "succeeded" and j["exit_code"] == 0, "it succeeded with exit 0", j)
    check(j["session"] and j["session"].startswith("s_") and j["started_at"]
          and j["finished_at"] and j["created_at"], "session and times recorded", j)
    out = output(d, j["id"])
    check(out.body == b"hi\nerr\n", "its output (stdout and stderr) is kept", out.body)
    check(out.header("X-Airlock-Output-Truncated") == "false", "not truncated", out)
    s = d.session(j["session"])
    check(s["state"] == "deleted" and s["end_reason"] == "job-finished",
          "the job's session ended with it", s)
    lst = d.get("/v1/jobs")
    check(lst.status == 200 and [x["id"] for x in lst.json["jobs"]] == [j["id"]],
          "GET /v1/jobs lists it", lst)
    check(d.get("/v1/jobs", key="bob").json["jobs"] == [], "bob sees none of alice's jobs")
    # a script, in an empty workspace
    j2 = wait_state(d, submit(d, {"script": "pwd; ls -A | wc -l"}).json["id"], FINAL)
    check(j2["state"] == "succeeded", "a script job", j2)
    check(output(d, j2["id"]).body == b"/workspace\n0\n", "ran in an empty /workspace",
          output(d, j2["id"]).body)


@case
def job_failing(d):
    j = submit(d, {"command": ["sh", "-c", "echo about to fail; exit 3"]}).json
    j = wait_state(d, j["id"], FINAL)
    check(j["state"] == "failed" and j["exit_code"] == 3 and j["error"], "failed, exit_code 3", j)
    check(output(d, j["id"]).body == b"about to fail\n", "the output of a failed job")
    j = wait_state(d, submit(d, {"command": ["/no/such/program"]}).json["id"], FINAL)
    check(j["state"] == "failed" and j["exit_code"] != 0, "a command that does not exist", j)


@case
def job_cancel(d):
    j = submit(d, {"script": "echo started; sleep 600"}).json
    j = wait_state(d, j["id"], ("running",))
    wait_until(60, lambda: output(d, j["id"]).body == b"started\n", "the command has started")
    r = d.post(f"/v1/jobs/{j['id']}/cancel", {})
    check(r.status == 200 and r.json["state"] == "cancelled", "cancel answers the cancelled job",
          r)
    check(output(d, j["id"]).body == b"started\n", "output kept after the cancel")
    s = d.session(r.json["session"])
    check(s["state"] == "deleted", "its session ended", s)
    r = d.post(f"/v1/jobs/{j['id']}/cancel", {})
    check(r.status == 409 and r.json["error"]["code"] == "conflict",
          "cancelling a finished job: 409", r)


@case
def job_timeout(d):
    j = submit(d, {"script": "echo tick; sleep 600", "timeout_s": 2}).json
    check(j["timeout_s"] == 2, "timeout_s kept", j)
    j = wait_state(d, j["id"], FINAL)
    check(j["state"] == "timed_out", "timed_out", j)
    check(output(d, j["id"]).body == b"tick\n", "output of the timed-out job")


@case
def job_idempotency(d):
    body = {"command": ["sh", "-c", "echo once"], "timeout_s": 60}
    h = {"Idempotency-Key": "retry-1"}
    first = submit(d, body, headers=h).json
    again = d.post("/v1/jobs", body, headers=h)
    check(again.status == 200 and again.json["id"] == first["id"]
          and again.header("Idempotent-Replayed") == "true", "the same key: the same job", again)
    # the same body in another key order is the same body
    again = d.post("/v1/jobs", {"timeout_s": 60, "command": ["sh", "-c", "echo once"]}, headers=h)
    check(again.status == 200 and again.json["id"] == first["id"], "key order does not matter",
          again)
    other = d.post("/v1/jobs", {"command": ["sh", "-c", "echo twice"]}, headers=h)
    check(other.status == 409 and other.json["error"]["code"] == "conflict",
          "the same key with another body: 409", other)
    # another user's same key is another job
    bobs = submit(d, body, key="bob", headers=h).json
    check(bobs["id"] != first["id"], "keys are per user", bobs)
    # the session key space is separate
    r = d.post("/v1/sessions", {}, headers=h)
    check(r.status == 201, "a session with the same key is a new session", r)
    d.sessions.add(r.json["id"])
    bad = d.post("/v1/jobs", body, headers={"Idempotency-Key": "x" * 129})
    check(bad.status == 400 and bad.json["error"]["field"] == "Idempotency-Key",
          "a bad key: 400", bad)
    wait_state(d, first["id"], FINAL)
    wait_state(d, bobs["id"], FINAL, key="bob")
    lst = d.get("/v1/jobs").json["jobs"]
    check([x["id"] for x in lst] == [first["id"]], "one job for the retried POSTs", lst)


@case
def job_queue(d):
    """jobs.max_running_per_user 1 (main): a second job of alice waits
    queued until the first ends; bob's runs meanwhile."""
    a = submit(d, {"script": "while [ ! -e /workspace/go ]; do sleep 0.1; done; echo a"}).json
    a = wait_state(d, a["id"], ("running",))
    wait_until(60, lambda: job(d, a["id"])["session"] is not None, "a has a session")
    wait_until(60, lambda: d.get(f"/v1/sessions/{job(d, a['id'])['session']}").json["state"]
               == "ready", "a's session is ready")
    b = submit(d, {"command": ["sh", "-c", "echo b"]}).json
    c = submit(d, {"command": ["sh", "-c", "echo bob"]}, key="bob").json
    c = wait_state(d, c["id"], FINAL, key="bob")
    check(c["state"] == "succeeded", "bob's job ran while alice's waited", c)
    check(job(d, b["id"])["state"] == "queued", "alice's second job is queued",
          job(d, b["id"]))
    # a queued job's output is empty, its cancel of another queued job works
    q = submit(d, {"command": ["true"]}).json
    r = d.post(f"/v1/jobs/{q['id']}/cancel", {})
    check(r.status == 200 and r.json["state"] == "cancelled" and r.json["session"] is None,
          "a queued job is cancelled without a session", r)
    # let the first one finish: the second starts
    session_exec(d, job(d, a["id"])["session"], "touch /workspace/go")
    a = wait_state(d, a["id"], FINAL)
    check(a["state"] == "succeeded", "the first job finished", a)
    b = wait_state(d, b["id"], FINAL)
    check(b["state"] == "succeeded" and output(d, b["id"]).body == b"b\n",
          "the queued job ran once there was room", b)


@case
def job_queue_limit(d):
    """A user cannot queue without bound: with one job running and
    jobs.max_queued_per_user (default 100) queued, the next POST is 429
    quota_exceeded, before anything is stored; another user still queues,
    and a cancel makes room again. (Every queued row is read by the
    scheduler every two seconds: an unbounded queue is a memory and CPU
    denial of service by one ordinary user.)"""
    a = submit(d, {"script": "while [ ! -e /workspace/go ]; do sleep 0.1; done"}).json
    a = wait_state(d, a["id"], ("running",))
    queued = []
    for i in range(100):
        r = d.post("/v1/jobs", {"command": ["true"]})
        if r.status != 201:
            break
        queued.append(r.json["id"])
    check(len(queued) == 100, "100 jobs queue", len(queued))
    r = d.post("/v1/jobs", {"command": ["true"]})
    check(r.status == 429 and r.json["error"]["code"] == "quota_exceeded",
          "the 101st queued job: 429 quota_exceeded", r)
    if r.status == 201:
        queued.append(r.json["id"])
    lst = d.get("/v1/jobs?state=queued&limit=500").json["jobs"]
    check(len(lst) == len(queued), "nothing stored for the refused POST", len(lst))
    b = submit(d, {"command": ["true"]}, key="bob").json
    b = wait_state(d, b["id"], FINAL, key="bob")
    check(b["state"] == "succeeded", "bob's queue is his own", b)
    r = d.post(f"/v1/jobs/{queued.pop()}/cancel", {})
    check(r.status == 200, "a cancel", r)
    r = d.post("/v1/jobs", {"command": ["true"]})
    check(r.status == 201, "room again after a cancel", r)
    if r.status == 201:
        queued.append(r.json["id"])
    for jid in queued:
        d.post(f"/v1/jobs/{jid}/cancel", {})
    session_exec(d, job(d, a["id"])["session"], "touch /workspace/go")
    wait_state(d, a["id"], FINAL)


@case
def job_removed_user(d):
    """A queued job runs as its user as the user is when it starts, not as
    they were when it was queued: a user removed meanwhile (`airlockd admin
    user rm`: keys revoked) gets no session from a job queued before."""
    d.add_user("carol")
    a = submit(d, {"script": "while [ ! -e /workspace/go ]; do sleep 0.1; done"},
               key="carol").json
    a = wait_state(d, a["id"], ("running",), key="carol")
    b = submit(d, {"command": ["sh", "-c", "echo ran"]}, key="carol").json
    check(job(d, b["id"], key="carol")["state"] == "queued", "carol's second job is queued")
    d.admin("user", "rm", "carol")
    r = d.post(f"/v1/jobs/{a['id']}/cancel", {}, key="root-admin")
    check(r.status == 200 and r.json["state"] == "cancelled", "the admin cancels the first", r)
    b = wait_state(d, b["id"], FINAL, key="root-admin")
    check(b["state"] == "failed" and b["session"] is None and "carol" in (b["error"] or ""),
          "the queued job of a removed user fails without a session", b)
    if b.get("session"):
        d.sessions.add(b["session"])


@case
def job_restart(d):
    """A running job over an airlockd restart: its sandbox is re-adopted and
    its command's end finishes the job; a queued job stays queued and runs
    after."""
    a = submit(d, {"script": "echo before; while [ ! -e /workspace/go ]; do sleep 0.1; done;"
                             " echo after; exit 7"}).json
    a = wait_state(d, a["id"], ("running",))
    wait_until(60, lambda: output(d, a["id"]).body == b"before\n", "the command runs")
    q = submit(d, {"command": ["sh", "-c", "echo queued-one"]}).json
    check(job(d, q["id"])["state"] == "queued", "the second job is queued", q)
    d.kill9()
    d.start()
    j = job(d, a["id"])
    check(j["state"] == "running", "still running after the restart", j)
    check(job(d, q["id"])["state"] == "queued", "still queued after the restart")
    session_exec(d, j["session"], "touch /workspace/go")
    j = wait_state(d, a["id"], FINAL)
    check(j["state"] == "failed" and j["exit_code"] == 7,
          "the re-adopted command's end finished the job", j)
    check(output(d, a["id"]).body == b"before\nafter\n", "its whole output", output(d, a["id"]))
    q = wait_state(d, q["id"], FINAL)
    check(q["state"] == "succeeded" and output(d, q["id"]).body == b"queued-one\n",
          "the queued job ran after the restart", q)
    # a drained stop (SIGTERM) keeps the job running too
    b = submit(d, {"script": "while [ ! -e /workspace/go ]; do sleep 0.1; done; echo drained"}).json
    b = wait_state(d, b["id"], ("running",))
    wait_until(60, lambda: job(d, b["id"])["session"] is not None, "b has a session")
    wait_until(60, lambda: d.get(f"/v1/sessions/{job(d, b['id'])['session']}").json["state"]
               == "ready", "b's session is ready")
    d.stop()
    d.start()
    b = job(d, b["id"])
    check(b["state"] == "running", "running after a SIGTERM restart", b)
    session_exec(d, b["session"], "touch /workspace/go")
    b = wait_state(d, b["id"], FINAL)
    check(b["state"] == "succeeded" and output(d, b["id"]).body == b"drained\n",
          "finished after the SIGTERM restart", b)


class Receiver:
    """A webhook receiver on loopback (the daemon's config allows private
    addresses for this case): keeps every delivery (headers, body)."""

    def __init__(self):
        got = self.got = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                got.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hook" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def events(self, subject):
        return [json.loads(b) for _, b in self.got if json.loads(b)["data"].get("id") == subject]


@case
def job_webhook(d):
    """job.queued, job.started, job.finished reach the job's webhook, each
    signed with its secret (X-Airlock-Signature-256: sha256=HMAC of the
    body); the secret is never returned."""
    rx = Receiver()
    secret = "s3cret-for-the-hook"
    j = submit(d, {"command": ["sh", "-c", "echo hook"],
                   "webhook": {"url": rx.url, "secret": secret}}).json
    check(j["webhook"] == {"url": rx.url}, "the job shows the URL, not the secret", j)
    j = wait_state(d, j["id"], FINAL)
    wait_until(60, lambda: len(rx.events(j["id"])) >= 3, "three deliveries")
    evs = rx.events(j["id"])
    check([e["event"] for e in evs] == ["job.queued", "job.started", "job.finished"],
          "queued, started, finished in order", evs)
    check(evs[2]["data"]["state"] == "succeeded" and evs[2]["data"]["exit_code"] == 0,
          "job.finished carries the result", evs[2])
    for headers, body in rx.got:
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        check(headers.get("X-Airlock-Signature-256") == want, "a valid signature", headers)
        check(headers.get("X-Airlock-Delivery") and headers.get("X-Airlock-Timestamp"),
              "a delivery id and a timestamp", headers)
    for path in (f"/v1/jobs/{j['id']}", "/v1/jobs"):
        check(secret not in d.get(path).body.decode(), f"{path} never shows the secret")
    rx.srv.shutdown()


def err(r, status, field=None, code=None):
    ok = r.status == status and (r.header("Content-Type") or "").startswith("application/json")
    e = (r.json or {}).get("error", {}) if ok else {}
    ok = ok and isinstance(e.get("message"), str) and e.get("code")
    if field is not None:
        ok = ok and e.get("field") == field
    if code is not None:
        ok = ok and e.get("code") == code
    return ok


@case
def job_bad_input(d):
    bad = [
        ({}, "command"),
        ({"command": []}, "command"),
        ({"command": "echo hi"}, "command"),
        ({"command": [1]}, "command"),
        ({"command": [""]}, "command"),
        ({"command": ["a"], "script": "b"}, "command"),
        ({"script": ""}, "script"),
        ({"script": 5}, "script"),
        ({"command": ["true"], "timeout_s": 0}, "timeout_s"),
        ({"command": ["true"], "timeout_s": "10"}, "timeout_s"),
        ({"command": ["true"], "timeout_s": 10 ** 9}, "timeout_s"),
        ({"command": ["true"], "push": "yes"}, "push"),
        ({"command": ["true"], "push": True}, "push"),  # no repo
        ({"command": ["true"], "pull_request": {"title": "t"}}, "pull_request"),
        ({"command": ["true"], "pull_request": []}, "pull_request"),
        ({"command": ["true"], "pull_request": {"title": "t", "x": 1}}, "pull_request.x"),
        ({"command": ["true"], "webhook": {"url": 3}}, "webhook.url"),
        ({"command": ["true"], "webhook": {"url": "ftp://x/", "secret": "s"}}, "webhook.url"),
        ({"command": ["true"], "webhook": {"url": "http://x/"}}, "webhook.secret"),
        ({"command": ["true"], "webhook": {"url": "http://x/", "secret": 1}}, "webhook.secret"),
        ({"command": ["true"], "webhook": {"url": "http://x/", "y": 1}}, "webhook.y"),
        ({"command": ["true"], "webhook": "http://x/"}, "webhook"),
        ({"command": ["true"], "webhook": {"url": "http://127.0.0.1:9/", "secret": "s"}},
         "webhook.url"),
        ({"command": ["true"], "webhook": {"url": "http://169.254.169.254/", "secret": "s"}},
         "webhook.url"),
        ({"command": ["true"], "webhook": {"url": "http://[::1]:9/", "secret": "s"}},
         "webhook.url"),
        ({"command": ["true"], "webhook": {"url": "http://10.1.2.3/", "secret": "s"}},
         "webhook.url"),
        ({"command": ["true"], "limits": {"memory_mb": "x"}}, None),
        ({"command": ["true"], "nonsense": 1}, None),
        ({"command": ["true"], "env": {"A": 1}}, None),
        ({"command": ["true"], "repo": 5}, None),
    ]
    for body, field in bad:
        r = d.post("/v1/jobs", body)
        check(err(r, 400, field), f"POST /v1/jobs {json.dumps(body)[:80]}: 400 on {field}", r)
    r = d.post("/v1/jobs", {"command": ["true"], "settings": {"sandbox": {
        "network": {"allowAllDomains": True}}}})
    check(err(r, 403), "a settings widening refused as for sessions: 403", r)
    for raw in (b"", b"{", b"[]", b"null", b'{"command": ["a"], "command": ["b"]}'):
        r = d.post("/v1/jobs", raw=raw, ctype="application/json")
        check(err(r, 400, code="invalid_json"), f"body {raw!r}: 400 invalid_json", r)
    r = d.post("/v1/jobs", raw=b"{}", ctype="text/plain")
    check(400 <= r.status < 500 and r.json.get("error"), "a non-JSON type: 4xx JSON error", r)
    r = d.request("POST", "/v1/jobs", body={"command": ["true"]}, key=None)
    check(err(r, 401), "no key: 401", r)
    # ids
    r = d.get("/v1/jobs/j_%00")
    check(err(r, 400, code="invalid_path"), "a NUL in the id: 400", r)
    for path in ("/v1/jobs/nope", "/v1/jobs/j_00000000000000000000", "/v1/jobs/j_%2e%2e",
                 "/v1/jobs/s_00000000000000000000", "/v1/jobs/J_0000000000000000000A"):
        for sub, method in (("", "GET"), ("/output", "GET"), ("/cancel", "POST")):
            r = d.request(method, path + sub, body={} if method == "POST" else None)
            check(err(r, 404, code="not_found"), f"{method} {path}{sub}: 404", r)
    # another user's job is not found
    j = submit(d, {"command": ["sh", "-c", "echo mine"]}).json
    for sub, method in (("", "GET"), ("/output", "GET"), ("/cancel", "POST")):
        r = d.request(method, f"/v1/jobs/{j['id']}{sub}", key="bob",
                      body={} if method == "POST" else None)
        check(err(r, 404, code="not_found"), f"bob {method} alice's job{sub}: 404", r)
    wait_state(d, j["id"], FINAL)
    r = d.get(f"/v1/jobs/{j['id']}", key="root-admin")
    check(r.status == 200, "an admin sees it", r)
    for q in ("state=bogus", "limit=0", "limit=x", "limit=501", "cursor=-1"):
        r = d.get("/v1/jobs?" + q)
        check(err(r, 400), f"GET /v1/jobs?{q}: 400", r)
    r = d.get("/v1/jobs?state=succeeded&limit=1")
    check(r.status == 200 and [x["id"] for x in r.json["jobs"]] == [j["id"]],
          "list by state", r)
    r = d.request("PUT", "/v1/jobs", body={})
    check(400 <= r.status < 500, "an unknown method: 4xx", r)
    check(json.dumps(d.get(f"/v1/jobs/{j['id']}").json).find("secret") < 0, "no secret field")


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print(f"usage: {sys.argv[0]} AIRLOCKD CASE\ncases: {' '.join(CASES)}", file=sys.stderr)
        return 2
    binary, name = sys.argv[1:]
    if not os.access(binary, os.X_OK):
        print(f"SKIP: {binary} is not built")
        return SKIP
    config = {}
    if name in ("job_queue", "job_queue_limit", "job_removed_user"):
        config["jobs"] = {"max_running_per_user": 1}
    if name == "job_webhook":
        config["webhooks"] = {"allow_private": True}
    if name == "job_restart":
        config["jobs"] = {"max_running": 1}
    d = Daemon(binary, config, name=name)
    return run_case(d, name, CASES[name])


if __name__ == "__main__":
    sys.exit(main())
