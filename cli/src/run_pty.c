/* The terminal relay of `airlock run` (see run_pty.h). One thread: it
 * waits for the master the sandbox sends, then copies keyboard -> master
 * and master -> screen, resizes the master on SIGWINCH (a signalfd: the
 * sandbox supervisor leaves SIGWINCH pending for it), and shows airlock's
 * questions and lines. Other threads talk to it under `lock`, waking it
 * through a pipe. */
#include "run_pty.h"

#include "run_prompt.h"

#include "airlock/error.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define RELAY_BUF    4096 /* keyboard -> command, and one read of its output */
#define NOTES_MAX    4096 /* airlock's lines waiting to be shown */
#define QUESTION_MAX 1024

struct run_pty {
    unsigned stdio;
    int sock;         /* ours of the pair: the master arrives here */
    int sandbox_sock; /* the sandbox's end (sb_config.pty_sock) */
    int master;       /* -1 until it arrived */
    int sigfd;        /* SIGWINCH */
    int wake[2];      /* other threads -> relay */
    int tty_in, tty_out;
    struct termios saved; /* the user's modes, restored at the end */
    int have_saved, raw;
    pthread_t thread;
    int started;

    /* Shared, under `lock`. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_mutex_t one_question; /* askers, one at a time */
    int stopping, closed;
    int users; /* threads inside run_pty_ask() / run_pty_say() */
    int ready; /* the master arrived: the terminal is ours to write */
    char question[QUESTION_MAX];
    unsigned q_timeout_s;
    int q_posted, q_done, q_result;
    char notes[NOTES_MAX];
    size_t notes_len;

    /* The relay thread's own. */
    char to_cmd[RELAY_BUF];
    size_t to_cmd_len;
    int in_eof, master_eof, out_dead;
    int at_bol; /* the last byte shown was a newline */
    int q_active;
    uint64_t q_deadline_ms;
    struct run_prompt_line answer;
};

/* The modes to restore if airlock crashes while the terminal is raw. */
static struct termios crash_modes;
static volatile sig_atomic_t crash_fd = -1;

static void crash_restore(int sig)
{
    if (crash_fd >= 0)
        tcsetattr(crash_fd, TCSANOW, &crash_modes);
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

unsigned run_pty_wanted(void)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return 0;
    return 1U | 2U | (isatty(STDERR_FILENO) ? 4U : 0U);
}

/* Shows `n` bytes on the user's terminal; gives up for good once the
 * terminal is gone. */
static void show(struct run_pty *p, const char *s, size_t n)
{
    while (n > 0 && !p->out_dead) {
        ssize_t w = write(p->tty_out, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            p->out_dead = 1;
            break;
        }
        s += w;
        n -= (size_t)w;
    }
}

static void show_str(struct run_pty *p, const char *s)
{
    show(p, s, strlen(s));
}

/* Starts a line of airlock's own: a new one unless the cursor is at the
 * start of an empty one. */
static void own_line(struct run_pty *p)
{
    if (!p->at_bol)
        show_str(p, "\r\n");
    p->at_bol = 1;
}

/* Shows `s` with "\n" as "\r\n" (the terminal is raw: no output
 * processing). */
static void show_lines(struct run_pty *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            show_str(p, "\r\n");
        else
            show(p, &s[i], 1);
    }
    if (n)
        p->at_bol = s[n - 1] == '\n';
}

static void wake(struct run_pty *p)
{
    char b = 1;
    ssize_t w = write(p->wake[1], &b, 1);
    (void)w; /* a full pipe wakes it just as well */
}

/* The user's terminal in raw mode: no echo, no line editing, no signals
 * (^C and ^Z are bytes for the sandbox's terminal), no output processing
 * (the sandbox's terminal did it). */
static void enter_raw(struct run_pty *p)
{
    if (!p->have_saved)
        return;
    struct termios raw = p->saved;
    raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON |
                               IXOFF | IXANY);
    raw.c_oflag &= ~(tcflag_t)OPOST;
    raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    raw.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    raw.c_cflag |= CS8;
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    crash_modes = p->saved;
    crash_fd = p->tty_in;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = crash_restore;
    for (size_t i = 0; i < sizeof(crash_signals) / sizeof(*crash_signals); i++)
        sigaction(crash_signals[i], &sa, NULL);
    /* TCSANOW: what was typed ahead is the command's. */
    if (tcsetattr(p->tty_in, TCSANOW, &raw) == 0)
        p->raw = 1;
}

static void leave_raw(struct run_pty *p)
{
    if (!p->raw)
        return;
    tcsetattr(p->tty_in, TCSADRAIN, &p->saved);
    p->raw = 0;
    crash_fd = -1;
    for (size_t i = 0; i < sizeof(crash_signals) / sizeof(*crash_signals); i++)
        signal(crash_signals[i], SIG_DFL);
}

static void resize(struct run_pty *p)
{
    struct winsize ws;
    if (p->master >= 0 && ioctl(p->tty_out, TIOCGWINSZ, &ws) == 0)
        ioctl(p->master, TIOCSWINSZ, &ws);
}

/* Takes the master from the sandbox: exactly one descriptor that is a
 * pseudo-terminal master, else none (and the sandbox's command fails). */
static int receive_master(struct run_pty *p)
{
    char byte = 0;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    while ((n = recvmsg(p->sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    int fd = -1;
    for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (fd < 0)
                fd = got;
            else
                close(got);
        }
    }
    unsigned ptn;
    if (n != 1 || byte != 'p' || (mh.msg_flags & MSG_CTRUNC) || fd < 0 ||
        ioctl(fd, TIOCGPTN, &ptn) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    p->master = fd;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* Started in the background (`airlock run ... &`): stop, as any
     * program that wants its terminal, until `fg`; the modes seen before
     * would be the foreground program's (a shell's line editor). Setting
     * our own group as the foreground one does that: a no-op in the
     * foreground; in the background the kernel stops us with SIGTTOU and
     * restarts the call after `fg`. Not with SIGTTOU ignored: then the
     * call would take the terminal from the shell. */
    struct sigaction ttou;
    if (sigaction(SIGTTOU, NULL, &ttou) == 0 && ttou.sa_handler != SIG_IGN)
        tcsetpgrp(p->tty_in, getpgrp());
    /* The user's modes (erase key, UTF-8 input...) and size for the
     * sandbox's terminal, then ours raw, then the command may run. */
    p->have_saved = tcgetattr(p->tty_in, &p->saved) == 0;
    if (p->have_saved)
        tcsetattr(fd, TCSANOW, &p->saved);
    resize(p);
    enter_raw(p);
    p->at_bol = 1;
    pthread_mutex_lock(&p->lock);
    p->ready = 1;
    pthread_mutex_unlock(&p->lock);
    return write(p->sock, "g", 1) == 1 ? 0 : -1;
}

/* Under `lock`: a posted question becomes the one on the screen (the
 * command's input and output wait meanwhile). */
static void question_show(struct run_pty *p)
{
    p->q_posted = 0;
    p->q_active = 1;
    memset(&p->answer, 0, sizeof(p->answer));
    p->q_deadline_ms = now_ms() + (uint64_t)p->q_timeout_s * 1000u;
    own_line(p);
    show_str(p, "\033[K");
    show_str(p, p->question);
    show_str(p, " ");
    p->at_bol = 0;
}

/* Under `lock`: the question is answered (or not: `result` 0 or -1). */
static void question_end(struct run_pty *p, int result)
{
    p->q_active = 0;
    p->q_result = result;
    p->q_done = 1;
    show_str(p, "\r\n");
    p->at_bol = 1;
    if (result == 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "airlock: no answer in %u s: denied\r\n", p->q_timeout_s);
        show_str(p, msg);
    }
    pthread_cond_broadcast(&p->cond);
}

/* Under `lock`: airlock's waiting lines, unless a question is up. */
static void notes_flush(struct run_pty *p)
{
    if (p->q_active || !p->notes_len)
        return;
    own_line(p);
    show_lines(p, p->notes, p->notes_len);
    p->notes_len = 0;
}

static void on_keyboard(struct run_pty *p)
{
    char buf[RELAY_BUF];
    size_t room = p->q_active ? sizeof(buf) : sizeof(p->to_cmd) - p->to_cmd_len;
    ssize_t n = read(p->tty_in, buf, room);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        p->in_eof = 1;
        return;
    }
    if (!p->q_active) {
        memcpy(p->to_cmd + p->to_cmd_len, buf, (size_t)n);
        p->to_cmd_len += (size_t)n;
        return;
    }
    /* The answer: never the command's. Bytes after its Enter are dropped
     * (typed ahead of the question being read). */
    char echo[RELAY_BUF * 3 + 1];
    size_t used;
    enum run_prompt_state st =
        run_prompt_feed(&p->answer, buf, (size_t)n, &used, echo, sizeof(echo));
    show_str(p, echo);
    pthread_mutex_lock(&p->lock);
    if (st == RUN_PROMPT_DONE)
        question_end(p, run_prompt_verdict(&p->answer));
    else if (st == RUN_PROMPT_ABORT)
        question_end(p, 'n');
    notes_flush(p);
    pthread_mutex_unlock(&p->lock);
}

static void on_master_out(struct run_pty *p)
{
    ssize_t w = write(p->master, p->to_cmd, p->to_cmd_len);
    if (w < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (w <= 0) {
        p->to_cmd_len = 0; /* nobody reads it any more */
        return;
    }
    memmove(p->to_cmd, p->to_cmd + w, p->to_cmd_len - (size_t)w);
    p->to_cmd_len -= (size_t)w;
}

/* Shows what the command wrote; 0 when there was nothing right now. */
static int on_master_in(struct run_pty *p)
{
    char buf[RELAY_BUF];
    ssize_t n = read(p->master, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0) {
        /* EIO: every holder of the slave closed it (the sandbox ended) */
        p->master_eof = 1;
        return 0;
    }
    show(p, buf, (size_t)n);
    p->at_bol = buf[n - 1] == '\n';
    return 1;
}

/* The end: whatever the command wrote last, unanswered questions, the
 * user's modes back. */
static void relay_finish(struct run_pty *p)
{
    while (p->master >= 0 && !p->master_eof && on_master_in(p))
        ;
    pthread_mutex_lock(&p->lock);
    if (p->q_active)
        question_end(p, -1);
    if (p->q_posted) {
        p->q_posted = 0;
        p->q_result = -1;
        p->q_done = 1;
    }
    notes_flush(p);
    p->closed = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    leave_raw(p);
}

static void *relay_main(void *arg)
{
    struct run_pty *p = arg;
    /* Everything blocked but the faults (the terminal is restored on
     * those) and SIGTTIN/SIGTTOU: airlock's main thread supervises the
     * signals, and SIGWINCH stays pending for our signalfd. With those two
     * blocked, airlock started in the background would set raw mode under
     * the shell in the foreground and take EIO for input; unblocked, it
     * stops until `fg` like any program reading its terminal. */
    sigset_t set;
    sigfillset(&set);
    for (size_t i = 0; i < sizeof(crash_signals) / sizeof(*crash_signals); i++)
        sigdelset(&set, crash_signals[i]);
    sigdelset(&set, SIGTTIN);
    sigdelset(&set, SIGTTOU);
    pthread_sigmask(SIG_SETMASK, &set, NULL);

    for (;;) {
        struct pollfd fds[5];
        nfds_t n = 0;
        int i_wake = -1, i_sig = -1, i_sock = -1, i_in = -1, i_master = -1;
        fds[i_wake = (int)n++] = (struct pollfd){p->wake[0], POLLIN, 0};
        if (p->sigfd >= 0)
            fds[i_sig = (int)n++] = (struct pollfd){p->sigfd, POLLIN, 0};
        if (p->master < 0 && p->sock >= 0) {
            fds[i_sock = (int)n++] = (struct pollfd){p->sock, POLLIN, 0};
        } else if (p->master >= 0) {
            /* Keys typed once the command's side is gone are the shell's
             * after us: left in the terminal. */
            if (!p->in_eof &&
                (p->q_active || (!p->master_eof && p->to_cmd_len < sizeof(p->to_cmd))))
                fds[i_in = (int)n++] = (struct pollfd){p->tty_in, POLLIN, 0};
            short ev = (short)((!p->master_eof && !p->q_active ? POLLIN : 0) |
                               (p->to_cmd_len && !p->q_active ? POLLOUT : 0));
            if (ev)
                fds[i_master = (int)n++] = (struct pollfd){p->master, ev, 0};
        }
        int timeout = -1;
        if (p->q_active) {
            uint64_t now = now_ms();
            timeout = p->q_deadline_ms > now ? (int)(p->q_deadline_ms - now) : 0;
        }
        int r = poll(fds, n, timeout);
        if (r < 0 && errno != EINTR)
            break;
        if (r < 0)
            continue;

        if (fds[i_wake].revents) {
            char drain[64];
            ssize_t d = read(p->wake[0], drain, sizeof(drain));
            (void)d;
            pthread_mutex_lock(&p->lock);
            int stopping = p->stopping;
            if (!stopping && p->q_posted && !p->q_active && p->master >= 0)
                question_show(p);
            else if (!stopping && p->q_posted && p->master < 0) {
                p->q_posted = 0; /* no terminal of ours yet */
                p->q_result = -1;
                p->q_done = 1;
                pthread_cond_broadcast(&p->cond);
            }
            notes_flush(p);
            pthread_mutex_unlock(&p->lock);
            if (stopping)
                break;
        }
        if (p->q_active && now_ms() >= p->q_deadline_ms) {
            pthread_mutex_lock(&p->lock);
            question_end(p, 0);
            notes_flush(p);
            pthread_mutex_unlock(&p->lock);
        }
        if (i_sig >= 0 && fds[i_sig].revents) {
            struct signalfd_siginfo si;
            while (read(p->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                ;
            resize(p);
        }
        if (i_sock >= 0 && fds[i_sock].revents) {
            if (receive_master(p) < 0) {
                close(p->sock); /* the command's wait for 'g' ends: it fails */
                p->sock = -1;
            }
            continue;
        }
        if (i_master >= 0 && (fds[i_master].revents & POLLOUT))
            on_master_out(p);
        if (i_master >= 0 && (fds[i_master].revents & (POLLIN | POLLHUP | POLLERR)))
            on_master_in(p);
        if (i_in >= 0 && (fds[i_in].revents & (POLLIN | POLLHUP | POLLERR)))
            on_keyboard(p);
    }
    relay_finish(p);
    return NULL;
}

int run_pty_start(run_pty **out, int *out_sandbox_sock, unsigned stdio)
{
    int err = 0, sv[2] = {-1, -1};
    struct run_pty *p = calloc(1, sizeof(*p));
    *out = NULL;
    *out_sandbox_sock = -1;
    if (!p)
        return al_error_set(AL_ENOMEM, "out of memory");
    p->stdio = stdio;
    p->sock = p->sandbox_sock = p->master = p->sigfd = -1;
    p->wake[0] = p->wake[1] = -1;
    p->tty_in = STDIN_FILENO;
    p->tty_out = STDOUT_FILENO;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->one_question, NULL);
    pthread_cond_init(&p->cond, NULL);

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
        pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "terminal relay");
        goto out;
    }
    p->sock = sv[0];
    p->sandbox_sock = sv[1];
    sv[0] = sv[1] = -1;
    sigset_t winch;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    p->sigfd = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);
    if (pthread_create(&p->thread, NULL, relay_main, p) != 0) {
        err = al_error_set(AL_EIO, "cannot start the terminal relay");
        goto out;
    }
    p->started = 1;
    *out_sandbox_sock = p->sandbox_sock;
    *out = p;
    p = NULL;
out:
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    run_pty_free(p);
    return err;
}

int run_pty_ask(run_pty *p, const char *question, unsigned timeout_s)
{
    if (!p)
        return -1;
    pthread_mutex_lock(&p->lock);
    p->users++;
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_lock(&p->one_question);
    pthread_mutex_lock(&p->lock);
    int result = -1;
    if (!p->stopping && !p->closed) {
        snprintf(p->question, sizeof(p->question), "%s", question);
        p->q_timeout_s = timeout_s;
        p->q_done = 0;
        p->q_posted = 1;
        wake(p);
        while (!p->q_done)
            pthread_cond_wait(&p->cond, &p->lock);
        result = p->q_result;
    }
    pthread_mutex_unlock(&p->one_question);
    p->users--;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return result;
}

int run_pty_say(run_pty *p, const char *line)
{
    if (!p || !(p->stdio & 4U))
        return -1;
    size_t n = strlen(line);
    pthread_mutex_lock(&p->lock);
    int ok = !p->stopping && !p->closed && p->ready;
    if (ok && p->notes_len + n + 1 <= sizeof(p->notes)) {
        memcpy(p->notes + p->notes_len, line, n);
        p->notes_len += n;
        p->notes[p->notes_len++] = '\n';
        wake(p);
    }
    pthread_mutex_unlock(&p->lock);
    return ok ? 0 : -1;
}

void run_pty_stop(run_pty *p)
{
    if (!p || !p->started)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    wake(p);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    p->started = 0;
}

void run_pty_free(run_pty *p)
{
    if (!p)
        return;
    run_pty_stop(p);
    pthread_mutex_lock(&p->lock);
    p->closed = 1;
    while (p->users > 0)
        pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    int fds[] = {p->sock, p->sandbox_sock, p->master, p->sigfd, p->wake[0], p->wake[1]};
    for (size_t i = 0; i < sizeof(fds) / sizeof(*fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->one_question);
    free(p);
}
