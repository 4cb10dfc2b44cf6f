/* The upstream half of a terminated connection over a channel to the key
 * holder (tt_worker.h; docs/netproxy.md, "Processes"): the front of a
 * split proxy (np_proxy_set_keyholder). At the worker's start the dialled
 * upstream socket and one end of a new SOCK_SEQPACKET pair go to the key
 * holder in OPEN (this process closes its copy of the upstream socket and
 * never touches upstream bytes again); each request goes as REQ_HEAD
 * (sentinels intact, no framing header) and BODY / BODY_END, and the
 * answer comes back as RESP_HEAD / RESP_BODY / RESP_END (re-masked by the
 * key holder) or ERROR, framed here for the client. This process holds no
 * credential value: its credential sets are sentinel-only. */
#include "tt_worker.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int ch_send(struct np_worker *w, const struct np_kh_msg *m)
{
    return w->kfd < 0 ? -1 : np_kh_send(w->kfd, w->kbuf, m, NULL, 0) < 0 ? -1 : 0;
}

static int ch_start(struct np_worker *w)
{
    int sv[2] = {-1, -1};
    struct np_kh_msg m = {.type = NP_KH_OPEN, .port = w->port};

    m.flags = (w->plain ? 0 : NP_KH_OPEN_TLS) | (w->host_is_ip ? NP_KH_OPEN_HOST_IP : 0);
    if (strlen(w->s->id) > NP_KH_SESSION_MAX || strlen(w->host) > NP_KH_HOST_MAX)
        goto fail;
    snprintf(m.session, sizeof(m.session), "%s", w->s->id);
    snprintf(m.host, sizeof(m.host), "%s", w->host);
    if (!(w->kbuf = malloc(NP_KH_MSG_MAX)) || np_kh_pair(sv) < 0)
        goto fail;
    int fds[2] = {w->up.fd, sv[1]};
    if (w->up.fd < 0 || np_kh_send(w->p->kh_fd, w->kbuf, &m, fds, 2) < 0)
        goto fail;
    close(sv[1]);
    /* from here the upstream socket is the key holder's only */
    pthread_mutex_lock(&w->p->wk_lock);
    close(w->up.fd);
    w->up.fd = -1;
    w->kfd = sv[0];
    if (w->killed)
        shutdown(w->kfd, SHUT_RDWR);
    pthread_mutex_unlock(&w->p->wk_lock);
    return 0;
fail:
    if (sv[0] >= 0) {
        close(sv[0]);
        close(sv[1]);
    }
    w->tlog.decision = "deny";
    snprintf(w->tlog.reason, sizeof(w->tlog.reason), "keyholder-unavailable");
    snprintf(w->tlog.detail, sizeof(w->tlog.detail),
             "cannot hand the connection to the key holder");
    return -1;
}

static int ch_open(struct np_worker *w, struct np_half_err *e)
{
    (void)e;
    return w->kfd >= 0 ? 0 : -1;
}

/* Whether the header line line[0..len) is named `name`. */
static bool line_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* The head without its Content-Length and Transfer-Encoding lines (the
 * key holder writes the framing itself) into out; *had_cl when a
 * Content-Length line was left out. 0 or -1. */
static int strip_framing(struct al_buf *out, const char *head, size_t len, bool *had_cl)
{
    size_t pos = 0;
    bool first = true;
    *had_cl = false;
    while (pos < len) {
        const char *nl = memchr(head + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - head) + 1 : len;
        const char *line = head + pos;
        size_t ll = end - pos;
        bool skip = false;
        if (!first) {
            if (line_is(line, ll, "content-length"))
                skip = *had_cl = true;
            else if (line_is(line, ll, "transfer-encoding"))
                skip = true;
        }
        if (!skip && al_buf_append(out, line, ll) < 0)
            return -1;
        first = false;
        pos = end;
    }
    return 0;
}

static int ch_req_head(struct np_worker *w, const struct np_tt_req *r, uint8_t framing,
                       uint64_t length)
{
    struct al_buf head;
    bool had_cl = false;
    int ret = -1;

    al_buf_init(&head, NP_KH_REQ_HEAD_MAX);
    if (r->rebuffer ? al_buf_append(&head, r->head.ptr, r->head.len) < 0
                    : strip_framing(&head, r->head.ptr, r->head.len, &had_cl) < 0)
        goto out;
    if (framing == NP_KH_FRAME_NONE && had_cl)
        framing = NP_KH_FRAME_LENGTH; /* "Content-Length: 0" stays */
    struct np_kh_msg m = {.type = NP_KH_REQ_HEAD,
                          .framing = framing,
                          .length = framing == NP_KH_FRAME_LENGTH ? length : 0,
                          .data = (const uint8_t *)head.ptr,
                          .data_len = head.len};
    m.flags = (r->body_subst ? NP_KH_REQ_BODY_SUBST : 0) |
              (r->head_method ? NP_KH_REQ_HEAD_METHOD : 0) | (r->upgrade ? NP_KH_REQ_UPGRADE : 0) |
              (r->close_after ? NP_KH_REQ_CLOSE : 0);
    w->bytes_up += head.len;
    ret = ch_send(w, &m);
out:
    al_buf_free(&head);
    return ret;
}

static int ch_body(struct np_worker *w, const char *data, size_t len)
{
    w->bytes_up += len;
    while (len) {
        size_t n = len < NP_KH_DATA_MAX ? len : NP_KH_DATA_MAX;
        struct np_kh_msg m = {.type = NP_KH_BODY, .data = (const uint8_t *)data, .data_len = n};
        if (ch_send(w, &m) < 0)
            return -1;
        data += n;
        len -= n;
    }
    return 0;
}

static int ch_body_end(struct np_worker *w)
{
    struct np_kh_msg m = {.type = NP_KH_BODY_END};
    return ch_send(w, &m);
}

static void ch_abort(struct np_worker *w, const char *reason)
{
    struct np_kh_msg m = {.type = NP_KH_ABORT};
    snprintf(m.error, sizeof(m.error), "%s", reason && reason[0] ? reason : "refused");
    (void)ch_send(w, &m);
}

/* Writes a final response head for the client with the framing header the
 * key holder left out. 0 or -1. */
static int head_out(struct np_worker *w, const struct np_kh_msg *m)
{
    const char *h = (const char *)m->data;
    size_t len = m->data_len;
    char fr[64];
    int n = 0;

    if (len < 4 || memcmp(h + len - 4, "\r\n\r\n", 4) != 0)
        return -1;
    if (m->framing == NP_KH_FRAME_LENGTH)
        n = snprintf(fr, sizeof(fr), "Content-Length: %llu\r\n", (unsigned long long)m->length);
    else if (m->framing == NP_KH_FRAME_CHUNKED)
        n = snprintf(fr, sizeof(fr), "Transfer-Encoding: chunked\r\n");
    if (!n)
        return np_tw_c_write(w, h, len);
    return np_tw_c_write(w, h, len - 2) < 0 || np_tw_c_write(w, fr, (size_t)n) < 0 ||
                   np_tw_c_write(w, "\r\n", 2) < 0
               ? -1
               : 0;
}

static int ch_response(struct np_worker *w, const struct np_tt_req *r, bool *close_after,
                       bool *upgraded, uint64_t *used, struct np_half_err *e)
{
    int status = 0;
    uint8_t framing = NP_KH_FRAME_NONE;
    uint64_t left = 0;

    for (;;) {
        struct np_kh_msg m;
        int fds[2];
        size_t nfds = 0;
        if (np_tw_flush(w) < 0)
            return -1;
        int rc = np_kh_recv(&m, w->kfd, w->kbuf, NP_KH_FROM_KEYHOLDER, fds, &nfds, (int)w->idle_ms);
        if (rc != 0)
            return -1; /* the key holder ended the connection (or broke the channel) */
        switch (m.type) {
        case NP_KH_RESP_HEAD:
            if (status)
                return -1;
            *used |= m.used;
            if (m.status == 101 && r->upgrade) {
                *upgraded = true;
                return np_tw_c_write(w, (const char *)m.data, m.data_len) < 0 ? -1 : 101;
            }
            if (m.status < 200) {
                if (np_tw_c_write(w, (const char *)m.data, m.data_len) < 0)
                    return -1;
                continue; /* interim: the final head follows */
            }
            if (head_out(w, &m) < 0)
                return -1;
            status = m.status;
            framing = m.framing;
            left = m.length;
            if (framing == NP_KH_FRAME_CLOSE)
                *close_after = true;
            continue;
        case NP_KH_RESP_BODY:
            if (!status || framing == NP_KH_FRAME_NONE)
                return -1;
            if (framing == NP_KH_FRAME_LENGTH) {
                if (m.data_len > left)
                    return -1;
                left -= m.data_len;
            }
            if (framing == NP_KH_FRAME_CHUNKED && m.data_len) {
                char hdr[32];
                int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", m.data_len);
                if (np_tw_c_write(w, hdr, (size_t)n) < 0 ||
                    np_tw_c_write(w, (const char *)m.data, m.data_len) < 0 ||
                    np_tw_c_write(w, "\r\n", 2) < 0)
                    return -1;
            } else if (np_tw_c_write(w, (const char *)m.data, m.data_len) < 0) {
                return -1;
            }
            continue;
        case NP_KH_RESP_END:
            if (!status || (framing == NP_KH_FRAME_LENGTH && left))
                return -1;
            if (framing == NP_KH_FRAME_CHUNKED && np_tw_c_write(w, "0\r\n\r\n", 5) < 0)
                return -1;
            if (m.close)
                *close_after = true;
            return status;
        case NP_KH_ERROR:
            if (status)
                return -1; /* after the head: the client sees a cut response */
            *used |= m.used;
            e->status = m.status;
            snprintf(e->error, sizeof(e->error), "%s", m.error);
            snprintf(e->msg, sizeof(e->msg), "%s", m.why);
            return -2;
        default:
            return -1;
        }
    }
}

/* After a 101: client bytes go as RELAY, RELAY from the key holder goes to
 * the client, until either side ends. */
static void ch_relay(struct np_worker *w)
{
    char *buf = malloc(NP_TT_IO_CHUNK);
    if (!buf)
        return;
    for (;;) {
        ssize_t n = np_tt_ssl_read_pending(w->cs, buf, NP_TT_IO_CHUNK);
        if (n < 0)
            break;
        if (n > 0) {
            struct np_kh_msg m = {
                .type = NP_KH_RELAY, .data = (uint8_t *)buf, .data_len = (size_t)n};
            w->bytes_up += (size_t)n;
            if (ch_send(w, &m) < 0)
                break;
            continue;
        }
        struct pollfd pfd[2] = {{.fd = w->cfd, .events = POLLIN}, {.fd = w->kfd, .events = POLLIN}};
        if (np_tw_flush(w) < 0 || poll(pfd, 2, (int)w->idle_ms) <= 0)
            break;
        if (pfd[0].revents) {
            n = np_tt_ssl_read_some(w->cs, w->cfd, buf, NP_TT_IO_CHUNK, 0);
            if (n == 0)
                break;
            if (n > 0) {
                struct np_kh_msg m = {
                    .type = NP_KH_RELAY, .data = (uint8_t *)buf, .data_len = (size_t)n};
                w->bytes_up += (size_t)n;
                if (ch_send(w, &m) < 0)
                    break;
            }
        }
        if (pfd[1].revents) {
            struct np_kh_msg m;
            int fds[2];
            size_t nfds = 0;
            if (np_kh_recv(&m, w->kfd, w->kbuf, NP_KH_FROM_KEYHOLDER, fds, &nfds, 0) != 0 ||
                m.type != NP_KH_RELAY || np_tw_c_write(w, (const char *)m.data, m.data_len) < 0)
                break;
        }
    }
    (void)np_tw_flush(w);
    free(buf);
}

static void ch_close(struct np_worker *w)
{
    np_up_free(&w->up); /* the socket, when OPEN did not take it */
    pthread_mutex_lock(&w->p->wk_lock);
    if (w->kfd >= 0)
        close(w->kfd);
    w->kfd = -1;
    pthread_mutex_unlock(&w->p->wk_lock);
    free(w->kbuf);
    w->kbuf = NULL;
}

const struct np_half_ops np_half_channel = {
    .start = ch_start,
    .open = ch_open,
    .req_head = ch_req_head,
    .body = ch_body,
    .body_end = ch_body_end,
    .abort = ch_abort,
    .response = ch_response,
    .relay = ch_relay,
    .close = ch_close,
};
