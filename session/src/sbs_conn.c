/* The daemon's side of a long-lived sandbox: connecting (again) to its
 * init, sending requests, reading init's messages (untrusted: bounded and
 * parsed by sbs_msg_parse), and tearing the sandbox down. */
#include "sandbox_int.h"
#include "sbs_int.h"
#include "sbs_proto.h"

#include "airlock/buf.h"
#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long a send may wait for room in the socket (init stuck or gone). */
#define SBS_SEND_TIMEOUT_MS 5000

int sbs_proc_start_time(pid_t pid, uint64_t *out)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    struct al_buf b;
    al_buf_init(&b, 4096);
    int err = al_buf_read_file(&b, path);
    if (err < 0) {
        al_buf_free(&b);
        return al_error_set(AL_ENOTFOUND, "no process %d", (int)pid);
    }
    /* pid (comm) state ppid ...: comm may hold spaces and parentheses, so
     * fields are counted from the last ')'. Field 22 is the 20th after it. */
    err = al_error_set(AL_EIO, "%s: unexpected format", path);
    char *p = strrchr(b.ptr, ')');
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (p) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p + 1, &end, 10);
        if (end != p + 1 && errno == 0) {
            *out = v;
            err = 0;
        }
    }
    al_buf_free(&b);
    return err;
}

int sbs_control_connect(int *out_fd, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return al_error_set(AL_ETOOBIG, "control socket path too long");
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cleanup_fd int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return al_error_set_errno(errno == ENOENT || errno == ECONNREFUSED ? AL_ENOTFOUND : AL_EIO,
                                  errno, "connect %s", path);
    *out_fd = steal_fd(&fd);
    return 0;
}

int sbs_conn_open(struct sbs_conn *c, int fd, const struct sbs_record *rec, int timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->rec = *rec;
    int err = 0;
    if (!(c->rbuf = malloc(SBS_RBUF_CAP))) {
        err = AL_ENOMEM;
        goto out;
    }
    c->rcap = SBS_RBUF_CAP;
    struct pollfd p = {fd, POLLIN, 0};
    int r;
    while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (r <= 0) {
        err = al_error_set(AL_ETIMEOUT, "no HELLO from the sandbox's init");
        goto out;
    }
    struct sbs_msg m;
    if ((err = sbs_recv(c, &m)) < 0)
        goto out;
    if (m.type != SBS_MSG_HELLO || m.version < SBS_PROTO_VERSION_MIN ||
        m.version > SBS_PROTO_VERSION)
        err = al_error_set(AL_EINVAL, "sandbox init speaks another protocol (version %u)",
                           m.type == SBS_MSG_HELLO ? m.version : 0);
    else
        c->version = m.version;
out:
    if (err < 0) {
        close(fd);
        free(c->rbuf);
        memset(c, 0, sizeof(*c));
        c->fd = -1;
    }
    return err;
}

int sbs_attach(struct sbs_conn *out, const struct sbs_record *rec)
{
    uint64_t start;
    int fd, err;
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if (rec->init_pid <= 0 || sbs_proc_start_time(rec->init_pid, &start) < 0 ||
        start != rec->init_start_time)
        return al_error_set(AL_ENOTFOUND, "sandbox init %d is gone", (int)rec->init_pid);
    if ((err = sbs_control_connect(&fd, rec->control_path)) < 0)
        return err;
    return sbs_conn_open(out, fd, rec, SBS_SEND_TIMEOUT_MS);
}

/* Sends a whole request, with `fds` attached to its first byte. */
static int conn_send(struct sbs_conn *c, const unsigned char *buf, size_t len, const int *fds,
                     size_t n_fds)
{
    int err = sbs_sock_send(c->fd, buf, len, fds, n_fds, SBS_SEND_TIMEOUT_MS);
    if (err == AL_ETIMEOUT)
        return al_error_set(err, "sandbox init does not read its requests");
    if (err < 0)
        return al_error_set_errno(err, errno, "send to sandbox init");
    return 0;
}

int sbs_spawn_send(struct sbs_conn *c, uint32_t req, const struct sbs_cmd *cmd)
{
    size_t need = SBS_HDR_LEN + 24 + (cmd->cwd ? strlen(cmd->cwd) : 0) + 1;
    for (size_t i = 0; cmd->argv && cmd->argv[i] && need <= SBS_MAX_MSG; i++)
        need += strlen(cmd->argv[i]) + 1;
    for (size_t i = 0; cmd->envp && cmd->envp[i] && need <= SBS_MAX_MSG; i++)
        need += strlen(cmd->envp[i]) + 1;
    if (need > SBS_MAX_MSG)
        return al_error_set(AL_ETOOBIG, "command and environment exceed %d bytes", SBS_MAX_MSG);
    for (int i = 0; i < 3 && !cmd->tty; i++)
        if (cmd->stdio[i] < 0)
            return al_error_set(AL_EINVAL, "sbs_spawn_send: stdio[%d] is not a descriptor", i);
    if (cmd->tty && (!cmd->watch || !sbs_conn_can_tty(c)))
        return al_error_set(AL_EINVAL, "sbs_spawn_send: %s",
                            !cmd->watch ? "a terminal needs a watch socket"
                                        : "this sandbox's init cannot start terminals");
    if (cmd->watch && (cmd->watch_fd < 0 || !sbs_conn_can_watch(c)))
        return al_error_set(AL_EINVAL, "sbs_spawn_send: %s",
                            cmd->watch_fd < 0 ? "watch_fd is not a descriptor"
                                              : "this sandbox's init cannot watch commands");
    cleanup_free unsigned char *buf = malloc(need);
    if (!buf)
        return AL_ENOMEM;
    long len = cmd->tty ? sbs_req_encode_spawn_tty(buf, need, req, cmd->timeout_s, cmd->rows,
                                                   cmd->cols, cmd->cwd, cmd->argv, cmd->envp)
                        : sbs_req_encode_spawn(buf, need, req, cmd->timeout_s, cmd->cwd, cmd->argv,
                                               cmd->envp, cmd->watch);
    if (len < 0)
        return al_error_set((int)len, "cannot encode the command (%s)", al_error_name((int)len));
    if (cmd->tty)
        return conn_send(c, buf, (size_t)len, &cmd->watch_fd, 1);
    int fds[4] = {cmd->stdio[0], cmd->stdio[1], cmd->stdio[2], cmd->watch ? cmd->watch_fd : -1};
    return conn_send(c, buf, (size_t)len, fds, cmd->watch ? 4 : 3);
}

int sbs_conn_can_watch(const struct sbs_conn *c)
{
    return c->version >= 2;
}

int sbs_conn_can_tty(const struct sbs_conn *c)
{
    return c->version >= 3;
}

int sbs_resize_send(struct sbs_conn *c, uint32_t proc, uint32_t rows, uint32_t cols)
{
    unsigned char buf[SBS_HDR_LEN + 12];
    if (!sbs_conn_can_tty(c))
        return al_error_set(AL_EINVAL, "this sandbox's init cannot resize terminals");
    long len = sbs_req_encode_resize(buf, sizeof(buf), proc, rows, cols);
    if (len < 0)
        return al_error_set((int)len, "bad terminal size %ux%u", rows, cols);
    return conn_send(c, buf, (size_t)len, NULL, 0);
}

int sbs_watch_recv_fd(int fd, struct sbs_msg *out, int *out_fd)
{
    unsigned char buf[64];
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    int fds[4];
    size_t n_fds = 0, dropped = 0;
    *out_fd = -1;
    ssize_t n;
    struct msghdr mh;
    for (;;) {
        struct iovec iov = {buf, sizeof(buf)};
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.space;
        mh.msg_controllen = sizeof(ctl);
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
        if (n >= 0 || errno != EINTR)
            break;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return AL_EAGAIN;
    if (n < 0)
        return al_error_set_errno(AL_EIO, errno, "watch socket");
    n_fds = sbs_cmsg_take_fds(&mh, fds, 4, &dropped);
    int err = 0;
    if (n == 0 && n_fds == 0) {
        err = al_error_set(AL_EIO, "init closed the watch socket");
    } else if ((size_t)n > sizeof(buf) || sbs_msg_parse(buf, (size_t)n, out) != n ||
               out->type == SBS_MSG_HELLO || dropped || (mh.msg_flags & MSG_CTRUNC) ||
               n_fds != (out->type == SBS_MSG_SPAWNED ? 1u : 0u)) {
        err = al_error_set(AL_EINVAL, "malformed message on a watch socket");
    } else if (n_fds == 1) {
        /* init's word is not trusted: only a pseudo-terminal master is
         * taken (TIOCGPTN answers on a master alone) */
        unsigned int ptn;
        struct stat st;
        if (fstat(fds[0], &st) < 0 || !S_ISCHR(st.st_mode) || ioctl(fds[0], TIOCGPTN, &ptn) < 0)
            err = al_error_set(AL_EINVAL, "init sent a descriptor that is not a terminal");
    }
    if (err == 0 && n_fds == 1) {
        *out_fd = fds[0];
        n_fds = 0;
    }
    for (size_t i = 0; i < n_fds; i++)
        close(fds[i]);
    return err;
}

int sbs_watch_recv(int fd, struct sbs_msg *out)
{
    unsigned char buf[64];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC)) < 0 && errno == EINTR)
        ;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return AL_EAGAIN;
    if (n < 0)
        return al_error_set_errno(AL_EIO, errno, "watch socket");
    if (n == 0)
        return al_error_set(AL_EIO, "init closed the watch socket");
    /* one record, one whole message: anything else is malformed */
    if ((size_t)n > sizeof(buf) || sbs_msg_parse(buf, (size_t)n, out) != n ||
        out->type == SBS_MSG_HELLO)
        return al_error_set(AL_EINVAL, "malformed message on a watch socket");
    return 0;
}

int sbs_signal_send(struct sbs_conn *c, uint32_t proc, int sig)
{
    unsigned char buf[SBS_HDR_LEN + 8];
    long len = sbs_req_encode_signal(buf, sizeof(buf), proc, sig);
    if (len < 0)
        return al_error_set((int)len, "bad signal %d", sig);
    return conn_send(c, buf, (size_t)len, NULL, 0);
}

/* How many bytes the message being read still needs: the rest of the
 * header, then the rest of the body its (already validated) header names. */
static size_t recv_wanted(const struct sbs_conn *c)
{
    if (c->rlen < SBS_HDR_LEN)
        return SBS_HDR_LEN - c->rlen;
    const unsigned char *h = c->rbuf;
    size_t body = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 | (size_t)h[3] << 24;
    size_t total = SBS_HDR_LEN + body;
    return total > c->rlen ? total - c->rlen : 0;
}

int sbs_recv(struct sbs_conn *c, struct sbs_msg *out)
{
    for (;;) {
        long r = sbs_msg_parse(c->rbuf, c->rlen, out);
        if (r > 0) {
            c->rlen -= (size_t)r;
            memmove(c->rbuf, c->rbuf + r, c->rlen);
            return 0;
        }
        if (r < 0)
            return al_error_set(AL_EINVAL, "malformed message from the sandbox's init");
        /* Never more than the current message: whatever follows stays in
         * the socket, so poll() on c->fd tells when to call again. */
        size_t want = recv_wanted(c);
        if (want == 0 || want > c->rcap - c->rlen)
            return al_error_set(AL_EINVAL, "oversized message from the sandbox's init");
        union {
            struct cmsghdr h;
            char space[CMSG_SPACE(sizeof(int) * 8)];
        } ctl;
        struct iovec iov = {c->rbuf + c->rlen, want};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = ctl.space,
                            .msg_controllen = sizeof(ctl)};
        ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return AL_EAGAIN;
        if (n < 0)
            return al_error_set_errno(AL_EIO, errno, "read from the sandbox's init");
        size_t dropped;
        sbs_cmsg_take_fds(&mh, NULL, 0, &dropped); /* init never sends any */
        if (n == 0)
            return al_error_set(AL_EIO, "the sandbox's init closed the connection");
        c->rlen += (size_t)n;
    }
}

/* A struct sb_cgroup naming the record's cgroups (paths copied). */
static int record_cgroup(struct sb_cgroup *cg, const struct sbs_record *rec)
{
    memset(cg, 0, sizeof(*cg));
    cg->version = rec->cgroup_version;
    for (int i = 0; i < 3; i++) {
        char path[sizeof(rec->cgroup_paths[i])];
        memcpy(path, rec->cgroup_paths[i], sizeof(path));
        path[sizeof(path) - 1] = '\0';
        /* Only a directory of a cgroup file system: a record read back
         * from disk never makes us kill what another file lists. */
        struct statfs fs;
        if (path[0] != '/' || strstr(path, "/..") || statfs(path, &fs) < 0 ||
            (fs.f_type != CGROUP_SUPER_MAGIC && fs.f_type != CGROUP2_SUPER_MAGIC))
            continue;
        if (!(cg->paths[i] = strdup(path)))
            goto nomem;
    }
    const char *mem = cg->paths[0];
    if (mem) {
        char oom[PATH_MAX];
        snprintf(oom, sizeof(oom), "%s/%s", mem,
                 cg->version == 2 ? "memory.events" : "memory.oom_control");
        if (!(cg->oom_file = strdup(oom)))
            goto nomem;
    }
    return 0;
nomem:
    sb_cgroup_destroy(cg);
    return AL_ENOMEM;
}

int sbs_oom_killed(const struct sbs_record *rec)
{
    struct sb_cgroup cg;
    if (record_cgroup(&cg, rec) < 0)
        return 0;
    int killed = sb_cgroup_oom_killed(&cg);
    for (int i = 0; i < 3; i++)
        free(cg.paths[i]);
    free(cg.oom_file);
    return killed;
}

int sbs_destroy_record(const struct sbs_record *rec)
{
    uint64_t start;
    int pidfd = -1;
    /* Killing pid 1 kills its whole pid namespace; the cgroup then catches
     * anything that escaped it (nothing should). */
    if (rec->init_pid > 0 && sbs_proc_start_time(rec->init_pid, &start) == 0 &&
        start == rec->init_start_time) {
        pidfd = (int)syscall(SYS_pidfd_open, rec->init_pid, 0);
        if (pidfd >= 0 && sbs_proc_start_time(rec->init_pid, &start) == 0 &&
            start == rec->init_start_time)
            syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    }
    struct sb_cgroup cg;
    int err = record_cgroup(&cg, rec);
    if (err == 0)
        sb_cgroup_destroy(&cg);
    if (pidfd >= 0) {
        /* Reaped here when it is our child (started by this process). */
        struct pollfd p = {pidfd, POLLIN, 0};
        poll(&p, 1, 2000);
        siginfo_t si;
        syscall(SYS_waitid, P_PIDFD, pidfd, &si, WEXITED | WNOHANG | __WALL, NULL);
        close(pidfd);
    }
    char path[sizeof(rec->control_path)];
    memcpy(path, rec->control_path, sizeof(path));
    path[sizeof(path) - 1] = '\0';
    struct stat st;
    if (path[0] == '/' && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    return err;
}

int sbs_destroy(struct sbs_conn *c)
{
    int err = sbs_destroy_record(&c->rec);
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    return err;
}
