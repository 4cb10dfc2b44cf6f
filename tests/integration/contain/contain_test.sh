#!/usr/bin/env bash
# Properties every sandbox gets from the one contain list, checked in
# `airlock run`, one case per ctest. cgroup_namespace and pid1_session
# failed before `airlock run` used the list sessions used;
# cgroup_namespace_limits held already (a cgroup namespace came with a
# cgroup) and guards it.
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

"case_$CASE"
echo "ok: $CASE"
