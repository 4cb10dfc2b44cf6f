/* API keys: "alk_" + 64 hex digits, shown once when created and stored only
 * as their SHA-256. A request's "Authorization: Bearer KEY" is hashed and
 * looked up by hash. */
#ifndef ALD_AUTH_H
#define ALD_AUTH_H

#include "airlockd/adapters/store.h"

#define ALD_KEY_LEN 68 /* "alk_" + 64 hex */

/* SHA-256 of `len` bytes. */
void ald_auth_hash(unsigned char out[32], const char *key, size_t len);

/* Creates a new random key: `key_out` (ALD_KEY_LEN + 1 bytes), its id
 * "k_" + 16 hex (`id_out`, 19 bytes) and its hash. 0 or AL_EIO. */
int ald_auth_key_new(char *key_out, char *id_out, unsigned char hash_out[32]);

/* Checks an Authorization header value (may be NULL): 0 and fills `out`, or
 * AL_EAUTH (missing, malformed, unknown or revoked key), AL_EIO. */
int ald_auth_check(struct ald_store *st, const char *header, struct ald_principal *out);

#endif
