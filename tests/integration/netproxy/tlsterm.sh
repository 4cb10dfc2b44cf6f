#!/bin/bash
# TLS termination with masked credentials, against a real HTTPS upstream:
# nginx on 127.0.0.2 with certificates from the test's own CA (the proxy
# trusts it through SSL_CERT_FILE in its own environment, as a user would),
# a plain-HTTP backend behind it that records what arrived, and curl through
# the proxy (integration_netproxy_embed serve) trusting the session CA.
# usage: tlsterm.sh   (EMBED=path/to/integration_netproxy_embed)
set -u
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
HERE=$(cd "$(dirname "$0")" && pwd)
EMBED=${EMBED:?set EMBED to integration_netproxy_embed}
T=$(mktemp -d /tmp/np-tlsterm.XXXXXX)
PIDS=()
FAILS=0
cleanup() {
    [ -f "$T/nginx.pid" ] && kill "$(cat "$T/nginx.pid" 2>/dev/null)" 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { echo "ok: $*"; }
expect() { if [ "$2" == "$1" ]; then pass "$3 -> $2"; else fail "$3: got '$2', want '$1'"; fi; }
has() { case "$2" in *"$1"*) pass "$3" ;; *) fail "$3: '$2' lacks '$1'" ;; esac; }
lacks() { case "$2" in *"$1"*) fail "$3: found '$1'" ;; *) pass "$3" ;; esac; }
wait_file() {
    for _ in $(seq 1 100); do [ -s "$1" ] && return 0; sleep 0.05; done
    echo "timeout waiting for $1"; exit 1
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.2/$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "timeout waiting for port $1"; cat "$T/nginx-start.log" "$T/nginx-error.log" 2>/dev/null; exit 1
}

command -v nginx >/dev/null || { echo "skip: no nginx"; exit 77; }

# ---- certificates (openssl): the test CA, and upstream certs good and bad
REAL=ghp_R3alT0kenR3alT0kenR3alT0kenR3alT0k1
SHORT=s3cr3t-v4lue
mkdir -p "$T/ca/new"
touch "$T/ca/index.txt"
echo 1000 > "$T/ca/serial"
cat > "$T/ca.cnf" <<CNF
[ ca ]
default_ca = tca
[ tca ]
database = $T/ca/index.txt
new_certs_dir = $T/ca/new
serial = $T/ca/serial
default_md = sha256
policy = pol
copy_extensions = copy
unique_subject = no
[ pol ]
commonName = supplied
CNF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=airlock test upstream CA" -keyout "$T/testca.key" -out "$T/testca.pem" 2>/dev/null
leaf() { # NAME SANS [STARTDATE ENDDATE] [CA]
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
        -addext "subjectAltName=$2" -keyout "$T/$1.key" -out "$T/$1.csr" 2>/dev/null
    local dates=(-days 2)
    if [ -n "${3:-}" ]; then dates=(-startdate "$3" -enddate "$4"); fi
    openssl ca -batch -config "$T/ca.cnf" -cert "${5:-$T/testca.pem}" \
        -keyfile "${6:-$T/testca.key}" "${dates[@]}" \
        -in "$T/$1.csr" -out "$T/$1.pem" 2>"$T/$1.err" >/dev/null || { cat "$T/$1.err"; exit 1; }
}
leaf good "DNS:api.test,DNS:other.test,DNS:excluded.test"
leaf expired "DNS:expired.test" 20200101000000Z 20200201000000Z
leaf wrongname "DNS:somewhere-else.test"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=rogue CA" -keyout "$T/rogue.key" -out "$T/rogue.pem" 2>/dev/null
leaf untrusted "DNS:untrusted.test" "" "" "$T/rogue.pem" "$T/rogue.key"

# ---- upstream: nginx (TLS) in front of a recording backend
"$PY" "$HERE/tls_backend.py" "$T/backend.port" "$T/backend.log" &
PIDS+=($!)
wait_file "$T/backend.port"
touch "$T/backend.log"
BACKEND=$(cat "$T/backend.port")
P_GOOD=$(free_port); P_EXP=$(free_port); P_WRONG=$(free_port); P_UNTR=$(free_port)
B64=$(printf 'user:%s' "$REAL" | base64 -w0)
srv() { # PORT CERT
    cat <<SRV
    server {
        listen 127.0.0.2:$1 ssl;
        ssl_certificate $T/$2.pem;
        ssl_certificate_key $T/$2.key;
        location = /auth {
            if (\$http_authorization != "Bearer $REAL") { return 401 "no\n"; }
            return 200 "auth ok\n";
        }
        location = /basic {
            if (\$http_authorization != "Basic $B64") { return 401 "no\n"; }
            return 200 "basic ok\n";
        }
        location = /hdr { return 200 "x-token=\$http_x_token\n"; }
        location / { proxy_pass http://127.0.0.1:$BACKEND; proxy_http_version 1.1; }
    }
SRV
}
cat > "$T/nginx.conf" <<NGINX
user root;
daemon off;
pid $T/nginx.pid;
error_log $T/nginx-error.log;
worker_processes 1;
events { worker_connections 64; }
http {
    log_format t '\$host \$status "\$request" "\$http_authorization"';
    access_log $T/nginx-access.log t;
    client_body_temp_path $T/nginx-body;
    proxy_temp_path $T/nginx-proxy;
$(srv "$P_GOOD" good)
$(srv "$P_EXP" expired)
$(srv "$P_WRONG" wrongname)
$(srv "$P_UNTR" untrusted)
}
NGINX
nginx -c "$T/nginx.conf" >/dev/null 2>"$T/nginx-start.log" &
PIDS+=($!)
for p in $P_GOOD $P_EXP $P_WRONG $P_UNTR; do wait_port "$p"; done
touch "$T/nginx-access.log"

# ---- the proxy
start_proxy() { # extra args
    rm -f "$T/ports"
    SSL_CERT_FILE="$T/testca.pem" "$EMBED" serve --port-file "$T/ports" --log "$T/decisions.log" \
        --allow api.test --allow other.test --allow excluded.test --allow expired.test \
        --allow wrong.test --allow untrusted.test --allow-address 127.0.0.2/32 \
        --hosts api.test=127.0.0.2 --hosts other.test=127.0.0.2 --hosts excluded.test=127.0.0.2 \
        --hosts expired.test=127.0.0.2 --hosts wrong.test=127.0.0.2 \
        --hosts untrusted.test=127.0.0.2 --ca-out "$T/session-ca.pem" \
        --sentinel-out "$T/sentinels" "$@" 2>"$T/proxy.err" &
    PROXY_PID=$!
    PIDS+=($!)
    wait_file "$T/ports"
    HP=$(sed -n 's/^http=//p' "$T/ports")
    SP=$(sed -n 's/^socks=//p' "$T/ports")
}
start_proxy --tls-terminate --tls-exclude excluded.test \
    --cred "GITHUB_TOKEN=$REAL@api.test" --cred "SHORT=$SHORT@api.test"
SENT=$(sed -n 's/^GITHUB_TOKEN=//p' "$T/sentinels")
SSENT=$(sed -n 's/^SHORT=//p' "$T/sentinels")
[ -n "$SENT" ] && [ "$SENT" != "$REAL" ] || { echo "no sentinel"; exit 1; }
expect "${#REAL}" "${#SENT}" "sentinel as long as the real value"
has "ghp_" "$SENT" "sentinel keeps the prefix"

pc() { # curl through the HTTP proxy trusting the session CA; prints body
    curl -sS --max-time 15 -x "http://127.0.0.1:$HP" --cacert "$T/session-ca.pem" "$@" 2>&1
}
code() { # STATUS X-Airlock-Error  (CODE=http_connect: the CONNECT's status)
    curl -sS --max-time 15 -x "http://127.0.0.1:$HP" --cacert "$T/session-ca.pem" -o "$T/body" \
        -D "$T/h" -w "%{${CODE:-http_code}}" "$@" > "$T/code" 2>"$T/curl.err"
    local err
    err=$(tr -d '\r' < "$T/h" | sed -n 's/^[Xx]-[Aa]irlock-[Ee]rror: //p' | tail -1)
    echo "$(cat "$T/code") ${err:--}"
}
U="https://api.test:$P_GOOD"

# 1. the sentinel in Authorization reaches nginx as the real value
expect "auth ok" "$(pc -H "Authorization: Bearer $SENT" "$U/auth")" "Bearer sentinel -> real token upstream"
expect "no" "$(pc "$U/auth")" "control: nginx refuses a request without the token"
expect "no" "$(pc -H "Authorization: Bearer $REAL-x" "$U/auth")" "control: nginx refuses a wrong token"
expect "basic ok" "$(pc -u "user:$SENT" "$U/basic")" "Basic credentials with the sentinel"
# 2. responses are re-masked: nginx echoes the header it got (the real value)
expect "x-token=$SENT" "$(pc -H "X-Token: $SENT" "$U/hdr")" "echoed real value comes back as the sentinel"
# 3. JSON body: substituted; the backend's echo re-masked
out=$(pc -H 'Content-Type: application/json' -d "{\"token\":\"$SENT\"}" "$U/json")
expect "got {\"token\":\"$SENT\"}" "$out" "JSON body: echo re-masked"
has "BODY {\"token\":\"$REAL\"}" "$(cat "$T/backend.log")" "JSON body reached the upstream with the real value"
# chunked JSON body, response chunked with the value split over two chunks
out=$(pc -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' -d "{\"t\":\"$SENT\"}" "$U/chunked")
expect "got {\"t\":\"$SENT\"}" "$out" "chunked JSON body, chunked response re-masked across chunks"
# form body with the short credential: the sentinel is longer, so the body is
# buffered and sent with a new Content-Length
out=$(pc -d "k=$SSENT&x=1" "$U/form")
stars=$(printf '%*s' "${#SHORT}" '' | tr ' ' '*')
expect "got k=$stars&x=1" "$out" "form body with a longer sentinel: echo masked with '*'"
has "BODY k=$SHORT&x=1" "$(cat "$T/backend.log")" "form body reached the upstream with the real value"
has "Content-Length: $((${#SHORT} + 6))" "$(cat "$T/backend.log")" "new Content-Length upstream"
# a body of another type is not rewritten, but a sentinel in it is allowed
# for an inject host (it is only passed through)
out=$(pc -H 'Content-Type: text/plain' -d "raw $SENT" "$U/text")
expect "got raw $SENT" "$out" "text/plain body: passed through unchanged"
# 4. keep-alive: two requests on one terminated connection
out=$(pc -H "Authorization: Bearer $SENT" "$U/auth" "$U/auth")
expect "auth ok
auth ok" "$out" "two requests on one connection"
# 5. SOCKS5 CONNECT is terminated too
out=$(curl -sS --max-time 15 -x "socks5h://127.0.0.1:$SP" --cacert "$T/session-ca.pem" -H "Authorization: Bearer $SENT" "$U/auth" 2>&1)
expect "auth ok" "$out" "SOCKS5: sentinel replaced"
# 6. the same sentinel to another allowed host: refused, never forwarded
before=$(grep -c '^other.test' "$T/nginx-access.log")
expect "403 credential-not-allowed-here" "$(code -H "Authorization: Bearer $SENT" "https://other.test:$P_GOOD/auth")" "sentinel to a non-inject host"
has "credential GITHUB_TOKEN is not allowed for other.test (its hosts: api.test)" "$(cat "$T/body")" "refusal names the credential and its hosts"
expect "$before" "$(grep -c '^other.test' "$T/nginx-access.log")" "other.test never saw the request"
expect "200 -" "$(code "https://other.test:$P_GOOD/plain")" "other.test without a sentinel works"
# 7. upstream certificate errors -> 502 with the reason
expect "502 upstream-certificate" "$(code "https://expired.test:$P_EXP/")" "expired upstream certificate"
has "upstream certificate for expired.test: certificate has expired" "$(cat "$T/body")" "reason: expired"
expect "502 upstream-certificate" "$(code "https://wrong.test:$P_WRONG/")" "upstream certificate for another name"
has "upstream certificate for wrong.test: hostname mismatch" "$(cat "$T/body")" "reason: hostname mismatch"
expect "502 upstream-certificate" "$(code "https://untrusted.test:$P_UNTR/")" "upstream certificate from an untrusted CA"
has "upstream certificate for untrusted.test: unable to get local issuer certificate" "$(cat "$T/body")" "reason: untrusted"
# 8. excluded domain: opaque tunnel, the upstream's own certificate
out=$(curl -sS --max-time 15 -x "http://127.0.0.1:$HP" --cacert "$T/testca.pem" "https://excluded.test:$P_GOOD/x" 2>&1)
expect "got " "$out" "excludeDomains: not terminated (upstream's certificate)"
# 9. the decision log: one "https" line per request, names not values
sleep 0.3
LOG=$(cat "$T/decisions.log")
has '"proxy":"https"' "$LOG" "per-request lines"
has '"method":"GET","path":"/auth","credential":"GITHUB_TOKEN"' "$LOG" "credential named in the log"
has '"reason":"credential-not-allowed-here"' "$LOG" "refusal logged"
lacks "$REAL" "$LOG" "real value not in the decision log"
lacks "$SHORT" "$LOG" "short real value not in the decision log"
lacks "$REAL" "$(cat "$T/proxy.err")" "real value not on the proxy's stderr"
kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null

# 10. tlsTerminate without a CA: refused, not passed opaque
start_proxy --tls-terminate --no-ca
expect "502 tls-not-configured" "$(CODE=http_connect code "$U/auth")" "terminated session without a CA"
kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null

echo "$FAILS failure(s)"
[ "$FAILS" -eq 0 ]
