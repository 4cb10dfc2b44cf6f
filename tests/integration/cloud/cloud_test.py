"""End-to-end cloud session (issue 6) against a running `airlock up`
(cloud.sh): a session on a repository cloned inside the sandbox through the
git proxy, pushes allowed and refused (the fast-forward check and leak guard
against the gitproxy's mirror), events, isolation between users, the real
token kept out of the sandbox, proxy crashes, and (when the netproxy has its
control mode) the session's network policy, approvals and live changes.
Usage: cloud_test.py SETTINGS_JSON (written by cloud.sh: nothing of the test
is in the environment, which the `airlock up` restarted here inherits)."""
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request

with open(sys.argv[1]) as _f:
    CONF = json.load(_f)
API = CONF["API"]
T = CONF["T"]
SRV = CONF["SRV"]
REAL_TOKEN = CONF["REAL_TOKEN"]
ALD = CONF["ALD"]
ALD_PID = int(CONF["ALD_PID"])
ALICE = CONF["KEY_ALICE"]
BOB = CONF["KEY_BOB"]
NET_ADDR = CONF.get("NET_ADDR", "")  # the host's address alice is granted
# the network checks need the netproxy's control mode and a grantable address
NET = CONF.get("NET_CONTROL") == "1" and NET_ADDR != ""
# the test's own git commands (never airlock's): identity and settings from
# the test's gitconfig, on those commands only
GIT_ENV = dict(os.environ, GIT_CONFIG_GLOBAL=CONF["GITCONFIG"], GIT_CONFIG_NOSYSTEM="1",
               GIT_TERMINAL_PROMPT="0", LC_ALL="C")
WAIT = 60  # seconds before a missing answer counts as a hang (not a timing assertion)

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


def call(key, method, path, body=None, headers=None, timeout=WAIT):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + key)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def run(key, sid, shell, env=None, timeout=WAIT):
    """Foreground exec: (exit code, stdout+stderr)."""
    code, text = call(key, "POST", "/v1/sessions/%s/exec" % sid,
                      {"shell": shell, "env": env or {}, "merge_stderr": True,
                       "timeout_s": timeout - 5}, timeout=timeout)
    if code != 200:
        return None, "HTTP %d %s" % (code, text)
    out, rc = [], None
    for line in text.splitlines():
        m = json.loads(line)
        if m.get("type") == "exit":
            rc = m.get("code")
        elif "data" in m:
            out.append(m["data"])
    return rc, "".join(out)


def events(key, sid, want, timeout=WAIT):
    """Replays the session's events until one satisfies want(type, data)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        req = urllib.request.Request(API + "/v1/sessions/%s/events" % sid)
        req.add_header("Authorization", "Bearer " + key)
        req.add_header("Last-Event-ID", "0")
        etype = None
        try:
            with urllib.request.urlopen(req, timeout=3) as r:
                for raw in r:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        etype = line[7:]
                    elif line.startswith("data: ") and etype:
                        data = json.loads(line[6:])
                        if want(etype, data):
                            return etype, data
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    return None


def wait_expired(key, sid):
    """Polls the session until it is expired (or WAIT passes); returns its
    last state (None when it could not be read)."""
    state = None
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        code, text = call(key, "GET", "/v1/sessions/" + sid)
        state = json.loads(text).get("state") if code == 200 else None
        if state == "expired":
            break
        time.sleep(0.2)
    return state


def pgrep_children(parent, name):
    out = subprocess.run(["pgrep", "-P", str(parent), "-x", name], capture_output=True,
                         text=True).stdout.split()
    return [int(p) for p in out]


def children(name):
    """The processes `name` of the daemon: the airlockd started (ALD_PID)
    runs it as the child of its reaper (docs/airlockd.md, "Who reaps a
    sandbox that outlived its daemon")."""
    return [p for r in pgrep_children(ALD_PID, "airlockd-reaper")
            for d in pgrep_children(r, "airlockd") for p in pgrep_children(d, name)]


def wait_child(name, other_than=None):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        pids = [p for p in children(name) if p != other_than]
        if pids:
            return pids[0]
        time.sleep(0.05)
    return None


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return line.split()[1:]
    return None


def dropped(pid, uid):
    """Waits until the proxy has dropped to `uid` (it reads its keys and
    configuration as root first)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if pid and uid_of(pid) == [uid] * 4:
            return True
        time.sleep(0.05)
    return False


def sandbox_pid(sid):
    """A process of the session's sandbox, found through its cgroup."""
    for root, _, _ in os.walk("/sys/fs/cgroup"):
        if os.path.basename(root) != "airlock-" + sid:
            continue
        for sub, _, files in os.walk(root):
            if "cgroup.procs" in files:
                pids = open(os.path.join(sub, "cgroup.procs")).read().split()
                if pids:
                    return int(pids[0])
    return None


def upstream_ref(ref, repo=None):
    r = subprocess.run(["git", "-c", "safe.directory=*", "-C", repo or SRV + "/o/r.git",
                        "rev-parse", "-q", "--verify", ref],
                       capture_output=True, text=True, env=GIT_ENV)
    return r.stdout.strip() or None


# ---- the proxies ----
gp = wait_child("airlock-gitprox")
check("cloud_gitproxy_supervised", gp is not None, children("airlock-gitprox"))
nobody = subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout.strip()
check("cloud_gitproxy_runs_as_nobody", dropped(gp, nobody), gp and uid_of(gp))
if NET:
    np_ = wait_child("airlock-netprox")
    check("cloud_netproxy_supervised", np_ is not None and dropped(np_, nobody),
          np_ and uid_of(np_))

if CONF.get("NET_CONTROL") == "1" and not NET_ADDR:
    print("SKIP: the network checks (the host has no non-loopback IPv4 address to grant)",
          flush=True)

# ---- a session on the repository ----
settings = {"network": {"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"],
                        "allowedAddresses": [NET_ADDR] if NET_ADDR else []}}
code, text = call(ALICE, "POST", "/v1/sessions",
                  {"repo": "https://git.test/o/r.git", "settings": settings}, timeout=120)
s = json.loads(text) if code == 201 else {}
SID = s.get("id", "")
check("cloud_create_with_repo", code == 201 and s.get("state") == "ready"
      and s.get("branch") == "airlock/" + SID and s.get("repo") == "https://git.test/o/r.git",
      (code, text))
BRANCH = "airlock/" + SID

rc, out = run(ALICE, SID, "git rev-parse --abbrev-ref HEAD; git config remote.origin.url; ls; env")
check("cloud_clone_inside_on_branch", rc == 0 and out.splitlines()[0] == BRANCH
      and "f1.txt" in out, out)
check("cloud_remote_is_the_real_url", out.splitlines()[1:2] == ["https://git.test/o/r.git"], out)
if NET:
    check("cloud_exec_env_has_proxies", "HTTP_PROXY=http://127.0.0.1:3128" in out
          and "ALL_PROXY=socks5h://127.0.0.1:1080" in out and "NO_PROXY=localhost" in out
          and "JAVA_TOOL_OPTIONS=-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=3128" in out, out)

# origin keeps its real URL everywhere git shows it; git-remote-airlock (bound
# read-only, first on PATH) sends it to the git listener; no insteadOf left
rc, out = run(ALICE, SID, "git remote -v; git config --get remote.origin.url;"
              " git config --get remote.origin.vcs; git config --list | grep -ci insteadof;"
              " command -v git-remote-airlock")
lines = out.splitlines()
check("cloud_remote_v_shows_the_real_url",
      lines[:2] == ["origin\thttps://git.test/o/r.git (fetch)",
                    "origin\thttps://git.test/o/r.git (push)"], out)
check("cloud_remote_config_real_url_and_helper",
      lines[2:5] == ["https://git.test/o/r.git", "airlock", "0"], out)
HELPER = lines[5] if len(lines) > 5 else ""
rc, out = run(ALICE, SID, "H=$(command -v git-remote-airlock); cp /bin/true \"$H\" 2>&1;"
              " rm -f \"$H\" 2>&1; mv \"$H\" \"$H.x\" 2>&1; touch \"${H%/*}/git-remote-x\" 2>&1;"
              " test -w \"$H\" && echo WRITABLE; cmp -s \"$H\" /bin/true && echo REPLACED;"
              " test -e \"${H%/*}/git-remote-x\" && echo ADDED;"
              " case \"$PATH\" in \"${H%/*}\":*) echo FIRST-ON-PATH;; esac;"
              " git ls-remote origin 2>&1")
check("cloud_remote_helper_read_only", HELPER.endswith("/git-remote-airlock")
      and "WRITABLE" not in out and "REPLACED" not in out and "ADDED" not in out
      and "FIRST-ON-PATH" in out and "refs/heads/main" in out, (HELPER, rc, out))
if NET:
    # another https host is not sent to the git listener: git remote-https
    # through the egress proxy, which refuses the denied host
    rc, out = run(ALICE, SID, "git -c remote.z.vcs=airlock -c remote.z.url=https://denied.test/o/r.git"
                  " ls-remote z 2>&1")
    check("cloud_remote_helper_other_host_goes_direct", rc != 0 and "refs/heads" not in out
          and "7418" not in out and "denied.test" in out, (rc, out))

rc, out = run(ALICE, SID, "git config user.email a@example.com && git config user.name alice"
              " && echo edit > agent.txt && git add agent.txt && git commit -qm agent"
              " && git rev-parse HEAD && git push 2>&1")
head = out.splitlines()[0] if out else ""
check("cloud_push_session_branch", rc == 0 and upstream_ref("refs/heads/" + BRANCH) == head,
      (rc, out, upstream_ref("refs/heads/" + BRANCH)))
ev = events(ALICE, SID, lambda t, d: t == "push" and d.get("decision") == "forwarded")
check("cloud_push_event", ev is not None and ev[1].get("session") == SID, ev)

# The session branch has history upstream now: a second push updates it, so
# the gitproxy runs the fast-forward check (and the leak guard) before the end
# of the pack goes upstream. The new commit's parent is the old tip: the
# pushed pack shows the fast-forward by itself, and no mirror of the
# repository is fetched (the mirror is only for histories that leave the pack).
rc, out = run(ALICE, SID, "echo more >> agent.txt && git commit -qam more"
              " && git rev-parse HEAD && git push 2>&1")
head2 = out.splitlines()[0] if out else ""
MIRROR = ALD + "-gitproxy-cache/mirrors/git.test/o/r.git"
ev = events(ALICE, SID, lambda t, d: t == "push" and d.get("decision") == "forwarded"
            and [r.get("old") for r in d.get("refs", [])] == [head])
check("cloud_push_session_branch_fast_forward", rc == 0 and head2 != head
      and upstream_ref("refs/heads/" + BRANCH) == head2 and ev is not None
      and not os.path.exists(MIRROR),
      (rc, out, upstream_ref("refs/heads/" + BRANCH), ev, os.path.exists(MIRROR)))

main_before = upstream_ref("refs/heads/main")
rc, out = run(ALICE, SID, "git push origin HEAD:main 2>&1")
check("cloud_push_main_refused", rc != 0 and "airlock" in out
      and upstream_ref("refs/heads/main") == main_before, (rc, out))
ev = events(ALICE, SID, lambda t, d: t == "push" and d.get("decision") == "refused")
check("cloud_push_refused_event", ev is not None, ev)

# ---- the scoped token is only for the git listener ----
FILL = "printf 'protocol=%s\\nhost=%s\\npath=o/r.git\\n\\n' | GIT_TERMINAL_PROMPT=0 git credential fill"
rc, out = run(ALICE, SID, FILL % ("http", "127.0.0.1:7418") + " 2>&1")
scoped = [l[len("password="):] for l in out.splitlines() if l.startswith("password=")]
check("cloud_credential_answers_for_the_listener", rc == 0 and len(scoped) == 1
      and len(scoped[0]) > 20, (rc, out))
SCOPED = scoped[0] if scoped else "no-token"
for name, proto, host in (("evil_host", "https", "evil.test"), ("real_host", "https", "git.test"),
                          ("other_port", "http", "127.0.0.1:3128"),
                          ("allowed_host", "https", "allowed.test")):
    rc, out = run(ALICE, SID, FILL % (proto, host) + " 2>&1")
    check("cloud_credential_not_for_" + name, rc != 0 and SCOPED not in out
          and "password=" not in out, (rc, out))

# a malformed URL is refused by the helper with its reason, before any request
rc, out = run(ALICE, SID, "git -c remote.x.vcs=airlock -c remote.x.url=https://u@git.test/o/r.git"
              " ls-remote x 2>&1; git -c remote.y.vcs=airlock"
              " -c remote.y.url=https://git.test/o/../r.git ls-remote y 2>&1")
check("cloud_remote_helper_refuses_malformed_urls", "refs/heads" not in out
      and "git-remote-airlock: the URL carries a user name" in out
      and "git-remote-airlock: the URL path is malformed" in out, (rc, out))

# ---- the session's network, through the netproxy ----
WEB = CONF.get("WEB_PORT", "0")
CURL = "curl -sS --max-time 50 -o - -w ' %%{http_code}' http://%s:" + WEB + "/hello.txt"
if NET:
    rc, out = run(ALICE, SID, CURL % "allowed.test")
    check("cloud_net_allowed", rc == 0 and out == "hello-from-upstream\n 200", (rc, out))
    rc, out = run(ALICE, SID, CURL % "denied.test")
    check("cloud_net_denied", out.endswith(" 403") and "hello" not in out, (rc, out))
    ev = events(ALICE, SID, lambda t, d: t == "network" and d.get("host") == "denied.test"
                and d.get("decision") == "deny")
    check("cloud_net_deny_event", ev is not None, ev)
    code, text = call(ALICE, "POST", "/v1/sessions/%s/exec" % SID,
                      {"shell": (CURL % "new.test") + " > /workspace/new.out 2>&1",
                       "background": True})
    aid = None
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and not aid:
        c, t = call(ALICE, "GET", "/v1/sessions/%s/approvals" % SID)
        for a in json.loads(t).get("approvals", []) if c == 200 else []:
            if a.get("kind") == "network" and a.get("host") == "new.test" \
                    and a.get("state") == "pending":
                aid = a["id"]
        time.sleep(0.1)
    check("cloud_net_approval_listed", code == 202 and aid is not None, (code, text, aid))
    ev = events(ALICE, SID, lambda t, d: t == "approval" and d.get("kind") == "network")
    check("cloud_net_approval_event", ev is not None and ev[1].get("host") == "new.test", ev)
    code, text = call(ALICE, "POST", "/v1/sessions/%s/approvals/%s" % (SID, aid),
                      {"decision": "allow"})
    rc, out = run(ALICE, SID, "while ! grep -q ' 200' new.out 2>/dev/null; do sleep 0.1; done;"
                  " cat new.out")
    check("cloud_net_approved_request_succeeds", code == 200 and "hello-from-upstream" in out,
          (code, text, out))
    np_ = wait_child("airlock-netprox")
    os.kill(np_, 9)
    np2 = wait_child("airlock-netprox", other_than=np_)
    rc, out = run(ALICE, SID, CURL % "allowed.test")
    check("cloud_netproxy_restarted_and_working", np2 is not None
          and out == "hello-from-upstream\n 200", (np_, np2, rc, out))

# ---- live policy ----
code, text = call(ALICE, "PATCH", "/v1/sessions/%s/policy" % SID,
                  {"network": {"allowedDomains": ["new.test"], "deniedDomains": ["allowed.test"],
                               "allowedAddresses": [NET_ADDR] if NET_ADDR else []}})
check("cloud_policy_patch", code == 200, (code, text))
# a live change may not widen either: loopback is never grantable
code, text = call(ALICE, "PATCH", "/v1/sessions/%s/policy" % SID,
                  {"network": {"allowedAddresses": ["127.0.0.1"]}})
check("cloud_policy_patch_cannot_widen", code == 403
      and "allowedAddresses" in json.loads(text).get("error", {}).get("message", ""),
      (code, text))
if NET:
    rc, out = run(ALICE, SID, CURL % "allowed.test")
    check("cloud_policy_applies_live", out.endswith(" 403"), (rc, out))
code, text = call(ALICE, "PATCH", "/v1/sessions/%s/policy" % SID, {"filesystem": {}})
code2, _ = call(BOB, "PATCH", "/v1/sessions/%s/policy" % SID, {"network": {}})
check("cloud_policy_patch_checked", code == 400 and code2 == 404, (code, text, code2))
ev = events(ALICE, SID, lambda t, d: t == "policy")
check("cloud_policy_event", ev is not None, ev)

# ---- users ----
code_get, _ = call(BOB, "GET", "/v1/sessions/" + SID)
code_exec, _ = call(BOB, "POST", "/v1/sessions/%s/exec" % SID, {"argv": ["true"]})
code_del, _ = call(BOB, "DELETE", "/v1/sessions/" + SID)
check("cloud_bob_cannot_touch_alices_session",
      (code_get, code_exec, code_del) == (404, 404, 404), (code_get, code_exec, code_del))

code, text = call(BOB, "POST", "/v1/sessions", {"repo": "https://git.test/o/r.git"},
                  timeout=120)
BSID = json.loads(text).get("id", "") if code == 201 else ""
check("cloud_bob_session", code == 201, (code, text))
rc, out = run(ALICE, SID, 'echo "$GIT_CONFIG_VALUE_1"')
alice_helper = out.strip()
rc, out = run(BOB, BSID, "git -c credential.helper= -c \"credential.helper=$H\" ls-remote"
              " http://127.0.0.1:7418/git.test/o/r.git 2>&1", env={"H": alice_helper})
check("cloud_alices_token_refused_in_bobs_session", rc != 0 and "refs/heads/main" not in out
      and "password=" in alice_helper, (rc, out, alice_helper[:40]))

# ---- branches are the server's ----
def create(key, body):
    code, text = call(key, "POST", "/v1/sessions", body, timeout=120)
    try:
        return code, json.loads(text)
    except ValueError:
        return code, {"raw": text}


def err_msg(obj):
    return obj.get("error", {}).get("message", "")


def live_sessions(key):
    code, text = call(key, "GET", "/v1/sessions?limit=500")
    return [x for x in json.loads(text).get("sessions", []) if x.get("state")
            in ("creating", "ready", "deleting")] if code == 200 else None


REPO = "https://git.test/o/r.git"
code, obj = create(BOB, {"repo": REPO, "branch": "airlock/" + SID})
check("cloud_branch_of_another_session_409", code == 409
      and obj.get("error", {}).get("code") == "conflict", (code, obj))
code, obj = create(BOB, {"repo": REPO, "base": "main", "branch": "main"})
check("cloud_branch_main_with_base_409", code == 409 and "protected_refs" in err_msg(obj),
      (code, obj))
code, obj = create(BOB, {"repo": REPO, "branch": "main"})
check("cloud_branch_main_without_base_409_names_protected_refs", code == 409
      and "protected_refs" in err_msg(obj) and "clone" not in err_msg(obj), (code, obj))
code, obj = create(BOB, {"repo": REPO, "branch": "release/x"})
check("cloud_branch_release_409", code == 409 and "protected_refs" in err_msg(obj), (code, obj))
code, obj = create(BOB, {"repo": REPO, "branch": "feature/x"})
check("cloud_branch_outside_pattern_409", code == 409 and "branch_pattern" in err_msg(obj),
      (code, obj))

# a branch that already exists upstream: refused by the clone, torn down
EXISTING = "airlock/existing-" + secrets.token_hex(4)
subprocess.run(["git", "-C", SRV + "/o/r.git", "branch", EXISTING, "main"], check=True)
before = {x["id"] for x in live_sessions(BOB) or []}
for name, branch in (("exists", EXISTING), ("below_existing", EXISTING + "/sub"),
                     ("case_of_existing", EXISTING.upper().replace("AIRLOCK/", "airlock/"))):
    code, obj = create(BOB, {"repo": REPO, "branch": branch})
    after = live_sessions(BOB)
    check("cloud_branch_%s_upstream_409" % name, code == 409 and "upstream" in err_msg(obj)
          and after is not None and {x["id"] for x in after} == before
          and upstream_ref("refs/heads/" + EXISTING) == upstream_ref("refs/heads/main"),
          (code, obj, after))
code, text = call(BOB, "GET", "/v1/sessions?state=failed&limit=500")
refused = [x for x in json.loads(text).get("sessions", [])
           if (x.get("end_reason") or "").startswith("create-refused")] if code == 200 else []
check("cloud_branch_refused_session_torn_down", len(refused) == 3
      and all(x.get("state") == "failed" for x in refused)
      and not any(sandbox_pid(x["id"]) for x in refused), refused)

# the upstream's default branch, inside the pattern (o/other's HEAD points at it)
DFLT = "airlock/trunk-" + secrets.token_hex(4)
OTHER = SRV + "/o/other.git"
subprocess.run(["git", "-C", OTHER, "branch", DFLT, "main"], check=True)
subprocess.run(["git", "-C", OTHER, "symbolic-ref", "HEAD", "refs/heads/" + DFLT], check=True)
code, obj = create(BOB, {"repo": "https://git.test/o/other.git", "branch": DFLT})
check("cloud_branch_default_of_upstream_409", code == 409 and "default branch" in err_msg(obj),
      (code, obj))
subprocess.run(["git", "-C", OTHER, "symbolic-ref", "HEAD", "refs/heads/main"], check=True)

# a good custom branch: created, and the push lands there only
CUSTOM = "airlock/feature-" + secrets.token_hex(4)
code, obj = create(BOB, {"repo": REPO, "branch": CUSTOM})
CSID = obj.get("id", "")
check("cloud_branch_custom_created", code == 201 and obj.get("branch") == CUSTOM, (code, obj))
rc, out = run(BOB, CSID, "git config user.email b@example.com && git config user.name bob"
              " && echo b > bob.txt && git add bob.txt && git commit -qm bob"
              " && git rev-parse HEAD && git rev-parse --abbrev-ref HEAD && git push 2>&1")
lines = out.splitlines()
check("cloud_branch_custom_push_lands", rc == 0 and lines[1:2] == [CUSTOM]
      and upstream_ref("refs/heads/" + CUSTOM) == lines[0], (rc, out))
main_before = upstream_ref("refs/heads/main")
rc, out = run(BOB, CSID, "git push origin HEAD:refs/heads/airlock/other-x HEAD:main 2>&1")
check("cloud_branch_custom_only_that_branch", rc != 0
      and upstream_ref("refs/heads/main") == main_before
      and upstream_ref("refs/heads/airlock/other-x") is None, (rc, out))
# nobody else may take it, while the session lives or after it ended
code, obj = create(ALICE, {"repo": REPO, "branch": CUSTOM})
check("cloud_branch_of_a_live_session_409", code == 409, (code, obj))
code, obj = create(ALICE, {"repo": REPO, "branch": CUSTOM + "/x"})
check("cloud_branch_below_a_live_session_409", code == 409, (code, obj))
call(BOB, "DELETE", "/v1/sessions/" + CSID)
code, obj = create(BOB, {"repo": REPO, "branch": CUSTOM.upper().replace("AIRLOCK/", "airlock/")})
check("cloud_branch_of_an_ended_session_409", code == 409, (code, obj))

# ---- what an API user may set: only restrictions ----
WIDE = [("loopback", {"allowedAddresses": ["127.0.0.1"]}),
        ("loopback6", {"allowedAddresses": ["::1"]}),
        ("metadata", {"allowedAddresses": ["169.254.169.254"]}),
        ("mapped_loopback", {"allowedAddresses": ["::ffff:127.0.0.1"]}),
        ("http_proxy_port", {"httpProxyPort": 8080}),
        ("local_binding", {"allowLocalBinding": True}),
        ("all_domains", {"allowAllDomains": True})]
for name, net in WIDE:
    for shape, settings in (("cc", {"sandbox": {"network": net}}), ("srt", {"network": net})):
        code, obj = create(ALICE, {"settings": settings})
        key = list(net)[0]
        check("cloud_settings_%s_%s_403" % (name, shape), code == 403
              and obj.get("error", {}).get("code") == "forbidden" and key in err_msg(obj),
              (code, obj))
if NET_ADDR:
    code, obj = create(BOB, {"settings": {"network": {"allowedAddresses": [NET_ADDR]}}})
    check("cloud_settings_grant_is_per_user_403", code == 403, (code, obj))

# ---- the real token never reaches the sandbox ----
MASK = secrets.token_bytes(len(REAL_TOKEN))
MASKED = bytes(a ^ b for a, b in zip(REAL_TOKEN.encode(), MASK))
SCAN = r'''
import os, sys
m = bytes.fromhex(os.environ["M"]); x = bytes.fromhex(os.environ["X"])
needle = bytes(a ^ b for a, b in zip(m, x))
hits = []
def scan_file(p):
    try:
        with open(p, "rb") as f:
            if needle in f.read(8 << 20):
                hits.append(p)
    except OSError:
        pass
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for leaf in ("environ", "cmdline"):
            scan_file("/proc/%s/%s" % (pid, leaf))
for root in ("/workspace", "/tmp", "/etc", "/home", "/root", "/var", "/run", "/opt", "/srv",
             "/mnt", "/dev/shm"):
    for d, dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                scan_file(p)
print("HITS", hits)
'''
rc, out = run(ALICE, SID,
              "git fetch -q && git config --list --show-origin;"
              " printf 'protocol=http\\nhost=127.0.0.1:7418\\npath=git.test/o/r.git\\n\\n'"
              " | git credential fill;"
              " python3 -c \"$SCAN\"",
              env={"SCAN": SCAN, "M": MASK.hex(), "X": MASKED.hex()}, timeout=120)
check("cloud_secret_nowhere_in_sandbox", rc == 0 and "HITS []" in out
      and REAL_TOKEN not in out, (rc, out[-2000:]))

# ---- proxy crash ----
gp = wait_child("airlock-gitprox")
os.kill(gp, 9)
gp2 = wait_child("airlock-gitprox", other_than=gp)
check("cloud_gitproxy_restarted", gp2 is not None and gp2 != gp, (gp, gp2))
rc, out = run(ALICE, SID, "git fetch origin main 2>&1 && git ls-remote origin 2>&1")
check("cloud_git_works_after_gitproxy_crash", rc == 0 and "refs/heads/" + BRANCH in out,
      (rc, out))

# ---- airlockd killed: the proxies exit with it, the next one re-adopts ----
old_gp = wait_child("airlock-gitprox")
os.kill(ALD_PID, 9)
deadline = time.monotonic() + WAIT
while time.monotonic() < deadline and os.path.exists("/proc/%d" % old_gp):
    try:
        with open("/proc/%d/stat" % old_gp) as f:
            if f.read().split(") ")[1].startswith("Z"):
                break
    except OSError:
        break
    time.sleep(0.05)
check("cloud_proxies_exit_with_airlockd", not os.path.exists("/proc/%d/cmdline" % old_gp)
      or open("/proc/%d/cmdline" % old_gp).read() == "", old_gp)
# A session saved by an airlockd from before the typed network policy holds
# its settings document instead: the restarted daemon reads it once into the
# typed policy (the same rules, the live PATCH above) and never widens it.
import sqlite3  # noqa: E402
db = sqlite3.connect(ALD + "/airlockd.db")
(priv,) = db.execute("SELECT priv FROM sessions WHERE id = ?", (SID,)).fetchone()
priv = json.loads(priv)
typed_before = priv.get("netpolicy", {})
check("cloud_netpolicy_stored_typed",
      sorted(typed_before) == ["allow_all_domains", "allowed_addresses", "allowed_domains",
                               "denied_domains", "require_sni_match"]
      and typed_before["allowed_domains"] == ["new.test"]
      and typed_before["denied_domains"] == ["allowed.test"], typed_before)
priv["netpolicy"] = {"network": {"allowedDomains": ["new.test"],
                                 "deniedDomains": ["allowed.test"],
                                 "allowedAddresses": [NET_ADDR] if NET_ADDR else []}}
db.execute("UPDATE sessions SET priv = ? WHERE id = ?", (json.dumps(priv), SID))
db.commit()
db.close()
os.unlink(ALD + "/airlockd.addr")
log = open(CONF["LOG2"], "w")
ald2 = subprocess.Popen([CONF["AIRLOCK"], "up", "--state-dir", ALD, "--listen", CONF["LISTEN"]],
                        stdout=log, stderr=log)
ALD_PID = ald2.pid
deadline = time.monotonic() + WAIT
while time.monotonic() < deadline and not os.path.exists(ALD + "/airlockd.addr"):
    time.sleep(0.05)
with open(ALD + "/airlockd.addr") as f:
    API = "http://" + f.read().strip()
rc, out = run(ALICE, SID, "git fetch origin main 2>&1 && git ls-remote origin 2>&1")
check("cloud_git_works_after_airlockd_restart", rc == 0 and "refs/heads/" + BRANCH in out,
      (rc, out))
if NET:
    rc, out = run(ALICE, SID, CURL % "allowed.test")
    rc2, out2 = run(ALICE, SID, CURL % "new.test")
    check("cloud_stored_settings_policy_read_after_restart", out.endswith(" 403")
          and out2 == "hello-from-upstream\n 200", (rc, out, rc2, out2))
db = sqlite3.connect("file:%s/airlockd.db?mode=ro" % ALD, uri=True)
(priv,) = db.execute("SELECT priv FROM sessions WHERE id = ?", (SID,)).fetchone()
db.close()
check("cloud_stored_settings_policy_saved_typed",
      json.loads(priv).get("netpolicy") == typed_before, priv)

# ---- deleting the session revokes its token ----
code, _ = call(ALICE, "DELETE", "/v1/sessions/" + SID)
rc, out = run(BOB, BSID, "git -c credential.helper= -c \"credential.helper=$H\" ls-remote"
              " http://127.0.0.1:7418/git.test/o/r.git 2>&1", env={"H": alice_helper})
check("cloud_deleted_session_token_refused", code == 200 and rc != 0, (code, rc, out))

# ---- expiry revokes the token too ----
code, text = call(ALICE, "POST", "/v1/sessions", {"repo": "https://git.test/o/r.git",
                                                  "limits": {"ttl_s": 3}}, timeout=120)
ESID = json.loads(text).get("id", "") if code == 201 else ""
rc, out = run(ALICE, ESID, 'echo "$GIT_CONFIG_VALUE_1"')
e_helper = out.strip()
state = wait_expired(ALICE, ESID)
rc, out = run(BOB, BSID, "git -c credential.helper= -c \"credential.helper=$H\" ls-remote"
              " http://127.0.0.1:7418/git.test/o/r.git 2>&1", env={"H": e_helper})
check("cloud_expired_session_token_refused", state == "expired" and rc != 0
      and "password=" in e_helper
      and "refs/heads/main" not in out, (state, rc, out))

# ---- expiry with a push in flight (issue 6, "Done when" 3) ----
# A raw receive-pack request with the session's scoped token, made from the
# sandbox's network namespace (nsenter from the host, so the connection
# outlives the sandbox), sent but for its last bytes; the session expires;
# the rest is sent: the push must fail and the branch must not move. First a
# control push made the same way on the live session, so the refusal is
# the expiry's and not the method's.
HOLDER = r"""
import base64, socket, sys
body = open(sys.argv[2], "rb").read()
hold = sys.argv[3] == "hold"
s = socket.create_connection(("127.0.0.1", 7418), timeout=120)
auth = base64.b64encode(b"x-access-token:" + sys.argv[1].encode()).decode()
head = ("POST /git.test/o/r.git/git-receive-pack HTTP/1.1\r\nHost: 127.0.0.1:7418\r\n"
        "Authorization: Basic %s\r\nContent-Type: application/x-git-receive-pack-request\r\n"
        "Accept: application/x-git-receive-pack-result\r\nContent-Length: %d\r\n"
        "Connection: close\r\n\r\n" % (auth, len(body)))
out = b""
try:
    s.sendall(head.encode() + (body[:-16] if hold else body))
    if hold:
        print("held", flush=True)
        sys.stdin.readline()
        s.sendall(body[-16:])
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except OSError as e:
    out += ("\nsocket error: %s" % e).encode()
sys.stdout.write(out.decode("latin-1"))
"""


def git_out(*args, cwd=None):
    return subprocess.run(["git"] + list(args), cwd=cwd, capture_output=True, text=True,
                          check=True, env=GIT_ENV).stdout.strip()


def receive_pack_body(work, old, new, exclude, ref):
    pack = subprocess.run(["git", "pack-objects", "--stdout", "--revs", "-q"], cwd=work,
                          input=("%s\n^%s\n" % (new, exclude)).encode(),
                          capture_output=True, check=True, env=GIT_ENV).stdout
    line = ("%s %s %s\0report-status agent=airlock-test\n" % (old, new, ref)).encode()
    return b"%04x" % (len(line) + 4) + line + b"0000" + pack


code, text = call(ALICE, "POST", "/v1/sessions", {"repo": "https://git.test/o/r.git",
                                                  "limits": {"ttl_s": 20}}, timeout=120)
FSID = json.loads(text).get("id", "") if code == 201 else ""
FREF = "refs/heads/airlock/" + FSID
rc, out = run(ALICE, FSID, "printf 'protocol=http\\nhost=127.0.0.1:7418\\npath=git.test/o/r.git\\n\\n'"
              " | git credential fill")
ftoken = ""
for line in (out or "").splitlines():
    if line.startswith("password="):
        ftoken = line[len("password="):]
work = T + "/inflight"
subprocess.run(["git", "clone", "-q", SRV + "/o/r.git", work], check=True, env=GIT_ENV)
main = git_out("rev-parse", "HEAD", cwd=work)
with open(work + "/a.txt", "w") as f:
    f.write("control push\n")
git_out("add", "a.txt", cwd=work)
git_out("commit", "-qm", "control", cwd=work)
commit_a = git_out("rev-parse", "HEAD", cwd=work)
with open(work + "/b.bin", "wb") as f:
    f.write(os.urandom(1 << 20))
git_out("add", "b.bin", cwd=work)
git_out("commit", "-qm", "in flight", cwd=work)
commit_b = git_out("rev-parse", "HEAD", cwd=work)
with open(T + "/body-a", "wb") as f:
    f.write(receive_pack_body(work, "0" * 40, commit_a, main, FREF))
with open(T + "/body-b", "wb") as f:
    f.write(receive_pack_body(work, commit_a, commit_b, commit_a, FREF))


def holder(pid, body, mode):
    return subprocess.Popen(["nsenter", "-t", str(pid), "-n", "python3", "-c", HOLDER, ftoken,
                             body, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


fpid = sandbox_pid(FSID)
ctl_out = ""
if fpid and ftoken:
    h = holder(fpid, T + "/body-a", "now")
    ctl_out = h.communicate(timeout=WAIT)[0]
check("cloud_inflight_control_push_works", "ok " + FREF in ctl_out
      and upstream_ref(FREF) == commit_a, (FSID, fpid, bool(ftoken), ctl_out))

held_out, state = "", None
if fpid and ftoken:
    h = holder(fpid, T + "/body-b", "hold")
    first = h.stdout.readline()
    state = wait_expired(ALICE, FSID)
    try:
        held_out = first + h.communicate(input="go\n", timeout=WAIT)[0]
    except subprocess.TimeoutExpired:
        h.kill()
        held_out = first + h.communicate()[0] + " (hung)"
check("cloud_expiry_refuses_push_in_flight", first.startswith("held") and state == "expired"
      and "ok " + FREF not in held_out and upstream_ref(FREF) == commit_a,
      (state, held_out[-600:], upstream_ref(FREF)))

# the same token, a new connection (bob's sandbox: the expired one is gone)
bpid = sandbox_pid(BSID)
later = ""
if bpid and ftoken:
    later = holder(bpid, T + "/body-b", "now").communicate(timeout=WAIT)[0]
check("cloud_expired_token_later_push_refused", bpid is not None and "ok " + FREF not in later
      and upstream_ref(FREF) == commit_a, later[-600:])

call(BOB, "DELETE", "/v1/sessions/" + BSID)

ald2.terminate()
ald2.wait()
print("cloud: %d passed, %d failed" % (PASSES, FAILS), flush=True)
sys.exit(1 if FAILS else 0)
