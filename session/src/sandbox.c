/* sb_run() and sb_run_weaker(): a sandbox around one command, and the wait
 * for it. This process prepares what must be done from outside (plan,
 * cgroup, janitor), contain.c builds the sandbox (the same list of steps
 * as every sandbox), and this process supervises the command: signals
 * forwarded, the timeout enforced, the outcome read from the status pipe. */
#include "sandbox_int.h"

#include "airlock/error.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const int supervised_signals[] = {SIGCHLD, SIGALRM, SIGINT,  SIGTERM, SIGHUP,
                                         SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

static void signals_block(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(supervised_signals) / sizeof(*supervised_signals); i++)
        sigaddset(&set, supervised_signals[i]);
    sigprocmask(SIG_BLOCK, &set, old);
}

/* Waits for `child`, forwarding signals to it and enforcing the timeout
 * (SIGWINCH too unless `pty`).
 * Returns its wait status; *timed_out is set when the timeout killed it. */
static int supervise(pid_t child, unsigned timeout_s, int pty, int *timed_out)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(supervised_signals) / sizeof(*supervised_signals); i++)
        sigaddset(&set, supervised_signals[i]);
    /* With a terminal of the sandbox's own, SIGWINCH stays blocked and
     * pending for the caller's relay (a signalfd), which resizes it. */
    if (pty)
        sigdelset(&set, SIGWINCH);
    if (timeout_s)
        alarm(timeout_s);
    *timed_out = 0;
    for (;;) {
        int st;
        pid_t r = waitpid(child, &st, WNOHANG);
        if (r == child) {
            alarm(0);
            return st;
        }
        siginfo_t si;
        int sig = sigwaitinfo(&set, &si);
        if (sig == SIGALRM && timeout_s) {
            *timed_out = 1;
            kill(child, SIGKILL);
        } else if (sig > 0 && sig != SIGCHLD) {
            kill(child, sig);
        }
    }
}

static void result_from_status(struct sb_result *out, int status)
{
    if (WIFSIGNALED(status)) {
        out->outcome = SB_SIGNALED;
        out->code = WTERMSIG(status);
    } else {
        out->outcome = SB_EXITED;
        out->code = WEXITSTATUS(status);
    }
}

/* Waits for the spawned command's sandbox and fills `out` from its status
 * record or, without one, from its wait status. 0, or the setup failure
 * it reported (then out->outcome is SB_SETUP_FAILED). Closes the
 * descriptors of `sp`. */
static int run_wait(struct sb_result *out, struct sb_spawned *sp, const struct sb_config *cfg,
                    const struct sb_cgroup *cg)
{
    int err = 0, timed_out = 0;
    int wst = supervise(sp->pid, cfg->timeout_s, cfg->pty_stdio != 0, &timed_out);
    /* Written before the child exited, if at all: never wait for more (a
     * process of the command's may still hold the pipe). */
    struct sb_status st;
    int got = sb_status_read(sp->status_fd, &st, 0);
    if (timed_out) {
        out->outcome = SB_TIMED_OUT;
        out->code = (int)cfg->timeout_s;
    } else if (got == 1 && st.outcome == SB_SETUP_FAILED) {
        err = al_error_set(AL_ERROR, "%s", st.message);
    } else if (got == 1) {
        out->outcome = (enum sb_outcome)st.outcome;
        out->code = st.code;
        if (st.outcome == SB_NOT_FOUND || st.outcome == SB_NOT_EXEC)
            al_error_set(AL_ERROR, "%s", st.message);
    } else {
        result_from_status(out, wst);
    }
    if (err == 0 && out->outcome == SB_SIGNALED && out->code == SIGKILL && sb_cgroup_oom_killed(cg))
        out->outcome = SB_MEMORY_OOM;
    close(sp->status_fd);
    close(sp->go_fd);
    return err;
}

int sb_run(struct sb_result *out, const struct sb_config *cfg)
{
    struct sb_plan plan = {0};
    struct sb_cgroup cg = {0};
    struct sb_spawned sp;
    int janitor = -1, err = 0;
    sigset_t oldmask;
    out->outcome = SB_SETUP_FAILED;
    out->code = 0;

    if ((err = sb_plan_build(&plan, cfg)) < 0)
        goto out;
    if ((err = sb_cgroup_create(&cg, cfg)) < 0)
        goto out;
    if ((err = sb_janitor_start(&janitor, &plan, &cg)) < 0)
        goto out;
    struct sb_contain c = {.cfg = cfg,
                           .plan = &plan,
                           .cg = &cg,
                           .end = SB_END_SUPERVISE,
                           .namespaces = 1,
                           .die_with_parent = 1,
                           .on_netns = cfg->on_netns,
                           .netns_payload = cfg->netns_payload};
    signals_block(&oldmask);
    if ((err = sb_contain_spawn(&sp, &c)) == 0)
        err = run_wait(out, &sp, cfg, &cg);
    sigprocmask(SIG_SETMASK, &oldmask, NULL);

out:
    sb_cgroup_destroy(&cg);
    sb_plan_remove_placeholders(&plan);
    sb_janitor_dismiss(janitor);
    sb_plan_free(&plan);
    if (err < 0)
        out->outcome = SB_SETUP_FAILED;
    return err;
}

int sb_run_weaker(struct sb_result *out, const struct sb_config *cfg)
{
    struct sb_plan plan = {0};
    struct sb_cgroup none = {0};
    struct sb_spawned sp;
    sigset_t oldmask;
    out->outcome = SB_SETUP_FAILED;
    out->code = 0;
    int err = sb_plan_build(&plan, cfg);
    if (err < 0)
        goto out;
    struct sb_contain c = {.cfg = cfg,
                           .plan = &plan,
                           .cg = &none,
                           .end = SB_END_EXEC,
                           .namespaces = 0,
                           .die_with_parent = 1};
    signals_block(&oldmask);
    if ((err = sb_contain_spawn(&sp, &c)) == 0)
        err = run_wait(out, &sp, cfg, &none);
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
out:
    sb_plan_free(&plan);
    if (err < 0)
        out->outcome = SB_SETUP_FAILED;
    return err;
}

int sb_result_exit_status(const struct sb_result *r)
{
    switch (r->outcome) {
    case SB_EXITED:
        return r->code;
    case SB_SIGNALED:
        return 128 + r->code;
    case SB_NOT_FOUND:
        return 127;
    case SB_NOT_EXEC:
        return 126;
    case SB_TIMED_OUT:
        return 124;
    case SB_MEMORY_OOM:
        return 137;
    case SB_SETUP_FAILED:
    default:
        return 125;
    }
}
