/* Running a command in a session's sandbox (exec.h): the process, its
 * stdio, SPAWN and init's answer; ald_exec_wait for a command airlockd runs
 * itself (a repository's clone). */
#include "airlockd/core/exec.h"

#include "airlockd/core/control.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/process.h"
#include "airlockd/core/session.h"
#include "airlockd/core/tty.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/proxy_env.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SPAWN_REPLY_TIMEOUT_S 30
/* How long a foreground command that has printed nothing may run before
 * its response starts (see ald_exec_wait_quick_exit) */
#define QUICK_EXIT_MS 20
#define DEFAULT_PATH  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The command's environment: defaults, then the credentials' (sentinels
 * and the session CA's trust variables), then the session's, then the
 * request's. A repository session (git_env set) has `helper_dir` (where
 * git-remote-airlock is bound, "" = none) first on its default PATH. The
 * caller frees each string and the array. */
static char **build_env(json_t *git_env, const char *helper_dir, json_t *cred_env,
                        json_t *session_env, json_t *req_env, int proxied)
{
    static const char *const defaults[] = {
        ("PATH=" DEFAULT_PATH),
        "HOME=/workspace",
        "LANG=C.UTF-8",
        "TERM=dumb",
    };
    size_t ndef = sizeof(defaults) / sizeof(*defaults);
    size_t nproxy = proxied ? AL_PROXY_ENV_LEN : 0;
    size_t max = ndef + nproxy + json_object_size(git_env) + json_object_size(cred_env) +
                 json_object_size(session_env) + json_object_size(req_env) + 1;
    char **env = calloc(max, sizeof(char *));
    if (!env)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < ndef; i++)
        env[n++] = strdup(defaults[i]);
    if (git_env && helper_dir[0]) {
        free(env[0]);
        if (asprintf(&env[0], "PATH=%s:" DEFAULT_PATH, helper_dir) < 0)
            env[0] = NULL;
    }
    /* the session's netproxy on the sandbox's loopback (as `airlock run`) */
    for (size_t i = 0; i < nproxy; i++)
        env[n++] = strdup(al_proxy_env[i]);
    json_t *layers[4] = {git_env, cred_env, session_env, req_env};
    for (int l = 0; l < 4; l++) {
        const char *k;
        json_t *v;
        json_object_foreach(layers[l], k, v)
        {
            size_t klen = strlen(k);
            /* replace an earlier value of the same name */
            size_t slot = n;
            for (size_t i = 0; i < n; i++)
                if (env[i] && strncmp(env[i], k, klen) == 0 && env[i][klen] == '=')
                    slot = i;
            char *kv = NULL;
            if (asprintf(&kv, "%s=%s", k, json_string_value(v)) < 0)
                kv = NULL;
            if (slot == n)
                env[n++] = kv;
            else {
                free(env[slot]);
                env[slot] = kv;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!env[i]) {
            for (size_t k = 0; k < n; k++)
                free(env[k]);
            free(env);
            return NULL;
        }
    }
    return env;
}

static void free_env(char **env)
{
    if (!env)
        return;
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

/* A readable fd holding `data` (for stdin given in the body). */
static int memfd_with(const unsigned char *data, size_t len)
{
    int fd = memfd_create("airlock-stdin", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A new process of `s` in state spawning: references: running + caller's;
 * the process holds one on the session. */
struct ald_proc *ald_exec_proc_new(struct ald *d, struct ald_session *s,
                                   const struct ald_exec_req *req)
{
    struct ald_proc *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->exit_efd < 0) {
        free(p);
        return NULL;
    }
    p->s = s;
    p->stdin_fd = -1;
    p->tty_fd = -1;
    p->tty = req->tty;
    p->code = -1;
    p->argv = json_incref(req->argv_json);
    p->background = req->background;
    p->started_ms = ald_now_ms();
    p->start_mono = ald_mono_ms();
    p->refs = 2;
    pthread_mutex_lock(&d->lock);
    p->num = s->procs.next++;
    p->next = s->procs.list;
    s->procs.list = p;
    s->refs++;
    pthread_mutex_unlock(&d->lock);
    return p;
}

void ald_exec_stdio_close(struct ald_exec_stdio *io)
{
    for (int i = 0; i < 4; i++)
        if (io->child[i] >= 0 && (i != 2 || io->child[2] != io->child[1]))
            close(io->child[i]);
    io->child[0] = io->child[1] = io->child[2] = io->child[3] = -1;
}

int ald_exec_stdio_setup(struct ald *d, struct ald_session *s, struct ald_proc *p,
                         const struct ald_exec_req *req, struct ald_exec_stdio *io)
{
    io->child[0] = io->child[1] = io->child[2] = io->child[3] = -1;
    io->out_r = io->err_r = io->in_w = io->watch = -1;
    int pfd[2];
    if (req->tty)
        return ald_tty_stdio_setup(s, io);
    if (req->has_stdin) {
        io->child[0] = memfd_with(req->stdin_data, req->stdin_len);
    } else if (!req->background) {
        io->child[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    } else if (pipe2(pfd, O_CLOEXEC) == 0) {
        io->child[0] = pfd[0];
        io->in_w = pfd[1];
        fcntl(io->in_w, F_SETFL, O_NONBLOCK);
    }
    if (io->child[0] < 0)
        return al_error_set_errno(AL_EIO, errno, "stdin");
    if (!req->background) {
        if (pipe2(pfd, O_CLOEXEC) < 0)
            return al_error_set_errno(AL_EIO, errno, "pipe");
        io->out_r = pfd[0];
        io->child[1] = pfd[1];
        if (req->merge_stderr) {
            io->child[2] = io->child[1];
        } else {
            if (pipe2(pfd, O_CLOEXEC) < 0)
                return al_error_set_errno(AL_EIO, errno, "pipe");
            io->err_r = pfd[0];
            io->child[2] = pfd[1];
        }
        fcntl(io->out_r, F_SETFL, O_NONBLOCK);
        if (io->err_r >= 0)
            fcntl(io->err_r, F_SETFL, O_NONBLOCK);
        /* The streaming thread hears SPAWNED and EXITED first-hand on a
         * watch socket (no hop through the control thread). Without one
         * (an init of protocol v1) it waits for the control thread. */
        pthread_mutex_lock(&s->sandbox.send_lock);
        int can_watch = s->sandbox.open && sbs_conn_can_watch(&s->sandbox.conn);
        pthread_mutex_unlock(&s->sandbox.send_lock);
        if (can_watch && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pfd) == 0) {
            io->watch = pfd[0];
            io->child[3] = pfd[1];
        }
        return 0;
    }
    for (int k = 1; k <= 2; k++) {
        if (k == 2 && req->merge_stderr) {
            io->child[2] = io->child[1];
            break;
        }
        char path[PATH_MAX];
        ald_proc_out_path(d, s->id, p->num, k, path, sizeof(path));
        io->child[k] =
            open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_EXCL, 0600);
        if (io->child[k] < 0)
            return al_error_set_errno(AL_EIO, errno, "%s", path);
    }
    return 0;
}

/* Waits on the watch socket for init's answer to SPAWN and applies a
 * SPAWNED at once. Anything else (SPAWN_FAILED, a closed socket, the
 * daemon stopping, 30 s) is left to the control thread, whose
 * application spawn() waits for next. */
static void spawn_watch(struct ald *d, struct ald_session *s, int watch)
{
    struct pollfd pfd[2] = {{watch, POLLIN, 0}, {d->stop_fd, POLLIN, 0}};
    int n;
    while ((n = poll(pfd, 2, SPAWN_REPLY_TIMEOUT_S * 1000)) < 0 && errno == EINTR)
        ;
    struct sbs_msg m;
    if (n > 0 && !(pfd[1].revents & POLLIN) && sbs_watch_recv(watch, &m) == 0 &&
        m.type == SBS_MSG_SPAWNED)
        ald_ctl_spawned(d, s, &m);
}

/* Takes one message from a command's watch socket: 1 with an EXITED in *m
 * that says all there is to say (every exit but a SIGKILL, which may be the
 * OOM killer's: only the control thread can tell); 0 when there is nothing
 * new (nothing waiting, or a SPAWNED, applied already); -1 when the watch
 * is of no more use (closed, malformed, or that SIGKILL). */
int ald_exec_watch_exit(int watch, struct sbs_msg *m)
{
    int code, sig;
    const char *reason;
    int err = sbs_watch_recv(watch, m);
    if (err == AL_EAGAIN || (err == 0 && m->type == SBS_MSG_SPAWNED))
        return 0;
    if (err == 0 && m->type == SBS_MSG_EXITED && ald_exit_decode(m, &code, &sig, &reason) == 0)
        return 1;
    return -1;
}

/* Sends SPAWN and waits for init's answer. 0 once the process runs or has
 * failed to start (p->state tells); AL_E* when it could not be sent. */
int ald_exec_spawn(struct ald *d, struct ald_session *s, struct ald_proc *p,
                   const struct ald_exec_req *req, struct ald_exec_stdio *io)
{
    pthread_mutex_lock(&d->lock);
    char **env = build_env(s->git.env, d->git_helper_dir, s->creds.env, s->env, req->env,
                           d->px[ALD_PX_NET].enabled);
    pthread_mutex_unlock(&d->lock);
    if (!env)
        return AL_ENOMEM;
    struct sbs_cmd cmd = {
        .argv = req->argv,
        .envp = env,
        .cwd = req->cwd,
        .stdio = {io->child[0], io->child[1], io->child[2]},
        .timeout_s = req->timeout_s,
        .watch = io->child[3] >= 0,
        .watch_fd = io->child[3],
        .tty = req->tty,
        .rows = req->rows,
        .cols = req->cols,
    };
    int err = AL_EIO;
    pthread_mutex_lock(&s->sandbox.send_lock);
    if (s->sandbox.open)
        err = sbs_spawn_send(&s->sandbox.conn, (uint32_t)p->num, &cmd);
    else
        al_error_set(AL_EIO, "the sandbox is gone");
    pthread_mutex_unlock(&s->sandbox.send_lock);
    free_env(env);
    ald_exec_stdio_close(io);
    if (err < 0)
        return err;
    if (io->watch >= 0 && req->tty)
        ald_tty_spawn_watch(d, s, p, io->watch);
    else if (io->watch >= 0)
        spawn_watch(d, s, io->watch);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += SPAWN_REPLY_TIMEOUT_S;
    pthread_mutex_lock(&d->lock);
    while (p->state == ALD_P_SPAWNING && err == 0 && !atomic_load(&d->stopping))
        if (pthread_cond_timedwait(&d->cond, &d->lock, &deadline) == ETIMEDOUT)
            err = al_error_set(AL_ETIMEOUT, "no answer from the sandbox's init");
    if (err == 0 && p->state == ALD_P_SPAWNING)
        err = al_error_set(AL_EIO, "airlockd is stopping");
    pthread_mutex_unlock(&d->lock);
    if (err == 0 && req->tty)
        err = ald_tty_check_started(d, s, p);
    return err;
}

int ald_exec_wait(struct ald *d, struct ald_session *s, char **argv, json_t *env,
                  uint32_t timeout_s, int *code, uint64_t *num)
{
    *code = -1;
    *num = 0;
    struct ald_exec_req req;
    memset(&req, 0, sizeof(req));
    req.argv = argv;
    req.argv_json = json_array();
    for (size_t i = 0; argv[i] && req.argv_json; i++)
        json_array_append_new(req.argv_json, json_string(argv[i]));
    req.env = env;
    req.cwd = (char *)"/workspace";
    req.background = 1;
    req.timeout_s = timeout_s;
    struct ald_exec_stdio io = ALD_EXEC_STDIO_INIT;
    struct ald_proc *p = req.argv_json ? ald_exec_proc_new(d, s, &req) : NULL;
    int err = p ? ald_exec_stdio_setup(d, s, p, &req, &io) : AL_ENOMEM;
    if (err == 0)
        err = ald_exec_spawn(d, s, p, &req, &io);
    if (io.in_w >= 0)
        close(io.in_w); /* stdin: end of file */
    ald_exec_stdio_close(&io);
    if (err < 0 && p) {
        pthread_mutex_lock(&d->lock);
        int ended = ald_proc_set_exit(d, p, -1, 0, "session-ended", 0);
        pthread_mutex_unlock(&d->lock);
        if (ended)
            ald_proc_unref(d, p);
    }
    if (err == 0) {
        *num = p->num;
        ald_proc_save(d, p);
        struct pollfd pfd = {p->exit_efd, POLLIN, 0};
        int n;
        while ((n = poll(&pfd, 1, (int)(timeout_s + 30) * 1000)) < 0 && errno == EINTR)
            ;
        pthread_mutex_lock(&d->lock);
        if (p->state == ALD_P_EXITED)
            *code = p->spawn_err ? 127 : p->code;
        else
            err = al_error_set(AL_ETIMEOUT, "%s did not finish", argv[0]);
        pthread_mutex_unlock(&d->lock);
    }
    if (p)
        ald_proc_unref(d, p);
    json_decref(req.argv_json);
    return err;
}

/* Waits up to QUICK_EXIT_MS for a foreground command that prints nothing
 * to exit, on its watch socket. Most commands an agent runs are over in a
 * few milliseconds: their whole answer (start, output, exit) then goes out
 * at once, after the command, instead of the response's bookkeeping (audit
 * row, saving the running process, sending the start line, the client
 * reading it) competing for a CPU with the command while it runs. Output
 * ends the wait at once, so nothing printed is held back; a command still
 * running after QUICK_EXIT_MS is streamed as before. Returns 1 with its
 * EXITED in *m; 0 otherwise (a SIGKILL, whose reason only the control
 * thread can tell, closes the watch: its exit comes through exit_efd). */
int ald_exec_wait_quick_exit(struct ald *d, struct ald_exec_stdio *io, struct sbs_msg *m)
{
    struct pollfd pfd[4] = {{io->watch, POLLIN, 0},
                            {io->out_r, POLLIN, 0},
                            {io->err_r, POLLIN, 0},
                            {d->stop_fd, POLLIN, 0}};
    uint64_t deadline = ald_mono_ms() + QUICK_EXIT_MS;
    for (;;) {
        uint64_t now = ald_mono_ms();
        if (now >= deadline)
            return 0;
        int n = poll(pfd, 4, (int)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || pfd[3].revents)
            return 0;
        for (int k = 1; k <= 2; k++) {
            if (pfd[k].revents & POLLIN)
                return 0; /* output: stream it now */
            if (pfd[k].revents)
                pfd[k].fd = -1; /* closed by the exiting command: its exit is next */
        }
        int r = pfd[0].revents ? ald_exec_watch_exit(io->watch, m) : 0;
        if (r == 0)
            continue;
        if (r == 1)
            return 1;
        close(io->watch);
        io->watch = -1;
        return 0;
    }
}

int ald_exec_claim_exit(struct ald *d, struct ald_proc *p, const struct sbs_msg *m)
{
    int code, sig;
    const char *reason;
    ald_exit_decode(m, &code, &sig, &reason);
    pthread_mutex_lock(&d->lock);
    int claimed = ald_proc_set_exit(d, p, code, sig, reason, m->duration_ms);
    pthread_mutex_unlock(&d->lock);
    return claimed;
}

void ald_exec_wait_published(struct ald *d, struct ald_proc *p)
{
    pthread_mutex_lock(&d->lock);
    while (!p->exit_published && !atomic_load(&d->stopping))
        pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

void ald_exec_exit_done(struct ald *d, struct ald_proc *p, int save)
{
    if (save)
        ald_proc_save(d, p);
    ald_proc_publish_exit(d, p);
    ald_proc_unref(d, p); /* the running reference */
}
