#!/bin/bash
# Usage: verify.sh DEPLOY_DIR BUILD_DIR
# Runs `systemd-analyze verify` on each unit of DEPLOY_DIR/systemd (with
# ExecStart= pointed at this build's binaries, since /usr/local/bin has none
# here): no warning may come out. Then `systemd-sysusers --root` on a scratch
# root must create the airlock-proxy user. Skips (77) without systemd tools.
set -u
DEPLOY=$1
BUILD=$2
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
T=$(mktemp -d /tmp/airlock-units.XXXXXX)
trap 'rm -rf "$T"' EXIT
FAILS=0
for unit in "$DEPLOY"/systemd/*.service; do
    name=$(basename "$unit")
    sed -e "s#/usr/local/bin/airlockd#$BUILD/airlockd/airlockd#" \
        -e "s#/usr/local/bin/airlock-netproxy#$BUILD/netproxy/airlock-netproxy#" \
        -e "s#/usr/local/bin/airlock-gitproxy#$BUILD/gitproxy/airlock-gitproxy#" \
        "$unit" >"$T/$name"
    if systemd-analyze verify "$T/$name" >"$T/out" 2>&1 && ! [ -s "$T/out" ]; then
        echo "PASS: verify $name"
    else
        echo "FAIL: verify $name"
        sed 's/^/    | /' "$T/out"
        FAILS=$((FAILS + 1))
    fi
done
if command -v systemd-sysusers >/dev/null; then
    mkdir -p "$T/root/etc"
    if systemd-sysusers --root="$T/root" "$DEPLOY/systemd/airlock.sysusers.conf" >"$T/out" 2>&1 &&
        grep -q '^airlock-proxy:' "$T/root/etc/passwd"; then
        echo "PASS: sysusers airlock-proxy"
    else
        echo "FAIL: sysusers airlock-proxy"
        sed 's/^/    | /' "$T/out"
        FAILS=$((FAILS + 1))
    fi
fi
exit $((FAILS > 0))
