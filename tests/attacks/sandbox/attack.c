/* attack: one escape attempt per invocation, for the sandbox attack suite.
 *
 *   attack CASE [KEY=VALUE]...     run one case
 *   attack list                    print the case names, one a line
 *   attack fixture KEY=VALUE...    host-side listeners and SysV IPC (see fixture_run)
 *   attack suid-report             print euid and capabilities (run via a setuid copy)
 *
 * A case exits 0 and prints "BLOCKED <case>: <how>" when every step of the
 * attack failed the way a sandbox makes it fail, exits 1 and prints
 * "ESCAPED <case>: <what>" when a step succeeded or failed in an unexpected
 * way, and exits 2 printing "UNSUPPORTED <case>: <why>" when the attack
 * cannot be tried on this kernel at all.
 *
 * Parameters (KEY=VALUE, all optional): root= prefix for system paths (the
 * negative control points it at a scratch dir), home= the caller's home
 * (default $HOME), marker= secret marker string, hostpid=, abstract=,
 * hosttag=, runsock=, rosock=, tcpport=, ipckey=, outside=, suid=.
 *
 * Attacks never do damage when they succeed: files they create are named
 * airlock-attack*, writes to kernel knobs stop at open(2), and calls that
 * need privileges are given arguments that make them fail harmlessly after
 * the permission check (bad magic, bogus arch, bad fds).
 *
 * Built without sanitizers: it runs under seccomp, where LeakSanitizer's
 * ptrace would fail.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/magic.h>
#include <linux/perf_event.h>
#include <linux/vm_sockets.h>
#include <linux/if_ether.h>

#define MARKER_DEFAULT "AIRLOCKMARKER"
#define PROC_SCAN_MAX  4096

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef TIOCL_GETFGCONSOLE
#define TIOCL_GETFGCONSOLE 16
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define X32_SYSCALL_BIT 0x40000000L

/* struct mount_attr from linux/mount.h, which clashes with sys/mount.h. */
struct attack_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};
#define ATTACK_MOUNT_ATTR_RDONLY 0x00000001

struct clone_args_v0 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

/* One run of one case: parameters in, verdict accumulated. */
struct attack {
    const char *name;
    const char *root;
    const char *home;
    const char *marker;
    int argc;
    char **argv; /* KEY=VALUE parameters */
    bool escaped;
    bool unsupported;
    char how[2048];
    size_t how_len;
};

typedef void (*attack_fn)(struct attack *a);

/* Zero-terminated list of errno values that count as "blocked". */
#define ERRS(...) ((const int[]){__VA_ARGS__, 0})

static const char *errname(int err)
{
    const char *n = strerrorname_np(err);
    return n ? n : "E?";
}

static const char *param(const struct attack *a, const char *key)
{
    size_t klen = strlen(key);
    for (int i = 0; i < a->argc; i++) {
        if (strncmp(a->argv[i], key, klen) == 0 && a->argv[i][klen] == '=')
            return a->argv[i] + klen + 1;
    }
    return NULL;
}

static void note(struct attack *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct attack *a, const char *fmt, ...)
{
    va_list ap;
    if (a->how_len + 3 >= sizeof(a->how))
        return;
    if (a->how_len > 0) {
        memcpy(a->how + a->how_len, "; ", 2);
        a->how_len += 2;
    }
    va_start(ap, fmt);
    int n = vsnprintf(a->how + a->how_len, sizeof(a->how) - a->how_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        a->how_len +=
            (size_t)n < sizeof(a->how) - a->how_len ? (size_t)n : sizeof(a->how) - a->how_len - 1;
}

/* Reports an escape at once (a case may go on trying other steps). */
static void escaped(struct attack *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void escaped(struct attack *a, const char *fmt, ...)
{
    va_list ap;
    printf("ESCAPED %s: ", a->name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    a->escaped = true;
}

static void unsupported(struct attack *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void unsupported(struct attack *a, const char *fmt, ...)
{
    va_list ap;
    printf("UNSUPPORTED %s: ", a->name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    a->unsupported = true;
}

static bool errno_in(int err, const int *ok)
{
    for (; *ok; ok++) {
        if (*ok == err)
            return true;
    }
    return false;
}

/* Judges one step that returned rc (errno err): blocked when it failed with
 * one of ok. Returns true when the step succeeded (caller cleans up). */
static bool expect_fail(struct attack *a, const char *what, long rc, int err, const int *ok)
{
    if (rc >= 0) {
        escaped(a, "%s succeeded (returned %ld)", what, rc);
        return true;
    }
    if (errno_in(err, ok))
        note(a, "%s (%s)", what, errname(err));
    else
        escaped(a, "%s failed with unexpected %s", what, errname(err));
    return false;
}

static void rooted(const struct attack *a, char *out, size_t size, const char *path)
{
    snprintf(out, size, "%s%s", a->root, path);
}

/* ---- filesystem ------------------------------------------------------- */

static void try_create(struct attack *a, const char *path, const int *ok)
{
    char what[PATH_MAX + 64];
    snprintf(what, sizeof(what), "open(%s, O_CREAT|O_WRONLY)", path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (expect_fail(a, what, fd, errno, ok)) {
        close(fd);
        unlink(path);
    }
}

/* Opens an existing file for writing (no O_TRUNC, nothing written). */
static void try_open_write(struct attack *a, const char *path, const int *ok)
{
    char what[PATH_MAX + 64];
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        note(a, "%s absent", path);
        return;
    }
    snprintf(what, sizeof(what), "open(%s, O_WRONLY)", path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (expect_fail(a, what, fd, errno, ok))
        close(fd);
}

static void case_write_etc(struct attack *a)
{
    char p[PATH_MAX];
    rooted(a, p, sizeof(p), "/etc/airlock-attack");
    try_create(a, p, ERRS(EROFS, EACCES, EPERM));
    rooted(a, p, sizeof(p), "/etc/passwd");
    try_open_write(a, p, ERRS(EROFS, EACCES, EPERM));
    rooted(a, p, sizeof(p), "/etc/airlock-attack.d");
    int rc = mkdir(p, 0755);
    if (expect_fail(a, "mkdir(/etc/airlock-attack.d)", rc, errno, ERRS(EROFS, EACCES, EPERM)))
        rmdir(p);
}

static void case_write_usr(struct attack *a)
{
    char p[PATH_MAX];
    rooted(a, p, sizeof(p), "/usr/airlock-attack");
    try_create(a, p, ERRS(EROFS, EACCES, EPERM));
    rooted(a, p, sizeof(p), "/usr/bin/env");
    try_open_write(a, p, ERRS(EROFS, EACCES, EPERM, ETXTBSY));
}

static void case_write_home(struct attack *a)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/airlock-attack", a->home);
    try_create(a, p, ERRS(EROFS, EACCES, EPERM));
    snprintf(p, sizeof(p), "%s/.bashrc", a->home);
    try_open_write(a, p, ERRS(EROFS, EACCES, EPERM));
}

static void case_write_outside(struct attack *a)
{
    try_create(a, "../airlock-attack", ERRS(EROFS, EACCES, EPERM));
    const char *outside = param(a, "outside");
    if (outside)
        try_open_write(a, outside, ERRS(EROFS, EACCES, EPERM));
}

static void case_write_proc_root(struct attack *a)
{
    try_create(a, "/proc/1/root/etc/airlock-attack", ERRS(EROFS, EACCES, EPERM));
    try_create(a, "/proc/self/root/usr/airlock-attack", ERRS(EROFS, EACCES, EPERM));
}

/* Reads path; escaped if its content holds the marker (or, with marker
 * NULL, any byte at all). Content is never printed. */
static void try_read_secret(struct attack *a, const char *path, const char *marker)
{
    char buf[8192];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno_in(errno, ERRS(ENOENT, EACCES, EPERM, ENOTDIR)))
            note(a, "open(%s) (%s)", path, errname(errno));
        else
            escaped(a, "open(%s) failed with unexpected %s", path, errname(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int err = errno;
    close(fd);
    if (n < 0) {
        note(a, "read(%s) (%s)", path, errname(err));
        return;
    }
    buf[n] = '\0';
    if (marker ? memmem(buf, (size_t)n, marker, strlen(marker)) != NULL : n > 0)
        escaped(a, "read %zd bytes of secret content from %s", n, path);
    else
        note(a, "%s readable but holds no secret (%zd bytes)", path, n);
}

static void case_read_ssh(struct attack *a)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/.ssh/id_ed25519", a->home);
    try_read_secret(a, p, a->marker);
    snprintf(p, sizeof(p), "%s/.aws/credentials", a->home);
    try_read_secret(a, p, a->marker);
    snprintf(p, sizeof(p), "%s/.ssh", a->home);
    DIR *d = opendir(p);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "id_", 3) != 0)
            continue;
        snprintf(p, sizeof(p), "%s/.ssh/%s", a->home, e->d_name);
        try_read_secret(a, p, a->marker);
    }
    closedir(d);
}

static void case_read_shadow(struct attack *a)
{
    char p[PATH_MAX];
    rooted(a, p, sizeof(p), "/etc/shadow");
    try_read_secret(a, p, NULL);
    rooted(a, p, sizeof(p), "/etc/gshadow");
    try_read_secret(a, p, NULL);
}

static void case_read_host_keys(struct attack *a)
{
    char p[PATH_MAX];
    rooted(a, p, sizeof(p), "/etc/ssh");
    DIR *d = opendir(p);
    if (!d) {
        note(a, "opendir(%s) (%s)", p, errname(errno));
        return;
    }
    struct dirent *e;
    int tried = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 4, "_key") != 0)
            continue;
        snprintf(p, sizeof(p), "%s/etc/ssh/%s", a->root, e->d_name);
        try_read_secret(a, p, NULL);
        tried++;
    }
    closedir(d);
    if (tried == 0)
        note(a, "no /etc/ssh/*_key visible");
}

static void case_symlink_escape(struct attack *a)
{
    char target[PATH_MAX];
    rooted(a, target, sizeof(target), "/etc/airlock-attack-symlink");
    unlink("airlock-attack-link");
    if (symlink(target, "airlock-attack-link") != 0) {
        note(a, "symlink() itself failed (%s)", errname(errno));
    } else {
        int fd = open("airlock-attack-link", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (expect_fail(a, "open(link -> /etc/..., O_CREAT)", fd, errno,
                        ERRS(EROFS, EACCES, EPERM))) {
            close(fd);
            unlink(target);
        }
        unlink("airlock-attack-link");
    }
    rooted(a, target, sizeof(target), "/etc/passwd");
    if (symlink(target, "airlock-attack-link") == 0) {
        int fd = open("airlock-attack-link", O_WRONLY | O_APPEND | O_CLOEXEC);
        if (expect_fail(a, "open(link -> /etc/passwd, O_WRONLY)", fd, errno,
                        ERRS(EROFS, EACCES, EPERM)))
            close(fd);
        unlink("airlock-attack-link");
    }
    snprintf(target, sizeof(target), "%s/.ssh/id_ed25519", a->home);
    if (symlink(target, "airlock-attack-link") == 0) {
        try_read_secret(a, "airlock-attack-link", a->marker);
        unlink("airlock-attack-link");
    }
}

static void case_hardlink_escape(struct attack *a)
{
    const char *outside = param(a, "outside");
    char p[PATH_MAX];
    const int *ok = ERRS(EXDEV, EPERM, EROFS, EACCES);
    if (outside) {
        int rc = link(outside, "airlock-attack-hardlink");
        if (expect_fail(a, "link(outside file, workspace)", rc, errno, ok))
            unlink("airlock-attack-hardlink");
        rc = rename(outside, "airlock-attack-renamed");
        if (expect_fail(a, "rename(outside file, workspace)", rc, errno, ok))
            rename("airlock-attack-renamed", outside);
    }
    rooted(a, p, sizeof(p), "/etc/passwd");
    int rc = link(p, "airlock-attack-hardlink");
    if (expect_fail(a, "link(/etc/passwd, workspace)", rc, errno, ok))
        unlink("airlock-attack-hardlink");
    snprintf(p, sizeof(p), "%s/.ssh/id_ed25519", a->home);
    rc = link(p, "airlock-attack-hardlink");
    if (expect_fail(a, "link(~/.ssh/id_ed25519, workspace)", rc, errno,
                    ERRS(EXDEV, EPERM, EROFS, EACCES, ENOENT)))
        unlink("airlock-attack-hardlink");
    /* Linking an O_PATH fd by AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH. */
    if (outside) {
        int fd = open(outside, O_PATH | O_CLOEXEC);
        if (fd >= 0) {
            rc = linkat(fd, "", AT_FDCWD, "airlock-attack-hardlink", AT_EMPTY_PATH);
            if (expect_fail(a, "linkat(O_PATH fd, AT_EMPTY_PATH)", rc, errno,
                            ERRS(EXDEV, EPERM, EROFS, EACCES, ENOENT)))
                unlink("airlock-attack-hardlink");
            close(fd);
        }
    }
}

/* Writes to the mandatory write-protected files inside the workspace. */
static void case_git_hooks(struct attack *a)
{
    try_create(a, ".git/hooks/pre-commit", ERRS(EROFS, EACCES, EPERM));
    try_create(a, ".git/hooks/airlock-attack", ERRS(EROFS, EACCES, EPERM));
    try_open_write(a, ".git/hooks/pre-commit.sample", ERRS(EROFS, EACCES, EPERM));
    int rc = rename(".git/hooks", ".git/hooks-airlock-attack");
    if (expect_fail(a, "rename(.git/hooks)", rc, errno, ERRS(EBUSY, EROFS, EACCES, EPERM)))
        rename(".git/hooks-airlock-attack", ".git/hooks");
}

static void try_replace(struct attack *a, const char *path)
{
    char tmp[PATH_MAX], what[PATH_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s.airlock-attack", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        note(a, "create %s (%s)", tmp, errname(errno));
    } else {
        close(fd);
        snprintf(what, sizeof(what), "rename(x, %s)", path);
        int rc = rename(tmp, path);
        expect_fail(a, what, rc, errno, ERRS(EBUSY, EROFS, EACCES, EPERM));
        unlink(tmp);
    }
    /* A hard link to the protected inode would let writes through. */
    snprintf(what, sizeof(what), "link(%s, x)", path);
    int rc = link(path, tmp);
    if (expect_fail(a, what, rc, errno, ERRS(EXDEV, EPERM, EROFS, EACCES)))
        unlink(tmp);
    snprintf(what, sizeof(what), "unlink(%s)", path);
    rc = unlink(path);
    expect_fail(a, what, rc, errno, ERRS(EBUSY, EROFS, EACCES, EPERM));
}

static void case_git_config(struct attack *a)
{
    try_open_write(a, ".git/config", ERRS(EROFS, EACCES, EPERM));
    try_replace(a, ".git/config");
}

static void case_bashrc(struct attack *a)
{
    try_open_write(a, ".bashrc", ERRS(EROFS, EACCES, EPERM));
    try_replace(a, ".bashrc");
}

/* Moving .git aside and making a new one would drop the protection mounts
 * that live inside it. */
static void case_git_dir_rename(struct attack *a)
{
    int rc = rename(".git", ".git-airlock-attack");
    if (!expect_fail(a, "rename(.git)", rc, errno, ERRS(EBUSY, EROFS, EACCES, EPERM)))
        return;
    if (mkdir(".git", 0755) == 0 && mkdir(".git/hooks", 0755) == 0) {
        int fd = open(".git/hooks/pre-commit", O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
        if (fd >= 0) {
            escaped(a, "created .git/hooks/pre-commit in a replacement .git");
            close(fd);
        }
    }
}

/* Protected names that did not exist when the sandbox started. */
static void case_protected_new_files(struct attack *a)
{
    static const char *const files[] = {
        ".vscode/tasks.json",
        ".idea/workspace.xml",
        ".mcp.json",
        ".gitmodules",
        ".zshrc",
        ".profile",
        ".bash_profile",
        ".envrc",
        ".claude/commands/airlock-attack.md",
        ".claude/settings.json",
        "sub/.zshrc",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", files[i]);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            char *inner = strchr(dir, '/');
            if (inner) {
                *inner = '\0';
                mkdir(dir, 0755);
                *inner = '/';
            }
            mkdir(dir, 0755);
        }
        try_create(a, files[i], ERRS(EROFS, EACCES, EPERM, ENOENT, ENOTDIR));
    }
}

/* Protected files below the top of the workspace, made by the fixture:
 * sub/.bashrc, nested/repo/.git (a repository two levels down), and a
 * submodule's git dir .git/modules/lib. */
static void case_protected_nested(struct attack *a)
{
    try_open_write(a, "sub/.bashrc", ERRS(EROFS, EACCES, EPERM));
    try_open_write(a, "nested/repo/.git/config", ERRS(EROFS, EACCES, EPERM));
    try_create(a, "nested/repo/.git/hooks/pre-commit", ERRS(EROFS, EACCES, EPERM));
    try_open_write(a, ".git/modules/lib/config", ERRS(EROFS, EACCES, EPERM));
    try_create(a, ".git/modules/lib/hooks/post-checkout", ERRS(EROFS, EACCES, EPERM));
}

static void case_read_cred_stores(struct attack *a)
{
    static const char *const stores[] = {
        ".gnupg/private-keys-v1.d/key.key",
        ".kube/config",
        ".docker/config.json",
        ".netrc",
        ".git-credentials",
        ".config/gh/hosts.yml",
        ".config/gcloud/credentials.db",
        ".azure/accessTokens.json",
        ".npmrc",
        ".pypirc",
    };
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof(stores) / sizeof(stores[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", a->home, stores[i]);
        try_read_secret(a, p, a->marker);
    }
}

static void case_host_dev_shm(struct attack *a)
{
    const char *tag = param(a, "hosttag");
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "/dev/shm/airlock-attack-%s", tag ? tag : "x");
    try_read_secret(a, p, a->marker);
    /* The runner checks that this does not appear on the host. */
    snprintf(p, sizeof(p), "/dev/shm/airlock-attack-%s-from-sandbox", tag ? tag : "x");
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        note(a, "created %s (private /dev/shm, host checked by runner)", p);
        close(fd);
    } else {
        note(a, "create %s (%s)", p, errname(errno));
    }
}

static void case_write_var_tmp(struct attack *a)
{
    char p[PATH_MAX];
    rooted(a, p, sizeof(p), "/var/tmp/airlock-attack");
    try_create(a, p, ERRS(EROFS, EACCES, EPERM, ENOENT));
    rooted(a, p, sizeof(p), "/var/airlock-attack");
    try_create(a, p, ERRS(EROFS, EACCES, EPERM, ENOENT));
}

/* git takes config and hooks from the dir named in $GIT_DIR/commondir:
 * creating .git/commondir (or changing a linked worktree's) points the
 * host's next `git status` at a config the sandbox wrote (core.fsmonitor
 * runs a command). */
static void case_git_commondir(struct attack *a)
{
    try_create(a, ".git/commondir", ERRS(EROFS, EACCES, EPERM));
    try_open_write(a, ".git/worktrees/wt/commondir", ERRS(EROFS, EACCES, EPERM));
    try_create(a, ".git/worktrees/wt/config.worktree", ERRS(EROFS, EACCES, EPERM));
}

/* Renaming a directory that holds a protected repository moves the
 * protection away with it; a fresh one in its place is unprotected. */
static void case_nested_dir_rename(struct attack *a)
{
    int rc = rename("nested", "nested-airlock-attack");
    if (!expect_fail(a, "rename(nested) (holds nested/repo/.git)", rc, errno,
                     ERRS(EBUSY, EROFS, EACCES, EPERM)))
        return;
    if (mkdir("nested", 0755) == 0 && mkdir("nested/repo", 0755) == 0 &&
        mkdir("nested/repo/.git", 0755) == 0 && mkdir("nested/repo/.git/hooks", 0755) == 0) {
        int fd = open("nested/repo/.git/hooks/pre-commit", O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
        if (fd >= 0) {
            escaped(a, "created nested/repo/.git/hooks/pre-commit in a replacement tree");
            close(fd);
        }
    }
}

/* What an earlier run could plant: gf1/.git is a file "gitdir: ~/.kube",
 * gf2/.git "gitdir: <outside-dir>" (set up by the runner for this case).
 * Following them on the host must neither expose a hidden credential
 * (~/.kube/config) nor create anything outside the workspace. */
static void case_gitfile_redirect(struct attack *a)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/.kube/config", a->home);
    try_read_secret(a, p, a->marker);
    snprintf(p, sizeof(p), "%s/.aws/config", a->home);
    try_read_secret(a, p, a->marker);
    const char *outside = param(a, "outsidedir");
    if (!outside) {
        escaped(a, "no outsidedir= given: fixture broken");
        return;
    }
    snprintf(p, sizeof(p), "%s/hooks", outside);
    struct stat st;
    if (lstat(p, &st) == 0)
        escaped(a, "%s exists: the runtime created it outside the workspace", p);
    else
        note(a, "%s absent (%s)", p, errname(errno));
}

/* ---- mounts and namespaces -------------------------------------------- */

/* Targets stay inside the workspace: were the call to go through outside
 * any mount namespace, it would still change nothing of the host's. */
static void case_mount(struct attack *a)
{
    mkdir("airlock-attack-mnt", 0755);
    int rc = mount("none", "airlock-attack-mnt", "tmpfs", 0, "");
    if (expect_fail(a, "mount(tmpfs)", rc, errno, ERRS(EPERM)))
        umount2("airlock-attack-mnt", MNT_DETACH);
    rc = mount("/", "airlock-attack-mnt", NULL, MS_BIND | MS_REC, NULL);
    if (expect_fail(a, "mount(/, MS_BIND)", rc, errno, ERRS(EPERM)))
        umount2("airlock-attack-mnt", MNT_DETACH);
    rmdir("airlock-attack-mnt");
}

static void case_umount2(struct attack *a)
{
    /* The workspace is a mount point inside the sandbox, not on the host. */
    int rc = umount2(".", MNT_DETACH);
    expect_fail(a, "umount2(workspace, MNT_DETACH)", rc, errno, ERRS(EPERM));
    mkdir("airlock-attack-mnt", 0755);
    rc = umount2("airlock-attack-mnt", 0);
    expect_fail(a, "umount2(workspace subdir)", rc, errno, ERRS(EPERM));
    rmdir("airlock-attack-mnt");
}

static void case_pivot_root(struct attack *a)
{
    long rc = syscall(SYS_pivot_root, "/airlock-attack-new", "/airlock-attack-old");
    expect_fail(a, "pivot_root", rc, errno, ERRS(EPERM));
}

static void case_chroot(struct attack *a)
{
    int rc = chroot(".");
    expect_fail(a, "chroot(.)", rc, errno, ERRS(EPERM));
}

static void case_unshare_user(struct attack *a)
{
    int rc = unshare(CLONE_NEWUSER);
    expect_fail(a, "unshare(CLONE_NEWUSER)", rc, errno, ERRS(EPERM));
}

static void case_unshare(struct attack *a)
{
    static const struct {
        int flag;
        const char *name;
    } flags[] = {
        {CLONE_NEWNS, "CLONE_NEWNS"},     {CLONE_NEWNET, "CLONE_NEWNET"},
        {CLONE_NEWPID, "CLONE_NEWPID"},   {CLONE_NEWIPC, "CLONE_NEWIPC"},
        {CLONE_NEWUTS, "CLONE_NEWUTS"},   {CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
        {CLONE_NEWTIME, "CLONE_NEWTIME"}, {CLONE_NEWUSER | CLONE_NEWNS, "NEWUSER|NEWNS"},
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        char what[64];
        snprintf(what, sizeof(what), "unshare(%s)", flags[i].name);
        int rc = unshare(flags[i].flag);
        expect_fail(a, what, rc, errno, ERRS(EPERM));
    }
}

static void case_clone_newuser(struct attack *a)
{
    long rc = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, 0);
    if (rc == 0)
        _exit(0);
    if (expect_fail(a, "clone(CLONE_NEWUSER)", rc, errno, ERRS(EPERM)))
        waitpid((pid_t)rc, NULL, 0);
}

static void case_clone3(struct attack *a)
{
    struct clone_args_v0 args = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
    long rc = syscall(SYS_clone3, &args, sizeof(args));
    if (rc == 0)
        _exit(0);
    if (expect_fail(a, "clone3(CLONE_NEWUSER)", rc, errno, ERRS(ENOSYS)))
        waitpid((pid_t)rc, NULL, 0);
    struct clone_args_v0 plain = {.exit_signal = SIGCHLD};
    rc = syscall(SYS_clone3, &plain, sizeof(plain));
    if (rc == 0)
        _exit(0);
    if (expect_fail(a, "clone3(no flags)", rc, errno, ERRS(ENOSYS)))
        waitpid((pid_t)rc, NULL, 0);
}

static void case_setns(struct attack *a)
{
    static const char *const ns[] = {"user", "mnt", "net", "pid", "ipc", "uts", "cgroup"};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        char path[64], what[64];
        snprintf(path, sizeof(path), "/proc/self/ns/%s", ns[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            note(a, "open(%s) (%s)", path, errname(errno));
            continue;
        }
        snprintf(what, sizeof(what), "setns(%s)", ns[i]);
        int rc = setns(fd, 0);
        expect_fail(a, what, rc, errno, ERRS(EPERM));
        close(fd);
    }
}

static void case_open_tree(struct attack *a)
{
    long rc = syscall(SYS_open_tree, AT_FDCWD, ".", OPEN_TREE_CLONE | O_CLOEXEC);
    if (expect_fail(a, "open_tree(., OPEN_TREE_CLONE)", rc, errno, ERRS(EPERM)))
        close((int)rc);
    rc = syscall(SYS_open_tree, AT_FDCWD, "/", 0);
    if (expect_fail(a, "open_tree(/, 0)", rc, errno, ERRS(EPERM)))
        close((int)rc);
}

static void case_move_mount(struct attack *a)
{
    long rc = syscall(SYS_move_mount, AT_FDCWD, "/etc", AT_FDCWD, "/airlock-attack", 0);
    expect_fail(a, "move_mount(/etc)", rc, errno, ERRS(EPERM));
    rc = syscall(SYS_move_mount, -1, "", -1, "", 0);
    expect_fail(a, "move_mount(-1)", rc, errno, ERRS(EPERM));
}

static void case_fsopen(struct attack *a)
{
    long rc = syscall(SYS_fsopen, "tmpfs", 1 /* FSOPEN_CLOEXEC */);
    if (expect_fail(a, "fsopen(tmpfs)", rc, errno, ERRS(EPERM)))
        close((int)rc);
    rc = syscall(SYS_fspick, AT_FDCWD, "/etc", 1 /* FSPICK_CLOEXEC */);
    if (expect_fail(a, "fspick(/etc)", rc, errno, ERRS(EPERM)))
        close((int)rc);
    rc = syscall(SYS_fsconfig, -1, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0);
    expect_fail(a, "fsconfig(-1)", rc, errno, ERRS(EPERM));
    rc = syscall(SYS_fsmount, -1, 0, 0);
    expect_fail(a, "fsmount(-1)", rc, errno, ERRS(EPERM));
}

static void case_mount_setattr(struct attack *a)
{
    struct attack_mount_attr attr = {.attr_clr = ATTACK_MOUNT_ATTR_RDONLY};
    long rc = syscall(SYS_mount_setattr, AT_FDCWD, "/etc", 0, &attr, sizeof(attr));
    expect_fail(a, "mount_setattr(/etc, clear RDONLY)", rc, errno, ERRS(EPERM));
}

static void case_open_by_handle_at(struct attack *a)
{
    char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
    struct file_handle *fh = (struct file_handle *)buf;
    int mount_id;
    fh->handle_bytes = MAX_HANDLE_SZ;
    int rc = name_to_handle_at(AT_FDCWD, ".", fh, &mount_id, 0);
    if (rc != 0) {
        note(a, "name_to_handle_at (%s)", errname(errno));
        /* Forge one (the "shocker" way): ext4 root inode, generation 0. */
        uint32_t ino_gen[2] = {2, 0};
        fh->handle_bytes = sizeof(ino_gen);
        fh->handle_type = 1; /* FILEID_INO32_GEN */
        memcpy(fh->f_handle, ino_gen, sizeof(ino_gen));
    }
    int mfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fd = open_by_handle_at(mfd, fh, O_RDONLY | O_CLOEXEC);
    if (expect_fail(a, "open_by_handle_at", fd, errno, ERRS(EPERM)))
        close(fd);
    close(mfd);
}

/* ---- process isolation ------------------------------------------------- */

static pid_t spawn_sleeper(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    return pid;
}

static void reap(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

static void case_ptrace(struct attack *a)
{
    pid_t child = spawn_sleeper();
    long rc = ptrace(PTRACE_ATTACH, child, NULL, NULL);
    expect_fail(a, "ptrace(PTRACE_ATTACH, child)", rc, errno, ERRS(EPERM));
    rc = ptrace(PTRACE_SEIZE, child, NULL, NULL);
    expect_fail(a, "ptrace(PTRACE_SEIZE, child)", rc, errno, ERRS(EPERM));
    reap(child);
    pid_t pid = fork();
    if (pid == 0) {
        long r = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        _exit(r == 0 ? 100 : errno == EPERM ? 0 : 101);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        note(a, "ptrace(PTRACE_TRACEME) (EPERM)");
    else
        escaped(a, "ptrace(PTRACE_TRACEME) %s",
                WIFEXITED(st) && WEXITSTATUS(st) == 100 ? "succeeded" : "failed oddly");
}

static void case_process_vm(struct attack *a)
{
    static volatile char secret[16] = "airlock-secret";
    pid_t child = spawn_sleeper();
    char buf[16];
    struct iovec local = {buf, sizeof(buf)};
    struct iovec remote = {(void *)secret, sizeof(buf)};
    ssize_t rc = process_vm_readv(child, &local, 1, &remote, 1, 0);
    expect_fail(a, "process_vm_readv(child)", rc, errno, ERRS(EPERM));
    rc = process_vm_writev(child, &local, 1, &remote, 1, 0);
    expect_fail(a, "process_vm_writev(child)", rc, errno, ERRS(EPERM));
    reap(child);
}

/* Result of one ioctl made by a child that owns a pty as controlling tty. */
struct ioctl_result {
    long rc;
    int err;
};

static int ioctl_on_ctty(unsigned long request, void *arg, struct ioctl_result *out)
{
    int p[2];
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
        return -errno;
    char name[64];
    if (ptsname_r(master, name, sizeof(name)) != 0 || pipe2(p, O_CLOEXEC) != 0) {
        close(master);
        return -errno;
    }
    pid_t pid = fork();
    if (pid == 0) {
        struct ioctl_result r = {-1, 0};
        setsid();
        int slave = open(name, O_RDWR);
        if (slave >= 0)
            ioctl(slave, TIOCSCTTY, 0);
        r.rc = syscall(SYS_ioctl, slave, request, arg);
        r.err = errno;
        if (write(p[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    ssize_t n = read(p[0], out, sizeof(*out));
    close(p[0]);
    waitpid(pid, NULL, 0);
    close(master);
    return n == (ssize_t)sizeof(*out) ? 0 : -EIO;
}

static void try_tty_ioctl(struct attack *a, const char *what, unsigned long request, void *arg)
{
    struct ioctl_result r;
    int rc = ioctl_on_ctty(request, arg, &r);
    if (rc < 0) {
        escaped(a, "could not set up a pty to try %s (%s)", what, errname(-rc));
        return;
    }
    expect_fail(a, what, r.rc, r.err, ERRS(EPERM));
}

static void case_tiocsti(struct attack *a)
{
    char c = 'x';
    try_tty_ioctl(a, "ioctl(ctty, TIOCSTI)", TIOCSTI, &c);
}

static void case_tiocsti_highbits(struct attack *a)
{
    char c = 'x';
    try_tty_ioctl(a, "ioctl(ctty, 0xdeadbeef00005412)", 0xdeadbeef00000000UL | TIOCSTI, &c);
}

static void case_tioclinux(struct attack *a)
{
    char sub = TIOCL_GETFGCONSOLE;
    try_tty_ioctl(a, "ioctl(ctty, TIOCLINUX)", TIOCLINUX, &sub);
    sub = TIOCL_GETFGCONSOLE;
    try_tty_ioctl(a, "ioctl(ctty, 0xffffffff0000541c)", 0xffffffff00000000UL | TIOCLINUX, &sub);
}

/* Reads "Name:\tvalue" from /proc/<pid>/status into out. */
static int status_field(const char *file, const char *name, char *out, size_t size)
{
    FILE *f = fopen(file, "re");
    char line[256];
    size_t nlen = strlen(name);
    int rc = -ENOENT;
    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, name, nlen) == 0 && line[nlen] == ':') {
            char *v = line + nlen + 1;
            v += strspn(v, " \t");
            v[strcspn(v, "\n")] = '\0';
            snprintf(out, size, "%s", v);
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

static void case_caps(struct attack *a)
{
    static const char *const sets[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
    char v[64];
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        if (status_field("/proc/self/status", sets[i], v, sizeof(v)) != 0)
            escaped(a, "no %s in /proc/self/status", sets[i]);
        else if (strspn(v, "0") != strlen(v))
            escaped(a, "%s is %s", sets[i], v);
        else
            note(a, "%s 0", sets[i]);
    }
    if (status_field("/proc/self/status", "NoNewPrivs", v, sizeof(v)) != 0 || strcmp(v, "1") != 0)
        escaped(a, "NoNewPrivs is %s", v);
    else
        note(a, "NoNewPrivs 1");
}

static void case_seccomp_on(struct attack *a)
{
    char v[64];
    if (status_field("/proc/self/status", "Seccomp", v, sizeof(v)) != 0 || strcmp(v, "2") != 0)
        escaped(a, "Seccomp mode is %s, want 2 (filter)", v);
    else
        note(a, "Seccomp 2");
}

/* Run by the setuid copy: says what exec gave it. */
static int suid_report(void)
{
    char eff[64] = "?", prm[64] = "?";
    status_field("/proc/self/status", "CapEff", eff, sizeof(eff));
    status_field("/proc/self/status", "CapPrm", prm, sizeof(prm));
    printf("uid=%u euid=%u gid=%u egid=%u CapEff=%s CapPrm=%s\n", getuid(), geteuid(), getgid(),
           getegid(), eff, prm);
    bool gained = getuid() != geteuid() || getgid() != getegid() ||
                  strspn(eff, "0") != strlen(eff) || strspn(prm, "0") != strlen(prm);
    return gained ? 1 : 0;
}

static void case_setuid(struct attack *a)
{
    const char *suid = param(a, "suid");
    struct stat st;
    if (!suid || stat(suid, &st) != 0) {
        escaped(a, "setuid binary %s not visible (%s): fixture broken", suid ? suid : "(none)",
                errname(errno));
        return;
    }
    if (!(st.st_mode & S_ISUID)) {
        escaped(a, "%s has no setuid bit: fixture broken", suid);
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl(suid, "attack", "suid-report", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        note(a, "exec of setuid-root (uid %u) binary gained no id or capability", st.st_uid);
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
        escaped(a, "exec of setuid binary %s gained privileges (see line above)", suid);
    else
        escaped(a, "exec of setuid binary failed oddly (status 0x%x)", status);
}

/* True when /proc/<pid>/cmdline holds the marker. */
static bool cmdline_has(const char *pid, const char *marker)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    return n > 0 && memmem(buf, (size_t)n, marker, strlen(marker)) != NULL;
}

static void case_host_pid(struct attack *a)
{
    const char *hostpid = param(a, "hostpid");
    if (!hostpid) {
        escaped(a, "no hostpid= given: fixture broken");
        return;
    }
    pid_t pid = (pid_t)strtol(hostpid, NULL, 10);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d", pid);
    struct stat st;
    /* The fixture's argv holds "fixture-tag-<hosttag>"; the tag is built
     * here so that no sandbox process carries the full string. */
    char tag[128];
    const char *hosttag = param(a, "hosttag");
    snprintf(tag, sizeof(tag), "fixture-tag-%s", hosttag ? hosttag : a->marker);
    if (stat(path, &st) == 0 && cmdline_has(hostpid, tag))
        escaped(a, "host process %d visible in /proc", pid);
    else
        note(a, "/proc/%d is not the host process", pid);
    DIR *d = opendir("/proc");
    struct dirent *e;
    int scanned = 0;
    while (d && (e = readdir(d)) && scanned < PROC_SCAN_MAX) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        scanned++;
        if (cmdline_has(e->d_name, tag))
            escaped(a, "host fixture visible as /proc/%s", e->d_name);
    }
    if (d)
        closedir(d);
    note(a, "%d pids in /proc", scanned);
    int rc = kill(pid, 0);
    /* SIGTERM only when the probe says it cannot arrive: stay harmless. */
    if (!expect_fail(a, "kill(host pid, 0)", rc, errno, ERRS(ESRCH))) {
        rc = kill(pid, SIGTERM);
        expect_fail(a, "kill(host pid, SIGTERM)", rc, errno, ERRS(ESRCH));
    }
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (expect_fail(a, "pidfd_open(host pid)", fd, errno, ERRS(ESRCH)))
        close((int)fd);
}

/* Every other process of the sandbox (pid 1 above all) must be out of
 * reach: its memory, its fds and its root could carry what the sandbox
 * took away. Processes this case forks are excluded. */
static void case_proc_other_pids(struct attack *a)
{
    struct stat self_root;
    if (stat("/", &self_root) != 0) {
        escaped(a, "stat(/) failed (%s)", errname(errno));
        return;
    }
    DIR *d = opendir("/proc");
    struct dirent *e;
    int others = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        long pid = strtol(e->d_name, NULL, 10);
        if (pid == getpid())
            continue;
        others++;
        char p[PATH_MAX], what[PATH_MAX + 32];
        snprintf(p, sizeof(p), "/proc/%ld/mem", pid);
        snprintf(what, sizeof(what), "open(%s, O_RDWR)", p);
        int fd = open(p, O_RDWR | O_CLOEXEC);
        if (expect_fail(a, what, fd, errno, ERRS(EACCES, EPERM, ENOENT, ESRCH)))
            close(fd);
        snprintf(p, sizeof(p), "/proc/%ld/root/", pid);
        struct stat st;
        if (stat(p, &st) == 0) {
            if (st.st_dev != self_root.st_dev || st.st_ino != self_root.st_ino)
                escaped(a, "%s is a different root than the sandbox's", p);
            else
                note(a, "%s is the sandbox root", p);
        } else {
            note(a, "stat(%s) (%s)", p, errname(errno));
        }
        snprintf(p, sizeof(p), "/proc/%ld/fd", pid);
        DIR *fds = opendir(p);
        if (!fds) {
            note(a, "opendir(%s) (%s)", p, errname(errno));
            continue;
        }
        struct dirent *f;
        while ((f = readdir(fds))) {
            if (f->d_name[0] == '.')
                continue;
            char fp[PATH_MAX + 300];
            snprintf(fp, sizeof(fp), "%s/%s", p, f->d_name);
            /* O_PATH: the same access check, without opening a device. */
            int ffd = open(fp, O_PATH | O_CLOEXEC);
            if (ffd >= 0) {
                char target[PATH_MAX] = "";
                ssize_t n = readlink(fp, target, sizeof(target) - 1);
                if (n > 0)
                    target[n] = '\0';
                escaped(a, "opened %s -> %s", fp, target);
                close(ffd);
            }
        }
        closedir(fds);
    }
    if (d)
        closedir(d);
    note(a, "%d other processes", others);
}

static void case_fd_leak(struct attack *a)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        escaped(a, "opendir(/proc/self/fd) failed (%s)", errname(errno));
        return;
    }
    int self = dirfd(d), extra = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int fd = (int)strtol(e->d_name, NULL, 10);
        if (fd <= 2 || fd == self)
            continue;
        char link[64], target[PATH_MAX] = "";
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n > 0)
            target[n] = '\0';
        escaped(a, "inherited fd %d -> %s", fd, target);
        extra++;
    }
    closedir(d);
    if (extra == 0)
        note(a, "only fds 0, 1, 2 inherited");
}

static void case_env_secrets(struct attack *a)
{
    static const char *const names[] = {"GITHUB_TOKEN",      "AWS_SECRET_ACCESS_KEY",
                                        "AWS_ACCESS_KEY_ID", "LD_PRELOAD",
                                        "ANTHROPIC_API_KEY", "SSH_AUTH_SOCK"};
    extern char **environ;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (getenv(names[i]))
            escaped(a, "%s is set in the environment", names[i]);
    }
    for (char **e = environ; *e; e++) {
        if (strstr(*e, a->marker)) {
            escaped(a, "environment holds the secret marker in %.*s", (int)strcspn(*e, "="), *e);
        }
    }
    DIR *d = opendir("/proc");
    struct dirent *e;
    int scanned = 0;
    while (d && (e = readdir(d)) && scanned < PROC_SCAN_MAX) {
        char path[300], buf[65536];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        scanned++;
        snprintf(path, sizeof(path), "/proc/%s/environ", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        close(fd);
        if (n > 0 && memmem(buf, (size_t)n, a->marker, strlen(a->marker)))
            escaped(a, "/proc/%s/environ holds the secret marker", e->d_name);
    }
    if (d)
        closedir(d);
    note(a, "no secret in environ or in %d /proc/*/environ", scanned);
}

/* Core dumps go to core_pattern, often a pipe to a host helper run as root. */
static void case_core_dump(struct attack *a)
{
    struct rlimit rl;
    getrlimit(RLIMIT_CORE, &rl);
    if (rl.rlim_max != 0) {
        escaped(a, "RLIMIT_CORE hard limit is %llu", (unsigned long long)rl.rlim_max);
        return;
    }
    note(a, "RLIMIT_CORE hard limit 0");
    struct rlimit up = {RLIM_INFINITY, RLIM_INFINITY};
    int rc = setrlimit(RLIMIT_CORE, &up);
    expect_fail(a, "setrlimit(RLIMIT_CORE, unlimited)", rc, errno, ERRS(EPERM));
}

/* The caller's terminal: run by the runner on a pty of its own, so fd 0 is
 * the caller's tty. The sandbox must not share its session. */
static void case_caller_tty(struct attack *a)
{
    if (!isatty(0)) {
        escaped(a, "stdin is not a tty: runner broken");
        return;
    }
    /* airlock on a terminal gives the command a terminal of the sandbox's
     * own, from its private devpts: no descriptor of the caller's terminal
     * (TIOCSTI, mode or size changes there would reach the user's shell),
     * and /dev/tty is that own terminal. */
    struct stat own;
    if (stat("/dev/pts/ptmx", &own) < 0) {
        escaped(a, "no /dev/pts/ptmx: runner broken (%s)", errname(errno));
        return;
    }
    int fds[4] = {0, 1, 2, open("/dev/tty", O_RDWR | O_CLOEXEC)};
    if (fds[3] < 0)
        note(a, "open(/dev/tty): %s", errname(errno));
    for (int i = 0; i < 4; i++) {
        struct stat st;
        if (fds[i] < 0 || !isatty(fds[i]) || fstat(fds[i], &st) < 0)
            continue;
        /* /dev/tty's inode is the host's /dev/tty: what it reaches is the
         * controlling terminal of our own session, never the caller's. */
        if (i < 3 && st.st_dev != own.st_dev)
            escaped(a, "std descriptor %d is a terminal from outside the sandbox (the caller's)",
                    i);
        if (i == 3 && tcgetsid(fds[i]) != getsid(0))
            escaped(a, "/dev/tty is the terminal of another session");
        char c = 'x';
        long rc = syscall(SYS_ioctl, fds[i], (unsigned long)TIOCSTI, &c);
        expect_fail(a, "ioctl(TIOCSTI)", rc, errno, ERRS(EPERM));
        rc = syscall(SYS_ioctl, fds[i], 0xdeadbeef00000000UL | TIOCSTI, &c);
        expect_fail(a, "ioctl(0xdeadbeef00005412)", rc, errno, ERRS(EPERM));
    }
    if (fds[3] >= 0)
        close(fds[3]);
}

/* ---- kernel surface ---------------------------------------------------- */

/* Runs fn in a child; reports how the child ended: exit code, or 128+signal. */
static int in_child(void (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static void int80_getpid(void)
{
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    _exit(ret > 0 ? 0 : 3);
}

static void case_i386_int80(struct attack *a)
{
    int st = in_child(int80_getpid);
    if (st == 128 + SIGSYS)
        note(a, "i386 getpid via int 0x80 killed the process (SIGSYS)");
    else if (st == 128 + SIGSEGV)
        unsupported(a, "int 0x80 raised SIGSEGV: kernel has no IA32 emulation");
    else if (st == 0)
        escaped(a, "i386 getpid via int 0x80 ran");
    else
        escaped(a, "i386 int 0x80 child ended with status %d", st);
}

static void x32_getpid(void)
{
    long r = syscall(X32_SYSCALL_BIT | SYS_getpid);
    _exit(r > 0 ? 0 : errno == ENOSYS ? 4 : errno == EPERM ? 5 : 3);
}

static void case_x32(struct attack *a)
{
    int st = in_child(x32_getpid);
    if (st == 128 + SIGSYS)
        note(a, "x32 getpid killed the process (SIGSYS)");
    else if (st == 4 || st == 5)
        note(a, "x32 getpid (%s)", st == 4 ? "ENOSYS" : "EPERM");
    else if (st == 0)
        escaped(a, "x32 getpid ran");
    else
        escaped(a, "x32 getpid child ended with status %d", st);
}

/* Calls that need a capability the sandbox must not have; each is harmless
 * if it went through (own priority, own OOM score, the clock set to now). */
static void case_privileged_misc(struct attack *a)
{
    int rc = setpriority(PRIO_PROCESS, 0, -20);
    if (expect_fail(a, "setpriority(-20)", rc, errno, ERRS(EACCES, EPERM)))
        setpriority(PRIO_PROCESS, 0, 0);
    struct sched_param sp = {.sched_priority = 1};
    rc = sched_setscheduler(0, SCHED_FIFO, &sp);
    if (expect_fail(a, "sched_setscheduler(SCHED_FIFO)", rc, errno, ERRS(EPERM))) {
        sp.sched_priority = 0;
        sched_setscheduler(0, SCHED_OTHER, &sp);
    }
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = write(fd, "-1000", 5);
        expect_fail(a, "write(oom_score_adj, -1000)", n, errno, ERRS(EACCES, EPERM));
        close(fd);
    } else {
        note(a, "open(oom_score_adj) (%s)", errname(errno));
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    rc = clock_settime(CLOCK_REALTIME, &now);
    expect_fail(a, "clock_settime(now)", rc, errno, ERRS(EPERM));
    long r = syscall(SYS_swapoff, "/airlock-attack-none");
    expect_fail(a, "swapoff", r, errno, ERRS(EPERM));
    char buf[64];
    r = syscall(SYS_syslog, 3 /* SYSLOG_ACTION_READ_ALL */, buf, (int)sizeof(buf));
    expect_fail(a, "syslog(READ_ALL)", r, errno, ERRS(EPERM));
}

static void case_bpf(struct attack *a)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    long rc = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
    if (expect_fail(a, "bpf(BPF_MAP_CREATE)", rc, errno, ERRS(EPERM)))
        close((int)rc);
}

static void case_perf_event_open(struct attack *a)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof(attr);
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.disabled = 1;
    long rc = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    if (expect_fail(a, "perf_event_open(self, sw clock)", rc, errno, ERRS(EPERM)))
        close((int)rc);
}

static void case_keyctl(struct attack *a)
{
    long rc = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    expect_fail(a, "keyctl(KEYCTL_GET_KEYRING_ID)", rc, errno, ERRS(EPERM));
    rc = syscall(SYS_add_key, "user", "airlock-attack", "x", 1, KEY_SPEC_PROCESS_KEYRING);
    expect_fail(a, "add_key(user)", rc, errno, ERRS(EPERM));
    rc = syscall(SYS_request_key, "user", "airlock-attack-none", NULL, 0);
    expect_fail(a, "request_key(user)", rc, errno, ERRS(EPERM));
}

static void case_kexec_load(struct attack *a)
{
    /* A bogus architecture makes a permitted call fail with EINVAL. */
    long rc = syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0x7fff0000UL);
    expect_fail(a, "kexec_load", rc, errno, ERRS(EPERM));
    rc = syscall(SYS_kexec_file_load, -1, -1, 0UL, NULL, 0UL);
    expect_fail(a, "kexec_file_load", rc, errno, ERRS(EPERM));
}

static void case_io_uring(struct attack *a)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    long rc = syscall(SYS_io_uring_setup, 1, &p);
    if (expect_fail(a, "io_uring_setup", rc, errno, ERRS(EPERM)))
        close((int)rc);
    rc = syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
    expect_fail(a, "io_uring_enter", rc, errno, ERRS(EPERM));
    rc = syscall(SYS_io_uring_register, -1, 0, NULL, 0);
    expect_fail(a, "io_uring_register", rc, errno, ERRS(EPERM));
}

static void case_userfaultfd(struct attack *a)
{
    long rc = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    if (expect_fail(a, "userfaultfd(UFFD_USER_MODE_ONLY)", rc, errno, ERRS(EPERM)))
        close((int)rc);
}

static void case_modules(struct attack *a)
{
    long rc = syscall(SYS_init_module, NULL, 0UL, "");
    expect_fail(a, "init_module", rc, errno, ERRS(EPERM));
    rc = syscall(SYS_finit_module, -1, "", 0);
    expect_fail(a, "finit_module", rc, errno, ERRS(EPERM));
    rc = syscall(SYS_delete_module, "airlock_attack_none", O_NONBLOCK);
    expect_fail(a, "delete_module", rc, errno, ERRS(EPERM));
}

static void case_ioperm(struct attack *a)
{
    long rc = syscall(SYS_ioperm, 0x80UL, 1UL, 1);
    expect_fail(a, "ioperm(0x80)", rc, errno, ERRS(EPERM));
    rc = syscall(SYS_iopl, 3);
    expect_fail(a, "iopl(3)", rc, errno, ERRS(EPERM));
}

static void case_reboot(struct attack *a)
{
    /* Bad magic: a permitted caller gets EINVAL, after the capability check. */
    long rc = syscall(SYS_reboot, 0, 0, 0, NULL);
    expect_fail(a, "reboot(bad magic)", rc, errno, ERRS(EPERM));
}

static void case_socket_vsock(struct attack *a)
{
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (expect_fail(a, "socket(AF_VSOCK, SOCK_STREAM)", fd, errno, ERRS(EAFNOSUPPORT, EPERM)))
        close(fd);
    fd = socket(AF_VSOCK, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (expect_fail(a, "socket(AF_VSOCK, SOCK_DGRAM)", fd, errno,
                    ERRS(EAFNOSUPPORT, EPERM, ESOCKTNOSUPPORT)))
        close(fd);
}

static void case_socket_packet(struct attack *a)
{
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (expect_fail(a, "socket(AF_PACKET, SOCK_RAW)", fd, errno, ERRS(EAFNOSUPPORT, EPERM)))
        close(fd);
    fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (expect_fail(a, "socket(AF_PACKET, SOCK_DGRAM)", fd, errno, ERRS(EAFNOSUPPORT, EPERM)))
        close(fd);
}

/* ---- /proc, /sys, /dev -------------------------------------------------- */

/* True when fd is a real procfs/sysfs/cgroupfs file rather than a mask. */
static bool is_kernel_file(int fd)
{
    struct statfs sf;
    struct stat st;
    if (fstatfs(fd, &sf) != 0 || fstat(fd, &st) != 0)
        return true;
    if (!S_ISREG(st.st_mode))
        return false;
    return sf.f_type == PROC_SUPER_MAGIC || sf.f_type == SYSFS_MAGIC ||
           sf.f_type == CGROUP_SUPER_MAGIC || sf.f_type == CGROUP2_SUPER_MAGIC;
}

/* Opens a kernel knob for writing; never writes. */
static void try_knob(struct attack *a, const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno_in(errno, ERRS(EROFS, EACCES, EPERM, ENOENT)))
            note(a, "open(%s, O_WRONLY) (%s)", path, errname(errno));
        else
            escaped(a, "open(%s, O_WRONLY) failed with unexpected %s", path, errname(errno));
        return;
    }
    if (is_kernel_file(fd))
        escaped(a, "opened %s for writing", path);
    else
        note(a, "%s is masked", path);
    close(fd);
}

static void case_proc_sys(struct attack *a)
{
    static const char *const knobs[] = {
        "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe",
        "/proc/sys/vm/drop_caches",      "/proc/sys/kernel/sysrq",
        "/proc/sys/kernel/hostname",     "/proc/sys/fs/binfmt_misc/register",
        "/proc/sys/net/ipv4/ip_forward",
    };
    for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++)
        try_knob(a, knobs[i]);
    if (access("/proc/sys/kernel/core_pattern", F_OK) != 0)
        escaped(a, "/proc/sys/kernel/core_pattern not visible: is /proc mounted?");
}

static void case_proc_sysrq(struct attack *a)
{
    try_knob(a, "/proc/sysrq-trigger");
}

static void case_proc_kcore(struct attack *a)
{
    char c;
    int fd = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno_in(errno, ERRS(EPERM, EACCES, ENOENT)))
            note(a, "open(/proc/kcore) (%s)", errname(errno));
        else
            escaped(a, "open(/proc/kcore) failed with unexpected %s", errname(errno));
        return;
    }
    ssize_t n = read(fd, &c, 1);
    if (n > 0)
        escaped(a, "read /proc/kcore");
    else
        note(a, "/proc/kcore opened but read gave %zd (%s)", n, n < 0 ? errname(errno) : "EOF");
    close(fd);
}

/* Collects writable-looking cgroup control files under dir, depth-limited. */
static void cgroup_walk(struct attack *a, const char *dir, int depth, int *tried)
{
    static const char *const files[] = {
        "cgroup.procs", "release_agent", "notify_on_release",     "memory.limit_in_bytes",
        "memory.max",   "pids.max",      "cgroup.subtree_control"};
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && *tried < 400; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        if (access(p, F_OK) == 0) {
            try_knob(a, p);
            (*tried)++;
        }
    }
    if (depth == 0)
        return;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && *tried < 400) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        cgroup_walk(a, p, depth - 1, tried);
    }
    if (d)
        closedir(d);
}

static void case_cgroup_write(struct attack *a)
{
    int tried = 0;
    cgroup_walk(a, "/sys/fs/cgroup", 4, &tried);
    try_knob(a, "/sys/kernel/uevent_helper");
    note(a, "%d cgroup control files tried", tried);
}

static void case_dev_nodes(struct attack *a)
{
    static const char *const allowed[] = {"null",  "zero",   "full",  "random", "urandom",
                                          "tty",   "pts",    "ptmx",  "shm",    "fd",
                                          "stdin", "stdout", "stderr"};
    DIR *d = opendir("/dev");
    if (!d) {
        escaped(a, "opendir(/dev) failed (%s)", errname(errno));
        return;
    }
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        bool ok = false;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
            ok = ok || strcmp(e->d_name, allowed[i]) == 0;
        if (!ok)
            escaped(a, "unexpected /dev/%s", e->d_name);
        n++;
    }
    closedir(d);
    note(a, "/dev holds %d expected entries", n);
}

static void case_mknod(struct attack *a)
{
    static const struct {
        const char *path;
        mode_t mode;
        dev_t dev;
    } nodes[] = {
        {"airlock-attack-chr", S_IFCHR | 0600, 0},
        {"airlock-attack-blk", S_IFBLK | 0600, 0},
        {"/tmp/airlock-attack-chr", S_IFCHR | 0600, 0},
        {"/dev/shm/airlock-attack-chr", S_IFCHR | 0600, 0},
    };
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
        char what[PATH_MAX + 64];
        dev_t dev = S_ISCHR(nodes[i].mode) ? makedev(1, 7) : makedev(7, 0);
        snprintf(what, sizeof(what), "mknod(%s, %s)", nodes[i].path,
                 S_ISCHR(nodes[i].mode) ? "char 1:7" : "block 7:0");
        int rc = mknod(nodes[i].path, nodes[i].mode, dev);
        if (expect_fail(a, what, rc, errno, ERRS(EPERM, EACCES, EROFS)))
            unlink(nodes[i].path);
    }
}

/* ---- IPC, UTS ------------------------------------------------------------ */

static void case_sysv_ipc(struct attack *a)
{
    const char *k = param(a, "ipckey");
    if (!k) {
        escaped(a, "no ipckey= given: fixture broken");
        return;
    }
    key_t key = (key_t)strtol(k, NULL, 0);
    int rc = shmget(key, 0, 0);
    expect_fail(a, "shmget(host key)", rc, errno, ERRS(ENOENT));
    rc = msgget(key, 0);
    expect_fail(a, "msgget(host key)", rc, errno, ERRS(ENOENT));
    rc = semget(key, 0, 0);
    expect_fail(a, "semget(host key)", rc, errno, ERRS(ENOENT));
}

static void case_hostname(struct attack *a)
{
    static const char name[] = "airlock-attack";
    int rc = sethostname(name, sizeof(name) - 1);
    if (rc == 0)
        note(a, "sethostname changed the sandbox's own UTS namespace (runner checks host)");
    else if (errno == EPERM)
        note(a, "sethostname (EPERM)");
    else
        escaped(a, "sethostname failed with unexpected %s", errname(errno));
    rc = setdomainname(name, sizeof(name) - 1);
    if (rc != 0 && errno != EPERM)
        escaped(a, "setdomainname failed with unexpected %s", errname(errno));
}

/* ---- sockets and network ------------------------------------------------- */

static void try_unix_connect(struct attack *a, const char *what, const char *path, bool abstract)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len + 2 > sizeof(sun.sun_path)) {
        escaped(a, "socket path too long: fixture broken");
        return;
    }
    memcpy(sun.sun_path + (abstract ? 1 : 0), path, len);
    socklen_t slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (abstract ? 1 : 0));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        note(a, "socket(AF_UNIX) (%s)", errname(errno));
        return;
    }
    int rc = connect(fd, (struct sockaddr *)&sun, slen);
    expect_fail(a, what, rc, errno, ERRS(ECONNREFUSED, ENOENT, EACCES, EPERM));
    close(fd);
}

static void case_host_abstract_socket(struct attack *a)
{
    const char *name = param(a, "abstract");
    if (!name) {
        escaped(a, "no abstract= given: fixture broken");
        return;
    }
    try_unix_connect(a, "connect(host abstract socket)", name, true);
}

static void case_host_run_socket(struct attack *a)
{
    const char *path = param(a, "runsock");
    if (!path) {
        escaped(a, "no runsock= given: fixture broken");
        return;
    }
    try_unix_connect(a, "connect(host socket under /run)", path, false);
    if (access("/run/dbus/system_bus_socket", F_OK) == 0)
        try_unix_connect(a, "connect(/run/dbus/system_bus_socket)", "/run/dbus/system_bus_socket",
                         false);
}

static void case_host_ro_socket(struct attack *a)
{
    const char *path = param(a, "rosock");
    if (!path) {
        escaped(a, "no rosock= given: fixture broken");
        return;
    }
    try_unix_connect(a, "connect(host socket in a read-only bound dir)", path, false);
}

static int connect_nonblock(int family, const void *addr, socklen_t len, int *err)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    int rc = connect(fd, addr, len);
    *err = errno;
    close(fd);
    /* EINPROGRESS: a route exists and a SYN left; that is an escape. */
    return rc == 0 || *err == EINPROGRESS ? 0 : -1;
}

static void case_net_connect(struct attack *a)
{
    int err;
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(80)};
    inet_pton(AF_INET, "1.1.1.1", &in4.sin_addr);
    int rc = connect_nonblock(AF_INET, &in4, sizeof(in4), &err);
    expect_fail(a, "connect(1.1.1.1:80)", rc, err, ERRS(ENETUNREACH, EPERM, EACCES));
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(80)};
    inet_pton(AF_INET6, "2606:4700:4700::1111", &in6.sin6_addr);
    rc = connect_nonblock(AF_INET6, &in6, sizeof(in6), &err);
    expect_fail(a, "connect([2606:4700:4700::1111]:80)", rc, err,
                ERRS(ENETUNREACH, EPERM, EACCES, EAFNOSUPPORT, EADDRNOTAVAIL));
}

static void case_host_loopback(struct attack *a)
{
    const char *port = param(a, "tcpport");
    if (!port) {
        escaped(a, "no tcpport= given: fixture broken");
        return;
    }
    struct sockaddr_in in4 = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)strtol(port, NULL, 10))};
    inet_pton(AF_INET, "127.0.0.1", &in4.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        note(a, "socket(AF_INET) (%s)", errname(errno));
        return;
    }
    int rc = connect(fd, (struct sockaddr *)&in4, sizeof(in4));
    expect_fail(a, "connect(host listener on 127.0.0.1)", rc, errno,
                ERRS(ECONNREFUSED, ENETUNREACH, EPERM, EACCES));
    close(fd);
}

static void case_dns(struct attack *a)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo("airlock-attack.example.com", "80", &hints, &res);
    if (rc == 0) {
        escaped(a, "getaddrinfo(airlock-attack.example.com) resolved");
        freeaddrinfo(res);
    } else {
        note(a, "getaddrinfo: %s", gai_strerror(rc));
    }
    /* A bare UDP datagram to a public resolver must have no route. */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        note(a, "socket(AF_INET, SOCK_DGRAM) (%s)", errname(errno));
        return;
    }
    struct sockaddr_in ns = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, "8.8.8.8", &ns.sin_addr);
    static const unsigned char query[12] = {0x12, 0x34, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    ssize_t n = sendto(fd, query, sizeof(query), 0, (struct sockaddr *)&ns, sizeof(ns));
    expect_fail(a, "sendto(8.8.8.8:53)", n, errno, ERRS(ENETUNREACH, EPERM, EACCES));
    close(fd);
}

static void case_ping(struct attack *a)
{
    static const unsigned char echo[8] = {8, 0, 0xf7, 0xff, 0, 0, 0, 0};
    struct sockaddr_in dst = {.sin_family = AF_INET};
    inet_pton(AF_INET, "1.1.1.1", &dst.sin_addr);
    static const int types[] = {SOCK_DGRAM, SOCK_RAW};
    for (size_t i = 0; i < 2; i++) {
        const char *t = types[i] == SOCK_DGRAM ? "SOCK_DGRAM" : "SOCK_RAW";
        int fd = socket(AF_INET, types[i] | SOCK_CLOEXEC, IPPROTO_ICMP);
        if (fd < 0) {
            if (errno_in(errno, ERRS(EACCES, EPERM)))
                note(a, "socket(ICMP, %s) (%s)", t, errname(errno));
            else
                escaped(a, "socket(ICMP, %s) failed with unexpected %s", t, errname(errno));
            continue;
        }
        ssize_t n = sendto(fd, echo, sizeof(echo), 0, (struct sockaddr *)&dst, sizeof(dst));
        char what[64];
        snprintf(what, sizeof(what), "ICMP echo to 1.1.1.1 (%s)", t);
        expect_fail(a, what, n, errno, ERRS(ENETUNREACH, EPERM, EACCES));
        close(fd);
    }
}

/* Runs argv with stdout+stderr captured into out; returns the exit status
 * (128+signal when killed). */
static int run_capture(char *const argv[], char *out, size_t size)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < size && (n = read(p[0], out + len, size - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static void case_curl(struct attack *a)
{
    char out[4096];
    /* Direct: no route at all. 7: could not connect; 28 (timeout) would
     * mean packets left. */
    char *const direct[] = {
        "curl", "-sS", "-m", "20", "--noproxy", "*", "-o", "/dev/null", "http://1.1.1.1/", NULL};
    int st = run_capture(direct, out, sizeof(out));
    out[strcspn(out, "\n")] = '\0';
    if (st == 7)
        note(a, "curl --noproxy http://1.1.1.1/ exit 7: %s", out);
    else
        escaped(a, "curl --noproxy http://1.1.1.1/ exit %d: %s", st, out);
    /* Through whatever proxy the sandbox's environment names: a policy that
     * allows nothing must refuse (22: HTTP error, 56: CONNECT refused). */
    char *const proxied[] = {"curl", "-sS", "-f", "-m", "20", "-o", "/dev/null", "http://1.1.1.1/",
                             NULL};
    st = run_capture(proxied, out, sizeof(out));
    out[strcspn(out, "\n")] = '\0';
    if (st == 7 || st == 22 || st == 56)
        note(a, "curl http://1.1.1.1/ exit %d: %s", st, out);
    else
        escaped(a, "curl http://1.1.1.1/ (environment's proxy) exit %d: %s", st, out);
}

static void case_dev_tcp(struct attack *a)
{
    char out[4096];
    char *const argv[] = {"bash", "-c", "exec 3<>/dev/tcp/1.1.1.1/80", NULL};
    int st = run_capture(argv, out, sizeof(out));
    out[strcspn(out, "\n")] = '\0';
    if (st != 0 && (strstr(out, "unreachable") || strstr(out, "Permission denied") ||
                    strstr(out, "Operation not permitted")))
        note(a, "bash /dev/tcp/1.1.1.1/80 exit %d: %s", st, out);
    else
        escaped(a, "bash /dev/tcp/1.1.1.1/80 exit %d: %s", st, out);
}

/* Sends one request to the proxy named by HTTP_PROXY and returns the HTTP
 * status of the answer (0 when there is none). */
static int proxy_request(const char *proxy, const char *request)
{
    unsigned port = 0;
    char host[64] = "";
    if (sscanf(proxy, "http://%63[^:]:%u", host, &port) != 2)
        return -1;
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &in4.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[512];
    int status = 0;
    if (connect(fd, (struct sockaddr *)&in4, sizeof(in4)) == 0 &&
        write(fd, request, strlen(request)) == (ssize_t)strlen(request)) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n > 0) {
            buf[n] = '\0';
            if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
                status = 0;
        }
    } else {
        status = -1;
    }
    close(fd);
    return status;
}

/* With the egress proxy on (runner passes settings allowing example.com and
 * localhost, so that the SSRF guard rather than the domain list decides):
 * the proxy must not carry the sandbox to the host's own loopback. */
static void case_proxy_ssrf(struct attack *a)
{
    const char *proxy = getenv("HTTP_PROXY");
    const char *port = param(a, "tcpport");
    if (!proxy || !port) {
        escaped(a, "no HTTP_PROXY in the sandbox or no tcpport=: fixture broken");
        return;
    }
    static const char *const hosts[] = {"127.0.0.1",  "localhost", "127.1",   "2130706433",
                                        "0x7f000001", "[::1]",     "0.0.0.0", "[::ffff:127.0.0.1]"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        char req[512];
        snprintf(req, sizeof(req), "CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n", hosts[i], port,
                 hosts[i], port);
        int st = proxy_request(proxy, req);
        if (st >= 200 && st < 300)
            escaped(a, "proxy CONNECT %s:%s answered %d", hosts[i], port, st);
        else
            note(a, "CONNECT %s -> %d", hosts[i], st);
        snprintf(req, sizeof(req),
                 "GET http://%s:%s/ HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n", hosts[i],
                 port, hosts[i], port);
        st = proxy_request(proxy, req);
        if (st >= 200 && st < 300)
            escaped(a, "proxy GET http://%s:%s/ answered %d", hosts[i], port, st);
        else
            note(a, "GET %s -> %d", hosts[i], st);
    }
}

/* ---- table --------------------------------------------------------------- */

static const struct {
    const char *name;
    attack_fn fn;
} cases[] = {
    {"write_etc", case_write_etc},
    {"write_usr", case_write_usr},
    {"write_home", case_write_home},
    {"write_outside", case_write_outside},
    {"write_proc_root", case_write_proc_root},
    {"read_ssh", case_read_ssh},
    {"read_shadow", case_read_shadow},
    {"read_host_keys", case_read_host_keys},
    {"symlink_escape", case_symlink_escape},
    {"hardlink_escape", case_hardlink_escape},
    {"git_hooks", case_git_hooks},
    {"git_config", case_git_config},
    {"bashrc", case_bashrc},
    {"git_dir_rename", case_git_dir_rename},
    {"git_commondir", case_git_commondir},
    {"gitfile_redirect", case_gitfile_redirect},
    {"nested_dir_rename", case_nested_dir_rename},
    {"protected_new_files", case_protected_new_files},
    {"protected_nested", case_protected_nested},
    {"read_cred_stores", case_read_cred_stores},
    {"host_dev_shm", case_host_dev_shm},
    {"write_var_tmp", case_write_var_tmp},
    {"core_dump", case_core_dump},
    {"caller_tty", case_caller_tty},
    {"mount", case_mount},
    {"umount2", case_umount2},
    {"pivot_root", case_pivot_root},
    {"chroot", case_chroot},
    {"unshare_user", case_unshare_user},
    {"unshare", case_unshare},
    {"clone_newuser", case_clone_newuser},
    {"clone3", case_clone3},
    {"setns", case_setns},
    {"open_tree", case_open_tree},
    {"move_mount", case_move_mount},
    {"fsopen", case_fsopen},
    {"mount_setattr", case_mount_setattr},
    {"open_by_handle_at", case_open_by_handle_at},
    {"ptrace", case_ptrace},
    {"process_vm_readv", case_process_vm},
    {"tiocsti", case_tiocsti},
    {"tiocsti_highbits", case_tiocsti_highbits},
    {"tioclinux", case_tioclinux},
    {"caps", case_caps},
    {"seccomp_on", case_seccomp_on},
    {"setuid", case_setuid},
    {"host_pid", case_host_pid},
    {"fd_leak", case_fd_leak},
    {"proc_other_pids", case_proc_other_pids},
    {"env_secrets", case_env_secrets},
    {"i386_int80", case_i386_int80},
    {"x32", case_x32},
    {"privileged_misc", case_privileged_misc},
    {"bpf", case_bpf},
    {"perf_event_open", case_perf_event_open},
    {"keyctl", case_keyctl},
    {"kexec_load", case_kexec_load},
    {"io_uring_setup", case_io_uring},
    {"userfaultfd", case_userfaultfd},
    {"modules", case_modules},
    {"ioperm", case_ioperm},
    {"reboot", case_reboot},
    {"socket_vsock", case_socket_vsock},
    {"socket_packet", case_socket_packet},
    {"proc_sys", case_proc_sys},
    {"proc_sysrq", case_proc_sysrq},
    {"proc_kcore", case_proc_kcore},
    {"cgroup_write", case_cgroup_write},
    {"dev_nodes", case_dev_nodes},
    {"mknod", case_mknod},
    {"sysv_ipc", case_sysv_ipc},
    {"hostname", case_hostname},
    {"host_abstract_socket", case_host_abstract_socket},
    {"host_run_socket", case_host_run_socket},
    {"host_ro_socket", case_host_ro_socket},
    {"host_loopback", case_host_loopback},
    {"net_connect", case_net_connect},
    {"dns", case_dns},
    {"ping", case_ping},
    {"curl", case_curl},
    {"dev_tcp", case_dev_tcp},
    {"proxy_ssrf", case_proxy_ssrf},
};

/* ---- host-side fixture --------------------------------------------------- */

static volatile sig_atomic_t fixture_stop;

static void fixture_signal(int sig)
{
    (void)sig;
    fixture_stop = 1;
}

static int listen_unix(const char *path, bool abstract)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len + 2 > sizeof(sun.sun_path))
        return -1;
    memcpy(sun.sun_path + (abstract ? 1 : 0), path, len);
    socklen_t slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (abstract ? 1 : 0));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!abstract)
        unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, slen) != 0 || listen(fd, 16) != 0)
        return -1;
    return fd;
}

/* Host side: listens on an abstract socket, two path sockets and a loopback
 * TCP port, creates SysV shm, msg and sem objects under ipckey, prints
 * "READY tcpport=N hostpid=P" and waits for SIGTERM; then removes them. */
static int fixture_run(struct attack *a)
{
    const char *abstract = param(a, "abstract"), *runsock = param(a, "runsock"),
               *rosock = param(a, "rosock"), *ipckey = param(a, "ipckey");
    int rc = 1, shm = -1, msg = -1, sem = -1;
    if (!abstract || !runsock || !rosock || !ipckey) {
        fprintf(stderr, "fixture: need abstract= runsock= rosock= ipckey=\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = fixture_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);

    int afd = listen_unix(abstract, true), rfd = listen_unix(runsock, false),
        ofd = listen_unix(rosock, false);
    int tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    socklen_t len = sizeof(in4);
    inet_pton(AF_INET, "127.0.0.1", &in4.sin_addr);
    if (afd < 0 || rfd < 0 || ofd < 0 || tfd < 0 ||
        bind(tfd, (struct sockaddr *)&in4, sizeof(in4)) != 0 || listen(tfd, 16) != 0 ||
        getsockname(tfd, (struct sockaddr *)&in4, &len) != 0) {
        fprintf(stderr, "fixture: listen: %s\n", strerror(errno));
        goto out;
    }
    key_t key = (key_t)strtol(ipckey, NULL, 0);
    shm = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
    msg = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
    sem = semget(key, 1, IPC_CREAT | IPC_EXCL | 0600);
    if (shm < 0 || msg < 0 || sem < 0) {
        fprintf(stderr, "fixture: SysV IPC: %s\n", strerror(errno));
        goto out;
    }
    printf("READY tcpport=%u hostpid=%d\n", ntohs(in4.sin_port), getpid());
    fflush(stdout);
    while (!fixture_stop)
        sigsuspend(&old);
    rc = 0;
out:
    if (shm >= 0)
        shmctl(shm, IPC_RMID, NULL);
    if (msg >= 0)
        msgctl(msg, IPC_RMID, NULL);
    if (sem >= 0)
        semctl(sem, 0, IPC_RMID);
    if (rfd >= 0)
        unlink(runsock);
    if (ofd >= 0)
        unlink(rosock);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: attack CASE [KEY=VALUE]... | list | fixture ... | suid-report\n");
        return 2;
    }
    struct attack a = {.name = argv[1], .argc = argc - 2, .argv = argv + 2};
    if (strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    if (strcmp(argv[1], "suid-report") == 0)
        return suid_report();
    if (strcmp(argv[1], "fixture") == 0)
        return fixture_run(&a);

    const char *v;
    a.root = (v = param(&a, "root")) ? v : "";
    a.home = (v = param(&a, "home")) ? v : getenv("HOME") ? getenv("HOME") : "/root";
    a.marker = (v = param(&a, "marker")) ? v : MARKER_DEFAULT;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (strcmp(cases[i].name, argv[1]) != 0)
            continue;
        cases[i].fn(&a);
        if (a.escaped) {
            if (a.how_len)
                printf("  (steps that were blocked: %s)\n", a.how);
            return 1;
        }
        if (a.unsupported)
            return 2;
        printf("BLOCKED %s: %s\n", a.name, a.how_len ? a.how : "(no steps)");
        return 0;
    }
    fprintf(stderr, "attack: unknown case '%s'\n", argv[1]);
    return 2;
}
