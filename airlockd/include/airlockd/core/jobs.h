/* Jobs (docs/jobs.md): a session plus a command that runs to its end, then
 * its result is kept (state, exit status, output, pushed commit, pull
 * request) and announced (webhooks). Queued while the user's or the
 * machine's running-job limit (config "jobs") is used; run by a thread per
 * running job; re-attached after a restart (the job's session is re-adopted
 * like any other, and its process's end still finishes the job). */
#ifndef ALD_CORE_JOBS_H
#define ALD_CORE_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "airlockd/core/config.h"
#include "airlockd/core/fault.h"
#include "airlockd/core/principal.h"
#include "airlockd/core/requests.h"

struct ald;
struct ald_jobstore;
struct ald_store;

/* What jobs need of the layers above core, filled in by main.c: the jobs
 * table (adapters/store_jobs.h, same contracts), a finished process's row
 * (ald_store_proc_get) and the api's parser of a session spec (a POST
 * /v1/sessions body: ald_body_create, its error as a fault). */
struct ald_jobs_ops {
    int (*put)(struct ald_jobstore *st, json_t *pub, json_t *priv);
    int (*get)(struct ald_jobstore *st, const char *id, const char *user, json_t **pub,
               json_t **priv);
    int (*page)(struct ald_jobstore *st, const char *user, const char *state, int64_t after,
                unsigned limit, json_t **out, int64_t *next);
    int (*in_state)(struct ald_jobstore *st, const char *state, json_t **out);
    int (*proc_get)(struct ald_store *st, const char *session, uint64_t num, json_t **pub,
                    json_t **priv);
    int (*create_req)(struct ald_create_req *out, const char *data, size_t len,
                      const struct ald_config *cfg, const char *user, struct ald_fault *f);
    /* The user `user` as the store has them now (admin, quotas) into *out
     * (key_id left empty); AL_ENOTFOUND once they were removed. */
    int (*user_get)(struct ald_store *st, const char *user, struct ald_principal *out);
    /* Cluster mode (ald_jobstore_claim / _running_on, store_jobs.h): takes
     * up to `max` queued jobs for `node` in one transaction, keeping each
     * user's running jobs cluster-wide within `per_user`; *claimed: an
     * array of {pub, priv}, now `running` and owned by `node`. */
    int (*claim)(struct ald_jobstore *st, const char *node, unsigned max, unsigned per_user,
                 json_t **claimed);
    /* The running jobs `node` owns (NULL: those with no node), as in_state. */
    int (*running_on)(struct ald_jobstore *st, const char *node, json_t **out);
};

/* Starts the scheduler (after ald_sessions_start, which re-adopts the
 * sessions of running jobs): running jobs of an earlier daemon are picked
 * up again, queued ones start when there is room. `st` is borrowed until
 * ald_jobs_stop(). */
int ald_jobs_start(struct ald *d, const struct ald_jobs_ops *ops, struct ald_jobstore *st);
/* Stops the scheduler and the job threads (running jobs stay running in
 * their sandboxes and in the store, for the next start). */
void ald_jobs_stop(struct ald *d);

/* Cluster mode: the running jobs of a node marked down (`jobs`: the
 * sweep's [{"pub","priv"}] or [[pub, priv]]) fail with `reason`, saved and
 * announced (job.finished) by this node, which alone saw them. */
void ald_jobs_fail_lost(struct ald *d, json_t *jobs, const char *reason);

/* Validates and queues a job from a POST /v1/jobs body (borrowed) for
 * principal p; same Idempotency-Key semantics as sessions (the same key
 * and body: the same job; another body: 409 conflict); *job_out = the
 * job's public JSON (new ref). */
int ald_job_submit(struct ald *d, const struct ald_principal *p, json_t *body, const char *idem_key,
                   json_t **job_out, struct ald_fault *f);
/* ald_job_submit, and *replayed 1 when the key named an earlier job. */
int ald_job_submit_ex(struct ald *d, const struct ald_principal *p, json_t *body,
                      const char *idem_key, json_t **job_out, int *replayed, struct ald_fault *f);

/* The job `id` if `who` may see it (its owner, or an admin): *out (new
 * ref). ALD_FAULT_NOT_FOUND otherwise. */
int ald_job_get(struct ald *d, const struct ald_principal *who, const char *id, json_t **out,
                struct ald_fault *f);
/* A page of `who`'s jobs (an admin's: everybody's), oldest first. */
int ald_job_list(struct ald *d, const struct ald_principal *who, const char *state, int64_t after,
                 unsigned limit, json_t **out, int64_t *next, struct ald_fault *f);
/* Cancels a queued or running job (its session ends); a finished job is a
 * 409 conflict. *out: the job after the cancel (new ref). */
int ald_job_cancel(struct ald *d, const struct ald_principal *who, const char *id, json_t **out,
                   struct ald_fault *f);
/* The job's output, stdout and stderr merged: the last
 * jobs.max_output_bytes of it (*truncated 1 when earlier bytes were
 * dropped), read from the running command's file or, once the job has
 * finished, from the copy kept for it. *data malloc'd (caller frees). */
int ald_job_output(struct ald *d, const struct ald_principal *who, const char *id, char **data,
                   size_t *len, int *truncated, struct ald_fault *f);

/* Checks the job's own fields of a POST /v1/jobs body (borrowed): exactly
 * one of "command" (1..4096 strings, the first not empty) or "script" (1
 * to 65536 bytes, run with /bin/sh -c), "timeout_s" (1..jc->max_timeout_s,
 * default jc->default_timeout_s), "push" (needs "repo"), "pull_request"
 * {"title", "body"} (needs push), "webhook" {"url", "secret"} (shapes
 * only: the URL's SSRF check and the sealing are the caller's). On success
 * *fields = {"argv", "timeout_s", "push", "pull_request", "webhook",
 * "repo", "base"} (null for what is not given) and *spec = the rest of the
 * body, the session spec (new refs). Else a 400 in `f`. */
int ald_job_body_check(json_t *body, const struct ald_jobs_config *jc, json_t **fields,
                       json_t **spec, struct ald_fault *f);
/* ald_job_body_check of `len` bytes of untrusted JSON (duplicate keys
 * refused). */
int ald_job_body_parse(const char *data, size_t len, const struct ald_jobs_config *jc,
                       json_t **fields, json_t **spec, struct ald_fault *f);

/* 1 when `id` has the shape of a job id ("j_" and 20 lower-case hex). */
int ald_job_id_valid(const char *id);

#endif
