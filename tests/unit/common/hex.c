#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "airlock/error.h"
#include "airlock/hex.h"

static void digits(void **state)
{
    (void)state;
    assert_int_equal(al_hex_digit('0'), 0);
    assert_int_equal(al_hex_digit('9'), 9);
    assert_int_equal(al_hex_digit('a'), 10);
    assert_int_equal(al_hex_digit('F'), 15);
    const char *bad = "gG/:@`\x7f \t\n+-";
    for (const char *c = bad; *c; c++)
        assert_int_equal(al_hex_digit((unsigned char)*c), -1);
    assert_int_equal(al_hex_digit(0), -1);
    assert_int_equal(al_hex_digit(0xff), -1);
}

static void decode(void **state)
{
    (void)state;
    unsigned char out[4];
    assert_int_equal(al_hex_decode(out, "00ff7Fa0", 4), 0);
    assert_memory_equal(out, "\x00\xff\x7f\xa0", 4);
    /* a bad digit in any place, a short string (the NUL is not a digit),
     * signs and spaces that strtoul would take */
    const char *bad[] = {"0x112233", "00ff7Fa", " 0ff7fa0", "+0ff7fa0", "00ff7fag", "00\n07fa0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(al_hex_decode(out, bad[i], 4), AL_EINVAL);
    assert_int_equal(al_hex_decode(out, "", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digits),
        cmocka_unit_test(decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
