#include "airlockd/adapters/store.h"

#include "airlockd/core/util.h"

#include "sqlite_conn.h"

#include "airlock/error.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_VERSION 1

static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS users ("
    " name TEXT PRIMARY KEY, admin INTEGER NOT NULL DEFAULT 0,"
    " max_sessions INTEGER NOT NULL DEFAULT -1, max_memory_mb INTEGER NOT NULL DEFAULT -1,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS api_keys ("
    " id TEXT PRIMARY KEY, user TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',"
    " hash BLOB NOT NULL UNIQUE, created_ms INTEGER NOT NULL, revoked_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS sessions ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, user TEXT NOT NULL,"
    " state TEXT NOT NULL, pub TEXT NOT NULL, priv TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user, seq);"
    "CREATE INDEX IF NOT EXISTS sessions_state ON sessions(state);"
    "CREATE TABLE IF NOT EXISTS processes ("
    " session TEXT NOT NULL, num INTEGER NOT NULL, running INTEGER NOT NULL,"
    " pub TEXT NOT NULL, priv TEXT NOT NULL, PRIMARY KEY (session, num));"
    "CREATE TABLE IF NOT EXISTS idempotency ("
    " user TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL, session TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, PRIMARY KEY (user, key));"
    "CREATE TABLE IF NOT EXISTS audit ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, user TEXT,"
    " key_id TEXT, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL,"
    " session TEXT);"
    "CREATE TRIGGER IF NOT EXISTS audit_append_only_u BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_append_only_d BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;";

enum q {
    Q_USER_ADD,
    Q_USER_GET,
    Q_USER_DEL,
    Q_USER_KEYS_REVOKE,
    Q_USER_LIST,
    Q_KEY_ADD,
    Q_KEY_LOOKUP,
    Q_KEY_LIST_ALL,
    Q_KEY_LIST_USER,
    Q_KEY_REVOKE,
    Q_SESSION_PUT,
    Q_SESSION_GET,
    Q_SESSION_PAGE,
    Q_SESSION_LIVE,
    Q_SESSION_COUNTS,
    Q_SESSION_KEPT,
    Q_SESSION_BRANCH,
    Q_SESSION_REVOKED,
    Q_PROC_PUT,
    Q_PROC_GET,
    Q_PROC_LIST,
    Q_PROC_RUNNING,
    Q_PROC_MAX,
    Q_IDEM_INSERT,
    Q_IDEM_GET,
    Q_IDEM_DEL,
    Q_IDEM_PURGE,
    Q_AUDIT,
    Q_AUDIT_PAGE,
    Q_USER_SUMMARY,
    Q_COUNT
};

static const char *const queries[Q_COUNT] = {
    [Q_USER_ADD] = "INSERT INTO users(name, admin, max_sessions, max_memory_mb, created_ms)"
                   " VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_USER_GET] = "SELECT admin, max_sessions, max_memory_mb, created_ms FROM users"
                   " WHERE name = ?1",
    [Q_USER_DEL] = "DELETE FROM users WHERE name = ?1",
    [Q_USER_KEYS_REVOKE] = "UPDATE api_keys SET revoked_ms = ?2 WHERE user = ?1"
                           " AND revoked_ms IS NULL",
    [Q_USER_LIST] = "SELECT name, admin, max_sessions, max_memory_mb, created_ms FROM users"
                    " ORDER BY name",
    [Q_KEY_ADD] = "INSERT INTO api_keys(id, user, name, hash, created_ms)"
                  " SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM users WHERE name = ?2)",
    [Q_KEY_LOOKUP] = "SELECT k.hash, k.id, u.name, u.admin, u.max_sessions, u.max_memory_mb"
                     " FROM api_keys k JOIN users u ON u.name = k.user"
                     " WHERE k.hash = ?1 AND k.revoked_ms IS NULL",
    [Q_KEY_LIST_ALL] = "SELECT id, user, name, created_ms, revoked_ms FROM api_keys"
                       " ORDER BY created_ms, id",
    [Q_KEY_LIST_USER] = "SELECT id, user, name, created_ms, revoked_ms FROM api_keys"
                        " WHERE user = ?1 ORDER BY created_ms, id",
    [Q_KEY_REVOKE] = "UPDATE api_keys SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
    [Q_SESSION_PUT] = "INSERT INTO sessions(id, user, state, pub, priv) VALUES (?1, ?2, ?3, ?4, ?5)"
                      " ON CONFLICT(id) DO UPDATE SET state = ?3, pub = ?4, priv = ?5",
    [Q_SESSION_GET] = "SELECT user, pub, priv FROM sessions WHERE id = ?1",
    [Q_SESSION_PAGE] = "SELECT seq, pub FROM sessions WHERE seq > ?1"
                       " AND (?2 IS NULL OR user = ?2) AND (?3 IS NULL OR state = ?3)"
                       " ORDER BY seq LIMIT ?4",
    [Q_SESSION_LIVE] = "SELECT pub, priv FROM sessions"
                       " WHERE state IN ('creating', 'ready', 'deleting') ORDER BY seq",
    [Q_SESSION_COUNTS] = "SELECT state, count(*) FROM sessions GROUP BY state",
    [Q_SESSION_KEPT] = "SELECT id, json_extract(priv, '$.ended_ms') FROM sessions"
                       " WHERE json_extract(priv, '$.workspace_kept') = 1",
    [Q_SESSION_BRANCH] = "SELECT id, repo FROM (SELECT id, json_extract(pub, '$.repo') AS repo,"
                         " lower(json_extract(pub, '$.branch')) AS b,"
                         " coalesce(json_extract(pub, '$.end_reason'), '') AS why FROM sessions),"
                         " (SELECT lower(?1) AS x) WHERE b IS NOT NULL AND why NOT LIKE 'create-%'"
                         " AND (b = x OR substr(x, 1, length(b) + 1) = b || '/'"
                         " OR substr(b, 1, length(x) + 1) = x || '/')",
    [Q_SESSION_REVOKED] =
        "SELECT id FROM sessions WHERE state IN ('deleted', 'expired', 'failed')"
        " AND json_extract(priv, '$.git.token') IS NOT NULL"
        " AND coalesce(json_extract(priv, '$.git.token_exp'),"
        " json_extract(priv, '$.created_ms') / 1000 + json_extract(pub, '$.limits.ttl_s'), 0)"
        " >= ?1",
    [Q_PROC_PUT] = "INSERT INTO processes(session, num, running, pub, priv)"
                   " VALUES (?1, ?2, ?3, ?4, ?5)"
                   " ON CONFLICT(session, num) DO UPDATE SET running = ?3, pub = ?4, priv = ?5",
    [Q_PROC_GET] = "SELECT pub, priv FROM processes WHERE session = ?1 AND num = ?2",
    [Q_PROC_LIST] = "SELECT pub FROM processes WHERE session = ?1 ORDER BY num",
    [Q_PROC_RUNNING] = "SELECT pub, priv FROM processes WHERE session = ?1 AND running = 1"
                       " ORDER BY num",
    [Q_PROC_MAX] = "SELECT coalesce(max(num), 0) FROM processes WHERE session = ?1",
    [Q_IDEM_INSERT] = "INSERT OR IGNORE INTO idempotency(user, key, body_hash, session,"
                      " created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_IDEM_GET] = "SELECT body_hash, session FROM idempotency WHERE user = ?1 AND key = ?2",
    [Q_IDEM_DEL] = "DELETE FROM idempotency WHERE user = ?1 AND key = ?2",
    [Q_IDEM_PURGE] = "DELETE FROM idempotency WHERE created_ms < ?1",
    [Q_AUDIT] = "INSERT INTO audit(time_ms, user, key_id, method, path, status, session)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    /* the audit trail's reads (GET /v1/audit, /v1/admin/users): newest first */
    [Q_AUDIT_PAGE] = "SELECT seq, time_ms, user, key_id, method, path, status, session FROM audit"
                     " WHERE seq < ?1 AND (?2 IS NULL OR user = ?2)"
                     " AND (?3 IS NULL OR session = ?3) AND (?4 IS NULL OR method = ?4)"
                     " AND time_ms >= ?5 AND time_ms < ?6 AND (?7 IS NULL OR instr(path, ?7) > 0)"
                     " ORDER BY seq DESC LIMIT ?8",
    [Q_USER_SUMMARY] = "SELECT u.name, u.admin, u.created_ms,"
                       " (SELECT count(*) FROM api_keys k WHERE k.user = u.name"
                       " AND k.revoked_ms IS NULL),"
                       " (SELECT count(*) FROM sessions s WHERE s.user = u.name"
                       " AND s.state IN ('creating', 'ready', 'deleting'))"
                       " FROM users u ORDER BY u.name",
};

struct ald_store {
    sqlite3 *db;
    pthread_mutex_t lock;
    sqlite3_stmt *stmts[Q_COUNT];
    char *path;
    sqlite3 *ckpt; /* second connection: checkpoints off the request path */
};

static int db_fail(struct ald_store *st, const char *what)
{
    return ald_sql_fail(st->db, what);
}

/* Returns the prepared statement for `q`, reset and with its bindings
 * cleared; NULL on error (al_error_last() says why). Caller holds st->lock. */
static sqlite3_stmt *stmt(struct ald_store *st, enum q q)
{
    return ald_sql_stmt(st->db, &st->stmts[q], queries[q]);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    ald_sql_bind_text(s, i, v);
}

/* Binds a JSON value as its compact text; AL_ENOMEM when it cannot be dumped. */
static int bind_json(sqlite3_stmt *s, int i, json_t *v)
{
    char *txt = json_dumps(v, JSON_COMPACT);
    if (!txt)
        return AL_ENOMEM;
    sqlite3_bind_text(s, i, txt, -1, free);
    return 0;
}

static json_t *column_json(sqlite3_stmt *s, int i)
{
    const char *txt = (const char *)sqlite3_column_text(s, i);
    if (!txt)
        return NULL;
    return json_loadb(txt, (size_t)sqlite3_column_bytes(s, i), 0, NULL);
}

static void column_copy(char *out, size_t outsz, sqlite3_stmt *s, int i)
{
    const char *txt = (const char *)sqlite3_column_text(s, i);
    snprintf(out, outsz, "%s", txt ? txt : "");
}

/* Runs a statement that returns no rows; AL_EIO on failure, AL_EEXISTS on a
 * constraint violation. */
static int run_done(struct ald_store *st, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc == SQLITE_CONSTRAINT)
        return al_error_set(AL_EEXISTS, "database: %s", sqlite3_errmsg(st->db));
    return db_fail(st, "step");
}

int ald_store_open(struct ald_store **out, const char *path)
{
    *out = NULL;
    struct ald_store *st = calloc(1, sizeof(*st));
    if (!st)
        return AL_ENOMEM;
    pthread_mutex_init(&st->lock, NULL);
    char *msg = NULL;
    int err = ald_sql_open(&st->db, path, "PRAGMA foreign_keys=ON;");
    if (err < 0)
        goto out;
    sqlite3_stmt *v = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &v, NULL) == SQLITE_OK &&
        sqlite3_step(v) == SQLITE_ROW)
        version = sqlite3_column_int(v, 0);
    sqlite3_finalize(v);
    if (version > SCHEMA_VERSION) {
        err = al_error_set(AL_EINVAL,
                           "database %s: schema version %d is newer than this"
                           " airlockd (%d)",
                           path, version, SCHEMA_VERSION);
        goto out;
    }
    if (version < SCHEMA_VERSION) {
        if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(st->db, schema_v1, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(st->db, "PRAGMA user_version = 1; COMMIT", NULL, NULL, &msg) !=
                SQLITE_OK) {
            err = al_error_set(AL_EIO, "database %s: creating the schema: %s", path,
                               msg ? msg : "failed");
            sqlite3_free(msg);
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            goto out;
        }
    }
    if (!(st->path = strdup(path))) {
        err = AL_ENOMEM;
        goto out;
    }
    *out = st;
    st = NULL;
out:
    if (st)
        ald_store_close(st);
    return err;
}

int ald_store_checkpoint(struct ald_store *st)
{
    if (!st->ckpt) {
        if (sqlite3_open_v2(st->path, &st->ckpt, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                            NULL) != SQLITE_OK) {
            sqlite3_close(st->ckpt);
            st->ckpt = NULL;
            return al_error_set(AL_EIO, "database %s: checkpoint connection", st->path);
        }
        sqlite3_busy_timeout(st->ckpt, 1000);
    }
    /* PASSIVE: copies what it can without waiting for readers or writers */
    if (sqlite3_wal_checkpoint_v2(st->ckpt, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) !=
        SQLITE_OK)
        return al_error_set(AL_EIO, "database checkpoint: %s", sqlite3_errmsg(st->ckpt));
    return 0;
}

void ald_store_close(struct ald_store *st)
{
    if (!st)
        return;
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(st->stmts[i]);
    sqlite3_close(st->db);
    sqlite3_close(st->ckpt);
    pthread_mutex_destroy(&st->lock);
    free(st->path);
    free(st);
}

int ald_user_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= ALD_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '.' || c == '_' || c == '-'));
        if (!ok)
            return 0;
    }
    return 1;
}

int ald_store_user_add(struct ald_store *st, const struct ald_user *u)
{
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_USER_ADD);
    if (s) {
        bind_text(s, 1, u->name);
        sqlite3_bind_int(s, 2, u->admin ? 1 : 0);
        sqlite3_bind_int64(s, 3, u->max_sessions);
        sqlite3_bind_int64(s, 4, u->max_memory_mb);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)u->created_ms);
        err = run_done(st, s);
        if (err == AL_EEXISTS)
            al_error_set(err, "user \"%s\" exists", u->name);
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_user_get(struct ald_store *st, const char *name, struct ald_user *out)
{
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_USER_GET);
    if (s) {
        bind_text(s, 1, name);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            memset(out, 0, sizeof(*out));
            snprintf(out->name, sizeof(out->name), "%s", name);
            out->admin = sqlite3_column_int(s, 0);
            out->max_sessions = sqlite3_column_int64(s, 1);
            out->max_memory_mb = sqlite3_column_int64(s, 2);
            out->created_ms = (uint64_t)sqlite3_column_int64(s, 3);
            err = 0;
        } else if (rc == SQLITE_DONE) {
            err = al_error_set(AL_ENOTFOUND, "no user \"%s\"", name);
        } else {
            err = db_fail(st, "user");
        }
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_user_remove(struct ald_store *st, const char *name, uint64_t now_ms)
{
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_USER_KEYS_REVOKE);
    if (s) {
        bind_text(s, 1, name);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)now_ms);
        err = run_done(st, s);
        sqlite3_reset(s);
    }
    if (err == 0 && (s = stmt(st, Q_USER_DEL))) {
        bind_text(s, 1, name);
        err = run_done(st, s);
        if (err == 0 && sqlite3_changes(st->db) == 0)
            err = al_error_set(AL_ENOTFOUND, "no user \"%s\"", name);
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_user_list(struct ald_store *st, json_t **out)
{
    *out = NULL;
    json_t *arr = json_array();
    if (!arr)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_USER_LIST);
    if (s) {
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            json_t *max_s = sqlite3_column_int64(s, 2) < 0
                                ? json_null()
                                : json_integer(sqlite3_column_int64(s, 2));
            json_t *max_m = sqlite3_column_int64(s, 3) < 0
                                ? json_null()
                                : json_integer(sqlite3_column_int64(s, 3));
            json_array_append_new(
                arr,
                json_pack("{s:s, s:b, s:o, s:o, s:o}", "name", sqlite3_column_text(s, 0), "admin",
                          sqlite3_column_int(s, 1), "max_sessions", max_s, "max_memory_mb", max_m,
                          "created_at", ald_time_json((uint64_t)sqlite3_column_int64(s, 4))));
        }
        err = rc == SQLITE_DONE ? 0 : db_fail(st, "users");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}

int ald_store_key_add(struct ald_store *st, const char *id, const char *user, const char *name,
                      const unsigned char hash[32], uint64_t now_ms)
{
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_KEY_ADD);
    if (s) {
        bind_text(s, 1, id);
        bind_text(s, 2, user);
        bind_text(s, 3, name ? name : "");
        sqlite3_bind_blob(s, 4, hash, 32, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)now_ms);
        err = run_done(st, s);
        if (err == 0 && sqlite3_changes(st->db) == 0)
            err = al_error_set(AL_ENOTFOUND, "no user \"%s\"", user);
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_key_lookup(struct ald_store *st, const unsigned char hash[32],
                         struct ald_principal *out)
{
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_KEY_LOOKUP);
    if (s) {
        sqlite3_bind_blob(s, 1, hash, 32, SQLITE_TRANSIENT);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const void *h = sqlite3_column_blob(s, 0);
            /* the index found the row; compare again in constant time */
            if (h && sqlite3_column_bytes(s, 0) == 32 && CRYPTO_memcmp(h, hash, 32) == 0) {
                memset(out, 0, sizeof(*out));
                column_copy(out->key_id, sizeof(out->key_id), s, 1);
                column_copy(out->user, sizeof(out->user), s, 2);
                out->admin = sqlite3_column_int(s, 3);
                out->max_sessions = sqlite3_column_int64(s, 4);
                out->max_memory_mb = sqlite3_column_int64(s, 5);
                err = 0;
            } else {
                err = AL_EAUTH;
            }
        } else if (rc == SQLITE_DONE) {
            err = AL_EAUTH;
        } else {
            err = db_fail(st, "key");
        }
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_key_list(struct ald_store *st, const char *user, json_t **out)
{
    *out = NULL;
    json_t *arr = json_array();
    if (!arr)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, user ? Q_KEY_LIST_USER : Q_KEY_LIST_ALL);
    if (s) {
        if (user)
            bind_text(s, 1, user);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            json_t *revoked = sqlite3_column_type(s, 4) == SQLITE_NULL
                                  ? json_null()
                                  : ald_time_json((uint64_t)sqlite3_column_int64(s, 4));
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", sqlite3_column_text(s, 0), "user",
                               sqlite3_column_text(s, 1), "name", sqlite3_column_text(s, 2),
                               "created_at", ald_time_json((uint64_t)sqlite3_column_int64(s, 3)),
                               "revoked_at", revoked));
        }
        err = rc == SQLITE_DONE ? 0 : db_fail(st, "keys");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}

int ald_store_key_revoke(struct ald_store *st, const char *id, uint64_t now_ms)
{
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_KEY_REVOKE);
    if (s) {
        bind_text(s, 1, id);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)now_ms);
        err = run_done(st, s);
        if (err == 0 && sqlite3_changes(st->db) == 0)
            err = al_error_set(AL_ENOTFOUND, "no live key \"%s\"", id);
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_session_put(struct ald_store *st, json_t *pub, json_t *priv)
{
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_SESSION_PUT);
    if (s) {
        bind_text(s, 1, json_string_value(json_object_get(pub, "id")));
        bind_text(s, 2, json_string_value(json_object_get(pub, "user")));
        bind_text(s, 3, json_string_value(json_object_get(pub, "state")));
        err = bind_json(s, 4, pub);
        if (err == 0)
            err = bind_json(s, 5, priv);
        if (err == 0)
            err = run_done(st, s);
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_session_get(struct ald_store *st, const char *id, const char *user, json_t **pub,
                          json_t **priv)
{
    *pub = NULL;
    if (priv)
        *priv = NULL;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_SESSION_GET);
    if (s) {
        bind_text(s, 1, id);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const char *owner = (const char *)sqlite3_column_text(s, 0);
            if (user && (!owner || strcmp(owner, user) != 0)) {
                err = AL_ENOTFOUND;
            } else {
                *pub = column_json(s, 1);
                if (priv)
                    *priv = column_json(s, 2);
                err = *pub && (!priv || *priv) ? 0 : AL_ENOMEM;
            }
        } else {
            err = rc == SQLITE_DONE ? AL_ENOTFOUND : db_fail(st, "session");
        }
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    if (err < 0) {
        json_decref(*pub);
        *pub = NULL;
        if (priv) {
            json_decref(*priv);
            *priv = NULL;
        }
    }
    return err;
}

int ald_store_session_page(struct ald_store *st, const char *user, const char *state, int64_t after,
                           unsigned limit, json_t **out, int64_t *next)
{
    *out = NULL;
    *next = 0;
    json_t *arr = json_array();
    if (!arr)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_SESSION_PAGE);
    if (s) {
        sqlite3_bind_int64(s, 1, after);
        bind_text(s, 2, user);
        bind_text(s, 3, state);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)limit + 1);
        int rc;
        unsigned n = 0;
        int64_t last = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            if (n == limit) {
                *next = last;
                break;
            }
            last = sqlite3_column_int64(s, 0);
            json_t *o = column_json(s, 1);
            if (o)
                json_array_append_new(arr, o);
            n++;
        }
        err = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(st, "sessions");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}

/* Collects rows of two JSON columns as [a, b] pairs. Caller holds the lock. */
static int collect_pairs(struct ald_store *st, sqlite3_stmt *s, json_t *arr)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *a = column_json(s, 0), *b = column_json(s, 1);
        if (a && b)
            json_array_append_new(arr, json_pack("[o, o]", a, b));
        else {
            json_decref(a);
            json_decref(b);
        }
    }
    int err = rc == SQLITE_DONE ? 0 : db_fail(st, "rows");
    sqlite3_reset(s);
    return err;
}

int ald_store_session_live(struct ald_store *st, json_t **out)
{
    *out = json_array();
    if (!*out)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = stmt(st, Q_SESSION_LIVE);
    int err = s ? collect_pairs(st, s, *out) : AL_EIO;
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_session_counts(struct ald_store *st, json_t **out)
{
    *out = json_object();
    if (!*out)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_SESSION_COUNTS);
    if (s) {
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            json_object_set_new(*out, (const char *)sqlite3_column_text(s, 0),
                                json_integer(sqlite3_column_int64(s, 1)));
        err = rc == SQLITE_DONE ? 0 : db_fail(st, "counts");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_session_kept(struct ald_store *st, json_t **out)
{
    *out = json_array();
    if (!*out)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_SESSION_KEPT);
    if (s) {
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            json_array_append_new(*out, json_pack("[s, I]", sqlite3_column_text(s, 0),
                                                  (json_int_t)sqlite3_column_int64(s, 1)));
        err = rc == SQLITE_DONE ? 0 : db_fail(st, "kept");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_session_revoked(struct ald_store *st, int64_t after, json_t **out)
{
    *out = json_array();
    if (!*out)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_SESSION_REVOKED);
    if (s) {
        sqlite3_bind_int64(s, 1, after);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            json_array_append_new(*out, json_string((const char *)sqlite3_column_text(s, 0)));
        err = rc == SQLITE_DONE ? 0 : db_fail(st, "revoked");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_session_branch_clash(struct ald_store *st, const char *branch, json_t **out)
{
    *out = json_array();
    if (!*out)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_SESSION_BRANCH);
    if (s) {
        bind_text(s, 1, branch);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            const char *repo = (const char *)sqlite3_column_text(s, 1);
            json_array_append_new(*out,
                                  json_pack("[s, s]", sqlite3_column_text(s, 0), repo ? repo : ""));
        }
        err = rc == SQLITE_DONE ? 0 : db_fail(st, "branches");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

static int proc_put_locked(struct ald_store *st, const char *session, uint64_t num, json_t *pub,
                           json_t *priv)
{
    sqlite3_stmt *s = stmt(st, Q_PROC_PUT);
    if (!s)
        return AL_EIO;
    bind_text(s, 1, session);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)num);
    const char *state = json_string_value(json_object_get(pub, "state"));
    sqlite3_bind_int(s, 3, state && strcmp(state, "running") == 0);
    int err = bind_json(s, 4, pub);
    if (err == 0)
        err = bind_json(s, 5, priv);
    if (err == 0)
        err = run_done(st, s);
    sqlite3_reset(s);
    return err;
}

int ald_store_proc_put(struct ald_store *st, const char *session, uint64_t num, json_t *pub,
                       json_t *priv)
{
    pthread_mutex_lock(&st->lock);
    int err = proc_put_locked(st, session, num, pub, priv);
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_proc_get(struct ald_store *st, const char *session, uint64_t num, json_t **pub,
                       json_t **priv)
{
    *pub = NULL;
    if (priv)
        *priv = NULL;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_PROC_GET);
    if (s) {
        bind_text(s, 1, session);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)num);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *pub = column_json(s, 0);
            if (priv)
                *priv = column_json(s, 1);
            err = *pub && (!priv || *priv) ? 0 : AL_ENOMEM;
        } else {
            err = rc == SQLITE_DONE ? AL_ENOTFOUND : db_fail(st, "process");
        }
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    if (err < 0) {
        json_decref(*pub);
        *pub = NULL;
        if (priv) {
            json_decref(*priv);
            *priv = NULL;
        }
    }
    return err;
}

int ald_store_proc_list(struct ald_store *st, const char *session, json_t **out)
{
    *out = json_array();
    if (!*out)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_PROC_LIST);
    if (s) {
        bind_text(s, 1, session);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            json_t *o = column_json(s, 0);
            if (o)
                json_array_append_new(*out, o);
        }
        err = rc == SQLITE_DONE ? 0 : db_fail(st, "processes");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_proc_running(struct ald_store *st, const char *session, json_t **out)
{
    *out = json_array();
    if (!*out)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_PROC_RUNNING);
    if (s) {
        bind_text(s, 1, session);
        err = collect_pairs(st, s, *out);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_proc_max(struct ald_store *st, const char *session, uint64_t *out)
{
    *out = 0;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_PROC_MAX);
    if (s) {
        bind_text(s, 1, session);
        if (sqlite3_step(s) == SQLITE_ROW) {
            *out = (uint64_t)sqlite3_column_int64(s, 0);
            err = 0;
        } else {
            err = db_fail(st, "processes");
        }
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_idem_claim(struct ald_store *st, const char *user, const char *key,
                         const char *body_hash, const char *session, uint64_t now_ms,
                         char out_session[32], char out_hash[72])
{
    out_session[0] = out_hash[0] = '\0';
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_IDEM_INSERT);
    if (s) {
        bind_text(s, 1, user);
        bind_text(s, 2, key);
        bind_text(s, 3, body_hash);
        bind_text(s, 4, session);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)now_ms);
        err = run_done(st, s);
        int claimed = err == 0 && sqlite3_changes(st->db) == 1;
        sqlite3_reset(s);
        if (err == 0 && !claimed && (s = stmt(st, Q_IDEM_GET))) {
            bind_text(s, 1, user);
            bind_text(s, 2, key);
            if (sqlite3_step(s) == SQLITE_ROW) {
                column_copy(out_hash, 72, s, 0);
                column_copy(out_session, 32, s, 1);
                err = AL_EEXISTS;
            } else {
                err = db_fail(st, "idempotency");
            }
            sqlite3_reset(s);
        }
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_idem_release(struct ald_store *st, const char *user, const char *key)
{
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_IDEM_DEL);
    if (s) {
        bind_text(s, 1, user);
        bind_text(s, 2, key);
        err = run_done(st, s);
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_idem_purge(struct ald_store *st, uint64_t before_ms)
{
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_IDEM_PURGE);
    if (s) {
        sqlite3_bind_int64(s, 1, (sqlite3_int64)before_ms);
        err = run_done(st, s);
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

static int audit_locked(struct ald_store *st, const struct ald_audit_row *a)
{
    sqlite3_stmt *s = stmt(st, Q_AUDIT);
    if (!s)
        return AL_EIO;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)a->time_ms);
    bind_text(s, 2, a->user);
    bind_text(s, 3, a->key_id);
    bind_text(s, 4, a->method);
    bind_text(s, 5, a->path);
    sqlite3_bind_int(s, 6, a->status);
    bind_text(s, 7, a->session);
    int err = run_done(st, s);
    sqlite3_reset(s);
    return err;
}

int ald_store_audit(struct ald_store *st, const struct ald_audit_row *a)
{
    pthread_mutex_lock(&st->lock);
    int err = audit_locked(st, a);
    pthread_mutex_unlock(&st->lock);
    return err;
}

int ald_store_proc_put_audit(struct ald_store *st, const char *session, uint64_t num, json_t *pub,
                             json_t *priv, const struct ald_audit_row *a)
{
    pthread_mutex_lock(&st->lock);
    int err = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
                  ? 0
                  : db_fail(st, "begin");
    if (err == 0)
        err = proc_put_locked(st, session, num, pub, priv);
    if (err == 0)
        err = audit_locked(st, a);
    if (err == 0 && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        err = db_fail(st, "commit");
    if (err < 0 && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->lock);
    return err;
}

/* ---- reads of the audit trail and the users (GET /v1/audit, /v1/admin/users) ---- */

static json_t *column_text_json(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? json_string(t) : json_null();
}

int ald_store_audit_page(struct ald_store *st, const struct ald_audit_filter *f, json_t **out,
                         int64_t *next)
{
    *out = NULL;
    *next = 0;
    json_t *arr = json_array();
    if (!arr)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_AUDIT_PAGE);
    if (s) {
        sqlite3_bind_int64(s, 1, f->before > 0 ? f->before : INT64_MAX);
        bind_text(s, 2, f->user);
        bind_text(s, 3, f->session);
        bind_text(s, 4, f->method);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)f->since_ms);
        sqlite3_bind_int64(s, 6, f->until_ms ? (sqlite3_int64)f->until_ms : INT64_MAX);
        bind_text(s, 7, f->text && f->text[0] ? f->text : NULL);
        sqlite3_bind_int64(s, 8, (sqlite3_int64)f->limit + 1);
        int rc;
        unsigned n = 0;
        int64_t last = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            if (n == f->limit) {
                *next = last;
                break;
            }
            last = sqlite3_column_int64(s, 0);
            uint64_t t = (uint64_t)sqlite3_column_int64(s, 1);
            json_t *o =
                json_pack("{s:I, s:o, s:I, s:o, s:o, s:o, s:o, s:i, s:o}", "seq", (json_int_t)last,
                          "time", ald_time_json(t), "time_ms", (json_int_t)t, "user",
                          column_text_json(s, 2), "key_id", column_text_json(s, 3), "method",
                          column_text_json(s, 4), "path", column_text_json(s, 5), "status",
                          sqlite3_column_int(s, 6), "session", column_text_json(s, 7));
            if (o)
                json_array_append_new(arr, o);
            n++;
        }
        err = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(st, "audit");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}

int ald_store_user_summary(struct ald_store *st, json_t **out)
{
    *out = NULL;
    json_t *arr = json_array();
    if (!arr)
        return AL_ENOMEM;
    pthread_mutex_lock(&st->lock);
    int err = AL_EIO;
    sqlite3_stmt *s = stmt(st, Q_USER_SUMMARY);
    if (s) {
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            json_array_append_new(
                arr, json_pack("{s:s, s:b, s:o, s:I, s:I}", "name", sqlite3_column_text(s, 0),
                               "admin", sqlite3_column_int(s, 1), "created_at",
                               ald_time_json((uint64_t)sqlite3_column_int64(s, 2)), "keys",
                               (json_int_t)sqlite3_column_int64(s, 3), "live_sessions",
                               (json_int_t)sqlite3_column_int64(s, 4)));
        err = rc == SQLITE_DONE ? 0 : db_fail(st, "users");
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->lock);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}
