#!/bin/bash
# Integration tests for airlock-gitproxy: the real git client, through the real
# proxy, to a real `git http-backend` behind nginx + fcgiwrap on loopback that
# accepts only the real token. Usage: run.sh BUILD_DIR
set -u
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
CREDS_TOOL=$BUILD/creds/airlock-creds
PROXY=$BUILD/gitproxy/airlock-gitproxy
T=$(mktemp -d /tmp/airlock-gitproxy-it.XXXXXX)
chmod 755 "$T"
REAL_TOKEN="real-upstream-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PIDS=()
FAILS=0
PASSES=0

cleanup() {
    # fcgiwrap forks its workers: stop them by their ids, then the parent.
    [ -n "${FCGI_PID:-}" ] && kill $(pgrep -P "$FCGI_PID") "$FCGI_PID" 2>/dev/null
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    [ -f "$T/nginx.pid" ] && kill "$(cat "$T/nginx.pid" 2>/dev/null)" 2>/dev/null
    wait 2>/dev/null
    if [ "$FAILS" -eq 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$T"; else echo "kept $T"; fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 never opened"; exit 1
}
pass() { PASSES=$((PASSES + 1)); echo "PASS: $1"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL: $1"; [ -n "${2:-}" ] && sed 's/^/    | /' "$2" | tail -30; }

export HOME=$T/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 LC_ALL=C
mkdir -p "$HOME"
git config --global user.email t@example.com
git config --global user.name tester
git config --global init.defaultBranch main
git config --global advice.detachedHead false

# ---- upstream: bare repositories behind nginx + fcgiwrap + git http-backend ----
SRV=$T/srv
mkdir -p "$SRV/o"
for name in r other app app2; do
    git init -q --bare "$SRV/o/$name.git"
    git -C "$SRV/o/$name.git" config http.receivepack true
    git -C "$SRV/o/$name.git" config uploadpack.allowFilter true
    git -C "$SRV/o/$name.git" config receive.advertisePushOptions true
    git -C "$SRV/o/$name.git" config uploadpack.allowAnySHA1InWant true
done
git init -q "$T/seed"
(cd "$T/seed" && for i in 1 2 3; do echo "content $i" > "f$i.txt"; mkdir -p d$i; echo "x$i" > d$i/y; git add -A; git commit -qm "c$i"; done
 for name in r other app app2; do git push -q "$SRV/o/$name.git" main; done)

UP_PORT=$(free_port)
UPS_PORT=$(free_port)
# A test CA and a server certificate for the https upstream.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=airlock-test-ca \
    -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$T/srv.ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
    -extfile "$T/srv.ext" -out "$T/srv.pem" 2>/dev/null
printf 'x-access-token:%s\n' "$(openssl passwd -apr1 "$REAL_TOKEN")" > "$T/htpasswd"
fcgiwrap -c 4 -s "unix:$T/fcgi.sock" >/dev/null 2>"$T/fcgiwrap.log" &
FCGI_PID=$!
cat > "$T/nginx.conf" <<NGINX
user root;
daemon off;
pid $T/nginx.pid;
error_log $T/nginx-error.log;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log $T/nginx-access.log;
    client_body_temp_path $T/nginx-body;
    fastcgi_temp_path $T/nginx-fcgi;
    proxy_temp_path $T/nginx-proxy;
    client_max_body_size 0;
    server {
        listen 127.0.0.1:$UP_PORT;
        listen 127.0.0.1:$UPS_PORT ssl;
        ssl_certificate $T/srv.pem;
        ssl_certificate_key $T/srv.key;
        location / {
            auth_basic "upstream";
            auth_basic_user_file $T/htpasswd;
            fastcgi_pass unix:$T/fcgi.sock;
            fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
            fastcgi_param GIT_PROJECT_ROOT $SRV;
            fastcgi_param GIT_HTTP_EXPORT_ALL 1;
            fastcgi_param GIT_PROTOCOL \$http_git_protocol;
            fastcgi_param PATH_INFO \$uri;
            fastcgi_param QUERY_STRING \$query_string;
            fastcgi_param REQUEST_METHOD \$request_method;
            fastcgi_param CONTENT_TYPE \$content_type;
            fastcgi_param CONTENT_LENGTH \$content_length;
            fastcgi_param HTTP_CONTENT_ENCODING \$http_content_encoding;
            fastcgi_param REMOTE_USER \$remote_user;
            fastcgi_param REMOTE_ADDR \$remote_addr;
        }
    }
}
NGINX
nginx -c "$T/nginx.conf" >/dev/null 2>"$T/nginx-start.log" &
PIDS+=($!)
wait_port "$UP_PORT"
wait_port "$UPS_PORT"
UP=http://127.0.0.1:$UP_PORT

# ---- mock GitHub API for App installation tokens ----
openssl genrsa -out "$T/app.pem" 2048 2>/dev/null
chmod 600 "$T/app.pem"
openssl rsa -in "$T/app.pem" -pubout -out "$T/app.pub" 2>/dev/null
API_PORT=$(free_port)
echo 3600 > "$T/app-expires"
: > "$T/app-hits"
python3 "$HERE/mock_github.py" "$API_PORT" "$T/app.pub" 4242 "$REAL_TOKEN" "$T/app-expires" \
    "$T/app-hits" >/dev/null 2>"$T/mock.log" &
PIDS+=($!)
wait_port "$API_PORT"

# ---- keys, credential store, proxy ----
STATE=$T/state
mkdir -m 700 "$STATE"
"$CREDS_TOOL" key generate "$STATE/k1.key"
"$CREDS_TOOL" key generate "$STATE/k2.key"
"$CREDS_TOOL" key generate "$STATE/master.key"
STORE=(--store "$STATE/creds.store" --master-key "$STATE/master.key")
printf '%s\n' "$REAL_TOKEN" | "$CREDS_TOOL" creds add "${STORE[@]}" --scope git.test/o
"$CREDS_TOOL" creds add "${STORE[@]}" --scope git.test/o/app --app-id 4242 \
    --installation-id 99 --private-key "$T/app.pem" --api "http://127.0.0.1:$API_PORT"
"$CREDS_TOOL" creds add "${STORE[@]}" --scope git.test/o/app2 --app-id 4242 \
    --installation-id 98 --private-key "$T/app.pem" --api "http://127.0.0.1:$API_PORT"
printf '%s\n' "$REAL_TOKEN" | "$CREDS_TOOL" creds add "${STORE[@]}" --scope secure.test
"$CREDS_TOOL" creds list "${STORE[@]}" > "$T/creds-list.out"
: > "$STATE/revoked"
PA=$(free_port)
PB=$(free_port)
cat > "$STATE/gitproxy.json" <<JSON
{"token_keys": [{"kid": "k2", "file": "$STATE/k2.key"}, {"kid": "k1", "file": "$STATE/k1.key"}],
 "store": "$STATE/creds.store", "master_key": "$STATE/master.key",
 "upstreams": {"git.test": {"url": "$UP"},
               "secure.test": {"url": "https://localhost:$UPS_PORT", "ca_file": "$T/ca.pem"}},
 "cache_dir": "$STATE/cache", "revoked_file": "$STATE/revoked",
 "audit_log": "$STATE/audit.jsonl", "leak_guard": true, "check_fast_forward": true,
 "listeners": [{"address": "127.0.0.1:$PA", "session": "sA"}]}
JSON
"$PROXY" --config "$STATE/gitproxy.json" --listen "127.0.0.1:$PB=sB" -v >/dev/null 2>"$T/proxy.log" &
PROXY_PID=$!
PIDS+=($PROXY_PID)
wait_port "$PA"
wait_port "$PB"

mint() { # mint KEYID SESSION REPO [extra args]
    local kid=$1 session=$2 repo=$3
    shift 3
    "$CREDS_TOOL" token mint --key "$STATE/$kid.key" --kid "$kid" --session "$session" \
        --user alice --repo "$repo" "$@"
}
TOK=$(mint k2 sA git.test/o/r --push-ref 'refs/heads/agent/*' --ttl 600)
TOK_OLDKEY=$(mint k1 sA git.test/o/r --push-ref 'refs/heads/agent/*' --ttl 600)
TOK_TAG=$(mint k2 sA git.test/o/r --push-ref 'refs/tags/v1' --push-ref 'refs/heads/agent/*' --ttl 600)
TOK_OTHER=$(mint k2 sA git.test/o/other --ttl 600)
TOK_EXPIRED=$(mint k2 sA git.test/o/r --ttl 60 --iat $(( $(date +%s) - 3600 )))
TOK_FETCHONLY=$(mint k2 sA git.test/o/r --ops fetch --ttl 600)
TOK_APP=$(mint k2 sA git.test/o/app --push-ref 'refs/heads/agent/*' --ttl 600)
TOK_APP2=$(mint k2 sA git.test/o/app2 --ttl 600)
TOK_TLS=$(mint k2 sA secure.test/o/other --push-ref 'refs/heads/agent/*' --ttl 600)
# Flip one character in the middle of the claims.
TOK_TAMPERED=$(python3 -c 'import sys; t=sys.argv[1]; p=t.split("."); c=p[2]; i=len(c)//2; p[2]=c[:i]+("A" if c[i]!="A" else "B")+c[i+1:]; print(".".join(p))' "$TOK")

PROXY_A=http://127.0.0.1:$PA/git.test/o
PROXY_B=http://127.0.0.1:$PB/git.test/o
OUT=$T/out
mkdir -p "$OUT"

# g TOKEN ARGS...: git with a credential helper answering the scoped token.
g() {
    local tok=$1
    shift
    ALK_TOKEN=$tok git -c credential.helper= \
        -c 'credential.helper=!f() { test "$1" = get && echo username=agent && echo "password=$ALK_TOKEN"; }; f' \
        "$@"
}
upstream_ref() { git -C "$SRV/o/r.git" rev-parse -q --verify "$1" 2>/dev/null || echo none; }

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

t=real_token_never_exposed
if grep -rlaF -- "$REAL_TOKEN" "$OUT" "$T/proxy.log" "$STATE/audit.jsonl" "$T/creds-list.out" >"$T/leaks" 2>/dev/null; then
    fail $t "$T/leaks"
else
    pass $t
fi

t=proxy_still_alive
kill -0 $PROXY_PID && pass $t || fail $t "$T/proxy.log"

echo "gitproxy integration: $PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
