#!/bin/bash
# control.sh ATTACK SCRATCH: the negative control of the sandbox attack suite.
# Runs attacks directly on the host, WITHOUT airlock, and asserts that each
# reports ESCAPED: proof that the cases notice a successful attack, so that a
# BLOCKED under airlock means something. Only harmless cases run here: file
# writes are redirected into a scratch root (root=), kernel calls are ones
# that change nothing on the host (own pty, own child, own new namespace).
set -u
attack=$1 scratch=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fixture.sh"

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the control expects root's privileges on the host"
    exit 77
fi

trap fixture_teardown EXIT
fixture_setup "$scratch" "$attack" control || {
    echo "FAIL: fixture setup"
    exit 1
}
root=$FX_TMP/root
mkdir -p "$root/etc/ssh" "$root/usr/bin" "$root/var/tmp"
echo 'root:x:0:0::/root:/bin/sh' >"$root/etc/passwd"
echo 'root:$y$fake-hash:19000:0:99999:7:::' >"$root/etc/shadow"
echo 'root:*::' >"$root/etc/gshadow"
echo 'fake host key' >"$root/etc/ssh/ssh_host_ed25519_key"
printf '#!/bin/sh\n' >"$root/usr/bin/env"

export GITHUB_TOKEN=ghp_${FX_MARKER}github
export AWS_SECRET_ACCESS_KEY=${FX_MARKER}awssecret

# The *_rename cases move things away: keep them last.
cases=(write_etc write_usr write_home write_outside read_ssh read_shadow read_host_keys
    symlink_escape hardlink_escape git_hooks git_config bashrc protected_new_files
    protected_nested read_cred_stores host_dev_shm write_var_tmp core_dump
    unshare_user clone_newuser ptrace process_vm_readv tiocsti tiocsti_highbits
    caps seccomp_on setuid host_pid fd_leak env_secrets socket_packet
    open_by_handle_at bpf perf_event_open host_abstract_socket host_run_socket
    host_ro_socket host_loopback sysv_ipc net_connect dev_nodes mknod git_commondir
    nested_dir_rename git_dir_rename)

fail=0
for c in "${cases[@]}"; do
    exec 9<"$FX_HOME/.ssh"
    out=$(cd "$FX_WS" && "$attack" "$c" "${FX_ARGS[@]}" "root=$root" 2>&1)
    rc=$?
    exec 9<&-
    if [ $rc -eq 1 ] && grep -q "^ESCAPED $c: " <<<"$out"; then
        echo "ok: $c detects success: $(grep -m1 "^ESCAPED" <<<"$out")"
    else
        echo "FAIL: $c did not report ESCAPED on the unsandboxed host (exit $rc):"
        echo "$out"
        fail=1
    fi
done
exit $fail
