#include "gp_chan.h"
#include "airlock/error.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static int printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

static void wput(struct gp_wire *w, const void *p, size_t n)
{
    if (w->err)
        return;
    if (n > w->cap - w->len) {
        w->err = AL_ETOOBIG;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void gp_wire_init(struct gp_wire *w, uint8_t *buf, size_t cap, enum gp_chan_type type)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->err = cap == 0 ? AL_ETOOBIG : 0;
    gp_wire_u8(w, (uint8_t)type);
}

void gp_wire_u8(struct gp_wire *w, uint8_t v)
{
    wput(w, &v, 1);
}

void gp_wire_u16(struct gp_wire *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    wput(w, b, 2);
}

static void wire_u32(struct gp_wire *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wput(w, b, 4);
}

void gp_wire_u64(struct gp_wire *w, uint64_t v)
{
    wire_u32(w, (uint32_t)v);
    wire_u32(w, (uint32_t)(v >> 32));
}

void gp_wire_strn(struct gp_wire *w, const char *s, size_t n)
{
    if (!w->err && (n > 0xffff || !printable(s, n)))
        w->err = AL_EINVAL;
    gp_wire_u16(w, (uint16_t)n);
    wput(w, s, n);
}

void gp_wire_str(struct gp_wire *w, const char *s)
{
    gp_wire_strn(w, s ? s : "", s ? strlen(s) : 0);
}

void gp_wire_bin(struct gp_wire *w, const void *p, size_t n)
{
    if (!w->err && n > UINT32_MAX)
        w->err = AL_ETOOBIG;
    wire_u32(w, (uint32_t)n);
    wput(w, p, n);
}

void gp_wire_raw(struct gp_wire *w, const void *p, size_t n)
{
    wput(w, p, n);
}

int gp_rd_init(struct gp_rd *r, const void *msg, size_t len)
{
    r->p = msg;
    r->len = len;
    r->off = 0;
    r->err = 0;
    if (len == 0) {
        r->err = AL_EINVAL;
        return 0;
    }
    r->off = 1;
    return r->p[0];
}

static const uint8_t *rget(struct gp_rd *r, size_t n)
{
    if (r->err)
        return NULL;
    if (n > r->len - r->off) {
        r->err = AL_EINVAL;
        return NULL;
    }
    const uint8_t *at = r->p + r->off;
    r->off += n;
    return at;
}

uint8_t gp_rd_u8(struct gp_rd *r)
{
    const uint8_t *b = rget(r, 1);
    return b ? b[0] : 0;
}

uint16_t gp_rd_u16(struct gp_rd *r)
{
    const uint8_t *b = rget(r, 2);
    return b ? (uint16_t)(b[0] | b[1] << 8) : 0;
}

static uint32_t rd_u32(struct gp_rd *r)
{
    const uint8_t *b = rget(r, 4);
    return b ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24
             : 0;
}

uint64_t gp_rd_u64(struct gp_rd *r)
{
    uint64_t lo = rd_u32(r);
    return lo | (uint64_t)rd_u32(r) << 32;
}

void gp_rd_str(struct gp_rd *r, char *dst, size_t cap)
{
    size_t n = gp_rd_u16(r);
    const uint8_t *s = rget(r, n);
    dst[0] = '\0';
    if (!s)
        return;
    if (n >= cap || !printable((const char *)s, n)) {
        r->err = AL_EINVAL;
        return;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

const uint8_t *gp_rd_bin(struct gp_rd *r, size_t *len)
{
    size_t n = rd_u32(r);
    const uint8_t *b = rget(r, n);
    *len = b ? n : 0;
    return b;
}

const uint8_t *gp_rd_rest(struct gp_rd *r, size_t *len)
{
    *len = r->err ? 0 : r->len - r->off;
    const uint8_t *b = r->err ? NULL : r->p + r->off;
    r->off = r->len;
    return b;
}

int gp_rd_end(struct gp_rd *r, const char *what)
{
    if (r->err || r->off != r->len)
        return al_error_set(AL_EINVAL, "malformed %s message", what);
    return 0;
}

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
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof(u.buf)};
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
