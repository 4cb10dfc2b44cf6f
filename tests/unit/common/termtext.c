#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "airlock/termtext.h"

static void control_bytes(void **state)
{
    (void)state;
    char out[64];
    assert_string_equal(al_term_line(out, sizeof(out), "a\nb\rc\x1b[2Jd\x7f", AL_TERM_ASCII),
                        "a?b?c?[2Jd?");
    assert_string_equal(al_term_line(out, sizeof(out), NULL, AL_TERM_ASCII), "");
    assert_string_equal(al_term_line(out, sizeof(out), "", AL_TERM_KEEP_UTF8), "");
}

static void high_bytes(void **state)
{
    (void)state;
    char out[64];
    assert_string_equal(al_term_line(out, sizeof(out), "caf\xc3\xa9", AL_TERM_ASCII), "caf??");
    assert_string_equal(al_term_line(out, sizeof(out), "caf\xc3\xa9\t", AL_TERM_KEEP_UTF8),
                        "caf\xc3\xa9?");
}

static void cut(void **state)
{
    (void)state;
    char out[8];
    assert_string_equal(al_term_line(out, sizeof(out), "1234567", AL_TERM_ASCII), "1234567");
    assert_string_equal(al_term_line(out, sizeof(out), "12345678", AL_TERM_ASCII), "1234...");
    char tiny[4];
    assert_string_equal(al_term_line(tiny, sizeof(tiny), "abcdef", AL_TERM_ASCII), "...");
}

static void put(void **state)
{
    (void)state;
    char buf[64] = {0};
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    assert_non_null(f);
    al_term_put(f, "x\ny\xc3\xa9", AL_TERM_KEEP_UTF8);
    al_term_put(f, "|\xc3\xa9", AL_TERM_ASCII);
    al_term_put(f, NULL, AL_TERM_ASCII);
    fclose(f);
    assert_string_equal(buf, "x?y\xc3\xa9|??");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(control_bytes),
        cmocka_unit_test(high_bytes),
        cmocka_unit_test(cut),
        cmocka_unit_test(put),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
