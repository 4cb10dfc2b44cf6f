#!/bin/bash
# airlock-gitproxy in control mode, driven by a stand-in for airlockd
# (gitproxy_test.py), against the real git http-backend upstream of the
# gitproxy integration tests. Usage: gitproxy.sh BUILD_DIR
set -u
. "$(dirname "$0")/../gitproxy/env.sh"
HERE_CTL=$(cd "$(dirname "$0")" && pwd)
export T STATE UP PROXY CREDS_TOOL REAL_TOKEN SRV
# The proxy drops to nobody: its cache dir must be somewhere nobody can reach
# (the state dir is 0700 root); it chowns the cache dir itself.
# The test's own git commands take env.sh's settings (identity); the proxy
# it starts reads no git configuration at all.
GIT_CONFIG_GLOBAL=$T/gitconfig GIT_CONFIG_NOSYSTEM=1 python3 "$HERE_CTL/gitproxy_test.py"
rc=$?
FAILS=$rc
exit $rc
