#!/bin/bash
# Attacks on TLS termination with masked credentials (issue 15): each case
# tries to get a sentinel (or the real value) somewhere it must not go, or
# to slip a request past the inspection. The environment (test CA, nginx
# upstream, the proxy) is tests/integration/netproxy/tls_env.sh's.
# usage: tls_attack.sh CASE   (EMBED=path/to/integration_netproxy_embed)
CASE=${1:?usage: tls_attack.sh CASE}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../integration/netproxy/tls_env.sh"
CLIENT=("$PY" "$HERE/tls_client.py")

# the proxy as `airlock run` sets it up: every tunnel terminated, the token
# masked for api.test only; other.test and excluded.test are allowed hosts
setup() {
    start_proxy --tls-terminate --tls-exclude excluded.test --cred "GITHUB_TOKEN=$REAL@api.test" "$@"
    SENT=$(sed -n 's/^GITHUB_TOKEN=//p' "$T/sentinels")
    [ -n "$SENT" ] || { echo "no sentinel"; exit 1; }
}
# nothing with the sentinel (nor the real value) reached other.test; with
# "body", a request whose body is refused may have reached nginx up to the
# bytes before the sentinel (bodies are streamed): it must not have been
# served
other_clean() {
    if [ "${1:-}" == body ] && ! grep -q "^other.test 2" "$T/nginx-access.log"; then
        pass "other.test served no request"
    elif grep -q "^other.test" "$T/nginx-access.log"; then
        fail "other.test was reached: $(grep '^other.test' "$T/nginx-access.log" | head -3)"
    else
        pass "other.test saw no request"
    fi
    lacks "$SENT" "$(cat "$T/backend.log")" "the sentinel reached no upstream"
    lacks "$REAL" "$(cat "$T/backend.log")" "the real value reached no upstream"
}
log_has() { # PATTERN WHAT
    for _ in $(seq 1 50); do grep -q -- "$1" "$T/decisions.log" 2>/dev/null && break; sleep 0.1; done
    has "$1" "$(cat "$T/decisions.log" 2>/dev/null)" "$2"
}
O="https://other.test:$P_GOOD"

case_sentinel_header() {
    setup
    expect "403 credential-not-allowed-here" "$(code -H "Authorization: Bearer $SENT" "$O/auth")" "sentinel in Authorization to other.test"
    expect "403 credential-not-allowed-here" "$(code -H "X-Anything: prefix-$SENT-suffix" "$O/x")" "sentinel inside another header"
    expect "403 credential-not-allowed-here" "$(code -u "user:$SENT" "$O/basic")" "sentinel inside Basic credentials"
    log_has '"credential":"GITHUB_TOKEN"' "the refusal names the credential"
    other_clean
}

case_sentinel_url() {
    setup
    expect "403 credential-not-allowed-here" "$(code "$O/search?q=$SENT")" "sentinel in the query"
    expect "403 credential-not-allowed-here" "$(code "$O/$SENT/x")" "sentinel in the path"
    other_clean
}

case_sentinel_body() {
    setup
    { head -c 200000 /dev/zero | tr '\0' 'a'; printf '%s' "$SENT"; } > "$T/big"
    expect "403 credential-not-allowed-here" "$(code -H 'Content-Type: application/json' -d "{\"t\":\"$SENT\"}" "$O/json")" "sentinel in a JSON body"
    expect "403 credential-not-allowed-here" "$(code -H 'Content-Type: application/octet-stream' --data-binary "xx$SENT" "$O/bin")" "sentinel in an opaque body"
    expect "403 credential-not-allowed-here" "$(code -H 'Transfer-Encoding: chunked' -H 'Content-Type: text/plain' --data-binary "@$T/big" "$O/chunked")" "sentinel at the end of a large chunked body"
    other_clean body
}

case_sentinel_sni() {
    setup
    sni=$(printf '%s' "$SENT" | tr 'A-Z_' 'a-z-').other.test
    expect "handshake-failed" "$("${CLIENT[@]}" sni "$HP" other.test "$P_GOOD" "$sni" "$T/session-ca.pem" 2>&1)" "ClientHello SNI carrying the sentinel"
    log_has '"reason":"sni-mismatch"' "logged sni-mismatch"
    other_clean
}

case_excluded_sni() {
    setup
    # CONNECT to a terminated host, ClientHello for an excluded (opaque) one
    expect "handshake-failed" "$("${CLIENT[@]}" sni "$HP" api.test "$P_GOOD" excluded.test "$T/session-ca.pem" 2>&1)" "SNI of an excluded domain on a terminated CONNECT"
    log_has '"reason":"sni-mismatch"' "logged sni-mismatch"
    if grep -q '^excluded.test\|^api.test' "$T/nginx-access.log"; then fail "the upstream was reached"; else pass "upstream not reached"; fi
}

case_pipelining() {
    setup
    out=$("${CLIENT[@]}" pipeline "$HP" other.test "$P_GOOD" "$T/session-ca.pem" /first "Authorization: Bearer $SENT" 2>&1)
    expect "HTTP/1.1 200 OK
HTTP/1.1 403 Forbidden
closed" "$out" "second pipelined request (same TLS record) carries the sentinel"
    expect "1" "$(grep -c '^GET /first' "$T/backend.log")" "the first request was served"
    lacks "/second" "$(cat "$T/backend.log")" "the second never reached the upstream"
    lacks "$SENT" "$(cat "$T/backend.log")" "no sentinel upstream"
}

case_upgrade() {
    setup
    expect "403 upgrade-not-inspected" "$(code -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$O/ws")" "Upgrade on a terminated connection of a session with credentials"
    other_clean
}

case_plaintext_tunnel() {
    setup
    # a CONNECT tunnel to the plain-HTTP port: the terminated path expects
    # TLS; plaintext HTTP carrying the sentinel must not be relayed
    expect "closed" "$("${CLIENT[@]}" plain "$HP" other.test "$P_PLAIN" "Authorization: Bearer $SENT" 2>&1)" "plaintext HTTP with the sentinel in a terminated tunnel"
    log_has '"reason":"not-tls"' "logged not-tls"
    other_clean
    expect "closed" "$("${CLIENT[@]}" plain "$HP" api.test "$P_PLAIN" "Authorization: Bearer $SENT" 2>&1)" "same to the inject host"
    if grep -q '^api.test' "$T/nginx-access.log"; then fail "api.test was reached in plaintext"; else pass "api.test not reached"; fi
}

case_opaque_connect() {
    # without tlsTerminate (or for an excluded host) nothing is ever
    # replaced: the sentinel inside an opaque tunnel reaches the inject host
    # as the sentinel, so the real token is not used
    start_proxy --tls-exclude api.test --cred "GITHUB_TOKEN=$REAL@api.test"
    SENT=$(sed -n 's/^GITHUB_TOKEN=//p' "$T/sentinels")
    out=$(curl -sS --max-time 15 -x "http://127.0.0.1:$HP" --cacert "$T/testca.pem" -H "Authorization: Bearer $SENT" "https://api.test:$P_GOOD/auth" 2>&1)
    expect "no" "$out" "opaque CONNECT (no tlsTerminate): the sentinel is not replaced"
    kill "$PROXY_PID"
    wait "$PROXY_PID" 2>/dev/null
    start_proxy --tls-terminate --tls-exclude api.test --cred "GITHUB_TOKEN=$REAL@api.test"
    SENT=$(sed -n 's/^GITHUB_TOKEN=//p' "$T/sentinels")
    out=$(curl -sS --max-time 15 -x "http://127.0.0.1:$HP" --cacert "$T/testca.pem" -H "Authorization: Bearer $SENT" "https://api.test:$P_GOOD/auth" 2>&1)
    expect "no" "$out" "excluded inject host: opaque, the sentinel is not replaced"
    lacks "Bearer $REAL" "$(cat "$T/nginx-access.log")" "the real token never sent"
}

case_gzip_echo() {
    setup
    # an inject host echoes the (replaced) header: compressed, the re-masker
    # would see only gzip bytes
    out=$(pc --compressed -H "X-Token: $SENT" "https://api.test:$P_GOOD/hdrgz")
    lacks "$REAL" "$out" "gzip echo of the real value re-masked"
    expect "x-token=$SENT" "$out" "the echo shows the sentinel"
    out=$(pc -H "Accept-Encoding: gzip" -H "TE: gzip" -H "X-Token: $SENT" "https://api.test:$P_GOOD/hdrgz" | gzip -dc 2>/dev/null)
    lacks "$REAL" "$out" "gzip asked for by hand, decompressed in the sandbox"
}

case_basic_echo() {
    setup
    # the proxy re-encodes Basic credentials with the real value inside; an
    # inject host that echoes the header must not hand that base64 back
    for user in u us usr; do
        out=$(pc -u "$user:$SENT" "https://api.test:$P_GOOD/authecho")
        b64=$(printf '%s' "$out" | sed -n 's/^auth=Basic //p')
        lacks "$REAL" "$(printf '%s' "$b64" | base64 -d 2>/dev/null)" "Basic echo ($user:...) does not decode to the real value"
        lacks "$(printf '%s:%s' "$user" "$REAL" | base64 -w0 | cut -c 8-40)" "$out" "nor hold its base64"
    done
}

case_plain_echo() {
    # allowPlaintextInject: a real value put into a plain-HTTP request and
    # echoed by the inject host is re-masked like on HTTPS
    setup --plaintext-inject
    P="http://api.test:$P_PLAIN"
    out=$(curl -sS --max-time 15 -x "http://127.0.0.1:$HP" -H "X-Token: $SENT" "$P/hdr" 2>&1)
    expect "x-token=$SENT" "$out" "plain HTTP echo shows the sentinel"
    out=$(curl -sS --max-time 15 -x "http://127.0.0.1:$HP" --compressed -H "X-Token: $SENT" "$P/hdrgz" 2>&1)
    expect "x-token=$SENT" "$out" "plain HTTP echo, gzip asked for"
    out=$(curl -sS --max-time 15 -x "http://127.0.0.1:$HP" -u "u:$SENT" "$P/authecho" 2>&1)
    lacks "$REAL" "$(printf '%s' "$out" | sed -n 's/^auth=Basic //p' | base64 -d 2>/dev/null)" "plain HTTP Basic echo"
    # two requests on one connection, the first with the credential: both answered
    out=$(curl -sS --max-time 15 -x "http://127.0.0.1:$HP" -H "X-Token: $SENT" "$P/hdr" "$P/hdr" 2>&1)
    expect "x-token=$SENT
x-token=$SENT" "$out" "keep-alive after a re-masked response"
    expect "200 -" "$(CODE=http_code code -H "Authorization: Bearer $SENT" "$P/auth")" "the real value still authenticates"
    expect "403 upgrade-not-inspected" "$(code -H "Authorization: Bearer $SENT" -H 'Connection: Upgrade' -H 'Upgrade: websocket' "$P/ws")" "plain Upgrade carrying a credential"
}

case_plain_rule_echo() {
    # allowPlaintextInject and a request rule for the inject host: the rule's
    # 403 names the path, the log keeps it; neither may hold the real value
    setup --plaintext-inject --rule "api.test|GET|/allowed/**"
    P="http://api.test:$P_PLAIN"
    expect "403 blocked-by-request-rule" "$(code "$P/x/$SENT")" "plain HTTP, sentinel in a path that misses the rule"
    lacks "$REAL" "$(cat "$T/body")" "the refusal does not show the real value"
    code "$P/allowed/$SENT?q=$SENT" >/dev/null
    log_has '"path":"/allowed/' "the allowed request was logged"
    has "GET /allowed/$REAL?q=$REAL" "$(cat "$T/nginx-access.log")" "the inject host got the real value"
    lacks "$REAL" "$(cat "$T/decisions.log")" "no real value in the decision log"
    kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null
    setup --plaintext-inject --report-only --rule "api.test|GET|/allowed/**"
    code "$P/x/$SENT" >/dev/null
    log_has '"would-deny"' "reportOnly logged would-deny"
    lacks "$REAL" "$(cat "$T/decisions.log")" "no real value in the reportOnly log line"
}

# upstream TLS sessions are resumed per name: a session verified for
# api.test must not carry a connection to wrong.test on the same address and
# port past the name check (the certificate there has no wrong.test)
case_resumed_other_name() {
    setup
    expect "200 -" "$(code "https://api.test:$P_GOOD/plain")" "api.test: full handshake upstream"
    expect "200 -" "$(code "https://api.test:$P_GOOD/again")" "api.test again"
    has 'api.test 200 "GET /again HTTP/1.1" "-" reused=r' "$(cat "$T/nginx-access.log")" "the second connection resumed the upstream session"
    expect "502 upstream-certificate" "$(code "https://wrong.test:$P_GOOD/plain")" "wrong.test on api.test's address and port, after api.test's session"
    has "upstream certificate for wrong.test: hostname mismatch" "$(cat "$T/body")" "reason: hostname mismatch"
    if grep -q '^wrong.test' "$T/nginx-access.log"; then fail "wrong.test was served"; else pass "wrong.test saw no request"; fi
}

# A request head sent one byte at a time inside a terminated tunnel: the
# whole head must arrive within the header timeout (here 1 s), or the worker
# answers 408 and ends the tunnel (each byte alone arrives well in time)
case_slow_head() {
    setup --header-timeout 1000
    out=$(python3 - "$HP" "$P_GOOD" "$T/session-ca.pem" <<'PY' 2>&1
import socket, ssl, sys, time
hp, port, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", hp), timeout=10)
s.sendall(f"CONNECT api.test:{port} HTTP/1.1\r\nHost: api.test:{port}\r\n\r\n".encode())
resp = b""
while b"\r\n\r\n" not in resp:
    resp += s.recv(1)
ctx = ssl.create_default_context(cafile=ca)
t = ctx.wrap_socket(s, server_hostname="api.test")
head = b"GET /plain HTTP/1.1\r\nHost: api.test\r\nX-Slow: " + b"x" * 40 + b"\r\n\r\n"
start = time.monotonic()
sent = 0
try:
    for b in head:
        t.sendall(bytes([b]))
        sent += 1
        time.sleep(0.1)
        if time.monotonic() - start > 8:
            break
except OSError:
    pass
t.settimeout(5)
try:
    answer = t.recv(4096).decode(errors="replace")
except (OSError, ssl.SSLError) as e:
    answer = "error " + str(e)
print(answer.split("\r\n")[0], f"after {sent} of {len(head)} bytes")
PY
)
    has "408" "$out" "a head dripped byte by byte is cut off"
    lacks "after 89 of" "$out" "cut off before the whole head was sent"
    log_has '"reason":"header-timeout"' "logged header-timeout"
}

declare -F "case_$CASE" >/dev/null || { echo "unknown case $CASE"; exit 2; }
"case_$CASE"
echo "$FAILS failure(s)"
[ "$FAILS" -eq 0 ]
