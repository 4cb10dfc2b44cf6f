#!/bin/bash
# airlock-netproxy's helpers and resolver against real peers on loopback:
#   connect_helper  airlock-connect through the real proxy to a TCP echo
#                   server (both directions, half-close), and refused
#   dns_servers     --dns-server: names resolved by a test DNS responder
# usage: tools.sh CASE  (NETPROXY=airlock-netproxy CONNECT=airlock-connect)
set -eu
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
HERE=$(cd "$(dirname "$0")" && pwd)
NETPROXY=${NETPROXY:?}
CONNECT=${CONNECT:?}
T=$(mktemp -d /tmp/np-tools.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
want() { # want NEEDLE HAYSTACK WHAT
    case "$2" in *"$1"*) echo "ok: $3" ;; *) fail "$3: \"$2\" does not contain \"$1\"" ;; esac
}
wait_file() {
    for _ in $(seq 1 100); do [ -s "$1" ] && return 0; sleep 0.05; done
    fail "timeout waiting for $1"
}
start_proxy() { # args...
    "$NETPROXY" --listen-http 127.0.0.1:0 --listen-socks 127.0.0.1:0 --port-file "$T/ports" \
        --log "$T/decisions.log" "$@" 2>"$T/proxy.err" &
    PIDS+=($!)
    wait_file "$T/ports"
    HP=$(sed -n 's/^http=//p' "$T/ports")
}

case_connect_helper() {
    "$PY" "$HERE/echo_server.py" 127.0.0.2 "$T/echo.port" &
    PIDS+=($!)
    wait_file "$T/echo.port"
    local port
    port=$(cat "$T/echo.port")
    start_proxy --allow echo.test --allow-address 127.0.0.2/32 --hosts echo.test=127.0.0.2 \
        --hosts denied.test=127.0.0.2 --hosts-only
    # both directions, and the end of stdin reaches the server as a half-close
    # (it answers "EOF <n>" only after reading EOF)
    local out
    out=$(printf 'hello\nworld\n' | "$CONNECT" -p "127.0.0.1:$HP" echo.test "$port")
    [ "$out" = "$(printf 'HELLO\nWORLD\nEOF 12')" ] || fail "relay through the tunnel: got \"$out\""
    echo "ok: bytes both ways, half-close propagated"
    # a megabyte of random bytes (the server upper-cases; compare lengths+hash of the expected)
    head -c 1048576 /dev/urandom | base64 -w 0 >"$T/big"
    "$CONNECT" -p "127.0.0.1:$HP" echo.test "$port" <"$T/big" >"$T/big.out"
    local sent
    sent=$(stat -c %s "$T/big")
    [ "$(tail -c +$((sent + 1)) "$T/big.out")" = "EOF $sent" ] || fail "big transfer: wrong trailer"
    [ "$(head -c "$sent" "$T/big.out")" = "$(tr a-z A-Z <"$T/big")" ] || fail "big transfer corrupted"
    echo "ok: 1.4 MB through the tunnel intact"
    # denied: non-zero, airlock's reason on stderr, nothing reached the server
    local rc=0
    echo x | "$CONNECT" -p "127.0.0.1:$HP" denied.test "$port" >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = 1 ] || fail "denied CONNECT: exit $rc, want 1"
    want "airlock-connect: the proxy refused CONNECT denied.test:$port: 403 blocked-by-policy: airlock: denied.test:$port is not allowed; add \"denied.test\" to sandbox.network.allowedDomains" "$(cat "$T/err")" "refusal reason shown"
    [ ! -s "$T/out" ] || fail "denied CONNECT wrote to stdout"
    # DNS failure and a dead proxy: distinct messages, exit 1; bad usage: 2
    rc=0
    "$CONNECT" -p "127.0.0.1:$HP" echo.test 0 </dev/null 2>"$T/err" || rc=$?
    [ "$rc" = 2 ] || fail "port 0: exit $rc, want 2"
    rc=0
    "$CONNECT" -p "127.0.0.1:$HP" 'evil.test\r\nX: y' 22 </dev/null 2>"$T/err" || rc=$?
    [ "$rc" = 2 ] || fail "CR/LF in host: exit $rc, want 2"
    rc=0
    "$CONNECT" -p 127.0.0.1:1 echo.test "$port" </dev/null 2>"$T/err" || rc=$?
    [ "$rc" = 1 ] || fail "no proxy: exit $rc, want 1"
    want "cannot reach the proxy at 127.0.0.1:1" "$(cat "$T/err")" "dead proxy reported"
}

case_dns_servers() {
    "$PY" "$HERE/echo_server.py" 127.0.0.2 "$T/echo.port" &
    PIDS+=($!)
    "$PY" "$HERE/dns_server.py" "$T/dns.port" "$T/dns.log" named.test=127.0.0.2 \
        inside.test=127.0.0.1 &
    PIDS+=($!)
    wait_file "$T/echo.port"
    wait_file "$T/dns.port"
    local port dport
    port=$(cat "$T/echo.port")
    dport=$(cat "$T/dns.port")
    start_proxy --allow named.test --allow inside.test --allow missing.test --allow pinned.test \
        --allow-address 127.0.0.2/32 --hosts pinned.test=127.0.0.2 --dns-server "127.0.0.1:$dport"
    local out
    out=$(printf 'abc' | "$CONNECT" -p "127.0.0.1:$HP" named.test "$port")
    want "ABCEOF 3" "$out" "named.test resolved by the configured server"
    want "named.test 1" "$(cat "$T/dns.log")" "the server was asked for named.test's A record"
    want '"addr":"127.0.0.2"' "$(grep '"host":"named.test"' "$T/decisions.log")" "dialled the answer"
    # the answer still goes through the SSRF guard
    "$CONNECT" -p "127.0.0.1:$HP" inside.test "$port" </dev/null 2>"$T/err" || true
    want "403 blocked-address" "$(cat "$T/err")" "an answer pointing inside is refused"
    # NXDOMAIN from the server: 502 dns-failure
    "$CONNECT" -p "127.0.0.1:$HP" missing.test "$port" </dev/null 2>"$T/err" || true
    want "502 dns-failure" "$(cat "$T/err")" "unknown name"
    # the override table comes first: pinned.test never reaches the server
    out=$(printf 'p' | "$CONNECT" -p "127.0.0.1:$HP" pinned.test "$port")
    want "PEOF 1" "$out" "override answered"
    if grep -q pinned.test "$T/dns.log"; then fail "override name was sent to the DNS server"; fi
    echo "ok: override not sent to DNS"
    # bad server spec: refused at start
    if "$NETPROXY" --listen-http 127.0.0.1:0 --dns-server 'not-an-ip' 2>"$T/err"; then
        fail "a bad --dns-server was accepted"
    fi
    want 'DNS server "not-an-ip"' "$(cat "$T/err")" "bad --dns-server refused"
}

"case_$1"
echo "PASS $1"
