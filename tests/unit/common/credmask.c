/* airlock/credmask.h: sentinel shape and entropy, credential sets, request
 * head rewriting (also inside Basic credentials) with inject permissions,
 * streaming rewrites at every split point in both directions, credential
 * files, and malformed or hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "airlock/base64.h"
#include "airlock/credmask.h"
#include "airlock/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MAX (16 * 1024 * 1024)

static const char ghp[] = "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5";
static const char aws[] = "AKIAIOSFODNN7EXAMPLE";
static const char hex[] = "0123456789abcdef0123456789abcdef";

/* ---- sentinels ------------------------------------------------------------ */

static int cls(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return 'd';
    if (c >= 'a' && c <= 'z')
        return 'l';
    if (c >= 'A' && c <= 'Z')
        return 'u';
    if (c == '-' || c == '_' || c == '.')
        return c;
    return 'o';
}

/* Checks the sentinel shape for `real` with kept prefix `pfx`; returns the
 * random milli-bits it carries. */
static unsigned long check_shape(const char *real, size_t pfx)
{
    size_t rlen = strlen(real);
    char *s = NULL;
    size_t n = 0;
    assert_int_equal(al_sentinel_make(&s, &n, real, rlen), 0);
    assert_non_null(s);
    assert_int_equal(strlen(s), n);
    assert_memory_equal(s, real, pfx);
    assert_true(n >= rlen);
    assert_false(n == rlen && memcmp(s, real, n) == 0);
    unsigned long mbits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        assert_true((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '-' || c == '_' || c == '.');
        if (i < pfx)
            continue;
        if (i < rlen) {
            int rc = cls((unsigned char)real[i]);
            if (rc == 'o') {
                assert_true(cls(c) == 'd' || cls(c) == 'l' || cls(c) == 'u');
                mbits += 5954;
            } else {
                assert_int_equal(cls(c), rc);
                mbits += rc == 'd' ? 3321 : (rc == 'l' || rc == 'u') ? 4700 : 0;
            }
        } else {
            assert_true(cls(c) == 'd' || cls(c) == 'l' || cls(c) == 'u');
            mbits += 5954;
        }
    }
    assert_true(mbits >= 128000);
    /* longer only when the real value's shape gives fewer than 128 bits */
    if (n > rlen)
        assert_true(mbits - 5954 < 128000);
    free(s);
    return mbits;
}

static void sentinel_shapes(void **state)
{
    (void)state;
    check_shape(ghp, 4);
    check_shape("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST",
                11);
    check_shape("sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJKLMNOP-xyzAA", 13);
    check_shape("sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEF", 8);
    check_shape("sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEF", 3);
    check_shape(aws, 4);
    check_shape("npm_abcdefghijklmnopqrstuvwxyz0123456789", 4);
    check_shape("xoxb-1234567890-1234567890123-abcdefghijklmnopqrstuvwx", 5);
    check_shape("SG.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq", 3);
    check_shape("mytoken_abcdefghijklmnopqrstuvwxyz", 8); /* generic prefix */
    check_shape("averyveryverylongname_abc", 0);          /* letters run over 16 bytes */
    check_shape(hex, 0);
    check_shape("1234", 0);
    check_shape("a", 0);
    check_shape("p@ss w0rd!/+=", 0);
    check_shape("sk-", 3);
}

static void sentinel_lengths(void **state)
{
    (void)state;
    char *s = NULL;
    size_t n = 0;
    /* 36 mixed letters and digits after ghp_: at least 36 * 3.32 bits, the
     * real value's shape decides; the 40-byte GitHub token stays 40 bytes
     * when it has enough letters */
    assert_int_equal(al_sentinel_make(&s, &n, ghp, strlen(ghp)), 0);
    assert_int_equal(n, strlen(ghp));
    free(s);
    /* AWS access key id: 16 upper/digits is < 128 bits: longer */
    assert_int_equal(al_sentinel_make(&s, &n, aws, strlen(aws)), 0);
    assert_true(n > strlen(aws));
    assert_memory_equal(s, "AKIA", 4);
    free(s);
    /* hex: 32 chars of digits and lower letters < 128 bits: longer */
    assert_int_equal(al_sentinel_make(&s, &n, hex, strlen(hex)), 0);
    assert_true(n > strlen(hex));
    free(s);
    assert_int_equal(al_sentinel_make(&s, &n, "", 0), AL_EINVAL);
    assert_null(s);
    char *big = malloc(AL_CRED_VALUE_MAX + 1);
    memset(big, 'a', AL_CRED_VALUE_MAX + 1);
    assert_int_equal(al_sentinel_make(&s, &n, big, AL_CRED_VALUE_MAX + 1), AL_EINVAL);
    assert_int_equal(al_sentinel_make(&s, &n, big, AL_CRED_VALUE_MAX), 0);
    assert_int_equal(n, AL_CRED_VALUE_MAX);
    free(s);
    free(big);
}

static void sentinel_random(void **state)
{
    (void)state;
    char *a = NULL, *b = NULL;
    size_t na, nb;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(al_sentinel_make(&a, &na, ghp, strlen(ghp)), 0);
        assert_int_equal(al_sentinel_make(&b, &nb, ghp, strlen(ghp)), 0);
        assert_string_not_equal(a, b);
        free(a);
        free(b);
        /* a short value never shows up inside its sentinel */
        assert_int_equal(al_sentinel_make(&a, &na, "7", 1), 0);
        assert_null(strchr(a, '7'));
        free(a);
    }
}

/* ---- credential sets ------------------------------------------------------ */

static struct al_strlist hosts(const char *h)
{
    struct al_strlist l = AL_STRLIST_INIT;
    assert_int_equal(al_strlist_push(&l, h), 0);
    return l;
}

/* Three credentials: 0 GITHUB (api.github.com), 1 NPM (registry.npmjs.org)
 * with a fixed sentinel, 2 AWS (longer sentinel). */
static void make_set(struct al_credset *set)
{
    struct al_strlist h1 = hosts("api.github.com"), h2 = hosts("registry.npmjs.org"),
                      h3 = hosts("*.amazonaws.com");
    set->v = NULL;
    set->len = 0;
    assert_int_equal(al_credset_add(set, "GITHUB", ghp, strlen(ghp), &h1, NULL), 0);
    assert_int_equal(al_credset_add(set, "NPM", "npm_realrealrealrealrealrealrealrealreal", 40, &h2,
                                    "npm_SENTINELsentinelSENTINELsentinel1234"),
                     0);
    assert_int_equal(al_credset_add(set, "AWS", aws, strlen(aws), &h3, NULL), 0);
    al_strlist_free(&h1);
    al_strlist_free(&h2);
    al_strlist_free(&h3);
}

static void credset_basics(void **state)
{
    (void)state;
    struct al_credset set, copy;
    make_set(&set);
    assert_int_equal(set.len, 3);
    assert_string_equal(set.v[0].name, "GITHUB");
    assert_int_equal(set.v[0].real_len, strlen(ghp));
    assert_string_equal(set.v[0].real, ghp);
    assert_string_equal(set.v[1].sentinel, "npm_SENTINELsentinelSENTINELsentinel1234");
    assert_string_equal(set.v[2].inject_hosts.items[0], "*.amazonaws.com");
    /* duplicate name, empty or too long value, bad fixed sentinels */
    assert_int_equal(al_credset_add(&set, "GITHUB", "x", 1, NULL, NULL), AL_EINVAL);
    assert_int_equal(al_credset_add(&set, "E", "", 0, NULL, NULL), AL_EINVAL);
    assert_int_equal(al_credset_add(&set, "E", "x", AL_CRED_VALUE_MAX + 1, NULL, NULL), AL_EINVAL);
    assert_int_equal(al_credset_add(&set, "E", "abc", 3, NULL, ""), AL_EINVAL);
    assert_int_equal(al_credset_add(&set, "E", "abc", 3, NULL, "abc"), AL_EINVAL);
    assert_int_equal(al_credset_add(&set, "E", "abc", 3, NULL, "a b"), AL_EINVAL);
    assert_int_equal(al_credset_add(&set, "E", "abc", 3, NULL, "npm_SENTINEL"), AL_EINVAL);
    assert_null(strstr(al_error_last(), "abc"));
    assert_int_equal(set.len, 3);

    assert_int_equal(al_credset_copy(&copy, &set), 0);
    assert_int_equal(copy.len, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(copy.v[i].name, set.v[i].name);
        assert_string_equal(copy.v[i].sentinel, set.v[i].sentinel);
        assert_memory_equal(copy.v[i].real, set.v[i].real, set.v[i].real_len + 1);
        assert_ptr_not_equal(copy.v[i].real, set.v[i].real);
        assert_string_equal(copy.v[i].inject_hosts.items[0], set.v[i].inject_hosts.items[0]);
    }
    al_credset_free(&copy);
    assert_int_equal(copy.len, 0);
    assert_null(copy.v);

    assert_int_equal(al_credset_same_length(&set, 1 | 2), 1);
    assert_int_equal(al_credset_same_length(&set, 4), 0);
    assert_int_equal(al_credset_same_length(&set, 0), 1);
    al_credset_free(&set);
    al_credset_free(&set); /* idempotent */
}

static void credset_limit(void **state)
{
    (void)state;
    struct al_credset set = {NULL, 0};
    char name[32], value[64];
    for (int i = 0; i < AL_CRED_MAX; i++) {
        snprintf(name, sizeof(name), "C%d", i);
        snprintf(value, sizeof(value), "value-%d-abcdefghij", i);
        assert_int_equal(al_credset_add(&set, name, value, strlen(value), NULL, NULL), 0);
    }
    assert_int_equal(al_credset_add(&set, "one-more", "v", 1, NULL, NULL), AL_EINVAL);
    al_credset_free(&set);
}

/* ---- heads ---------------------------------------------------------------- */

static char *subst(const struct al_credset *set, uint64_t ok, const char *head, size_t len, int *rc,
                   uint64_t *used, size_t *culprit, size_t *out_len)
{
    struct al_buf out;
    al_buf_init(&out, BUF_MAX);
    assert_int_equal(al_buf_puts(&out, "PRE"), 0);
    *used = 0xdead; /* set by the call, never or-ed into */
    *culprit = 999;
    *rc = al_cred_subst_head(set, ok, head, len, &out, used, culprit);
    assert_true(out.len >= 3);
    assert_memory_equal(out.ptr, "PRE", 3);
    char *r = malloc(out.len - 3 + 1);
    memcpy(r, out.ptr + 3, out.len - 3);
    r[out.len - 3] = '\0';
    if (out_len)
        *out_len = out.len - 3;
    al_buf_free(&out);
    return r;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, f);
    assert_true(vasprintf(&s, f, ap) >= 0);
    va_end(ap);
    return s;
}

static char *b64(const char *s)
{
    return al_base64_encode((const unsigned char *)s, strlen(s));
}

static void head_plain(void **state)
{
    (void)state;
    struct al_credset set;
    make_set(&set);
    const char *s0 = set.v[0].sentinel;
    char *head = fmt("GET /repos?token=%s HTTP/1.1\r\nHost: api.github.com\r\n"
                     "Authorization: Bearer %s\r\nX-Twice: %s%s\r\n\r\n",
                     s0, s0, s0, s0);
    char *want = fmt("GET /repos?token=%s HTTP/1.1\r\nHost: api.github.com\r\n"
                     "Authorization: Bearer %s\r\nX-Twice: %s%s\r\n\r\n",
                     ghp, ghp, ghp, ghp);
    int rc;
    uint64_t used;
    size_t culprit;
    char *got = subst(&set, 1, head, strlen(head), &rc, &used, &culprit, NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(got, want);
    assert_int_equal(used, 1);
    free(got);

    /* the same head for a host where GITHUB may not go: refused, nothing out */
    got = subst(&set, 2 | 4, head, strlen(head), &rc, &used, &culprit, NULL);
    assert_int_equal(rc, AL_EPERM);
    assert_int_equal(culprit, 0);
    assert_string_equal(got, "");
    assert_int_equal(used, 0);
    assert_non_null(strstr(al_error_last(), "GITHUB"));
    assert_null(strstr(al_error_last(), ghp));
    free(got);

    /* allowed credential first, forbidden one later: still nothing out */
    free(head);
    head = fmt("GET / HTTP/1.1\r\nA: %s\r\nB: %s\r\n\r\n", set.v[1].sentinel, set.v[2].sentinel);
    got = subst(&set, 2, head, strlen(head), &rc, &used, &culprit, NULL);
    assert_int_equal(rc, AL_EPERM);
    assert_int_equal(culprit, 2);
    assert_string_equal(got, "");
    free(got);
    /* a head without sentinels passes unchanged whatever the bits */
    const char *plain = "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Zm9vOmJhcg==\r\n\r\n";
    got = subst(&set, 0, plain, strlen(plain), &rc, &used, &culprit, NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(got, plain);
    assert_int_equal(used, 0);
    free(got);
    free(head);
    free(want);
    al_credset_free(&set);
}

static void head_basic(void **state)
{
    (void)state;
    struct al_credset set;
    make_set(&set);
    char *up = fmt("x-access-token:%s", set.v[0].sentinel);
    char *upreal = fmt("x-access-token:%s", ghp);
    char *enc = b64(up), *encreal = b64(upreal);
    static const char *const forms[][2] = {
        {"Authorization: Basic ", "\r\n"},    {"authorization:basic  ", " \r\n"},
        {"AUTHORIZATION :\tBASIC\t", "\r\n"}, {"Proxy-Authorization: Basic ", "\r\n"},
        {"proxy-authorization: bAsIc ", ""},
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(*forms); i++) {
        char *line = fmt("%s%s%s", forms[i][0], enc, forms[i][1]);
        char *want_line = fmt("%s%s%s", forms[i][0], encreal, forms[i][1]);
        char *head = fmt("GET /info/refs HTTP/1.1\r\nHost: api.github.com\r\n%s", line);
        char *want = fmt("GET /info/refs HTTP/1.1\r\nHost: api.github.com\r\n%s", want_line);
        int rc;
        uint64_t used;
        size_t culprit;
        char *got = subst(&set, 1, head, strlen(head), &rc, &used, &culprit, NULL);
        assert_int_equal(rc, 0);
        assert_string_equal(got, want);
        assert_int_equal(used, 1);
        free(got);
        assert_int_equal(al_cred_find_sentinel(&set, head, strlen(head)), 0);
        /* without permission: refused, not passed on base64-hidden */
        got = subst(&set, 2, head, strlen(head), &rc, &used, &culprit, NULL);
        assert_int_equal(rc, AL_EPERM);
        assert_int_equal(culprit, 0);
        assert_string_equal(got, "");
        free(got);
        free(line);
        free(want_line);
        free(head);
        free(want);
    }
    /* unpadded base64 is understood; the rewrite is padded */
    char *user = fmt("%s:xyz", set.v[1].sentinel); /* 44 bytes: one '=' */
    char *userreal = fmt("%s:xyz", set.v[1].real);
    char *e1 = b64(user), *e1real = b64(userreal);
    assert_int_equal(e1[strlen(e1) - 1], '=');
    e1[strlen(e1) - 1] = '\0';
    char *head = fmt("GET / HTTP/1.1\r\nAuthorization: Basic %s\r\n\r\n", e1);
    char *want = fmt("GET / HTTP/1.1\r\nAuthorization: Basic %s\r\n\r\n", e1real);
    int rc;
    uint64_t used;
    size_t culprit;
    char *got = subst(&set, 2, head, strlen(head), &rc, &used, &culprit, NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(got, want);
    assert_int_equal(used, 2);
    free(got);
    free(head);
    free(want);
    /* Basic on some other header: not decoded (only the raw scan applies) */
    head = fmt("GET / HTTP/1.1\r\nX-Authorization: Basic %s\r\n\r\n", enc);
    got = subst(&set, 0, head, strlen(head), &rc, &used, &culprit, NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(got, head);
    free(got);
    free(head);
    free(user);
    free(userreal);
    free(e1);
    free(e1real);
    free(up);
    free(upreal);
    free(enc);
    free(encreal);
    al_credset_free(&set);
}

static void head_malformed(void **state)
{
    (void)state;
    struct al_credset set;
    make_set(&set);
    const char *s0 = set.v[0].sentinel;
    int rc;
    uint64_t used;
    size_t culprit, n;
    /* no CRLF at all, LF only */
    char *head = fmt("GET /%s", s0);
    char *want = fmt("GET /%s", ghp);
    char *got = subst(&set, 1, head, strlen(head), &rc, &used, &culprit, NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(got, want);
    free(got);
    free(head);
    free(want);
    head = fmt("GET / HTTP/1.1\nAuthorization: Basic %s\n\n", s0); /* not base64 of one */
    want = fmt("GET / HTTP/1.1\nAuthorization: Basic %s\n\n", ghp);
    got = subst(&set, 1, head, strlen(head), &rc, &used, &culprit, NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(got, want);
    free(got);
    free(head);
    free(want);
    /* bad base64 in Basic: left alone */
    static const char *const bad[] = {
        "Authorization: Basic !!!!\r\n",
        "Authorization: Basic Zm9vY\r\n",
        "Authorization: Basic Zm=9v\r\n",
        "Authorization: Basic\r\n",
        "Authorization: Basic \r\n",
        "Authorization: Basic Zm9v Zm9v\r\n",
        "Authorization:\r\n",
        "Authorization",
        ":",
        "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        got = subst(&set, 0, bad[i], strlen(bad[i]), &rc, &used, &culprit, NULL);
        assert_int_equal(rc, 0);
        assert_string_equal(got, bad[i]);
        free(got);
    }
    /* NUL bytes around a sentinel */
    size_t sl = strlen(s0), rl = strlen(ghp);
    char nulhead[256], nulwant[256];
    memcpy(nulhead, "A\0: \0", 5);
    memcpy(nulhead + 5, s0, sl);
    memcpy(nulhead + 5 + sl, "\0\r\n", 3);
    memcpy(nulwant, "A\0: \0", 5);
    memcpy(nulwant + 5, ghp, rl);
    memcpy(nulwant + 5 + rl, "\0\r\n", 3);
    got = subst(&set, 1, nulhead, 8 + sl, &rc, &used, &culprit, &n);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 8 + rl);
    assert_memory_equal(got, nulwant, n);
    free(got);
    /* a huge header with the sentinel at its very end */
    size_t big = 1024 * 1024;
    char *huge = malloc(big + sl + 1);
    memset(huge, 'A', big);
    memcpy(huge, "X-Big: ", 7);
    memcpy(huge + big, s0, sl);
    got = subst(&set, 1, huge, big + sl, &rc, &used, &culprit, &n);
    assert_int_equal(rc, 0);
    assert_int_equal(n, big + rl);
    assert_memory_equal(got + big, ghp, rl);
    free(got);
    got = subst(&set, 0, huge, big + sl, &rc, &used, &culprit, &n);
    assert_int_equal(rc, AL_EPERM);
    free(got);
    /* and a huge Basic token that is not base64 of anything with a sentinel */
    memcpy(huge, "Authorization: Basic ", 21);
    got = subst(&set, 0, huge, big, &rc, &used, &culprit, &n);
    assert_int_equal(rc, 0);
    assert_int_equal(n, big);
    free(got);
    free(huge);
    /* a head that does not fit `out`: nothing appended */
    struct al_buf small;
    al_buf_init(&small, 10);
    head = fmt("GET /%s HTTP/1.1\r\n\r\n", s0);
    assert_int_equal(al_cred_subst_head(&set, 1, head, strlen(head), &small, &used, &culprit),
                     AL_ETOOBIG);
    assert_int_equal(small.len, 0);
    al_buf_free(&small);
    free(head);
    al_credset_free(&set);
}

static void empty_set(void **state)
{
    (void)state;
    struct al_credset set = {NULL, 0};
    int rc;
    uint64_t used;
    size_t culprit;
    const char *head = "GET / HTTP/1.1\r\nAuthorization: Basic Zm9vOmJhcg==\r\n\r\n";
    char *got = subst(&set, 0, head, strlen(head), &rc, &used, &culprit, NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(got, head);
    free(got);
    assert_int_equal(al_cred_find_sentinel(&set, head, strlen(head)), -1);
    assert_int_equal(al_cred_find_sentinel(&set, NULL, 0), -1);
    got = subst(&set, 0, NULL, 0, &rc, &used, &culprit, NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(got, "");
    free(got);
    assert_int_equal(al_credset_same_length(&set, ~(uint64_t)0), 1);
    for (int dir = AL_SUBST_REQUEST; dir <= AL_SUBST_RESPONSE; dir++) {
        struct al_subst_stream st;
        struct al_buf out;
        al_buf_init(&out, BUF_MAX);
        assert_int_equal(al_subst_stream_init(&st, &set, (enum al_subst_dir)dir, 0), 0);
        assert_int_equal(al_subst_stream_feed(&st, "abc", 3, &out, &culprit), 0);
        assert_int_equal(al_subst_stream_feed(&st, NULL, 0, &out, &culprit), 0);
        assert_int_equal(al_subst_stream_finish(&st, &out), 0);
        assert_string_equal(out.ptr, "abc");
        al_subst_stream_free(&st);
        al_buf_free(&out);
    }
    al_credset_free(&set);
}

static void find_sentinel(void **state)
{
    (void)state;
    struct al_credset set;
    make_set(&set);
    char *d = fmt("xx%syy%s", set.v[2].sentinel, set.v[1].sentinel);
    assert_int_equal(al_cred_find_sentinel(&set, d, strlen(d)), 1);
    assert_int_equal(al_cred_find_sentinel(&set, d, 2 + strlen(set.v[2].sentinel)), 2);
    assert_int_equal(al_cred_find_sentinel(&set, d, 2 + strlen(set.v[2].sentinel) - 1), -1);
    assert_int_equal(al_cred_find_sentinel(&set, ghp, strlen(ghp)), -1);
    free(d);
    al_credset_free(&set);
}

/* ---- streams -------------------------------------------------------------- */

/* Feeds `in` in the pieces cut at `cuts` (ascending), then finishes. */
static int run_stream(const struct al_credset *set, enum al_subst_dir dir, uint64_t ok,
                      const char *in, size_t len, const size_t *cuts, size_t ncuts,
                      struct al_buf *out, size_t *culprit, uint64_t *used)
{
    struct al_subst_stream st;
    assert_int_equal(al_subst_stream_init(&st, set, dir, ok), 0);
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        rc = al_subst_stream_feed(&st, in + at, end - at, out, culprit);
        assert_true(st.carry_len <= st.carry_cap);
        at = end;
    }
    if (rc == 0)
        rc = al_subst_stream_finish(&st, out);
    if (used)
        *used = st.used;
    al_subst_stream_free(&st);
    return rc;
}

/* Every single split point, every pair of split points for short inputs,
 * and byte-by-byte: each must give `want`. */
static void every_split(const struct al_credset *set, enum al_subst_dir dir, uint64_t ok,
                        const char *in, size_t len, const char *want, size_t want_len)
{
    struct al_buf out;
    size_t culprit;
    al_buf_init(&out, BUF_MAX);
    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b += (len > 200 ? len : 1)) {
            size_t cuts[2] = {a, b};
            al_buf_reset(&out);
            assert_int_equal(run_stream(set, dir, ok, in, len, cuts, 2, &out, &culprit, NULL), 0);
            assert_int_equal(out.len, want_len);
            assert_memory_equal(out.ptr, want, want_len);
        }
    }
    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    al_buf_reset(&out);
    assert_int_equal(run_stream(set, dir, ok, in, len, cuts, len, &out, &culprit, NULL), 0);
    assert_int_equal(out.len, want_len);
    assert_memory_equal(out.ptr, want, want_len);
    free(cuts);
    al_buf_free(&out);
}

static void stream_request(void **state)
{
    (void)state;
    struct al_credset set;
    make_set(&set);
    const char *s0 = set.v[0].sentinel, *s1 = set.v[1].sentinel, *s2 = set.v[2].sentinel;
    /* adjacent sentinels, at both ends, partial prefixes that go nowhere */
    char *in = fmt("%s{\"a\":\"%s\",\"b\":\"%.10s\",\"c\":\"%s%s\"}ghp_npm_AKIA%.5s%s", s0, s1, s0,
                   s2, s0, s1, s2);
    char *want = fmt("%s{\"a\":\"%s\",\"b\":\"%.10s\",\"c\":\"%s%s\"}ghp_npm_AKIA%.5s%s", ghp,
                     set.v[1].real, s0, aws, ghp, s1, aws);
    every_split(&set, AL_SUBST_REQUEST, 7, in, strlen(in), want, strlen(want));
    /* the length changes only through AWS, whose sentinel is longer */
    assert_int_equal(al_credset_same_length(&set, 3), 1);
    assert_int_equal(al_credset_same_length(&set, 7), 0);
    free(in);
    free(want);
    al_credset_free(&set);
}

static void stream_request_forbidden(void **state)
{
    (void)state;
    struct al_credset set;
    make_set(&set);
    char *in = fmt("{\"a\":\"%s\",\"b\":\"%s\"}", set.v[1].sentinel, set.v[0].sentinel);
    size_t len = strlen(in);
    struct al_buf out;
    al_buf_init(&out, BUF_MAX);
    for (size_t a = 0; a <= len; a++) {
        size_t culprit = 999;
        al_buf_reset(&out);
        assert_int_equal(
            run_stream(&set, AL_SUBST_REQUEST, 2, in, len, &a, 1, &out, &culprit, NULL), AL_EPERM);
        assert_int_equal(culprit, 0);
        assert_null(
            memmem(out.ptr ? out.ptr : "", out.len, set.v[0].sentinel, set.v[0].sentinel_len));
        assert_null(memmem(out.ptr ? out.ptr : "", out.len, ghp, strlen(ghp)));
    }
    /* the stream refuses further use */
    struct al_subst_stream st;
    size_t culprit;
    assert_int_equal(al_subst_stream_init(&st, &set, AL_SUBST_REQUEST, 2), 0);
    al_buf_reset(&out);
    assert_int_equal(al_subst_stream_feed(&st, in, len, &out, &culprit), AL_EPERM);
    assert_int_equal(out.len, 0); /* not even NPM's real value before it */
    assert_int_equal(al_subst_stream_feed(&st, "x", 1, &out, &culprit), AL_EINVAL);
    assert_int_equal(al_subst_stream_finish(&st, &out), AL_EINVAL);
    al_subst_stream_free(&st);
    al_buf_free(&out);
    free(in);
    al_credset_free(&set);
}

static void stream_response(void **state)
{
    (void)state;
    struct al_credset set;
    make_set(&set);
    /* the upstream echoes every real value; the response keeps its length */
    char *in = fmt("{\"token\":\"%s\",\"npm\":\"%s%s\",\"aws\":\"%s\",\"part\":\"%.12s\"}%s", ghp,
                   set.v[1].real, ghp, aws, ghp, aws);
    char *want = fmt("{\"token\":\"%s\",\"npm\":\"%s%s\",\"aws\":\"%s\",\"part\":\"%.12s\"}%s",
                     set.v[0].sentinel, set.v[1].sentinel, set.v[0].sentinel,
                     "********************", ghp, "********************");
    assert_int_equal(strlen(in), strlen(want)); /* Content-Length holds */
    every_split(&set, AL_SUBST_RESPONSE, 0, in, strlen(in), want, strlen(want));
    struct al_buf out;
    size_t culprit;
    uint64_t used;
    al_buf_init(&out, BUF_MAX);
    assert_int_equal(
        run_stream(&set, AL_SUBST_RESPONSE, 0, in, strlen(in), NULL, 0, &out, &culprit, &used), 0);
    assert_int_equal(used, 7);
    assert_null(memmem(out.ptr, out.len, ghp, strlen(ghp)));
    assert_null(memmem(out.ptr, out.len, aws, strlen(aws)));
    al_buf_free(&out);
    free(in);
    free(want);
    al_credset_free(&set);
}

/* The base64 of "user:REAL" (what the proxy puts in an Authorization:
 * Basic header) echoed by a server: for each alignment of the value in the
 * base64, a response stream masks the characters that depend only on it,
 * so the echo decodes to no real value; the length is kept. */
static void stream_response_base64(void **state)
{
    (void)state;
    struct al_credset set;
    make_set(&set);
    const char *users[3] = {"u:", "us:", "usr:"}; /* value at offsets 2, 3, 4 */
    for (int u = 0; u < 3; u++) {
        char plain[128], enc[256];
        int pn = snprintf(plain, sizeof(plain), "%s%s", users[u], ghp);
        long en = al_base64_encode_buf(enc, sizeof(enc), (const unsigned char *)plain, (size_t)pn);
        assert_true(en > 0);
        char *in = fmt("{\"authorization\":\"Basic %s\"}", enc);
        size_t len = strlen(in);
        struct al_buf out;
        size_t culprit, cuts[2];
        al_buf_init(&out, BUF_MAX);
        for (size_t a = 0; a <= len; a += 3) {
            cuts[0] = a;
            cuts[1] = a + 7 < len ? a + 7 : len;
            al_buf_reset(&out);
            assert_int_equal(
                run_stream(&set, AL_SUBST_RESPONSE, 0, in, len, cuts, 2, &out, &culprit, NULL), 0);
            assert_int_equal(out.len, len);
            /* decode what came out: no real value, not even most of one */
            char *b = memmem(out.ptr, out.len, "Basic ", 6);
            assert_non_null(b);
            size_t ul = strlen(users[u]), first = (8 * ul + 5) / 6,
                   end = 8 * (ul + strlen(ghp)) / 6;
            for (size_t i = 0; i < (size_t)en; i++)
                assert_int_equal(b[6 + i], i >= first && i < end ? '*' : enc[i]);
            assert_int_equal(b[6 + en], '"');
        }
        al_buf_free(&out);
        free(in);
    }
    /* short values have no base64 form long enough to mask */
    struct al_credset s2 = {NULL, 0};
    assert_int_equal(al_credset_add(&s2, "S", "abcde", 5, NULL, "VWXYZ"), 0);
    const char *in = "YWJjZGU= abcde";
    const char *want = "YWJjZGU= VWXYZ";
    every_split(&s2, AL_SUBST_RESPONSE, 0, in, strlen(in), want, strlen(want));
    al_credset_free(&s2);
    al_credset_free(&set);
}

/* Real values that are prefixes or substrings of each other: the longest at
 * a position wins, the shorter is still re-masked when alone, also in the
 * bytes held back at the end of the stream. */
static void stream_nested(void **state)
{
    (void)state;
    struct al_credset set = {NULL, 0};
    assert_int_equal(al_credset_add(&set, "A", "secret", 6, NULL, "SEKRIT"), 0);
    assert_int_equal(al_credset_add(&set, "B", "secret123", 9, NULL, "ZEKRIT456"), 0);
    assert_int_equal(al_credset_add(&set, "C", "cre", 3, NULL, "CRE-LONGER"), 0);
    const char *in = "secret123 secret12 secret secre cre xsecret123secret";
    const char *want = "ZEKRIT456 SEKRIT12 SEKRIT se*** *** xZEKRIT456SEKRIT";
    every_split(&set, AL_SUBST_RESPONSE, 0, in, strlen(in), want, strlen(want));
    /* the held-back tail "secre" ends the stream: "cre" is found in it */
    const char *in2 = "x secre";
    const char *want2 = "x se***";
    every_split(&set, AL_SUBST_RESPONSE, 0, in2, strlen(in2), want2, strlen(want2));
    al_credset_free(&set);
}

/* A real value longer than its sentinel becomes as many '*'s. */
static void stream_response_stars(void **state)
{
    (void)state;
    struct al_credset set = {NULL, 0};
    char real[101], in[300], want[300];
    for (int i = 0; i < 100; i++) /* kept bytes carry no randomness: longer sentinel */
        real[i] = i == 0 ? 'a' : i % 2 ? '-' : '.';
    real[100] = '\0';
    assert_int_equal(al_credset_add(&set, "LONG", real, 100, NULL, NULL), 0);
    assert_true(set.v[0].sentinel_len != 100);
    snprintf(in, sizeof(in), "<%s>", real);
    memset(want, '*', sizeof(want));
    want[0] = '<';
    want[101] = '>';
    every_split(&set, AL_SUBST_RESPONSE, 0, in, 102, want, 102);
    al_credset_free(&set);
}

/* Bodies bigger than one read, sentinels all over. */
static void stream_long(void **state)
{
    (void)state;
    struct al_credset set;
    make_set(&set);
    struct al_buf in, want, out;
    al_buf_init(&in, BUF_MAX);
    al_buf_init(&want, BUF_MAX);
    al_buf_init(&out, BUF_MAX);
    for (int i = 0; i < 3000; i++) {
        int k = i % 4;
        assert_int_equal(al_buf_printf(&in, "%d,", i), 0);
        assert_int_equal(al_buf_printf(&want, "%d,", i), 0);
        if (k < 3) {
            assert_int_equal(al_buf_puts(&in, set.v[k].sentinel), 0);
            assert_int_equal(al_buf_append(&want, set.v[k].real, set.v[k].real_len), 0);
        }
    }
    size_t cuts[64];
    for (size_t step = 1; step < 300; step += 37) {
        size_t n = 0;
        for (size_t c = step; c < in.len && n < 64; c += step * 7 + n)
            cuts[n++] = c;
        al_buf_reset(&out);
        size_t culprit;
        assert_int_equal(
            run_stream(&set, AL_SUBST_REQUEST, 7, in.ptr, in.len, cuts, n, &out, &culprit, NULL),
            0);
        assert_int_equal(out.len, want.len);
        assert_memory_equal(out.ptr, want.ptr, want.len);
    }
    al_buf_free(&in);
    al_buf_free(&want);
    al_buf_free(&out);
    al_credset_free(&set);
}

/* ---- credential files ----------------------------------------------------- */

static void file_whole(void **state)
{
    (void)state;
    struct al_credset set = {NULL, 0};
    struct al_strlist h = hosts("registry.npmjs.org");
    char *out = NULL;
    size_t n = 0;
    const char *content = "tok_abcdefghijklmnop0123456789\n";
    assert_int_equal(
        al_cred_mask_file(&set, "/root/.token", content, strlen(content), NULL, &h, &out, &n), 0);
    assert_int_equal(set.len, 1);
    assert_string_equal(set.v[0].name, "file:/root/.token");
    assert_int_equal(set.v[0].real_len, strlen(content) - 1);
    assert_memory_equal(set.v[0].real, content, strlen(content) - 1);
    assert_string_equal(set.v[0].inject_hosts.items[0], "registry.npmjs.org");
    assert_int_equal(n, set.v[0].sentinel_len + 1);
    assert_memory_equal(out, set.v[0].sentinel, set.v[0].sentinel_len);
    assert_int_equal(out[n - 1], '\n');
    assert_memory_equal(out, "tok_", 4);
    free(out);
    /* the same path twice is refused; an empty file too */
    assert_int_equal(
        al_cred_mask_file(&set, "/root/.token", content, strlen(content), NULL, &h, &out, &n),
        AL_EINVAL);
    assert_null(out);
    assert_int_equal(al_cred_mask_file(&set, "/e", "\n", 1, NULL, &h, &out, &n), AL_EINVAL);
    assert_int_equal(al_cred_mask_file(&set, "/e", NULL, 0, NULL, &h, &out, &n), AL_EINVAL);
    assert_int_equal(al_cred_mask_file(&set, "/e", NULL, 0, "x", &h, &out, &n), AL_EINVAL);
    assert_non_null(strstr(al_error_last(), "/e"));
    assert_int_equal(set.len, 1);
    /* no trailing newline: all of it */
    assert_int_equal(al_cred_mask_file(&set, "/k", "abc", 3, NULL, &h, &out, &n), 0);
    assert_int_equal(set.v[1].real_len, 3);
    assert_int_equal(n, set.v[1].sentinel_len);
    free(out);
    al_strlist_free(&h);
    al_credset_free(&set);
}

static void file_extract(void **state)
{
    (void)state;
    struct al_credset set = {NULL, 0};
    struct al_strlist h = hosts("registry.npmjs.org");
    char *out = NULL;
    size_t n = 0;
    const char *npmrc = "registry=https://registry.npmjs.org/\n"
                        "//registry.npmjs.org/:_authToken=npm_AAAAbbbbCCCCddddEEEEffff00001111\n"
                        "//npm.pkg.github.com/:_authToken=ghp_ZZZZyyyyXXXXwwwwVVVVuuuu00001111\n"
                        "# again: npm_AAAAbbbbCCCCddddEEEEffff00001111\n"
                        "//other/:_authToken=npm_AAAAbbbbCCCCddddEEEEffff00001111\n";
    assert_int_equal(al_cred_mask_file(&set, "/root/.npmrc", npmrc, strlen(npmrc),
                                       ":_authToken=(.*)$", &h, &out, &n),
                     0);
    assert_int_equal(set.len, 2);
    assert_string_equal(set.v[0].name, "file:/root/.npmrc");
    assert_string_equal(set.v[1].name, "file:/root/.npmrc#2");
    assert_string_equal(set.v[0].real, "npm_AAAAbbbbCCCCddddEEEEffff00001111");
    assert_string_equal(set.v[1].real, "ghp_ZZZZyyyyXXXXwwwwVVVVuuuu00001111");
    char *want = fmt("registry=https://registry.npmjs.org/\n"
                     "//registry.npmjs.org/:_authToken=%s\n"
                     "//npm.pkg.github.com/:_authToken=%s\n"
                     "# again: %s\n"
                     "//other/:_authToken=%s\n",
                     set.v[0].sentinel, set.v[1].sentinel, set.v[0].sentinel, set.v[0].sentinel);
    assert_int_equal(n, strlen(want));
    assert_string_equal(out, want);
    free(want);
    free(out);
    /* whole match when there is no group */
    const char *env = "A=1\nKEY=sk-abcdefghijklmnopqrstuvwxyz012345\n";
    assert_int_equal(
        al_cred_mask_file(&set, "/env", env, strlen(env), "sk-[A-Za-z0-9]+", &h, &out, &n), 0);
    assert_int_equal(set.len, 3);
    assert_string_equal(set.v[2].real, "sk-abcdefghijklmnopqrstuvwxyz012345");
    assert_memory_equal(out, "A=1\nKEY=sk-", 11);
    free(out);
    /* no match, bad regex: named by path, never the content; nothing added */
    assert_int_equal(al_cred_mask_file(&set, "/root/.npmrc2", npmrc, strlen(npmrc), "password=(.*)",
                                       &h, &out, &n),
                     AL_EINVAL);
    assert_non_null(strstr(al_error_last(), "/root/.npmrc2"));
    assert_null(strstr(al_error_last(), "npm_AAAA"));
    assert_null(out);
    assert_int_equal(
        al_cred_mask_file(&set, "/root/.npmrc3", npmrc, strlen(npmrc), "(", &h, &out, &n),
        AL_EINVAL);
    assert_non_null(strstr(al_error_last(), "/root/.npmrc3"));
    assert_null(strstr(al_error_last(), "npm_AAAA"));
    /* an expression that matches only empty strings finds no secret */
    assert_int_equal(al_cred_mask_file(&set, "/x", npmrc, strlen(npmrc), "()", &h, &out, &n),
                     AL_EINVAL);
    assert_int_equal(set.len, 3);
    /* too big */
    char *big = malloc(1024 * 1024 + 1);
    memset(big, 'a', 1024 * 1024 + 1);
    assert_int_equal(al_cred_mask_file(&set, "/big", big, 1024 * 1024 + 1, NULL, &h, &out, &n),
                     AL_EINVAL);
    assert_non_null(strstr(al_error_last(), "/big"));
    /* more distinct secrets than a set holds: refused, the set as it was */
    char *many = malloc(64 * 200);
    size_t m = 0;
    for (int i = 0; i < 70; i++)
        m += (size_t)snprintf(many + m, 64 * 200 - m, "t=tok%03d\n", i);
    assert_int_equal(al_cred_mask_file(&set, "/many", many, m, "t=(.*)", &h, &out, &n), AL_EINVAL);
    assert_non_null(strstr(al_error_last(), "/many"));
    assert_int_equal(set.len, 3);
    free(many);
    free(big);
    al_strlist_free(&h);
    al_credset_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sentinel_shapes), cmocka_unit_test(sentinel_lengths),
        cmocka_unit_test(sentinel_random), cmocka_unit_test(credset_basics),
        cmocka_unit_test(credset_limit),   cmocka_unit_test(head_plain),
        cmocka_unit_test(head_basic),      cmocka_unit_test(head_malformed),
        cmocka_unit_test(empty_set),       cmocka_unit_test(find_sentinel),
        cmocka_unit_test(stream_request),  cmocka_unit_test(stream_request_forbidden),
        cmocka_unit_test(stream_response), cmocka_unit_test(stream_response_base64),
        cmocka_unit_test(stream_nested),   cmocka_unit_test(stream_response_stars),
        cmocka_unit_test(stream_long),     cmocka_unit_test(file_whole),
        cmocka_unit_test(file_extract),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
