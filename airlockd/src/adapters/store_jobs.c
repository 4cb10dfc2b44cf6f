/* The jobs table (store_jobs.h) on the stores' database (db.h). Its schema
 * is its own (CREATE TABLE IF NOT EXISTS; in PostgreSQL versioned as
 * "jobs" in airlock_schema), so that the tables of other features added
 * beside it merge without renumbering store.c's steps. */
#include "airlockd/adapters/store_jobs.h"

#include "airlockd/adapters/db.h"
#include "store_rows.h"

#include "airlock/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct ald_db_migration schema_jobs[] = {
    {.sql = "CREATE TABLE IF NOT EXISTS jobs ("
            " seq {serial}, id TEXT NOT NULL UNIQUE, \"user\" TEXT NOT NULL,"
            " state TEXT NOT NULL, pub TEXT NOT NULL, priv TEXT NOT NULL);"
            "CREATE INDEX IF NOT EXISTS jobs_user ON jobs(\"user\", seq);"
            "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);"},
};

static const struct ald_sql jq_put = {
    "INSERT INTO jobs(id, \"user\", state, pub, priv) VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT(id) DO UPDATE SET state = $3, pub = $4, priv = $5",
    NULL};
static const struct ald_sql jq_get = {
    "SELECT pub, priv FROM jobs WHERE id = $1 AND ($2 IS NULL OR \"user\" = $2)",
    "SELECT pub, priv FROM jobs WHERE id = $1 AND ($2::text IS NULL OR \"user\" = $2)"};
static const struct ald_sql jq_page = {
    "SELECT seq, pub FROM jobs WHERE seq > $1 AND ($2 IS NULL OR \"user\" = $2)"
    " AND ($3 IS NULL OR state = $3) ORDER BY seq LIMIT $4",
    "SELECT seq, pub FROM jobs WHERE seq > $1 AND ($2::text IS NULL OR \"user\" = $2)"
    " AND ($3::text IS NULL OR state = $3) ORDER BY seq LIMIT $4"};
static const struct ald_sql jq_in_state = {
    "SELECT pub, priv FROM jobs WHERE state = $1 ORDER BY seq", NULL};

/* Cluster mode (issue 13): the claim of queued jobs by a node. Rows other
 * claimers hold are skipped (PostgreSQL; SQLite's BEGIN IMMEDIATE lets one
 * claimer in at a time); a user's running count is read under that user's
 * advisory lock, so two claimers never both take a user's last slot. */
/* $1 how many $2 per_user: the queued jobs of users below the cap (read
 * without the users' locks, so only a filter: claim_users counts again) */
#define CLAIMABLE                                                                                  \
    "SELECT id, \"user\", pub, priv FROM jobs WHERE state = 'queued' AND \"user\" NOT IN"          \
    " (SELECT \"user\" FROM jobs WHERE state = 'running' GROUP BY \"user\""                        \
    " HAVING count(*) >= $2) ORDER BY seq LIMIT $1"
static const struct ald_sql jq_claimable = {CLAIMABLE, CLAIMABLE " FOR UPDATE SKIP LOCKED"};
static const struct ald_sql jq_user_lock = {"SELECT $1", "SELECT pg_advisory_xact_lock($1)"};
static const struct ald_sql jq_running_of = {
    "SELECT count(*) FROM jobs WHERE state = 'running' AND \"user\" = $1", NULL};
static const struct ald_sql jq_take = {
    "UPDATE jobs SET state = 'running', node = $2, pub = $3 WHERE id = $1 AND state = 'queued'",
    NULL};
static const struct ald_sql jq_running_on = {
    "SELECT pub, priv FROM jobs WHERE state = 'running' AND node IS $1 ORDER BY seq",
    "SELECT pub, priv FROM jobs WHERE state = 'running' AND node IS NOT DISTINCT FROM $1::text"
    " ORDER BY seq"};

struct ald_jobstore {
    struct ald_db *db;
};

int ald_jobstore_open_db(struct ald_jobstore **out, struct ald_db *db)
{
    *out = NULL;
    struct ald_jobstore *st = calloc(1, sizeof(*st));
    if (!st)
        return AL_ENOMEM;
    st->db = ald_db_ref(db);
    int err = ald_db_migrate(db, "jobs", 0, schema_jobs, 1);
    /* the node that runs a job (cluster mode; NULL on a single machine) */
    if (err == 0)
        err = ald_db_add_column(db, "jobs", "node", "TEXT");
    if (err < 0) {
        ald_jobstore_close(st);
        return err;
    }
    *out = st;
    return 0;
}

int ald_jobstore_open(struct ald_jobstore **out, const char *path)
{
    struct ald_db *db = NULL;
    int err = ald_db_open_sqlite(&db, path);
    *out = NULL;
    err = err < 0 ? err : ald_jobstore_open_db(out, db);
    ald_db_unref(db);
    return err;
}

void ald_jobstore_close(struct ald_jobstore *st)
{
    if (!st)
        return;
    ald_db_unref(st->db);
    free(st);
}

int ald_jobstore_put(struct ald_jobstore *st, json_t *pub, json_t *priv)
{
    const char *id = json_string_value(json_object_get(pub, "id"));
    const char *user = json_string_value(json_object_get(pub, "user"));
    const char *state = json_string_value(json_object_get(pub, "state"));
    if (!id || !user || !state)
        return al_error_set(AL_EINVAL, "a job row needs id, user and state");
    char *pub_txt = json_dumps(pub, JSON_COMPACT);
    char *priv_txt = priv ? json_dumps(priv, JSON_COMPACT) : strdup("{}");
    int err = AL_ENOMEM;
    if (pub_txt && priv_txt) {
        struct ald_db_arg a[] = {ALD_DB_TXT(id), ALD_DB_TXT(user), ALD_DB_TXT(state),
                                 ALD_DB_TXT(pub_txt), ALD_DB_TXT(priv_txt)};
        err = ald_db_run(st->db, &jq_put, a, 5, NULL);
    }
    free(pub_txt);
    free(priv_txt);
    return err;
}

int ald_jobstore_get(struct ald_jobstore *st, const char *id, const char *user, json_t **pub,
                     json_t **priv)
{
    *pub = NULL;
    if (priv)
        *priv = NULL;
    struct ald_db_arg a[] = {ALD_DB_TXT(id), ALD_DB_TXT(user)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(st->db, &jq_get, a, 2, &r);
    if (err == 0 && r.n == 0)
        err = al_error_set(AL_ENOTFOUND, "no job %s", id);
    if (err == 0) {
        json_t *p = ald_rows_json(&r, 0, 0), *q = ald_rows_json(&r, 0, 1);
        if (p && q) {
            *pub = p;
            if (priv)
                *priv = q;
            else
                json_decref(q);
        } else {
            json_decref(p);
            json_decref(q);
            err = al_error_set(AL_EIO, "job %s: a bad row", id);
        }
    }
    ald_db_rows_free(&r);
    return err;
}

int ald_jobstore_page(struct ald_jobstore *st, const char *user, const char *state, int64_t after,
                      unsigned limit, json_t **out, int64_t *next)
{
    *out = json_array();
    *next = 0;
    if (!*out)
        return AL_ENOMEM;
    struct ald_db_arg a[] = {ALD_DB_INT(after), ALD_DB_TXT(user), ALD_DB_TXT(state),
                             ALD_DB_INT((int64_t)limit + 1)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(st->db, &jq_page, a, 4, &r);
    for (int i = 0; err == 0 && i < r.n && (unsigned)i < limit; i++) {
        json_t *pub = ald_rows_json(&r, i, 1);
        if (!pub || json_array_append_new(*out, pub) < 0)
            err = al_error_set(AL_EIO, "a bad job row");
    }
    /* a row after this page: *next is the page's last seq */
    if (err == 0 && (unsigned)r.n > limit && limit > 0)
        *next = ald_db_int(&r, (int)limit - 1, 0);
    ald_db_rows_free(&r);
    if (err < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return err;
}

/* Runs `q` with the one text argument `arg`; *out: a new array of each
 * row's [pub, priv] (its JSON columns 0 and 1), the caller's to free, or
 * NULL on error (AL_EIO when a row does not parse). */
static int pub_priv_rows(struct ald_jobstore *st, const struct ald_sql *q, const char *arg,
                         json_t **out)
{
    *out = json_array();
    if (!*out)
        return AL_ENOMEM;
    struct ald_db_arg a[] = {ALD_DB_TXT(arg)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(st->db, q, a, 1, &r);
    for (int i = 0; err == 0 && i < r.n; i++) {
        json_t *pub = ald_rows_json(&r, i, 0), *priv = ald_rows_json(&r, i, 1);
        int bad = !pub || !priv || json_array_append_new(*out, json_pack("[OO]", pub, priv)) < 0;
        json_decref(pub);
        json_decref(priv);
        if (bad)
            err = al_error_set(AL_EIO, "a bad job row");
    }
    ald_db_rows_free(&r);
    if (err < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return err;
}

int ald_jobstore_in_state(struct ald_jobstore *st, const char *state, json_t **out)
{
    return pub_priv_rows(st, &jq_in_state, state, out);
}

/* The advisory lock key of a user's running jobs: FNV-1a 64 of the name
 * (every node computes the same one), as PostgreSQL's bigint. */
static int64_t user_lock_key(const char *user)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = "airlock-job-user:"; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (const char *p = user; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (int64_t)h;
}

static int cmp_key(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Takes the users' locks of the candidate rows, in key order (no
 * deadlock between two claimers), and reads each user's running count
 * into running[user]. */
static int claim_users(struct ald_db_conn *c, const struct ald_db_rows *cand, json_t *running)
{
    int64_t *keys = calloc((size_t)cand->n + 1, sizeof(*keys));
    int err = keys ? 0 : AL_ENOMEM;
    int k = 0;
    for (int i = 0; err == 0 && i < cand->n; i++) {
        const char *u = ald_rows_str(cand, i, 1);
        if (!json_object_get(running, u)) {
            json_object_set_new(running, u, json_integer(0));
            keys[k++] = user_lock_key(u);
        }
    }
    if (err == 0)
        qsort(keys, (size_t)k, sizeof(*keys), cmp_key);
    for (int i = 0; err == 0 && i < k; i++) {
        struct ald_db_arg a[] = {ALD_DB_INT(keys[i])};
        err = ald_db_exec(c, &jq_user_lock, a, 1, NULL);
    }
    free(keys);
    const char *u;
    json_t *v;
    json_object_foreach(running, u, v)
    {
        if (err < 0)
            break;
        struct ald_db_arg a[] = {ALD_DB_TXT(u)};
        struct ald_db_rows r = {0};
        err = ald_db_exec(c, &jq_running_of, a, 1, &r);
        json_integer_set(v, ald_db_int(&r, 0, 0));
        ald_db_rows_free(&r);
    }
    return err;
}

/* Takes candidate row i for `node` when its user has room: appends {pub,
 * priv} to out. */
static int claim_row(struct ald_db_conn *c, const struct ald_db_rows *cand, int i, const char *node,
                     json_t *out)
{
    json_t *pub = ald_rows_json(cand, i, 2), *priv = ald_rows_json(cand, i, 3);
    char *txt = NULL;
    int err = pub && priv ? 0 : al_error_set(AL_EIO, "job %s: a bad row", ald_rows_str(cand, i, 0));
    if (err == 0) {
        json_object_set_new(pub, "state", json_string("running"));
        err = (txt = json_dumps(pub, JSON_COMPACT)) ? 0 : AL_ENOMEM;
    }
    struct ald_db_arg a[] = {ALD_DB_TXT(ald_rows_str(cand, i, 0)), ALD_DB_TXT(node),
                             ALD_DB_TXT(txt)};
    struct ald_db_rows r = {0};
    if (err == 0)
        err = ald_db_exec(c, &jq_take, a, 3, &r);
    if (err == 0 && r.changes == 1)
        json_array_append_new(out, json_pack("{s:O, s:O}", "pub", pub, "priv", priv));
    ald_db_rows_free(&r);
    free(txt);
    json_decref(pub);
    json_decref(priv);
    return err;
}

int ald_jobstore_claim(struct ald_jobstore *st, const char *node, unsigned max, unsigned per_user,
                       json_t **claimed)
{
    *claimed = NULL;
    json_t *out = json_array(), *running = json_object();
    struct ald_db_conn *c = NULL;
    struct ald_db_rows cand = {0};
    int err = out && running ? 0 : AL_ENOMEM;
    if (err == 0 && max > 0 && (err = ald_db_acquire(st->db, &c)) == 0 &&
        (err = ald_db_begin(c)) == 0) {
        struct ald_db_arg a[] = {ALD_DB_INT((int64_t)max * 4), ALD_DB_INT(per_user)};
        err = ald_db_exec(c, &jq_claimable, a, 2, &cand);
        if (err == 0)
            err = claim_users(c, &cand, running);
        for (int i = 0; err == 0 && i < cand.n && json_array_size(out) < max; i++) {
            json_t *n = json_object_get(running, ald_rows_str(&cand, i, 1));
            if (json_integer_value(n) >= (json_int_t)per_user)
                continue;
            size_t before = json_array_size(out);
            err = claim_row(c, &cand, i, node, out);
            if (err == 0 && json_array_size(out) > before)
                json_integer_set(n, json_integer_value(n) + 1);
        }
        err = err < 0 ? err : ald_db_commit(c);
        if (err < 0)
            ald_db_rollback(c);
    }
    ald_db_rows_free(&cand);
    if (c)
        ald_db_release(st->db, c);
    json_decref(running);
    if (err == 0)
        *claimed = out;
    else
        json_decref(out);
    return err;
}

int ald_jobstore_running_on(struct ald_jobstore *st, const char *node, json_t **out)
{
    return pub_priv_rows(st, &jq_running_on, node, out);
}
