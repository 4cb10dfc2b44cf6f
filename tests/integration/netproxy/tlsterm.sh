#!/bin/bash
# TLS termination with masked credentials, against a real HTTPS upstream:
# nginx on 127.0.0.2 with certificates from the test's own CA (the proxy
# trusts it through SSL_CERT_FILE in its own environment, as a user would),
# a plain-HTTP backend behind it that records what arrived, and curl through
# the proxy (integration_netproxy_embed serve) trusting the session CA.
# usage: tlsterm.sh   (EMBED=path/to/integration_netproxy_embed)
. "$(dirname "$0")/tls_env.sh"
start_proxy --tls-terminate --tls-exclude excluded.test \
    --cred "GITHUB_TOKEN=$REAL@api.test" --cred "SHORT=$SHORT@api.test"
SENT=$(sed -n 's/^GITHUB_TOKEN=//p' "$T/sentinels")
SSENT=$(sed -n 's/^SHORT=//p' "$T/sentinels")
[ -n "$SENT" ] && [ "$SENT" != "$REAL" ] || { echo "no sentinel"; exit 1; }
expect "${#REAL}" "${#SENT}" "sentinel as long as the real value"
has "ghp_" "$SENT" "sentinel keeps the prefix"

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
# Expect: 100-continue is answered by the proxy (the body follows at once)
out=$(pc -H 'Expect: 100-continue' -H 'Content-Type: application/json' -d "{\"e\":\"$SENT\"}" "$U/expect")
expect "got {\"e\":\"$SENT\"}" "$out" "Expect: 100-continue with a JSON body"
has "BODY {\"e\":\"$REAL\"}" "$(cat "$T/backend.log")" "Expect: the body reached the upstream"
# HTTP/2 is never negotiated: curl asking for h2 gets HTTP/1.1
expect "1.1" "$(curl -sS --max-time 15 --http2 -x "http://127.0.0.1:$HP" --cacert "$T/session-ca.pem" -o /dev/null -w '%{http_version}' "$U/empty" 2>&1)" "ALPN: h2 offered, http/1.1 chosen"
# a body of another type is not rewritten, but a sentinel in it is allowed
# for an inject host (it is only passed through)
out=$(pc -H 'Content-Type: text/plain' -d "raw $SENT" "$U/text")
expect "got raw $SENT" "$out" "text/plain body: passed through unchanged"
# 4. keep-alive: two requests on one terminated connection
out=$(pc -H "Authorization: Bearer $SENT" "$U/auth" "$U/auth")
expect "auth ok
auth ok" "$out" "two requests on one connection"
# responses without a body: HEAD, 204, then another request on the same connection
P=(-sS --max-time 15 -x "http://127.0.0.1:$HP" --cacert "$T/session-ca.pem" -o /dev/null -w '%{http_code} %{num_connects} ')
out=$(curl "${P[@]}" -I "$U/auth" --next "${P[@]}" "$U/empty" --next "${P[@]}" -H "Authorization: Bearer $SENT" "$U/auth" 2>&1)
expect "401 1 204 0 200 0 " "$out" "HEAD, 204 and a request after them on one connection"
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
# 9. plain HTTP (decision 3): a sentinel is refused, never replaced
: > "$T/backend.log"
expect "403 credential-not-allowed-here" "$(code -H "Authorization: Bearer $SENT" "http://api.test:$P_PLAIN/auth")" "plain HTTP: sentinel to the inject host refused"
has "never replaced in plain-HTTP requests" "$(cat "$T/body")" "plain HTTP: the refusal says why"
expect "403 credential-not-allowed-here" "$(code -H 'Content-Type: application/json' -d "{\"t\":\"$SENT\"}" "http://other.test:$P_PLAIN/json")" "plain HTTP: sentinel in a body"
expect "403 credential-not-allowed-here" "$(code -H 'Transfer-Encoding: chunked' -d "x=$SENT" "http://other.test:$P_PLAIN/json")" "plain HTTP: sentinel in a chunked body"
expect "200 -" "$(code -d 'x=1' "http://other.test:$P_PLAIN/json")" "plain HTTP: a body without a sentinel passes"
lacks "$SENT" "$(cat "$T/backend.log")" "no sentinel reached the backend over plain HTTP"

# 10. the decision log: one "https" line per request, names not values
sleep 0.3
LOG=$(cat "$T/decisions.log")
has '"proxy":"https"' "$LOG" "per-request lines"
has '"method":"GET","path":"/auth","credential":"GITHUB_TOKEN"' "$LOG" "credential named in the log"
has '"reason":"credential-not-allowed-here"' "$LOG" "refusal logged"
lacks "$REAL" "$LOG" "real value not in the decision log"
lacks "$SHORT" "$LOG" "short real value not in the decision log"
lacks "$REAL" "$(cat "$T/proxy.err")" "real value not on the proxy's stderr"
kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null

# 11. allowPlaintextInject: replaced for inject hosts on plain HTTP too
# (under NP_SPLIT through the key holder: OPEN without TLS)
start_proxy --tls-terminate --plaintext-inject --cred "GITHUB_TOKEN=$REAL@api.test"
SENT=$(sed -n 's/^GITHUB_TOKEN=//p' "$T/sentinels")
expect "200 -" "$(code -H "Authorization: Bearer $SENT" "http://api.test:$P_PLAIN/auth")" "allowPlaintextInject: replaced on plain HTTP"
expect "403 credential-not-allowed-here" "$(code -H "Authorization: Bearer $SENT" "http://other.test:$P_PLAIN/auth")" "allowPlaintextInject: still refused for other hosts"
kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null

# 12. request rules on the terminated path (decision 10), and reportOnly
start_proxy --tls-terminate --cred "GITHUB_TOKEN=$REAL@api.test" --rule 'api.test|GET,HEAD|/repos/acme/**'
SENT=$(sed -n 's/^GITHUB_TOKEN=//p' "$T/sentinels")
: > "$T/backend.log"
expect "200 -" "$(code "$U/repos/acme/app")" "rule: GET inside the rule"
expect "403 blocked-by-request-rule" "$(code -X POST -d x=1 "$U/repos/acme/app")" "rule: POST to the same path"
has "matches no request rule" "$(cat "$T/body")" "rule: the refusal names the rules"
expect "403 blocked-by-request-rule" "$(code "$U/orgs/acme")" "rule: a path outside"
expect "403 blocked-by-request-rule" "$(code --path-as-is "$U/repos/acme/../../orgs/x")" "rule: dot segments leaving the rule"
expect "200 -" "$(code --path-as-is "$U/repos/acme/%61pp/./x")" "rule: normalised path inside the rule"
has "GET /repos/acme/app/x" "$(cat "$T/backend.log")" "rule: the normalised target went upstream"
lacks "/orgs" "$(cat "$T/backend.log")" "rule: refused paths never went upstream"
expect "200 -" "$(code "https://other.test:$P_GOOD/anything")" "rule: hosts without rules are not affected"
kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null
: > "$T/decisions.log"
start_proxy --tls-terminate --report-only --rule 'api.test|GET|/repos/**'
expect "200 -" "$(code -X POST -d x=1 "$U/other")" "reportOnly: a rule miss goes through"
sleep 0.3
has '"decision":"would-deny","reason":"blocked-by-request-rule"' "$(cat "$T/decisions.log")" "reportOnly: logged would-deny"
kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null

# 12b. Upgrade on a terminated connection of a session without credentials or
# rules: relayed after the 101 (upstream.py with TLS answers "Upgrade: echo")
leaf echohost "DNS:echo.test"
"$PY" "$TLS_ENV_DIR/../../attacks/netproxy/upstream.py" 127.0.0.2 "$T/echo.port" "$T/echo.log" echo "$T/echohost.pem" "$T/echohost.key" &
PIDS+=($!)
wait_file "$T/echo.port"
start_proxy --tls-terminate --allow echo.test --hosts echo.test=127.0.0.2
expect "HTTP/1.1 101 Switching Protocols raw bytes after the upgrade" "$("$PY" "$TLS_ENV_DIR/../../attacks/netproxy/tls_client.py" upgrade "$HP" echo.test "$(cat "$T/echo.port")" "$T/session-ca.pem" 2>&1)" "Upgrade without credentials: raw relay after the 101"
kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null

# 13. removing the session ends its terminated connections (workers)
start_proxy --tls-terminate --remove-when "$T/remove-now"
expect "closed" "$("$PY" "$TLS_ENV_DIR/../../attacks/netproxy/tls_client.py" hold "$HP" api.test "$P_GOOD" "$T/session-ca.pem" "$T/remove-now" 2>&1)" "np_proxy_remove_session closes a terminated keep-alive connection"
kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null

# 13b. the per-session connection limit counts terminated connections
start_proxy --tls-terminate --max-conns 1
"$PY" "$TLS_ENV_DIR/../../attacks/netproxy/tls_client.py" hold "$HP" api.test "$P_GOOD" "$T/session-ca.pem" "$T/holding" > "$T/hold.out" 2>&1 &
HOLD=$!
wait_file_exists() { for _ in $(seq 1 200); do [ -e "$1" ] && return 0; sleep 0.05; done; return 1; }
wait_file_exists "$T/holding" || fail "the held connection did not get its answer"
expect "429 limit" "$(CODE=http_connect code "$U/empty")" "a second connection over the limit while a terminated one is open"
kill "$HOLD" 2>/dev/null; wait "$HOLD" 2>/dev/null
kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null

# 14. tlsTerminate without a CA: refused, not passed opaque
start_proxy --tls-terminate --no-ca
expect "502 tls-not-configured" "$(CODE=http_connect code "$U/auth")" "terminated session without a CA"
kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null

echo "$FAILS failure(s)"
[ "$FAILS" -eq 0 ]
