/* `airlock session cp`: files in and out of a session's workspace, streamed
 * (neither side is held in memory whole). */
#include "session.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/termtext.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* A remote operand is "ID:PATH" with ID starting "s_" and holding no '/'
 * (write ./s_x:y for a local file of that name). Sets *id (allocated) and
 * *path (into arg) and returns 1; 0 for a local operand. */
static int remote_split(const char *arg, char **id, const char **path)
{
    const char *colon = strchr(arg, ':');
    if (strncmp(arg, "s_", 2) != 0 || !colon || memchr(arg, '/', (size_t)(colon - arg)))
        return 0;
    *id = strndup(arg, (size_t)(colon - arg));
    *path = colon + 1;
    /* The workspace is /workspace inside: accept that spelling too. */
    if (strncmp(*path, "/workspace/", 11) == 0)
        *path += 11;
    else if (strcmp(*path, "/workspace") == 0)
        *path += 10;
    return *id ? 1 : -1;
}

static int files_path(struct al_buf *out, const char *id, const char *path)
{
    struct al_buf suffix;
    int err;
    al_buf_init(&suffix, 16384);
    if ((err = al_buf_puts(&suffix, "/files/")) == 0 &&
        (err = cl_url_escape(&suffix, path, 1)) == 0)
        err = session_path(out, id, suffix.ptr);
    al_buf_free(&suffix);
    return err;
}

/* PUTs the open stream `f` (its stat in *st) to the workspace's `path`. */
static int upload_stream(struct cl_client *c, FILE *f, const struct stat *st, const char *id,
                         const char *path)
{
    struct al_buf url = {0};
    struct cl_response resp = {0};
    int rc = CL_EXIT_API;
    if (files_path(&url, id, path) < 0)
        goto out;
    struct cl_request req = {
        .method = "PUT",
        .path = url.ptr,
        .content_type = "application/octet-stream",
        .upload = f,
        .upload_len = S_ISREG(st->st_mode) ? (long long)st->st_size : -1,
    };
    if (cl_request_run(c, &req, &resp) < 0)
        goto out;
    rc = 0;
out:
    cl_response_free(&resp);
    al_buf_free(&url);
    return rc;
}

static int upload(struct cl_client *c, const char *local, const char *id, const char *path)
{
    FILE *f = strcmp(local, "-") == 0 ? stdin : fopen(local, "rb");
    struct stat st;
    int rc = CL_EXIT_API;
    if (!f) {
        fprintf(stderr, "airlock: session: %s: %s\n", local, strerror(errno));
        return CL_EXIT_API;
    }
    if (fstat(fileno(f), &st) < 0 || S_ISDIR(st.st_mode)) {
        fprintf(stderr, "airlock: session: %s: %s\n", local,
                S_ISDIR(st.st_mode) ? "is a directory (cp -r copies directories)"
                                    : strerror(errno));
        goto out;
    }
    if (!*path || path[strlen(path) - 1] == '/') {
        fprintf(stderr, "airlock: session: %s:%s: name the file to write\n", id, path);
        goto out;
    }
    rc = upload_stream(c, f, &st, id, path);
out:
    if (f != stdin)
        fclose(f);
    return rc;
}

struct download {
    int fd;
    const struct cl_response *resp;
    int checked;
};

static int download_sink(const char *data, size_t len, void *payload)
{
    struct download *d = payload;
    if (!d->checked) {
        d->checked = 1;
        if (strncmp(d->resp->content_type, "application/json", 16) == 0)
            return al_error_set(AL_EINVAL, "is a directory");
    }
    return session_write_all(d->fd, data, len);
}

static int download(struct cl_client *c, const char *id, const char *path, const char *local)
{
    struct al_buf url = {0};
    struct cl_response resp = {0};
    struct download d = {.fd = -1, .resp = &resp};
    cleanup_free char *target = NULL, *tmp = NULL;
    struct stat st;
    int rc = CL_EXIT_API, to_stdout = strcmp(local, "-") == 0;
    if (to_stdout) {
        d.fd = STDOUT_FILENO;
    } else {
        /* Into a directory: keep the remote file's name. */
        if (stat(local, &st) == 0 && S_ISDIR(st.st_mode)) {
            cleanup_free char *copy = strdup(path);
            const char *base = copy ? basename(copy) : NULL;
            if (!base || asprintf(&target, "%s/%s", local, base) < 0)
                goto out;
        } else if (!(target = strdup(local))) {
            goto out;
        }
        if (asprintf(&tmp, "%s.airlock-XXXXXX", target) < 0) {
            tmp = NULL;
            goto out;
        }
        if ((d.fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
            fprintf(stderr, "airlock: session: %s: %s\n", target, strerror(errno));
            free(tmp);
            tmp = NULL;
            goto out;
        }
    }
    if (files_path(&url, id, path) < 0)
        goto out;
    struct cl_request req = {
        .method = "GET", .path = url.ptr, .sink = download_sink, .payload = &d};
    if (cl_request_run(c, &req, &resp) < 0)
        goto out;
    if (!to_stdout) {
        if (fchmod(d.fd, 0644) < 0 || close(d.fd) < 0 || rename(tmp, target) < 0) {
            d.fd = -1;
            fprintf(stderr, "airlock: session: %s: %s\n", target, strerror(errno));
            goto out;
        }
        d.fd = -1;
        free(tmp);
        tmp = NULL;
    }
    rc = 0;
out:
    if (!to_stdout && d.fd >= 0)
        close(d.fd);
    if (tmp)
        unlink(tmp);
    cl_response_free(&resp);
    al_buf_free(&url);
    return rc;
}

/* ---- directories: cp -r and ls ---- */

#define TREE_DEPTH_MAX 64 /* directories below the one copied */

struct listing_sink {
    const struct cl_response *resp;
    struct al_buf body;
    int checked;
};

static int listing_collect(const char *data, size_t len, void *payload)
{
    struct listing_sink *l = payload;
    if (!l->checked) {
        l->checked = 1;
        if (strncmp(l->resp->content_type, "application/json", 16) != 0)
            return al_error_set(AL_EINVAL, "not a directory");
    }
    int err = al_buf_append(&l->body, data, len);
    return err < 0 ? al_error_set(err, "the listing is larger than %d bytes", CL_MAX_RESPONSE) : 0;
}

/* GETs the listing of the workspace directory `path` into *out (its
 * "entries" array checked; caller decrefs). 1 when `path` is not a
 * directory (nothing printed); 0; -1 after saying why. */
static int list_remote(struct cl_client *c, const char *id, const char *path, json_t **out)
{
    struct al_buf url = {0};
    struct cl_response resp = {0};
    struct listing_sink l = {.resp = &resp};
    int rc = -1;
    *out = NULL;
    al_buf_init(&l.body, CL_MAX_RESPONSE);
    if (files_path(&url, id, path) < 0)
        goto out;
    struct cl_request req = {
        .method = "GET", .path = url.ptr, .sink = listing_collect, .payload = &l};
    int err = cl_request_do(c, &req, &resp);
    if ((err == 0 || l.checked) && resp.status >= 200 && resp.status <= 299 &&
        strncmp(resp.content_type, "application/json", 16) != 0) {
        rc = 1; /* a file (an empty one never reached the sink) */
        goto out;
    }
    if (err < 0) {
        fprintf(stderr, "airlock: session: %s:%s: %s\n", id, path, al_error_last());
        goto out;
    }
    if (resp.status < 200 || resp.status > 299) {
        cl_response_print_error(&resp);
        goto out;
    }
    /* NUL allowed here so that a name holding one is refused by name_ok,
     * not the whole listing */
    json_t *doc = json_loadb(l.body.ptr ? l.body.ptr : "", l.body.len, JSON_ALLOW_NUL, NULL);
    if (!json_is_array(json_object_get(doc, "entries"))) {
        json_decref(doc);
        fprintf(stderr, "airlock: session: %s:%s: the listing is not what the API says\n", id,
                path);
        goto out;
    }
    *out = doc;
    rc = 0;
out:
    al_buf_free(&l.body);
    cl_response_free(&resp);
    al_buf_free(&url);
    return rc;
}

/* An entry name of a listing (untrusted) that may become a local file
 * name: no '/', NUL or control byte, not "", "." or "..". */
static int name_ok(json_t *name)
{
    const char *n = json_string_value(name);
    if (!n || !*n || strlen(n) != json_string_length(name) || strcmp(n, ".") == 0 ||
        strcmp(n, "..") == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)n; *p; p++)
        if (*p == '/' || *p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* "dir/name" (or "name" when dir is ""), allocated; NULL on ENOMEM. */
static char *join(const char *dir, const char *name)
{
    char *out = NULL;
    size_t n = strlen(dir);
    while (n > 0 && dir[n - 1] == '/')
        n--;
    if (asprintf(&out, "%.*s%s%s", (int)n, dir, n ? "/" : "", name) < 0)
        return NULL;
    return out;
}

struct fetch_sink {
    int fd;
};

static int fd_sink(const char *data, size_t len, void *payload)
{
    return session_write_all(((struct fetch_sink *)payload)->fd, data, len);
}

/* Downloads the workspace file `rpath` as `name` in the directory `dirfd`:
 * into a new temporary file there (O_EXCL|O_NOFOLLOW), renamed over `name`
 * when complete. renameat replaces a symlink named `name`, never writes
 * through it, so nothing lands outside `dirfd`. */
static int fetch_file_at(struct cl_client *c, const char *id, const char *rpath, int dirfd,
                         const char *name)
{
    struct al_buf url = {0};
    struct cl_response resp = {0};
    char tmp[64], show[256];
    unsigned rnd = 0;
    int rc = CL_EXIT_API, fd = -1;
    for (int tries = 0; fd < 0 && tries < 16; tries++) {
        if (getrandom(&rnd, sizeof(rnd), 0) < 0)
            rnd = (unsigned)getpid() * 2654435761u + (unsigned)tries;
        snprintf(tmp, sizeof(tmp), ".airlock-cp-%08x", rnd);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        fprintf(stderr, "airlock: session: %s: %s\n",
                al_term_line(show, sizeof(show), name, AL_TERM_KEEP_UTF8), strerror(errno));
        return CL_EXIT_API;
    }
    struct fetch_sink sink = {.fd = fd};
    if (files_path(&url, id, rpath) < 0)
        goto out;
    struct cl_request req = {.method = "GET", .path = url.ptr, .sink = fd_sink, .payload = &sink};
    if (cl_request_run(c, &req, &resp) < 0)
        goto out;
    if (strncmp(resp.content_type, "application/json", 16) == 0) {
        fprintf(stderr, "airlock: session: %s:%s: became a directory while copied\n", id,
                al_term_line(show, sizeof(show), rpath, AL_TERM_KEEP_UTF8));
        goto out;
    }
    if (close(fd) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
        fd = -1;
        fprintf(stderr, "airlock: session: %s: %s\n",
                al_term_line(show, sizeof(show), name, AL_TERM_KEEP_UTF8), strerror(errno));
        goto out;
    }
    fd = -1;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlinkat(dirfd, tmp, 0);
    cl_response_free(&resp);
    al_buf_free(&url);
    return rc;
}

/* Opens (creating it when missing) the directory `name` in `dirfd`, never
 * through a symlink. -1 after saying why. */
static int open_dir_at(int dirfd, const char *name)
{
    char show[256];
    if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "airlock: session: %s: %s\n",
                al_term_line(show, sizeof(show), name, AL_TERM_KEEP_UTF8), strerror(errno));
        return -1;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        fprintf(stderr, "airlock: session: %s: %s\n",
                al_term_line(show, sizeof(show), name, AL_TERM_KEEP_UTF8),
                errno == ELOOP || errno == ENOTDIR ? "exists and is not a directory"
                                                   : strerror(errno));
    return fd;
}

/* Copies the workspace directory `rpath` into the local directory `dirfd`,
 * recursively. Entries whose names could leave the directory are refused,
 * symlinks and special files skipped (said on stderr); the copy goes on
 * after a failed entry and the result says whether one failed. */
static int fetch_tree(struct cl_client *c, const char *id, const char *rpath, int dirfd, int depth)
{
    json_t *doc = NULL, *e;
    size_t i;
    char show[512];
    int rc = list_remote(c, id, rpath, &doc);
    if (rc != 0) {
        if (rc == 1)
            fprintf(stderr, "airlock: session: %s:%s: became a file while copied\n", id,
                    al_term_line(show, sizeof(show), rpath, AL_TERM_KEEP_UTF8));
        return CL_EXIT_API;
    }
    json_array_foreach(json_object_get(doc, "entries"), i, e)
    {
        json_t *jname = json_object_get(e, "name");
        const char *type = json_string_value(json_object_get(e, "type"));
        cleanup_free char *child = NULL;
        if (!name_ok(jname)) {
            fprintf(stderr, "airlock: session: %s:%s: refused an entry named \"%s\"\n", id,
                    al_term_line(show, 256, rpath, AL_TERM_KEEP_UTF8),
                    al_term_line(show + 256, 256, json_string_value(jname), AL_TERM_KEEP_UTF8));
            rc = CL_EXIT_API;
            continue;
        }
        const char *name = json_string_value(jname);
        if (!(child = join(rpath, name)))
            return json_decref(doc), CL_EXIT_API;
        if (type && strcmp(type, "file") == 0) {
            if (fetch_file_at(c, id, child, dirfd, name) != 0)
                rc = CL_EXIT_API;
        } else if (type && strcmp(type, "dir") == 0) {
            if (depth >= TREE_DEPTH_MAX) {
                fprintf(stderr, "airlock: session: %s: deeper than %d directories: skipped\n",
                        al_term_line(show, sizeof(show), child, AL_TERM_KEEP_UTF8), TREE_DEPTH_MAX);
                rc = CL_EXIT_API;
                continue;
            }
            int sub = open_dir_at(dirfd, name);
            if (sub < 0 || fetch_tree(c, id, child, sub, depth + 1) != 0)
                rc = CL_EXIT_API;
            if (sub >= 0)
                close(sub);
        } else {
            fprintf(stderr, "airlock: session: %s:%s: a %s, not copied\n", id,
                    al_term_line(show, sizeof(show), child, AL_TERM_KEEP_UTF8), type ? type : "?");
        }
    }
    json_decref(doc);
    return rc;
}

/* The type ("file", "dir", ...) of the workspace's `path`, from its
 * parent's listing: 0 with *type set (NULL when there is no such entry),
 * or CL_EXIT_API. The root is a "dir". */
static int remote_type(struct cl_client *c, const char *id, const char *path, char *type,
                       size_t size, json_t **entry)
{
    cleanup_free char *copy = strdup(path);
    json_t *doc = NULL, *e;
    size_t i, n;
    type[0] = '\0';
    if (entry)
        *entry = NULL;
    if (!copy)
        return CL_EXIT_API;
    n = strlen(copy);
    while (n > 0 && copy[n - 1] == '/')
        copy[--n] = '\0';
    if (n == 0 || strcmp(copy, ".") == 0) {
        snprintf(type, size, "dir");
        return 0;
    }
    char *slash = strrchr(copy, '/');
    const char *base = slash ? slash + 1 : copy;
    if (slash)
        *slash = '\0';
    int rc = list_remote(c, id, slash ? copy : "", &doc);
    if (rc == 1)
        fprintf(stderr, "airlock: session: %s:%s: not a directory\n", id, copy);
    if (rc != 0)
        return CL_EXIT_API;
    json_array_foreach(json_object_get(doc, "entries"), i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        if (name && strcmp(name, base) == 0) {
            snprintf(type, size, "%s", json_string_value(json_object_get(e, "type")) ?: "?");
            if (entry)
                *entry = json_incref(e);
            break;
        }
    }
    json_decref(doc);
    return 0;
}

static int download_tree(struct cl_client *c, const char *id, const char *path, const char *local)
{
    char type[16];
    struct stat st;
    if (remote_type(c, id, path, type, sizeof(type), NULL) != 0)
        return CL_EXIT_API;
    if (!type[0]) {
        fprintf(stderr, "airlock: session: %s:%s: no such file or directory\n", id, path);
        return CL_EXIT_API;
    }
    if (strcmp(type, "dir") != 0)
        return download(c, id, path, local);
    /* like cp -r: into an existing directory under the remote name,
     * else as `local` */
    cleanup_free char *copy = strdup(path), *parent_copy = strdup(local);
    if (!copy || !parent_copy)
        return CL_EXIT_API;
    size_t n = strlen(copy);
    while (n > 0 && copy[n - 1] == '/')
        copy[--n] = '\0';
    const char *rname = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
    if (!*rname || strcmp(rname, ".") == 0)
        rname = "workspace";
    const char *parent, *name;
    if (stat(local, &st) == 0 && S_ISDIR(st.st_mode)) {
        parent = local;
        name = rname;
    } else {
        char *slash = strrchr(parent_copy, '/');
        if (slash && slash[1] == '\0') {
            fprintf(stderr, "airlock: session: %s: no such directory\n", local);
            return CL_EXIT_API;
        }
        parent = slash ? (slash == parent_copy ? "/" : (*slash = '\0', parent_copy)) : ".";
        name = slash ? slash + 1 : local;
    }
    int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) {
        fprintf(stderr, "airlock: session: %s: %s\n", parent, strerror(errno));
        return CL_EXIT_API;
    }
    int dfd = open_dir_at(pfd, name);
    close(pfd);
    if (dfd < 0)
        return CL_EXIT_API;
    int rc = fetch_tree(c, id, path, dfd, 0);
    close(dfd);
    return rc;
}

/* Creates the workspace directory `path` (PUT ?type=dir). */
static int make_remote_dir(struct cl_client *c, const char *id, const char *path)
{
    struct al_buf url = {0};
    json_t *doc = NULL;
    int rc = CL_EXIT_API;
    if (files_path(&url, id, path) == 0 && al_buf_puts(&url, "?type=dir") == 0 &&
        cl_call_json((void **)&doc, c, "PUT", url.ptr, NULL, NULL, NULL) == 0)
        rc = 0;
    json_decref(doc);
    al_buf_free(&url);
    return rc;
}

/* Copies the local directory `dirfd` to the workspace's `rpath`,
 * recursively; symlinks and special files are skipped (said on stderr),
 * never followed. */
static int send_tree(struct cl_client *c, int dirfd, const char *lpath, const char *id,
                     const char *rpath, int depth)
{
    char show[512];
    if (make_remote_dir(c, id, rpath) != 0)
        return CL_EXIT_API;
    int fd = dup(dirfd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "airlock: session: %s: %s\n", lpath, strerror(errno));
        return CL_EXIT_API;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        const char *name = de->d_name;
        struct stat st;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        cleanup_free char *child = join(rpath, name), *lchild = join(lpath, name);
        if (!child || !lchild) {
            rc = CL_EXIT_API;
            break;
        }
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            fprintf(stderr, "airlock: session: %s: %s\n",
                    al_term_line(show, sizeof(show), lchild, AL_TERM_KEEP_UTF8), strerror(errno));
            rc = CL_EXIT_API;
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (depth >= TREE_DEPTH_MAX || sub < 0 ||
                send_tree(c, sub, lchild, id, child, depth + 1) != 0)
                rc = CL_EXIT_API;
            if (sub >= 0)
                close(sub);
        } else if (S_ISREG(st.st_mode)) {
            int ffd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            FILE *f = ffd >= 0 ? fdopen(ffd, "rb") : NULL;
            if (!f) {
                fprintf(stderr, "airlock: session: %s: %s\n",
                        al_term_line(show, sizeof(show), lchild, AL_TERM_KEEP_UTF8),
                        strerror(errno));
                if (ffd >= 0)
                    close(ffd);
                rc = CL_EXIT_API;
                continue;
            }
            if (fstat(fileno(f), &st) < 0 || upload_stream(c, f, &st, id, child) != 0)
                rc = CL_EXIT_API;
            fclose(f);
        } else {
            fprintf(stderr, "airlock: session: %s: %s, not copied\n",
                    al_term_line(show, sizeof(show), lchild, AL_TERM_KEEP_UTF8),
                    S_ISLNK(st.st_mode) ? "a symlink" : "a special file");
        }
    }
    closedir(dir);
    return rc;
}

static int upload_tree(struct cl_client *c, const char *local, const char *id, const char *path)
{
    struct stat st;
    if (strcmp(local, "-") == 0 || stat(local, &st) < 0 || !S_ISDIR(st.st_mode))
        return upload(c, local, id, path);
    /* into an existing directory under the local name, else as `path` */
    char type[16];
    if (remote_type(c, id, path, type, sizeof(type), NULL) != 0)
        return CL_EXIT_API;
    cleanup_free char *lcopy = strdup(local), *target = NULL;
    if (!lcopy)
        return CL_EXIT_API;
    size_t n = strlen(lcopy);
    while (n > 1 && lcopy[n - 1] == '/')
        lcopy[--n] = '\0';
    const char *base = strrchr(lcopy, '/') ? strrchr(lcopy, '/') + 1 : lcopy;
    if (strcmp(type, "dir") == 0 && strcmp(base, ".") != 0 && strcmp(base, "..") != 0 && *base)
        target = join(path, base);
    else if (type[0] && strcmp(type, "dir") != 0) {
        fprintf(stderr, "airlock: session: %s:%s: exists and is not a directory\n", id, path);
        return CL_EXIT_API;
    } else
        target = strdup(path);
    if (!target)
        return CL_EXIT_API;
    int fd = open(local, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "airlock: session: %s: %s\n", local, strerror(errno));
        return CL_EXIT_API;
    }
    int rc = send_tree(c, fd, local, id, target, 0);
    close(fd);
    return rc;
}

int session_cmd_cp(struct cl_client *c, int argc, char **argv)
{
    cleanup_free char *src_id = NULL, *dst_id = NULL;
    const char *src_path = NULL, *dst_path = NULL;
    static const struct option opts[] = {
        {"recursive", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt, recursive = 0;
    while ((opt = session_getopt(argc, argv, "rR", opts)) != -1) {
        if (opt == 'r' || opt == 'R')
            recursive = 1;
        else
            return opt == 'h' ? 0 : CL_EXIT_USAGE;
    }
    if (argc - optind != 2)
        return session_usage_error("cp wants two operands: LOCAL ID:PATH or ID:PATH LOCAL");
    const char *src = argv[optind], *dst = argv[optind + 1];
    int src_remote = remote_split(src, &src_id, &src_path);
    int dst_remote = remote_split(dst, &dst_id, &dst_path);
    if (src_remote < 0 || dst_remote < 0)
        return CL_EXIT_API;
    if (src_remote == dst_remote)
        return session_usage_error("cp: exactly one operand is ID:PATH");
    if (dst_remote)
        return recursive ? upload_tree(c, src, dst_id, dst_path) : upload(c, src, dst_id, dst_path);
    return recursive ? download_tree(c, src_id, src_path, dst) : download(c, src_id, src_path, dst);
}

/* `ls ID [PATH] [-l] [--json]`: the workspace's files. */
int session_files_ls(struct cl_client *c, const char *id, const char *path, int long_fmt,
                     int json_out)
{
    char type[16], show[512];
    json_t *doc = NULL, *e, *self = NULL;
    size_t i;
    if (strncmp(path, "/workspace/", 11) == 0)
        path += 11;
    else if (strcmp(path, "/workspace") == 0)
        path += 10;
    int rc = list_remote(c, id, path, &doc);
    if (rc < 0)
        return CL_EXIT_API;
    if (rc == 1) {
        /* a file: its entry in the parent's listing */
        if (remote_type(c, id, path, type, sizeof(type), &self) != 0)
            return CL_EXIT_API;
        doc = json_pack("{s:s, s:[O]}", "path", path, "entries", self ? self : json_null());
        json_decref(self);
    } else if (rc != 0) {
        return CL_EXIT_API;
    }
    if (json_out) {
        char *txt = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        if (txt)
            puts(txt);
        free(txt);
        json_decref(doc);
        return 0;
    }
    json_array_foreach(json_object_get(doc, "entries"), i, e)
    {
        const char *t = json_string_value(json_object_get(e, "type"));
        const char *name = al_term_line(
            show, sizeof(show), json_string_value(json_object_get(e, "name")), AL_TERM_KEEP_UTF8);
        const char *suffix = t && strcmp(t, "dir") == 0       ? "/"
                             : t && strcmp(t, "symlink") == 0 ? "@"
                                                              : "";
        if (long_fmt)
            printf("%-7s %-4s %12lld  %-24s %s%s\n", t ? t : "?",
                   json_string_value(json_object_get(e, "mode")) ?: "?",
                   (long long)json_integer_value(json_object_get(e, "size")),
                   json_string_value(json_object_get(e, "mtime")) ?: "?", name, suffix);
        else
            printf("%s%s\n", name, suffix);
    }
    json_decref(doc);
    return 0;
}
