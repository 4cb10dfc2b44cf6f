#!/bin/bash
# Usage: cloud.sh BUILD_DIR [TEST.py]   (default cloud_test.py, beside this script)
# Starts the upstream of the gitproxy integration tests (git http-backend
# behind nginx, accepting only $REAL_TOKEN), then airlock the way a real
# install runs it: `airlock up --state-dir ... --listen ...` as
# deploy/quickstart.sh starts it (as root, in the environment of whoever runs
# the test: nothing exported), then the operator's changes (README.md): the
# git.test upstream in gitproxy.json, the test hosts in airlockd.json's
# proxies section, users and API keys with `airlock admin`, the real
# credential with `airlock creds add`; then a restart. cloud_test.py runs
# against it; its settings come in a file, not the environment, so that the
# `airlock up` it restarts inherits nothing of the test either.
set -u
. "$(dirname "$0")/../gitproxy/require.sh"
require_root_and_tools "airlockd"
. "$(dirname "$0")/../gitproxy/env.sh"
HERE_CLOUD=$(cd "$(dirname "$0")" && pwd)
# env.sh's own proxy is not used here
kill "$PROXY_PID" 2>/dev/null

AIRLOCK=$BUILD/cli/airlock
ALD=$T/ald
PORT=$(free_port)
UP_PID=
mkdir -m 755 "$T/cloud"
LOG=$T/cloud/airlockd.log

start_up() { # as deploy/quickstart.sh does
    rm -f "$ALD/airlockd.addr"
    "$AIRLOCK" up --state-dir "$ALD" --listen "127.0.0.1:$PORT" >>"$LOG" 2>&1 &
    UP_PID=$!
    PIDS+=("$UP_PID")
    for _ in $(seq 1 400); do
        [ -s "$ALD/airlockd.addr" ] && return 0
        kill -0 "$UP_PID" 2>/dev/null || break
        sleep 0.05
    done
    fail "airlock up did not start" "$LOG"
    exit 1
}
stop_up() {
    kill -TERM "$UP_PID" 2>/dev/null
    wait "$UP_PID" 2>/dev/null
    UP_PID=
}

start_up
ADMIN_KEY=$(grep -o 'alk_[0-9a-f]*' "$LOG" | head -1)
[ -n "$ADMIN_KEY" ] || { fail "airlock up printed no admin key" "$LOG"; exit 1; }

# ---- the operator's changes ----
NETPROXY=$BUILD/netproxy/airlock-netproxy
NET_CONTROL=0
if "$NETPROXY" --help 2>&1 | grep -q -- --control; then NET_CONTROL=1; fi
# The network checks' web server listens on one of the host's own non-loopback
# addresses: a session may never list loopback in allowedAddresses, so the
# operator grants alice that one address (airlockd's "grants").
NET_ADDR=$(ip -4 -o addr show scope global 2>/dev/null | awk '{sub("/.*", "", $4); print $4; exit}')
WEB_ADDR=${NET_ADDR:-127.0.0.1}
CLOSED_PORT=$(free_port) # nothing listens there: refused.test's upstream
python3 - "$ALD" "$UP" "$NET_CONTROL" "$WEB_ADDR" "$NET_ADDR" "$CLOSED_PORT" <<'PY'
import json, sys
ald, up, net, web, grant = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4], sys.argv[5]
closed = sys.argv[6]
def edit(name, change):
    path = "%s/%s" % (ald, name)
    with open(path) as f:
        conf = json.load(f)
    change(conf)
    with open(path, "w") as f:
        json.dump(conf, f, indent=2)
def gitproxy(conf):
    conf["upstreams"]["git.test"] = {"url": up}
    # failing upstreams for session_ux_test.py: a refused port, a name that
    # never resolves (.invalid, RFC 2606)
    conf["upstreams"]["refused.test"] = {"url": "http://127.0.0.1:" + closed}
    conf["upstreams"]["nxdomain.test"] = {"url": "http://nosuch.invalid"}
    conf["leak_guard"] = True
    conf["check_fast_forward"] = True
def airlockd(conf):
    conf["log_level"] = "debug"
    px = conf.setdefault("proxies", {})
    px["hosts"] = ["allowed.test=" + web, "denied.test=" + web, "new.test=" + web]
    if grant:
        conf["grants"] = {"alice": {"allowedAddresses": [grant + "/32"]}}
    px["approval_timeout_s"] = 60
    if not net:
        px["netproxy"] = False
edit("gitproxy.json", gitproxy)
edit("airlockd.json", airlockd)
PY
"$AIRLOCK" admin --state-dir "$ALD" user add alice >/dev/null
"$AIRLOCK" admin --state-dir "$ALD" user add bob >/dev/null
KEY_ALICE=$("$AIRLOCK" admin --state-dir "$ALD" key create --user alice --name t 2>/dev/null)
KEY_BOB=$("$AIRLOCK" admin --state-dir "$ALD" key create --user bob --name t 2>/dev/null)
printf '%s\n' "$REAL_TOKEN" | "$AIRLOCK" creds add --store "$ALD/creds.store" \
    --master-key "$ALD/master.key" --scope git.test/o
for scope in refused.test/o nxdomain.test/o; do
    printf '%s\n' "$REAL_TOKEN" | "$AIRLOCK" creds add --store "$ALD/creds.store" \
        --master-key "$ALD/master.key" --scope "$scope"
done
# a credential the upstream refuses (401)
printf 'not-the-token\n' | "$AIRLOCK" creds add --store "$ALD/creds.store" \
    --master-key "$ALD/master.key" --scope git.test/bad
stop_up
start_up

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

# cloud_test.py's settings (a file: nothing is exported)
(umask 077 && python3 - "$T/cloud/test.json" <<PY
import json, sys
json.dump({"API": "http://$(cat "$ALD/airlockd.addr")", "T": "$T", "SRV": "$SRV",
           "REAL_TOKEN": "$REAL_TOKEN", "ALD": "$ALD", "ALD_PID": $UP_PID,
           "AIRLOCK": "$AIRLOCK", "LISTEN": "127.0.0.1:$PORT", "LOG2": "$T/cloud/airlockd2.log",
           "KEY_ALICE": "$KEY_ALICE", "KEY_BOB": "$KEY_BOB", "NET_CONTROL": "$NET_CONTROL",
           "WEB_PORT": "$WEB_PORT", "NET_ADDR": "$NET_ADDR", "GITCONFIG": "$T/gitconfig"}, open(sys.argv[1], "w"))
PY
)
python3 "$HERE_CLOUD/${2:-cloud_test.py}" "$T/cloud/test.json"
FAILS=$?
if [ "$FAILS" != 0 ]; then
    echo "--- airlockd log (tail)"
    tail -60 "$LOG"
fi
exit "$FAILS"
