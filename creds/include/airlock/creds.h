/* Scoped tokens: what a sandbox holds instead of a real upstream credential.
 *
 * A token is `alk1.<kid>.<base64url(JSON claims)>.<base64url(HMAC-SHA256)>`,
 * the MAC computed with the key named `kid` over every byte before the last
 * dot. Claims: session, user, repos (canonical "host/owner/name"), push_refs
 * (exact ref names or "prefix/STAR" patterns, STAR being a literal asterisk), ops ("fetch",
 * "push"), iat, exp, jti, kid.
 */
#ifndef AIRLOCK_CREDS_H
#define AIRLOCK_CREDS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "airlock/strlist.h"

#define CREDS_KEY_LEN    32
#define CREDS_TOKEN_MAX  8192 /* longest token accepted by verify */
#define CREDS_CLOCK_SKEW 30   /* seconds of iat/exp tolerance */
#define CREDS_OP_FETCH   0x1u
#define CREDS_OP_PUSH    0x2u

struct creds_claims {
    char *session;
    char *user;
    char *jti;
    char *kid;
    struct al_strlist repos; /* "host/owner/name" */
    struct al_strlist
        push_refs; /* exact, or a "refs/heads/x/" prefix pattern ending in an asterisk */
    unsigned ops;  /* CREDS_OP_* */
    int64_t iat;
    int64_t exp;
};

/* One HMAC key with its id. */
struct creds_key {
    char kid[32];
    unsigned char key[CREDS_KEY_LEN];
};

/* The keys a verifier accepts: keys[0] is current (used to mint), the others
 * (previous ones, during rotation) are accepted for verification only. */
struct creds_keyring {
    struct creds_key keys[4];
    size_t len;
};

/* Answers non-zero when the session or the token id has been revoked. */
typedef int (*creds_revoked_cb)(const char *session, const char *jti, void *payload);

/* Frees the claims' strings; the struct itself belongs to the caller. */
void creds_claims_clear(struct creds_claims *claims);

/* Reads a key file (exactly 32 raw bytes or 64 hex digits) into `out`, under
 * the id `kid`. Refuses a file readable or writable by group or other. */
int creds_key_load(struct creds_key *out, const char *kid, const char *path);

/* Writes 32 random bytes to `path` (mode 0600, must not exist). */
int creds_key_generate(const char *path);

/* Wipes every key. */
void creds_keyring_clear(struct creds_keyring *ring);

/* Mints a token for `claims` with ring->keys[0]; the kid claim is set from the
 * key, a missing jti is generated and a zero iat becomes now. `*out` is
 * allocated; the caller frees it. */
int creds_token_mint(char **out, struct creds_claims *claims, const struct creds_keyring *ring);

/* Verifies `token` (len bytes) at time `now`: format, key id, MAC (constant
 * time), expiry with CREDS_CLOCK_SKEW, then `revoked` (may be NULL). On
 * success fills `out` (caller clears it). Returns 0, AL_EINVAL (malformed),
 * AL_EAUTH (bad MAC, unknown key, expired, not yet valid) or AL_EPERM
 * (revoked); al_error_last() holds a reason safe to show the client. */
int creds_token_verify(struct creds_claims *out, const char *token, size_t len,
                       const struct creds_keyring *ring, time_t now, creds_revoked_cb revoked,
                       void *payload);

/* Decodes the claims without checking the MAC (for `token inspect`). */
int creds_token_decode(struct creds_claims *out, const char *token, size_t len);

/* The entry of claims->repos that names `repo` ("host/owner/name"), or NULL.
 * Whole names only (never a prefix of either). The host parts compare ASCII
 * case-insensitively (DNS names); owner and name byte for byte, or ASCII
 * case-insensitively when `fold_case` is set (an upstream whose names fold
 * case, such as GitHub). The result is borrowed from `claims`: the token's
 * spelling, the one to use upstream when case is folded. */
const char *creds_claims_repo_find(const struct creds_claims *claims, const char *repo,
                                   int fold_case);

/* True when creds_claims_repo_find() finds an entry. */
int creds_claims_allow_repo(const struct creds_claims *claims, const char *repo, int fold_case);

/* True when `ref` matches one of claims->push_refs: equal, or a pattern
 * "p/" followed by an asterisk, and ref starts with "p/" (the rest may hold further slashes). */
int creds_claims_allow_ref(const struct creds_claims *claims, const char *ref);

/* base64url without padding. `*out` is allocated and NUL-terminated. */
int creds_b64url_encode(char **out, const unsigned char *data, size_t len);
int creds_b64url_decode(unsigned char **out, size_t *out_len, const char *s, size_t len);

#endif
