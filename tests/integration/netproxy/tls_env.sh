#!/bin/bash
# Shared by tests/integration/netproxy/tlsterm.sh and
# tests/attacks/netproxy/tls_attack.sh (sourced; EMBED must be set): a test
# CA and upstream certificates made with openssl (good, expired, wrong name,
# untrusted CA), nginx on 127.0.0.2 (HTTPS on P_GOOD/P_EXP/P_WRONG/P_UNTR,
# plain HTTP on P_PLAIN; /auth and /basic answer 200 only for the real
# token REAL, /hdr echoes X-Token (/hdrgz too, gzipped when asked), /authecho
# echoes Authorization, everything else goes to tls_backend.py,
# which logs requests to $T/backend.log and echoes bodies), and
# start_proxy ARGS: integration_netproxy_embed serve with the test CA in
# SSL_CERT_FILE, sets HP/SP (HTTP/SOCKS5 ports) and PROXY_PID. With
# NP_SPLIT=1 the proxy runs split (serve --split: the key holder in the same
# process over real sockets, the proxy itself keeps no credential value).
# Hosts (all 127.0.0.2): api.test other.test excluded.test (good cert),
# expired.test, wrong.test, untrusted.test.
set -u
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TLS_ENV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EMBED=${EMBED:?set EMBED to integration_netproxy_embed}
T=$(mktemp -d /tmp/np-tlsterm.XXXXXX)
PIDS=()
FAILS=0
cleanup() {
    [ -f "$T/nginx.pid" ] && kill "$(cat "$T/nginx.pid" 2>/dev/null)" 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$T"
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
"$PY" "$TLS_ENV_DIR/tls_backend.py" "$T/backend.port" "$T/backend.log" &
PIDS+=($!)
wait_file "$T/backend.port"
touch "$T/backend.log"
BACKEND=$(cat "$T/backend.port")
P_GOOD=$(free_port); P_EXP=$(free_port); P_WRONG=$(free_port); P_UNTR=$(free_port)
P_PLAIN=$(free_port)
B64=$(printf 'user:%s' "$REAL" | base64 -w0)
srv() { # PORT CERT (none: plain HTTP)
    local tls=""
    [ "$2" != none ] && tls="ssl; ssl_certificate $T/$2.pem; ssl_certificate_key $T/$2.key"
    cat <<SRV
    server {
        listen 127.0.0.2:$1 $tls;
        location = /auth {
            if (\$http_authorization != "Bearer $REAL") { return 401 "no\n"; }
            return 200 "auth ok\n";
        }
        location = /basic {
            if (\$http_authorization != "Basic $B64") { return 401 "no\n"; }
            return 200 "basic ok\n";
        }
        location = /hdr { return 200 "x-token=\$http_x_token\n"; }
        location = /authecho { return 200 "auth=\$http_authorization\n"; }
        location = /hdrgz {
            gzip on; gzip_types text/plain; gzip_min_length 1;
            return 200 "x-token=\$http_x_token\n";
        }
        location = /empty { return 204; }
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
    log_format t '\$host \$status "\$request" "\$http_authorization" reused=\$ssl_session_reused';
    access_log $T/nginx-access.log t;
    client_body_temp_path $T/nginx-body;
    proxy_temp_path $T/nginx-proxy;
$(srv "$P_GOOD" good)
$(srv "$P_EXP" expired)
$(srv "$P_WRONG" wrongname)
$(srv "$P_UNTR" untrusted)
$(srv "$P_PLAIN" none)
}
NGINX
nginx -c "$T/nginx.conf" >/dev/null 2>"$T/nginx-start.log" &
PIDS+=($!)
for p in $P_GOOD $P_EXP $P_WRONG $P_UNTR $P_PLAIN; do wait_port "$p"; done
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
        --sentinel-out "$T/sentinels" ${NP_SPLIT:+--split} "$@" 2>>"$T/proxy.err" &
    PROXY_PID=$!
    PIDS+=($!)
    wait_file "$T/ports"
    HP=$(sed -n 's/^http=//p' "$T/ports")
    SP=$(sed -n 's/^socks=//p' "$T/ports")
}
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
