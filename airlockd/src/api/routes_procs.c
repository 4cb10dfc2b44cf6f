/* Routes: processes (list, get, output, signal, stdin). */
#include "request.h"

#include "airlockd/core/control.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/process.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* "p_<decimal>" → number; 0 when malformed. */
static uint64_t proc_num(const char *id)
{
    uint64_t n = 0;
    if (!id || strncmp(id, "p_", 2) != 0 || ald_parse_u64(id + 2, UINT32_MAX, &n) < 0)
        return 0;
    return n;
}

/* The session of the URL (live: *s with a reference; ended: *s NULL) and
 * the stored process: ALD_NOT_REPLIED. Replies 404 (or 500) itself and
 * returns ALD_REPLIED (*s NULL) when there is none. */
static enum ald_reply_state lookup(struct ald_req *r, struct ald_session **s, uint64_t *num,
                                   json_t **pub, json_t **priv)
{
    enum ald_reply_state replied;
    *s = ald_req_session(r, 0, &replied);
    if (replied == ALD_REPLIED)
        return ALD_REPLIED;
    *num = proc_num(r->params[1]);
    int err = *num ? ald_store_proc_get(r->d->st, r->params[0], *num, pub, priv) : AL_ENOTFOUND;
    if (err < 0) {
        if (*s)
            ald_session_unref(r->d, *s);
        *s = NULL;
        char shown[ALD_QUOTED_ID];
        if (err == AL_ENOTFOUND)
            ald_reply_error(
                r, 404, "not_found", NULL, "no process %s",
                ald_str_quote(shown, sizeof(shown), r->params[1], strlen(r->params[1])));
        else
            ald_reply_store_error(r, err);
        return ALD_REPLIED;
    }
    return ALD_NOT_REPLIED;
}

enum MHD_Result ald_route_proc_list(struct ald_req *r)
{
    enum ald_reply_state replied;
    struct ald_session *s = ald_req_session(r, 0, &replied);
    if (replied == ALD_REPLIED)
        return MHD_YES;
    json_t *arr = NULL;
    int err = ald_store_proc_list(r->d->st, r->params[0], &arr);
    if (err < 0) {
        if (s)
            ald_session_unref(r->d, s);
        json_decref(arr);
        return ald_reply_store_error(r, err);
    }
    if (s) {
        /* running processes: the live object (output sizes grow) */
        size_t i;
        json_t *o;
        json_array_foreach(arr, i, o)
        {
            struct ald_proc *p =
                ald_proc_find(r->d, s, proc_num(json_string_value(json_object_get(o, "id"))));
            if (p) {
                pthread_mutex_lock(&r->d->lock);
                json_t *live = ald_proc_json(r->d, p);
                pthread_mutex_unlock(&r->d->lock);
                if (live)
                    json_array_set_new(arr, i, live);
                ald_proc_unref(r->d, p);
            }
        }
        ald_session_unref(r->d, s);
    }
    return ald_reply_json(r, 200, json_pack("{s:o}", "processes", arr));
}

enum MHD_Result ald_route_proc_get(struct ald_req *r)
{
    struct ald_session *s;
    uint64_t num;
    json_t *pub = NULL, *priv = NULL;
    if (lookup(r, &s, &num, &pub, &priv) == ALD_REPLIED)
        return MHD_YES;
    json_decref(priv);
    struct ald_proc *p = s ? ald_proc_find(r->d, s, num) : NULL;
    if (p) {
        pthread_mutex_lock(&r->d->lock);
        json_t *live = ald_proc_json(r->d, p);
        pthread_mutex_unlock(&r->d->lock);
        if (live) {
            json_decref(pub);
            pub = live;
        }
        ald_proc_unref(r->d, p);
    }
    if (s)
        ald_session_unref(r->d, s);
    return ald_reply_json(r, 200, pub);
}

enum MHD_Result ald_route_proc_signal(struct ald_req *r)
{
    struct ald_apierr e;
    int sig = 0;
    if (ald_body_signal(&sig, r->body.ptr ? r->body.ptr : "", r->body.len, &e) < 0)
        return ald_reply_apierr(r, &e);
    struct ald_session *s;
    uint64_t num;
    json_t *pub = NULL, *priv = NULL;
    if (lookup(r, &s, &num, &pub, &priv) == ALD_REPLIED)
        return MHD_YES;
    json_decref(priv);
    struct ald_proc *p = s ? ald_proc_find(r->d, s, num) : NULL;
    enum MHD_Result ret;
    pthread_mutex_lock(&r->d->lock);
    int running = p && p->state == ALD_P_RUNNING;
    uint32_t init_id = p ? p->init_id : 0;
    pthread_mutex_unlock(&r->d->lock);
    if (!running) {
        ret = ald_reply_error(r, 409, "conflict", NULL, "process %s has exited", r->params[1]);
    } else if (ald_ctl_signal(r->d, s, init_id, sig) < 0) {
        ret = ald_reply_error(r, 500, "internal", NULL, "signal: %s", al_error_last());
    } else {
        pthread_mutex_lock(&r->d->lock);
        json_t *live = ald_proc_json(r->d, p);
        pthread_mutex_unlock(&r->d->lock);
        ret = ald_reply_json(r, 200, live);
    }
    json_decref(pub);
    if (p)
        ald_proc_unref(r->d, p);
    if (s)
        ald_session_unref(r->d, s);
    return ret;
}

/* Writes all of data to a non-blocking pipe, waiting while it is full
 * unless the process exits, the client goes or the daemon stops. */
static int write_all(struct ald_req *r, struct ald_proc *p, int fd, const char *data, size_t len)
{
    size_t off = 0;
    int client = ald_req_socket(r);
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return al_error_set_errno(AL_EIO, errno, "stdin");
        struct pollfd pfd[4] = {{fd, POLLOUT, 0},
                                {p->exit_efd, POLLIN, 0},
                                {client, POLLRDHUP, 0},
                                {r->d->stop_fd, POLLIN, 0}};
        if (poll(pfd, 4, -1) < 0 && errno != EINTR)
            return al_error_set_errno(AL_EIO, errno, "poll");
        if (pfd[1].revents || pfd[2].revents || pfd[3].revents)
            return al_error_set(AL_EIO, "stdin: the process exited or the client went away");
        if (pfd[0].revents & (POLLERR | POLLHUP))
            return al_error_set(AL_EIO, "stdin: closed by the process");
    }
    return 0;
}

enum MHD_Result ald_route_proc_stdin(struct ald_req *r)
{
    struct ald_session *s;
    uint64_t num;
    json_t *pub = NULL, *priv = NULL;
    if (lookup(r, &s, &num, &pub, &priv) == ALD_REPLIED)
        return MHD_YES;
    json_decref(pub);
    json_decref(priv);
    struct ald_proc *p = s ? ald_proc_find(r->d, s, num) : NULL;
    const char *eof = ald_req_arg(r, "eof");
    int close_after = eof && strcmp(eof, "0") != 0;
    enum MHD_Result ret;
    pthread_mutex_lock(&r->d->lock);
    int fd = p && p->stdin_fd >= 0 ? fcntl(p->stdin_fd, F_DUPFD_CLOEXEC, 0) : -1;
    pthread_mutex_unlock(&r->d->lock);
    if (fd < 0) {
        ret = ald_reply_error(r, 409, "conflict", NULL, "stdin of %s is closed", r->params[1]);
    } else if (write_all(r, p, fd, r->body.ptr ? r->body.ptr : "", r->body.len) < 0) {
        ret = ald_reply_error(r, 409, "conflict", NULL, "%s", al_error_last());
    } else {
        pthread_mutex_lock(&r->d->lock);
        if (close_after && p->stdin_fd >= 0) {
            close(p->stdin_fd);
            p->stdin_fd = -1;
        }
        json_t *live = ald_proc_json(r->d, p);
        pthread_mutex_unlock(&r->d->lock);
        ret = ald_reply_json(r, 200, live);
    }
    if (fd >= 0)
        close(fd);
    if (p)
        ald_proc_unref(r->d, p);
    if (s)
        ald_session_unref(r->d, s);
    return ret;
}

/* ---- output ---- */

struct follow {
    struct ald *d;
    struct ald_session *s; /* NULL when the process is not live */
    struct ald_proc *p;
    int fd, ino, client, stream;
    uint64_t offset;
};

static ssize_t follow_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct follow *f = cls;
    for (;;) {
        if (f->p) {
            pthread_mutex_lock(&f->d->lock);
            uint64_t earliest = f->p->earliest[f->stream - 1];
            pthread_mutex_unlock(&f->d->lock);
            if (f->offset < earliest)
                return MHD_CONTENT_READER_END_WITH_ERROR; /* fell behind the kept bytes */
        }
        ssize_t n = pread(f->fd, buf, max, (off_t)f->offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (n > 0) {
            f->offset += (uint64_t)n;
            return n;
        }
        int done = 1;
        if (f->p) {
            pthread_mutex_lock(&f->d->lock);
            done = f->p->state == ALD_P_EXITED;
            pthread_mutex_unlock(&f->d->lock);
        }
        if (done) {
            /* a last read after the exit, for bytes written just before it */
            n = pread(f->fd, buf, max, (off_t)f->offset);
            if (n > 0) {
                f->offset += (uint64_t)n;
                return n;
            }
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        struct pollfd pfd[5] = {{f->ino, POLLIN, 0},
                                {f->p->exit_efd, POLLIN, 0},
                                {f->client, POLLRDHUP, 0},
                                {f->d->stop_fd, POLLIN, 0},
                                {f->d->drain_fd, POLLIN, 0}};
        /* without inotify, look again every second */
        if (poll(pfd, 5, f->ino >= 0 ? -1 : 1000) < 0 && errno != EINTR)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (pfd[2].revents || pfd[3].revents || pfd[4].revents)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (pfd[0].revents & POLLIN) {
            char evbuf[4096];
            if (read(f->ino, evbuf, sizeof(evbuf)) < 0 && errno != EAGAIN)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

static void follow_free(void *cls)
{
    struct follow *f = cls;
    close(f->fd);
    if (f->ino >= 0)
        close(f->ino);
    if (f->p)
        ald_proc_unref(f->d, f->p);
    if (f->s)
        ald_session_unref(f->d, f->s);
    free(f);
}

enum MHD_Result ald_route_proc_output(struct ald_req *r)
{
    const char *stream_s = ald_req_arg(r, "stream");
    const char *offset_s = ald_req_arg(r, "offset");
    const char *follow_s = ald_req_arg(r, "follow");
    int stream = 1;
    uint64_t offset = 0;
    if (stream_s && strcmp(stream_s, "stdout") != 0) {
        if (strcmp(stream_s, "stderr") != 0)
            return ald_reply_error(r, 400, "invalid_value", "stream", "stream is stdout or stderr");
        stream = 2;
    }
    if (offset_s && ald_parse_u64(offset_s, INT64_MAX, &offset) < 0)
        return ald_reply_error(r, 400, "invalid_value", "offset", "bad offset");
    int follow = follow_s && strcmp(follow_s, "0") != 0;

    struct ald_session *s;
    uint64_t num;
    json_t *pub = NULL, *priv = NULL;
    if (lookup(r, &s, &num, &pub, &priv) == ALD_REPLIED)
        return MHD_YES;
    int background = json_is_true(json_object_get(pub, "background"));
    uint64_t earliest =
        (uint64_t)json_integer_value(json_array_get(json_object_get(priv, "earliest"), stream - 1));
    json_decref(pub);
    json_decref(priv);
    struct ald_proc *p = s ? ald_proc_find(r->d, s, num) : NULL;
    if (p) {
        pthread_mutex_lock(&r->d->lock);
        earliest = p->earliest[stream - 1];
        pthread_mutex_unlock(&r->d->lock);
    }
    enum MHD_Result ret;
    char path[PATH_MAX];
    ald_proc_out_path(r->d, r->params[0], num, stream, path, sizeof(path));
    int fd = background ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    struct stat st;
    if (!background) {
        ret = ald_reply_error(r, 404, "not_found", NULL,
                              "%s ran in the foreground: its output was streamed, not kept",
                              r->params[1]);
        goto out;
    }
    if (fd < 0 || fstat(fd, &st) < 0) {
        ret = ald_reply_error(r, 404, "not_found", NULL, "the output of %s is gone", r->params[1]);
        goto out;
    }
    if (offset < earliest) {
        struct ald_apierr e;
        ald_apierr_set(&e, 410, "output_truncated", "offset",
                       "bytes before offset %llu were dropped (max_output_bytes)",
                       (unsigned long long)earliest);
        e.earliest_offset = (int64_t)earliest;
        ret = ald_reply_apierr(r, &e);
        goto out;
    }
    char off_hdr[32];
    snprintf(off_hdr, sizeof(off_hdr), "%llu", (unsigned long long)offset);
    struct MHD_Response *resp;
    if (!follow || !p) {
        uint64_t size = (uint64_t)st.st_size;
        uint64_t len = offset < size ? size - offset : 0;
        resp = len ? MHD_create_response_from_fd_at_offset64(len, fd, offset)
                   : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (len && resp)
            fd = -1; /* the response closes it */
    } else {
        struct follow *f = calloc(1, sizeof(*f));
        if (!f) {
            ret = ald_reply_error(r, 500, "internal", NULL, "out of memory");
            goto out;
        }
        f->d = r->d;
        f->fd = fd;
        f->ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (f->ino >= 0)
            inotify_add_watch(f->ino, path, IN_MODIFY);
        f->client = ald_req_socket(r);
        f->stream = stream;
        f->offset = offset;
        f->s = s;
        f->p = p;
        s = NULL;
        p = NULL;
        fd = -1;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, follow_read, f,
                                                 follow_free);
        if (!resp) {
            follow_free(f);
            ret = MHD_NO;
            goto out;
        }
    }
    if (!resp) {
        ret = MHD_NO;
        goto out;
    }
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    MHD_add_response_header(resp, "X-Airlock-Offset", off_hdr);
    ret = ald_reply(r, 200, resp);
out:
    if (fd >= 0)
        close(fd);
    if (p)
        ald_proc_unref(r->d, p);
    if (s)
        ald_session_unref(r->d, s);
    return ret;
}
