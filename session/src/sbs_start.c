/* sbs_start(): builds a long-lived sandbox whose pid 1 is airlock-init.
 *
 * The caller (airlockd, threaded) prepares what must be done from outside:
 * the plan, the cgroup, the control socket. contain.c builds the sandbox
 * (the same list of steps as every sandbox: root, Landlock ruleset,
 * privileges, the switch to the sandbox's user, seccomp) and ends it in an
 * exec of airlock-init, which enforces Landlock and serves the control
 * socket. Nothing ties the sandbox's life to the caller's: no janitor, no
 * parent-death signal. */
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

/* Paths a spec may ask to hide. */
#define SBS_MAX_HIDE 16

/* How long setup (root, Landlock, exec of init) may take. */
#define SBS_SETUP_TIMEOUT_MS 10000

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

/* Waits for the status pipe to close: 0 when init serves, else the
 * child's message as the error. */
static int wait_ready(int fd)
{
    struct sb_status st;
    int r = sb_status_read(fd, &st, SBS_SETUP_TIMEOUT_MS);
    if (r == AL_ETIMEOUT)
        return al_error_set(AL_ETIMEOUT, "sandbox setup did not finish");
    if (r < 0)
        return r;
    if (r == 0)
        return 0;
    return al_error_set(AL_ERROR, "sandbox setup: %s", st.message[0] ? st.message : "failed");
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
    struct sb_spawned sp = {.pid = -1, .status_fd = -1, .go_fd = -1};
    int listen_fd = -1, init_fd = -1, conn_fd = -1;
    int err, socket_made = 0;
    memset(out, 0, sizeof(*out));
    out->fd = -1;

    if ((err = spec_check(spec)) < 0)
        return err;
    /* Step times for the debug log: plan, cgroup, spawn (clone, id maps,
     * cgroup move), the child's setup and init's start, HELLO. */
    double t[6] = {mono_ms()};
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
                            .cpus = spec->cpus,
                            .file_binds = spec->file_binds,
                            .n_file_binds = spec->n_file_binds};
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

    struct sb_contain c = {.cfg = &cfg,
                           .plan = &plan,
                           .cg = &cg,
                           .end = SB_END_INIT,
                           .namespaces = 1,
                           .switch_user = spec->host_uid != 0,
                           .host_uid = spec->host_uid,
                           .host_gid = spec->host_gid,
                           .die_with_parent = 0,
                           .on_netns = spec->on_netns,
                           .netns_payload = spec->netns_payload,
                           .init_fd = init_fd,
                           .listen_fd = listen_fd,
                           .init_cwd = spec->workspace_mount,
                           .init_path = spec->init_path};
    if ((err = sb_contain_spawn(&sp, &c)) < 0)
        goto out;
    t[3] = mono_ms();
    if ((err = wait_ready(sp.status_fd)) < 0)
        goto out;
    t[4] = mono_ms();
    struct sbs_record rec;
    if ((err = record_fill(&rec, sp.pid, spec, &cg)) < 0)
        goto out;
    err = sbs_conn_open(out, conn_fd, &rec, SBS_SETUP_TIMEOUT_MS);
    conn_fd = -1;
    t[5] = mono_ms();
    al_log(AL_LOG_DEBUG,
           "sbs_start %s: %.2f ms: plan %.2f, cgroup %.2f, spawn (clone, id maps, cgroup move) "
           "%.2f, setup+init exec %.2f, hello %.2f",
           spec->cgroup_name, t[5] - t[0], t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3],
           t[5] - t[4]);

out:
    if (err < 0 && sp.pid > 0) {
        kill(sp.pid, SIGKILL);
        while (waitpid(sp.pid, NULL, __WALL) < 0 && errno == EINTR)
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
    int fds[] = {listen_fd, init_fd, conn_fd, sp.status_fd, sp.go_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(*fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* Placeholders (an empty .git/hooks) stay: they are mount points in the
     * sandbox, and removing one would lift the protection there. */
    sb_plan_free(&plan);
    return err;
}
