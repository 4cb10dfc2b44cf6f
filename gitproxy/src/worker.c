/* A front worker: serves one client connection in a process of its own
 * (forked by the front's zygote, front.c). It parses the request (HTTP head,
 * path, headers, the Authorization header), checks every value it will pass
 * on against its grammar, asks the key holder to verify the token, then has
 * the key holder make the upstream request while it streams the body to it
 * and the answer back to the client. It holds no key and no real
 * credential: only this connection's bytes and its scoped token. */
#include "gp_worker.h"

#include "airlock/base64.h"
#include "airlock/creds.h"
#include "airlock/error.h"
#include "airlock/gp_hdrcheck.h"
#include "airlock/gp_pktline.h"
#include "airlock/log.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#define CT_TEXT "text/plain; charset=utf-8"

int wk_respond_text(struct wrq *rq, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof(msg) - 2)
        n = (int)sizeof(msg) - 2;
    if (status >= 400)
        snprintf(rq->reason, sizeof(rq->reason), "%.*s", n, msg);
    msg[n++] = '\n';
    rq->status = status;
    rq->head_sent = 1;
    const char *extra = status == 401 ? "WWW-Authenticate: Basic realm=\"airlock\"\r\n" : NULL;
    return gp_http_respond(&rq->conn, status, CT_TEXT, extra, msg, (size_t)n);
}

/* ---- the receive-pack advertisement gets "no-thin" ---- */

/* With no-thin, git sends a pack that holds every object its deltas need,
 * so the worker can check every pushed object without upstream's objects.
 * The capabilities follow the NUL of the first ref line after the service
 * line and its flush. Returns 1 when the advertisement was rewritten into
 * out, 0 when it is not complete yet, -1 when it is not what we expect
 * (passed on as it is). */
static int advert_inject(struct al_buf *out, const char *buf, size_t len)
{
    struct gp_pkt pkt;
    size_t off = 0;
    for (int i = 0; i < 2; i++) {
        ssize_t n = gp_pktline_parse(&pkt, buf + off, len - off);
        if (n <= 0)
            return n == 0 ? 0 : -1;
        if ((i == 0 && (pkt.type != GP_PKT_DATA || pkt.len < 10 ||
                        memcmp(pkt.data, "# service=", 10) != 0)) ||
            (i == 1 && pkt.type != GP_PKT_FLUSH))
            return -1;
        off += (size_t)n;
    }
    size_t first = off;
    ssize_t n = gp_pktline_parse(&pkt, buf + off, len - off);
    if (n <= 0)
        return n == 0 ? 0 : -1;
    const char *nul = pkt.type == GP_PKT_DATA ? memchr(pkt.data, '\0', pkt.len) : NULL;
    if (!nul || pkt.len + 8 > GP_PKT_MAX - 4)
        return -1;
    size_t caps_end = pkt.len;
    if (caps_end > 0 && pkt.data[caps_end - 1] == '\n')
        caps_end--;
    char line[GP_PKT_MAX];
    size_t l = 0;
    memcpy(line, pkt.data, caps_end);
    l = caps_end;
    memcpy(line + l, " no-thin", 8);
    l += 8;
    if (caps_end < pkt.len)
        line[l++] = '\n';
    if (al_buf_append(out, buf, first) < 0 || gp_pktline_append(out, line, l) < 0 ||
        al_buf_append(out, buf + first + (size_t)n, len - first - (size_t)n) < 0)
        return -1;
    return 1;
}

static int relay_data(struct wrq *rq, const uint8_t *data, size_t len)
{
    if (!rq->inject)
        return gp_http_write(&rq->conn, data, len);
    int err;
    /* Hold the start of the advertisement until its first ref line. */
    if (al_buf_append(&rq->adv, data, len) < 0) {
        rq->inject = 0;
        al_log(AL_LOG_WARN, "%s: receive-pack advertisement too long to add no-thin", rq->repo);
        err = rq->adv.len ? gp_http_write(&rq->conn, rq->adv.ptr, rq->adv.len) : 0;
        if (err == 0)
            err = gp_http_write(&rq->conn, data, len);
        al_buf_free(&rq->adv);
        return err;
    }
    struct al_buf out;
    al_buf_init(&out, 4u << 20);
    int got = advert_inject(&out, rq->adv.ptr, rq->adv.len);
    if (got == 0) {
        al_buf_free(&out);
        return 0;
    }
    rq->inject = 0;
    if (got > 0) {
        err = gp_http_write(&rq->conn, out.ptr, out.len);
    } else {
        al_log(AL_LOG_WARN, "%s: unexpected receive-pack advertisement; no-thin not added",
               rq->repo);
        err = gp_http_write(&rq->conn, rq->adv.ptr, rq->adv.len);
    }
    al_buf_free(&out);
    al_buf_free(&rq->adv);
    return err;
}

int wk_recv(struct wrq *rq, size_t *len)
{
    size_t nfds;
    int fd = -1;
    ssize_t n = gp_chan_recv(rq->ch, rq->in, sizeof(rq->in), &fd, 1, &nfds);
    if (n <= 0)
        return n == 0 ? al_error_set(AL_EIO, "the key holder went away") : (int)n;
    *len = (size_t)n;
    struct gp_rd r;
    int type = gp_rd_init(&r, rq->in, (size_t)n);
    if (nfds) {
        if (type == GP_CH_CHANNEL && rq->sub_fd < 0 && gp_rd_end(&r, "CHANNEL") == 0) {
            rq->sub_fd = fd;
            return type;
        }
        close(fd);
        return al_error_set(AL_EINVAL, "unexpected descriptor from the key holder");
    }
    char text[1024];
    switch (type) {
    case GP_CH_HEAD: {
        unsigned status = gp_rd_u16(&r);
        gp_rd_str(&r, text, sizeof(text));
        unsigned direct = gp_rd_u8(&r);
        if (gp_rd_end(&r, "HEAD") < 0 || (rq->head_sent && !rq->quiet) || status != 200 ||
            (direct && !rq->direct))
            return al_error_set(AL_EINVAL, "bad HEAD from the key holder");
        if (rq->quiet)
            return type;
        rq->status = 200;
        rq->head_sent = 1;
        if (direct)
            return type; /* the key holder writes the answer to the client */
        if (gp_http_send_head(&rq->conn, 200, text, NULL) < 0)
            return al_error_set(AL_EIO, "the client went away");
        return type;
    }
    case GP_CH_DATA: {
        size_t dl;
        const uint8_t *d = gp_rd_rest(&r, &dl);
        if (rq->quiet)
            return type;
        if (!rq->head_sent)
            return al_error_set(AL_EINVAL, "DATA before HEAD from the key holder");
        if (relay_data(rq, d, dl) < 0)
            return al_error_set(AL_EIO, "the client went away");
        return type;
    }
    case GP_CH_DONE: {
        unsigned ok = gp_rd_u8(&r);
        gp_rd_str(&r, text, sizeof(text));
        if (gp_rd_end(&r, "DONE") < 0 || (!rq->head_sent && !rq->quiet))
            return al_error_set(AL_EINVAL, "bad DONE from the key holder");
        if (rq->inject && rq->adv.len) {
            /* an advertisement shorter than its first ref line */
            gp_http_write(&rq->conn, rq->adv.ptr, rq->adv.len);
            al_buf_free(&rq->adv);
        }
        rq->inject = 0;
        rq->done = 1;
        rq->ok = ok != 0;
        if (!ok)
            al_log(AL_LOG_WARN, "%s: transfer cut short: %s", rq->repo, text);
        return type;
    }
    case GP_CH_FAIL: {
        unsigned status = gp_rd_u16(&r);
        gp_rd_str(&r, text, sizeof(text));
        if (gp_rd_end(&r, "FAIL") < 0 || status < 400 || status > 599)
            return al_error_set(AL_EINVAL, "bad FAIL from the key holder");
        rq->done = 1;
        if (!rq->head_sent && !rq->quiet)
            wk_respond_text(rq, (int)status, "%s", text);
        else if (!rq->quiet)
            al_log(AL_LOG_WARN, "%s: %s (after the answer started)", rq->repo, text);
        return type;
    }
    default:
        return type;
    }
}

int wk_send(struct wrq *rq, const struct gp_wire *w)
{
    for (;;) {
        int err = gp_chan_trysend(rq->ch, w);
        if (err != AL_EAGAIN)
            return err;
        struct pollfd pfd = {rq->ch, POLLIN | POLLOUT, 0};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return al_error_set_errno(AL_EIO, errno, "poll");
        if (pfd.revents & POLLIN) {
            size_t len;
            int type = wk_recv(rq, &len);
            if (type < 0)
                return type;
            if (type != GP_CH_HEAD && type != GP_CH_DATA && type != GP_CH_DONE &&
                type != GP_CH_FAIL && type != GP_CH_CHANNEL)
                return al_error_set(AL_EINVAL, "unexpected message %d from the key holder", type);
        } else if (pfd.revents & (POLLHUP | POLLERR)) {
            return al_error_set(AL_EIO, "the key holder went away");
        }
    }
}

int wk_relay_rest(struct wrq *rq)
{
    while (!rq->done) {
        size_t len;
        int type = wk_recv(rq, &len);
        if (type < 0)
            return type;
        if (type != GP_CH_HEAD && type != GP_CH_DATA && type != GP_CH_DONE && type != GP_CH_FAIL)
            return al_error_set(AL_EINVAL, "unexpected message %d from the key holder", type);
    }
    return 0;
}

void wk_body_drain(struct wrq *rq, uint64_t max)
{
    char buf[16384];
    uint64_t total = 0;
    ssize_t n;
    while (total < max && (n = gp_http_read_body(&rq->conn, buf, sizeof(buf))) > 0)
        total += (uint64_t)n;
}

/* ---- the request ---- */

/* Extracts the scoped token from Basic (password, or user when the password
 * is empty) or Bearer. Returns 0 and an allocated token, AL_ENOTFOUND when
 * there is none, AL_EINVAL when malformed. */
static int request_token(char **out, const char *auth)
{
    if (strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *t = auth + 7;
        while (*t == ' ')
            t++;
        if (!*t)
            return AL_EINVAL;
        return (*out = strdup(t)) ? 0 : AL_ENOMEM;
    }
    if (strncasecmp(auth, "Basic ", 6) != 0)
        return *auth ? AL_EINVAL : AL_ENOTFOUND;
    const char *b = auth + 6;
    while (*b == ' ')
        b++;
    size_t blen = strlen(b);
    if (blen == 0 || blen % 4 != 0 || blen > 10000)
        return AL_EINVAL;
    unsigned char *dec = malloc(blen / 4 * 3 + 1);
    if (!dec)
        return AL_ENOMEM;
    long n = al_base64_decode(dec, b, blen);
    int err = AL_EINVAL;
    if (n < 0)
        goto out;
    dec[n] = '\0';
    if (strlen((char *)dec) != (size_t)n) /* a NUL inside */
        goto out;
    char *colon = strchr((char *)dec, ':');
    const char *tok = colon && colon[1] ? colon + 1 : (char *)dec;
    if (colon && !colon[1])
        *colon = '\0';
    if (!*tok)
        goto out;
    err = (*out = strdup(tok)) ? 0 : AL_ENOMEM;
out:
    OPENSSL_cleanse(dec, blen / 4 * 3 + 1);
    free(dec);
    return err;
}

/* Has the key holder verify the token for `op`; on refusal the client has
 * been answered and a negative code is returned. */
static int request_authorise(struct wrq *rq, unsigned op)
{
    char *token = NULL;
    int err = request_token(&token, rq->http.authorization);
    if (err == AL_ENOTFOUND)
        return wk_respond_text(rq, 401, "airlock: authentication required"), err;
    if (err < 0)
        return wk_respond_text(rq, 403, "airlock: malformed Authorization header"), err;
    struct gp_wire w;
    gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_AUTH);
    gp_wire_u8(&w, (uint8_t)op);
    gp_wire_str(&w, rq->host);
    gp_wire_str(&w, rq->owner);
    gp_wire_str(&w, rq->name);
    gp_wire_str(&w, token);
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    if (w.err) {
        OPENSSL_cleanse(rq->out, sizeof(rq->out));
        return wk_respond_text(rq, 403, "airlock: not an airlock token"), AL_EINVAL;
    }
    err = gp_chan_send(rq->ch, &w, NULL, 0);
    OPENSSL_cleanse(rq->out, sizeof(rq->out));
    if (err < 0)
        return wk_respond_text(rq, 503, "airlock: the git proxy is restarting; try again"), err;
    size_t len;
    int type = wk_recv(rq, &len);
    if (type == GP_CH_FAIL)
        return AL_EPERM;
    struct gp_rd r;
    if (type != GP_CH_AUTH_OK || gp_rd_init(&r, rq->in, len) != GP_CH_AUTH_OK) {
        wk_respond_text(rq, 502, "airlock: the git proxy's key holder did not answer");
        return AL_EIO;
    }
    gp_rd_str(&r, rq->session, sizeof(rq->session));
    gp_rd_str(&r, rq->user, sizeof(rq->user));
    gp_rd_str(&r, rq->repo, sizeof(rq->repo));
    if (gp_rd_end(&r, "AUTH_OK") < 0) {
        wk_respond_text(rq, 502, "airlock: the git proxy's key holder did not answer");
        return AL_EIO;
    }
    return 0;
}

/* Checks every header value that could reach the upstream request against
 * its grammar (gp_hdrcheck.h); answers 400 naming the header otherwise. */
static int headers_check(struct wrq *rq, enum gp_endpoint ep)
{
    struct gp_upstream_headers up;
    if (gp_hdrcheck_request(&up, &rq->http, ep) < 0) {
        wk_respond_text(rq, 400, "airlock: %s", al_error_last());
        return AL_EINVAL;
    }
    snprintf(rq->git_protocol, sizeof(rq->git_protocol), "%s", up.git_protocol);
    rq->gzip = up.gzip;
    return 0;
}

/* A fetch (or an advertisement): the body, if any, streams to the key
 * holder while its answer streams back. */
static void relay_request(struct wrq *rq, enum gp_req_kind kind)
{
    int post = kind == GP_REQ_UPLOAD_PACK;
    struct gp_wire w;
    gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_REQUEST);
    gp_wire_u8(&w, (uint8_t)kind);
    gp_wire_str(&w, rq->git_protocol);
    gp_wire_u8(&w, rq->gzip ? GP_ENC_GZIP : GP_ENC_NONE);
    gp_wire_u64(&w, !post                         ? 0
                    : rq->http.chunked            ? GP_LEN_CHUNKED
                    : rq->http.content_length < 0 ? 0
                                                  : (uint64_t)rq->http.content_length);
    /* A fetch's answer needs nothing of the worker: it goes straight from
     * the key holder to the client. The receive-pack advertisement gets
     * no-thin here first. */
    rq->direct = kind != GP_REQ_INFO_RECEIVE;
    gp_wire_u8(&w, (uint8_t)rq->direct);
    rq->inject = kind == GP_REQ_INFO_RECEIVE;
    al_buf_init(&rq->adv, 2 * GP_PKT_MAX + 64);
    if (gp_chan_send(rq->ch, &w, NULL, 0) < 0) {
        wk_respond_text(rq, 503, "airlock: the git proxy is restarting; try again");
        return;
    }
    int err = 0;
    while (post && !rq->done && err == 0) {
        gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_DATA);
        ssize_t n = gp_http_read_body(&rq->conn, w.buf + w.len, GP_CHAN_DATA_MAX);
        if (n < 0) {
            gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_ABORT);
            gp_wire_str(&w, "malformed request body");
            wk_send(rq, &w);
            break;
        }
        if (n == 0) {
            gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_END);
            err = wk_send(rq, &w);
            break;
        }
        w.len += (size_t)n;
        err = wk_send(rq, &w);
    }
    if (err == 0)
        err = wk_relay_rest(rq);
    if (err < 0 && !rq->head_sent)
        wk_respond_text(rq, 502, "airlock: %s", al_error_last());
    al_buf_free(&rq->adv);
}

static void request_handle(struct wrq *rq)
{
    struct gp_route route;
    int err = gp_http_read_request(&rq->conn, &rq->http);
    if (err == AL_EIO)
        return;
    if (err < 0) {
        wk_respond_text(rq, 400, "airlock: %s", al_error_last());
        return;
    }
    if (gp_route_parse(&route, rq->http.path, strlen(rq->http.path)) < 0) {
        wk_respond_text(rq, 404, "airlock: expected /<host>/<owner>/<repo>.git/...");
        return;
    }
    snprintf(rq->host, sizeof(rq->host), "%s", route.host);
    snprintf(rq->owner, sizeof(rq->owner), "%s", route.owner);
    snprintf(rq->name, sizeof(rq->name), "%s", route.name);
    enum gp_endpoint ep;
    if (route.rest == GP_REST_INFO_REFS) {
        if (strcmp(rq->http.method, "GET") != 0) {
            wk_respond_text(rq, 405, "airlock: GET expected");
            return;
        }
        if (strcmp(rq->http.query, "service=git-upload-pack") == 0)
            ep = GP_EP_INFO_REFS_UPLOAD;
        else if (strcmp(rq->http.query, "service=git-receive-pack") == 0)
            ep = GP_EP_INFO_REFS_RECEIVE;
        else {
            wk_respond_text(rq, 403, "airlock: only git's smart HTTP protocol is supported");
            return;
        }
    } else if (strcmp(rq->http.method, "POST") != 0) {
        wk_respond_text(rq, 405, "airlock: POST expected");
        return;
    } else {
        ep = route.rest == GP_REST_UPLOAD_PACK ? GP_EP_UPLOAD_PACK : GP_EP_RECEIVE_PACK;
    }
    if (headers_check(rq, ep) < 0)
        return;
    int push = ep == GP_EP_INFO_REFS_RECEIVE || ep == GP_EP_RECEIVE_PACK;
    if (request_authorise(rq, push ? CREDS_OP_PUSH : CREDS_OP_FETCH) < 0)
        return;
    switch (ep) {
    case GP_EP_RECEIVE_PACK:
        wk_receive_pack(rq);
        break;
    case GP_EP_UPLOAD_PACK:
        relay_request(rq, GP_REQ_UPLOAD_PACK);
        break;
    case GP_EP_INFO_REFS_RECEIVE:
        relay_request(rq, GP_REQ_INFO_RECEIVE);
        break;
    default:
        relay_request(rq, GP_REQ_INFO_UPLOAD);
    }
}

int gp_worker_serve(const struct gp_front_cfg *cfg, int client, int ch)
{
    struct wrq *rq = calloc(1, sizeof(*rq));
    if (!rq)
        return AL_ENOMEM;
    struct timeval tv = {.tv_sec = 300};
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    rq->cfg = cfg;
    rq->sub_fd = -1;
    rq->conn.fd = client;
    rq->ch = ch;
    request_handle(rq);
    if (rq->http.method[0] && rq->reason[0]) {
        /* the reason is printable ASCII but '"' (the key holder's FAIL text is; ours too) */
        for (char *q = rq->reason; *q; q++)
            if (*q == '"' || (unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
                *q = '\'';
        al_log(AL_LOG_INFO, "session=%s user=%s %s %s -> %d reason=\"%s\"",
               rq->session[0] ? rq->session : "-", rq->user[0] ? rq->user : "-", rq->http.method,
               rq->http.path, rq->status, rq->reason);
    } else if (rq->http.method[0]) {
        al_log(AL_LOG_INFO, "session=%s user=%s %s %s -> %d", rq->session[0] ? rq->session : "-",
               rq->user[0] ? rq->user : "-", rq->http.method, rq->http.path, rq->status);
    }
    shutdown(client, SHUT_WR);
    /* Let the client see the end of the response before the close. */
    char sink[4096];
    struct timeval shortv = {.tv_sec = 2};
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &shortv, sizeof(shortv));
    for (int i = 0; i < 64 && recv(client, sink, sizeof(sink), 0) > 0; i++)
        ;
    int status = rq->status;
    struct rusage ru;
    if (al_log_enabled(AL_LOG_DEBUG) && getrusage(RUSAGE_SELF, &ru) == 0)
        al_log(AL_LOG_DEBUG, "worker: %.0f ms user, %.0f ms system CPU, peak RSS %ld KiB",
               (double)ru.ru_utime.tv_sec * 1e3 + (double)ru.ru_utime.tv_usec / 1e3,
               (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3, ru.ru_maxrss);
    if (rq->sub_fd >= 0)
        close(rq->sub_fd);
    OPENSSL_cleanse(rq->http.authorization, sizeof(rq->http.authorization));
    OPENSSL_cleanse(rq->conn.in, sizeof(rq->conn.in));
    free(rq);
    return status >= 500 ? AL_EIO : 0;
}
