/* Landlock: the second filesystem layer. Read and execute everywhere,
 * write only on the writable roots (and the sandbox's own /tmp, /dev/shm);
 * TCP bind/connect denied; signals and abstract unix sockets scoped to the
 * sandbox. The ruleset is built by a step of the contain list (contain.c)
 * once the sandbox's root is in place, so its paths resolve inside, and
 * enforced before anything untrusted runs; every process in the sandbox
 * inherits it. Which rules a plan gets is decided by sb_landlock_rules()
 * alone, without a system call on Landlock (unit-tested). */
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

/* The uapi as of ABI 6, defined here because Debian 12's headers stop at 2
 * (the access rights are in sandbox_int.h, for the unit tests). */
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

static int ll_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    return abi < 0 ? 0 : (int)abi;
}

/* The filesystem rights Landlock ABI `abi` knows (and so handles). */
static uint64_t ll_fs_mask(int abi)
{
    uint64_t mask = SB_LL_READ | SB_LL_WRITE | SB_LL_FS_MAKE_CHAR | SB_LL_FS_MAKE_BLOCK;
    if (abi < 2)
        mask &= ~SB_LL_FS_REFER;
    if (abi < 3)
        mask &= ~SB_LL_FS_TRUNCATE;
    return mask;
}

void sb_landlock_attr(struct sb_landlock_attr *out, const struct sb_plan *plan, int abi)
{
    memset(out, 0, sizeof(*out));
    out->handled_fs = ll_fs_mask(abi);
    if (abi >= 4 && !plan->allow_local_binding)
        out->handled_net = SB_LL_NET_BIND_TCP | SB_LL_NET_CONNECT_TCP;
    if (abi >= 6)
        out->scoped = SB_LL_SCOPE_ABSTRACT_UNIX_SOCKET | SB_LL_SCOPE_SIGNAL;
}

struct ll_walk {
    const struct sb_plan *plan;
    uint64_t fs_mask;
    sb_landlock_rule_fn fn;
    void *payload;
};

static int ll_emit_path(struct ll_walk *w, const char *path, uint64_t access)
{
    struct sb_landlock_rule r = {.path = path, .fd = -1, .access = access & w->fs_mask};
    return w->fn(&r, w->payload);
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
 * lies below, descends and grants each sibling instead. Lists directories
 * with getdents64 into a stack buffer: it runs in a freshly cloned child,
 * which must not call malloc (see sb_contain_spawn). */
static int ll_read_except(struct ll_walk *w, const char *dir, unsigned depth)
{
    const struct sb_plan *plan = w->plan;
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
        return ll_emit_path(w, dir, SB_LL_READ);
    cleanup_fd int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[2048] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (n <= 0)
            return 0;
        for (long off = 0; off < n;) {
            struct dirent64 *de = (struct dirent64 *)(buf + off);
            off += de->d_reclen;
            char child[PATH_MAX];
            if (al_path_is_dot(de->d_name) ||
                al_path_join(child, sizeof(child), dir, de->d_name) < 0)
                continue;
            int err = ll_read_except(w, child, depth + 1);
            if (err < 0)
                return err;
        }
    }
}

int sb_landlock_rules(const struct sb_plan *plan, int abi, unsigned flags, sb_landlock_rule_fn fn,
                      void *payload)
{
    struct ll_walk w = {.plan = plan, .fs_mask = ll_fs_mask(abi), .fn = fn, .payload = payload};
    int err;
    if (flags & SB_LL_HIDE_MASKED)
        err = ll_read_except(&w, "/", 0);
    else
        err = ll_emit_path(&w, "/", SB_LL_READ);
    static const char *const scratch[] = {"/tmp",      "/dev/shm", "/dev/null", "/dev/zero",
                                          "/dev/full", "/dev/tty", "/dev/pts"};
    for (size_t i = 0; i < sizeof(scratch) / sizeof(*scratch) && err == 0; i++)
        err = ll_emit_path(&w, scratch[i], SB_LL_READ | SB_LL_WRITE);
    for (size_t i = 0; i < plan->writable.len && err == 0; i++)
        err = ll_emit_path(&w, plan->writable.items[i], SB_LL_READ | SB_LL_WRITE);
    /* The command's stdin/stdout/stderr may be host files or terminals that
     * lie outside the sandbox's tree; reopening them by name (/dev/stderr,
     * /proc/self/fd/1) must keep working. Pipes and sockets need no rule. */
    for (int fd = 0; fd <= 2 && err == 0 && (flags & SB_LL_STDIO); fd++) {
        struct stat st;
        if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)))
            continue;
        struct sb_landlock_rule r = {
            .fd = fd,
            .access = (SB_LL_FS_READ_FILE | SB_LL_FS_WRITE_FILE | SB_LL_FS_TRUNCATE) & w.fs_mask};
        err = fn(&r, payload);
    }
    /* The sandbox's own proxies listen on these ports of its loopback. */
    struct sb_landlock_attr attr;
    sb_landlock_attr(&attr, plan, abi);
    for (size_t i = 0; i < plan->n_connect_ports && err == 0 && attr.handled_net; i++) {
        struct sb_landlock_rule r = {
            .fd = -1, .access = SB_LL_NET_CONNECT_TCP, .port = plan->connect_ports[i]};
        err = fn(&r, payload);
    }
    return err;
}

/* Adds `r` to the ruleset `*(int *)ruleset`; a missing path is skipped. */
static int ll_add_rule(const struct sb_landlock_rule *r, void *ruleset)
{
    int rs = *(int *)ruleset;
    if (!r->path && r->fd < 0) {
        struct ll_net_port_attr rule = {r->access, r->port};
        if (syscall(SYS_landlock_add_rule, rs, LL_RULE_NET_PORT, &rule, 0) < 0)
            return al_error_set_errno(AL_EIO, errno, "landlock: port %u", r->port);
        return 0;
    }
    const char *what = r->path ? r->path : r->fd == 0 ? "stdin" : r->fd == 1 ? "stdout" : "stderr";
    cleanup_fd int own = r->path ? open(r->path, O_PATH | O_CLOEXEC) : -1;
    if (r->path && own < 0)
        return errno == ENOENT ? 0 : al_error_set_errno(AL_EIO, errno, "landlock: open %s", what);
    int fd = r->path ? own : r->fd;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return al_error_set_errno(AL_EIO, errno, "landlock: stat %s", what);
    uint64_t access = r->access;
    if (!S_ISDIR(st.st_mode)) /* directory-only rights are refused on files */
        access &= SB_LL_FS_EXECUTE | SB_LL_FS_WRITE_FILE | SB_LL_FS_READ_FILE | SB_LL_FS_TRUNCATE;
    struct ll_path_beneath_attr rule = {.allowed_access = access, .parent_fd = fd};
    if (syscall(SYS_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &rule, 0) < 0)
        return al_error_set_errno(AL_EIO, errno, "landlock: rule for %s", what);
    return 0;
}

int sb_landlock_ruleset(int *out_fd, const struct sb_plan *plan, unsigned flags)
{
    *out_fd = -1;
    int abi = ll_abi();
    if (abi < 1)
        return al_error_set(AL_EUNSUPP, "Landlock is not available in this kernel");
    struct sb_landlock_attr a;
    sb_landlock_attr(&a, plan, abi);
    struct ll_ruleset_attr attr = {
        .handled_access_fs = a.handled_fs, .handled_access_net = a.handled_net, .scoped = a.scoped};
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (ruleset < 0)
        return al_error_set_errno(AL_EIO, errno, "landlock: create ruleset");
    int err = sb_landlock_rules(plan, abi, flags, ll_add_rule, &ruleset);
    if (err < 0) {
        close(ruleset);
        return err;
    }
    al_log(AL_LOG_DEBUG, "landlock: ABI %d ruleset ready", abi);
    *out_fd = ruleset;
    return 0;
}

int sb_landlock_restrict(int ruleset)
{
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
        return al_error_set_errno(AL_EIO, errno, "landlock: restrict self");
    return 0;
}

static int ll_apply(const struct sb_plan *plan, unsigned flags)
{
    int fd, err = sb_landlock_ruleset(&fd, plan, flags);
    if (err < 0)
        return err;
    err = sb_landlock_restrict(fd);
    close(fd);
    return err;
}

int sb_landlock_prepare(int *out_fd, const struct sb_plan *plan)
{
    return sb_landlock_ruleset(out_fd, plan, 0);
}

int sb_landlock_apply(const struct sb_plan *plan)
{
    return ll_apply(plan, SB_LL_STDIO);
}

int sb_landlock_apply_weaker(const struct sb_plan *plan)
{
    return ll_apply(plan, SB_LL_STDIO | SB_LL_HIDE_MASKED);
}
