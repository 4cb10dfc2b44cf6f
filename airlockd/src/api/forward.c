/* Forwarding between cluster nodes (forward.h, docs/cluster.md
 * "Forwarding"): the sending half (ald_forward*, a new TCP connection per
 * request, HTTP/1.0 with Connection: close, the answer streamed back) and
 * the receiving half's checks (ald_peer_auth). */
#include "forward.h"

#include "airlockd/adapters/peer.h"
#include "airlockd/adapters/store_nodes.h"
#include "airlockd/core/cluster.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define HEAD_MAX   (16 * 1024)
#define BLOCK_SIZE (32 * 1024)
#define TICK_MS    1000

enum { RES_OK, RES_UNAVAILABLE, RES_ERROR, RES_N };
static const char *const kind_names[ALD_FWD_KINDS] = {"plain", "stream", "upload", "websocket",
                                                      "start"};
static const char *const res_names[RES_N] = {"ok", "unavailable", "error"};
static const char *const fail_names[] = {"missing", "malformed", "signature", "skew",
                                         "replay",  "full",      "node",      "body"};
#define N_FAIL (sizeof(fail_names) / sizeof(*fail_names))

/* One process, one cluster key and one nonce guard (the peer listener's). */
static struct {
    int ready;
    unsigned char k_req[32];
    struct ald_peer_guard *guard;
    atomic_ullong requests[ALD_FWD_KINDS][RES_N];
    atomic_ullong auth_failures[N_FAIL];
} F;

int ald_forward_init(struct ald *d)
{
    if (F.ready)
        return 0;
    int err = ald_peer_key_load(d->cfg->cluster.key_file, F.k_req);
    if (err == 0)
        err = ald_peer_guard_new(0, &F.guard);
    if (err == 0)
        F.ready = 1;
    return err;
}

void ald_forward_fini(void)
{
    ald_peer_guard_free(F.guard);
    F.guard = NULL;
    explicit_bzero(F.k_req, sizeof(F.k_req));
    F.ready = 0;
}

int ald_forward_metrics_render(struct al_buf *b)
{
    int err = al_buf_puts(b, "# HELP airlock_forward_requests_total Requests forwarded to the"
                             " node that holds the session.\n"
                             "# TYPE airlock_forward_requests_total counter\n");
    for (int k = 0; k < ALD_FWD_KINDS && err == 0; k++)
        for (int s = 0; s < RES_N && err == 0; s++)
            err = al_buf_printf(b,
                                "airlock_forward_requests_total{route_kind=\"%s\",result=\"%s\"}"
                                " %llu\n",
                                kind_names[k], res_names[s],
                                (unsigned long long)atomic_load(&F.requests[k][s]));
    if (err == 0)
        err = al_buf_puts(b, "# HELP airlock_peer_auth_failures_total Node-to-node requests"
                             " refused.\n"
                             "# TYPE airlock_peer_auth_failures_total counter\n");
    for (size_t i = 0; i < N_FAIL && err == 0; i++)
        err = al_buf_printf(b, "airlock_peer_auth_failures_total{reason=\"%s\"} %llu\n",
                            fail_names[i], (unsigned long long)atomic_load(&F.auth_failures[i]));
    return err < 0 ? AL_ENOMEM : 0;
}

static void count_fail(const char *reason)
{
    for (size_t i = 0; i < N_FAIL; i++)
        if (reason && strcmp(reason, fail_names[i]) == 0)
            atomic_fetch_add(&F.auth_failures[i], 1);
}

/* ---- the receiving side ---- */

static const char *hdr_cb(void *cls, const char *name)
{
    return ald_req_header(cls, name);
}

/* 1 when the node list `nodes` names `node` up or draining. */
static int node_up_in(json_t *nodes, const char *node)
{
    int ok = 0;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *id = json_string_value(json_object_get(n, "id"));
        const char *st = json_string_value(json_object_get(n, "state"));
        if (id && st && strcmp(id, node) == 0 &&
            (strcmp(st, "up") == 0 || strcmp(st, "draining") == 0))
            ok = 1;
    }
    return ok;
}

/* 1 when `node` is a node row in state up or draining: the heartbeat
 * thread's cached list, else (a node that joined since it was read) the
 * store's. */
static int node_known(struct ald *d, const char *node)
{
    json_t *nodes = ald_cluster_nodes_cached(d);
    int ok = nodes && node_up_in(nodes, node);
    json_decref(nodes);
    nodes = NULL;
    if (!ok && ald_store_node_list(d->st, &nodes) == 0)
        ok = node_up_in(nodes, node);
    json_decref(nodes);
    return ok;
}

static int refuse(struct ald_req *r, const char *reason)
{
    count_fail(reason);
    al_log(AL_LOG_INFO, "peer: refused %s: %s", r->method, al_error_last());
    ald_reply_error(r, 401, "unauthorized", NULL, "node signature");
    return -1;
}

int ald_peer_auth(struct ald_req *r)
{
    if (!F.ready) {
        al_error_set(AL_EAUTH, "no cluster key");
        return refuse(r, "missing");
    }
    const char *reason = NULL;
    int err = ald_peer_verify(F.guard, F.k_req, ald_cluster_self(r->d), r->method, r->raw_uri,
                              ald_req_header(r, "Upgrade"), hdr_cb, r, ald_now_ms(), &r->who,
                              r->peer_body_sha, r->peer_node, &reason);
    if (err == AL_EAGAIN) {
        count_fail(reason);
        al_log(AL_LOG_WARN, "peer: %s", al_error_last());
        ald_reply_error(r, 503, "unavailable", NULL, "too many node requests, try again");
        return -1;
    }
    if (err < 0)
        return refuse(r, reason);
    if (!node_known(r->d, r->peer_node)) {
        al_error_set(AL_EAUTH, "node %s is not up", r->peer_node);
        return refuse(r, "node");
    }
    r->peer_hash = EVP_MD_CTX_new();
    if (!r->peer_hash || EVP_DigestInit_ex(r->peer_hash, EVP_sha256(), NULL) != 1) {
        ald_reply_error(r, 500, "internal", NULL, "out of memory");
        return -1;
    }
    r->peer = 1;
    r->authed = 1;
    return 0;
}

void ald_peer_body_update(struct ald_req *r, const void *data, size_t len)
{
    if (r->peer_hash)
        EVP_DigestUpdate(r->peer_hash, data, len);
}

int ald_peer_body_check(struct ald_req *r)
{
    unsigned char got[32];
    unsigned int n = 32;
    if (!r->peer_hash || EVP_DigestFinal_ex(r->peer_hash, got, &n) != 1 ||
        CRYPTO_memcmp(got, r->peer_body_sha, 32) != 0) {
        al_error_set(AL_EAUTH, "body hash mismatch");
        if (r->upload && r->upload_ops)
            r->upload_ops->abort(r);
        return refuse(r, "body");
    }
    return 0;
}

/* ---- the sending side ---- */

int ald_forward_owner(struct ald_req *r, char node[64], char addr[128])
{
    struct ald *d = r->d;
    const char *self = ald_cluster_self(d);
    const char *id = r->params[0];
    if (!d->cfg->cluster.enabled || r->peer || !self || !id)
        return 0;
    char state[16];
    if (ald_store_session_owner(d->st, id, r->who.admin ? NULL : r->who.user, node, addr, state) <
        0)
        return 0;
    static const char *const live[] = {"placed", "creating", "ready", "deleting"};
    int is_live = 0;
    for (size_t i = 0; i < sizeof(live) / sizeof(*live); i++)
        if (strcmp(state, live[i]) == 0)
            is_live = 1;
    return is_live && node[0] && addr[0] && strcmp(node, self) != 0;
}

static enum ald_fwd_kind kind_of(struct ald_req *r)
{
    /* only the tty route upgrades: elsewhere an Upgrade header is ignored
     * (sent on, it made the owner answer HTTP/1.1, chunked and kept open,
     * and that framing reached the client as body bytes) */
    const char *up = ald_req_header(r, "Upgrade");
    if (up && strcasecmp(up, "websocket") == 0 && r->route &&
        r->route->handler == ald_route_proc_tty)
        return ALD_FWD_WEBSOCKET;
    if (r->route && r->route->body == ALD_BODY_UPLOAD)
        return ALD_FWD_UPLOAD;
    if (r->route &&
        (r->route->handler == ald_route_exec || r->route->handler == ald_route_proc_output ||
         r->route->handler == ald_route_events))
        return ALD_FWD_STREAM;
    return ALD_FWD_PLAIN;
}

/* Writes all of buf to fd (which may be non-blocking). 0 or -1. */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            if (poll(&pfd, 1, 30000) <= 0)
                return -1;
            continue;
        }
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The owner's answer head. */
struct head {
    int status;
    char buf[HEAD_MAX + 1];
    size_t head_len, len; /* bytes of the head, bytes read in all */
    char *lines[64];      /* "Name: value" of each header, NUL-terminated in buf */
    int nlines;
};

static const char *head_get(const struct head *h, const char *name)
{
    size_t nl = strlen(name);
    for (int i = 0; i < h->nlines; i++)
        if (strncasecmp(h->lines[i], name, nl) == 0 && h->lines[i][nl] == ':')
            return h->lines[i] + nl + 1 + strspn(h->lines[i] + nl + 1, " \t");
    return NULL;
}

/* Reads and parses the head within timeout_ms. 0 or AL_EIO. */
static int head_read(int fd, unsigned timeout_ms, struct head *h)
{
    uint64_t deadline = ald_now_ms() + timeout_ms;
    h->len = 0;
    char *end = NULL;
    while (!end) {
        uint64_t now = ald_now_ms();
        if (now >= deadline)
            return al_error_set(AL_EIO, "no answer within %u ms", timeout_ms);
        struct pollfd pfd = {fd, POLLIN, 0};
        int pn = poll(&pfd, 1, (int)(deadline - now));
        if (pn < 0 && errno == EINTR)
            continue;
        if (pn <= 0)
            return al_error_set(AL_EIO, "no answer within %u ms", timeout_ms);
        if (h->len >= HEAD_MAX)
            return al_error_set(AL_EIO, "answer head over %d bytes", HEAD_MAX);
        ssize_t n = recv(fd, h->buf + h->len, HEAD_MAX - h->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return al_error_set(AL_EIO, "connection closed before the answer");
        h->len += (size_t)n;
        h->buf[h->len] = '\0';
        end = memmem(h->buf, h->len, "\r\n\r\n", 4);
    }
    h->head_len = (size_t)(end - h->buf) + 4;
    *end = '\0';
    char *line = h->buf, *nl;
    int first = 1;
    h->nlines = 0;
    while (line) {
        nl = strstr(line, "\r\n");
        if (nl)
            *nl = '\0';
        if (first) {
            if (strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12 || line[8] != ' ')
                return al_error_set(AL_EIO, "bad status line");
            uint64_t st = 0;
            char code[4] = {line[9], line[10], line[11], 0};
            if (ald_parse_u64(code, 999, &st) < 0 || st < 100)
                return al_error_set(AL_EIO, "bad status line");
            h->status = (int)st;
            first = 0;
        } else if (*line && h->nlines < 64) {
            h->lines[h->nlines++] = line;
        }
        line = nl ? nl + 2 : NULL;
    }
    return 0;
}

/* Streams the rest of an answer to the client. */
struct fwd_stream {
    struct ald *d;
    int fd, client;
    char *pre;
    size_t pre_len, pre_off;
};

static ssize_t fwd_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct fwd_stream *s = cls;
    if (s->pre_off < s->pre_len) {
        size_t n = s->pre_len - s->pre_off;
        if (n > max)
            n = max;
        memcpy(buf, s->pre + s->pre_off, n);
        s->pre_off += n;
        return (ssize_t)n;
    }
    for (;;) {
        struct pollfd p[3] = {
            {s->fd, POLLIN, 0}, {s->d->stop_fd, POLLIN, 0}, {s->client, POLLRDHUP, 0}};
        int n = poll(p, s->client >= 0 ? 3 : 2, TICK_MS);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (p[1].revents & POLLIN) || atomic_load(&s->d->draining))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (s->client >= 0 && (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR)))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (n == 0)
            continue;
        ssize_t got = recv(s->fd, buf, max, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got == 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (got < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        return got;
    }
}

static void fwd_stream_free(void *cls)
{
    struct fwd_stream *s = cls;
    close(s->fd);
    free(s->pre);
    free(s);
}

/* The WebSocket splice after the owner's 101. */
struct fwd_ws {
    struct ald *d;
    int fd, sock;
    char *pre; /* the owner's bytes after its 101 */
    size_t pre_len;
    char *extra; /* the client's bytes after its request */
    size_t extra_len;
    struct MHD_UpgradeResponseHandle *urh;
};

static void fwd_ws_free(struct fwd_ws *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    free(w->pre);
    free(w->extra);
    free(w);
}

void ald_forward_ws_abandoned(void *ws)
{
    fwd_ws_free(ws);
}

static void *fwd_ws_main(void *arg)
{
    struct fwd_ws *w = arg;
    struct ald *d = w->d;
    char buf[BLOCK_SIZE];
    int ok = write_all(w->sock, w->pre, w->pre_len) == 0 &&
             write_all(w->fd, w->extra, w->extra_len) == 0;
    while (ok) {
        struct pollfd p[3] = {{w->sock, POLLIN, 0}, {w->fd, POLLIN, 0}, {d->stop_fd, POLLIN, 0}};
        int n = poll(p, 3, TICK_MS);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (p[2].revents & POLLIN))
            break;
        for (int i = 0; i < 2 && ok; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int from = i == 0 ? w->sock : w->fd, to = i == 0 ? w->fd : w->sock;
            ssize_t got = recv(from, buf, sizeof(buf), MSG_DONTWAIT);
            if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            if (got <= 0 || write_all(to, buf, (size_t)got) < 0)
                ok = 0;
        }
    }
    struct MHD_UpgradeResponseHandle *urh = w->urh;
    fwd_ws_free(w);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    atomic_fetch_sub(&d->inflight, 1);
    return NULL;
}

static void fwd_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls,
                         const char *extra_in, size_t extra_in_size, MHD_socket sock,
                         struct MHD_UpgradeResponseHandle *urh)
{
    (void)conn;
    struct ald_req *r = con_cls;
    struct fwd_ws *w = cls;
    if (r)
        r->fwd_upgrade = NULL; /* ours now */
    w->sock = sock;
    w->urh = urh;
    if (extra_in_size > 0) {
        w->extra = malloc(extra_in_size);
        if (w->extra) {
            memcpy(w->extra, extra_in, extra_in_size);
            w->extra_len = extra_in_size;
        }
    }
    atomic_fetch_add(&w->d->inflight, 1);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if ((extra_in_size > 0 && !w->extra) || pthread_create(&t, &attr, fwd_ws_main, w) != 0) {
        struct ald *d = w->d;
        fwd_ws_free(w);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        atomic_fetch_sub(&d->inflight, 1);
    }
    pthread_attr_destroy(&attr);
}

/* Sec-WebSocket-Protocol without the airlock.bearer.* offer (the key stays
 * on the entry node), into out. */
static void protocols_without_bearer(const char *in, char *out, size_t cap)
{
    out[0] = '\0';
    size_t o = 0;
    while (in && *in) {
        in += strspn(in, " \t,");
        size_t n = strcspn(in, ", \t");
        if (n > 0 && strncmp(in, "airlock.bearer.", 15) != 0 && o + n + 3 < cap) {
            o += (size_t)snprintf(out + o, cap - o, "%s%.*s", o ? ", " : "", (int)n, in);
        }
        in += n;
    }
}

/* What to send. */
struct fwd_req {
    const char *node, *addr, *method, *uri;
    const void *body;
    size_t body_len;
    int body_fd; /* >= 0: the body is this file (body_len bytes from 0) */
    unsigned char sha[32];
    enum ald_fwd_kind kind;
    const char *last_event_id; /* fan-in: sent instead of the client's headers */
    int own_headers;
};

/* Connects, sends the signed request and reads the head. 0 with *fd; or
 * AL_EIO with *connected saying whether the node was reached at all. */
static int fwd_exchange(struct ald_req *r, const struct fwd_req *q, int *fd, struct head *h,
                        int *connected)
{
    struct ald *d = r->d;
    unsigned timeout = (unsigned)d->cfg->cluster.forward_timeout_ms;
    *fd = -1;
    *connected = 0;
    int ws = q->kind == ALD_FWD_WEBSOCKET;
    const char *upgrade = ws ? ald_req_header(r, "Upgrade") : NULL;
    struct al_strlist sig = {0};
    int err = ald_peer_sign(F.k_req, ald_cluster_self(d), q->node, q->method, q->uri, &r->who,
                            q->sha, upgrade, &sig);
    if (err < 0)
        return err;
    struct al_buf b;
    al_buf_init(&b, 64 * 1024);
    err = al_buf_printf(&b, "%s %s HTTP/1.%d\r\nHost: %s\r\nConnection: %s\r\n", q->method, q->uri,
                        ws ? 1 : 0, q->addr, ws ? "Upgrade" : "close");
    if (err == 0 && (q->body_len > 0 || strcmp(q->method, "POST") == 0 ||
                     strcmp(q->method, "PUT") == 0 || strcmp(q->method, "PATCH") == 0))
        err = al_buf_printf(&b, "Content-Length: %zu\r\n", q->body_len);
    static const char *const copy[] = {"Content-Type", "Accept", "Last-Event-ID", "If-None-Match",
                                       "Range"};
    if (err == 0 && q->last_event_id)
        err = al_buf_printf(&b, "Last-Event-ID: %s\r\n", q->last_event_id);
    for (size_t i = 0; err == 0 && !q->own_headers && i < sizeof(copy) / sizeof(*copy); i++) {
        const char *v = ald_req_header(r, copy[i]);
        if (v)
            err = al_buf_printf(&b, "%s: %s\r\n", copy[i], v);
    }
    if (err == 0 && ws) {
        static const char *const wsh[] = {"Upgrade", "Sec-WebSocket-Key", "Sec-WebSocket-Version"};
        for (size_t i = 0; err == 0 && i < 3; i++) {
            const char *v = ald_req_header(r, wsh[i]);
            if (v)
                err = al_buf_printf(&b, "%s: %s\r\n", wsh[i], v);
        }
        char protos[512];
        protocols_without_bearer(ald_req_header(r, "Sec-WebSocket-Protocol"), protos,
                                 sizeof(protos));
        if (err == 0 && protos[0])
            err = al_buf_printf(&b, "Sec-WebSocket-Protocol: %s\r\n", protos);
    }
    for (size_t i = 0; err == 0 && i < sig.len; i++)
        err = al_buf_printf(&b, "%s\r\n", sig.items[i]);
    if (err == 0)
        err = al_buf_puts(&b, "\r\n");
    al_strlist_free(&sig);
    if (err < 0) {
        al_buf_free(&b);
        return al_error_set(AL_ENOMEM, "out of memory");
    }
    int s = ald_peer_connect(q->addr, timeout);
    if (s < 0) {
        al_buf_free(&b);
        return AL_EIO;
    }
    *connected = 1;
    struct timeval tv = {.tv_sec = (time_t)(timeout / 1000),
                         .tv_usec = (suseconds_t)((timeout % 1000) * 1000)};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    err = write_all(s, b.ptr, b.len) == 0
              ? 0
              : al_error_set_errno(AL_EIO, errno, "sending the request");
    al_buf_free(&b);
    if (err == 0 && q->body_fd < 0 && q->body_len > 0 && write_all(s, q->body, q->body_len) < 0)
        err = al_error_set_errno(AL_EIO, errno, "sending the body");
    if (err == 0 && q->body_fd >= 0) {
        off_t off = 0;
        while (err == 0 && (size_t)off < q->body_len) {
            ssize_t n = sendfile(s, q->body_fd, &off, q->body_len - (size_t)off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                err = al_error_set_errno(AL_EIO, errno, "sending the upload");
        }
    }
    /* an exec in regular mode answers once its approval is decided */
    unsigned head_timeout = timeout;
    if (r->route && r->route->handler == ald_route_exec && q->kind != ALD_FWD_START)
        head_timeout += (unsigned)(d->cfg->approval_timeout_s * 1000);
    if (err == 0)
        err = head_read(s, head_timeout, h);
    if (err < 0) {
        close(s);
        return err;
    }
    *fd = s;
    return 0;
}

/* Relays the owner's answer (head h, connection fd, taken). */
static enum MHD_Result fwd_relay(struct ald_req *r, int fd, struct head *h, enum ald_fwd_kind kind)
{
    static const char *const keep[] = {"Content-Type",
                                       "Retry-After",
                                       "Cache-Control",
                                       "X-Accel-Buffering",
                                       "Location",
                                       "Allow",
                                       "ETag",
                                       "Idempotent-Replayed",
                                       "X-Airlock-Offset",
                                       "X-Airlock-Output-Truncated",
                                       "X-Airlock-Process",
                                       "Sec-WebSocket-Accept",
                                       "Sec-WebSocket-Protocol",
                                       "Sec-WebSocket-Version"};
    struct MHD_Response *resp = NULL;
    size_t pre_len = h->len - h->head_len;
    char *pre = NULL;
    if (pre_len > 0) {
        pre = malloc(pre_len);
        if (!pre) {
            close(fd);
            return ald_reply_error(r, 500, "internal", NULL, "out of memory");
        }
        memcpy(pre, h->buf + h->head_len, pre_len);
    }
    if (h->status == 101 && kind == ALD_FWD_WEBSOCKET) {
        struct fwd_ws *w = calloc(1, sizeof(*w));
        if (!w) {
            free(pre);
            close(fd);
            return ald_reply_error(r, 500, "internal", NULL, "out of memory");
        }
        w->d = r->d;
        w->fd = fd;
        w->sock = -1;
        w->pre = pre;
        w->pre_len = pre_len;
        resp = MHD_create_response_for_upgrade(fwd_upgraded, w);
        if (!resp) {
            fwd_ws_free(w);
            return MHD_NO;
        }
        r->fwd_upgrade = w;
        MHD_add_response_header(resp, "Upgrade", "websocket");
    } else {
        struct fwd_stream *s = calloc(1, sizeof(*s));
        if (!s) {
            free(pre);
            close(fd);
            return ald_reply_error(r, 500, "internal", NULL, "out of memory");
        }
        s->d = r->d;
        s->fd = fd;
        s->client = ald_req_socket(r);
        s->pre = pre;
        s->pre_len = pre_len;
        uint64_t size = MHD_SIZE_UNKNOWN, cl = 0;
        const char *cls = head_get(h, "Content-Length");
        if (cls && ald_parse_u64(cls, UINT64_MAX - 1, &cl) == 0)
            size = cl;
        resp = MHD_create_response_from_callback(size, BLOCK_SIZE, fwd_read, s, fwd_stream_free);
        if (!resp) {
            fwd_stream_free(s);
            return MHD_NO;
        }
    }
    for (size_t i = 0; i < sizeof(keep) / sizeof(*keep); i++) {
        const char *v = head_get(h, keep[i]);
        if (v)
            MHD_add_response_header(resp, keep[i], v);
    }
    atomic_fetch_add(&F.requests[kind][h->status >= 500 ? RES_ERROR : RES_OK], 1);
    return ald_reply(r, h->status, resp);
}

int ald_forward_open(struct ald_req *r, const char *node, const char *addr, const char *uri,
                     const char *last_event_id, int *fd, char **pre, size_t *pre_len)
{
    *fd = -1;
    *pre = NULL;
    *pre_len = 0;
    if (!F.ready)
        return al_error_set(AL_EIO, "no cluster key loaded");
    struct fwd_req q = {.node = node,
                        .addr = addr,
                        .method = "GET",
                        .uri = uri,
                        .body_fd = -1,
                        .kind = ALD_FWD_STREAM,
                        .last_event_id = last_event_id,
                        .own_headers = 1};
    SHA256((const unsigned char *)"", 0, q.sha);
    struct head *h = malloc(sizeof(*h));
    if (!h)
        return al_error_set(AL_ENOMEM, "out of memory");
    int connected, s = -1;
    int err = fwd_exchange(r, &q, &s, h, &connected);
    if (err == 0 && h->status != 200) {
        err = al_error_set(AL_EIO, "node %s answered %d", node, h->status);
        close(s);
    }
    if (err == 0 && h->len > h->head_len) {
        *pre_len = h->len - h->head_len;
        *pre = malloc(*pre_len);
        if (*pre) {
            memcpy(*pre, h->buf + h->head_len, *pre_len);
        } else {
            err = al_error_set(AL_ENOMEM, "out of memory");
            close(s);
        }
    }
    free(h);
    atomic_fetch_add(&F.requests[ALD_FWD_STREAM][err == 0 ? RES_OK : RES_UNAVAILABLE], 1);
    if (err == 0)
        *fd = s;
    return err;
}

static enum MHD_Result fwd_unavailable(struct ald_req *r, const struct fwd_req *q)
{
    atomic_fetch_add(&F.requests[q->kind][RES_UNAVAILABLE], 1);
    char why[256];
    snprintf(why, sizeof(why), "%s", al_error_last());
    al_log(AL_LOG_WARN, "forward %s %s to node %s (%s): %s", q->method,
           r->params[0] ? r->params[0] : "", q->node, q->addr, why);
    return ald_reply_error(
        r, 503, "unavailable", NULL, "%s %s is on node %s, which does not answer (%s)",
        strncmp(r->raw_uri, "/v1/jobs/", 9) == 0 ? "job" : "session",
        r->session[0] ? r->session : (r->params[0] ? r->params[0] : "?"), q->node, why);
}

static enum MHD_Result fwd_run(struct ald_req *r, struct fwd_req *q)
{
    if (!F.ready) {
        al_error_set(AL_EIO, "no cluster key loaded");
        return fwd_unavailable(r, q);
    }
    int fd, connected;
    struct head *h = malloc(sizeof(*h));
    if (!h)
        return ald_reply_error(r, 500, "internal", NULL, "out of memory");
    enum MHD_Result ret;
    if (fwd_exchange(r, q, &fd, h, &connected) < 0)
        ret = fwd_unavailable(r, q);
    else
        ret = fwd_relay(r, fd, h, q->kind);
    free(h);
    return ret;
}

enum MHD_Result ald_forward(struct ald_req *r, const char *node, const char *addr)
{
    if (r->params[0] && !r->session[0]) {
        /* for the audit row: a session id the store named */
        snprintf(r->session, sizeof(r->session), "%s", r->params[0]);
    }
    struct fwd_req q = {.node = node,
                        .addr = addr,
                        .method = r->method,
                        .uri = r->raw_uri,
                        .body = r->body.ptr,
                        .body_len = r->body.len,
                        .body_fd = -1,
                        .kind = kind_of(r)};
    SHA256((const unsigned char *)(r->body.ptr ? r->body.ptr : ""), r->body.len, q.sha);
    return fwd_run(r, &q);
}

int ald_forward_start(struct ald_req *r, const char *node, const char *addr, const char *id,
                      enum MHD_Result *ret)
{
    char uri[128];
    snprintf(uri, sizeof(uri), "/internal/v1/sessions/%s/start", id);
    struct fwd_req q = {.node = node,
                        .addr = addr,
                        .method = "POST",
                        .uri = uri,
                        .body = r->body.ptr,
                        .body_len = r->body.len,
                        .body_fd = -1,
                        .kind = ALD_FWD_START};
    SHA256((const unsigned char *)(r->body.ptr ? r->body.ptr : ""), r->body.len, q.sha);
    if (!F.ready) {
        *ret = fwd_unavailable(r, &q);
        return 0;
    }
    int fd, connected;
    struct head *h = malloc(sizeof(*h));
    if (!h) {
        *ret = ald_reply_error(r, 500, "internal", NULL, "out of memory");
        return 0;
    }
    int err = fwd_exchange(r, &q, &fd, h, &connected);
    if (err < 0 && !connected) {
        atomic_fetch_add(&F.requests[ALD_FWD_START][RES_UNAVAILABLE], 1);
        free(h);
        return AL_EIO;
    }
    if (err < 0)
        *ret = fwd_unavailable(r, &q);
    else
        *ret = fwd_relay(r, fd, h, q.kind);
    free(h);
    return 0;
}

/* ---- uploads spooled before they are sent ---- */
struct fwd_upload {
    int fd;
    uint64_t len;
    EVP_MD_CTX *sha;
};

static void up_abort(struct ald_req *r)
{
    struct fwd_upload *u = r->upload;
    if (!u)
        return;
    if (u->fd >= 0)
        close(u->fd);
    EVP_MD_CTX_free(u->sha);
    free(u);
    r->upload = NULL;
}

static int up_begin(struct ald_req *r)
{
    struct fwd_upload *u = calloc(1, sizeof(*u));
    if (!u)
        return ald_apierr_set(&r->err, 500, "internal", NULL, "out of memory");
    u->fd = -1;
    r->upload = u;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/tmp", r->d->cfg->state_dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        up_abort(r);
        return ald_apierr_set(&r->err, 500, "internal", NULL, "cannot make %s", dir);
    }
    u->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    u->sha = EVP_MD_CTX_new();
    if (u->fd < 0 || !u->sha || EVP_DigestInit_ex(u->sha, EVP_sha256(), NULL) != 1) {
        up_abort(r);
        return ald_apierr_set(&r->err, 500, "internal", NULL, "cannot spool the upload");
    }
    return 0;
}

static int up_write(struct ald_req *r, const char *data, size_t len)
{
    struct fwd_upload *u = r->upload;
    if (!u)
        return ald_apierr_set(&r->err, 500, "internal", NULL, "no upload");
    EVP_DigestUpdate(u->sha, data, len);
    while (len > 0) {
        ssize_t n = write(u->fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            up_abort(r);
            return ald_apierr_set(&r->err, 507, "insufficient_storage", NULL,
                                  "cannot spool the upload");
        }
        data += n;
        len -= (size_t)n;
        u->len += (uint64_t)n;
    }
    return 0;
}

const struct ald_upload_ops ald_forward_upload_ops = {up_begin, up_write, up_abort};

enum MHD_Result ald_forward_upload_finish(struct ald_req *r)
{
    struct fwd_upload *u = r->upload;
    if (!u)
        return ald_reply_error(r, 500, "internal", NULL, "no upload");
    snprintf(r->session, sizeof(r->session), "%s", r->params[0] ? r->params[0] : "");
    struct fwd_req q = {.node = r->fwd_node,
                        .addr = r->fwd_addr,
                        .method = r->method,
                        .uri = r->raw_uri,
                        .body_len = (size_t)u->len,
                        .body_fd = u->fd,
                        .kind = ALD_FWD_UPLOAD};
    unsigned int n = 32;
    EVP_DigestFinal_ex(u->sha, q.sha, &n);
    enum MHD_Result ret = fwd_run(r, &q);
    up_abort(r);
    return ret;
}
