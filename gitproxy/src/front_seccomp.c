/* The front's seccomp filter: default allow (libgit2 and glibc need the
 * ordinary file and memory calls), and deny what a parser that was taken
 * over could use to reach further. The shared denials (airlock/seccomp_deny.h:
 * other ABIs, mounts, namespaces, other processes' memory, the kernel
 * interfaces nothing here uses, namespace flags of clone, clone3) come
 * first; this file adds what only the front can give up: running programs,
 * opening connections of its own (a worker talks only over the descriptors
 * it was given) and changing its identity. Denied calls fail with EPERM. */
#include "gp_front.h"

#include "airlock/error.h"
#include "airlock/seccomp_deny.h"

#include <seccomp.h>
#include <stddef.h>
#include <string.h>

/* Denied with EPERM on top of the shared list. The sandbox cannot deny
 * these: the programs it runs exec, connect to the proxies and change
 * their ids (within its user namespace). */
static const char *const front_denied[] = {
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
    /* privileges */
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
    /* what a parser has no use for */
    "personality",
    "mknod",
    "mknodat",
};

int gp_front_seccomp_apply(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    const char *failed = NULL;
    int err = 0, rc;
    if (!ctx)
        return al_error_set(AL_ENOMEM, "seccomp_init");
    if ((rc = al_seccomp_deny_shared_add(ctx)) < 0)
        err = al_error_set(AL_ERROR, "seccomp: cannot add the shared denials: %s", strerror(-rc));
    else if ((rc = al_seccomp_deny_names_add(
                  ctx, front_denied, sizeof(front_denied) / sizeof(*front_denied), &failed)) < 0)
        err = al_error_set(AL_ERROR, "seccomp: cannot deny %s", failed);
    if (err == 0 && seccomp_load(ctx) < 0)
        err = al_error_set(AL_EIO, "seccomp: cannot load the front's filter");
    seccomp_release(ctx);
    return err;
}
