#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "airlock/error.h"
#include "airlock/netpolicy.h"
#include "airlock/strlist.h"
#include "reqrule.h"

/* Normalises s; returns the result (static buffer) or NULL when refused. */
static const char *norm(const char *s, size_t *plen)
{
    static char out[NP_PATH_MAX + 1];
    size_t dummy;
    if (np_path_normalise(s, strlen(s), out, sizeof(out), plen ? plen : &dummy) < 0)
        return NULL;
    return out;
}

static void normalise_ok(void **state)
{
    static const struct {
        const char *in, *want;
        size_t plen;
    } cases[] = {
        {"/", "/", 1},
        {"/a/b", "/a/b", 4},
        {"/a/./b", "/a/b", 4},
        {"/a/b/..", "/a/", 3},
        {"/a/b/.", "/a/b/", 5},
        {"/a/b/../c", "/a/c", 4},
        {"/a/%2e%2e/c", "/c", 2},
        {"/a/%2E/c", "/a/c", 4},
        {"/a/.%2e/c", "/c", 2},
        {"/%7Euser/%41b", "/~user/Ab", 9},
        {"/a%3ab", "/a%3Ab", 6},
        {"/a%20b", "/a%20b", 6},
        {"/a%2a", "/a%2A", 5},
        {"/a//b/..", "/a//", 4},
        {"/.", "/", 1},
        {"/a/..", "/", 1},
        {"/a/...", "/a/...", 6},
        {"/a/.b", "/a/.b", 5},
        {"/repos/acme/app/../../other", "/repos/other", 12},
        {"/a/b?x=1&y=/../..", "/a/b?x=1&y=/../..", 4},
        {"/a/../b?q=%2F", "/b?q=%2F", 2},
        {"/a/b?", "/a/b?", 4},
        {"/caf\xc3\xa9", "/caf\xc3\xa9", 6},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t plen = 0;
        const char *got = norm(cases[i].in, &plen);
        if (!got)
            fail_msg("%s refused: %s", cases[i].in, al_error_last());
        assert_string_equal(got, cases[i].want);
        if (plen != cases[i].plen)
            fail_msg("%s: path length %zu", cases[i].in, plen);
        assert_int_equal(plen, cases[i].plen);
    }
}

static void normalise_refused(void **state)
{
    static const char *bad[] = {
        "",
        "a/b",
        "*",
        "http://x/a",
        "/..",
        "/a/../..",
        "/a/../../b",
        "/%2e%2e/etc",
        "/a/%2E%2e/%2e%2E",
        "/a%2Fb",
        "/a%2fb",
        "/a%5Cb",
        "/a%5cb",
        "/a%00b",
        "/a\\b",
        "/a/..\\..",
        "/a\rb",
        "/a\nb",
        "/a\tb",
        "/a%",
        "/a%2",
        "/a%zz",
        "/a%2g",
        "/a%%32F",
        "/a/..;/b",
        "/a/.;x/b",
        "/a/%2e%2e;/b",
        "/a/..%3B/b",
        "/a/..%3bx/b",
        "/a/.%3b/b",
        "/a/%2E%2E%3B/b",
        "/a?x=\r\n",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (norm(bad[i], NULL))
            fail_msg("accepted: \"%s\"", bad[i]);
    /* embedded NUL */
    char out[64];
    size_t plen;
    assert_int_equal(np_path_normalise("/a\0b", 4, out, sizeof(out), &plen), AL_EINVAL);
    /* "?" after NUL: length is what counts, not strlen */
    assert_int_equal(np_path_normalise("/a/b", 2, out, sizeof(out), &plen), 0);
    assert_string_equal(out, "/a");
}

static void normalise_long(void **state)
{
    (void)state;
    size_t n = NP_PATH_MAX + 100;
    char *in = malloc(n + 1);
    char small[16];
    size_t plen;
    assert_non_null(in);
    in[0] = '/';
    memset(in + 1, 'a', n - 1);
    in[n] = '\0';
    char *out = malloc(n + 10);
    assert_non_null(out);
    assert_int_equal(np_path_normalise(in, n, out, n + 10, &plen), AL_EINVAL);
    /* exactly NP_PATH_MAX fits */
    assert_int_equal(np_path_normalise(in, NP_PATH_MAX, out, n + 10, &plen), 0);
    assert_int_equal(plen, NP_PATH_MAX);
    /* out too small */
    assert_int_equal(
        np_path_normalise("/abcdefghijklmnopqrstuvwxyz", 27, small, sizeof(small), &plen),
        AL_EINVAL);
    assert_int_equal(np_path_normalise("/abc", 4, small, 4, &plen), AL_EINVAL);
    assert_int_equal(np_path_normalise("/abc", 4, small, 5, &plen), 0);
    assert_int_equal(np_path_normalise("/abc?xy", 7, small, 7, &plen), AL_EINVAL);
    assert_int_equal(np_path_normalise("/abc", 4, small, 0, &plen), AL_EINVAL);
    /* %41 expands nothing, %3A stays 3 bytes: long escapes that shrink fit */
    for (size_t i = 0; i < 2500; i++)
        memcpy(in + 1 + 3 * i, "%41", 3);
    in[1 + 3 * 2500] = '\0';
    assert_int_equal(np_path_normalise(in, strlen(in), out, n + 10, &plen), 0);
    /* many ".." that come back to "/" */
    size_t k = 0;
    for (; k + 4 <= n - 8; k += 4)
        memcpy(in + k, "/a/.", 4);
    memcpy(in + k, "/..", 4);
    assert_int_equal(np_path_normalise(in, strlen(in), out, n + 10, &plen), 0);
    free(in);
    free(out);
}

/* --- rules ----------------------------------------------------------------- */

static void add_rule(struct al_netpolicy *p, const char *host, const char *methods,
                     const char *paths, const char *keys)
{
    struct al_reqrule *grown = realloc(p->request_rules, (p->n_request_rules + 1) * sizeof(*grown));
    assert_non_null(grown);
    p->request_rules = grown;
    struct al_reqrule *r = &grown[p->n_request_rules++];
    memset(r, 0, sizeof(*r));
    r->host = strdup(host);
    const char *lists[2] = {methods, paths};
    struct al_strlist *dst[2] = {&r->methods, &r->paths};
    for (int j = 0; j < 2; j++) {
        if (!lists[j])
            continue;
        char buf[256];
        size_t n = strlen(lists[j]);
        assert_true(n < sizeof(buf));
        memcpy(buf, lists[j], n + 1);
        char *save = buf;
        for (char *tok = buf; save; tok = save) {
            save = strchr(tok, ' ');
            if (save)
                *save++ = '\0';
            assert_int_equal(al_strlist_push(dst[j], tok), 0);
        }
    }
    if (keys) {
        r->has_query_keys = 1;
        char buf[256];
        size_t n = strlen(keys);
        memcpy(buf, keys, n + 1);
        char *save = n ? buf : NULL;
        for (char *tok = buf; save; tok = save) {
            save = strchr(tok, ' ');
            if (save)
                *save++ = '\0';
            assert_int_equal(al_strlist_push(&r->query_keys, tok), 0);
        }
    }
}

static enum np_rules_verdict check(const struct al_netpolicy *p, const char *host,
                                   const char *method, const char *target, char *why, size_t cap)
{
    char out[NP_PATH_MAX + 1];
    size_t plen;
    assert_int_equal(np_path_normalise(target, strlen(target), out, sizeof(out), &plen), 0);
    return np_reqrules_check(p, host, method, out, plen, why, cap);
}

#define V(host, m, t) check(&p, host, m, t, why, sizeof(why))

static void rules_basic(void **state)
{
    struct al_netpolicy p;
    char why[512];
    (void)state;
    al_netpolicy_init(&p);
    assert_int_equal(V("api.example.com", "GET", "/x"), NP_RULES_NONE);
    add_rule(&p, "api.example.com", "GET HEAD", "/repos/acme/app/**", NULL);
    assert_true(np_reqrules_has_host(&p, "api.example.com"));
    assert_false(np_reqrules_has_host(&p, "example.com"));
    assert_false(np_reqrules_has_host(&p, "x.api.example.com"));
    assert_int_equal(V("other.example.com", "POST", "/x"), NP_RULES_NONE);
    assert_int_equal(V("api.example.com", "GET", "/repos/acme/app"), NP_RULES_MATCH);
    assert_string_equal(why, "GET,HEAD /repos/acme/app/**");
    assert_int_equal(V("api.example.com", "GET", "/repos/acme/app/"), NP_RULES_MATCH);
    assert_int_equal(V("api.example.com", "HEAD", "/repos/acme/app/a/b/c"), NP_RULES_MATCH);
    assert_int_equal(V("api.example.com", "GET", "/repos/acme/app/pulls?page=2"), NP_RULES_MATCH);
    assert_int_equal(V("api.example.com", "POST", "/repos/acme/app"), NP_RULES_MISS);
    assert_string_equal(why, "POST /repos/acme/app matches no request rule for "
                             "api.example.com (GET,HEAD /repos/acme/app/**)");
    assert_int_equal(V("api.example.com", "get", "/repos/acme/app"), NP_RULES_MISS);
    assert_int_equal(V("api.example.com", "GET", "/repos/acme/application"), NP_RULES_MISS);
    assert_int_equal(V("api.example.com", "GET", "/repos/acme"), NP_RULES_MISS);
    assert_int_equal(V("api.example.com", "GET", "/repos/acme/app/../other"), NP_RULES_MISS);
    assert_string_equal(why, "GET /repos/acme/other matches no request rule for "
                             "api.example.com (GET,HEAD /repos/acme/app/**)");
    assert_int_equal(V("api.example.com", "GET", "/repos/acme/app/%2e%2e/other"), NP_RULES_MISS);
    assert_int_equal(V("api.example.com", "GET", "/Repos/acme/app"), NP_RULES_MISS);
    assert_int_equal(V("api.example.com", "GET", "//repos/acme/app"), NP_RULES_MISS);
    assert_int_equal(V("api.example.com", "GET", "/repos/acme/%61pp/x"), NP_RULES_MATCH);
    al_netpolicy_free(&p);
}

static void rules_globs(void **state)
{
    struct al_netpolicy p;
    char why[512];
    (void)state;
    al_netpolicy_init(&p);
    add_rule(&p, "h.test", NULL, "/a/*/c /x/**/y /f/*.json /p/** /q/**/** /e/a*b*c", NULL);
    static const struct {
        const char *t;
        int ok;
    } cases[] = {
        {"/a/b/c", 1}, {"/a//c", 1},     {"/a/b/b/c", 0},   {"/a/c", 0},        {"/a/b/c/", 0},
        {"/x/y", 1},   {"/x/1/y", 1},    {"/x/1/2/3/y", 1}, {"/x/y/y", 1},      {"/x/1/y/z", 0},
        {"/x", 0},     {"/f/a.json", 1}, {"/f/.json", 1},   {"/f/a/b.json", 0}, {"/f/a.jsonx", 0},
        {"/p", 1},     {"/p/", 1},       {"/p/a/b/c", 1},   {"/pp", 0},         {"/q", 1},
        {"/q/a/b", 1}, {"/e/abc", 1},    {"/e/aXbYc", 1},   {"/e/aXbY", 0},     {"/e/abcbc", 1},
        {"/e/acb", 0}, {"/", 0},         {"/x/y/../y", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum np_rules_verdict v = V("h.test", "DELETE", cases[i].t);
        if (v != (cases[i].ok ? NP_RULES_MATCH : NP_RULES_MISS))
            fail_msg("%s: got %d", cases[i].t, (int)v);
    }
    al_netpolicy_free(&p);
    /* any path, any method: the rule still makes the host a rules host */
    al_netpolicy_init(&p);
    add_rule(&p, "h.test", NULL, NULL, NULL);
    assert_int_equal(V("h.test", "PATCH", "/anything/at/all"), NP_RULES_MATCH);
    assert_string_equal(why, "ANY /**");
    al_netpolicy_free(&p);
    /* many "**" against a long path: must stay fast (no exponential backtracking) */
    al_netpolicy_init(&p);
    add_rule(&p, "h.test", NULL, "/**/a/**/a/**/a/**/a/**/a/**/a/**/b", NULL);
    char t[4096];
    size_t n = 0;
    while (n + 2 < 4000) {
        memcpy(t + n, "/a", 2);
        n += 2;
    }
    t[n] = '\0';
    assert_int_equal(V("h.test", "GET", t), NP_RULES_MISS);
    memcpy(t + n, "/b", 3);
    assert_int_equal(V("h.test", "GET", t), NP_RULES_MATCH);
    al_netpolicy_free(&p);
}

static void rules_query(void **state)
{
    struct al_netpolicy p;
    char why[512];
    (void)state;
    al_netpolicy_init(&p);
    add_rule(&p, "q.test", "GET", "/search", "q page per_page");
    add_rule(&p, "q.test", "GET", "/exact", "");
    assert_int_equal(V("q.test", "GET", "/search"), NP_RULES_MATCH);
    assert_int_equal(V("q.test", "GET", "/search?"), NP_RULES_MATCH);
    assert_int_equal(V("q.test", "GET", "/search?q=x&page=2"), NP_RULES_MATCH);
    assert_int_equal(V("q.test", "GET", "/search?q"), NP_RULES_MATCH);
    assert_int_equal(V("q.test", "GET", "/search?q=a&&page=1&"), NP_RULES_MATCH);
    assert_int_equal(V("q.test", "GET", "/search?%71=x&p%61ge=1"), NP_RULES_MATCH);
    assert_int_equal(V("q.test", "GET", "/search?q=x&token=1"), NP_RULES_MISS);
    assert_string_equal(why, "GET /search matches no request rule for q.test "
                             "(GET /search query:q,page,per_page; GET /exact query:none)");
    assert_int_equal(V("q.test", "GET", "/search?Q=x"), NP_RULES_MISS);
    assert_int_equal(V("q.test", "GET", "/search?q%3D=x"), NP_RULES_MISS);
    assert_int_equal(V("q.test", "GET", "/search?=x"), NP_RULES_MISS);
    assert_int_equal(V("q.test", "GET", "/exact"), NP_RULES_MATCH);
    assert_int_equal(V("q.test", "GET", "/exact?"), NP_RULES_MATCH);
    assert_int_equal(V("q.test", "GET", "/exact?a=1"), NP_RULES_MISS);
    char longkey[600];
    memcpy(longkey, "/search?", 8);
    memset(longkey + 8, 'q', 400);
    longkey[408] = '\0';
    assert_int_equal(V("q.test", "GET", longkey), NP_RULES_MISS);
    al_netpolicy_free(&p);
}

static void rules_hosts_and_why(void **state)
{
    struct al_netpolicy p;
    char why[512];
    (void)state;
    al_netpolicy_init(&p);
    add_rule(&p, "*.example.com", "GET", "/read/**", NULL);
    add_rule(&p, "api.example.com", "POST", "/write", NULL);
    assert_int_equal(V("example.com", "POST", "/x"), NP_RULES_NONE);
    assert_int_equal(V("a.example.com", "GET", "/read/x"), NP_RULES_MATCH);
    assert_int_equal(V("a.b.example.com", "GET", "/read"), NP_RULES_MATCH);
    assert_int_equal(V("a.example.com", "POST", "/write"), NP_RULES_MISS);
    assert_int_equal(V("api.example.com", "POST", "/write"), NP_RULES_MATCH);
    assert_string_equal(why, "POST /write");
    assert_int_equal(V("api.example.com", "GET", "/read/1"), NP_RULES_MATCH);
    assert_int_equal(V("api.example.com", "PUT", "/read/1"), NP_RULES_MISS);
    assert_string_equal(why, "PUT /read/1 matches no request rule for api.example.com "
                             "(GET /read/**; POST /write)");
    /* a port on the rule host is ignored (host only) */
    al_netpolicy_free(&p);
    al_netpolicy_init(&p);
    add_rule(&p, "p.test:8443", "GET", "/", NULL);
    assert_true(np_reqrules_has_host(&p, "p.test"));
    /* why is bounded and holds no control bytes */
    char small[40];
    assert_int_equal(check(&p, "p.test", "GET", "/%C3%A9/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", small,
                           sizeof(small)),
                     NP_RULES_MISS);
    assert_true(strlen(small) < sizeof(small));
    assert_string_equal(small + strlen(small) - 3, "...");
    char raw[] = "/\x01\xff";
    char tiny[4];
    assert_int_equal(np_reqrules_check(&p, "p.test", "G\nT", raw, 3, why, sizeof(why)),
                     NP_RULES_MISS);
    for (const char *c = why; *c; c++)
        assert_true(*c >= 0x20 && *c < 0x7f);
    assert_int_equal(np_reqrules_check(&p, "p.test", "GET", "/x", 2, tiny, sizeof(tiny)),
                     NP_RULES_MISS);
    assert_true(strlen(tiny) < sizeof(tiny));
    assert_int_equal(np_reqrules_check(&p, "p.test", "GET", "/x", 2, NULL, 0), NP_RULES_MISS);
    assert_int_equal(np_reqrules_check(NULL, "p.test", "GET", "/x", 2, why, sizeof(why)),
                     NP_RULES_NONE);
    al_netpolicy_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalise_ok),        cmocka_unit_test(normalise_refused),
        cmocka_unit_test(normalise_long),      cmocka_unit_test(rules_basic),
        cmocka_unit_test(rules_globs),         cmocka_unit_test(rules_query),
        cmocka_unit_test(rules_hosts_and_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
