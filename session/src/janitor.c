/* The janitor: a small process outside the sandbox that outlives a caller
 * killed with SIGKILL and removes what the caller would have removed (the
 * cgroup, placeholder files). It is started only when there is something to
 * clean, reparented away from the caller, and waits on a pipe: a "done" byte
 * means the caller cleaned up itself; end-of-file without it means the caller
 * died. */
#include "sandbox_int.h"

#include "airlock/error.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void janitor_main(int fd, const struct sb_plan *plan, const struct sb_cgroup *cg)
{
    /* Detached from the terminal's signals and from the caller's pipes. */
    setsid();
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_IGN);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int i = 0; i < 3; i++)
        if (devnull >= 0)
            dup2(devnull, i);
    char b;
    ssize_t n;
    do
        n = read(fd, &b, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1)
        _exit(0); /* the caller cleaned up */
    struct sb_cgroup copy = *cg;
    sb_cgroup_destroy(&copy);
    sb_plan_remove_placeholders(plan);
    _exit(0);
}

int sb_janitor_start(int *out_fd, const struct sb_plan *plan, const struct sb_cgroup *cg)
{
    *out_fd = -1;
    if (cg->version == 0 && plan->placeholders.len == 0)
        return 0;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return al_error_set_errno(AL_EIO, errno, "janitor pipe");
    pid_t mid = fork();
    if (mid < 0) {
        close(p[0]);
        close(p[1]);
        return al_error_set_errno(AL_EIO, errno, "fork janitor");
    }
    if (mid == 0) {
        /* Double fork: the janitor is nobody's child we must reap. */
        close(p[1]);
        pid_t j = fork();
        if (j == 0)
            janitor_main(p[0], plan, cg);
        _exit(j < 0 ? 1 : 0);
    }
    close(p[0]);
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        close(p[1]);
        return al_error_set(AL_EIO, "janitor did not start");
    }
    *out_fd = p[1];
    return 0;
}

void sb_janitor_dismiss(int fd)
{
    if (fd < 0)
        return;
    ssize_t w = write(fd, "d", 1);
    (void)w;
    close(fd);
}
