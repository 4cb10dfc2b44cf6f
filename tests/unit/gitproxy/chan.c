/* The channel between a front worker and the key holder (gitproxy/src/
 * gp_chan.h): field encoding, the decoders of the messages the key holder
 * reads (malformed, truncated, oversized, trailing bytes), and SEQPACKET
 * transport with descriptors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "airlock/error.h"
#include "gp_chan.h"

static uint8_t buf[GP_CHAN_MSG_MAX];

static size_t auth_msg(const char *host, const char *owner, const char *name, const char *token)
{
    struct gp_wire w;
    gp_wire_init(&w, buf, sizeof(buf), GP_CH_AUTH);
    gp_wire_u8(&w, 2);
    gp_wire_str(&w, host);
    gp_wire_str(&w, owner);
    gp_wire_str(&w, name);
    gp_wire_str(&w, token);
    assert_int_equal(w.err, 0);
    return w.len;
}

static void fields_round_trip(void **state)
{
    (void)state;
    struct gp_wire w;
    struct gp_rd r;
    char s[16];
    size_t n;
    gp_wire_init(&w, buf, sizeof(buf), GP_CH_REQUEST);
    gp_wire_u8(&w, 0xab);
    gp_wire_u16(&w, 0xbeef);
    gp_wire_u64(&w, UINT64_MAX - 5);
    gp_wire_str(&w, "hello");
    gp_wire_bin(&w, "\0\1\2", 3);
    gp_wire_raw(&w, "tail", 4);
    assert_int_equal(w.err, 0);
    assert_int_equal(gp_rd_init(&r, buf, w.len), GP_CH_REQUEST);
    assert_int_equal(gp_rd_u8(&r), 0xab);
    assert_int_equal(gp_rd_u16(&r), 0xbeef);
    assert_true(gp_rd_u64(&r) == UINT64_MAX - 5);
    gp_rd_str(&r, s, sizeof(s));
    assert_string_equal(s, "hello");
    const uint8_t *b = gp_rd_bin(&r, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(b, "\0\1\2", 3);
    b = gp_rd_rest(&r, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(b, "tail", 4);
    assert_int_equal(gp_rd_end(&r, "test"), 0);
}

static void writer_refuses_bad_strings(void **state)
{
    (void)state;
    struct gp_wire w;
    const char *bad[] = {"a\rb", "a\nb", "tab\there", "del\x7f", "\x80high", "nul"};
    for (size_t i = 0; i < 5; i++) {
        gp_wire_init(&w, buf, sizeof(buf), GP_CH_AUTH);
        gp_wire_str(&w, bad[i]);
        assert_int_equal(w.err, AL_EINVAL);
    }
    /* too long for a u16 length */
    char *big = malloc(70000);
    memset(big, 'a', 69999);
    big[69999] = '\0';
    gp_wire_init(&w, buf, sizeof(buf), GP_CH_AUTH);
    gp_wire_str(&w, big);
    assert_int_not_equal(w.err, 0);
    free(big);
    /* does not fit the buffer */
    uint8_t small[4];
    gp_wire_init(&w, small, sizeof(small), GP_CH_DATA);
    gp_wire_raw(&w, "12345", 5);
    assert_int_equal(w.err, AL_ETOOBIG);
    int sv[2];
    assert_int_equal(gp_chan_pair(sv), 0);
    assert_int_equal(gp_chan_send(sv[0], &w, NULL, 0), AL_ETOOBIG);
    close(sv[0]);
    close(sv[1]);
}

static void auth_decodes_and_refuses(void **state)
{
    (void)state;
    struct gp_msg_auth m;
    size_t len = auth_msg("git.test", "o", "r", "alk1.k.x.y");
    assert_int_equal(gp_msg_auth_decode(&m, buf, len), 0);
    assert_int_equal(m.op, 2);
    assert_string_equal(m.host, "git.test");
    assert_string_equal(m.token, "alk1.k.x.y");
    /* every truncation is refused, and leaves the fields empty strings */
    for (size_t cut = 0; cut < len; cut++) {
        memset(&m, 'X', sizeof(m));
        assert_int_equal(gp_msg_auth_decode(&m, buf, cut), AL_EINVAL);
        assert_true(memchr(m.host, '\0', sizeof(m.host)) != NULL);
        assert_true(memchr(m.token, '\0', sizeof(m.token)) != NULL);
    }
    /* trailing bytes */
    buf[len] = 'x';
    assert_int_equal(gp_msg_auth_decode(&m, buf, len + 1), AL_EINVAL);
    /* another type */
    buf[0] = GP_CH_REQUEST;
    assert_int_equal(gp_msg_auth_decode(&m, buf, len), AL_EINVAL);
    /* a host longer than its field (255) */
    char host[300];
    memset(host, 'h', sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    len = auth_msg(host, "o", "r", "t");
    assert_int_equal(gp_msg_auth_decode(&m, buf, len), AL_EINVAL);
    /* a control byte smuggled past the writer (raw bytes) */
    len = auth_msg("git.test", "o", "r", "tok");
    buf[len - 2] = '\n';
    assert_int_equal(gp_msg_auth_decode(&m, buf, len), AL_EINVAL);
    buf[len - 2] = '\0';
    assert_int_equal(gp_msg_auth_decode(&m, buf, len), AL_EINVAL);
}

static void length_fields_never_trusted(void **state)
{
    (void)state;
    struct gp_rd r;
    size_t n;
    /* a bin field claiming more than there is */
    uint8_t m[] = {GP_CH_SECRETS, 1, 0xff, 0xff, 0xff, 0x7f, 'a', 'b'};
    gp_rd_init(&r, m, sizeof(m));
    gp_rd_u8(&r);
    assert_null(gp_rd_bin(&r, &n));
    assert_int_equal(n, 0);
    assert_int_equal(gp_rd_end(&r, "SECRETS"), AL_EINVAL);
    /* a string claiming more than there is */
    uint8_t s[] = {GP_CH_PUSH_OPT, 0x10, 0x00, 'a'};
    char dst[64];
    assert_int_equal(gp_msg_str_decode(GP_CH_PUSH_OPT, dst, sizeof(dst), s, sizeof(s)), AL_EINVAL);
    assert_string_equal(dst, "");
    /* an empty message */
    assert_int_equal(gp_rd_init(&r, m, 0), 0);
    assert_int_equal(gp_rd_end(&r, "empty"), AL_EINVAL);
}

static void other_decoders(void **state)
{
    (void)state;
    struct gp_wire w;
    struct gp_msg_request q;
    gp_wire_init(&w, buf, sizeof(buf), GP_CH_REQUEST);
    gp_wire_u8(&w, GP_REQ_UPLOAD_PACK);
    gp_wire_str(&w, "version=2");
    gp_wire_u8(&w, GP_ENC_GZIP);
    gp_wire_u64(&w, GP_LEN_CHUNKED);
    gp_wire_u8(&w, 1);
    assert_int_equal(gp_msg_request_decode(&q, buf, w.len), 0);
    assert_int_equal(q.kind, GP_REQ_UPLOAD_PACK);
    assert_string_equal(q.git_protocol, "version=2");
    assert_true(q.length == GP_LEN_CHUNKED);
    assert_int_equal(q.direct, 1);
    for (size_t cut = 0; cut < w.len; cut++)
        assert_int_equal(gp_msg_request_decode(&q, buf, cut), AL_EINVAL);

    struct gp_msg_cmd c;
    gp_wire_init(&w, buf, sizeof(buf), GP_CH_PUSH_CMD);
    gp_wire_str(&w, "0000000000000000000000000000000000000000");
    gp_wire_str(&w, "1111111111111111111111111111111111111111");
    gp_wire_str(&w, "refs/heads/airlock/x");
    assert_int_equal(gp_msg_cmd_decode(&c, buf, w.len), 0);
    assert_string_equal(c.ref, "refs/heads/airlock/x");
    for (size_t cut = 0; cut < w.len; cut++)
        assert_int_equal(gp_msg_cmd_decode(&c, buf, cut), AL_EINVAL);

    struct gp_msg_refuse f;
    gp_wire_init(&w, buf, sizeof(buf), GP_CH_REFUSE_REF);
    gp_wire_u16(&w, 7);
    gp_wire_str(&w, "a.env contains a GitHub token");
    assert_int_equal(gp_msg_refuse_decode(&f, buf, w.len), 0);
    assert_int_equal(f.index, 7);

    struct gp_msg_outcome o;
    gp_wire_init(&w, buf, sizeof(buf), GP_CH_OUTCOME);
    gp_wire_str(&w, "refused");
    gp_wire_str(&w, "why");
    assert_int_equal(gp_msg_outcome_decode(&o, buf, w.len), 0);
    assert_string_equal(o.decision, "refused");
    assert_int_equal(gp_msg_outcome_decode(&o, buf, w.len - 1), AL_EINVAL);
}

static void seqpacket_with_descriptors(void **state)
{
    (void)state;
    int sv[2], fds[2];
    size_t nfds;
    assert_int_equal(gp_chan_pair(sv), 0);
    int passed = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct gp_wire w;
    gp_wire_init(&w, buf, sizeof(buf), GP_CH_CHANNEL);
    assert_int_equal(gp_chan_send(sv[0], &w, &passed, 1), 0);
    uint8_t in[GP_CHAN_MSG_MAX];
    ssize_t n = gp_chan_recv(sv[1], in, sizeof(in), fds, 2, &nfds);
    assert_int_equal(n, 1);
    assert_int_equal(nfds, 1);
    assert_true(fds[0] >= 0 && fds[0] != passed);
    close(fds[0]);
    /* more descriptors than the reader takes: the extra ones are closed */
    int two[2] = {passed, passed};
    assert_int_equal(gp_chan_send(sv[0], &w, two, 2), 0);
    n = gp_chan_recv(sv[1], in, sizeof(in), fds, 1, &nfds);
    assert_int_equal(nfds, 1);
    close(fds[0]);
    /* a message bigger than the reader's buffer is refused whole */
    static const uint8_t junk[1000];
    gp_wire_init(&w, buf, sizeof(buf), GP_CH_DATA);
    gp_wire_raw(&w, junk, sizeof(junk));
    assert_int_equal(gp_chan_send(sv[0], &w, &passed, 1), 0);
    uint8_t tiny[10];
    assert_int_equal(gp_chan_recv(sv[1], tiny, sizeof(tiny), fds, 1, &nfds), AL_EINVAL);
    assert_int_equal(nfds, 0);
    /* the peer's close reads as 0 */
    close(sv[0]);
    assert_int_equal(gp_chan_recv(sv[1], in, sizeof(in), fds, 1, &nfds), 0);
    close(sv[1]);
    close(passed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_round_trip),        cmocka_unit_test(writer_refuses_bad_strings),
        cmocka_unit_test(auth_decodes_and_refuses), cmocka_unit_test(length_fields_never_trusted),
        cmocka_unit_test(other_decoders),           cmocka_unit_test(seqpacket_with_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
