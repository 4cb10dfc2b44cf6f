#!/bin/bash
# Attack suite for airlock-netproxy: each case is one attempt that must be
# refused (plus positive controls). Runs the real daemon on loopback with
# local upstreams; the DNS override table points test names at them:
#   ok.test / allowed.test / good.corp.test -> 127.0.0.2  (upstream "ok")
#   evil.test / allowed.test.evil.test      -> 127.0.0.3  (upstream "evil":
#        its address is allowed, so only the domain policy stands between)
#   127.0.0.1 runs upstream "secret": nothing may ever reach it.
# usage: attack.sh CASE   (NETPROXY=path/to/airlock-netproxy)
set -u
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
HERE=$(cd "$(dirname "$0")" && pwd)
NETPROXY=${NETPROXY:?set NETPROXY to the airlock-netproxy binary}
T=$(mktemp -d /tmp/np-attack.XXXXXX)
PIDS=()
FAILS=0

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { echo "ok: $*"; }
# wait_log PATTERN: true once the decision log has a line with PATTERN (the
# proxy writes a request's line when its connection ends, which may be just
# after the client got its answer); false after 5 s.
wait_log() {
    for _ in $(seq 1 50); do
        grep -q -- "$1" "$T/decisions.log" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
expect() { # expect WANT GOT WHAT
    if [ "$2" == "$1" ]; then pass "$3 -> $2"; else fail "$3: got '$2', want '$1'"; fi
}
expect_match() { # expect_match REGEX GOT WHAT
    if [[ "$2" =~ $1 ]]; then pass "$3 -> $2"; else fail "$3: got '$2', want /$1/"; fi
}

wait_file() {
    for _ in $(seq 1 100); do [ -s "$1" ] && return 0; sleep 0.05; done
    echo "timeout waiting for $1"; exit 1
}

start_upstream() { # NAME IP [tls]
    local extra=()
    if [ "${3:-}" == tls ]; then extra=("$T/cert.pem" "$T/key.pem"); fi
    "$PY" "$HERE/upstream.py" "$2" "$T/$1.port" "$T/$1.log" "$1" "${extra[@]}" &
    PIDS+=($!)
    wait_file "$T/$1.port"
    touch "$T/$1.log"
    eval "PORT_$1=$(cat "$T/$1.port")"
}

start_proxy() { # extra args...
    "$NETPROXY" --listen-http 127.0.0.1:0 --listen-socks 127.0.0.1:0 --port-file "$T/proxy.ports" \
        --allow ok.test --allow allowed.test --allow '*.corp.test' --deny bad.corp.test \
        --allow loop.test --allow meta.test --allow rebind.test --allow v6loop.test \
        --allow mapped.test --allow tls.test \
        --hosts ok.test=127.0.0.2 --hosts allowed.test=127.0.0.2 --hosts tls.test=127.0.0.2 \
        --hosts good.corp.test=127.0.0.2 --hosts bad.corp.test=127.0.0.2 \
        --hosts evil.test=127.0.0.3 --hosts allowed.test.evil.test=127.0.0.3 \
        --hosts loop.test=127.0.0.1 --hosts meta.test=169.254.169.254 \
        --hosts v6loop.test=::1 --hosts mapped.test=::ffff:127.0.0.1 \
        --hosts rebind.test=127.0.0.2 --hosts rebind.test=127.0.0.1 \
        --allow-address 127.0.0.2/32 --allow-address 127.0.0.3/32 \
        --hosts-only --log "$T/decisions.log" "$@" 2>"$T/proxy.err" &
    PROXY_PID=$!
    PIDS+=($!)
    wait_file "$T/proxy.ports"
    HP=$(sed -n 's/^http=//p' "$T/proxy.ports")
    SP=$(sed -n 's/^socks=//p' "$T/proxy.ports")
}

setup() {
    start_upstream ok 127.0.0.2
    start_upstream evil 127.0.0.3
    start_upstream secret 127.0.0.1
    start_proxy "$@"
}

# curl through the HTTP proxy: prints "STATUS X-Airlock-Error"
hcurl() {
    curl -sS --max-time 15 -o /dev/null -D "$T/h" -w '%{http_code}' "$@" 2>/dev/null > "$T/code"
    local err
    err=$(tr -d '\r' < "$T/h" | sed -n 's/^[Xx]-[Aa]irlock-[Ee]rror: //p' | tail -1)
    echo "$(cat "$T/code") ${err:--}"
}

untouched() { # the given upstreams saw no connection at all
    for u in "$@"; do
        if [ -s "$T/$u.log" ]; then fail "upstream $u was reached: $(head -3 "$T/$u.log")"
        else pass "upstream $u untouched"; fi
    done
}

# ---------------------------------------------------------------- positive

case_allowed_http() {
    setup
    expect "ok /x 0" "$(curl -sS --max-time 10 -x "http://127.0.0.1:$HP" "http://ok.test:$PORT_ok/x")" "GET via HTTP proxy"
    expect "ok /y 5" "$(curl -sS --max-time 10 -x "http://127.0.0.1:$HP" -d hello "http://ok.test:$PORT_ok/y")" "POST with body"
    expect "ok /z 5" "$(curl -sS --max-time 10 -x "http://127.0.0.1:$HP" -H 'Transfer-Encoding: chunked' -d hello "http://ok.test:$PORT_ok/z")" "chunked POST"
    # Proxy-* headers do not reach the upstream
    curl -sS --max-time 10 -x "http://127.0.0.1:$HP" -U user:secret -o /dev/null "http://ok.test:$PORT_ok/h"
    wait_log '"decision":"allow"' && pass "decision logged" || fail "no allow line in log"
    untouched secret evil
}

case_allowed_connect() {
    setup
    expect "ok /c 0" "$(curl -sS --max-time 10 -p -x "http://127.0.0.1:$HP" "http://ok.test:$PORT_ok/c")" "GET through CONNECT"
    untouched secret evil
}

case_allowed_socks5() {
    setup
    expect "ok /s 0" "$(curl -sS --max-time 10 -x "socks5h://127.0.0.1:$SP" "http://ok.test:$PORT_ok/s")" "GET through SOCKS5"
    untouched secret evil
}

case_allowed_tls_connect() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj /CN=tls.test -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
    start_upstream tls 127.0.0.2 tls
    setup
    expect "tls /t 0" "$(curl -sS --max-time 10 -k -x "http://127.0.0.1:$HP" "https://tls.test:$PORT_tls/t")" "HTTPS through CONNECT (SNI matches)"
}

case_tunnel_integrity() {
    setup
    expect "ok" "$("$PY" "$HERE/tunnel_check.py" http "$HP" ok.test 2>&1)" "8 MiB up, half-close, 3 MiB down via CONNECT"
    expect "ok" "$("$PY" "$HERE/tunnel_check.py" socks "$SP" ok.test 2>&1)" "same via SOCKS5"
}

case_http_upgrade() {
    setup
    expect "echo" "$("$PY" "$HERE/client.py" upgrade "$HP" "ok.test:$PORT_ok")" "Upgrade: raw bytes relayed to the same upstream after 101"
    expect "1" "$(grep -c '^GET' "$T/ok.log")" "the upstream saw one request head"
    untouched evil secret
}

case_policy_file() {
    start_upstream ok 127.0.0.2
    start_upstream evil 127.0.0.3
    cat > "$T/settings.json" <<'JSON'
{"permissions": {"allow": []},
 "sandbox": {"network": {"allowedDomains": ["*.ok.test", "ok.test"],
                         "deniedDomains": ["bad.ok.test"],
                         "allowedAddresses": ["127.0.0.2/32", "127.0.0.3"],
                         "requireSniMatch": true}}}
JSON
    "$NETPROXY" --listen-http 127.0.0.1:0 --listen-socks 127.0.0.1:0 --port-file "$T/proxy.ports" \
        --policy "$T/settings.json" --hosts ok.test=127.0.0.2 --hosts www.ok.test=127.0.0.2 \
        --hosts bad.ok.test=127.0.0.2 --hosts evil.test=127.0.0.3 --hosts-only \
        --log "$T/decisions.log" 2>"$T/proxy.err" &
    PROXY_PID=$!
    PIDS+=($!)
    wait_file "$T/proxy.ports"
    HP=$(sed -n 's/^http=//p' "$T/proxy.ports")
    expect "ok /p 0" "$(curl -sS --max-time 10 -x "http://127.0.0.1:$HP" "http://www.ok.test:$PORT_ok/p")" "wildcard from the settings file"
    expect "ok /q 0" "$(curl -sS --max-time 10 -x "http://127.0.0.1:$HP" "http://ok.test:$PORT_ok/q")" "exact entry from the settings file"
    expect "403 blocked-by-policy" "$(hcurl -x "http://127.0.0.1:$HP" "http://bad.ok.test:$PORT_ok/")" "deniedDomains from the settings file"
    expect "403 blocked-by-policy" "$(hcurl -x "http://127.0.0.1:$HP" "http://evil.test:$PORT_evil/")" "not listed"
    expect "ok /r 0" "$(curl -sS --max-time 10 -x "http://127.0.0.1:$HP" "http://127.0.0.2:$PORT_ok/r")" "allowedAddresses IP literal"
    untouched evil
    echo '{"sandbox": {"network": {"allowedDomains": "ok.test"}}}' > "$T/bad.json"
    if "$NETPROXY" --listen-http 127.0.0.1:0 --policy "$T/bad.json" 2>"$T/bad.err"; then
        fail "a malformed policy file was accepted"
    else
        expect_match "sandbox.network.allowedDomains: expected a list of strings" "$(cat "$T/bad.err")" "malformed policy file refused at start"
    fi
    # sandbox-runtime's shape, read by the same loader as airlock run's
    cat > "$T/srt.json" <<'JSON'
{"network": {"allowedDomains": ["ok.test"], "deniedDomains": ["evil.test"],
             "allowedAddresses": ["127.0.0.2/32", "127.0.0.3/32"]},
 "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}
JSON
    kill "$PROXY_PID"
    rm -f "$T/proxy.ports"
    "$NETPROXY" --listen-http 127.0.0.1:0 --port-file "$T/proxy.ports" --policy "$T/srt.json" \
        --hosts ok.test=127.0.0.2 --hosts evil.test=127.0.0.3 --hosts-only 2>"$T/proxy.err" &
    PIDS+=($!)
    wait_file "$T/proxy.ports"
    HP=$(sed -n 's/^http=//p' "$T/proxy.ports")
    expect "ok /s 0" "$(curl -sS --max-time 10 -x "http://127.0.0.1:$HP" "http://ok.test:$PORT_ok/s")" "allowedDomains from an srt settings file"
    expect "403 blocked-by-policy" "$(hcurl -x "http://127.0.0.1:$HP" "http://evil.test:$PORT_evil/")" "deniedDomains from an srt settings file"
    echo '{"network": {"allowedDomains": ["ok.test"], "unknownKey": 1}}' > "$T/bad2.json"
    if "$NETPROXY" --listen-http 127.0.0.1:0 --policy "$T/bad2.json" 2>"$T/bad.err"; then
        fail "an srt file with an unknown key was accepted"
    else
        expect_match "unknownKey" "$(cat "$T/bad.err")" "unknown key refused at start"
    fi
    untouched evil
}

# ---------------------------------------------------------------- SSRF

case_numeric_hosts() {
    setup
    local p=$PORT_secret
    for h in 127.0.0.1 2130706433 0177.0.0.1 0x7f.1 127.1 0x7f000001 017700000001 0x7F.0.0.1 \
        127.0.0.1. 127.0.1 0 0.0.0.0 '[::1]' '[::ffff:127.0.0.1]' '[::ffff:7f00:1]' '[::127.0.0.1]' \
        '[64:ff9b::7f00:1]' '[2002:7f00:1::]' '[::]' 169.254.169.254 10.0.0.1 100.64.0.1 \
        192.168.0.1 '[fe80::1]' '[fc00::1]'; do
        # raw request line: the proxy, not curl, has to read the number
        r=$("$PY" "$HERE/client.py" http "$HP" "GET http://$h:$p/ HTTP/1.1\r\nHost: $h:$p\r\n\r\n")
        expect_match "^(403 blocked-by-policy|403 blocked-address)" "$r" "absolute-form $h"
        r=$("$PY" "$HERE/client.py" http "$HP" "CONNECT $h:$p HTTP/1.1\r\n\r\n")
        expect_match "^(403 blocked-by-policy|403 blocked-address)" "$r" "CONNECT $h"
    done
    for h in 2130706433 0x7f.1 127.1 0177.0.0.1; do
        expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 3 "$h" "$p")" "SOCKS5 domain $h"
    done
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 1 127.0.0.1 "$p")" "SOCKS5 IPv4 127.0.0.1"
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 4 ::1 "$p")" "SOCKS5 IPv6 ::1"
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 4 ::ffff:127.0.0.1 "$p")" "SOCKS5 IPv6 ::ffff:127.0.0.1"
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 4 ::127.0.0.1 "$p")" "SOCKS5 IPv6 ::127.0.0.1"
    untouched secret
}

case_allowed_name_to_internal() {
    setup
    expect "403 blocked-address" "$(hcurl -x "http://127.0.0.1:$HP" "http://loop.test:$PORT_secret/")" "allowed name -> 127.0.0.1"
    expect "403 blocked-address" "$(hcurl -x "http://127.0.0.1:$HP" "http://meta.test/latest/meta-data/")" "allowed name -> 169.254.169.254"
    expect "403 blocked-address" "$(hcurl -x "http://127.0.0.1:$HP" "http://v6loop.test:$PORT_secret/")" "allowed name -> ::1"
    expect "403 blocked-address" "$(hcurl -x "http://127.0.0.1:$HP" "http://mapped.test:$PORT_secret/")" "allowed name -> ::ffff:127.0.0.1"
    r=$("$PY" "$HERE/client.py" http "$HP" "CONNECT loop.test:$PORT_secret HTTP/1.1\r\n\r\n")
    expect_match "^403 blocked-address" "$r" "CONNECT allowed name -> 127.0.0.1"
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 3 loop.test "$PORT_secret")" "SOCKS5 allowed name -> 127.0.0.1"
    untouched secret
}

# Every non-public class, one at a time, as the answer the resolver gives for
# an allowed name (nothing lists it in allowedAddresses): refused as
# blocked-address on all three doors, before any connection is tried.
# NAME ADDRESS CLASS (the class al_addr_class_name() reports)
NONPUBLIC_ANSWERS=(
    "cgnat.test 100.64.0.1 cgnat"
    "bench.test 198.18.0.1 reserved"
    "class-e.test 240.0.0.1 reserved"
    "ula.test fc00::1 private"
    "linklocal6.test fe80::1 link-local"
    "mapped-private.test ::ffff:10.0.0.1 ipv4-in-ipv6"
    "nat64.test 64:ff9b::a00:1 ipv4-in-ipv6"
    "sixtofour.test 2002:a00:1:: ipv4-in-ipv6"
    "bench6.test 2001:2::1 reserved"
    "orchid.test 2001:10::1 reserved"
    "doc6.test 3fff::1 reserved"
    "srv6.test 5f00::1 reserved"
)

case_allowed_name_to_nonpublic() {
    local args=() row name addr cls
    for row in "${NONPUBLIC_ANSWERS[@]}"; do
        read -r name addr cls <<<"$row"
        args+=(--allow "$name" --hosts "$name=$addr")
    done
    setup "${args[@]}"
    for row in "${NONPUBLIC_ANSWERS[@]}"; do
        read -r name addr cls <<<"$row"
        expect "403 blocked-address" "$(hcurl -x "http://127.0.0.1:$HP" "http://$name:$PORT_ok/")" "GET $name -> $addr ($cls)"
        r=$("$PY" "$HERE/client.py" http "$HP" "CONNECT $name:$PORT_ok HTTP/1.1\r\n\r\n")
        expect_match "^403 blocked-address" "$r" "CONNECT $name -> $addr"
        expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 3 "$name" "$PORT_ok")" "SOCKS5 $name -> $addr"
        # the log names the refused address and its class: the check, not a
        # failed dial, refused it
        wait_log "\"host\":\"$name\"" || fail "no decision line for $name"
        if grep "\"host\":\"$name\"" "$T/decisions.log" | grep -v '"reason":"blocked-address"' | grep -q .; then
            fail "$name: a decision other than blocked-address: $(grep "\"host\":\"$name\"" "$T/decisions.log" | head -1)"
        fi
        grep "\"host\":\"$name\"" "$T/decisions.log" | head -1 | grep -q "$cls address $addr" &&
            pass "$name: logged as $cls address $addr" ||
            fail "$name: log does not say '$cls address $addr': $(grep "\"host\":\"$name\"" "$T/decisions.log" | head -1)"
    done
    untouched ok evil secret
}

# A refusal decided after a real (threaded) DNS lookup must still be sent:
# localhost resolves through the system resolver, not the override table.
case_real_dns_refusal_replies() {
    start_upstream secret 127.0.0.1
    "$NETPROXY" --listen-http 127.0.0.1:0 --listen-socks 127.0.0.1:0 --port-file "$T/proxy.ports" \
        --allow localhost --log "$T/decisions.log" 2>"$T/proxy.err" &
    PIDS+=($!)
    wait_file "$T/proxy.ports"
    HP=$(sed -n 's/^http=//p' "$T/proxy.ports")
    SP=$(sed -n 's/^socks=//p' "$T/proxy.ports")
    expect "403 blocked-address" "$(hcurl -x "http://127.0.0.1:$HP" "http://localhost:$PORT_secret/")" "GET localhost (system resolver)"
    r=$("$PY" "$HERE/client.py" http "$HP" "CONNECT localhost:$PORT_secret HTTP/1.1\r\n\r\n")
    expect_match "^403 blocked-address" "$r" "CONNECT localhost (system resolver)"
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 3 localhost "$PORT_secret")" "SOCKS5 localhost (system resolver)"
    untouched secret
}

case_dns_rebinding() {
    setup
    # rebind.test answers 127.0.0.2 first, then 127.0.0.1
    expect "ok /1 0" "$(curl -sS --max-time 10 -x "http://127.0.0.1:$HP" "http://rebind.test:$PORT_ok/1")" "first lookup: test host"
    wait_log '"host":"rebind.test"'
    grep '"host":"rebind.test"' "$T/decisions.log" | head -1 | grep -q '"addr":"127.0.0.2"' \
        && pass "dialled exactly the checked address 127.0.0.2" || fail "dialled address not 127.0.0.2: $(cat "$T/decisions.log")"
    expect "403 blocked-address" "$(hcurl -x "http://127.0.0.1:$HP" "http://rebind.test:$PORT_ok/2")" "second lookup: 127.0.0.1"
    expect "1" "$(grep -c '^GET' "$T/ok.log")" "upstream ok saw only the first request"
    untouched secret
}

# ---------------------------------------------------------------- names

case_case_and_trailing_dot() {
    setup
    expect "ok /g 0" "$(curl -sS --max-time 10 -x "http://127.0.0.1:$HP" "http://good.corp.test:$PORT_ok/g")" "wildcard allows good.corp.test"
    for h in bad.corp.test BAD.CORP.TEST bad.corp.test. Bad.Corp.Test.; do
        r=$("$PY" "$HERE/client.py" http "$HP" "GET http://$h:$PORT_ok/ HTTP/1.1\r\nHost: $h:$PORT_ok\r\n\r\n")
        expect_match "^403 blocked-by-policy" "$r" "deny rule vs $h"
        r=$("$PY" "$HERE/client.py" http "$HP" "CONNECT $h:$PORT_ok HTTP/1.1\r\n\r\n")
        expect_match "^403 blocked-by-policy" "$r" "deny rule vs CONNECT $h"
        expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 3 "$h" "$PORT_ok")" "deny rule vs SOCKS5 $h"
    done
    expect "403 blocked-by-policy" "$(hcurl -x "http://127.0.0.1:$HP" "http://corp.test:$PORT_ok/")" "wildcard does not cover corp.test itself"
    [ "$(grep -c '^GET' "$T/ok.log")" == 1 ] && pass "only the allowed request arrived" || fail "upstream saw: $(cat "$T/ok.log")"
}

case_lookalike_names() {
    setup
    local e=$PORT_evil
    expect "403 blocked-by-policy" "$(hcurl -x "http://127.0.0.1:$HP" "http://allowed.test.evil.test:$e/")" "allowed.test.evil.test"
    expect "403 blocked-by-policy" "$(hcurl -x "http://127.0.0.1:$HP" "http://evil.test:$e/allowed.test")" "evil.test/allowed.test"
    expect "403 blocked-by-policy" "$(hcurl -x "http://127.0.0.1:$HP" "http://allowed.test@evil.test:$e/")" "allowed.test@evil.test (curl)"
    r=$("$PY" "$HERE/client.py" http "$HP" "GET http://allowed.test@evil.test:$e/ HTTP/1.1\r\nHost: evil.test:$e\r\n\r\n")
    expect_match "^400 bad-request" "$r" "raw userinfo allowed.test@evil.test"
    r=$("$PY" "$HERE/client.py" http "$HP" "CONNECT allowed.test@evil.test:$e HTTP/1.1\r\n\r\n")
    expect_match "^400 bad-request" "$r" "CONNECT allowed.test@evil.test"
    r=$("$PY" "$HERE/client.py" http "$HP" "GET http://evil.test%2fallowed.test:$e/ HTTP/1.1\r\n\r\n")
    expect_match "^400 bad-request" "$r" "percent-encoded slash in host"
    r=$("$PY" "$HERE/client.py" http "$HP" "GET http://evil.test\\\\allowed.test:$e/ HTTP/1.1\r\n\r\n")
    expect_match "^400 bad-request" "$r" "backslash in host"
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 3 allowed.test.evil.test "$e")" "SOCKS5 allowed.test.evil.test"
    untouched evil secret
}

case_socks5_bad_names() {
    setup
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 3 'allowed.test\x00.evil.test' "$PORT_evil")" "NUL inside name"
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 3 'evil.test\x00allowed.test' "$PORT_evil")" "NUL before allowed suffix"
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 3 'allowed.test\x00' "$PORT_ok")" "trailing NUL"
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 3 'evil.test/allowed.test' "$PORT_evil")" "slash in name"
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 3 'allowed.test@evil.test' "$PORT_evil")" "@ in name"
    expect "02" "$("$PY" "$HERE/client.py" socks "$SP" 3 'evil.test\nallowed.test' "$PORT_evil")" "newline in name"
    expect "07" "$("$PY" "$HERE/client.py" socks "$SP" 3 allowed.test "$PORT_ok" 2)" "BIND refused"
    expect "07" "$("$PY" "$HERE/client.py" socks "$SP" 3 allowed.test "$PORT_ok" 3)" "UDP ASSOCIATE refused"
    untouched evil secret
}

# ---------------------------------------------------------------- HTTP

case_host_mismatch() {
    setup
    local e=$PORT_evil o=$PORT_ok
    r=$("$PY" "$HERE/client.py" http "$HP" "GET http://allowed.test:$o/ HTTP/1.1\r\nHost: evil.test:$e\r\n\r\n")
    expect_match "^400 bad-request" "$r" "absolute URL allowed, Host evil"
    r=$("$PY" "$HERE/client.py" http "$HP" "GET http://evil.test:$e/ HTTP/1.1\r\nHost: allowed.test:$o\r\n\r\n")
    expect_match "^400 bad-request" "$r" "absolute URL evil, Host allowed"
    r=$("$PY" "$HERE/client.py" http "$HP" "CONNECT allowed.test:$o HTTP/1.1\r\nHost: evil.test:$e\r\n\r\n")
    expect_match "^400 bad-request" "$r" "CONNECT allowed, Host evil"
    r=$("$PY" "$HERE/client.py" http "$HP" "GET http://allowed.test:$o/ HTTP/1.1\r\nHost: allowed.test:$o\r\nHost: evil.test\r\n\r\n")
    expect_match "^400 bad-request" "$r" "two Host headers"
    r=$("$PY" "$HERE/client.py" http "$HP" "GET /relative HTTP/1.1\r\nHost: allowed.test:$o\r\n\r\n")
    expect_match "^400 bad-request" "$r" "origin-form request"
    untouched evil secret
    [ -s "$T/ok.log" ] && fail "upstream ok reached by a refused request" || pass "upstream ok untouched"
}

# Host and the absolute-form target name different hosts on the same port:
# the port check alone would let it through.
case_host_mismatch_same_port() {
    setup
    local o=$PORT_ok
    r=$("$PY" "$HERE/client.py" http "$HP" "GET http://allowed.test:$o/ HTTP/1.1\r\nHost: evil.test:$o\r\n\r\n")
    expect_match "^400 bad-request" "$r" "absolute URL allowed.test:$o, Host evil.test:$o"
    r=$("$PY" "$HERE/client.py" http "$HP" "GET http://evil.test:$o/ HTTP/1.1\r\nHost: allowed.test:$o\r\n\r\n")
    expect_match "^400 bad-request" "$r" "absolute URL evil.test:$o, Host allowed.test:$o"
    r=$("$PY" "$HERE/client.py" http "$HP" "GET http://allowed.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n")
    expect_match "^400 bad-request" "$r" "both on the default port 80"
    r=$("$PY" "$HERE/client.py" http "$HP" "GET http://allowed.test:$o/ HTTP/1.1\r\nHost: ok.test:$o\r\n\r\n")
    expect_match "^400 bad-request" "$r" "two allowed names with the same address"
    r=$("$PY" "$HERE/client.py" http "$HP" "CONNECT allowed.test:$o HTTP/1.1\r\nHost: evil.test:$o\r\n\r\n")
    expect_match "^400 bad-request" "$r" "CONNECT allowed.test:$o, Host evil.test:$o"
    [ -s "$T/ok.log" ] && fail "upstream ok reached by a refused request: $(cat "$T/ok.log")" || pass "upstream ok untouched"
    # control: the same request with a matching Host (any case) goes through
    r=$("$PY" "$HERE/client.py" http "$HP" "GET http://allowed.test:$o/m HTTP/1.1\r\nHost: Allowed.Test:$o\r\n\r\n")
    expect_match "^200 - ok /m" "$r" "matching Host (control)"
    untouched evil secret
}

case_keepalive_second_request() {
    setup
    r=$("$PY" "$HERE/client.py" http "$HP" \
        "GET http://ok.test:$PORT_ok/first HTTP/1.1\r\nHost: ok.test:$PORT_ok\r\n\r\n" \
        "GET http://evil.test:$PORT_evil/second HTTP/1.1\r\nHost: evil.test:$PORT_evil\r\n\r\n")
    expect_match "^200 - ok /first" "$(echo "$r" | head -1)" "first request (allowed)"
    expect_match "^403 blocked-by-policy" "$(echo "$r" | sed -n 2p)" "second request on the same connection (denied)"
    r=$("$PY" "$HERE/client.py" http "$HP" \
        "GET http://ok.test:$PORT_ok/a HTTP/1.1\r\nHost: ok.test:$PORT_ok\r\n\r\n" \
        "GET http://ok.test:$PORT_ok/b HTTP/1.1\r\nHost: ok.test:$PORT_ok\r\n\r\n")
    expect "2" "$(echo "$r" | grep -c '^200')" "two allowed requests on one connection"
    expect "403 blocked-by-policy" "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -x "http://127.0.0.1:$HP" "http://ok.test:$PORT_ok/c" -o /dev/null "http://evil.test:$PORT_evil/d" | tail -c 3) blocked-by-policy" "curl second URL"
    untouched evil secret
}

case_cl_te_smuggling() {
    setup
    local o=$PORT_ok
    r=$("$PY" "$HERE/client.py" http "$HP" "POST http://ok.test:$o/ HTTP/1.1\r\nHost: ok.test:$o\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET http://evil.test:$PORT_evil/ HTTP/1.1\r\nHost: evil.test:$PORT_evil\r\n\r\n")
    expect_match "^400 bad-request" "$r" "CL + TE"
    r=$("$PY" "$HERE/client.py" http "$HP" "POST http://ok.test:$o/ HTTP/1.1\r\nHost: ok.test:$o\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n")
    expect_match "^400 bad-request" "$r" "TE + CL"
    r=$("$PY" "$HERE/client.py" http "$HP" "POST http://ok.test:$o/ HTTP/1.1\r\nHost: ok.test:$o\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\n")
    expect_match "^400 bad-request" "$r" "two Content-Length"
    r=$("$PY" "$HERE/client.py" http "$HP" "POST http://ok.test:$o/ HTTP/1.1\r\nHost: ok.test:$o\r\nTransfer-Encoding: xchunked\r\n\r\n")
    expect_match "^501 bad-request" "$r" "unknown transfer coding"
    r=$("$PY" "$HERE/client.py" http "$HP" "POST http://ok.test:$o/ HTTP/1.1\r\nHost: ok.test:$o\r\nTransfer-Encoding : chunked\r\n\r\n")
    expect_match "^400 bad-request" "$r" "space before colon"
    r=$("$PY" "$HERE/client.py" http "$HP" "POST http://ok.test:$o/ HTTP/1.1\r\nHost: ok.test:$o\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n")
    expect_match "^400 bad-request" "$r" "obs-fold"
    untouched evil secret
    [ -s "$T/ok.log" ] && fail "upstream reached: $(cat "$T/ok.log")" || pass "upstream ok untouched"
}

case_oversized_headers() {
    setup
    big=$(head -c 20000 /dev/zero | tr '\0' a)
    r=$("$PY" "$HERE/client.py" http "$HP" "GET http://ok.test:$PORT_ok/ HTTP/1.1\r\nHost: ok.test:$PORT_ok\r\nX-Big: $big\r\n\r\n")
    expect_match "^431 bad-request" "$r" "20 KB header block"
    expect "431 bad-request" "$(hcurl -x "http://127.0.0.1:$HP" -H "X-Big: $big" "http://ok.test:$PORT_ok/")" "curl with 20 KB header"
    [ -s "$T/ok.log" ] && fail "upstream reached" || pass "upstream ok untouched"
}

case_slowloris() {
    setup --header-timeout 1000
    "$PY" "$HERE/client.py" slow "$HP" 0.3 > "$T/slow.out" &
    local slow=$!
    # the loop is not tied up: a normal request meanwhile works
    sleep 0.5
    expect "ok /during 0" "$(curl -sS --max-time 10 -x "http://127.0.0.1:$HP" "http://ok.test:$PORT_ok/during")" "request while a slow client dribbles"
    wait "$slow"
    expect "408 header-timeout" "$(cat "$T/slow.out")" "slowloris cut off"
}

case_connect_bad_ports() {
    setup
    for t in ok.test "ok.test:" ok.test:0 ok.test:65536 ok.test:99999 ok.test:-443 ok.test:0x1bb '[::1]'; do
        r=$("$PY" "$HERE/client.py" http "$HP" "CONNECT $t HTTP/1.1\r\n\r\n")
        expect_match "^400 bad-request" "$r" "CONNECT $t"
    done
    for t in "ok.test:0" "ok.test:65536"; do
        r=$("$PY" "$HERE/client.py" http "$HP" "GET http://$t/ HTTP/1.1\r\nHost: $t\r\n\r\n")
        expect_match "^400 bad-request" "$r" "GET http://$t/"
    done
    expect "01" "$("$PY" "$HERE/client.py" socks "$SP" 3 ok.test 0)" "SOCKS5 port 0"
    [ -s "$T/ok.log" ] && fail "upstream reached" || pass "upstream ok untouched"
}

case_sni_mismatch() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj /CN=tls.test -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
    start_upstream tls 127.0.0.2 tls
    setup
    # control: matching SNI works
    expect "tls /t 0" "$(curl -sS --max-time 10 -k -x "http://127.0.0.1:$HP" "https://tls.test:$PORT_tls/t")" "curl with SNI tls.test"
    out=$(echo | timeout 15 openssl s_client -proxy "127.0.0.1:$HP" -connect "tls.test:$PORT_tls" -servername tls.test 2>&1)
    [[ "$out" == *"CONNECTED"* && "$out" == *"BEGIN CERTIFICATE"* ]] && pass "SNI tls.test: handshake" || fail "control handshake failed: $out"
    out=$(echo | timeout 15 openssl s_client -proxy "127.0.0.1:$HP" -connect "tls.test:$PORT_tls" -servername evil.test 2>&1)
    [[ "$out" != *"BEGIN CERTIFICATE"* ]] && pass "SNI evil.test: no handshake" || fail "handshake with mismatching SNI: $out"
    r=$(curl -sS --max-time 10 -k -x "http://127.0.0.1:$HP" --connect-to "evil.test:$PORT_tls:tls.test:$PORT_tls" "https://evil.test:$PORT_tls/" 2>&1)
    [[ "$r" != *"tls /"* ]] && pass "curl --connect-to with SNI evil.test refused" || fail "curl got through: $r"
    wait_log '"reason":"sni-mismatch"' && pass "logged sni-mismatch" || fail "no sni-mismatch in log"
    expect "1" "$(grep -c '^GET' "$T/tls.log")" "only the matching request reached the TLS upstream"
}

case_limits() {
    setup --max-conns 2
    "$PY" - "$HP" <<'PY' > "$T/limit.out"
import socket, sys
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(10)
print(s.recv(200).split(b"\r\n")[0].decode())
PY
    expect_match "^HTTP/1.1 429" "$(cat "$T/limit.out")" "third connection over the limit"
}

case_dns_failure() {
    setup
    expect "502 dns-failure" "$(hcurl -x "http://127.0.0.1:$HP" "http://nxdomain.corp.test/")" "unresolvable allowed name"
}

name=${1:?case}
if ! declare -f "case_$name" >/dev/null; then echo "no case $name"; exit 2; fi
PROXY_PID=
"case_$name"
# A clean shutdown must work too; sanitizer builds report leaks/errors here.
if [ -n "$PROXY_PID" ]; then
    kill -TERM "$PROXY_PID"
    wait "$PROXY_PID"
    rc=$?
    [ "$rc" == 0 ] && pass "proxy exited cleanly" || fail "proxy exit status $rc"
fi
if [ -s "$T/proxy.err" ]; then
    echo "--- proxy stderr"; cat "$T/proxy.err"
    grep -qE "Sanitizer|runtime error" "$T/proxy.err" && fail "sanitizer report"
fi
if [ "$FAILS" -gt 0 ]; then
    echo "--- decisions"; cat "$T/decisions.log" 2>/dev/null
    echo "$FAILS failure(s)"; exit 1
fi
echo "all passed"
