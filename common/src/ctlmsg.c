#include "airlock/ctlmsg.h"
#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_TYPE_MAX 64 /* longest "type" accepted */

/* ---- frames ---- */

void ctl_reader_init(struct ctl_reader *r)
{
    memset(r, 0, sizeof(*r));
    al_buf_init(&r->body, CTL_FRAME_MAX);
}

static void reader_close_fds(struct ctl_reader *r)
{
    for (size_t i = 0; i < r->nfds; i++)
        close(r->fds[i]);
    r->nfds = 0;
}

static void reader_reset(struct ctl_reader *r)
{
    r->hdr_len = 0;
    r->body_len = 0;
    al_buf_reset(&r->body);
}

void ctl_reader_clear(struct ctl_reader *r)
{
    reader_close_fds(r);
    al_buf_free(&r->body);
    reader_reset(r);
}

size_t ctl_reader_want(const struct ctl_reader *r)
{
    if (r->hdr_len < sizeof(r->hdr))
        return sizeof(r->hdr) - r->hdr_len;
    return r->body_len - r->body.len;
}

int ctl_msg_parse(json_t **out, const void *data, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    int err = AL_EINVAL;
    if (!msg)
        return al_error_set(AL_EINVAL, "control frame: %s", jerr.text);
    if (!json_is_object(msg)) {
        al_error_set(err, "control frame: not a JSON object");
        goto out;
    }
    json_t *v = json_object_get(msg, "v");
    if (!json_is_integer(v) || json_integer_value(v) != CTL_VERSION) {
        al_error_set(err, "control frame: \"v\" must be %d", CTL_VERSION);
        goto out;
    }
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (!type || !*type || strlen(type) > CTL_TYPE_MAX) {
        al_error_set(err, "control frame: \"type\" must be a short string");
        goto out;
    }
    json_t *seq = json_object_get(msg, "seq");
    if (seq && !json_is_null(seq) && (!json_is_integer(seq) || json_integer_value(seq) < 0)) {
        al_error_set(err, "control frame: \"seq\" must be an integer >= 0");
        goto out;
    }
    json_t *fds = json_object_get(msg, "fds");
    if (fds && (!json_is_integer(fds) || json_integer_value(fds) < 0 ||
                json_integer_value(fds) > CTL_FDS_MAX)) {
        al_error_set(err, "control frame: \"fds\" must be an integer 0..%d", CTL_FDS_MAX);
        goto out;
    }
    *out = steal_pointer(&msg);
    err = 0;
out:
    json_decref(msg);
    return err;
}

int ctl_reader_feed(struct ctl_reader *r, const void *data, size_t len, size_t *used, json_t **out)
{
    const unsigned char *p = data;
    size_t off = 0;
    *used = 0;
    *out = NULL;
    if (r->hdr_len < sizeof(r->hdr)) {
        size_t n = sizeof(r->hdr) - r->hdr_len;
        if (n > len)
            n = len;
        memcpy(r->hdr + r->hdr_len, p, n);
        r->hdr_len += n;
        off += n;
        *used = off;
        if (r->hdr_len < sizeof(r->hdr))
            return AL_EAGAIN;
        r->body_len =
            (size_t)r->hdr[0] << 24 | (size_t)r->hdr[1] << 16 | (size_t)r->hdr[2] << 8 | r->hdr[3];
        if (r->body_len == 0 || r->body_len > CTL_FRAME_MAX) {
            size_t bad = r->body_len;
            reader_reset(r);
            return al_error_set(AL_ETOOBIG, "control frame length %zu (1..%u)", bad, CTL_FRAME_MAX);
        }
    }
    size_t n = r->body_len - r->body.len;
    if (n > len - off)
        n = len - off;
    if (n && al_buf_append(&r->body, p + off, n) < 0)
        return AL_ENOMEM;
    off += n;
    *used = off;
    if (r->body.len < r->body_len)
        return AL_EAGAIN;
    int err = ctl_msg_parse(out, r->body.ptr, r->body.len);
    reader_reset(r);
    return err;
}

json_t *ctl_msg_new(const char *type)
{
    return json_pack("{s:i, s:s}", "v", CTL_VERSION, "type", type);
}

const char *ctl_msg_type(const json_t *msg)
{
    const char *t = json_string_value(json_object_get(msg, "type"));
    return t ? t : "";
}

/* Waits until `fd` is ready for `events`. */
static int wait_fd(int fd, short events)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int n;
    do
        n = poll(&pfd, 1, -1);
    while (n < 0 && errno == EINTR);
    return n < 0 ? al_error_set_errno(AL_EIO, errno, "poll") : 0;
}

int ctl_send(int fd, json_t *msg, const int *fds, size_t nfds)
{
    cleanup_free char *body = NULL;
    cleanup_free unsigned char *frame = NULL;
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
    } cmsg;
    if (nfds > CTL_FDS_MAX)
        return al_error_set(AL_EINVAL, "at most %d descriptors per frame", CTL_FDS_MAX);
    if (nfds && json_object_set_new(msg, "fds", json_integer((json_int_t)nfds)) < 0)
        return AL_ENOMEM;
    if (!(body = json_dumps(msg, JSON_COMPACT)))
        return AL_ENOMEM;
    size_t len = strlen(body);
    if (len == 0 || len > CTL_FRAME_MAX)
        return al_error_set(AL_ETOOBIG, "control message of %zu bytes", len);
    if (!(frame = malloc(len + 4)))
        return AL_ENOMEM;
    frame[0] = (unsigned char)(len >> 24);
    frame[1] = (unsigned char)(len >> 16);
    frame[2] = (unsigned char)(len >> 8);
    frame[3] = (unsigned char)len;
    memcpy(frame + 4, body, len);
    size_t total = len + 4, off = 0;
    while (off < total) {
        struct iovec iov = {.iov_base = frame + off, .iov_len = total - off};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        /* The descriptors ride on the frame's first byte. */
        if (off == 0 && nfds) {
            memset(&cmsg, 0, sizeof(cmsg));
            mh.msg_control = cmsg.buf;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
            memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
        }
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            int err;
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return al_error_set_errno(AL_EIO, errno, "control socket write");
            if ((err = wait_fd(fd, POLLOUT)) < 0)
                return err;
            continue;
        }
        off += (size_t)n;
    }
    return 0;
}

/* Takes the SCM_RIGHTS descriptors of `mh` into the reader; those that do not
 * fit are closed. Returns 0 or AL_EINVAL when some had to be closed. */
static int reader_take_fds(struct ctl_reader *r, struct msghdr *mh)
{
    int err = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (r->nfds < CTL_FDS_MAX) {
                r->fds[r->nfds++] = fd;
            } else {
                close(fd);
                err = al_error_set(AL_EINVAL, "more than %d descriptors on one frame", CTL_FDS_MAX);
            }
        }
    }
    return err;
}

int ctl_recv(struct ctl_reader *r, int fd, json_t **msg, int *fds, size_t *nfds)
{
    unsigned char buf[16384];
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
    } cmsg;
    int err;
    *msg = NULL;
    *nfds = 0;
    for (;;) {
        size_t want = ctl_reader_want(r), used;
        struct iovec iov = {.iov_base = buf, .iov_len = want < sizeof(buf) ? want : sizeof(buf)};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cmsg.buf,
                            .msg_controllen = sizeof(cmsg.buf)};
        /* Never more than the current frame: descriptors that arrive belong
         * to it, not to the next one. */
        ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return AL_EAGAIN;
            err = al_error_set_errno(AL_EIO, errno, "control socket read");
            goto fail;
        }
        if ((err = reader_take_fds(r, &mh)) < 0)
            goto fail;
        if (mh.msg_flags & MSG_CTRUNC) {
            err = al_error_set(AL_EINVAL, "control data truncated (too many descriptors)");
            goto fail;
        }
        if (n == 0) {
            err = al_error_set(AL_EIO, "control socket closed");
            goto fail;
        }
        err = ctl_reader_feed(r, buf, (size_t)n, &used, msg);
        if (err == AL_EAGAIN)
            continue;
        if (err < 0)
            goto fail;
        break;
    }
    json_t *decl = json_object_get(*msg, "fds");
    size_t declared = decl ? (size_t)json_integer_value(decl) : 0;
    if (r->nfds < declared) {
        err = al_error_set(AL_EINVAL, "control frame declares %zu descriptors, %zu arrived",
                           declared, r->nfds);
        goto fail;
    }
    for (size_t i = declared; i < r->nfds; i++)
        close(r->fds[i]);
    memcpy(fds, r->fds, declared * sizeof(int));
    *nfds = declared;
    r->nfds = 0;
    return 0;
fail:
    json_decref(*msg);
    *msg = NULL;
    reader_close_fds(r);
    return err;
}

int ctl_ack_send(int fd, json_int_t seq, int err)
{
    json_t *ack = ctl_msg_new("ack");
    int rc = AL_ENOMEM;
    if (!ack)
        return rc;
    json_object_set_new(ack, "seq", seq >= 0 ? json_integer(seq) : json_null());
    json_object_set_new(ack, "ok", json_boolean(err == 0));
    if (err < 0) {
        const char *why = al_error_last();
        json_object_set_new(ack, "error", json_string(*why ? why : al_error_name(err)));
    }
    rc = ctl_send(fd, ack, NULL, 0);
    json_decref(ack);
    return rc;
}

/* ---- proxy side ---- */

struct ctl_outq {
    pthread_mutex_t lock;
    json_t **items; /* ring of max entries */
    size_t max, head, len;
    unsigned long dropped;
    int efd;
};

int ctl_outq_new(ctl_outq **out, size_t max)
{
    ctl_outq *q = calloc(1, sizeof(*q));
    if (!q || !(q->items = calloc(max ? max : 1, sizeof(*q->items)))) {
        free(q);
        return AL_ENOMEM;
    }
    q->max = max ? max : 1;
    q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->efd < 0) {
        int err = al_error_set_errno(AL_EIO, errno, "eventfd");
        free(q->items);
        free(q);
        return err;
    }
    pthread_mutex_init(&q->lock, NULL);
    *out = q;
    return 0;
}

void ctl_outq_free(ctl_outq *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->len; i++)
        json_decref(q->items[(q->head + i) % q->max]);
    close(q->efd);
    pthread_mutex_destroy(&q->lock);
    free(q->items);
    free(q);
}

int ctl_outq_push(ctl_outq *q, json_t *msg)
{
    uint64_t one = 1;
    pthread_mutex_lock(&q->lock);
    if (q->len == q->max) {
        q->dropped++;
        pthread_mutex_unlock(&q->lock);
        json_decref(msg);
        return AL_ETOOBIG;
    }
    q->items[(q->head + q->len) % q->max] = msg;
    q->len++;
    pthread_mutex_unlock(&q->lock);
    ssize_t w = write(q->efd, &one, sizeof(one));
    (void)w;
    return 0;
}

/* Sends everything queued. */
static int outq_flush(ctl_outq *q, int sockfd)
{
    uint64_t count;
    int err = 0;
    ssize_t r = read(q->efd, &count, sizeof(count));
    (void)r;
    for (;;) {
        json_t *msg = NULL;
        unsigned long dropped;
        pthread_mutex_lock(&q->lock);
        if (q->len) {
            msg = q->items[q->head];
            q->head = (q->head + 1) % q->max;
            q->len--;
        }
        dropped = q->dropped;
        q->dropped = 0;
        pthread_mutex_unlock(&q->lock);
        if (dropped)
            al_log(AL_LOG_WARN, "control: %lu events dropped (the daemon reads too slowly)",
                   dropped);
        if (!msg)
            break;
        err = ctl_send(sockfd, msg, NULL, 0);
        json_decref(msg);
        if (err < 0)
            break;
    }
    return err;
}

static int serve_one(int sockfd, json_t *msg, int *fds, size_t nfds, ctl_handler_fn fn,
                     void *payload)
{
    const char *type = ctl_msg_type(msg);
    json_t *jseq = json_object_get(msg, "seq");
    json_int_t seq = json_is_integer(jseq) ? json_integer_value(jseq) : -1;
    int err;
    if (strcmp(type, "ack") == 0) {
        ctl_fds_close(fds, nfds);
        return 0;
    }
    al_error_clear();
    if (seq < 0) {
        ctl_fds_close(fds, nfds);
        err = al_error_set(AL_EINVAL, "request \"%s\" without \"seq\"", type);
    } else if (strcmp(type, "hello") == 0) {
        ctl_fds_close(fds, nfds);
        err = 0;
    } else {
        err = fn(msg, fds, nfds, payload);
    }
    if (err < 0)
        al_log(AL_LOG_WARN, "control: %s (seq %lld) refused: %s", type, (long long)seq,
               al_error_last());
    return ctl_ack_send(sockfd, seq, err);
}

int ctl_serve(int sockfd, ctl_outq *q, const char *proxy, ctl_handler_fn fn, void *payload)
{
    struct ctl_reader r;
    int err;
    int fl = fcntl(sockfd, F_GETFL);
    if (fl < 0 || fcntl(sockfd, F_SETFL, fl | O_NONBLOCK) < 0)
        return al_error_set_errno(AL_EIO, errno, "control socket");
    json_t *hello = json_pack("{s:i, s:s, s:s, s:I}", "v", CTL_VERSION, "type", "hello", "proxy",
                              proxy, "pid", (json_int_t)getpid());
    if (!hello)
        return AL_ENOMEM;
    err = ctl_send(sockfd, hello, NULL, 0);
    json_decref(hello);
    if (err < 0)
        return err;
    ctl_reader_init(&r);
    for (;;) {
        struct pollfd pfd[2] = {{.fd = sockfd, .events = POLLIN},
                                {.fd = q ? q->efd : -1, .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            err = al_error_set_errno(AL_EIO, errno, "poll");
            break;
        }
        if (q && (pfd[1].revents & POLLIN) && (err = outq_flush(q, sockfd)) < 0)
            break;
        if (!pfd[0].revents)
            continue;
        for (;;) {
            json_t *msg;
            int fds[CTL_FDS_MAX];
            size_t nfds;
            err = ctl_recv(&r, sockfd, &msg, fds, &nfds);
            if (err == AL_EAGAIN)
                break;
            if (err < 0)
                goto out;
            err = serve_one(sockfd, msg, fds, nfds, fn, payload);
            json_decref(msg);
            if (err < 0)
                goto out;
        }
    }
out:
    ctl_reader_clear(&r);
    return err;
}

int ctl_socket_open(const char *fd_arg, const char *path)
{
    if (fd_arg) {
        char *end;
        int type = 0, domain = 0;
        socklen_t tl = sizeof(type), dl = sizeof(domain);
        errno = 0;
        long v = strtol(fd_arg, &end, 10);
        if (errno || end == fd_arg || *end || v < 0 || v > 1 << 20)
            return al_error_set(AL_EINVAL, "--control: '%s' is not a descriptor", fd_arg);
        int fd = (int)v;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) < 0 || type != SOCK_STREAM ||
            domain != AF_UNIX)
            return al_error_set(AL_EINVAL, "--control: fd %d is not a unix stream socket", fd);
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
            return al_error_set_errno(AL_EIO, errno, "--control: fd %d", fd);
        return fd;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || strlen(path) >= sizeof(sa.sun_path))
        return al_error_set(AL_EINVAL, "--control-path: bad path");
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cleanup_fd int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return al_error_set_errno(AL_EIO, errno, "connect to %s", path);
    return steal_fd(&fd);
}

int ctl_session_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
              (id[i] >= '0' && id[i] <= '9') || strchr("._:-", id[i])))
            return 0;
    return 1;
}

int ctl_listeners_get(struct ctl_listener *out, const json_t *msg, const int *fds, size_t nfds)
{
    json_t *ls = json_object_get(msg, "listeners");
    unsigned used = 0;
    size_t i;
    json_t *v;
    if (!json_is_array(ls) || json_array_size(ls) > CTL_FDS_MAX)
        return al_error_set(AL_EINVAL, "\"listeners\" must be an array of at most %d", CTL_FDS_MAX);
    json_array_foreach(ls, i, v)
    {
        const char *kind = json_string_value(json_object_get(v, "kind"));
        json_t *jfd = json_object_get(v, "fd");
        if (!kind || !json_is_integer(jfd))
            return al_error_set(AL_EINVAL, "listener %zu needs \"kind\" and \"fd\"", i);
        json_int_t idx = json_integer_value(jfd);
        if (idx < 0 || (size_t)idx >= nfds || (used & (1u << idx)))
            return al_error_set(AL_EINVAL,
                                "listener %zu: \"fd\" %lld is not an unused index"
                                " into the %zu descriptors attached",
                                i, (long long)idx, nfds);
        int type = 0, acc = 0;
        socklen_t tl = sizeof(type), al = sizeof(acc);
        if (getsockopt(fds[idx], SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
            getsockopt(fds[idx], SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0 || type != SOCK_STREAM ||
            !acc)
            return al_error_set(AL_EINVAL, "listener %zu: descriptor is not a listening socket", i);
        used |= 1u << idx;
        out[i].kind = kind;
        out[i].index = (size_t)idx;
    }
    return (int)json_array_size(ls);
}

void ctl_fds_close(int *fds, size_t nfds)
{
    for (size_t i = 0; i < nfds; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

int ctl_privs_lookup(uid_t *uid, gid_t *gid, const char *user, const char *group)
{
    struct passwd *pw = getpwnam(user);
    if (!pw)
        return al_error_set(AL_ENOTFOUND, "no user '%s'", user);
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    if (group) {
        struct group *gr = getgrnam(group);
        if (!gr)
            return al_error_set(AL_ENOTFOUND, "no group '%s'", group);
        *gid = gr->gr_gid;
    }
    return 0;
}

int ctl_privs_drop(const char *user, const char *group)
{
    uid_t uid;
    gid_t gid;
    int err = ctl_privs_lookup(&uid, &gid, user, group);
    if (err < 0)
        return err;
    if (uid == 0)
        return al_error_set(AL_EPERM, "refusing to run as root ('%s')", user);
    /* Groups first: after setresuid() we could no longer change them. */
    if (setgroups(0, NULL) < 0)
        return al_error_set_errno(AL_EPERM, errno, "setgroups");
    if (setresgid(gid, gid, gid) < 0)
        return al_error_set_errno(AL_EPERM, errno, "setresgid(%u)", (unsigned)gid);
    if (setresuid(uid, uid, uid) < 0)
        return al_error_set_errno(AL_EPERM, errno, "setresuid(%u)", (unsigned)uid);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return al_error_set_errno(AL_EPERM, errno, "PR_SET_NO_NEW_PRIVS");
    /* Check that there is no way back. */
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct caps[2];
    memset(caps, 0, sizeof(caps));
    if (syscall(SYS_capget, &hdr, caps) < 0)
        return al_error_set_errno(AL_EPERM, errno, "capget");
    if (setuid(0) == 0 || setgid(0) == 0 || getuid() != uid || geteuid() != uid ||
        getgid() != gid || getegid() != gid || caps[0].effective || caps[0].permitted ||
        caps[1].effective || caps[1].permitted)
        return al_error_set(AL_EPERM, "privileges could be regained after dropping to '%s'", user);
    return 0;
}
