/* The sandbox's filesystem: a new root on a tmpfs holding read-only binds of
 * the host's top-level directories, a fresh /proc, a minimal /dev, a private
 * /tmp, then the plan's writable, hidden and protected paths. Runs in the
 * sandbox's pid 1, inside its new mount namespace, before it drops privilege.
 *
 * Layout while building (after bubblewrap): a tmpfs is mounted on the host's
 * /tmp and pivoted to, so the host's root is reachable at /oldroot (its /tmp
 * included) and the new root is assembled at /newroot; finally /newroot
 * becomes / and the host's root is detached. */
#include "sandbox_int.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define OLD        "/oldroot"
#define NEW        "/newroot"
#define EMPTY_FILE "/.airlock-empty"

/* Host top-level entries the sandbox gets fresh or empty instead of bound. */
static const char *const replaced_toplevel[] = {"proc", "dev",        "tmp",     "run",
                                                "sys",  "lost+found", "oldroot", "newroot"};

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

/* /proc entries hidden (an unopenable empty file over them): readable by
 * uid 0 without any capability, they show the host's timers, tasks and
 * kernel memory layout. (kcore, kmsg, kallsyms and the like need
 * capabilities the sandbox does not have.) */
static const char *const proc_hidden[] = {"timer_list", "sched_debug", "vmallocinfo", "keys"};
/* /proc entries read-only: uid 0 may write its own network namespace's
 * sysctls without a capability; sysrq-trigger for good measure. */
static const char *const proc_readonly[] = {"sys", "sysrq-trigger"};

/* out = prefix + path; AL_ETOOBIG rather than a truncated mount target. */
static int prefixed(char *out, const char *prefix, const char *path)
{
    int n = snprintf(out, PATH_MAX, "%s%s", prefix, path);
    if (n < 0 || n >= PATH_MAX)
        return al_error_set(AL_ETOOBIG, "%s%s: path too long", prefix, path);
    return 0;
}

static int set_attr(const char *path, uint64_t set, uint64_t clear, int recursive)
{
    struct mount_attr attr = {.attr_set = set, .attr_clr = clear};
    if (mount_setattr(AT_FDCWD, path, (recursive ? AT_RECURSIVE : 0) | AT_SYMLINK_NOFOLLOW, &attr,
                      sizeof(attr)) < 0)
        return al_error_set_errno(AL_EIO, errno, "mount_setattr %s", path);
    return 0;
}

static int bind(const char *src, const char *dst, uint64_t attrs)
{
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return al_error_set_errno(AL_EIO, errno, "bind %s on %s", src, dst);
    return set_attr(dst, attrs, 0, 1);
}

/* mkdir -p of `path` (the leaf too when `leaf_dir`; otherwise the leaf is
 * created as an empty file). Only succeeds where the parent is writable,
 * i.e. inside airlock's own tmpfs mounts. Existing entries are kept. */
static int ensure_path(const char *path, int leaf_dir)
{
    char buf[PATH_MAX];
    if ((size_t)snprintf(buf, sizeof(buf), "%s", path) >= sizeof(buf))
        return al_error_set(AL_EINVAL, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return al_error_set_errno(AL_EIO, errno, "mkdir %s", buf);
        *p = '/';
    }
    struct stat st;
    if (lstat(buf, &st) == 0)
        return 0;
    if (leaf_dir) {
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return al_error_set_errno(AL_EIO, errno, "mkdir %s", buf);
        return 0;
    }
    int fd = open(buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0 && errno != EEXIST)
        return al_error_set_errno(AL_EIO, errno, "create %s", buf);
    if (fd >= 0)
        close(fd);
    return 0;
}

/* Step 1: private propagation, a tmpfs pivoted to, host root at /oldroot. */
static int mounts_enter_staging(void)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return al_error_set_errno(AL_EIO, errno, "make / private");
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
        return al_error_set_errno(AL_EIO, errno, "mount staging tmpfs");
    if (chdir("/tmp") < 0 || mkdir("newroot", 0755) < 0 || mkdir("oldroot", 0755) < 0)
        return al_error_set_errno(AL_EIO, errno, "staging dirs");
    if (syscall(SYS_pivot_root, "/tmp", "oldroot") < 0)
        return al_error_set_errno(AL_EIO, errno, "pivot_root to staging");
    if (chdir("/") < 0)
        return al_error_set_errno(AL_EIO, errno, "chdir /");
    if (mount("tmpfs", NEW, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
        return al_error_set_errno(AL_EIO, errno, "mount root tmpfs");
    /* Mode 0: a hidden file cannot be opened at all (no capability inside
     * overrides it), rather than reading as empty. */
    int fd = open(EMPTY_FILE, O_WRONLY | O_CREAT | O_CLOEXEC, 0000);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "create %s", EMPTY_FILE);
    close(fd);
    return 0;
}

/* A top-level directory the sandbox gets fresh (proc, dev, tmp...): an
 * empty mount point when the source root has it as a directory. */
static int mkdir_replaced(const char *root, const char *name)
{
    char src[PATH_MAX], dst[PATH_MAX];
    struct stat st;
    if (al_path_join(src, sizeof(src), root, name) < 0 ||
        al_path_join(dst, sizeof(dst), NEW, name) < 0 || lstat(src, &st) < 0 ||
        !S_ISDIR(st.st_mode))
        return 0;
    if (mkdir(dst, 0755) < 0)
        return al_error_set_errno(AL_EIO, errno, "mkdir %s", dst);
    return 0;
}

/* Binds one top-level entry `name` of the source root `root` at NEW/name
 * (directories and files read-only, symlinks copied, replaced ones empty). */
static int mounts_bind_entry(const char *root, const char *name)
{
    if (al_path_is_dot(name))
        return 0;
    for (size_t i = 0; i < sizeof(replaced_toplevel) / sizeof(*replaced_toplevel); i++)
        if (strcmp(name, replaced_toplevel[i]) == 0)
            return mkdir_replaced(root, name);
    char src[PATH_MAX], dst[PATH_MAX];
    if (al_path_join(src, sizeof(src), root, name) < 0 ||
        al_path_join(dst, sizeof(dst), NEW, name) < 0)
        return 0;
    struct stat st;
    if (lstat(src, &st) < 0)
        return 0;
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(src, target, sizeof(target) - 1);
        if (n < 0)
            return 0;
        target[n] = '\0';
        if (symlink(target, dst) < 0)
            return al_error_set_errno(AL_EIO, errno, "symlink %s", dst);
        return 0;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return 0;
    int err = ensure_path(dst, S_ISDIR(st.st_mode));
    if (err < 0)
        return err;
    return bind(src, dst, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
}

/* Step 2: the top-level entries of the host's root (or of the rootfs),
 * read-only, nosuid, nodev. Listed with getdents64 into a stack buffer: a
 * long-lived sandbox is cloned from a threaded daemon, where the child must
 * not call malloc (another thread may have held its lock at clone time). */
static int mounts_bind_system(const char *rootfs)
{
    char root[PATH_MAX];
    int err = prefixed(root, OLD, rootfs ? rootfs : "");
    if (err < 0)
        return err;
    cleanup_fd int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "open %s", rootfs ? rootfs : "host root");
    char buf[8192] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (n < 0)
            return al_error_set_errno(AL_EIO, errno, "list %s", rootfs ? rootfs : "host root");
        if (n == 0)
            return 0;
        for (long off = 0; off < n;) {
            struct dirent64 *de = (struct dirent64 *)(buf + off);
            if ((err = mounts_bind_entry(root, de->d_name)) < 0)
                return err;
            off += de->d_reclen;
        }
    }
}

/* Step 3: fresh /proc with the kernel's sensitive files hidden or read-only. */
static int mounts_proc(void)
{
    if (ensure_path(NEW "/proc", 1) < 0)
        return AL_EIO;
    if (mount("proc", NEW "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return al_error_set_errno(AL_EIO, errno, "mount /proc");
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof(proc_readonly) / sizeof(*proc_readonly); i++) {
        al_path_join(p, sizeof(p), NEW "/proc", proc_readonly[i]);
        if (access(p, F_OK) < 0)
            continue;
        if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
            return al_error_set_errno(AL_EIO, errno, "bind %s", p);
        int err = set_attr(
            p, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0, 1);
        if (err < 0)
            return err;
    }
    for (size_t i = 0; i < sizeof(proc_hidden) / sizeof(*proc_hidden); i++) {
        al_path_join(p, sizeof(p), NEW "/proc", proc_hidden[i]);
        if (access(p, F_OK) < 0)
            continue;
        int err =
            bind(EMPTY_FILE, p,
                 MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        if (err < 0)
            return err;
    }
    return 0;
}

/* Step 3b: a fresh, read-only sysfs: it shows the sandbox's own network
 * namespace (only lo) and none of the host's cgroup tree. */
static int mounts_sys(void)
{
    int err = ensure_path(NEW "/sys", 1);
    if (err < 0)
        return err;
    if (mount("sysfs", NEW "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return al_error_set_errno(AL_EIO, errno, "mount /sys");
    return 0;
}

/* Step 4: /dev on a tmpfs: the harmless character devices bound from the
 * host, a private devpts, /dev/shm, and the usual symlinks. */
static int mounts_dev(void)
{
    int err;
    if ((err = ensure_path(NEW "/dev", 1)) < 0)
        return err;
    if (mount("tmpfs", NEW "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755") < 0)
        return al_error_set_errno(AL_EIO, errno, "mount /dev");
    char src[PATH_MAX], dst[PATH_MAX];
    for (size_t i = 0; i < sizeof(dev_nodes) / sizeof(*dev_nodes); i++) {
        al_path_join(src, sizeof(src), OLD "/dev", dev_nodes[i]);
        al_path_join(dst, sizeof(dst), NEW "/dev", dev_nodes[i]);
        if (access(src, F_OK) < 0)
            continue;
        if ((err = ensure_path(dst, 0)) < 0)
            return err;
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
            return al_error_set_errno(AL_EIO, errno, "bind %s", dst);
        if ((err = set_attr(dst, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0, 0)) < 0)
            return err;
    }
    if ((err = ensure_path(NEW "/dev/pts", 1)) < 0 || (err = ensure_path(NEW "/dev/shm", 1)) < 0)
        return err;
    if (mount("devpts", NEW "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=620") < 0)
        return al_error_set_errno(AL_EIO, errno, "mount /dev/pts");
    if (mount("tmpfs", NEW "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
        return al_error_set_errno(AL_EIO, errno, "mount /dev/shm");
    static const char *const links[][2] = {
        {"pts/ptmx", "ptmx"},          {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"},
        {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
    };
    for (size_t i = 0; i < sizeof(links) / sizeof(*links); i++) {
        al_path_join(dst, sizeof(dst), NEW "/dev", links[i][1]);
        if (symlink(links[i][0], dst) < 0)
            return al_error_set_errno(AL_EIO, errno, "symlink %s", dst);
    }
    return 0;
}

/* Step 5: a private /tmp. */
static int mounts_tmp(void)
{
    int err = ensure_path(NEW "/tmp", 1);
    if (err < 0)
        return err;
    if (mount("tmpfs", NEW "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
        return al_error_set_errno(AL_EIO, errno, "mount /tmp");
    return 0;
}

/* Step 6: the plan, group by group (read-only, writable, hidden,
 * re-exposed, protected, sockets, files made by the caller), shallow paths
 * first. */
static int mounts_apply_plan(const struct sb_plan *plan)
{
    char src[PATH_MAX], dst[PATH_MAX];
    int err = 0;
    for (size_t i = 0; i < plan->len && err == 0; i++) {
        const struct sb_mount *m = &plan->mounts[i];
        if ((err = prefixed(src, OLD, m->path)) < 0 ||
            (err = prefixed(dst, NEW, m->dst ? m->dst : m->path)) < 0)
            break;
        struct stat st;
        switch (m->kind) {
        case SB_MNT_RO:
        case SB_MNT_REEXPOSE:
        case SB_MNT_SOCKET:
        case SB_MNT_FILE:
            if ((err = ensure_path(dst, m->is_dir)) == 0)
                err = bind(src, dst, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
            break;
        case SB_MNT_RW:
            if ((err = ensure_path(dst, m->is_dir)) == 0)
                err = bind(src, dst, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
            break;
        case SB_MNT_PIN:
            if (lstat(dst, &st) < 0)
                break;
            if (mount(dst, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                err = al_error_set_errno(AL_EIO, errno, "pin %s", m->path);
            else
                err = set_attr(dst, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 1);
            break;
        case SB_MNT_MASK:
            /* Not visible in the sandbox anyway (under a replaced dir). */
            if (lstat(dst, &st) < 0)
                break;
            if (m->is_dir) {
                if (mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          "mode=0755,size=64k,nr_inodes=256") < 0)
                    err = al_error_set_errno(AL_EIO, errno, "hide %s", m->path);
            } else {
                err = bind(EMPTY_FILE, dst,
                           MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                               MOUNT_ATTR_NOEXEC);
            }
            break;
        case SB_MNT_PROTECT:
            if (lstat(dst, &st) < 0)
                break;
            if (mount(dst, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                err = al_error_set_errno(AL_EIO, errno, "protect %s", m->path);
            else
                err = set_attr(dst, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 1);
            break;
        }
    }
    /* Hidden directories become read-only once re-exposed paths are in. */
    for (size_t i = 0; i < plan->len && err == 0; i++) {
        const struct sb_mount *m = &plan->mounts[i];
        if ((err = prefixed(dst, NEW, m->dst ? m->dst : m->path)) < 0)
            break;
        if (m->kind == SB_MNT_MASK && m->is_dir && access(dst, F_OK) == 0)
            err = set_attr(dst, MOUNT_ATTR_RDONLY, 0, 0);
    }
    return err;
}

/* Step 7: the host's root detached, the new root read-only and pivoted to. */
static int mounts_switch_root(void)
{
    if (umount2(OLD, MNT_DETACH) < 0)
        return al_error_set_errno(AL_EIO, errno, "detach host root");
    int err = set_attr(NEW, MOUNT_ATTR_RDONLY, 0, 0);
    if (err < 0)
        return err;
    if (chdir(NEW) < 0)
        return al_error_set_errno(AL_EIO, errno, "chdir new root");
    /* pivot_root(".", ".") stacks the staging root on top of the new one;
     * detaching "." then leaves the new root alone (see pivot_root(2)). */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return al_error_set_errno(AL_EIO, errno, "pivot_root to new root");
    if (umount2(".", MNT_DETACH) < 0)
        return al_error_set_errno(AL_EIO, errno, "detach staging root");
    if (chdir("/") < 0)
        return al_error_set_errno(AL_EIO, errno, "chdir /");
    return 0;
}

int sb_mounts_build_root(const struct sb_plan *plan)
{
    int err;
    if ((err = mounts_enter_staging()) < 0 || (err = mounts_bind_system(plan->rootfs)) < 0 ||
        (err = mounts_proc()) < 0 || (err = mounts_sys()) < 0 || (err = mounts_dev()) < 0 ||
        (err = mounts_tmp()) < 0 || (err = mounts_apply_plan(plan)) < 0 ||
        (err = mounts_switch_root()) < 0)
        return err;
    return 0;
}
