/* The worker of one terminated connection (tls_term.c) and "the upstream
 * half" it talks to (docs/netproxy.md, "Processes"): in-process
 * (tt_inproc.c: the verified TLS connection, substitution and re-masking
 * in this process) or over a channel to the key holder (tt_channel.c: this
 * process holds no value). Private to those three files. */
#ifndef NP_TT_WORKER_H
#define NP_TT_WORKER_H

#include "internal.h"
#include "kh_wire.h"
#include "tt_up.h"

struct np_worker;

/* A refusal the upstream half asks the worker to give the client (and log
 * as the request's "deny"). */
struct np_half_err {
    int status;
    char error[64];
    char msg[640];
};

/* The upstream half. Every function runs on the worker's thread. The
 * request functions come in this order per request: open, req_head, body
 * (zero or more), body_end, response; or, when the worker refuses the
 * request part-way, abort (the upstream must not see the request end). */
struct np_half_ops {
    /* At the worker's start (before the client's handshake): begin the
     * upstream connection. -1 ends the tunnel (w->tlog says why). */
    int (*start)(struct np_worker *w);
    /* Before each request: 0, or -1 with *e filled (the client gets it). */
    int (*open)(struct np_worker *w, struct np_half_err *e);
    /* The request head (r->head as tls_term_req.c made it) and its body's
     * framing (enum np_kh_framing; `length` with NP_KH_FRAME_LENGTH). With
     * r->rebuffer the head has no framing header and the whole body follows
     * (framing LENGTH). 0 or -1. */
    int (*req_head)(struct np_worker *w, const struct np_tt_req *r, uint8_t framing,
                    uint64_t length);
    /* Request body bytes (decoded: no chunk framing). 0 or -1. */
    int (*body)(struct np_worker *w, const char *data, size_t len);
    int (*body_end)(struct np_worker *w);
    /* The request was refused after its head went (a sentinel in its body):
     * the upstream must not get a complete request. */
    void (*abort)(struct np_worker *w, const char *reason);
    /* Relays the response to the client. The status (> 0), with
     * *close_after set when the connection must end and *upgraded after a
     * 101 to an Upgrade request, *used |= the credentials put back; -1 on
     * an error (the tunnel ends); -2 with *e filled (refuse and log). */
    int (*response)(struct np_worker *w, const struct np_tt_req *r, bool *close_after,
                    bool *upgraded, uint64_t *used, struct np_half_err *e);
    /* After a 101: relays both ways until either side ends. */
    void (*relay)(struct np_worker *w);
    /* At the worker's end. */
    void (*close)(struct np_worker *w);
};

extern const struct np_half_ops np_half_inproc;
extern const struct np_half_ops np_half_channel;

struct np_worker {
    struct np_proxy *p;
    struct np_session *s;
    const struct np_half_ops *half;
    char client[64];
    char host[NP_HOST_MAX];
    bool host_is_ip;
    uint16_t port;
    int cfd; /* guarded by p->wk_lock for np_tt_kill (with up.fd and kfd) */
    bool killed;
    struct np_tls *tls;
    struct np_creds *creds;
    struct np_polsnap *snap;
    uint64_t inject_ok;
    struct np_logrec tlog; /* the tunnel's line */
    uint64_t bytes_up, bytes_down;
    struct np_pre pre;       /* client bytes read before TLS (the ClientHello) */
    struct al_buf early_out; /* the 200 / SOCKS5 reply still to send */
    SSL *cs;                 /* the client's TLS */
    struct al_buf cout;      /* output queued for the client */
    unsigned idle_ms;
    bool plain;               /* a split proxy's plain-HTTP request (np_tt_start_plain) */
    struct al_buf plain_head; /* its head (c->fwd_head) */
    uint64_t plain_body_left; /* its body's framing, as the loop parsed it */
    bool plain_chunked;
    /* in-process half */
    struct np_up up;
    bool up_chunked; /* the request body goes re-chunked */
    /* channel half */
    int kfd;       /* the front's end of the pair, or -1 */
    uint8_t *kbuf; /* NP_KH_MSG_MAX scratch */
    struct np_worker *prev, *next;
};

/* Bytes for the client (queued, sent before the worker waits). 0 or -1. */
int np_tw_c_write(struct np_worker *w, const char *buf, size_t len);

/* Sends everything queued for both sides. 0 or -1. */
int np_tw_flush(struct np_worker *w);

/* Reads some bytes from `ssl` (the client's or the upstream's) as
 * np_tt_ssl_read_some, sending everything queued before it waits. */
ssize_t np_tw_read(struct np_worker *w, SSL *ssl, int fd, char *buf, size_t cap,
                   unsigned timeout_ms);

#endif
