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
left=$(tagged_procs)
if [ -z "$left" ]; then
    ok "no bomb process left on the host"
else
    # Seen once in CI: processes listed right after airlock returned and gone
    # a moment later. What they were is printed; only ones that stay fail.
    echo "  seen after airlock returned: $(ps -o pid=,ppid=,stat=,pidns=,args= -p "$(tr '\n' ',' <<<"$left" | sed 's/,$//')" 2>/dev/null | head -5 | tr '\n' ';')"
    if wait_until 5 no_tagged_procs; then
        ok "no bomb process left on the host (some were still exiting when airlock returned)"
    else
        fail "bomb processes left on the host: $(tagged_procs | head -5 | tr '\n' ' ')"
    fi
fi
if /bin/true; then ok "host can still fork"; else fail "host cannot fork"; fi
finish
