/* The key holder's side of the split (kh_conn.h; docs/netproxy.md,
 * "Processes"): its sessions (credential sets with values, the upstream
 * TLS context) and one terminated connection served over its channel with
 * the in-process upstream half of tt_upstream.c (the verified TLS
 * connection, keep-alive, re-dial).
 *
 * What the front says is checked, not trusted: the session and the OPEN
 * host give the inject mask (computed here from this process's own set);
 * a value is only written after the upstream certificate was verified for
 * the OPEN host; the request head is checked by np_kh_req_head (routing,
 * framing written here); responses are re-masked before they leave. A
 * front that lies gets an ERROR (when that tells it nothing) and the
 * connection ends. */
#include "kh_conn.h"
#include "internal.h"
#include "kh_req.h"
#include "tls_ca.h"
#include "tt_up.h"

#include "airlock/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KH_IDLE_MS    300000u
#define KH_CONNECT_MS 10000u
#define KH_RESP_BUF   (NP_HTTP_RESP_HEAD_MAX + NP_TT_IO_CHUNK)

struct kh_entry {
    atomic_int refs;
    char name[NP_KH_SESSION_MAX + 1];
    struct np_creds *creds; /* NULL: none */
    struct np_tls *tls;
    atomic_bool plaintext; /* allowPlaintextInject: OPEN without TLS served */
    struct kh_entry *next;
};

/* A running connection (for np_kh_sessions_remove). */
struct kh_live {
    struct kh_entry *e;
    int pair_fd;
    struct np_up *up;
    bool killed;
    struct kh_live *prev, *next;
};

struct np_kh_sessions {
    pthread_mutex_t lock; /* guards entries, live, and every live up->fd */
    struct kh_entry *entries;
    struct kh_live *live;
};

static void entry_unref(struct kh_entry *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    np_creds_unref(e->creds); /* values wiped (al_credset_free) */
    np_tls_unref(e->tls);
    free(e);
}

int np_kh_sessions_new(struct np_kh_sessions **out)
{
    struct np_kh_sessions *ks = calloc(1, sizeof(*ks));
    *out = NULL;
    if (!ks)
        return AL_ENOMEM;
    pthread_mutex_init(&ks->lock, NULL);
    *out = ks;
    return 0;
}

void np_kh_sessions_free(struct np_kh_sessions *ks)
{
    if (!ks)
        return;
    pthread_mutex_lock(&ks->lock);
    struct kh_entry *e = ks->entries;
    ks->entries = NULL;
    pthread_mutex_unlock(&ks->lock);
    while (e) {
        struct kh_entry *next = e->next;
        entry_unref(e);
        e = next;
    }
    /* connections still running hold their own references; the caller
     * ends them (np_kh_sessions_remove) before freeing */
    pthread_mutex_destroy(&ks->lock);
    free(ks);
}

int np_kh_sessions_put(struct np_kh_sessions *ks, const char *session,
                       const struct al_credset *creds, const char *ca_cert_pem,
                       const char *ca_key_pem, const char *extra_trust_pem)
{
    struct kh_entry *e = NULL;
    int err;
    size_t n = session ? strlen(session) : 0;

    if (n == 0 || n > NP_KH_SESSION_MAX)
        return al_error_set(AL_EINVAL, "key holder: bad session name");
    if (!ca_cert_pem || !ca_key_pem)
        return al_error_set(AL_EINVAL, "key holder: session %s has no CA", session);
    if (!(e = calloc(1, sizeof(*e))))
        return AL_ENOMEM;
    atomic_init(&e->refs, 1);
    atomic_init(&e->plaintext, false);
    memcpy(e->name, session, n + 1);
    if ((err = np_tls_new(&e->tls, ca_cert_pem, ca_key_pem, extra_trust_pem)) < 0)
        goto fail;
    if (creds && creds->len && (err = np_creds_new(&e->creds, creds, false)) < 0)
        goto fail;
    pthread_mutex_lock(&ks->lock);
    struct kh_entry **pp = &ks->entries, *old = NULL;
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, session) == 0) {
            old = *pp;
            *pp = old->next;
            break;
        }
    e->next = ks->entries;
    ks->entries = e;
    pthread_mutex_unlock(&ks->lock);
    entry_unref(old);
    return 0;
fail:
    entry_unref(e);
    return err;
}

int np_kh_sessions_set_plaintext(struct np_kh_sessions *ks, const char *session, bool allow)
{
    int ret = AL_ENOTFOUND;
    pthread_mutex_lock(&ks->lock);
    for (struct kh_entry *e = ks->entries; e; e = e->next)
        if (strcmp(e->name, session) == 0) {
            atomic_store(&e->plaintext, allow);
            ret = 0;
        }
    pthread_mutex_unlock(&ks->lock);
    return ret == 0 ? 0 : al_error_set(AL_ENOTFOUND, "key holder: no session %s", session);
}

void np_kh_sessions_remove(struct np_kh_sessions *ks, const char *session)
{
    struct kh_entry *old = NULL;

    pthread_mutex_lock(&ks->lock);
    for (struct kh_entry **pp = &ks->entries; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, session) == 0) {
            old = *pp;
            *pp = old->next;
            break;
        }
    for (struct kh_live *l = ks->live; old && l; l = l->next) {
        if (l->e != old)
            continue;
        l->killed = true;
        shutdown(l->pair_fd, SHUT_RDWR);
        if (l->up && l->up->fd >= 0)
            shutdown(l->up->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&ks->lock);
    entry_unref(old);
}

/* --- one connection --- */

struct kh {
    struct np_kh_sessions *ks;
    struct kh_entry *e;
    const struct al_credset *set; /* the session's, with values; NULL: none */
    uint64_t inject_ok;           /* the key holder's own mask for host:port */
    char host[NP_KH_HOST_MAX + 1];
    uint16_t port;
    int pfd;
    struct np_up up;
    struct kh_live live;
    uint8_t *sbuf, *rbuf; /* NP_KH_MSG_MAX each: send, receive */
    char *resp;           /* KH_RESP_BUF: upstream bytes */
    size_t resp_len;
};

static int send_msg(struct kh *k, const struct np_kh_msg *m)
{
    return np_kh_send(k->pfd, k->sbuf, m, NULL, 0);
}

/* An ERROR for the front (nothing in it comes from a value). */
static int send_error(struct kh *k, int status, const char *error, const char *why, uint64_t used)
{
    struct np_kh_msg m = {.type = NP_KH_ERROR, .status = (uint16_t)status, .close = 1};
    m.used = used;
    snprintf(m.error, sizeof(m.error), "%s", error);
    snprintf(m.why, sizeof(m.why), "%s", why);
    (void)send_msg(k, &m);
    return al_error_set(AL_EPERM, "key holder: %s: %s", error, why);
}

/* Reads the next message from the front. 0; 1 the front closed; <0. */
static int recv_msg(struct kh *k, struct np_kh_msg *m)
{
    int fds[2];
    size_t nfds = 0;
    int rc = np_kh_recv(m, k->pfd, k->rbuf, NP_KH_FROM_FRONT, fds, &nfds, (int)KH_IDLE_MS);
    if (rc == 0 && nfds) {
        /* descriptors only come with OPEN, which is not valid here */
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        return al_error_set(AL_EINVAL, "key holder: unexpected OPEN");
    }
    return rc;
}

static ssize_t up_read(struct kh *k, char *buf, size_t cap)
{
    return np_up_read(&k->up, buf, cap, KH_IDLE_MS);
}

/* Writes substituted body bytes (`tmp`) upstream, chunked or not. */
static int up_body(struct kh *k, const struct al_buf *tmp, bool chunked)
{
    if (!tmp->len)
        return 0;
    if (!chunked)
        return np_up_write(&k->up, tmp->ptr, tmp->len);
    char hdr[32];
    int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", tmp->len);
    return np_up_write(&k->up, hdr, (size_t)n) < 0 || np_up_write(&k->up, tmp->ptr, tmp->len) < 0 ||
                   np_up_write(&k->up, "\r\n", 2) < 0
               ? -1
               : 0;
}

/* One request: the head's checks and substitution, the body. Returns 0
 * with *used; <0 ends the connection (an ERROR was sent when the front
 * can be told). */
static int kh_request(struct kh *k, const struct np_kh_msg *req_in, uint64_t *used)
{
    /* the head borrows from the receive buffer, which the body's messages
     * reuse: a copy of its own */
    struct np_kh_msg rq = *req_in;
    char *hcopy = malloc(req_in->data_len ? req_in->data_len : 1);
    const struct np_kh_msg *req = &rq;
    struct al_credset empty = {0};
    const struct al_credset *set = k->set ? k->set : &empty;
    bool subst = (req->flags & NP_KH_REQ_BODY_SUBST) && k->set;
    bool chunked = req->framing == NP_KH_FRAME_CHUNKED;
    /* a substituted body of known length whose length may change is read
     * whole first: its Content-Length is known only then */
    bool buffer =
        subst && req->framing == NP_KH_FRAME_LENGTH && !al_credset_same_length(set, k->inject_ok);
    struct al_subst_stream st;
    struct al_buf head, tmp, body;
    size_t culprit = 0;
    uint64_t got = 0, body_used = 0;
    char msg[640];
    const char *error = "upstream-tls";
    int ret = 0;
    bool st_live = false;

    *used = 0;
    al_buf_init(&head, NP_KH_REQ_HEAD_MAX + AL_CRED_MAX * AL_CRED_VALUE_MAX + 64);
    al_buf_init(&tmp, NP_KH_DATA_MAX * 2 + AL_CRED_VALUE_MAX * 2);
    al_buf_init(&body, NP_TT_BODY_MAX + AL_CRED_VALUE_MAX);
    if (!hcopy) {
        ret = AL_ENOMEM;
        goto out;
    }
    if (req_in->data_len)
        memcpy(hcopy, req_in->data, req_in->data_len);
    rq.data = (const uint8_t *)hcopy;
    if (req->framing == NP_KH_FRAME_CLOSE) {
        ret = al_error_set(AL_EINVAL, "key holder: request framed by close");
        goto out;
    }
    /* the head's checks come before anything goes upstream */
    ret = np_kh_req_head(&head, used, &culprit, set, k->inject_ok, k->host, k->port, req,
                         req->framing == NP_KH_FRAME_LENGTH ? req->length : 0);
    if (ret == AL_EPERM) {
        ret = send_error(k, 403, "credential-not-allowed-here",
                         "airlock: a credential was sent to a host it is not allowed for", 0);
        goto out;
    }
    if (ret < 0) {
        ret = send_error(k, 400, "bad-request", "airlock: the request head was refused", 0);
        goto out;
    }
    if (np_up_gone(&k->up))
        np_up_drop(&k->up); /* closed while idle: dial the same address again */
    /* decision 8: the certificate is verified for the OPEN host before any
     * byte (and any value) goes upstream */
    if (np_up_open(&k->up, &error, msg, sizeof(msg)) < 0) {
        ret = send_error(k, 502, error, msg, 0);
        goto out;
    }
    if (al_subst_stream_init(&st, subst ? set : &empty, AL_SUBST_REQUEST,
                             subst ? k->inject_ok : 0) < 0) {
        ret = AL_ENOMEM;
        goto out;
    }
    st_live = true;
    if (!buffer && np_up_write(&k->up, head.ptr, head.len) < 0) {
        ret = al_error_set(AL_EIO, "key holder: upstream write");
        goto out;
    }
    for (;;) {
        struct np_kh_msg m;
        int rc = recv_msg(k, &m);
        if (rc != 0) {
            ret = rc > 0 ? al_error_set(AL_EIO, "key holder: front closed in a request") : rc;
            goto out;
        }
        if (m.type == NP_KH_ABORT) {
            ret = al_error_set(AL_EPERM, "key holder: request aborted by the front");
            goto out;
        }
        if (m.type == NP_KH_BODY_END)
            break;
        if (m.type != NP_KH_BODY || req->framing == NP_KH_FRAME_NONE) {
            ret = al_error_set(AL_EINVAL, "key holder: message %u in a request body",
                               (unsigned)m.type);
            goto out;
        }
        got += m.data_len;
        if (req->framing == NP_KH_FRAME_LENGTH && got > req->length) {
            ret = al_error_set(AL_EINVAL, "key holder: body longer than its length");
            goto out;
        }
        al_buf_reset(&tmp);
        rc = al_subst_stream_feed(&st, (const char *)m.data, m.data_len, &tmp, &culprit);
        if (rc == AL_EPERM) {
            ret = send_error(k, 403, "credential-not-allowed-here",
                             "airlock: a credential was sent to a host it is not allowed for", 0);
            goto out;
        }
        if (rc < 0 ||
            (buffer ? al_buf_append(&body, tmp.ptr, tmp.len) : up_body(k, &tmp, chunked)) < 0) {
            if (buffer && rc == 0) {
                ret = send_error(k, 413, "body-too-large",
                                 "airlock: a request body with a credential to replace is too "
                                 "large",
                                 0);
                goto out;
            }
            ret = al_error_set(AL_EIO, "key holder: body");
            goto out;
        }
    }
    if (req->framing == NP_KH_FRAME_LENGTH && got != req->length) {
        ret = al_error_set(AL_EINVAL, "key holder: body shorter than its length");
        goto out;
    }
    al_buf_reset(&tmp);
    if (al_subst_stream_finish(&st, &tmp) < 0) {
        ret = AL_ENOMEM;
        goto out;
    }
    body_used = st.used;
    if (buffer) {
        if (al_buf_append(&body, tmp.ptr, tmp.len) < 0) {
            ret =
                send_error(k, 413, "body-too-large",
                           "airlock: a request body with a credential to replace is too large", 0);
            goto out;
        }
        /* the head again, now with the body's length */
        uint64_t u2 = 0;
        al_buf_wipe_free(&head);
        al_buf_init(&head, NP_KH_REQ_HEAD_MAX + AL_CRED_MAX * AL_CRED_VALUE_MAX + 64);
        if ((ret = np_kh_req_head(&head, &u2, &culprit, set, k->inject_ok, k->host, k->port, req,
                                  body.len)) < 0)
            goto out;
        if (np_up_write(&k->up, head.ptr, head.len) < 0 ||
            (body.len && np_up_write(&k->up, body.ptr, body.len) < 0)) {
            ret = al_error_set(AL_EIO, "key holder: upstream write");
            goto out;
        }
    } else if (up_body(k, &tmp, chunked) < 0 ||
               (chunked && np_up_write(&k->up, "0\r\n\r\n", 5) < 0)) {
        ret = al_error_set(AL_EIO, "key holder: upstream write");
        goto out;
    }
    *used |= body_used;
out:
    if (st_live)
        al_subst_stream_free(&st);
    if (ret < 0) {
        /* a request cut short: what was queued (values) is dropped with
         * the connection, so the upstream never gets a complete one */
        if (k->up.out.len)
            OPENSSL_cleanse(k->up.out.ptr, k->up.out.len);
        al_buf_reset(&k->up.out);
        np_up_drop(&k->up);
    }
    al_buf_wipe_free(&head);
    al_buf_wipe_free(&tmp);
    al_buf_wipe_free(&body);
    free(hcopy);
    return ret;
}

/* Re-masks `len` upstream body bytes (fin: the end) and sends them as
 * RESP_BODY (or RELAY) messages. 0 or <0. */
static int resp_out(struct kh *k, struct al_subst_stream *st, const char *data, size_t len,
                    bool fin, struct al_buf *tmp, uint8_t type)
{
    al_buf_reset(tmp);
    if ((len && al_subst_stream_feed(st, data, len, tmp, NULL) < 0) ||
        (fin && al_subst_stream_finish(st, tmp) < 0))
        return AL_ENOMEM;
    for (size_t off = 0; off < tmp->len;) {
        size_t n = tmp->len - off;
        if (n > NP_KH_DATA_MAX)
            n = NP_KH_DATA_MAX;
        struct np_kh_msg m = {.type = type, .data = (const uint8_t *)tmp->ptr + off, .data_len = n};
        int err = send_msg(k, &m);
        if (err < 0)
            return err;
        off += n;
    }
    return 0;
}

/* After a 101: RELAY both ways (re-masked towards the front) until either
 * side ends. */
static void kh_relay(struct kh *k, const struct al_credset *set)
{
    struct al_subst_stream st;
    struct al_buf tmp;
    char *buf = malloc(NP_TT_IO_CHUNK);

    al_buf_init(&tmp, NP_TT_IO_CHUNK * 2 + AL_CRED_VALUE_MAX * 2);
    if (!buf || al_subst_stream_init(&st, set, AL_SUBST_RESPONSE, 0) < 0) {
        free(buf);
        return;
    }
    if (k->resp_len && resp_out(k, &st, k->resp, k->resp_len, false, &tmp, NP_KH_RELAY) < 0)
        goto out;
    for (;;) {
        ssize_t n = np_tt_ssl_read_pending(k->up.ssl, buf, NP_TT_IO_CHUNK);
        if (n < 0)
            break;
        if (n > 0) {
            if (resp_out(k, &st, buf, (size_t)n, false, &tmp, NP_KH_RELAY) < 0)
                break;
            continue;
        }
        if (np_up_flush(&k->up) < 0)
            break;
        struct pollfd pfd[2] = {{.fd = k->pfd, .events = POLLIN},
                                {.fd = k->up.fd, .events = POLLIN}};
        if (poll(pfd, 2, (int)KH_IDLE_MS) <= 0)
            break;
        if (pfd[0].revents) {
            struct np_kh_msg m;
            if (recv_msg(k, &m) != 0 || m.type != NP_KH_RELAY ||
                np_up_write(&k->up, (const char *)m.data, m.data_len) < 0)
                break;
        }
        if (pfd[1].revents) {
            ssize_t got = np_tt_ssl_read_some(k->up.ssl, k->up.fd, buf, NP_TT_IO_CHUNK, 0);
            if (got == 0)
                break;
            if (got > 0 && resp_out(k, &st, buf, (size_t)got, false, &tmp, NP_KH_RELAY) < 0)
                break;
        }
    }
    (void)resp_out(k, &st, NULL, 0, true, &tmp, NP_KH_RELAY);
out:
    al_subst_stream_free(&st);
    al_buf_wipe_free(&tmp);
    free(buf);
}

/* The response to one request: RESP_HEAD (interim ones first), the
 * decoded, re-masked body as RESP_BODY, RESP_END. Returns 0 to go on with
 * the next request, 1 when the connection ends after it (close, upgrade
 * relayed), <0 on an error. */
static int kh_response(struct kh *k, uint8_t req_flags, uint64_t used)
{
    struct al_credset empty = {0};
    const struct al_credset *set = k->set ? k->set : &empty;
    struct np_kh_resp info;
    struct al_buf head, tmp;
    struct al_subst_stream st;
    bool st_live = false;
    int ret = 0;

    al_buf_init(&head, NP_KH_RESP_HEAD_MAX);
    al_buf_init(&tmp, NP_TT_IO_CHUNK * 2 + AL_CRED_VALUE_MAX * 2);
    for (;;) {
        int n;
        al_buf_reset(&head);
        while ((n = np_kh_resp_head(&head, &info, set, k->resp, k->resp_len, req_flags)) == 0) {
            if (k->resp_len >= KH_RESP_BUF) {
                n = AL_EINVAL;
                break;
            }
            ssize_t got = up_read(k, k->resp + k->resp_len, KH_RESP_BUF - k->resp_len);
            if (got <= 0) {
                ret = al_error_set(AL_EIO, "key holder: upstream closed before its answer");
                goto out;
            }
            k->resp_len += (size_t)got;
        }
        if (n < 0) {
            (void)send_error(k, 502, "upstream-bad-response",
                             "airlock: the upstream's response head was not relayed", used);
            ret = n;
            goto out;
        }
        memmove(k->resp, k->resp + n, k->resp_len - (size_t)n);
        k->resp_len -= (size_t)n;
        struct np_kh_msg m = {.type = NP_KH_RESP_HEAD,
                              .status = info.status,
                              .framing = info.framing,
                              .length = info.length,
                              .used = used,
                              .data = (const uint8_t *)head.ptr,
                              .data_len = head.len};
        if ((ret = send_msg(k, &m)) < 0)
            goto out;
        if (info.upgraded) {
            kh_relay(k, set);
            ret = 1;
            goto out;
        }
        if (!info.interim)
            break;
    }
    bool close = info.close;
    if (info.framing != NP_KH_FRAME_NONE &&
        !(info.framing == NP_KH_FRAME_LENGTH && info.length == 0)) {
        if (al_subst_stream_init(&st, set, AL_SUBST_RESPONSE, 0) < 0) {
            ret = AL_ENOMEM;
            goto out;
        }
        st_live = true;
        struct np_chunked ch;
        np_chunked_init(&ch);
        uint64_t left = info.length;
        bool done = false;
        while (!done) {
            if (k->resp_len == 0) {
                ssize_t got = up_read(k, k->resp, NP_TT_IO_CHUNK);
                if (got <= 0) {
                    if (info.framing == NP_KH_FRAME_CLOSE) {
                        close = true;
                        if ((ret = resp_out(k, &st, NULL, 0, true, &tmp, NP_KH_RESP_BODY)) < 0)
                            goto out;
                        break;
                    }
                    ret = al_error_set(AL_EIO, "key holder: upstream response truncated");
                    goto out;
                }
                k->resp_len = (size_t)got;
            }
            size_t pos = 0;
            if (info.framing != NP_KH_FRAME_CHUNKED) {
                size_t take = k->resp_len;
                if (info.framing == NP_KH_FRAME_LENGTH && take > left)
                    take = (size_t)left;
                if (info.framing == NP_KH_FRAME_LENGTH) {
                    left -= take;
                    done = left == 0;
                }
                if ((ret = resp_out(k, &st, k->resp, take, done, &tmp, NP_KH_RESP_BODY)) < 0)
                    goto out;
                pos = take;
            } else {
                while (pos < k->resp_len && !done) {
                    size_t cused = 0;
                    uint64_t data = np_chunked_data_left(&ch);
                    if (data) {
                        size_t take = k->resp_len - pos;
                        if (take > data)
                            take = (size_t)data;
                        np_chunked_feed(&ch, k->resp + pos, take, &cused);
                        if ((ret = resp_out(k, &st, k->resp + pos, take, false, &tmp,
                                            NP_KH_RESP_BODY)) < 0)
                            goto out;
                        pos += take;
                        continue;
                    }
                    int rc = np_chunked_feed(&ch, k->resp + pos, 1, &cused);
                    pos++;
                    if (rc < 0) {
                        ret = al_error_set(AL_EIO, "key holder: malformed chunked response");
                        goto out;
                    }
                    if (rc == 1) {
                        done = true;
                        if ((ret = resp_out(k, &st, NULL, 0, true, &tmp, NP_KH_RESP_BODY)) < 0)
                            goto out;
                    }
                }
            }
            memmove(k->resp, k->resp + pos, k->resp_len - pos);
            k->resp_len -= pos;
        }
    }
    if (k->resp_len)
        close = true; /* bytes past the response: do not reuse */
    struct np_kh_msg end = {.type = NP_KH_RESP_END, .close = close ? 1 : 0};
    if ((ret = send_msg(k, &end)) < 0)
        goto out;
    ret = close ? 1 : 0;
out:
    if (st_live)
        al_subst_stream_free(&st);
    al_buf_free(&head);
    al_buf_wipe_free(&tmp);
    return ret;
}

/* The OPEN's host, as the front must send it: a normalised name, or an IP
 * literal's text when NP_KH_OPEN_HOST_IP. */
static int check_host(const struct np_kh_msg *open)
{
    char norm[NP_HOST_MAX];
    unsigned char a[16];
    bool is_ip = open->flags & NP_KH_OPEN_HOST_IP;

    if (is_ip)
        return inet_pton(AF_INET, open->host, a) == 1 || inet_pton(AF_INET6, open->host, a) == 1
                   ? 0
                   : al_error_set(AL_EINVAL, "key holder: OPEN host is not an IP literal");
    if (np_host_normalize(norm, open->host, strlen(open->host)) < 0 ||
        strcmp(norm, open->host) != 0 || inet_pton(AF_INET, open->host, a) == 1)
        return al_error_set(AL_EINVAL, "key holder: OPEN host is not a normalised name");
    return 0;
}

int np_kh_conn_serve(struct np_kh_sessions *ks, const struct np_kh_msg *open, int pair_fd,
                     int upstream_fd)
{
    struct kh *k = calloc(1, sizeof(*k));
    struct sockaddr_storage ua;
    socklen_t ua_len = sizeof(ua);
    int ret = 0, type = 0, one = 1;
    socklen_t tl = sizeof(type);
    bool linked = false;

    if (!k) {
        ret = AL_ENOMEM;
        goto early;
    }
    np_up_init(&k->up, NULL, open->host, open->flags & NP_KH_OPEN_HOST_IP, open->port, -1, NULL, 0,
               KH_IDLE_MS, KH_CONNECT_MS, &ks->lock, &k->live.killed);
    k->ks = ks;
    k->pfd = pair_fd;
    if (!(k->sbuf = malloc(NP_KH_MSG_MAX)) || !(k->rbuf = malloc(NP_KH_MSG_MAX)) ||
        !(k->resp = malloc(KH_RESP_BUF))) {
        ret = AL_ENOMEM;
        goto early;
    }
    if (open->type != NP_KH_OPEN) {
        ret = al_error_set(AL_EINVAL, "key holder: not an OPEN");
        goto early;
    }
    if ((ret = check_host(open)) < 0) {
        (void)send_error(k, 400, "bad-request", "airlock: bad host", 0);
        goto early;
    }
    /* the address the front dialled: re-dials go there, and only there */
    if (getsockopt(upstream_fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM ||
        getpeername(upstream_fd, (struct sockaddr *)&ua, &ua_len) < 0 ||
        (ua.ss_family != AF_INET && ua.ss_family != AF_INET6)) {
        ret = al_error_set(AL_EINVAL, "key holder: the upstream is not a connected TCP socket");
        (void)send_error(k, 502, "connect-failure", "airlock: no upstream connection", 0);
        goto early;
    }
    int fl = fcntl(upstream_fd, F_GETFL);
    if (fl < 0 || fcntl(upstream_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        ret = al_error_set_errno(AL_EIO, errno, "key holder: fcntl");
        goto early;
    }
    setsockopt(upstream_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    pthread_mutex_lock(&ks->lock);
    for (struct kh_entry *e = ks->entries; e; e = e->next)
        if (strcmp(e->name, open->session) == 0) {
            k->e = e;
            atomic_fetch_add(&e->refs, 1);
            break;
        }
    if (k->e) {
        k->live.e = k->e;
        k->live.pair_fd = pair_fd;
        k->live.up = &k->up;
        k->live.next = ks->live;
        if (ks->live)
            ks->live->prev = &k->live;
        ks->live = &k->live;
        linked = true;
        k->up.fd = upstream_fd;
        upstream_fd = -1;
    }
    pthread_mutex_unlock(&ks->lock);
    if (!k->e) {
        ret = send_error(k, 502, "keyholder-no-session", "airlock: unknown session", 0);
        goto early;
    }
    /* plain HTTP only where the session allows a value in plaintext (the
     * front's word is not enough: with no certificate to check, the value
     * goes to whatever address the socket reaches) */
    if (!(open->flags & NP_KH_OPEN_TLS)) {
        if (!atomic_load(&k->e->plaintext)) {
            ret = send_error(k, 403, "credential-not-allowed-here",
                             "airlock: this session does not allow credentials on plain HTTP", 0);
            goto early;
        }
        k->up.plain = true;
    }
    k->up.tls = k->e->tls;
    k->set = k->e->creds ? &k->e->creds->set : NULL;
    snprintf(k->host, sizeof(k->host), "%s", open->host);
    k->port = open->port;
    k->inject_ok =
        np_creds_inject_mask(k->e->creds, k->host, open->flags & NP_KH_OPEN_HOST_IP, k->port);
    memcpy(&k->up.ua, &ua, ua_len);
    k->up.ua_len = ua_len;
    np_up_start(&k->up);

    for (;;) {
        struct np_kh_msg m;
        uint64_t used = 0;
        int rc = recv_msg(k, &m);
        if (rc == 1 || (rc == 0 && m.type == NP_KH_CLOSE))
            break;
        if (rc < 0) {
            ret = rc;
            break;
        }
        if (m.type != NP_KH_REQ_HEAD) {
            ret = al_error_set(AL_EINVAL, "key holder: message %u where a request head goes",
                               (unsigned)m.type);
            break;
        }
        uint8_t flags = m.flags;
        if ((ret = kh_request(k, &m, &used)) < 0)
            break;
        if ((rc = kh_response(k, flags, used)) != 0) {
            ret = rc < 0 ? rc : 0;
            break;
        }
    }
early:
    /* the front may still be sending (a body behind a refused head): read
     * until it closes its end, so that it gets the ERROR rather than a
     * reset channel */
    shutdown(pair_fd, SHUT_WR);
    for (int i = 0; k && k->rbuf && i < 100000; i++) {
        struct np_kh_msg m;
        int fds[2];
        size_t nfds = 0;
        if (np_kh_recv(&m, pair_fd, k->rbuf, NP_KH_FROM_FRONT, fds, &nfds, 10000) != 0)
            break;
        for (size_t j = 0; j < nfds; j++)
            close(fds[j]);
    }
    if (linked) {
        pthread_mutex_lock(&ks->lock);
        if (k->live.prev)
            k->live.prev->next = k->live.next;
        else
            ks->live = k->live.next;
        if (k->live.next)
            k->live.next->prev = k->live.prev;
        pthread_mutex_unlock(&ks->lock);
    }
    if (k) {
        np_up_free(&k->up);
        entry_unref(k->e);
        free(k->sbuf);
        free(k->rbuf);
        if (k->resp)
            OPENSSL_cleanse(k->resp, KH_RESP_BUF);
        free(k->resp);
        free(k);
    }
    if (upstream_fd >= 0)
        close(upstream_fd);
    close(pair_fd);
    return ret;
}

/* --- the connections socket --- */

struct kh_job {
    struct np_kh_sessions *ks;
    struct np_kh_msg open;
    int pair_fd, upstream_fd;
};

static void *job_main(void *arg)
{
    struct kh_job *j = arg;
    (void)np_kh_conn_serve(j->ks, &j->open, j->pair_fd, j->upstream_fd);
    free(j);
    return NULL;
}

int np_kh_accept_one(struct np_kh_sessions *ks, int conns_fd, int timeout_ms)
{
    uint8_t *buf = malloc(NP_KH_MSG_MAX);
    struct kh_job *j = NULL;
    struct np_kh_msg m;
    int fds[2], ret = 0;
    size_t nfds = 0;
    pthread_attr_t attr;
    pthread_t t;

    if (!buf)
        return AL_ENOMEM;
    int rc = np_kh_recv(&m, conns_fd, buf, NP_KH_FROM_FRONT, fds, &nfds, timeout_ms);
    if (rc == AL_EINVAL)
        goto out; /* dropped (np_kh_recv closed its descriptors) */
    if (rc != 0) {
        ret = rc;
        goto out;
    }
    if (m.type != NP_KH_OPEN || nfds != 2)
        goto drop;
    if (!(j = calloc(1, sizeof(*j)))) {
        ret = AL_ENOMEM;
        goto drop;
    }
    j->ks = ks;
    j->open = m;
    j->open.data = NULL;
    j->upstream_fd = fds[0];
    j->pair_fd = fds[1];
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, job_main, j);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        goto out;
    free(j);
    ret = AL_ENOMEM;
drop:
    for (size_t i = 0; i < nfds; i++)
        close(fds[i]);
out:
    free(buf);
    return ret;
}
