/* Jobs (jobs.h, docs/jobs.md): validation and queueing, the scheduler
 * thread that starts queued jobs while there is room, and a thread per
 * running job that creates its session, runs its command as a process of
 * that session, keeps its output, pushes the session's branch from inside
 * the sandbox (through the git proxy, as any session push) and ends the
 * session.
 *
 * A job's row is written by one thread at a time: the submitting request
 * (queued), the scheduler (queued -> running, under J->lock, as is a
 * cancel of a queued job), then the job's own thread until it finishes. */
#include "airlockd/core/jobs.h"

#include "airlockd/core/cluster.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/exec.h"
#include "airlockd/core/process.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"
#include "airlockd/core/webhook.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOB_PUSH_TIMEOUT  600
#define JOB_SCHED_WAIT_MS 2000

/* One job with a thread (running). Fields under J->lock. */
struct job_run {
    struct job_run *next;
    char id[32];
    char user[ALD_NAME_MAX];
    pthread_t thread;
    int resume;     /* picked up after a restart */
    int cancel;     /* a cancel was asked */
    int done;       /* the thread has finished: join it */
    int waiters;    /* cancels waiting for `done`: not freed before they go */
    int cancel_efd; /* eventfd, written by a cancel */
};

struct ald_jobs {
    struct ald *d;
    const struct ald_jobs_ops *ops;
    struct ald_jobstore *st;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;
    int started;
    pthread_t sched;
    struct job_run *runs;
    char dir[PATH_MAX]; /* <state_dir>/jobs: the finished jobs' output */
};

struct job_thread_arg {
    struct ald_jobs *J;
    struct job_run *run;
};

int ald_job_id_valid(const char *id)
{
    if (strncmp(id, "j_", 2) != 0 || strlen(id) != 22)
        return 0;
    for (size_t i = 2; i < 22; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return 1;
}

/* ---- the one place webhooks and pull requests are reached ---- */

/* Announces `event` for the job (pub, the payload, borrowed) to its
 * webhook, if it has one (priv["webhook"]: the URL and the sealed secret,
 * ald_webhook_session_prepare). A failure is logged: the job goes on. */
static void job_notify(struct ald_jobs *J, json_t *pub, json_t *priv, const char *event)
{
    json_t *wh = json_object_get(priv, "webhook");
    if (!json_is_object(wh))
        return;
    ald_webhook_session_notify(J->d, json_string_value(json_object_get(pub, "id")),
                               json_string_value(json_object_get(pub, "user")), wh, event, pub);
}

/* Checks a webhook given at POST time (the URL with the SSRF guard, the
 * secret) and seals its secret for the job's row: *out (new ref). */
static int job_webhook_prepare(struct ald *d, const char *id, json_t *wh, json_t **out,
                               struct ald_fault *f)
{
    return ald_webhook_session_prepare(d, id, wh, out, f);
}

/* Opens the pull request of a pushed job (the forge adapter, through
 * core's hooks: ald_forge_open_pr). *url_out malloc'd. */
static int job_open_pr(struct ald *d, const char *repo, const char *head, const char *base,
                       const char *title, const char *body, char **url_out, struct ald_fault *f)
{
    *url_out = NULL;
    if (!d->hooks.forge.open_pr)
        return ald_fault_set(f, ALD_FAULT_UNAVAILABLE, "unavailable", "pull_request",
                             "opening pull requests is not available in this airlockd");
    return d->hooks.forge.open_pr(d, repo, head, base, title, body ? body : "", url_out, f);
}

/* ---- rows ---- */

static int job_save(struct ald_jobs *J, json_t *pub, json_t *priv)
{
    int err = J->ops->put(J->st, pub, priv);
    if (err < 0)
        al_log(AL_LOG_ERROR, "saving job %s: %s", json_string_value(json_object_get(pub, "id")),
               al_error_last());
    return err;
}

static void set_time(json_t *pub, const char *key)
{
    json_object_set_new(pub, key, ald_time_json(ald_now_ms()));
}

/* ---- submit ---- */

static int idem_key_valid(const char *k)
{
    size_t n = strlen(k);
    if (n < 1 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e)
            return 0;
    return 1;
}

/* The job's own fields of `body` into the private part and the public
 * object (the webhook's secret checked and sealed); the rest, the session
 * spec, into *spec (new ref). */
static int job_parse(struct ald *d, json_t *body, json_t *pub, json_t *priv, json_t **spec,
                     struct ald_fault *f)
{
    json_t *fields = NULL;
    int err = ald_job_body_check(body, &d->cfg->jobs, &fields, spec, f);
    if (err < 0)
        return err;
    json_t *argv = json_object_get(fields, "argv");
    json_object_set(priv, "argv", argv);
    json_object_set(pub, "command", argv);
    static const char *const both[] = {"timeout_s", "push", "pull_request"};
    for (size_t i = 0; i < sizeof(both) / sizeof(*both); i++) {
        json_object_set(priv, both[i], json_object_get(fields, both[i]));
        json_object_set(pub, both[i], json_object_get(fields, both[i]));
    }
    json_object_set(pub, "repo", json_object_get(fields, "repo"));
    json_object_set(pub, "base", json_object_get(fields, "base"));
    json_t *wh = json_object_get(fields, "webhook");
    json_object_set_new(pub, "webhook", json_null());
    if (json_is_object(wh)) {
        /* the secret is kept sealed in the private part only: never
         * returned */
        json_t *rec = NULL;
        err = job_webhook_prepare(d, json_string_value(json_object_get(pub, "id")), wh, &rec, f);
        if (err == 0) {
            json_object_set_new(priv, "webhook", rec);
            json_object_set_new(pub, "webhook",
                                json_pack("{s:O}", "url", json_object_get(wh, "url")));
        }
    }
    json_decref(fields);
    return err;
}

/* Checks the session spec as POST /v1/sessions would (400/403/409). */
static int spec_check(struct ald_jobs *J, json_t *spec, const char *user, struct ald_fault *f)
{
    char *txt = json_dumps(spec, JSON_COMPACT);
    if (!txt)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
    struct ald_create_req req;
    int err = J->ops->create_req(&req, txt, strlen(txt), J->d->cfg, user, f);
    free(txt);
    if (err == 0)
        ald_create_req_free(&req);
    return err;
}

/* Saves the new job's row unless its user already has
 * jobs.max_queued_per_user jobs queued (ALD_FAULT_QUOTA, nothing saved).
 * The count and the save are one step under J->lock, so concurrent POSTs
 * cannot pass the limit together. */
static int job_save_queued(struct ald_jobs *J, const char *user, json_t *pub, json_t *priv,
                           struct ald_fault *f)
{
    uint64_t max = J->d->cfg->jobs.max_queued_per_user;
    json_t *rows = NULL;
    int64_t next = 0;
    int err;
    pthread_mutex_lock(&J->lock);
    if ((err = J->ops->page(J->st, user, "queued", 0, (unsigned)max, &rows, &next)) < 0)
        err = ald_fault_store(f, err);
    else if (json_array_size(rows) >= max)
        err = ald_fault_set(f, ALD_FAULT_QUOTA, "quota_exceeded", NULL,
                            "user %s has %llu jobs queued (jobs.max_queued_per_user)", user,
                            (unsigned long long)max);
    else if ((err = job_save(J, pub, priv)) < 0)
        err = ald_fault_store(f, err);
    else
        err = 0;
    pthread_mutex_unlock(&J->lock);
    json_decref(rows);
    return err;
}

static void wake(struct ald_jobs *J)
{
    pthread_mutex_lock(&J->lock);
    pthread_cond_broadcast(&J->cond);
    pthread_mutex_unlock(&J->lock);
}

int ald_job_submit_ex(struct ald *d, const struct ald_principal *p, json_t *body,
                      const char *idem_key, json_t **job_out, int *replayed, struct ald_fault *f)
{
    struct ald_jobs *J = d->jobs;
    *job_out = NULL;
    if (replayed)
        *replayed = 0;
    if (!J)
        return ald_fault_set(f, ALD_FAULT_UNAVAILABLE, "unavailable", NULL, "jobs are not running");
    if (!json_is_object(body))
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_type", NULL,
                             "the body must be a JSON object");
    if (idem_key && !idem_key_valid(idem_key))
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "Idempotency-Key",
                             "Idempotency-Key must be 1-128 printable ASCII characters");
    char id[32] = "j_";
    if (ald_random_hex(id + 2, 20) < 0)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
    json_t *pub =
        json_pack("{s:s, s:s, s:s, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n}", "id", id, "user",
                  p->user, "state", "queued", "session", "branch", "exit_code", "pushed_commit",
                  "pull_request_url", "error", "started_at", "finished_at");
    json_t *priv = json_object();
    json_t *spec = NULL;
    char *canon = NULL;
    int err;
    if (!pub || !priv) {
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
        goto out;
    }
    if ((err = job_parse(d, body, pub, priv, &spec, f)) < 0 ||
        (err = spec_check(J, spec, p->user, f)) < 0)
        goto out;
    json_object_set_new(priv, "spec", spec);
    spec = NULL;
    json_object_set_new(priv, "who",
                        json_pack("{s:s, s:s, s:b, s:I, s:I}", "user", p->user, "key_id", p->key_id,
                                  "admin", p->admin, "max_sessions", (json_int_t)p->max_sessions,
                                  "max_memory_mb", (json_int_t)p->max_memory_mb));
    set_time(pub, "created_at");
    if (idem_key) {
        /* the session's mechanism, in its table: "job " + the key (a space
         * is never in a key, so no session key is the same) */
        canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
        if (!canon) {
            err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
            goto out;
        }
        unsigned char hash[32];
        char hash_hex[65], key[140], prev_id[32], prev_hash[72];
        SHA256((const unsigned char *)canon, strlen(canon), hash);
        ald_hex(hash_hex, hash, 32);
        snprintf(key, sizeof(key), "job %s", idem_key);
        err = d->hooks.store.idem_claim(d->st, p->user, key, hash_hex, id, ald_now_ms(), prev_id,
                                        prev_hash);
        if (err == AL_EEXISTS) {
            if (replayed)
                *replayed = 1;
            if (strcmp(prev_hash, hash_hex) != 0)
                err = ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", "Idempotency-Key",
                                    "Idempotency-Key was used with another body");
            else
                err = ald_job_get(d, p, prev_id, job_out, f);
            goto out;
        }
        if (err < 0) {
            err = ald_fault_store(f, err);
            goto out;
        }
        if ((err = job_save_queued(J, p->user, pub, priv, f)) < 0) {
            d->hooks.store.idem_release(d->st, p->user, key);
            goto out;
        }
    } else if ((err = job_save_queued(J, p->user, pub, priv, f)) < 0) {
        goto out;
    }
    al_log(AL_LOG_INFO, "job %s queued for %s", id, p->user);
    job_notify(J, pub, priv, "job.queued");
    wake(J);
    *job_out = json_incref(pub);
    err = 0;
out:
    free(canon);
    json_decref(spec);
    json_decref(pub);
    json_decref(priv);
    return err;
}

int ald_job_submit(struct ald *d, const struct ald_principal *p, json_t *body, const char *idem_key,
                   json_t **job_out, struct ald_fault *f)
{
    return ald_job_submit_ex(d, p, body, idem_key, job_out, NULL, f);
}

/* ---- reading ---- */

static int job_load(struct ald_jobs *J, const struct ald_principal *who, const char *id,
                    json_t **pub, json_t **priv, struct ald_fault *f)
{
    *pub = NULL;
    if (priv)
        *priv = NULL;
    if (!ald_job_id_valid(id))
        return ald_fault_set(f, ALD_FAULT_NOT_FOUND, "not_found", NULL, "no such job");
    int err = J->ops->get(J->st, id, who && !who->admin ? who->user : NULL, pub, priv);
    if (err == AL_ENOTFOUND)
        return ald_fault_set(f, ALD_FAULT_NOT_FOUND, "not_found", NULL, "no such job");
    if (err < 0)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
    return 0;
}

int ald_job_get(struct ald *d, const struct ald_principal *who, const char *id, json_t **out,
                struct ald_fault *f)
{
    if (!d->jobs)
        return ald_fault_set(f, ALD_FAULT_UNAVAILABLE, "unavailable", NULL, "jobs are not running");
    return job_load(d->jobs, who, id, out, NULL, f);
}

int ald_job_list(struct ald *d, const struct ald_principal *who, const char *state, int64_t after,
                 unsigned limit, json_t **out, int64_t *next, struct ald_fault *f)
{
    if (!d->jobs)
        return ald_fault_set(f, ALD_FAULT_UNAVAILABLE, "unavailable", NULL, "jobs are not running");
    if (d->jobs->ops->page(d->jobs->st, who->admin ? NULL : who->user, state, after, limit, out,
                           next) < 0)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
    return 0;
}

static void out_path(struct ald_jobs *J, const char *id, char *path, size_t size)
{
    int n = snprintf(path, size, "%s/%s.out", J->dir, id);
    if (n < 0 || (size_t)n >= size)
        path[0] = '\0';
}

/* The last `max` bytes of the file at `path`: *data (malloc'd), *len,
 * *truncated. A missing file is empty. */
static int read_tail(const char *path, uint64_t max, char **data, size_t *len, int *truncated)
{
    *data = NULL;
    *len = 0;
    *truncated = 0;
    int fd = path[0] ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    if (fd < 0) {
        *data = malloc(1);
        return *data ? 0 : AL_ENOMEM;
    }
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "%s", path);
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size, from = size > max ? size - max : 0;
    *truncated = from > 0;
    *data = malloc(size - from + 1);
    if (!*data) {
        err = AL_ENOMEM;
        goto out;
    }
    ssize_t n = pread(fd, *data, size - from, (off_t)from);
    if (n < 0) {
        err = al_error_set_errno(AL_EIO, errno, "%s", path);
        free(*data);
        *data = NULL;
        goto out;
    }
    *len = (size_t)n;
out:
    close(fd);
    return err;
}

int ald_job_output(struct ald *d, const struct ald_principal *who, const char *id, char **data,
                   size_t *len, int *truncated, struct ald_fault *f)
{
    struct ald_jobs *J = d->jobs;
    *data = NULL;
    *len = 0;
    *truncated = 0;
    if (!J)
        return ald_fault_set(f, ALD_FAULT_UNAVAILABLE, "unavailable", NULL, "jobs are not running");
    json_t *pub = NULL, *priv = NULL;
    int err = job_load(J, who, id, &pub, &priv, f);
    if (err < 0)
        return err;
    char path[PATH_MAX];
    const char *sid = json_string_value(json_object_get(pub, "session"));
    json_t *num = json_object_get(priv, "proc");
    if (strcmp(json_string_value(json_object_get(pub, "state")), "running") == 0 && sid &&
        json_is_integer(num))
        ald_proc_out_path(d, sid, (uint64_t)json_integer_value(num), 1, path, sizeof(path));
    else
        out_path(J, id, path, sizeof(path));
    err = read_tail(path, d->cfg->jobs.max_output_bytes, data, len, truncated);
    if (err < 0)
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
    json_decref(pub);
    json_decref(priv);
    return err;
}

/* Copies the last jobs.max_output_bytes of the command's output into the
 * job's own file (the session's files go with the session). */
static void keep_output(struct ald_jobs *J, const char *id, const char *sid, uint64_t num)
{
    char src[PATH_MAX], dst[PATH_MAX], tmp[PATH_MAX + 8];
    ald_proc_out_path(J->d, sid, num, 1, src, sizeof(src));
    out_path(J, id, dst, sizeof(dst));
    char *data = NULL;
    size_t len = 0;
    int truncated;
    if (!dst[0] || read_tail(src, J->d->cfg->jobs.max_output_bytes, &data, &len, &truncated) < 0)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    size_t off = 0;
    while (fd >= 0 && off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    if (fd >= 0 && close(fd) == 0 && off == len)
        rename(tmp, dst);
    else
        unlink(tmp);
    free(data);
}

/* ---- running ---- */

/* Runs argv as a background process of `s` (stdout and stderr into one
 * file; env borrowed). *out: the process with a reference the caller
 * drops (ald_proc_unref); NULL and an error when it could not start. */
static int job_spawn(struct ald *d, struct ald_session *s, json_t *argv_json, json_t *env,
                     uint32_t timeout_s, struct ald_proc **out)
{
    *out = NULL;
    struct ald_exec_req req;
    memset(&req, 0, sizeof(req));
    size_t n = json_array_size(argv_json);
    req.argv = calloc(n + 1, sizeof(char *));
    if (!req.argv)
        return AL_ENOMEM;
    for (size_t i = 0; i < n; i++)
        req.argv[i] = (char *)json_string_value(json_array_get(argv_json, i));
    req.argv_json = argv_json;
    req.env = env;
    req.cwd = (char *)"/workspace";
    req.background = 1;
    req.merge_stderr = 1;
    req.timeout_s = timeout_s;
    struct ald_exec_stdio io = ALD_EXEC_STDIO_INIT;
    struct ald_proc *p = ald_exec_proc_new(d, s, &req);
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
        ald_proc_unref(d, p);
        p = NULL;
    }
    free(req.argv);
    if (err == 0) {
        ald_proc_save(d, p);
        *out = p;
    }
    return err;
}

enum wait_result { WAIT_EXITED, WAIT_CANCELLED, WAIT_STOPPING };

/* Waits for the process's exit, a cancel or the daemon's stop. */
static enum wait_result job_wait(struct ald *d, struct job_run *run, struct ald_proc *p)
{
    struct pollfd pfd[3] = {
        {p->exit_efd, POLLIN, 0}, {run->cancel_efd, POLLIN, 0}, {d->stop_fd, POLLIN, 0}};
    for (;;) {
        int n = poll(pfd, 3, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (pfd[0].revents) {
            ald_exec_wait_published(d, p);
            return WAIT_EXITED;
        }
        if (pfd[1].revents)
            return WAIT_CANCELLED;
        if (pfd[2].revents || n < 0)
            return WAIT_STOPPING;
    }
}

static int run_cancelled(struct ald_jobs *J, struct job_run *run)
{
    pthread_mutex_lock(&J->lock);
    int c = run->cancel;
    pthread_mutex_unlock(&J->lock);
    return c;
}

/* The job's end: its state and error, saved and announced. */
static void job_finish(struct ald_jobs *J, json_t *pub, json_t *priv, const char *state,
                       const char *error)
{
    json_object_set_new(pub, "state", json_string(state));
    if (error)
        json_object_set_new(pub, "error", json_string(error));
    set_time(pub, "finished_at");
    json_object_del(priv, "phase");
    job_save(J, pub, priv);
    al_log(AL_LOG_INFO, "job %s %s%s%s", json_string_value(json_object_get(pub, "id")), state,
           error ? ": " : "", error ? error : "");
    job_notify(J, pub, priv, "job.finished");
}

/* The push step, run inside the sandbox as the session's own commands
 * are (through the git listener, so the git proxy's checks apply): the
 * session's branch, when HEAD has commits that its base (origin's
 * AIRLOCK_JOB_BASE, or origin's default branch) has not. Its last line
 * says what happened: "airlock-pushed: SHA" or "airlock-pushed: none".
 * Everything it prints is the sandbox's to forge: nothing of it decides
 * where a pull request goes (the job's base, or the forge's default
 * branch), and a SHA that is not one fails the job. */
static const char push_script[] =
    "cd /workspace || exit 3\n"
    "base=refs/remotes/origin/${AIRLOCK_JOB_BASE:-HEAD}\n"
    "if [ -z \"$(git rev-list -n 1 HEAD --not \"$base\" -- 2>/dev/null)\" ]; then\n"
    "  echo 'airlock-pushed: none'; exit 0\n"
    "fi\n"
    "git push -q origin \"HEAD:refs/heads/$AIRLOCK_JOB_BRANCH\" 2>&1 || exit 4\n"
    "echo \"airlock-pushed: $(git rev-parse HEAD)\"\n";

/* The value after "PREFIX: " on a line of `text` (the last such line),
 * into out; "" when none. */
static void line_value(const char *text, const char *prefix, char *out, size_t size)
{
    out[0] = '\0';
    size_t pl = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, prefix, pl) == 0) {
            const char *e = strchr(l + pl, '\n');
            size_t n = e ? (size_t)(e - l - pl) : strlen(l + pl);
            snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), l + pl);
        }
    }
}

/* Replaces, in text[0..len), every byte but printable ASCII, newline and
 * tab with '?': what the sandbox printed becomes part of the job's error
 * (JSON, which takes only UTF-8, the log, a terminal or a page). */
static void text_printable(char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f)
            text[i] = '?';
    }
}

/* A commit id as git prints it: 40 (SHA-1) or 64 (SHA-256) lower-case
 * hex digits. */
static int commit_id_valid(const char *c)
{
    size_t n = strlen(c);
    if (n != 40 && n != 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f')))
            return 0;
    return 1;
}

/* Pushes the session's branch (push_script); 0 with *commit ("" when
 * nothing new), or an error in `error`. */
static int job_push(struct ald *d, struct ald_session *s, struct job_run *run, const char *job_base,
                    char *commit, size_t csize, char *error, size_t esize)
{
    commit[0] = error[0] = '\0';
    pthread_mutex_lock(&d->lock);
    const char *br = s->git.repo ? json_string_value(json_object_get(s->git.repo, "branch")) : NULL;
    char branch[300];
    snprintf(branch, sizeof(branch), "%s", br ? br : "");
    pthread_mutex_unlock(&d->lock);
    if (!branch[0]) {
        snprintf(error, esize, "push: the session has no branch");
        return AL_EINVAL;
    }
    json_t *argv = json_pack("[sss]", "/bin/sh", "-c", push_script);
    json_t *env = json_pack("{s:s, s:s}", "AIRLOCK_JOB_BRANCH", branch, "AIRLOCK_JOB_BASE",
                            job_base ? job_base : "");
    struct ald_proc *p = NULL;
    int err = argv && env ? job_spawn(d, s, argv, env, JOB_PUSH_TIMEOUT, &p) : AL_ENOMEM;
    if (err < 0) {
        snprintf(error, esize, "push: %s", al_error_last());
        goto out;
    }
    if (job_wait(d, run, p) != WAIT_EXITED) {
        err = AL_EAGAIN;
        goto out;
    }
    pthread_mutex_lock(&d->lock);
    int code = p->spawn_err ? 127 : p->code;
    pthread_mutex_unlock(&d->lock);
    char path[PATH_MAX], *text = NULL;
    size_t len = 0;
    int truncated;
    ald_proc_out_path(d, s->id, p->num, 1, path, sizeof(path));
    if (read_tail(path, 4096, &text, &len, &truncated) == 0) {
        text[len] = '\0';
        text_printable(text, len);
        line_value(text, "airlock-pushed: ", commit, csize);
    }
    al_log(AL_LOG_INFO, "job session %s: push of %s: exit %d, %s", s->id, branch, code,
           commit[0] ? commit : "no result");
    if (code != 0 || !commit[0]) {
        snprintf(error, esize, "push of %s failed (exit %d): %.600s", branch, code,
                 text ? text : "");
        err = AL_EIO;
    } else if (strcmp(commit, "none") == 0) {
        commit[0] = '\0';
    } else if (!commit_id_valid(commit)) {
        snprintf(error, esize, "push of %s: no commit id in its result", branch);
        commit[0] = '\0';
        err = AL_EIO;
    }
    free(text);
out:
    if (p)
        ald_proc_unref(d, p);
    json_decref(argv);
    json_decref(env);
    return err;
}

/* The principal the job was submitted by (its private part). */
static void who_load(struct ald_principal *who, json_t *priv)
{
    memset(who, 0, sizeof(*who));
    json_t *w = json_object_get(priv, "who");
    const char *u = json_string_value(json_object_get(w, "user"));
    const char *k = json_string_value(json_object_get(w, "key_id"));
    snprintf(who->user, sizeof(who->user), "%s", u ? u : "");
    snprintf(who->key_id, sizeof(who->key_id), "%s", k ? k : "");
    who->admin = json_is_true(json_object_get(w, "admin"));
    who->max_sessions = json_integer_value(json_object_get(w, "max_sessions"));
    who->max_memory_mb = json_integer_value(json_object_get(w, "max_memory_mb"));
}

/* The job's user as they are now (*who refreshed: admin, quotas), so that
 * a job queued before a user was removed or lost rights runs with none of
 * what they had: 0, or an error message in `error`. */
static int who_refresh(struct ald_jobs *J, struct ald_principal *who, char *error, size_t esize)
{
    struct ald_principal now;
    int err = J->ops->user_get ? J->ops->user_get(J->d->st, who->user, &now) : 0;
    if (err == AL_ENOTFOUND) {
        snprintf(error, esize, "user %s no longer exists", who->user);
        return err;
    }
    if (err < 0) {
        snprintf(error, esize, "user %s: %.900s", who->user, al_error_last());
        return err;
    }
    if (J->ops->user_get) {
        who->admin = now.admin;
        who->max_sessions = now.max_sessions;
        who->max_memory_mb = now.max_memory_mb;
    }
    return 0;
}

/* Creates the job's session; 0 with its id in pub["session"], or an error
 * message in `error`. */
static int job_session_create(struct ald_jobs *J, const struct ald_principal *who, json_t *pub,
                              json_t *priv, char *error, size_t esize)
{
    struct ald *d = J->d;
    char *txt = json_dumps(json_object_get(priv, "spec"), JSON_COMPACT);
    struct ald_create_req req;
    struct ald_fault f;
    int err = txt ? J->ops->create_req(&req, txt, strlen(txt), d->cfg, who->user, &f) : AL_ENOMEM;
    free(txt);
    if (err < 0) {
        snprintf(error, esize, "session: %.900s", err == AL_ENOMEM ? "out of memory" : f.message);
        return err;
    }
    /* the session lives at least as long as the command may run */
    uint64_t need =
        (uint64_t)json_integer_value(json_object_get(priv, "timeout_s")) + JOB_PUSH_TIMEOUT + 300;
    if (req.limits.ttl_s < need)
        req.limits.ttl_s = need;
    json_object_set_new(req.metadata, "airlock_job",
                        json_string(json_string_value(json_object_get(pub, "id"))));
    json_t *spub = NULL;
    int replayed = 0;
    err = ald_session_create(d, who, &req, NULL, NULL, &spub, &replayed, &f);
    ald_create_req_free(&req);
    if (err < 0) {
        snprintf(error, esize, "session: %.900s", f.message);
        return err;
    }
    json_object_set(pub, "session", json_object_get(spub, "id"));
    json_object_set(pub, "branch", json_object_get(spub, "branch"));
    json_decref(spub);
    return 0;
}

static void run_job(struct ald_jobs *J, struct job_run *run)
{
    struct ald *d = J->d;
    json_t *pub = NULL, *priv = NULL;
    struct ald_session *s = NULL;
    struct ald_proc *p = NULL;
    struct ald_principal who;
    char error[1024] = "";
    if (J->ops->get(J->st, run->id, NULL, &pub, &priv) < 0) {
        al_log(AL_LOG_ERROR, "job %s: %s", run->id, al_error_last());
        goto out;
    }
    who_load(&who, priv);
    if (!json_is_string(json_object_get(pub, "session"))) {
        if (run->resume) {
            job_finish(J, pub, priv, "failed",
                       "airlockd restarted while the job's session was "
                       "being created");
            goto out;
        }
        if (who_refresh(J, &who, error, sizeof(error)) < 0 ||
            job_session_create(J, &who, pub, priv, error, sizeof(error)) < 0) {
            job_finish(J, pub, priv, run_cancelled(J, run) ? "cancelled" : "failed", error);
            goto out;
        }
        json_object_set_new(priv, "phase", json_string("command"));
        job_save(J, pub, priv);
    }
    const char *sid = json_string_value(json_object_get(pub, "session"));
    s = ald_session_get(d, &who, sid);
    if (!s) {
        job_finish(J, pub, priv, run_cancelled(J, run) ? "cancelled" : "failed",
                   "the job's session ended before the job");
        goto out;
    }
    if (run_cancelled(J, run))
        goto cancelled;
    const char *phase = json_string_value(json_object_get(priv, "phase"));
    if (!phase || strcmp(phase, "command") == 0) {
        json_t *num = json_object_get(priv, "proc");
        int code = -1;
        const char *reason = NULL;
        if (json_is_integer(num)) {
            p = ald_proc_find(d, s, (uint64_t)json_integer_value(num));
        } else {
            uint32_t timeout = (uint32_t)json_integer_value(json_object_get(priv, "timeout_s"));
            if (job_spawn(d, s, json_object_get(priv, "argv"), NULL, timeout, &p) < 0) {
                snprintf(error, sizeof(error), "the command did not start: %s", al_error_last());
                job_finish(J, pub, priv, "failed", error);
                goto end_session;
            }
            json_object_set_new(priv, "proc", json_integer((json_int_t)p->num));
            job_save(J, pub, priv);
        }
        uint64_t pnum = (uint64_t)json_integer_value(json_object_get(priv, "proc"));
        if (p) {
            enum wait_result w = job_wait(d, run, p);
            if (w == WAIT_STOPPING)
                goto out; /* the next start picks it up */
            if (w == WAIT_CANCELLED)
                goto cancelled;
            pthread_mutex_lock(&d->lock);
            code = p->spawn_err ? 127 : p->code;
            reason = p->reason;
            int lost = s->state == ALD_LOST;
            pthread_mutex_unlock(&d->lock);
            if (lost) {
                /* the cluster gave this node's claim away (fenced): the
                 * node that marked it down failed the job; its row is not
                 * this node's to write any more */
                al_log(AL_LOG_WARN, "job %s: its session was lost; the cluster failed the job",
                       run->id);
                goto out;
            }
        } else {
            /* it ended before this daemon came back: its row says how */
            json_t *ppub = NULL, *ppriv = NULL;
            if (J->ops->proc_get(d->st, sid, pnum, &ppub, &ppriv) == 0) {
                json_t *ex = json_object_get(ppub, "exit");
                code = json_is_integer(json_object_get(ex, "code"))
                           ? (int)json_integer_value(json_object_get(ex, "code"))
                           : -1;
                reason = strcmp(json_string_value(json_object_get(ex, "reason"))
                                    ? json_string_value(json_object_get(ex, "reason"))
                                    : "",
                                "timeout") == 0
                             ? "timeout"
                             : "exited";
            }
            json_decref(ppub);
            json_decref(ppriv);
        }
        /* the command's end is activity: the session is not idle before the push */
        ald_session_touch(d, s);
        keep_output(J, run->id, sid, pnum);
        json_object_set_new(pub, "exit_code", code >= 0 ? json_integer(code) : json_null());
        if (reason && strcmp(reason, "timeout") == 0) {
            job_finish(J, pub, priv, "timed_out", "the command ran past timeout_s");
            goto end_session;
        }
        if (code != 0) {
            if (reason && strcmp(reason, "exited") != 0)
                snprintf(error, sizeof(error), "the command ended: %s", reason);
            else
                snprintf(error, sizeof(error), "the command failed (exit code %d)", code);
            job_finish(J, pub, priv, "failed", error);
            goto end_session;
        }
        json_object_set_new(priv, "phase", json_string("push"));
        job_save(J, pub, priv);
    }
    if (json_is_true(json_object_get(priv, "push"))) {
        char commit[128];
        int err = job_push(d, s, run, json_string_value(json_object_get(pub, "base")), commit,
                           sizeof(commit), error, sizeof(error));
        if (err == AL_EAGAIN) {
            if (run_cancelled(J, run))
                goto cancelled;
            goto out; /* stopping: the next start pushes again */
        }
        if (err < 0) {
            job_finish(J, pub, priv, "failed", error);
            goto end_session;
        }
        if (commit[0])
            json_object_set_new(pub, "pushed_commit", json_string(commit));
        json_t *pr = json_object_get(priv, "pull_request");
        if (commit[0] && json_is_object(pr)) {
            /* the job's base, or (NULL) the forge's default branch */
            const char *jbase = json_string_value(json_object_get(pub, "base"));
            char *url = NULL;
            struct ald_fault f;
            if (job_open_pr(d, json_string_value(json_object_get(pub, "repo")),
                            json_string_value(json_object_get(pub, "branch")), jbase,
                            json_string_value(json_object_get(pr, "title")),
                            json_string_value(json_object_get(pr, "body")), &url, &f) < 0) {
                snprintf(error, sizeof(error), "pull request: %.900s", f.message);
                job_finish(J, pub, priv, "failed", error);
                goto end_session;
            }
            json_object_set_new(pub, "pull_request_url", json_string(url));
            free(url);
        }
    }
    job_finish(J, pub, priv, "succeeded", NULL);
    goto end_session;
cancelled:
    /* what it printed so far, before the session's files go with it */
    if (json_is_integer(json_object_get(priv, "proc")))
        keep_output(J, run->id, json_string_value(json_object_get(pub, "session")),
                    (uint64_t)json_integer_value(json_object_get(priv, "proc")));
    ald_session_end(d, s, ALD_DELETED, "job-cancelled");
    job_finish(J, pub, priv, "cancelled", "cancelled");
end_session:
    if (s)
        ald_session_end(d, s, ALD_DELETED, "job-finished");
out:
    if (p)
        ald_proc_unref(d, p);
    if (s)
        ald_session_unref(d, s);
    json_decref(pub);
    json_decref(priv);
}

static void *job_thread(void *arg)
{
    struct job_thread_arg *a = arg;
    run_job(a->J, a->run);
    pthread_mutex_lock(&a->J->lock);
    a->run->done = 1;
    pthread_cond_broadcast(&a->J->cond);
    pthread_mutex_unlock(&a->J->lock);
    free(a);
    return NULL;
}

/* Starts a thread for the job (caller holds J->lock). */
static int run_start(struct ald_jobs *J, const char *id, const char *user, int resume)
{
    struct job_run *run = calloc(1, sizeof(*run));
    struct job_thread_arg *a = calloc(1, sizeof(*a));
    if (!run || !a)
        goto fail;
    snprintf(run->id, sizeof(run->id), "%s", id);
    snprintf(run->user, sizeof(run->user), "%s", user);
    run->resume = resume;
    run->cancel_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (run->cancel_efd < 0)
        goto fail;
    a->J = J;
    a->run = run;
    if (pthread_create(&run->thread, NULL, job_thread, a) != 0) {
        close(run->cancel_efd);
        goto fail;
    }
    run->next = J->runs;
    J->runs = run;
    return 0;
fail:
    free(run);
    free(a);
    return al_error_set(AL_ENOMEM, "job %s: no thread", id);
}

/* Joins the finished job threads (caller holds J->lock; drops it while
 * joining). */
static void runs_reap(struct ald_jobs *J)
{
    for (;;) {
        struct job_run **pp = &J->runs, *done = NULL;
        for (; *pp; pp = &(*pp)->next)
            if ((*pp)->done && !(*pp)->waiters) {
                done = *pp;
                *pp = done->next;
                break;
            }
        if (!done)
            return;
        pthread_mutex_unlock(&J->lock);
        pthread_join(done->thread, NULL);
        close(done->cancel_efd);
        free(done);
        pthread_mutex_lock(&J->lock);
    }
}

/* A row of the store's answers: {"pub", "priv"} or [pub, priv]. */
static void row_parts(json_t *row, json_t **pub, json_t **priv)
{
    *pub = json_is_array(row) ? json_array_get(row, 0) : json_object_get(row, "pub");
    *priv = json_is_array(row) ? json_array_get(row, 1) : json_object_get(row, "priv");
}

/* Cluster mode: claims queued jobs for this node in one store transaction
 * (each user's running jobs counted cluster-wide) and starts them here
 * (caller holds J->lock). Nothing while the node drains or is fenced. */
static void schedule_claim(struct ald_jobs *J, uint64_t total)
{
    struct ald *d = J->d;
    const struct ald_jobs_config *jc = &d->cfg->jobs;
    if (ald_cluster_state(d) != ALD_NODE_UP || atomic_load(&d->draining))
        return;
    json_t *rows = NULL;
    if (J->ops->claim(J->st, ald_cluster_self(d), (unsigned)(jc->max_running - total),
                      (unsigned)jc->max_running_per_user, &rows) < 0) {
        al_log(AL_LOG_WARN, "jobs: claiming: %s", al_error_last());
        json_decref(rows);
        return;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_t *pub, *priv;
        row_parts(row, &pub, &priv);
        const char *id = json_string_value(json_object_get(pub, "id"));
        const char *user = json_string_value(json_object_get(pub, "user"));
        if (!id || !user)
            continue;
        json_object_set_new(pub, "state", json_string("running"));
        json_object_set_new(pub, "node", json_string(ald_cluster_self(d)));
        set_time(pub, "started_at");
        if (job_save(J, pub, priv) < 0 || run_start(J, id, user, 0) < 0)
            continue;
        al_log(AL_LOG_INFO, "job %s started (claimed by node %s)", id, ald_cluster_self(d));
        job_notify(J, pub, priv, "job.started");
    }
    json_decref(rows);
}

void ald_jobs_fail_lost(struct ald *d, json_t *jobs, const char *reason)
{
    struct ald_jobs *J = d->jobs;
    size_t i;
    json_t *row;
    json_array_foreach(jobs, i, row)
    {
        json_t *pub, *priv;
        row_parts(row, &pub, &priv);
        if (!J || !json_is_object(pub) || !json_is_object(priv)) {
            al_log(AL_LOG_WARN, "job %s: its node is down (%s), left for the next sweep",
                   json_string_value(json_object_get(pub, "id")), reason);
            continue;
        }
        job_finish(J, pub, priv, "failed", reason);
    }
}

/* Starts the queued jobs there is room for, oldest first (caller holds
 * J->lock). */
static void schedule(struct ald_jobs *J)
{
    const struct ald_jobs_config *jc = &J->d->cfg->jobs;
    uint64_t total = 0;
    for (struct job_run *r = J->runs; r; r = r->next)
        total += !r->done;
    if (total >= jc->max_running)
        return;
    if (J->d->cluster) {
        if (J->ops->claim)
            schedule_claim(J, total);
        return;
    }
    json_t *rows = NULL;
    if (J->ops->in_state(J->st, "queued", &rows) < 0) {
        al_log(AL_LOG_ERROR, "jobs: %s", al_error_last());
        return;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        if (total >= jc->max_running || atomic_load(&J->d->draining))
            break;
        json_t *pub = json_array_get(row, 0), *priv = json_array_get(row, 1);
        const char *id = json_string_value(json_object_get(pub, "id"));
        const char *user = json_string_value(json_object_get(pub, "user"));
        if (!id || !user)
            continue;
        uint64_t mine = 0;
        for (struct job_run *r = J->runs; r; r = r->next)
            mine += !r->done && strcmp(r->user, user) == 0;
        if (mine >= jc->max_running_per_user)
            continue;
        json_object_set_new(pub, "state", json_string("running"));
        set_time(pub, "started_at");
        if (job_save(J, pub, priv) < 0 || run_start(J, id, user, 0) < 0)
            continue;
        total++;
        al_log(AL_LOG_INFO, "job %s started", id);
        job_notify(J, pub, priv, "job.started");
    }
    json_decref(rows);
}

static void *sched_main(void *arg)
{
    struct ald_jobs *J = arg;
    pthread_mutex_lock(&J->lock);
    while (!J->stop) {
        runs_reap(J);
        if (J->stop)
            break;
        schedule(J);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += JOB_SCHED_WAIT_MS / 1000;
        pthread_cond_timedwait(&J->cond, &J->lock, &ts);
    }
    pthread_mutex_unlock(&J->lock);
    return NULL;
}

int ald_job_cancel(struct ald *d, const struct ald_principal *who, const char *id, json_t **out,
                   struct ald_fault *f)
{
    struct ald_jobs *J = d->jobs;
    *out = NULL;
    if (!J)
        return ald_fault_set(f, ALD_FAULT_UNAVAILABLE, "unavailable", NULL, "jobs are not running");
    json_t *pub = NULL, *priv = NULL;
    int err = job_load(J, who, id, &pub, &priv, f);
    if (err < 0)
        return err;
    pthread_mutex_lock(&J->lock);
    struct job_run *run = NULL;
    for (struct job_run *r = J->runs; r; r = r->next)
        if (strcmp(r->id, id) == 0 && !r->done)
            run = r;
    if (run) {
        run->cancel = 1;
        uint64_t one = 1;
        if (write(run->cancel_efd, &one, sizeof(one)) < 0)
            al_log(AL_LOG_WARN, "job %s: cancel: %s", id, strerror(errno));
        /* the job's thread ends it: wait for that */
        run->waiters++;
        while (!run->done)
            pthread_cond_wait(&J->cond, &J->lock);
        run->waiters--;
        pthread_cond_broadcast(&J->cond);
    } else {
        /* the row again, under the lock the scheduler starts jobs in */
        json_decref(pub);
        json_decref(priv);
        err = job_load(J, who, id, &pub, &priv, f);
        const char *state = err == 0 ? json_string_value(json_object_get(pub, "state")) : NULL;
        if (state && strcmp(state, "queued") == 0) {
            json_object_set_new(pub, "error", json_string("cancelled"));
            json_object_set_new(pub, "state", json_string("cancelled"));
            set_time(pub, "finished_at");
            job_save(J, pub, priv);
            al_log(AL_LOG_INFO, "job %s cancelled while queued", id);
            job_notify(J, pub, priv, "job.finished");
        } else if (state && strcmp(state, "running") == 0) {
            err = ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", NULL,
                                "job %s is being picked up; try again", id);
        } else if (state) {
            err = ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", NULL, "job %s has finished (%s)",
                                id, state);
        }
    }
    pthread_mutex_unlock(&J->lock);
    json_decref(pub);
    json_decref(priv);
    if (err < 0)
        return err;
    return job_load(J, who, id, out, NULL, f);
}

int ald_jobs_start(struct ald *d, const struct ald_jobs_ops *ops, struct ald_jobstore *st)
{
    struct ald_jobs *J = calloc(1, sizeof(*J));
    if (!J)
        return AL_ENOMEM;
    J->d = d;
    J->ops = ops;
    J->st = st;
    pthread_mutex_init(&J->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&J->cond, &ca);
    pthread_condattr_destroy(&ca);
    int n = snprintf(J->dir, sizeof(J->dir), "%s/jobs", d->cfg->state_dir);
    if (n < 0 || (size_t)n >= sizeof(J->dir) || (mkdir(J->dir, 0700) < 0 && errno != EEXIST)) {
        int err = al_error_set_errno(AL_EIO, errno, "%s", J->dir);
        free(J);
        return err;
    }
    /* the running jobs of an earlier daemon: their threads again */
    json_t *rows = NULL;
    int err = d->cluster && ops->running_on ? ops->running_on(st, ald_cluster_self(d), &rows)
                                            : ops->in_state(st, "running", &rows);
    size_t i;
    json_t *row;
    pthread_mutex_lock(&J->lock);
    json_array_foreach(rows, i, row)
    {
        json_t *pub = json_array_get(row, 0);
        const char *id = json_string_value(json_object_get(pub, "id"));
        const char *user = json_string_value(json_object_get(pub, "user"));
        if (id && user && run_start(J, id, user, 1) == 0)
            al_log(AL_LOG_INFO, "job %s: picked up again", id);
    }
    pthread_mutex_unlock(&J->lock);
    json_decref(rows);
    if (err < 0) {
        al_log(AL_LOG_ERROR, "jobs: %s", al_error_last());
        err = 0; /* the API still answers; queued jobs wait */
    }
    d->jobs = J;
    if (pthread_create(&J->sched, NULL, sched_main, J) != 0) {
        d->jobs = NULL;
        return al_error_set(AL_ENOMEM, "jobs: no scheduler thread");
    }
    J->started = 1;
    return err;
}

void ald_jobs_stop(struct ald *d)
{
    struct ald_jobs *J = d->jobs;
    if (!J)
        return;
    pthread_mutex_lock(&J->lock);
    J->stop = 1;
    pthread_cond_broadcast(&J->cond);
    pthread_mutex_unlock(&J->lock);
    if (J->started)
        pthread_join(J->sched, NULL);
    /* the job threads end on d->stop_fd (set by now) */
    pthread_mutex_lock(&J->lock);
    while (J->runs) {
        struct job_run *r = J->runs;
        J->runs = r->next;
        pthread_mutex_unlock(&J->lock);
        pthread_join(r->thread, NULL);
        close(r->cancel_efd);
        free(r);
        pthread_mutex_lock(&J->lock);
    }
    pthread_mutex_unlock(&J->lock);
    d->jobs = NULL;
    pthread_cond_destroy(&J->cond);
    pthread_mutex_destroy(&J->lock);
    free(J);
}
