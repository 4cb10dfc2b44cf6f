/* The seccomp policy: default allow, deny the kernel surface a sandboxed
 * program has no business with (reasons in docs/security.md). Compiled to
 * BPF at build time by tools/gen_seccomp.c, so the runtime loads a finished
 * program instead of running libseccomp's compiler on every start. */
#include "seccomp_rules.h"

#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* libseccomp's SCMP_A*() macros leave the second datum implicit. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* Denied with EPERM. */
static const char *const denied_syscalls[] = {
    /* mounts and root changes */
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    /* namespaces */
    "unshare",
    "setns",
    /* other processes' memory */
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    /* kernel attack surface */
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "lookup_dcookie",
    "quotactl",
    "quotactl_fd",
    "uselib",
    "vm86",
    "vm86old",
    "modify_ldt",
    "iopl",
    "ioperm",
    "syslog",
    "acct",
    /* machine state */
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "swapoff",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "stime",
    "sethostname",
    "setdomainname",
    "nfsservctl",
    "vhangup",
    "_sysctl",
};

/* socket() families refused with EAFNOSUPPORT. */
static const int denied_families[] = {AF_PACKET, AF_VSOCK, AF_KEY};

static const unsigned long ns_flags[] = {CLONE_NEWNS,     CLONE_NEWUSER, CLONE_NEWPID,
                                         CLONE_NEWNET,    CLONE_NEWIPC,  CLONE_NEWUTS,
                                         CLONE_NEWCGROUP, CLONE_NEWTIME};

scmp_filter_ctx sb_seccomp_rules_build(int allow_unix_sockets)
{
    /* Other ABIs (i386 via int 0x80, x32) do not exist for the sandbox: the
     * filter only knows the native one and kills on any other. */
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return NULL;
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    for (size_t i = 0; i < sizeof(denied_syscalls) / sizeof(*denied_syscalls) && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(denied_syscalls[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    /* clone3 passes flags in memory seccomp cannot read: ENOSYS makes libc
     * fall back to clone, whose flags are checked below. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    for (size_t i = 0; i < sizeof(ns_flags) / sizeof(*ns_flags) && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    /* Terminal injection: only the low 32 bits of the request count. */
    static const unsigned long tty_requests[] = {TIOCSTI, TIOCLINUX};
    for (size_t i = 0; i < 2 && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, tty_requests[i]));
    for (size_t i = 0; i < 3 && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)denied_families[i]));
    /* Host unix sockets stay out of reach unless allowUnixSockets: socket()
     * for AF_UNIX is refused (socketpair() keeps working). */
    if (rc == 0 && !allow_unix_sockets)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)AF_UNIX));
    if (rc < 0) {
        seccomp_release(ctx);
        return NULL;
    }
    return ctx;
}
