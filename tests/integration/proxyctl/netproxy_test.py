"""airlock-netproxy --control: sessions, live policy, approvals, removal,
restarts; real curl through the proxy to an HTTP server on loopback.
Usage: netproxy_test.py BUILD_DIR"""
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctl import (Proxy, check, control_path_case, finish, listener, malformed_cases,
                 proc_status, runs_as_nobody)  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
PROXY = os.path.join(BUILD, "netproxy", "airlock-netproxy")
T = tempfile.mkdtemp(prefix="airlock-proxyctl-np.", dir="/var/tmp")
LOG = os.path.join(T, "netproxy.log")


class Upstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from %s\n" % self.headers.get("Host", "?").split(":")[0]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


up = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
UP = up.server_address[1]
threading.Thread(target=up.serve_forever, daemon=True).start()

HOSTS = []
for h in ("allowed.test", "denied.test", "other.test", "new.test", "new2.test", "new3.test"):
    HOSTS += ["--hosts", h + "=127.0.0.1"]


def start():
    return Proxy([PROXY, "--user", "nobody", "--hosts-only", "--approval-timeout", "60000", "-v"]
                 + HOSTS, LOG)


def policy(allow, deny=()):
    """The typed network policy (airlock/netpolicy.h, docs/control-protocol.md)."""
    return {"allowed_domains": list(allow), "denied_domains": list(deny),
            "allowed_addresses": ["127.0.0.1"], "allow_all_domains": False,
            "require_sni_match": True}


def curl_cmd(host, port, socks=False):
    via = ["--socks5-hostname", "127.0.0.1:%d" % port] if socks else ["-x", "http://127.0.0.1:%d" % port]
    return ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "50", "--noproxy", ""] + via + [
        "http://%s:%d/" % (host, UP)]


def curl(host, port, socks=False):
    r = subprocess.run(curl_cmd(host, port, socks), capture_output=True, text=True, timeout=90)
    body, _, code = r.stdout.rpartition("\n")
    return code, body.strip()


def decision(p, session, host, what):
    return p.wait_event(lambda e: e.get("kind") == "decision" and e.get("session") == session
                        and e["data"].get("host") == host and e["data"].get("decision") == what)


def refused_connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return False
    except OSError:
        return True


p = start()
check("net_hello", p.hello.get("proxy") == "netproxy" and p.hello.get("pid") == p.proc.pid, p.hello)
ok, st = runs_as_nobody(p.proc.pid)
check("net_runs_as_nobody", ok, st)

h1, H1 = listener()
s1, S1 = listener()
h2, H2 = listener()
a1 = p.request("session_add", fds=[h1, s1], session="s1", user="alice",
               policy=policy(["allowed.test"], ["denied.test", "other.test"]),
               listeners=[{"kind": "http", "fd": 0}, {"kind": "socks5", "fd": 1}])
a2 = p.request("session_add", fds=[h2], session="s2", user="bob",
               policy=policy(["other.test"], ["allowed.test"]),
               listeners=[{"kind": "http", "fd": 0}])
check("net_session_add_acked", a1["ok"] and a2["ok"], (a1, a2))

code, body = curl("allowed.test", H1)
ev = decision(p, "s1", "allowed.test", "allow")
check("net_allowed_host", code == "200" and body == "hello from allowed.test", (code, body))
check("net_allow_decision_event", ev is not None and ev["data"]["port"] == UP
      and ev["data"]["proxy"] == "http" and ev["data"]["reason"], ev)

code, body = curl("denied.test", H1)
ev = decision(p, "s1", "denied.test", "deny")
check("net_denied_host", code == "403", (code, body))
check("net_deny_decision_event", ev is not None and ev["data"]["reason"] == "blocked-by-policy"
      and ev["data"]["status"] == 403, ev)

code, body = curl("allowed.test", S1, socks=True)
check("net_socks5_allowed", code == "200" and body == "hello from allowed.test", (code, body))

# Two sessions, two policies, never crossed.
c_other_1, _ = curl("other.test", H1)
c_other_2, b2 = curl("other.test", H2)
c_allowed_2, _ = curl("allowed.test", H2)
check("net_sessions_keep_their_policies",
      c_other_1 == "403" and c_other_2 == "200" and b2 == "hello from other.test"
      and c_allowed_2 == "403", (c_other_1, c_other_2, c_allowed_2))
ev = decision(p, "s2", "allowed.test", "deny")
check("net_decision_event_names_the_session", ev is not None, ev)

# Live policy change.
ack = p.request("session_policy", session="s1", policy=policy([], ["allowed.test"]))
code, _ = curl("allowed.test", H1)
check("net_session_policy_applies_live", ack["ok"] and code == "403", (ack, code))
ack = p.request("session_policy", session="s1",
                policy=policy(["allowed.test"], ["denied.test", "other.test"]))
code, _ = curl("allowed.test", H1)
check("net_session_policy_restored", ack["ok"] and code == "200", (ack, code))

# Approvals: the connection is held until "approve" arrives.
held = subprocess.Popen(curl_cmd("new.test", H1), stdout=subprocess.PIPE, text=True)
ev = p.wait_event(lambda e: e.get("kind") == "approval_request" and e["data"].get("host") == "new.test")
check("net_approval_request_event", ev is not None and ev["session"] == "s1"
      and ev["data"]["port"] == UP and isinstance(ev["data"]["id"], int), ev)
ack = p.request("approve", session="s1", approval=ev["data"]["id"] if ev else 0, verdict="once")
out = held.communicate(timeout=90)[0]
check("net_approve_once_releases_held_request", ack["ok"] and out.endswith("\n200")
      and "hello from new.test" in out, (ack, out))

held = subprocess.Popen(curl_cmd("new.test", H1), stdout=subprocess.PIPE, text=True)
ev = p.wait_event(lambda e: e.get("kind") == "approval_request" and e["data"].get("host") == "new.test")
check("net_once_means_once", ev is not None, ev)
p.request("approve", session="s1", approval=ev["data"]["id"] if ev else 0, verdict="deny")
out = held.communicate(timeout=90)[0]
check("net_approve_deny_refuses", out.endswith("\n403"), out)

held = subprocess.Popen(curl_cmd("new2.test", H1), stdout=subprocess.PIPE, text=True)
ev = p.wait_event(lambda e: e.get("kind") == "approval_request" and e["data"].get("host") == "new2.test")
p.request("approve", session="s1", approval=ev["data"]["id"] if ev else 0, verdict="session")
out = held.communicate(timeout=90)[0]
# The next request to that host needs no answer (curl would time out after
# 50 s otherwise, and the test would fail, not wait).
code, _ = curl("new2.test", H1)
check("net_approve_session_sticks", out.endswith("\n200") and code == "200", (out, code))

ack = p.request("approve", session="s1", approval=1, verdict="maybe")
check("net_approve_bad_verdict_error_ack", ack["ok"] is False, ack)
ack = p.request("session_add", fds=[listener()[0]], session="s3", policy=policy([]),
                listeners=[{"kind": "git", "fd": 0}])
check("net_git_listener_refused", ack["ok"] is False, ack)
ack = p.request("session_add", fds=[listener()[0]], session="s3", policy=policy(["*.other.test"]),
                listeners=[{"kind": "http", "fd": 0}])
ack2 = p.request("session_add", fds=[listener()[0]], session="s3",
                 policy=dict(policy([]), allowed_domains=["*.com"]),
                 listeners=[{"kind": "http", "fd": 0}])
check("net_bad_policy_error_ack", ack["ok"] and ack2["ok"] is False and "*.com" in ack2["error"],
      (ack, ack2))
# A settings document is not a policy: the netproxy loads no settings.
for bad in ({"network": {"allowedDomains": ["allowed.test"]}},
            {"sandbox": {"network": {"allowedDomains": ["allowed.test"]}}},
            dict(policy(["allowed.test"]), allowedDomains=["evil.test"]),
            {k: v for k, v in policy(["allowed.test"]).items() if k != "require_sni_match"},
            dict(policy(["allowed.test"]), require_sni_match="false")):
    ack3 = p.request("session_policy", session="s3", policy=bad)
    check("net_untyped_policy_refused", ack3["ok"] is False and "policy of session s3" in ack3["error"],
          (bad, ack3))
ack = p.request("session_policy", session="nope", policy=policy([]))
check("net_unknown_session_error_ack", ack["ok"] is False, ack)

# Re-sending a session with the same sockets keeps them served.
ack = p.request("session_add", fds=[h2], session="s2", user="bob",
                policy=policy(["other.test"], ["allowed.test"]), listeners=[{"kind": "http", "fd": 0}])
code, _ = curl("other.test", H2)
check("net_session_add_same_socket_keeps_serving", ack["ok"] and code == "200", (ack, code))

# session_remove: the listener refuses connections, the other session goes on.
ack = p.request("session_remove", session="s2")
check("net_session_remove_closes_listener", ack["ok"] and refused_connect(H2), ack)
code, _ = curl("allowed.test", H1)
check("net_other_session_unaffected_by_remove", code == "200", code)
ack = p.request("session_policy", session="s2", policy=policy(["other.test"]))
check("net_removed_session_unknown", ack["ok"] is False, ack)

# kill -9, restart, re-send (same sockets: airlockd keeps its copies).
p.kill9()
p = start()
ack = p.request("session_add", fds=[h1, s1], session="s1", user="alice",
                policy=policy(["allowed.test"], ["denied.test", "other.test"]),
                listeners=[{"kind": "http", "fd": 0}, {"kind": "socks5", "fd": 1}])
code, body = curl("allowed.test", H1)
code2, _ = curl("other.test", H1)
code3, _ = curl("allowed.test", S1, socks=True)
check("net_restart_and_resend", ack["ok"] and code == "200" and code2 == "403" and code3 == "200",
      (ack, code, code2, code3))
ok, st = runs_as_nobody(p.proc.pid)
check("net_restarted_runs_as_nobody", ok, st)


# The split (docs/netproxy.md, "Processes"): the key holder's one child is
# the front, which runs as nobody with no_new_privs and a seccomp filter;
# the key holder is not dumpable (its /proc files stay root's).
def children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(x) for x in f.read().split()]


def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def wait_gone(pid):
    for _ in range(300):
        if gone(pid):
            return True
        time.sleep(0.1)
    return False


front = children(p.proc.pid)
st = proc_status(front[0]) if len(front) == 1 else {}
check("net_front_hardened", len(front) == 1 and runs_as_nobody(front[0])[0]
      and st.get("Seccomp") == ["2"], (front, st))
check("net_keyholder_not_dumpable", os.stat("/proc/%d/mem" % p.proc.pid).st_uid == 0,
      os.stat("/proc/%d/mem" % p.proc.pid))
# The front killed: the key holder exits (airlockd restarts the proxy).
os.kill(front[0], signal.SIGKILL)
rc = p.exit_status()
check("net_front_death_ends_keyholder", rc == 1, rc)
p.sock.close()
# The key holder killed: its front sees its control pair close and exits.
p = start()
front = children(p.proc.pid)
p.kill9()
check("net_keyholder_death_ends_front", len(front) == 1 and wait_gone(front[0]), front)
p = start()
p.close()

malformed_cases(start, "net")
control_path_case([PROXY, "--user", "nobody"], LOG, "net")

log = open(LOG, "rb").read().decode(errors="replace")
check("net_no_sanitizer_reports", "AddressSanitizer" not in log and "runtime error" not in log,
      log[-2000:])
if not int(os.environ.get("KEEP", "0") or 0):
    shutil.rmtree(T, ignore_errors=True)
finish("proxyctl netproxy")
