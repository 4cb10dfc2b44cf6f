/* Routes: webhooks in from forges (POST /v1/hooks/github, docs/forge.md).
 * No API key: a delivery is authenticated by its X-Hub-Signature-256, made
 * with the operator's secret (hooks.github.secret_file). */
#include "request.h"

#include "airlockd/adapters/store.h"
#include "airlockd/api/ghhook.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/jobs.h"

#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOOK_SECRET_MAX 4096

/* Reads the hook secret (trailing white space dropped) into buf. 0 or AL_E*. */
static int secret_read(struct al_buf *buf, const char *path)
{
    int err = al_buf_read_file(buf, path);
    if (err < 0)
        return err;
    while (buf->len && (buf->ptr[buf->len - 1] == '\n' || buf->ptr[buf->len - 1] == '\r' ||
                        buf->ptr[buf->len - 1] == ' ' || buf->ptr[buf->len - 1] == '\t'))
        buf->len--;
    return buf->len ? 0 : al_error_set(AL_EINVAL, "%s is empty", path);
}

/* A 2xx that says the delivery was read and why nothing happens. */
static enum MHD_Result reply_ignored(struct ald_req *r, const char *why)
{
    al_log(AL_LOG_INFO, "hooks/github %s: ignored: %s",
           ald_req_header(r, "X-GitHub-Delivery") ? ald_req_header(r, "X-GitHub-Delivery") : "-",
           why);
    return ald_reply_json(r, 200, json_pack("{s:b, s:s}", "ignored", 1, "reason", why));
}

/* The POST /v1/jobs body of a comment's job: the template's (deep copy),
 * its "repo" https://HOST/OWNER/NAME when it names none (none at all when
 * it says null: an empty workspace), and env
 * AIRLOCK_COMMENT (the whole comment), AIRLOCK_COMMENT_ARGS (what follows
 * the command), AIRLOCK_COMMENT_AUTHOR, AIRLOCK_COMMENT_URL,
 * AIRLOCK_REPOSITORY, AIRLOCK_ISSUE_NUMBER and, on a pull request,
 * AIRLOCK_PR_NUMBER (these win over the template's). NULL on ENOMEM or a
 * template env that is not an object. */
static json_t *job_body(const struct ald_forgecfg *fc, const struct ald_hook_repo *t,
                        const struct ald_ghhook_comment *c)
{
    json_t *job = json_deep_copy(t->job);
    json_t *env = job ? json_object_get(job, "env") : NULL;
    char num[32], repo[512];
    if (!job)
        return NULL;
    if (!env) {
        env = json_object();
        if (!env || json_object_set_new(job, "env", env) < 0)
            goto fail;
    }
    if (!json_is_object(env))
        goto fail;
    json_t *repo_v = json_object_get(job, "repo");
    if (json_is_null(repo_v)) {
        json_object_del(job, "repo"); /* "repo": null: an empty workspace */
    } else if (!repo_v) {
        int n = snprintf(repo, sizeof(repo), "https://%s/%s", fc->gh_host, c->repo);
        if (n < 0 || (size_t)n >= sizeof(repo) ||
            json_object_set_new(job, "repo", json_string(repo)) < 0)
            goto fail;
    }
    snprintf(num, sizeof(num), "%lld", (long long)c->number);
    if (json_object_set_new(env, "AIRLOCK_COMMENT", json_string(c->text)) < 0 ||
        json_object_set_new(env, "AIRLOCK_COMMENT_ARGS", json_string(c->args)) < 0 ||
        json_object_set_new(env, "AIRLOCK_COMMENT_AUTHOR", json_string(c->author)) < 0 ||
        json_object_set_new(env, "AIRLOCK_COMMENT_URL", json_string(c->url)) < 0 ||
        json_object_set_new(env, "AIRLOCK_REPOSITORY", json_string(c->repo)) < 0 ||
        json_object_set_new(env, "AIRLOCK_ISSUE_NUMBER", json_string(num)) < 0 ||
        (c->is_pr && json_object_set_new(env, "AIRLOCK_PR_NUMBER", json_string(num)) < 0))
        goto fail;
    return job;
fail:
    json_decref(job);
    return NULL;
}

/* Starts the job `body` as `user` (ald_job_submit_ex, core/jobs.h) with
 * `idem` as its Idempotency-Key; *replayed 1 when that key named an
 * earlier job (returned again). The one place the hook reaches jobs. */
static int hook_job_submit(struct ald *d, const char *user, json_t *body, const char *idem,
                           json_t **job_out, int *replayed, struct ald_fault *f)
{
    struct ald_user u;
    struct ald_principal p;
    memset(&p, 0, sizeof(p));
    *job_out = NULL;
    int err = ald_store_user_get(d->st, user, &u);
    if (err == AL_ENOTFOUND)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL,
                             "hooks.github: the template's user %s does not exist", user);
    if (err < 0)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
    snprintf(p.user, sizeof(p.user), "%s", u.name);
    snprintf(p.key_id, sizeof(p.key_id), "github-hook");
    p.admin = u.admin;
    p.max_sessions = u.max_sessions;
    p.max_memory_mb = u.max_memory_mb;
    return ald_job_submit_ex(d, &p, body, idem, job_out, replayed, f);
}

enum MHD_Result ald_route_hook_github(struct ald_req *r)
{
    struct ald *d = r->d;
    const struct ald_forgecfg *fc = &d->cfg->forge;
    struct al_buf secret;
    struct ald_ghhook_comment c;
    struct ald_fault f;
    char why[256], idem[160];
    json_t *body = NULL, *job = NULL;
    enum MHD_Result ret;
    al_buf_init(&secret, HOOK_SECRET_MAX);
    memset(&c, 0, sizeof(c));
    if (!fc->gh_enabled) {
        ret = ald_reply_error(r, 404, "not_found", NULL,
                              "GitHub webhooks are not configured (hooks.github)");
        goto out;
    }
    if (secret_read(&secret, fc->gh_secret_file) < 0) {
        al_log(AL_LOG_ERROR, "hooks.github.secret_file: %s", al_error_last());
        ret = ald_reply_error(r, 500, "internal", NULL, "the webhook secret cannot be read");
        goto out;
    }
    /* Nothing of the body is read before its signature is checked. */
    const char *sig = ald_req_header(r, "X-Hub-Signature-256");
    if (ald_ghhook_sig_verify(sig, sig ? strlen(sig) : 0, secret.ptr, secret.len, r->body.ptr,
                              r->body.len) < 0) {
        al_log(AL_LOG_WARN, "hooks/github: refused: %s", al_error_last());
        ret = ald_reply_error(r, 401, "unauthorized", "X-Hub-Signature-256",
                              "missing or wrong X-Hub-Signature-256");
        goto out;
    }
    const char *event = ald_req_header(r, "X-GitHub-Event");
    if (event && strcmp(event, "ping") == 0) {
        ret = reply_ignored(r, "ping");
        goto out;
    }
    int res =
        ald_ghhook_parse(&c, why, sizeof(why), event, r->body.ptr, r->body.len, fc->gh_command);
    if (res == AL_ENOMEM || (res < 0 && res != AL_EINVAL)) {
        ret = ald_reply_error(r, 500, "internal", NULL, "out of memory");
        goto out;
    }
    if (res < 0) {
        ret = ald_reply_error(r, 400, "invalid_json", NULL, "%s", why);
        goto out;
    }
    if (res == ALD_GHHOOK_IGNORE) {
        ret = reply_ignored(r, why);
        goto out;
    }
    /* A signed body stays valid forever: replayed after its
     * Idempotency-Key is gone (24 h) it would start the job again. GitHub
     * dates every comment (signed with the body); an old one, or one
     * without a date, starts nothing. */
    if (!c.created_s) {
        ret = reply_ignored(r, "the comment has no created_at: a delivery that cannot be dated "
                               "starts nothing");
        goto out;
    }
    if ((int64_t)time(NULL) - c.created_s > ALD_GHHOOK_MAX_AGE_S) {
        ret = reply_ignored(r, "the comment is older than 23 hours (a replayed delivery?)");
        goto out;
    }
    const struct ald_hook_repo *t = ald_forgecfg_repo(fc, c.repo);
    if (!t) {
        snprintf(why, sizeof(why), "repository %s has no template (hooks.github.repos)", c.repo);
        ret = reply_ignored(r, why);
        goto out;
    }
    int allowed = 0;
    for (size_t i = 0; i < fc->gh_associations.len; i++)
        allowed |= strcmp(fc->gh_associations.items[i], c.association) == 0;
    if (!allowed) {
        snprintf(why, sizeof(why), "%s's author_association %s may not start jobs", c.author,
                 c.association[0] ? c.association : "(none)");
        ret = reply_ignored(r, why);
        goto out;
    }
    if (!(body = job_body(fc, t, &c))) {
        ret = ald_reply_error(r, 500, "internal", NULL,
                              "hooks.github.repos.%s: the job template cannot be used", t->name);
        goto out;
    }
    /* The job's Idempotency-Key: GitHub's redelivery must not start a
     * second job. The comment's id is signed with the body, the
     * X-GitHub-Delivery header is not: keyed by the comment, a signed body
     * replayed under a new delivery id gives the same job too. A comment
     * event without an id falls back to the delivery id. */
    const char *delivery = ald_req_header(r, "X-GitHub-Delivery");
    int n = c.comment_id ? snprintf(idem, sizeof(idem), "github:%s:comment:%lld", event,
                                    (long long)c.comment_id)
            : delivery   ? snprintf(idem, sizeof(idem), "github:delivery:%s", delivery)
                         : 0;
    if (n < 0 || (size_t)n >= sizeof(idem) || n > 128) {
        ret = ald_reply_error(r, 400, "invalid_value", "X-GitHub-Delivery",
                              "X-GitHub-Delivery is too long");
        goto out;
    }
    int replayed = 0;
    if (hook_job_submit(d, t->user, body, n > 0 ? idem : NULL, &job, &replayed, &f) < 0) {
        al_log(AL_LOG_WARN, "hooks/github %s: %s #%lld: no job: %s", delivery ? delivery : "-",
               c.repo, (long long)c.number, f.message);
        ret = ald_reply_fault(r, &f);
        goto out;
    }
    al_log(AL_LOG_INFO, "hooks/github %s: %s #%lld by %s: job %s", delivery ? delivery : "-",
           c.repo, (long long)c.number, c.author,
           json_string_value(json_object_get(job, "id"))
               ? json_string_value(json_object_get(job, "id"))
               : "?");
    ret = ald_reply_json(
        r, replayed ? 200 : 201,
        json_pack("{s:b, s:b, s:O}", "started", !replayed, "replayed", replayed, "job", job));
out:
    al_buf_wipe_free(&secret);
    ald_ghhook_comment_free(&c);
    json_decref(body);
    json_decref(job);
    return ret;
}
