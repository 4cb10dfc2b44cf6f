/* Dropping every privilege the sandbox's processes could use. */
#include "sandbox_int.h"

#include "airlock/error.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static int privs_rlimits(void)
{
    struct rlimit core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &core) < 0)
        return al_error_set_errno(AL_EIO, errno, "setrlimit core");
    /* A daemon creating sandboxes raises its own descriptor limit; the
     * commands get at most 65536 (programs that close every descriptor up
     * to the limit stay fast). */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur > 65536) {
        nofile.rlim_cur = 65536;
        if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
            return al_error_set_errno(AL_EIO, errno, "setrlimit nofile");
    }
    return 0;
}

/* 1 when CAP_SETPCAP is in this process's effective set. */
static int privs_have_setpcap(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0)
        return 0;
    return (data[CAP_SETPCAP / 32].effective >> (CAP_SETPCAP % 32)) & 1;
}

int sb_privs_lock(int strict)
{
    int err = privs_rlimits();
    if (err < 0)
        return err;
    /* no_new_privs first: setuid/file capabilities gain nothing from here on,
     * and it is what allows Landlock and seccomp without CAP_SYS_ADMIN. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return al_error_set_errno(AL_EIO, errno, "no_new_privs");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return al_error_set_errno(AL_EIO, errno, "clear ambient capabilities");
    if (!strict && !privs_have_setpcap())
        return 0;
    /* uid 0 inside must not get capabilities back on exec. Needs CAP_SETPCAP,
     * so before the bounding set is emptied. */
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                                     SECBIT_NO_CAP_AMBIENT_RAISE |
                                     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) < 0)
        return al_error_set_errno(AL_EIO, errno, "securebits");
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return al_error_set_errno(AL_EIO, errno, "drop capability %d from bounding set", cap);
    return 0;
}

int sb_privs_clear_caps(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{0, 0, 0}, {0, 0, 0}};
    if (syscall(SYS_capset, &hdr, data) < 0)
        return al_error_set_errno(AL_EIO, errno, "capset");
    return 0;
}
