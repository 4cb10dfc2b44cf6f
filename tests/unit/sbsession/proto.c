/* Unit tests for the control protocol between airlockd and airlock-init:
 * round trips, and the parsers on truncated, oversized and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sbs_proto.h"

#include "airlock/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static const char *argv_buf[SBS_MAX_ARGS + 1], *envp_buf[SBS_MAX_ARGS + 1];

static void test_msg_round_trip(void **state)
{
    (void)state;
    struct sbs_msg in[] = {
        {.type = SBS_MSG_HELLO, .version = 1},
        {.type = SBS_MSG_SPAWNED, .req = 7, .proc = 3, .pid = 42},
        {.type = SBS_MSG_SPAWN_FAILED, .req = 9, .err = ENOENT},
        {.type = SBS_MSG_EXITED,
         .proc = 5,
         .status = 3 << 8,
         .timed_out = 1,
         .duration_ms = 1ULL << 40},
    };
    for (size_t i = 0; i < sizeof(in) / sizeof(*in); i++) {
        unsigned char buf[64];
        long n = sbs_msg_encode(buf, sizeof(buf), &in[i]);
        assert_true(n > 0);
        struct sbs_msg out;
        /* Every proper prefix asks for more input. */
        for (long k = 0; k < n; k++)
            assert_int_equal(sbs_msg_parse(buf, (size_t)k, &out), 0);
        assert_int_equal(sbs_msg_parse(buf, (size_t)n, &out), n);
        assert_memory_equal(&out, &in[i], sizeof(out));
        assert_int_equal(sbs_msg_encode(buf, (size_t)n - 1, &in[i]), AL_ETOOBIG);
    }
}

static void test_msg_two_in_a_row(void **state)
{
    (void)state;
    unsigned char buf[128];
    struct sbs_msg a = {.type = SBS_MSG_HELLO, .version = 1};
    struct sbs_msg b = {.type = SBS_MSG_EXITED, .proc = 1, .status = 9};
    long n1 = sbs_msg_encode(buf, sizeof(buf), &a);
    long n2 = sbs_msg_encode(buf + n1, sizeof(buf) - (size_t)n1, &b);
    struct sbs_msg out;
    assert_int_equal(sbs_msg_parse(buf, (size_t)(n1 + n2), &out), n1);
    assert_int_equal(out.type, SBS_MSG_HELLO);
    assert_int_equal(sbs_msg_parse(buf + n1, (size_t)n2, &out), n2);
    assert_int_equal(out.status, 9);
}

/* Header with `type` and a body of `len` bytes of `fill`. */
static size_t raw(unsigned char *buf, uint32_t type, uint32_t len, unsigned char fill)
{
    put32(buf, len);
    put32(buf + 4, type);
    memset(buf + 8, fill, len);
    return 8 + (size_t)len;
}

static void test_msg_malformed(void **state)
{
    (void)state;
    unsigned char buf[256];
    struct sbs_msg out;
    /* Unknown types and wrong lengths are refused on the header alone. */
    assert_int_equal(sbs_msg_parse(buf, raw(buf, 0, 4, 0), &out), AL_EINVAL);
    assert_int_equal(sbs_msg_parse(buf, raw(buf, 99, 4, 0), &out), AL_EINVAL);
    assert_int_equal(sbs_msg_parse(buf, raw(buf, SBS_REQ_SPAWN, 20, 0), &out), AL_EINVAL);
    assert_int_equal(sbs_msg_parse(buf, raw(buf, SBS_MSG_HELLO, 5, 0), &out), AL_EINVAL);
    assert_int_equal(sbs_msg_parse(buf, raw(buf, SBS_MSG_EXITED, 19, 0), &out), AL_EINVAL);
    put32(buf, 0xffffffffu);
    put32(buf + 4, SBS_MSG_HELLO);
    assert_int_equal(sbs_msg_parse(buf, 8, &out), AL_EINVAL);
    /* Field values. */
    raw(buf, SBS_MSG_SPAWNED, 12, 0); /* pid 0 */
    assert_int_equal(sbs_msg_parse(buf, 20, &out), AL_EINVAL);
    raw(buf, SBS_MSG_SPAWNED, 12, 0xff); /* pid -1 */
    assert_int_equal(sbs_msg_parse(buf, 20, &out), AL_EINVAL);
    raw(buf, SBS_MSG_SPAWN_FAILED, 8, 0); /* errno 0 */
    assert_int_equal(sbs_msg_parse(buf, 16, &out), AL_EINVAL);
    put32(buf + 12, 5000);
    assert_int_equal(sbs_msg_parse(buf, 16, &out), AL_EINVAL);
    raw(buf, SBS_MSG_EXITED, 20, 0);
    put32(buf + 12, 0x10000); /* not a wait status */
    assert_int_equal(sbs_msg_parse(buf, 28, &out), AL_EINVAL);
    put32(buf + 12, 0);
    put32(buf + 16, 2); /* timed_out neither 0 nor 1 */
    assert_int_equal(sbs_msg_parse(buf, 28, &out), AL_EINVAL);
    put32(buf + 16, 1);
    assert_int_equal(sbs_msg_parse(buf, 28, &out), 28);
}

static void test_req_spawn_round_trip(void **state)
{
    (void)state;
    static unsigned char buf[4096];
    char *argv[] = {"sh", "-c", "echo hi", "", NULL};
    char *envp[] = {"A=1", "PATH=/bin", NULL};
    long n = sbs_req_encode_spawn(buf, sizeof(buf), 77, 30, "/workspace/sub", argv, envp, 0);
    assert_true(n > 0);
    struct sbs_req r;
    for (long k = 0; k < n; k++)
        assert_int_equal(sbs_req_parse(buf, (size_t)k, &r, argv_buf, envp_buf), 0);
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), n);
    assert_int_equal(r.type, SBS_REQ_SPAWN);
    assert_int_equal(r.req, 77);
    assert_int_equal(r.timeout_s, 30);
    assert_string_equal(r.cwd, "/workspace/sub");
    assert_int_equal(r.argc, 4);
    assert_int_equal(r.envc, 2);
    for (int i = 0; i < 4; i++)
        assert_string_equal(argv_buf[i], argv[i]);
    assert_null(argv_buf[4]);
    assert_string_equal(envp_buf[1], "PATH=/bin");
    assert_null(envp_buf[2]);
    /* No cwd, no environment. */
    n = sbs_req_encode_spawn(buf, sizeof(buf), 1, 0, NULL, argv, NULL, 0);
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), n);
    assert_string_equal(r.cwd, "");
    assert_int_equal(r.envc, 0);
    assert_null(envp_buf[0]);
}

static void test_req_signal(void **state)
{
    (void)state;
    unsigned char buf[32];
    long n = sbs_req_encode_signal(buf, sizeof(buf), 12, 15);
    struct sbs_req r;
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), n);
    assert_int_equal(r.type, SBS_REQ_SIGNAL);
    assert_int_equal(r.proc, 12);
    assert_int_equal(r.sig, 15);
    assert_int_equal(sbs_req_encode_signal(buf, sizeof(buf), 1, 0), AL_EINVAL);
    assert_int_equal(sbs_req_encode_signal(buf, sizeof(buf), 1, 65), AL_EINVAL);
    put32(buf + 12, 0);
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), AL_EINVAL);
    put32(buf + 12, 1000);
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), AL_EINVAL);
}

/* A SPAWN body: the 16 fixed bytes then `strings` (`slen` bytes). */
static size_t spawn_raw(unsigned char *buf, uint32_t argc, uint32_t envc, const char *strings,
                        size_t slen)
{
    put32(buf, (uint32_t)(16 + slen));
    put32(buf + 4, SBS_REQ_SPAWN);
    put32(buf + 8, 1);
    put32(buf + 12, 0);
    put32(buf + 16, argc);
    put32(buf + 20, envc);
    memcpy(buf + 24, strings, slen);
    return 24 + slen;
}

static void test_req_spawn_malformed(void **state)
{
    (void)state;
    unsigned char buf[256];
    struct sbs_req r;
#define BAD(argc, envc, s)                                                                         \
    assert_int_equal(                                                                              \
        sbs_req_parse(buf, spawn_raw(buf, argc, envc, s, sizeof(s) - 1), &r, argv_buf, envp_buf),  \
        AL_EINVAL)
    BAD(0, 0, "\0\0");                    /* no argv */
    BAD(SBS_MAX_ARGS + 1, 0, "\0true\0"); /* too many args */
    BAD(1, SBS_MAX_ARGS + 1, "\0true\0"); /* too many env entries */
    BAD(1, 0, "\0true");                  /* unterminated */
    BAD(2, 0, "\0true\0");                /* fewer strings than argc */
    BAD(1, 1, "\0true\0");                /* fewer strings than envc */
    BAD(1, 0, "\0true\0extra");           /* trailing bytes */
    BAD(1, 0, "relative\0true\0");        /* relative cwd */
    BAD(1, 0, "\0\0");                    /* empty argv[0] */
    BAD(1, 0, "");                        /* nothing at all */
#undef BAD
    size_t n = spawn_raw(buf, 1, 1, "/\0true\0A=b\0", 11);
    assert_int_equal(sbs_req_parse(buf, n, &r, argv_buf, envp_buf), (long)n);
    /* Short fixed part, unknown type, oversized: refused on the header. */
    put32(buf, 15);
    assert_int_equal(sbs_req_parse(buf, 8, &r, argv_buf, envp_buf), AL_EINVAL);
    raw(buf, SBS_MSG_HELLO, 4, 0);
    assert_int_equal(sbs_req_parse(buf, 8, &r, argv_buf, envp_buf), AL_EINVAL);
    put32(buf, SBS_MAX_MSG);
    put32(buf + 4, SBS_REQ_SPAWN);
    assert_int_equal(sbs_req_parse(buf, 8, &r, argv_buf, envp_buf), AL_EINVAL);
    /* The largest body allowed still asks for more input. */
    put32(buf, SBS_MAX_MSG - SBS_HDR_LEN);
    assert_int_equal(sbs_req_parse(buf, 200, &r, argv_buf, envp_buf), 0);
}

static void test_req_encode_limits(void **state)
{
    (void)state;
    unsigned char *buf = malloc(SBS_MAX_MSG);
    assert_non_null(buf);
    char **many = calloc(SBS_MAX_ARGS + 2, sizeof(char *));
    for (int i = 0; i <= SBS_MAX_ARGS; i++)
        many[i] = "x";
    assert_int_equal(sbs_req_encode_spawn(buf, SBS_MAX_MSG, 1, 0, NULL, many, NULL, 0), AL_ETOOBIG);
    many[SBS_MAX_ARGS] = NULL;
    long n = sbs_req_encode_spawn(buf, SBS_MAX_MSG, 1, 0, NULL, many, many, 0);
    assert_true(n > 0);
    struct sbs_req r;
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), n);
    assert_int_equal(r.argc, SBS_MAX_ARGS);
    assert_int_equal(r.envc, SBS_MAX_ARGS);
    /* A body larger than SBS_MAX_MSG cannot be encoded. */
    char *big = malloc(SBS_MAX_MSG);
    memset(big, 'a', SBS_MAX_MSG - 1);
    big[SBS_MAX_MSG - 1] = '\0';
    char *argv[] = {big, NULL};
    assert_int_equal(sbs_req_encode_spawn(buf, SBS_MAX_MSG, 1, 0, NULL, argv, NULL, 0), AL_ETOOBIG);
    char *bad[] = {"", NULL};
    assert_int_equal(sbs_req_encode_spawn(buf, SBS_MAX_MSG, 1, 0, NULL, bad, NULL, 0), AL_EINVAL);
    assert_int_equal(sbs_req_encode_spawn(buf, SBS_MAX_MSG, 1, 0, "rel", many, NULL, 0), AL_EINVAL);
    free(big);
    free(many);
    free(buf);
}

/* SPAWN_TTY: the window size travels with the command; every prefix asks
 * for more; a size outside 1..SBS_TTY_MAX_DIM or a short fixed part is
 * malformed. */
static void test_req_spawn_tty(void **state)
{
    (void)state;
    static unsigned char buf[4096];
    char *argv[] = {"bash", "-l", NULL};
    char *envp[] = {"TERM=xterm-256color", NULL};
    long n = sbs_req_encode_spawn_tty(buf, sizeof(buf), 9, 0, 24, 80, "", argv, envp);
    assert_true(n > 0);
    struct sbs_req r;
    for (long k = 0; k < n; k++)
        assert_int_equal(sbs_req_parse(buf, (size_t)k, &r, argv_buf, envp_buf), 0);
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), n);
    assert_int_equal(r.type, SBS_REQ_SPAWN_TTY);
    assert_int_equal(r.req, 9);
    assert_int_equal(r.rows, 24);
    assert_int_equal(r.cols, 80);
    assert_int_equal(r.argc, 2);
    assert_string_equal(argv_buf[0], "bash");
    assert_string_equal(envp_buf[0], "TERM=xterm-256color");
    assert_string_equal(r.cwd, "");
    /* the size is checked by the encoder and by the parser */
    assert_int_equal(sbs_req_encode_spawn_tty(buf, sizeof(buf), 9, 0, 0, 80, "", argv, envp),
                     AL_EINVAL);
    assert_int_equal(
        sbs_req_encode_spawn_tty(buf, sizeof(buf), 9, 0, 24, SBS_TTY_MAX_DIM + 1, "", argv, envp),
        AL_EINVAL);
    n = sbs_req_encode_spawn_tty(buf, sizeof(buf), 9, 0, SBS_TTY_MAX_DIM, 1, "", argv, envp);
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), n);
    put32(buf + 24, 0); /* rows 0 */
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), AL_EINVAL);
    put32(buf + 24, 24);
    put32(buf + 28, 0x10000 + 80); /* cols past an unsigned short */
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), AL_EINVAL);
    put32(buf + 28, 80);
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), n);
    /* a body too short for the fixed part: refused on the header alone */
    put32(buf, 20);
    assert_int_equal(sbs_req_parse(buf, 8, &r, argv_buf, envp_buf), AL_EINVAL);
    /* a SPAWN_TTY's strings as a plain SPAWN would read them are not it */
    assert_int_equal(sbs_req_encode_spawn_tty(buf, 30, 9, 0, 24, 80, "", argv, envp), AL_ETOOBIG);
}

static void test_req_resize(void **state)
{
    (void)state;
    unsigned char buf[32];
    long n = sbs_req_encode_resize(buf, sizeof(buf), 5, 50, 132);
    assert_int_equal(n, SBS_HDR_LEN + 12);
    struct sbs_req r;
    for (long k = 0; k < n; k++)
        assert_int_equal(sbs_req_parse(buf, (size_t)k, &r, argv_buf, envp_buf), 0);
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), n);
    assert_int_equal(r.type, SBS_REQ_RESIZE);
    assert_int_equal(r.proc, 5);
    assert_int_equal(r.rows, 50);
    assert_int_equal(r.cols, 132);
    assert_int_equal(sbs_req_encode_resize(buf, sizeof(buf), 5, 0, 1), AL_EINVAL);
    assert_int_equal(sbs_req_encode_resize(buf, sizeof(buf), 5, 1, SBS_TTY_MAX_DIM + 1), AL_EINVAL);
    assert_int_equal(sbs_req_encode_resize(buf, 19, 5, 1, 1), AL_ETOOBIG);
    n = sbs_req_encode_resize(buf, sizeof(buf), 5, 50, 132);
    put32(buf + 16, 0); /* cols 0 */
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), AL_EINVAL);
    put32(buf + 16, 0xffffffffu);
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), AL_EINVAL);
    put32(buf + 16, 80);
    put32(buf + 12, SBS_TTY_MAX_DIM + 1); /* rows */
    assert_int_equal(sbs_req_parse(buf, (size_t)n, &r, argv_buf, envp_buf), AL_EINVAL);
    /* a body of any other length: refused on the header alone */
    put32(buf, 8);
    assert_int_equal(sbs_req_parse(buf, 8, &r, argv_buf, envp_buf), AL_EINVAL);
    put32(buf, 16);
    assert_int_equal(sbs_req_parse(buf, 8, &r, argv_buf, envp_buf), AL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_round_trip),    cmocka_unit_test(test_msg_two_in_a_row),
        cmocka_unit_test(test_msg_malformed),     cmocka_unit_test(test_req_spawn_round_trip),
        cmocka_unit_test(test_req_signal),        cmocka_unit_test(test_req_spawn_malformed),
        cmocka_unit_test(test_req_encode_limits), cmocka_unit_test(test_req_spawn_tty),
        cmocka_unit_test(test_req_resize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
