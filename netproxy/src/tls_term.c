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
#include "internal.h"
#include "tls_ca.h"

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

#define HANDSHAKE_MS  10000
#define WORKER_STACK  (256u * 1024u)
#define IO_CHUNK      16384
#define CLIENT_IN_MAX (NP_HTTP_HEAD_MAX + IO_CHUNK)
#define OUT_MAX       16384 /* queued output per side: one TLS record's plaintext */

struct np_worker {
    struct np_proxy *p;
    struct np_session *s;
    char client[64];
    char host[NP_HOST_MAX];
    bool host_is_ip;
    uint16_t port;
    struct sockaddr_storage ua; /* the vetted upstream address (re-dialled
                                   when the upstream closes a keep-alive) */
    socklen_t ua_len;
    int cfd, ufd; /* guarded by p->wk_lock for np_tt_kill */
    bool killed;
    struct np_tls *tls;
    struct np_creds *creds;
    struct np_polsnap *snap;
    uint64_t inject_ok;
    struct np_logrec tlog; /* the tunnel's line */
    uint64_t bytes_up, bytes_down;
    /* client bytes read before TLS (the ClientHello), handed to OpenSSL */
    char *pre;
    size_t pre_len, pre_off;
    struct al_buf early_out; /* the 200 / SOCKS5 reply still to send */
    SSL *cs, *us;
    /* output queued per side (c_write, u_write), sent as one TLS record before the
     * worker waits for input (w_read) or ends; uout may hold real values */
    struct al_buf cout, uout;
    char ukey[NP_HOST_MAX + 16]; /* the upstream's TLS session key (tls_ca.h) */
    unsigned idle_ms;
    struct np_worker *prev, *next;
};

/* --- a BIO over a non-blocking socket that first returns `pre` bytes --- */

struct fdbio {
    int fd;
    struct np_worker *w; /* client side: pre bytes come first */
};

static BIO_METHOD *g_fdbio;
static pthread_once_t g_fdbio_once = PTHREAD_ONCE_INIT;

static int fdbio_read(BIO *b, char *out, size_t len, size_t *done)
{
    struct fdbio *f = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (f->w && f->w->pre_off < f->w->pre_len) {
        size_t n = f->w->pre_len - f->w->pre_off;
        if (n > len)
            n = len;
        memcpy(out, f->w->pre + f->w->pre_off, n);
        f->w->pre_off += n;
        *done = n;
        return 1;
    }
    ssize_t n = recv(f->fd, out, len, 0);
    if (n > 0) {
        *done = (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        BIO_set_retry_read(b);
    *done = 0;
    return 0;
}

static int fdbio_write(BIO *b, const char *in, size_t len, size_t *done)
{
    struct fdbio *f = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = send(f->fd, in, len, MSG_NOSIGNAL);
    if (n >= 0) {
        *done = (size_t)n;
        return 1;
    }
    if (errno == EAGAIN || errno == EINTR)
        BIO_set_retry_write(b);
    *done = 0;
    return 0;
}

static long fdbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int fdbio_destroy(BIO *b)
{
    free(BIO_get_data(b));
    BIO_set_data(b, NULL);
    return 1;
}

static void fdbio_init_once(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "airlock-fd");
    if (m && BIO_meth_set_read_ex(m, fdbio_read) && BIO_meth_set_write_ex(m, fdbio_write) &&
        BIO_meth_set_ctrl(m, fdbio_ctrl) && BIO_meth_set_destroy(m, fdbio_destroy))
        g_fdbio = m;
}

static BIO *fdbio_new(int fd, struct np_worker *w)
{
    pthread_once(&g_fdbio_once, fdbio_init_once);
    struct fdbio *f = calloc(1, sizeof(*f));
    BIO *b = g_fdbio ? BIO_new(g_fdbio) : NULL;
    if (!f || !b) {
        free(f);
        BIO_free(b);
        return NULL;
    }
    f->fd = fd;
    f->w = w;
    BIO_set_data(b, f);
    BIO_set_init(b, 1);
    return b;
}

/* --- waiting --- */

/* Waits for `events` on fd. 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, unsigned timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int rc;
    do
        rc = poll(&pfd, 1, (int)timeout_ms);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -1 : rc;
}

/* Runs a TLS handshake step (SSL_accept / SSL_connect) to its end. 1 done,
 * 0 failed (the SSL error queue says why), -1 timeout. */
static int ssl_handshake(SSL *ssl, int fd, int (*op)(SSL *), unsigned timeout_ms)
{
    for (;;) {
        ERR_clear_error();
        int r = op(ssl);
        if (r == 1)
            return 1;
        int e = SSL_get_error(ssl, r);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev)
            return 0;
        int w = wait_fd(fd, ev, timeout_ms);
        if (w <= 0)
            return -1;
    }
}

/* Reads some bytes. >0 bytes, 0 end of stream (or error), -1 timeout. */
static ssize_t ssl_read_some(SSL *ssl, int fd, char *buf, size_t cap, unsigned timeout_ms)
{
    for (;;) {
        size_t got = 0;
        ERR_clear_error();
        if (SSL_read_ex(ssl, buf, cap, &got))
            return (ssize_t)got;
        int e = SSL_get_error(ssl, 0);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev)
            return 0;
        int w = wait_fd(fd, ev, timeout_ms);
        if (w == 0)
            return -1;
        if (w < 0)
            return 0;
    }
}

/* Writes everything. 0 or -1. */
static int ssl_write_all(SSL *ssl, int fd, const char *buf, size_t len, unsigned timeout_ms)
{
    while (len) {
        size_t put = 0;
        ERR_clear_error();
        if (SSL_write_ex(ssl, buf, len, &put)) {
            buf += put;
            len -= put;
            continue;
        }
        int e = SSL_get_error(ssl, 0);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev || wait_fd(fd, ev, timeout_ms) <= 0)
            return -1;
    }
    return 0;
}

static int raw_write_all(int fd, const char *buf, size_t len, unsigned timeout_ms)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, timeout_ms) <= 0)
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

/* --- the worker --- */

/* Sends what is queued in q over ssl (wiping it: the upstream's queue
 * holds real credential values) and empties q. 0 or -1. */
static int out_flush(struct al_buf *q, SSL *ssl, int fd, unsigned timeout_ms)
{
    int rc = 0;
    if (q->len) {
        rc = ssl ? ssl_write_all(ssl, fd, q->ptr, q->len, timeout_ms) : -1;
        OPENSSL_cleanse(q->ptr, q->len);
        al_buf_reset(q);
    }
    return rc;
}

/* Queues bytes for one side, so that a response's head and body (or a
 * request's) go out as one TLS record; what does not fit in OUT_MAX is sent
 * at once, after what was queued. 0 or -1. */
static int out_put(struct al_buf *q, SSL *ssl, int fd, const char *buf, size_t len,
                   unsigned timeout_ms)
{
    if (q->len + len > OUT_MAX) {
        if (out_flush(q, ssl, fd, timeout_ms) < 0)
            return -1;
        if (len > OUT_MAX)
            return ssl_write_all(ssl, fd, buf, len, timeout_ms);
    }
    return al_buf_append(q, buf, len) < 0 ? -1 : 0;
}

/* Sends everything queued for both sides. 0 or -1. */
static int w_flush(struct np_worker *w)
{
    int rc = out_flush(&w->uout, w->us, w->ufd, w->idle_ms);
    return out_flush(&w->cout, w->cs, w->cfd, w->idle_ms) < 0 ? -1 : rc;
}

/* ssl_read_some for the worker: what OpenSSL holds already (read-ahead) is
 * returned at once; before it waits for the network, everything queued is
 * sent, so no output waits on input. */
static ssize_t w_read(struct np_worker *w, SSL *ssl, int fd, char *buf, size_t cap,
                      unsigned timeout_ms)
{
    if (SSL_has_pending(ssl)) {
        size_t got = 0;
        ERR_clear_error();
        if (SSL_read_ex(ssl, buf, cap, &got))
            return (ssize_t)got;
        int e = SSL_get_error(ssl, 0);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return 0;
    }
    if (w_flush(w) < 0)
        return 0;
    return ssl_read_some(ssl, fd, buf, cap, timeout_ms);
}

static int c_write(struct np_worker *w, const char *buf, size_t len)
{
    w->bytes_down += len;
    return out_put(&w->cout, w->cs, w->cfd, buf, len, w->idle_ms);
}

static int u_write(struct np_worker *w, const char *buf, size_t len)
{
    w->bytes_up += len;
    return out_put(&w->uout, w->us, w->ufd, buf, len, w->idle_ms);
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
        c_write(w, b.ptr, b.len) == 0)
        (void)out_flush(&w->cout, w->cs, w->cfd, w->idle_ms); /* uout: see worker_finish */
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

/* Reads the ClientHello into w->pre and checks it (decision 7). 0 to go on;
 * -1 when the tunnel ends (logged in w->tlog). */
static int check_client_hello(struct np_worker *w)
{
    char sni[NP_HOST_MAX] = "", norm[NP_HOST_MAX];
    uint64_t deadline = np_now_ms() + HANDSHAKE_MS;

    if (!w->pre && !(w->pre = malloc(NP_TLS_HELLO_MAX)))
        return -1;
    for (;;) {
        enum np_sni_result r =
            np_tls_sni_parse((const unsigned char *)w->pre, w->pre_len, sni, sizeof(sni));
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
        if (w->pre_len >= NP_TLS_HELLO_MAX) {
            tunnel_deny(w, "not-tls", "TLS ClientHello too large");
            return -1;
        }
        uint64_t now = np_now_ms();
        if (now >= deadline || wait_fd(w->cfd, POLLIN, (unsigned)(deadline - now)) <= 0) {
            tunnel_deny(w, "sni-timeout", "no TLS ClientHello in time");
            return -1;
        }
        ssize_t n = recv(w->cfd, w->pre + w->pre_len, NP_TLS_HELLO_MAX - w->pre_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            tunnel_deny(w, "client-closed", "the client closed before its ClientHello");
            return -1;
        }
        if (n > 0)
            w->pre_len += (size_t)n;
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
    if (!w->cs || !(b = fdbio_new(w->cfd, w))) {
        tunnel_deny(w, "tls-error", "out of memory");
        return -1;
    }
    SSL_set_bio(w->cs, b, b);
    SSL_set_read_ahead(w->cs, 1); /* a record in one recv; see w_read */
    int r = ssl_handshake(w->cs, w->cfd, SSL_accept, HANDSHAKE_MS);
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

/* Dials the vetted address again (the upstream closed a keep-alive). */
static int redial(struct np_worker *w)
{
    int fd = socket(w->ua.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, soerr = 0;
    socklen_t sl = sizeof(soerr);

    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&w->ua, w->ua_len) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    if (wait_fd(fd, POLLOUT, w->p->cfg.connect_timeout_ms) <= 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    pthread_mutex_lock(&w->p->wk_lock);
    if (w->killed) {
        pthread_mutex_unlock(&w->p->wk_lock);
        close(fd);
        return -1;
    }
    w->ufd = fd;
    pthread_mutex_unlock(&w->p->wk_lock);
    return 0;
}

/* Frees the upstream SSL. After a complete handshake a close_notify goes
 * first: OpenSSL keeps the session resumable only then (a connection that
 * failed or ended without it is not resumed). */
static void upstream_ssl_free(struct np_worker *w)
{
    if (!w->us)
        return;
    if (SSL_is_init_finished(w->us))
        (void)SSL_shutdown(w->us);
    ERR_clear_error();
    SSL_free(w->us);
    w->us = NULL;
}

static void upstream_drop(struct np_worker *w)
{
    upstream_ssl_free(w);
    pthread_mutex_lock(&w->p->wk_lock);
    if (w->ufd >= 0)
        close(w->ufd);
    w->ufd = -1;
    pthread_mutex_unlock(&w->p->wk_lock);
}

/* Whether the idle upstream connection has ended (or sent something
 * unasked) since the last response: it is then dropped and re-dialled. */
static bool upstream_gone(struct np_worker *w)
{
    struct pollfd pfd = {.fd = w->ufd, .events = POLLIN};
    if (!w->us || w->ufd < 0 || !SSL_is_init_finished(w->us))
        return false; /* a handshake begun by upstream_start: upstream_open ends it */
    return SSL_has_pending(w->us) || poll(&pfd, 1, 0) != 0;
}

/* The upstream SSL for w->ufd: the session's client context (peer
 * verification on), read-ahead, SNI and the name (or address) to verify. 0,
 * or -1 (w->us may be set: upstream_drop frees it). */
static int upstream_ssl_new(struct np_worker *w)
{
    SSL_CTX *ctx = np_tls_client_ctx(w->tls);
    BIO *b;

    w->us = SSL_new(ctx);
    SSL_CTX_free(ctx);
    if (!w->us || !(b = fdbio_new(w->ufd, NULL)))
        return -1;
    SSL_set_bio(w->us, b, b);
    SSL_set_read_ahead(w->us, 1);
    if (w->host_is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(w->us), w->host);
    } else {
        SSL_set_tlsext_host_name(w->us, w->host);
        SSL_set1_host(w->us, w->host);
    }
    /* resumption: only of a session verified for this very name and port */
    snprintf(w->ukey, sizeof(w->ukey), "%s:%s:%u", w->host_is_ip ? "ip" : "dns", w->host, w->port);
    return np_tls_client_session(w->tls, w->us, w->ukey) < 0 ? -1 : 0;
}

/* Begins the upstream handshake on the connection the loop dialled (its
 * ClientHello goes out) so that the upstream's answer arrives while the
 * sandbox's handshake runs; upstream_open ends it at the first request,
 * with the same checks. On any failure nothing is kept and upstream_open
 * starts afresh (same vetted address). */
static void upstream_start(struct np_worker *w)
{
    if (w->ufd < 0 || w->us)
        return;
    ERR_clear_error();
    if (upstream_ssl_new(w) == 0) {
        int r = SSL_connect(w->us);
        int e = SSL_get_error(w->us, r);
        if (r == 1 || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            return;
        }
    }
    ERR_clear_error();
    upstream_drop(w);
}

/* Opens the verified TLS connection upstream (decision 8). 0, or -1 after
 * answering the sandbox 502. */
static int upstream_open(struct np_worker *w)
{
    char msg[512];
    int r;

    if (w->us && SSL_is_init_finished(w->us))
        return 0;
    if (w->us) {
        /* begun by upstream_start: end it; a failure other than the
         * certificate's or a timeout (e.g. the upstream gave up waiting) is
         * retried once on a new connection to the same address */
        r = ssl_handshake(w->us, w->ufd, SSL_connect, HANDSHAKE_MS);
        if (r == 1)
            return 0;
        if (r < 0 || SSL_get_verify_result(w->us) != X509_V_OK)
            goto failed;
        ERR_clear_error();
        upstream_drop(w);
    }
    if (w->ufd < 0 && redial(w) < 0) {
        snprintf(msg, sizeof(msg), "airlock: cannot connect to %s:%u", w->host, w->port);
        c_refuse(w, 502, "connect-failure", msg);
        return -1;
    }
    if (upstream_ssl_new(w) < 0)
        return -1;
    r = ssl_handshake(w->us, w->ufd, SSL_connect, HANDSHAKE_MS);
    if (r == 1)
        return 0;
failed:;
    long v = SSL_get_verify_result(w->us);
    const char *error = "upstream-tls";
    if (v != X509_V_OK) {
        error = "upstream-certificate";
        snprintf(msg, sizeof(msg), "airlock: upstream certificate for %s: %s", w->host,
                 X509_verify_cert_error_string(v));
    } else {
        char why[160] = "timeout";
        if (r == 0)
            ERR_error_string_n(ERR_peek_error(), why, sizeof(why));
        snprintf(msg, sizeof(msg), "airlock: TLS handshake with %s failed: %s", w->host, why);
    }
    ERR_clear_error();
    c_refuse(w, 502, error, msg);
    snprintf(w->tlog.reason, sizeof(w->tlog.reason), "%s", error);
    snprintf(w->tlog.detail, sizeof(w->tlog.detail), "%s", msg);
    w->tlog.decision = "deny";
    w->tlog.status = 502;
    upstream_drop(w);
    return -1;
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
    ssize_t n = w_read(w, w->cs, w->cfd, out, cap, w->idle_ms);
    return n > 0 ? n : -1;
}

/* Gives `len` request body bytes to the stream and sends what is final:
 * re-chunked when `chunked`. 0, 1 refused (culprit set), -1 error. */
static int body_out(struct np_worker *w, struct al_subst_stream *st, const char *data, size_t len,
                    bool chunked, bool fin, struct al_buf *tmp, size_t *culprit,
                    struct al_buf *collect)
{
    al_buf_reset(tmp);
    int err = len ? al_subst_stream_feed(st, data, len, tmp, culprit) : 0;
    if (err == AL_EPERM)
        return 1;
    if (err < 0 || (fin && al_subst_stream_finish(st, tmp) < 0))
        return -1;
    if (collect)
        return al_buf_append(collect, tmp->ptr, tmp->len) < 0 ? 2 : 0;
    if (tmp->len) {
        char hdr[32];
        int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", tmp->len);
        if ((chunked && u_write(w, hdr, (size_t)n) < 0) || u_write(w, tmp->ptr, tmp->len) < 0 ||
            (chunked && u_write(w, "\r\n", 2) < 0))
            return -1;
    }
    if (fin && chunked && u_write(w, "0\r\n\r\n", 5) < 0)
        return -1;
    return 0;
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
            ret = body_out(w, &st, chunk, got, false, done, &tmp, &culprit, coll);
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
                ret = body_out(w, &st, chunk + pos, take, !coll, false, &tmp, &culprit, coll);
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
                ret = body_out(w, &st, NULL, 0, !coll, true, &tmp, &culprit, coll);
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
        /* decision 6: the head went without framing; add the new length */
        char cl[48];
        int n = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n\r\n", collect.len);
        if (u_write(w, r->head.ptr, r->head.len - 2) < 0 || u_write(w, cl, (size_t)n) < 0 ||
            u_write(w, collect.ptr, collect.len) < 0)
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
        if ((chunked && c_write(w, hdr, (size_t)n) < 0) || c_write(w, tmp->ptr, tmp->len) < 0 ||
            (chunked && c_write(w, "\r\n", 2) < 0))
            return -1;
    }
    if (fin && chunked && c_write(w, "0\r\n\r\n", 5) < 0)
        return -1;
    return 0;
}

/* Reads the response to the request and relays it, re-masked. Returns the
 * status (> 0), with *close_after set when the connection must end;
 * -1 on error. `upgraded` is set after a 101 to an Upgrade request. */
static int response(struct np_worker *w, const struct np_tt_req *r, bool *close_after,
                    bool *upgraded)
{
    char *buf = malloc(NP_HTTP_RESP_HEAD_MAX + IO_CHUNK);
    size_t len = 0;
    struct np_http_response rs;
    struct al_subst_stream st;
    struct al_buf tmp;
    int status = -1;
    const struct al_credset *set = w->creds ? &w->creds->set : NULL;
    struct al_credset empty = {0};

    al_buf_init(&tmp, IO_CHUNK * 2 + AL_CRED_VALUE_MAX * 2);
    if (!buf)
        return -1;
    for (;;) { /* 1xx responses come before the final one */
        int n;
        while ((n = np_http_parse_response(&rs, buf, len)) == 0) {
            ssize_t got = w_read(w, w->us, w->ufd, buf + len,
                                 NP_HTTP_RESP_HEAD_MAX + IO_CHUNK - len, w->idle_ms);
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
        int e = al_subst_stream_feed(&st, buf, (size_t)n, &tmp, NULL);
        e |= al_subst_stream_finish(&st, &tmp);
        al_subst_stream_free(&st);
        if (e < 0 || c_write(w, tmp.ptr, tmp.len) < 0)
            goto out;
        memmove(buf, buf + n, len - (size_t)n);
        len -= (size_t)n;
        if (rs.status == 101 && r->upgrade) {
            *upgraded = true;
            /* whatever followed the head is the upgraded protocol's */
            if (len && c_write(w, buf, len) < 0)
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
            ssize_t got = w_read(w, w->us, w->ufd, buf, IO_CHUNK, w->idle_ms);
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
            size_t used = 0;
            uint64_t data = np_chunked_data_left(&ch);
            if (data) {
                size_t take = len - pos;
                if (take > data)
                    take = (size_t)data;
                np_chunked_feed(&ch, buf + pos, take, &used);
                if (resp_out(w, &st, buf + pos, take, true, false, &tmp) < 0) {
                    status = -1;
                    done = true;
                    break;
                }
                pos += take;
                continue;
            }
            int rc = np_chunked_feed(&ch, buf + pos, 1, &used);
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
    if (SSL_read_ex(from, buf, IO_CHUNK, &got))
        return (up ? u_write(w, buf, got) : c_write(w, buf, got)) < 0 ? -1 : 1;
    int e = SSL_get_error(from, 0);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* After a 101: raw relay both ways until either side ends. What OpenSSL
 * holds already (read-ahead) is moved before poll() waits on the sockets:
 * a whole record in its buffer would not wake poll(); a partial one is
 * completed by the socket, which does. */
static void relay_upgraded(struct np_worker *w)
{
    char *buf = malloc(IO_CHUNK);
    if (!buf)
        return;
    for (;;) {
        int a = SSL_has_pending(w->cs) ? relay_move(w, w->cs, true, buf) : 0;
        int b = a >= 0 && SSL_has_pending(w->us) ? relay_move(w, w->us, false, buf) : 0;
        if (a < 0 || b < 0)
            break;
        if (a || b)
            continue;
        struct pollfd pfd[2] = {{.fd = w->cfd, .events = POLLIN}, {.fd = w->ufd, .events = POLLIN}};
        if (w_flush(w) < 0 || poll(pfd, 2, (int)w->idle_ms) <= 0)
            break;
        if (pfd[0].revents && relay_move(w, w->cs, true, buf) < 0)
            break;
        if (pfd[1].revents && relay_move(w, w->us, false, buf) < 0)
            break;
    }
    (void)w_flush(w);
    free(buf);
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
            ssize_t got = w_read(w, w->cs, w->cfd, in + in_len, CLIENT_IN_MAX - in_len, wait_ms);
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
        if (upstream_gone(w))
            upstream_drop(w); /* closed while idle: dial the same address again */
        if (upstream_open(w) < 0) {
            log_request(w, "deny", w->tlog.reason, "", w->tlog.detail, 502, &r, 0,
                        w->bytes_down - down0, t0);
            goto out;
        }
        if (!r.rebuffer && u_write(w, r.head.ptr, r.head.len) < 0)
            goto out;
        if (r.expect_continue && c_write(w, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
            goto out;
        if (r.has_body) {
            struct body_io io = {.w = w, .in = in, .in_len = &in_len};
            int b = request_body(w, &r, &io);
            if (b != 0) {
                if (b == 1) {
                    c_refuse(w, r.status, r.error, r.why);
                    log_request(w, "deny", r.reason, r.rule, r.why, r.status, &r, w->bytes_up - up0,
                                w->bytes_down - down0, t0);
                }
                goto out; /* the upstream got a truncated request: dropped */
            }
            np_tt_cred_names(r.credential, sizeof(r.credential), ctx.creds, r.used);
        }
        bool close_after = r.close_after, upgraded = false;
        int status = response(w, &r, &close_after, &upgraded);
        if (status > 0 && w_flush(w) < 0)
            status = -1;
        if (status < 0) {
            log_request(w, "abort", "upstream-error", r.rule, "", 0, &r, w->bytes_up - up0,
                        w->bytes_down - down0, t0);
            goto out;
        }
        log_request(w, r.would_deny ? "would-deny" : "allow",
                    r.would_deny ? r.reason : "allowed-domain", r.rule, r.would_deny ? r.why : "",
                    status, &r, w->bytes_up - up0, w->bytes_down - down0, t0);
        if (upgraded) {
            relay_upgraded(w);
            goto out;
        }
        if (close_after)
            goto out;
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
    (void)out_flush(&w->cout, w->cs, w->cfd, w->idle_ms);
    if (w->cs) {
        SSL_shutdown(w->cs);
        SSL_free(w->cs);
    }
    upstream_ssl_free(w);
    np_log_write(p, w->s->id, w->client, &w->tlog, w->bytes_up, w->bytes_down);
    np_tls_unref(w->tls);
    np_creds_unref(w->creds);
    np_polsnap_unref(w->snap);
    free(w->pre);
    al_buf_free(&w->early_out);
    al_buf_wipe_free(&w->uout);
    al_buf_free(&w->cout);
    pthread_mutex_lock(&p->wk_lock);
    if (w->cfd >= 0)
        close(w->cfd);
    if (w->ufd >= 0)
        close(w->ufd);
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
        raw_write_all(w->cfd, w->early_out.ptr, w->early_out.len, HANDSHAKE_MS) < 0)
        goto out;
    if (check_client_hello(w) < 0)
        goto out;
    upstream_start(w);
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

void np_tt_start(struct np_conn *c)
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
    w->cfd = w->ufd = -1;
    w->idle_ms = p->cfg.idle_timeout_ms ? p->cfg.idle_timeout_ms : 300000;
    snprintf(w->client, sizeof(w->client), "%s", c->client);
    snprintf(w->host, sizeof(w->host), "%s", c->host);
    w->host_is_ip = c->host_is_ip;
    w->port = c->port;
    w->ua_len = al_addr_to_sockaddr(&c->cands[c->next_cand - 1], c->port, &w->ua);
    al_buf_init(&w->early_out, 4096);
    al_buf_init(&w->cout, OUT_MAX);
    al_buf_init(&w->uout, OUT_MAX);
    if (al_buf_append(&w->early_out, c->down.pend.ptr + c->down.pend_off,
                      c->down.pend.len - c->down.pend_off) < 0 ||
        (c->in_len && !(w->pre = malloc(NP_TLS_HELLO_MAX)))) {
        al_buf_free(&w->early_out);
        free(w);
        np_conn_close(c);
        return;
    }
    if (c->in_len) {
        size_t n = c->in_len < NP_TLS_HELLO_MAX ? c->in_len : NP_TLS_HELLO_MAX;
        memcpy(w->pre, c->in, n);
        w->pre_len = n;
    }
    pthread_mutex_lock(&p->lock);
    w->tls = c->session->tls;
    np_tls_ref(w->tls);
    if ((w->creds = c->session->creds))
        atomic_fetch_add(&w->creds->refs, 1);
    if ((w->snap = c->session->snap))
        atomic_fetch_add(&w->snap->refs, 1);
    pthread_mutex_unlock(&p->lock);
    w->inject_ok = np_creds_inject_mask(w->creds, w->host, w->host_is_ip, w->port);

    /* the tunnel's decision line is the worker's from now on */
    w->tlog = c->log;
    w->tlog.active = false;
    if (w->tlog.reason[0] == '\0')
        snprintf(w->tlog.reason, sizeof(w->tlog.reason), "allowed-domain");
    if (w->tlog.detail[0] == '\0')
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
    w->ufd = c->ufd;
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
        c->ufd = w->ufd;
        w->cfd = w->ufd = -1;
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
    free(w->pre);
    al_buf_free(&w->early_out);
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
        if (w->ufd >= 0)
            shutdown(w->ufd, SHUT_RDWR);
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
