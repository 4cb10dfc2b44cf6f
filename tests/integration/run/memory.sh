#!/bin/bash
# A memory hog under --memory 64 is killed in its own cgroup: exit 137 and a
# message naming the limit.
AIRLOCK=$1 HELPER=$2
. "$(dirname "$0")/lib.sh"

run_airlock --memory 64 -- "$HELPER" hog 1024
show
[ $rc -eq 137 ] && ok "exit 137" || fail "exit $rc, want 137"
if grep -q '^airlock: .*memory limit' <<<"$err" && grep -q '64' <<<"$(grep 'memory limit' <<<"$err")"; then
    ok "stderr names the memory limit: $(grep 'memory limit' <<<"$err")"
else
    fail "no 'airlock: ... memory limit ... 64' line on stderr"
fi
grep -q 'got all' <<<"$out" && fail "the hog got all 1024 MiB under --memory 64"

# The limit is the sandbox's, not the caller's: a small run still works.
run_airlock --memory 64 -- "$HELPER" hog 16
[ $rc -eq 0 ] && ok "16 MiB fits under --memory 64" || { fail "16 MiB under --memory 64: exit $rc"; show; }
# tmpfs pages are memory too: filling the private /tmp or /dev/shm must not
# get around --memory.
for dir in /tmp /dev/shm; do
    run_airlock --memory 64 -c "head -c 256M /dev/zero >$dir/airlock-big && echo wrote-all"
    if [ $rc -eq 0 ] || grep -q wrote-all <<<"$out"; then
        fail "wrote 256 MiB into $dir under --memory 64 (exit $rc)"
    else
        ok "256 MiB into $dir under --memory 64 refused (exit $rc: $(tail -1 <<<"$err"))"
    fi
done
finish
