#!/bin/bash
# Usage: walkthrough.sh BUILD_DIR README
# Runs README.md's walk-through as written: the shell blocks between
# `<!-- walkthrough:start -->` and `<!-- walkthrough:end -->`, in order, in
# one bash. Only what must differ in a test comes from the environment the
# README itself reads: AIRLOCK_STATE (a scratch state dir), REPO_URL (a
# repository on git.test, which the scratch gitproxy.json maps to a real git
# http-backend behind nginx on loopback that accepts only the real token),
# AIRLOCK_URL (a free port), the token on stdin, and PATH (this build). No
# restart between the blocks: the credential the second block stores reaches
# the running gitproxy by itself.
# `airlock up` runs as deploy/quickstart.sh runs it: as root, in the
# environment of whoever runs the test (root's own HOME, mode 0700), with
# nothing exported by env.sh (the test's own git commands get their settings
# on their command lines). The walk-through's push is inspected (leak guard
# and fast-forward check on, as `airlock up` configures them), so the
# gitproxy's mirror must work as the proxy user.
# Checks the proxies run with their own HOME and nothing else of the
# caller's environment, the push arrived upstream and main did not move,
# then tears everything down and checks nothing is left (processes, mounts).
set -u
. "$(dirname "$0")/../gitproxy/require.sh"
require_root_and_tools "airlock up"
README=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
. "$(dirname "$0")/../gitproxy/env.sh"
# env.sh's own proxy is not used here
kill "$PROXY_PID" 2>/dev/null
AIRLOCK=$BUILD/cli/airlock
AS=$T/up-state
W=$T/walk
mkdir -p "$W"
PORT=$(free_port)
UP_PID=
ADMIN_KEY=

stop_up() {
    [ -n "$UP_PID" ] || return 0
    kill -TERM "$UP_PID" 2>/dev/null
    wait "$UP_PID" 2>/dev/null
    UP_PID=
}
start_up() {
    rm -f "$AS/airlockd.addr"
    "$AIRLOCK" up --state-dir "$AS" --listen "127.0.0.1:$PORT" >>"$W/up.log" 2>&1 &
    UP_PID=$!
    for _ in $(seq 1 400); do
        [ -s "$AS/airlockd.addr" ] && return 0
        kill -0 "$UP_PID" 2>/dev/null || break
        sleep 0.05
    done
    fail "airlock up did not start" "$W/up.log"
    exit 1
}
delete_sessions() {
    [ -n "$UP_PID" ] && [ -n "$ADMIN_KEY" ] || return 0
    for sid in $(curl -s -H "Authorization: Bearer $ADMIN_KEY" \
        "http://127.0.0.1:$PORT/v1/sessions" | python3 -c \
        'import json,sys; [print(s["id"]) for s in json.load(sys.stdin).get("sessions", [])
                          if s["state"] not in ("deleted", "expired", "failed")]' \
        2>/dev/null); do
        curl -s -o /dev/null -X DELETE -H "Authorization: Bearer $ADMIN_KEY" \
            "http://127.0.0.1:$PORT/v1/sessions/$sid"
    done
}
walk_cleanup() {
    # Sessions outlive airlockd: delete what a failed run left, then stop it.
    delete_sessions
    stop_up
    cleanup
}
trap walk_cleanup EXIT

# ---- the walk-through's blocks, as written ----
python3 - "$README" "$W/blocks.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
parts = re.findall(r"<!-- walkthrough:start -->\s*```sh\n(.*?)```\s*<!-- walkthrough:end -->",
                   text, re.S)
if len(parts) != 3:
    sys.exit("README.md: expected 3 walk-through blocks, found %d" % len(parts))
with open(sys.argv[2], "w") as f:
    f.write("set -e\n")
    for p in parts:
        f.write(p)
PY
[ -s "$W/blocks.sh" ] || { fail "walk-through blocks not found in $README"; exit 1; }

# ---- airlock up, then the scratch gitproxy.json learns git.test ----
start_up
ADMIN_KEY=$(grep -o 'alk_[0-9a-f]*' "$W/up.log" | head -1)
python3 - "$AS/gitproxy.json" "$UP" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["upstreams"]["git.test"] = {"url": sys.argv[2]}
json.dump(cfg, open(sys.argv[1], "w"))
PY
stop_up
start_up

printf '%s\n' "$REAL_TOKEN" > "$W/token"
main_before=$(upstream_ref refs/heads/main)
# The daemon of the airlockd (or `airlock up`) started as $1: the child of
# its reaper (docs/airlockd.md, "Who reaps a sandbox that outlived its
# daemon"); the proxies are the daemon's children.
daemon_of() { local r; r=$(pgrep -P "$1" -x airlockd-reaper) && pgrep -P "$r" -x airlockd; }
gp_before=
for _ in $(seq 1 400); do
    gp_before=$(pgrep -P "$(daemon_of "$UP_PID")" -x airlock-gitprox) && break
    sleep 0.05
done

# ---- the proxies: their own HOME (made by airlockd, the proxy user's,
# 0700), and only the variables airlockd gives them ----
nobody=$(id -u nobody)
for name in gitproxy netproxy; do
    pid=
    for _ in $(seq 1 400); do
        pid=$(pgrep -P "$(daemon_of "$UP_PID")" -x "airlock-${name:0:7}") &&
            [ "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" = "$nobody" ] && break
        pid=
        sleep 0.05
    done
    home=$AS-proxy-home/$name
    tr '\0' '\n' <"/proc/${pid:-0}/environ" >"$W/env-$name" 2>&1
    stray=$(grep -Ev '^(HOME|XDG_(CONFIG|CACHE|DATA|STATE)_HOME|PATH|LANG|LC_ALL|https?_proxy|HTTPS_PROXY|all_proxy|ALL_PROXY|no_proxy|NO_PROXY|SSL_CERT_FILE|SSL_CERT_DIR|TZ|AIRLOCK_LOG_FORMAT)=' \
        "$W/env-$name")
    if [ -n "$pid" ] && grep -qx "HOME=$home" "$W/env-$name" &&
        grep -qx "XDG_CONFIG_HOME=$home/.config" "$W/env-$name" && [ -z "$stray" ] &&
        [ "$(stat -c '%u %a' "$home")" = "$nobody 700" ] &&
        [ "$(stat -c '%u %a' "$home/.config")" = "$nobody 700" ]; then
        pass "readme_${name}_own_home"
    else
        fail "readme_${name}_own_home (pid ${pid:-none}; stray: ${stray:-none})" "$W/env-$name"
    fi
done
(cd "$W" && env -u AIRLOCK_URL -u AIRLOCK_API_KEY PATH="$BUILD/cli:$PATH" \
    AIRLOCK_STATE="$AS" REPO_URL=https://git.test/o/r.git \
    AIRLOCK_URL="http://127.0.0.1:$PORT" \
    bash "$W/blocks.sh" <"$W/token" >"$W/walk.out" 2>&1; echo $? >"$W/walk.rc")
rc=$(cat "$W/walk.rc" 2>/dev/null || echo none)
if [ "$rc" = 0 ]; then pass "readme_walkthrough_runs"; else
    fail "readme_walkthrough_runs (exit $rc)" "$W/walk.out"; fi
if [ -n "$gp_before" ] && [ "$(pgrep -P "$(daemon_of "$UP_PID")" -x airlock-gitprox)" = "$gp_before" ]; then
    pass "readme_walkthrough_no_restart"
else
    fail "readme_walkthrough_no_restart" "$W/up.log"
fi

branch=$(git -C "$SRV/o/r.git" for-each-ref --format='%(refname)' 'refs/heads/airlock/*' | head -1)
if [ -n "$branch" ] && git -C "$SRV/o/r.git" show "$branch:AIRLOCK.txt" 2>/dev/null |
    grep -q 'hello from airlock'; then
    pass "readme_walkthrough_push_upstream"
else
    fail "readme_walkthrough_push_upstream ($branch)" "$W/walk.out"
fi
if [ "$(upstream_ref refs/heads/main)" = "$main_before" ] &&
    grep -q 'refused, as it should be' "$W/walk.out" && grep -q 'airlock' "$W/walk.out"; then
    pass "readme_walkthrough_main_refused"
else
    fail "readme_walkthrough_main_refused" "$W/walk.out"
fi
if grep -qF "$REAL_TOKEN" "$W/walk.out"; then
    fail "readme_walkthrough_token_not_shown" "$W/walk.out"
else pass "readme_walkthrough_token_not_shown"; fi

# ---- teardown leaves nothing behind ----
left=$(curl -s -H "Authorization: Bearer $ADMIN_KEY" "http://127.0.0.1:$PORT/v1/sessions")
delete_sessions # what a failed walk-through left (sessions outlive airlockd)
stop_up
live=$(echo "$left" | python3 -c 'import json,sys
for s in json.load(sys.stdin).get("sessions", []):
    print(s["id"], s["state"])' 2>&1)
sids=$(echo "$live" | awk '{print $1}')
if [ -n "$sids" ] && ! echo "$live" | grep -qv ' deleted$'; then
    pass "readme_walkthrough_session_removed"
else fail "readme_walkthrough_session_removed: $live"; fi
leftovers=""
for p in /proc/[0-9]*; do
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$AS"; then leftovers+=" ${p#/proc/}"; fi
done
if grep -qF "$AS" /proc/self/mountinfo; then leftovers+=" mounts"; fi
for sid in $sids; do
    # no process of the sandbox, no cgroup named after it
    if [ -n "$(find /sys/fs/cgroup -maxdepth 6 -name "*$sid*" 2>/dev/null)" ]; then
        leftovers+=" cgroup:$sid"
    fi
done
if [ -z "$leftovers" ]; then pass "readme_walkthrough_nothing_left"; else
    fail "readme_walkthrough_nothing_left:$leftovers"; fi
echo "readme: $PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
