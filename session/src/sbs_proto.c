/* Encoding and parsing of the airlockd <-> airlock-init messages. The
 * parsers take (pointer, length), never trust a length field beyond
 * SBS_MAX_MSG and accept exactly one well-formed layout per type: anything
 * else is AL_EINVAL and the reader drops the connection. */
#include "sbs_proto.h"

#include "airlock/error.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void put_u64(unsigned char *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* Reads the header: 0 = incomplete, <0 = malformed, else the total length
 * of the message (header included). */
static long frame(const unsigned char *buf, size_t len, uint32_t *type)
{
    if (len < SBS_HDR_LEN)
        return 0;
    uint32_t body = get_u32(buf);
    *type = get_u32(buf + 4);
    if (body > SBS_MAX_MSG - SBS_HDR_LEN)
        return AL_EINVAL;
    if (len < SBS_HDR_LEN + (size_t)body)
        return 0;
    return (long)(SBS_HDR_LEN + body);
}

/* The body length each message type from init must have. */
static long msg_body_len(uint32_t type)
{
    switch (type) {
    case SBS_MSG_HELLO:
        return 4;
    case SBS_MSG_SPAWNED:
        return 12;
    case SBS_MSG_SPAWN_FAILED:
        return 8;
    case SBS_MSG_EXITED:
        return 20;
    default:
        return AL_EINVAL;
    }
}

long sbs_msg_parse(const unsigned char *buf, size_t len, struct sbs_msg *out)
{
    uint32_t type = 0;
    /* Rejected on the header alone: nothing waits for a bad body. */
    if (len >= SBS_HDR_LEN && msg_body_len(get_u32(buf + 4)) != (long)get_u32(buf))
        return AL_EINVAL;
    long total = frame(buf, len, &type);
    if (total <= 0)
        return total;
    const unsigned char *b = buf + SBS_HDR_LEN;
    size_t blen = (size_t)total - SBS_HDR_LEN;
    memset(out, 0, sizeof(*out));
    out->type = (enum sbs_msg_type)type;
    switch (type) {
    case SBS_MSG_HELLO:
        if (blen != 4)
            return AL_EINVAL;
        out->version = get_u32(b);
        break;
    case SBS_MSG_SPAWNED:
        if (blen != 12)
            return AL_EINVAL;
        out->req = get_u32(b);
        out->proc = get_u32(b + 4);
        out->pid = (pid_t)get_u32(b + 8);
        if (out->pid <= 0)
            return AL_EINVAL;
        break;
    case SBS_MSG_SPAWN_FAILED:
        if (blen != 8)
            return AL_EINVAL;
        out->req = get_u32(b);
        out->err = (int)get_u32(b + 4);
        if (out->err <= 0 || out->err > 4095)
            return AL_EINVAL;
        break;
    case SBS_MSG_EXITED:
        if (blen != 20)
            return AL_EINVAL;
        out->proc = get_u32(b);
        out->status = (int)get_u32(b + 4);
        out->timed_out = (int)get_u32(b + 8);
        out->duration_ms = get_u64(b + 12);
        /* A wait status: exit code in bits 8-15, or a signal in bits 0-6. */
        if ((out->status & ~0xffff) != 0 || (out->timed_out != 0 && out->timed_out != 1))
            return AL_EINVAL;
        break;
    default:
        return AL_EINVAL;
    }
    return total;
}

long sbs_msg_encode(unsigned char *buf, size_t cap, const struct sbs_msg *msg)
{
    long blen = msg_body_len((uint32_t)msg->type);
    if (blen < 0)
        return AL_EINVAL;
    size_t body = (size_t)blen;
    if (cap < SBS_HDR_LEN + body)
        return AL_ETOOBIG;
    put_u32(buf, (uint32_t)body);
    put_u32(buf + 4, (uint32_t)msg->type);
    unsigned char *b = buf + SBS_HDR_LEN;
    switch (msg->type) {
    case SBS_MSG_HELLO:
        put_u32(b, msg->version);
        break;
    case SBS_MSG_SPAWNED:
        put_u32(b, msg->req);
        put_u32(b + 4, msg->proc);
        put_u32(b + 8, (uint32_t)msg->pid);
        break;
    case SBS_MSG_SPAWN_FAILED:
        put_u32(b, msg->req);
        put_u32(b + 4, (uint32_t)msg->err);
        break;
    case SBS_MSG_EXITED:
        put_u32(b, msg->proc);
        put_u32(b + 4, (uint32_t)msg->status);
        put_u32(b + 8, (uint32_t)msg->timed_out);
        put_u64(b + 12, msg->duration_ms);
        break;
    }
    return (long)(SBS_HDR_LEN + body);
}

/* A terminal's rows or columns: 1..SBS_TTY_MAX_DIM. */
static int tty_dim_ok(uint32_t v)
{
    return v >= 1 && v <= SBS_TTY_MAX_DIM;
}

/* Splits `n` NUL-terminated strings off *p (bounded by end) into out[];
 * out[n] = NULL. 0, or AL_EINVAL when a string is unterminated. */
static int take_strings(const unsigned char **p, const unsigned char *end, uint32_t n,
                        const char **out)
{
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *nul = memchr(*p, '\0', (size_t)(end - *p));
        if (!nul)
            return AL_EINVAL;
        if (out)
            out[i] = (const char *)*p;
        *p = nul + 1;
    }
    if (out)
        out[n] = NULL;
    return 0;
}

long sbs_req_parse(const unsigned char *buf, size_t len, struct sbs_req *out, const char **argv,
                   const char **envp)
{
    uint32_t type = 0;
    if (len >= SBS_HDR_LEN) {
        uint32_t t = get_u32(buf + 4), body = get_u32(buf);
        int spawn = t == SBS_REQ_SPAWN || t == SBS_REQ_SPAWN_WATCHED;
        if (!(spawn && body >= 16) && !(t == SBS_REQ_SPAWN_TTY && body >= 24) &&
            !(t == SBS_REQ_SIGNAL && body == 8) && !(t == SBS_REQ_RESIZE && body == 12))
            return AL_EINVAL;
    }
    long total = frame(buf, len, &type);
    if (total <= 0)
        return total;
    const unsigned char *b = buf + SBS_HDR_LEN, *end = buf + total;
    size_t blen = (size_t)total - SBS_HDR_LEN;
    memset(out, 0, sizeof(*out));
    out->type = (enum sbs_req_type)type;
    switch (type) {
    case SBS_REQ_SPAWN:
    case SBS_REQ_SPAWN_WATCHED:
    case SBS_REQ_SPAWN_TTY: {
        size_t fixed = type == SBS_REQ_SPAWN_TTY ? 24 : 16;
        if (blen < fixed)
            return AL_EINVAL;
        out->req = get_u32(b);
        out->timeout_s = get_u32(b + 4);
        out->argc = get_u32(b + 8);
        out->envc = get_u32(b + 12);
        if (out->argc < 1 || out->argc > SBS_MAX_ARGS || out->envc > SBS_MAX_ARGS)
            return AL_EINVAL;
        if (type == SBS_REQ_SPAWN_TTY) {
            out->rows = get_u32(b + 16);
            out->cols = get_u32(b + 20);
            if (!tty_dim_ok(out->rows) || !tty_dim_ok(out->cols))
                return AL_EINVAL;
        }
        const unsigned char *p = b + fixed;
        const char *cwd[2];
        if (take_strings(&p, end, 1, cwd) < 0 || take_strings(&p, end, out->argc, argv) < 0 ||
            take_strings(&p, end, out->envc, envp) < 0 || p != end)
            return AL_EINVAL;
        out->cwd = cwd[0];
        if (out->cwd[0] != '\0' && out->cwd[0] != '/')
            return AL_EINVAL;
        if (argv[0][0] == '\0')
            return AL_EINVAL;
        break;
    }
    case SBS_REQ_SIGNAL:
        if (blen != 8)
            return AL_EINVAL;
        out->proc = get_u32(b);
        out->sig = (int)get_u32(b + 4);
        if (out->sig < 1 || out->sig > 64)
            return AL_EINVAL;
        break;
    case SBS_REQ_RESIZE:
        if (blen != 12)
            return AL_EINVAL;
        out->proc = get_u32(b);
        out->rows = get_u32(b + 4);
        out->cols = get_u32(b + 8);
        if (!tty_dim_ok(out->rows) || !tty_dim_ok(out->cols))
            return AL_EINVAL;
        break;
    default:
        return AL_EINVAL;
    }
    return total;
}

/* Appends the NUL-terminated `s` at buf[*off]; AL_ETOOBIG when full. */
static int put_str(unsigned char *buf, size_t cap, size_t *off, const char *s)
{
    size_t n = strlen(s) + 1;
    if (n > cap - *off)
        return AL_ETOOBIG;
    memcpy(buf + *off, s, n);
    *off += n;
    return 0;
}

/* Encodes a spawn request of `type`; `extra` (n_extra u32s: a tty's rows
 * and cols) goes between the four counts and the strings. */
static long encode_spawn(unsigned char *buf, size_t cap, uint32_t type, uint32_t req,
                         uint32_t timeout_s, const uint32_t *extra, size_t n_extra, const char *cwd,
                         char *const *argv, char *const *envp)
{
    size_t fixed = 16 + 4 * n_extra;
    if (cap > SBS_MAX_MSG)
        cap = SBS_MAX_MSG;
    if (cap < SBS_HDR_LEN + fixed || !argv || !argv[0] || !argv[0][0])
        return cap < SBS_HDR_LEN + fixed ? AL_ETOOBIG : AL_EINVAL;
    uint32_t argc = 0, envc = 0;
    while (argv[argc] && argc <= SBS_MAX_ARGS)
        argc++;
    while (envp && envp[envc] && envc <= SBS_MAX_ARGS)
        envc++;
    if (argc > SBS_MAX_ARGS || envc > SBS_MAX_ARGS)
        return AL_ETOOBIG;
    if (cwd && cwd[0] != '\0' && cwd[0] != '/')
        return AL_EINVAL;
    size_t off = SBS_HDR_LEN + fixed;
    int err = put_str(buf, cap, &off, cwd ? cwd : "");
    for (uint32_t i = 0; i < argc && err == 0; i++)
        err = put_str(buf, cap, &off, argv[i]);
    for (uint32_t i = 0; i < envc && err == 0; i++)
        err = put_str(buf, cap, &off, envp[i]);
    if (err < 0)
        return err;
    put_u32(buf, (uint32_t)(off - SBS_HDR_LEN));
    put_u32(buf + 4, type);
    put_u32(buf + 8, req);
    put_u32(buf + 12, timeout_s);
    put_u32(buf + 16, argc);
    put_u32(buf + 20, envc);
    for (size_t i = 0; i < n_extra; i++)
        put_u32(buf + 24 + 4 * i, extra[i]);
    return (long)off;
}

long sbs_req_encode_spawn(unsigned char *buf, size_t cap, uint32_t req, uint32_t timeout_s,
                          const char *cwd, char *const *argv, char *const *envp, int watched)
{
    return encode_spawn(buf, cap, watched ? SBS_REQ_SPAWN_WATCHED : SBS_REQ_SPAWN, req, timeout_s,
                        NULL, 0, cwd, argv, envp);
}

long sbs_req_encode_spawn_tty(unsigned char *buf, size_t cap, uint32_t req, uint32_t timeout_s,
                              uint32_t rows, uint32_t cols, const char *cwd, char *const *argv,
                              char *const *envp)
{
    if (!tty_dim_ok(rows) || !tty_dim_ok(cols))
        return AL_EINVAL;
    uint32_t size[2] = {rows, cols};
    return encode_spawn(buf, cap, SBS_REQ_SPAWN_TTY, req, timeout_s, size, 2, cwd, argv, envp);
}

long sbs_req_encode_signal(unsigned char *buf, size_t cap, uint32_t proc, int sig)
{
    if (cap < SBS_HDR_LEN + 8)
        return AL_ETOOBIG;
    if (sig < 1 || sig > 64)
        return AL_EINVAL;
    put_u32(buf, 8);
    put_u32(buf + 4, SBS_REQ_SIGNAL);
    put_u32(buf + 8, proc);
    put_u32(buf + 12, (uint32_t)sig);
    return SBS_HDR_LEN + 8;
}

long sbs_req_encode_resize(unsigned char *buf, size_t cap, uint32_t proc, uint32_t rows,
                           uint32_t cols)
{
    if (cap < SBS_HDR_LEN + 12)
        return AL_ETOOBIG;
    if (!tty_dim_ok(rows) || !tty_dim_ok(cols))
        return AL_EINVAL;
    put_u32(buf, 12);
    put_u32(buf + 4, SBS_REQ_RESIZE);
    put_u32(buf + 8, proc);
    put_u32(buf + 12, rows);
    put_u32(buf + 16, cols);
    return SBS_HDR_LEN + 12;
}

int sbs_sock_send(int fd, const unsigned char *buf, size_t len, const int *fds, size_t n_fds,
                  int timeout_ms)
{
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    if (n_fds > 4)
        return AL_EINVAL;
    size_t off = 0;
    while (off < len) {
        struct iovec iov = {(void *)(buf + off), len - off};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (n_fds && off == 0) {
            memset(&ctl, 0, sizeof(ctl));
            mh.msg_control = ctl.space;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
            memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
        }
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {fd, POLLOUT, 0};
            int r = poll(&p, 1, timeout_ms);
            if (r > 0 || (r < 0 && errno == EINTR))
                continue;
            return AL_ETIMEOUT;
        }
        return AL_EIO;
    }
    return 0;
}

size_t sbs_cmsg_take_fds(struct msghdr *mh, int *out, size_t cap, size_t *dropped)
{
    size_t n_out = 0;
    *dropped = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (n_out < cap) {
                out[n_out++] = fd;
            } else {
                close(fd);
                (*dropped)++;
            }
        }
    }
    return n_out;
}
