/* The key holder's request head (netproxy/src/kh_req.h): sentinels
 * replaced only under the key holder's own mask, the framing header
 * written by the key holder alone, and a front's head that carries framing
 * or malformed lines refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kh_req.h"

#include "airlock/base64.h"
#include "airlock/error.h"

#define REAL_A "ghp_R3alValueAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define SENT_A "ghp_s3ntinelQQQQQQQQQQQQQQQQQQQQQQQQQQQ9"
#define REAL_B "npm_R3alValueBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
#define SENT_B "npm_s3ntinelZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"

static struct al_credset set;

static int setup(void **state)
{
    (void)state;
    struct al_strlist hosts = {0};
    al_strlist_push(&hosts, "api.example.com");
    assert_int_equal(al_credset_add(&set, "A", REAL_A, strlen(REAL_A), &hosts, SENT_A), 0);
    assert_int_equal(al_credset_add(&set, "B", REAL_B, strlen(REAL_B), &hosts, SENT_B), 0);
    al_strlist_free(&hosts);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    al_credset_free(&set);
    return 0;
}

static struct np_kh_msg req(const char *head, uint8_t framing, uint64_t length)
{
    struct np_kh_msg m;
    memset(&m, 0, sizeof(m));
    m.type = NP_KH_REQ_HEAD;
    m.framing = framing;
    m.length = length;
    m.data = (const uint8_t *)head;
    m.data_len = strlen(head);
    return m;
}

static void substituted_and_framed(void **state)
{
    (void)state;
    struct al_buf out;
    uint64_t used;
    size_t culprit;
    al_buf_init(&out, 65536);

    struct np_kh_msg m = req("POST /v1 HTTP/1.1\r\nHost: api.example.com\r\n"
                             "Authorization: Bearer " SENT_A "\r\n\r\n",
                             NP_KH_FRAME_LENGTH, 5);
    assert_int_equal(np_kh_req_head(&out, &used, &culprit, &set, 1, "api.example.com", 443, &m, 5),
                     0);
    assert_string_equal(out.ptr, "POST /v1 HTTP/1.1\r\nHost: api.example.com\r\n"
                                 "Authorization: Bearer " REAL_A "\r\n"
                                 "Content-Length: 5\r\n\r\n");
    assert_int_equal(used, 1);

    /* the caller's length (a buffered, substituted body), not the front's */
    al_buf_reset(&out);
    assert_int_equal(np_kh_req_head(&out, &used, &culprit, &set, 1, "api.example.com", 443, &m, 77),
                     0);
    assert_non_null(strstr(out.ptr, "\r\nContent-Length: 77\r\n\r\n"));

    al_buf_reset(&out);
    m = req("POST /x HTTP/1.1\r\nHost: api.example.com\r\n\r\n", NP_KH_FRAME_CHUNKED, 0);
    assert_int_equal(np_kh_req_head(&out, &used, &culprit, &set, 3, "api.example.com", 443, &m, 0),
                     0);
    assert_string_equal(
        out.ptr, "POST /x HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(used, 0);

    al_buf_reset(&out);
    m = req("GET /x?k=" SENT_B " HTTP/1.1\r\nHost: api.example.com\r\n\r\n", NP_KH_FRAME_NONE, 0);
    assert_int_equal(np_kh_req_head(&out, &used, &culprit, &set, 2, "api.example.com", 443, &m, 0),
                     0);
    assert_string_equal(out.ptr, "GET /x?k=" REAL_B " HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
    assert_int_equal(used, 2);

    /* inside Basic: base64 of "u:SENTINEL" becomes base64 of "u:REAL" */
    char *b_sent = al_base64_encode((const unsigned char *)"u:" SENT_A, strlen("u:" SENT_A));
    char *b_real = al_base64_encode((const unsigned char *)"u:" REAL_A, strlen("u:" REAL_A));
    assert_non_null(b_sent);
    assert_non_null(b_real);
    char head[512], want[512];
    snprintf(head, sizeof(head),
             "GET / HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Basic %s\r\n\r\n", b_sent);
    snprintf(want, sizeof(want),
             "GET / HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Basic %s\r\n\r\n", b_real);
    al_buf_reset(&out);
    m = req(head, NP_KH_FRAME_NONE, 0);
    assert_int_equal(np_kh_req_head(&out, &used, &culprit, &set, 1, "api.example.com", 443, &m, 0),
                     0);
    assert_string_equal(out.ptr, want);
    free(b_sent);
    free(b_real);
    al_buf_wipe_free(&out);
}

/* The key holder's own mask decides: a sentinel whose bit is clear is
 * refused and nothing is written (whatever the front claimed). */
static void not_allowed_here(void **state)
{
    (void)state;
    struct al_buf out;
    uint64_t used = 9;
    size_t culprit = 9;
    al_buf_init(&out, 65536);
    al_buf_puts(&out, "PRE");
    struct np_kh_msg m =
        req("GET / HTTP/1.1\r\nX-A: " SENT_A "\r\nX-B: " SENT_B "\r\n\r\n", NP_KH_FRAME_NONE, 0);
    assert_int_equal(np_kh_req_head(&out, &used, &culprit, &set, 1, "api.example.com", 443, &m, 0),
                     AL_EPERM);
    assert_int_equal(culprit, 1);
    assert_int_equal(used, 0);
    assert_string_equal(out.ptr, "PRE");
    assert_int_equal(np_kh_req_head(&out, &used, &culprit, &set, 0, "api.example.com", 443, &m, 0),
                     AL_EPERM);
    assert_int_equal(culprit, 0);
    assert_string_equal(out.ptr, "PRE");
    /* no set at all: nothing to replace, the head goes as it is */
    m = req("GET / HTTP/1.1\r\n\r\n", NP_KH_FRAME_NONE, 0);
    assert_int_equal(np_kh_req_head(&out, &used, &culprit, NULL, 0, "api.example.com", 443, &m, 0),
                     0);
    assert_string_equal(out.ptr, "PREGET / HTTP/1.1\r\n\r\n");
    al_buf_wipe_free(&out);
}

/* Framing is the key holder's: a head that brings its own, or lines a
 * parser upstream could read differently, never goes out. */
static void front_head_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length:5\r\n\r\n",
        "POST / HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
        "POST / HTTP/1.1\r\nX: a\nY: b\r\n\r\n",
        "POST / HTTP/1.1\r\nX: a\rY: b\r\n\r\n",
        "POST / HTTP/1.1\r\nno colon\r\n\r\n",
        "POST / HTTP/1.1\r\n: empty name\r\n\r\n",
        "POST / HTTP/1.1\r\nX: a\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
        "POST / HTTP/1.1\n\r\n\r\n",
    };
    struct al_buf out;
    uint64_t used;
    size_t culprit;
    al_buf_init(&out, 65536);
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct np_kh_msg m = req(bad[i], NP_KH_FRAME_LENGTH, 5);
        if (np_kh_req_head(&out, &used, &culprit, &set, 3, "api.example.com", 443, &m, 5) !=
            AL_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(out.len, 0);
    }
    /* not a REQ_HEAD at all */
    struct np_kh_msg m = req("GET / HTTP/1.1\r\n\r\n", NP_KH_FRAME_NONE, 0);
    m.type = NP_KH_RESP_HEAD;
    assert_int_equal(np_kh_req_head(&out, &used, &culprit, &set, 3, "api.example.com", 443, &m, 0),
                     AL_EINVAL);
    al_buf_free(&out);
}

/* Too large for `out`: nothing appended, nothing of a value left behind. */
static void too_big(void **state)
{
    (void)state;
    struct al_buf out;
    uint64_t used;
    size_t culprit;
    struct np_kh_msg m =
        req("GET / HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer " SENT_A "\r\n\r\n",
            NP_KH_FRAME_LENGTH, 1);
    size_t whole =
        strlen("GET / HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer " REAL_A "\r\n"
               "Content-Length: 1\r\n\r\n");
    for (size_t max = 0; max < whole; max++) {
        al_buf_init(&out, max);
        int err = np_kh_req_head(&out, &used, &culprit, &set, 1, "api.example.com", 443, &m, 1);
        assert_int_equal(err, AL_ETOOBIG);
        assert_int_equal(out.len, 0);
        if (out.ptr)
            assert_null(memmem(out.ptr, out.cap, "R3alValue", 9));
        al_buf_free(&out);
    }
    al_buf_init(&out, whole);
    assert_int_equal(np_kh_req_head(&out, &used, &culprit, &set, 1, "api.example.com", 443, &m, 1),
                     0);
    al_buf_wipe_free(&out);
}

/* The key holder checks what routes the request itself: an origin-form
 * line, one Host naming the connection's host, and a Host whenever a value
 * goes in (a compromised front cannot send a value to another site on the
 * same address). */
static void routing_checked(void **state)
{
    (void)state;
    struct al_buf out;
    uint64_t used;
    size_t culprit;
    al_buf_init(&out, 65536);
    static const char *const good[] = {
        "GET / HTTP/1.1\r\nHost: api.example.com\r\nX: " SENT_A "\r\n\r\n",
        "GET /a?b HTTP/1.0\r\nhost: API.Example.com.\r\nX: " SENT_A "\r\n\r\n",
        "GET / HTTP/1.1\r\nHost:api.example.com:443\r\nX: " SENT_A "\r\n\r\n",
        "GET / HTTP/1.1\r\nX: no value, no Host\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        struct np_kh_msg m = req(good[i], NP_KH_FRAME_NONE, 0);
        al_buf_reset(&out);
        if (np_kh_req_head(&out, &used, &culprit, &set, 1, "api.example.com", 443, &m, 0) != 0)
            fail_msg("refused: %s", good[i]);
    }
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nHost: evil.example.com\r\nX: " SENT_A "\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: api.example.com.evil\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: api.example.com:8443\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: api.example.com:\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: api.example.com\r\nHost: api.example.com\r\n\r\n",
        "GET / HTTP/1.1\r\nX: " SENT_A "\r\n\r\n", /* a value without Host */
        "GET http://evil.example.com/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
        "GET //evil.example.com/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
        "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: api.example.com\r\n\r\n",
        "GET /  HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct np_kh_msg m = req(bad[i], NP_KH_FRAME_NONE, 0);
        al_buf_reset(&out);
        if (np_kh_req_head(&out, &used, &culprit, &set, 1, "api.example.com", 443, &m, 0) !=
            AL_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(out.len, 0);
        assert_int_equal(used, 0);
    }
    /* IPv6: brackets in Host, none in OPEN's host */
    struct np_kh_msg m =
        req("GET / HTTP/1.1\r\nHost: [::1]:8443\r\nX: " SENT_A "\r\n\r\n", NP_KH_FRAME_NONE, 0);
    al_buf_reset(&out);
    assert_int_equal(np_kh_req_head(&out, &used, &culprit, &set, 1, "::1", 8443, &m, 0), 0);
    assert_int_equal(np_kh_req_head(&out, &used, &culprit, &set, 1, "::2", 8443, &m, 0), AL_EINVAL);
    al_buf_wipe_free(&out);
}

static int resp(struct al_buf *out, struct np_kh_resp *info, const char *head, uint8_t flags)
{
    al_buf_reset(out);
    return np_kh_resp_head(out, info, &set, head, strlen(head), flags);
}

/* Response heads: framing for the front, framing lines stripped only when
 * a body follows, real values re-masked, bodies and 1xx told apart. */
static void response_heads(void **state)
{
    (void)state;
    struct al_buf out;
    struct np_kh_resp r;
    al_buf_init(&out, 1u << 17);

    const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-Echo: " REAL_A "\r\n\r\nbody";
    assert_int_equal(resp(&out, &r, h, 0), (int)strlen(h) - 4);
    assert_string_equal(out.ptr, "HTTP/1.1 200 OK\r\nX-Echo: " SENT_A "\r\n\r\n");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.framing, NP_KH_FRAME_LENGTH);
    assert_true(r.length == 12);
    assert_false(r.close);

    h = "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked \r\nConnection: close\r\n\r\n";
    assert_true(resp(&out, &r, h, 0) > 0);
    assert_string_equal(out.ptr, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    assert_int_equal(r.framing, NP_KH_FRAME_CHUNKED);
    assert_true(r.close);

    h = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n";
    assert_true(resp(&out, &r, h, 0) > 0);
    assert_int_equal(r.framing, NP_KH_FRAME_CLOSE);
    assert_true(r.close);

    /* no body: the head keeps its Content-Length (it describes the GET) */
    h = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n";
    assert_true(resp(&out, &r, h, NP_KH_REQ_HEAD_METHOD) > 0);
    assert_string_equal(out.ptr, h);
    assert_int_equal(r.framing, NP_KH_FRAME_NONE);
    h = "HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n";
    assert_true(resp(&out, &r, h, 0) > 0);
    assert_string_equal(out.ptr, h);
    assert_int_equal(r.framing, NP_KH_FRAME_NONE);

    h = "HTTP/1.1 100 Continue\r\n\r\n";
    assert_true(resp(&out, &r, h, 0) > 0);
    assert_true(r.interim);
    assert_false(r.upgraded);
    h = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    assert_true(resp(&out, &r, h, NP_KH_REQ_UPGRADE) > 0);
    assert_true(r.upgraded);
    assert_false(r.interim);
    assert_true(resp(&out, &r, h, 0) > 0); /* a 101 nobody asked for: interim */
    assert_true(r.interim);

    /* more bytes needed; refused heads append nothing */
    assert_int_equal(resp(&out, &r, "HTTP/1.1 200 OK\r\nX: y\r\n", 0), 0);
    static const char *const bad[] = {
        "HTTP/1.1 600 Odd\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        "NOTHTTP\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (resp(&out, &r, bad[i], 0) != AL_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(out.len, 0);
    }
    /* the base64 form of a real value is masked too */
    char *b = al_base64_encode((const unsigned char *)"u:" REAL_A, strlen("u:" REAL_A));
    char head[512];
    snprintf(head, sizeof(head), "HTTP/1.1 401 No\r\nX-Auth: Basic %s\r\nContent-Length: 0\r\n\r\n",
             b);
    assert_true(resp(&out, &r, head, 0) > 0);
    assert_null(strstr(out.ptr, b + 8));
    assert_null(strstr(out.ptr, "R3alValue"));
    free(b);
    al_buf_wipe_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(substituted_and_framed), cmocka_unit_test(not_allowed_here),
        cmocka_unit_test(front_head_refused),     cmocka_unit_test(too_big),
        cmocka_unit_test(response_heads),         cmocka_unit_test(routing_checked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
