#!/bin/bash
# Usage: up.sh AIRLOCK
# `airlock up` on a fresh state dir: keys and configs made, an admin API key
# printed once that works against the API, both proxies running as nobody; a
# second start reuses everything and prints no key. Then a gitproxy cache_dir
# the proxy user cannot reach (below a root-only directory): `airlock up`
# refuses to start, naming the path, the reason and the proxy, and leaves no
# process behind.
set -u
AIRLOCK=$1
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: airlock up needs root"
    exit 77
fi
T=$(mktemp -d /tmp/airlock-up.XXXXXX)
chmod 755 "$T" # as /var/lib: the state dir's siblings are the proxy user's
S=$T/state
PID=
cleanup() {
    [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    sed 's/^/    | /' "$T/out" 2>/dev/null | tail -30
    exit 1
}
start() {
    rm -f "$S/airlockd.addr"
    "$AIRLOCK" up --state-dir "$S" --listen 127.0.0.1:0 >"$T/out" 2>&1 &
    PID=$!
    for _ in $(seq 1 400); do
        [ -s "$S/airlockd.addr" ] && return 0
        kill -0 "$PID" 2>/dev/null || fail "airlock up exited"
        sleep 0.05
    done
    fail "airlock up did not start"
}
# The daemon of the airlockd (or `airlock up`) started as $1: the child of
# its reaper (docs/airlockd.md, "Who reaps a sandbox that outlived its
# daemon"); the proxies are the daemon's children.
daemon_of() { local r; r=$(pgrep -P "$1" -x airlockd-reaper) && pgrep -P "$r" -x airlockd; }
stop() {
    kill -TERM "$PID"
    wait "$PID"
    PID=
}

start
for f in master.key token.key gitproxy.json airlockd.json; do
    [ "$(stat -c %a "$S/$f")" = 600 ] || fail "$f missing or not 0600"
done
KEY=$(grep -o 'alk_[0-9a-f]*' "$T/out")
[ -n "$KEY" ] || fail "no admin key printed"
A="http://$(cat "$S/airlockd.addr")"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "$A/v1/sessions")
[ "$code" = 200 ] || fail "admin key refused: $code"
for name in airlock-netprox airlock-gitprox; do
    pid=
    for _ in $(seq 1 200); do
        pid=$(pgrep -P "$(daemon_of "$PID")" -x "$name" | head -1)
        [ -n "$pid" ] && [ "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")" = \
            "$(id -u nobody)" ] && break
        pid=
        sleep 0.05
    done
    [ -n "$pid" ] || fail "$name not running as nobody"
done
echo "PASS: up_first_start"
stop

start
grep -q 'alk_' "$T/out" && fail "a key printed again"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" \
    "http://$(cat "$S/airlockd.addr")/v1/sessions")
[ "$code" = 200 ] || fail "key lost after restart: $code"
echo "PASS: up_second_start"
stop

# cache_dir below a directory nobody cannot search
mkdir -m 700 "$T/private"
python3 - "$S/gitproxy.json" "$T/private/cache" <<'PY'
import json, sys
conf = json.load(open(sys.argv[1]))
conf["cache_dir"] = sys.argv[2]
json.dump(conf, open(sys.argv[1], "w"))
PY
rm -f "$S/airlockd.addr"
"$AIRLOCK" up --state-dir "$S" --listen 127.0.0.1:0 >"$T/out" 2>&1 &
PID=$!
rc=
for _ in $(seq 1 600); do
    kill -0 "$PID" 2>/dev/null || { wait "$PID"; rc=$?; break; }
    sleep 0.05
done
[ -n "$rc" ] || fail "airlock up started with an unusable cache_dir"
PID=
[ "$rc" != 0 ] && [ ! -s "$S/airlockd.addr" ] ||
    fail "airlock up with an unusable cache_dir: exit $rc"
grep -qF "cache_dir $T/private/cache: not usable by user nobody: Permission denied (is every parent directory searchable by nobody?)" "$T/out" ||
    fail "no message naming the cache_dir and the reason"
grep -q "airlock-gitproxy (.*) exited with status 1 before it was ready" "$T/out" ||
    fail "airlockd did not say which proxy failed"
left=
for p in /proc/[0-9]*; do
    if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF "$S"; then left+=" ${p#/proc/}"; fi
done
[ -z "$left" ] || fail "processes left:$left"
echo "PASS: up_refuses_unusable_cache_dir"
sed 's/^/    | /' "$T/out" | grep -E 'cache_dir|before it was ready' || true

