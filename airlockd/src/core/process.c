/* The process table: processes of live sessions in memory, every process in
 * the store; exits recorded, output files of background processes bounded. */
#include "airlockd/core/daemon.h"

#include "airlockd/core/metrics.h"

#include "airlockd/core/process.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void trim_proc(struct ald *d, struct ald_proc *p);

void ald_proc_out_path(const struct ald *d, const char *session, uint64_t num, int stream,
                       char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s/out/p_%llu.%s", d->sessions_dir, session,
                     (unsigned long long)num, stream == 2 ? "stderr" : "stdout");
    if (n < 0 || (size_t)n >= size)
        out[0] = '\0';
}

static json_t *exit_json(const struct ald_proc *p)
{
    if (p->state != ALD_P_EXITED)
        return json_null();
    return json_pack("{s:o, s:o, s:s, s:I}", "code",
                     p->code >= 0 ? json_integer(p->code) : json_null(), "signal",
                     p->sig > 0 ? json_integer(p->sig) : json_null(), "reason", p->reason,
                     "duration_ms", (json_int_t)p->duration_ms);
}

/* Current size of an output file (0 when missing). */
static uint64_t out_size(const struct ald *d, const struct ald_proc *p, int stream)
{
    char path[PATH_MAX];
    struct stat st;
    ald_proc_out_path(d, p->s->id, p->num, stream, path, sizeof(path));
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

json_t *ald_proc_json(const struct ald *d, const struct ald_proc *p)
{
    char id[32];
    snprintf(id, sizeof(id), "p_%llu", (unsigned long long)p->num);
    json_t *output = json_null();
    if (p->background && !p->tty)
        output = json_pack("{s:I, s:I}", "stdout", (json_int_t)out_size(d, p, 1), "stderr",
                           (json_int_t)out_size(d, p, 2));
    return json_pack("{s:s, s:s, s:o, s:O, s:b, s:b, s:s, s:o, s:o, s:o, s:o}", "id", id, "session",
                     p->s->id, "pid", p->pid > 0 ? json_integer(p->pid) : json_null(), "argv",
                     p->argv, "background", p->background, "tty", p->tty, "state",
                     p->state == ALD_P_EXITED ? "exited" : "running", "started_at",
                     ald_time_json(p->started_ms), "ended_at", ald_time_json(p->ended_ms), "exit",
                     exit_json(p), "output", output);
}

/* Saves are serialised from snapshot to write: a request thread saving a
 * process at its start and the control thread saving its exit could
 * otherwise write in the opposite order, leaving it "running" in the store. */
static pthread_mutex_t save_lock = PTHREAD_MUTEX_INITIALIZER;

int ald_proc_save_audit(struct ald *d, struct ald_proc *p, const struct ald_audit_row *audit)
{
    pthread_mutex_lock(&save_lock);
    pthread_mutex_lock(&d->lock);
    json_t *pub = ald_proc_json(d, p);
    json_t *priv = json_pack("{s:I, s:[I, I], s:I}", "init_id", (json_int_t)p->init_id, "earliest",
                             (json_int_t)p->earliest[0], (json_int_t)p->earliest[1], "started_ms",
                             (json_int_t)p->started_ms);
    pthread_mutex_unlock(&d->lock);
    int err = AL_ENOMEM;
    if (pub && priv)
        err = audit ? d->hooks.store.proc_put_audit(d->st, p->s->id, p->num, pub, priv, audit)
                    : d->hooks.store.proc_put(d->st, p->s->id, p->num, pub, priv);
    pthread_mutex_unlock(&save_lock);
    if (err < 0)
        al_log(AL_LOG_ERROR, "saving process p_%llu of %s: %s", (unsigned long long)p->num,
               p->s->id, al_error_last());
    json_decref(pub);
    json_decref(priv);
    return err;
}

int ald_proc_save(struct ald *d, struct ald_proc *p)
{
    return ald_proc_save_audit(d, p, NULL);
}

/* Frees an exited process nobody uses; caller holds d->lock. */
static void proc_free_locked(struct ald_proc *p)
{
    struct ald_session *s = p->s;
    for (struct ald_proc **pp = &s->procs.list; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    if (p->stdin_fd >= 0)
        close(p->stdin_fd);
    if (p->tty_fd >= 0)
        close(p->tty_fd);
    if (p->exit_efd >= 0)
        close(p->exit_efd);
    json_decref(p->argv);
    free(p);
    (void)s;
}

void ald_proc_unref(struct ald *d, struct ald_proc *p)
{
    struct ald_session *s = p->s;
    pthread_mutex_lock(&d->lock);
    int last = --p->refs == 0;
    if (last)
        proc_free_locked(p);
    pthread_mutex_unlock(&d->lock);
    if (last)
        ald_session_unref(d, s); /* the process's reference on its session */
}

struct ald_proc *ald_proc_find(struct ald *d, struct ald_session *s, uint64_t num)
{
    pthread_mutex_lock(&d->lock);
    struct ald_proc *p = s->procs.list;
    while (p && p->num != num)
        p = p->next;
    if (p)
        p->refs++;
    pthread_mutex_unlock(&d->lock);
    return p;
}

int ald_proc_set_exit(struct ald *d, struct ald_proc *p, int code, int sig, const char *reason,
                      uint64_t duration_ms)
{
    if (p->state == ALD_P_EXITED)
        return 0;
    p->state = ALD_P_EXITED;
    p->code = code;
    p->sig = sig;
    p->reason = reason;
    p->duration_ms = duration_ms;
    p->ended_ms = ald_now_ms();
    if (p->stdin_fd >= 0) {
        close(p->stdin_fd);
        p->stdin_fd = -1;
    }
    uint64_t one = 1;
    if (p->exit_efd >= 0 && write(p->exit_efd, &one, sizeof(one)) < 0)
        al_log(AL_LOG_WARN, "eventfd: %s", strerror(errno));
    pthread_cond_broadcast(&d->cond);
    return 1;
}

void ald_proc_exited(struct ald *d, struct ald_proc *p)
{
    /* what a quick process wrote past max_output_bytes before the reaper
     * looked is dropped now */
    if (p->background && !p->tty)
        trim_proc(d, p);
    ald_proc_save(d, p);
    ald_proc_publish_exit(d, p);
}

void ald_proc_publish_exit(struct ald *d, struct ald_proc *p)
{
    pthread_mutex_lock(&d->lock);
    char id[32];
    snprintf(id, sizeof(id), "p_%llu", (unsigned long long)p->num);
    json_t *ev = json_pack("{s:s, s:o, s:o, s:s, s:I}", "process", id, "code",
                           p->code >= 0 ? json_integer(p->code) : json_null(), "signal",
                           p->sig > 0 ? json_integer(p->sig) : json_null(), "reason", p->reason,
                           "duration_ms", (json_int_t)p->duration_ms);
    const char *reason = p->reason;
    uint64_t dur = p->duration_ms;
    pthread_mutex_unlock(&d->lock);
    ald_event(d, p->s->id, p->s->user, "process_exit", ev);
    ald_metrics_exec(d, dur);
    if (strcmp(reason, "memory") == 0 || strcmp(reason, "timeout") == 0) {
        ald_metrics_limit(d, reason);
        ald_event(d, p->s->id, p->s->user, "limit",
                  json_pack("{s:s, s:s}", "limit", reason, "process", id));
    }
    /* last: a foreground exec's exit line waits for this
     * (ald_exec_wait_published) */
    pthread_mutex_lock(&d->lock);
    p->exit_published = 1;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

/* Drops the oldest bytes of one output file past max_output_bytes by
 * punching a hole; returns the new first kept offset. */
static uint64_t trim_one(const char *path, uint64_t earliest, uint64_t max)
{
    struct stat st;
    if (stat(path, &st) < 0 || (uint64_t)st.st_size <= earliest + max)
        return earliest;
    uint64_t keep_from = (uint64_t)st.st_size - max;
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return earliest;
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)keep_from) < 0) {
        al_log(AL_LOG_WARN, "%s: punching a hole: %s", path, strerror(errno));
        keep_from = earliest;
    }
    close(fd);
    return keep_from;
}

/* Trims both output files of a background process; saves and publishes
 * when something was dropped. The caller holds a reference on p. */
static void trim_proc(struct ald *d, struct ald_proc *p)
{
    pthread_mutex_lock(&d->lock);
    uint64_t before[2] = {p->earliest[0], p->earliest[1]};
    pthread_mutex_unlock(&d->lock);
    int changed = 0;
    for (int k = 0; k < 2; k++) {
        char path[PATH_MAX];
        ald_proc_out_path(d, p->s->id, p->num, k + 1, path, sizeof(path));
        uint64_t e = trim_one(path, before[k], d->cfg->max_output_bytes);
        if (e != before[k]) {
            pthread_mutex_lock(&d->lock);
            p->earliest[k] = e;
            pthread_mutex_unlock(&d->lock);
            changed = 1;
        }
    }
    if (!changed)
        return;
    ald_proc_save(d, p);
    ald_metrics_limit(d, "output");
    if (before[0] == 0 && before[1] == 0) {
        /* the first trim of this process */
        char id[32];
        snprintf(id, sizeof(id), "p_%llu", (unsigned long long)p->num);
        ald_event(d, p->s->id, p->s->user, "limit",
                  json_pack("{s:s, s:s}", "limit", "output", "process", id));
    }
}

void ald_procs_trim_output(struct ald *d)
{
    struct todo {
        struct ald_proc *p;
    } todo[256];
    size_t n = 0;
    pthread_mutex_lock(&d->lock);
    for (struct ald_session *s = d->sessions; s && n < 256; s = s->next) {
        for (struct ald_proc *p = s->procs.list; p && n < 256; p = p->next) {
            if (p->background && !p->tty && p->state == ALD_P_RUNNING) {
                p->refs++;
                todo[n++].p = p;
            }
        }
    }
    pthread_mutex_unlock(&d->lock);
    for (size_t i = 0; i < n; i++) {
        trim_proc(d, todo[i].p);
        ald_proc_unref(d, todo[i].p);
    }
}
