/* Unit tests for the WebSocket frame codec (common/src/wsframe.c): round
 * trips at every length form, incomplete input, and each malformed header
 * a peer may send: unmasked client frames, reserved bits, unknown opcodes,
 * fragmented or long control frames, non-minimal and 2^63 lengths, over
 * the limit; fragments out of order; close payloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "airlock/error.h"
#include "airlock/wsframe.h"

#include <stdlib.h>
#include <string.h>

static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};

/* A whole masked or unmasked frame of `len` bytes of 'x' in buf. */
static size_t build(unsigned char *buf, size_t cap, int fin, enum al_ws_opcode op, size_t len,
                    int masked)
{
    long h = al_ws_header_encode(buf, cap, fin, op, len, masked ? mask : NULL);
    assert_true(h > 0);
    assert_true((size_t)h + len <= cap);
    memset(buf + h, 'x', len);
    if (masked)
        al_ws_unmask(buf + h, len, mask, 0);
    return (size_t)h + len;
}

static void test_round_trip(void **state)
{
    (void)state;
    static unsigned char buf[70000 + AL_WS_MAX_HEADER];
    size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof(lens) / sizeof(*lens); i++) {
        for (int masked = 0; masked <= 1; masked++) {
            size_t n = build(buf, sizeof(buf), 1, AL_WS_BINARY, lens[i], masked);
            struct al_ws_frame f;
            /* every proper prefix asks for more */
            for (size_t k = 0; k < n; k += (k < 20 ? 1 : 997))
                assert_int_equal(al_ws_frame_parse(&f, buf, k, masked, 1 << 20), 0);
            assert_int_equal(al_ws_frame_parse(&f, buf, n, masked, 1 << 20), (long)n);
            assert_int_equal(f.fin, 1);
            assert_int_equal(f.opcode, AL_WS_BINARY);
            assert_int_equal(f.masked, masked);
            assert_int_equal(f.payload_len, lens[i]);
            assert_int_equal(f.header_len + f.payload_len, n);
            unsigned char *pl = buf + f.header_len;
            if (masked)
                al_ws_unmask(pl, f.payload_len, f.mask, 0);
            for (size_t k = 0; k < f.payload_len; k++)
                assert_int_equal(pl[k], 'x');
            /* and the other side's masking is refused */
            assert_int_equal(al_ws_frame_parse(&f, buf, n, !masked, 1 << 20), AL_EINVAL);
        }
    }
}

static void test_unmask_in_pieces(void **state)
{
    (void)state;
    unsigned char data[11] = "hello world", copy[11];
    memcpy(copy, data, sizeof(data));
    al_ws_unmask(copy, sizeof(copy), mask, 0);
    al_ws_unmask(copy, 3, mask, 0);
    al_ws_unmask(copy + 3, 8, mask, 3);
    assert_memory_equal(copy, data, sizeof(data));
}

static void test_malformed(void **state)
{
    (void)state;
    unsigned char buf[64];
    struct al_ws_frame f;
    size_t n = build(buf, sizeof(buf), 1, AL_WS_TEXT, 5, 1);
    /* reserved bits */
    for (int rsv = 1; rsv < 8; rsv++) {
        buf[0] = (unsigned char)(0x81 | rsv << 4);
        assert_int_equal(al_ws_frame_parse(&f, buf, n, 1, 1024), AL_EINVAL);
    }
    /* unknown opcodes */
    int bad_ops[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
    for (size_t i = 0; i < sizeof(bad_ops) / sizeof(*bad_ops); i++) {
        buf[0] = (unsigned char)(0x80 | bad_ops[i]);
        assert_int_equal(al_ws_frame_parse(&f, buf, n, 1, 1024), AL_EINVAL);
    }
    /* decided from the first two bytes */
    buf[0] = 0x83;
    assert_int_equal(al_ws_frame_parse(&f, buf, 2, 1, 1024), AL_EINVAL);
    /* a fragmented control frame */
    buf[0] = AL_WS_PING;
    assert_int_equal(al_ws_frame_parse(&f, buf, n, 1, 1024), AL_EINVAL);
    /* a control frame over 125 bytes (126 and 127 forms) */
    unsigned char big[200];
    big[0] = 0x80 | AL_WS_CLOSE;
    big[1] = 0x80 | 126;
    big[2] = 0;
    big[3] = 126;
    assert_int_equal(al_ws_frame_parse(&f, big, 4, 1, 1024), AL_EINVAL);
    big[0] = 0x80 | AL_WS_PONG;
    big[1] = 0x80 | 127;
    assert_int_equal(al_ws_frame_parse(&f, big, 2, 1, 1024), AL_EINVAL);
    /* lengths not in their shortest form */
    unsigned char l16[8] = {0x82, 0x80 | 126, 0, 125, 1, 2, 3, 4};
    assert_int_equal(al_ws_frame_parse(&f, l16, sizeof(l16), 1, 1 << 20), AL_EINVAL);
    unsigned char l64[14] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4};
    assert_int_equal(al_ws_frame_parse(&f, l64, sizeof(l64), 1, 1 << 20), AL_EINVAL);
    /* the top bit of a 64-bit length */
    unsigned char top[10] = {0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(al_ws_frame_parse(&f, top, sizeof(top), 1, SIZE_MAX), AL_EINVAL);
    /* over the limit: refused from the header, before the payload */
    unsigned char huge[10] = {0x82, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0};
    assert_int_equal(al_ws_frame_parse(&f, huge, sizeof(huge), 1, 65536), AL_ETOOBIG);
    unsigned char just[4] = {0x82, 0x80 | 126, 0x04, 0x01}; /* 1025 */
    assert_int_equal(al_ws_frame_parse(&f, just, sizeof(just), 1, 1024), AL_ETOOBIG);
    just[3] = 0x00; /* 1024: waits for the rest */
    assert_int_equal(al_ws_frame_parse(&f, just, sizeof(just), 1, 1024), 0);
    /* an unmasked client frame, a masked server frame */
    n = build(buf, sizeof(buf), 1, AL_WS_BINARY, 3, 0);
    assert_int_equal(al_ws_frame_parse(&f, buf, n, 1, 1024), AL_EINVAL);
    assert_int_equal(al_ws_frame_parse(&f, buf, 1, 1, 1024), 0);
}

static void test_fragments(void **state)
{
    (void)state;
    struct al_ws_msgstate st = {0};
    struct al_ws_frame f = {.fin = 0, .opcode = AL_WS_TEXT};
    assert_int_equal(al_ws_msg_step(&st, &f), AL_WS_TEXT);
    f.opcode = AL_WS_CONT;
    assert_int_equal(al_ws_msg_step(&st, &f), AL_WS_TEXT);
    /* a new message before the last one ended */
    struct al_ws_frame nw = {.fin = 1, .opcode = AL_WS_BINARY};
    assert_int_equal(al_ws_msg_step(&st, &nw), AL_EINVAL);
    f.fin = 1;
    assert_int_equal(al_ws_msg_step(&st, &f), AL_WS_TEXT);
    assert_int_equal(st.opcode, 0);
    /* a continuation of nothing */
    assert_int_equal(al_ws_msg_step(&st, &f), AL_EINVAL);
    assert_int_equal(al_ws_msg_step(&st, &nw), AL_WS_BINARY);
    /* control frames are not steps of a message */
    struct al_ws_frame ping = {.fin = 1, .opcode = AL_WS_PING};
    assert_int_equal(al_ws_msg_step(&st, &ping), AL_EINVAL);
}

static void test_encode_limits(void **state)
{
    (void)state;
    unsigned char buf[AL_WS_MAX_HEADER];
    assert_int_equal(al_ws_header_encode(buf, sizeof(buf), 0, AL_WS_PING, 0, NULL), AL_EINVAL);
    assert_int_equal(al_ws_header_encode(buf, sizeof(buf), 1, AL_WS_CLOSE, 126, NULL), AL_EINVAL);
    assert_int_equal(al_ws_header_encode(buf, sizeof(buf), 1, (enum al_ws_opcode)3, 0, NULL),
                     AL_EINVAL);
    assert_int_equal(al_ws_header_encode(buf, sizeof(buf), 1, AL_WS_BINARY, 1ULL << 63, NULL),
                     AL_EINVAL);
    assert_int_equal(al_ws_header_encode(buf, 3, 1, AL_WS_BINARY, 126, NULL), AL_ETOOBIG);
    assert_int_equal(al_ws_header_encode(buf, sizeof(buf), 1, AL_WS_BINARY, 1ULL << 40, mask), 14);
}

static void test_close(void **state)
{
    (void)state;
    unsigned char pl[AL_WS_MAX_CONTROL];
    uint16_t code;
    size_t n = al_ws_close_payload(pl, 1009, "too big");
    assert_int_equal(n, 9);
    assert_int_equal(al_ws_close_parse(pl, n, &code), 0);
    assert_int_equal(code, 1009);
    assert_memory_equal(pl + 2, "too big", 7);
    assert_int_equal(al_ws_close_parse(pl, 0, &code), 0);
    assert_int_equal(code, 1005);
    assert_int_equal(al_ws_close_parse(pl, 1, &code), AL_EINVAL);
    uint16_t bad[] = {0, 999, 1004, 1005, 1006, 1012, 2999, 5000};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        pl[0] = (unsigned char)(bad[i] >> 8);
        pl[1] = (unsigned char)bad[i];
        assert_int_equal(al_ws_close_parse(pl, 2, &code), AL_EINVAL);
    }
    /* a long reason is cut to 123 bytes, never inside a UTF-8 sequence */
    char reason[300];
    memset(reason, 'a', 122);
    memcpy(reason + 122, "\xc3\xa9tail", 7); /* é across the cut */
    n = al_ws_close_payload(pl, 1000, reason);
    assert_int_equal(n, 2 + 122);
    memset(reason, 'b', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    assert_int_equal(al_ws_close_payload(pl, 1000, reason), AL_WS_MAX_CONTROL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_unmask_in_pieces),
        cmocka_unit_test(test_malformed),     cmocka_unit_test(test_fragments),
        cmocka_unit_test(test_encode_limits), cmocka_unit_test(test_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
