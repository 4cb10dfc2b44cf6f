#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/error.h"
#include "airlock/gp_pktline.h"

static void parses_data_and_specials(void **state)
{
    struct gp_pkt p;
    assert_int_equal(gp_pktline_parse(&p, "0009hello", 9), 9);
    assert_int_equal(p.type, GP_PKT_DATA);
    assert_int_equal(p.len, 5);
    assert_memory_equal(p.data, "hello", 5);
    assert_int_equal(gp_pktline_parse(&p, "0000rest", 8), 4);
    assert_int_equal(p.type, GP_PKT_FLUSH);
    assert_int_equal(gp_pktline_parse(&p, "0001", 4), 4);
    assert_int_equal(p.type, GP_PKT_DELIM);
    assert_int_equal(gp_pktline_parse(&p, "0002", 4), 4);
    assert_int_equal(p.type, GP_PKT_RESPONSE_END);
    assert_int_equal(gp_pktline_parse(&p, "0004", 4), 4);
    assert_int_equal(p.type, GP_PKT_DATA);
    assert_int_equal(p.len, 0);
    assert_int_equal(gp_pktline_parse(&p, "000AHELLOX", 10), 10); /* upper-case hex */
}

static void incomplete_needs_more(void **state)
{
    struct gp_pkt p;
    assert_int_equal(gp_pktline_parse(&p, "", 0), 0);
    assert_int_equal(gp_pktline_parse(&p, "00", 2), 0);
    assert_int_equal(gp_pktline_parse(&p, "0009hell", 8), 0);
    assert_int_equal(gp_pktline_parse(&p, "fff0", 4), 0);
}

static void malformed_refused(void **state)
{
    struct gp_pkt p;
    assert_int_equal(gp_pktline_parse(&p, "0003", 4), AL_EINVAL);
    assert_int_equal(gp_pktline_parse(&p, "zzzz", 4), AL_EINVAL);
    assert_int_equal(gp_pktline_parse(&p, "00g9hello", 9), AL_EINVAL);
    assert_int_equal(gp_pktline_parse(&p, "fff1", 4), AL_EINVAL); /* > 65520 */
    assert_int_equal(gp_pktline_parse(&p, "ffff", 4), AL_EINVAL);
    assert_int_equal(gp_pktline_parse(&p, "-001", 4), AL_EINVAL);
    assert_int_equal(gp_pktline_parse(&p, " 009", 4), AL_EINVAL);
}

static void writer_round_trip(void **state)
{
    struct al_buf b;
    struct gp_pkt p;
    al_buf_init(&b, 1 << 20);
    assert_int_equal(gp_pktline_printf(&b, "ng %s %s\n", "refs/heads/x", "why"), 0);
    assert_int_equal(gp_pktline_flush(&b), 0);
    assert_int_equal(gp_pktline_parse(&p, b.ptr, b.len), 24);
    assert_memory_equal(p.data, "ng refs/heads/x why\n", 20);
    assert_memory_equal(b.ptr + 24, "0000", 4);
    char big[GP_PKT_MAX];
    memset(big, 'a', sizeof(big));
    assert_int_equal(gp_pktline_append(&b, big, GP_PKT_MAX - 3), AL_ETOOBIG);
    assert_int_equal(gp_pktline_append(&b, big, GP_PKT_MAX - 4), 0);
    al_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_data_and_specials),
        cmocka_unit_test(incomplete_needs_more),
        cmocka_unit_test(malformed_refused),
        cmocka_unit_test(writer_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
