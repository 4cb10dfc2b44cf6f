/* sbs_start(): builds a long-lived sandbox whose pid 1 is airlock-init.
 *
 * The caller (airlockd, threaded) prepares what must be done from outside:
 * the plan, the cgroup, the control socket, the uid map. The clone's pid 1
 * builds the root, prepares the Landlock ruleset, switches to the sandbox's
 * user, drops every privilege, loads seccomp and execs airlock-init, which
 * enforces Landlock and serves the control socket. Nothing ties the
 * sandbox's life to the caller's: no janitor, no parent-death signal. */
#include "sandbox_int.h"
#include "sbs_int.h"
#include "sbs_proto.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SBS_NS_FLAGS                                                                               \
    (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)

/* Paths a spec may ask to hide. */
#define SBS_MAX_HIDE 16

/* How long setup (root, Landlock, exec of init) may take. */
#define SBS_SETUP_TIMEOUT_MS 10000

/* What the clone's pid 1 needs; it lives on the caller's stack. */
struct sbs_child {
    const struct sbs_spec *spec;
    const struct sb_plan *plan;
    int go_fd;     /* read: 'm' when the parent wrote the id maps, then 'g'
                      when it joined us to the cgroup (meanwhile we build
                      the root: the cgroup move may wait for an RCU grace
                      period, milliseconds) */
    int status_fd; /* write: an error message; EOF alone means init serves */
    int listen_fd; /* the control socket, handed to init */
    int init_fd;   /* O_PATH of the airlock-init executable */
    int map_user;  /* become SB_SANDBOX_UID (mapped to spec->host_uid) */
};

/* Reports `err`'s message on the status pipe and ends the child. */
static void __attribute__((noreturn)) child_fail(const struct sbs_child *a)
{
    const char *msg = al_error_last();
    size_t n = strlen(msg);
    ssize_t w = write(a->status_fd, msg[0] ? msg : "setup failed", msg[0] ? n : 12);
    (void)w;
    _exit(125);
}

/* The sandbox's user: no supplementary group, SB_SANDBOX_UID/GID. Raw
 * system calls: glibc's wrappers would try to change the ids of every
 * thread of the daemon it believes we still have (and take its locks). */
static int child_become_user(void)
{
    if (syscall(SYS_setgroups, 0, NULL) < 0)
        return al_error_set_errno(AL_EIO, errno, "setgroups");
    if (syscall(SYS_setresgid, SB_SANDBOX_UID, SB_SANDBOX_UID, SB_SANDBOX_UID) < 0)
        return al_error_set_errno(AL_EIO, errno, "setresgid");
    if (syscall(SYS_setresuid, SB_SANDBOX_UID, SB_SANDBOX_UID, SB_SANDBOX_UID) < 0)
        return al_error_set_errno(AL_EIO, errno, "setresuid");
    return 0;
}

/* Makes `fd` survive exec. */
static int keep_across_exec(int fd)
{
    if (fd >= 0 && fcntl(fd, F_SETFD, 0) < 0)
        return al_error_set_errno(AL_EIO, errno, "fcntl");
    return 0;
}

/* The steps of pid 1 before it becomes airlock-init. Never returns. */
static int sbs_child_main(void *arg)
{
    const struct sbs_child *a = arg;
    char go;
    int err, ruleset = -1;
    /* Out of the daemon's session and process group: a signal to those
     * (a terminal's ^C, a supervisor killing the group) is not for us. */
    setsid();
    /* Our own namespaces' hostname and loopback need only the capabilities
     * we hold in our user namespace, not the id maps: done while the
     * parent writes them. */
    if (sethostname("airlock", 7) < 0) {
        al_error_set_errno(AL_EIO, errno, "sethostname");
        child_fail(a);
    }
    if (sb_net_loopback_up() < 0)
        child_fail(a);
    /* EOF: the parent failed (or died) before letting us run. The root is
     * built from the host's files, as root mapped to root. */
    if (read(a->go_fd, &go, 1) != 1 || go != 'm')
        _exit(125);
    if ((err = sb_mounts_build_root(a->plan)) < 0)
        child_fail(a);
    /* Built here, where the sandbox's paths resolve; enforced by init after
     * its exec (the init binary itself lies outside the sandbox's tree). */
    err = sb_landlock_prepare(&ruleset, a->plan);
    if (err == AL_EUNSUPP)
        al_log(AL_LOG_WARN, "%s: filesystem protected by mounts only", al_error_last());
    else if (err < 0)
        child_fail(a);
    /* In our cgroup now: it becomes the root of our cgroup namespace. */
    if (read(a->go_fd, &go, 1) != 1 || go != 'g')
        _exit(125);
    close(a->go_fd);
    if (unshare(CLONE_NEWCGROUP) < 0) {
        al_error_set_errno(AL_EIO, errno, "cgroup namespace");
        child_fail(a);
    }
    /* The user switch needs CAP_SETUID, so before the capabilities go;
     * the securebits set first keep them across it. */
    if (sb_privs_lock() < 0 || (a->map_user && child_become_user() < 0) ||
        sb_privs_clear_caps() < 0 || sb_seccomp_apply(a->plan) < 0)
        child_fail(a);
    if (keep_across_exec(a->listen_fd) < 0 || keep_across_exec(ruleset) < 0 ||
        keep_across_exec(a->status_fd) < 0)
        child_fail(a);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) {
        al_error_set_errno(AL_EIO, errno, "/dev/null");
        child_fail(a);
    }
    char lfd[16], rfd[16], sfd[16];
    snprintf(lfd, sizeof(lfd), "%d", a->listen_fd);
    snprintf(rfd, sizeof(rfd), "%d", ruleset);
    snprintf(sfd, sizeof(sfd), "%d", a->status_fd);
    const char *ws = a->spec->workspace_mount;
    char *argv[] = {"airlock-init", lfd, rfd, sfd, (char *)ws, NULL};
    char home[PATH_MAX + 8];
    snprintf(home, sizeof(home), "HOME=%s", ws);
    char *envp[] = {home, "PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
                    NULL};
    syscall(SYS_execveat, a->init_fd, "", argv, envp, AT_EMPTY_PATH);
    al_error_set_errno(AL_EIO, errno, "exec %s", a->spec->init_path);
    child_fail(a);
}

/* clone3()'s arguments (linux/sched.h, not included: it clashes with
 * sched.h). */
struct sbs_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
};
#define SBS_CLONE_INTO_CGROUP 0x200000000ULL

/* Clones the sandbox's pid 1 (fork-like: same stack, copied memory). With
 * `cgroup_fd` >= 0, straight into that v2 cgroup (clone3): no migration
 * afterwards, and the new namespaces are charged to the sandbox, not to
 * the caller. *in_cgroup says whether that happened. */
static pid_t sbs_clone(int cgroup_fd, int *in_cgroup)
{
    *in_cgroup = 0;
    if (cgroup_fd >= 0) {
        struct sbs_clone_args args = {.flags = SBS_NS_FLAGS | SBS_CLONE_INTO_CGROUP,
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
    return (pid_t)syscall(SYS_clone, SBS_NS_FLAGS | SIGCHLD, NULL, NULL, NULL, 0);
}

/* The listening control socket at `path`, mode 0600. AL_EEXISTS when the
 * path exists (a stale socket is the caller's to remove). */
static int control_listen(int *out_fd, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return al_error_set(AL_ETOOBIG, "control socket path too long: %s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cleanup_fd int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "control socket");
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return al_error_set_errno(errno == EADDRINUSE ? AL_EEXISTS : AL_EIO, errno, "bind %s",
                                  path);
    if (chmod(path, 0600) < 0 || listen(fd, 8) < 0) {
        int e = errno;
        unlink(path);
        return al_error_set_errno(AL_EIO, e, "control socket %s", path);
    }
    *out_fd = steal_fd(&fd);
    return 0;
}

/* Waits for the status pipe to close: 0 when init serves, else the child's
 * message as the error. */
static int wait_ready(int fd)
{
    char msg[512];
    size_t len = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, SBS_SETUP_TIMEOUT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return al_error_set(AL_ETIMEOUT, "sandbox setup did not finish");
        ssize_t n = read(fd, msg + len, sizeof(msg) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof(msg) - 1)
            break;
    }
    if (len == 0)
        return 0;
    msg[len] = '\0';
    return al_error_set(AL_ERROR, "sandbox setup: %s", msg);
}

/* When the child already reported a failure on the status pipe (`fd`),
 * makes its message the error; never waits. */
static void child_message(int fd)
{
    char msg[512];
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) != 1)
        return;
    ssize_t n = read(fd, msg, sizeof(msg) - 1);
    if (n <= 0)
        return;
    msg[n] = '\0';
    al_error_set(AL_ERROR, "sandbox setup: %s", msg);
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int spec_check(const struct sbs_spec *s)
{
    if (!s->policy || !s->workspace || !s->workspace_mount || !s->control_path || !s->cgroup_name ||
        !s->init_path)
        return al_error_set(AL_EINVAL, "sbs_start: incomplete spec");
    if (strlen(s->control_path) >= sizeof(((struct sbs_record *)0)->control_path))
        return al_error_set(AL_ETOOBIG, "control path too long");
    if (s->host_uid == 0 && s->host_gid != 0)
        return al_error_set(AL_EINVAL, "sbs_start: host_gid without host_uid");
    return 0;
}

static int record_fill(struct sbs_record *rec, pid_t pid, const struct sbs_spec *spec,
                       const struct sb_cgroup *cg)
{
    memset(rec, 0, sizeof(*rec));
    rec->init_pid = pid;
    int err = sbs_proc_start_time(pid, &rec->init_start_time);
    if (err < 0)
        return al_error_set(AL_EIO, "sandbox init %d is gone", (int)pid);
    snprintf(rec->control_path, sizeof(rec->control_path), "%s", spec->control_path);
    rec->cgroup_version = cg->version;
    for (int i = 0; i < 3; i++) {
        if (!cg->paths[i])
            continue;
        if (strlen(cg->paths[i]) >= sizeof(rec->cgroup_paths[i]))
            return al_error_set(AL_ETOOBIG, "cgroup path too long: %s", cg->paths[i]);
        snprintf(rec->cgroup_paths[i], sizeof(rec->cgroup_paths[i]), "%s", cg->paths[i]);
    }
    return 0;
}

int sbs_start(struct sbs_conn *out, const struct sbs_spec *spec)
{
    struct sb_plan plan = {0};
    struct sb_cgroup cg = {0};
    int listen_fd = -1, init_fd = -1, conn_fd = -1, cg_fd = -1, go[2] = {-1, -1},
        status[2] = {-1, -1};
    int err, socket_made = 0;
    pid_t pid = -1;
    sigset_t all, old;
    memset(out, 0, sizeof(*out));
    out->fd = -1;

    if ((err = spec_check(spec)) < 0)
        return err;
    /* Step times for the debug log: plan, cgroup, clone, id maps and
     * cgroup move, the child's setup and init's start, HELLO. */
    double t[7] = {mono_ms()};
    struct sb_config cfg = {.policy = spec->policy,
                            .cwd = spec->workspace,
                            .on_netns = spec->on_netns,
                            .netns_payload = spec->netns_payload,
                            .tcp_connect_ports = spec->tcp_connect_ports,
                            .n_tcp_connect_ports = spec->n_tcp_connect_ports,
                            .ro_paths = spec->ro_paths,
                            .n_ro_paths = spec->n_ro_paths,
                            .memory_mb = spec->memory_mb,
                            .pids = spec->pids,
                            .cpus = spec->cpus};
    /* The state dir holding the control socket does not exist inside. */
    char state_dir[PATH_MAX];
    snprintf(state_dir, sizeof(state_dir), "%s", spec->control_path);
    const char *hide[SBS_MAX_HIDE + 1] = {dirname(state_dir)};
    if (spec->n_hide > SBS_MAX_HIDE) {
        err = al_error_set(AL_ETOOBIG, "more than %d paths to hide", SBS_MAX_HIDE);
        goto out;
    }
    for (size_t i = 0; i < spec->n_hide; i++)
        hide[i + 1] = spec->hide[i];
    struct sb_plan_opts opts = {.workspace_mount = spec->workspace_mount,
                                .rootfs = spec->rootfs,
                                .hide = hide,
                                .n_hide = spec->n_hide + 1};
    if ((err = sb_plan_build_ex(&plan, &cfg, &opts)) < 0)
        goto out;
    t[1] = mono_ms();
    if ((err = sb_cgroup_create_named(&cg, &cfg, spec->cgroup_name)) < 0)
        goto out;
    t[2] = mono_ms();
    if ((err = control_listen(&listen_fd, spec->control_path)) < 0)
        goto out;
    socket_made = 1;
    /* Connected now, accepted by init before it reports ready: its HELLO
     * is waiting when the status pipe closes. */
    if ((err = sbs_control_connect(&conn_fd, spec->control_path)) < 0)
        goto out;
    init_fd = open(spec->init_path, O_PATH | O_CLOEXEC);
    if (init_fd < 0) {
        err = al_error_set_errno(AL_ENOTFOUND, errno, "airlock-init %s", spec->init_path);
        goto out;
    }
    if (pipe2(go, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "pipe");
        goto out;
    }

    struct sbs_child args = {.spec = spec,
                             .plan = &plan,
                             .go_fd = go[0],
                             .status_fd = status[1],
                             .listen_fd = listen_fd,
                             .init_fd = init_fd,
                             .map_user = spec->host_uid != 0};
    uid_t outer_uid = getuid();
    gid_t outer_gid = getgid();
    if (cg.version == 2)
        cg_fd = open(cg.paths[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* No handler of the caller's may run in the child. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int in_cgroup;
    pid = sbs_clone(cg_fd, &in_cgroup);
    if (pid == 0) {
        int keep[4] = {go[0], status[1], listen_fd, init_fd};
        sb_close_fds_except(keep, 4);
        _exit(sbs_child_main(&args));
    }
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    t[3] = mono_ms();
    if (pid < 0) {
        err = al_error_set_errno(AL_EUNSUPP, clone_errno, "cannot create namespaces");
        goto out;
    }
    close(go[0]);
    go[0] = -1;
    close(status[1]);
    status[1] = -1;

    if (spec->host_uid != 0)
        err = sb_userns_map_user(pid, spec->host_uid, spec->host_gid);
    else
        err = sb_userns_map_ids(pid, outer_uid, outer_gid);
    if (err < 0) {
        child_message(status[0]); /* the child's failure, when it is the cause */
        goto out;
    }
    if (write(go[1], "m", 1) != 1) {
        err = al_error_set_errno(AL_EIO, errno, "start sandbox");
        goto out;
    }
    if (!in_cgroup && (err = sb_cgroup_add(&cg, pid)) < 0)
        goto out;
    if (spec->on_netns && (err = sb_net_hook(pid, spec->on_netns, spec->netns_payload)) < 0)
        goto out;
    if (write(go[1], "g", 1) != 1) {
        err = al_error_set_errno(AL_EIO, errno, "start sandbox");
        goto out;
    }
    t[4] = mono_ms();
    if ((err = wait_ready(status[0])) < 0)
        goto out;
    t[5] = mono_ms();
    struct sbs_record rec;
    if ((err = record_fill(&rec, pid, spec, &cg)) < 0)
        goto out;
    err = sbs_conn_open(out, conn_fd, &rec, SBS_SETUP_TIMEOUT_MS);
    conn_fd = -1;
    t[6] = mono_ms();
    al_log(AL_LOG_DEBUG,
           "sbs_start %s: %.2f ms: plan %.2f, cgroup %.2f, clone %.2f, maps+cgroup move %.2f, "
           "setup+init exec %.2f, hello %.2f",
           spec->cgroup_name, t[6] - t[0], t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3],
           t[5] - t[4], t[6] - t[5]);

out:
    if (err < 0 && pid > 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
            ;
    }
    if (err < 0) {
        sb_cgroup_destroy(&cg);
        sb_plan_remove_placeholders(&plan);
        if (socket_made)
            unlink(spec->control_path);
    } else {
        /* Kept for the sandbox's life; the record names them. */
        for (int i = 0; i < 3; i++)
            free(cg.paths[i]);
        free(cg.oom_file);
    }
    int fds[] = {listen_fd, init_fd, conn_fd, cg_fd, go[0], go[1], status[0], status[1]};
    for (size_t i = 0; i < sizeof(fds) / sizeof(*fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* Placeholders (an empty .git/hooks) stay: they are mount points in the
     * sandbox, and removing one would lift the protection there. */
    sb_plan_free(&plan);
    return err;
}
