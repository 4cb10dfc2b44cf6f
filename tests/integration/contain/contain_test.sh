#!/usr/bin/env bash
# Properties every sandbox gets from the one contain list, checked in
# `airlock run` and the weaker mode, one case per ctest. cgroup_namespace,
# pid1_session, weaker_privileges and weaker_without_setpcap failed before
# they used the list sessions used; cgroup_namespace_limits held already
# and guards it.
#   contain_test.sh AIRLOCK CASE
set -euo pipefail
AIRLOCK=$1
CASE=$2
. "$(dirname "$0")/../../lib/assert.sh"
setup_scratch

# The sandbox has a cgroup namespace of its own whose root is its cgroup:
# /proc/self/cgroup names no host cgroup path (which tells the host's
# layout, and on a shared host other tenants' unit names).
check_cgroup_namespace() {
  local host
  host=$(readlink /proc/self/ns/cgroup)
  expect_status 0 "$AIRLOCK" run "$@" -- sh -c 'readlink /proc/self/ns/cgroup; cat /proc/self/cgroup'
  local ns
  ns=$(head -n 1 <<<"$OUT")
  [ "$ns" != "$host" ] || fail "the sandbox shares the host's cgroup namespace ($ns)"
  local paths
  paths=$(tail -n +2 <<<"$OUT")
  [ -n "$paths" ] || fail "no /proc/self/cgroup inside"
  while IFS= read -r line; do
    case "$line" in
    *:/) ;;
    *) fail "host cgroup path visible in the sandbox: $line" ;;
    esac
  done <<<"$paths"
}

case_cgroup_namespace() {
  check_cgroup_namespace
}

case_cgroup_namespace_limits() {
  check_cgroup_namespace --pids 200
}

# The sandbox's pid 1 leads a session of its own: it is not in the caller's
# session or process group, so a terminal's or a supervisor's signals to
# those reach the sandbox only through airlock.
case_pid1_session() {
  expect_status 0 "$AIRLOCK" run -- sh -c 'cat /proc/1/stat'
  # pid (comm) state ppid pgrp session ...; a session or group outside the
  # sandbox's pid namespace reads 0
  local fields
  read -r -a fields <<<"${OUT##*) }"
  [ "${fields[3]}" = 1 ] || fail "pid 1's session is ${fields[3]}, not its own: $OUT"
  [ "${fields[2]}" = 1 ] || fail "pid 1's process group is ${fields[2]}, not its own: $OUT"
}

# The weaker nested mode, forced where airlock can run it: a user namespace
# whose own limit allows no further one (so the clone of the sandbox is
# refused, as in a container), airlock run as its root. Skipped (77) where
# such a namespace cannot be made.
weaker() { # PREFIX_CMD... -- SHELL_SNIPPET
  local prefix=()
  while [ "$1" != -- ]; do
    prefix+=("$1")
    shift
  done
  shift
  echo '{"sandbox": {"enableWeakerNestedSandbox": true}}' >weaker.json
  unshare -Ur true 2>/dev/null || {
    echo "skip: no user namespace here"
    exit 77
  }
  # shellcheck disable=SC2016 # expanded by the inner shell
  expect_status 0 unshare -Ur sh -c 'echo 0 >/proc/sys/user/max_user_namespaces && exec "$@"' sh \
    "${prefix[@]}" "$AIRLOCK" run --settings weaker.json -- sh -c "$1"
  expect_contains "$ERR" "WEAKER sandbox"
}

# The weaker mode gets the privilege step of every sandbox: no capability
# left to the command (a container's root keeps a full set otherwise), an
# empty bounding set, core dumps off.
case_weaker_privileges() {
  # shellcheck disable=SC2016 # expanded by the sandbox's shell
  weaker -- 'grep -E "^(CapPrm|CapEff|CapBnd|NoNewPrivs):" /proc/self/status; echo "core $(ulimit -H -c)"'
  expect_contains "$OUT" "CapPrm:	0000000000000000"
  expect_contains "$OUT" "CapEff:	0000000000000000"
  expect_contains "$OUT" "CapBnd:	0000000000000000"
  expect_contains "$OUT" "NoNewPrivs:	1"
  expect_contains "$OUT" "core 0"
}

# Without CAP_SETPCAP (nothing left to give up: an empty bounding set) the
# weaker mode still runs, and still confines (core dumps off too).
case_weaker_without_setpcap() {
  # shellcheck disable=SC2016 # expanded by the sandbox's shell
  weaker setpriv --bounding-set -all -- \
    'echo inside > inside.txt; cat inside.txt; touch /usr/airlock-x 2>/dev/null && echo USR-WRITABLE; echo "core $(ulimit -H -c)"'
  expect_contains "$OUT" "inside"
  expect_not_contains "$OUT" "USR-WRITABLE"
  expect_contains "$OUT" "core 0"
}

"case_$CASE"
echo "ok: $CASE"
