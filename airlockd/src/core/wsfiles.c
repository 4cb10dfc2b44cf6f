/* Workspace file access confined with openat2(RESOLVE_BENEATH); see wsfiles.h. */
#include "airlockd/core/wsfiles.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* How every client path is resolved: beneath the root, /proc magic links
 * refused (they would jump anywhere). */
#define WS_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
/* How a recursive delete steps into a subdirectory: one name, no symlink at
 * all, no other mount. */
#define WS_RESOLVE_WALK                                                                            \
    (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV)
/* openat2 answers EAGAIN when a rename raced with a RESOLVE_BENEATH walk. */
#define WS_EAGAIN_TRIES  64
#define WS_RMDIR_RESCANS 8
/* Subtrees a recursive delete may move up before it calls the tree endless. */
#define WS_RM_MOVES_MAX 65536

/* ---- paths ---- */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static int utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len(p + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* Checks every byte of a client path: no NUL, no control byte, UTF-8. */
static int path_bytes_check(const char *path, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == 0)
            return al_error_set(AL_EINVAL, "NUL byte in path");
        if (c < 0x20 || c == 0x7f)
            return al_error_set(AL_EINVAL, "control byte 0x%02x in path", c);
    }
    if (!utf8_valid(path, len))
        return al_error_set(AL_EINVAL, "path is not valid UTF-8");
    return 0;
}

int wsf_path_normalize(const char *path, size_t len, char *out, size_t outsz)
{
    int err = 0;
    size_t o = 0;
    unsigned ncomp = 0;

    if (outsz == 0)
        return al_error_set(AL_ETOOBIG, "no room for the normalised path");
    out[0] = '\0';
    if (len > WSF_PATH_MAX)
        return al_error_set(AL_EINVAL, "path longer than %d bytes", WSF_PATH_MAX);
    if (len > 0 && path[0] == '/')
        return al_error_set(AL_EINVAL, "absolute path");
    if ((err = path_bytes_check(path, len)) < 0)
        return err;
    for (size_t i = 0; i < len;) {
        const char *slash = memchr(path + i, '/', len - i);
        size_t n = (slash ? (size_t)(slash - path) : len) - i;
        const char *comp = path + i;
        i += n + 1;
        if (n == 0 || (n == 1 && comp[0] == '.'))
            continue;
        if (n == 2 && comp[0] == '.' && comp[1] == '.') {
            err = al_error_set(AL_EINVAL, "\"..\" in path");
            goto out;
        }
        if (n > WSF_NAME_MAX) {
            err = al_error_set(AL_EINVAL, "path component longer than %d bytes", WSF_NAME_MAX);
            goto out;
        }
        if (++ncomp > WSF_COMPONENTS_MAX) {
            err = al_error_set(AL_EINVAL, "more than %d path components", WSF_COMPONENTS_MAX);
            goto out;
        }
        if (o + (o ? 1 : 0) + n + 1 > outsz) {
            err = al_error_set(AL_ETOOBIG, "no room for the normalised path");
            goto out;
        }
        if (o)
            out[o++] = '/';
        memcpy(out + o, comp, n);
        o += n;
    }
    out[o] = '\0';
out:
    if (err < 0)
        out[0] = '\0';
    return err;
}

/* Refuses a `rel` that is not in normalised form: the functions below take
 * its last component as one name, which must never be "..", "" or too long,
 * even when a caller forgot wsf_path_normalize. */
static int ws_rel_check(const char *rel)
{
    char norm[WSF_PATH_MAX + 1];
    size_t len = strnlen(rel, WSF_PATH_MAX + 1);
    if (wsf_path_normalize(rel, len, norm, sizeof(norm)) < 0 || strcmp(norm, rel) != 0)
        return al_error_set(AL_EINVAL, "path is not normalised");
    return 0;
}

/* Splits normalised `rel` into its directory (into dir, "" for the root) and
 * returns its last component (pointing into rel). */
static const char *path_split(const char *rel, char dir[WSF_PATH_MAX + 1])
{
    const char *slash = strrchr(rel, '/');
    size_t n = slash ? (size_t)(slash - rel) : 0;
    if (n > WSF_PATH_MAX)
        n = WSF_PATH_MAX;
    memcpy(dir, rel, n);
    dir[n] = '\0';
    return slash ? slash + 1 : rel;
}

/* ---- resolution ---- */

/* openat2 of `rel` ("" = dirfd itself) beneath dirfd, retried while a
 * concurrent rename makes the kernel answer EAGAIN. Returns a descriptor or
 * -errno. */
static int ws_openat2(int dirfd, const char *rel, uint64_t flags, uint64_t resolve)
{
    struct open_how how = {.flags = flags | O_CLOEXEC, .mode = 0, .resolve = resolve};
    const char *p = rel[0] ? rel : ".";
    for (int i = 0; i < WS_EAGAIN_TRIES; i++) {
        long fd = syscall(SYS_openat2, dirfd, p, &how, sizeof(how));
        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
    }
    return -EAGAIN;
}

/* The AL_E* code and message for errno `e` met while resolving or changing
 * `rel`. */
static int ws_errno(int e, const char *rel)
{
    const char *shown = rel[0] ? rel : "(workspace root)";
    switch (e) {
    case ENOENT:
        return al_error_set(AL_ENOTFOUND, "no such file or directory: %s", shown);
    case ENOTDIR:
        return al_error_set(AL_EINVAL, "a component of the path is not a directory: %s", shown);
    case EXDEV:
        return al_error_set(AL_EPERM, "path leaves the workspace: %s", shown);
    case ELOOP:
        return al_error_set(
            AL_EPERM, "path leaves the workspace (magic link) or has a symlink loop: %s", shown);
    case EISDIR:
        return al_error_set(AL_EEXISTS, "is a directory: %s", shown);
    case EEXIST:
    case ENOTEMPTY:
        return al_error_set(AL_EEXISTS, "directory not empty: %s", shown);
    case EBUSY:
        return al_error_set(AL_EPERM, "busy or a mount point: %s", shown);
    case EACCES:
    case EPERM:
        return al_error_set_errno(AL_EPERM, e, "%s", shown);
    case ENAMETOOLONG:
        return al_error_set(AL_EINVAL, "name too long: %s", shown);
    case EAGAIN:
        return al_error_set(AL_EAGAIN, "the workspace kept changing while resolving %s", shown);
    case ENOMEM:
        return al_error_set(AL_ENOMEM, "out of memory");
    case ENOSYS:
        return al_error_set(AL_EUNSUPP, "openat2 is not supported (Linux 5.6 or later needed)");
    default:
        return al_error_set_errno(AL_EIO, e, "%s", shown);
    }
}

/* Reopens an O_PATH descriptor with real access `flags`. The O_PATH
 * descriptor pins the inode, so this opens exactly the object that was
 * resolved and checked. Returns a descriptor or -errno. */
static int ws_reopen(int pathfd, int flags)
{
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pathfd);
    int fd = open(proc, flags | O_CLOEXEC | O_NOCTTY);
    return fd >= 0 ? fd : -errno;
}

int wsf_root_open(const char *workspace_dir, int *out_fd)
{
    *out_fd = -1;
    int fd = open(workspace_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return al_error_set_errno(errno == ENOENT ? AL_ENOTFOUND : AL_EIO, errno,
                                  "open workspace %s", workspace_dir);
    *out_fd = fd;
    return 0;
}

/* Gives the directory just made as `name` in dirfd to uid:gid with mode
 * 0755 (mkdirat's mode is cut by the umask). O_NOFOLLOW: if the sandbox
 * swapped it for a symlink meanwhile, nothing outside is touched. */
static int ws_dir_chown(int dirfd, const char *name, uid_t uid, gid_t gid, const char *rel)
{
    cleanup_fd int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ws_errno(errno, rel);
    if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0755) < 0)
        return al_error_set_errno(AL_EIO, errno, "chown %s", rel);
    return 0;
}

/* Opens directory `dir` (normalised, "" = root) beneath root_fd as an O_PATH
 * descriptor into *out_fd (caller closes). With `create`, missing
 * components are made (0755, uid:gid), each one by mkdirat on a single name
 * in the directory resolved just before, and *made (may be NULL) tells
 * whether the last one was. A component that exists and is not a directory
 * is AL_EEXISTS with `create`, AL_EINVAL without. */
static int ws_dir_open(int root_fd, const char *dir, int create, uid_t uid, gid_t gid, int *out_fd,
                       int *made)
{
    int err = 0;
    char prefix[WSF_PATH_MAX + 1];
    cleanup_fd int cur = -1;

    *out_fd = -1;
    if (made)
        *made = 0;
    int fd = ws_openat2(root_fd, dir, O_PATH | O_DIRECTORY, WS_RESOLVE);
    if (fd >= 0 || !create || (fd != -ENOENT && fd != -ENOTDIR)) {
        if (fd < 0)
            return fd == -ENOTDIR ? al_error_set(AL_EINVAL, "not a directory: %s", dir)
                                  : ws_errno(-fd, dir);
        *out_fd = fd;
        return 0;
    }
    /* Walk from the root, each prefix resolved from the root again, so that
     * symlinks inside the workspace are treated as in one openat2 call. */
    if ((cur = ws_openat2(root_fd, "", O_PATH | O_DIRECTORY, WS_RESOLVE)) < 0)
        return ws_errno(-cur, "");
    size_t len = strlen(dir);
    for (size_t start = 0; start < len;) {
        const char *slash = strchr(dir + start, '/');
        size_t end = slash ? (size_t)(slash - dir) : len;
        memcpy(prefix, dir, end);
        prefix[end] = '\0';
        const char *name = prefix + start;
        int made_here = 0;
        fd = ws_openat2(root_fd, prefix, O_PATH | O_DIRECTORY, WS_RESOLVE);
        if (fd == -ENOENT) {
            if (mkdirat(cur, name, 0755) == 0) {
                made_here = 1;
                if ((err = ws_dir_chown(cur, name, uid, gid, prefix)) < 0)
                    goto out;
            } else if (errno != EEXIST) {
                err = ws_errno(errno, prefix);
                goto out;
            }
            fd = ws_openat2(root_fd, prefix, O_PATH | O_DIRECTORY, WS_RESOLVE);
        }
        if (fd < 0) {
            err = fd == -ENOTDIR
                      ? al_error_set(AL_EEXISTS, "exists and is not a directory: %s", prefix)
                      : ws_errno(-fd, prefix);
            goto out;
        }
        close(cur);
        cur = fd;
        if (made)
            *made = made_here;
        start = end + 1;
    }
    *out_fd = steal_fd(&cur);
out:
    return err;
}

/* ---- stat and JSON ---- */

const char *wsf_type_name(int type)
{
    switch (type) {
    case WSF_FILE:
        return "file";
    case WSF_DIR:
        return "dir";
    case WSF_SYMLINK:
        return "symlink";
    default:
        return "other";
    }
}

static void ws_stat_fill(struct wsf_stat *st, const struct stat *sb)
{
    if (!st)
        return;
    if (S_ISREG(sb->st_mode))
        st->type = WSF_FILE;
    else if (S_ISDIR(sb->st_mode))
        st->type = WSF_DIR;
    else if (S_ISLNK(sb->st_mode))
        st->type = WSF_SYMLINK;
    else
        st->type = WSF_OTHER;
    st->size = sb->st_size > 0 ? (uint64_t)sb->st_size : 0;
    st->mode = sb->st_mode & 07777;
    st->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
}

void wsf_time_format(int64_t ns, char *out, size_t outsz)
{
    time_t sec = (time_t)(ns / 1000000000);
    long ms = (long)((ns % 1000000000) / 1000000);
    if (ms < 0) {
        sec -= 1;
        ms += 1000;
    }
    struct tm tm;
    if (!gmtime_r(&sec, &tm)) {
        snprintf(out, outsz, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

json_t *wsf_stat_json(const char *name, const struct wsf_stat *st)
{
    char mode[16], mtime[40];
    snprintf(mode, sizeof(mode), "%04o", st->mode & 07777);
    wsf_time_format(st->mtime_ns, mtime, sizeof(mtime));
    json_t *name_j = json_string(name);
    if (!name_j)
        return NULL;
    return json_pack("{s:o, s:s, s:I, s:s, s:s}", "name", name_j, "type", wsf_type_name(st->type),
                     "size", (json_int_t)st->size, "mode", mode, "mtime", mtime);
}

/* ---- GET ---- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(char **names, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        free(names[i]);
}

/* Keeps the WSF_LIST_MAX smallest of n sorted-or-not names; returns the new
 * count. */
static size_t names_trim(char **names, size_t n)
{
    qsort(names, n, sizeof(*names), name_cmp);
    if (n <= WSF_LIST_MAX)
        return n;
    names_free(names, WSF_LIST_MAX, n);
    return WSF_LIST_MAX;
}

/* Lists directory `dfd` (taken over, closed) as the wsf_get object. */
static int ws_list(int dfd, const char *rel, json_t **out)
{
    int err = 0;
    size_t n = 0, unlisted = 0;
    int truncated = 0;
    char **names = NULL;
    json_t *obj = NULL, *entries = NULL;
    DIR *d = fdopendir(dfd);

    if (!d) {
        err = ws_errno(errno, rel);
        close(dfd);
        goto out;
    }
    /* Bounded: at most 2 * WSF_LIST_MAX names are held; the smallest
     * WSF_LIST_MAX are kept whenever the array fills. */
    names = calloc(2 * WSF_LIST_MAX, sizeof(*names));
    if (!names) {
        err = al_error_set(AL_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno) {
                err = ws_errno(errno, rel);
                goto out;
            }
            break;
        }
        if (al_path_is_dot(de->d_name))
            continue;
        if (!utf8_valid(de->d_name, strlen(de->d_name))) {
            unlisted++;
            continue;
        }
        if (n == 2 * WSF_LIST_MAX) {
            n = names_trim(names, n);
            truncated = 1;
        }
        if (!(names[n] = strdup(de->d_name))) {
            err = al_error_set(AL_ENOMEM, "out of memory");
            goto out;
        }
        n++;
    }
    if (n > WSF_LIST_MAX)
        truncated = 1;
    n = names_trim(names, n);

    obj = json_object();
    entries = json_array();
    if (!obj || !entries || json_object_set_new(obj, "path", json_string(rel)) < 0) {
        err = al_error_set(AL_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        struct wsf_stat st;
        if (fstatat(dirfd(d), names[i], &sb, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) /* removed meanwhile */
                continue;
            err = ws_errno(errno, rel);
            goto out;
        }
        ws_stat_fill(&st, &sb);
        if (json_array_append_new(entries, wsf_stat_json(names[i], &st)) < 0) {
            err = al_error_set(AL_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (json_object_set(obj, "entries", entries) < 0 ||
        (truncated && json_object_set_new(obj, "truncated", json_true()) < 0) ||
        (unlisted &&
         json_object_set_new(obj, "unlisted", json_integer((json_int_t)unlisted)) < 0)) {
        err = al_error_set(AL_ENOMEM, "out of memory");
        goto out;
    }
    *out = steal_pointer(&obj);
out:
    if (names) {
        names_free(names, 0, n);
        free(names);
    }
    if (d)
        closedir(d);
    json_decref(entries);
    json_decref(obj);
    return err;
}

int wsf_get(int root_fd, const char *rel, int *out_fd, struct wsf_stat *st, json_t **out_listing)
{
    struct stat sb;
    int fd;

    *out_fd = -1;
    *out_listing = NULL;
    if ((fd = ws_rel_check(rel)) < 0)
        return fd;
    /* O_PATH first: it neither blocks on a FIFO nor opens a device. */
    cleanup_fd int pfd = ws_openat2(root_fd, rel, O_PATH, WS_RESOLVE);
    if (pfd < 0)
        return ws_errno(-pfd, rel);
    if (fstat(pfd, &sb) < 0)
        return ws_errno(errno, rel);
    if (S_ISREG(sb.st_mode)) {
        if ((fd = ws_reopen(pfd, O_RDONLY)) < 0)
            return ws_errno(-fd, rel);
        ws_stat_fill(st, &sb);
        *out_fd = fd;
        return 0;
    }
    if (!S_ISDIR(sb.st_mode))
        return al_error_set(AL_EPERM, "not a regular file or directory: %s", rel);
    if ((fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return ws_errno(errno, rel);
    ws_stat_fill(st, &sb);
    return ws_list(fd, rel, out_listing);
}

int wsf_stat(int root_fd, const char *rel, struct wsf_stat *st)
{
    struct stat sb;
    int err = ws_rel_check(rel);
    if (err < 0)
        return err;
    cleanup_fd int pfd = ws_openat2(root_fd, rel, O_PATH, WS_RESOLVE);
    if (pfd < 0)
        return ws_errno(-pfd, rel);
    if (fstat(pfd, &sb) < 0)
        return ws_errno(errno, rel);
    ws_stat_fill(st, &sb);
    return 0;
}

/* ---- PUT ---- */

struct wsf_upload {
    int dir_fd;   /* O_PATH, the target directory */
    int fd;       /* the temporary file, O_WRONLY */
    char *rel;    /* the target, for messages */
    char *name;   /* its last component */
    char tmp[64]; /* the temporary file's name in dir_fd; "" while unnamed */
    uint64_t bytes;
    int failed;
};

/* A fresh random name for a temporary file in the target directory. */
static void ws_tmp_name(char *out, size_t outsz)
{
    unsigned long long r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
    snprintf(out, outsz, ".airlock-upload-%016llx", r);
}

/* Creates the temporary file: unnamed with O_TMPFILE where the filesystem
 * has it, else under a random name (O_EXCL | O_NOFOLLOW, so never an existing
 * file or a symlink the sandbox planted). */
static int ws_tmp_create(struct wsf_upload *u)
{
    u->fd = openat(u->dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (u->fd >= 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return ws_errno(errno, u->rel);
    for (int i = 0; i < 16; i++) {
        ws_tmp_name(u->tmp, sizeof(u->tmp));
        u->fd =
            openat(u->dir_fd, u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (u->fd >= 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    int e = errno;
    u->tmp[0] = '\0';
    return ws_errno(e, u->rel);
}

void wsf_put_abort(struct wsf_upload *u)
{
    if (!u)
        return;
    if (u->tmp[0])
        unlinkat(u->dir_fd, u->tmp, 0);
    if (u->fd >= 0)
        close(u->fd);
    if (u->dir_fd >= 0)
        close(u->dir_fd);
    free(u->rel);
    free(u);
}

int wsf_put_begin(int root_fd, const char *rel, uid_t uid, gid_t gid, struct wsf_upload **out)
{
    int err = 0;
    char dir[WSF_PATH_MAX + 1];
    struct wsf_upload *u = NULL;

    *out = NULL;
    if ((err = ws_rel_check(rel)) < 0)
        return err;
    if (!rel[0])
        return al_error_set(AL_EEXISTS, "the workspace root is a directory");
    if (!(u = calloc(1, sizeof(*u))) || !(u->rel = strdup(rel))) {
        free(u);
        return al_error_set(AL_ENOMEM, "out of memory");
    }
    u->dir_fd = u->fd = -1;
    u->name = (char *)path_split(u->rel, dir);
    if ((err = ws_dir_open(root_fd, dir, 1, uid, gid, &u->dir_fd, NULL)) < 0)
        goto out;
    if ((err = ws_tmp_create(u)) < 0)
        goto out;
    /* Owned by the sandbox's user from the start, so its quota pays. */
    if (fchown(u->fd, uid, gid) < 0 || fchmod(u->fd, 0644) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "chown upload of %s", rel);
        goto out;
    }
    *out = steal_pointer(&u);
out:
    wsf_put_abort(u);
    return err;
}

int wsf_put_write(struct wsf_upload *u, const void *data, size_t len)
{
    const char *p = data;
    if (u->failed)
        return al_error_set(AL_EIO, "upload of %s already failed", u->rel);
    while (len > 0) {
        ssize_t n = write(u->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            u->failed = 1;
            return al_error_set_errno(errno == ENOSPC || errno == EDQUOT ? AL_ETOOBIG : AL_EIO,
                                      errno, "write %s", u->rel);
        }
        p += n;
        len -= (size_t)n;
        u->bytes += (uint64_t)n;
    }
    return 0;
}

uint64_t wsf_put_bytes(const struct wsf_upload *u)
{
    return u->bytes;
}

/* Gives the O_TMPFILE file a name in the target directory: `name` itself
 * (which fails with EEXIST when taken) or, with name NULL, a random one into
 * u->tmp. Returns 0 or -errno. */
static int ws_tmp_link(struct wsf_upload *u, const char *name)
{
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", u->fd);
    for (int i = 0; i < 16; i++) {
        char tmp[sizeof(u->tmp)];
        if (!name)
            ws_tmp_name(tmp, sizeof(tmp));
        const char *target = name ? name : tmp;
        if (linkat(AT_FDCWD, proc, u->dir_fd, target, AT_SYMLINK_FOLLOW) == 0) {
            if (!name)
                memcpy(u->tmp, tmp, sizeof(tmp));
            return 0;
        }
        if (errno != EEXIST || name)
            return -errno;
    }
    return -EEXIST;
}

int wsf_put_commit(struct wsf_upload *u, int *created, struct wsf_stat *st)
{
    int err = 0, made = 0;
    struct stat sb;

    if (u->failed) {
        err = al_error_set(AL_EIO, "upload of %s already failed", u->rel);
        goto out;
    }
    /* Keep the permission bits of a file being replaced (never set-id). */
    if (fstatat(u->dir_fd, u->name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            err = al_error_set(AL_EEXISTS, "is a directory: %s", u->rel);
            goto out;
        }
        if (S_ISREG(sb.st_mode) && fchmod(u->fd, sb.st_mode & 0777) < 0) {
            err = al_error_set_errno(AL_EIO, errno, "chmod %s", u->rel);
            goto out;
        }
    }
    if (!u->tmp[0]) {
        int r = ws_tmp_link(u, u->name);
        if (r == 0) {
            made = 1;
            goto done;
        }
        if (r != -EEXIST || (r = ws_tmp_link(u, NULL)) < 0) {
            err = ws_errno(-r, u->rel);
            goto out;
        }
    }
    /* rename never follows a symlink at the target: it replaces it. */
    if (renameat2(u->dir_fd, u->tmp, u->dir_fd, u->name, RENAME_NOREPLACE) == 0) {
        made = 1;
    } else if (errno == EEXIST || errno == EINVAL) {
        int existed = errno == EEXIST || fstatat(u->dir_fd, u->name, &sb, AT_SYMLINK_NOFOLLOW) == 0;
        if (renameat(u->dir_fd, u->tmp, u->dir_fd, u->name) < 0) {
            err = ws_errno(errno, u->rel);
            goto out;
        }
        made = !existed;
    } else {
        err = ws_errno(errno, u->rel);
        goto out;
    }
    u->tmp[0] = '\0';
done:
    if (fstat(u->fd, &sb) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "stat %s", u->rel);
        goto out;
    }
    ws_stat_fill(st, &sb);
    if (created)
        *created = made;
out:
    wsf_put_abort(u);
    return err;
}

/* ---- mkdir ---- */

int wsf_mkdir(int root_fd, const char *rel, uid_t uid, gid_t gid, int *created)
{
    int made = 0, fd = -1;
    int err = ws_rel_check(rel);
    if (err == 0)
        err = ws_dir_open(root_fd, rel, 1, uid, gid, &fd, &made);
    if (err == 0)
        close(fd);
    if (created)
        *created = err == 0 && made;
    return err;
}

/* ---- DELETE ---- */

struct rm_level {
    DIR *d;
    char name[NAME_MAX + 1]; /* this directory's name in its parent */
    int rescans;             /* rescans after the sandbox added entries */
    int moved;               /* top level: subtrees moved in since the last scan */
};

/* Moves directory `name` of dfd (at the deepest level held open) up into the
 * top directory of the tree under a fresh name, where the walk meets it
 * again; so no more than WSF_DELETE_OPEN_MAX directories are ever open,
 * however deep the tree. The move stays inside the tree being deleted, and
 * rename moves a symlink swapped in as the link itself. Returns 0 or -errno. */
static int rm_move_up(int dfd, const char *name, int top_dfd)
{
    char tmp[64];
    for (int i = 0; i < 16; i++) {
        unsigned long long r = 0;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            r = (unsigned long long)time(NULL) + (unsigned long long)i;
        snprintf(tmp, sizeof(tmp), ".airlock-rm-%016llx", r);
        if (renameat2(dfd, name, top_dfd, tmp, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno == EINVAL && renameat(dfd, name, top_dfd, tmp) == 0)
            return 0;
        if (errno != EEXIST && errno != ENOTEMPTY)
            return -errno;
    }
    return -EEXIST;
}

/* Opens directory `name` in parent for the walk: no symlink, no other mount.
 * Returns a DIR or NULL with errno. */
static DIR *rm_open(int parent, const char *name)
{
    int fd = ws_openat2(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, WS_RESOLVE_WALK);
    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return d;
}

/* Removes directory `name` in `top_fd` and everything below it, depth first,
 * with an explicit stack of directory streams (never path strings, never
 * ".."). */
static int rm_tree(int top_fd, const char *name, const char *rel)
{
    int err = 0;
    size_t n = 0;
    unsigned moves = 0;
    struct rm_level *st = calloc(WSF_DELETE_OPEN_MAX, sizeof(*st));

    if (!st)
        return al_error_set(AL_ENOMEM, "out of memory");
    snprintf(st[0].name, sizeof(st[0].name), "%s", name);
    if (!(st[0].d = rm_open(top_fd, name))) {
        /* swapped for a symlink or file since it was a directory */
        if ((errno == ENOTDIR || errno == ELOOP) && unlinkat(top_fd, name, 0) == 0)
            goto out;
        err = ws_errno(errno, rel);
        goto out;
    }
    n = 1;
    while (n > 0) {
        struct rm_level *lv = &st[n - 1];
        int dfd = dirfd(lv->d);
        int parent = n >= 2 ? dirfd(st[n - 2].d) : top_fd;
        errno = 0;
        struct dirent *de = readdir(lv->d);
        if (!de) {
            if (errno) {
                err = ws_errno(errno, rel);
                goto out;
            }
            closedir(lv->d);
            lv->d = NULL;
            /* ENOENT, ENOTDIR: the sandbox moved it away, maybe put a
             * symlink there; the parent's rescan sees to what is left. */
            if (unlinkat(parent, lv->name, AT_REMOVEDIR) == 0 || errno == ENOENT ||
                errno == ENOTDIR) {
                n--;
                continue;
            }
            if (errno == ENOTEMPTY || errno == EEXIST) {
                /* Entries appeared meanwhile: subtrees moved up here, or
                 * the sandbox runs on (which gets a few rescans). */
                int again = lv->moved || lv->rescans++ < WS_RMDIR_RESCANS;
                lv->moved = 0;
                if (!again) {
                    err = al_error_set(AL_EAGAIN, "files keep appearing in %s", rel);
                    goto out;
                }
                if ((lv->d = rm_open(parent, lv->name)))
                    continue;
            }
            err = ws_errno(errno, rel);
            goto out;
        }
        if (al_path_is_dot(de->d_name))
            continue;
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) {
            if (unlinkat(dfd, de->d_name, 0) == 0 || errno == ENOENT)
                continue;
            if (errno != EISDIR) { /* became a directory meanwhile */
                err = ws_errno(errno, rel);
                goto out;
            }
        }
        if (n == WSF_DELETE_OPEN_MAX) {
            int r =
                moves++ < WS_RM_MOVES_MAX ? rm_move_up(dfd, de->d_name, dirfd(st[0].d)) : -EAGAIN;
            if (r == 0)
                st[0].moved = 1;
            if (r == 0 || r == -ENOENT)
                continue;
            err = r == -EAGAIN ? al_error_set(AL_EAGAIN, "the tree keeps growing: %s", rel)
                               : ws_errno(-r, rel);
            goto out;
        }
        DIR *sub = rm_open(dfd, de->d_name);
        if (!sub) {
            /* Not a directory (any more): a file, or a symlink swapped in;
             * remove the entry itself, never what it points to. */
            if (errno == ENOTDIR || errno == ELOOP) {
                /* EISDIR: a directory again; the rescan will see it */
                if (unlinkat(dfd, de->d_name, 0) == 0 || errno == ENOENT || errno == EISDIR)
                    continue;
            } else if (errno == ENOENT) {
                continue;
            }
            err = errno == EXDEV ? al_error_set(AL_EPERM, "a mount point is inside %s", rel)
                                 : ws_errno(errno, rel);
            goto out;
        }
        st[n].d = sub;
        st[n].rescans = 0;
        st[n].moved = 0;
        snprintf(st[n].name, sizeof(st[n].name), "%s", de->d_name);
        n++;
    }
out:
    for (size_t i = 0; i < n; i++)
        if (st[i].d)
            closedir(st[i].d);
    free(st);
    return err;
}

int wsf_delete(int root_fd, const char *rel, int recursive)
{
    char dir[WSF_PATH_MAX + 1];
    struct stat sb;
    int err = 0;
    cleanup_fd int pfd = -1;

    if ((err = ws_rel_check(rel)) < 0)
        return err;
    if (!rel[0])
        return al_error_set(AL_EPERM, "refusing to delete the workspace root");
    const char *name = path_split(rel, dir);
    if ((err = ws_dir_open(root_fd, dir, 0, 0, 0, &pfd, NULL)) < 0)
        return err;
    if (fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
        return ws_errno(errno, rel);
    if (!S_ISDIR(sb.st_mode)) {
        if (unlinkat(pfd, name, 0) == 0)
            return 0;
        if (errno != EISDIR) /* swapped for a directory meanwhile */
            return ws_errno(errno, rel);
    }
    if (unlinkat(pfd, name, AT_REMOVEDIR) == 0)
        return 0;
    if (!recursive || (errno != ENOTEMPTY && errno != EEXIST))
        return ws_errno(errno, rel);
    return rm_tree(pfd, name, rel);
}
