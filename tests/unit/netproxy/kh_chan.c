/* The front <-> key holder channel's I/O (netproxy/src/kh_chan.c) over a
 * real SOCK_SEQPACKET pair: descriptors only with OPEN and then exactly
 * two, nothing left open when a message is refused, oversized and
 * malformed datagrams refused, end of channel and timeouts told apart. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kh_wire.h"

#include "airlock/error.h"

static uint8_t buf[NP_KH_MSG_MAX], sbuf[NP_KH_MSG_MAX];

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* How many descriptors this process has open (to see none leaks). */
static int open_count(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fd_open(fd);
    return n;
}

static void open_with_two_descriptors(void **state)
{
    (void)state;
    int sv[2], p[2], fds[2];
    size_t nfds;
    struct np_kh_msg m = {.type = NP_KH_OPEN, .port = 443, .flags = NP_KH_OPEN_TLS}, d;
    memcpy(m.session, "s1", 3);
    memcpy(m.host, "h.example", 10);
    assert_int_equal(np_kh_pair(sv), 0);
    assert_int_equal(pipe(p), 0);
    int before = open_count();
    assert_int_equal(np_kh_send(sv[0], sbuf, &m, p, 2), 0);
    assert_int_equal(np_kh_recv(&d, sv[1], buf, NP_KH_FROM_FRONT, fds, &nfds, 1000), 0);
    assert_int_equal(d.type, NP_KH_OPEN);
    assert_string_equal(d.host, "h.example");
    assert_int_equal(nfds, 2);
    assert_int_equal(open_count(), before + 2);
    /* the received descriptors are the pipe's ends */
    assert_int_equal(write(fds[1], "x", 1), 1);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_true(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
    close(fds[0]);
    close(fds[1]);

    /* OPEN with one descriptor, or none: refused, nothing left open */
    assert_int_equal(np_kh_send(sv[0], sbuf, &m, p, 1), 0);
    assert_int_equal(np_kh_recv(&d, sv[1], buf, NP_KH_FROM_FRONT, fds, &nfds, 1000), AL_EINVAL);
    assert_int_equal(nfds, 0);
    assert_int_equal(np_kh_send(sv[0], sbuf, &m, NULL, 0), 0);
    assert_int_equal(np_kh_recv(&d, sv[1], buf, NP_KH_FROM_FRONT, fds, &nfds, 1000), AL_EINVAL);
    assert_int_equal(open_count(), before);

    /* any other message with a descriptor: refused and closed */
    static const uint8_t body[] = "abc";
    struct np_kh_msg b = {.type = NP_KH_BODY, .data = body, .data_len = 3};
    assert_int_equal(np_kh_send(sv[0], sbuf, &b, p, 1), 0);
    assert_int_equal(np_kh_recv(&d, sv[1], buf, NP_KH_FROM_FRONT, fds, &nfds, 1000), AL_EINVAL);
    assert_int_equal(open_count(), before);
    assert_int_equal(np_kh_send(sv[0], sbuf, &b, NULL, 0), 0);
    assert_int_equal(np_kh_recv(&d, sv[1], buf, NP_KH_FROM_FRONT, fds, &nfds, 1000), 0);
    assert_int_equal(d.data_len, 3);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

static void refusals(void **state)
{
    (void)state;
    int sv[2], fds[2], p[2];
    size_t nfds;
    struct np_kh_msg d;
    assert_int_equal(np_kh_pair(sv), 0);
    assert_int_equal(pipe(p), 0);
    int before = open_count();

    /* nothing yet: a timeout */
    assert_int_equal(np_kh_recv(&d, sv[1], buf, NP_KH_FROM_FRONT, fds, &nfds, 10), AL_ETIMEOUT);
    /* a datagram longer than any message */
    static uint8_t big[NP_KH_MSG_MAX + 100];
    memset(big, 0, sizeof(big));
    big[0] = NP_KH_BODY;
    assert_int_equal(send(sv[0], big, sizeof(big), 0), (ssize_t)sizeof(big));
    assert_int_equal(np_kh_recv(&d, sv[1], buf, NP_KH_FROM_FRONT, fds, &nfds, 1000), AL_EINVAL);
    /* a malformed one, with descriptors attached (sent by hand) */
    uint8_t bad[] = {NP_KH_OPEN, 0xff, 0xff};
    union {
        char b[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct iovec iov = {.iov_base = bad, .iov_len = sizeof(bad)};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    memcpy(CMSG_DATA(c), p, 2 * sizeof(int));
    assert_int_equal(sendmsg(sv[0], &mh, 0), (ssize_t)sizeof(bad));
    assert_int_equal(np_kh_recv(&d, sv[1], buf, NP_KH_FROM_FRONT, fds, &nfds, 1000), AL_EINVAL);
    assert_int_equal(nfds, 0);
    assert_int_equal(open_count(), before);
    /* a message of the wrong direction */
    struct np_kh_msg e = {.type = NP_KH_OPEN_OK};
    assert_int_equal(np_kh_send(sv[0], sbuf, &e, NULL, 0), 0);
    assert_int_equal(np_kh_recv(&d, sv[1], buf, NP_KH_FROM_FRONT, fds, &nfds, 1000), AL_EINVAL);
    assert_int_equal(np_kh_recv(&d, sv[0], buf, NP_KH_FROM_KEYHOLDER, fds, &nfds, 10), AL_ETIMEOUT);
    /* an invalid message is never sent */
    struct np_kh_msg inv = {.type = NP_KH_BODY};
    assert_int_equal(np_kh_send(sv[0], sbuf, &inv, NULL, 0), AL_EINVAL);
    assert_int_equal(np_kh_send(sv[0], sbuf, &e, p, 3), AL_EINVAL);
    /* the peer closes: 1, then again 1 */
    close(sv[0]);
    assert_int_equal(np_kh_recv(&d, sv[1], buf, NP_KH_FROM_FRONT, fds, &nfds, 1000), 1);
    assert_int_equal(np_kh_recv(&d, sv[1], buf, NP_KH_FROM_FRONT, fds, &nfds, 1000), 1);
    /* sending to a closed peer fails (no SIGPIPE) */
    assert_int_equal(np_kh_send(sv[1], sbuf, &e, NULL, 0), AL_EIO);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_with_two_descriptors),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
