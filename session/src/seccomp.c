/* Loads the seccomp filter compiled at build time (see seccomp_rules.c). */
#include "sandbox_int.h"

#include "airlock/error.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>

#include "seccomp_bpf.h"

int sb_seccomp_apply(const struct sb_plan *plan)
{
    struct sock_fprog prog;
    if (plan->allow_unix_sockets) {
        prog.filter = (struct sock_filter *)sb_filter_unix_allowed;
        prog.len = sizeof(sb_filter_unix_allowed) / sizeof(*sb_filter_unix_allowed);
    } else {
        prog.filter = (struct sock_filter *)sb_filter_unix_denied;
        prog.len = sizeof(sb_filter_unix_denied) / sizeof(*sb_filter_unix_denied);
    }
    /* Needs no_new_privs (set by sb_privs_drop) since we hold no capability. */
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
        return al_error_set_errno(AL_EIO, errno, "seccomp: load filter");
    return 0;
}
