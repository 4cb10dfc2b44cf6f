/* Unit tests for the daemon's reader of init's messages (sbs_recv): input
 * arriving in pieces, malformed and oversized input, descriptors init
 * should never send, and end of file. A socketpair stands in for init. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sbs_proto.h"

#include "airlock/error.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int ioctl_fionread(int fd, int *out)
{
    return ioctl(fd, FIONREAD, out);
}

struct pair {
    struct sbs_conn c; /* the daemon's end */
    int init;          /* init's end */
};

static void pair_open(struct pair *p)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    memset(&p->c, 0, sizeof(p->c));
    p->c.fd = sv[0];
    p->c.rbuf = malloc(4096);
    p->c.rcap = 4096;
    assert_non_null(p->c.rbuf);
    p->init = sv[1];
}

static void pair_close(struct pair *p)
{
    close(p->c.fd);
    if (p->init >= 0)
        close(p->init);
    free(p->c.rbuf);
}

static void test_recv_in_pieces(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p);
    unsigned char buf[128];
    struct sbs_msg hello = {.type = SBS_MSG_HELLO, .version = 1};
    struct sbs_msg exited = {.type = SBS_MSG_EXITED, .proc = 4, .status = 2 << 8};
    long n1 = sbs_msg_encode(buf, sizeof(buf), &hello);
    long n2 = sbs_msg_encode(buf + n1, sizeof(buf) - (size_t)n1, &exited);
    struct sbs_msg m;
    assert_int_equal(sbs_recv(&p.c, &m), AL_EAGAIN);
    for (long i = 0; i < n1 + n2; i++) {
        assert_int_equal(write(p.init, buf + i, 1), 1);
        int r = sbs_recv(&p.c, &m);
        if (i == n1 - 1) {
            assert_int_equal(r, 0);
            assert_int_equal(m.type, SBS_MSG_HELLO);
        } else if (i == n1 + n2 - 1) {
            assert_int_equal(r, 0);
            assert_int_equal(m.proc, 4);
            assert_int_equal(m.status, 2 << 8);
        } else {
            assert_int_equal(r, AL_EAGAIN);
        }
    }
    pair_close(&p);
}

/* Two messages in one write: the first read leaves the second in the
 * socket, so poll() still reports it. */
static void test_recv_leaves_the_rest(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p);
    unsigned char buf[128];
    struct sbs_msg a = {.type = SBS_MSG_SPAWNED, .req = 1, .proc = 1, .pid = 7};
    struct sbs_msg b = {.type = SBS_MSG_EXITED, .proc = 1};
    long n1 = sbs_msg_encode(buf, sizeof(buf), &a);
    long n2 = sbs_msg_encode(buf + n1, sizeof(buf) - (size_t)n1, &b);
    assert_int_equal(write(p.init, buf, (size_t)(n1 + n2)), n1 + n2);
    struct sbs_msg m;
    assert_int_equal(sbs_recv(&p.c, &m), 0);
    assert_int_equal(m.type, SBS_MSG_SPAWNED);
    int pending = 0;
    assert_int_equal(ioctl_fionread(p.c.fd, &pending), 0);
    assert_int_equal(pending, n2);
    assert_int_equal(sbs_recv(&p.c, &m), 0);
    assert_int_equal(m.type, SBS_MSG_EXITED);
    pair_close(&p);
}

static void test_recv_malformed(void **state)
{
    (void)state;
    static const unsigned char bad[][8] = {
        {4, 0, 0, 0, 99, 0, 0, 0},            /* unknown type */
        {0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0}, /* oversized */
        {5, 0, 0, 0, 1, 0, 0, 0},             /* HELLO of 5 bytes */
        {8, 0, 0, 0, 16, 0, 0, 0},            /* a request type */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct pair p;
        pair_open(&p);
        assert_int_equal(write(p.init, bad[i], 8), 8);
        struct sbs_msg m;
        assert_int_equal(sbs_recv(&p.c, &m), AL_EINVAL);
        pair_close(&p);
    }
}

/* Descriptors sent along by a rogue init are closed, not leaked. */
static void test_recv_closes_fds(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p);
    int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(probe >= 0);
    close(probe); /* the lowest free descriptor number */
    unsigned char buf[32];
    struct sbs_msg hello = {.type = SBS_MSG_HELLO, .version = 1};
    long n = sbs_msg_encode(buf, sizeof(buf), &hello);
    int fds[3] = {0, 1, 2};
    assert_int_equal(sbs_sock_send(p.init, buf, (size_t)n, fds, 3, 1000), 0);
    struct sbs_msg m;
    assert_int_equal(sbs_recv(&p.c, &m), 0);
    int after = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_int_equal(after, probe);
    close(after);
    pair_close(&p);
}

static void test_recv_eof(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p);
    unsigned char half[4] = {4, 0, 0, 0};
    assert_int_equal(write(p.init, half, 4), 4);
    close(p.init);
    p.init = -1;
    struct sbs_msg m;
    assert_int_equal(sbs_recv(&p.c, &m), AL_EIO);
    pair_close(&p);
}

/* The watch socket's reader: one whole message per record or an error. */
static void test_watch_recv(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    struct sbs_msg m;
    assert_int_equal(sbs_watch_recv(sv[0], &m), AL_EAGAIN);
    unsigned char buf[200];
    struct sbs_msg ex = {.type = SBS_MSG_EXITED, .proc = 9, .status = 3 << 8, .duration_ms = 5};
    long n = sbs_msg_encode(buf, sizeof(buf), &ex);
    assert_true(n > 0);
    assert_int_equal(send(sv[1], buf, (size_t)n, 0), n);
    assert_int_equal(sbs_watch_recv(sv[0], &m), 0);
    assert_int_equal(m.type, SBS_MSG_EXITED);
    assert_int_equal(m.proc, 9);
    assert_int_equal(m.status, 3 << 8);
    /* a record holding a message and a half, a partial one, an oversized
     * one, a HELLO, garbage: each malformed */
    assert_int_equal(send(sv[1], buf, (size_t)n + 10, 0), n + 10);
    assert_int_equal(sbs_watch_recv(sv[0], &m), AL_EINVAL);
    assert_int_equal(send(sv[1], buf, (size_t)n - 1, 0), n - 1);
    assert_int_equal(sbs_watch_recv(sv[0], &m), AL_EINVAL);
    memset(buf + n, 0, sizeof(buf) - (size_t)n);
    assert_int_equal(send(sv[1], buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
    assert_int_equal(sbs_watch_recv(sv[0], &m), AL_EINVAL);
    struct sbs_msg hello = {.type = SBS_MSG_HELLO, .version = 2};
    n = sbs_msg_encode(buf, sizeof(buf), &hello);
    assert_int_equal(send(sv[1], buf, (size_t)n, 0), n);
    assert_int_equal(sbs_watch_recv(sv[0], &m), AL_EINVAL);
    assert_int_equal(send(sv[1], "\xff\xff\xff\xff\x02\0\0\0", 8, 0), 8);
    assert_int_equal(sbs_watch_recv(sv[0], &m), AL_EINVAL);
    /* nothing lost after the bad ones: the next good one reads */
    n = sbs_msg_encode(buf, sizeof(buf), &ex);
    assert_int_equal(send(sv[1], buf, (size_t)n, 0), n);
    assert_int_equal(sbs_watch_recv(sv[0], &m), 0);
    close(sv[1]);
    assert_int_equal(sbs_watch_recv(sv[0], &m), AL_EIO);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recv_in_pieces), cmocka_unit_test(test_recv_leaves_the_rest),
        cmocka_unit_test(test_recv_malformed), cmocka_unit_test(test_recv_closes_fds),
        cmocka_unit_test(test_recv_eof),       cmocka_unit_test(test_watch_recv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
