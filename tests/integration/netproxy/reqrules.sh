#!/bin/bash
# Request rules and reportOnly through the real proxy code (the library,
# driven by policy_proxy with a policy built in C), curl as the client and a
# recording upstream on 127.0.0.2 that logs every request line it gets:
#   request_rules  GET allowed by a rule, POST and other paths refused, dot
#                  segments ("..", "%2e%2e") that leave the rule refused and
#                  never forwarded, the normalised target forwarded, bad
#                  paths (400), query keys, CONNECT to a rules host refused
#   report_only    a denied domain, a host not allowed and a rule miss are
#                  logged "would-deny" and let through; a private address and
#                  an IP literal stay refused
# usage: reqrules.sh CASE  (POLICY_PROXY=... UPSTREAM=.../upstream.py;
#        NP_SPLIT=1: the proxy runs split, policy_proxy --split)
set -u
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
POLICY_PROXY=${POLICY_PROXY:?}
UPSTREAM=${UPSTREAM:?}
T=$(mktemp -d /tmp/np-reqrules.XXXXXX)
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
expect() { # WANT GOT WHAT
    if [ "$2" == "$1" ]; then pass "$3 -> $2"; else fail "$3: got '$2', want '$1'"; fi
}
wait_file() {
    for _ in $(seq 1 100); do [ -s "$1" ] && return 0; sleep 0.05; done
    echo "timeout waiting for $1"; exit 1
}
# wait_log REGEX: true once a decision line matches (a line is written when
# its connection ends, maybe just after the client got its answer)
wait_log() {
    for _ in $(seq 1 50); do
        grep -Eq -- "$1" "$T/decisions.log" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
start() { # policy_proxy options...
    "$PY" "$UPSTREAM" 127.0.0.2 "$T/up.port" "$T/up.log" up &
    PIDS+=($!)
    wait_file "$T/up.port"
    touch "$T/up.log"
    UP=$(cat "$T/up.port")
    "$POLICY_PROXY" "$T/ports" "$T/decisions.log" --allow-address 127.0.0.2/32 \
        --hosts api.test=127.0.0.2 --hosts free.test=127.0.0.2 --hosts denied.test=127.0.0.2 \
        --hosts other.test=127.0.0.2 --hosts private.test=127.0.0.3 ${NP_SPLIT:+--split} "$@" \
        2>"$T/proxy.err" &
    PIDS+=($!)
    wait_file "$T/ports"
    HP=$(sed -n 's/^http=//p' "$T/ports")
}
# hcurl ARGS...: "STATUS X-Airlock-Error" through the HTTP proxy; body in $T/body
hcurl() {
    curl -sS --max-time 15 --path-as-is -x "http://127.0.0.1:$HP" -o "$T/body" -D "$T/h" \
        -w '%{http_code}' "$@" 2>/dev/null >"$T/code"
    local err
    err=$(tr -d '\r' <"$T/h" | sed -n 's/^[Xx]-[Aa]irlock-[Ee]rror: //p' | tail -1)
    echo "$(cat "$T/code") ${err:--}"
}
# raw REQUEST: one request as written (client.py), "STATUS ERROR BODY"
raw() { "$PY" "$(dirname "$UPSTREAM")/client.py" http "$HP" "$1"; }
upstream_saw() { grep -qF -- "$1" "$T/up.log"; }

RULES=(--allow api.test --allow free.test
    --rule 'api.test|GET,HEAD|/repos/acme/app/**'
    --rule 'api.test|GET|/search|q,page'
    --rule 'api.test|POST|/upload/*.json|')

case_request_rules() {
    start "${RULES[@]}"
    local A="http://api.test:$UP"
    expect "200 -" "$(hcurl "$A/repos/acme/app/issues")" "GET inside the rule"
    upstream_saw "GET /repos/acme/app/issues api.test" && pass "upstream got the GET" ||
        fail "upstream did not get the GET: $(cat "$T/up.log")"
    expect "200 -" "$(hcurl -I "$A/repos/acme/app")" "HEAD on the rule's root (** matches zero segments)"
    expect "403 blocked-by-request-rule" "$(hcurl -d x "$A/repos/acme/app/issues")" \
        "POST to the same path"
    expect "airlock: POST /repos/acme/app/issues matches no request rule for api.test (GET,HEAD /repos/acme/app/**; GET /search query:q,page; POST /upload/*.json query:none)" \
        "$(cat "$T/body")" "refusal body names the rules"
    expect "403 blocked-by-request-rule" "$(hcurl "$A/repos/acme/other/issues")" "a path outside"
    expect "403 blocked-by-request-rule" "$(hcurl "$A/repos/acme/app/../../other")" \
        "\"..\" out of the rule"
    expect "403 blocked-by-request-rule" "$(hcurl "$A/repos/acme/app/%2e%2e/%2E%2e/other")" \
        "\"%2e%2e\" out of the rule"
    expect "403 blocked-by-request-rule" "$(hcurl "$A/repos/acme/app/.%2E/x")" "\".%2E\" out of the rule"
    if grep -q "other\|%2e\|%2E\|\.\./" "$T/up.log"; then
        fail "the upstream saw a refused path: $(cat "$T/up.log")"
    else
        pass "the upstream never saw a refused path"
    fi
    expect "200 -" "$(hcurl "$A/repos/acme/app/x/../%79")" "dot segment staying inside"
    upstream_saw "GET /repos/acme/app/y api.test" && pass "the normalised target was forwarded" ||
        fail "forwarded target not normalised: $(tail -2 "$T/up.log")"
    expect "400 bad-path" "$(hcurl "$A/repos/acme/app/a%2F..%2F..%2Fother")" "encoded slash"
    expect "400 bad-path" "$(hcurl "$A/repos/acme/app/../../../../etc")" "climbing above /"
    expect "400 bad-path" "$(hcurl "$A/repos/acme/app/%5C..%5Cother")" "encoded backslash"
    expect "400 bad-path" "$(hcurl "$A/repos/acme/app/..;/other")" "\"..;\" (dot segment with parameters)"
    expect "200 -" "$(hcurl "$A/search?q=x&page=2")" "allowed query keys"
    expect "403 blocked-by-request-rule" "$(hcurl "$A/search?q=x&token=t")" "a query key not allowed"
    expect "200 -" "$(hcurl -d '{}' "$A/upload/a.json")" "POST allowed by a rule without query"
    expect "403 blocked-by-request-rule" "$(hcurl -d '{}' "$A/upload/a.json?x=1")" \
        "a query where the rule allows none"
    expect "403 blocked-by-request-rule" "$(hcurl -X get "$A/repos/acme/app")" "methods are case-sensitive"
    expect "200 -" "$(hcurl -d x "http://free.test:$UP/anything/../at/all")" "a host without rules"
    upstream_saw "POST /anything/../at/all free.test" && pass "a host without rules gets the target as sent" ||
        fail "free.test target changed: $(tail -2 "$T/up.log")"
    # a tunnel to a rules host cannot be checked without tlsTerminate
    local out
    out=$(raw "CONNECT api.test:$UP HTTP/1.1\r\nHost: api.test:$UP\r\n\r\n")
    case "$out" in
    "403 blocked-by-request-rule airlock: api.test has request rules (network.requestRules)"*"network.tlsTerminate"*)
        pass "CONNECT to a rules host -> $out" ;;
    *) fail "CONNECT to a rules host: $out" ;;
    esac
    expect "200 -" "$(hcurl -p "http://free.test:$UP/t")" "CONNECT to a host without rules"
    # the decision log
    wait_log '"decision":"deny","reason":"blocked-by-request-rule","rule":"GET,HEAD /repos/acme/app/\*\*; GET /search' &&
        pass "log: deny line names the rules" || fail "log: no deny line with the rules"
    wait_log '"method":"POST","path":"/repos/acme/app/issues"' && pass "log: method and path" ||
        fail "log: no method/path"
    wait_log '"decision":"allow","reason":"allowed-domain","rule":"GET /search query:q,page".*"path":"/search"' &&
        pass "log: the matching rule, path without query" || fail "log: no allow line with the rule"
    [ "$FAILS" -eq 0 ]
}

case_report_only() {
    start --report-only --deny denied.test "${RULES[@]}"
    expect "200 -" "$(hcurl "http://denied.test:$UP/d")" "reportOnly: a denied domain goes through"
    wait_log '"host":"denied.test".*"decision":"would-deny","reason":"blocked-by-policy","rule":"denied.test"' &&
        pass "log: would-deny for the denied domain" || fail "log: no would-deny for denied.test"
    expect "200 -" "$(hcurl "http://other.test:$UP/o")" "reportOnly: a host not allowed goes through"
    wait_log '"host":"other.test".*"decision":"would-deny","reason":"blocked-by-policy"' &&
        pass "log: would-deny for the host not allowed" || fail "log: no would-deny for other.test"
    expect "200 -" "$(hcurl -d x "http://api.test:$UP/repos/acme/app/x")" "reportOnly: a rule miss goes through"
    wait_log '"decision":"would-deny","reason":"blocked-by-request-rule".*"method":"POST","path":"/repos/acme/app/x"' &&
        pass "log: would-deny for the rule miss" || fail "log: no would-deny for the rule miss"
    expect "200 -" "$(hcurl "http://api.test:$UP/repos/acme/app/../../z")" "reportOnly: a dot-segment miss goes through"
    upstream_saw "GET /repos/z api.test" && pass "reportOnly forwards the normalised target" ||
        fail "reportOnly target: $(tail -2 "$T/up.log")"
    expect "200" "$(raw "CONNECT api.test:$UP HTTP/1.1\r\nHost: api.test:$UP\r\n\r\n" | cut -d' ' -f1)" \
        "reportOnly: CONNECT to a rules host without tlsTerminate goes through"
    wait_log '"proxy":"connect","host":"api.test".*"decision":"would-deny","reason":"blocked-by-request-rule"' &&
        pass "log: would-deny for the unchecked tunnel" || fail "log: no would-deny for the tunnel"
    # never relaxed: the address guard
    expect "403 blocked-address" "$(hcurl "http://private.test:$UP/p")" "reportOnly: a private address stays blocked"
    expect "403 blocked-by-policy" "$(hcurl "http://127.0.0.3:$UP/p")" "reportOnly: a loopback IP literal stays blocked"
    expect "403 blocked-address" "$(raw "CONNECT private.test:$UP HTTP/1.1\r\nHost: private.test:$UP\r\n\r\n" | cut -d' ' -f1-2)" \
        "reportOnly: CONNECT to a private address"
    wait_log '"host":"private.test".*"decision":"deny","reason":"blocked-address"' &&
        pass "log: deny for the private address" || fail "log: no deny for private.test"
    if grep -q '"decision":"allow".*"host":"\(denied\|other\)' "$T/decisions.log"; then
        fail "a would-deny request was logged allow"
    else
        pass "no would-deny request logged as allow"
    fi
    [ "$FAILS" -eq 0 ]
}

# ------------------------------------------------------------------ attacks
# (registered from tests/attacks/netproxy; each must fail without the rules)

case_attack_traversal() {
    start "${RULES[@]}"
    local A="http://api.test:$UP" p
    for p in /repos/acme/app/../../other /repos/acme/app/%2e%2e/%2e%2e/other \
        /repos/acme/app/.%2e/.%2E/other /repos/acme/app/%2E./%2e./other \
        "/repos/acme/app;/../../other" /repos/acme/app/x/../../../other \
        /repos/acme/app/./../../other; do
        expect "403 blocked-by-request-rule" "$(hcurl "$A$p")" "escape the rule with $p"
    done
    for p in /repos/acme/app/..%2f..%2fother /repos/acme/app/..%2F..%2Fother \
        /repos/acme/app/..%5c..%5cother /repos/acme/app/%2e%2e%2f%2e%2e%2fother \
        /repos/acme/app/..%00/other "/repos/acme/app/..;/..;/other" \
        /repos/acme/app/../../../../other /repos/acme/app/%zz/../../other; do
        expect "400 bad-path" "$(hcurl "$A$p")" "escape the rule with $p"
    done
    # raw bytes curl would not send as they are
    expect "400 bad-path" "$(raw "GET http://api.test:$UP/repos/acme/app/..\\\\..\\\\other HTTP/1.1\r\nHost: api.test:$UP\r\n\r\n" | cut -d' ' -f1-2)" \
        "escape the rule with raw backslashes"
    # the same host spelt differently is the same host
    expect "403 blocked-by-request-rule" "$(hcurl "http://API.Test.:$UP/repos/acme/app/../../other")" \
        "upper case and a trailing dot in the host"
    # double encoding stays one literal segment inside the rule
    expect "200 -" "$(hcurl "$A/repos/acme/app/%252e%252e/%252e%252e/other")" "double-encoded dots"
    if grep -v "%252e%252e/%252e%252e/other" "$T/up.log" | grep -q "other"; then
        fail "the upstream saw a path outside the rule: $(cat "$T/up.log")"
    else
        pass "the upstream never saw a path outside the rule"
    fi
    [ "$FAILS" -eq 0 ]
}

case_attack_smuggle() {
    start "${RULES[@]}"
    local H="Host: api.test:$UP\r\n"
    # keep-alive: the second request on the connection is checked too
    expect "200 - up /repos/acme/app/a 0
403 blocked-by-request-rule airlock: POST /admin matches no request rule for api.test (GET,HEAD /repos/acme/app/**; GET /search query:q,page; POST /upload/*.json query:none)" \
        "$("$PY" "$(dirname "$UPSTREAM")/client.py" http "$HP" "GET http://api.test:$UP/repos/acme/app/a HTTP/1.1\r\n$H\r\n" "POST http://api.test:$UP/admin HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n")" \
        "a forbidden request after an allowed one on a keep-alive connection"
    # pipelined in one write: the forbidden one is refused all the same
    expect "403 blocked-by-request-rule" \
        "$(raw "GET http://api.test:$UP/repos/acme/app/b HTTP/1.1\r\n$H\r\nPOST http://api.test:$UP/admin1 HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n" | cut -d' ' -f1-2)" \
        "a forbidden request pipelined behind an allowed one"
    # an Upgrade request would have its following bytes relayed unchecked
    expect "403 upgrade-not-inspected" \
        "$(raw "GET http://api.test:$UP/repos/acme/app/ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\nPOST /admin2 HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n" | cut -d' ' -f1-2)" \
        "a forbidden request smuggled behind an Upgrade"
    # a request in origin-form to the proxy is not a proxy request
    expect "400" "$(raw "POST /admin3 HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n" | cut -d' ' -f1)" \
        "origin-form request to the proxy"
    sleep 0.3
    if grep -q "/admin" "$T/up.log"; then
        fail "the upstream got a forbidden request: $(cat "$T/up.log")"
    else
        pass "the upstream never got a forbidden request"
    fi
    [ "$FAILS" -eq 0 ]
}

"case_$1"
rc=$?
[ $rc -eq 0 ] && [ "$FAILS" -eq 0 ] && echo "PASS $1" && exit 0
echo "FAILED $1 ($FAILS)"
[ -s "$T/proxy.err" ] && sed 's/^/proxy: /' "$T/proxy.err"
exit 1
