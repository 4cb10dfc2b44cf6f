#!/bin/bash
# kill -9 of airlock leaves no process, no cgroup and no mount behind.
AIRLOCK=$1 HELPER=$2
. "$(dirname "$0")/lib.sh"

cgroup_dirs() {
    find /sys/fs/cgroup -maxdepth 8 -type d -name 'airlock-*' 2>/dev/null | sort
}
mounts_of() {
    grep -F -e "$T" -e airlock /proc/self/mountinfo
}

before_mounts=$(mounts_of)
mkdir -p "$T/ws"
(cd "$T/ws" && exec "$AIRLOCK" run --memory 256 --pids 128 -c \
    "'$HELPER' sleep $TAG & setsid '$HELPER' sleep $TAG & '$HELPER' sleep $TAG" \
    >"$T/stdout" 2>"$T/stderr") &
airlock_pid=$!
three_up() { [ "$(tagged_procs | wc -l)" -ge 3 ]; }
if ! wait_until 20 three_up; then
    fail "sandboxed processes never appeared"
    cat "$T/stderr"
    kill -KILL $airlock_pid
    finish
fi
# The cgroups the sandboxed processes live in, as the host sees them.
victim=$(tagged_procs | head -1)
cgroups=$(sed -n 's/^[0-9]*:[^:]*:\(\/.*airlock-[^/]*\).*/\1/p' "/proc/$victim/cgroup" | sort -u)
[ -n "$cgroups" ] && ok "sandbox cgroup(s): $(echo $cgroups)" ||
    fail "no airlock-* cgroup in /proc/$victim/cgroup: $(cat /proc/$victim/cgroup | tr '\n' ' ')"

kill -KILL $airlock_pid
wait $airlock_pid 2>/dev/null

if wait_until 10 no_tagged_procs; then
    ok "no process left"
else
    fail "processes left after kill -9: $(tagged_procs | tr '\n' ' ')"
fi
left=
for cg in $cgroups; do
    gone() { ! ls -d /sys/fs/cgroup/*"$cg" >/dev/null 2>&1; }
    wait_until 10 gone || left="$left $(ls -d /sys/fs/cgroup/*"$cg")"
done
[ -z "$left" ] && ok "cgroup dirs removed" || fail "cgroup dirs left:$left"
[ "$(mounts_of)" = "$before_mounts" ] && ok "no mount left" ||
    fail "mounts left: $(diff <(echo "$before_mounts") <(mounts_of))"
finish
