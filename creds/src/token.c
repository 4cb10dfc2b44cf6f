#include "airlock/creds.h"
#include "airlock/base64.h"
#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/hex.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds_private.h"

#define TOKEN_PREFIX "alk1."

/* The token's base64url is common/'s (airlock/base64.h): unpadded and
 * canonical, so a token has exactly one spelling. */
int creds_b64url_encode(char **out, const unsigned char *data, size_t len)
{
    *out = al_base64url_encode(data, len);
    return *out ? 0 : AL_ENOMEM;
}

int creds_b64url_decode(unsigned char **out, size_t *out_len, const char *s, size_t len)
{
    *out = NULL;
    *out_len = 0;
    unsigned char *d = malloc(len / 4 * 3 + 3);
    if (!d)
        return AL_ENOMEM;
    long n = al_base64url_decode(d, s, len);
    if (n < 0) {
        free(d);
        return (int)n;
    }
    *out = d;
    *out_len = (size_t)n;
    return 0;
}

void creds_claims_clear(struct creds_claims *claims)
{
    free(claims->session);
    free(claims->user);
    free(claims->jti);
    free(claims->kid);
    al_strlist_free(&claims->repos);
    al_strlist_free(&claims->push_refs);
    memset(claims, 0, sizeof(*claims));
}

int creds_key_load(struct creds_key *out, const char *kid, const char *path)
{
    unsigned char *raw = NULL;
    size_t len = 0;
    int err;
    if (strlen(kid) == 0 || strlen(kid) >= sizeof(out->kid) || strchr(kid, '.'))
        return al_error_set(AL_EINVAL, "key id '%s' must be 1-31 chars without '.'", kid);
    if ((err = creds_file_read_private(&raw, &len, path, 256)) < 0)
        return err;
    /* 32 bytes are the key as they are (creds_key_generate's form): a
     * random key ends in a CR or LF byte once in 128, so line endings are
     * stripped only from the hex form */
    size_t hex_len = len;
    while (len != CREDS_KEY_LEN && hex_len > 0 &&
           (raw[hex_len - 1] == '\n' || raw[hex_len - 1] == '\r'))
        hex_len--;
    if (len == CREDS_KEY_LEN) {
        memcpy(out->key, raw, CREDS_KEY_LEN);
    } else if (hex_len == 2 * CREDS_KEY_LEN) {
        if (al_hex_decode(out->key, (const char *)raw, CREDS_KEY_LEN) < 0) {
            err = al_error_set(AL_EINVAL, "%s: not a 32-byte key", path);
            goto out;
        }
    } else {
        err = al_error_set(AL_EINVAL, "%s: not a 32-byte key", path);
        goto out;
    }
    snprintf(out->kid, sizeof(out->kid), "%s", kid);
out:
    OPENSSL_cleanse(raw, len);
    free(raw);
    return err;
}

int creds_key_generate(const char *path)
{
    unsigned char key[CREDS_KEY_LEN];
    int err = 0;
    if (RAND_bytes(key, sizeof(key)) != 1)
        return al_error_set(AL_ERROR, "RAND_bytes failed");
    cleanup_fd int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = al_error_set_errno(AL_EIO, errno, "%s", path);
        goto out;
    }
    if (write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) || fsync(fd) < 0)
        err = al_error_set_errno(AL_EIO, errno, "%s", path);
out:
    OPENSSL_cleanse(key, sizeof(key));
    return err;
}

void creds_keyring_clear(struct creds_keyring *ring)
{
    OPENSSL_cleanse(ring, sizeof(*ring));
}

static int claims_to_json(char **out, const struct creds_claims *c)
{
    json_t *repos = json_array(), *refs = json_array(), *ops = json_array();
    json_t *root = NULL;
    int err = AL_ENOMEM;
    if (!repos || !refs || !ops)
        goto out;
    for (size_t i = 0; i < c->repos.len; i++)
        json_array_append_new(repos, json_string(c->repos.items[i]));
    for (size_t i = 0; i < c->push_refs.len; i++)
        json_array_append_new(refs, json_string(c->push_refs.items[i]));
    if (c->ops & CREDS_OP_FETCH)
        json_array_append_new(ops, json_string("fetch"));
    if (c->ops & CREDS_OP_PUSH)
        json_array_append_new(ops, json_string("push"));
    root = json_pack("{s:s, s:s, s:O, s:O, s:O, s:I, s:I, s:s, s:s}", "session", c->session, "user",
                     c->user ? c->user : "", "repos", repos, "push_refs", refs, "ops", ops, "iat",
                     (json_int_t)c->iat, "exp", (json_int_t)c->exp, "jti", c->jti, "kid", c->kid);
    if (!root)
        goto out;
    *out = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    err = *out ? 0 : AL_ENOMEM;
out:
    json_decref(repos);
    json_decref(refs);
    json_decref(ops);
    json_decref(root);
    return err;
}

static int strlist_from_json(struct al_strlist *list, json_t *arr, size_t max)
{
    if (!json_is_array(arr) || json_array_size(arr) > max)
        return AL_EINVAL;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 1024)
            return AL_EINVAL;
        if (al_strlist_push(list, json_string_value(v)) < 0)
            return AL_ENOMEM;
    }
    return 0;
}

static int claims_from_json(struct creds_claims *out, const char *data, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *session = NULL, *user = NULL, *jti = NULL, *kid = NULL;
    json_t *repos = NULL, *refs = NULL, *ops = NULL;
    json_int_t iat = 0, exp = 0;
    struct creds_claims c = {0};
    int err = AL_EINVAL;
    if (!root)
        goto out;
    if (json_unpack(root, "{s:s, s?s, s:o, s?o, s:o, s:I, s:I, s:s, s:s}", "session", &session,
                    "user", &user, "repos", &repos, "push_refs", &refs, "ops", &ops, "iat", &iat,
                    "exp", &exp, "jti", &jti, "kid", &kid) < 0)
        goto out;
    if (!*session || !*jti)
        goto out;
    c.session = strdup(session);
    c.user = strdup(user ? user : "");
    c.jti = strdup(jti);
    c.kid = strdup(kid);
    if (!c.session || !c.user || !c.jti || !c.kid) {
        err = AL_ENOMEM;
        goto out;
    }
    if ((err = strlist_from_json(&c.repos, repos, 256)) < 0)
        goto out;
    if (refs && (err = strlist_from_json(&c.push_refs, refs, 256)) < 0)
        goto out;
    if (!json_is_array(ops) || json_array_size(ops) > 4) {
        err = AL_EINVAL;
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(ops, i, v)
    {
        const char *s = json_string_value(v);
        if (s && strcmp(s, "fetch") == 0)
            c.ops |= CREDS_OP_FETCH;
        else if (s && strcmp(s, "push") == 0)
            c.ops |= CREDS_OP_PUSH;
        else {
            err = AL_EINVAL;
            goto out;
        }
    }
    c.iat = iat;
    c.exp = exp;
    *out = c;
    memset(&c, 0, sizeof(c));
    err = 0;
out:
    creds_claims_clear(&c);
    json_decref(root);
    return err;
}

static int token_mac(unsigned char mac[32], const struct creds_key *key, const char *data,
                     size_t len)
{
    unsigned int mac_len = 32;
    if (!HMAC(EVP_sha256(), key->key, CREDS_KEY_LEN, (const unsigned char *)data, len, mac,
              &mac_len))
        return al_error_set(AL_ERROR, "HMAC failed");
    return 0;
}

int creds_token_mint(char **out, struct creds_claims *claims, const struct creds_keyring *ring)
{
    cleanup_free char *json = NULL;
    cleanup_free char *payload = NULL;
    cleanup_free char *mac64 = NULL;
    unsigned char mac[32];
    int err;
    if (ring->len == 0)
        return al_error_set(AL_EINVAL, "no signing key");
    if (!claims->session || !*claims->session)
        return al_error_set(AL_EINVAL, "a token needs a session");
    const struct creds_key *key = &ring->keys[0];
    free(claims->kid);
    if (!(claims->kid = strdup(key->kid)))
        return AL_ENOMEM;
    if (!claims->jti) {
        unsigned char rnd[12];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return al_error_set(AL_ERROR, "RAND_bytes failed");
        if ((err = creds_b64url_encode(&claims->jti, rnd, sizeof(rnd))) < 0)
            return err;
    }
    if (claims->iat == 0)
        claims->iat = time(NULL);
    if ((err = claims_to_json(&json, claims)) < 0)
        return err;
    if ((err = creds_b64url_encode(&payload, (unsigned char *)json, strlen(json))) < 0)
        return err;
    size_t n = strlen(TOKEN_PREFIX) + strlen(key->kid) + 1 + strlen(payload);
    cleanup_free char *signed_part = malloc(n + 1);
    if (!signed_part)
        return AL_ENOMEM;
    snprintf(signed_part, n + 1, TOKEN_PREFIX "%s.%s", key->kid, payload);
    if ((err = token_mac(mac, key, signed_part, n)) < 0)
        return err;
    if ((err = creds_b64url_encode(&mac64, mac, sizeof(mac))) < 0)
        return err;
    size_t total = n + 1 + strlen(mac64) + 1;
    char *tok = malloc(total);
    if (!tok)
        return AL_ENOMEM;
    snprintf(tok, total, "%s.%s", signed_part, mac64);
    *out = tok;
    return 0;
}

/* Splits a token into its parts, all pointing into `token`. */
struct token_parts {
    const char *kid;
    size_t kid_len;
    const char *payload;
    size_t payload_len;
    const char *mac;
    size_t mac_len;
    size_t signed_len;
};

static int token_split(struct token_parts *p, const char *token, size_t len)
{
    size_t plen = strlen(TOKEN_PREFIX);
    if (len > CREDS_TOKEN_MAX)
        return al_error_set(AL_EINVAL, "token too long");
    if (len < plen || memcmp(token, TOKEN_PREFIX, plen) != 0)
        return al_error_set(AL_EINVAL, "not an airlock token");
    const char *s = token + plen, *end = token + len;
    const char *d1 = memchr(s, '.', (size_t)(end - s));
    if (!d1)
        return al_error_set(AL_EINVAL, "malformed token");
    const char *d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1));
    if (!d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)))
        return al_error_set(AL_EINVAL, "malformed token");
    p->kid = s;
    p->kid_len = (size_t)(d1 - s);
    p->payload = d1 + 1;
    p->payload_len = (size_t)(d2 - d1 - 1);
    p->mac = d2 + 1;
    p->mac_len = (size_t)(end - d2 - 1);
    p->signed_len = (size_t)(d2 - token);
    if (p->kid_len == 0 || p->payload_len == 0 || p->mac_len == 0)
        return al_error_set(AL_EINVAL, "malformed token");
    return 0;
}

static int token_decode_payload(struct creds_claims *out, const struct token_parts *p)
{
    unsigned char *json = NULL;
    size_t json_len = 0;
    int err = creds_b64url_decode(&json, &json_len, p->payload, p->payload_len);
    if (err < 0)
        return al_error_set(AL_EINVAL, "malformed token");
    err = claims_from_json(out, (char *)json, json_len);
    free(json);
    if (err < 0)
        return al_error_set(err, "malformed token claims");
    return 0;
}

int creds_token_decode(struct creds_claims *out, const char *token, size_t len)
{
    struct token_parts p;
    int err = token_split(&p, token, len);
    if (err < 0)
        return err;
    return token_decode_payload(out, &p);
}

int creds_token_verify(struct creds_claims *out, const char *token, size_t len,
                       const struct creds_keyring *ring, time_t now, creds_revoked_cb revoked,
                       void *payload)
{
    struct token_parts p;
    struct creds_claims c = {0};
    unsigned char mac[32];
    unsigned char *given = NULL;
    size_t given_len = 0;
    const struct creds_key *key = NULL;
    int err = token_split(&p, token, len);
    if (err < 0)
        return err;
    for (size_t i = 0; i < ring->len; i++) {
        if (strlen(ring->keys[i].kid) == p.kid_len &&
            memcmp(ring->keys[i].kid, p.kid, p.kid_len) == 0)
            key = &ring->keys[i];
    }
    if (!key)
        return al_error_set(AL_EAUTH, "token signed with an unknown key");
    if ((err = token_mac(mac, key, token, p.signed_len)) < 0)
        return err;
    if (creds_b64url_decode(&given, &given_len, p.mac, p.mac_len) < 0 || given_len != sizeof(mac) ||
        CRYPTO_memcmp(given, mac, sizeof(mac)) != 0) {
        err = al_error_set(AL_EAUTH, "token signature invalid");
        goto out;
    }
    /* Only authenticated bytes are parsed as claims from here on. */
    if ((err = token_decode_payload(&c, &p)) < 0)
        goto out;
    if (strlen(c.kid) != p.kid_len || memcmp(c.kid, p.kid, p.kid_len) != 0) {
        err = al_error_set(AL_EAUTH, "token key id mismatch");
        goto out;
    }
    if ((int64_t)now > c.exp + CREDS_CLOCK_SKEW) {
        err = al_error_set(AL_EAUTH, "token expired");
        goto out;
    }
    if ((int64_t)now + CREDS_CLOCK_SKEW < c.iat) {
        err = al_error_set(AL_EAUTH, "token not yet valid");
        goto out;
    }
    if (revoked && revoked(c.session, c.jti, payload)) {
        err = al_error_set(AL_EPERM, "token revoked");
        goto out;
    }
    *out = c;
    memset(&c, 0, sizeof(c));
out:
    creds_claims_clear(&c);
    free(given);
    OPENSSL_cleanse(mac, sizeof(mac));
    return err;
}

/* a[0..len) and b[0..len) equal, ASCII case aside (whatever the locale). */
static int equal_fold(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}

/* `claim` names `repo`: same length; host (up to the first '/') folded,
 * the rest exact unless fold_case. */
static int repo_equal(const char *claim, const char *repo, int fold_case)
{
    size_t len = strlen(repo);
    if (strlen(claim) != len)
        return 0;
    const char *slash = memchr(repo, '/', len);
    size_t hlen = slash ? (size_t)(slash - repo) : len;
    if (!equal_fold(claim, repo, hlen))
        return 0;
    return fold_case ? equal_fold(claim + hlen, repo + hlen, len - hlen)
                     : memcmp(claim + hlen, repo + hlen, len - hlen) == 0;
}

const char *creds_claims_repo_find(const struct creds_claims *claims, const char *repo,
                                   int fold_case)
{
    for (size_t i = 0; i < claims->repos.len; i++)
        if (repo_equal(claims->repos.items[i], repo, fold_case))
            return claims->repos.items[i];
    return NULL;
}

int creds_claims_allow_repo(const struct creds_claims *claims, const char *repo, int fold_case)
{
    return creds_claims_repo_find(claims, repo, fold_case) != NULL;
}

int creds_claims_allow_ref(const struct creds_claims *claims, const char *ref)
{
    for (size_t i = 0; i < claims->push_refs.len; i++) {
        const char *pat = claims->push_refs.items[i];
        size_t n = strlen(pat);
        if (n >= 2 && strcmp(pat + n - 2, "/*") == 0) {
            if (strncmp(ref, pat, n - 1) == 0 && ref[n - 1] != '\0')
                return 1;
        } else if (strcmp(pat, ref) == 0) {
            return 1;
        }
    }
    return 0;
}
