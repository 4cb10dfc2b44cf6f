/* The seccomp policy as libseccomp rules; used at build time only. */
#ifndef AIRLOCK_SECCOMP_RULES_H
#define AIRLOCK_SECCOMP_RULES_H

#include <seccomp.h>

/* A filter context holding the sandbox's rules for the native architecture,
 * with socket(AF_UNIX) refused unless `allow_unix_sockets`. The caller
 * releases it with seccomp_release(). NULL on failure. */
scmp_filter_ctx sb_seccomp_rules_build(int allow_unix_sockets);

#endif
