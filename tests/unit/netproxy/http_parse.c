#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/error.h"
#include "http_parse.h"

static int parse(struct np_http_request *r, const char *s)
{
    return np_http_parse_request(r, s, strlen(s));
}

static void absolute_form(void **state)
{
    struct np_http_request r;
    const char *req = "GET http://Example.com:8080/a/b?c=d HTTP/1.1\r\n"
                      "Host: example.com:8080\r\n"
                      "Proxy-Connection: keep-alive\r\n"
                      "Content-Length: 5\r\n\r\nhello";
    int n = parse(&r, req);
    assert_int_equal(n, (int)(strlen(req) - 5));
    assert_false(r.connect);
    assert_string_equal(r.host, "Example.com");
    assert_int_equal(r.port, 8080);
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.path.len, 8);
    assert_memory_equal(req + r.path.off, "/a/b?c=d", 8);
    assert_true(r.has_content_length);
    assert_int_equal(r.content_length, 5);
    assert_int_equal(r.nheaders, 3);
    assert_false(r.conn_close);
}

static void connect_form(void **state)
{
    struct np_http_request r;
    assert_true(parse(&r, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n") > 0);
    assert_true(r.connect);
    assert_string_equal(r.host, "example.com");
    assert_int_equal(r.port, 443);
    assert_true(parse(&r, "CONNECT [::1]:443 HTTP/1.1\r\n\r\n") > 0);
    assert_true(r.host_is_v6);
    assert_string_equal(r.host, "::1");
    /* Host without a port means the scheme's default; trailing dot and case ignored */
    assert_true(parse(&r, "CONNECT example.com:443 HTTP/1.1\r\nHost: EXAMPLE.com.\r\n\r\n") > 0);
    assert_true(parse(&r, "GET http://a.test/ HTTP/1.1\r\nHost: a.test:80\r\n\r\n") > 0);
    assert_int_equal(r.port, 80);
    assert_true(parse(&r, "GET http://a.test HTTP/1.0\r\n\r\n") > 0);
    assert_int_equal(r.path.len, 0);
    assert_true(r.conn_close);
}

static void upgrade_flag(void **state)
{
    struct np_http_request r;
    assert_true(parse(&r, "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n"
                          "Connection: keep-alive, Upgrade\r\n\r\n") > 0);
    assert_true(r.upgrade);
    assert_true(
        parse(&r, "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n\r\n") > 0);
    assert_false(r.upgrade); /* Upgrade without Connection: upgrade is ignored */
    assert_true(
        parse(&r, "GET http://a.test/ HTTP/1.0\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n") > 0);
    assert_false(r.upgrade);
}

static void need_more(void **state)
{
    struct np_http_request r;
    assert_int_equal(parse(&r, ""), 0);
    assert_int_equal(parse(&r, "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"), 0);
    assert_int_equal(parse(&r, "CONNECT a.test:443 HTTP/1.1\r\n\r"), 0);
}

struct bad_case {
    const char *req;
    int status;
};

static const struct bad_case bad[] = {
    /* targets and ports */
    {"CONNECT example.com HTTP/1.1\r\n\r\n", 400},
    {"CONNECT example.com:0 HTTP/1.1\r\n\r\n", 400},
    {"CONNECT example.com:65536 HTTP/1.1\r\n\r\n", 400},
    {"CONNECT example.com:99999999 HTTP/1.1\r\n\r\n", 400},
    {"CONNECT example.com:-1 HTTP/1.1\r\n\r\n", 400},
    {"CONNECT example.com: HTTP/1.1\r\n\r\n", 400},
    {"CONNECT :443 HTTP/1.1\r\n\r\n", 400},
    {"CONNECT allowed.com@evil.test:443 HTTP/1.1\r\n\r\n", 400},
    {"CONNECT evil.test/allowed.com:443 HTTP/1.1\r\n\r\n", 400},
    {"CONNECT [::1 HTTP/1.1\r\n\r\n", 400},
    {"GET /relative HTTP/1.1\r\nHost: a.test\r\n\r\n", 400},
    {"GET https://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", 400},
    {"GET ftp://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", 400},
    {"GET http://allowed.com@evil.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n", 400},
    {"GET http://a.test:0/ HTTP/1.1\r\nHost: a.test:0\r\n\r\n", 400},
    {"GET http://a.test:65536/ HTTP/1.1\r\nHost: a.test\r\n\r\n", 400},
    {"GET http://a.test:/ HTTP/1.1\r\nHost: a.test\r\n\r\n", 400},
    {"GET http:///x HTTP/1.1\r\nHost: a.test\r\n\r\n", 400},
    {"GET http://a%2etest/ HTTP/1.1\r\nHost: a.test\r\n\r\n", 400},
    {"GET http://a.test/#frag HTTP/1.1\r\nHost: a.test\r\n\r\n", 400},
    /* Host mismatch */
    {"GET http://allowed.com/ HTTP/1.1\r\nHost: evil.test\r\n\r\n", 400},
    {"GET http://allowed.com/ HTTP/1.1\r\nHost: allowed.com:81\r\n\r\n", 400},
    {"CONNECT allowed.com:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n", 400},
    {"CONNECT allowed.com:443 HTTP/1.1\r\nHost: allowed.com:8443\r\n\r\n", 400},
    {"GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n", 400},
    {"GET http://a.test/ HTTP/1.1\r\n\r\n", 400}, /* 1.1 without Host */
    /* framing / smuggling */
    {"POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n"
     "Transfer-Encoding: chunked\r\n\r\n",
     400},
    {"POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n"
     "Content-Length: 5\r\n\r\n",
     400},
    {"POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nContent-Length: "
     "5\r\n\r\n",
     400},
    {"POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nContent-Length: -5\r\n\r\n", 400},
    {"POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5x\r\n\r\n", 400},
    {"POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     501},
    {"POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: chunked\r\n\r\n",
     400},
    {"POST http://a.test/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    /* syntax */
    {"GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n folded\r\n\r\n", 400},
    {"GET http://a.test/ HTTP/1.1\r\nHost : a.test\r\n\r\n", 400},
    {"GET http://a.test/ HTTP/1.1\r\n: empty\r\n\r\n", 400},
    {"GET http://a.test/ HTTP/1.1\r\nHost: a.test\nX: y\r\n\r\n", 400},
    {"GET http://a.test/ HTTP/1.1\r\nHost: a.test\rX: y\r\n\r\n", 400},
    {"GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX: a\001b\r\n\r\n", 400},
    {"GET  http://a.test/ HTTP/1.1\r\n\r\n", 400},
    {"GET http://a.test/ HTTP/2.0\r\n\r\n", 505},
    {"GET http://a.test/ HTTP/1.2\r\n\r\n", 505},
    {"GET http://a.test/ HTTP/1.1 \r\n\r\n", 400},
    {"GET http://a.test/ http/1.1\r\n\r\n", 400},
    {"G(T http://a.test/ HTTP/1.1\r\n\r\n", 400},
    {"\r\n\r\n", 400},
};

static void malformed(void **state)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct np_http_request r;
        int n = parse(&r, bad[i].req);
        if (n >= 0 || r.status != bad[i].status)
            fail_msg("case %zu: rc %d status %d (%s), want %d: %s", i, n, r.status,
                     r.error ? r.error : "-", bad[i].status, bad[i].req);
    }
}

static void nul_in_head(void **state)
{
    struct np_http_request r;
    const char req[] = "GET http://a.test/ HTTP/1.1\r\nHost: a\0.test\r\n";
    assert_int_equal(np_http_parse_request(&r, req, sizeof(req) - 1), AL_EINVAL);
    assert_int_equal(r.status, 400);
}

static void oversized(void **state)
{
    struct np_http_request r;
    size_t len = NP_HTTP_HEAD_MAX + 100;
    char *big = malloc(len);
    assert_non_null(big);
    int off = snprintf(big, len, "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX: ");
    memset(big + off, 'a', len - (size_t)off);
    assert_int_equal(np_http_parse_request(&r, big, len), AL_ETOOBIG);
    assert_int_equal(r.status, 431);
    /* a head that ends just past the limit is refused too */
    memcpy(big + NP_HTTP_HEAD_MAX - 2, "\r\n\r\n", 4);
    assert_int_equal(np_http_parse_request(&r, big, len), AL_ETOOBIG);
    free(big);

    /* too many headers */
    char many[NP_HTTP_HEAD_MAX];
    size_t pos = (size_t)snprintf(many, sizeof(many), "GET http://a.test/ HTTP/1.1\r\n");
    for (int i = 0; i < NP_HTTP_MAX_HEADERS + 1; i++)
        pos += (size_t)snprintf(many + pos, sizeof(many) - pos, "X-%d: y\r\n", i);
    pos += (size_t)snprintf(many + pos, sizeof(many) - pos, "\r\n");
    assert_int_equal(np_http_parse_request(&r, many, pos), AL_ETOOBIG);
    assert_int_equal(r.status, 431);
}

static void chunked_framing(void **state)
{
    struct np_chunked ch;
    size_t used;
    const char body[] = "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\nGET next";
    np_chunked_init(&ch);
    assert_int_equal(np_chunked_feed(&ch, body, sizeof(body) - 1, &used), 1);
    assert_int_equal(used, sizeof(body) - 1 - strlen("GET next"));

    /* byte by byte gives the same answer */
    np_chunked_init(&ch);
    size_t total = 0;
    int rc = 0;
    for (size_t i = 0; i < sizeof(body) - 1 && rc == 0; i++) {
        rc = np_chunked_feed(&ch, body + i, 1, &used);
        total += used;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(total, sizeof(body) - 1 - strlen("GET next"));

    const char *bad_bodies[] = {"x\r\n",        "5\r\nhelloXX",           "\r\n",
                                "5\nhello\r\n", "ffffffffffffffffff\r\n", "0\r\n\n"};
    for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++) {
        np_chunked_init(&ch);
        assert_int_equal(np_chunked_feed(&ch, bad_bodies[i], strlen(bad_bodies[i]), &used),
                         AL_EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(absolute_form),   cmocka_unit_test(connect_form),
        cmocka_unit_test(need_more),       cmocka_unit_test(malformed),
        cmocka_unit_test(nul_in_head),     cmocka_unit_test(oversized),
        cmocka_unit_test(chunked_framing), cmocka_unit_test(upgrade_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
