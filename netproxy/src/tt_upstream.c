/* The blocking I/O helpers of a terminated connection and its upstream
 * half run in-process (tt_up.h): moved out of tls_term.c so that the key
 * holder (kh_conn.c) drives the very same code. */
#include "tt_up.h"
#include "tls_ca.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- a BIO over a non-blocking socket that first returns `pre` bytes --- */

struct fdbio {
    int fd;
    struct np_pre *pre;
};

static BIO_METHOD *g_fdbio;
static pthread_once_t g_fdbio_once = PTHREAD_ONCE_INIT;

static int fdbio_read(BIO *b, char *out, size_t len, size_t *done)
{
    struct fdbio *f = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (f->pre && f->pre->off < f->pre->len) {
        size_t n = f->pre->len - f->pre->off;
        if (n > len)
            n = len;
        memcpy(out, f->pre->buf + f->pre->off, n);
        f->pre->off += n;
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

BIO *np_tt_fdbio_new(int fd, struct np_pre *pre)
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
    f->pre = pre;
    BIO_set_data(b, f);
    BIO_set_init(b, 1);
    return b;
}

/* --- waiting, reading, writing --- */

int np_tt_wait_fd(int fd, short events, unsigned timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int rc;
    do
        rc = poll(&pfd, 1, (int)timeout_ms);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -1 : rc;
}

int np_tt_ssl_handshake(SSL *ssl, int fd, int (*op)(SSL *), unsigned timeout_ms)
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
        int w = np_tt_wait_fd(fd, ev, timeout_ms);
        if (w <= 0)
            return -1;
    }
}

ssize_t np_tt_ssl_read_some(SSL *ssl, int fd, char *buf, size_t cap, unsigned timeout_ms)
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
        int w = np_tt_wait_fd(fd, ev, timeout_ms);
        if (w == 0)
            return -1;
        if (w < 0)
            return 0;
    }
}

ssize_t np_tt_ssl_read_pending(SSL *ssl, char *buf, size_t cap)
{
    if (!ssl || !SSL_has_pending(ssl))
        return 0;
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(ssl, buf, cap, &got))
        return (ssize_t)got;
    int e = SSL_get_error(ssl, 0);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

int np_tt_ssl_write_all(SSL *ssl, int fd, const char *buf, size_t len, unsigned timeout_ms)
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
        if (!ev || np_tt_wait_fd(fd, ev, timeout_ms) <= 0)
            return -1;
    }
    return 0;
}

int np_tt_raw_write_all(int fd, const char *buf, size_t len, unsigned timeout_ms)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (np_tt_wait_fd(fd, POLLOUT, timeout_ms) <= 0)
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

ssize_t np_tt_raw_read_some(int fd, char *buf, size_t cap, unsigned timeout_ms)
{
    for (;;) {
        ssize_t n = recv(fd, buf, cap, 0);
        if (n > 0)
            return n;
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            return 0;
        int w = np_tt_wait_fd(fd, POLLIN, timeout_ms);
        if (w == 0)
            return -1;
        if (w < 0)
            return 0;
    }
}

int np_tt_out_flush(struct al_buf *q, SSL *ssl, int fd, unsigned timeout_ms)
{
    int rc = 0;
    if (q->len) {
        rc = ssl ? np_tt_ssl_write_all(ssl, fd, q->ptr, q->len, timeout_ms) : -1;
        OPENSSL_cleanse(q->ptr, q->len);
        al_buf_reset(q);
    }
    return rc;
}

int np_tt_out_put(struct al_buf *q, SSL *ssl, int fd, const char *buf, size_t len,
                  unsigned timeout_ms)
{
    if (q->len + len > NP_TT_OUT_MAX) {
        if (np_tt_out_flush(q, ssl, fd, timeout_ms) < 0)
            return -1;
        if (len > NP_TT_OUT_MAX)
            return np_tt_ssl_write_all(ssl, fd, buf, len, timeout_ms);
    }
    return al_buf_append(q, buf, len) < 0 ? -1 : 0;
}

/* --- the upstream half --- */

void np_up_init(struct np_up *up, struct np_tls *tls, const char *host, bool host_is_ip,
                uint16_t port, int fd, const struct sockaddr_storage *ua, socklen_t ua_len,
                unsigned idle_ms, unsigned connect_ms, pthread_mutex_t *lock, const bool *killed)
{
    memset(up, 0, sizeof(*up));
    up->fd = fd;
    up->tls = tls;
    snprintf(up->host, sizeof(up->host), "%s", host);
    up->host_is_ip = host_is_ip;
    up->port = port;
    if (ua && ua_len <= sizeof(up->ua)) {
        memcpy(&up->ua, ua, ua_len);
        up->ua_len = ua_len;
    }
    al_buf_init(&up->out, NP_TT_OUT_MAX);
    up->idle_ms = idle_ms;
    up->connect_ms = connect_ms;
    up->lock = lock;
    up->killed = killed;
}

static void up_lock(struct np_up *up)
{
    if (up->lock)
        pthread_mutex_lock(up->lock);
}

static void up_unlock(struct np_up *up)
{
    if (up->lock)
        pthread_mutex_unlock(up->lock);
}

/* Frees the SSL. After a complete handshake a close_notify goes first:
 * OpenSSL keeps the session resumable only then (a connection that failed
 * or ended without it is not resumed). */
static void up_ssl_free(struct np_up *up)
{
    if (!up->ssl)
        return;
    if (SSL_is_init_finished(up->ssl))
        (void)SSL_shutdown(up->ssl);
    ERR_clear_error();
    SSL_free(up->ssl);
    up->ssl = NULL;
}

void np_up_drop(struct np_up *up)
{
    up_ssl_free(up);
    up_lock(up);
    if (up->fd >= 0)
        close(up->fd);
    up->fd = -1;
    up_unlock(up);
}

void np_up_free(struct np_up *up)
{
    np_up_drop(up);
    al_buf_wipe_free(&up->out);
}

/* Dials the vetted address again (the upstream closed a keep-alive). */
static int redial(struct np_up *up)
{
    int fd = -1, one = 1, soerr = 0;
    socklen_t sl = sizeof(soerr);

    if (up->ua_len == 0)
        return -1;
    fd = socket(up->ua.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&up->ua, up->ua_len) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    if (np_tt_wait_fd(fd, POLLOUT, up->connect_ms) <= 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    up_lock(up);
    if (up->killed && *up->killed) {
        up_unlock(up);
        close(fd);
        return -1;
    }
    up->fd = fd;
    up_unlock(up);
    return 0;
}

bool np_up_gone(struct np_up *up)
{
    struct pollfd pfd = {.fd = up->fd, .events = POLLIN};
    if (up->plain)
        return up->fd >= 0 && poll(&pfd, 1, 0) != 0;
    if (!up->ssl || up->fd < 0 || !SSL_is_init_finished(up->ssl))
        return false; /* a handshake begun by np_up_start: np_up_open ends it */
    return SSL_has_pending(up->ssl) || poll(&pfd, 1, 0) != 0;
}

/* The SSL for up->fd: the session's client context (peer verification
 * on), read-ahead, SNI and the name (or address) to verify. 0, or -1
 * (up->ssl may be set: np_up_drop frees it). */
static int up_ssl_new(struct np_up *up)
{
    SSL_CTX *ctx = np_tls_client_ctx(up->tls);
    BIO *b;

    up->ssl = ctx ? SSL_new(ctx) : NULL;
    SSL_CTX_free(ctx);
    if (!up->ssl || !(b = np_tt_fdbio_new(up->fd, NULL)))
        return -1;
    SSL_set_bio(up->ssl, b, b);
    SSL_set_read_ahead(up->ssl, 1);
    if (up->host_is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(up->ssl), up->host);
    } else {
        SSL_set_tlsext_host_name(up->ssl, up->host);
        SSL_set1_host(up->ssl, up->host);
    }
    /* resumption: only of a session verified for this very name and port */
    snprintf(up->key, sizeof(up->key), "%s:%s:%u", up->host_is_ip ? "ip" : "dns", up->host,
             up->port);
    return np_tls_client_session(up->tls, up->ssl, up->key) < 0 ? -1 : 0;
}

void np_up_start(struct np_up *up)
{
    if (up->fd < 0 || up->ssl || up->plain)
        return;
    ERR_clear_error();
    if (up_ssl_new(up) == 0) {
        int r = SSL_connect(up->ssl);
        int e = SSL_get_error(up->ssl, r);
        if (r == 1 || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            return;
        }
        /* the upstream answered at once with a certificate that fails:
         * kept, so np_up_open reports it (no second connection) */
        if (SSL_get_verify_result(up->ssl) != X509_V_OK) {
            ERR_clear_error();
            return;
        }
    }
    ERR_clear_error();
    np_up_drop(up);
}

int np_up_open(struct np_up *up, const char **error, char *msg, size_t cap)
{
    int r;

    if (up->plain) {
        if (up->fd >= 0 || redial(up) == 0)
            return 0;
        snprintf(msg, cap, "airlock: cannot connect to %s:%u", up->host, up->port);
        *error = "connect-failure";
        return -1;
    }
    if (up->ssl && SSL_is_init_finished(up->ssl))
        return 0;
    if (up->ssl) {
        /* begun by np_up_start: end it; a failure other than the
         * certificate's or a timeout (e.g. the upstream gave up waiting) is
         * retried once on a new connection to the same address */
        r = np_tt_ssl_handshake(up->ssl, up->fd, SSL_connect, NP_TT_HANDSHAKE_MS);
        if (r == 1)
            return 0;
        if (r < 0 || SSL_get_verify_result(up->ssl) != X509_V_OK)
            goto failed;
        ERR_clear_error();
        np_up_drop(up);
    }
    if (up->fd < 0 && redial(up) < 0) {
        snprintf(msg, cap, "airlock: cannot connect to %s:%u", up->host, up->port);
        *error = "connect-failure";
        return -1;
    }
    if (up_ssl_new(up) < 0) {
        snprintf(msg, cap, "airlock: TLS with %s failed: out of memory", up->host);
        *error = "upstream-tls";
        np_up_drop(up);
        return -1;
    }
    r = np_tt_ssl_handshake(up->ssl, up->fd, SSL_connect, NP_TT_HANDSHAKE_MS);
    if (r == 1)
        return 0;
failed:;
    long v = SSL_get_verify_result(up->ssl);
    *error = "upstream-tls";
    if (v != X509_V_OK) {
        *error = "upstream-certificate";
        snprintf(msg, cap, "airlock: upstream certificate for %s: %s", up->host,
                 X509_verify_cert_error_string(v));
    } else {
        char why[160] = "timeout";
        if (r == 0)
            ERR_error_string_n(ERR_peek_error(), why, sizeof(why));
        snprintf(msg, cap, "airlock: TLS handshake with %s failed: %s", up->host, why);
    }
    ERR_clear_error();
    np_up_drop(up);
    return -1;
}

int np_up_flush(struct np_up *up)
{
    if (!up->plain)
        return np_tt_out_flush(&up->out, up->ssl, up->fd, up->idle_ms);
    int rc = 0;
    if (up->out.len) {
        rc = np_tt_raw_write_all(up->fd, up->out.ptr, up->out.len, up->idle_ms);
        OPENSSL_cleanse(up->out.ptr, up->out.len);
        al_buf_reset(&up->out);
    }
    return rc;
}

int np_up_write(struct np_up *up, const char *buf, size_t len)
{
    up->bytes += len;
    if (!up->plain)
        return np_tt_out_put(&up->out, up->ssl, up->fd, buf, len, up->idle_ms);
    if (up->out.len + len > NP_TT_OUT_MAX) {
        if (np_up_flush(up) < 0)
            return -1;
        if (len > NP_TT_OUT_MAX)
            return np_tt_raw_write_all(up->fd, buf, len, up->idle_ms);
    }
    return al_buf_append(&up->out, buf, len) < 0 ? -1 : 0;
}

ssize_t np_up_read(struct np_up *up, char *buf, size_t cap, unsigned timeout_ms)
{
    if (up->plain)
        return np_up_flush(up) < 0 ? 0 : np_tt_raw_read_some(up->fd, buf, cap, timeout_ms);
    ssize_t n = np_tt_ssl_read_pending(up->ssl, buf, cap);
    if (n != 0)
        return n < 0 ? 0 : n;
    if (np_up_flush(up) < 0)
        return 0;
    return np_tt_ssl_read_some(up->ssl, up->fd, buf, cap, timeout_ms);
}
