/* The sandbox's user namespace: the caller's uid and gid mapped one to one,
 * nothing else mapped, setgroups() denied. */
#include "sandbox_int.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int write_proc(pid_t pid, const char *file, const char *data)
{
    char path[64];
    if (pid)
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    else
        snprintf(path, sizeof(path), "/proc/self/%s", file);
    cleanup_fd int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "open %s", path);
    if (write(fd, data, strlen(data)) < 0)
        return al_error_set_errno(AL_EIO, errno, "write %s", path);
    return 0;
}

int sb_userns_map_ids(pid_t pid, uid_t uid, gid_t gid)
{
    char map[64];
    int err = write_proc(pid, "setgroups", "deny");
    if (err < 0)
        return err;
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if ((err = write_proc(pid, "uid_map", map)) < 0)
        return err;
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    return write_proc(pid, "gid_map", map);
}

int sb_userns_map_user(pid_t pid, uid_t host_uid, gid_t host_gid)
{
    /* Root stays root while the sandbox's pid 1 builds its root from the
     * host's files (an unmapped uid could neither look up root-only
     * directories nor create files on its own tmpfs); it switches to
     * SB_SANDBOX_UID for good before anything untrusted runs. */
    char map[96];
    snprintf(map, sizeof(map), "0 0 1\n%u %u 1\n", (unsigned)SB_SANDBOX_UID, (unsigned)host_uid);
    int err = write_proc(pid, "uid_map", map);
    if (err < 0)
        return err;
    snprintf(map, sizeof(map), "0 0 1\n%u %u 1\n", (unsigned)SB_SANDBOX_UID, (unsigned)host_gid);
    return write_proc(pid, "gid_map", map);
}
