/* The seccomp policy: default allow, deny the kernel surface a sandboxed
 * program has no business with (reasons in docs/security.md). Compiled to
 * BPF at build time by tools/gen_seccomp.c, so the runtime loads a finished
 * program instead of running libseccomp's compiler on every start. */
#include "seccomp_rules.h"

#include "airlock/seccomp_deny.h"

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

/* Denied with EPERM on top of the shared list (airlock/seccomp_deny.h). The
 * sandbox runs arbitrary programs, so it also closes what old binaries
 * could still call: the legacy umount, vm86, uselib, _sysctl, stime and
 * nfsservctl (most do not exist on x86_64 and are skipped there), LDT
 * changes, quotactl_fd, and renaming the machine (the UTS namespace is the
 * sandbox's, but the names are the operator's). The git proxy front runs
 * only our code and does not deny these; adding them to the shared list
 * would change its filter, a change to make on its own. */
static const char *const sandbox_denied[] = {
    "umount", "quotactl_fd", "uselib",        "vm86",       "vm86old", "modify_ldt",
    "stime",  "sethostname", "setdomainname", "nfsservctl", "_sysctl",
};

/* socket() families refused with EAFNOSUPPORT. */
static const int denied_families[] = {AF_PACKET, AF_VSOCK, AF_KEY};

scmp_filter_ctx sb_seccomp_rules_build(int allow_unix_sockets)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return NULL;
    int rc = al_seccomp_deny_shared_add(ctx);
    if (rc == 0)
        rc = al_seccomp_deny_names_add(ctx, sandbox_denied,
                                       sizeof(sandbox_denied) / sizeof(*sandbox_denied), NULL);
    /* CLONE_NEWTIME, beyond the shared namespace flags: it is only valid
     * with clone3 (ENOSYS) and unshare (denied), and in clone()'s flags the
     * bit is part of the exit signal, so this rule is belt and braces for
     * programs we do not know; the front does without it. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWTIME, CLONE_NEWTIME));
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
