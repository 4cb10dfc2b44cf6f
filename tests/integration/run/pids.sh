#!/bin/bash
# A fork bomb under --pids 64 stops at the limit, airlock returns, and the
# host can still fork; nothing of it survives.
AIRLOCK=$1 HELPER=$2
. "$(dirname "$0")/lib.sh"

# 2^11 processes would be made without a limit: the bomb is bounded so a
# broken limit fails the test, not the host.
run_airlock --pids 64 -- "$HELPER" bomb 11 "$TAG"
show
created=$(sed -n 's/^bomb: created \([0-9]*\) processes.*/\1/p' <<<"$out")
if [ $rc -ne 0 ] || [ -z "$created" ]; then
    fail "bomb did not report (exit $rc)"
elif [ "$created" -gt 64 ]; then
    fail "$created processes created under --pids 64"
elif ! grep -q 'forks failed (EAGAIN)' <<<"$out"; then
    fail "no fork failed with EAGAIN: the limit was not what stopped it"
else
    ok "bomb stopped at $created processes (limit 64), forks failed with EAGAIN"
fi
if [ -n "$(tagged_procs)" ]; then
    fail "bomb processes left on the host: $(tagged_procs | head -5 | tr '\n' ' ')"
else
    ok "no bomb process left on the host"
fi
if /bin/true; then ok "host can still fork"; else fail "host cannot fork"; fi
finish
