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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_git_request),
        cmocka_unit_test(refuses_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
