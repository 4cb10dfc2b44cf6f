/* Landlock: the second filesystem layer. Read and execute everywhere,
 * write only on the writable roots (and the sandbox's own /tmp, /dev/shm);
 * TCP bind/connect denied; signals and abstract unix sockets scoped to the
 * sandbox. Applied by the sandbox's pid 1 after it built its root, so every
 * process in the sandbox inherits it. */
#include "sandbox_int.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/types.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The uapi as of ABI 6, defined here because Debian 12's headers stop at 2. */
struct ll_ruleset_attr {
    __u64 handled_access_fs;
    __u64 handled_access_net;
    __u64 scoped;
};
struct ll_path_beneath_attr {
    __u64 allowed_access;
    __s32 parent_fd;
} __attribute__((packed));

struct ll_net_port_attr {
    __u64 allowed_access;
    __u64 port;
};

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH      1
#define LL_RULE_NET_PORT          2

#define LL_FS_EXECUTE     (1ULL << 0)
#define LL_FS_WRITE_FILE  (1ULL << 1)
#define LL_FS_READ_FILE   (1ULL << 2)
#define LL_FS_READ_DIR    (1ULL << 3)
#define LL_FS_REMOVE_DIR  (1ULL << 4)
#define LL_FS_REMOVE_FILE (1ULL << 5)
#define LL_FS_MAKE_CHAR   (1ULL << 6)
#define LL_FS_MAKE_DIR    (1ULL << 7)
#define LL_FS_MAKE_REG    (1ULL << 8)
#define LL_FS_MAKE_SOCK   (1ULL << 9)
#define LL_FS_MAKE_FIFO   (1ULL << 10)
#define LL_FS_MAKE_BLOCK  (1ULL << 11)
#define LL_FS_MAKE_SYM    (1ULL << 12)
#define LL_FS_REFER       (1ULL << 13) /* ABI 2 */
#define LL_FS_TRUNCATE    (1ULL << 14) /* ABI 3 */

#define LL_NET_BIND_TCP    (1ULL << 0) /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ULL << 1)

#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL               (1ULL << 1)

#define LL_READ (LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR)
#define LL_WRITE                                                                                   \
    (LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR | LL_FS_MAKE_REG |   \
     LL_FS_MAKE_SOCK | LL_FS_MAKE_FIFO | LL_FS_MAKE_SYM | LL_FS_REFER | LL_FS_TRUNCATE)

struct ll_ctx {
    int ruleset;
    __u64 fs_mask; /* rights this ABI knows */
};

static int ll_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    return abi < 0 ? 0 : (int)abi;
}

/* Allows `access` beneath what `fd` refers to (`path` names it in messages). */
static int ll_allow_fd(struct ll_ctx *ctx, int fd, const char *path, __u64 access)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return al_error_set_errno(AL_EIO, errno, "landlock: stat %s", path);
    access &= ctx->fs_mask;
    if (!S_ISDIR(st.st_mode)) /* directory-only rights are refused on files */
        access &= LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE;
    struct ll_path_beneath_attr rule = {.allowed_access = access, .parent_fd = fd};
    if (syscall(SYS_landlock_add_rule, ctx->ruleset, LL_RULE_PATH_BENEATH, &rule, 0) < 0)
        return al_error_set_errno(AL_EIO, errno, "landlock: rule for %s", path);
    return 0;
}

/* Allows `access` beneath `path`; a missing path is skipped. */
static int ll_allow(struct ll_ctx *ctx, const char *path, __u64 access)
{
    cleanup_fd int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : al_error_set_errno(AL_EIO, errno, "landlock: open %s", path);
    return ll_allow_fd(ctx, fd, path, access);
}

/* The command's stdin/stdout/stderr may be host files or terminals that lie
 * outside the sandbox's tree; reopening them by name (/dev/stderr,
 * /proc/self/fd/1) must keep working. Pipes and sockets need no rule. */
static int ll_allow_stdio(struct ll_ctx *ctx)
{
    for (int fd = 0; fd <= 2; fd++) {
        struct stat st;
        if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)))
            continue;
        int err = ll_allow_fd(ctx, fd,
                              fd == 0   ? "stdin"
                              : fd == 1 ? "stdout"
                                        : "stderr",
                              LL_FS_READ_FILE | LL_FS_WRITE_FILE | LL_FS_TRUNCATE);
        if (err < 0)
            return err;
    }
    return 0;
}

/* 1 when `path` equals `p` or is an ancestor directory of it. */
static int ll_is_ancestor_or_self(const char *path, const char *p)
{
    size_t n = strlen(path);
    if (n == 1 && path[0] == '/')
        return 1;
    return strncmp(p, path, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* Grants read beneath `dir` minus every masked path: where a masked path
 * lies below, descends and grants each sibling instead. */
static int ll_allow_read_except(struct ll_ctx *ctx, const struct sb_plan *plan, const char *dir,
                                unsigned depth)
{
    int masked_below = 0;
    for (size_t i = 0; i < plan->len; i++) {
        const struct sb_mount *m = &plan->mounts[i];
        if (m->kind != SB_MNT_MASK || !ll_is_ancestor_or_self(dir, m->path))
            continue;
        if (strcmp(m->path, dir) == 0)
            return 0; /* hidden itself */
        masked_below = 1;
    }
    if (!masked_below || depth > 32)
        return ll_allow(ctx, dir, LL_READ);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int err = 0;
    struct dirent *de;
    while ((de = readdir(d)) && err == 0) {
        if (al_path_is_dot(de->d_name))
            continue;
        char child[PATH_MAX];
        if (al_path_join(child, sizeof(child), dir, de->d_name) == 0)
            err = ll_allow_read_except(ctx, plan, child, depth + 1);
    }
    closedir(d);
    return err;
}

/* Builds the ruleset for `plan` in *out_fd (CLOEXEC). With `stdio`, the
 * caller's stdin/out/err files stay reopenable. */
static int ll_prepare(int *out_fd, const struct sb_plan *plan, int hide_masked, int stdio)
{
    *out_fd = -1;
    int abi = ll_abi();
    if (abi < 1)
        return al_error_set(AL_EUNSUPP, "Landlock is not available in this kernel");
    struct ll_ctx ctx = {.ruleset = -1,
                         .fs_mask = LL_READ | LL_WRITE | LL_FS_MAKE_CHAR | LL_FS_MAKE_BLOCK};
    if (abi < 2)
        ctx.fs_mask &= ~LL_FS_REFER;
    if (abi < 3)
        ctx.fs_mask &= ~LL_FS_TRUNCATE;
    struct ll_ruleset_attr attr = {.handled_access_fs = ctx.fs_mask};
    if (abi >= 4 && !plan->allow_local_binding)
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
    if (abi >= 6)
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;

    ctx.ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (ctx.ruleset < 0)
        return al_error_set_errno(AL_EIO, errno, "landlock: create ruleset");
    int err;
    if (hide_masked)
        err = ll_allow_read_except(&ctx, plan, "/", 0);
    else
        err = ll_allow(&ctx, "/", LL_READ);
    static const char *const scratch[] = {"/tmp",      "/dev/shm", "/dev/null", "/dev/zero",
                                          "/dev/full", "/dev/tty", "/dev/pts"};
    for (size_t i = 0; i < sizeof(scratch) / sizeof(*scratch) && err == 0; i++)
        err = ll_allow(&ctx, scratch[i], LL_READ | LL_WRITE);
    for (size_t i = 0; i < plan->writable.len && err == 0; i++)
        err = ll_allow(&ctx, plan->writable.items[i], LL_READ | LL_WRITE);
    if (err == 0 && stdio)
        err = ll_allow_stdio(&ctx);
    /* The sandbox's own proxies listen on these ports of its loopback. */
    for (size_t i = 0; i < plan->n_connect_ports && err == 0 && attr.handled_access_net; i++) {
        struct ll_net_port_attr rule = {LL_NET_CONNECT_TCP, plan->connect_ports[i]};
        if (syscall(SYS_landlock_add_rule, ctx.ruleset, LL_RULE_NET_PORT, &rule, 0) < 0)
            err = al_error_set_errno(AL_EIO, errno, "landlock: port %u", plan->connect_ports[i]);
    }
    if (err < 0) {
        close(ctx.ruleset);
        return err;
    }
    al_log(AL_LOG_DEBUG, "landlock: ABI %d ruleset ready", abi);
    *out_fd = ctx.ruleset;
    return 0;
}

static int ll_apply(const struct sb_plan *plan, int hide_masked)
{
    int fd, err = ll_prepare(&fd, plan, hide_masked, 1);
    if (err < 0)
        return err;
    if (syscall(SYS_landlock_restrict_self, fd, 0) < 0)
        err = al_error_set_errno(AL_EIO, errno, "landlock: restrict self");
    close(fd);
    return err;
}

int sb_landlock_prepare(int *out_fd, const struct sb_plan *plan)
{
    return ll_prepare(out_fd, plan, 0, 0);
}

int sb_landlock_apply(const struct sb_plan *plan)
{
    return ll_apply(plan, 0);
}

int sb_landlock_apply_weaker(const struct sb_plan *plan)
{
    return ll_apply(plan, 1);
}
