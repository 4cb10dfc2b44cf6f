/* Node-to-node requests (docs/cluster.md "Forwarding"): HMAC-SHA256 over
 * the method, the raw URI, the time, a nonce, the sending node, the
 * receiving node, the principal and the body's hash, with a key derived
 * from the cluster key (a request signed for one node is refused by every
 * other one, so it cannot be replayed there).
 * The receiver checks the signature in constant time, the time within
 * 30 s and the nonce once. */
#ifndef ALD_ADAPTERS_PEER_H
#define ALD_ADAPTERS_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "airlockd/core/principal.h"

#include "airlock/strlist.h"

#define ALD_PEER_SKEW_MS       30000
#define ALD_PEER_NONCES_MAX    200000 /* the nonce guard's default capacity */
#define ALD_PEER_PRINCIPAL_MAX 2048   /* bytes of the X-Airlock-Principal header */

/* Reads the cluster key file (a regular file owned by root, not readable or
 * writable by group or others, 32 to 4096 bytes; its bytes are the key) and
 * derives the request key K_req = HMAC-SHA256(key, "airlock node request
 * v1") into k_req. 0, AL_EINVAL (bad owner, mode or size) or AL_EIO. */
int ald_peer_key_load(const char *path, unsigned char k_req[32]);

/* The headers (X-Airlock-Node, -Time, -Nonce, -Principal, -Body-SHA256,
 * -Signature), each "Name: value", appended to headers_out; the time is
 * now and the nonce random. `node` is the sender, `to` the node the
 * request is for (signed, not sent: the receiver signs with its own id).
 * `upgrade` is the request's Upgrade header or NULL. 0, AL_EINVAL (a bad
 * node id), AL_ENOMEM or AL_EIO (getrandom). */
int ald_peer_sign(const unsigned char k_req[32], const char *node, const char *to,
                  const char *method, const char *uri, const struct ald_principal *who,
                  const unsigned char body_sha[32], const char *upgrade,
                  struct al_strlist *headers_out);

/* ald_peer_sign with a given time and nonce (32 lowercase hex digits):
 * test vectors. */
int ald_peer_sign_at(const unsigned char k_req[32], const char *node, const char *to,
                     const char *method, const char *uri, const struct ald_principal *who,
                     const unsigned char body_sha[32], const char *upgrade, uint64_t time_ms,
                     const char *nonce, struct al_strlist *headers_out);

/* The nonce guard (one per listener): nonces seen within the allowed skew.
 * `cap` entries at most (0: ALD_PEER_NONCES_MAX); expired ones are swept
 * when it fills. */
struct ald_peer_guard;
int ald_peer_guard_new(size_t cap, struct ald_peer_guard **out);
void ald_peer_guard_free(struct ald_peer_guard *g);

/* Checks a request's headers (hdr(cls, name) returns a header or NULL) at
 * the receiver's time now_ms; `self` is the receiver's node id, which the
 * signature must name (NULL: refused). 0: *who is the principal, want_body_sha the
 * hash the body must have, node_out the sender, and the nonce is recorded.
 * AL_EAUTH when a check fails (al_error_last says which, for the log only;
 * *reason is a static metrics label: "missing", "malformed", "signature",
 * "skew", "replay"); AL_EAGAIN when the nonce set is full ("full"). The
 * signature is checked before the nonce is recorded, so an unsigned
 * request cannot fill the set. Thread-safe. */
int ald_peer_verify(struct ald_peer_guard *g, const unsigned char k_req[32], const char *self,
                    const char *method, const char *uri, const char *upgrade,
                    const char *(*hdr)(void *cls, const char *name), void *cls, uint64_t now_ms,
                    struct ald_principal *who, unsigned char want_body_sha[32], char node_out[64],
                    const char **reason);

/* A TCP connection to "HOST:PORT" (numeric host, or a name resolved with
 * getaddrinfo) within timeout_ms: the fd (blocking, CLOEXEC), or a negative
 * AL_E* (AL_EIO: refused or timed out; al_error_last says). */
int ald_peer_connect(const char *address, unsigned timeout_ms);

#endif
