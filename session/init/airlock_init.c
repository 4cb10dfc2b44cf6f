/* airlock-init: pid 1 of a long-lived sandbox (see airlock/sbsession.h and
 * docs/init-protocol.md).
 *
 * exec'd at the end of the contain list (contain.c, SB_END_INIT) with the
 * sandbox already built: root pivoted, privileges dropped, seccomp loaded,
 * running as the sandbox's user. It enforces the Landlock ruleset it was handed, makes
 * itself undumpable, and then serves the control socket: one daemon
 * connection at a time, SPAWN and SIGNAL requests, EXITED reports, every
 * orphan reaped, per-command timeouts. Small on purpose (static, no
 * allocation): an idle sandbox costs little more than this process.
 *
 *   airlock-init LISTEN_FD LANDLOCK_FD STATUS_FD DEFAULT_CWD
 *
 * LANDLOCK_FD is -1 without Landlock. A setup error is written to
 * STATUS_FD as a struct sb_status (SB_SETUP_FAILED); closing it without a
 * byte tells the daemon init is serving. */
#include "sandbox_int.h"
#include "sbs_proto.h"

#include "airlock/error.h"
#include "airlock/version.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Commands running at once; a SPAWN beyond it fails with EAGAIN. */
#define INIT_MAX_PROCS 1024
/* Descriptors received and not yet used by a SPAWN. */
#define INIT_MAX_FDQ 48
/* Commands on a terminal at once (each holds its master here, for RESIZE);
 * a SPAWN_TTY beyond it fails with EAGAIN. */
#define INIT_MAX_TTYS 64
/* How long a send to the daemon may wait before the connection is dropped. */
#define INIT_SEND_TIMEOUT_MS 2000

struct proc {
    pid_t pid; /* 0: free slot */
    uint32_t id;
    uint64_t start_ms;
    uint64_t deadline_ms; /* 0: none */
    int timed_out;
    int watch_fd; /* SPAWN_WATCHED: its watch socket; -1 when none */
    int tty_fd;   /* SPAWN_TTY: its terminal's master (RESIZE); -1 when none */
};

/* Everything lives in static storage: pages never touched are never paid. */
static struct proc procs[INIT_MAX_PROCS];
static uint32_t next_id = 1;
static size_t n_ttys;

static int conn = -1;
static unsigned char rbuf[SBS_MAX_MSG] __attribute__((aligned(4096)));
static size_t rbuf_touched; /* high-water mark since the last release */
static size_t rlen;
static int fdq[INIT_MAX_FDQ];
static size_t fdq_len;
static const char *argv_ptrs[SBS_MAX_ARGS + 1], *envp_ptrs[SBS_MAX_ARGS + 1];

#define PENDING_MSG_LEN (SBS_HDR_LEN + 20)
static unsigned char pending[SBS_MAX_PENDING_EXITS][PENDING_MSG_LEN];
static size_t pending_head, pending_len;

static const char *default_cwd;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void conn_drop(void)
{
    if (conn >= 0)
        close(conn);
    conn = -1;
    rlen = 0;
    for (size_t i = 0; i < fdq_len; i++)
        close(fdq[i]);
    fdq_len = 0;
}

/* Sends one whole message; on failure the connection is dropped. */
static int conn_send(const unsigned char *buf, size_t len)
{
    if (conn >= 0 && sbs_sock_send(conn, buf, len, NULL, 0, INIT_SEND_TIMEOUT_MS) < 0)
        conn_drop();
    return conn >= 0 ? 0 : -1;
}

static void send_msg(const struct sbs_msg *m)
{
    unsigned char buf[64];
    long n = sbs_msg_encode(buf, sizeof(buf), m);
    if (n > 0)
        conn_send(buf, (size_t)n);
}

/* Sends `m` on a command's watch socket too (none: fd -1). Never blocks: the socket is
 * the command's own and sees at most two short messages; a daemon that
 * went away only makes the send fail. */
static void watch_send(int fd, const struct sbs_msg *m)
{
    unsigned char buf[64];
    long n = fd >= 0 ? sbs_msg_encode(buf, sizeof(buf), m) : 0;
    if (n > 0)
        (void)send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* SPAWNED for a terminal: on the watch socket with the master attached (the
 * daemon's end of the terminal), never blocking like watch_send. */
static void watch_send_master(int fd, const struct sbs_msg *m, int master)
{
    unsigned char buf[64];
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } ctl;
    long n = sbs_msg_encode(buf, sizeof(buf), m);
    if (n <= 0)
        return;
    struct iovec iov = {buf, (size_t)n};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space, .msg_controllen = sizeof(ctl)};
    memset(&ctl, 0, sizeof(ctl));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &master, sizeof(int));
    (void)sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* EXITED goes to the daemon, or waits for the next one (oldest dropped
 * beyond SBS_MAX_PENDING_EXITS). */
static void report_exit(const struct sbs_msg *m)
{
    unsigned char buf[PENDING_MSG_LEN];
    if (sbs_msg_encode(buf, sizeof(buf), m) != PENDING_MSG_LEN)
        return;
    if (conn >= 0 && conn_send(buf, sizeof(buf)) == 0)
        return;
    if (pending_len == SBS_MAX_PENDING_EXITS) {
        pending_head = (pending_head + 1) % SBS_MAX_PENDING_EXITS;
        pending_len--;
    }
    memcpy(pending[(pending_head + pending_len) % SBS_MAX_PENDING_EXITS], buf, sizeof(buf));
    pending_len++;
}

static void flush_pending(void)
{
    while (pending_len > 0 && conn >= 0) {
        if (conn_send(pending[pending_head], PENDING_MSG_LEN) < 0)
            return; /* kept for the next connection */
        pending_head = (pending_head + 1) % SBS_MAX_PENDING_EXITS;
        pending_len--;
    }
}

static struct proc *proc_find(pid_t pid)
{
    for (size_t i = 0; i < INIT_MAX_PROCS; i++)
        if (procs[i].pid == pid)
            return &procs[i];
    return NULL;
}

static struct proc *proc_by_id(uint32_t id)
{
    for (size_t i = 0; i < INIT_MAX_PROCS; i++)
        if (procs[i].pid > 0 && procs[i].id == id)
            return &procs[i];
    return NULL;
}

/* Reaps every exited child (commands and orphans alike). */
static void reap(void)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        struct proc *p = proc_find(pid);
        if (!p)
            continue; /* an orphan, or a command whose exec failed */
        struct sbs_msg m = {.type = SBS_MSG_EXITED,
                            .proc = p->id,
                            .status = st & 0xffff,
                            .timed_out = p->timed_out,
                            .duration_ms = now_ms() - p->start_ms};
        if (p->watch_fd >= 0) {
            watch_send(p->watch_fd, &m);
            close(p->watch_fd);
        }
        if (p->tty_fd >= 0) {
            close(p->tty_fd);
            n_ttys--;
        }
        memset(p, 0, sizeof(*p));
        report_exit(&m);
    }
}

/* What spawn_child needs; it lives on do_spawn's stack, which the child
 * shares (CLONE_VM) while do_spawn is suspended (CLONE_VFORK). */
struct spawn_args {
    const struct sbs_req *r;
    const int *fds; /* 0-2 (a terminal: its slave three times) */
    int tty;        /* 1: fds[0] is a terminal, made the controlling one */
    int err;        /* written by the child when the exec fails: its errno */
};

/* The child's stack: do_spawn is suspended until the child execs or
 * exits, so one stack serves every spawn. Pages never touched cost
 * nothing. Its deepest use is execvp's: a PATH_MAX path buffer and, for a
 * script without #!, an argv copy of SBS_MAX_ARGS + 2 pointers (32 KiB).
 * The lowest page is a guard (PROT_NONE, set up by main). */
#define SPAWN_STACK_SIZE (128 * 1024)
#define SPAWN_GUARD_SIZE 4096
static unsigned char spawn_stack[SPAWN_STACK_SIZE] __attribute__((aligned(SPAWN_GUARD_SIZE)));

/* The command's process: its own session and process group, the received
 * descriptors as 0-2 and nothing else, exec. It shares init's memory until
 * the exec (like posix_spawn): it writes nothing but a->err, and no signal
 * handler can run in it (init has none). */
static int spawn_child(void *arg)
{
    struct spawn_args *a = arg;
    const struct sbs_req *r = a->r;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    int e = 0;
    /* a new session has no controlling terminal: the slave becomes its
     * one, so the shell gets job control and ^C reaches its foreground */
    if (a->tty && ioctl(a->fds[0], TIOCSCTTY, 0) < 0)
        e = errno;
    if (e == 0 && chdir(r->cwd[0] ? r->cwd : default_cwd) < 0)
        e = SBS_SPAWN_ERR_CWD + errno; /* the directory, not the program */
    for (int i = 0; i < 3 && e == 0; i++)
        if (dup2(a->fds[i], i) < 0)
            e = errno;
    if (e == 0) {
        /* Every other descriptor (control socket, listening socket, queued
         * fds) is closed by the exec. */
        syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
        /* execvp searches the PATH of `environ`: the command's own (do_spawn
         * puts init's back). */
        environ = (char **)envp_ptrs;
        execvp(argv_ptrs[0], (char *const *)argv_ptrs);
        e = errno;
    }
    a->err = e ? e : EIO;
    _exit(127);
}

/* Opens a new terminal of the sandbox's own devpts instance (mounts.c: the
 * host's terminals are not reachable from here) of rows x cols: the
 * master in *master, the slave in *slave (both CLOEXEC). 0 or an errno. */
static int tty_open(const struct sbs_req *r, int *master, int *slave)
{
    int e = 0, unlock = 0;
    struct winsize ws = {.ws_row = (unsigned short)r->rows, .ws_col = (unsigned short)r->cols};
    *slave = -1;
    *master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*master < 0)
        return errno;
    if (ioctl(*master, TIOCSPTLCK, &unlock) < 0 || ioctl(*master, TIOCSWINSZ, &ws) < 0 ||
        (*slave = ioctl(*master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
        e = errno;
        close(*master);
        *master = -1;
    }
    return e;
}

static void do_spawn(const struct sbs_req *r)
{
    struct sbs_msg reply = {.type = SBS_MSG_SPAWN_FAILED, .req = r->req};
    int tty = r->type == SBS_REQ_SPAWN_TTY;
    /* SPAWN: stdin, stdout, stderr; SPAWN_WATCHED: and the watch socket;
     * SPAWN_TTY: the watch socket alone (fds[3]) */
    size_t nfd = tty ? 1 : r->type == SBS_REQ_SPAWN_WATCHED ? 4 : 3;
    int fds[4] = {-1, -1, -1, -1};
    memcpy(tty ? fds + 3 : fds, fdq, nfd * sizeof(int));
    fdq_len -= nfd;
    memmove(fdq, fdq + nfd, fdq_len * sizeof(int));
    int master = -1;
    struct proc *slot = proc_find(0);
    if (!slot || (tty && n_ttys >= INIT_MAX_TTYS)) {
        reply.err = EAGAIN;
    } else if (tty && (reply.err = tty_open(r, &master, &fds[0])) != 0) {
        /* reply.err says why */
    } else {
        if (tty)
            fds[1] = fds[2] = fds[0];
        /* Suspended until the child has exec'd (or failed to): no fork of
         * our page tables, no pipe to learn how the exec went. */
        struct spawn_args a = {.r = r, .fds = fds, .tty = tty, .err = 0};
        char **env = environ;
        uint64_t start = now_ms();
        pid_t pid = clone(spawn_child, spawn_stack + sizeof(spawn_stack),
                          CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
        int e = pid < 0 ? errno : a.err;
        environ = env;
        if (pid > 0 && e == 0) {
            slot->pid = pid;
            slot->id = next_id++;
            if (next_id == 0)
                next_id = 1;
            slot->start_ms = start;
            slot->deadline_ms = r->timeout_s ? start + (uint64_t)r->timeout_s * 1000 : 0;
            slot->timed_out = 0;
            slot->watch_fd = fds[3]; /* kept until the exit */
            slot->tty_fd = master;   /* kept until the exit, for RESIZE */
            if (tty)
                n_ttys++;
            reply = (struct sbs_msg){
                .type = SBS_MSG_SPAWNED, .req = r->req, .proc = slot->id, .pid = pid};
        } else {
            reply.err = e > 0 && e < 4096 ? e : EIO;
        }
    }
    if (reply.err == 0 || reply.err >= 4096)
        reply.err = reply.type == SBS_MSG_SPAWN_FAILED ? EIO : 0;
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0 && (i == 0 || fds[i] != fds[0]))
            close(fds[i]);
    if (tty && reply.type == SBS_MSG_SPAWNED)
        watch_send_master(fds[3], &reply, master);
    else
        watch_send(fds[3], &reply);
    if (reply.type != SBS_MSG_SPAWNED) {
        if (fds[3] >= 0)
            close(fds[3]); /* a failed spawn: the command's last word */
        if (master >= 0)
            close(master);
    }
    send_msg(&reply);
}

static void do_resize(const struct sbs_req *r)
{
    struct proc *p = proc_by_id(r->proc);
    struct winsize ws = {.ws_row = (unsigned short)r->rows, .ws_col = (unsigned short)r->cols};
    if (p && p->tty_fd >= 0)
        ioctl(p->tty_fd, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH */
}

static void do_signal(const struct sbs_req *r)
{
    struct proc *p = proc_by_id(r->proc);
    if (p)
        kill(-p->pid, r->sig);
}

/* Takes the descriptors passed with a read into the queue. 0, or -1 when
 * more arrived than a well-behaved daemon sends (or were truncated). */
static int take_fds(struct msghdr *mh)
{
    size_t dropped;
    fdq_len += sbs_cmsg_take_fds(mh, fdq + fdq_len, INIT_MAX_FDQ - fdq_len, &dropped);
    return dropped || (mh->msg_flags & MSG_CTRUNC) ? -1 : 0;
}

/* Reads what the daemon sent and serves every whole request in it. A
 * malformed request or a SPAWN without its descriptors drops the
 * connection (the daemon reconnects). */
static void conn_read(void)
{
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int) * 16)];
    } ctl;
    struct iovec iov = {rbuf + rlen, sizeof(rbuf) - rlen};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space, .msg_controllen = sizeof(ctl)};
    ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    int bad = take_fds(&mh) < 0;
    if (n <= 0 || bad) {
        conn_drop();
        return;
    }
    rlen += (size_t)n;
    if (rlen > rbuf_touched)
        rbuf_touched = rlen;
    size_t off = 0;
    while (conn >= 0) {
        struct sbs_req r;
        long used = sbs_req_parse(rbuf + off, rlen - off, &r, argv_ptrs, envp_ptrs);
        if (used == 0)
            break;
        if (used < 0 || (r.type == SBS_REQ_SPAWN && fdq_len < 3) ||
            (r.type == SBS_REQ_SPAWN_WATCHED && fdq_len < 4) ||
            (r.type == SBS_REQ_SPAWN_TTY && fdq_len < 1)) {
            conn_drop();
            return;
        }
        if (r.type == SBS_REQ_SPAWN || r.type == SBS_REQ_SPAWN_WATCHED ||
            r.type == SBS_REQ_SPAWN_TTY)
            do_spawn(&r);
        else if (r.type == SBS_REQ_RESIZE)
            do_resize(&r);
        else
            do_signal(&r);
        off += (size_t)used;
    }
    if (conn >= 0) {
        memmove(rbuf, rbuf + off, rlen - off);
        rlen -= off;
    }
    /* A large request leaves its pages behind: give them back once the
     * buffer is empty, so an idle init stays small. */
    if (rlen == 0 && rbuf_touched > 65536) {
        madvise(rbuf, sizeof(rbuf), MADV_DONTNEED);
        rbuf_touched = 0;
    }
}

/* A new daemon connection replaces the old one: HELLO, then the exits it
 * missed. */
static void conn_accept(int listen_fd)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    conn_drop();
    conn = fd;
    struct sbs_msg hello = {.type = SBS_MSG_HELLO, .version = SBS_PROTO_VERSION};
    send_msg(&hello);
    flush_pending();
}

/* Kills the process group of every command past its deadline; returns
 * the poll timeout until the next deadline (-1: none). */
static int enforce_timeouts(void)
{
    uint64_t now = now_ms(), next = 0;
    for (size_t i = 0; i < INIT_MAX_PROCS; i++) {
        struct proc *p = &procs[i];
        if (p->pid <= 0 || !p->deadline_ms)
            continue;
        if (p->deadline_ms <= now) {
            p->timed_out = 1;
            p->deadline_ms = 0;
            kill(-p->pid, SIGKILL);
            kill(p->pid, SIGKILL); /* had it left its group */
            continue;
        }
        if (!next || p->deadline_ms < next)
            next = p->deadline_ms;
    }
    if (!next)
        return -1;
    return next - now > 60000 ? 60000 : (int)(next - now);
}

static int parse_fd(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -1 || v > 65535)
        return -2;
    return (int)v;
}

/* Reports a setup failure to sbs_start() (one struct sb_status, the
 * format of every sandbox's status pipe) and exits. */
static void __attribute__((noreturn)) setup_fail(int status_fd, const char *msg)
{
    struct sb_status st;
    memset(&st, 0, sizeof(st));
    st.outcome = SB_SETUP_FAILED;
    size_t n = strlen(msg);
    if (n >= sizeof(st.message))
        n = sizeof(st.message) - 1;
    memcpy(st.message, msg, n);
    ssize_t w = write(status_fd, &st, sizeof(st));
    (void)w;
    _exit(125);
}

/* Writes the whole of `text` to stdout: 0, or 1 when it could not. */
static int print_out(const char *text, size_t len)
{
    return write(STDOUT_FILENO, text, len) == (ssize_t)len ? 0 : 1;
}

int main(int argc, char **argv)
{
    /* the only things airlock-init does outside a sandbox */
    if (argc == 2 && getpid() != 1) {
        static const char version[] = "airlock-init " AL_VERSION_LINE "\n";
        static const char usage[] =
            "usage: airlock-init LISTEN_FD RULESET_FD STATUS_FD CWD\n"
            "\n"
            "An internal helper, not a command to run: pid 1 of each airlockd session's\n"
            "sandbox, started by airlockd inside the new namespaces. It reaps, and spawns\n"
            "the commands airlockd asks for over LISTEN_FD (docs/init-protocol.md).\n";
        if (strcmp(argv[1], "--version") == 0)
            return print_out(version, sizeof(version) - 1);
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
            return print_out(usage, sizeof(usage) - 1);
    }
    if (argc != 5 || getpid() != 1)
        return 125;
    int listen_fd = parse_fd(argv[1]), ruleset = parse_fd(argv[2]), status = parse_fd(argv[3]);
    default_cwd = argv[4];
    if (status < 0)
        return 125;
    if (listen_fd < 0 || ruleset < -1 || default_cwd[0] != '/')
        setup_fail(status, "airlock-init: bad arguments");
    /* Landlock first: everything init does and starts is under it. */
    if (ruleset >= 0) {
        if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
            setup_fail(status, "airlock-init: landlock_restrict_self failed");
        close(ruleset);
    }
    /* Undumpable: the sandbox's processes run as our uid, but cannot open
     * /proc/1/{mem,environ,maps,fd} or attach to us. (exec reset it.) */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        setup_fail(status, "airlock-init: PR_SET_DUMPABLE failed");
    if (mprotect(spawn_stack, SPAWN_GUARD_SIZE, PROT_NONE) < 0)
        setup_fail(status, "airlock-init: spawn stack guard failed");
    /* Default dispositions (an ignored SIGPIPE of the daemon's must not
     * reach the commands); only SIGCHLD is blocked, read by signalfd.
     * Other signals sent from inside to pid 1 are dropped by the kernel. */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_SETMASK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        setup_fail(status, "airlock-init: signalfd failed");
    if (fcntl(listen_fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(listen_fd, F_SETFL, O_NONBLOCK) < 0 ||
        chdir(default_cwd) < 0)
        setup_fail(status, "airlock-init: setup failed");
    /* The daemon that started us connected before we ran: its HELLO goes
     * out before the status pipe closes, so it finds it at once. */
    conn_accept(listen_fd);
    close(status); /* serving */

    for (;;) {
        int timeout = enforce_timeouts();
        struct pollfd p[3] = {{sfd, POLLIN, 0}, {listen_fd, POLLIN, 0}, {conn, POLLIN, 0}};
        int r = poll(p, conn >= 0 ? 3 : 2, timeout);
        if (r < 0 && errno != EINTR)
            _exit(1);
        if (r <= 0)
            continue;
        if (p[0].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) > 0)
                ;
            reap();
        }
        if (conn >= 0 && p[2].revents)
            conn_read();
        if (p[1].revents)
            conn_accept(listen_fd);
    }
}
