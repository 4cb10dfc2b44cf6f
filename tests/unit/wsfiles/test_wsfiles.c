/* Unit and attack tests of airlockd's workspace file access (wsfiles.c),
 * against a real workspace under /tmp with an "outside" directory beside it
 * that must never be touched. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "airlock/error.h"
#include "airlockd/core/wsfiles.h"

static char base[] = "/tmp/airlock-wsf-test-XXXXXX";
static char ws[256], outside[256], secret[300], outdir[300];
static int root = -1;
static uid_t own_uid;
static gid_t own_gid;
/* --no-tmpfile: O_TMPFILE is refused, uploads take the random-name path. */
static int no_tmpfile;

/* ---- helpers ---- */

static void write_file(const char *path, const char *content)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

/* The whole content of fd (closed) as a new string. */
static char *read_fd(int fd)
{
    static char buf[65536];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    return strdup(buf);
}

static char *read_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    return read_fd(fd);
}

static const char *wsp(const char *rel)
{
    static char p[8192];
    snprintf(p, sizeof(p), "%s/%s", ws, rel);
    return p;
}

/* The outside files are exactly as setup made them. */
static void assert_outside_intact(void)
{
    char *s = read_path(secret);
    assert_non_null(s);
    assert_string_equal(s, "SECRET\n");
    free(s);
    char keep[400];
    snprintf(keep, sizeof(keep), "%s/keep", outdir);
    s = read_path(keep);
    assert_non_null(s);
    assert_string_equal(s, "KEEP\n");
    free(s);
    int n = 0;
    DIR *d = opendir(outdir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        n++;
    closedir(d);
    assert_int_equal(n, 3); /* ".", "..", "keep" */
    struct stat sb;
    assert_int_equal(stat(secret, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0644);
}

static int norm(const char *s, size_t len, char *out)
{
    return wsf_path_normalize(s, len, out, WSF_PATH_MAX + 1);
}

static int put(const char *rel, const char *content, int *created)
{
    struct wsf_upload *u = NULL;
    int err = wsf_put_begin(root, rel, own_uid, own_gid, &u);
    if (err < 0)
        return err;
    if ((err = wsf_put_write(u, content, strlen(content))) < 0) {
        wsf_put_abort(u);
        return err;
    }
    return wsf_put_commit(u, created, NULL);
}

/* GET of a file: its content (caller frees), or NULL with *err set. */
static char *get_content(const char *rel, int *err)
{
    int fd;
    json_t *listing;
    struct wsf_stat st;
    *err = wsf_get(root, rel, &fd, &st, &listing);
    if (*err < 0) {
        assert_int_equal(fd, -1);
        assert_null(listing);
        return NULL;
    }
    assert_null(listing);
    assert_true(fd >= 0);
    assert_int_equal(st.type, WSF_FILE);
    return read_fd(fd);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int setup(void **state)
{
    memcpy(base, "/tmp/airlock-wsf-test-XXXXXX", sizeof(base));
    if (!mkdtemp(base))
        return -1;
    snprintf(ws, sizeof(ws), "%s/ws", base);
    snprintf(outside, sizeof(outside), "%s/outside", base);
    snprintf(secret, sizeof(secret), "%s/secret", outside);
    snprintf(outdir, sizeof(outdir), "%s/dir", outside);
    if (mkdir(ws, 0755) < 0 || mkdir(outside, 0755) < 0 || mkdir(outdir, 0755) < 0)
        return -1;
    write_file(secret, "SECRET\n");
    char keep[400];
    snprintf(keep, sizeof(keep), "%s/keep", outdir);
    write_file(keep, "KEEP\n");
    own_uid = geteuid() == 0 ? 12345 : geteuid();
    own_gid = geteuid() == 0 ? 12346 : getegid();
    return wsf_root_open(ws, &root);
}

static int teardown(void **state)
{
    umount2(wsp("proc"), MNT_DETACH);
    umount2(wsp("t/proc"), MNT_DETACH);
    close(root);
    root = -1;
    nftw(base, rm_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    return 0;
}

/* ---- wsf_path_normalize ---- */

static void normalize_folds(void **state)
{
    char out[WSF_PATH_MAX + 1];
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"", ""},
        {".", ""},
        {"./", ""},
        {"a", "a"},
        {"a//b/", "a/b"},
        {"./a/./b/.", "a/b"},
        {"a/b/c", "a/b/c"},
        {"...", "..."},
        {"..a/b..", "..a/b.."},
        {".hidden", ".hidden"},
        {"caf\xc3\xa9/\xf0\x9f\x90\x8d", "caf\xc3\xa9/\xf0\x9f\x90\x8d"},
        {"a\\b", "a\\b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(out, 'x', sizeof(out));
        assert_int_equal(norm(cases[i].in, strlen(cases[i].in), out), 0);
        assert_string_equal(out, cases[i].want);
    }
    /* (pointer, length): bytes past len are not read */
    assert_int_equal(norm("abc/def", 3, out), 0);
    assert_string_equal(out, "abc");
}

static void normalize_refuses(void **state)
{
    char out[WSF_PATH_MAX + 1];
    static const struct {
        const char *in;
        size_t len;
    } cases[] = {
        {"..", 2},
        {"../x", 4},
        {"a/..", 4},
        {"a/../../x", 9},
        {"a/b/../c", 8},
        {"/", 1},
        {"/etc/passwd", 11},
        {"a\0b", 3},
        {"\0", 1},
        {"a\nb", 3},
        {"a\rb", 3},
        {"a\x1b[2J", 6},
        {"a\x7f", 2},
        {"\xff", 1},
        {"\xc0\xaf", 2},         /* overlong "/" */
        {"\xed\xa0\x80", 3},     /* surrogate */
        {"\xf4\x90\x80\x80", 4}, /* above U+10FFFF */
        {"\xe2\x82", 2},         /* truncated */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(out, "junk", 5);
        assert_int_equal(norm(cases[i].in, cases[i].len, out), AL_EINVAL);
        assert_string_equal(out, "");
        assert_true(al_error_last()[0] != '\0');
    }
}

static void normalize_limits(void **state)
{
    static char big[20000], out[WSF_PATH_MAX + 1];
    /* a 255-byte component is fine, 256 is not; a 5000-byte name neither */
    memset(big, 'n', 255);
    assert_int_equal(norm(big, 255, out), 0);
    assert_int_equal(strlen(out), 255);
    memset(big, 'n', 5000);
    assert_int_equal(norm(big, 256, out), AL_EINVAL);
    assert_int_equal(norm(big, 5000, out), AL_EINVAL);
    /* 4096 bytes of slashes around one name fold; 4097 bytes are refused */
    memset(big, '/', sizeof(big));
    big[0] = '.';
    big[2] = 'x';
    assert_int_equal(norm(big, 4096, out), 0);
    assert_string_equal(out, "x");
    assert_int_equal(norm(big, 4097, out), AL_EINVAL);
    /* 256 components are fine, 257 are not; thousands neither */
    for (size_t i = 0; i < sizeof(big); i += 2) {
        big[i] = 'a';
        big[i + 1] = '/';
    }
    assert_int_equal(norm(big, 2 * 256 - 1, out), 0);
    assert_int_equal(norm(big, 2 * 257 - 1, out), AL_EINVAL);
    assert_int_equal(norm(big, 4095, out), AL_EINVAL);
    assert_int_equal(norm(big, sizeof(big), out), AL_EINVAL);
    /* a small output buffer is AL_ETOOBIG, with "" in it */
    char small[4];
    assert_int_equal(wsf_path_normalize("abcd", 4, small, sizeof(small)), AL_ETOOBIG);
    assert_string_equal(small, "");
    assert_int_equal(wsf_path_normalize("abc", 3, small, sizeof(small)), 0);
    assert_string_equal(small, "abc");
}

/* ---- GET ---- */

static void get_file_and_listing(void **state)
{
    int created = -1, err, fd;
    json_t *l = NULL;
    struct wsf_stat st;

    assert_int_equal(put("b.txt", "bee", &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(put("a.txt", "hello", NULL), 0);
    assert_int_equal(wsf_mkdir(root, "sub/inner", own_uid, own_gid, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(symlink("a.txt", wsp("link")), 0);
    assert_int_equal(mkfifo(wsp("fifo"), 0600), 0);

    char *s = get_content("a.txt", &err);
    assert_non_null(s);
    assert_string_equal(s, "hello");
    free(s);
    s = get_content("link", &err); /* a symlink inside is followed */
    assert_non_null(s);
    assert_string_equal(s, "hello");
    free(s);

    assert_int_equal(wsf_get(root, "", &fd, &st, &l), 0);
    assert_int_equal(fd, -1);
    assert_int_equal(st.type, WSF_DIR);
    assert_non_null(l);
    assert_string_equal(json_string_value(json_object_get(l, "path")), "");
    assert_null(json_object_get(l, "truncated"));
    json_t *e = json_object_get(l, "entries");
    assert_int_equal(json_array_size(e), 5);
    static const char *names[] = {"a.txt", "b.txt", "fifo", "link", "sub"};
    static const char *types[] = {"file", "file", "other", "symlink", "dir"};
    for (size_t i = 0; i < 5; i++) {
        json_t *x = json_array_get(e, i);
        assert_string_equal(json_string_value(json_object_get(x, "name")), names[i]);
        assert_string_equal(json_string_value(json_object_get(x, "type")), types[i]);
        const char *mtime = json_string_value(json_object_get(x, "mtime"));
        assert_non_null(mtime);
        assert_int_equal(strlen(mtime), 24); /* 2026-11-23T18:05:35.123Z */
        assert_int_equal(mtime[10], 'T');
        assert_int_equal(mtime[23], 'Z');
    }
    json_t *a = json_array_get(e, 0);
    assert_int_equal(json_integer_value(json_object_get(a, "size")), 5);
    assert_string_equal(json_string_value(json_object_get(a, "mode")), "0644");
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 4), "mode")), "0755");
    json_decref(l);

    assert_int_equal(wsf_get(root, "sub", &fd, NULL, &l), 0);
    assert_string_equal(json_string_value(json_object_get(l, "path")), "sub");
    assert_int_equal(json_array_size(json_object_get(l, "entries")), 1);
    json_decref(l);

    assert_null(get_content("missing", &err));
    assert_int_equal(err, AL_ENOTFOUND);
    assert_null(get_content("sub/missing/x", &err));
    assert_int_equal(err, AL_ENOTFOUND);
    assert_null(get_content("a.txt/x", &err));
    assert_int_equal(err, AL_EINVAL);

    char t[40];
    wsf_time_format(1795457135123456789LL, t, sizeof(t));
    assert_string_equal(t, "2026-11-23T18:05:35.123Z");
}

/* A FIFO or a device is refused without being opened: a read open of a FIFO
 * would block (the test would hang), a device could have side effects. */
static void get_refuses_fifo_and_device(void **state)
{
    int err;
    assert_int_equal(mkfifo(wsp("fifo"), 0666), 0);
    assert_null(get_content("fifo", &err));
    assert_int_equal(err, AL_EPERM);
    struct wsf_stat st;
    assert_int_equal(wsf_stat(root, "fifo", &st), 0);
    assert_int_equal(st.type, WSF_OTHER);
    assert_int_equal(symlink("fifo", wsp("fifolink")), 0);
    assert_null(get_content("fifolink", &err));
    assert_int_equal(err, AL_EPERM);
    if (mknod(wsp("null"), S_IFCHR | 0666, makedev(1, 3)) == 0) {
        assert_null(get_content("null", &err));
        assert_int_equal(err, AL_EPERM);
    }
}

static void get_listing_truncated(void **state)
{
    char name[64];
    int fd;
    json_t *l;
    assert_int_equal(mkdir(wsp("many"), 0755), 0);
    int dfd = open(wsp("many"), O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    for (int i = 0; i < WSF_LIST_MAX + 50; i++) {
        snprintf(name, sizeof(name), "f%05d", WSF_LIST_MAX + 49 - i);
        int f = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
        assert_true(f >= 0);
        close(f);
    }
    /* a name that is not UTF-8 is counted, not listed */
    int f = openat(dfd, "bad\xff", O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(f >= 0);
    close(f);
    close(dfd);
    assert_int_equal(wsf_get(root, "many", &fd, NULL, &l), 0);
    json_t *e = json_object_get(l, "entries");
    assert_int_equal(json_array_size(e), WSF_LIST_MAX);
    assert_true(json_is_true(json_object_get(l, "truncated")));
    assert_int_equal(json_integer_value(json_object_get(l, "unlisted")), 1);
    /* the smallest names, in order */
    for (int i = 0; i < WSF_LIST_MAX; i++) {
        snprintf(name, sizeof(name), "f%05d", i);
        assert_string_equal(json_string_value(json_object_get(json_array_get(e, i), "name")), name);
    }
    json_decref(l);
}

/* ---- escapes ---- */

static void get_refuses_escapes(void **state)
{
    int err;
    char p[512];
    assert_int_equal(put("a.txt", "inside", NULL), 0);
    assert_int_equal(symlink("/etc/passwd", wsp("passwd")), 0);
    assert_int_equal(symlink(secret, wsp("abs")), 0);
    snprintf(p, sizeof(p), "../outside/secret");
    assert_int_equal(symlink(p, wsp("rel")), 0);
    assert_int_equal(symlink(outdir, wsp("outdir")), 0);
    assert_int_equal(symlink("/", wsp("slash")), 0);
    assert_int_equal(symlink("..", wsp("dotdot")), 0);
    /* chains: c1 -> c2 -> c3 -> outside; i1 -> i2 -> a.txt */
    assert_int_equal(symlink("c2", wsp("c1")), 0);
    assert_int_equal(symlink("sub/../c3", wsp("c2")), 0);
    assert_int_equal(symlink("../outside/secret", wsp("c3")), 0);
    assert_int_equal(mkdir(wsp("sub"), 0755), 0);
    assert_int_equal(symlink("../i2", wsp("sub/i1")), 0);
    assert_int_equal(symlink("a.txt", wsp("i2")), 0);
    assert_int_equal(symlink("loop", wsp("loop")), 0);
    /* /proc links name no magic link here, but absolute ones leave anyway */
    assert_int_equal(symlink("/proc/self/root/etc/passwd", wsp("procroot")), 0);
    assert_int_equal(symlink("/proc/self/cwd", wsp("proccwd")), 0);

    static const char *refused[] = {
        "passwd",    "abs",         "rel",
        "outdir",    "outdir/keep", "slash",
        "slash/etc", "dotdot",      "dotdot/outside/secret",
        "c1",        "c2",          "loop",
        "procroot",  "proccwd/x",   "proccwd",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int fd = -2;
        json_t *l = (json_t *)1;
        err = wsf_get(root, refused[i], &fd, NULL, &l);
        if (err != AL_EPERM)
            fail_msg("GET %s: %d %s", refused[i], err, al_error_last());
        struct wsf_stat st;
        assert_int_equal(wsf_stat(root, refused[i], &st), AL_EPERM);
        assert_int_equal(fd, -1);
        assert_null(l);
    }
    char *s = get_content("sub/i1", &err);
    assert_non_null(s);
    assert_string_equal(s, "inside");
    free(s);
    assert_outside_intact();
}

/* Writes, mkdirs and deletes through links that lead out are refused; a link
 * at the target itself is replaced or removed, never written through. */
static void put_mkdir_delete_confined(void **state)
{
    int created = -1;
    struct wsf_upload *u = (struct wsf_upload *)1;
    assert_int_equal(symlink(outdir, wsp("outdir")), 0);
    assert_int_equal(symlink(secret, wsp("secretlink")), 0);
    assert_int_equal(symlink("../outside", wsp("up")), 0);
    assert_int_equal(symlink("../outside/secret", wsp("relsecret")), 0);

    assert_int_equal(wsf_put_begin(root, "outdir/new", own_uid, own_gid, &u), AL_EPERM);
    assert_null(u);
    assert_non_null(strstr(al_error_last(), "leaves the workspace"));
    assert_int_equal(put("up/dir/new", "x", NULL), AL_EPERM);
    assert_int_equal(put("up/new/deeper/x", "x", NULL), AL_EPERM);
    assert_int_equal(wsf_mkdir(root, "outdir/newdir", own_uid, own_gid, &created), AL_EPERM);
    assert_int_equal(wsf_mkdir(root, "up/newdir/x", own_uid, own_gid, &created), AL_EPERM);
    assert_int_equal(wsf_delete(root, "outdir/keep", 0), AL_EPERM);
    assert_int_equal(wsf_delete(root, "up/secret", 0), AL_EPERM);
    assert_int_equal(wsf_delete(root, "up/dir", 1), AL_EPERM);
    assert_outside_intact();

    /* PUT on a link to an outside file replaces the link */
    assert_int_equal(put("secretlink", "mine", &created), 0);
    assert_int_equal(created, 0);
    assert_int_equal(put("relsecret", "mine too", &created), 0);
    struct stat sb;
    assert_int_equal(lstat(wsp("secretlink"), &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_outside_intact();

    /* DELETE of a link to an outside dir, even recursive, removes the link */
    assert_int_equal(wsf_delete(root, "outdir", 1), 0);
    assert_int_equal(lstat(wsp("outdir"), &sb), -1);
    assert_int_equal(wsf_delete(root, "up", 0), 0);
    assert_outside_intact();
}

/* A hard link to an outside file is readable (the sandbox could read it to
 * make it; see wsfiles.h), but PUT replaces the link and never writes into
 * the outside inode; DELETE unlinks only the workspace name. */
static void put_hard_link_not_written_through(void **state)
{
    int err, created = -1;
    if (link(secret, wsp("hl")) < 0)
        skip();
    char *s = get_content("hl", &err);
    assert_non_null(s);
    assert_string_equal(s, "SECRET\n");
    free(s);
    assert_int_equal(put("hl", "overwritten", &created), 0);
    assert_int_equal(created, 0);
    assert_outside_intact();
    struct stat sb;
    assert_int_equal(stat(secret, &sb), 0);
    assert_int_equal(sb.st_nlink, 1);
    assert_int_equal(link(secret, wsp("hl2")), 0);
    assert_int_equal(wsf_delete(root, "hl2", 0), 0);
    assert_outside_intact();
}

/* /proc mounted inside the workspace: its magic links (self/root, self/cwd,
 * fd/N) are refused, and the mount is neither deleted nor walked into. Runs
 * in a private mount namespace; skipped when that is not allowed. */
static void proc_magic_links_refused(void **state)
{
    int err, fd;
    json_t *l = NULL;
    if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        skip();
    assert_int_equal(mkdir(wsp("proc"), 0755), 0);
    if (mount("proc", wsp("proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        skip();
    /* the root descriptor of setup belongs to the old mount namespace */
    close(root);
    assert_int_equal(wsf_root_open(ws, &root), 0);
    char fdpath[64];
    int outfd = open(secret, O_RDONLY | O_CLOEXEC);
    assert_true(outfd >= 0);
    snprintf(fdpath, sizeof(fdpath), "proc/self/fd/%d", outfd);
    assert_int_equal(symlink("proc/self/root", wsp("viaproc")), 0);
    static const char *refused[] = {
        "proc/self/root/etc/passwd", "proc/self/root",     "proc/self/cwd",
        "proc/1/root/etc",           "viaproc/etc/passwd", "proc/self/exe"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        err = wsf_get(root, refused[i], &fd, NULL, &l);
        if (err != AL_EPERM)
            fail_msg("GET %s: %d %s", refused[i], err, al_error_last());
    }
    assert_int_equal(wsf_get(root, fdpath, &fd, NULL, &l), AL_EPERM);
    assert_int_equal(put("proc/self/root/tmp/x", "x", NULL), AL_EPERM);
    close(outfd);
    /* plain files of procfs are inside and readable */
    char *s = get_content("proc/self/status", &err);
    assert_non_null(s);
    free(s);
    /* the mount point itself cannot be removed, nor a tree holding it */
    assert_int_equal(wsf_delete(root, "proc", 1), AL_EPERM);
    assert_int_equal(umount2(wsp("proc"), MNT_DETACH), 0);
    assert_int_equal(mkdir(wsp("t"), 0755), 0);
    assert_int_equal(mkdir(wsp("t/proc"), 0755), 0);
    assert_int_equal(mount("proc", wsp("t/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL),
                     0);
    assert_int_equal(wsf_delete(root, "t", 1), AL_EPERM);
    assert_int_equal(access(wsp("t/proc/self/status"), F_OK), 0);
    assert_int_equal(umount2(wsp("t/proc"), MNT_DETACH), 0);
    assert_outside_intact();
}

/* The file functions refuse a path that skipped wsf_path_normalize. */
static void unnormalised_refused(void **state)
{
    static const char *bad[] = {"..", "a/..", "/etc", "a//b", "./a", "a/", "a/.", "a\nb"};
    assert_int_equal(put("a", "x", NULL), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd, created;
        json_t *l;
        struct wsf_upload *u;
        assert_int_equal(wsf_get(root, bad[i], &fd, NULL, &l), AL_EINVAL);
        assert_int_equal(wsf_put_begin(root, bad[i], own_uid, own_gid, &u), AL_EINVAL);
        assert_int_equal(wsf_mkdir(root, bad[i], own_uid, own_gid, &created), AL_EINVAL);
        assert_int_equal(wsf_delete(root, bad[i], 1), AL_EINVAL);
    }
    assert_int_equal(access(wsp("a"), F_OK), 0);
    assert_outside_intact();
}

/* ---- PUT and mkdir ---- */

/* How many entries of dir are named like an upload's temporary file. */
static int upload_names(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        n += strncmp(de->d_name, ".airlock-upload-", 16) == 0;
    closedir(d);
    return n;
}

static void put_creates_parents_and_owns(void **state)
{
    int created = -1;
    struct wsf_stat st;
    struct wsf_upload *u = NULL;
    struct stat sb;

    assert_int_equal(wsf_put_begin(root, "d1/d2/f.txt", own_uid, own_gid, &u), 0);
    assert_int_equal(wsf_put_write(u, "abc", 3), 0);
    assert_int_equal(wsf_put_write(u, "", 0), 0);
    assert_int_equal(wsf_put_write(u, "defg", 4), 0);
    assert_int_equal(wsf_put_bytes(u), 7);
    /* not visible before commit; the temporary file has a name only when
     * O_TMPFILE is not there */
    assert_int_equal(access(wsp("d1/d2/f.txt"), F_OK), -1);
    assert_int_equal(upload_names(wsp("d1/d2")), no_tmpfile ? 1 : 0);
    assert_int_equal(wsf_put_commit(u, &created, &st), 0);
    assert_int_equal(created, 1);
    assert_int_equal(st.type, WSF_FILE);
    assert_int_equal(st.size, 7);
    assert_int_equal(st.mode, 0644);
    char *s = read_path(wsp("d1/d2/f.txt"));
    assert_string_equal(s, "abcdefg");
    free(s);
    static const char *made[] = {"d1", "d1/d2"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(lstat(wsp(made[i]), &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 07777, 0755);
        assert_int_equal(sb.st_uid, own_uid);
        assert_int_equal(sb.st_gid, own_gid);
    }
    assert_int_equal(lstat(wsp("d1/d2/f.txt"), &sb), 0);
    assert_int_equal(sb.st_uid, own_uid);
    assert_int_equal(sb.st_gid, own_gid);

    /* replace: created 0, the mode kept (without set-id bits) */
    assert_int_equal(chmod(wsp("d1/d2/f.txt"), 04750), 0);
    assert_int_equal(put("d1/d2/f.txt", "new", &created), 0);
    assert_int_equal(created, 0);
    assert_int_equal(lstat(wsp("d1/d2/f.txt"), &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0750);
    s = read_path(wsp("d1/d2/f.txt"));
    assert_string_equal(s, "new");
    free(s);

    /* an upload in progress leaves the old content until commit; abort
     * leaves nothing behind */
    assert_int_equal(wsf_put_begin(root, "d1/d2/f.txt", own_uid, own_gid, &u), 0);
    assert_int_equal(wsf_put_write(u, "partial", 7), 0);
    s = read_path(wsp("d1/d2/f.txt"));
    assert_string_equal(s, "new");
    free(s);
    wsf_put_abort(u);
    wsf_put_abort(NULL);
    s = read_path(wsp("d1/d2/f.txt"));
    assert_string_equal(s, "new");
    free(s);
    DIR *d = opendir(wsp("d1/d2"));
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    assert_int_equal(n, 3); /* ".", "..", "f.txt": no temporary file left */

    /* a symlink to a directory inside is followed for parents */
    assert_int_equal(symlink("d1", wsp("d1link")), 0);
    assert_int_equal(put("d1link/via.txt", "v", &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(access(wsp("d1/via.txt"), F_OK), 0);
}

static void put_refuses_directories(void **state)
{
    int created = -1;
    struct wsf_upload *u = NULL;
    assert_int_equal(wsf_mkdir(root, "dir/sub", own_uid, own_gid, NULL), 0);
    assert_int_equal(put("f", "x", NULL), 0);
    /* onto a directory: refused at commit, nothing left behind */
    assert_int_equal(put("dir/sub", "x", &created), AL_EEXISTS);
    assert_int_equal(put("dir", "x", &created), AL_EEXISTS);
    /* below a file */
    assert_int_equal(wsf_put_begin(root, "f/x", own_uid, own_gid, &u), AL_EEXISTS);
    assert_null(u);
    assert_int_equal(put("f/x/y", "x", NULL), AL_EEXISTS);
    /* the root */
    assert_int_equal(wsf_put_begin(root, "", own_uid, own_gid, &u), AL_EEXISTS);
    DIR *d = opendir(wsp("dir"));
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    assert_int_equal(n, 3);
    struct stat sb;
    assert_int_equal(lstat(wsp("dir/sub"), &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    /* a 255-byte name works; PUT onto a FIFO replaces it without opening it */
    char name[256];
    memset(name, 'n', 255);
    name[255] = '\0';
    assert_int_equal(put(name, "long", &created), 0);
    assert_int_equal(mkfifo(wsp("fifo"), 0600), 0);
    assert_int_equal(put("fifo", "no longer", &created), 0);
    assert_int_equal(created, 0);
}

static void mkdir_cases(void **state)
{
    int created = -1;
    assert_int_equal(wsf_mkdir(root, "a/b/c", own_uid, own_gid, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(wsf_mkdir(root, "a/b/c", own_uid, own_gid, &created), 0);
    assert_int_equal(created, 0);
    assert_int_equal(wsf_mkdir(root, "a/b", own_uid, own_gid, &created), 0);
    assert_int_equal(created, 0);
    assert_int_equal(wsf_mkdir(root, "", own_uid, own_gid, &created), 0);
    assert_int_equal(created, 0);
    struct wsf_stat st;
    assert_int_equal(wsf_stat(root, "a/b/c", &st), 0);
    assert_int_equal(st.type, WSF_DIR);
    assert_int_equal(st.mode, 0755);
    json_t *entry = wsf_stat_json("c", &st);
    assert_string_equal(json_string_value(json_object_get(entry, "type")), "dir");
    assert_string_equal(json_string_value(json_object_get(entry, "mode")), "0755");
    json_decref(entry);
    assert_int_equal(wsf_stat(root, "a/b/missing", &st), AL_ENOTFOUND);
    assert_int_equal(wsf_stat(root, "..", &st), AL_EINVAL);
    assert_int_equal(put("a/file", "x", NULL), 0);
    assert_int_equal(wsf_mkdir(root, "a/file", own_uid, own_gid, &created), AL_EEXISTS);
    assert_int_equal(wsf_mkdir(root, "a/file/sub", own_uid, own_gid, &created), AL_EEXISTS);
    assert_int_equal(symlink("a/b", wsp("blink")), 0);
    assert_int_equal(wsf_mkdir(root, "blink", own_uid, own_gid, &created), 0);
    assert_int_equal(created, 0);
    assert_int_equal(wsf_mkdir(root, "blink/new", own_uid, own_gid, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(access(wsp("a/b/new"), F_OK), 0);
    /* a dangling link inside is not made into a directory */
    assert_int_equal(symlink("nowhere", wsp("dangling")), 0);
    assert_true(wsf_mkdir(root, "dangling/x", own_uid, own_gid, &created) < 0);
    assert_int_equal(access(wsp("nowhere"), F_OK), -1);
    /* 256 levels (the most a path may have) */
    char deep[WSF_PATH_MAX + 1];
    size_t o = 0;
    for (int i = 0; i < WSF_COMPONENTS_MAX; i++) {
        deep[o++] = 'd';
        deep[o++] = '/';
    }
    deep[o - 1] = '\0';
    assert_int_equal(wsf_mkdir(root, deep, own_uid, own_gid, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(wsf_delete(root, "d", 1), 0);
}

/* ---- DELETE ---- */

static void delete_cases(void **state)
{
    struct stat sb;
    assert_int_equal(put("f", "x", NULL), 0);
    assert_int_equal(put("t/a/b/c.txt", "x", NULL), 0);
    assert_int_equal(put("t/a/d.txt", "x", NULL), 0);
    assert_int_equal(wsf_mkdir(root, "t/e/f/g", own_uid, own_gid, NULL), 0);
    assert_int_equal(wsf_mkdir(root, "empty", own_uid, own_gid, NULL), 0);
    assert_int_equal(symlink("../f", wsp("t/a/flink")), 0);
    assert_int_equal(symlink(outdir, wsp("t/outdir")), 0);
    assert_int_equal(symlink("../../outside", wsp("t/a/up")), 0);
    assert_int_equal(symlink("f", wsp("flink")), 0);
    assert_int_equal(mkfifo(wsp("t/e/fifo"), 0600), 0);

    assert_int_equal(wsf_delete(root, "", 1), AL_EPERM);
    assert_int_equal(wsf_delete(root, "missing", 0), AL_ENOTFOUND);
    assert_int_equal(wsf_delete(root, "missing/x", 0), AL_ENOTFOUND);
    assert_int_equal(wsf_delete(root, "f/x", 0), AL_EINVAL);
    assert_int_equal(wsf_delete(root, "t", 0), AL_EEXISTS);
    assert_int_equal(wsf_delete(root, "flink", 0), 0); /* the link, not f */
    assert_int_equal(lstat(wsp("f"), &sb), 0);
    assert_int_equal(wsf_delete(root, "empty", 0), 0);
    assert_int_equal(lstat(wsp("empty"), &sb), -1);
    assert_int_equal(wsf_delete(root, "t", 1), 0);
    assert_int_equal(lstat(wsp("t"), &sb), -1);
    assert_int_equal(lstat(wsp("f"), &sb), 0); /* target of t/a/flink */
    assert_int_equal(wsf_delete(root, "f", 0), 0);
    assert_int_equal(wsf_delete(root, "f", 0), AL_ENOTFOUND);
    assert_outside_intact();
}

/* A chain of `depth` directories named `name` below `parent` (relative to
 * the workspace), each holding a file, and at the bottom a symlink to the
 * outside directory. */
static void make_chain(const char *parent, const char *name, int depth)
{
    int fd = open(wsp(parent), O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    for (int i = 0; i < depth; i++) {
        assert_int_equal(mkdirat(fd, name, 0755), 0);
        int next = openat(fd, name, O_RDONLY | O_DIRECTORY);
        assert_true(next >= 0);
        close(fd);
        fd = next;
        int f = openat(fd, "file", O_WRONLY | O_CREAT, 0644);
        assert_true(f >= 0);
        close(f);
    }
    assert_int_equal(symlinkat(outdir, fd, "out"), 0);
    close(fd);
}

/* Trees of any depth go, with at most WSF_DELETE_OPEN_MAX directories open
 * (deeper subtrees are moved up first); nothing outside is touched. */
static void delete_deep_tree(void **state)
{
    static const int depths[] = {1, WSF_DELETE_OPEN_MAX - 1, WSF_DELETE_OPEN_MAX,
                                 WSF_DELETE_OPEN_MAX + 1, 3 * WSF_DELETE_OPEN_MAX + 5};
    for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        make_chain("", "d", depths[i]);
        int err = wsf_delete(root, "d", 1);
        if (err != 0)
            fail_msg("depth %d: %d %s", depths[i], err, al_error_last());
        assert_int_equal(access(wsp("d"), F_OK), -1);
        assert_outside_intact();
    }
    /* a wide and deep tree: four chains below one directory */
    assert_int_equal(mkdir(wsp("w"), 0755), 0);
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", i);
        make_chain("w", name, 2 * WSF_DELETE_OPEN_MAX);
    }
    assert_int_equal(wsf_delete(root, "w", 1), 0);
    assert_int_equal(access(wsp("w"), F_OK), -1);
    assert_outside_intact();
}

/* The sandbox swaps a directory of the tree being deleted for a symlink to
 * an outside directory, over and over, while the tree is deleted: whatever
 * the interleaving, nothing outside is touched. */
static volatile int swapping, swaps;

/* symlink() where failing is fine (the other thread won the race). */
static void try_symlink(const char *target, const char *path)
{
    if (symlink(target, path) < 0)
        return;
}

static void *swapper(void *arg)
{
    char sub[400], old[400];
    snprintf(sub, sizeof(sub), "%s/t/sub", ws);
    snprintf(old, sizeof(old), "%s/t/sub.old", ws);
    while (swapping) {
        if (rename(sub, old) == 0) {
            try_symlink(outdir, sub);
            unlink(sub);
            rename(old, sub);
            __atomic_add_fetch(&swaps, 1, __ATOMIC_SEQ_CST);
        }
        try_symlink(outdir, sub);
    }
    return NULL;
}

static void delete_races_symlink_swap(void **state)
{
    int outcomes[3] = {0};
    for (int round = 0; round < 50; round++) {
        char name[32];
        assert_int_equal(wsf_mkdir(root, "t/sub/deeper", own_uid, own_gid, NULL), 0);
        for (int i = 0; i < 40; i++) {
            snprintf(name, sizeof(name), "t/sub/f%d", i);
            assert_int_equal(put(name, "x", NULL), 0);
        }
        /* "keep" is also the name of the outside file */
        assert_int_equal(put("t/sub/keep", "x", NULL), 0);
        pthread_t th;
        swapping = 1;
        swaps = 0;
        assert_int_equal(pthread_create(&th, NULL, swapper, NULL), 0);
        while (__atomic_load_n(&swaps, __ATOMIC_SEQ_CST) < 1)
            sched_yield();
        int err = wsf_delete(root, "t", 1);
        swapping = 0;
        pthread_join(th, NULL);
        if (err != 0 && err != AL_EAGAIN && err != AL_ENOTFOUND)
            fail_msg("delete: %d %s", err, al_error_last());
        outcomes[err == 0 ? 0 : err == AL_EAGAIN ? 1 : 2]++;
        assert_outside_intact();
        /* clean up whatever is left for the next round */
        unlink(wsp("t/sub"));
        wsf_delete(root, "t", 1);
    }
    print_message("50 deletes under a swapping sandbox: %d done, %d gave up (busy), %d lost the "
                  "tree\n",
                  outcomes[0], outcomes[1], outcomes[2]);
}

/* Makes open and openat with O_TMPFILE fail with EOPNOTSUPP, as on a
 * filesystem without it, for the rest of the process (seccomp, under
 * no_new_privs). The flag's own bit is compared: O_TMPFILE also carries
 * O_DIRECTORY. */
static void refuse_tmpfile(void)
{
    const scmp_datum_t tmpfile_bit = 020000000;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    assert_non_null(ctx);
    assert_int_equal(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EOPNOTSUPP), SCMP_SYS(openat), 1,
                                      SCMP_A2(SCMP_CMP_MASKED_EQ, tmpfile_bit, tmpfile_bit)),
                     0);
    assert_int_equal(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EOPNOTSUPP), SCMP_SYS(open), 1,
                                      SCMP_A1(SCMP_CMP_MASKED_EQ, tmpfile_bit, tmpfile_bit)),
                     0);
    assert_int_equal(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    assert_int_equal(seccomp_load(ctx), 0);
    seccomp_release(ctx);
}

/* With --no-tmpfile, the upload cases only, on the random-name path. */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalize_folds),
        cmocka_unit_test(normalize_refuses),
        cmocka_unit_test(normalize_limits),
        cmocka_unit_test_setup_teardown(get_file_and_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(get_refuses_fifo_and_device, setup, teardown),
        cmocka_unit_test_setup_teardown(get_listing_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(get_refuses_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(put_mkdir_delete_confined, setup, teardown),
        cmocka_unit_test_setup_teardown(put_hard_link_not_written_through, setup, teardown),
        cmocka_unit_test_setup_teardown(unnormalised_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(put_creates_parents_and_owns, setup, teardown),
        cmocka_unit_test_setup_teardown(put_refuses_directories, setup, teardown),
        cmocka_unit_test_setup_teardown(mkdir_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_deep_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_races_symlink_swap, setup, teardown),
        /* last: it moves the process into a private mount namespace */
        cmocka_unit_test_setup_teardown(proc_magic_links_refused, setup, teardown),
    };
    if (argc == 2 && strcmp(argv[1], "--no-tmpfile") == 0) {
        no_tmpfile = 1;
        refuse_tmpfile();
        cmocka_set_test_filter("put_*");
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--no-tmpfile]\n", argv[0]);
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
