#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "airlock/error.h"
#include "http_parse.h"
#include "tls_term.h"

static const char REAL_A[] = "ghp_realrealrealrealrealrealrealreal0123";
static const char SENT_A[] = "ghp_sentsentsentsentsentsentsentsent9876";
static const char REAL_B[] = "short";
static const char SENT_B[] = "sentinelBBBBBBBBBBBBBBBBBBBBBBBBBB";

static struct al_credset g_set;

static int setup(void **state)
{
    (void)state;
    struct al_strlist a = {0}, b = {0};
    al_strlist_push(&a, "api.example.com");
    al_strlist_push(&b, "*.other.example");
    assert_int_equal(al_credset_add(&g_set, "A", REAL_A, strlen(REAL_A), &a, SENT_A), 0);
    assert_int_equal(al_credset_add(&g_set, "B", REAL_B, strlen(REAL_B), &b, SENT_B), 0);
    al_strlist_free(&a);
    al_strlist_free(&b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    al_credset_free(&g_set);
    return 0;
}

static struct np_tt_ctx ctx_for(uint64_t inject_ok)
{
    struct np_tt_ctx c = {
        .host = "api.example.com",
        .port = 443,
        .creds = &g_set,
        .inject_ok = inject_ok,
    };
    return c;
}

static int process(const char *in, uint64_t inject_ok, struct np_tt_req *r)
{
    struct np_tt_ctx c = ctx_for(inject_ok);
    np_tt_req_init(r);
    return np_tt_request_process(&c, in, strlen(in), r);
}

static void test_bearer_replaced(void **state)
{
    (void)state;
    struct np_tt_req r;
    char in[512];
    snprintf(in, sizeof(in),
             "GET /x?y=1 HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer %s\r\n\r\nNEXT",
             SENT_A);
    int n = process(in, 1, &r);
    assert_int_equal(n, (int)(strlen(in) - 4));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.head.ptr, REAL_A));
    assert_null(strstr(r.head.ptr, SENT_A));
    assert_string_equal(r.credential, "A");
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.path, "/x");
    assert_false(r.has_body);
    np_tt_req_free(&r);
}

/* To a host where a credential may be put back, the response must come
 * back uncompressed (the re-masker sees bytes): Accept-Encoding becomes
 * identity, TE goes. Other hosts keep the client's headers. */
static void test_identity_encoding(void **state)
{
    (void)state;
    struct np_tt_req r;
    const char *in = "GET / HTTP/1.1\r\nHost: api.example.com\r\naccept-encoding: gzip, br\r\n"
                     "TE: gzip\r\n\r\n";
    assert_true(process(in, 1, &r) > 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.head.ptr, "\r\nAccept-Encoding: identity\r\n"));
    assert_null(strstr(r.head.ptr, "gzip"));
    np_tt_req_free(&r);
    assert_true(process(in, 0, &r) > 0);
    assert_non_null(strstr(r.head.ptr, "accept-encoding: gzip, br"));
    assert_null(strstr(r.head.ptr, "identity"));
    np_tt_req_free(&r);
}

static void test_forbidden_refused(void **state)
{
    (void)state;
    struct np_tt_req r;
    char in[512];
    /* B is not allowed for api.example.com: refused, never rewritten */
    snprintf(in, sizeof(in), "GET /?k=%s HTTP/1.1\r\nHost: api.example.com\r\n\r\n", SENT_B);
    assert_true(process(in, 1, &r) > 0);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.error, "credential-not-allowed-here");
    assert_string_equal(r.credential, "B");
    assert_non_null(strstr(r.why, "credential B is not allowed for api.example.com"));
    assert_non_null(strstr(r.why, "*.other.example"));
    assert_null(strstr(r.why, REAL_B));
    np_tt_req_free(&r);
    /* A's sentinel with A's bit clear */
    snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: api.example.com\r\nX: %s\r\n\r\n", SENT_A);
    assert_true(process(in, 0, &r) > 0);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.credential, "A");
    np_tt_req_free(&r);
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int status;
        const char *error;
    } cases[] = {
        {"GET http://api.example.com/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n", 400,
         "bad-request"},
        {"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com\r\n\r\n", 400,
         "bad-request"},
        {"GET / HTTP/1.1\r\n\r\n", 400, "bad-request"}, /* no Host */
        {"GET / HTTP/1.1\r\nHost: evil.example.com\r\n\r\n", 421, "host-mismatch"},
        {"GET / HTTP/1.1\r\nHost: api.example.com:8443\r\n\r\n", 421, "host-mismatch"},
        {"GET / HTTP/1.1\r\nHost: api.example.com\r\nHost: x\r\n\r\n", 400, "bad-request"},
        {"GET / HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 1\r\nTransfer-Encoding: "
         "chunked\r\n\r\n",
         400, "bad-request"},
        {"GET /a#frag HTTP/1.1\r\nHost: api.example.com\r\n\r\n", 400, "bad-request"},
        {"GET / HTTP/2.0\r\nHost: api.example.com\r\n\r\n", 505, "bad-request"},
        {"GET / HTTP/1.1\r\nHost: api.example.com\r\nBad\x01: x\r\n\r\n", 400, "bad-request"},
        {"GET / HTTP/1.1\nHost: api.example.com\r\n\r\n", 400, "bad-request"},
        /* Upgrade on a session with credentials */
        {"GET / HTTP/1.1\r\nHost: api.example.com\r\nConnection: upgrade\r\nUpgrade: "
         "websocket\r\n\r\n",
         403, "upgrade-not-inspected"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct np_tt_req r;
        int n = process(cases[i].in, 1, &r);
        if (n <= 0 || r.status != cases[i].status || strcmp(r.error, cases[i].error) != 0)
            fail_msg("case %zu: n=%d status=%d error=%s", i, n, r.status,
                     r.error ? r.error : "(none)");
        np_tt_req_free(&r);
    }
}

static void test_need_more_and_bodies(void **state)
{
    (void)state;
    struct np_tt_req r;
    assert_int_equal(process("GET / HTTP/1.1\r\nHost: api.exa", 1, &r), 0);
    np_tt_req_free(&r);
    /* a JSON body whose replacement is longer than... B is shorter than its
     * sentinel: buffered (no framing header in the head) when B may be
     * replaced */
    const char *json = "POST /j HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: "
                       "application/json; charset=utf-8\r\nContent-Length: 10\r\n\r\n";
    assert_true(process(json, 3, &r) > 0);
    assert_true(r.body_subst);
    assert_true(r.rebuffer);
    assert_null(strstr(r.head.ptr, "Content-Length"));
    np_tt_req_free(&r);
    /* same length: still read whole before the head goes (a refused body
     * never lets its head through), as is any body of known length up to
     * NP_TT_BODY_MAX; a longer one is streamed behind its head */
    assert_true(process(json, 1, &r) > 0);
    assert_true(r.body_subst);
    assert_true(r.rebuffer);
    assert_null(strstr(r.head.ptr, "Content-Length"));
    np_tt_req_free(&r);
    char big[256];
    snprintf(big, sizeof(big),
             "POST /j HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: text/plain\r\n"
             "Content-Length: %u\r\n\r\n",
             NP_TT_BODY_MAX + 1);
    assert_true(process(big, 1, &r) > 0);
    assert_false(r.body_subst);
    assert_false(r.rebuffer);
    assert_non_null(strstr(r.head.ptr, "Content-Length: 1048577"));
    np_tt_req_free(&r);
    const char *vnd = "PUT /j HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: "
                      "application/vnd.api+json\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_true(process(vnd, 1, &r) > 0);
    assert_true(r.body_subst && r.chunked && r.has_body);
    np_tt_req_free(&r);
    const char *bin = "POST /b HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: "
                      "application/octet-stream\r\nContent-Length: 3\r\n\r\n";
    assert_true(process(bin, 1, &r) > 0);
    assert_false(r.body_subst);
    np_tt_req_free(&r);
    /* HTTP/1.0 without Host: the tunnel's host is added */
    assert_true(process("HEAD / HTTP/1.0\r\n\r\n", 1, &r) > 0);
    assert_int_equal(r.status, 0);
    assert_true(r.head_method && r.close_after);
    assert_non_null(strstr(r.head.ptr, "Host: api.example.com\r\n"));
    np_tt_req_free(&r);
}

static void test_response_parser(void **state)
{
    (void)state;
    struct np_http_response rs;
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(np_http_parse_response(&rs, ok, strlen(ok)), (int)strlen(ok) - 5);
    assert_int_equal(rs.status, 200);
    assert_true(rs.has_content_length && rs.content_length == 5 && !rs.conn_close);
    const char *ch = "HTTP/1.1 201 \r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    assert_true(np_http_parse_response(&rs, ch, strlen(ch)) > 0);
    assert_true(rs.chunked);
    const char *gz = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
    assert_true(np_http_parse_response(&rs, gz, strlen(gz)) > 0);
    assert_true(!rs.chunked && rs.conn_close);
    const char *h10 = "HTTP/1.0 200 OK\r\n\r\n";
    assert_true(np_http_parse_response(&rs, h10, strlen(h10)) > 0);
    assert_true(rs.conn_close);
    assert_int_equal(np_http_parse_response(&rs, "HTTP/1.1 200 OK\r\nX: y", 22), 0);
    static const char *bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 099 x\r\n\r\n",
        "HTTP/1.1 200 OK\nX: y\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX\x7f: y\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (np_http_parse_response(&rs, bad[i], strlen(bad[i])) != AL_EINVAL)
            fail_msg("bad response %zu accepted", i);
    char *big = malloc(NP_HTTP_RESP_HEAD_MAX + 10);
    memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
    memset(big + 17, 'a', NP_HTTP_RESP_HEAD_MAX - 7);
    assert_int_equal(np_http_parse_response(&rs, big, NP_HTTP_RESP_HEAD_MAX + 10), AL_ETOOBIG);
    free(big);
}

static void test_chunked_data_left(void **state)
{
    (void)state;
    struct np_chunked ch;
    size_t used;
    np_chunked_init(&ch);
    assert_int_equal(np_chunked_data_left(&ch), 0);
    assert_int_equal(np_chunked_feed(&ch, "a\r\n", 3, &used), 0);
    assert_int_equal(np_chunked_data_left(&ch), 10);
    assert_int_equal(np_chunked_feed(&ch, "0123456789", 10, &used), 0);
    assert_int_equal(np_chunked_data_left(&ch), 0);
    assert_int_equal(np_chunked_feed(&ch, "\r\n0\r\n\r\n", 7, &used), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer_replaced),   cmocka_unit_test(test_forbidden_refused),
        cmocka_unit_test(test_malformed),         cmocka_unit_test(test_need_more_and_bodies),
        cmocka_unit_test(test_response_parser),   cmocka_unit_test(test_chunked_data_left),
        cmocka_unit_test(test_identity_encoding),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
