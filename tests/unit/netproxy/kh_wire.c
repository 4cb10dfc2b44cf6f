/* The front ↔ key holder channel's messages (netproxy/src/kh_wire.h):
 * every message round-trips, and malformed or out-of-bounds messages are
 * refused by the decoder (and by the encoder, which checks the same
 * bounds). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kh_wire.h"

#include "airlock/error.h"

static uint8_t wire[NP_KH_MSG_MAX + 16];

static const char HEAD[] = "GET /x HTTP/1.1\r\nHost: api.example.com\r\n\r\n";

static size_t enc(const struct np_kh_msg *m)
{
    size_t n = 0;
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), m), 0);
    assert_true(n >= 1 && n <= NP_KH_MSG_MAX);
    return n;
}

static void roundtrip_every_type(void **state)
{
    (void)state;
    struct np_kh_msg m, d;
    size_t n;

    memset(&m, 0, sizeof(m));
    m.type = NP_KH_OPEN;
    snprintf(m.session, sizeof(m.session), "s-1");
    snprintf(m.host, sizeof(m.host), "api.example.com");
    m.port = 443;
    m.flags = NP_KH_OPEN_TLS;
    n = enc(&m);
    assert_int_equal(np_kh_msg_decode(&d, wire, n, NP_KH_FROM_FRONT), 0);
    assert_int_equal(d.type, NP_KH_OPEN);
    assert_string_equal(d.session, "s-1");
    assert_string_equal(d.host, "api.example.com");
    assert_int_equal(d.port, 443);
    assert_int_equal(d.flags, NP_KH_OPEN_TLS);

    memset(&m, 0, sizeof(m));
    m.type = NP_KH_REQ_HEAD;
    m.flags = NP_KH_REQ_BODY_SUBST | NP_KH_REQ_CLOSE;
    m.framing = NP_KH_FRAME_LENGTH;
    m.length = 5000000000ull;
    m.data = (const uint8_t *)HEAD;
    m.data_len = strlen(HEAD);
    n = enc(&m);
    assert_int_equal(np_kh_msg_decode(&d, wire, n, NP_KH_FROM_FRONT), 0);
    assert_int_equal(d.flags, NP_KH_REQ_BODY_SUBST | NP_KH_REQ_CLOSE);
    assert_int_equal(d.framing, NP_KH_FRAME_LENGTH);
    assert_true(d.length == 5000000000ull);
    assert_int_equal(d.data_len, strlen(HEAD));
    assert_memory_equal(d.data, HEAD, strlen(HEAD));
    assert_true(d.data > wire && d.data + d.data_len <= wire + n); /* borrowed */

    memset(&m, 0, sizeof(m));
    m.type = NP_KH_RESP_HEAD;
    m.status = 200;
    m.framing = NP_KH_FRAME_CHUNKED;
    m.used = 0x8000000000000001ull;
    m.data = (const uint8_t *)"HTTP/1.1 200 OK\r\n\r\n";
    m.data_len = 19;
    n = enc(&m);
    assert_int_equal(np_kh_msg_decode(&d, wire, n, NP_KH_FROM_KEYHOLDER), 0);
    assert_int_equal(d.status, 200);
    assert_int_equal(d.framing, NP_KH_FRAME_CHUNKED);
    assert_true(d.used == 0x8000000000000001ull);

    static const uint8_t bytes[] = {0, 1, 2, 0xff, '\r', '\n'};
    const uint8_t types[] = {NP_KH_BODY, NP_KH_RELAY};
    for (size_t i = 0; i < 2; i++) {
        memset(&m, 0, sizeof(m));
        m.type = types[i];
        m.data = bytes;
        m.data_len = sizeof(bytes);
        n = enc(&m);
        assert_int_equal(n, 1 + sizeof(bytes));
        assert_int_equal(np_kh_msg_decode(&d, wire, n, NP_KH_FROM_FRONT), 0);
        assert_memory_equal(d.data, bytes, sizeof(bytes));
    }
    m.type = NP_KH_RESP_BODY;
    n = enc(&m);
    assert_int_equal(np_kh_msg_decode(&d, wire, n, NP_KH_FROM_KEYHOLDER), 0);
    assert_int_equal(d.data_len, sizeof(bytes));

    memset(&m, 0, sizeof(m));
    m.type = NP_KH_ERROR;
    m.status = 502;
    m.close = 1;
    m.used = 3;
    snprintf(m.error, sizeof(m.error), "upstream-certificate");
    snprintf(m.why, sizeof(m.why), "airlock: upstream certificate for h: certificate has expired");
    n = enc(&m);
    assert_int_equal(np_kh_msg_decode(&d, wire, n, NP_KH_FROM_KEYHOLDER), 0);
    assert_int_equal(d.status, 502);
    assert_int_equal(d.close, 1);
    assert_string_equal(d.error, "upstream-certificate");
    assert_string_equal(d.why, m.why);

    memset(&m, 0, sizeof(m));
    m.type = NP_KH_ABORT;
    snprintf(m.error, sizeof(m.error), "credential-not-allowed-here");
    n = enc(&m);
    assert_int_equal(np_kh_msg_decode(&d, wire, n, NP_KH_FROM_FRONT), 0);
    assert_string_equal(d.error, "credential-not-allowed-here");

    memset(&m, 0, sizeof(m));
    m.type = NP_KH_RESP_END;
    m.close = 1;
    n = enc(&m);
    assert_int_equal(n, 2);
    assert_int_equal(np_kh_msg_decode(&d, wire, n, NP_KH_FROM_KEYHOLDER), 0);
    assert_int_equal(d.close, 1);

    const uint8_t empty_front[] = {NP_KH_BODY_END, NP_KH_CLOSE};
    for (size_t i = 0; i < 2; i++) {
        memset(&m, 0, sizeof(m));
        m.type = empty_front[i];
        assert_int_equal(enc(&m), 1);
        assert_int_equal(np_kh_msg_decode(&d, wire, 1, NP_KH_FROM_FRONT), 0);
    }
    m.type = NP_KH_OPEN_OK;
    assert_int_equal(enc(&m), 1);
    assert_int_equal(np_kh_msg_decode(&d, wire, 1, NP_KH_FROM_KEYHOLDER), 0);
}

/* A message is only accepted from the side that sends it: the key holder
 * never decodes a RESP_* or ERROR from a front, the front never an OPEN. */
static void direction_enforced(void **state)
{
    (void)state;
    struct np_kh_msg d;
    const uint8_t open_ok = NP_KH_OPEN_OK, body_end = NP_KH_BODY_END;
    assert_int_equal(np_kh_msg_decode(&d, &open_ok, 1, NP_KH_FROM_FRONT), AL_EINVAL);
    assert_int_equal(np_kh_msg_decode(&d, &body_end, 1, NP_KH_FROM_KEYHOLDER), AL_EINVAL);
    const uint8_t unknown[] = {0, 13, 99, 255};
    for (size_t i = 0; i < sizeof(unknown); i++) {
        assert_int_equal(np_kh_msg_decode(&d, &unknown[i], 1, NP_KH_FROM_FRONT), AL_EINVAL);
        assert_int_equal(np_kh_msg_decode(&d, &unknown[i], 1, NP_KH_FROM_KEYHOLDER), AL_EINVAL);
    }
    assert_int_equal(np_kh_msg_decode(&d, wire, 0, NP_KH_FROM_FRONT), AL_EINVAL);
}

/* Builds an OPEN by hand: session, host, port, flags. */
static size_t open_raw(uint8_t *b, const char *session, size_t slen, const char *host, size_t hlen,
                       uint16_t port, uint8_t flags)
{
    size_t n = 0;
    b[n++] = NP_KH_OPEN;
    b[n++] = (uint8_t)slen;
    b[n++] = (uint8_t)(slen >> 8);
    memcpy(b + n, session, slen);
    n += slen;
    b[n++] = (uint8_t)hlen;
    b[n++] = (uint8_t)(hlen >> 8);
    memcpy(b + n, host, hlen);
    n += hlen;
    b[n++] = (uint8_t)port;
    b[n++] = (uint8_t)(port >> 8);
    b[n++] = flags;
    return n;
}

static void open_malformed(void **state)
{
    (void)state;
    struct np_kh_msg d;
    uint8_t b[1024];
    size_t n = open_raw(b, "s", 1, "h.example", 9, 443, 1);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), 0);
    /* every truncation and a byte too many */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(np_kh_msg_decode(&d, b, k, NP_KH_FROM_FRONT), AL_EINVAL);
    b[n] = 0;
    assert_int_equal(np_kh_msg_decode(&d, b, n + 1, NP_KH_FROM_FRONT), AL_EINVAL);
    /* empty session, empty host, port 0, unknown flag */
    n = open_raw(b, "", 0, "h", 1, 443, 0);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = open_raw(b, "s", 1, "", 0, 443, 0);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = open_raw(b, "s", 1, "h", 1, 0, 0);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = open_raw(b, "s", 1, "h", 1, 443, 0x04);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    /* a NUL inside a string never cuts it short; no control bytes; host
     * characters only */
    n = open_raw(b, "s\0x", 3, "h", 1, 443, 0);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = open_raw(b, "s", 1, "h\0evil", 6, 443, 0);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = open_raw(b, "s\n", 2, "h", 1, 443, 0);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    static const char *const bad_hosts[] = {"a b", "a/b", "a@b", "[::1]", "h\r\n", "a%2e"};
    for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(*bad_hosts); i++) {
        n = open_raw(b, "s", 1, bad_hosts[i], strlen(bad_hosts[i]), 443, 0);
        assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    }
    n = open_raw(b, "s", 1, "::1", 3, 443, NP_KH_OPEN_HOST_IP | NP_KH_OPEN_TLS);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), 0);
    /* too long for its field */
    char lon[300];
    memset(lon, 'a', sizeof(lon));
    n = open_raw(b, lon, NP_KH_SESSION_MAX + 1, "h", 1, 443, 0);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = open_raw(b, lon, NP_KH_SESSION_MAX, lon, NP_KH_HOST_MAX, 443, 0);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), 0);
    n = open_raw(b, "s", 1, lon, NP_KH_HOST_MAX + 1, 443, 0);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    /* a length field past the message */
    n = open_raw(b, "s", 1, "h", 1, 443, 0);
    b[1] = 0xff;
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
}

static size_t req_raw(uint8_t *b, uint8_t flags, uint8_t framing, uint64_t length, const void *head,
                      uint32_t hlen, uint32_t claimed)
{
    size_t n = 0;
    b[n++] = NP_KH_REQ_HEAD;
    b[n++] = flags;
    b[n++] = framing;
    for (int i = 0; i < 8; i++)
        b[n++] = (uint8_t)(length >> (8 * i));
    for (int i = 0; i < 4; i++)
        b[n++] = (uint8_t)(claimed >> (8 * i));
    memcpy(b + n, head, hlen);
    return n + hlen;
}

static void req_head_malformed(void **state)
{
    (void)state;
    struct np_kh_msg d;
    static uint8_t b[NP_KH_MSG_MAX + 64];
    uint32_t hl = (uint32_t)strlen(HEAD);
    size_t n = req_raw(b, 0, NP_KH_FRAME_NONE, 0, HEAD, hl, hl);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), 0);
    /* the bin length must match exactly */
    n = req_raw(b, 0, NP_KH_FRAME_NONE, 0, HEAD, hl, hl + 1);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = req_raw(b, 0, NP_KH_FRAME_NONE, 0, HEAD, hl, hl - 1);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = req_raw(b, 0, NP_KH_FRAME_NONE, 0, HEAD, hl, UINT32_MAX);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    /* framing and length must agree; no "until close" for a request */
    n = req_raw(b, 0, NP_KH_FRAME_NONE, 1, HEAD, hl, hl);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = req_raw(b, 0, NP_KH_FRAME_CHUNKED, 7, HEAD, hl, hl);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = req_raw(b, 0, NP_KH_FRAME_CLOSE, 0, HEAD, hl, hl);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = req_raw(b, 0, 9, 0, HEAD, hl, hl);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = req_raw(b, 0x10, NP_KH_FRAME_NONE, 0, HEAD, hl, hl);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = req_raw(b, 0, NP_KH_FRAME_LENGTH, 0, HEAD, hl, hl); /* Content-Length: 0 */
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), 0);
    /* a head must end with the blank line and hold no NUL */
    static const char *const bad[] = {"", "\r\n\r", "GET / HTTP/1.1\r\n",
                                      "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"};
    static const uint32_t bad_len[] = {0, 3, 16, 26};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        n = req_raw(b, 0, NP_KH_FRAME_NONE, 0, bad[i], bad_len[i], bad_len[i]);
        assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    }
    /* too long a head, even inside NP_KH_MSG_MAX */
    static char big[NP_KH_REQ_HEAD_MAX + 1];
    memset(big, 'a', sizeof(big));
    memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
    n = req_raw(b, 0, NP_KH_FRAME_NONE, 0, big, sizeof(big), sizeof(big));
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), AL_EINVAL);
    n = req_raw(b, 0, NP_KH_FRAME_NONE, 0, big + 1, sizeof(big) - 1, sizeof(big) - 1);
    assert_int_equal(np_kh_msg_decode(&d, b, n, NP_KH_FROM_FRONT), 0);
}

static void resp_and_error_malformed(void **state)
{
    (void)state;
    struct np_kh_msg m, d;
    size_t n;

    /* the encoder checks the decoder's bounds */
    memset(&m, 0, sizeof(m));
    m.type = NP_KH_RESP_HEAD;
    m.data = (const uint8_t *)"HTTP/1.1 100 Continue\r\n\r\n";
    m.data_len = 25;
    m.status = 100;
    m.framing = NP_KH_FRAME_NONE;
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), 0);
    m.framing = NP_KH_FRAME_CHUNKED; /* an interim response has no body */
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), AL_EINVAL);
    assert_int_equal(n, 0);
    m.status = 99;
    m.framing = NP_KH_FRAME_NONE;
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), AL_EINVAL);
    m.status = 600;
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), AL_EINVAL);
    m.status = 200;
    m.framing = NP_KH_FRAME_CLOSE;
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), 0);
    assert_int_equal(np_kh_msg_decode(&d, wire, n, NP_KH_FROM_KEYHOLDER), 0);
    /* a status past the bounds in a hand-made message */
    wire[1] = 0x58; /* 600 = 0x0258 */
    wire[2] = 0x02;
    assert_int_equal(np_kh_msg_decode(&d, wire, n, NP_KH_FROM_KEYHOLDER), AL_EINVAL);
    /* does not fit */
    m.status = 200;
    assert_int_equal(np_kh_msg_encode(&n, wire, 10, &m), AL_ETOOBIG);
    assert_int_equal(n, 0);

    memset(&m, 0, sizeof(m));
    m.type = NP_KH_ERROR;
    m.status = 502;
    snprintf(m.error, sizeof(m.error), "Upstream");
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), AL_EINVAL);
    m.error[0] = '\0';
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), AL_EINVAL);
    snprintf(m.error, sizeof(m.error), "upstream-tls");
    m.status = 302;
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), AL_EINVAL);
    m.status = 502;
    m.close = 2;
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), AL_EINVAL);
    m.close = 0;
    snprintf(m.why, sizeof(m.why), "line\nbreak");
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), AL_EINVAL);
    m.why[0] = '\0'; /* an empty text is fine */
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), 0);
    assert_int_equal(np_kh_msg_decode(&d, wire, n, NP_KH_FROM_KEYHOLDER), 0);
    for (size_t k = 1; k < n; k++)
        assert_int_equal(np_kh_msg_decode(&d, wire, k, NP_KH_FROM_KEYHOLDER), AL_EINVAL);

    /* RESP_END: close is 0 or 1, nothing after it */
    const uint8_t end2[] = {NP_KH_RESP_END, 2}, end_more[] = {NP_KH_RESP_END, 1, 0},
                  end_none[] = {NP_KH_RESP_END};
    assert_int_equal(np_kh_msg_decode(&d, end2, 2, NP_KH_FROM_KEYHOLDER), AL_EINVAL);
    assert_int_equal(np_kh_msg_decode(&d, end_more, 3, NP_KH_FROM_KEYHOLDER), AL_EINVAL);
    assert_int_equal(np_kh_msg_decode(&d, end_none, 1, NP_KH_FROM_KEYHOLDER), AL_EINVAL);
    /* messages without fields take no bytes */
    const uint8_t close_more[] = {NP_KH_CLOSE, 0};
    assert_int_equal(np_kh_msg_decode(&d, close_more, 2, NP_KH_FROM_FRONT), AL_EINVAL);
}

static void data_bounds(void **state)
{
    (void)state;
    struct np_kh_msg m, d;
    size_t n;
    static uint8_t big[NP_KH_DATA_MAX + 1];

    memset(&m, 0, sizeof(m));
    m.type = NP_KH_BODY;
    m.data = big;
    m.data_len = NP_KH_DATA_MAX;
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), 0);
    assert_int_equal(np_kh_msg_decode(&d, wire, n, NP_KH_FROM_FRONT), 0);
    m.data_len = NP_KH_DATA_MAX + 1;
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), AL_EINVAL);
    m.data_len = 0;
    assert_int_equal(np_kh_msg_encode(&n, wire, sizeof(wire), &m), AL_EINVAL);
    const uint8_t empty_body = NP_KH_BODY;
    assert_int_equal(np_kh_msg_decode(&d, &empty_body, 1, NP_KH_FROM_FRONT), AL_EINVAL);
    /* a BODY one byte too long on the wire */
    wire[0] = NP_KH_BODY;
    assert_int_equal(np_kh_msg_decode(&d, wire, NP_KH_DATA_MAX + 2, NP_KH_FROM_FRONT), AL_EINVAL);
    /* nothing larger than NP_KH_MSG_MAX is read at all */
    assert_int_equal(np_kh_msg_decode(&d, wire, NP_KH_MSG_MAX + 1, NP_KH_FROM_FRONT), AL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_every_type),     cmocka_unit_test(direction_enforced),
        cmocka_unit_test(open_malformed),           cmocka_unit_test(req_head_malformed),
        cmocka_unit_test(resp_and_error_malformed), cmocka_unit_test(data_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
