/* The front's seccomp filter: default allow (libgit2 and glibc need the
 * ordinary file and memory calls), and deny what a parser that was taken
 * over could use to reach further: running programs, opening connections of
 * its own (a worker talks only over the descriptors it was given), other
 * processes' memory, privilege and namespace changes, and the kernel
 * interfaces nothing here uses. Denied calls fail with EPERM; clone3 says
 * ENOSYS so glibc falls back to clone, whose flags can be checked. */
#include "gp_front.h"

#include "airlock/error.h"

#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stddef.h>

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static const char *const denied[] = {
    /* programs and connections of its own */
    "execve",
    "execveat",
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    /* other processes */
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    /* privileges and namespaces */
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capset",
    "unshare",
    "setns",
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
    /* the kernel surface nothing here uses */
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
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "syslog",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "personality",
    "iopl",
    "ioperm",
    "mknod",
    "mknodat",
};

static const unsigned long ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                         CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

int gp_front_seccomp_apply(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int err = 0;
    if (!ctx)
        return al_error_set(AL_ENOMEM, "seccomp_init");
    for (size_t i = 0; i < sizeof(denied) / sizeof(*denied) && err == 0; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) < 0)
            err = al_error_set(AL_ERROR, "seccomp: cannot deny %s", denied[i]);
    }
    int clone_nr = seccomp_syscall_resolve_name("clone");
    for (size_t i = 0; i < sizeof(ns_flags) / sizeof(*ns_flags) && err == 0; i++)
        if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), clone_nr, 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i])) < 0)
            err = al_error_set(AL_ERROR, "seccomp: cannot filter clone");
    int clone3 = seccomp_syscall_resolve_name("clone3");
    if (err == 0 && clone3 != __NR_SCMP_ERROR &&
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0) < 0)
        err = al_error_set(AL_ERROR, "seccomp: cannot deny clone3");
    /* Calls of other ABIs (i386, x32) are not in this filter's arch list:
     * libseccomp kills the caller. */
    if (err == 0 && seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0)
        err = al_error_set(AL_ERROR, "seccomp: cannot set the bad-arch action");
    if (err == 0 && seccomp_load(ctx) < 0)
        err = al_error_set(AL_EIO, "seccomp: cannot load the front's filter");
    seccomp_release(ctx);
    return err;
}
