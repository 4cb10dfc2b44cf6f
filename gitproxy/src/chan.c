/* The channel's I/O (gp_chan.h): SOCK_SEQPACKET messages with descriptors. */
#include "gp_chan.h"
#include "airlock/error.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static int chan_send(int fd, const struct gp_wire *w, const int *fds, size_t nfds, int flags)
{
    if (w->err)
        return al_error_set(w->err, "channel message does not fit");
    struct iovec iov = {.iov_base = w->buf, .iov_len = w->len};
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 2)
        return al_error_set(AL_EINVAL, "too many descriptors");
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
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | flags);
        if (n == (ssize_t)w->len)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (flags & MSG_DONTWAIT) && (errno == EAGAIN || errno == EWOULDBLOCK))
            return AL_EAGAIN;
        return al_error_set_errno(AL_EIO, n < 0 ? errno : EMSGSIZE, "channel send");
    }
}

int gp_chan_send(int fd, const struct gp_wire *w, const int *fds, size_t nfds)
{
    return chan_send(fd, w, fds, nfds, 0);
}

int gp_chan_trysend(int fd, const struct gp_wire *w)
{
    return chan_send(fd, w, NULL, 0, MSG_DONTWAIT);
}

int gp_chan_send_type(int fd, enum gp_chan_type type)
{
    uint8_t b[1];
    struct gp_wire w;
    gp_wire_init(&w, b, sizeof(b), type);
    return gp_chan_send(fd, &w, NULL, 0);
}

ssize_t gp_chan_recv(int fd, uint8_t *buf, size_t cap, int *fds, size_t maxfds, size_t *nfds)
{
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    *nfds = 0;
    do
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK
                   ? AL_EAGAIN
                   : al_error_set_errno(AL_EIO, errno, "channel receive");
    /* Descriptors first: they are ours to close whatever else happens. */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*nfds < maxfds)
                fds[(*nfds)++] = got;
            else
                close(got);
        }
    }
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        for (size_t i = 0; i < *nfds; i++)
            close(fds[i]);
        *nfds = 0;
        return al_error_set(AL_EINVAL, "channel message truncated");
    }
    return n;
}

int gp_chan_pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return al_error_set_errno(AL_EIO, errno, "socketpair");
    int sz = 4 * GP_CHAN_MSG_MAX;
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    return 0;
}
