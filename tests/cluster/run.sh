#!/usr/bin/env bash
# Usage: run.sh BUILD_DIR SCRIPT.py ARGS...   (tests/cluster and bench/cluster)
# Makes the test hosts (netns.sh: a bridge and three network namespaces),
# starts env.sh's upstream (git http-backend behind nginx) on the bridge's
# address without its own gitproxy, and runs SCRIPT.py SETTINGS.json ARGS...
# under tests/unit/airlockd/pg_run.sh (a scratch PostgreSQL on a unix socket).
# Skips (77) unless root with ip, nsenter, nginx, fcgiwrap, git, curl, python3
# and PostgreSQL's binaries. Removes its own namespaces, links and processes
# on exit, nothing else.
set -u
HERE_CL=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE_CL/../.." && pwd)

if [ "${1:-}" != --inner ]; then
    [ $# -ge 2 ] || { echo "usage: run.sh BUILD_DIR SCRIPT.py ARGS..." >&2; exit 2; }
    # shellcheck source=../integration/gitproxy/require.sh
    . "$SRC/tests/integration/gitproxy/require.sh"
    require_root_and_tools "tests/cluster (network namespaces, cgroups)"
    for tool in ip nsenter; do
        command -v "$tool" >/dev/null || { echo "SKIP: no $tool (iproute2, util-linux)"; exit 77; }
    done
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
        { echo "SKIP: PostgreSQL's binaries are not installed (deploy/install-deps.sh)"; exit 77; }
    [ -x "$1/airlockd/airlockd" ] || { echo "SKIP: $1/airlockd/airlockd is not built"; exit 77; }
    read -r TAG SUB < <("$HERE_CL/netns.sh" up 3)
    if [ -z "${TAG:-}" ] || [ -z "${SUB:-}" ]; then
        echo "FAIL: netns.sh up"
        exit 1
    fi
    trap '"$HERE_CL/netns.sh" down "$TAG"' EXIT
    trap 'exit 143' TERM INT
    echo "cluster: namespaces aln$TAG-{1,2,3} on 10.231.$SUB.0/24"
    bash "$HERE_CL/run.sh" --inner "$TAG" "$SUB" "$@"
    exit $?
fi

# ---- inner: the upstream, then the test under pg_run.sh ----
TAG=$2
SUB=$3
shift 3
# read by env.sh
# shellcheck disable=SC2034
UPSTREAM_ADDR=10.231.$SUB.1
# shellcheck disable=SC2034
ENV_NO_PROXY=1
# shellcheck source=../integration/gitproxy/env.sh
. "$SRC/tests/integration/gitproxy/env.sh" "$1"
shift
SCRIPT=$1
shift
(umask 077 && python3 - "$T/cluster.json" <<PY
import json, sys
json.dump({"T": "$T", "UP": "$UP", "REAL_TOKEN": "$REAL_TOKEN", "SRV": "$SRV",
           "STATE": "$STATE", "BUILD": "$BUILD", "TAG": "$TAG", "SUB": "$SUB",
           "GITCONFIG": "$T/gitconfig", "SRC": "$SRC"}, open(sys.argv[1], "w"))
PY
)
"$SRC/tests/unit/airlockd/pg_run.sh" python3 "$SCRIPT" "$T/cluster.json" "$@"
FAILS=$?
# 77 (skipped) is not a failure: env.sh's cleanup removes $T
[ "$FAILS" = 77 ] && { FAILS=0; exit 77; }
exit "$FAILS"
