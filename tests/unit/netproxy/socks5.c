#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "airlock/error.h"
#include "socks5.h"

static void greeting(void **state)
{
    bool noauth;
    assert_int_equal(np_socks5_parse_greeting((const uint8_t *)"\x05\x01\x00", 3, &noauth), 3);
    assert_true(noauth);
    assert_int_equal(np_socks5_parse_greeting((const uint8_t *)"\x05\x02\x02\x01", 4, &noauth), 4);
    assert_false(noauth);
    assert_int_equal(np_socks5_parse_greeting((const uint8_t *)"\x05\x02\x00", 3, &noauth), 0);
    assert_int_equal(np_socks5_parse_greeting((const uint8_t *)"\x05", 1, &noauth), 0);
    assert_int_equal(np_socks5_parse_greeting((const uint8_t *)"\x04\x01\x00", 3, &noauth),
                     AL_EINVAL);
    assert_int_equal(np_socks5_parse_greeting((const uint8_t *)"\x05\x00", 2, &noauth), AL_EINVAL);
}

static void connect_requests(void **state)
{
    struct np_socks5_request r;
    const uint8_t v4[] = {5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90};
    assert_int_equal(np_socks5_parse_request(&r, v4, sizeof(v4)), 10);
    assert_true(r.is_ip);
    assert_string_equal(r.host, "127.0.0.1");
    assert_int_equal(r.port, 8080);

    const uint8_t dom[] = {5, 1, 0, 3, 9, 'a', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 80};
    assert_int_equal(np_socks5_parse_request(&r, dom, sizeof(dom)), 16);
    assert_false(r.is_ip);
    assert_string_equal(r.host, "a.example");
    assert_int_equal(r.port, 80);
    assert_int_equal(np_socks5_parse_request(&r, dom, sizeof(dom) - 1), 0);

    uint8_t v6[22] = {5, 1, 0, 4};
    v6[19] = 1;
    v6[20] = 1;
    v6[21] = 187;
    assert_int_equal(np_socks5_parse_request(&r, v6, sizeof(v6)), 22);
    assert_string_equal(r.host, "::1");
    assert_int_equal(r.port, 443);
}

struct bad_case {
    const uint8_t bytes[24];
    size_t len;
    uint8_t reply;
};

static void refused(void **state)
{
    static const struct bad_case cases[] = {
        {{5, 2, 0, 1, 1, 2, 3, 4, 0, 80}, 10, NP_SOCKS5_CMD_UNSUPPORTED}, /* BIND */
        {{5, 3, 0, 1, 1, 2, 3, 4, 0, 80}, 10, NP_SOCKS5_CMD_UNSUPPORTED}, /* UDP ASSOCIATE */
        {{5, 9, 0, 1}, 4, NP_SOCKS5_CMD_UNSUPPORTED},
        {{5, 1, 0, 2, 1, 2, 3, 4, 0, 80}, 10, NP_SOCKS5_ATYP_UNSUPPORTED},
        {{4, 1, 0, 1, 1, 2, 3, 4, 0, 80}, 10, NP_SOCKS5_GENERAL_FAILURE},
        {{5, 1, 1, 1, 1, 2, 3, 4, 0, 80}, 10, NP_SOCKS5_GENERAL_FAILURE},
        {{5, 1, 0, 1, 1, 2, 3, 4, 0, 0}, 10, NP_SOCKS5_GENERAL_FAILURE}, /* port 0 */
        {{5, 1, 0, 3, 0, 0, 80}, 7, NP_SOCKS5_GENERAL_FAILURE},          /* empty name */
        /* NUL inside the name: "a.com\0.evil" */
        {{5, 1, 0, 3, 11, 'a', '.', 'c', 'o', 'm', 0, '.', 'e', 'v', 'i', 'l', 0, 80},
         18,
         NP_SOCKS5_NOT_ALLOWED},
        {{5, 1, 0, 3, 5, 'a', '/', 'b', '.', 'c', 0, 80}, 12, NP_SOCKS5_NOT_ALLOWED},
        {{5, 1, 0, 3, 5, 'a', '@', 'b', '.', 'c', 0, 80}, 12, NP_SOCKS5_NOT_ALLOWED},
        {{5, 1, 0, 3, 5, 'a', ' ', 'b', '.', 'c', 0, 80}, 12, NP_SOCKS5_NOT_ALLOWED},
        {{5, 1, 0, 3, 5, 'a', '\n', 'b', '.', 'c', 0, 80}, 12, NP_SOCKS5_NOT_ALLOWED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct np_socks5_request r;
        int rc = np_socks5_parse_request(&r, cases[i].bytes, cases[i].len);
        if (rc != AL_EINVAL || r.reply != cases[i].reply)
            fail_msg("case %zu: rc %d reply %u want %u", i, rc, r.reply, cases[i].reply);
    }
}

static void reply_format(void **state)
{
    uint8_t out[32];
    struct al_addr a;
    assert_int_equal(al_addr_parse(&a, "10.0.0.1", 8), 0);
    assert_int_equal(np_socks5_reply(out, 0, &a, 1080), 10);
    assert_memory_equal(out, "\x05\x00\x00\x01\x0a\x00\x00\x01\x04\x38", 10);
    assert_int_equal(np_socks5_reply(out, 2, NULL, 0), 10);
    assert_int_equal(out[1], 2);
    assert_int_equal(al_addr_parse(&a, "::1", 3), 0);
    assert_int_equal(np_socks5_reply(out, 0, &a, 1), 22);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(greeting),
        cmocka_unit_test(connect_requests),
        cmocka_unit_test(refused),
        cmocka_unit_test(reply_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
