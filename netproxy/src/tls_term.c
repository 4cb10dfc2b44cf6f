/* TLS-terminated tunnels: the hand-off from the event loop and the worker
 * thread that serves one terminated connection.
 *
 * A worker owns both sockets (non-blocking; it waits with poll() and the
 * proxy's timeouts) and runs: the ClientHello check (SNI must name the
 * CONNECT host; non-TLS bytes end the tunnel), the TLS handshake with the
 * sandbox (leaf certificate of the session CA), the verified TLS connection
 * upstream, then HTTP/1.1 requests one at a time (tls_term_req.c decides
 * each head; bodies are rewritten or scanned here; responses are re-masked).
 * Each request ends with a decision line (proxy "https"); the tunnel's own
 * line is written when it closes. */
#include "tls_ca.h"
#include "tt_worker.h"

#include "airlock/error.h"
#include "airlock/log.h"
#include "socks5.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HANDSHAKE_MS  NP_TT_HANDSHAKE_MS
#define WORKER_STACK  (256u * 1024u)
#define IO_CHUNK      NP_TT_IO_CHUNK
#define CLIENT_IN_MAX (NP_HTTP_HEAD_MAX + IO_CHUNK)

/* --- the worker --- */

/* The client's queue: over its TLS, or raw for a plain-HTTP worker. */
static int cout_flush(struct np_worker *w)
{
    if (!w->plain)
        return np_tt_out_flush(&w->cout, w->cs, w->cfd, w->idle_ms);
    int rc = w->cout.len ? np_tt_raw_write_all(w->cfd, w->cout.ptr, w->cout.len, w->idle_ms) : 0;
    al_buf_reset(&w->cout);
    return rc;
}

int np_tw_flush(struct np_worker *w)
{
    int rc = w->up.out.len ? np_up_flush(&w->up) : 0;
    return cout_flush(w) < 0 ? -1 : rc;
}

/* np_tt_ssl_read_some for the worker: what OpenSSL holds already
 * (read-ahead) is returned at once; before it waits for the network,
 * everything queued is sent, so no output waits on input. `ssl` NULL: a
 * plain socket. */
ssize_t np_tw_read(struct np_worker *w, SSL *ssl, int fd, char *buf, size_t cap,
                   unsigned timeout_ms)
{
    ssize_t n = np_tt_ssl_read_pending(ssl, buf, cap);
    if (n != 0)
        return n < 0 ? 0 : n;
    if (np_tw_flush(w) < 0)
        return 0;
    if (!ssl)
        return np_tt_raw_read_some(fd, buf, cap, timeout_ms);
    return np_tt_ssl_read_some(ssl, fd, buf, cap, timeout_ms);
}

int np_tw_c_write(struct np_worker *w, const char *buf, size_t len)
{
    w->bytes_down += len;
    if (!w->plain)
        return np_tt_out_put(&w->cout, w->cs, w->cfd, buf, len, w->idle_ms);
    if (w->cout.len + len > NP_TT_OUT_MAX) {
        if (cout_flush(w) < 0)
            return -1;
        if (len > NP_TT_OUT_MAX)
            return np_tt_raw_write_all(w->cfd, buf, len, w->idle_ms);
    }
    return al_buf_append(&w->cout, buf, len) < 0 ? -1 : 0;
}

/* Answers the sandbox with an error over its TLS connection (the
 * connection closes afterwards). */
static void c_refuse(struct np_worker *w, int status, const char *error, const char *msg)
{
    struct al_buf b;
    al_buf_init(&b, 4096);
    if (al_buf_printf(&b,
                      "HTTP/1.1 %d %s\r\nX-Airlock-Error: %s\r\nContent-Type: text/plain\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                      status, np_http_status_text(status), error, strlen(msg) + 1, msg) == 0 &&
        np_tw_c_write(w, b.ptr, b.len) == 0)
        (void)cout_flush(w); /* not the upstream's */
    al_buf_free(&b);
}

/* One request's decision line (proxy "https"). */
static void log_request(struct np_worker *w, const char *decision, const char *reason,
                        const char *rule, const char *detail, int status, const struct np_tt_req *r,
                        uint64_t up, uint64_t down, uint64_t t0)
{
    struct np_logrec l;
    memset(&l, 0, sizeof(l));
    l.proxy = "https";
    l.decision = decision;
    snprintf(l.reason, sizeof(l.reason), "%s", reason ? reason : "");
    snprintf(l.rule, sizeof(l.rule), "%s", rule ? rule : "");
    snprintf(l.detail, sizeof(l.detail), "%s", detail ? detail : "");
    snprintf(l.host, sizeof(l.host), "%s", w->host);
    l.port = w->port;
    snprintf(l.addr, sizeof(l.addr), "%s", w->tlog.addr);
    l.status = status;
    if (r) {
        snprintf(l.method, sizeof(l.method), "%s", r->method[0] ? r->method : "-");
        snprintf(l.path, sizeof(l.path), "%s", r->path);
        snprintf(l.credential, sizeof(l.credential), "%s", r->credential);
    }
    l.t_start = t0;
    np_log_write(w->p, w->s->id, w->client, &l, up, down);
}

/* Ends the tunnel with decision `reason` (deny) before any request. */
static void tunnel_deny(struct np_worker *w, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void tunnel_deny(struct np_worker *w, const char *reason, const char *fmt, ...)
{
    va_list ap;
    w->tlog.decision = "deny";
    snprintf(w->tlog.reason, sizeof(w->tlog.reason), "%s", reason);
    va_start(ap, fmt);
    vsnprintf(w->tlog.detail, sizeof(w->tlog.detail), fmt, ap);
    va_end(ap);
}

/* Reads the ClientHello into w->pre.buf and checks it (decision 7). 0 to go on;
 * -1 when the tunnel ends (logged in w->tlog). */
static int check_client_hello(struct np_worker *w)
{
    char sni[NP_HOST_MAX] = "", norm[NP_HOST_MAX];
    uint64_t deadline = np_now_ms() + HANDSHAKE_MS;

    if (!w->pre.buf && !(w->pre.buf = malloc(NP_TLS_HELLO_MAX)))
        return -1;
    for (;;) {
        enum np_sni_result r =
            np_tls_sni_parse((const unsigned char *)w->pre.buf, w->pre.len, sni, sizeof(sni));
        if (r == NP_SNI_NOT_TLS || r == NP_SNI_MALFORMED) {
            tunnel_deny(w, "not-tls", "%s",
                        r == NP_SNI_NOT_TLS ? "non-TLS bytes in a terminated tunnel"
                                            : "malformed TLS ClientHello");
            return -1;
        }
        if (r == NP_SNI_FOUND) {
            if (np_host_normalize(norm, sni, strlen(sni)) < 0 || strcmp(norm, w->host) != 0) {
                tunnel_deny(w, "sni-mismatch",
                            "TLS server name differs from the CONNECT host (sni \"%.100s\")", sni);
                return -1;
            }
            return 0;
        }
        if (r == NP_SNI_NONE)
            return 0; /* the CONNECT host is used */
        if (w->pre.len >= NP_TLS_HELLO_MAX) {
            tunnel_deny(w, "not-tls", "TLS ClientHello too large");
            return -1;
        }
        uint64_t now = np_now_ms();
        if (now >= deadline || np_tt_wait_fd(w->cfd, POLLIN, (unsigned)(deadline - now)) <= 0) {
            tunnel_deny(w, "sni-timeout", "no TLS ClientHello in time");
            return -1;
        }
        ssize_t n = recv(w->cfd, w->pre.buf + w->pre.len, NP_TLS_HELLO_MAX - w->pre.len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            tunnel_deny(w, "client-closed", "the client closed before its ClientHello");
            return -1;
        }
        if (n > 0)
            w->pre.len += (size_t)n;
    }
}

static int client_handshake(struct np_worker *w)
{
    SSL_CTX *ctx = np_tls_server_ctx(w->tls, w->host, w->host_is_ip);
    BIO *b;

    if (!ctx) {
        tunnel_deny(w, "tls-error", "cannot make a certificate for %s: %s", w->host,
                    al_error_last());
        return -1;
    }
    w->cs = SSL_new(ctx);
    SSL_CTX_free(ctx);
    if (!w->cs || !(b = np_tt_fdbio_new(w->cfd, &w->pre))) {
        tunnel_deny(w, "tls-error", "out of memory");
        return -1;
    }
    SSL_set_bio(w->cs, b, b);
    SSL_set_read_ahead(w->cs, 1); /* a record in one recv; see w_read */
    int r = np_tt_ssl_handshake(w->cs, w->cfd, SSL_accept, HANDSHAKE_MS);
    if (r != 1) {
        unsigned long e = ERR_peek_error();
        char why[160] = "timeout";
        if (r == 0)
            ERR_error_string_n(e, why, sizeof(why));
        ERR_clear_error();
        tunnel_deny(w, "client-tls-failed", "TLS handshake with the sandbox failed: %s", why);
        return -1;
    }
    return 0;
}

/* A credential set holding only the credentials whose bit is clear in
 * `inject_ok` (shallow: the strings belong to `all`); `map` gives each
 * one's index in `all`. For scanning bodies that are not rewritten: any
 * sentinel of these refuses the request. */
static void forbidden_view(struct al_credset *view, size_t *map, struct al_cred *store,
                           const struct al_credset *all, uint64_t inject_ok)
{
    view->v = store;
    view->len = 0;
    for (size_t i = 0; all && i < all->len && i < AL_CRED_MAX; i++) {
        if (inject_ok & ((uint64_t)1 << i))
            continue;
        store[view->len] = all->v[i];
        map[view->len++] = i;
    }
}

/* Body of one request: from the client (the bytes in `in` first), through
 * the substitution (json/form) or the forbidden-sentinel scan, to the
 * upstream. Returns 0; 1 when refused (answered, logged by the caller with
 * r filled); -1 on an I/O error. */
struct body_io {
    struct np_worker *w;
    char *in;
    size_t *in_len;
};

/* Takes up to `cap` client body bytes: buffered ones first, else reads. */
static ssize_t body_take(struct body_io *io, char *out, size_t cap)
{
    struct np_worker *w = io->w;
    if (*io->in_len) {
        size_t n = *io->in_len < cap ? *io->in_len : cap;
        memcpy(out, io->in, n);
        memmove(io->in, io->in + n, *io->in_len - n);
        *io->in_len -= n;
        return (ssize_t)n;
    }
    ssize_t n = np_tw_read(w, w->cs, w->cfd, out, cap, w->idle_ms);
    return n > 0 ? n : -1;
}

/* Gives `len` request body bytes to the stream and hands what is final to
 * the upstream half (or to `collect`). 0, 1 refused (culprit set), 2 too
 * large for `collect`, -1 error. */
static int body_out(struct np_worker *w, struct al_subst_stream *st, const char *data, size_t len,
                    bool fin, struct al_buf *tmp, size_t *culprit, struct al_buf *collect)
{
    al_buf_reset(tmp);
    int err = len ? al_subst_stream_feed(st, data, len, tmp, culprit) : 0;
    if (err == AL_EPERM)
        return 1;
    if (err < 0 || (fin && al_subst_stream_finish(st, tmp) < 0))
        return -1;
    if (collect)
        return al_buf_append(collect, tmp->ptr, tmp->len) < 0 ? 2 : 0;
    return tmp->len && w->half->body(w, tmp->ptr, tmp->len) < 0 ? -1 : 0;
}

/* Forwards the request body. Returns 0, 1 when refused (r->status set;
 * the caller answers), -1 on error. */
static int request_body(struct np_worker *w, struct np_tt_req *r, struct body_io *io)
{
    struct al_subst_stream st;
    struct al_credset view;
    struct al_cred store[AL_CRED_MAX];
    size_t map[AL_CRED_MAX], culprit = 0;
    struct al_buf tmp, collect;
    char *chunk = malloc(IO_CHUNK);
    struct np_chunked ch;
    int ret = 0;
    const struct al_credset *set = w->creds ? &w->creds->set : NULL;
    struct al_credset empty = {0};

    al_buf_init(&tmp, IO_CHUNK * 2 + AL_CRED_VALUE_MAX * 2);
    al_buf_init(&collect, NP_TT_BODY_MAX + AL_CRED_VALUE_MAX);
    np_chunked_init(&ch);
    if (r->body_subst) {
        if (al_subst_stream_init(&st, set, AL_SUBST_REQUEST, w->inject_ok) < 0)
            ret = -1;
    } else {
        forbidden_view(&view, map, store, set, w->inject_ok);
        if (al_subst_stream_init(&st, view.len ? &view : &empty, AL_SUBST_REQUEST, 0) < 0)
            ret = -1;
    }
    if (!chunk || ret < 0) {
        free(chunk);
        al_buf_free(&tmp);
        al_buf_free(&collect);
        return -1;
    }
    struct al_buf *coll = r->rebuffer ? &collect : NULL;
    uint64_t left = r->content_length;
    bool done = !r->chunked && left == 0;
    while (!done && ret == 0) {
        ssize_t n = body_take(io, chunk, IO_CHUNK);
        if (n < 0) {
            ret = -1;
            break;
        }
        size_t got = (size_t)n, pos = 0;
        if (!r->chunked) {
            if ((uint64_t)got > left) {
                /* pipelined bytes of the next request: put them back */
                size_t extra = got - (size_t)left;
                memmove(io->in + extra, io->in, *io->in_len);
                memcpy(io->in, chunk + left, extra);
                *io->in_len += extra;
                got = (size_t)left;
            }
            left -= got;
            done = left == 0;
            ret = body_out(w, &st, chunk, got, done, &tmp, &culprit, coll);
            continue;
        }
        /* chunked: decode, hand the data on, re-chunk (a sentinel split by
         * the client's chunk boundaries is still found) */
        while (pos < got && ret == 0 && !done) {
            size_t used = 0;
            uint64_t data = np_chunked_data_left(&ch);
            if (data) {
                size_t take = got - pos;
                if (take > data)
                    take = (size_t)data;
                int rc = np_chunked_feed(&ch, chunk + pos, take, &used);
                (void)rc;
                ret = body_out(w, &st, chunk + pos, take, false, &tmp, &culprit, coll);
                pos += take;
                continue;
            }
            int rc = np_chunked_feed(&ch, chunk + pos, 1, &used);
            if (rc < 0) {
                snprintf(r->why, sizeof(r->why), "airlock: bad request: malformed chunked body");
                r->status = 400;
                r->error = "bad-request";
                snprintf(r->reason, sizeof(r->reason), "bad-request");
                ret = 1;
                break;
            }
            pos++;
            if (rc == 1) {
                done = true;
                ret = body_out(w, &st, NULL, 0, true, &tmp, &culprit, coll);
            }
        }
        if (done && pos < got) {
            size_t extra = got - pos;
            memmove(io->in + extra, io->in, *io->in_len);
            memcpy(io->in, chunk + pos, extra);
            *io->in_len += extra;
        }
    }
    if (ret == 1 && !r->status) {
        size_t idx = r->body_subst ? culprit : map[culprit];
        np_tt_cred_refusal(r, set, idx, w->host);
    } else if (ret == 2) {
        r->status = 413;
        r->error = "body-too-large";
        snprintf(r->reason, sizeof(r->reason), "body-too-large");
        snprintf(r->why, sizeof(r->why),
                 "airlock: a request body with a credential to replace is limited to %u bytes",
                 NP_TT_BODY_MAX);
        ret = 1;
    } else if (ret == 0 && coll) {
        /* decision 6: the head goes now, with the body's new length */
        if (w->half->req_head(w, r, NP_KH_FRAME_LENGTH, collect.len) < 0 ||
            (collect.len && w->half->body(w, collect.ptr, collect.len) < 0) ||
            w->half->body_end(w) < 0)
            ret = -1;
    } else if (ret == 0 && w->half->body_end(w) < 0) {
        ret = -1;
    }
    if (ret == 0 && st.used)
        r->used |= r->body_subst ? st.used : 0;
    al_subst_stream_free(&st);
    free(chunk);
    al_buf_wipe_free(&tmp);
    al_buf_wipe_free(&collect);
    return ret;
}

static void half_refuse(struct np_worker *w, const struct np_half_err *e)
{
    c_refuse(w, e->status ? e->status : 502, e->error[0] ? e->error : "upstream-error", e->msg);
}

/* The framing of a request body that goes behind its head. */
static uint8_t req_framing(const struct np_tt_req *r)
{
    if (r->chunked)
        return NP_KH_FRAME_CHUNKED;
    return r->has_body ? NP_KH_FRAME_LENGTH : NP_KH_FRAME_NONE;
}

/* The HTTP/1.1 request loop of a terminated connection. */
static void serve(struct np_worker *w)
{
    char *in = malloc(CLIENT_IN_MAX);
    size_t in_len = 0;
    struct np_tt_req r;
    struct np_tt_ctx ctx = {
        .host = w->host,
        .host_is_ip = w->host_is_ip,
        .port = w->port,
        .pol = w->snap ? &w->snap->pol : NULL,
        .creds = w->creds ? &w->creds->set : NULL,
        .inject_ok = w->inject_ok,
    };

    np_tt_req_init(&r);
    if (!in)
        goto out;
    for (;;) {
        int n;
        uint64_t t0 = np_now_us(), up0 = w->bytes_up, down0 = w->bytes_down;
        /* the whole head must arrive within header_timeout_ms of its first
         * byte (not each read: a byte a second would hold the worker) */
        uint64_t head_deadline = in_len ? np_now_ms() + w->p->cfg.header_timeout_ms : 0;
        while ((n = np_tt_request_process(&ctx, in, in_len, &r)) == 0) {
            unsigned wait_ms = w->idle_ms;
            if (head_deadline) {
                uint64_t now = np_now_ms();
                if (now >= head_deadline) {
                    c_refuse(w, 408, "header-timeout",
                             "airlock: the request head did not arrive in time");
                    log_request(w, "deny", "header-timeout", "",
                                "airlock: the request head did not arrive in time", 408, &r,
                                w->bytes_up - up0, w->bytes_down - down0, t0);
                    goto out;
                }
                wait_ms = (unsigned)(head_deadline - now);
            }
            ssize_t got =
                np_tw_read(w, w->cs, w->cfd, in + in_len, CLIENT_IN_MAX - in_len, wait_ms);
            if (got <= 0 && head_deadline && np_now_ms() >= head_deadline)
                continue; /* the head's time ran out: answered above */
            if (got <= 0)
                goto out; /* closed or idle: the tunnel ends */
            if (!head_deadline)
                head_deadline = np_now_ms() + w->p->cfg.header_timeout_ms;
            in_len += (size_t)got;
        }
        if (n < 0)
            goto out;
        memmove(in, in + r.head_len, in_len - r.head_len);
        in_len -= r.head_len;
        if (r.status) {
            c_refuse(w, r.status, r.error, r.why);
            log_request(w, "deny", r.reason, r.rule, r.why, r.status, &r, w->bytes_up - up0,
                        w->bytes_down - down0, t0);
            goto out;
        }
        struct np_half_err he = {0};
        if (w->half->open(w, &he) < 0) {
            half_refuse(w, &he);
            snprintf(w->tlog.reason, sizeof(w->tlog.reason), "%s", he.error);
            snprintf(w->tlog.detail, sizeof(w->tlog.detail), "%.*s",
                     (int)sizeof(w->tlog.detail) - 1, he.msg);
            w->tlog.decision = "deny";
            w->tlog.status = he.status;
            log_request(w, "deny", he.error, "", he.msg, he.status, &r, 0, w->bytes_down - down0,
                        t0);
            goto out;
        }
        if (!r.rebuffer && w->half->req_head(w, &r, req_framing(&r), r.content_length) < 0)
            goto out;
        if (r.expect_continue && np_tw_c_write(w, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
            goto out;
        if (r.has_body) {
            struct body_io io = {.w = w, .in = in, .in_len = &in_len};
            int b = request_body(w, &r, &io);
            if (b != 0) {
                w->half->abort(w, b == 1 ? r.reason : "client-error");
                if (b == 1) {
                    c_refuse(w, r.status, r.error, r.why);
                    log_request(w, "deny", r.reason, r.rule, r.why, r.status, &r, w->bytes_up - up0,
                                w->bytes_down - down0, t0);
                }
                goto out; /* the upstream got a truncated request: dropped */
            }
            np_tt_cred_names(r.credential, sizeof(r.credential), ctx.creds, r.used);
        } else if (w->half->body_end(w) < 0) {
            goto out;
        }
        bool close_after = r.close_after, upgraded = false;
        uint64_t used = r.used;
        int status = w->half->response(w, &r, &close_after, &upgraded, &used, &he);
        if (used != r.used) {
            r.used = used;
            np_tt_cred_names(r.credential, sizeof(r.credential), ctx.creds, r.used);
        }
        if (status > 0 && np_tw_flush(w) < 0)
            status = -1;
        if (status == -2) {
            half_refuse(w, &he);
            if (he.status == 502) { /* as an in-process open failure */
                snprintf(w->tlog.reason, sizeof(w->tlog.reason), "%s", he.error);
                snprintf(w->tlog.detail, sizeof(w->tlog.detail), "%.*s",
                         (int)sizeof(w->tlog.detail) - 1, he.msg);
                w->tlog.decision = "deny";
                w->tlog.status = he.status;
            }
            log_request(w, "deny", he.error, r.rule, he.msg, he.status, &r, w->bytes_up - up0,
                        w->bytes_down - down0, t0);
            goto out;
        }
        if (status < 0) {
            log_request(w, "abort", "upstream-error", r.rule, "", 0, &r, w->bytes_up - up0,
                        w->bytes_down - down0, t0);
            goto out;
        }
        log_request(w, r.would_deny ? "would-deny" : "allow",
                    r.would_deny ? r.reason : "allowed-domain", r.rule, r.would_deny ? r.why : "",
                    status, &r, w->bytes_up - up0, w->bytes_down - down0, t0);
        if (upgraded) {
            w->half->relay(w);
            goto out;
        }
        if (close_after)
            goto out;
    }
out:
    np_tt_req_free(&r);
    free(in);
}

/* A split proxy's plain-HTTP request that gets a value: one request (the
 * head the loop made, Connection: close) through the key holder, its body
 * scanned for sentinels of credentials not allowed for the host, the
 * answer relayed; the connection ends after it. Its decision line is
 * w->tlog (proxy "http"). */
static void serve_plain(struct np_worker *w)
{
    char *in = malloc(CLIENT_IN_MAX);
    size_t in_len = 0;
    struct np_tt_req r;
    struct np_half_err he = {0};

    np_tt_req_init(&r);
    if (!in || al_buf_append(&r.head, w->plain_head.ptr, w->plain_head.len) < 0)
        goto out;
    in_len = w->pre.len < CLIENT_IN_MAX ? w->pre.len : CLIENT_IN_MAX;
    if (in_len)
        memcpy(in, w->pre.buf, in_len);
    r.chunked = w->plain_chunked;
    r.content_length = w->plain_body_left;
    r.has_body = r.chunked || r.content_length > 0;
    r.close_after = true;
    r.head_method = w->plain_head.len > 5 && memcmp(w->plain_head.ptr, "HEAD ", 5) == 0;
    snprintf(r.credential, sizeof(r.credential), "%s", w->tlog.credential);
    if (w->half->open(w, &he) < 0 ||
        w->half->req_head(w, &r, req_framing(&r), r.content_length) < 0)
        goto out;
    if (r.has_body) {
        struct body_io io = {.w = w, .in = in, .in_len = &in_len};
        int b = request_body(w, &r, &io);
        if (b != 0) {
            w->half->abort(w, b == 1 ? r.reason : "client-error");
            if (b == 1) {
                c_refuse(w, r.status, r.error, r.why);
                w->tlog.decision = "deny";
                w->tlog.status = r.status;
                snprintf(w->tlog.reason, sizeof(w->tlog.reason), "%s", r.reason);
                snprintf(w->tlog.detail, sizeof(w->tlog.detail), "%.*s",
                         (int)sizeof(w->tlog.detail) - 1, r.why);
                snprintf(w->tlog.credential, sizeof(w->tlog.credential), "%s", r.credential);
            }
            goto out;
        }
    } else if (w->half->body_end(w) < 0) {
        goto out;
    }
    bool close_after = true, upgraded = false;
    uint64_t used = 0;
    int status = w->half->response(w, &r, &close_after, &upgraded, &used, &he);
    if (status > 0 && np_tw_flush(w) < 0)
        status = -1;
    if (status == -2) {
        half_refuse(w, &he);
        w->tlog.decision = "deny";
        w->tlog.status = he.status;
        snprintf(w->tlog.reason, sizeof(w->tlog.reason), "%s", he.error);
        snprintf(w->tlog.detail, sizeof(w->tlog.detail), "%.*s", (int)sizeof(w->tlog.detail) - 1,
                 he.msg);
    } else if (status > 0) {
        w->tlog.status = status;
    }
out:
    np_tt_req_free(&r);
    free(in);
}

static void worker_finish(struct np_worker *w)
{
    struct np_proxy *p = w->p;

    /* what was queued for the sandbox goes (e.g. a refusal); what was queued
     * for the upstream is dropped: the request it belongs to was refused or
     * broke off, and its response would not be read */
    (void)cout_flush(w);
    if (w->cs) {
        SSL_shutdown(w->cs);
        SSL_free(w->cs);
    }
    w->half->close(w);
    np_log_write(p, w->s->id, w->client, &w->tlog, w->bytes_up, w->bytes_down);
    np_tls_unref(w->tls);
    np_creds_unref(w->creds);
    np_polsnap_unref(w->snap);
    free(w->pre.buf);
    al_buf_free(&w->early_out);
    al_buf_free(&w->cout);
    al_buf_free(&w->plain_head);
    pthread_mutex_lock(&p->wk_lock);
    if (w->cfd >= 0)
        close(w->cfd);
    if (w->prev)
        w->prev->next = w->next;
    else
        p->workers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    p->n_workers--;
    atomic_fetch_sub(&w->s->n_workers, 1);
    free(w);
    /* after this, np_proxy_free may free p and the session */
    pthread_cond_broadcast(&p->wk_cond);
    pthread_mutex_unlock(&p->wk_lock);
}

static void *worker_main(void *arg)
{
    struct np_worker *w = arg;

    if (w->early_out.len &&
        np_tt_raw_write_all(w->cfd, w->early_out.ptr, w->early_out.len, HANDSHAKE_MS) < 0)
        goto out;
    if (w->plain) {
        if (w->half->start(w) == 0)
            serve_plain(w);
        goto out;
    }
    if (check_client_hello(w) < 0)
        goto out;
    if (w->half->start(w) < 0)
        goto out;
    if (client_handshake(w) < 0)
        goto out;
    serve(w);
out:
    worker_finish(w);
    return NULL;
}

int np_tt_wanted(struct np_conn *c)
{
    int want = 0;

    if (c->kind == NP_RELAY || !c->is_connect)
        return 0;
    pthread_mutex_lock(&c->proxy->lock);
    struct np_session *s = c->session;
    if (s->snap && s->snap->pol.tls_terminate &&
        !np_polsnap_excluded(s->snap, c->host, c->host_is_ip, c->port))
        want = s->tls ? 1 : -1;
    pthread_mutex_unlock(&c->proxy->lock);
    return want;
}

static void start_worker(struct np_conn *c, bool plain);

void np_tt_start(struct np_conn *c)
{
    start_worker(c, false);
}

void np_tt_start_plain(struct np_conn *c)
{
    start_worker(c, true);
}

static void start_worker(struct np_conn *c, bool plain)
{
    struct np_proxy *p = c->proxy;
    struct np_worker *w = calloc(1, sizeof(*w));
    pthread_attr_t attr;
    pthread_t tid;

    if (!w) {
        np_conn_close(c);
        return;
    }
    w->p = p;
    w->s = c->session;
    w->cfd = w->kfd = -1;
    w->idle_ms = p->cfg.idle_timeout_ms ? p->cfg.idle_timeout_ms : 300000;
    snprintf(w->client, sizeof(w->client), "%s", c->client);
    snprintf(w->host, sizeof(w->host), "%s", c->host);
    w->host_is_ip = c->host_is_ip;
    w->port = c->port;
    struct sockaddr_storage ua;
    socklen_t ua_len = al_addr_to_sockaddr(&c->cands[c->next_cand - 1], c->port, &ua);
    w->plain = plain;
    al_buf_init(&w->early_out, plain ? c->down.pend.len + 1 : 4096);
    al_buf_init(&w->cout, NP_TT_OUT_MAX);
    al_buf_init(&w->plain_head, plain ? c->fwd_head.len + 1 : 1);
    /* TLS: the ClientHello bytes read so far; plain: the body's first bytes */
    size_t pre_max = plain ? NP_IN_MAX : NP_TLS_HELLO_MAX;
    if ((c->down.pend.len > c->down.pend_off &&
         al_buf_append(&w->early_out, c->down.pend.ptr + c->down.pend_off,
                       c->down.pend.len - c->down.pend_off) < 0) ||
        (plain && al_buf_append(&w->plain_head, c->fwd_head.ptr, c->fwd_head.len) < 0) ||
        (c->in_len && !(w->pre.buf = malloc(pre_max)))) {
        al_buf_free(&w->early_out);
        al_buf_free(&w->plain_head);
        free(w);
        np_conn_close(c);
        return;
    }
    if (c->in_len) {
        size_t n = c->in_len < pre_max ? c->in_len : pre_max;
        memcpy(w->pre.buf, c->in, n);
        w->pre.len = n;
    }
    w->plain_body_left = c->body_left;
    w->plain_chunked = c->body_chunked;
    pthread_mutex_lock(&p->lock);
    w->tls = c->session->tls;
    np_tls_ref(w->tls);
    if ((w->creds = c->session->creds))
        atomic_fetch_add(&w->creds->refs, 1);
    if ((w->snap = c->session->snap))
        atomic_fetch_add(&w->snap->refs, 1);
    w->half = p->kh_fd >= 0 ? &np_half_channel : &np_half_inproc;
    pthread_mutex_unlock(&p->lock);
    w->inject_ok = np_creds_inject_mask(w->creds, w->host, w->host_is_ip, w->port);
    np_up_init(&w->up, w->tls, w->host, w->host_is_ip, w->port, -1, &ua, ua_len, w->idle_ms,
               p->cfg.connect_timeout_ms, &p->wk_lock, &w->killed);

    /* the tunnel's decision line is the worker's from now on */
    w->tlog = c->log;
    w->tlog.active = false;
    if (w->tlog.reason[0] == '\0')
        snprintf(w->tlog.reason, sizeof(w->tlog.reason), "allowed-domain");
    if (w->tlog.detail[0] == '\0' && !plain)
        snprintf(w->tlog.detail, sizeof(w->tlog.detail), "tls-terminated");
    c->log.active = false;

    /* take the sockets out of the loop */
    if (!c->c_unreg)
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->cfd, NULL);
    if (!c->u_unreg)
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->ufd, NULL);
    int one = 1;
    setsockopt(c->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    pthread_mutex_lock(&p->wk_lock);
    bool removed;
    pthread_mutex_lock(&p->lock);
    removed = c->session->removed || p->stopping;
    pthread_mutex_unlock(&p->lock);
    if (removed) {
        pthread_mutex_unlock(&p->wk_lock);
        goto fail;
    }
    w->cfd = c->cfd;
    w->up.fd = c->ufd;
    c->cfd = c->ufd = -1;
    w->next = p->workers;
    if (p->workers)
        p->workers->prev = w;
    p->workers = w;
    p->n_workers++;
    atomic_fetch_add(&w->s->n_workers, 1);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WORKER_STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&tid, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        c->cfd = w->cfd;
        c->ufd = w->up.fd;
        w->cfd = w->up.fd = -1;
        p->workers = w->next;
        if (w->next)
            w->next->prev = NULL;
        p->n_workers--;
        atomic_fetch_sub(&w->s->n_workers, 1);
        pthread_mutex_unlock(&p->wk_lock);
        al_log(AL_LOG_WARN, "pthread_create: %s", strerror(rc));
        goto fail;
    }
    pthread_mutex_unlock(&p->wk_lock);
    np_conn_close(c); /* the loop's side; the worker has the sockets */
    return;
fail:
    np_tls_unref(w->tls);
    np_creds_unref(w->creds);
    np_polsnap_unref(w->snap);
    free(w->pre.buf);
    al_buf_free(&w->early_out);
    al_buf_free(&w->plain_head);
    free(w);
    c->c_unreg = c->u_unreg = true; /* not in epoll any more */
    np_conn_close(c);
}

void np_tt_kill(struct np_proxy *p, struct np_session *s)
{
    pthread_mutex_lock(&p->wk_lock);
    for (struct np_worker *w = p->workers; w; w = w->next) {
        if (s && w->s != s)
            continue;
        w->killed = true;
        if (w->cfd >= 0)
            shutdown(w->cfd, SHUT_RDWR);
        if (w->up.fd >= 0)
            shutdown(w->up.fd, SHUT_RDWR);
        if (w->kfd >= 0)
            shutdown(w->kfd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&p->wk_lock);
}

void np_tt_wait(struct np_proxy *p)
{
    pthread_mutex_lock(&p->wk_lock);
    while (p->n_workers)
        pthread_cond_wait(&p->wk_cond, &p->wk_lock);
    pthread_mutex_unlock(&p->wk_lock);
}

unsigned np_tt_count(struct np_session *s)
{
    return atomic_load(&s->n_workers);
}
