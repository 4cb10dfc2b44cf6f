#!/usr/bin/env bash
# Installs the build dependencies, builds airlock, and starts `airlock up`:
# airlockd with both proxies in the foreground, logs on this terminal, state
# in $AIRLOCK_STATE (default /var/lib/airlock), API on $AIRLOCK_LISTEN
# (default 127.0.0.1:7070). The first start prints an admin API key once.
# Stop it with Ctrl-C; the state dir is kept, so the next start reuses it.
# Then follow the walk-through in README.md from a second terminal.
#   ./deploy/quickstart.sh            install, build, airlock up (as root)
#   ./deploy/quickstart.sh --demo     install, build, run the `airlock run`
#                                     demo and exit (also AIRLOCK_QUICKSTART_DEMO=1)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo=${AIRLOCK_QUICKSTART_DEMO:-0}
case "${1:-}" in
--demo) demo=1 ;;
"") ;;
*)
  echo "usage: $0 [--demo]" >&2
  exit 2
  ;;
esac
./deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo
if [ "$demo" = 1 ]; then
  exec ./deploy/demo-run.sh
fi
state=${AIRLOCK_STATE:-/var/lib/airlock}
listen=${AIRLOCK_LISTEN:-127.0.0.1:7070}
echo "== airlock up: state in $state, API on http://$listen (Ctrl-C stops it)"
echo "   Keep the admin API key printed below; see README.md for the walk-through."
exec "$root/build/cli/airlock" up --state-dir "$state" --listen "$listen"
