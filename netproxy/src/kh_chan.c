/* The front <-> key holder channel's I/O (kh_wire.h): SOCK_SEQPACKET
 * datagrams, one message each, with descriptors only on OPEN. */
#include "kh_wire.h"
#include "airlock/error.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int np_kh_pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return al_error_set_errno(AL_EIO, errno, "kh channel: socketpair");
    int sz = 4 * NP_KH_MSG_MAX;
    for (int i = 0; i < 2; i++) {
        /* best effort: the defaults also hold one whole message */
        (void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        (void)setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    return 0;
}

int np_kh_send(int fd, uint8_t *buf, const struct np_kh_msg *m, const int *fds, size_t nfds)
{
    size_t len = 0;
    int err;
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } u;

    if (nfds > 2)
        return al_error_set(AL_EINVAL, "kh channel: too many descriptors");
    if ((err = np_kh_msg_encode(&len, buf, NP_KH_MSG_MAX, m)) < 0)
        return err;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    for (;;) {
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n == (ssize_t)len)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        return al_error_set_errno(AL_EIO, n < 0 ? errno : EMSGSIZE, "kh channel: send");
    }
}

static void close_all(int *fds, size_t *nfds)
{
    for (size_t i = 0; i < *nfds; i++)
        close(fds[i]);
    *nfds = 0;
}

int np_kh_recv(struct np_kh_msg *out, int fd, uint8_t *buf, enum np_kh_from from, int fds[2],
               size_t *nfds, int timeout_ms)
{
    union {
        /* room for more than two, so extra descriptors are seen (and closed) */
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } u;
    /* a datagram longer than any message is cut: MSG_TRUNC refuses it */
    struct iovec iov = {.iov_base = buf, .iov_len = NP_KH_MSG_MAX};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    int ret;
    bool extra = false;

    *nfds = 0;
    memset(out, 0, sizeof(*out));
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr;
    do
        pr = poll(&pfd, 1, timeout_ms);
    while (pr < 0 && errno == EINTR);
    if (pr < 0)
        return al_error_set_errno(AL_EIO, errno, "kh channel: poll");
    if (pr == 0)
        return al_error_set(AL_ETIMEOUT, "kh channel: no message within %d ms", timeout_ms);
    do
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return al_error_set_errno(AL_EIO, errno, "kh channel: receive");
    /* Descriptors first: they are ours to close whatever else happens. */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*nfds < 2) {
                fds[(*nfds)++] = got;
            } else {
                close(got);
                extra = true;
            }
        }
    }
    if (n == 0 && *nfds == 0 && !extra)
        return 1; /* the peer closed its end (a message is never empty) */
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC) || extra) {
        ret = al_error_set(AL_EINVAL, "kh channel: message or descriptors truncated");
        goto fail;
    }
    if ((ret = np_kh_msg_decode(out, buf, (size_t)n, from)) < 0)
        goto fail;
    if (*nfds != (out->type == NP_KH_OPEN ? 2u : 0u)) {
        ret = al_error_set(AL_EINVAL, "kh channel: message %u came with %zu descriptors",
                           (unsigned)out->type, *nfds);
        goto fail;
    }
    return 0;
fail:
    close_all(fds, nfds);
    memset(out, 0, sizeof(*out));
    return ret;
}
