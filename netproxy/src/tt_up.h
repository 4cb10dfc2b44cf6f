/* The blocking socket and TLS helpers of a terminated connection, and its
 * upstream half run in-process (tt_upstream.c): the verified TLS
 * connection to the upstream, its keep-alive and re-dial. Used by the
 * one-process worker (tls_term.c) and by the key holder (kh_conn.c), one
 * thread per connection. */
#ifndef NP_TT_UP_H
#define NP_TT_UP_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "airlock/buf.h"
#include "domain.h"

struct np_tls;

#define NP_TT_HANDSHAKE_MS 10000
#define NP_TT_IO_CHUNK     16384
#define NP_TT_OUT_MAX      16384 /* queued output per side: one TLS record's plaintext */

/* Bytes read before TLS (the ClientHello) that a BIO returns first. */
struct np_pre {
    char *buf;
    size_t len, off;
};

/* A BIO over the non-blocking socket fd that returns `pre`'s bytes first
 * (pre may be NULL; it must outlive the BIO). NULL on failure. */
BIO *np_tt_fdbio_new(int fd, struct np_pre *pre);

/* Waits for `events` on fd. 1 ready, 0 timeout, -1 error. */
int np_tt_wait_fd(int fd, short events, unsigned timeout_ms);

/* Runs a TLS handshake step (SSL_accept / SSL_connect) to its end. 1 done,
 * 0 failed (the SSL error queue says why), -1 timeout. */
int np_tt_ssl_handshake(SSL *ssl, int fd, int (*op)(SSL *), unsigned timeout_ms);

/* Reads some bytes. >0 bytes, 0 end of stream (or error), -1 timeout. */
ssize_t np_tt_ssl_read_some(SSL *ssl, int fd, char *buf, size_t cap, unsigned timeout_ms);

/* What OpenSSL holds already (read-ahead), without waiting: >0 bytes, 0
 * nothing buffered, -1 the connection ended. */
ssize_t np_tt_ssl_read_pending(SSL *ssl, char *buf, size_t cap);

/* Writes everything. 0 or -1. */
int np_tt_ssl_write_all(SSL *ssl, int fd, const char *buf, size_t len, unsigned timeout_ms);

/* Writes everything to the (non-blocking) socket. 0 or -1. */
int np_tt_raw_write_all(int fd, const char *buf, size_t len, unsigned timeout_ms);

/* Reads some bytes from the (non-blocking) socket. >0 bytes, 0 end of
 * stream (or error), -1 timeout. */
ssize_t np_tt_raw_read_some(int fd, char *buf, size_t cap, unsigned timeout_ms);

/* Sends what is queued in q over ssl, wiping it (a queue towards the
 * upstream holds real values), and empties q. 0 or -1. */
int np_tt_out_flush(struct al_buf *q, SSL *ssl, int fd, unsigned timeout_ms);

/* Queues bytes so that a head and its body go out as one TLS record; what
 * does not fit in NP_TT_OUT_MAX is sent at once, after what was queued.
 * 0 or -1. */
int np_tt_out_put(struct al_buf *q, SSL *ssl, int fd, const char *buf, size_t len,
                  unsigned timeout_ms);

/* --- the upstream half, in-process --- */

/* One connection's upstream: the socket the proxy dialled (non-blocking),
 * the vetted address (re-dialled after a keep-alive closed), the TLS
 * connection verified for `host`. `lock` / `killed` (may be NULL) guard
 * `fd` against a concurrent kill (which shuts it down under `lock`). */
struct np_up {
    int fd;
    SSL *ssl;
    struct np_tls *tls; /* borrowed */
    char host[NP_HOST_MAX];
    bool host_is_ip;
    uint16_t port;
    struct sockaddr_storage ua;
    socklen_t ua_len;
    char key[NP_HOST_MAX + 16]; /* the TLS session key (tls_ca.h) */
    struct al_buf out;          /* queued output (may hold real values) */
    unsigned idle_ms, connect_ms;
    pthread_mutex_t *lock;
    const bool *killed;
    uint64_t bytes; /* written */
    bool plain;     /* plain HTTP (allowPlaintextInject): no TLS, set after np_up_init */
};

/* Initialises `up` for the connected socket `fd` (now up's; -1: none yet)
 * to `ua`. */
void np_up_init(struct np_up *up, struct np_tls *tls, const char *host, bool host_is_ip,
                uint16_t port, int fd, const struct sockaddr_storage *ua, socklen_t ua_len,
                unsigned idle_ms, unsigned connect_ms, pthread_mutex_t *lock, const bool *killed);

/* Ends the TLS connection (close_notify after a complete handshake, so the
 * session stays resumable), closes the socket, wipes the queue. */
void np_up_free(struct np_up *up);

/* Begins the TLS handshake (its ClientHello goes out) without waiting;
 * np_up_open ends it. A certificate that already failed is kept for
 * np_up_open to report; any other failure leaves nothing (np_up_open dials
 * the same address again). */
void np_up_start(struct np_up *up);

/* Whether the idle connection ended (or sent something unasked) since the
 * last response; np_up_drop it then and np_up_open dials again. */
bool np_up_gone(struct np_up *up);

/* Drops the TLS connection and the socket. */
void np_up_drop(struct np_up *up);

/* Opens (or keeps) the TLS connection verified for up->host (re-dialling
 * the vetted address when there is no socket). 0, or -1 with the refusal
 * for the client: *status 502, *error ("connect-failure",
 * "upstream-certificate", "upstream-tls") and msg. Nothing is written
 * upstream before it returned 0. */
int np_up_open(struct np_up *up, const char **error, char *msg, size_t cap);

/* Queues (or sends) bytes for the upstream. 0 or -1. */
int np_up_write(struct np_up *up, const char *buf, size_t len);

/* Sends the queue. 0 or -1. */
int np_up_flush(struct np_up *up);

/* Reads upstream bytes: what OpenSSL holds first; the queue is sent before
 * waiting. >0, 0 end of stream (or error), -1 timeout. */
ssize_t np_up_read(struct np_up *up, char *buf, size_t cap, unsigned timeout_ms);

#endif
