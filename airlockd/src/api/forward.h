/* Forwarding between cluster nodes (docs/cluster.md "Forwarding"): a
 * request for a session another node holds is sent there, signed
 * (adapters/peer.h), over a new TCP connection, and the answer is streamed
 * back as it comes (JSON, exec streams, process output, files, SSE), or
 * spliced both ways (the tty WebSocket). The receiving side (the peer
 * listener, http.c) checks the signature in begin. Private to src/api. */
#ifndef ALD_API_FORWARD_H
#define ALD_API_FORWARD_H

#include "request.h"

#include "airlock/buf.h"

/* Loads the cluster key and makes the nonce guard (cluster mode only;
 * ald_http_start calls it before starting the peer listener). 0 or a
 * negative AL_E* with al_error_last() set. */
int ald_forward_init(struct ald *d);
/* Frees what ald_forward_init made (safe when it did not run). */
void ald_forward_fini(void);

/* On the peer listener, in begin: checks the request's signature headers.
 * 0: r->who is the principal the entry node sent, r->peer is set and the
 * body's hash is checked when the body is in (ald_peer_body_check).
 * Otherwise the request has its reply queued (401 "node signature", 503
 * when the nonce set is full) and a non-zero is returned. */
int ald_peer_auth(struct ald_req *r);
/* Feeds a chunk of a peer request's body to its hash. */
void ald_peer_body_update(struct ald_req *r, const void *data, size_t len);
/* Once a peer request's body is in: 0 when its hash is the signed one; else
 * the reply (401) is queued and non-zero returned. */
int ald_peer_body_check(struct ald_req *r);

/* Whether the session of the URL's first param is held by another node
 * (its row live and naming another node): 1 with node and addr filled, 0
 * when it is local, unknown or the request came from a peer (never
 * forwarded twice). Single machine: always 0, without a store call. */
int ald_forward_owner(struct ald_req *r, char node[64], char addr[128]);

/* Sends the request (method, raw URI, the buffered body r->body, the
 * headers the routes read) to node `node` at `addr` and relays its answer:
 * status, a few headers, the body streamed. An Upgrade: websocket request
 * is spliced both ways once the owner answers 101. When the owner does not
 * answer: 503 "unavailable" naming the node. Always queues a reply. */
enum MHD_Result ald_forward(struct ald_req *r, const char *node, const char *addr);

/* Opens a signed GET of `uri` (an event stream) on node `node` at `addr`
 * with Last-Event-ID `last_event_id` (or none) and reads its head. 0 with
 * *fd (the body follows; the bytes already read after the head in *pre,
 * *pre_len, freed by the caller), or AL_EIO when the node does not answer
 * 200. Replies nothing. */
int ald_forward_open(struct ald_req *r, const char *node, const char *addr, const char *uri,
                     const char *last_event_id, int *fd, char **pre, size_t *pre_len);

/* The second half of a create placed on another node: the original body to
 * POST /internal/v1/sessions/{id}/start there, the answer relayed. When
 * the node cannot be reached, returns AL_EIO without replying (the caller
 * may place elsewhere); else 0 with the reply queued (*ret its result). */
int ald_forward_start(struct ald_req *r, const char *node, const char *addr, const char *id,
                      enum MHD_Result *ret);

/* Upload hooks that replace a route's own when the session is remote (file
 * PUT): the body is spooled to an unlinked file in <state_dir>/tmp while
 * hashed, then sent with its length by ald_forward_upload_finish (called
 * instead of the route's handler). The target is r->fwd_node/fwd_addr. */
extern const struct ald_upload_ops ald_forward_upload_ops;
enum MHD_Result ald_forward_upload_finish(struct ald_req *r);
/* The request ended before its forwarded WebSocket (r->fwd_upgrade) was
 * handed over: closes the owner's connection. */
void ald_forward_ws_abandoned(void *ws);

/* Counters for /metrics (W4 renders them): appends the lines of
 * airlock_forward_requests_total{route_kind,result} and
 * airlock_peer_auth_failures_total{reason} with HELP/TYPE to b. 0 or
 * AL_ENOMEM. */
int ald_forward_metrics_render(struct al_buf *b);

/* A forwarded request's kind for the metrics label. */
enum ald_fwd_kind {
    ALD_FWD_PLAIN,
    ALD_FWD_STREAM, /* exec, process output, events */
    ALD_FWD_UPLOAD,
    ALD_FWD_WEBSOCKET,
    ALD_FWD_START,
    ALD_FWD_KINDS
};

/* GET /internal/v1/node and POST /internal/v1/sessions/{id}/start
 * (routes_internal.c; peer listener only). */
enum MHD_Result ald_route_internal_node(struct ald_req *r);
enum MHD_Result ald_route_internal_start(struct ald_req *r);

#endif
