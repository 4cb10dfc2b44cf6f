/* The rest of the life of the sandbox's pid 1 in `airlock run` (the
 * SB_END_SUPERVISE end of the contain list): it starts the command, reaps
 * every orphan, forwards signals to the command, and reports how the
 * command ended before it exits (which kills whatever is left in the
 * sandbox's pid namespace). Everything before is contain.c's. */
#include "sandbox_int.h"

#include "airlock/error.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Waits for the command, reaping orphans and forwarding signals.
 * Fills *status with the command's wait status. */
static void init_wait(const struct sb_config *cfg, pid_t cmd, int *status)
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
        /* With a terminal of its own, the command's window size changes
         * come from the kernel when airlock resizes the master. */
        if (sig > 0 && sig != SIGCHLD && !(sig == SIGWINCH && cfg->pty_stdio))
            kill(-cmd, sig);
    }
}

void sb_init_supervise(const struct sb_config *cfg, int status_fd)
{
    /* The command's exec failure comes back on this pipe (CLOEXEC). */
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
        sb_status_write(status_fd, SB_SETUP_FAILED, 0, "pipe for exec status");
        _exit(125);
    }
    pid_t cmd = fork();
    if (cmd < 0) {
        sb_status_write(status_fd, SB_SETUP_FAILED, 0, "fork of the command");
        _exit(125);
    }
    if (cmd == 0) {
        close(errpipe[0]);
        close(status_fd);
        sb_exec_command(cfg, errpipe[1]);
    }
    close(errpipe[1]);
    /* The command has its own terminal: the socket was for it, and the
     * caller's terminal is not ours to hold either. A failure here is not
     * the command's: it runs on. */
    if (cfg->pty_stdio) {
        close(cfg->pty_sock);
        sb_pty_detach_stdio(cfg);
    }

    int status = 0;
    init_wait(cfg, cmd, &status);

    /* The command's own record (it could not start) is passed on as is. */
    struct sb_status st;
    if (sb_status_read(errpipe[0], &st, 0) == 1)
        sb_status_write(status_fd, st.outcome, st.code, st.message);
    else if (WIFSIGNALED(status))
        sb_status_write(status_fd, SB_SIGNALED, WTERMSIG(status), NULL);
    else
        sb_status_write(status_fd, SB_EXITED, WEXITSTATUS(status), NULL);
    _exit(0);
}
