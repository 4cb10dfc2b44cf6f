/* Routes: server-sent events of one session or of every session the caller
 * sees, with Last-Event-ID replay. */
#include "request.h"

#include "forward.h"

#include "airlockd/core/daemon.h"
#include "airlockd/core/evbus.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

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

enum MHD_Result ald_route_events(struct ald_req *r)
{
    const char *sid = r->params[0]; /* NULL for /v1/events */
    char node[64], addr[128];
    if (sid && ald_forward_owner(r, node, addr))
        return ald_forward(r, node, addr); /* the owner's bus, the owner's ids */
    if (sid) {
        struct ald_fault f;
        json_t *pub = NULL;
        if (ald_session_lookup_json(r->d, &r->who, sid, &pub, &f) < 0)
            return ald_reply_fault(r, &f);
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
