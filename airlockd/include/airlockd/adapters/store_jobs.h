/* The jobs' rows (docs/jobs.md): a table of its own in the state database,
 * (SQLite or PostgreSQL, adapters/db.h), needing nothing of store.c's. Each row is a job's public
 * object (what the API returns) and its private part (what runs it: the session spec, the command,
 * the webhook's secret; never returned). Any thread may call any function; errors as db.h's
 * (AL_EAGAIN: the database cannot be reached). */
#ifndef ALD_ADAPTERS_STORE_JOBS_H
#define ALD_ADAPTERS_STORE_JOBS_H

#include <stdint.h>

#include <jansson.h>

struct ald_jobstore;
struct ald_db;

/* Opens the database at `path` (made if missing) and creates the jobs
 * table if it is not there (CREATE TABLE IF NOT EXISTS: no schema version
 * of its own). *out: the store, ald_jobstore_close() frees it. */
int ald_jobstore_open(struct ald_jobstore **out, const char *path);
void ald_jobstore_close(struct ald_jobstore *st);
/* The same on an open database (SQLite or PostgreSQL, adapters/db.h);
 * the store keeps a reference of its own. */
int ald_jobstore_open_db(struct ald_jobstore **out, struct ald_db *db);

/* Inserts or replaces the job pub["id"] (pub["user"], pub["state"] are
 * required). Borrowed. 0 or AL_EINVAL / AL_EIO / AL_ENOMEM. */
int ald_jobstore_put(struct ald_jobstore *st, json_t *pub, json_t *priv);

/* The job `id` when `user` is NULL or its owner: *pub, *priv (new
 * references; priv may be NULL). AL_ENOTFOUND otherwise. */
int ald_jobstore_get(struct ald_jobstore *st, const char *id, const char *user, json_t **pub,
                     json_t **priv);

/* A page of public objects, oldest first: jobs after the cursor `after`
 * (0: from the start) of `user` (NULL: all) in `state` (NULL: any), at
 * most `limit`. *next: the cursor of the next page, 0 when this is the
 * last. */
int ald_jobstore_page(struct ald_jobstore *st, const char *user, const char *state, int64_t after,
                      unsigned limit, json_t **out, int64_t *next);

/* Every job in `state`, oldest first, as [[pub, priv], ...]. */
int ald_jobstore_in_state(struct ald_jobstore *st, const char *state, json_t **out);

/* Cluster mode (issue 13; struct ald_jobs_ops.claim): in one transaction,
 * takes up to `max` queued jobs, oldest first, for node `node`: each
 * becomes `running` with jobs.node = node and pub.state "running". A job
 * is taken only while its user has fewer than `per_user` running jobs in
 * the whole cluster (0: none is taken), counted under a per-user lock, so
 * two nodes claiming at once never exceed it and never take the same job
 * (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: BEGIN IMMEDIATE). *claimed:
 * [{"pub", "priv"}, ...] (empty when nothing was due; max 0 takes
 * nothing). */
int ald_jobstore_claim(struct ald_jobstore *st, const char *node, unsigned max, unsigned per_user,
                       json_t **claimed);

/* The running jobs whose jobs.node is `node` (NULL: those with none, a
 * single machine's), oldest first, as in_state: [[pub, priv], ...]. */
int ald_jobstore_running_on(struct ald_jobstore *st, const char *node, json_t **out);

#endif
