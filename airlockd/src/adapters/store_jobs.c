/* The jobs table (store_jobs.h). A connection of its own to the state
 * database: store.c's schema version is not touched, so that the tables of
 * other features added beside it (each CREATE TABLE IF NOT EXISTS, in a
 * file of its own) merge without renumbering anything. */
#include "airlockd/adapters/store_jobs.h"

#include "airlock/error.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char schema_jobs[] =
    "CREATE TABLE IF NOT EXISTS jobs ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, user TEXT NOT NULL,"
    " state TEXT NOT NULL, pub TEXT NOT NULL, priv TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS jobs_user ON jobs(user, seq);"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);";

struct ald_jobstore {
    sqlite3 *db;
    pthread_mutex_t lock;
};

static int db_fail(struct ald_jobstore *st, const char *what)
{
    return al_error_set(AL_EIO, "database (jobs): %s: %s", what, sqlite3_errmsg(st->db));
}

int ald_jobstore_open(struct ald_jobstore **out, const char *path)
{
    *out = NULL;
    struct ald_jobstore *st = calloc(1, sizeof(*st));
    if (!st)
        return AL_ENOMEM;
    pthread_mutex_init(&st->lock, NULL);
    int err = 0;
    char *msg = NULL;
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        err = al_error_set(AL_EIO, "database %s: %s", path,
                           st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(st->db, 5000);
    if (sqlite3_exec(st->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     " PRAGMA wal_autocheckpoint=0;",
                     NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(st->db, schema_jobs, NULL, NULL, &msg) != SQLITE_OK) {
        err = al_error_set(AL_EIO, "database %s: the jobs table: %s", path, msg ? msg : "failed");
        sqlite3_free(msg);
        goto out;
    }
    *out = st;
    st = NULL;
out:
    ald_jobstore_close(st);
    return err;
}

void ald_jobstore_close(struct ald_jobstore *st)
{
    if (!st)
        return;
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
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
    sqlite3_stmt *s = NULL;
    if (!pub_txt || !priv_txt)
        goto out;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(
            st->db,
            "INSERT INTO jobs(id, user, state, pub, priv) VALUES (?1, ?2, ?3, ?4, ?5)"
            " ON CONFLICT(id) DO UPDATE SET state = ?3, pub = ?4, priv = ?5",
            -1, &s, NULL) != SQLITE_OK) {
        err = db_fail(st, "prepare");
    } else {
        bind_text(s, 1, id);
        bind_text(s, 2, user);
        bind_text(s, 3, state);
        bind_text(s, 4, pub_txt);
        bind_text(s, 5, priv_txt);
        err = sqlite3_step(s) == SQLITE_DONE ? 0 : db_fail(st, "put");
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
out:
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
    sqlite3_stmt *s = NULL;
    int err;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT pub, priv FROM jobs WHERE id = ?1 AND (?2 IS NULL OR user = ?2)",
                           -1, &s, NULL) != SQLITE_OK) {
        err = db_fail(st, "prepare");
        goto out;
    }
    bind_text(s, 1, id);
    bind_text(s, 2, user);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        err = al_error_set(AL_ENOTFOUND, "no job %s", id);
    } else if (rc != SQLITE_ROW) {
        err = db_fail(st, "get");
    } else {
        *pub = column_json(s, 0);
        if (priv)
            *priv = column_json(s, 1);
        err = *pub && (!priv || *priv) ? 0 : al_error_set(AL_EIO, "job %s: a bad row", id);
        if (err < 0) {
            json_decref(*pub);
            *pub = NULL;
            if (priv) {
                json_decref(*priv);
                *priv = NULL;
            }
        }
    }
out:
    sqlite3_finalize(s);
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
    sqlite3_stmt *s = NULL;
    int err = 0;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT seq, pub FROM jobs WHERE seq > ?1 AND (?2 IS NULL OR user = ?2)"
                           " AND (?3 IS NULL OR state = ?3) ORDER BY seq LIMIT ?4",
                           -1, &s, NULL) != SQLITE_OK) {
        err = db_fail(st, "prepare");
        goto out;
    }
    sqlite3_bind_int64(s, 1, after);
    bind_text(s, 2, user);
    bind_text(s, 3, state);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)limit + 1);
    unsigned n = 0;
    int rc, more = 0;
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
        err = db_fail(st, "page");
    if (!more)
        *next = 0;
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
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
    sqlite3_stmt *s = NULL;
    int err = 0;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db, "SELECT pub, priv FROM jobs WHERE state = ?1 ORDER BY seq", -1,
                           &s, NULL) != SQLITE_OK) {
        err = db_fail(st, "prepare");
        goto out;
    }
    bind_text(s, 1, state);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *pub = column_json(s, 0), *priv = column_json(s, 1);
        if (!pub || !priv || json_array_append_new(*out, json_pack("[OO]", pub, priv)) < 0) {
            json_decref(pub);
            json_decref(priv);
            err = al_error_set(AL_EIO, "a bad job row");
            break;
        }
        json_decref(pub);
        json_decref(priv);
    }
    if (err == 0 && rc != SQLITE_DONE)
        err = db_fail(st, "in_state");
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    if (err < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return err;
}
