/* The jobs table (store_jobs.h). A connection of its own to the state
 * database (sqlite_conn.h, as store_webhooks.c): store.c's schema version
 * is not touched, so that the tables of other features added beside it
 * (each CREATE TABLE IF NOT EXISTS, in a file of its own) merge without
 * renumbering anything. */
#include "airlockd/adapters/store_jobs.h"

#include "sqlite_conn.h"

#include "airlock/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char schema_jobs[] =
    "CREATE TABLE IF NOT EXISTS jobs ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, user TEXT NOT NULL,"
    " state TEXT NOT NULL, pub TEXT NOT NULL, priv TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS jobs_user ON jobs(user, seq);"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);";

enum jq { JQ_PUT, JQ_GET, JQ_PAGE, JQ_IN_STATE, JQ_COUNT };

static const char *const jqueries[JQ_COUNT] = {
    [JQ_PUT] = "INSERT INTO jobs(id, user, state, pub, priv) VALUES (?1, ?2, ?3, ?4, ?5)"
               " ON CONFLICT(id) DO UPDATE SET state = ?3, pub = ?4, priv = ?5",
    [JQ_GET] = "SELECT pub, priv FROM jobs WHERE id = ?1 AND (?2 IS NULL OR user = ?2)",
    [JQ_PAGE] = "SELECT seq, pub FROM jobs WHERE seq > ?1 AND (?2 IS NULL OR user = ?2)"
                " AND (?3 IS NULL OR state = ?3) ORDER BY seq LIMIT ?4",
    [JQ_IN_STATE] = "SELECT pub, priv FROM jobs WHERE state = ?1 ORDER BY seq",
};

struct ald_jobstore {
    sqlite3 *db;
    pthread_mutex_t lock;
    sqlite3_stmt *stmts[JQ_COUNT];
};

/* The statement for `q`, reset; NULL on error. Caller holds st->lock. */
static sqlite3_stmt *stmt(struct ald_jobstore *st, enum jq q)
{
    return ald_sql_stmt(st->db, &st->stmts[q], jqueries[q]);
}

int ald_jobstore_open(struct ald_jobstore **out, const char *path)
{
    *out = NULL;
    struct ald_jobstore *st = calloc(1, sizeof(*st));
    if (!st)
        return AL_ENOMEM;
    pthread_mutex_init(&st->lock, NULL);
    char *msg = NULL;
    int err = ald_sql_open(&st->db, path, NULL);
    if (err == 0 && sqlite3_exec(st->db, schema_jobs, NULL, NULL, &msg) != SQLITE_OK) {
        err = al_error_set(AL_EIO, "database %s: the jobs table: %s", path, msg ? msg : "failed");
        sqlite3_free(msg);
    }
    if (err == 0) {
        *out = st;
        st = NULL;
    }
    ald_jobstore_close(st);
    return err;
}

void ald_jobstore_close(struct ald_jobstore *st)
{
    if (!st)
        return;
    for (int i = 0; i < JQ_COUNT; i++)
        sqlite3_finalize(st->stmts[i]);
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static json_t *column_json(sqlite3_stmt *s, int i)
{
    const char *txt = (const char *)sqlite3_column_text(s, i);
    return txt ? json_loadb(txt, (size_t)sqlite3_column_bytes(s, i), 0, NULL) : NULL;
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
        pthread_mutex_lock(&st->lock);
        sqlite3_stmt *s = stmt(st, JQ_PUT);
        err = AL_EIO;
        if (s) {
            ald_sql_bind_text(s, 1, id);
            ald_sql_bind_text(s, 2, user);
            ald_sql_bind_text(s, 3, state);
            ald_sql_bind_text(s, 4, pub_txt);
            ald_sql_bind_text(s, 5, priv_txt);
            err = sqlite3_step(s) == SQLITE_DONE ? 0 : ald_sql_fail(st->db, "jobs: put");
            sqlite3_reset(s);
        }
        pthread_mutex_unlock(&st->lock);
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
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = stmt(st, JQ_GET);
    int err = AL_EIO;
    if (s) {
        ald_sql_bind_text(s, 1, id);
        ald_sql_bind_text(s, 2, user);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
            err = al_error_set(AL_ENOTFOUND, "no job %s", id);
        } else if (rc != SQLITE_ROW) {
            err = ald_sql_fail(st->db, "jobs: get");
        } else {
            json_t *p = column_json(s, 0), *q = column_json(s, 1);
            if (p && q) {
                *pub = p;
                if (priv)
                    *priv = q;
                else
                    json_decref(q);
                err = 0;
            } else {
                json_decref(p);
                json_decref(q);
                err = al_error_set(AL_EIO, "job %s: a bad row", id);
            }
        }
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_jobstore_page(struct ald_jobstore *st, const char *user, const char *state, int64_t after,
                      unsigned limit, json_t **out, int64_t *next)
{
    *out = json_array();
    *next = 0;
    if (!*out)
        return AL_ENOMEM;
    int err = 0, more = 0;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = stmt(st, JQ_PAGE);
    if (!s) {
        err = AL_EIO;
        goto out;
    }
    sqlite3_bind_int64(s, 1, after);
    ald_sql_bind_text(s, 2, user);
    ald_sql_bind_text(s, 3, state);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)limit + 1);
    unsigned n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == limit) {
            more = 1; /* a row after this page: *next is the page's last seq */
            break;
        }
        json_t *pub = column_json(s, 1);
        if (!pub || json_array_append_new(*out, pub) < 0) {
            err = al_error_set(AL_EIO, "a bad job row");
            break;
        }
        n++;
        *next = sqlite3_column_int64(s, 0);
    }
    if (err == 0 && !more && rc != SQLITE_DONE)
        err = ald_sql_fail(st->db, "jobs: page");
    sqlite3_reset(s);
out:
    pthread_mutex_unlock(&st->lock);
    if (!more)
        *next = 0;
    if (err < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return err;
}

int ald_jobstore_in_state(struct ald_jobstore *st, const char *state, json_t **out)
{
    *out = json_array();
    if (!*out)
        return AL_ENOMEM;
    int err = 0;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = stmt(st, JQ_IN_STATE);
    if (!s) {
        err = AL_EIO;
        goto out;
    }
    ald_sql_bind_text(s, 1, state);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *pub = column_json(s, 0), *priv = column_json(s, 1);
        int bad = !pub || !priv || json_array_append_new(*out, json_pack("[OO]", pub, priv)) < 0;
        json_decref(pub);
        json_decref(priv);
        if (bad) {
            err = al_error_set(AL_EIO, "a bad job row");
            break;
        }
    }
    if (err == 0 && rc != SQLITE_DONE)
        err = ald_sql_fail(st->db, "jobs: in_state");
    sqlite3_reset(s);
out:
    pthread_mutex_unlock(&st->lock);
    if (err < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return err;
}
