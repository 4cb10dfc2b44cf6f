/* airlock-connect's parser of the proxy's answer to CONNECT. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "airlock/error.h"
#include "connect_reply.h"

static int parse(struct np_connect_reply *r, const char *s)
{
    return np_connect_reply_parse(r, s, strlen(s));
}

static void accepted(void **state)
{
    struct np_connect_reply r;
    const char *ok = "HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0-x";
    assert_int_equal(parse(&r, ok), (int)strlen(ok) - 9);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.error, "");
    assert_false(r.has_length);
    assert_int_equal(parse(&r, "HTTP/1.0 200\n\n"), 14);
    assert_int_equal(r.status, 200);
}

static void refused(void **state)
{
    struct np_connect_reply r;
    const char *deny = "HTTP/1.1 403 Forbidden\r\nX-Airlock-Error:  blocked-by-policy \r\n"
                       "content-length: 42\r\nConnection: close\r\n\r\nairlock: ...";
    assert_int_equal(parse(&r, deny), (int)(strstr(deny, "airlock:") - deny));
    assert_int_equal(r.status, 403);
    assert_string_equal(r.error, "blocked-by-policy");
    assert_true(r.has_length);
    assert_int_equal(r.content_length, 42);
}

static void incomplete(void **state)
{
    struct np_connect_reply r;
    assert_int_equal(parse(&r, ""), 0);
    assert_int_equal(parse(&r, "HTTP/1.1 200 OK\r\n"), 0);
    assert_int_equal(parse(&r, "HTTP/1.1 200 OK\r\n\r"), 0);
}

static void malformed(void **state)
{
    struct np_connect_reply r;
    static const char *const bad[] = {
        "\r\n\r\n",
        "\n\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 x\r\n\r\n",
        "HTTP/1.1 abc x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 9999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
        "HTTP/1.1 200 O\rK\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        int rc = parse(&r, bad[i]);
        if (rc != AL_EINVAL)
            fail_msg("case %zu \"%s\": %d", i, bad[i], rc);
    }
    const char nul[] = "HTTP/1.1 200 O\0K\r\n\r\n";
    assert_int_equal(np_connect_reply_parse(&r, nul, sizeof(nul) - 1), AL_EINVAL);
}

static void too_big(void **state)
{
    static char big[NP_CONNECT_REPLY_MAX + 100];
    struct np_connect_reply r;
    memset(big, 'a', sizeof(big));
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    assert_int_equal(np_connect_reply_parse(&r, big, NP_CONNECT_REPLY_MAX - 1), 0);
    assert_int_equal(np_connect_reply_parse(&r, big, sizeof(big)), AL_ETOOBIG);
    /* an X-Airlock-Error longer than the field is truncated, not overflowed */
    char longerr[300];
    int n =
        snprintf(longerr, sizeof(longerr), "HTTP/1.1 403 F\r\nX-Airlock-Error: %0200d\r\n\r\n", 7);
    assert_int_equal(np_connect_reply_parse(&r, longerr, (size_t)n), n);
    assert_int_equal(strlen(r.error), sizeof(r.error) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepted),  cmocka_unit_test(refused), cmocka_unit_test(incomplete),
        cmocka_unit_test(malformed), cmocka_unit_test(too_big),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
