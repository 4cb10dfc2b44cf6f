#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
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

/* ald_str_quote on a request's bytes: what is kept, what is escaped, where
 * a long value is cut. */
static void test_quote(void **state)
{
    (void)state;
    char out[64];
    /* {input, its length, expected output} */
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {"", 0, ""},
        {"s_0123abc", 9, "s_0123abc"},
        {"s_\xff\xfe", 4, "s_\\xFF\\xFE"},               /* not UTF-8 */
        {"\xc3\x28", 2, "\\xC3("},                       /* a lead byte without its continuation */
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},               /* valid UTF-8 is kept */
        {"\xe2\x82\xac", 3, "\xe2\x82\xac"},             /* U+20AC */
        {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},     /* U+1F600 */
        {"\xe2\x82", 2, "\\xE2\\x82"},                   /* cut off by the end */
        {"\xc0\xaf", 2, "\\xC0\\xAF"},                   /* overlong "/" */
        {"\xed\xa0\x80", 3, "\\xED\\xA0\\x80"},          /* a surrogate */
        {"\xf4\x90\x80\x80", 4, "\\xF4\\x90\\x80\\x80"}, /* past U+10FFFF */
        {"a\r\nb", 4, "a\\x0D\\x0Ab"},                   /* no line breaks */
        {"a\0b", 3, "a\\x00b"},                          /* NUL */
        {"\x7f\x1b", 2, "\\x7F\\x1B"},                   /* DEL, ESC */
        {"\xc2\x85", 2, "\\xC2\\x85"},                   /* C1 NEL */
        {"\xc2\xa0", 2, "\xc2\xa0"},                     /* U+00A0 is not a control */
        {"a\\xFF", 5, "a\\\\xFF"},                       /* a backslash is escaped too */
        {"\"q\"", 3, "\"q\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        assert_ptr_equal(ald_str_quote(out, sizeof(out), cases[i].in, cases[i].len), out);
        assert_string_equal(out, cases[i].want);
    }
    /* only `len` bytes are read, NULs or not */
    assert_string_equal(ald_str_quote(out, sizeof(out), "abc", 2), "ab");

    /* too long: cut at a character or escape boundary, ending in "..." */
    char big[300];
    memset(big, 0xff, sizeof(big));
    ald_str_quote(out, sizeof(out), big, sizeof(big));
    assert_true(strlen(out) < sizeof(out));
    assert_int_equal(strlen(out), 15 * 4 + 3); /* 15 escapes fit with "..." and the NUL */
    assert_string_equal(out + 60, "...");
    memset(big, 'a', sizeof(big));
    ald_str_quote(out, sizeof(out), big, sizeof(big));
    assert_int_equal(strlen(out), sizeof(out) - 1);
    assert_string_equal(out + sizeof(out) - 4, "...");
    /* a value that fits exactly is not cut */
    ald_str_quote(out, sizeof(out), big, sizeof(out) - 1);
    assert_int_equal(strlen(out), sizeof(out) - 1);
    assert_int_equal(out[sizeof(out) - 2], 'a');
    /* a multi-byte character is never split */
    char euros[3 * 30];
    for (size_t i = 0; i < sizeof(euros); i += 3)
        memcpy(euros + i, "\xe2\x82\xac", 3);
    ald_str_quote(out, sizeof(out), euros, sizeof(euros));
    size_t n = strlen(out);
    assert_true(n >= 3 && memcmp(out + n - 3, "...", 3) == 0);
    assert_int_equal(ald_utf8_valid_prefix((const unsigned char *)out, n), n);
    assert_int_equal((n - 3) % 3, 0);
    /* tiny buffers */
    char tiny[4];
    assert_string_equal(ald_str_quote(tiny, 1, "abc", 3), "");
    assert_string_equal(ald_str_quote(tiny, 3, "abcdef", 6), "..");
    assert_string_equal(ald_str_quote(tiny, 4, "abcdef", 6), "...");
    assert_string_equal(ald_str_quote(tiny, 4, "abc", 3), "abc");
    assert_string_equal(ald_str_quote(tiny, 4, "\xff", 1), "...");
}

static void test_scrub(void **state)
{
    (void)state;
    char s[32];
    snprintf(s, sizeof(s), "%s", "ok caf\xc3\xa9");
    assert_int_equal(ald_utf8_scrub(s, strlen(s)), 0);
    assert_string_equal(s, "ok caf\xc3\xa9");
    snprintf(s, sizeof(s), "%s", "s_\xff\xfe");
    assert_int_equal(ald_utf8_scrub(s, strlen(s)), 2);
    assert_string_equal(s, "s_??");
    snprintf(s, sizeof(s), "%s", "cut \xe2\x82"); /* a %.Ns that cut a character */
    assert_int_equal(ald_utf8_scrub(s, strlen(s)), 2);
    assert_string_equal(s, "cut ??");
    snprintf(s, sizeof(s), "%s", "\xc3\x28x");
    assert_int_equal(ald_utf8_scrub(s, strlen(s)), 1);
    assert_string_equal(s, "?(x");
    snprintf(s, sizeof(s), "%s", "\xed\xa0\x80");
    assert_int_equal(ald_utf8_scrub(s, strlen(s)), 3);
    assert_string_equal(s, "???");
    assert_int_equal(ald_utf8_scrub(s, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64),          cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_decode_parse), cmocka_unit_test(test_quote),
        cmocka_unit_test(test_scrub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
