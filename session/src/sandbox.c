/* sb_run(): the lifecycle of one sandbox, as a list of steps. The parent
 * (this process) prepares what must be done from outside (plan, cgroup,
 * janitor, uid map), the clone's pid 1 does the rest from inside (init.c). */
#include "sandbox_int.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SANDBOX_NS_FLAGS                                                                           \
    (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)

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

/* Waits for `child`, forwarding signals to it and enforcing the timeout.
 * Returns its wait status; *timed_out is set when the timeout killed it. */
static int supervise(pid_t child, unsigned timeout_s, int *timed_out)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(supervised_signals) / sizeof(*supervised_signals); i++)
        sigaddset(&set, supervised_signals[i]);
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

void sb_close_fds_except(int *keep, size_t n)
{
    /* Insertion sort: qsort may allocate. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    unsigned lo = 3;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)keep[i] > lo)
            syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
        lo = (unsigned)keep[i] + 1;
    }
    syscall(SYS_close_range, lo, ~0U, 0);
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

int sb_run(struct sb_result *out, const struct sb_config *cfg)
{
    struct sb_plan plan = {0};
    struct sb_cgroup cg = {0};
    int janitor = -1, go[2] = {-1, -1}, status[2] = {-1, -1}, err = 0;
    pid_t pid = -1;
    sigset_t oldmask;
    out->outcome = SB_SETUP_FAILED;
    out->code = 0;

    if ((err = sb_plan_build(&plan, cfg)) < 0)
        goto out;
    if ((err = sb_cgroup_create(&cg, cfg)) < 0)
        goto out;
    if ((err = sb_janitor_start(&janitor, &plan, &cg)) < 0)
        goto out;
    if (pipe2(go, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "pipe");
        goto out;
    }

    /* With nothing to do from outside (no cgroup to join, no network hook),
     * the child maps its own ids and starts without a round trip to us. */
    int map_self = cg.version == 0 && !cfg->on_netns;
    uid_t outer_uid = getuid();
    gid_t outer_gid = getgid();
    signals_block(&oldmask);
    pid = (pid_t)syscall(SYS_clone, SANDBOX_NS_FLAGS | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0) {
        int keep[2] = {go[0], status[1]};
        sb_close_fds_except(keep, 2);
        struct sb_child_args args = {.cfg = cfg,
                                     .plan = &plan,
                                     .go_fd = go[0],
                                     .map_self = map_self,
                                     .status_fd = status[1],
                                     .use_cgroupns = cg.version != 0,
                                     .outer_uid = outer_uid,
                                     .outer_gid = outer_gid};
        _exit(sb_init_main(&args));
    }
    if (pid < 0) {
        int e = errno;
        sigprocmask(SIG_SETMASK, &oldmask, NULL);
        err = al_error_set_errno(AL_EUNSUPP, e, "cannot create namespaces");
        goto out;
    }
    close(go[0]);
    go[0] = -1;
    close(status[1]);
    status[1] = -1;

    /* From outside: identity map, cgroup membership, network hook; then the
     * child may go on. */
    if (map_self)
        goto supervise;
    if ((err = sb_userns_map_ids(pid, outer_uid, outer_gid)) < 0 ||
        (err = sb_cgroup_add(&cg, pid)) < 0)
        goto kill;
    if (cfg->on_netns && (err = sb_net_hook(pid, cfg->on_netns, cfg->netns_payload)) < 0)
        goto kill;
    if (write(go[1], "g", 1) != 1) {
        err = al_error_set_errno(AL_EIO, errno, "start sandbox");
        goto kill;
    }

supervise:;
    int timed_out = 0;
    int wst = supervise(pid, cfg->timeout_s, &timed_out);
    pid = -1;
    struct sb_status st;
    ssize_t n = read(status[0], &st, sizeof(st));
    if (timed_out) {
        out->outcome = SB_TIMED_OUT;
        out->code = (int)cfg->timeout_s;
    } else if (n == (ssize_t)sizeof(st)) {
        st.message[sizeof(st.message) - 1] = '\0';
        if (st.outcome == SB_SETUP_FAILED) {
            err = al_error_set(AL_ERROR, "%s", st.message);
            goto restore;
        }
        out->outcome = (enum sb_outcome)st.outcome;
        out->code = st.code;
        if (st.outcome == SB_NOT_FOUND || st.outcome == SB_NOT_EXEC)
            al_error_set(AL_ERROR, "%s", st.message);
    } else {
        result_from_status(out, wst);
    }
    if (out->outcome == SB_SIGNALED && out->code == SIGKILL && sb_cgroup_oom_killed(&cg))
        out->outcome = SB_MEMORY_OOM;
    goto restore;

kill:
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
restore:
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
out:
    for (int i = 0; i < 2; i++) {
        if (go[i] >= 0)
            close(go[i]);
        if (status[i] >= 0)
            close(status[i]);
    }
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
    int errpipe[2] = {-1, -1}, err;
    sigset_t oldmask;
    out->outcome = SB_SETUP_FAILED;
    out->code = 0;
    if ((err = sb_plan_build(&plan, cfg)) < 0)
        goto out;
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "pipe");
        goto out;
    }
    signals_block(&oldmask);
    pid_t pid = fork();
    if (pid == 0) {
        close(errpipe[0]);
        sb_close_fds_except(&errpipe[1], 1);
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        int e = 0;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            e = errno;
        else if (sb_landlock_apply_weaker(&plan) < 0 || sb_seccomp_apply(&plan) < 0)
            e = EPERM;
        if (e) {
            dprintf(2, "airlock: error: weaker sandbox: %s\n", al_error_last());
            ssize_t w = write(errpipe[1], &e, sizeof(e));
            (void)w;
            _exit(125);
        }
        sb_exec_command(cfg, errpipe[1]);
    }
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &oldmask, NULL);
        err = al_error_set_errno(AL_EIO, errno, "fork");
        goto out;
    }
    close(errpipe[1]);
    errpipe[1] = -1;
    int timed_out = 0;
    int wst = supervise(pid, cfg->timeout_s, &timed_out);
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    int exec_errno = 0;
    if (timed_out) {
        out->outcome = SB_TIMED_OUT;
        out->code = (int)cfg->timeout_s;
    } else if (read(errpipe[0], &exec_errno, sizeof(exec_errno)) == (ssize_t)sizeof(int)) {
        if (WIFEXITED(wst) && WEXITSTATUS(wst) == 125) {
            err = al_error_set(AL_ERROR, "weaker sandbox could not be applied");
            goto out;
        }
        out->outcome = exec_errno == ENOENT ? SB_NOT_FOUND : SB_NOT_EXEC;
        out->code = exec_errno;
        al_error_set(AL_ERROR, "%s: %s", cfg->argv[0], strerror(exec_errno));
    } else {
        result_from_status(out, wst);
    }
out:
    for (int i = 0; i < 2; i++)
        if (errpipe[i] >= 0)
            close(errpipe[i]);
    sb_plan_free(&plan);
    if (err < 0)
        out->outcome = SB_SETUP_FAILED;
    return err;
}

int sb_namespaces_probe(void)
{
    pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | SIGCHLD,
                               NULL, NULL, NULL, 0);
    if (pid == 0)
        _exit(0);
    if (pid < 0)
        return al_error_set_errno(AL_EUNSUPP, errno, "cannot create namespaces");
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return 0;
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
