/* Routes: server-sent events of one session or of every session the caller
 * sees, with Last-Event-ID replay. */
#include "request.h"

#include "forward.h"

#include "airlockd/adapters/store_nodes.h"
#include "airlockd/core/cluster.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/evbus.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEEPALIVE_MS 15000
#define WAIT_MS      1000

struct sse {
    struct ald *d;
    struct evbus_sub *sub;
    int client;
    char *pending;
    size_t len, off;
    uint64_t idle_ms;
};

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct sse *e = cls;
    for (;;) {
        if (e->pending) {
            size_t n = e->len - e->off;
            if (n > max)
                n = max;
            memcpy(buf, e->pending + e->off, n);
            e->off += n;
            if (e->off == e->len) {
                free(e->pending);
                e->pending = NULL;
            }
            return (ssize_t)n;
        }
        struct pollfd pfd = {e->client, POLLRDHUP, 0};
        if (poll(&pfd, 1, 0) > 0 || atomic_load(&e->d->draining))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        struct evbus_event ev;
        int rc = evbus_next(e->sub, WAIT_MS, &ev);
        if (rc == 1) {
            e->pending = evbus_sse_format(&ev);
            evbus_event_free(&ev);
            if (!e->pending)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            e->len = strlen(e->pending);
            e->off = 0;
            e->idle_ms = 0;
            continue;
        }
        if (rc == 0) {
            e->idle_ms += WAIT_MS;
            if (e->idle_ms >= KEEPALIVE_MS) {
                e->idle_ms = 0;
                e->pending = strdup(": keepalive\n\n");
                if (!e->pending)
                    return MHD_CONTENT_READER_END_WITH_ERROR;
                e->len = strlen(e->pending);
                e->off = 0;
            }
            continue;
        }
        if (rc == AL_ENOMEM)
            continue;
        return rc == AL_EIO ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void sse_free(void *cls)
{
    struct sse *e = cls;
    evbus_unsubscribe(e->sub);
    free(e->pending);
    free(e);
}

/* ---- /v1/events on a cluster node: the fan-in (docs/cluster.md "Events
 * across nodes") of the local bus and every other up node's
 * /v1/events?local=1, whole frames only, ids rewritten to NODE:ID ---- */

#define FRAME_MAX (1024 * 1024)
/* Bytes of other nodes' frames a fan-in holds for a client that does not
 * read; beyond it the node readers stop reading, so the backlog stays in
 * the sockets (and the other nodes' buses), not in this daemon's memory. */
#define FANIN_QUEUE_MAX (4 * 1024 * 1024)

struct frame {
    char *txt;
    struct frame *next;
};

struct fanin;

struct fanin_up {
    struct fanin *f;
    char node[64];
    int fd;
    char *pre;
    size_t pre_len;
    pthread_t t;
    int started;
};

struct fanin {
    struct ald *d;
    struct evbus_sub *sub;
    char self[64];
    int client;
    pthread_mutex_t lock;
    pthread_cond_t room; /* signalled when queued drops or stop is set */
    struct frame *head, *tail;
    size_t queued; /* bytes in head..tail (lock) */
    int ended, end_sent;
    atomic_int stop;
    struct fanin_up *ups;
    size_t nups;
    char *pending;
    size_t len, off;
    uint64_t idle_ms;
};

/* The frame `txt` (len bytes) with each "id: N" line as "id: NODE:N"; a
 * new string or NULL. */
static char *frame_retag(const char *node, const char *txt, size_t len)
{
    struct al_buf b;
    al_buf_init(&b, FRAME_MAX + 256);
    const char *p = txt, *end = txt + len;
    int err = 0;
    while (p < end && err == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (n > 4 && strncmp(p, "id: ", 4) == 0)
            err = al_buf_printf(&b, "id: %s:%.*s", node, (int)(n - 4), p + 4);
        else
            err = al_buf_append(&b, p, n);
        p += n;
    }
    if (err == 0)
        err = al_buf_append(&b, "", 1);
    if (err < 0) {
        al_buf_free(&b);
        return NULL;
    }
    return al_buf_detach(&b);
}

static void fanin_push(struct fanin *f, char *txt)
{
    struct frame *fr = txt ? calloc(1, sizeof(*fr)) : NULL;
    if (!fr) {
        free(txt);
        return;
    }
    fr->txt = txt;
    size_t n = strlen(txt);
    pthread_mutex_lock(&f->lock);
    while (f->queued > 0 && f->queued + n > FANIN_QUEUE_MAX && !atomic_load(&f->stop)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&f->room, &f->lock, &until);
    }
    f->queued += n;
    if (f->tail)
        f->tail->next = fr;
    else
        f->head = fr;
    f->tail = fr;
    pthread_mutex_unlock(&f->lock);
}

/* Reads one node's stream, pushes its whole frames (comments dropped). */
static void *fanin_up_main(void *arg)
{
    struct fanin_up *u = arg;
    struct fanin *f = u->f;
    struct al_buf b;
    al_buf_init(&b, FRAME_MAX);
    int ok = u->pre_len == 0 || al_buf_append(&b, u->pre, u->pre_len) == 0;
    char chunk[16 * 1024];
    while (ok && !atomic_load(&f->stop)) {
        char *sep;
        while (b.len > 0 && (sep = memmem(b.ptr, b.len, "\n\n", 2))) {
            size_t n = (size_t)(sep - b.ptr) + 2;
            if (b.ptr[0] != ':')
                fanin_push(f, frame_retag(u->node, b.ptr, n));
            memmove(b.ptr, b.ptr + n, b.len - n);
            b.len -= n;
        }
        struct pollfd p = {u->fd, POLLIN, 0};
        int pn = poll(&p, 1, WAIT_MS);
        if (pn == 0 || (pn < 0 && errno == EINTR))
            continue;
        ssize_t got = pn > 0 ? recv(u->fd, chunk, sizeof(chunk), 0) : -1;
        if (got <= 0 || al_buf_append(&b, chunk, (size_t)got) < 0)
            ok = 0; /* the node's stream ended (or a frame over 1 MiB) */
    }
    al_buf_free(&b);
    pthread_mutex_lock(&f->lock);
    f->ended = 1;
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

static ssize_t fanin_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct fanin *f = cls;
    for (;;) {
        if (f->pending) {
            size_t n = f->len - f->off;
            if (n > max)
                n = max;
            memcpy(buf, f->pending + f->off, n);
            f->off += n;
            if (f->off == f->len) {
                free(f->pending);
                f->pending = NULL;
            }
            return (ssize_t)n;
        }
        struct pollfd pfd = {f->client, POLLRDHUP, 0};
        if (poll(&pfd, 1, 0) > 0 || atomic_load(&f->d->draining))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        pthread_mutex_lock(&f->lock);
        struct frame *fr = f->head;
        if (fr) {
            f->head = fr->next;
            if (!f->head)
                f->tail = NULL;
            f->queued -= strlen(fr->txt);
            pthread_cond_broadcast(&f->room);
        }
        int ended = f->ended;
        pthread_mutex_unlock(&f->lock);
        if (fr) {
            f->pending = fr->txt;
            f->len = strlen(fr->txt);
            f->off = 0;
            free(fr);
            continue;
        }
        if (ended) {
            if (f->end_sent)
                return MHD_CONTENT_READER_END_OF_STREAM;
            /* the set of nodes changed: the client reconnects with its
             * Last-Event-ID vector */
            f->end_sent = 1;
            f->pending = strdup(": a node's stream ended; reconnect with Last-Event-ID\n\n");
            f->len = f->pending ? strlen(f->pending) : 0;
            f->off = 0;
            continue;
        }
        struct evbus_event ev;
        int rc = evbus_next(f->sub, 200, &ev);
        if (rc == 1) {
            char *txt = evbus_sse_format(&ev);
            evbus_event_free(&ev);
            f->pending = txt ? frame_retag(f->self, txt, strlen(txt)) : NULL;
            free(txt);
            if (!f->pending)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            f->len = strlen(f->pending);
            f->off = 0;
            f->idle_ms = 0;
            continue;
        }
        if (rc == 0 || rc == AL_ENOMEM) {
            f->idle_ms += 200;
            if (f->idle_ms >= KEEPALIVE_MS) {
                f->idle_ms = 0;
                f->pending = strdup(": keepalive\n\n");
                if (!f->pending)
                    return MHD_CONTENT_READER_END_WITH_ERROR;
                f->len = strlen(f->pending);
                f->off = 0;
            }
            continue;
        }
        return rc == AL_EIO ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void fanin_free(void *cls)
{
    struct fanin *f = cls;
    atomic_store(&f->stop, 1);
    pthread_mutex_lock(&f->lock);
    pthread_cond_broadcast(&f->room);
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < f->nups; i++) {
        struct fanin_up *u = &f->ups[i];
        if (u->fd >= 0)
            shutdown(u->fd, SHUT_RDWR);
        if (u->started)
            pthread_join(u->t, NULL);
        if (u->fd >= 0)
            close(u->fd);
        free(u->pre);
    }
    free(f->ups);
    while (f->head) {
        struct frame *fr = f->head;
        f->head = fr->next;
        free(fr->txt);
        free(fr);
    }
    evbus_unsubscribe(f->sub);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->room);
    free(f->pending);
    free(f);
}

/* The part of a Last-Event-ID vector ("n1:120,n2:45") for `node`, into
 * out ("" when none). 0, or AL_EINVAL when the vector is malformed. */
static int vector_part(const char *vec, const char *node, char out[24])
{
    out[0] = '\0';
    size_t nl = strlen(node);
    const char *p = vec;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *colon = memchr(p, ':', n);
        if (!colon || colon == p || (size_t)(p + n - colon - 1) == 0 ||
            (size_t)(p + n - colon - 1) > 20)
            return AL_EINVAL;
        size_t dl = (size_t)(p + n - colon - 1);
        if (strspn(colon + 1, "0123456789") < dl)
            return AL_EINVAL;
        if ((size_t)(colon - p) == nl && strncmp(p, node, nl) == 0)
            snprintf(out, 24, "%.*s", (int)dl, colon + 1);
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* The stream of a session lost with its node: one synthesized `state`
 * event ({"session","state":"lost","reason"}, no id) and the end. */
static enum MHD_Result events_lost(struct ald_req *r, const char *sid, json_t *pub)
{
    const char *why = json_string_value(json_object_get(pub, "end_reason"));
    json_t *data = json_pack("{s:s, s:s, s:s}", "session", sid, "state", "lost", "reason",
                             why ? why : "node-down");
    char *txt = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    struct al_buf b;
    al_buf_init(&b, 64 * 1024);
    int err =
        txt ? al_buf_printf(&b, ": airlockd events\n\nevent: state\ndata: %s\n\n", txt) : AL_ENOMEM;
    free(txt);
    if (err < 0) {
        al_buf_free(&b);
        return ald_reply_error(r, 500, "internal", NULL, "out of memory");
    }
    size_t len = b.len;
    char *body = al_buf_detach(&b);
    struct MHD_Response *resp =
        body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    return ald_reply(r, 200, resp);
}

/* GET /v1/events on a cluster node (not from a peer, no local=1). */
static enum MHD_Result events_fanin(struct ald_req *r, const char *self)
{
    struct ald *d = r->d;
    const char *last = ald_req_header(r, "Last-Event-ID");
    char mine[24] = "";
    uint64_t after = 0;
    if (last && strchr(last, ':')) {
        if (strlen(last) > 4096 || vector_part(last, self, mine) < 0)
            return ald_reply_error(r, 400, "invalid_value", "Last-Event-ID",
                                   "not an event id or a vector NODE:ID,...");
        if (mine[0] && ald_parse_u64(mine, UINT64_MAX, &after) < 0)
            return ald_reply_error(r, 400, "invalid_value", "Last-Event-ID", "not an event id");
        if (after == 0)
            after = 1;
    } else if (last) {
        if (ald_parse_u64(last, UINT64_MAX, &after) < 0)
            return ald_reply_error(r, 400, "invalid_value", "Last-Event-ID", "not an event id");
        if (after == 0)
            after = 1;
    }
    /* the store's list (the heartbeat's cached one may predate a node that
     * joined since); the cached one while the store is down */
    json_t *nodes = NULL;
    if (ald_store_node_list(d->st, &nodes) < 0)
        nodes = ald_cluster_nodes_cached(d);
    struct fanin *f = calloc(1, sizeof(*f));
    if (!f) {
        json_decref(nodes);
        return ald_reply_error(r, 500, "internal", NULL, "out of memory");
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->room, NULL);
    f->d = d;
    snprintf(f->self, sizeof(f->self), "%s", self);
    f->client = ald_req_socket(r);
    f->sub = evbus_subscribe(d->bus, r->who.admin ? NULL : r->who.user, NULL, after);
    f->ups = calloc(json_array_size(nodes) + 1, sizeof(*f->ups));
    if (!f->sub || !f->ups) {
        json_decref(nodes);
        fanin_free(f);
        return ald_reply_error(r, 500, "internal", NULL, "out of memory");
    }
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *id = json_string_value(json_object_get(n, "id"));
        const char *addr = json_string_value(json_object_get(n, "address"));
        const char *st = json_string_value(json_object_get(n, "state"));
        if (!id || !addr || !st || strcmp(id, self) == 0 ||
            (strcmp(st, "up") != 0 && strcmp(st, "draining") != 0))
            continue;
        char part[24] = "";
        if (last && strchr(last, ':'))
            vector_part(last, id, part); /* checked above */
        struct fanin_up *u = &f->ups[f->nups];
        u->f = f;
        u->fd = -1;
        snprintf(u->node, sizeof(u->node), "%s", id);
        if (ald_forward_open(r, id, addr, "/v1/events?local=1", part[0] ? part : NULL, &u->fd,
                             &u->pre, &u->pre_len) < 0) {
            al_log(AL_LOG_WARN, "events: node %s: %s (its events are left out)", id,
                   al_error_last());
            continue;
        }
        f->nups++;
        u->started = pthread_create(&u->t, NULL, fanin_up_main, u) == 0;
        if (!u->started) {
            close(u->fd);
            u->fd = -1;
        }
    }
    json_decref(nodes);
    f->pending = strdup(": airlockd events\n\n");
    f->len = f->pending ? strlen(f->pending) : 0;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, fanin_read, f, fanin_free);
    if (!resp) {
        fanin_free(f);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    return ald_reply(r, 200, resp);
}

enum MHD_Result ald_route_events(struct ald_req *r)
{
    const char *sid = r->params[0]; /* NULL for /v1/events */
    char node[64], addr[128];
    if (sid && ald_forward_owner(r, node, addr))
        return ald_forward(r, node, addr); /* the owner's bus, the owner's ids */
    const char *self = ald_cluster_self(r->d);
    const char *local = ald_req_arg(r, "local");
    if (!sid && self && !r->on_peer && !(local && strcmp(local, "1") == 0))
        return events_fanin(r, self);
    if (sid) {
        struct ald_fault f;
        json_t *pub = NULL;
        if (ald_session_lookup_json(r->d, &r->who, sid, &pub, &f) < 0)
            return ald_reply_fault(r, &f);
        const char *st = json_string_value(json_object_get(pub, "state"));
        if (self && !r->on_peer && st && strcmp(st, "lost") == 0) {
            /* its node went down: one state event says so, and the stream
             * ends (the owner's bus went with the node) */
            enum MHD_Result ret = events_lost(r, sid, pub);
            json_decref(pub);
            return ret;
        }
        json_decref(pub);
    }
    uint64_t after = 0;
    const char *last = ald_req_header(r, "Last-Event-ID");
    if (last && ald_parse_u64(last, UINT64_MAX, &after) < 0)
        return ald_reply_error(r, 400, "invalid_value", "Last-Event-ID", "not an event id");
    if (last && after == 0)
        after = 1; /* everything after the daemon's own start event (id 1) */
    struct sse *e = calloc(1, sizeof(*e));
    if (!e)
        return ald_reply_error(r, 500, "internal", NULL, "out of memory");
    e->d = r->d;
    e->client = ald_req_socket(r);
    e->sub = evbus_subscribe(r->d->bus, r->who.admin ? NULL : r->who.user, sid, after);
    if (!e->sub) {
        free(e);
        return ald_reply_error(r, 500, "internal", NULL, "out of memory");
    }
    /* a first comment so the client sees the stream open at once */
    e->pending = strdup(": airlockd events\n\n");
    e->len = e->pending ? strlen(e->pending) : 0;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, e, sse_free);
    if (!resp) {
        sse_free(e);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    return ald_reply(r, 200, resp);
}
