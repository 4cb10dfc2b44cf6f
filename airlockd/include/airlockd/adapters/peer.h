/* Node-to-node requests (docs/cluster.md "Forwarding"): HMAC-SHA256 over
 * the method, the raw URI, the time, a nonce, the sending node, the
 * principal and the body's hash, with a key derived from the cluster key.
 * The receiver checks the signature in constant time, the time within
 * 30 s and the nonce once. */
#ifndef ALD_ADAPTERS_PEER_H
#define ALD_ADAPTERS_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "airlockd/core/principal.h"

#include "airlock/strlist.h"

#define ALD_PEER_SKEW_MS 30000

/* Reads the cluster key file (root-owned, not group/other readable, at
 * least 32 bytes) and derives the request key into k_req. */
int ald_peer_key_load(const char *path, unsigned char k_req[32]);

/* The headers (X-Airlock-Node, -Time, -Nonce, -Principal, -Body-SHA256,
 * -Signature), each "Name: value", appended to headers_out. */
int ald_peer_sign(const unsigned char k_req[32], const char *node, const char *method,
                  const char *uri, const struct ald_principal *who,
                  const unsigned char body_sha[32], const char *upgrade,
                  struct al_strlist *headers_out);

/* The nonce guard (one per listener). */
struct ald_peer_guard;
int ald_peer_guard_new(struct ald_peer_guard **out);
void ald_peer_guard_free(struct ald_peer_guard *g);

/* Checks a request's headers (hdr(cls, name) returns a header or NULL).
 * 0: *who is the principal, want_body_sha the hash the body must have,
 * node_out the sender; AL_EAUTH otherwise (al_error_last says which check,
 * for the log only). */
int ald_peer_verify(struct ald_peer_guard *g, const unsigned char k_req[32], const char *method,
                    const char *uri, const char *(*hdr)(void *cls, const char *name), void *cls,
                    struct ald_principal *who, unsigned char want_body_sha[32], char node_out[64]);

/* A TCP connection to "HOST:PORT" within timeout_ms: the fd, or a negative
 * AL_E*. */
int ald_peer_connect(const char *address, unsigned timeout_ms);

#endif
