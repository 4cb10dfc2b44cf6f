/* Routes: workspace files (GET a file or a listing, PUT streamed and atomic,
 * DELETE), resolved beneath the workspace by wsfiles. */
#include "request.h"

#include "airlockd/core/daemon.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"
#include "airlockd/core/wsfiles.h"

#include "airlock/error.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Maps a wsfiles error to the API's. */
static enum MHD_Result reply_wsf(struct ald_req *r, int err, const char *rel)
{
    switch (err) {
    case AL_EINVAL:
    case AL_EPERM:
        return ald_reply_error(r, 400, "invalid_path", "path", "%s", al_error_last());
    case AL_ENOTFOUND:
        return ald_reply_error(r, 404, "not_found", "path", "no such file: %s", rel);
    case AL_EEXISTS:
        return ald_reply_error(r, 409, "conflict", "path", "%s", al_error_last());
    case AL_ETOOBIG:
    case AL_EAGAIN:
        return ald_reply_error(r, 409, "conflict", "path", "%s", al_error_last());
    default:
        return ald_reply_error(r, 500, "internal", NULL, "%s", al_error_last());
    }
}

/* The ready session of the URL and its workspace root descriptor, the
 * normalised path in `rel`: ALD_NOT_REPLIED. On error it replies itself
 * and returns ALD_REPLIED (*s NULL, no descriptor). */
static enum ald_reply_state open_ws(struct ald_req *r, struct ald_session **s, int *root, char *rel,
                                    size_t relsz)
{
    *root = -1;
    enum ald_reply_state replied;
    *s = ald_req_session(r, 1, &replied);
    if (!*s) {
        if (replied == ALD_NOT_REPLIED)
            ald_reply_error(r, 404, "not_found", NULL, "no session");
        return ALD_REPLIED;
    }
    const char *raw = r->params[1] ? r->params[1] : "";
    int err = wsf_path_normalize(raw, strlen(raw), rel, relsz);
    if (err < 0) {
        ald_reply_error(r, 400, "invalid_path", "path", "%s", al_error_last());
        goto fail;
    }
    char ws[PATH_MAX];
    ald_session_path(r->d, (*s)->id, "workspace", ws, sizeof(ws));
    if ((err = wsf_root_open(ws, root)) < 0) {
        ald_reply_error(r, 500, "internal", NULL, "%s", al_error_last());
        goto fail;
    }
    ald_session_touch(r->d, *s);
    return ALD_NOT_REPLIED;
fail:
    ald_session_unref(r->d, *s);
    *s = NULL;
    return ALD_REPLIED;
}

enum MHD_Result ald_route_file_get(struct ald_req *r)
{
    struct ald_session *s;
    int root, fd = -1;
    char rel[WSF_PATH_MAX + 1];
    if (open_ws(r, &s, &root, rel, sizeof(rel)) == ALD_REPLIED)
        return MHD_YES;
    struct wsf_stat st;
    json_t *listing = NULL;
    enum MHD_Result ret;
    int err = wsf_get(root, rel, &fd, &st, &listing);
    if (err < 0) {
        ret = reply_wsf(r, err, rel);
    } else if (listing) {
        ret = ald_reply_json(r, 200, listing);
    } else {
        struct MHD_Response *resp =
            st.size ? MHD_create_response_from_fd64(st.size, fd)
                    : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (resp && st.size)
            fd = -1; /* the response closes it */
        if (resp)
            MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
        ret = resp ? ald_reply(r, 200, resp) : MHD_NO;
    }
    if (fd >= 0)
        close(fd);
    close(root);
    ald_session_unref(r->d, s);
    return ret;
}

struct upload {
    struct ald_session *s;
    int root;
    struct wsf_upload *u; /* NULL for ?type=dir */
    char rel[WSF_PATH_MAX + 1];
};

static void upload_free(struct ald_req *r)
{
    struct upload *up = r->upload;
    if (!up)
        return;
    wsf_put_abort(up->u);
    if (up->root >= 0)
        close(up->root);
    ald_session_unref(r->d, up->s);
    free(up);
    r->upload = NULL;
}

static int upload_begin(struct ald_req *r)
{
    struct upload *up = calloc(1, sizeof(*up));
    if (!up)
        return ald_apierr_set(&r->err, 500, "internal", NULL, "out of memory");
    if (open_ws(r, &up->s, &up->root, up->rel, sizeof(up->rel)) == ALD_REPLIED) {
        free(up);
        return -1; /* replied */
    }
    r->upload = up;
    if (up->rel[0] == '\0') {
        upload_free(r);
        return ald_apierr_set(&r->err, 400, "invalid_path", "path",
                              "the workspace root cannot be written");
    }
    const char *type = ald_req_arg(r, "type");
    if (type && strcmp(type, "dir") == 0)
        return 0;
    if (type && strcmp(type, "file") != 0) {
        upload_free(r);
        return ald_apierr_set(&r->err, 400, "invalid_value", "type", "type is file or dir");
    }
    pthread_mutex_lock(&r->d->lock);
    uid_t uid = up->s->uid;
    pthread_mutex_unlock(&r->d->lock);
    int err = wsf_put_begin(up->root, up->rel, uid, uid, &up->u);
    if (err < 0) {
        up->u = NULL;
        reply_wsf(r, err, up->rel);
        upload_free(r);
        return -1;
    }
    return 0;
}

static int upload_write(struct ald_req *r, const char *data, size_t len)
{
    struct upload *up = r->upload;
    if (!up)
        return ald_apierr_set(&r->err, 500, "internal", NULL, "no upload");
    if (!up->u)
        return 0; /* a directory: the body is ignored */
    if (wsf_put_write(up->u, data, len) < 0) {
        ald_apierr_set(&r->err, 500, "internal", NULL, "%s", al_error_last());
        upload_free(r);
        return -1;
    }
    return 0;
}

const struct ald_upload_ops ald_file_upload_ops = {upload_begin, upload_write, upload_free};

enum MHD_Result ald_route_file_put(struct ald_req *r)
{
    struct upload *up = r->upload;
    if (!up)
        return ald_reply_error(r, 500, "internal", NULL, "no upload");
    int created = 0, err;
    struct wsf_stat st;
    enum MHD_Result ret;
    if (up->u) {
        struct wsf_upload *u = up->u;
        up->u = NULL; /* commit frees it, also on error */
        err = wsf_put_commit(u, &created, &st);
    } else {
        pthread_mutex_lock(&r->d->lock);
        uid_t uid = up->s->uid;
        pthread_mutex_unlock(&r->d->lock);
        err = wsf_mkdir(up->root, up->rel, uid, uid, &created);
        if (err == 0) {
            int fd = -1;
            json_t *listing = NULL;
            err = wsf_get(up->root, up->rel, &fd, &st, &listing);
            json_decref(listing);
            if (fd >= 0)
                close(fd);
        }
    }
    if (err < 0)
        ret = reply_wsf(r, err, up->rel);
    else
        ret = ald_reply_json(r, created ? 201 : 200, wsf_stat_json(up->rel, &st));
    upload_free(r);
    return ret;
}

enum MHD_Result ald_route_file_delete(struct ald_req *r)
{
    struct ald_session *s;
    int root;
    char rel[WSF_PATH_MAX + 1];
    if (open_ws(r, &s, &root, rel, sizeof(rel)) == ALD_REPLIED)
        return MHD_YES;
    const char *rec = ald_req_arg(r, "recursive");
    int err = wsf_delete(root, rel, rec && strcmp(rec, "0") != 0);
    enum MHD_Result ret = err < 0 ? reply_wsf(r, err, rel)
                                  : ald_reply_json(r, 200, json_pack("{s:s}", "deleted", rel));
    close(root);
    ald_session_unref(r->d, s);
    return ret;
}
