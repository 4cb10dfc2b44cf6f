#!/bin/bash
# Background processes the command leaves behind (plain, setsid, double
# fork, nohup) are killed when the command exits; the command's status wins.
AIRLOCK=$1 HELPER=$2
. "$(dirname "$0")/lib.sh"

run_airlock -c "'$HELPER' sleep $TAG & setsid '$HELPER' sleep $TAG & (nohup '$HELPER' sleep $TAG >/dev/null 2>&1 &) ; exit 3"
show
[ $rc -eq 3 ] && ok "exit 3 from the command" || fail "exit $rc, want 3"
if [ -n "$(tagged_procs)" ]; then
    fail "background processes survive the command: $(tagged_procs | tr '\n' ' ')"
else
    ok "no background process left"
fi
finish
