/* landlock_only: Landlock on its own, without the mount namespace or any
 * other layer, so that a broken ruleset cannot hide behind read-only binds.
 *
 *   landlock_only sandbox   the rules of a full sandbox (sb_landlock_apply)
 *   landlock_only weaker    the weaker mode's, where Landlock is the only
 *                           filesystem layer and also hides denied paths
 *
 * Each probe gets a fresh scratch tree under /var/tmp (the rules always let
 * a sandbox write /tmp, which here is the host's): a workspace, a second
 * allowWrite directory, a directory outside every writable path, a denyRead
 * directory. A child process builds the plan for that policy and applies the
 * ruleset to itself through landlock_seam.h, tries one thing, and reports
 * errno. Every probe also runs once without Landlock, where it must succeed:
 * proof that the probe can see an escape (we run as root, so file modes
 * refuse nothing). After a refused write, the tree must be as it was.
 *
 * Exits 0 when every probe behaved, 1 otherwise, 77 without Landlock. */
#include "landlock_seam.h"

#include "airlock/error.h"
#include "airlock/sandbox.h"
#include "airlock/strlist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ORIGINAL  "original\n"
#define EXIT_SKIP 77
/* Child exit codes above any errno a probe reports. */
#define CHILD_UNSUPPORTED  250
#define CHILD_SETUP_FAILED 251

struct tree {
    char base[64];       /* /var/tmp/airlock-landlock.XXXXXX */
    char ws[96];         /* base/ws: the workspace (writable) */
    char extra[96];      /* base/extra: allowWrite */
    char outside[96];    /* base/outside: read-only */
    char secret[96];     /* base/secret: denyRead */
    char p[4][PATH_MAX]; /* scratch paths for the probes */
};

enum expect {
    WRITE_OUTSIDE, /* refused: EACCES (EXDEV for a link or rename across dirs) */
    ALLOWED,       /* works with and without Landlock */
    READ_DENIED,   /* weaker mode only: refused with EACCES */
};

struct probe {
    const char *what;
    enum expect expect;
    int (*fn)(struct tree *t); /* 0, or the errno of the step that failed */
};

static int failures;

static void report(int good, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(int good, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s: ", good ? "ok" : "FAIL");
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    if (!good)
        failures++;
}

static void path(char *out, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
        abort();
}

static int write_file(const char *p, const char *data)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    ssize_t n = write(fd, data, strlen(data));
    int err = n == (ssize_t)strlen(data) ? 0 : errno ? errno : EIO;
    close(fd);
    return err;
}

/* 0 when `p` holds exactly `want`; an errno or EILSEQ otherwise. */
static int read_equals(const char *p, const char *want)
{
    char buf[256];
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int err = n < 0 ? errno : 0;
    close(fd);
    if (err)
        return err;
    buf[n] = '\0';
    return strcmp(buf, want) == 0 ? 0 : EILSEQ;
}

/* The entries of `dir` (no dots), sorted and comma-separated, in `out`. */
static int list_dir(const char *dir, char *out, size_t size)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        return errno;
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *d = names[i]->d_name;
        if (strcmp(d, ".") != 0 && strcmp(d, "..") != 0 && o < size)
            o += (size_t)snprintf(out + o, size - o, "%s%s", o ? "," : "", d);
        free(names[i]);
    }
    free(names);
    return 0;
}

static void make_tree(struct tree *t)
{
    snprintf(t->base, sizeof(t->base), "/var/tmp/airlock-landlock.XXXXXX");
    if (!mkdtemp(t->base)) {
        perror("mkdtemp /var/tmp");
        exit(1);
    }
    snprintf(t->ws, sizeof(t->ws), "%s/ws", t->base);
    snprintf(t->extra, sizeof(t->extra), "%s/extra", t->base);
    snprintf(t->outside, sizeof(t->outside), "%s/outside", t->base);
    snprintf(t->secret, sizeof(t->secret), "%s/secret", t->base);
    char p[PATH_MAX];
    int err = 0;
    const char *dirs[] = {t->ws, t->extra, t->outside, t->secret};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++)
        if (mkdir(dirs[i], 0755) < 0)
            err = errno;
    path(p, t->ws, "existing.txt");
    err = err ? err : write_file(p, "ws\n");
    path(p, t->outside, "file.txt");
    err = err ? err : write_file(p, ORIGINAL);
    path(p, t->secret, "key");
    err = err ? err : write_file(p, "SECRET\n");
    if (err) {
        fprintf(stderr, "scratch tree %s: %s\n", t->base, strerror(err));
        exit(1);
    }
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static void rm_tree(const struct tree *t)
{
    nftw(t->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the probes: each returns 0 or the errno of its failing step ---- */

static int create_outside(struct tree *t)
{
    path(t->p[0], t->outside, "new.txt");
    return write_file(t->p[0], "escaped\n");
}

static int append_outside(struct tree *t)
{
    path(t->p[0], t->outside, "file.txt");
    int fd = open(t->p[0], O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int err = write(fd, "escaped\n", 8) == 8 ? 0 : errno;
    close(fd);
    return err;
}

static int open_rdwr_outside(struct tree *t)
{
    path(t->p[0], t->outside, "file.txt");
    int fd = open(t->p[0], O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

static int truncate_outside(struct tree *t)
{
    path(t->p[0], t->outside, "file.txt");
    return truncate(t->p[0], 0) < 0 ? errno : 0;
}

static int unlink_outside(struct tree *t)
{
    path(t->p[0], t->outside, "file.txt");
    return unlink(t->p[0]) < 0 ? errno : 0;
}

static int mkdir_outside(struct tree *t)
{
    path(t->p[0], t->outside, "dir");
    return mkdir(t->p[0], 0755) < 0 ? errno : 0;
}

static int rename_within_outside(struct tree *t)
{
    path(t->p[0], t->outside, "file.txt");
    path(t->p[1], t->outside, "moved.txt");
    return rename(t->p[0], t->p[1]) < 0 ? errno : 0;
}

static int symlink_outside(struct tree *t)
{
    path(t->p[0], t->outside, "link");
    return symlink("/etc/passwd", t->p[0]) < 0 ? errno : 0;
}

static int mkfifo_outside(struct tree *t)
{
    path(t->p[0], t->outside, "fifo");
    return mkfifo(t->p[0], 0644) < 0 ? errno : 0;
}

static int hardlink_into_outside(struct tree *t)
{
    path(t->p[0], t->ws, "existing.txt");
    path(t->p[1], t->outside, "linked.txt");
    return link(t->p[0], t->p[1]) < 0 ? errno : 0;
}

static int rename_into_outside(struct tree *t)
{
    path(t->p[0], t->ws, "existing.txt");
    path(t->p[1], t->outside, "moved.txt");
    return rename(t->p[0], t->p[1]) < 0 ? errno : 0;
}

static int rename_out_of_outside(struct tree *t)
{
    path(t->p[0], t->outside, "file.txt");
    path(t->p[1], t->ws, "stolen.txt");
    return rename(t->p[0], t->p[1]) < 0 ? errno : 0;
}

static int create_in_parent(struct tree *t)
{
    path(t->p[0], t->base, "new.txt");
    return write_file(t->p[0], "escaped\n");
}

static int read_outside(struct tree *t)
{
    path(t->p[0], t->outside, "file.txt");
    return read_equals(t->p[0], ORIGINAL);
}

static int list_outside(struct tree *t)
{
    char names[256];
    int err = list_dir(t->outside, names, sizeof(names));
    return err ? err : strcmp(names, "file.txt") == 0 ? 0 : EILSEQ;
}

static int read_etc_passwd(struct tree *t)
{
    (void)t;
    int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

static int exec_true(struct tree *t)
{
    (void)t;
    pid_t pid = fork();
    if (pid < 0)
        return errno;
    if (pid == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(errno ? errno : 1);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return errno;
    return WIFEXITED(st) ? WEXITSTATUS(st) : EINTR;
}

static int write_workspace(struct tree *t)
{
    path(t->p[0], t->ws, "new.txt");
    path(t->p[1], t->ws, "renamed.txt");
    path(t->p[2], t->ws, "dir");
    path(t->p[3], t->ws, "existing.txt");
    int err = write_file(t->p[0], "inside\n");
    if (!err && rename(t->p[0], t->p[1]) < 0)
        err = errno;
    if (!err && unlink(t->p[1]) < 0)
        err = errno;
    if (!err && mkdir(t->p[2], 0755) < 0)
        err = errno;
    if (!err && truncate(t->p[3], 0) < 0)
        err = errno;
    return err;
}

static int write_allow_write_dir(struct tree *t)
{
    path(t->p[0], t->extra, "new.txt");
    return write_file(t->p[0], "inside\n");
}

static int write_dev_null(struct tree *t)
{
    (void)t;
    return write_file("/dev/null", "x");
}

static int read_denied(struct tree *t)
{
    path(t->p[0], t->secret, "key");
    return read_equals(t->p[0], "SECRET\n");
}

static int list_denied(struct tree *t)
{
    char names[256];
    return list_dir(t->secret, names, sizeof(names));
}

static const struct probe probes[] = {
    {"create a file in a read-only dir", WRITE_OUTSIDE, create_outside},
    {"append to a read-only file", WRITE_OUTSIDE, append_outside},
    {"open a read-only file O_RDWR", WRITE_OUTSIDE, open_rdwr_outside},
    {"truncate a read-only file", WRITE_OUTSIDE, truncate_outside},
    {"unlink in a read-only dir", WRITE_OUTSIDE, unlink_outside},
    {"mkdir in a read-only dir", WRITE_OUTSIDE, mkdir_outside},
    {"rename inside a read-only dir", WRITE_OUTSIDE, rename_within_outside},
    {"symlink in a read-only dir", WRITE_OUTSIDE, symlink_outside},
    {"mkfifo in a read-only dir", WRITE_OUTSIDE, mkfifo_outside},
    {"hard link from the workspace into a read-only dir", WRITE_OUTSIDE, hardlink_into_outside},
    {"rename from the workspace into a read-only dir", WRITE_OUTSIDE, rename_into_outside},
    {"rename from a read-only dir into the workspace", WRITE_OUTSIDE, rename_out_of_outside},
    {"create a file beside the workspace", WRITE_OUTSIDE, create_in_parent},
    {"read a file outside the writable paths", ALLOWED, read_outside},
    {"list a dir outside the writable paths", ALLOWED, list_outside},
    {"read /etc/passwd", ALLOWED, read_etc_passwd},
    {"exec /bin/true", ALLOWED, exec_true},
    {"create, rename, unlink, mkdir, truncate in the workspace", ALLOWED, write_workspace},
    {"create a file in an allowWrite dir", ALLOWED, write_allow_write_dir},
    {"write /dev/null", ALLOWED, write_dev_null},
    {"read a file under denyRead", READ_DENIED, read_denied},
    {"list a dir under denyRead", READ_DENIED, list_denied},
};

/* The policy of the test: the tree's allowWrite and denyRead entries plus
 * the defaults of every sandbox (the workspace writable, credential stores
 * hidden). */
static void policy_for(struct al_policy *pol, const struct tree *t, const char *home)
{
    al_policy_init(pol);
    if (al_strlist_push(&pol->allow_write, t->extra) < 0 ||
        al_strlist_push(&pol->deny_read, t->secret) < 0 ||
        sb_policy_add_defaults(pol, t->ws, home) < 0) {
        fprintf(stderr, "policy: out of memory\n");
        exit(1);
    }
}

/* Runs probe `pr` in a child, restricted by Landlock (`mode`) or not
 * (`restrict` 0). Returns its errno (0: it worked), or CHILD_* codes. */
static int run_probe(const struct probe *pr, struct tree *t, int restrict_it,
                     enum seam_landlock_mode mode, const char *home)
{
    struct al_policy pol;
    policy_for(&pol, t, home);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        if (restrict_it) {
            int err = seam_landlock_restrict(&pol, t->ws, home, mode);
            if (err == AL_EUNSUPP)
                _exit(CHILD_UNSUPPORTED);
            if (err < 0) {
                fprintf(stderr, "landlock: %s\n", al_error_last());
                _exit(CHILD_SETUP_FAILED);
            }
        }
        _exit(pr->fn(t) & 0xff);
    }
    al_policy_free(&pol);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            perror("waitpid");
            exit(1);
        }
    if (!WIFEXITED(st)) {
        report(0, "%s: the child died (status %#x)", pr->what, st);
        return CHILD_SETUP_FAILED;
    }
    return WEXITSTATUS(st);
}

static const char *err_name(int e)
{
    if (e == 0)
        return "success";
    if (e == EILSEQ)
        return "wrong content";
    const char *n = strerrorname_np(e);
    return n ? n : "?";
}

/* After a refused write the tree is what make_tree() made. */
static void check_untouched(const struct probe *pr, const struct tree *t)
{
    char names[256], p[PATH_MAX];
    int err = list_dir(t->outside, names, sizeof(names));
    path(p, t->outside, "file.txt");
    int content = read_equals(p, ORIGINAL);
    char ws_file[PATH_MAX];
    path(ws_file, t->ws, "existing.txt");
    int ws_content = read_equals(ws_file, "ws\n");
    struct stat st;
    path(p, t->base, "new.txt");
    int parent_clean = lstat(p, &st) < 0 && errno == ENOENT;
    if (err || strcmp(names, "file.txt") != 0 || content || ws_content || !parent_clean)
        report(0, "%s: the tree changed (outside: [%s], file.txt: %s, workspace file: %s, %s)",
               pr->what, err ? strerror(err) : names, err_name(content), err_name(ws_content),
               parent_clean ? "nothing beside the workspace" : "a file beside the workspace");
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "sandbox") != 0 && strcmp(argv[1], "weaker") != 0)) {
        fprintf(stderr, "usage: landlock_only sandbox|weaker\n");
        return 2;
    }
    enum seam_landlock_mode mode =
        strcmp(argv[1], "weaker") == 0 ? SEAM_LANDLOCK_WEAKER : SEAM_LANDLOCK_SANDBOX;
    const char *home = getenv("HOME");
    if (!home || home[0] != '/')
        home = "/root";
    setvbuf(stdout, NULL, _IOLBF, 0);

    for (size_t i = 0; i < sizeof(probes) / sizeof(*probes); i++) {
        const struct probe *pr = &probes[i];
        /* a full sandbox's Landlock leaves hiding to the mount layer */
        if (pr->expect == READ_DENIED && mode != SEAM_LANDLOCK_WEAKER)
            continue;
        struct tree t;

        make_tree(&t);
        int got = run_probe(pr, &t, 0, mode, home);
        rm_tree(&t);
        report(got == 0, "without Landlock: %s -> %s (%s)", pr->what, err_name(got),
               pr->expect == ALLOWED ? "control" : "the probe can see an escape");

        make_tree(&t);
        got = run_probe(pr, &t, 1, mode, home);
        if (got == CHILD_UNSUPPORTED) {
            rm_tree(&t);
            printf("SKIP: Landlock is not available in this kernel\n");
            return EXIT_SKIP;
        }
        if (got == CHILD_SETUP_FAILED) {
            report(0, "%s: Landlock could not be applied", pr->what);
        } else if (pr->expect == ALLOWED) {
            report(got == 0, "Landlock: %s -> %s", pr->what, err_name(got));
        } else if (pr->expect == READ_DENIED) {
            report(got == EACCES, "Landlock: %s -> %s (want EACCES)", pr->what, err_name(got));
        } else {
            report(got == EACCES || got == EXDEV, "Landlock: %s -> %s (want EACCES or EXDEV)",
                   pr->what, err_name(got));
            check_untouched(pr, &t);
        }
        rm_tree(&t);
    }
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("all passed\n");
    return 0;
}
