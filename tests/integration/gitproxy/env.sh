# Sourced by run.sh and bench/gitproxy/run: starts, under a fresh temp dir $T,
# a real `git http-backend` behind nginx + fcgiwrap on loopback (http and https
# with a test CA) that accepts only $REAL_TOKEN, a mock GitHub App API, and
# airlock-gitproxy with listeners for sessions sA ($PA) and sB ($PB).
# nginx's access log ($T/nginx-access.log) has one line per upstream request:
# connection serial number, status, request line, user. A sourcing script may
# define nginx_server_extra to print more nginx server-block directives.
# Expects $1 = the build directory. Everything stops on exit.
# Optional, set by the sourcing script: UPSTREAM_ADDR, the IPv4 address nginx
# listens on and $UP names (default 127.0.0.1; tests/cluster passes its
# bridge's address so that daemons in other network namespaces reach it);
# ENV_NO_PROXY=1: no airlock-gitproxy is started here (the sourcing script
# runs its own gitproxies, e.g. under airlockd), so PROXY_PID, PA, PB,
# PROXY_A and PROXY_B are unset.
UPSTREAM_ADDR=${UPSTREAM_ADDR:-127.0.0.1}
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
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

# A port free now, below the kernel's ephemeral range (32768-60999 by
# default): a port from that range can be taken by any client connection's
# source port between this pick and the daemon's bind (seen under a full
# parallel ctest: the proxy failed to bind and wait_port met someone else).
free_port() {
    python3 -c '
import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    p = random.randrange(20000, min(lo, 32768))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()
'
}
wait_port() { # PORT [ADDR (default 127.0.0.1)]
    for _ in $(seq 1 100); do
        (exec 3<>/dev/tcp/"${2:-127.0.0.1}"/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 never opened"; exit 1
}
pass() { PASSES=$((PASSES + 1)); echo "PASS: $1"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL: $1"; [ -n "${2:-}" ] && sed 's/^/    | /' "$2" | tail -30; }

# Nothing is exported: airlockd, `airlock up` and the proxies started by the
# tests get the environment of the shell that runs them, as on a real install
# (root's own HOME, mode 0700). The tests' own git commands get their
# identity and settings from $T/gitconfig, set on each git command alone by
# this function (scripts that source this file; Python tests pass $T/gitconfig
# in the environment of their own git subprocesses).
git() {
    GIT_CONFIG_GLOBAL=$T/gitconfig GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 LC_ALL=C \
        command git "$@"
}
cat > "$T/gitconfig" <<'GITCONFIG'
[user]
	email = t@example.com
	name = tester
[init]
	defaultBranch = main
[advice]
	detachedHead = false
GITCONFIG

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
if [ "$UPSTREAM_ADDR" = 127.0.0.1 ]; then
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$T/srv.ext"
else
    printf 'subjectAltName=IP:127.0.0.1,IP:%s,DNS:localhost\n' "$UPSTREAM_ADDR" > "$T/srv.ext"
fi
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
    log_format airlock '\$connection \$status "\$request" \$remote_user';
    access_log $T/nginx-access.log airlock;
    client_body_temp_path $T/nginx-body;
    fastcgi_temp_path $T/nginx-fcgi;
    proxy_temp_path $T/nginx-proxy;
    client_max_body_size 0;
    server {
        listen $UPSTREAM_ADDR:$UP_PORT;
        listen $UPSTREAM_ADDR:$UPS_PORT ssl;
        ssl_certificate $T/srv.pem;
        ssl_certificate_key $T/srv.key;
        location / {
            auth_basic "upstream";
            auth_basic_user_file $T/htpasswd;
            fastcgi_pass unix:$T/fcgi.sock;
            fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
            fastcgi_param GIT_PROJECT_ROOT $SRV;
            fastcgi_param GIT_HTTP_EXPORT_ALL 1;
            fastcgi_param GIT_CONFIG_GLOBAL $T/gitconfig;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
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
$(declare -F nginx_server_extra >/dev/null && nginx_server_extra)
    }
}
NGINX
nginx -c "$T/nginx.conf" >/dev/null 2>"$T/nginx-start.log" &
PIDS+=($!)
wait_port "$UP_PORT" "$UPSTREAM_ADDR"
wait_port "$UPS_PORT" "$UPSTREAM_ADDR"
UP=http://$UPSTREAM_ADDR:$UP_PORT

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
if [ -z "${ENV_NO_PROXY:-}" ]; then
PA=$(free_port)
PB=$(free_port)
cat > "$STATE/gitproxy.json" <<JSON
{"token_keys": [{"kid": "k2", "file": "$STATE/k2.key"}, {"kid": "k1", "file": "$STATE/k1.key"}],
 "store": "$STATE/creds.store", "master_key": "$STATE/master.key",
 "upstreams": {"git.test": {"url": "$UP"},
               "secure.test": {"url": "https://localhost:$UPS_PORT", "ca_file": "$T/ca.pem"}},
 "cache_dir": "$T/cache", "revoked_file": "$STATE/revoked",
 "audit_log": "$STATE/audit.jsonl", "leak_guard": true, "check_fast_forward": true,
 "listeners": [{"address": "127.0.0.1:$PA", "session": "sA"}]}
JSON
"$PROXY" --config "$STATE/gitproxy.json" --listen "127.0.0.1:$PB=sB" -v >/dev/null 2>"$T/proxy.log" &
PROXY_PID=$!
PIDS+=($PROXY_PID)
wait_port "$PA"
wait_port "$PB"
fi

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

if [ -z "${ENV_NO_PROXY:-}" ]; then
    PROXY_A=http://127.0.0.1:$PA/git.test/o
    PROXY_B=http://127.0.0.1:$PB/git.test/o
fi
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

