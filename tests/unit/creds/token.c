#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "airlock/creds.h"
#include "airlock/error.h"

static void ring_init(struct creds_keyring *ring, const char *kid, unsigned char fill)
{
    memset(ring, 0, sizeof(*ring));
    snprintf(ring->keys[0].kid, sizeof(ring->keys[0].kid), "%s", kid);
    memset(ring->keys[0].key, fill, CREDS_KEY_LEN);
    ring->len = 1;
}

/* Mints a token for session s1 valid from iat for ttl seconds. */
static char *mint(const struct creds_keyring *ring, int64_t iat, int64_t ttl)
{
    struct creds_claims c = {0};
    char *tok = NULL;
    c.session = strdup("s1");
    c.user = strdup("alice");
    al_strlist_push(&c.repos, "github.com/Org/Repo");
    al_strlist_push(&c.push_refs, "refs/heads/agent/*");
    al_strlist_push(&c.push_refs, "refs/heads/exact");
    c.ops = CREDS_OP_FETCH | CREDS_OP_PUSH;
    c.iat = iat;
    c.exp = iat + ttl;
    assert_int_equal(creds_token_mint(&tok, &c, ring), 0);
    creds_claims_clear(&c);
    return tok;
}

static void round_trip(void **state)
{
    struct creds_keyring ring;
    struct creds_claims c = {0};
    ring_init(&ring, "k1", 7);
    char *tok = mint(&ring, 1000, 600);
    assert_true(strncmp(tok, "alk1.k1.", 8) == 0);
    assert_int_equal(creds_token_verify(&c, tok, strlen(tok), &ring, 1100, NULL, NULL), 0);
    assert_string_equal(c.session, "s1");
    assert_string_equal(c.user, "alice");
    assert_string_equal(c.kid, "k1");
    assert_int_equal(c.ops, CREDS_OP_FETCH | CREDS_OP_PUSH);
    assert_true(creds_claims_allow_repo(&c, "github.com/Org/Repo", 0));
    assert_true(creds_claims_allow_repo(&c, "github.com/org/repo", 1));
    assert_false(creds_claims_allow_repo(&c, "github.com/org/repo", 0));
    assert_false(creds_claims_allow_repo(&c, "github.com/org/other", 1));
    assert_true(creds_claims_allow_ref(&c, "refs/heads/agent/x"));
    assert_true(creds_claims_allow_ref(&c, "refs/heads/agent/x/y"));
    assert_false(creds_claims_allow_ref(&c, "refs/heads/agent/"));
    assert_false(creds_claims_allow_ref(&c, "refs/heads/agentx"));
    assert_true(creds_claims_allow_ref(&c, "refs/heads/exact"));
    assert_false(creds_claims_allow_ref(&c, "refs/heads/exact2"));
    assert_false(creds_claims_allow_ref(&c, "refs/heads/main"));
    creds_claims_clear(&c);
    free(tok);
}

static void tampered_tokens_fail(void **state)
{
    struct creds_keyring ring;
    struct creds_claims c = {0};
    ring_init(&ring, "k1", 7);
    char *tok = mint(&ring, 1000, 600);
    size_t len = strlen(tok);
    /* Flip every character in turn: each must fail verification. */
    for (size_t i = 0; i < len; i++) {
        char *t = strdup(tok);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        int err = creds_token_verify(&c, t, len, &ring, 1100, NULL, NULL);
        assert_true(err == AL_EAUTH || err == AL_EINVAL);
        free(t);
    }
    /* Truncations and extensions. */
    for (size_t i = 0; i < len; i++)
        assert_true(creds_token_verify(&c, tok, i, &ring, 1100, NULL, NULL) < 0);
    char *longer = malloc(len + 2);
    snprintf(longer, len + 2, "%sA", tok);
    assert_true(creds_token_verify(&c, longer, len + 1, &ring, 1100, NULL, NULL) < 0);
    free(longer);
    free(tok);
}

static void wrong_key_fails(void **state)
{
    struct creds_keyring ring, other;
    struct creds_claims c = {0};
    ring_init(&ring, "k1", 7);
    ring_init(&other, "k1", 8);
    char *tok = mint(&ring, 1000, 600);
    assert_int_equal(creds_token_verify(&c, tok, strlen(tok), &other, 1100, NULL, NULL), AL_EAUTH);
    assert_string_equal(al_error_last(), "token signature invalid");
    free(tok);
}

static void expiry_with_skew(void **state)
{
    struct creds_keyring ring;
    struct creds_claims c = {0};
    ring_init(&ring, "k1", 7);
    char *tok = mint(&ring, 1000, 600);
    size_t n = strlen(tok);
    assert_int_equal(creds_token_verify(&c, tok, n, &ring, 1600 + CREDS_CLOCK_SKEW, NULL, NULL), 0);
    creds_claims_clear(&c);
    assert_int_equal(creds_token_verify(&c, tok, n, &ring, 1601 + CREDS_CLOCK_SKEW, NULL, NULL),
                     AL_EAUTH);
    assert_string_equal(al_error_last(), "token expired");
    assert_int_equal(creds_token_verify(&c, tok, n, &ring, 1000 - CREDS_CLOCK_SKEW, NULL, NULL), 0);
    creds_claims_clear(&c);
    assert_int_equal(creds_token_verify(&c, tok, n, &ring, 999 - CREDS_CLOCK_SKEW, NULL, NULL),
                     AL_EAUTH);
    assert_string_equal(al_error_last(), "token not yet valid");
    free(tok);
}

static void rotation_accepts_previous_key(void **state)
{
    struct creds_keyring old_ring, ring;
    struct creds_claims c = {0};
    ring_init(&old_ring, "k1", 7);
    char *old_tok = mint(&old_ring, 1000, 600);
    /* New current key k2, previous k1 still accepted. */
    ring_init(&ring, "k2", 9);
    ring.keys[1] = old_ring.keys[0];
    ring.len = 2;
    char *new_tok = mint(&ring, 1000, 600);
    assert_true(strncmp(new_tok, "alk1.k2.", 8) == 0);
    assert_int_equal(creds_token_verify(&c, old_tok, strlen(old_tok), &ring, 1100, NULL, NULL), 0);
    creds_claims_clear(&c);
    assert_int_equal(creds_token_verify(&c, new_tok, strlen(new_tok), &ring, 1100, NULL, NULL), 0);
    creds_claims_clear(&c);
    /* Once k1 is retired, its tokens fail. */
    ring.len = 1;
    assert_int_equal(creds_token_verify(&c, old_tok, strlen(old_tok), &ring, 1100, NULL, NULL),
                     AL_EAUTH);
    /* A token claiming k2 but signed with k1 fails. */
    char *forged = strdup(old_tok);
    forged[6] = '2';
    assert_int_equal(creds_token_verify(&c, forged, strlen(forged), &ring, 1100, NULL, NULL),
                     AL_EAUTH);
    free(forged);
    free(old_tok);
    free(new_tok);
}

static int revoke_s1(const char *session, const char *jti, void *payload)
{
    (*(int *)payload)++;
    return strcmp(session, "s1") == 0;
}

static void revocation_hook(void **state)
{
    struct creds_keyring ring;
    struct creds_claims c = {0};
    int calls = 0;
    ring_init(&ring, "k1", 7);
    char *tok = mint(&ring, 1000, 600);
    assert_int_equal(creds_token_verify(&c, tok, strlen(tok), &ring, 1100, revoke_s1, &calls),
                     AL_EPERM);
    assert_int_equal(calls, 1);
    free(tok);
}

static void malformed_inputs(void **state)
{
    struct creds_keyring ring;
    struct creds_claims c = {0};
    ring_init(&ring, "k1", 7);
    const char *bad[] = {"",
                         "alk1.",
                         "alk1...",
                         "alk1.k1..",
                         "alk1.k1.e30.",
                         "alk2.k1.e30.AAAA",
                         "alk1.k1.e30.AAAA.AAAA",
                         "alk1.nokey.e30.AAAA",
                         "ghp_xxxxxxxx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_true(creds_token_verify(&c, bad[i], strlen(bad[i]), &ring, 1100, NULL, NULL) < 0);
    char *huge = malloc(CREDS_TOKEN_MAX + 10);
    memset(huge, 'A', CREDS_TOKEN_MAX + 9);
    memcpy(huge, "alk1.k1.", 8);
    huge[CREDS_TOKEN_MAX + 9] = '\0';
    assert_int_equal(creds_token_verify(&c, huge, strlen(huge), &ring, 1100, NULL, NULL),
                     AL_EINVAL);
    free(huge);
}

static void b64url_round_trip(void **state)
{
    unsigned char data[64];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(data); n++) {
        char *enc;
        unsigned char *dec;
        size_t dec_len;
        assert_int_equal(creds_b64url_encode(&enc, data, n), 0);
        assert_null(strchr(enc, '='));
        assert_int_equal(creds_b64url_decode(&dec, &dec_len, enc, strlen(enc)), 0);
        assert_int_equal(dec_len, n);
        assert_memory_equal(dec, data, n);
        free(enc);
        free(dec);
    }
    unsigned char *dec;
    size_t dec_len;
    assert_int_equal(creds_b64url_decode(&dec, &dec_len, "A", 1), AL_EINVAL);
    assert_int_equal(creds_b64url_decode(&dec, &dec_len, "AB", 2), AL_EINVAL); /* stray bits */
    assert_int_equal(creds_b64url_decode(&dec, &dec_len, "a+b/", 4), AL_EINVAL);
}

/* Writes `len` bytes to a fresh 0600 file; returns its path (static). */
static const char *key_file(const void *data, size_t len)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/airlock-keyfile-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

static void load(const void *data, size_t len, int want, const unsigned char *key)
{
    const char *path = key_file(data, len);
    struct creds_key k;
    int err = creds_key_load(&k, "k1", path);
    unlink(path);
    assert_int_equal(err < 0 ? -1 : 0, want);
    if (want == 0)
        assert_memory_equal(k.key, key, CREDS_KEY_LEN);
}

static void key_file_forms(void **state)
{
    (void)state;
    unsigned char key[CREDS_KEY_LEN];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (unsigned char)(0xa0 + i);
    /* raw: a key whose last byte is LF or CR is the key, not a line ending */
    key[CREDS_KEY_LEN - 1] = '\n';
    load(key, sizeof(key), 0, key);
    key[CREDS_KEY_LEN - 1] = '\r';
    load(key, sizeof(key), 0, key);
    key[CREDS_KEY_LEN - 2] = '\r';
    key[CREDS_KEY_LEN - 1] = '\n';
    load(key, sizeof(key), 0, key);
    /* hex, with or without a line ending */
    char hex[2 * CREDS_KEY_LEN + 3];
    for (size_t i = 0; i < CREDS_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    load(hex, 2 * CREDS_KEY_LEN, 0, key);
    memcpy(hex + 2 * CREDS_KEY_LEN, "\r\n", 3);
    load(hex, 2 * CREDS_KEY_LEN + 2, 0, key);
    /* wrong sizes and a bad digit */
    load(key, CREDS_KEY_LEN - 1, -1, NULL);
    load(hex, CREDS_KEY_LEN + 1, -1, NULL);
    hex[5] = 'g';
    load(hex, 2 * CREDS_KEY_LEN, -1, NULL);
}

static void allow_repo_whole_names(void **state)
{
    (void)state;
    struct creds_claims c = {0};
    al_strlist_push(&c.repos, "git.test/o/app");
    al_strlist_push(&c.repos, "GitHub.com/Org/Repo");
    for (int fold = 0; fold <= 1; fold++) {
        assert_true(creds_claims_allow_repo(&c, "git.test/o/app", fold));
        /* never a prefix, either way round */
        assert_false(creds_claims_allow_repo(&c, "git.test/o/app-secrets", fold));
        assert_false(creds_claims_allow_repo(&c, "git.test/o/app2", fold));
        assert_false(creds_claims_allow_repo(&c, "git.test/o/ap", fold));
        assert_false(creds_claims_allow_repo(&c, "git.test/o/app/x", fold));
        assert_false(creds_claims_allow_repo(&c, "git.test/o/app.git", fold));
        assert_false(creds_claims_allow_repo(&c, "git.test/o/app ", fold));
        assert_false(creds_claims_allow_repo(&c, "git.test/o", fold));
        assert_false(creds_claims_allow_repo(&c, "git.test", fold));
        assert_false(creds_claims_allow_repo(&c, "", fold));
        assert_false(creds_claims_allow_repo(&c, "other.test/o/app", fold));
        assert_false(creds_claims_allow_repo(&c, "git.test/p/app", fold));
        /* the host is a DNS name: its case never matters */
        assert_true(creds_claims_allow_repo(&c, "GIT.Test/o/app", fold));
        assert_string_equal(creds_claims_repo_find(&c, "GIT.Test/o/app", fold), "git.test/o/app");
    }
    /* owner and name: exact by default */
    assert_false(creds_claims_allow_repo(&c, "git.test/o/App", 0));
    assert_false(creds_claims_allow_repo(&c, "git.test/O/app", 0));
    assert_false(creds_claims_allow_repo(&c, "github.com/org/repo", 0));
    assert_true(creds_claims_allow_repo(&c, "github.com/Org/Repo", 0));
    /* folded for forges that fold case; the claim's spelling comes back */
    assert_string_equal(creds_claims_repo_find(&c, "git.test/O/APP", 1), "git.test/o/app");
    assert_string_equal(creds_claims_repo_find(&c, "github.com/org/repo", 1),
                        "GitHub.com/Org/Repo");
    assert_null(creds_claims_repo_find(&c, "git.test/o/app-secrets", 1));
    assert_null(creds_claims_repo_find(&c, "git.test/o/App", 0));
    /* a prefix claim grants nothing longer */
    struct creds_claims p = {0};
    al_strlist_push(&p.repos, "git.test/o/ap");
    assert_false(creds_claims_allow_repo(&p, "git.test/o/app", 0));
    assert_false(creds_claims_allow_repo(&p, "git.test/o/app", 1));
    creds_claims_clear(&p);
    creds_claims_clear(&c);
}

static void unknown_key_id_refused(void **state)
{
    (void)state;
    struct creds_keyring ring, other;
    struct creds_claims c = {0};
    ring_init(&ring, "k1", 7);
    /* a key the verifier does not have */
    ring_init(&other, "k9", 7);
    char *tok = mint(&other, 1000, 600);
    assert_int_equal(creds_token_verify(&c, tok, strlen(tok), &ring, 1100, NULL, NULL), AL_EAUTH);
    assert_string_equal(al_error_last(), "token signed with an unknown key");
    free(tok);
    /* near names of a known kid, signed with that very key: still unknown */
    const char *near[] = {"k", "k10", "K1", "k1x"};
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
        ring_init(&other, near[i], 7);
        tok = mint(&other, 1000, 600);
        assert_int_equal(creds_token_verify(&c, tok, strlen(tok), &ring, 1100, NULL, NULL),
                         AL_EAUTH);
        assert_string_equal(al_error_last(), "token signed with an unknown key");
        free(tok);
    }
    /* an empty keyring knows no key */
    ring.len = 0;
    ring_init(&other, "k1", 7);
    tok = mint(&other, 1000, 600);
    assert_int_equal(creds_token_verify(&c, tok, strlen(tok), &ring, 1100, NULL, NULL), AL_EAUTH);
    free(tok);
}

/* A token whose second field is `kid` over the claims of `tok` (minted with
 * another kid), correctly MACed with key byte `fill`. */
static char *rekey(const char *tok, const char *kid, unsigned char fill)
{
    const char *payload = strchr(tok + 5, '.') + 1;
    const char *dot = strchr(payload, '.');
    char signed_part[4096];
    unsigned char key[CREDS_KEY_LEN], mac[32];
    unsigned int mac_len = sizeof(mac);
    char *mac64 = NULL, *out = malloc(8192);
    int n = snprintf(signed_part, sizeof(signed_part), "alk1.%s.%.*s", kid, (int)(dot - payload),
                     payload);
    assert_true(n > 0 && (size_t)n < sizeof(signed_part));
    memset(key, fill, sizeof(key));
    assert_non_null(HMAC(EVP_sha256(), key, sizeof(key), (unsigned char *)signed_part, (size_t)n,
                         mac, &mac_len));
    assert_int_equal(creds_b64url_encode(&mac64, mac, sizeof(mac)), 0);
    snprintf(out, 8192, "%s.%s", signed_part, mac64);
    free(mac64);
    return out;
}

static void claims_kid_must_match_token_kid(void **state)
{
    (void)state;
    struct creds_keyring k2, ring;
    struct creds_claims c = {0};
    ring_init(&k2, "k2", 7);
    char *tok = mint(&k2, 1000, 600); /* claims say kid "k2" */
    /* the same claims under kid k1, MACed with k1's key: the MAC holds, the
     * kid claim does not */
    char *forged = rekey(tok, "k1", 7);
    ring_init(&ring, "k1", 7);
    assert_int_equal(creds_token_verify(&c, forged, strlen(forged), &ring, 1100, NULL, NULL),
                     AL_EAUTH);
    assert_string_equal(al_error_last(), "token key id mismatch");
    /* also when the verifier knows both kids */
    ring.keys[1] = k2.keys[0];
    ring.len = 2;
    assert_int_equal(creds_token_verify(&c, forged, strlen(forged), &ring, 1100, NULL, NULL),
                     AL_EAUTH);
    assert_string_equal(al_error_last(), "token key id mismatch");
    /* control: rekeyed under its own kid it verifies */
    char *same = rekey(tok, "k2", 7);
    assert_int_equal(creds_token_verify(&c, same, strlen(same), &ring, 1100, NULL, NULL), 0);
    creds_claims_clear(&c);
    free(same);
    free(forged);
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(tampered_tokens_fail),
        cmocka_unit_test(wrong_key_fails),
        cmocka_unit_test(expiry_with_skew),
        cmocka_unit_test(rotation_accepts_previous_key),
        cmocka_unit_test(revocation_hook),
        cmocka_unit_test(malformed_inputs),
        cmocka_unit_test(b64url_round_trip),
        cmocka_unit_test(key_file_forms),
        cmocka_unit_test(allow_repo_whole_names),
        cmocka_unit_test(unknown_key_id_refused),
        cmocka_unit_test(claims_kid_must_match_token_kid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
