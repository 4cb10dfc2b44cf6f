#!/usr/bin/env bash
# Runs a store test program against a real PostgreSQL started here: initdb
# in a scratch directory under /tmp, the server listening only on a unix
# socket in that directory (no TCP), trust authentication for its one role.
# PostgreSQL refuses to run as root, so as root the server runs as the user
# `nobody` (runuser), which owns the scratch directory; otherwise as the
# caller. Sets AIRLOCK_TEST_PG (the conninfo) and AIRLOCK_TEST_PG_CTL (this
# script's `ctl` form, for tests that stop and start the server), then runs
# "$@". Exit 77 (ctest: skipped) only when PostgreSQL's binaries are
# missing.
#   pg_run.sh PROGRAM [ARGS...]       start, run, stop
#   pg_run.sh ctl DIR stop|start      used by the tests themselves
set -euo pipefail

bindir=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && bindir=$d
done
if [ -z "$bindir" ]; then
  echo "SKIP: PostgreSQL's binaries (initdb, pg_ctl) are not installed;" \
    "deploy/install-deps.sh installs them (package postgresql)"
  exit 77
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

pg_start() { # DIR
  as_owner "$bindir/pg_ctl" -D "$1/data" -l "$1/log" -w -t 30 \
    -o "-k $1 -c listen_addresses='' -c fsync=off" start >/dev/null
}

if [ "${1:-}" = ctl ]; then
  case "$3" in
    stop) as_owner "$bindir/pg_ctl" -D "$2/data" -m fast -w -t 30 stop >/dev/null ;;
    start) pg_start "$2" ;;
    *) echo "pg_run.sh ctl DIR stop|start" >&2; exit 2 ;;
  esac
  exit 0
fi

dir=$(mktemp -d /tmp/airlock-pg-XXXXXX)
chmod 755 "$dir"
if [ "$(id -u)" -eq 0 ]; then chown nobody "$dir"; fi
cleanup() {
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap "exit 143" TERM INT
(cd "$dir" && as_owner "$bindir/initdb" -D "$dir/data" -U airlock -A trust --no-sync \
  -E UTF8 >"$dir/initdb.log" 2>&1) || { cat "$dir/initdb.log" >&2; exit 1; }
(cd "$dir" && pg_start "$dir") || { cat "$dir/log" >&2; exit 1; }
export AIRLOCK_TEST_PG="host=$dir user=airlock dbname=postgres"
export AIRLOCK_TEST_PG_CTL="$0 ctl $dir"
echo "pg_run: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on $dir"
"$@"
