/* The upstream half of a terminated connection in this process
 * (tt_worker.h): the verified TLS connection upstream (tt_upstream.c),
 * the request written with the real values put back (tls_term_req.c made
 * the head), the response read and re-masked for the client. What
 * `airlock run` and the embedder use, and what the key holder is built on. */
#include "tt_worker.h"

#include "airlock/error.h"

#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int u_write(struct np_worker *w, const char *buf, size_t len)
{
    w->bytes_up += len;
    return np_up_write(&w->up, buf, len);
}

static int ip_start(struct np_worker *w)
{
    np_up_start(&w->up);
    return 0;
}

static int ip_open(struct np_worker *w, struct np_half_err *e)
{
    const char *error = "upstream-tls";

    if (np_up_gone(&w->up))
        np_up_drop(&w->up); /* closed while idle: dial the same address again */
    if (np_up_open(&w->up, &error, e->msg, sizeof(e->msg)) == 0)
        return 0;
    e->status = 502;
    snprintf(e->error, sizeof(e->error), "%s", error);
    return -1;
}

static int ip_req_head(struct np_worker *w, const struct np_tt_req *r, uint8_t framing,
                       uint64_t length)
{
    w->up_chunked = framing == NP_KH_FRAME_CHUNKED;
    if (!r->rebuffer)
        return u_write(w, r->head.ptr, r->head.len);
    /* decision 6: the head went without framing; add the new length */
    char cl[48];
    int n = snprintf(cl, sizeof(cl), "Content-Length: %llu\r\n\r\n", (unsigned long long)length);
    return u_write(w, r->head.ptr, r->head.len - 2) < 0 || u_write(w, cl, (size_t)n) < 0 ? -1 : 0;
}

static int ip_body(struct np_worker *w, const char *data, size_t len)
{
    if (!len)
        return 0;
    if (!w->up_chunked)
        return u_write(w, data, len);
    char hdr[32];
    int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
    return u_write(w, hdr, (size_t)n) < 0 || u_write(w, data, len) < 0 || u_write(w, "\r\n", 2) < 0
               ? -1
               : 0;
}

static int ip_body_end(struct np_worker *w)
{
    return w->up_chunked && u_write(w, "0\r\n\r\n", 5) < 0 ? -1 : 0;
}

static void ip_abort(struct np_worker *w, const char *reason)
{
    (void)reason;
    /* what was queued is dropped, and the connection with it: the
     * upstream got a truncated request */
    np_up_drop(&w->up);
    if (w->up.out.len)
        OPENSSL_cleanse(w->up.out.ptr, w->up.out.len);
    al_buf_reset(&w->up.out);
}

/* Response re-masking output: sends `len` bytes of body data (after the
 * stream) to the client, re-chunked when `chunked`. 0 or -1. */
static int resp_out(struct np_worker *w, struct al_subst_stream *st, const char *data, size_t len,
                    bool chunked, bool fin, struct al_buf *tmp)
{
    al_buf_reset(tmp);
    if ((len && al_subst_stream_feed(st, data, len, tmp, NULL) < 0) ||
        (fin && al_subst_stream_finish(st, tmp) < 0))
        return -1;
    if (tmp->len) {
        char hdr[32];
        int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", tmp->len);
        if ((chunked && np_tw_c_write(w, hdr, (size_t)n) < 0) ||
            np_tw_c_write(w, tmp->ptr, tmp->len) < 0 ||
            (chunked && np_tw_c_write(w, "\r\n", 2) < 0))
            return -1;
    }
    if (fin && chunked && np_tw_c_write(w, "0\r\n\r\n", 5) < 0)
        return -1;
    return 0;
}

static ssize_t u_read(struct np_worker *w, char *buf, size_t cap)
{
    return np_tw_read(w, w->up.ssl, w->up.fd, buf, cap, w->idle_ms);
}

/* Reads the response to the request and relays it, re-masked. */
static int ip_response(struct np_worker *w, const struct np_tt_req *r, bool *close_after,
                       bool *upgraded, uint64_t *used, struct np_half_err *e)
{
    char *buf = malloc(NP_HTTP_RESP_HEAD_MAX + NP_TT_IO_CHUNK);
    size_t len = 0;
    struct np_http_response rs;
    struct al_subst_stream st;
    struct al_buf tmp;
    int status = -1;
    const struct al_credset *set = w->creds ? &w->creds->set : NULL;
    struct al_credset empty = {0};

    (void)used;
    (void)e;
    al_buf_init(&tmp, NP_TT_IO_CHUNK * 2 + AL_CRED_VALUE_MAX * 2);
    if (!buf)
        return -1;
    for (;;) { /* 1xx responses come before the final one */
        int n;
        while ((n = np_http_parse_response(&rs, buf, len)) == 0) {
            ssize_t got = u_read(w, buf + len, NP_HTTP_RESP_HEAD_MAX + NP_TT_IO_CHUNK - len);
            if (got <= 0)
                goto out;
            len += (size_t)got;
        }
        if (n < 0)
            goto out;
        /* the head, re-masked (same length, so framing headers hold) */
        if (al_subst_stream_init(&st, set ? set : &empty, AL_SUBST_RESPONSE, 0) < 0)
            goto out;
        al_buf_reset(&tmp);
        int err = al_subst_stream_feed(&st, buf, (size_t)n, &tmp, NULL);
        err |= al_subst_stream_finish(&st, &tmp);
        al_subst_stream_free(&st);
        if (err < 0 || np_tw_c_write(w, tmp.ptr, tmp.len) < 0)
            goto out;
        memmove(buf, buf + n, len - (size_t)n);
        len -= (size_t)n;
        if (rs.status == 101 && r->upgrade) {
            *upgraded = true;
            /* whatever followed the head is the upgraded protocol's */
            if (len && np_tw_c_write(w, buf, len) < 0)
                goto out;
            status = 101;
            goto out;
        }
        if (rs.status >= 100 && rs.status < 200)
            continue;
        break;
    }
    status = rs.status;
    bool no_body = r->head_method || rs.status == 204 || rs.status == 304;
    bool chunked = !no_body && rs.chunked;
    bool until_close = !no_body && !rs.chunked && !rs.has_content_length;
    uint64_t left = no_body || chunked ? 0 : rs.content_length;
    struct np_chunked ch;
    np_chunked_init(&ch);
    *close_after = rs.conn_close || until_close;
    if (no_body || (!chunked && !until_close && left == 0)) {
        len = 0; /* anything more is not part of this response */
        goto out;
    }
    if (al_subst_stream_init(&st, set ? set : &empty, AL_SUBST_RESPONSE, 0) < 0) {
        status = -1;
        goto out;
    }
    bool done = false;
    while (!done) {
        if (len == 0) {
            ssize_t got = u_read(w, buf, NP_TT_IO_CHUNK);
            if (got <= 0) {
                if (until_close) {
                    done = true;
                    if (resp_out(w, &st, NULL, 0, false, true, &tmp) < 0)
                        status = -1;
                    break;
                }
                status = -1; /* truncated */
                break;
            }
            len = (size_t)got;
        }
        size_t pos = 0;
        if (!chunked) {
            size_t take = len;
            if (!until_close && take > left)
                take = (size_t)left;
            left -= until_close ? 0 : take;
            done = !until_close && left == 0;
            if (resp_out(w, &st, buf, take, false, done, &tmp) < 0) {
                status = -1;
                break;
            }
            len = 0;
            continue;
        }
        while (pos < len && !done) {
            size_t cused = 0;
            uint64_t data = np_chunked_data_left(&ch);
            if (data) {
                size_t take = len - pos;
                if (take > data)
                    take = (size_t)data;
                np_chunked_feed(&ch, buf + pos, take, &cused);
                if (resp_out(w, &st, buf + pos, take, true, false, &tmp) < 0) {
                    status = -1;
                    done = true;
                    break;
                }
                pos += take;
                continue;
            }
            int rc = np_chunked_feed(&ch, buf + pos, 1, &cused);
            pos++;
            if (rc < 0) {
                status = -1;
                done = true;
            } else if (rc == 1) {
                done = true;
                if (resp_out(w, &st, NULL, 0, true, true, &tmp) < 0)
                    status = -1;
            }
        }
        len = 0;
    }
    al_subst_stream_free(&st);
out:
    if (status > 0 && !*upgraded && len)
        *close_after = true; /* bytes past the response: do not reuse */
    free(buf);
    al_buf_wipe_free(&tmp);
    return status;
}

/* Relay step of an upgraded connection: moves what `from` gives without
 * waiting (`up`: to the upstream). 1 moved, 0 nothing to read yet, -1 the
 * relay ends. */
static int relay_move(struct np_worker *w, SSL *from, bool up, char *buf)
{
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(from, buf, NP_TT_IO_CHUNK, &got))
        return (up ? u_write(w, buf, got) : np_tw_c_write(w, buf, got)) < 0 ? -1 : 1;
    int e = SSL_get_error(from, 0);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* After a 101: raw relay both ways until either side ends. What OpenSSL
 * holds already (read-ahead) is moved before poll() waits on the sockets:
 * a whole record in its buffer would not wake poll(); a partial one is
 * completed by the socket, which does. */
static void ip_relay(struct np_worker *w)
{
    char *buf = malloc(NP_TT_IO_CHUNK);
    if (!buf)
        return;
    for (;;) {
        int a = SSL_has_pending(w->cs) ? relay_move(w, w->cs, true, buf) : 0;
        int b = a >= 0 && SSL_has_pending(w->up.ssl) ? relay_move(w, w->up.ssl, false, buf) : 0;
        if (a < 0 || b < 0)
            break;
        if (a || b)
            continue;
        struct pollfd pfd[2] = {{.fd = w->cfd, .events = POLLIN},
                                {.fd = w->up.fd, .events = POLLIN}};
        if (np_tw_flush(w) < 0 || poll(pfd, 2, (int)w->idle_ms) <= 0)
            break;
        if (pfd[0].revents && relay_move(w, w->cs, true, buf) < 0)
            break;
        if (pfd[1].revents && relay_move(w, w->up.ssl, false, buf) < 0)
            break;
    }
    (void)np_tw_flush(w);
    free(buf);
}

static void ip_close(struct np_worker *w)
{
    /* what was queued for the upstream is dropped: the request it belongs
     * to was refused or broke off, and its response would not be read */
    if (w->up.out.len)
        OPENSSL_cleanse(w->up.out.ptr, w->up.out.len);
    al_buf_reset(&w->up.out);
    np_up_free(&w->up);
}

const struct np_half_ops np_half_inproc = {
    .start = ip_start,
    .open = ip_open,
    .req_head = ip_req_head,
    .body = ip_body,
    .body_end = ip_body_end,
    .abort = ip_abort,
    .response = ip_response,
    .relay = ip_relay,
    .close = ip_close,
};
