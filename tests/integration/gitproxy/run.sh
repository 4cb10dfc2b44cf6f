#!/bin/bash
# Integration tests for airlock-gitproxy: the real git client, through the real
# proxy, to a real `git http-backend` behind nginx + fcgiwrap on loopback that
# accepts only the real token. Usage: run.sh BUILD_DIR
set -u
. "$(dirname "$0")/env.sh"

# ---------------- the cases ----------------
t=upstream_requires_real_token
code=$(curl -s -o /dev/null -w '%{http_code}' -u "x-access-token:wrong" "$UP/o/r.git/info/refs?service=git-upload-pack")
code2=$(curl -s -o /dev/null -w '%{http_code}' -u "x-access-token:$REAL_TOKEN" "$UP/o/r.git/info/refs?service=git-upload-pack")
[ "$code" = 401 ] && [ "$code2" = 200 ] && pass $t || fail $t

t=creds_list_hides_secrets
! grep -q "$REAL_TOKEN" "$T/creds-list.out" && grep -q 'git.test/o/app	github_app' "$T/creds-list.out" \
    && ! grep -q "$REAL_TOKEN" "$STATE/creds.store" && pass $t || fail $t "$T/creds-list.out"

t=clone_v2
g "$TOK" -c protocol.version=2 clone "$PROXY_A/r.git" "$T/c2" >"$OUT/$t" 2>&1 \
    && [ "$(git -C "$T/c2" rev-parse HEAD)" = "$(upstream_ref main)" ] && pass $t || fail $t "$OUT/$t"

t=clone_v0
g "$TOK" -c protocol.version=0 clone "$PROXY_A/r.git" "$T/c0" >"$OUT/$t" 2>&1 \
    && [ -f "$T/c0/f3.txt" ] && pass $t || fail $t "$OUT/$t"

t=clone_with_previous_key
g "$TOK_OLDKEY" clone -q "$PROXY_A/r.git" "$T/cold" >"$OUT/$t" 2>&1 && pass $t || fail $t "$OUT/$t"

t=bearer_auth_info_refs
code=$(curl -s -o "$OUT/$t.body" -w '%{http_code}' -H "Authorization: Bearer $TOK" "$PROXY_A/r.git/info/refs?service=git-upload-pack")
[ "$code" = 200 ] && grep -q 'service=git-upload-pack' "$OUT/$t.body" && pass $t || fail $t

t=missing_auth_401
curl -s -D "$OUT/$t.h" -o /dev/null "$PROXY_A/r.git/info/refs?service=git-upload-pack"
grep -q '^HTTP/1.1 401' "$OUT/$t.h" && grep -qi 'WWW-Authenticate: Basic realm="airlock"' "$OUT/$t.h" \
    && pass $t || fail $t "$OUT/$t.h"

t=shallow_clone
g "$TOK" clone --depth 1 "$PROXY_A/r.git" "$T/cs" >"$OUT/$t" 2>&1 \
    && [ "$(git -C "$T/cs" rev-list --count HEAD)" = 1 ] && pass $t || fail $t "$OUT/$t"

t=partial_clone_blob_none
g "$TOK" clone --filter=blob:none "$PROXY_A/r.git" "$T/cp" >"$OUT/$t" 2>&1 \
    && [ "$(git -C "$T/cp" config remote.origin.partialclonefilter)" = blob:none ] \
    && [ -f "$T/cp/d1/y" ] && pass $t || fail $t "$OUT/$t"

# Work repository for pushes.
W=$T/c2
git -C "$SRV/o/r.git" rev-parse main > "$T/main.before"

t=push_new_allowed_branch
(cd "$W" && git checkout -q -b agent/feature && echo new > feature.txt && git add -A && git commit -qm feature)
g "$TOK" -C "$W" push origin agent/feature >"$OUT/$t" 2>&1 \
    && [ "$(upstream_ref refs/heads/agent/feature)" = "$(git -C "$W" rev-parse HEAD)" ] \
    && pass $t || fail $t "$OUT/$t"

t=push_fast_forward
(cd "$W" && echo more >> feature.txt && git commit -qam more)
g "$TOK" -C "$W" push origin agent/feature >"$OUT/$t" 2>&1 \
    && [ "$(upstream_ref refs/heads/agent/feature)" = "$(git -C "$W" rev-parse HEAD)" ] \
    && pass $t || fail $t "$OUT/$t"

t=fetch_v0_and_v2
(cd "$T/c0" && g "$TOK" -c protocol.version=0 fetch origin >"$OUT/$t" 2>&1) \
    && [ "$(git -C "$T/c0" rev-parse origin/agent/feature)" = "$(upstream_ref refs/heads/agent/feature)" ] \
    && (cd "$T/cs" && g "$TOK" -c protocol.version=2 fetch origin main >>"$OUT/$t" 2>&1) \
    && pass $t || fail $t "$OUT/$t"

t=push_big_chunked
(cd "$W" && head -c 3000000 /dev/urandom > big.bin && git add big.bin && git commit -qm big)
g "$TOK" -C "$W" -c http.postBuffer=65536 push origin agent/feature >"$OUT/$t" 2>&1 \
    && [ "$(upstream_ref refs/heads/agent/feature)" = "$(git -C "$W" rev-parse HEAD)" ] \
    && pass $t || fail $t "$OUT/$t"

# expect_reject NAME OUTPUT-FILE PATTERN: git failed, said PATTERN, main unchanged.
expect_reject() {
    if grep -q -- "$3" "$2" && [ "$(upstream_ref main)" = "$(cat "$T/main.before")" ]; then
        pass "$1"
    else
        fail "$1" "$2"
    fi
}

t=push_to_main_refused
(cd "$W" && git checkout -q main && echo m >> f1.txt && git commit -qam onmain)
g "$TOK" -C "$W" push origin main >"$OUT/$t" 2>&1
expect_reject $t "$OUT/$t" 'remote rejected\] main -> main (airlock: this token may not push to this branch)'

t=delete_refused
g "$TOK" -C "$W" push origin :agent/feature >"$OUT/$t" 2>&1
expect_reject $t "$OUT/$t" 'airlock: deleting refs is not allowed'
[ "$(upstream_ref refs/heads/agent/feature)" != none ] || fail "${t}_branch_kept"

t=force_push_refused
before=$(upstream_ref refs/heads/agent/feature)
(cd "$W" && git checkout -q -b agent/rewrite main~1 && echo rw > rw.txt && git add -A && git commit -qm rewrite)
g "$TOK" -C "$W" push --force origin agent/rewrite:agent/feature >"$OUT/$t" 2>&1
expect_reject $t "$OUT/$t" 'airlock: non-fast-forward update refused'
[ "$(upstream_ref refs/heads/agent/feature)" = "$before" ] || fail "${t}_unchanged"

t=tag_refused
(cd "$W" && git tag v0.1)
g "$TOK" -C "$W" push origin v0.1 >"$OUT/$t" 2>&1
expect_reject $t "$OUT/$t" 'airlock: pushing tags is not allowed'
[ "$(upstream_ref refs/tags/v0.1)" = none ] || fail "${t}_absent"

t=tag_allowed_when_token_names_it
(cd "$W" && git tag v1 agent/feature)
g "$TOK_TAG" -C "$W" push origin v1 >"$OUT/$t" 2>&1 && [ "$(upstream_ref refs/tags/v1)" != none ] \
    && pass $t || fail $t "$OUT/$t"

t=two_refs_one_bad
(cd "$W" && git checkout -q -b agent/second agent/feature && echo s > s.txt && git add -A && git commit -qm second)
g "$TOK" -C "$W" push origin agent/second main >"$OUT/$t" 2>&1
expect_reject $t "$OUT/$t" 'agent/second (airlock: refused because another ref was refused)'
grep -q 'main -> main (airlock: this token may not push' "$OUT/$t" \
    && [ "$(upstream_ref refs/heads/agent/second)" = none ] || fail "${t}_second_absent" "$OUT/$t"

t=invalid_ref_name
# git itself refuses to send such names, so this request is made by hand.
old=$(upstream_ref refs/heads/agent/feature)
printf '%s %s refs/heads/agent/bad..name\0report-status side-band-64k' "$(printf '0%.0s' {1..40})" "$old" > "$T/cmd"
python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.stdout.buffer.write(b"%04x" % (len(d)+4) + d + b"0000")' "$T/cmd" > "$T/body"
curl -s -u "x:$TOK" -H 'Content-Type: application/x-git-receive-pack-request' --data-binary @"$T/body" \
    "$PROXY_A/r.git/git-receive-pack" -o "$OUT/$t"
grep -aq 'ng refs/heads/agent/bad..name airlock: invalid ref name' "$OUT/$t" && pass $t || fail $t "$OUT/$t"

t=token_for_other_repo
g "$TOK_OTHER" clone "$PROXY_A/r.git" "$T/x1" >"$OUT/$t" 2>&1
grep -q 'airlock: token does not grant access to git.test/o/r' "$OUT/$t" && pass $t || fail $t "$OUT/$t"

t=fetch_only_token_cannot_push
g "$TOK_FETCHONLY" -C "$W" push origin agent/second >"$OUT/$t" 2>&1
grep -q 'airlock: token does not allow push' "$OUT/$t" && [ "$(upstream_ref refs/heads/agent/second)" = none ] \
    && pass $t || fail $t "$OUT/$t"

t=expired_token
g "$TOK_EXPIRED" clone "$PROXY_A/r.git" "$T/x2" >"$OUT/$t" 2>&1
grep -q 'airlock: token expired' "$OUT/$t" && pass $t || fail $t "$OUT/$t"

t=tampered_token
g "$TOK_TAMPERED" clone "$PROXY_A/r.git" "$T/x3" >"$OUT/$t" 2>&1
grep -q 'airlock: token signature invalid' "$OUT/$t" && pass $t || fail $t "$OUT/$t"

t=session_a_token_on_session_b_listener
g "$TOK" clone "$PROXY_B/r.git" "$T/x4" >"$OUT/$t" 2>&1
grep -q 'airlock: token belongs to another session' "$OUT/$t" && pass $t || fail $t "$OUT/$t"

t=revoked_session
echo sA > "$STATE/revoked"
g "$TOK" -C "$W" push origin agent/second >"$OUT/$t" 2>&1
grep -q 'airlock: token revoked' "$OUT/$t" && [ "$(upstream_ref refs/heads/agent/second)" = none ] \
    && pass $t || fail $t "$OUT/$t"
: > "$STATE/revoked"

t=leak_guard_real_token
(cd "$W" && git checkout -q agent/feature && printf 'export TOKEN=%s\n' "$REAL_TOKEN" > deploy.env && git add -A && git commit -qm leak)
g "$TOK" -C "$W" push origin agent/feature >"$OUT/$t" 2>&1
grep -q 'airlock: deploy.env contains an upstream credential held by airlock' "$OUT/$t" \
    && [ "$(upstream_ref refs/heads/agent/feature)" != "$(git -C "$W" rev-parse HEAD)" ] \
    && pass $t || fail $t "$OUT/$t"

t=leak_guard_github_token
(cd "$W" && git reset -q --hard HEAD~1 && printf 'k = "ghp_%s"\n' "$(printf 'a%.0s' {1..36})" > conf.py && git add -A && git commit -qm leak2)
g "$TOK" -C "$W" push origin agent/feature >"$OUT/$t" 2>&1
grep -q 'airlock: conf.py contains a GitHub token' "$OUT/$t" && pass $t || fail $t "$OUT/$t"
(cd "$W" && git reset -q --hard HEAD~1)

t=malformed_pktline_400
code=$(curl -s -o "$OUT/$t" -w '%{http_code}' -u "x:$TOK" -H 'Content-Type: application/x-git-receive-pack-request' \
    --data-binary 'zzzz0000garbage' "$PROXY_A/r.git/git-receive-pack")
[ "$code" = 400 ] && grep -q 'airlock: malformed receive-pack request' "$OUT/$t" \
    && g "$TOK" ls-remote "$PROXY_A/r.git" >"$OUT/$t.after" 2>&1 && kill -0 $PROXY_PID \
    && pass $t || fail $t "$OUT/$t"

t=probe_post
code=$(curl -s -o "$OUT/$t" -w '%{http_code}' -u "x:$TOK" -H 'Content-Type: application/x-git-receive-pack-request' \
    --data-binary '0000' "$PROXY_A/r.git/git-receive-pack")
[ "$code" = 200 ] && pass $t || fail $t "$OUT/$t"

t=push_options_and_atomic
g "$TOK" -C "$W" push --atomic -o ci.skip origin agent/second >"$OUT/$t" 2>&1 \
    && [ "$(upstream_ref refs/heads/agent/second)" = "$(git -C "$W" rev-parse agent/second)" ] \
    && pass $t || fail $t "$OUT/$t"

t=github_app_token_minted_and_cached
g "$TOK_APP" clone -q "$PROXY_A/app.git" "$T/capp" >"$OUT/$t" 2>&1 \
    && g "$TOK_APP" -C "$T/capp" fetch -q origin >>"$OUT/$t" 2>&1 \
    && [ "$(wc -l < "$T/app-hits")" = 1 ] && grep -q '^99 app$' "$T/app-hits" \
    && pass $t || fail $t "$OUT/$t"

t=github_app_token_refreshed_before_expiry
# The API now hands out tokens expiring within the 5-minute margin: each use
# mints again on demand.
echo 240 > "$T/app-expires"
g "$TOK_APP2" ls-remote "$PROXY_A/app2.git" >"$OUT/$t" 2>&1
n1=$(grep -c '^98 app2$' "$T/app-hits")
g "$TOK_APP2" ls-remote "$PROXY_A/app2.git" >>"$OUT/$t" 2>&1
n2=$(grep -c '^98 app2$' "$T/app-hits")
[ "$n1" -ge 1 ] && [ "$n2" -gt "$n1" ] && pass $t || fail $t "$OUT/$t"

t=https_upstream_with_test_ca
g "$TOK_TLS" clone "http://127.0.0.1:$PA/secure.test/o/other.git" "$T/ctls" >"$OUT/$t" 2>&1 \
    && (cd "$T/ctls" && git checkout -q -b agent/tls && echo tls > tls.txt && git add -A && git commit -qm tls \
        && g "$TOK_TLS" push origin agent/tls && echo more >> tls.txt && git commit -qam more \
        && g "$TOK_TLS" push origin agent/tls) >>"$OUT/$t" 2>&1 \
    && [ "$(git -C "$SRV/o/other.git" rev-parse agent/tls)" = "$(git -C "$T/ctls" rev-parse HEAD)" ] \
    && pass $t || fail $t "$OUT/$t"

t=audit_records
grep -q '"decision":"forwarded"' "$STATE/audit.jsonl" && grep -q '"decision":"refused"' "$STATE/audit.jsonl" \
    && [ "$(wc -l < "$STATE/audit.jsonl")" -ge 10 ] && pass $t || fail $t "$STATE/audit.jsonl"

t=streaming_push_without_inspection
# A second proxy with the leak guard off: creations need no check, so the
# receive-pack body streams straight through (chunked, with the probe).
PC=$(free_port)
sed -e 's/"leak_guard": true/"leak_guard": false/' -e "s/\"listeners\": \[.*\]}/\"listeners\": []}/" \
    -e 's/audit.jsonl/audit2.jsonl/' "$STATE/gitproxy.json" > "$STATE/gitproxy2.json"
"$PROXY" --config "$STATE/gitproxy2.json" --listen "127.0.0.1:$PC=sA" -v >/dev/null 2>"$T/proxy2.log" &
PIDS+=($!)
wait_port "$PC"
(cd "$W" && git checkout -q -b agent/streamed agent/second && head -c 2000000 /dev/urandom > s.bin \
    && git add s.bin && git commit -qm streamed)
g "$TOK" -C "$W" -c http.postBuffer=65536 push "http://127.0.0.1:$PC/git.test/o/r.git" agent/streamed >"$OUT/$t" 2>&1 \
    && [ "$(upstream_ref refs/heads/agent/streamed)" = "$(git -C "$W" rev-parse HEAD)" ] \
    && ! grep -q spool "$T/proxy2.log" && grep -q '"decision":"forwarded"' "$STATE/audit2.jsonl" \
    && pass $t || fail $t "$OUT/$t"

t=listener_fd_handed_in
# As airlockd does: the listening socket is created by another process and
# passed as an fd bound to one session. As after a proxy restart, a client
# is already waiting in its backlog when the proxy starts: it is served once
# the front is up, not dropped (503) because it was accepted before.
python3 - "$PROXY" "$STATE/gitproxy2.json" "$T/proxy3.log" "$T/fd-port" "$T/fd-go" <<'PY' &
import os, socket, sys, time
proxy, config, log, port_file, go_file = sys.argv[1:6]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
os.set_inheritable(s.fileno(), True)
open(port_file, "w").write(str(s.getsockname()[1]))
for _ in range(300):
    if os.path.exists(go_file):
        break
    time.sleep(0.05)
fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.dup2(fd, 2)
os.execv(proxy, [proxy, "--config", config, "--listen-fd", "%d=sA" % s.fileno()])
PY
PIDS+=($!)
for _ in $(seq 1 50); do [ -s "$T/fd-port" ] && break; sleep 0.1; done
PF=$(cat "$T/fd-port")
g "$TOK" ls-remote "http://127.0.0.1:$PF/git.test/o/r.git" >"$OUT/$t" 2>&1 &
LS=$!
# the client's connection is queued (the listener's accept queue, Recv-Q)
for _ in $(seq 1 100); do
    [ "$(ss -Hltn "sport = :$PF" | awk '{print $2}')" -ge 1 ] 2>/dev/null && break
    sleep 0.05
done
queued=$(ss -Hltn "sport = :$PF" | awk '{print $2}')
touch "$T/fd-go"
wait "$LS" && [ "${queued:-0}" -ge 1 ] && grep -q 'refs/heads/main' "$OUT/$t" \
    && ! grep -q 'no front' "$T/proxy3.log" && pass $t || fail $t "$OUT/$t"

t=upstream_rejection_relayed
printf '#!/bin/sh\nwhile read old new ref; do [ "$ref" = refs/heads/agent/hooked ] && { echo "no hooks today" >&2; exit 1; }; done\nexit 0\n' \
    > "$SRV/o/r.git/hooks/pre-receive"
chmod +x "$SRV/o/r.git/hooks/pre-receive"
(cd "$W" && git checkout -q -b agent/hooked agent/second && echo h > h.txt && git add h.txt && git commit -qm hooked)
g "$TOK" -C "$W" push origin agent/hooked >"$OUT/$t" 2>&1
grep -q 'remote: no hooks today' "$OUT/$t" && grep -q 'remote rejected\] agent/hooked -> agent/hooked (pre-receive hook declined)' "$OUT/$t" \
    && [ "$(upstream_ref refs/heads/agent/hooked)" = none ] && pass $t || fail $t "$OUT/$t"
rm -f "$SRV/o/r.git/hooks/pre-receive"

# ---- the proxy's own failures are 5xx, never a 4xx or a refusal that
# blames the push ----
# A proxy that drops to nobody (as under airlockd), its cache below $T/held
# (searchable when it starts); dead.test is an upstream nothing listens on.
PN=$(free_port)
DEAD=$(free_port)
mkdir -m 755 "$T/held"
printf '%s\n' "$REAL_TOKEN" | "$CREDS_TOOL" creds add "${STORE[@]}" --scope dead.test
python3 - "$STATE/gitproxy.json" "$STATE/gitproxy-held.json" "$T/held/cache" "$DEAD" <<'PY'
import json, sys
conf = json.load(open(sys.argv[1]))
conf["cache_dir"] = sys.argv[3]
conf["audit_log"] = sys.argv[3] + "-audit.jsonl"
conf["upstreams"]["dead.test"] = {"url": "http://127.0.0.1:%s" % sys.argv[4]}
conf["listeners"] = []
del conf["revoked_file"]
json.dump(conf, open(sys.argv[2], "w"))
PY
"$PROXY" --config "$STATE/gitproxy-held.json" --listen "127.0.0.1:$PN=sA" --user nobody -v \
    >/dev/null 2>"$T/proxy-held.log" &
PIDS+=($!)
wait_port "$PN"
HELD=http://127.0.0.1:$PN/git.test/o/r.git

t=workdir_unusable_is_503
# The front checks pushes in the cache dir: unreachable, every inspected push
# is a server fault (503, reason in the log), never the client's (4xx).
chmod 700 "$T/held" # the cache is no longer reachable by nobody
(cd "$W" && git checkout -q -b agent/held main && echo held > held.txt && git add held.txt && git commit -qm held)
g "$TOK" -C "$W" push "$HELD" agent/held >"$OUT/$t" 2>&1
chmod 755 "$T/held"
grep -q 'HTTP 503' "$OUT/$t" && ! grep -q 'HTTP 4' "$OUT/$t" \
    && [ "$(upstream_ref refs/heads/agent/held)" = none ] \
    && grep -q "push not forwarded (503): mkdir $T/held/cache/tmp: Permission denied" "$T/proxy-held.log" \
    && pass $t || fail $t "$OUT/$t"

t=push_after_failures_works
g "$TOK" -C "$W" push "$HELD" agent/held >"$OUT/$t" 2>&1 \
    && [ "$(upstream_ref refs/heads/agent/held)" = "$(git -C "$W" rev-parse agent/held)" ] \
    && pass $t || fail $t "$OUT/$t"

t=mirror_unusable_is_503
# An update whose history reaches its old tip only through commits already
# upstream (agent/p, pushed first): the pack's own commits cannot show the
# fast-forward, so the mirror must; with no room for it, 503.
(cd "$W" && git checkout -q -b agent/p agent/held && echo p > p.txt && git add p.txt && git commit -qm p)
g "$TOK" -C "$W" push "$HELD" agent/p >"$OUT/$t.p" 2>&1
(cd "$W" && git checkout -q -b agent/held2 agent/p && echo c > c.txt && git add c.txt && git commit -qm c)
before=$(upstream_ref refs/heads/agent/held)
rm -rf "$T/held/cache/mirrors"
touch "$T/held/cache/mirrors" # a file where the mirrors directory should be
g "$TOK" -C "$W" push "$HELD" agent/held2:agent/held >"$OUT/$t" 2>&1
rm -f "$T/held/cache/mirrors"
grep -q 'HTTP 503' "$OUT/$t" && ! grep -q 'remote rejected' "$OUT/$t" \
    && [ "$(upstream_ref refs/heads/agent/held)" = "$before" ] \
    && grep -q 'push not forwarded (503): mkdir .*/mirrors/git.test: Not a directory' "$T/proxy-held.log" \
    && grep -q '"decision":"failed"' "$T/held/cache-audit.jsonl" \
    && pass $t || fail $t "$OUT/$t"

t=fast_forward_through_the_mirror
g "$TOK" -C "$W" push "$HELD" agent/held2:agent/held >"$OUT/$t" 2>&1 \
    && [ "$(upstream_ref refs/heads/agent/held)" = "$(git -C "$W" rev-parse agent/held2)" ] \
    && [ -d "$T/held/cache/mirrors/git.test/o/r.git" ] \
    && pass $t || fail $t "$OUT/$t"

t=upstream_unreachable_is_502
# info/refs would already fail: the receive-pack request is made by hand
TOK_DEAD=$(mint k2 sA dead.test/o/r --push-ref 'refs/heads/agent/*' --ttl 600)
new=$(git -C "$W" rev-parse agent/held)
printf '%s %s refs/heads/agent/dead\0report-status' "$(printf '0%.0s' {1..40})" "$new" > "$T/cmd"
{ python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.stdout.buffer.write(b"%04x" % (len(d)+4) + d + b"0000")' "$T/cmd"
  printf '%s\n^%s\n' "$new" "$(git -C "$W" rev-parse main)" | git -C "$W" pack-objects --stdout --revs -q
} > "$T/body"
code=$(curl -s -o "$OUT/$t" -w '%{http_code}' -u "x:$TOK_DEAD" \
    -H 'Content-Type: application/x-git-receive-pack-request' --data-binary @"$T/body" \
    "http://127.0.0.1:$PN/dead.test/o/r.git/git-receive-pack")
[ "$code" = 502 ] && grep -q 'airlock: upstream dead.test unreachable' "$OUT/$t" \
    && ! grep -aq '^....ng ' "$OUT/$t" \
    && grep -q 'dead.test/o/r: upstream: ' "$T/proxy-held.log" \
    && pass $t || fail $t <(echo "HTTP $code"; cat "$OUT/$t")

t=real_token_never_exposed
if grep -rlaF -- "$REAL_TOKEN" "$OUT" "$T/proxy.log" "$T/proxy2.log" "$T/proxy3.log" "$T/proxy-held.log" "$STATE"/audit*.jsonl "$T/held/cache-audit.jsonl" "$T/creds-list.out" >"$T/leaks" 2>/dev/null; then
    fail $t "$T/leaks"
else
    pass $t
fi

t=proxy_still_alive
kill -0 $PROXY_PID && pass $t || fail $t "$T/proxy.log"

echo "gitproxy integration: $PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
