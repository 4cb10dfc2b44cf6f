/* Fixtures for the long-lived sandbox tests; see testlib.h. */
#include "testlib.h"

#include "airlock/error.h"
#include "airlock/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static _Atomic uint32_t next_req = 1;
static pthread_mutex_t track_lock = PTHREAD_MUTEX_INITIALIZER;

#define MAX_TRACKED 16
static struct sbs_record tracked[MAX_TRACKED];
static size_t n_tracked;
static pid_t tracker_pid;

static void destroy_tracked(void)
{
    if (getpid() != tracker_pid)
        return;
    for (size_t i = 0; i < n_tracked; i++)
        sbs_destroy_record(&tracked[i]);
}

void fixture_track(const struct sbs_record *rec)
{
    pthread_mutex_lock(&track_lock);
    if (n_tracked == 0) {
        tracker_pid = getpid();
        atexit(destroy_tracked);
    }
    if (n_tracked < MAX_TRACKED)
        tracked[n_tracked++] = *rec;
    pthread_mutex_unlock(&track_lock);
}

void fixture_init(struct fixture *f, const char *init_path, uid_t host_uid, int n)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->base, sizeof(f->base), "/var/tmp/sbs-test-%d-%d", (int)getpid(), n);
    snprintf(f->ws, sizeof(f->ws), "%s/ws", f->base);
    snprintf(f->state, sizeof(f->state), "%s/state", f->base);
    snprintf(f->sock, sizeof(f->sock), "%s/ctl.sock", f->state);
    snprintf(f->cgname, sizeof(f->cgname), "sbs-test-%d-%d", (int)getpid(), n);
    CHECK(mkdir(f->base, 0755) == 0);
    CHECK(mkdir(f->ws, 0700) == 0);
    CHECK(mkdir(f->state, 0700) == 0);
    if (host_uid)
        CHECK(chown(f->ws, host_uid, host_uid) == 0);
    al_policy_init(&f->pol);
    CHECK(sb_policy_add_defaults(&f->pol, f->ws, NULL) == 0);
    f->spec = (struct sbs_spec){.policy = &f->pol,
                                .workspace = f->ws,
                                .workspace_mount = "/workspace",
                                .control_path = f->sock,
                                .cgroup_name = f->cgname,
                                .init_path = init_path,
                                .host_uid = host_uid,
                                .host_gid = host_uid};
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void fixture_free(struct fixture *f)
{
    nftw(f->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    al_policy_free(&f->pol);
}

int wait_msg(struct sbs_conn *c, int type, uint32_t id, struct sbs_msg *out)
{
    for (;;) {
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, 30000) <= 0) {
            fprintf(stderr, "no message from init\n");
            return -1;
        }
        int err = sbs_recv(c, out);
        if (err == AL_EAGAIN)
            continue;
        if (err < 0) {
            fprintf(stderr, "sbs_recv: %s\n", al_error_last());
            return -1;
        }
        if (type == SBS_MSG_EXITED && out->type == SBS_MSG_EXITED && out->proc == id)
            return 0;
        if (type != SBS_MSG_EXITED && out->type != SBS_MSG_EXITED && out->req == id)
            return 0;
    }
}

int run(struct sbs_conn *c, char *const *argv, char *const *envp, const char *cwd,
        uint32_t timeout_s, struct run_result *r)
{
    static char *const default_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
    memset(r, 0, sizeof(*r));
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(null >= 0);
    struct sbs_cmd cmd = {.argv = argv,
                          .envp = envp ? envp : default_env,
                          .cwd = cwd,
                          .stdio = {null, p[1], p[1]},
                          .timeout_s = timeout_s};
    uint32_t req = next_req++;
    int err = sbs_spawn_send(c, req, &cmd);
    close(null);
    close(p[1]);
    if (err < 0) {
        fprintf(stderr, "sbs_spawn_send: %s\n", al_error_last());
        close(p[0]);
        return -1;
    }
    struct sbs_msg m;
    if (wait_msg(c, SBS_MSG_SPAWNED, req, &m) < 0) {
        close(p[0]);
        return -1;
    }
    if (m.type == SBS_MSG_SPAWN_FAILED) {
        r->spawn_err = m.err;
        close(p[0]);
        return 0;
    }
    ssize_t n;
    while ((n = read(p[0], r->out + r->out_len, sizeof(r->out) - 1 - r->out_len)) > 0)
        r->out_len += (size_t)n;
    r->out[r->out_len] = '\0';
    close(p[0]);
    if (wait_msg(c, SBS_MSG_EXITED, m.proc, &m) < 0)
        return -1;
    r->status = m.status;
    r->timed_out = m.timed_out;
    return 0;
}

int run_sh(struct sbs_conn *c, const char *script, struct run_result *out)
{
    struct run_result local;
    struct run_result *r = out ? out : &local;
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    if (run(c, argv, NULL, NULL, 0, r) < 0 || r->spawn_err)
        return -1;
    if (r->out_len && !out)
        fprintf(stderr, "%s", r->out);
    return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128 + WTERMSIG(r->status);
}
