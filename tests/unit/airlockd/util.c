#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "airlockd/core/util.h"

#include "airlock/base64.h"
#include "airlock/error.h"

static void test_b64(void **state)
{
    (void)state;
    const char *cases[][2] = {{"", ""},        {"f", "Zg=="},        {"fo", "Zm8="},
                              {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"\xff\n", "/wo="}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char *enc = al_base64_encode((const unsigned char *)cases[i][0], strlen(cases[i][0]));
        assert_string_equal(enc, cases[i][1]);
        free(enc);
        unsigned char *dec;
        size_t len;
        assert_int_equal(al_base64_decode_alloc(&dec, &len, cases[i][1], strlen(cases[i][1])), 0);
        assert_int_equal(len, strlen(cases[i][0]));
        assert_memory_equal(dec, cases[i][0], len);
        free(dec);
    }
    const char *bad[] = {"Zg=", "Z===", "Zm9v*A==", "=Zm9", "Zg==Zg==", "Zm\n9v"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        unsigned char *dec;
        size_t len;
        assert_int_equal(al_base64_decode_alloc(&dec, &len, bad[i], strlen(bad[i])), AL_EINVAL);
        assert_null(dec);
    }
}

static void test_utf8(void **state)
{
    (void)state;
    const unsigned char ok[] = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80";
    assert_int_equal(ald_utf8_valid_prefix(ok, sizeof(ok) - 1), sizeof(ok) - 1);
    assert_int_equal(ald_utf8_incomplete_tail(ok, sizeof(ok) - 1), 0);
    /* cut inside the euro sign and the emoji */
    assert_int_equal(ald_utf8_incomplete_tail((const unsigned char *)"a\xe2\x82", 3), 2);
    assert_int_equal(ald_utf8_incomplete_tail((const unsigned char *)"\xf0\x9f\x98", 3), 3);
    assert_int_equal(ald_utf8_incomplete_tail((const unsigned char *)"\xc3", 1), 1);
    /* invalid: not an incomplete tail */
    assert_int_equal(ald_utf8_incomplete_tail((const unsigned char *)"\xff", 1), 0);
    assert_int_equal(ald_utf8_valid_prefix((const unsigned char *)"ab\xff", 3), 2);
    assert_int_equal(ald_utf8_valid_prefix((const unsigned char *)"\xc0\x80", 2), 0);
    assert_int_equal(ald_utf8_valid_prefix((const unsigned char *)"\xed\xa0\x80", 3), 0);
    assert_int_equal(ald_utf8_valid_prefix((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
    assert_int_equal(ald_utf8_valid_prefix((const unsigned char *)"\xe0\x80\x80", 3), 0);
}

static void test_decode_parse(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(ald_percent_decode(&out, "a%20b%2Fc", 9), 0);
    assert_string_equal(out, "a b/c");
    free(out);
    assert_int_equal(ald_percent_decode(&out, "%00", 3), AL_EINVAL);
    assert_int_equal(ald_percent_decode(&out, "%4", 2), AL_EINVAL);
    assert_int_equal(ald_percent_decode(&out, "%zz", 3), AL_EINVAL);
    assert_int_equal(ald_percent_decode(&out, "ab%", 3), AL_EINVAL);
    uint64_t v;
    assert_int_equal(ald_parse_u64("42", 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(ald_parse_u64("101", 100, &v), AL_EINVAL);
    assert_int_equal(ald_parse_u64("", 100, &v), AL_EINVAL);
    assert_int_equal(ald_parse_u64("-1", 100, &v), AL_EINVAL);
    assert_int_equal(ald_parse_u64("99999999999999999999", UINT64_MAX, &v), AL_EINVAL);
    assert_int_equal(ald_parse_u64("1 ", 100, &v), AL_EINVAL);
    char t[32];
    ald_time_format(t, 1795457135123ULL);
    assert_string_equal(t, "2026-11-23T18:05:35.123Z");
    char hex[21];
    assert_int_equal(ald_random_hex(hex, 20), 0);
    assert_int_equal(strlen(hex), 20);
    assert_int_equal(strspn(hex, "0123456789abcdef"), 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_decode_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
