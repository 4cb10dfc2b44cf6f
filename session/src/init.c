/* The sandbox's pid 1. It finishes building the sandbox from the inside
 * (namespaced setup, mounts, privilege drop, Landlock, seccomp), starts the
 * command, reaps every orphan, forwards signals to the command, and reports
 * how the command ended before it exits (which kills whatever is left in the
 * sandbox's pid namespace). */
#include "sandbox_int.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void init_report(int fd, int outcome, int code, const char *message)
{
    struct sb_status st;
    memset(&st, 0, sizeof(st));
    st.outcome = outcome;
    st.code = code;
    if (message)
        snprintf(st.message, sizeof(st.message), "%s", message);
    ssize_t w = write(fd, &st, sizeof(st));
    (void)w;
}

/* The steps, in order. Each returns 0 or an AL_E* code with a message. */
static int init_setup(const struct sb_child_args *a)
{
    int err;
    if (a->use_cgroupns && unshare(CLONE_NEWCGROUP) < 0)
        return al_error_set_errno(AL_EIO, errno, "cgroup namespace");
    if (sethostname("airlock", 7) < 0)
        return al_error_set_errno(AL_EIO, errno, "sethostname");
    if ((err = sb_net_loopback_up()) < 0)
        return err;
    if ((err = sb_mounts_build_root(a->plan)) < 0)
        return err;
    if ((err = sb_privs_drop()) < 0)
        return err;
    /* Not dumpable: the command cannot open /proc/1/mem or attach to us. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    err = sb_landlock_apply(a->plan);
    if (err == AL_EUNSUPP)
        al_log(AL_LOG_WARN, "%s: filesystem protected by mounts only", al_error_last());
    else if (err < 0)
        return err;
    return sb_seccomp_apply(a->plan);
}

/* Waits for the command, reaping orphans and forwarding signals.
 * Fills *status with the command's wait status. */
static void init_supervise(pid_t cmd, int *status)
{
    sigset_t set;
    sigemptyset(&set);
    static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    sigaddset(&set, SIGCHLD);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(*forwarded); i++)
        sigaddset(&set, forwarded[i]);
    for (;;) {
        int wst;
        pid_t pid;
        while ((pid = waitpid(-1, &wst, WNOHANG)) > 0) {
            if (pid == cmd) {
                *status = wst;
                return;
            }
        }
        siginfo_t si;
        int sig = sigwaitinfo(&set, &si);
        if (sig > 0 && sig != SIGCHLD)
            kill(-cmd, sig);
    }
}

int sb_init_main(void *arg)
{
    const struct sb_child_args *a = arg;
    char go;
    /* The parent dies -> so do we (and with us the whole pid namespace). */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (a->map_self) {
        /* The parent keeps its end open until we are reaped: a hang-up now
         * means it died before PDEATHSIG was armed. */
        struct pollfd p = {a->go_fd, POLLIN, 0};
        if (poll(&p, 1, 0) != 0 || sb_userns_map_ids(0, a->outer_uid, a->outer_gid) < 0)
            _exit(125);
    } else if (read(a->go_fd, &go, 1) != 1) {
        _exit(125); /* the parent is gone or failed before letting us run */
    }
    close(a->go_fd);

    if (init_setup(a) < 0) {
        init_report(a->status_fd, SB_SETUP_FAILED, 0, al_error_last());
        _exit(125);
    }

    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
        init_report(a->status_fd, SB_SETUP_FAILED, 0, "pipe for exec status");
        _exit(125);
    }
    pid_t cmd = fork();
    if (cmd < 0) {
        init_report(a->status_fd, SB_SETUP_FAILED, 0, "fork of the command");
        _exit(125);
    }
    if (cmd == 0) {
        close(errpipe[0]);
        close(a->status_fd);
        sb_exec_command(a->cfg, errpipe[1]);
    }
    close(errpipe[1]);

    int status = 0;
    init_supervise(cmd, &status);

    int exec_errno = 0;
    if (read(errpipe[0], &exec_errno, sizeof(exec_errno)) == (ssize_t)sizeof(exec_errno)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s: %s", a->cfg->argv[0], strerror(exec_errno));
        init_report(a->status_fd,
                    exec_errno == ENOENT                              ? SB_NOT_FOUND
                    : WIFEXITED(status) && WEXITSTATUS(status) == 125 ? SB_SETUP_FAILED
                                                                      : SB_NOT_EXEC,
                    exec_errno, msg);
    } else if (WIFSIGNALED(status)) {
        init_report(a->status_fd, SB_SIGNALED, WTERMSIG(status), NULL);
    } else {
        init_report(a->status_fd, SB_EXITED, WEXITSTATUS(status), NULL);
    }
    _exit(0);
}
