/* Masked credentials on plain-HTTP (absolute-form) requests (decision 3):
 * a sentinel in the request is refused (403 credential-not-allowed-here)
 * unless the policy has allow_plaintext_inject and the host is one of the
 * credential's inject hosts; then it is replaced in the head as on HTTPS.
 * Bodies are scanned (decoded when chunked): a sentinel of a credential not
 * allowed for the host ends the request. Bodies are never rewritten on
 * plain HTTP. Loop thread only. */
#include "internal.h"

#include "airlock/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct np_plain_scan {
    struct np_creds *creds; /* one reference */
    struct al_credset view; /* credentials not allowed for the host */
    struct al_cred store[AL_CRED_MAX];
    size_t map[AL_CRED_MAX];
    struct al_subst_stream st;
    struct np_chunked ch;
    bool chunked;
};

/* Takes a reference to the session's credentials (NULL when none) and
 * tells whether plain-HTTP injection is on. */
static struct np_creds *session_creds(struct np_conn *c, bool *plaintext)
{
    struct np_creds *cr;

    pthread_mutex_lock(&c->proxy->lock);
    cr = c->session->creds;
    if (cr && cr->set.len)
        atomic_fetch_add(&cr->refs, 1);
    else
        cr = NULL;
    *plaintext = c->session->snap && c->session->snap->pol.allow_plaintext_inject;
    pthread_mutex_unlock(&c->proxy->lock);
    return cr;
}

/* Re-masking of an upstream's bytes (decision 5 on plain HTTP). */
struct np_plain_remask {
    struct np_creds *creds; /* one reference: the stream's set */
    struct al_subst_stream st;
};

/* Whether the head line p[0..n) is header `name` (lower case, with ':'). */
static bool line_is(const char *p, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n > k && strncasecmp(p, name, k) == 0;
}

/* Forwards the head with "Connection: close" in place of the client's
 * Connection headers: the upstream ends the stream after this response, so
 * the bytes the re-masker holds back are flushed at its end. And with
 * "Accept-Encoding: identity" (Accept-Encoding and TE dropped): the
 * re-masker sees bytes, so an echo must not come back compressed.
 * 0 or AL_ETOOBIG. */
static int head_close(struct np_conn *c)
{
    struct al_buf h;
    const char *p = c->fwd_head.ptr, *end = p + c->fwd_head.len;
    int err = 0;

    al_buf_init(&h, c->fwd_head.max);
    while (p < end && err == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (n == 2 && p[0] == '\r') /* the blank line */
            err |= al_buf_puts(&h, "Connection: close\r\nAccept-Encoding: identity\r\n");
        if (!line_is(p, n, "connection:") && !line_is(p, n, "accept-encoding:") &&
            !line_is(p, n, "te:"))
            err |= al_buf_append(&h, p, n);
        p += n;
    }
    if (err) {
        al_buf_wipe_free(&h);
        return AL_ETOOBIG;
    }
    al_buf_wipe_free(&c->fwd_head);
    c->fwd_head = h;
    return 0;
}

static int remask_start(struct np_conn *c, struct np_creds *cr)
{
    if (c->remask)
        return 0; /* this upstream's bytes are re-masked already */
    struct np_plain_remask *m = calloc(1, sizeof(*m));
    if (!m || al_subst_stream_init(&m->st, &cr->set, AL_SUBST_RESPONSE, 0) < 0) {
        free(m);
        return AL_ENOMEM;
    }
    atomic_fetch_add(&cr->refs, 1);
    m->creds = cr;
    c->remask = m;
    return 0;
}

void np_plain_remask_free(struct np_conn *c)
{
    struct np_plain_remask *m = c->remask;
    if (!m)
        return;
    al_subst_stream_free(&m->st);
    np_creds_unref(m->creds);
    free(m);
    c->remask = NULL;
}

int np_plain_remask_pump(struct np_conn *c, int src, bool *src_ready)
{
    char buf[16384];
    struct np_dir *d = &c->down;
    ssize_t n = read(src, buf, sizeof(buf));
    int err;

    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            *src_ready = false;
            return 0;
        }
        return -1;
    }
    if (n == 0) {
        d->eof = true;
        err = al_subst_stream_finish(&c->remask->st, &d->pend);
    } else {
        err = al_subst_stream_feed(&c->remask->st, buf, (size_t)n, &d->pend, NULL);
    }
    explicit_bzero(buf, (size_t)(n > 0 ? n : 0));
    return err < 0 ? -1 : 1;
}

static void refuse_cred(struct np_conn *c, const struct al_credset *set, size_t culprit,
                        bool plaintext)
{
    struct np_tt_req r;

    memset(&r, 0, sizeof(r));
    np_tt_cred_refusal(&r, set, culprit, c->host);
    snprintf(c->log.credential, sizeof(c->log.credential), "%s", r.credential);
    np_conn_refuse(c, 403, "credential-not-allowed-here", 0, "%s%s", r.why,
                   plaintext ? "" : "; sentinels are never replaced in plain-HTTP requests");
}

int np_plain_creds_head(struct np_conn *c)
{
    bool plaintext;
    struct np_creds *cr = session_creds(c, &plaintext);
    struct al_buf out;
    uint64_t used = 0, inject_ok;
    size_t culprit = 0;
    int err;

    if (!cr)
        return 0;
    inject_ok = plaintext ? np_creds_inject_mask(cr, c->host, c->host_is_ip, c->port) : 0;
    /* only checked here: the real values go in after the request rules
     * (np_plain_creds_inject), whose messages quote the target */
    al_buf_init(&out, c->fwd_head.max + AL_CRED_VALUE_MAX * 4);
    err = al_cred_subst_head(&cr->set, inject_ok, c->fwd_head.ptr, c->fwd_head.len, &out, &used,
                             &culprit);
    if (err == AL_EPERM) {
        refuse_cred(c, &cr->set, culprit, plaintext);
        err = -1;
    } else if (err < 0) {
        np_conn_refuse(c, 431, "bad-request", 0, "airlock: request head too large");
        err = -1;
    } else {
        /* a body is scanned while it streams */
        if (!err && (c->body_left || c->body_chunked) && !c->plain_scan) {
            struct np_plain_scan *s = calloc(1, sizeof(*s));
            if (s) {
                s->creds = cr;
                cr = NULL;
                s->view.v = s->store;
                for (size_t i = 0; i < s->creds->set.len && i < AL_CRED_MAX; i++) {
                    if (inject_ok & ((uint64_t)1 << i))
                        continue;
                    s->store[s->view.len] = s->creds->set.v[i];
                    s->map[s->view.len++] = i;
                }
                s->chunked = c->body_chunked;
                np_chunked_init(&s->ch);
                if (!s->view.len ||
                    al_subst_stream_init(&s->st, &s->view, AL_SUBST_REQUEST, 0) < 0) {
                    np_creds_unref(s->creds);
                    free(s);
                } else {
                    c->plain_scan = s;
                }
            }
        }
    }
    al_buf_wipe_free(&out);
    np_creds_unref(cr);
    return err;
}

int np_plain_creds_inject(struct np_conn *c)
{
    bool plaintext;
    struct np_creds *cr;
    struct al_buf out;
    uint64_t used = 0, inject_ok;
    int err = 0;

    if (c->kind == NP_SOCKS5 || c->is_connect)
        return 0;
    cr = session_creds(c, &plaintext);
    if (!cr)
        return 0;
    inject_ok = plaintext ? np_creds_inject_mask(cr, c->host, c->host_is_ip, c->port) : 0;
    if (!inject_ok) {
        np_creds_unref(cr);
        return 0;
    }
    al_buf_init(&out, c->fwd_head.max + AL_CRED_VALUE_MAX * 4);
    err = al_cred_subst_head(&cr->set, inject_ok, c->fwd_head.ptr, c->fwd_head.len, &out, &used,
                             NULL);
    if (err == 0 && used && c->upgrade) {
        /* the bytes after a 101 would be relayed raw, never re-masked */
        np_conn_refuse(c, 403, "upgrade-not-inspected", 0,
                       "airlock: a plain-HTTP Upgrade request carrying a credential is refused "
                       "(what follows it could not be re-masked)");
        al_buf_wipe_free(&out);
        np_creds_unref(cr);
        return -1;
    }
    if (err == 0 && used && c->proxy->kh_fd >= 0) {
        /* split (np_proxy_set_keyholder): this process holds no value; the
         * head goes to the key holder with its sentinels, which puts them
         * back (and re-masks the answer) itself */
        np_tt_cred_names(c->log.credential, sizeof(c->log.credential), &cr->set, used);
        err = head_close(c);
        if (err == 0) {
            c->kh_plain = true;
            c->close_after = true;
        }
    } else if (err == 0 && used) {
        np_tt_cred_names(c->log.credential, sizeof(c->log.credential), &cr->set, used);
        al_buf_wipe_free(&c->fwd_head);
        al_buf_init(&c->fwd_head, out.max);
        err = al_buf_append(&c->fwd_head, out.ptr, out.len);
        /* an echo of the real value must not reach the sandbox: this
         * upstream's bytes are re-masked from now on, and it closes after
         * the response */
        if (err == 0)
            err = head_close(c);
        if (err == 0 && (err = remask_start(c, cr)) == 0)
            c->close_after = true;
    }
    if (err < 0) {
        /* AL_EPERM cannot happen: np_plain_creds_head checked this head */
        np_conn_refuse(c, 431, "bad-request", 0, "airlock: request head too large");
        err = -1;
    }
    al_buf_wipe_free(&out);
    np_creds_unref(cr);
    return err;
}

/* Feeds decoded body data to the scanner. 0, or AL_EPERM (*culprit set). */
static int scan_data(struct np_plain_scan *s, const char *data, size_t len, size_t *culprit)
{
    struct al_buf sink;
    al_buf_init(&sink, len + AL_CRED_VALUE_MAX * 2);
    int err = al_subst_stream_feed(&s->st, data, len, &sink, culprit);
    al_buf_free(&sink);
    return err == AL_EPERM ? AL_EPERM : 0;
}

int np_plain_creds_body(struct np_conn *c, const char *data, size_t len)
{
    struct np_plain_scan *s = c->plain_scan;
    size_t culprit = 0, pos = 0;
    int err = 0;

    if (!s)
        return 0;
    if (!s->chunked) {
        err = scan_data(s, data, len, &culprit);
    } else {
        while (pos < len && !err) {
            uint64_t n = np_chunked_data_left(&s->ch);
            size_t used = 0;
            if (n) {
                size_t take = len - pos < n ? len - pos : (size_t)n;
                np_chunked_feed(&s->ch, data + pos, take, &used);
                err = scan_data(s, data + pos, take, &culprit);
                pos += take;
            } else if (np_chunked_feed(&s->ch, data + pos, 1, &used) < 0) {
                break; /* np_http_body_pump refuses malformed framing */
            } else {
                pos++;
            }
        }
    }
    if (err == AL_EPERM) {
        struct np_creds *cr = s->creds;
        atomic_fetch_add(&cr->refs, 1);
        size_t idx = s->map[culprit];
        np_plain_creds_free(c);
        refuse_cred(c, &cr->set, idx, false);
        np_creds_unref(cr);
        return -1;
    }
    return 0;
}

void np_plain_creds_free(struct np_conn *c)
{
    struct np_plain_scan *s = c->plain_scan;
    if (!s)
        return;
    al_subst_stream_free(&s->st);
    np_creds_unref(s->creds);
    free(s);
    c->plain_scan = NULL;
}
