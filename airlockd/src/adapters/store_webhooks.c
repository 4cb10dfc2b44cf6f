/* The webhook outbox in SQLite (adapters/webhooks.h). */
#include "airlockd/adapters/webhooks.h"

#include "airlockd/core/util.h"

#include "sqlite_conn.h"

#include "airlock/error.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Created when missing; never versioned with the main store's schema
 * (store.c), so the two can change apart. */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS webhook_deliveries ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, user TEXT NOT NULL,"
    " subject TEXT NOT NULL, event TEXT NOT NULL, url TEXT NOT NULL, secret TEXT NOT NULL,"
    " body TEXT NOT NULL, created_ms INTEGER NOT NULL, state TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER, last_status INTEGER,"
    " last_error TEXT, delivered_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(state, next_ms);"
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_subject ON webhook_deliveries(subject, seq);";

enum wq { WQ_INSERT, WQ_NEXT, WQ_ATTEMPT, WQ_LIST, WQ_COUNT };

static const char *const wqueries[WQ_COUNT] = {
    [WQ_INSERT] = "INSERT INTO webhook_deliveries(id, user, subject, event, url, secret, body,"
                  " created_ms, state, next_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                  " 'pending', ?8)",
    [WQ_NEXT] = "SELECT id, url, secret, body, created_ms, attempts, next_ms"
                " FROM webhook_deliveries WHERE state = 'pending' ORDER BY next_ms, seq LIMIT 1",
    [WQ_ATTEMPT] = "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?2,"
                   " last_error = ?3, state = ?4, next_ms = ?5, delivered_ms = ?6"
                   " WHERE id = ?1",
    [WQ_LIST] = "SELECT id, event, subject, url, state, attempts, last_status, last_error,"
                " created_ms, next_ms, delivered_ms FROM webhook_deliveries"
                " WHERE subject = ?1 AND (?2 IS NULL OR user = ?2) ORDER BY seq",
};

struct ald_whstore {
    sqlite3 *db;
    pthread_mutex_t lock;
    sqlite3_stmt *stmts[WQ_COUNT];
};

static int wdb_fail(struct ald_whstore *st, const char *what)
{
    return ald_sql_fail(st->db, what);
}

/* The prepared statement `q`, reset; NULL on error. Caller holds st->lock. */
static sqlite3_stmt *wstmt(struct ald_whstore *st, enum wq q)
{
    return ald_sql_stmt(st->db, &st->stmts[q], wqueries[q]);
}

int ald_whstore_open(struct ald_whstore **out, const char *path)
{
    char *msg = NULL;
    int err = 0;
    *out = NULL;
    struct ald_whstore *st = calloc(1, sizeof(*st));
    if (!st)
        return AL_ENOMEM;
    pthread_mutex_init(&st->lock, NULL);
    /* the main store's connection checkpoints the WAL (store.c) */
    if ((err = ald_sql_open(&st->db, path, NULL)) < 0)
        goto out;
    if (sqlite3_exec(st->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        err = al_error_set(AL_EIO, "webhook outbox %s: %s", path, msg ? msg : "failed");
        sqlite3_free(msg);
        goto out;
    }
    *out = st;
    st = NULL;
out:
    if (st)
        ald_whstore_close(st);
    return err;
}

void ald_whstore_close(struct ald_whstore *st)
{
    if (!st)
        return;
    for (int i = 0; i < WQ_COUNT; i++)
        sqlite3_finalize(st->stmts[i]);
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

int ald_whstore_insert(struct ald_whstore *st, const struct ald_webhook_item *it,
                       const char *sealed_secret)
{
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = wstmt(st, WQ_INSERT);
    if (s) {
        ald_sql_bind_text(s, 1, it->id);
        ald_sql_bind_text(s, 2, it->user);
        ald_sql_bind_text(s, 3, it->subject);
        ald_sql_bind_text(s, 4, it->event);
        ald_sql_bind_text(s, 5, it->url);
        ald_sql_bind_text(s, 6, sealed_secret);
        sqlite3_bind_text(s, 7, it->body, (int)it->body_len, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 8, (sqlite3_int64)it->created_ms);
        int rc = sqlite3_step(s);
        err = rc == SQLITE_DONE         ? 0
              : rc == SQLITE_CONSTRAINT ? al_error_set(AL_EEXISTS, "delivery %s exists", it->id)
                                        : wdb_fail(st, "insert");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? t : "";
}

int ald_whstore_next(struct ald_whstore *st, json_t **out)
{
    *out = NULL;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = wstmt(st, WQ_NEXT);
    if (s) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *out = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "id", col_text(s, 0), "url",
                             col_text(s, 1), "secret", col_text(s, 2), "body", col_text(s, 3),
                             "created_ms", (json_int_t)sqlite3_column_int64(s, 4), "attempts",
                             (json_int_t)sqlite3_column_int64(s, 5), "next_ms",
                             (json_int_t)sqlite3_column_int64(s, 6));
            err = *out ? 0 : AL_ENOMEM;
        } else
            err = rc == SQLITE_DONE ? 0 : wdb_fail(st, "next");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_whstore_attempt(struct ald_whstore *st, const char *id, long status, const char *error,
                        const char *state, uint64_t next_ms, uint64_t delivered_ms)
{
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = wstmt(st, WQ_ATTEMPT);
    if (s) {
        ald_sql_bind_text(s, 1, id);
        if (status)
            sqlite3_bind_int64(s, 2, status);
        ald_sql_bind_text(s, 3, error && *error ? error : NULL);
        ald_sql_bind_text(s, 4, state);
        if (next_ms)
            sqlite3_bind_int64(s, 5, (sqlite3_int64)next_ms);
        if (delivered_ms)
            sqlite3_bind_int64(s, 6, (sqlite3_int64)delivered_ms);
        err = sqlite3_step(s) == SQLITE_DONE ? 0 : wdb_fail(st, "update");
        if (err == 0 && sqlite3_changes(st->db) == 0)
            err = al_error_set(AL_ENOTFOUND, "no delivery %s", id);
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

static json_t *col_time(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL
               ? json_null()
               : ald_time_json((uint64_t)sqlite3_column_int64(s, i));
}

int ald_whstore_list(struct ald_whstore *st, const char *subject, const char *user, json_t **out)
{
    *out = NULL;
    json_t *arr = json_array();
    if (!arr)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO, rc = SQLITE_ERROR;
    sqlite3_stmt *s = wstmt(st, WQ_LIST);
    if (s) {
        ald_sql_bind_text(s, 1, subject);
        ald_sql_bind_text(s, 2, user);
        err = 0;
        while (err == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            int pending = strcmp(col_text(s, 4), "pending") == 0;
            json_t *row = json_pack(
                "{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "id", col_text(s, 0),
                "event", col_text(s, 1), "subject", col_text(s, 2), "url", col_text(s, 3), "state",
                col_text(s, 4), "attempts", (json_int_t)sqlite3_column_int64(s, 5), "last_status",
                sqlite3_column_type(s, 6) == SQLITE_NULL ? json_null()
                                                         : json_integer(sqlite3_column_int64(s, 6)),
                "last_error",
                sqlite3_column_type(s, 7) == SQLITE_NULL ? json_null()
                                                         : json_string(col_text(s, 7)),
                "created_at", col_time(s, 8), "next_attempt_at",
                pending ? col_time(s, 9) : json_null(), "delivered_at", col_time(s, 10));
            if (!row || json_array_append_new(arr, row) < 0)
                err = AL_ENOMEM;
        }
        if (err == 0 && rc != SQLITE_DONE)
            err = wdb_fail(st, "list");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}
