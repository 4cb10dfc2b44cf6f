/* The contain list: how every sandbox is built, `airlock run` (sb_run),
 * airlockd's sessions (sbs_start) and the weaker nested mode
 * (sb_run_weaker) alike. One spawn (sb_contain_spawn) does what must be
 * done from outside; the child runs the steps of contain_steps[] once, in
 * that order, then ends the way its caller asked: pid 1 supervising the
 * command, the command itself, or airlock-init. Each step is one function
 * of the file of its concern; a step that does not apply to a kind of
 * sandbox says so itself and returns 0.
 *
 * Where the three pipelines this replaced did things differently, every
 * kind now gets the stricter behaviour:
 *   - pid 1 leaves the caller's session and process group (setsid) in
 *     `airlock run` too, as in sessions: a terminal's signals reach the
 *     sandbox only through airlock, which forwards them once;
 *   - a cgroup namespace always (sessions had one always, `airlock run`
 *     only with limits): /proc/self/cgroup shows no host cgroup path;
 *   - every signal blocked from the clone on (sessions did; `airlock run`
 *     blocked only the ones it supervises): no handler of the caller's
 *     runs in the child;
 *   - the clone lands in the sandbox's cgroup at birth where the kernel
 *     can (clone3, cgroup v2), for `airlock run` too;
 *   - the weaker mode gets the privilege step (rlimits, securebits and an
 *     empty bounding set where it holds CAP_SETPCAP, capabilities
 *     cleared), its own session and PR_SET_DUMPABLE 0 like the others;
 *   - pid 1 is not dumpable before it execs airlock-init too (init sets it
 *     again: exec resets it);
 *   - a setup failure is reported in one format (struct sb_status) by
 *     every kind, airlock-init included, with the failing step's message
 *     (the weaker mode said only "could not be applied"; `airlock run`'s
 *     pid 1 exited silently when it could not map its own ids);
 *   - the command's chdir failure is a setup failure (125) in both
 *     command modes (`airlock run` reported ENOENT there as "command not
 *     found", 127).
 * What stays a parameter is what makes the kinds different products: the
 * end, the uid switch of sessions, the parent-death signal (a session
 * outlives airlockd), and the namespaces of which the weaker mode has
 * none (so Landlock hides the masked paths, and is then required). */
#include "sandbox_int.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SB_NS_FLAGS                                                                                \
    (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)

/* What the child needs. It lives on sb_contain_spawn()'s stack, which the
 * child gets a copy of. */
struct sb_child {
    const struct sb_contain *c;
    int go_fd;       /* read: 'm' when the parent wrote the id maps, then 'g'
                        when it joined us to the cgroup and ran the network
                        hook (meanwhile we build the root: the cgroup move may
                        wait for an RCU grace period, milliseconds); with
                        map_self nothing comes, it is only watched */
    int status_fd;   /* write: at most one struct sb_status */
    int map_self;    /* nothing to do from outside: we map our own ids (or
                        have none to map) and go on without a round trip */
    uid_t outer_uid; /* the caller's ids (getuid() says 65534 until mapped) */
    gid_t outer_gid;
    int ruleset; /* the Landlock ruleset; -1 without Landlock */
};

void sb_status_write(int fd, int outcome, int code, const char *message)
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

int sb_status_read(int fd, struct sb_status *out, int timeout_ms)
{
    size_t len = 0;
    memset(out, 0, sizeof(*out));
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return al_error_set_errno(AL_EIO, errno, "status pipe");
        if (r == 0)
            return al_error_set(AL_ETIMEOUT, "no status from the sandbox");
        ssize_t n = read(fd, (char *)out + len, sizeof(*out) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof(*out))
            break;
    }
    if (len == 0)
        return 0;
    if (len < sizeof(*out))
        return al_error_set(AL_EIO, "a partial status from the sandbox (%zu bytes)", len);
    out->message[sizeof(out->message) - 1] = '\0';
    return 1;
}

/* Reads the go byte `want`. End-of-file: the parent failed (it has its own
 * error and kills us) or died before letting us run: nothing to report. */
static void child_wait_go(const struct sb_child *k, char want)
{
    char go;
    ssize_t n;
    while ((n = read(k->go_fd, &go, 1)) < 0 && errno == EINTR)
        ;
    if (n != 1 || go != want)
        _exit(125);
}

/* ---- the steps, in order (see contain_steps[]) ---------------------- */

/* Out of the caller's session and process group: a signal to those (a
 * terminal's ^C, a supervisor killing the group) is not for the sandbox. */
static int step_session(struct sb_child *k)
{
    (void)k;
    setsid();
    return 0;
}

/* A sandbox of a command dies with its caller (and with pid 1 the whole
 * pid namespace). The parent keeps the go pipe open until it reaped us:
 * with nothing to wait for on it, a hang-up now means it died before the
 * parent-death signal was armed. */
static int step_parent(struct sb_child *k)
{
    if (!k->c->die_with_parent)
        return 0;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    struct pollfd p = {k->go_fd, POLLIN, 0};
    if (k->map_self && poll(&p, 1, 0) != 0)
        _exit(125);
    return 0;
}

/* Hostname and loopback need only the capabilities we hold in our own
 * user namespace, not the id maps: done while the parent writes them. */
static int step_hostname(struct sb_child *k)
{
    if (k->c->namespaces && sethostname("airlock", 7) < 0)
        return al_error_set_errno(AL_EIO, errno, "sethostname");
    return 0;
}

/* After the go: the parent's network hook binds the proxies' listeners to
 * 127.0.0.1 in our namespace, and bringing lo up meanwhile races it (the
 * bind fails with EADDRNOTAVAIL while lo's addresses are being set up). */
static int step_loopback(struct sb_child *k)
{
    return k->c->namespaces ? sb_net_loopback_up() : 0;
}

static int step_id_maps(struct sb_child *k)
{
    if (!k->c->namespaces)
        return 0;
    if (k->map_self)
        return sb_userns_map_ids(0, k->outer_uid, k->outer_gid);
    child_wait_go(k, 'm');
    return 0;
}

/* The new root, built from the host's files (as root mapped to root for a
 * session that switches user later). */
static int step_root(struct sb_child *k)
{
    return k->c->namespaces ? sb_mounts_build_root(k->c->plan) : 0;
}

/* Built here, where the sandbox's paths resolve (in the weaker mode: the
 * host's, with the masked paths left out since no mount hides them). */
static int step_landlock_ruleset(struct sb_child *k)
{
    unsigned flags =
        (k->c->end != SB_END_INIT ? SB_LL_STDIO : 0) | (k->c->namespaces ? 0 : SB_LL_HIDE_MASKED);
    int err = sb_landlock_ruleset(&k->ruleset, k->c->plan, flags);
    if (err == AL_EUNSUPP && k->c->namespaces) {
        /* The mounts are the filesystem wall on their own; in the weaker
         * mode there is no other, so there it is an error. */
        al_log(AL_LOG_WARN, "%s: filesystem protected by mounts only", al_error_last());
        return 0;
    }
    return err;
}

/* In our cgroup now (or at birth): it becomes the root of our cgroup
 * namespace, so the sandbox sees no host cgroup path. */
static int step_cgroup_ns(struct sb_child *k)
{
    if (!k->map_self)
        child_wait_go(k, 'g');
    close(k->go_fd);
    k->go_fd = -1;
    if (k->c->namespaces && unshare(CLONE_NEWCGROUP) < 0)
        return al_error_set_errno(AL_EIO, errno, "cgroup namespace");
    return 0;
}

/* rlimits, no_new_privs, locked securebits, empty bounding and ambient
 * sets. Before the user switch: securebits need CAP_SETPCAP, and
 * SECBIT_NO_SETUID_FIXUP keeps our capabilities across it. */
static int step_privs_lock(struct sb_child *k)
{
    return sb_privs_lock(k->c->namespaces);
}

/* The sandbox's user: no supplementary group, SB_SANDBOX_UID/GID, for
 * good. Raw system calls: glibc's wrappers would try to change the ids of
 * every thread of the daemon it believes we still have (and take its
 * locks). Needs CAP_SETUID, so before the capabilities go. */
static int step_user(struct sb_child *k)
{
    if (!k->c->switch_user)
        return 0;
    if (syscall(SYS_setgroups, 0, NULL) < 0)
        return al_error_set_errno(AL_EIO, errno, "setgroups");
    if (syscall(SYS_setresgid, SB_SANDBOX_UID, SB_SANDBOX_UID, SB_SANDBOX_UID) < 0)
        return al_error_set_errno(AL_EIO, errno, "setresgid");
    if (syscall(SYS_setresuid, SB_SANDBOX_UID, SB_SANDBOX_UID, SB_SANDBOX_UID) < 0)
        return al_error_set_errno(AL_EIO, errno, "setresuid");
    return 0;
}

static int step_caps(struct sb_child *k)
{
    (void)k;
    return sb_privs_clear_caps();
}

/* Not dumpable: the sandbox's processes cannot open /proc/1/mem or attach
 * to us. (exec resets it: airlock-init sets it again.) */
static int step_not_dumpable(struct sb_child *k)
{
    (void)k;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return al_error_set_errno(AL_EIO, errno, "PR_SET_DUMPABLE");
    return 0;
}

/* Enforced here, after no_new_privs. airlock-init enforces the ruleset
 * itself right after its exec: its binary lies outside the sandbox's tree,
 * where Landlock would refuse the exec. */
static int step_landlock(struct sb_child *k)
{
    if (k->ruleset < 0 || k->c->end == SB_END_INIT)
        return 0;
    int err = sb_landlock_restrict(k->ruleset);
    close(k->ruleset);
    k->ruleset = -1;
    return err;
}

static int step_seccomp(struct sb_child *k)
{
    return sb_seccomp_apply(k->c->plan);
}

static const struct contain_step {
    const char *name;
    int (*run)(struct sb_child *k);
} contain_steps[] = {
    {"session", step_session},
    {"parent", step_parent},
    {"hostname", step_hostname},
    {"id maps", step_id_maps},
    {"root", step_root},
    {"landlock ruleset", step_landlock_ruleset},
    {"cgroup namespace", step_cgroup_ns},
    {"loopback", step_loopback},
    {"privileges", step_privs_lock},
    {"user", step_user},
    {"capabilities", step_caps},
    {"not dumpable", step_not_dumpable},
    {"landlock", step_landlock},
    {"seccomp", step_seccomp},
};

/* ---- the ends -------------------------------------------------------- */

/* Reports the failure of step `step` (its message, or its name when it
 * set none) on the status pipe and ends the child. */
static void __attribute__((noreturn)) child_fail(const struct sb_child *k, const char *step)
{
    const char *msg = al_error_last();
    char what[64];
    if (!msg[0]) {
        snprintf(what, sizeof(what), "%s failed", step);
        msg = what;
    }
    sb_status_write(k->status_fd, SB_SETUP_FAILED, 0, msg);
    _exit(125);
}

/* Makes `fd` survive exec. */
static int keep_across_exec(int fd)
{
    if (fd >= 0 && fcntl(fd, F_SETFD, 0) < 0)
        return al_error_set_errno(AL_EIO, errno, "fcntl");
    return 0;
}

/* airlock-init LISTEN_FD LANDLOCK_FD STATUS_FD DEFAULT_CWD, stdio on
 * /dev/null, through the descriptor opened on the host. */
static void __attribute__((noreturn)) end_init(struct sb_child *k)
{
    const struct sb_contain *c = k->c;
    if (keep_across_exec(c->listen_fd) < 0 || keep_across_exec(k->ruleset) < 0 ||
        keep_across_exec(k->status_fd) < 0)
        child_fail(k, "init descriptors");
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) {
        al_error_set_errno(AL_EIO, errno, "/dev/null");
        child_fail(k, "init stdio");
    }
    char lfd[16], rfd[16], sfd[16];
    snprintf(lfd, sizeof(lfd), "%d", c->listen_fd);
    snprintf(rfd, sizeof(rfd), "%d", k->ruleset);
    snprintf(sfd, sizeof(sfd), "%d", k->status_fd);
    char *argv[] = {"airlock-init", lfd, rfd, sfd, (char *)c->init_cwd, NULL};
    char home[PATH_MAX + 8];
    snprintf(home, sizeof(home), "HOME=%s", c->init_cwd);
    char *envp[] = {home, "PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
                    NULL};
    syscall(SYS_execveat, c->init_fd, "", argv, envp, AT_EMPTY_PATH);
    al_error_set_errno(AL_EIO, errno, "exec %s", c->init_path ? c->init_path : "airlock-init");
    child_fail(k, "exec");
}

/* The child: every step once, in order, then the end. */
static void __attribute__((noreturn)) contain_child(struct sb_child *k)
{
    al_error_clear();
    for (size_t i = 0; i < sizeof(contain_steps) / sizeof(*contain_steps); i++) {
        if (contain_steps[i].run(k) < 0)
            child_fail(k, contain_steps[i].name);
    }
    switch (k->c->end) {
    case SB_END_INIT:
        end_init(k);
    case SB_END_EXEC:
        sb_exec_command(k->c->cfg, k->status_fd);
    case SB_END_SUPERVISE:
    default:
        sb_init_supervise(k->c->cfg, k->status_fd);
    }
}

/* ---- the parent side ------------------------------------------------- */

/* Closes every descriptor but 0-2 and the `n` in `keep` (sorted in place).
 * Async-signal-safe: for a freshly cloned child. */
static void close_fds_except(int *keep, size_t n)
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

/* clone3()'s arguments (linux/sched.h, not included: it clashes with
 * sched.h). */
struct sb_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
};
#define SB_CLONE_INTO_CGROUP 0x200000000ULL

/* Clones the child (fork-like: same stack, copied memory) with `flags`.
 * With `cgroup_fd` >= 0, straight into that v2 cgroup (clone3): no
 * migration afterwards, and the new namespaces are charged to the sandbox,
 * not to the caller. *in_cgroup says whether that happened. */
static pid_t contain_clone(uint64_t flags, int cgroup_fd, int *in_cgroup)
{
    *in_cgroup = 0;
    if (cgroup_fd >= 0) {
        struct sb_clone_args args = {.flags = flags | SB_CLONE_INTO_CGROUP,
                                     .exit_signal = SIGCHLD,
                                     .cgroup = (uint64_t)cgroup_fd};
        long pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid >= 0) {
            *in_cgroup = 1;
            return (pid_t)pid;
        }
        if (errno != ENOSYS && errno != E2BIG && errno != EINVAL && errno != EOPNOTSUPP)
            return -1;
    }
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
}

/* When the child already reported a failure on the status pipe (`fd`),
 * makes its message the error; never waits. */
static void child_message(int fd)
{
    struct sb_status st;
    if (sb_status_read(fd, &st, 0) == 1 && st.message[0])
        al_error_set(AL_ERROR, "sandbox setup: %s", st.message);
}

static int go_write(int fd, const char *byte)
{
    if (write(fd, byte, 1) != 1)
        return al_error_set_errno(AL_EIO, errno, "start sandbox");
    return 0;
}

int sb_contain_spawn(struct sb_spawned *out, const struct sb_contain *c)
{
    int go[2] = {-1, -1}, status[2] = {-1, -1}, cg_fd = -1, err = 0;
    pid_t pid = -1;
    out->pid = -1;
    out->status_fd = -1;
    out->go_fd = -1;
    if (pipe2(go, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "pipe");
        goto out;
    }
    struct sb_child k = {.c = c,
                         .go_fd = go[0],
                         .status_fd = status[1],
                         .outer_uid = getuid(),
                         .outer_gid = getgid(),
                         .ruleset = -1};
    /* With nothing to do from outside (our own ids mapped 1:1, no cgroup to
     * join, no network hook; or no namespace at all), the child starts
     * without a round trip to us. */
    k.map_self = !c->namespaces || (!c->switch_user && c->cg->version == 0 && !c->on_netns);
    if (c->namespaces && c->cg->version == 2)
        cg_fd = open(c->cg->paths[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int keep[5] = {go[0], status[1], -1, -1, -1};
    size_t n_keep = 2;
    if (c->end != SB_END_INIT && c->cfg->pty_stdio)
        keep[n_keep++] = c->cfg->pty_sock;
    if (c->end == SB_END_INIT) {
        keep[n_keep++] = c->listen_fd;
        keep[n_keep++] = c->init_fd;
    }

    /* No handler of the caller's may run in the child. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int in_cgroup;
    pid = contain_clone(c->namespaces ? SB_NS_FLAGS : 0, cg_fd, &in_cgroup);
    if (pid == 0) {
        close_fds_except(keep, n_keep);
        contain_child(&k);
    }
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        err = c->namespaces
                  ? al_error_set_errno(AL_EUNSUPP, clone_errno, "cannot create namespaces")
                  : al_error_set_errno(AL_EIO, clone_errno, "fork");
        goto out;
    }
    close(go[0]);
    go[0] = -1;
    close(status[1]);
    status[1] = -1;

    /* From outside: id maps, cgroup membership, network hook; the child
     * builds its root between the two go bytes. */
    if (!k.map_self) {
        err = c->switch_user ? sb_userns_map_user(pid, c->host_uid, c->host_gid)
                             : sb_userns_map_ids(pid, k.outer_uid, k.outer_gid);
        if (err < 0) {
            child_message(status[0]); /* the child's failure, when it is the cause */
            goto out;
        }
        if ((err = go_write(go[1], "m")) < 0)
            goto out;
        if (!in_cgroup && (err = sb_cgroup_add(c->cg, pid)) < 0)
            goto out;
        if (c->on_netns && (err = sb_net_hook(pid, c->on_netns, c->netns_payload)) < 0)
            goto out;
        if ((err = go_write(go[1], "g")) < 0)
            goto out;
    }
    out->pid = pid;
    out->status_fd = status[0];
    out->go_fd = go[1];
    pid = -1;
    status[0] = go[1] = -1;

out:
    if (pid > 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
            ;
    }
    int fds[] = {cg_fd, go[0], go[1], status[0], status[1]};
    for (size_t i = 0; i < sizeof(fds) / sizeof(*fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return err;
}
