/* Routes: a process's terminal. POST …/processes/{pid}/resize, and
 * GET …/processes/{pid}/tty, a WebSocket (RFC 6455, over libmicrohttpd's
 * upgrade) that relays the terminal both ways: binary frames are the
 * terminal's bytes, a text frame {"resize": {...}} sets its size, and when
 * the process ends a text frame {"exit": {...}} then a close frame (1000)
 * say how. Client frames are parsed by airlock/wsframe.h: unmasked or
 * malformed frames close with 1002, a frame over ALD_WS_MAX_FRAME with
 * 1009, a bad text message with 1007. When the relay ends for any other
 * reason than the process's exit (the client closed or went away, broke
 * the protocol, the daemon stops), the terminal hangs up: SIGHUP to the
 * process group. */
#include "request.h"

#include "airlockd/core/daemon.h"
#include "airlockd/core/exec.h"
#include "airlockd/core/process.h"
#include "airlockd/core/session.h"
#include "airlockd/core/tty.h"
#include "airlockd/core/util.h"

#include "airlock/base64.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/wsframe.h"

#include <errno.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define ALD_WS_MAX_FRAME (64 * 1024) /* payload of one client frame */
#define ALD_WS_MAX_TEXT  4096        /* one text message, fragments joined */
#define ALD_WS_READ      16384       /* terminal bytes per binary frame */
#define ALD_WS_PROTOCOL  "airlock.v1"
#define ALD_WS_BEARER    "airlock.bearer."
#define WS_GUID          "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* "p_<decimal>" → number; 0 when malformed. */
static uint64_t proc_num(const char *id)
{
    uint64_t n = 0;
    if (!id || strncmp(id, "p_", 2) != 0 || ald_parse_u64(id + 2, UINT32_MAX, &n) < 0)
        return 0;
    return n;
}

/* The live session (ready) and live process of the URL, with references;
 * ALD_REPLIED (404/409 queued, nothing held) when there is none. */
static enum ald_reply_state live_proc(struct ald_req *r, struct ald_session **s,
                                      struct ald_proc **p)
{
    enum ald_reply_state replied;
    *p = NULL;
    *s = ald_req_session(r, 1, &replied);
    if (!*s)
        return replied == ALD_REPLIED
                   ? ALD_REPLIED
                   : (ald_reply_error(r, 404, "not_found", NULL, "no session"), ALD_REPLIED);
    uint64_t num = proc_num(r->params[1]);
    *p = num ? ald_proc_find(r->d, *s, num) : NULL;
    if (!*p) {
        /* an exited process is no longer in memory: 409 when the store has it */
        char shown[ALD_QUOTED_ID];
        json_t *pub = NULL, *priv = NULL;
        ald_str_quote(shown, sizeof(shown), r->params[1], strlen(r->params[1]));
        if (num && ald_store_proc_get(r->d->st, (*s)->id, num, &pub, &priv) == 0)
            ald_reply_error(r, 409, "conflict", NULL, "process %s has exited", shown);
        else
            ald_reply_error(r, 404, "not_found", NULL, "no process %s", shown);
        json_decref(pub);
        json_decref(priv);
        ald_session_unref(r->d, *s);
        *s = NULL;
        return ALD_REPLIED;
    }
    return ALD_NOT_REPLIED;
}

enum MHD_Result ald_route_proc_resize(struct ald_req *r)
{
    struct ald_apierr e;
    uint32_t rows = 0, cols = 0;
    if (ald_body_resize(&rows, &cols, r->body.ptr ? r->body.ptr : "", r->body.len, &e) < 0)
        return ald_reply_apierr(r, &e);
    struct ald_session *s;
    struct ald_proc *p;
    if (live_proc(r, &s, &p) == ALD_REPLIED)
        return MHD_YES;
    struct ald_fault f;
    enum MHD_Result ret;
    if (ald_tty_resize(r->d, s, p, rows, cols, &f) < 0) {
        ret = ald_reply_fault(r, &f);
    } else {
        pthread_mutex_lock(&r->d->lock);
        json_t *live = ald_proc_json(r->d, p);
        pthread_mutex_unlock(&r->d->lock);
        ret = ald_reply_json(r, 200, live);
    }
    ald_proc_unref(r->d, p);
    ald_session_unref(r->d, s);
    return ret;
}

/* ---- the WebSocket ---- */

/* One attached terminal: what the relay thread owns. */
struct ws {
    struct ald *d;
    struct ald_session *s; /* reference */
    struct ald_proc *p;    /* reference; its terminal attached to us */
    int master;            /* our descriptor of the terminal's master */
    MHD_socket sock;
    struct MHD_UpgradeResponseHandle *urh;
    unsigned char in[ALD_WS_MAX_FRAME + AL_WS_MAX_HEADER]; /* client bytes */
    size_t in_len;
    unsigned char pend[ALD_WS_MAX_FRAME]; /* client's terminal bytes not written yet */
    size_t pend_len, pend_off;
    char text[ALD_WS_MAX_TEXT]; /* the text message being joined */
    size_t text_len;
    struct al_ws_msgstate ms;
    int master_eof;
    int attached;        /* the terminal is ours (ald_tty_attach) */
    uint16_t close_code; /* set: we are closing with it */
    char close_reason[AL_WS_MAX_CONTROL];
};

/* Sends all of `data` on the upgraded socket, waiting while it is full
 * unless the daemon stops. 0 or AL_EIO. */
static int sock_send_all(struct ws *w, const unsigned char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(w->sock, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return AL_EIO;
        struct pollfd pfd[2] = {{w->sock, POLLOUT, 0}, {w->d->stop_fd, POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0 && errno != EINTR)
            return AL_EIO;
        if (pfd[1].revents || (pfd[0].revents & (POLLERR | POLLHUP)))
            return AL_EIO;
    }
    return 0;
}

/* Sends one unmasked frame (server frames are never masked). */
static int ws_send(struct ws *w, enum al_ws_opcode op, const void *data, size_t len)
{
    unsigned char hdr[AL_WS_MAX_HEADER];
    long h = al_ws_header_encode(hdr, sizeof(hdr), 1, op, len, NULL);
    if (h < 0)
        return (int)h;
    int err = sock_send_all(w, hdr, (size_t)h);
    if (err == 0 && len)
        err = sock_send_all(w, data, len);
    return err;
}

/* Marks the connection for closing with `code` and `reason` (the first
 * reason wins); the close frame goes out when the loop ends. */
static void ws_fail(struct ws *w, uint16_t code, const char *reason)
{
    if (w->close_code)
        return;
    w->close_code = code;
    size_t n = strlen(reason); /* cut to fit a close frame, never inside a UTF-8 sequence */
    if (n > AL_WS_MAX_CONTROL - 2) {
        n = AL_WS_MAX_CONTROL - 2;
        while (n > 0 && ((unsigned char)reason[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(w->close_reason, reason, n);
    w->close_reason[n] = '\0';
    ald_utf8_scrub(w->close_reason, n); /* a parser's message may quote the client */
}

/* A whole text message: the one control message there is. */
static void ws_text(struct ws *w)
{
    struct ald_apierr e;
    struct ald_fault f;
    uint32_t rows, cols;
    if (ald_body_tty_message(&rows, &cols, w->text, w->text_len, &e) < 0) {
        ws_fail(w, AL_WS_CLOSE_INVALID_DATA, e.message);
        return;
    }
    if (ald_tty_resize(w->d, w->s, w->p, rows, cols, &f) < 0)
        al_log(AL_LOG_DEBUG, "tty: %s", f.message); /* exited meanwhile: nothing to do */
}

/* Handles one parsed client frame, its payload unmasked at `pl`. 0 to go
 * on; 1 when the connection is over. */
static int ws_frame(struct ws *w, const struct al_ws_frame *fr, unsigned char *pl)
{
    switch (fr->opcode) {
    case AL_WS_PING:
        return ws_send(w, AL_WS_PONG, pl, fr->payload_len) < 0 ? 1 : 0;
    case AL_WS_PONG:
        return 0;
    case AL_WS_CLOSE: {
        uint16_t code;
        if (al_ws_close_parse(pl, fr->payload_len, &code) < 0)
            ws_fail(w, AL_WS_CLOSE_PROTOCOL, "bad close frame");
        else
            ws_fail(w, code == 1005 ? AL_WS_CLOSE_NORMAL : code, "");
        return 1;
    }
    default:
        break;
    }
    int op = al_ws_msg_step(&w->ms, fr);
    if (op < 0) {
        ws_fail(w, AL_WS_CLOSE_PROTOCOL, "fragments out of order");
        return 1;
    }
    if (op == AL_WS_BINARY) {
        memcpy(w->pend + w->pend_len, pl, fr->payload_len);
        w->pend_len += fr->payload_len;
        return 0;
    }
    if (fr->payload_len > sizeof(w->text) - w->text_len) {
        ws_fail(w, AL_WS_CLOSE_TOO_BIG, "text message over 4096 bytes");
        return 1;
    }
    memcpy(w->text + w->text_len, pl, fr->payload_len);
    w->text_len += fr->payload_len;
    if (fr->fin) {
        ws_text(w);
        w->text_len = 0;
    }
    return w->close_code ? 1 : 0;
}

/* Parses and handles the whole frames received, as long as their terminal
 * bytes fit in `pend`. 0 to go on; 1 when the connection is over. */
static int ws_frames(struct ws *w)
{
    size_t off = 0;
    int done = 0;
    while (!done) {
        struct al_ws_frame fr;
        long n = al_ws_frame_parse(&fr, w->in + off, w->in_len - off, 1, ALD_WS_MAX_FRAME);
        if (n == 0)
            break;
        if (n < 0) {
            /* the attack tests rely on these codes */
            ws_fail(w, n == AL_ETOOBIG ? AL_WS_CLOSE_TOO_BIG : AL_WS_CLOSE_PROTOCOL,
                    n == AL_ETOOBIG ? "frame too large" : "malformed or unmasked frame");
            return 1;
        }
        if (fr.payload_len > sizeof(w->pend) - w->pend_len)
            break; /* once the terminal took what is pending */
        unsigned char *pl = w->in + off + fr.header_len;
        al_ws_unmask(pl, fr.payload_len, fr.mask, 0);
        done = ws_frame(w, &fr, pl);
        off += (size_t)n;
    }
    memmove(w->in, w->in + off, w->in_len - off);
    w->in_len -= off;
    return done;
}

/* Reads what the terminal has and sends it as binary frames. 0, or
 * AL_EIO when the client cannot be written to. */
static int master_drain(struct ws *w)
{
    unsigned char buf[ALD_WS_READ];
    while (!w->master_eof) {
        ssize_t n = read(w->master, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0) {
            /* EIO: every slave descriptor is closed; typing goes nowhere */
            w->master_eof = 1;
            w->pend_len = w->pend_off = 0;
            return 0;
        }
        if (ws_send(w, AL_WS_BINARY, buf, (size_t)n) < 0)
            return AL_EIO;
    }
    return 0;
}

/* The process exited: its last output, {"exit": ...}, then close 1000. */
static void ws_exit(struct ws *w)
{
    if (master_drain(w) < 0)
        return;
    ald_exec_wait_published(w->d, w->p);
    pthread_mutex_lock(&w->d->lock);
    int code = w->p->code, sig = w->p->sig;
    const char *reason = w->p->reason ? w->p->reason : "exited";
    json_t *o = json_pack("{s:{s:o, s:o, s:s}}", "exit", "code",
                          code >= 0 ? json_integer(code) : json_null(), "signal",
                          sig > 0 ? json_integer(sig) : json_null(), "reason", reason);
    pthread_mutex_unlock(&w->d->lock);
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (txt)
        ws_send(w, AL_WS_TEXT, txt, strlen(txt));
    char why[64];
    snprintf(why, sizeof(why), "exit %d", code);
    ws_fail(w, AL_WS_CLOSE_NORMAL, why);
    free(txt);
}

static void ws_free(struct ws *w)
{
    struct ald *d = w->d;
    if (w->master >= 0)
        close(w->master);
    if (w->attached)
        ald_tty_detach(d, w->p);
    ald_proc_unref(d, w->p);
    ald_session_unref(d, w->s);
    free(w);
}

/* The relay: until the process exits, the client goes, breaks the
 * protocol, or the daemon drains or stops. */
static void *ws_main(void *arg)
{
    struct ws *w = arg;
    struct ald *d = w->d;
    al_log(AL_LOG_INFO, "session %s: p_%llu: terminal attached", w->s->id,
           (unsigned long long)w->p->num);
    int over = ws_frames(w); /* bytes that came with the request */
    while (!over && !w->close_code) {
        int want_sock = w->in_len < sizeof(w->in) && w->pend_len == 0;
        struct pollfd pfd[5] = {
            {want_sock ? w->sock : -1, POLLIN | POLLRDHUP, 0},
            {w->master_eof ? -1 : w->master, (short)(POLLIN | (w->pend_len ? POLLOUT : 0)), 0},
            {w->p->exit_efd, POLLIN, 0},
            {d->stop_fd, POLLIN, 0},
            {d->drain_fd, POLLIN, 0},
        };
        if (poll(pfd, 5, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[3].revents || pfd[4].revents) {
            ws_fail(w, AL_WS_CLOSE_GOING_AWAY, "airlockd is shutting down");
            break;
        }
        if (pfd[0].revents || pfd[1].revents)
            ald_session_touch(d, w->s); /* a terminal in use keeps its session from idling out */
        if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) && master_drain(w) < 0)
            break;
        if (w->master_eof && !w->pend_len && (over = ws_frames(w)) != 0)
            break; /* frames that waited for a terminal that is gone */
        if ((pfd[1].revents & POLLOUT) && w->pend_len) {
            ssize_t n = write(w->master, w->pend + w->pend_off, w->pend_len - w->pend_off);
            if (n > 0)
                w->pend_off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                w->pend_off = w->pend_len; /* the terminal is gone: drop it */
            if (w->pend_off == w->pend_len) {
                w->pend_len = w->pend_off = 0;
                over = ws_frames(w); /* frames that waited for room */
            }
        }
        if (pfd[0].revents) {
            ssize_t n = recv(w->sock, w->in + w->in_len, sizeof(w->in) - w->in_len, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break; /* gone without a close frame */
            if (n > 0) {
                w->in_len += (size_t)n;
                over = ws_frames(w);
            }
        }
        if (pfd[2].revents & POLLIN) {
            ws_exit(w);
            break;
        }
    }
    char shown[ALD_QUOTED_ID];
    ald_str_quote(shown, sizeof(shown), w->close_reason, strlen(w->close_reason));
    al_log(AL_LOG_INFO, "session %s: p_%llu: terminal detached (%u %s)", w->s->id,
           (unsigned long long)w->p->num, w->close_code ? w->close_code : 1006, shown);
    if (w->close_code) {
        unsigned char pl[AL_WS_MAX_CONTROL];
        size_t n = al_ws_close_payload(pl, w->close_code, w->close_reason);
        ws_send(w, AL_WS_CLOSE, pl, n);
    }
    /* a terminal nobody reads any more hangs up, as when a modem drops
     * (nothing when the process is over) */
    ald_tty_hangup(d, w->s, w->p);
    struct MHD_UpgradeResponseHandle *urh = w->urh;
    ws_free(w);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    atomic_fetch_sub(&d->inflight, 1);
    return NULL;
}

static void ws_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh)
{
    (void)conn;
    struct ald_req *r = con_cls;
    struct ws *w = cls;
    /* ours now; the request ends right after this returns (MHD calls its
     * completion after the upgrade handler) */
    if (r)
        r->upgrade = NULL;
    w->sock = sock;
    w->urh = urh;
    if (extra_in_size > sizeof(w->in))
        extra_in_size = sizeof(w->in); /* cannot be: MHD reads less than a frame */
    memcpy(w->in, extra_in, extra_in_size);
    w->in_len = extra_in_size;
    atomic_fetch_add(&w->d->inflight, 1);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, ws_main, w) != 0) {
        struct ald *d = w->d;
        ald_tty_hangup(d, w->s, w->p);
        ws_free(w);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        atomic_fetch_sub(&d->inflight, 1);
    }
    pthread_attr_destroy(&attr);
}

void ald_ws_abandoned(void *upgrade)
{
    ws_free(upgrade);
}

/* 1 when the comma-separated header value `list` holds `token`
 * (case-insensitive). */
static int has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);
    while (list && *list) {
        list += strspn(list, " \t,");
        size_t n = strcspn(list, ",");
        size_t m = n;
        while (m > 0 && (list[m - 1] == ' ' || list[m - 1] == '\t'))
            m--;
        if (m == tl && strncasecmp(list, token, tl) == 0)
            return 1;
        list += n;
    }
    return 0;
}

int ald_ws_bearer_from_protocol(const char *protocols, char *out, size_t cap)
{
    const char *p = protocols;
    size_t bl = strlen(ALD_WS_BEARER);
    while (p && *p) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ", \t");
        if (n > bl && strncmp(p, ALD_WS_BEARER, bl) == 0) {
            int w = snprintf(out, cap, "Bearer %.*s", (int)(n - bl), p + bl);
            return w > 0 && (size_t)w < cap ? 0 : AL_ETOOBIG;
        }
        p += n;
    }
    return AL_ENOTFOUND;
}

/* Sec-WebSocket-Accept for the client's key: base64(SHA-1(key GUID)). */
static int accept_key(char out[32], const char *key)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char in[128];
    int n = snprintf(in, sizeof(in), "%s%s", key, WS_GUID);
    if (n < 0 || (size_t)n >= sizeof(in) ||
        !EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha1(), NULL))
        return AL_EIO;
    return al_base64_encode_buf(out, 32, md, mdlen) < 0 ? AL_EIO : 0;
}

enum MHD_Result ald_route_proc_tty(struct ald_req *r)
{
    const char *upgrade = ald_req_header(r, "Upgrade");
    const char *connection = ald_req_header(r, "Connection");
    const char *version = ald_req_header(r, "Sec-WebSocket-Version");
    const char *key = ald_req_header(r, "Sec-WebSocket-Key");
    const char *protocols = ald_req_header(r, "Sec-WebSocket-Protocol");
    unsigned char raw_key[24];
    if (!upgrade || strcasecmp(upgrade, "websocket") != 0 || !has_token(connection, "upgrade") ||
        !key || strlen(key) != 24 || al_base64_decode(raw_key, key, 24) != 16)
        return ald_reply_error(r, 400, "invalid_value", NULL,
                               "expected a WebSocket handshake (Upgrade: websocket, Connection: "
                               "Upgrade, a Sec-WebSocket-Key of 16 bytes)");
    if (!version || strcmp(version, "13") != 0) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (resp)
            MHD_add_response_header(resp, "Sec-WebSocket-Version", "13");
        return ald_reply(r, 426, resp);
    }
    if (protocols && !has_token(protocols, ALD_WS_PROTOCOL))
        return ald_reply_error(r, 400, "invalid_value", NULL,
                               "Sec-WebSocket-Protocol must offer " ALD_WS_PROTOCOL);
    char accept[32];
    if (accept_key(accept, key) < 0)
        return ald_reply_error(r, 500, "internal", NULL, "SHA-1 failed");
    struct ald_session *s;
    struct ald_proc *p;
    if (live_proc(r, &s, &p) == ALD_REPLIED)
        return MHD_YES;
    enum MHD_Result ret;
    struct ald_fault f;
    struct ws *w = calloc(1, sizeof(*w));
    if (!w) {
        ald_proc_unref(r->d, p);
        ald_session_unref(r->d, s);
        return ald_reply_error(r, 500, "internal", NULL, "out of memory");
    }
    /* w owns the references from here (ws_free) */
    w->d = r->d;
    w->s = s;
    w->p = p;
    w->master = -1;
    if (ald_tty_attach(r->d, p, &w->master, &f) < 0) {
        ret = ald_reply_fault(r, &f);
        goto out;
    }
    w->attached = 1;
    struct MHD_Response *resp = MHD_create_response_for_upgrade(ws_upgraded, w);
    if (!resp) {
        ret = ald_reply_error(r, 500, "internal", NULL, "out of memory");
        goto out;
    }
    MHD_add_response_header(resp, "Upgrade", "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    if (protocols)
        MHD_add_response_header(resp, "Sec-WebSocket-Protocol", ALD_WS_PROTOCOL);
    ret = ald_reply(r, 101, resp);
    /* Queued: MHD calls the upgrade handler once the 101 is out, which
     * takes w; a connection that breaks before leaves it to the request's
     * end (ald_ws_abandoned). */
    if (ret == MHD_YES && r->status == 101) {
        r->upgrade = w;
        w = NULL;
    }
out:
    if (w)
        ws_free(w);
    return ret;
}
