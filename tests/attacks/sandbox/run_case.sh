#!/bin/bash
# run_case.sh AIRLOCK ATTACK CASE: runs one attack inside `airlock run` with
# the default policy, in a fresh workspace with a fake HOME holding secrets,
# caller secrets in the environment and host-side listeners and IPC up.
# Passes when the attack prints "BLOCKED CASE: ..." and exits 0, and nothing
# on the host changed. Exit 77 (ctest: skipped) only when this kernel cannot
# express the attack at all.
set -u
airlock=$1 attack=$2 case=$3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fixture.sh"

# Kernel capability probes, run on the host with the harmless case itself.
case $case in
i386_int80)
    "$attack" i386_int80 >/dev/null
    if [ $? -eq 2 ]; then
        echo "SKIP: this kernel has no IA32 emulation; int 0x80 cannot be tried"
        exit 77
    fi
    ;;
x32)
    if "$attack" x32 >/dev/null; then
        echo "SKIP: this kernel has no x32 ABI (ENOSYS on the host too)"
        exit 77
    fi
    ;;
proc_sysrq | proc_kcore)
    f=/proc/sysrq-trigger
    [ "$case" = proc_kcore ] && f=/proc/kcore
    if [ ! -e $f ]; then
        echo "SKIP: this kernel has no $f"
        exit 77
    fi
    ;;
read_host_keys)
    # A host key of our own when the host has none: the case must be able to fail.
    if ! ls /etc/ssh/*_key >/dev/null 2>&1; then
        if [ ! -d /etc/ssh ] || [ "$(id -u)" != 0 ]; then
            echo "SKIP: the host has no /etc/ssh/*_key to protect"
            exit 77
        fi
        host_key=/etc/ssh/ssh_host_airlockattack$$_key
        echo "fake host key" >"$host_key" && chmod 600 "$host_key"
    fi
    ;;
caller_tty)
    if ! command -v script >/dev/null; then
        echo "SKIP: needs script(1) from util-linux to give airlock a terminal"
        exit 77
    fi
    ;;
setuid)
    if [ "$(id -u)" != 0 ]; then
        echo "SKIP: making a setuid-root fixture needs root"
        exit 77
    fi
    ;;
esac

trap 'fixture_teardown; rm -f "${host_key:-/nonexistent}"' EXIT
scratch=${ATTACK_SCRATCH:-/var/tmp/airlock-attack-scratch}
mkdir -p "$scratch"
fixture_setup "$scratch" "$attack" "$case" || {
    echo "FAIL: fixture setup"
    exit 1
}
# The sandbox runs a copy beside the fixtures: the build tree may be under
# /tmp, which the sandbox does not see.
cp "$attack" "$FX_TMP/attack-bin" || exit 1
attack=$FX_TMP/attack-bin

export HOME=$FX_HOME
export GITHUB_TOKEN=ghp_${FX_MARKER}github
export AWS_ACCESS_KEY_ID=AKIA${FX_MARKER}
export AWS_SECRET_ACCESS_KEY=${FX_MARKER}awssecret
export ANTHROPIC_API_KEY=sk-ant-${FX_MARKER}

# What an earlier sandboxed run could have left in the workspace: `.git`
# files pointing the host-side protection walk at paths outside it.
extra=()
if [ "$case" = gitfile_redirect ]; then
    printf '[default]\nregion = %s-awsconfig\n' "$FX_MARKER" >"$FX_HOME/.aws/config"
    mkdir -p "$FX_TMP/outside-dir" "$FX_WS/gf1" "$FX_WS/gf2" "$FX_WS/gf3"
    echo "gitdir: $FX_HOME/.kube" >"$FX_WS/gf1/.git"
    echo "gitdir: $FX_TMP/outside-dir" >"$FX_WS/gf2/.git"
    echo "gitdir: $FX_HOME/.aws" >"$FX_WS/gf3/.git"
    extra=("outsidedir=$FX_TMP/outside-dir")
    extra_before=$(ls -la "$FX_TMP/outside-dir" "$FX_HOME/.kube" "$FX_HOME/.aws")
fi

# proxy_ssrf: the egress proxy on, allowing one outside domain.
settings=()
if [ "$case" = proxy_ssrf ]; then
    echo '{"sandbox": {"network": {"allowedDomains": ["example.com", "localhost"]}}}' >"$FX_TMP/settings.json"
    settings=(--settings "$FX_TMP/settings.json")
fi

# Bait for the fd_leak case: a directory fd an escapee could openat() from.
[ "$case" = fd_leak ] && exec 9<"$FX_HOME/.ssh"

if [ "$case" = caller_tty ]; then
    # airlock on a terminal, as a user would run it.
    printf -v cmd '%q ' "$airlock" run "${settings[@]}" -- "$attack" "$case" "${FX_ARGS[@]}" "${extra[@]}"
    (cd "$FX_WS" && script -qec "$cmd" /dev/null </dev/null >"$FX_TMP/tty.out" 2>&1)
    rc=$?
    # script(1) types a NUL when its stdin (/dev/null) ends; the sandbox's
    # own terminal echoes it as "^@" before the attack's first line.
    out=$(tr -d '\r' <"$FX_TMP/tty.out" | sed 's/^\^@//')
else
    out=$(cd "$FX_WS" && "$airlock" run "${settings[@]}" -- "$attack" "$case" "${FX_ARGS[@]}" "${extra[@]}" 2>&1)
    rc=$?
fi
[ "$case" = fd_leak ] && exec 9<&-
echo "$out"
echo "airlock exit status: $rc"

status=0
if [ "$case" = gitfile_redirect ]; then
    now=$(ls -la "$FX_TMP/outside-dir" "$FX_HOME/.kube" "$FX_HOME/.aws")
    if [ "$now" != "$extra_before" ]; then
        echo "HOST CHANGED: outside the workspace:"
        diff <(echo "$extra_before") <(echo "$now")
        status=1
    fi
fi
if ! fixture_check_host; then
    status=1
fi
if [ $rc -ne 0 ] || ! grep -q "^BLOCKED $case: " <<<"$out"; then
    echo "FAIL: attack $case was not blocked (exit $rc)"
    status=1
fi
exit $status
