/* The front / reaper / daemon split: see airlockd/adapters/reaper.h. */
#include "airlockd/adapters/reaper.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The front's pid, in all three processes; 0 before the split. */
static pid_t front_pid;

pid_t ald_reaper_front_pid(void)
{
    return front_pid ? front_pid : getpid();
}

/* What the reaper tells the front, over a pipe: the daemon's pid once it
 * runs, then how it ended. */
struct reaper_msg {
    int32_t kind; /* REAPER_PID or REAPER_EXIT */
    int32_t value;
    int32_t kept; /* REAPER_EXIT: 1 when sandboxes are left (the reaper
                     stays for them), 0 when it exits now */
};
#define REAPER_PID  1 /* value: the daemon's pid */
#define REAPER_EXIT 2 /* value: its wait status */

/* Writes one message; the pipe is far from full, so it is whole. */
static void msg_send(int fd, int32_t kind, int32_t value, int32_t kept)
{
    struct reaper_msg m = {kind, value, kept};
    ssize_t w = write(fd, &m, sizeof(m));
    (void)w;
}

/* The reaper's life, in the child of the front: the reaper never returns
 * (it exits when it has no child left); its child, the daemon, does.
 * `msg_fd` goes to the front, `front_fd` is a pidfd of the front, `orig`
 * the signal mask the daemon must start with. */
static void reaper_main(int msg_fd, int front_fd, const sigset_t *orig)
{
    /* Its own session: a Ctrl-C of the terminal reaches the front (which
     * passes it on), never the reaper. */
    setsid();
    char name[16] = "airlockd";
    prctl(PR_GET_NAME, name, 0, 0, 0);
    prctl(PR_SET_NAME, "airlockd-reaper", 0, 0, 0);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        _exit(125);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    pid_t self = getpid();
    pid_t daemon_pid = fork();
    if (daemon_pid == 0) {
        /* The daemon: dies with the reaper, so that it is never anybody
         * else's orphan; starts with the front's signal mask. */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != self)
            _exit(125);
        prctl(PR_SET_NAME, name, 0, 0, 0); /* the front's own, "airlockd" */
        close(msg_fd);
        close(front_fd);
        if (sfd >= 0)
            close(sfd);
        sigprocmask(SIG_SETMASK, orig, NULL);
        return;
    }
    if (daemon_pid < 0 || sfd < 0)
        _exit(125);
    /* a front that is gone must not end us with SIGPIPE: the sandboxes
     * need us most then */
    signal(SIGPIPE, SIG_IGN);
    msg_send(msg_fd, REAPER_PID, daemon_pid, 0);
    /* Nothing of the front's but the two descriptors: stdio to /dev/null,
     * so that a pipe or terminal the front writes to is not held open. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(null);
    }
    /* and none of the front's other descriptors */
    int keep[3] = {msg_fd, front_fd, sfd};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (keep[j] < keep[i]) {
                int t = keep[i];
                keep[i] = keep[j];
                keep[j] = t;
            }
    unsigned lo = 3;
    for (int i = 0; i < 3; i++) {
        if ((unsigned)keep[i] > lo)
            syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
        lo = (unsigned)keep[i] + 1;
    }
    syscall(SYS_close_range, lo, ~0U, 0);
    int daemon_alive = 1, front_alive = 1;
    for (;;) {
        struct pollfd p[2] = {{sfd, POLLIN, 0}, {front_alive ? front_fd : -1, POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            _exit(125);
        if (p[1].revents) {
            /* The front is gone before the daemon ended (it was killed):
             * the daemon goes too, as it would have as one process. */
            front_alive = 0;
            if (daemon_alive)
                kill(daemon_pid, SIGKILL);
        }
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof(si)) > 0)
            ;
        int status, daemon_status = 0, ended = 0;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG | __WALL)) > 0) {
            if (pid == daemon_pid) {
                daemon_alive = 0;
                daemon_status = status;
                ended = 1;
            }
        }
        int none_left = pid < 0 && errno == ECHILD;
        if (ended) {
            /* the front waits for our exit when we go now */
            msg_send(msg_fd, REAPER_EXIT, daemon_status, !none_left);
            close(msg_fd);
        }
        if (none_left && !daemon_alive)
            _exit(0);
    }
}

/* The front's status for the daemon's wait status. */
static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

/* The front's life: passes SIGTERM and SIGINT on to the daemon, waits for
 * the reaper's word that it ended. Returns the status to exit with. */
static int front_main(int msg_fd, pid_t reaper_pid)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    pid_t daemon_pid = 0;
    int pending = 0, rc = 1, kept = 1;
    for (;;) {
        struct pollfd p[2] = {{msg_fd, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) && si.ssi_signo != SIGHUP) {
                if (daemon_pid > 0)
                    kill(daemon_pid, (int)si.ssi_signo);
                else
                    pending = (int)si.ssi_signo; /* before the daemon's pid came */
            }
        }
        if (p[0].revents) {
            struct reaper_msg m;
            ssize_t n = read(msg_fd, &m, sizeof(m));
            if (n != (ssize_t)sizeof(m))
                break; /* the reaper is gone without a word: failure */
            if (m.kind == REAPER_PID) {
                daemon_pid = m.value;
                if (pending)
                    kill(daemon_pid, pending);
            } else if (m.kind == REAPER_EXIT) {
                rc = exit_code(m.value);
                kept = m.kept;
                break;
            }
        }
    }
    /* With no sandbox left the reaper exits now: reaped here. Else it
     * stays with them, and is reparented when we exit. */
    while (waitpid(reaper_pid, NULL, kept ? WNOHANG : 0) < 0 && errno == EINTR)
        ;
    if (sfd >= 0)
        close(sfd);
    close(msg_fd);
    return rc;
}

int ald_reaper_split(int *front_status)
{
    int msg[2] = {-1, -1}, front_fd = -1, err = 0;
    sigset_t orig, sigs;
    sigprocmask(SIG_SETMASK, NULL, &orig);
    front_fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (front_fd < 0) {
        err = al_error_set_errno(AL_EUNSUPP, errno, "pidfd_open");
        goto out;
    }
    if (pipe2(msg, O_CLOEXEC) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "pipe");
        goto out;
    }
    /* Blocked from now on in all three: the front reads them from a
     * signalfd, the daemon gets the original mask back. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    front_pid = getpid();
    pid_t reaper_pid = fork();
    if (reaper_pid == 0) {
        /* the reaper; only the daemon, its child, comes back */
        close(msg[0]);
        reaper_main(msg[1], front_fd, &orig);
        return 0;
    }
    if (reaper_pid < 0) {
        err = al_error_set_errno(AL_EIO, errno, "fork");
        front_pid = 0;
        sigprocmask(SIG_SETMASK, &orig, NULL);
        goto out;
    }
    close(msg[1]);
    msg[1] = -1;
    *front_status = front_main(msg[0], reaper_pid);
    msg[0] = -1; /* closed by front_main */
    err = 1;
out:
    for (int i = 0; i < 2; i++)
        if (msg[i] >= 0)
            close(msg[i]);
    if (front_fd >= 0)
        close(front_fd);
    return err;
}
