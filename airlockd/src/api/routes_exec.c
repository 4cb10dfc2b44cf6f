/* POST /v1/sessions/{id}/exec: approvals (regular mode), spawning through
 * the session's init, foreground output streamed as NDJSON, background
 * output to files in the state dir. */
#include "request.h"

#include "airlockd/adapters/proxies.h"
#include "airlockd/core/approval.h"
#include "airlockd/core/control.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/evbus.h"
#include "airlockd/core/exec.h"
#include "airlockd/core/process.h"
#include "airlockd/core/session.h"
#include "airlockd/core/tty.h"
#include "airlockd/core/util.h"

#include "airlock/base64.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

/* ---- foreground streaming ---- */

struct fg {
    struct ald *d;
    struct ald_session *s;
    struct ald_proc *p;
    int fds[2]; /* stdout, stderr read ends (-1 when done) */
    int client;
    struct al_buf out; /* formatted lines not yet handed to MHD */
    size_t out_off;
    unsigned char carry[2][4];
    size_t carry_len[2];
    int exit_sent;
    int finished; /* the exit line was handed over completely */
    int watch;    /* the watch socket (-1 when none or done with) */
    int saved;    /* the running process was saved (after the start line) */
    /* its exit as heard on the watch socket, before the control thread
     * has applied it */
    int heard;
    struct sbs_msg exit_msg;
    /* "notices": the session's events, subscribed to before the spawn, so
     * that a network approval or refusal while the command runs is told in
     * its stream (NULL when not asked for) */
    struct evbus_sub *sub;
};

/* How often a stream with notices looks at the event bus while nothing
 * else happens (the bus has no descriptor to poll). */
#define NOTICE_POLL_MS 200

/* Appends one JSON object and a newline to the pending output. */
static int emit(struct fg *f, json_t *obj)
{
    char *txt = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!txt)
        return AL_ENOMEM;
    int err = al_buf_puts(&f->out, txt);
    if (err == 0)
        err = al_buf_append(&f->out, "\n", 1);
    free(txt);
    return err;
}

/* Formats `len` bytes of stream k (0 stdout, 1 stderr) as one line: "data"
 * when UTF-8 (an incomplete sequence at the end is kept for the next read
 * unless `eof`), else "data_b64". */
static int emit_chunk(struct fg *f, int k, const unsigned char *data, size_t len, int eof)
{
    unsigned char buf[CHUNK + 4];
    size_t n = f->carry_len[k];
    memcpy(buf, f->carry[k], n);
    memcpy(buf + n, data, len);
    n += len;
    f->carry_len[k] = 0;
    size_t tail = eof ? 0 : ald_utf8_incomplete_tail(buf, n);
    size_t body = n - tail;
    if (tail) {
        memcpy(f->carry[k], buf + body, tail);
        f->carry_len[k] = tail;
    }
    if (body == 0)
        return 0;
    const char *type = k == 0 ? "stdout" : "stderr";
    if (ald_utf8_valid_prefix(buf, body) == body)
        return emit(f, json_pack("{s:s, s:s%}", "type", type, "data", (const char *)buf, body));
    char *b64 = al_base64_encode(buf, body);
    if (!b64)
        return AL_ENOMEM;
    int err = emit(f, json_pack("{s:s, s:s}", "type", type, "data_b64", b64));
    free(b64);
    return err;
}

/* Reads what stream k has now; closes it at EOF. */
static int drain(struct fg *f, int k)
{
    unsigned char buf[CHUNK];
    for (;;) {
        ssize_t n = read(f->fds[k], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) {
            close(f->fds[k]);
            f->fds[k] = -1;
            return emit_chunk(f, k, buf, 0, 1);
        }
        int err = emit_chunk(f, k, buf, (size_t)n, 0);
        if (err < 0)
            return err;
        if (f->out.len - f->out_off > CHUNK)
            return 0; /* hand this over first */
    }
}

/* Hands the session's network events that arrived since the last call to
 * the stream as notice lines: a network approval that is pending, a request
 * the netproxy refused. Every other event is skipped. */
static int notices_drain(struct fg *f)
{
    if (!f->sub)
        return 0;
    for (;;) {
        struct evbus_event ev;
        int rc = evbus_next(f->sub, 0, &ev);
        if (rc != 1) {
            if (rc < 0) { /* lost its place or the bus closed: no more notices */
                evbus_unsubscribe(f->sub);
                f->sub = NULL;
            }
            return 0;
        }
        json_t *data = json_loads(ev.json, 0, NULL);
        const char *kind = json_string_value(json_object_get(data, "kind"));
        const char *state = json_string_value(json_object_get(data, "state"));
        const char *decision = json_string_value(json_object_get(data, "decision"));
        const char *event = NULL;
        if (strcmp(ev.type, "approval") == 0 && kind && strcmp(kind, "network") == 0 && state &&
            strcmp(state, "pending") == 0)
            event = "approval";
        else if (strcmp(ev.type, "network") == 0 && decision && strcmp(decision, "allow") != 0 &&
                 strcmp(decision, "would-deny") != 0) /* reportOnly: let through, no notice */
            event = "network";
        int err = 0;
        if (event && json_is_object(data))
            err = emit(
                f, json_pack("{s:s, s:s, s:O}", "type", "notice", "event", event, "data", data));
        json_decref(data);
        evbus_event_free(&ev);
        if (err < 0)
            return err;
    }
}

static int exited(struct fg *f)
{
    pthread_mutex_lock(&f->d->lock);
    int x = f->p->state == ALD_P_EXITED;
    pthread_mutex_unlock(&f->d->lock);
    return x || f->heard;
}

static void watch_close(struct fg *f)
{
    if (f->watch >= 0)
        close(f->watch);
    f->watch = -1;
}

/* Applies the exit heard on the watch socket at once, from this thread:
 * the response's exit line must never go out while the process is still
 * listed as running (a client that asks right after would see it running:
 * the race the control thread's later, identical EXITED used to leave).
 * When this applied it, the process is saved and published here and the
 * running reference dropped; the control thread then finds it exited and
 * does nothing. */
static void fg_claim_exit(struct fg *f)
{
    if (!ald_exec_claim_exit(f->d, f->p, &f->exit_msg))
        return;
    ald_proc_exited(f->d, f->p);
    ald_proc_unref(f->d, f->p); /* the running reference; the stream keeps its own */
}

/* Reads the watch socket (see watch_exit); whatever ends the watch closes
 * it, and without an exit heard the exit comes from the control thread
 * (exit_efd). */
static void watch_read(struct fg *f)
{
    int r = ald_exec_watch_exit(f->watch, &f->exit_msg);
    if (r == 0)
        return;
    f->heard = r == 1;
    watch_close(f);
    if (f->heard)
        fg_claim_exit(f);
}

static int emit_exit(struct fg *f)
{
    struct ald_proc *p = f->p;
    int code, sig;
    const char *reason;
    uint64_t duration_ms;
    pthread_mutex_lock(&f->d->lock);
    if (p->state == ALD_P_EXITED || !f->heard) {
        code = p->code;
        sig = p->sig;
        reason = p->reason;
        duration_ms = p->duration_ms;
    } else {
        /* the control thread applies the same message in a moment */
        ald_exit_decode(&f->exit_msg, &code, &sig, &reason);
        duration_ms = f->exit_msg.duration_ms;
    }
    pthread_mutex_unlock(&f->d->lock);
    json_t *o = json_pack("{s:s, s:o, s:o, s:s, s:I}", "type", "exit", "code",
                          code >= 0 ? json_integer(code) : json_null(), "signal",
                          sig > 0 ? json_integer(sig) : json_null(), "reason", reason,
                          "duration_ms", (json_int_t)duration_ms);
    f->exit_sent = 1;
    return emit(f, o);
}

static ssize_t fg_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct fg *f = cls;
    for (;;) {
        if (f->out.len > f->out_off) {
            size_t n = f->out.len - f->out_off;
            if (n > max)
                n = max;
            memcpy(buf, f->out.ptr + f->out_off, n);
            f->out_off += n;
            if (f->out_off == f->out.len) {
                al_buf_reset(&f->out);
                f->out_off = 0;
                if (f->exit_sent)
                    f->finished = 1;
            }
            return (ssize_t)n;
        }
        if (f->exit_sent)
            return MHD_CONTENT_READER_END_OF_STREAM;
        int done = exited(f);
        if (done) {
            /* whatever the command wrote before it exited is in the pipes */
            for (int k = 0; k < 2; k++)
                if (f->fds[k] >= 0 && drain(f, k) < 0)
                    return MHD_CONTENT_READER_END_WITH_ERROR;
            if (f->out.len > f->out_off)
                continue;
            for (int k = 0; k < 2; k++) {
                if (f->fds[k] >= 0) {
                    close(f->fds[k]);
                    f->fds[k] = -1;
                    emit_chunk(f, k, NULL, 0, 1);
                }
            }
            ald_exec_wait_published(f->d, f->p);
            if (notices_drain(f) < 0 || emit_exit(f) < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        if (!f->saved) {
            /* Saved once the start line is out, while the command runs: a
             * command that is over by now is saved by the control thread. */
            f->saved = 1;
            ald_proc_save(f->d, f->p);
            continue;
        }
        struct pollfd pfd[6];
        int n = 0;
        for (int k = 0; k < 2; k++)
            pfd[n++] = (struct pollfd){f->fds[k], POLLIN, 0};
        pfd[n++] = (struct pollfd){f->p->exit_efd, POLLIN, 0};
        pfd[n++] = (struct pollfd){f->client, POLLRDHUP, 0};
        pfd[n++] = (struct pollfd){f->d->stop_fd, POLLIN, 0};
        pfd[n++] = (struct pollfd){f->watch, POLLIN, 0};
        if (poll(pfd, (nfds_t)n, f->sub ? NOTICE_POLL_MS : -1) < 0 && errno != EINTR)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (notices_drain(f) < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (pfd[3].revents & (POLLRDHUP | POLLHUP | POLLERR))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (pfd[4].revents & POLLIN)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (pfd[5].revents)
            watch_read(f);
        for (int k = 0; k < 2; k++)
            if (pfd[k].revents && f->fds[k] >= 0 && drain(f, k) < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

/* The response is done (or the client went away): a command still running
 * is killed with its whole process group. */
static void fg_free(void *cls)
{
    struct fg *f = cls;
    struct ald *d = f->d;
    if (!exited(f) && !atomic_load(&d->stopping)) {
        pthread_mutex_lock(&d->lock);
        uint32_t id = f->p->init_id;
        int running = f->p->state == ALD_P_RUNNING;
        pthread_mutex_unlock(&d->lock);
        if (running)
            ald_ctl_signal(d, f->s, id, SIGKILL);
    }
    for (int k = 0; k < 2; k++)
        if (f->fds[k] >= 0)
            close(f->fds[k]);
    watch_close(f);
    evbus_unsubscribe(f->sub);
    al_buf_free(&f->out);
    ald_proc_unref(d, f->p);
    ald_session_unref(d, f->s);
    free(f);
}

/* Applies the exit heard on the watch socket, so that it is saved with
 * the request's audit row in one transaction (the control thread, hearing
 * the same EXITED later, finds the process exited and does nothing). 1
 * when this call applied it: the caller then owns the running reference
 * and calls exit_done. */
static int exit_claim(struct ald_req *r, struct ald_proc *p, const struct sbs_msg *m)
{
    int claimed = ald_exec_claim_exit(r->d, p, m);
    if (claimed)
        r->exit_proc = p;
    return claimed;
}

/* After the reply of a claimed exit: saved already with the audit row, or
 * now alone when no reply was queued; published; running reference dropped. */
static void exit_done(struct ald_req *r, struct ald_proc *p)
{
    int save = r->exit_proc != NULL;
    r->exit_proc = NULL;
    ald_exec_exit_done(r->d, p, save);
}

/* Starts the NDJSON response. `heard`: the command is over already (its
 * EXITED in *exit_msg): start line, output and exit line are ready now. */
static enum MHD_Result reply_foreground(struct ald_req *r, struct ald_session *s,
                                        struct ald_proc *p, struct ald_exec_stdio *io, int heard,
                                        const struct sbs_msg *exit_msg, struct evbus_sub *sub)
{
    struct fg *f = calloc(1, sizeof(*f));
    if (!f) {
        evbus_unsubscribe(sub);
        ald_proc_unref(r->d, p);
        ald_session_unref(r->d, s);
        return ald_reply_error(r, 500, "internal", NULL, "out of memory");
    }
    f->d = r->d;
    f->s = s;
    f->p = p;
    f->fds[0] = io->out_r;
    f->fds[1] = io->err_r;
    f->watch = io->watch;
    f->sub = sub;
    io->out_r = io->err_r = io->watch = -1;
    f->client = ald_req_socket(r);
    /* a chunk of control bytes grows 6x as JSON escapes */
    al_buf_init(&f->out, 8 * CHUNK);
    char id[32];
    pthread_mutex_lock(&r->d->lock);
    snprintf(id, sizeof(id), "p_%llu", (unsigned long long)p->num);
    int started = p->state != ALD_P_EXITED || p->pid > 0;
    pid_t pid = p->pid;
    pthread_mutex_unlock(&r->d->lock);
    if (started)
        emit(f, json_pack("{s:s, s:s, s:i}", "type", "start", "process", id, "pid", (int)pid));
    int claimed = 0;
    if (heard) {
        /* over already, its exit applied now (p tells the exit line; the
         * row goes with the audit row), the watch of no more use; what it
         * wrote is in the pipes (up to a chunk now, the rest from fg_read) */
        f->saved = 1;
        claimed = exit_claim(r, p, exit_msg);
        watch_close(f);
        for (int k = 0; k < 2; k++)
            if (f->fds[k] >= 0 && drain(f, k) < 0)
                break;
        /* An exit the control thread applied is not saved yet: its line
         * goes from fg_read once it is (ald_exec_wait_published), the
         * output meanwhile. */
        if (f->fds[0] < 0 && f->fds[1] < 0 && claimed) {
            notices_drain(f);
            emit_exit(f);
        }
    }
    /* the stream's reference may go with the response: the running one,
     * held while claimed, keeps p for exit_done */
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, fg_read, f, fg_free);
    enum MHD_Result ret = MHD_NO;
    if (resp) {
        MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
        MHD_add_response_header(resp, "X-Airlock-Process", id);
        ret = ald_reply(r, 200, resp);
    } else {
        fg_free(f);
    }
    if (claimed)
        exit_done(r, p);
    return ret;
}

enum MHD_Result ald_route_exec(struct ald_req *r)
{
    struct ald *d = r->d;
    struct ald_apierr e;
    struct ald_exec_req req;
    if (ald_body_exec(&req, r->body.ptr ? r->body.ptr : "", r->body.len, "/workspace", &e) < 0)
        return ald_reply_apierr(r, &e);
    enum ald_reply_state replied;
    enum MHD_Result ret = MHD_YES;
    struct ald_proc *p = NULL;
    struct evbus_sub *sub = NULL;
    struct ald_exec_stdio io = ALD_EXEC_STDIO_INIT;
    struct ald_session *s = ald_req_session(r, 1, &replied);
    if (!s) {
        if (replied == ALD_NOT_REPLIED)
            ret = ald_reply_error(r, 404, "not_found", NULL, "no session");
        goto out;
    }
    ald_session_touch(d, s);
    struct ald_fault f;
    if (s->mode == AL_MODE_REGULAR && ald_approval_wait(d, s, req.argv_json, &f) < 0) {
        ret = ald_reply_fault(r, &f);
        goto out;
    }
    /* before the spawn: what the command's first request asks is seen */
    if (req.notices && !req.background)
        sub = evbus_subscribe(d->bus, s->user, s->id, evbus_last_id(d->bus));
    if (!(p = ald_exec_proc_new(d, s, &req))) {
        ret = ald_reply_error(r, 500, "internal", NULL, "out of memory");
        goto out;
    }
    int err = ald_exec_stdio_setup(d, s, p, &req, &io);
    if (err == 0)
        err = ald_exec_spawn(d, s, p, &req, &io);
    if (err < 0) {
        pthread_mutex_lock(&d->lock);
        int ended = ald_proc_set_exit(d, p, -1, 0, "session-ended", 0);
        pthread_mutex_unlock(&d->lock);
        if (ended)
            ald_proc_unref(d, p); /* the running reference */
        pthread_mutex_lock(&d->lock);
        enum ald_state st = s->state;
        pthread_mutex_unlock(&d->lock);
        if (st != ALD_READY)
            ret = ald_reply_error(r, 409, "conflict", NULL, "session %s is %s", s->id,
                                  ald_state_name(st));
        else if (err == AL_ETOOBIG || err == AL_EINVAL)
            ret = ald_reply_error(r, 400, "invalid_value", "argv", "exec: %s", al_error_last());
        else
            ret = ald_reply_error(r, 500, "internal", NULL, "exec: %s", al_error_last());
        goto out;
    }
    pthread_mutex_lock(&d->lock);
    int spawn_err = p->spawn_err;
    pthread_mutex_unlock(&d->lock);
    if (spawn_err == EAGAIN) {
        ret = ald_reply_error(r, 429, "quota_exceeded", NULL,
                              "too many commands run in session %s at once", s->id);
        goto out;
    }
    if (spawn_err > SBS_SPAWN_ERR_CWD) {
        /* not the command's failure: it never started (its process says
         * "cwd-unusable") */
        char cwd[256];
        ald_str_quote(cwd, sizeof(cwd), req.cwd, strlen(req.cwd));
        ret = ald_reply_error(r, 400, "invalid_value", "cwd", "cwd \"%s\": %s in the sandbox", cwd,
                              spawn_err - SBS_SPAWN_ERR_CWD == ENOENT
                                  ? "no such directory"
                                  : strerror(spawn_err - SBS_SPAWN_ERR_CWD));
        goto out;
    }
    pthread_mutex_lock(&d->lock);
    if (io.in_w >= 0 && p->state == ALD_P_RUNNING) {
        p->stdin_fd = io.in_w;
        io.in_w = -1;
    }
    int running = p->state == ALD_P_RUNNING;
    pthread_mutex_unlock(&d->lock);
    if (req.tty)
        ald_tty_exec_started(d, p, &io, !req.background);
    /* process_start went out when SPAWNED was applied (control.c) */
    if (req.background)
        ald_proc_save(d, p); /* a foreground one: once its start line is out */
    if (!req.background) {
        struct sbs_msg exit_msg;
        int heard = running && io.watch >= 0 && ald_exec_wait_quick_exit(d, &io, &exit_msg);
        ret = reply_foreground(r, s, p, &io, heard, &exit_msg, sub);
        s = NULL; /* the stream owns both references and the subscription now */
        p = NULL;
        sub = NULL;
        goto out;
    }
    pthread_mutex_lock(&d->lock);
    json_t *pub = ald_proc_json(d, p);
    pthread_mutex_unlock(&d->lock);
    ret = ald_reply_json(r, 202, pub);
out:
    ald_exec_stdio_close(&io);
    if (io.out_r >= 0)
        close(io.out_r);
    if (io.err_r >= 0)
        close(io.err_r);
    if (io.in_w >= 0)
        close(io.in_w);
    if (io.watch >= 0)
        close(io.watch);
    evbus_unsubscribe(sub);
    if (p)
        ald_proc_unref(d, p);
    if (s)
        ald_session_unref(d, s);
    ald_exec_req_free(&req);
    return ret;
}

/* ---- approvals ---- */

enum MHD_Result ald_route_approval_list(struct ald_req *r)
{
    enum ald_reply_state replied;
    struct ald_session *s = ald_req_session(r, 0, &replied);
    if (!s) /* not live here: its stored history (cluster mode), else none */
        return replied == ALD_REPLIED
                   ? MHD_YES
                   : ald_reply_json(r, 200, ald_approval_list_stored(r->d, r->params[0]));
    json_t *arr = json_array();
    pthread_mutex_lock(&r->d->lock);
    for (struct ald_approval *a = s->approvals.list; a; a = a->next)
        json_array_insert_new(arr, 0, ald_approval_json(a));
    pthread_mutex_unlock(&r->d->lock);
    ald_session_unref(r->d, s);
    return ald_reply_json(r, 200, json_pack("{s:o}", "approvals", arr));
}

enum MHD_Result ald_route_approval_decide(struct ald_req *r)
{
    struct ald_apierr e;
    int allow = 0;
    if (ald_body_decision(&allow, r->body.ptr ? r->body.ptr : "", r->body.len, &e) < 0)
        return ald_reply_apierr(r, &e);
    enum ald_reply_state replied;
    struct ald_session *s = ald_req_session(r, 0, &replied);
    char shown[ALD_QUOTED_ID]; /* the approval id of the URL: any bytes */
    ald_str_quote(shown, sizeof(shown), r->params[1], strlen(r->params[1]));
    if (!s)
        return replied == ALD_REPLIED
                   ? MHD_YES
                   : ald_reply_error(r, 404, "not_found", NULL, "no approval %s", shown);
    struct ald *d = r->d;
    pthread_mutex_lock(&d->lock);
    struct ald_approval *a = s->approvals.list;
    while (a && strcmp(a->id, r->params[1]) != 0)
        a = a->next;
    int conflict = a && strcmp(a->state, "pending") != 0;
    if (a && !conflict) {
        a->state = allow ? "allowed" : "denied";
        snprintf(a->decided_by, sizeof(a->decided_by), "%s", r->who.user);
        pthread_cond_broadcast(&d->cond);
    }
    json_t *body = a ? ald_approval_json(a) : NULL;
    const char *state = a ? a->state : "";
    char net_id[48] = "";
    if (a && !conflict && a->kind)
        snprintf(net_id, sizeof(net_id), "%s", a->id + 2); /* the netproxy's id */
    pthread_mutex_unlock(&d->lock);
    if (net_id[0])
        ald_px_approve(d, s, net_id, allow ? "session" : "deny");
    enum MHD_Result ret;
    if (!a)
        ret = ald_reply_error(r, 404, "not_found", NULL, "no approval %s", shown);
    else if (conflict) {
        json_decref(body);
        ret = ald_reply_error(r, 409, "conflict", NULL, "approval %s is already %s", a->id, state);
    } else {
        ald_approval_event(d, s, a);
        ret = ald_reply_json(r, 200, body);
    }
    ald_session_unref(d, s);
    return ret;
}
