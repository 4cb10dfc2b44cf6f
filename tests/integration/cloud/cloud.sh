#!/bin/bash
# Usage: cloud.sh BUILD_DIR
# Starts the upstream of the gitproxy integration tests (git http-backend
# behind nginx, accepting only $REAL_TOKEN), then airlockd with both proxies
# in control mode, and runs cloud_test.py against it.
set -u
. "$(dirname "$0")/../gitproxy/require.sh"
require_root_and_tools "airlockd"
. "$(dirname "$0")/../gitproxy/env.sh"
HERE_CLOUD=$(cd "$(dirname "$0")" && pwd)
# env.sh's own proxy is not used here
kill "$PROXY_PID" 2>/dev/null

ALD=$T/ald
mkdir -m 700 "$ALD"
mkdir -m 755 "$T/cloud"
cat > "$T/cloud/gitproxy.json" <<JSON
{"token_keys": [{"kid": "k2", "file": "$STATE/k2.key"}],
 "store": "$STATE/creds.store", "master_key": "$STATE/master.key",
 "upstreams": {"git.test": {"url": "$UP"}},
 "cache_dir": "$T/cloud/cache", "audit_log": "$T/cloud/audit.jsonl",
 "leak_guard": true, "check_fast_forward": true}
JSON
touch "$T/cloud/audit.jsonl"
chown nobody "$T/cloud/audit.jsonl"
NETPROXY=$BUILD/netproxy/airlock-netproxy
NET_CONTROL=0
if "$NETPROXY" --help 2>&1 | grep -q -- --control; then NET_CONTROL=1; fi
# The network checks' web server listens on one of the host's own non-loopback
# addresses: a session may never list loopback in allowedAddresses, so the
# operator grants alice that one address (airlockd's "grants").
NET_ADDR=$(ip -4 -o addr show scope global 2>/dev/null | awk '{sub("/.*", "", $4); print $4; exit}')
WEB_ADDR=${NET_ADDR:-127.0.0.1}
GRANTS="{}"
[ -n "$NET_ADDR" ] && GRANTS="{\"alice\": {\"allowedAddresses\": [\"$NET_ADDR/32\"]}}"
cat > "$T/cloud/airlockd.json" <<JSON
{"listen": "127.0.0.1:0", "state_dir": "$ALD",
 "proxies": {"enabled": true, "gitproxy_config": "$T/cloud/gitproxy.json", "user": "nobody",
             "netproxy": $([ $NET_CONTROL = 1 ] && echo "\"$NETPROXY\"" || echo false),
             "hosts": ["allowed.test=$WEB_ADDR", "denied.test=$WEB_ADDR", "new.test=$WEB_ADDR"],
             "approval_timeout_s": 60},
 "grants": $GRANTS}
JSON
# a plain web server for the network checks
mkdir -p "$T/www"
echo hello-from-upstream > "$T/www/hello.txt"
WEB_PORT=$(free_port)
python3 -m http.server --bind "$WEB_ADDR" --directory "$T/www" "$WEB_PORT" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/$WEB_ADDR/$WEB_PORT") 2>/dev/null && break
    sleep 0.1
done
export WEB_PORT NET_ADDR
AIRLOCKD=$BUILD/session/airlockd/airlockd
"$AIRLOCKD" admin --state-dir "$ALD" user add alice >/dev/null
"$AIRLOCKD" admin --state-dir "$ALD" user add bob >/dev/null
KEY_ALICE=$("$AIRLOCKD" admin --state-dir "$ALD" key create --user alice --name t 2>/dev/null)
KEY_BOB=$("$AIRLOCKD" admin --state-dir "$ALD" key create --user bob --name t 2>/dev/null)
"$AIRLOCKD" --config "$T/cloud/airlockd.json" --log-level debug >"$T/cloud/airlockd.log" 2>&1 &
ALD_PID=$!
PIDS+=($ALD_PID)
for _ in $(seq 1 400); do
    [ -s "$ALD/airlockd.addr" ] && break
    kill -0 "$ALD_PID" 2>/dev/null || break
    sleep 0.05
done
export AIRLOCKD T STATE SRV REAL_TOKEN ALD ALD_PID KEY_ALICE KEY_BOB NET_CONTROL
export API="http://$(cat "$ALD/airlockd.addr" 2>/dev/null)"
python3 "$HERE_CLOUD/cloud_test.py"
FAILS=$?
if [ "$FAILS" != 0 ]; then
    echo "--- airlockd log (tail)"
    tail -60 "$T/cloud/airlockd.log"
fi
exit "$FAILS"
