/* The control thread: one epoll over every session's control socket.
 * SPAWNED / SPAWN_FAILED / EXITED from init are applied to the process
 * table and wake the request threads waiting on d->cond; a closed or broken
 * control socket means the sandbox died: the session fails. */
#include "airlockd/core/daemon.h"

#include "airlockd/core/control.h"
#include "airlockd/core/process.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/buf.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#define STOP_TAG 0

int ald_ctl_add(struct ald *d, struct ald_session *s)
{
    int fl = fcntl(s->sandbox.conn.fd, F_GETFL);
    if (fl < 0 || fcntl(s->sandbox.conn.fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return al_error_set_errno(AL_EIO, errno, "control socket");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = s->tag};
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, s->sandbox.conn.fd, &ev) < 0)
        return al_error_set_errno(AL_EIO, errno, "epoll_ctl");
    return 0;
}

void ald_ctl_remove(struct ald *d, struct ald_session *s)
{
    pthread_mutex_lock(&s->sandbox.recv_lock);
    if (s->sandbox.open)
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, s->sandbox.conn.fd, NULL);
    pthread_mutex_unlock(&s->sandbox.recv_lock);
}

int ald_ctl_signal(struct ald *d, struct ald_session *s, uint32_t init_id, int sig)
{
    (void)d;
    int err = 0;
    pthread_mutex_lock(&s->sandbox.send_lock);
    if (s->sandbox.open)
        err = sbs_signal_send(&s->sandbox.conn, init_id, sig);
    pthread_mutex_unlock(&s->sandbox.send_lock);
    return err;
}

/* Finds a session by its control tag and takes a reference. */
static struct ald_session *by_tag(struct ald *d, uint64_t tag)
{
    pthread_mutex_lock(&d->lock);
    struct ald_session *s = d->sessions;
    while (s && s->tag != tag)
        s = s->next;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&d->lock);
    return s;
}

/* The OOM kills counted by the sandbox's memory cgroup (v2 memory.events,
 * v1 memory.oom_control: "oom_kill N"), or -1 when unknown. */
static long oom_kills(const struct sbs_record *rec)
{
    if (!rec->cgroup_paths[0][0])
        return -1;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", rec->cgroup_paths[0],
                     rec->cgroup_version == 2 ? "memory.events" : "memory.oom_control");
    if (n < 0 || (size_t)n >= sizeof(path))
        return -1;
    struct al_buf b;
    al_buf_init(&b, 8192);
    long count = -1;
    if (al_buf_read_file(&b, path) == 0 && b.ptr) {
        for (const char *line = b.ptr; line && *line; line = strchr(line, '\n')) {
            if (*line == '\n')
                line++;
            if (strncmp(line, "oom_kill ", 9) == 0) {
                count = strtol(line + 9, NULL, 10);
                break;
            }
        }
    }
    al_buf_free(&b);
    return count;
}

/* Whether a SIGKILL the session's process got came from the memory limit:
 * the cgroup's OOM kill count went up since the last exit. Caller holds
 * d->lock. */
static int killed_by_oom(struct ald_session *s)
{
    if (!s->sandbox.have_record)
        return 0;
    long n = oom_kills(&s->sandbox.conn.rec);
    if (n > s->sandbox.oom_kills_seen) {
        s->sandbox.oom_kills_seen = n;
        return 1;
    }
    if (n < 0 && !s->sandbox.oom_seen && sbs_oom_killed(&s->sandbox.conn.rec)) {
        s->sandbox.oom_seen = 1;
        return 1;
    }
    return 0;
}

/* SPAWNED: the process runs. Idempotent (the control thread and the
 * request thread watching the command both apply it); caller holds d->lock.
 * Whichever applies it publishes process_start, under the lock: an EXITED
 * can only be applied to a running process, so the start event always
 * comes first, and comes even for a command that is over at once (the
 * request thread, publishing it later, used to skip it then). */
static void spawned_locked(struct ald *d, struct ald_session *s, const struct sbs_msg *m)
{
    struct ald_proc *p = s->procs.list;
    while (p && !(p->state == ALD_P_SPAWNING && (uint32_t)p->num == m->req))
        p = p->next;
    if (p) {
        p->init_id = m->proc;
        p->pid = m->pid;
        p->state = ALD_P_RUNNING;
        pthread_cond_broadcast(&d->cond);
        char id[32];
        snprintf(id, sizeof(id), "p_%llu", (unsigned long long)p->num);
        ald_event(d, s->id, s->user, "process_start",
                  json_pack("{s:s, s:i, s:O, s:b}", "process", id, "pid", (int)p->pid, "argv",
                            p->argv, "background", p->background));
    }
}

void ald_ctl_spawned(struct ald *d, struct ald_session *s, const struct sbs_msg *m)
{
    pthread_mutex_lock(&d->lock);
    spawned_locked(d, s, m);
    pthread_mutex_unlock(&d->lock);
}

int ald_exit_decode(const struct sbs_msg *m, int *code, int *sig, const char **reason)
{
    *code = -1;
    *sig = 0;
    *reason = "exited";
    if (WIFEXITED(m->status)) {
        *code = WEXITSTATUS(m->status);
    } else if (WIFSIGNALED(m->status)) {
        *sig = WTERMSIG(m->status);
        *code = 128 + *sig;
        *reason = "signaled";
    }
    if (m->timed_out) {
        *reason = "timeout";
        *code = 124;
    }
    return *sig == SIGKILL && !m->timed_out ? 1 : 0;
}

/* Applies one message from init. Returns the process that exited (with a
 * reference) so the caller can save and publish outside the lock. */
static struct ald_proc *apply(struct ald *d, struct ald_session *s, const struct sbs_msg *m)
{
    struct ald_proc *done = NULL;
    pthread_mutex_lock(&d->lock);
    struct ald_proc *p = s->procs.list;
    switch (m->type) {
    case SBS_MSG_SPAWNED:
        spawned_locked(d, s, m);
        break;
    case SBS_MSG_SPAWN_FAILED:
        while (p && !(p->state == ALD_P_SPAWNING && (uint32_t)p->num == m->req))
            p = p->next;
        if (p) {
            p->spawn_err = m->err;
            int cwd = m->err > SBS_SPAWN_ERR_CWD; /* the directory, not the program */
            int code = cwd ? 125 : m->err == ENOENT ? 127 : 126;
            ald_proc_set_exit(d, p, code, 0,
                              cwd                ? "cwd-unusable"
                              : m->err == ENOENT ? "not-found"
                                                 : "not-executable",
                              0);
            p->refs++;
            done = p;
        }
        break;
    case SBS_MSG_EXITED:
        while (p && !(p->state == ALD_P_RUNNING && p->init_id == m->proc))
            p = p->next;
        if (p) {
            int code, sig;
            const char *reason;
            if (ald_exit_decode(m, &code, &sig, &reason) && killed_by_oom(s)) {
                reason = "memory";
                code = 137;
            }
            ald_proc_set_exit(d, p, code, sig, reason, m->duration_ms);
            p->refs++;
            done = p;
        }
        break;
    case SBS_MSG_HELLO:
        break;
    }
    pthread_mutex_unlock(&d->lock);
    return done;
}

/* After an exit: save, publish, and drop the "running" reference. */
static void finish_exit(struct ald *d, struct ald_proc *p)
{
    ald_proc_exited(d, p);
    ald_proc_unref(d, p); /* the running reference */
    ald_proc_unref(d, p); /* apply()'s */
}

struct fail_job {
    struct ald *d;
    struct ald_session *s;
};

static void *fail_thread(void *arg)
{
    struct fail_job *job = arg;
    ald_session_end(job->d, job->s, ALD_FAILED, "sandbox-died");
    ald_session_unref(job->d, job->s);
    free(job);
    return NULL;
}

/* The sandbox is gone (or its init spoke nonsense): the session fails, on a
 * thread of its own so the other sessions are not held up by the teardown. */
static void sandbox_died(struct ald *d, struct ald_session *s, const char *why)
{
    al_log(AL_LOG_WARN, "session %s: control socket: %s", s->id, why);
    pthread_mutex_lock(&d->lock);
    s->refs++;
    pthread_mutex_unlock(&d->lock);
    struct fail_job *job = malloc(sizeof(*job));
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (job) {
        job->d = d;
        job->s = s;
    }
    if (!job || pthread_create(&t, &attr, fail_thread, job) != 0) {
        free(job);
        ald_session_end(d, s, ALD_FAILED, "sandbox-died");
        ald_session_unref(d, s);
    }
    pthread_attr_destroy(&attr);
}

static void serve(struct ald *d, uint64_t tag)
{
    struct ald_session *s = by_tag(d, tag);
    if (!s)
        return;
    int dead = 0;
    const char *why = NULL;
    struct ald_proc *exited[64];
    size_t n = 0;
    pthread_mutex_lock(&s->sandbox.recv_lock);
    while (s->sandbox.open && n < 64) {
        struct sbs_msg m;
        int err = sbs_recv(&s->sandbox.conn, &m);
        if (err == AL_EAGAIN)
            break;
        if (err < 0) {
            dead = 1;
            why = err == AL_EIO ? "closed" : al_error_last();
            epoll_ctl(d->epfd, EPOLL_CTL_DEL, s->sandbox.conn.fd, NULL);
            break;
        }
        struct ald_proc *p = apply(d, s, &m);
        if (p)
            exited[n++] = p;
    }
    pthread_mutex_unlock(&s->sandbox.recv_lock);
    for (size_t i = 0; i < n; i++)
        finish_exit(d, exited[i]);
    if (dead)
        sandbox_died(d, s, why);
    ald_session_unref(d, s);
}

static void *ctl_main(void *arg)
{
    struct ald *d = arg;
    struct epoll_event evs[64];
    while (!atomic_load(&d->stopping)) {
        int n = epoll_wait(d->epfd, evs, 64, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            al_log(AL_LOG_ERROR, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == STOP_TAG)
                return NULL;
            serve(d, evs[i].data.u64);
        }
    }
    return NULL;
}

int ald_ctl_start(struct ald *d)
{
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (d->epfd < 0)
        return al_error_set_errno(AL_EIO, errno, "epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STOP_TAG};
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->stop_fd, &ev) < 0)
        return al_error_set_errno(AL_EIO, errno, "epoll_ctl");
    if ((errno = pthread_create(&d->ctl_thread, NULL, ctl_main, d)) != 0)
        return al_error_set_errno(AL_EIO, errno, "starting the control thread");
    return 0;
}

void ald_ctl_stop(struct ald *d)
{
    pthread_join(d->ctl_thread, NULL);
    close(d->epfd);
    d->epfd = -1;
}
