#!/bin/bash
# Usage: smoke.sh AIRLOCKD
# Starts airlockd on 127.0.0.1:0 with a scratch state dir, and checks the
# life of one session end to end, then that it left no process, cgroup or
# mount behind.
set -u
AIRLOCKD=$1
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: airlockd needs root"
    exit 77
fi
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }

T=$(mktemp -d /var/tmp/airlockd-smoke.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$T" "$T-proxy-home"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    echo "--- airlockd log"
    cat "$T/log" 2>/dev/null
    exit 1
}

"$AIRLOCKD" admin --state-dir "$T" user add alice >/dev/null || fail "user add"
KEY=$("$AIRLOCKD" admin --state-dir "$T" key create --user alice --name smoke 2>/dev/null) ||
    fail "key create"
case "$KEY" in alk_*) ;; *) fail "key looks wrong: $KEY" ;; esac
"$AIRLOCKD" admin --state-dir "$T" key ls | grep -q smoke || fail "key ls"

"$AIRLOCKD" --state-dir "$T" --listen 127.0.0.1:0 >"$T/log" 2>&1 &
PID=$!
# the daemon writes its bound address once it listens
for _ in $(seq 1 400); do
    [ -s "$T/airlockd.addr" ] && break
    kill -0 "$PID" 2>/dev/null || fail "airlockd exited"
    sleep 0.05
done
[ -s "$T/airlockd.addr" ] || fail "airlockd did not start"
A="http://$(cat "$T/airlockd.addr")"
AUTH="Authorization: Bearer $KEY"
JSON="Content-Type: application/json"

out=$(curl -sS "$A/healthz") || fail "healthz"
echo "$out" | grep -q '"status":"ok"' || fail "healthz: $out"

code=$(curl -sS -o /dev/null -w '%{http_code}' "$A/v1/sessions") || fail "curl"
[ "$code" = 401 ] || fail "no key: $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer alk_nope" "$A/v1/sessions")
[ "$code" = 401 ] || fail "bad key: $code"

out=$(curl -sS -H "$AUTH" -H "$JSON" -X POST "$A/v1/sessions" -d '{"metadata":{"t":"smoke"}}' \
    -w '\n%{http_code}') || fail "create"
[ "$(echo "$out" | tail -1)" = 201 ] || fail "create: $out"
SID=$(echo "$out" | head -1 | grep -o '"id":"s_[0-9a-f]*"' | cut -d'"' -f4)
[ -n "$SID" ] || fail "no session id: $out"
echo "$out" | grep -q '"state":"ready"' || fail "not ready: $out"

# the sandbox's processes and cgroup, to check they are gone afterwards
CG=$(find /sys/fs/cgroup -maxdepth 8 -type d -name "airlock-$SID" 2>/dev/null | head -20)
[ -n "$CG" ] || fail "no cgroup airlock-$SID"
PIDS=$(for c in $CG; do cat "$c/cgroup.procs" 2>/dev/null; done | sort -u)
[ -n "$PIDS" ] || fail "no process in the session's cgroup"

out=$(curl -sS -H "$AUTH" -H "$JSON" -X POST "$A/v1/sessions/$SID/exec" \
    -d '{"argv":["echo","hi"]}') || fail "exec"
echo "$out" | grep -q '^{"type":"start","process":"p_1"' || fail "exec start: $out"
echo "$out" | grep -qx '{"type":"stdout","data":"hi\\n"}' || fail "exec stdout: $out"
echo "$out" | tail -1 | grep -q '"type":"exit","code":0,"signal":null,"reason":"exited"' ||
    fail "exec exit: $out"

out=$(curl -sS -H "$AUTH" "$A/v1/sessions/s_00000000000000000000" -w '\n%{http_code}')
[ "$(echo "$out" | tail -1)" = 404 ] || fail "unknown session: $out"

out=$(curl -sS -H "$AUTH" -X DELETE "$A/v1/sessions/$SID" -w '\n%{http_code}') || fail "delete"
[ "$(echo "$out" | tail -1)" = 200 ] || fail "delete: $out"
echo "$out" | grep -q '"state":"deleted"' || fail "delete state: $out"

for p in $PIDS; do
    [ -d "/proc/$p" ] && fail "process $p of the sandbox is still there"
done
for c in $CG; do
    [ -d "$c" ] && fail "cgroup $c is still there"
done
grep -q "$T" /proc/mounts && fail "a mount under $T is left on the host"
[ -e "$T/sessions/$SID" ] && fail "session dir left: $(ls -la "$T/sessions/$SID")"

kill -TERM "$PID"
wait "$PID"
rc=$?
PID=
[ "$rc" = 0 ] || fail "airlockd exit status $rc after SIGTERM"
echo "PASS"
