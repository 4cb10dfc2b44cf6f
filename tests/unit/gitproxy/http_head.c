#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/error.h"
#include "airlock/gp_http_head.h"

static int parse(struct gp_http_req *req, const char *s)
{
    return gp_http_head_parse(req, s, strlen(s));
}

static void parses_git_request(void **state)
{
    struct gp_http_req r;
    assert_int_equal(parse(&r, "POST /git.test/o/r.git/git-upload-pack HTTP/1.1\r\n"
                               "Host: 127.0.0.1\r\n"
                               "authorization:   Basic eDp5\r\n"
                               "Content-Type: application/x-git-upload-pack-request\r\n"
                               "Content-Encoding: gzip\r\n"
                               "Git-Protocol: version=2\r\n"
                               "Content-Length: 1234\r\n"
                               "Expect: 100-continue\r\n\r\n"),
                     0);
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.path, "/git.test/o/r.git/git-upload-pack");
    assert_string_equal(r.query, "");
    assert_string_equal(r.authorization, "Basic eDp5");
    assert_string_equal(r.content_encoding, "gzip");
    assert_string_equal(r.git_protocol, "version=2");
    assert_int_equal(r.content_length, 1234);
    assert_false(r.chunked);
    assert_true(r.expect_continue);
    assert_int_equal(parse(&r, "GET /h/o/r.git/info/refs?service=git-receive-pack HTTP/1.0\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n"),
                     0);
    assert_string_equal(r.query, "service=git-receive-pack");
    assert_true(r.chunked);
    assert_int_equal(r.content_length, -1);
}

static void refuses_malformed(void **state)
{
    struct gp_http_req r;
    const char *bad[] = {
        "\r\n\r\n",
        "GET\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET /  HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        "VERYLONGMETHOD / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\n: empty\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        "GET / HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\n\r",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int err = parse(&r, bad[i]);
        if (err != AL_EINVAL && err != AL_ETOOBIG)
            fail_msg("accepted case %zu", i);
    }
    char big[GP_HTTP_HEAD_MAX + 64];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
    assert_int_equal(gp_http_head_parse(&r, big, sizeof(big)), AL_ETOOBIG);
    /* An Authorization header that does not fit is refused, not truncated. */
    char auth[GP_HTTP_HEAD_MAX];
    int n = snprintf(auth, sizeof(auth), "GET / HTTP/1.1\r\nAuthorization: Bearer %0*d\r\n\r\n",
                     (int)sizeof(r.authorization), 0);
    assert_int_equal(gp_http_head_parse(&r, auth, (size_t)n), AL_ETOOBIG);
    /* Long path */
    char path[2048 + 64];
    n = snprintf(path, sizeof(path), "GET /%0*d HTTP/1.1\r\n\r\n", 2000, 0);
    assert_int_equal(gp_http_head_parse(&r, path, (size_t)n), AL_ETOOBIG);
}

static int parse_n(struct gp_http_req *req, const char *s, size_t n)
{
    return gp_http_head_parse(req, s, n);
}

static void refuses_injection_and_smuggling_forms(void **state)
{
    (void)state;
    struct gp_http_req r;
    /* each case: the head, then the header its message must name (or NULL) */
    const char *bad[][2] = {
        {"GET / HTTP/1.1\r\nGit-Protocol: version=2\rX: 1\r\n\r\n", "Git-Protocol"},
        {"GET / HTTP/1.1\r\nGit-Protocol: version=2\nX: 1\r\n\r\n", "Git-Protocol"},
        {"GET / HTTP/1.1\r\nGit-Protocol: version=2\n\nGET /x HTTP/1.1\nHost: x\r\n\r\n",
         "Git-Protocol"},
        {"GET / HTTP/1.1\r\nAccept: */*\nX: 1\r\n\r\n", "Accept"},
        {"POST / HTTP/1.1\r\nContent-Type: a\rb\r\n\r\n", "Content-Type"},
        {"POST / HTTP/1.1\r\nContent-Encoding: gzip\n\r\n\r\n", "Content-Encoding"},
        {"GET / HTTP/1.1\r\nUser-Agent: git\x01\r\n\r\n", "User-Agent"},
        {"GET / HTTP/1.1\r\nUser-Agent: git\x7f\r\n\r\n", "User-Agent"},
        {"GET / HTTP/1.1\r\nUser-Agent: git\x1b[0m\r\n\r\n", "User-Agent"},
        /* obs-fold, names that are not tokens, whitespace before the colon */
        {"GET / HTTP/1.1\r\nGit-Protocol: version=2\r\n X-Folded: 1\r\n\r\n", NULL},
        {"GET / HTTP/1.1\r\nGit-Protocol: version=2\r\n\tX-Folded: 1\r\n\r\n", NULL},
        {"GET / HTTP/1.1\r\n Git-Protocol: version=2\r\n\r\n", NULL},
        {"GET / HTTP/1.1\r\nGit-Protocol : version=2\r\n\r\n", NULL},
        {"GET / HTTP/1.1\r\nGit Protocol: version=2\r\n\r\n", NULL},
        {"GET / HTTP/1.1\r\nGET http://x/ HTTP/1.1\r\n\r\n", NULL},
        {"GET / HTTP/1.1\r\nX\x80: 1\r\n\r\n", NULL},
        /* duplicates of every header kept or framing */
        {"GET / HTTP/1.1\r\nGit-Protocol: version=2\r\ngit-protocol: version=1\r\n\r\n",
         "Git-Protocol"},
        {"GET / HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
         "Authorization"},
        {"POST / HTTP/1.1\r\nContent-Type: a\r\nContent-Type: a\r\n\r\n", "Content-Type"},
        {"POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Encoding: gzip\r\n\r\n",
         "Content-Encoding"},
        {"GET / HTTP/1.1\r\nAccept: */*\r\nAccept: */*\r\n\r\n", "Accept"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
         "Transfer-Encoding"},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "Host"},
        {"GET / HTTP/1.1\r\nExpect: 100-continue\r\nExpect: 100-continue\r\n\r\n", "Expect"},
        /* request line */
        {"GET / HTTP/1.2\r\n\r\n", NULL},
        {"G(T / HTTP/1.1\r\n\r\n", NULL},
        {"GET /a\x7f HTTP/1.1\r\n\r\n", NULL},
        {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", NULL},
        {"GET /a\rb HTTP/1.1\r\n\r\n", NULL},
        {"GET /a\tb HTTP/1.1\r\n\r\n", NULL},
        {"GET /a\nHost: x HTTP/1.1\r\n\r\n", NULL},
        {"\r\nGET / HTTP/1.1\r\n\r\n", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int err = parse(&r, bad[i][0]);
        if (err != AL_EINVAL)
            fail_msg("case %zu: got %d", i, err);
        if (bad[i][1] && !strstr(al_error_last(), bad[i][1]))
            fail_msg("case %zu: '%s' does not name %s", i, al_error_last(), bad[i][1]);
    }
    /* NUL bytes, wherever they are */
    static const char nul_value[] = "GET / HTTP/1.1\r\nGit-Protocol: version=2\0X: 1\r\n\r\n";
    assert_int_equal(parse_n(&r, nul_value, sizeof(nul_value) - 1), AL_EINVAL);
    assert_string_equal(al_error_last(), "NUL byte in the Git-Protocol header");
    static const char nul_name[] = "GET / HTTP/1.1\r\nGit\0Protocol: version=2\r\n\r\n";
    assert_int_equal(parse_n(&r, nul_name, sizeof(nul_name) - 1), AL_EINVAL);
    static const char nul_line[] = "GET /\0 HTTP/1.1\r\n\r\n";
    assert_int_equal(parse_n(&r, nul_line, sizeof(nul_line) - 1), AL_EINVAL);
    /* a kept value that does not fit is refused, never cut to a valid one */
    char longv[1024];
    int n =
        snprintf(longv, sizeof(longv), "GET / HTTP/1.1\r\nGit-Protocol: version=2:x=%0*d\r\n\r\n",
                 (int)sizeof(r.git_protocol), 0);
    assert_int_equal(parse_n(&r, longv, (size_t)n), AL_ETOOBIG);
    assert_non_null(strstr(al_error_last(), "Git-Protocol"));
}

static void accepts_what_clients_send(void **state)
{
    (void)state;
    struct gp_http_req r;
    /* tabs, non-ASCII text in a header nobody keeps, an empty value */
    assert_int_equal(parse(&r, "GET /h/o/r.git/info/refs?service=git-upload-pack HTTP/1.1\r\n"
                               "Host: 127.0.0.1:7418\r\n"
                               "User-Agent: git/2.39.5 \xc3\xa9\tx\r\n"
                               "Accept: */*\r\n"
                               "Accept-Encoding: deflate, gzip, br, zstd\r\n"
                               "Accept-Language: C, *;q=0.9\r\n"
                               "Pragma: no-cache\r\n"
                               "X-Empty:\r\n"
                               "Git-Protocol:\tversion=2 \r\n\r\n"),
                     0);
    assert_string_equal(r.git_protocol, "version=2");
    assert_string_equal(r.accept, "*/*");
    assert_int_equal(r.seen, GP_HDR_HOST | GP_HDR_ACCEPT | GP_HDR_GIT_PROTOCOL);
    assert_int_equal(parse(&r, "POST /h/o/r.git/git-upload-pack HTTP/1.0\r\n"
                               "Content-Type: application/x-git-upload-pack-request\r\n"
                               "Content-Encoding: gzip\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n"),
                     0);
    assert_int_equal(r.seen,
                     GP_HDR_CONTENT_TYPE | GP_HDR_CONTENT_ENCODING | GP_HDR_TRANSFER_ENCODING);
    assert_true(r.chunked);
    /* an empty kept header is seen (and left to its check), not absent */
    assert_int_equal(parse(&r, "GET / HTTP/1.1\r\nGit-Protocol: \r\n\r\n"), 0);
    assert_int_equal(r.seen, GP_HDR_GIT_PROTOCOL);
    assert_string_equal(r.git_protocol, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_git_request),
        cmocka_unit_test(refuses_malformed),
        cmocka_unit_test(refuses_injection_and_smuggling_forms),
        cmocka_unit_test(accepts_what_clients_send),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
