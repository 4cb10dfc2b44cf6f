"""airlock-gitproxy --control: sessions, listeners, revocation, restarts."""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctl import (Proxy, check, control_path_case, finish, listener, malformed_cases,
                 runs_as_nobody)  # noqa: E402

T = os.environ["T"]
STATE = os.environ["STATE"]
PROXY = os.environ["PROXY"]
CREDS = os.environ["CREDS_TOOL"]
REAL_TOKEN = os.environ["REAL_TOKEN"]
SRV = os.environ["SRV"]
CTL = os.path.join(T, "ctl")
os.makedirs(CTL, exist_ok=True)
os.chmod(CTL, 0o755)

config = {
    "store": STATE + "/creds.store", "master_key": STATE + "/master.key",
    "upstreams": {"git.test": {"url": os.environ["UP"]}},
    "cache_dir": CTL + "/cache", "audit_log": CTL + "/audit.jsonl",
    "leak_guard": True, "check_fast_forward": True,
}
with open(CTL + "/gitproxy.json", "w") as f:
    json.dump(config, f)
LOG = CTL + "/gitproxy.log"


with open(STATE + "/k2.key", "rb") as _f:
    KEYS = [{"kid": "k2", "key": _f.read().hex()}]


def start(keys=True):
    """The proxy, given its token keys as airlockd gives them (a `keys`
    message: no component reads another's configuration)."""
    proxy = Proxy([PROXY, "--config", CTL + "/gitproxy.json", "--user", "nobody", "-v"], LOG)
    if keys:
        ack = proxy.request("keys", keys=KEYS)
        check("git_keys_acked", ack["ok"], ack)
    return proxy


def mint(session, repo="git.test/o/r"):
    return subprocess.check_output(
        [CREDS, "token", "mint", "--key", STATE + "/k2.key", "--kid", "k2", "--session", session,
         "--user", "alice", "--repo", repo, "--push-ref", "refs/heads/agent/*", "--ttl", "600"],
        text=True).strip()


HELPER = '!f() { test "$1" = get && echo username=agent && echo "password=$ALK_TOKEN"; }; f'


def git(token, *args, cwd=None):
    env = dict(os.environ, ALK_TOKEN=token)
    r = subprocess.run(["git", "-c", "credential.helper=", "-c", "credential.helper=" + HELPER]
                       + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def upstream_ref(ref):
    r = subprocess.run(["git", "-C", SRV + "/o/r.git", "rev-parse", "-q", "--verify", ref],
                       capture_output=True, text=True)
    return r.stdout.strip() or None


def url(port):
    return "http://127.0.0.1:%d/git.test/o/r.git" % port


TOK_A, TOK_B, TOK_C = mint("sA"), mint("sB"), mint("sC")

p = start(keys=False)
# Before airlockd sent the keys, tokens cannot be checked: 503, try again.
lk, pk = listener()
ack = p.request("session_add", fds=[lk], session="sK", user="alice", policy={},
                listeners=[{"kind": "git", "fd": 0}])
TOK_K = mint("sK")
rc, out = git(TOK_K, "ls-remote", url(pk))
check("git_no_keys_yet_503", rc != 0 and "no token keys yet" in out, out)
for bad in ([], [{"kid": "k2"}], [{"kid": "k2", "key": "zz" * 32}],
            [{"kid": "k2", "key": "00" * 31}], [{"kid": "", "key": "00" * 32}]):
    ack = p.request("keys", keys=bad)
    check("git_keys_malformed_refused %r" % (bad,), not ack["ok"], ack)
ack = p.request("keys", keys=KEYS)
check("git_keys_acked", ack["ok"], ack)
rc, out = git(TOK_K, "ls-remote", url(pk))
check("git_keys_then_token_works", rc == 0 and "refs/heads/main" in out, out)
check("git_hello", p.hello.get("type") == "hello" and p.hello.get("proxy") == "gitproxy"
      and p.hello.get("pid") == p.proc.pid, p.hello)
ok, st = runs_as_nobody(p.proc.pid)
check("git_runs_as_nobody", ok, st)

la, pa = listener()
lb, pb = listener()
ack_a = p.request("session_add", fds=[la], session="sA", user="alice", policy={},
                  listeners=[{"kind": "git", "fd": 0}])
ack_b = p.request("session_add", fds=[lb], session="sB", user="bob", policy={},
                  listeners=[{"kind": "git", "fd": 0}])
check("git_session_add_acked", ack_a["ok"] and ack_b["ok"], (ack_a, ack_b))

rc, out = git(TOK_A, "clone", url(pa), T + "/ctl-a")
check("git_clone_through_session_listener", rc == 0 and os.path.exists(T + "/ctl-a/f1.txt"), out)

rc, out = git(TOK_B, "ls-remote", url(pa))
check("git_other_sessions_token_refused", rc != 0 and "another session" in out, out)

rc, out = git(TOK_A, "ls-remote", url(pb))
check("git_token_refused_on_other_listener", rc != 0 and "another session" in out, out)

W = T + "/ctl-a"
subprocess.run("git checkout -q -b agent/ctl && echo ctl > ctl.txt && git add -A && "
               "git commit -qm ctl", shell=True, cwd=W, check=True)
rc, out = git(TOK_A, "push", "origin", "agent/ctl", cwd=W)
head = subprocess.check_output(["git", "-C", W, "rev-parse", "HEAD"], text=True).strip()
check("git_push_through_session_listener", rc == 0 and upstream_ref("refs/heads/agent/ctl") == head,
      out)
ev = p.wait_event(lambda e: e.get("kind") == "push" and e.get("session") == "sA")
check("git_push_event", ev is not None and ev["data"].get("decision") == "forwarded"
      and ev["data"].get("repo") == "git.test/o/r"
      and ev["data"]["refs"][0]["ref"] == "refs/heads/agent/ctl", ev)

rc, out = git(TOK_A, "push", "origin", "agent/ctl:main", cwd=W)
ev = p.wait_event(lambda e: e.get("kind") == "push" and e["data"].get("decision") == "refused")
check("git_refused_push_event", rc != 0 and ev is not None and ev["session"] == "sA", (out, ev))

ack = p.request("session_policy", session="sA", policy={"network": {"allowedDomains": ["a.test"]}})
check("git_session_policy_acked", ack["ok"], ack)
ack = p.request("approve", session="sA", approval=1, verdict="once")
check("git_approve_refused", ack["ok"] is False, ack)

# session_add of an existing session replaces its listeners.
la2, pa2 = listener()
ack = p.request("session_add", fds=[la2], session="sA", user="alice", policy={},
                listeners=[{"kind": "git", "fd": 0}])
rc, out = git(TOK_A, "ls-remote", url(pa2))
try:
    socket.create_connection(("127.0.0.1", pa), timeout=5).close()
    old_closed = False
except OSError:
    old_closed = True
check("git_session_add_replaces", ack["ok"] and rc == 0 and old_closed, (ack, out))

# A push in flight when its session is removed: the command list and part of
# the pack are sent, then session_remove; nothing may reach upstream.
lc, pc = listener()
ack = p.request("session_add", fds=[lc], session="sC", user="carol", policy={},
                listeners=[{"kind": "git", "fd": 0}])
s = socket.create_connection(("127.0.0.1", pc), timeout=30)
cmd = ("0" * 40 + " " + head + " refs/heads/agent/inflight\0report-status\n").encode()
pkt = b"%04x" % (len(cmd) + 4) + cmd + b"0000" + b"PACK\x00\x00\x00\x02\x00\x00\x00\x05"
chunk = b"%x\r\n" % len(pkt) + pkt + b"\r\n"
s.sendall(("POST /git.test/o/r.git/git-receive-pack HTTP/1.1\r\nHost: x\r\n"
           "Authorization: Bearer %s\r\nContent-Type: application/x-git-receive-pack-request\r\n"
           "Transfer-Encoding: chunked\r\n\r\n" % TOK_C).encode() + chunk)
time.sleep(1)  # lets the proxy get into the body (the outcome must not depend on it)
ack = p.request("session_remove", session="sC")
answer = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        answer += d
except OSError:
    pass
s.close()
check("git_inflight_push_refused_on_remove",
      ack["ok"] and b" ok" not in answer and upstream_ref("refs/heads/agent/inflight") is None,
      (ack, answer[:300]))

# session_remove: listener closed, tokens refused from now on.
ack = p.request("session_remove", session="sA")
try:
    socket.create_connection(("127.0.0.1", pa2), timeout=5).close()
    refused = False
except OSError:
    refused = True
check("git_session_remove_closes_listener", ack["ok"] and refused, ack)
ack = p.request("session_add", fds=[listener()[0]], session="sA", user="alice", policy={},
                listeners=[{"kind": "git", "fd": 0}])
check("git_removed_session_cannot_come_back", ack["ok"] is False, ack)

rc, out = git(TOK_B, "ls-remote", url(pb))
check("git_other_session_unaffected", rc == 0, out)

# Re-sending a session with the very same listening socket keeps it served.
ack = p.request("session_add", fds=[lb], session="sB", user="bob", policy={},
                listeners=[{"kind": "git", "fd": 0}])
rc, out = git(TOK_B, "ls-remote", url(pb))
check("git_session_add_same_socket_keeps_serving", ack["ok"] and rc == 0, (ack, out))

# kill -9, restart, re-send: the same listening socket (the daemon keeps its
# copy) works again.
p.kill9()
p = start()
ack = p.request("session_add", fds=[lb], session="sB", user="bob", policy={},
                listeners=[{"kind": "git", "fd": 0}])
rc, out = git(TOK_B, "clone", url(pb), T + "/ctl-b")
check("git_restart_and_resend", ack["ok"] and rc == 0, (ack, out))
rc, out = git(TOK_A, "ls-remote", url(pb))
check("git_after_restart_other_token_refused", rc != 0 and "another session" in out, out)
p.close()

malformed_cases(start, "git")
control_path_case([PROXY, "--config", CTL + "/gitproxy.json", "--user", "nobody"], LOG, "git")

log = open(LOG, "rb").read().decode(errors="replace")
check("git_real_token_never_logged_or_sent",
      REAL_TOKEN not in log and REAL_TOKEN not in json.dumps(p.events), "")
check("git_no_sanitizer_reports", "AddressSanitizer" not in log and "runtime error" not in log,
      log[-2000:])
finish("proxyctl gitproxy")
