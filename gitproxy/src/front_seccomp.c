/* The front's seccomp filter: default allow (libgit2 and glibc need the
 * ordinary file and memory calls), and deny what a parser that was taken
 * over could use to reach further. The shared denials (airlock/seccomp_deny.h:
 * other ABIs, mounts, namespaces, other processes' memory, the kernel
 * interfaces nothing here uses, namespace flags of clone, clone3) come
 * first; this file adds what only the front can give up: running programs,
 * opening connections of its own (a worker talks only over the descriptors
 * it was given) and changing its identity. Denied calls fail with EPERM. */
#include "gp_front.h"

#include "airlock/seccomp_deny.h"

#include <stddef.h>

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
    return al_seccomp_deny_load(front_denied, sizeof(front_denied) / sizeof(*front_denied));
}
