#!/usr/bin/env python3
"""Outgoing webhooks (issue 14, docs/webhooks.md) against the real daemon:
a session's "webhook" hears of each pending approval (approval.pending),
signed with the session's secret; a receiver that is down is retried, across
an airlockd restart (kill -9), and gets each delivery once; the SSRF guard
refuses loopback, link-local and private webhook URLs unless the operator's
webhooks.allow_private says otherwise, at create and again at delivery.

The receiver is a Python HTTP server on loopback that checks every
signature itself (HMAC-SHA256 of the exact body) and counts delivery ids.

usage: webhooks_test.py AIRLOCKD AIRLOCK_SESSION CASE
Exit 0 pass, 1 fail, 77 skip."""

import hashlib
import hmac
import http.server
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SKIP, Daemon, Fail, check, free_port, run_case, thread,  # noqa: E402
                     wait_until)

SECRET = "wh-s3cret-for-the-test"
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class Receiver:
    """An HTTP receiver on 127.0.0.1:port. Every POST is kept with whether
    its X-Airlock-Signature-256 is the HMAC-SHA256 of its body under
    `secret`; answers `status`."""

    def __init__(self, port=None, secret=SECRET, status=200):
        self.port = port or free_port()
        self.secret = secret.encode()
        self.status = status
        self.hold = None  # a threading.Event: answers wait for it
        self.got = []
        self.lock = threading.Lock()
        self.server = None

    def start(self):
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                want = "sha256=" + hmac.new(rec.secret, body, hashlib.sha256).hexdigest()
                sig = self.headers.get("X-Airlock-Signature-256", "")
                item = {"path": self.path, "body": body, "headers": dict(self.headers),
                        "valid": hmac.compare_digest(sig, want)}
                with rec.lock:
                    rec.got.append(item)
                if rec.hold is not None:
                    rec.hold.wait(120)
                self.send_response(rec.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def items(self):
        with self.lock:
            return list(self.got)

    def ids(self):
        return [json.loads(x["body"])["delivery"] for x in self.items()]


def restart_with(d, **webhooks):
    """Rewrites the daemon's config with `webhooks` and starts it again."""
    d.config["webhooks"] = dict(d.config.get("webhooks", {}), **webhooks)
    with open(d.conf_path, "w") as f:
        json.dump(d.config, f, indent=1)
    d.start()


def pending_approval(d, sid):
    """Runs a command in regular session `sid` in a thread (it waits for an
    approval); returns the thread and the pending approval."""
    h = thread(lambda: d.exec(sid, argv=["echo", "approved"]))
    P = f"/v1/sessions/{sid}/approvals"
    a = wait_until(30, lambda: [x for x in d.get(P).json["approvals"]
                                if x["state"] == "pending"], "a pending approval")[0]
    return h, a


def deliveries(d, sid, key="alice"):
    r = d.get(f"/v1/webhooks/deliveries?subject={sid}", key=key)
    check(r.status == 200, "GET /v1/webhooks/deliveries", r)
    check(SECRET not in r.body.decode(), "the delivery log never shows the secret", r)
    return r.json["deliveries"]


def expect_error(r, status, code, field=None):
    check(r.status == status, f"answers {status}", r)
    check(r.error_code() == code, f"error code {code}", r)
    if field:
        check(r.json["error"].get("field") == field, f"the error names {field}", r)


@case
def webhook_approval(d):
    rec = Receiver().start()
    try:
        sid = d.create(mode="regular", webhook={"url": rec.url, "secret": SECRET})
        s = d.session(sid)
        check(SECRET not in json.dumps(s), "the session object never shows the secret", s)
        h, a = pending_approval(d, sid)
        got = wait_until(30, lambda: rec.items(), "the receiver gets approval.pending")[0]
        check(got["valid"], "the signature is the HMAC-SHA256 of the body", got)
        body = json.loads(got["body"])
        hd = {k.lower(): v for k, v in got["headers"].items()}
        check(body["event"] == "approval.pending" and hd["x-airlock-event"] == "approval.pending",
              "event approval.pending", body)
        check(body["delivery"] == hd["x-airlock-delivery"] and body["delivery"].startswith("d_"),
              "X-Airlock-Delivery is the body's delivery id", (body, hd))
        check(hd["x-airlock-timestamp"].isdigit(), "X-Airlock-Timestamp", hd)
        check(hd["content-type"] == "application/json", "JSON body", hd)
        ap = body["data"]["approval"]
        check(body["data"]["session"] == sid and ap["id"] == a["id"] and ap["kind"] == "exec"
              and ap["argv"] == ["echo", "approved"] and ap["state"] == "pending",
              "the approval's id, kind and what it asks", body)
        check(set(body) == {"event", "delivery", "created_at", "data"}, "body keys", body)
        r = d.post(f"/v1/sessions/{sid}/approvals/{a['id']}", {"decision": "allow"})
        check(r.status == 200, "allow", r)
        st, out, *_ = h.result()
        check(st == 200 and out == b"approved\n", "the approved command runs", (st, out))
        # the delivery log: delivered; the owner and an admin see it, bob does not
        log = wait_until(30, lambda: [x for x in deliveries(d, sid)
                                      if x["state"] == "delivered"], "delivered in the log")
        x = log[0]
        check(x["id"] == body["delivery"] and x["attempts"] == 1 and x["last_status"] == 200
              and x["delivered_at"] and x["next_attempt_at"] is None and x["subject"] == sid
              and x["event"] == "approval.pending" and "secret" not in x and "body" not in x,
              "the log row", x)
        check(len(deliveries(d, sid, key="root-admin")) == 1, "an admin sees every row")
        check(deliveries(d, sid, key="bob") == [], "another user sees none")
        # bad input: 4xx with a JSON error
        expect_error(d.get("/v1/webhooks/deliveries"), 400, "invalid_value", "subject")
        expect_error(d.get("/v1/webhooks/deliveries?subject=a%20b"), 400, "invalid_value",
                     "subject")
        expect_error(d.get("/v1/webhooks/deliveries?subject=" + "x" * 65), 400,
                     "invalid_value", "subject")
        check(d.get(f"/v1/webhooks/deliveries?subject={sid}", key=None).status == 401,
              "the log needs a key")
        for bad in ({"url": rec.url}, {"url": rec.url, "secret": ""},
                    {"url": rec.url, "secret": "a b"}, {"url": rec.url, "secret": SECRET, "x": 1},
                    "http://x/", {"url": 5, "secret": SECRET}):
            r = d.create(expect=400, webhook=bad)
            check(r.error_code() in ("invalid_value", "wrong_type")
                  and r.json["error"].get("field", "").startswith("webhook"),
                  "the error names the webhook", r)
    finally:
        rec.stop()


@case
def webhook_retry_restart(d):
    # the receiver is down at first: the delivery is retried, airlockd is
    # killed (-9) mid-retry and started again, the receiver comes up: the
    # delivery arrives exactly once, and is not sent again after another
    # restart (a later delivery arrives after it, never a second copy)
    rec = Receiver()
    sid = d.create(mode="regular", webhook={"url": rec.url, "secret": SECRET})
    st, r = d.exec(sid, argv=["echo", "nobody decides"])
    check(st == 403, "the approval times out", r)
    wait_until(60, lambda: [x for x in deliveries(d, sid)
                            if x["attempts"] >= 2 and x["state"] == "pending"
                            and x["last_status"] is None and x["last_error"]],
               "the delivery failed twice and is still pending")
    d.kill9()
    rec.start()
    try:
        d.start()
        first = wait_until(60, lambda: rec.items(), "the delivery arrives after the restart")
        log = wait_until(30, lambda: [x for x in deliveries(d, sid) if x["state"] == "delivered"],
                         "delivered in the log")
        check(log[0]["attempts"] >= 3 and log[0]["id"] == json.loads(first[0]["body"])["delivery"],
              "the log counts the failed attempts", log)
        d.stop()
        d.start()
        st, r = d.exec(sid, argv=["echo", "again"])
        check(st == 403, "a second approval times out", r)
        wait_until(60, lambda: len(rec.items()) >= 2, "the second delivery arrives")
        ids = rec.ids()
        check(len(ids) == 2 and len(set(ids)) == 2, "each delivery once, none doubled", ids)
        check(all(x["valid"] for x in rec.items()), "every signature valid")
        check(all(x["state"] == "delivered" for x in deliveries(d, sid)), "both delivered")
    finally:
        rec.stop()


@case
def webhook_network_approval(d):
    # a network request the egress proxy holds (a host in neither list) is
    # an approval too: approval.pending names its host and port
    rec = Receiver().start()
    try:
        sid = d.create(webhook={"url": rec.url, "secret": SECRET},
                       settings={"network": {"allowedDomains": ["allowed.test"]}})
        P = f"/v1/sessions/{sid}"
        h = thread(lambda: d.exec(sid, shell="curl -sS -o /dev/null -w '%{http_code}' "
                                  "--max-time 100 http://new.test/; echo"))
        a = wait_until(60, lambda: [x for x in d.get(P + "/approvals").json["approvals"]
                                    if x["state"] == "pending" and x["kind"] == "network"],
                       "a pending network approval")[0]
        got = wait_until(30, lambda: rec.items(), "the receiver gets approval.pending")[0]
        check(got["valid"], "signature valid", got)
        ap = json.loads(got["body"])["data"]["approval"]
        check(ap["id"] == a["id"] and ap["kind"] == "network" and ap["host"] == "new.test"
              and ap["port"] == 80, "the network approval's id, host and port", ap)
        r = d.post(P + f"/approvals/{a['id']}", {"decision": "deny"})
        check(r.status == 200, "deny", r)
        st, out, *_ = h.result()
        check(st == 200 and out == b"403\n", "refused after the deny", (st, out))
    finally:
        rec.stop()


@case
def webhook_by_name(d):
    # a URL with a name: resolved at each attempt, every address vetted and
    # the connection pinned to them ("localhost": ::1 and 127.0.0.1; the
    # receiver listens on 127.0.0.1 only)
    rec = Receiver().start()
    try:
        url = f"http://localhost:{rec.port}/named"
        sid = d.create(mode="regular", webhook={"url": url, "secret": SECRET})
        st, r = d.exec(sid, argv=["echo", "x"])
        check(st == 403, "the approval times out", r)
        got = wait_until(60, lambda: rec.items(), "delivered through the name")[0]
        check(got["valid"] and got["path"] == "/named", "signed, to the URL's path", got)
        hd = {k.lower(): v for k, v in got["headers"].items()}
        check(hd.get("host") == f"localhost:{rec.port}", "Host is the URL's", hd)
    finally:
        rec.stop()


@case
def webhook_slow_receiver(d):
    # a receiver that takes the request and never answers: SIGTERM does not
    # wait for it (webhooks.timeout_s is 300 here, drain_timeout_s 30 by
    # default, the harness kills after 40 s: a clean exit 0 means the
    # attempt was abandoned); the delivery stays pending and is sent again
    # by the next airlockd (at least once: the same delivery id)
    rec = Receiver()
    rec.hold = threading.Event()
    rec.start()
    try:
        sid = d.create(mode="regular", webhook={"url": rec.url, "secret": SECRET})
        st, r = d.exec(sid, argv=["echo", "x"])
        check(st == 403, "the approval times out", r)
        wait_until(30, lambda: rec.items(), "the receiver holds the delivery")
        d.stop()
        check(d.proc.returncode == 0, "airlockd stopped by itself, not killed",
              d.proc.returncode)
        rec.hold.set()
        rec.hold = None
        d.start()
        wait_until(60, lambda: len(rec.items()) >= 2, "the delivery is sent again")
        ids = rec.ids()
        check(ids[0] == ids[1], "the same delivery id (receivers dedupe by it)", ids)
        log = wait_until(30, lambda: [x for x in deliveries(d, sid) if x["state"] == "delivered"],
                         "delivered in the log")
        check(log[0]["attempts"] == 1, "the abandoned attempt is not counted", log)
    finally:
        rec.hold = None
        rec.stop()


# Every form of a refused address: loopback (decimal, hex, octal, short,
# IPv6, v4-mapped), link-local (the cloud metadata address), private,
# unique-local, unspecified, multicast, a name that resolves to loopback.
REFUSED = ["http://127.0.0.1:9/", "http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/",
           "http://127.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[0::1]:80/x",
           "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/", "http://192.168.0.1/",
           "http://172.16.0.1/", "http://[fd00::1]/", "http://[fe80::1]/", "http://0.0.0.0/",
           "http://224.0.0.1/", "http://localhost:8080/", "HTTP://LOCALHOST/"]
MALFORMED = ["ftp://example.com/", "http://user:pw@example.com/", "http://example.com@127.0.0.1/",
             "http://example.com/\r\nX-Evil: 1", "http://exa mple.com/", "http:///x",
             "http://example.com:0/", "http://example.com:99999/", "http://[::1/",
             "http://example.com/#frag", "http://1.2.3.4.5/", "http://%31%32%37.0.0.1/",
             "javascript:alert(1)", "http://example.com\\@127.0.0.1/", ""]


@case
def webhook_ssrf(d):
    # operator default (webhooks.allow_private false): refused with 400,
    # naming webhook.url, and no session is made
    for url in REFUSED + MALFORMED:
        r = d.create(expect=400, mode="regular", webhook={"url": url, "secret": SECRET})
        check(r.error_code() == "invalid_value" and r.json["error"].get("field") == "webhook.url",
              f"{url!r}: refused naming webhook.url", r)
    check(d.get("/v1/sessions").json.get("sessions", []) == [], "no session was made")
    # a public address is taken (nothing is sent: no approval happens)
    sid = d.create(webhook={"url": "http://93.184.216.34:8080/hook", "secret": SECRET})
    check(deliveries(d, sid) == [], "nothing queued yet")


@case
def webhook_ssrf_delivery(d):
    # the guard holds at delivery time too: a session made while the
    # operator allowed private addresses, then airlockd restarted without:
    # its approval.pending is refused at connect time, never received
    rec = Receiver().start()
    try:
        sid = d.create(mode="regular", webhook={"url": rec.url, "secret": SECRET})
        d.stop()
        restart_with(d, allow_private=False)
        st, r = d.exec(sid, argv=["echo", "x"])
        check(st == 403, "the approval times out", r)
        log = wait_until(60, lambda: [x for x in deliveries(d, sid) if x["attempts"] >= 1],
                         "an attempt was made")
        check(log[0]["state"] in ("pending", "failed") and log[0]["last_status"] is None
              and ("loopback" in (log[0]["last_error"] or "")
                   or "SSRF guard" in (log[0]["last_error"] or "")),
              "refused by the SSRF guard", log)
        check(rec.items() == [], "the receiver got nothing")
        # and a new create is refused now
        d.create(expect=400, webhook={"url": rec.url, "secret": SECRET})
    finally:
        rec.stop()


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in CASES:
        print(f"usage: {sys.argv[0]} AIRLOCKD AIRLOCK_SESSION CASE\ncases: {' '.join(CASES)}",
              file=sys.stderr)
        return 2
    binary, _client, name = sys.argv[1:]
    if not os.access(binary, os.X_OK):
        print(f"SKIP: {binary} is not built")
        return SKIP
    # the receivers are on loopback: every case but webhook_ssrf allows
    # private addresses (webhook_ssrf_delivery withdraws it on restart)
    wh = {"retry_initial_ms": 200, "retry_max_delay_s": 1, "timeout_s": 5}
    if name != "webhook_ssrf":
        wh["allow_private"] = True
    config = {"webhooks": wh, "approval_timeout_s": 2}
    if name == "webhook_approval":
        config["approval_timeout_s"] = 60
    if name == "webhook_slow_receiver":
        wh["timeout_s"] = 300
    d = Daemon(binary, config=config, name=name)
    return run_case(d, name, CASES[name])


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fail as e:
        print(f"FAIL: {e}")
        sys.exit(1)
