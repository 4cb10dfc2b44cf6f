/* netproxy internals shared by loop.c, conn.c, http_proxy.c, socks_proxy.c
 * and decision_log.c. Everything here runs on the loop thread unless a
 * comment says otherwise. */
#ifndef NP_INTERNAL_H
#define NP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "airlock/ipaddr.h"
#include "airlock/buf.h"
#include "airlock/netproxy.h"
#include "domain.h"
#include "http_parse.h"
#include "resolve.h"
#include "tls_sni.h"
#include "tls_term.h"

struct np_tls;

#define NP_IN_MAX    (NP_TLS_HELLO_MAX + 1024) /* client bytes read before relaying */
#define NP_PEND_MAX  (1u << 20)                /* user-space bytes queued per direction */
#define NP_LINGER_MS 2000
#define NP_PIPE_POOL 1024       /* empty pipes kept for reuse */
#define NP_PIPE_SIZE (1u << 20) /* pipe capacity asked for; splice chunk */

enum np_ep_type { EP_LISTENER, EP_CLIENT, EP_UPSTREAM, EP_WAKE, EP_RESOLVER };

struct np_ep {
    enum np_ep_type type;
    void *obj;
};

struct np_session {
    char *id;
    bool has_policy;
    struct np_rules rules;   /* from the settings */
    struct np_rules extra;   /* host:port allowed by the approver for this session */
    struct al_netpolicy pol; /* has_policy: a copy of the policy (request rules,
                                report_only, tls_terminate, tls_exclude) */
    unsigned n_conns;
    bool removed;
    /* issue 15, guarded by the proxy's lock; each is reference-counted so
     * that terminated connections (worker threads) keep what they started
     * with: */
    struct np_tls *tls;      /* np_proxy_set_tls (NULL: none) */
    struct np_creds *creds;  /* np_proxy_set_credentials (NULL: none) */
    struct np_polsnap *snap; /* the policy, for the terminated path */
    atomic_uint n_workers;   /* terminated connections running */
    struct np_session *next;
};

struct np_listener {
    int fd;
    enum np_kind kind;
    struct np_session *session;
    struct al_addr relay_addr; /* NP_RELAY: where every connection goes */
    uint16_t relay_port;
    struct np_ep ep;
    bool registered;
    bool paused; /* out of descriptors: not polled until the next sweep */
    struct np_listener *next;
};

enum np_state {
    ST_HEAD,        /* HTTP: waiting for a request head */
    ST_SOCKS_GREET, /* SOCKS5: waiting for the method greeting */
    ST_SOCKS_REQ,   /* SOCKS5: waiting for the request */
    ST_APPROVAL,    /* held for the approver */
    ST_RESOLVING,   /* DNS job in flight */
    ST_CONNECTING,  /* non-blocking connect in flight */
    ST_SNI,         /* tunnel up, reading the ClientHello */
    ST_RELAY,       /* tunnel: splice both ways */
    ST_HTTP_BODY,   /* HTTP forward: request body to upstream */
    ST_LINGER,      /* answered with an error: drain and close */
};

/* One direction of a connection: bytes from `src` to `dst`. Bytes queued in
 * `pend` (user space) go first, then whatever sits in the pipe. */
struct np_dir {
    int pipe[2];
    size_t in_pipe;
    struct al_buf pend;
    size_t pend_off;
    bool splice; /* read src with splice(2) */
    bool eof;    /* src reached EOF */
    bool shut;   /* dst shut down for writing */
    uint64_t bytes;
};

/* What the decision log says about the current request. */
struct np_logrec {
    bool active;
    const char *proxy; /* "http", "connect", "socks5" */
    const char *decision;
    bool would_deny; /* reportOnly let a denial through: "would-deny", not "allow" */
    char reason[160];
    char rule[160];
    char detail[512];
    char host[NP_HOST_MAX];
    uint16_t port;
    char addr[48];
    const char *addr_class; /* static string; NULL unless blocked-address */
    int status;
    /* a request inside a terminated tunnel (or a plain HTTP request) */
    char method[24];
    char path[512];
    char credential[160];
    uint64_t t_start, t_dns, dns_us, t_connect, connect_us;
    uint64_t up0, down0; /* byte counters when the request started */
};

struct np_conn {
    struct np_proxy *proxy;
    struct np_session *session;
    enum np_kind kind;
    enum np_state state;
    int cfd, ufd;
    struct np_ep cep, uep;
    bool cr, cw, ur, uw;   /* edge-triggered readiness */
    bool c_unreg, u_unreg; /* fd not in epoll yet (registered when the
                              current round of work is done) */
    char client[64];       /* "ip:port" of the client */

    char *in; /* client bytes not yet processed (NP_IN_MAX), NULL in relay */
    size_t in_len;

    struct np_dir up;   /* client -> upstream */
    struct np_dir down; /* upstream -> client */

    /* the request being decided */
    bool is_connect; /* HTTP CONNECT (tunnel) */
    char host[NP_HOST_MAX];
    bool host_is_ip;
    struct al_addr host_ip;
    uint16_t port;
    struct al_buf fwd_head; /* HTTP forward: rewritten head for upstream */
    uint64_t body_left;
    bool body_chunked;
    struct np_chunked chunked;
    bool close_after; /* HTTP: Connection: close on this request */
    bool upgrade;     /* HTTP: Upgrade request; relay raw bytes after it */
    bool require_sni;
    struct np_plain_scan *plain_scan; /* HTTP: body scanned for sentinels
                                         (plain_creds.c), NULL when not */
    struct np_plain_remask *remask;   /* HTTP: the upstream's bytes are
                                         re-masked (a real value was put into
                                         a request on it); freed with the
                                         upstream connection */

    /* upstream */
    struct np_resolve_job *job;
    struct al_addr cands[NP_RESOLVE_MAX]; /* checked addresses to dial, in order */
    size_t n_cands, next_cand;
    char up_host[NP_HOST_MAX]; /* what the open upstream connection is for */
    uint16_t up_port;
    bool up_reusable;

    uint64_t approval_id;
    uint64_t deadline_ms; /* 0 = none */
    uint64_t last_ms;     /* last activity */
    struct np_logrec log;
    bool dead;
    struct np_conn *prev, *next;
};

struct np_pending_answer {
    uint64_t id;
    enum np_verdict verdict;
    struct np_pending_answer *next;
};

struct np_proxy {
    struct np_config cfg;
    int epfd;
    int wakefd;
    struct np_ep wake_ep, resolver_ep;
    struct np_resolver *resolver;

    pthread_mutex_t lock; /* guards sessions' policies, listeners list, answers */
    struct np_session *sessions;
    struct np_listener *listeners;
    struct np_pending_answer *answers;
    np_approver_fn approver;
    void *approver_payload;
    np_decision_fn decision_hook;
    void *decision_payload;
    uint64_t next_approval_id;
    volatile int stopping;

    struct np_conn *conns;
    size_t n_conns;
    size_t n_dead; /* closed, not freed yet: reap() walks the list only then */
    uint64_t now_ms;
    uint64_t last_sweep_ms;
    bool listeners_paused;
    int (*pipes)[2]; /* empty pipes ready for any direction (pool) */
    size_t n_pipes, cap_pipes;
    uint64_t last_emfile_log_ms;

    /* terminated connections (tls_term.c) */
    pthread_mutex_t log_lock;  /* one decision line (and hook call) at a time */
    pthread_mutex_t wk_lock;   /* guards workers, n_workers */
    pthread_cond_t wk_cond;    /* signalled when a worker ends */
    struct np_worker *workers; /* running */
    size_t n_workers;
};

/* loop.c */
uint64_t np_now_ms(void);
uint64_t np_now_us(void);
struct np_session *np_session_get(struct np_proxy *p, const char *id, bool create);

/* conn.c */
void np_conn_accept(struct np_proxy *p, struct np_listener *l);
void np_conn_event(struct np_conn *c, bool is_client, uint32_t events);
void np_conn_pump(struct np_conn *c);
void np_conn_close(struct np_conn *c);
void np_conn_timeout(struct np_conn *c);
void np_conn_resolved(struct np_conn *c);
void np_conn_approval_answer(struct np_conn *c, enum np_verdict v);
/* Starts the decision for c->host/port (policy, approval, DNS, dial). */
void np_conn_decide(struct np_conn *c);
/* Refuses the current request: HTTP status + X-Airlock-Error, or a SOCKS5
 * reply code; logs it and lingers/closes. `why` is logged and, for HTTP,
 * becomes the body (one line). */
void np_conn_refuse(struct np_conn *c, int status, const char *error, uint8_t socks_reply,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Consumes `n` bytes from the front of c->in. */
void np_conn_consume(struct np_conn *c, size_t n);
void np_conn_drop_upstream(struct np_conn *c);
/* Closes every pooled pipe (proxy teardown). */
void np_pipe_pool_free(struct np_proxy *p);

/* http_proxy.c */
void np_http_on_data(struct np_conn *c);
void np_http_on_connected(struct np_conn *c);
void np_http_body_pump(struct np_conn *c);
/* Request rules for the request or tunnel c is about to start, once the
 * domain decision allowed it (or reportOnly let it through): a plain HTTP
 * request to a host with rules has its target normalised (400 bad-path),
 * checked (403 blocked-by-request-rule) and rewritten to the normalised form
 * in c->fwd_head; a tunnel to such a host is refused unless it will be
 * TLS-terminated. With reportOnly a refusal becomes "would-deny" and the
 * request goes on (the raw target is forwarded when it does not normalise).
 * Returns 0 to go on, -1 after refusing. */
int np_http_request_rules(struct np_conn *c);

/* socks_proxy.c */
void np_socks_on_data(struct np_conn *c);
void np_socks_on_connected(struct np_conn *c);

/* plain_creds.c: masked credentials on plain-HTTP requests. _head checks
 * c->fwd_head (a forbidden sentinel refuses the request) and sets up the
 * body scan; _inject (with allow_plaintext_inject) puts the real values into
 * c->fwd_head, called only after the request rules were checked, so no
 * message or log line built from the head holds one; _body scans body bytes
 * about to be forwarded. All return 0, or -1 after refusing the request
 * (np_conn_refuse). */
int np_plain_creds_head(struct np_conn *c);
int np_plain_creds_inject(struct np_conn *c);
/* With c->remask: reads from the upstream `src` instead of splicing,
 * re-masks real values and queues the result in c->down.pend (the held-back
 * tail at the upstream's end of stream). 1 progress, 0 nothing to read (or
 * `src` not ready), -1 error (the caller closes). */
int np_plain_remask_pump(struct np_conn *c, int src, bool *src_ready);
void np_plain_remask_free(struct np_conn *c);
int np_plain_creds_body(struct np_conn *c, const char *data, size_t len);
void np_plain_creds_free(struct np_conn *c);

/* decision_log.c */
void np_log_begin(struct np_conn *c, const char *proxy);
void np_log_finish(struct np_conn *c);
/* Writes one decision line for `l` and calls the decision hook, under the
 * proxy's log_lock: any thread (the loop, terminated-connection workers). */
void np_log_write(struct np_proxy *p, const char *session_id, const char *client,
                  const struct np_logrec *l, uint64_t bytes_up, uint64_t bytes_down);

/* conn.c: hands bytes that arrived before the tunnel to the upstream queue
 * and switches `c` to the raw (spliced) relay. Returns 0, or -1 after closing
 * the connection (out of memory). */
int np_conn_enter_relay(struct np_conn *c);

#endif
