/* The denials both seccomp filters share (airlock/seccomp_deny.h). A call
 * is listed here when neither the sandbox nor the git proxy front has any
 * use for it; reasons per call in docs/security.md. */
#include "airlock/seccomp_deny.h"

#include "airlock/error.h"

#include <errno.h>
#include <string.h>
#include <linux/sched.h>

/* libseccomp's SCMP_A*() macros leave the second datum implicit. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* Denied with EPERM. */
static const char *const shared_denied[] = {
    /* mounts and root changes */
    "mount",
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
    "vhangup",
};

/* clone() flags that would make a namespace. */
static const unsigned long shared_ns_flags[] = {CLONE_NEWNS,    CLONE_NEWUTS, CLONE_NEWIPC,
                                                CLONE_NEWUSER,  CLONE_NEWPID, CLONE_NEWNET,
                                                CLONE_NEWCGROUP};

int al_seccomp_deny_names_add(scmp_filter_ctx ctx, const char *const *names, size_t n,
                              const char **failed_out)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (rc < 0) {
            if (failed_out)
                *failed_out = names[i];
            return rc;
        }
    }
    return 0;
}

int al_seccomp_deny_shared_add(scmp_filter_ctx ctx)
{
    /* Other ABIs (i386 via int 0x80, x32) do not exist for our processes:
     * the filter only knows the native one and kills on any other. */
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc == 0)
        rc = al_seccomp_deny_names_add(ctx, shared_denied,
                                       sizeof(shared_denied) / sizeof(*shared_denied), NULL);
    /* clone3 passes flags in memory seccomp cannot read: ENOSYS makes libc
     * fall back to clone, whose flags are checked below. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    for (size_t i = 0; i < sizeof(shared_ns_flags) / sizeof(*shared_ns_flags) && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, shared_ns_flags[i], shared_ns_flags[i]));
    return rc;
}

int al_seccomp_deny_load(const char *const *names, size_t n)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    const char *failed = NULL;
    int err = 0, rc;
    if (!ctx)
        return al_error_set(AL_ENOMEM, "seccomp_init");
    if ((rc = al_seccomp_deny_shared_add(ctx)) < 0)
        err = al_error_set(AL_ERROR, "seccomp: cannot add the shared denials: %s", strerror(-rc));
    else if ((rc = al_seccomp_deny_names_add(ctx, names, n, &failed)) < 0)
        err = al_error_set(AL_ERROR, "seccomp: cannot deny %s", failed);
    if (err == 0 && seccomp_load(ctx) < 0)
        err = al_error_set(AL_EIO, "seccomp: cannot load the filter");
    seccomp_release(ctx);
    return err;
}
