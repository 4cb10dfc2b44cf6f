/* `airlock session cp`: files in and out of a session's workspace, streamed
 * (neither side is held in memory whole). */
#include "session.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int upload(struct cl_client *c, const char *local, const char *id, const char *path)
{
    struct al_buf url = {0};
    struct cl_response resp = {0};
    FILE *f = strcmp(local, "-") == 0 ? stdin : fopen(local, "rb");
    struct stat st;
    int rc = CL_EXIT_API;
    if (!f) {
        fprintf(stderr, "airlock: session: %s: %s\n", local, strerror(errno));
        return CL_EXIT_API;
    }
    if (fstat(fileno(f), &st) < 0 || S_ISDIR(st.st_mode)) {
        fprintf(stderr, "airlock: session: %s: %s\n", local,
                S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
        goto out;
    }
    if (!*path || path[strlen(path) - 1] == '/') {
        fprintf(stderr, "airlock: session: %s:%s: name the file to write\n", id, path);
        goto out;
    }
    if (files_path(&url, id, path) < 0)
        goto out;
    struct cl_request req = {
        .method = "PUT",
        .path = url.ptr,
        .content_type = "application/octet-stream",
        .upload = f,
        .upload_len = S_ISREG(st.st_mode) ? (long long)st.st_size : -1,
    };
    if (cl_request_run(c, &req, &resp) < 0)
        goto out;
    rc = 0;
out:
    cl_response_free(&resp);
    al_buf_free(&url);
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

int session_cmd_cp(struct cl_client *c, int argc, char **argv)
{
    cleanup_free char *src_id = NULL, *dst_id = NULL;
    const char *src_path = NULL, *dst_path = NULL;
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = session_getopt(argc, argv, "", opts)) != -1)
        return opt == 'h' ? 0 : CL_EXIT_USAGE;
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
        return upload(c, src, dst_id, dst_path);
    return download(c, src_id, src_path, dst);
}
