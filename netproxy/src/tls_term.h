/* TLS-terminated tunnels (issue 15): per-session TLS and credential state,
 * the hand-off of a tunnel from the event loop to a worker thread, and the
 * request processing of a terminated connection (split out as a pure
 * function for the fuzzer and unit tests). */
#ifndef NP_TLS_TERM_H
#define NP_TLS_TERM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/buf.h"
#include "airlock/credmask.h"
#include "airlock/netpolicy.h"
#include "domain.h"

struct np_conn;
struct np_proxy;
struct np_session;

/* A session's masked credentials (np_proxy_set_credentials), shared by the
 * loop and the workers; reference-counted like struct np_tls. */
struct np_creds {
    atomic_int refs;
    struct al_credset set;
    struct np_rules *inject; /* set.len entries: each credential's inject_hosts */
};

/* A session's policy as the terminated path needs it (request rules,
 * report_only); reference-counted, replaced by np_proxy_set_policy. */
struct np_polsnap {
    atomic_int refs;
    struct al_netpolicy pol;
};

/* A new np_creds (one reference) holding a deep copy of `creds`; with
 * `sentinel_only` no value is kept (each credential's real value is its
 * sentinel: the front of a split proxy). 0 or AL_ENOMEM. */
int np_creds_new(struct np_creds **out, const struct al_credset *creds, bool sentinel_only);
void np_creds_unref(struct np_creds *c);
int np_polsnap_new(struct np_polsnap **out, const struct al_netpolicy *pol);
void np_polsnap_unref(struct np_polsnap *s);

/* Bit i set when credential i may be put back in a request to `host`
 * (normalised name or IP text). */
uint64_t np_creds_inject_mask(const struct np_creds *c, const char *host, bool host_is_ip,
                              uint16_t port);

/* Whether `host` is covered by the policy's tls_exclude (np_domain_pattern_match,
 * ports ignored, as http_proxy.c's tunnel check for hosts with request rules). */
bool np_polsnap_excluded(const struct np_polsnap *s, const char *host, bool host_is_ip,
                         uint16_t port);

/* --- request processing (pure: no I/O) --- */

#define NP_TT_BODY_MAX (1u << 20) /* a request body that must be buffered */

/* What the terminated path knows about a connection while it processes
 * one request head. */
struct np_tt_ctx {
    const char *host; /* CONNECT host (normalised) */
    bool host_is_ip;
    uint16_t port;
    const struct al_netpolicy *pol; /* may be NULL */
    const struct al_credset *creds; /* may be NULL */
    uint64_t inject_ok;             /* np_creds_inject_mask for host */
};

/* The outcome for one request head. */
struct np_tt_req {
    /* refusal: status != 0, with error (X-Airlock-Error) and why (body) */
    int status;
    const char *error;
    char why[640];
    char reason[64];      /* decision reason ("credential-not-allowed-here", ...) */
    char rule[160];       /* request rule that matched (log) */
    bool would_deny;      /* report_only let a rule miss through */
    char method[24];      /* for the log */
    char path[512];       /* normalised, no query; truncated for the log */
    char credential[160]; /* names used or refused ("A,B") */
    uint64_t used;        /* credentials replaced in the head */
    /* success: the head to send upstream and how the body is framed */
    struct al_buf head; /* rewritten head (NP_HTTP_HEAD_MAX + growth) */
    size_t head_len;    /* bytes of input that were the head */
    bool has_body;
    bool chunked;
    uint64_t content_length;
    bool body_subst;      /* json/form body: sentinels are replaced */
    bool rebuffer;        /* buffer the body and send it with a new Content-Length (the head then
                             has no framing header): body_subst and the length may change, or the
                             session has credentials and the body has a Content-Length up to
                             NP_TT_BODY_MAX (so a refused body never lets its head through) */
    bool expect_continue; /* "Expect: 100-continue" with a body: left out of the
                             head; the proxy answers 100 itself and reads the body
                             (the upstream cannot refuse it early) */
    bool close_after;
    bool upgrade;
    bool head_method; /* HEAD: the response has no body */
};

void np_tt_req_init(struct np_tt_req *r);
void np_tt_req_free(struct np_tt_req *r);

/* Processes the request head at the start of buf[0..len) (bytes read from
 * the client of a terminated tunnel): parses it (origin-form), checks the
 * Host header against the tunnel's host, the request rules, and replaces
 * sentinels of credentials allowed for the host. Returns the head length
 * (> 0) with out filled: out->status == 0 means forward out->head;
 * otherwise refuse with out->status/error/why. Returns 0 when more bytes are
 * needed, or AL_ENOMEM. Never puts a real value in any message. */
int np_tt_request_process(const struct np_tt_ctx *ctx, const char *buf, size_t len,
                          struct np_tt_req *out);

/* Fills the refusal of a request that carries credential `culprit`'s
 * sentinel to `host` (403 credential-not-allowed-here, naming it and its
 * hosts). */
void np_tt_cred_refusal(struct np_tt_req *r, const struct al_credset *set, size_t culprit,
                        const char *host);

/* Writes the names of the credentials whose bit is set in `used` ("A,B"). */
void np_tt_cred_names(char *out, size_t cap, const struct al_credset *set, uint64_t used);

/* --- the hand-off (loop thread) --- */

/* Whether the tunnel `c` (policy allowed, upstream connected) must be
 * terminated: 1 when the session has tls_terminate and the host is not
 * excluded, -1 when it should be but the session has no CA (refuse it:
 * 502 tls-not-configured), 0 otherwise (opaque tunnel). Caller holds
 * nothing. */
int np_tt_wanted(struct np_conn *c);

/* Hands `c` (whose upstream is connected and whose success reply is queued
 * in c->down.pend) to a worker thread; `c` is closed on the loop side
 * (without its decision line, which the worker writes when the tunnel
 * ends). Only after np_tt_wanted() said 1. */
void np_tt_start(struct np_conn *c);

/* A split proxy's plain-HTTP request that gets a value (allowPlaintextInject,
 * c->kh_plain): `c`'s connected upstream socket, the head in c->fwd_head
 * (sentinels in place) and the client's body go to a worker thread that
 * hands them to the key holder (OPEN without TLS), relays the answer and
 * closes the connection. `c` is closed on the loop side (its decision line
 * is the worker's). */
void np_tt_start_plain(struct np_conn *c);

/* Ends the workers of `s` (NULL: of every session) by shutting their
 * sockets down. Thread-safe. */
void np_tt_kill(struct np_proxy *p, struct np_session *s);

/* Waits until no worker runs (after np_tt_kill). */
void np_tt_wait(struct np_proxy *p);

/* Number of running workers of `s` (connection limit). */
unsigned np_tt_count(struct np_session *s);

#endif
