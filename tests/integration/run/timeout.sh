#!/bin/bash
# --timeout kills the whole tree: exit 124, "airlock: timed out after N s",
# and no process of the command left on the host.
AIRLOCK=$1 HELPER=$2
. "$(dirname "$0")/lib.sh"

run_airlock --timeout 2 -c "'$HELPER' sleep $TAG & '$HELPER' sleep $TAG & setsid '$HELPER' sleep $TAG & wait"
show
[ $rc -eq 124 ] && ok "exit 124" || fail "exit $rc, want 124"
grep -q '^airlock: timed out after 2 s' <<<"$err" && ok "timeout message" ||
    fail "no 'airlock: timed out after 2 s' on stderr"
if [ -n "$(tagged_procs)" ]; then
    fail "processes left after the timeout: $(tagged_procs | tr '\n' ' ')"
else
    ok "no process of the tree left on the host"
fi
finish
