/* The HTTP layer inside the api (private to src/api): libmicrohttpd with a thread per connection,
 * the route table, authentication, body limits, JSON replies and errors, audit. */
#ifndef ALD_API_REQUEST_H
#define ALD_API_REQUEST_H

#include <microhttpd.h>

#include "airlockd/adapters/store.h"
#include "airlockd/api/body.h"
#include "airlockd/api/http.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/process.h"
#include "airlockd/core/session.h"

#include "airlock/buf.h"

enum ald_body_kind {
    ALD_BODY_NONE,   /* any body is read and ignored (bounded) */
    ALD_BODY_JSON,   /* application/json, at most max_body_bytes */
    ALD_BODY_RAW,    /* any type, at most max_body_bytes */
    ALD_BODY_UPLOAD, /* streamed to the route's upload hooks, max_upload_bytes */
};

struct ald_req;

typedef enum MHD_Result (*ald_handler_fn)(struct ald_req *r);

/* Streaming upload hooks (ALD_BODY_UPLOAD): begin runs once the headers are
 * in (it may queue an error reply and return non-zero), write for each
 * chunk (non-zero: stop and reply with r->err), end replies. */
struct ald_upload_ops {
    int (*begin)(struct ald_req *r);
    int (*write)(struct ald_req *r, const char *data, size_t len);
    void (*abort)(struct ald_req *r);
};

struct ald_route {
    const char *method;
    const char *pattern; /* "*" matches one segment, "**" the rest */
    enum ald_body_kind body;
    int auth; /* needs a key */
    ald_handler_fn handler;
    const struct ald_upload_ops *upload;
    unsigned on; /* ALD_ON_API and/or ALD_ON_PEER: the listeners that serve it */
};

#define ALD_ON_API  1u /* the API listener (API keys) */
#define ALD_ON_PEER 2u /* a cluster node's node-to-node listener (node signatures) */

struct ald_req {
    struct ald *d;
    struct MHD_Connection *conn;
    char *raw_uri;
    const char *method;
    const struct ald_route *route;
    char *params[3]; /* percent-decoded "*" / "**" parts, in order */
    int param_bad;   /* a param could not be decoded */
    struct ald_principal who;
    int authed;
    struct al_buf body;
    uint64_t body_limit, received;
    int started, replied, too_large, audited;
    int status;
    char session[32]; /* for the audit row */
    /* a command whose exit this request applied: saved with the audit row,
     * in one transaction (not owned: the request holds a reference) */
    struct ald_proc *exit_proc;
    void *upload;  /* the upload hooks' state */
    void *upgrade; /* a WebSocket queued and not yet handed over (routes_tty.c) */
    /* cluster (forward.c): the request came over the peer listener, signed by
     * node peer_node, and its body must hash to peer_body_sha */
    int on_peer; /* arrived on the peer listener */
    int peer;
    char peer_node[64];
    unsigned char peer_body_sha[32];
    struct evp_md_ctx_st *peer_hash;
    /* the upload hooks in use: the route's, or ald_forward_upload_ops when
     * the session is on node fwd_node (fwd_addr) */
    const struct ald_upload_ops *upload_ops;
    char fwd_node[64], fwd_addr[128];
    void *fwd_upgrade; /* a forwarded WebSocket not yet handed over (forward.c) */
    struct ald_apierr err;
};

/* Room for a request's id (or method, query argument name) quoted with
 * ald_str_quote for an error message: 64 bytes of it at worst. */
#define ALD_QUOTED_ID 260

/* A store call failed with `err`: 503 "unavailable" when the database
 * cannot be reached or ran out of time (AL_EAGAIN), else 500; the message
 * is al_error_last(). */
enum MHD_Result ald_reply_store_error(struct ald_req *r, int err);

/* Replies with `body` (reference stolen) as JSON; when `body` is NULL or
 * cannot be encoded, with a fixed 500 "internal" error (still JSON). */
enum MHD_Result ald_reply_json(struct ald_req *r, int status, json_t *body);
/* A create's answer (`body` stolen, as ald_reply_json): 201, or 200 with
 * `Idempotent-Replayed: true` when `replayed` (an Idempotency-Key seen
 * before with the same body). */
enum MHD_Result ald_reply_created(struct ald_req *r, json_t *body, int replayed);
/* A list page: 200 {key: rows, "next_cursor": "<next>" or null when `next`
 * is 0}; `rows` stolen. */
enum MHD_Result ald_reply_page(struct ald_req *r, const char *key, json_t *rows, int64_t next);
/* Replies with the error in `e`: its message and field with any invalid
 * UTF-8 scrubbed (ald_utf8_scrub); should the JSON still fail, with e's
 * status and code and a fixed message. Never "out of memory" for an
 * encoding failure. */
enum MHD_Result ald_reply_apierr(struct ald_req *r, const struct ald_apierr *e);
/* The api's error for a refusal of core (its kind's HTTP status). */
void ald_apierr_from_fault(struct ald_apierr *e, const struct ald_fault *f);
/* Replies with the refusal in `f` (ald_apierr_from_fault). */
enum MHD_Result ald_reply_fault(struct ald_req *r, const struct ald_fault *f);
/* Replies with an error built from the arguments. */
enum MHD_Result ald_reply_error(struct ald_req *r, int status, const char *code, const char *field,
                                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Queues a prepared response (adds the status for metrics and audit). */
enum MHD_Result ald_reply(struct ald_req *r, int status, struct MHD_Response *resp);

/* A query argument (decoded by MHD) or NULL. */
const char *ald_req_arg(struct ald_req *r, const char *name);
/* A request header or NULL. */
const char *ald_req_header(struct ald_req *r, const char *name);
/* The connection's socket (for noticing a client that went away). */
int ald_req_socket(struct ald_req *r);

/* What a route helper did about the request's reply: whether it queued
 * one already (an error), so that the route must not reply again. */
enum ald_reply_state {
    ALD_NOT_REPLIED,
    ALD_REPLIED,
};

/* Finds the live session of the first URL param visible to the caller
 * (ref taken), or replies 404 (ended sessions: 409 when `need_ready`,
 * else NULL with *replied ALD_NOT_REPLIED so the caller looks in the
 * store). */
struct ald_session *ald_req_session(struct ald_req *r, int need_ready,
                                    enum ald_reply_state *replied);

/* ---- route handlers (routes_*.c) ---- */
enum MHD_Result ald_route_healthz(struct ald_req *r);
enum MHD_Result ald_route_metrics(struct ald_req *r);
enum MHD_Result ald_route_session_create(struct ald_req *r);
enum MHD_Result ald_route_session_list(struct ald_req *r);
enum MHD_Result ald_route_session_get(struct ald_req *r);
enum MHD_Result ald_route_session_policy(struct ald_req *r);
enum MHD_Result ald_route_session_policy_get(struct ald_req *r);
enum MHD_Result ald_route_session_delete(struct ald_req *r);
enum MHD_Result ald_route_session_keepalive(struct ald_req *r);
enum MHD_Result ald_route_exec(struct ald_req *r);
enum MHD_Result ald_route_proc_list(struct ald_req *r);
enum MHD_Result ald_route_proc_get(struct ald_req *r);
enum MHD_Result ald_route_proc_output(struct ald_req *r);
enum MHD_Result ald_route_proc_signal(struct ald_req *r);
enum MHD_Result ald_route_proc_stdin(struct ald_req *r);
enum MHD_Result ald_route_proc_resize(struct ald_req *r);
enum MHD_Result ald_route_proc_tty(struct ald_req *r);
/* The API key a browser sends in Sec-WebSocket-Protocol (a protocol named
 * "airlock.bearer.KEY", offered beside "airlock.v1"), as an Authorization
 * value "Bearer KEY" in out. 0, AL_ENOTFOUND (none), AL_ETOOBIG. */
int ald_ws_bearer_from_protocol(const char *protocols, char *out, size_t cap);
/* The request ends with its WebSocket (r->upgrade) never handed over (the
 * connection broke before the 101 went out): frees it, gives the terminal
 * back. */
void ald_ws_abandoned(void *upgrade);
enum MHD_Result ald_route_approval_list(struct ald_req *r);
enum MHD_Result ald_route_approval_decide(struct ald_req *r);
enum MHD_Result ald_route_file_get(struct ald_req *r);
enum MHD_Result ald_route_file_put(struct ald_req *r);
enum MHD_Result ald_route_file_delete(struct ald_req *r);
enum MHD_Result ald_route_events(struct ald_req *r);
enum MHD_Result ald_route_webhook_deliveries(struct ald_req *r);
/* GET /v1/audit, /v1/me, /v1/admin/users, /v1/admin/keys (routes_audit.c). */
enum MHD_Result ald_route_audit(struct ald_req *r);
enum MHD_Result ald_route_me(struct ald_req *r);
enum MHD_Result ald_route_admin_users(struct ald_req *r);
enum MHD_Result ald_route_admin_keys(struct ald_req *r);
/* GET /console and /console/...: the web console's files (console.c). */
enum MHD_Result ald_route_console(struct ald_req *r);
extern const struct ald_upload_ops ald_file_upload_ops;
enum MHD_Result ald_route_job_create(struct ald_req *r);
enum MHD_Result ald_route_job_list(struct ald_req *r);
enum MHD_Result ald_route_job_get(struct ald_req *r);
enum MHD_Result ald_route_job_output(struct ald_req *r);
enum MHD_Result ald_route_job_cancel(struct ald_req *r);
enum MHD_Result ald_route_hook_github(struct ald_req *r);

#endif
