#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/gp_pktline.h"
#include "airlock/gp_receive.h"

#define Z40 "0000000000000000000000000000000000000000"
#define A40 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B40 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void pkt(struct al_buf *b, const char *data, size_t len)
{
    assert_int_equal(gp_pktline_append(b, data, len), 0);
}

static void parses_commands_caps_options(void **state)
{
    struct al_buf b;
    struct gp_receive r;
    al_buf_init(&b, 1 << 20);
    static const char first[] = A40 " " B40 " refs/heads/agent/x\0report-status side-band-64k "
                                    "push-options atomic agent=git/2.39";
    pkt(&b, first, sizeof(first) - 1);
    pkt(&b, Z40 " " B40 " refs/heads/agent/y\n", 40 + 1 + 40 + 1 + 18 + 1);
    gp_pktline_flush(&b);
    pkt(&b, "ci.skip\n", 8);
    pkt(&b, "x=y", 3);
    gp_pktline_flush(&b);
    size_t head = b.len;
    al_buf_append(&b, "PACK....", 8);
    /* Every strict prefix of the head asks for more bytes. */
    for (size_t i = 0; i < head; i++)
        assert_int_equal(gp_receive_parse(&r, b.ptr, i), AL_EAGAIN);
    assert_int_equal(gp_receive_parse(&r, b.ptr, b.len), 0);
    assert_int_equal(r.head_len, head);
    assert_int_equal(r.ncmds, 2);
    assert_string_equal(r.cmds[0].old_oid, A40);
    assert_string_equal(r.cmds[0].new_oid, B40);
    assert_string_equal(r.cmds[0].ref, "refs/heads/agent/x");
    assert_string_equal(r.cmds[1].ref, "refs/heads/agent/y");
    assert_true(gp_oid_is_zero(r.cmds[1].old_oid));
    assert_true(gp_receive_has_cap(&r, "report-status"));
    assert_true(gp_receive_has_cap(&r, "side-band-64k"));
    assert_true(gp_receive_has_cap(&r, "agent"));
    assert_false(gp_receive_has_cap(&r, "report-status-v2"));
    assert_int_equal(r.options.len, 2);
    assert_string_equal(r.options.items[0], "ci.skip");
    assert_false(r.probe);
    gp_receive_clear(&r);
    al_buf_free(&b);
}

static void probe_and_shallow(void **state)
{
    struct gp_receive r;
    assert_int_equal(gp_receive_parse(&r, "0000", 4), 0);
    assert_true(r.probe);
    assert_int_equal(r.head_len, 4);
    gp_receive_clear(&r);
    struct al_buf b;
    al_buf_init(&b, 1 << 20);
    pkt(&b, "shallow " A40, 48);
    pkt(&b, A40 " " B40 " refs/heads/x\0report-status", 40 + 1 + 40 + 13 + 1 + 13);
    gp_pktline_flush(&b);
    assert_int_equal(gp_receive_parse(&r, b.ptr, b.len), 0);
    assert_int_equal(r.shallow.len, 1);
    assert_int_equal(r.ncmds, 1);
    gp_receive_clear(&r);
    al_buf_free(&b);
}

static void expect_invalid(const char *what, const struct al_buf *b)
{
    struct gp_receive r;
    int err = gp_receive_parse(&r, b->ptr, b->len);
    if (err != AL_EINVAL && err != AL_ETOOBIG)
        fail_msg("%s: parsed (%d)", what, err);
}

static void malformed_refused(void **state)
{
    struct al_buf b;
    al_buf_init(&b, 4 << 20);
    /* short oid */
    pkt(&b, "abc " B40 " refs/heads/x", 4 + 41 + 12);
    gp_pktline_flush(&b);
    expect_invalid("short oid", &b);
    al_buf_reset(&b);
    /* upper-case hex is not an oid git sends */
    pkt(&b, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA " B40 " refs/heads/x", 41 + 41 + 12);
    gp_pktline_flush(&b);
    expect_invalid("upper-case oid", &b);
    al_buf_reset(&b);
    /* missing ref */
    pkt(&b, A40 " " B40, 81);
    gp_pktline_flush(&b);
    expect_invalid("missing ref", &b);
    al_buf_reset(&b);
    /* capabilities on the second command */
    pkt(&b, A40 " " B40 " refs/heads/x", 81 + 13);
    pkt(&b, A40 " " B40 " refs/heads/y\0atomic", 81 + 13 + 7);
    gp_pktline_flush(&b);
    expect_invalid("late caps", &b);
    al_buf_reset(&b);
    /* delimiter packet */
    al_buf_puts(&b, "0001");
    expect_invalid("delim", &b);
    al_buf_reset(&b);
    /* garbage length */
    al_buf_puts(&b, "zzzz0000");
    expect_invalid("garbage", &b);
    al_buf_reset(&b);
    /* push certificate */
    pkt(&b, "push-cert\0report-status", 23);
    expect_invalid("push-cert", &b);
    al_buf_reset(&b);
    /* shallow only */
    pkt(&b, "shallow " A40, 48);
    gp_pktline_flush(&b);
    expect_invalid("shallow only", &b);
    al_buf_reset(&b);
    /* too many commands */
    for (int i = 0; i <= GP_RECEIVE_MAX_CMDS; i++) {
        char line[128];
        int n = snprintf(line, sizeof(line), A40 " " B40 " refs/heads/b%d", i);
        pkt(&b, line, (size_t)n);
    }
    gp_pktline_flush(&b);
    expect_invalid("too many commands", &b);
    al_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_commands_caps_options),
        cmocka_unit_test(probe_and_shallow),
        cmocka_unit_test(malformed_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
