/* airlockd's main store (store.h) on the stores' database (db.h): SQLite
 * or PostgreSQL, the same queries and schema steps for both where the two
 * dialects agree. */
#include "airlockd/adapters/store.h"

#include "airlockd/adapters/db.h"
#include "store_rows.h"
#include "airlockd/adapters/store_nodes.h"
#include "airlockd/core/config.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <sqlite3.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The schema, step by step ({serial}, {int}, {blob}: db.h). Only the
 * audit table's append-only triggers are written twice. */
static const struct ald_db_migration schema[] = {
    {
        .sql = "CREATE TABLE IF NOT EXISTS users ("
               " name TEXT PRIMARY KEY, admin {int} NOT NULL DEFAULT 0,"
               " max_sessions {int} NOT NULL DEFAULT -1, max_memory_mb {int} NOT NULL DEFAULT -1,"
               " created_ms {int} NOT NULL);"
               "CREATE TABLE IF NOT EXISTS api_keys ("
               " id TEXT PRIMARY KEY, \"user\" TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',"
               " hash {blob} NOT NULL UNIQUE, created_ms {int} NOT NULL, revoked_ms {int});"
               "CREATE TABLE IF NOT EXISTS sessions ("
               " seq {serial}, id TEXT NOT NULL UNIQUE, \"user\" TEXT NOT NULL,"
               " state TEXT NOT NULL, pub TEXT NOT NULL, priv TEXT NOT NULL);"
               "CREATE INDEX IF NOT EXISTS sessions_user ON sessions(\"user\", seq);"
               "CREATE INDEX IF NOT EXISTS sessions_state ON sessions(state);"
               "CREATE TABLE IF NOT EXISTS processes ("
               " session TEXT NOT NULL, num {int} NOT NULL, running {int} NOT NULL,"
               " pub TEXT NOT NULL, priv TEXT NOT NULL, PRIMARY KEY (session, num));"
               "CREATE TABLE IF NOT EXISTS idempotency ("
               " \"user\" TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL,"
               " session TEXT NOT NULL, created_ms {int} NOT NULL, PRIMARY KEY (\"user\", key));"
               "CREATE TABLE IF NOT EXISTS audit ("
               " seq {serial}, time_ms {int} NOT NULL, \"user\" TEXT,"
               " key_id TEXT, method TEXT NOT NULL, path TEXT NOT NULL, status {int} NOT NULL,"
               " session TEXT);",
        .sqlite = "CREATE TRIGGER IF NOT EXISTS audit_append_only_u BEFORE UPDATE ON audit"
                  " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
                  "CREATE TRIGGER IF NOT EXISTS audit_append_only_d BEFORE DELETE ON audit"
                  " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;",
        .pg = "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger"
              " LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit is append-only'; END $$;"
              "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit"
              " FOR EACH ROW EXECUTE FUNCTION audit_append_only();",
    },
    {
        /* 2: the cluster (docs/cluster.md): nodes, each session's owner
         * node and size (placement sums them), approvals, credential
         * entries, the cluster's key check values. Inert on one machine. */
        .sql = "CREATE TABLE IF NOT EXISTS nodes ("
               " id TEXT PRIMARY KEY, address TEXT NOT NULL, api_address TEXT NOT NULL,"
               " state TEXT NOT NULL, version TEXT NOT NULL, epoch {int} NOT NULL,"
               " cap_sessions {int} NOT NULL, cap_memory_mb {int} NOT NULL,"
               " cap_cpu_m {int} NOT NULL, started_ms {int} NOT NULL,"
               " heartbeat_ms {int} NOT NULL, down_ms {int}, down_reason TEXT);"
               "ALTER TABLE sessions ADD COLUMN node TEXT;"
               "ALTER TABLE sessions ADD COLUMN memory_mb {int} NOT NULL DEFAULT 0;"
               "ALTER TABLE sessions ADD COLUMN cpu_m {int} NOT NULL DEFAULT 0;"
               "CREATE INDEX IF NOT EXISTS sessions_node ON sessions(node, state);"
               "CREATE TABLE IF NOT EXISTS approvals ("
               " id TEXT NOT NULL, session TEXT NOT NULL, kind TEXT NOT NULL,"
               " body TEXT NOT NULL, state TEXT NOT NULL, created_ms {int} NOT NULL,"
               " decided_ms {int}, decided_by TEXT, PRIMARY KEY (session, id));"
               "CREATE TABLE IF NOT EXISTS credentials ("
               " scope TEXT PRIMARY KEY, sealed {blob}, gen {int} NOT NULL,"
               " deleted {int} NOT NULL DEFAULT 0);"
               "CREATE TABLE IF NOT EXISTS cluster_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);",
        /* the credentials' cluster-wide generation counter (store_nodes.c) */
        .pg = "CREATE SEQUENCE IF NOT EXISTS credentials_gen;",
    },
};

#define LIVE_STATES ALD_STORE_LIVE_STATES

/* JSON fields in SQL: SQLite's json_extract(col, '$.a.b'), PostgreSQL's
 * (col::jsonb #>> '{a,b}'), text that the query casts where it compares. */
static const struct ald_sql q_user_add = {
    "INSERT INTO users(name, admin, max_sessions, max_memory_mb, created_ms)"
    " VALUES ($1, $2, $3, $4, $5)",
    NULL};
static const struct ald_sql q_user_get = {
    "SELECT admin, max_sessions, max_memory_mb, created_ms FROM users WHERE name = $1", NULL};
static const struct ald_sql q_user_del = {"DELETE FROM users WHERE name = $1", NULL};
static const struct ald_sql q_user_keys_revoke = {
    "UPDATE api_keys SET revoked_ms = $2 WHERE \"user\" = $1 AND revoked_ms IS NULL", NULL};
static const struct ald_sql q_user_list = {
    "SELECT name, admin, max_sessions, max_memory_mb, created_ms FROM users ORDER BY name", NULL};
static const struct ald_sql q_key_add = {
    "INSERT INTO api_keys(id, \"user\", name, hash, created_ms)"
    " SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM users WHERE name = $2)",
    NULL};
static const struct ald_sql q_key_lookup = {
    "SELECT k.hash, k.id, u.name, u.admin, u.max_sessions, u.max_memory_mb"
    " FROM api_keys k JOIN users u ON u.name = k.\"user\""
    " WHERE k.hash = $1 AND k.revoked_ms IS NULL",
    NULL};
static const struct ald_sql q_key_list_all = {
    "SELECT id, \"user\", name, created_ms, revoked_ms FROM api_keys ORDER BY created_ms, id",
    NULL};
static const struct ald_sql q_key_list_user = {
    "SELECT id, \"user\", name, created_ms, revoked_ms FROM api_keys"
    " WHERE \"user\" = $1 ORDER BY created_ms, id",
    NULL};
static const struct ald_sql q_key_revoke = {
    "UPDATE api_keys SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL", NULL};
/* A row with no node (a single machine): the upsert, which never takes a
 * row that a node owns. $1 id $2 user $3 state $4 memory_mb $5 cpu_m $6
 * pub $7 priv */
static const struct ald_sql q_session_put = {
    "INSERT INTO sessions(id, \"user\", state, memory_mb, cpu_m, pub, priv)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT(id) DO UPDATE SET state = $3, memory_mb = $4, cpu_m = $5, pub = $6, priv = $7"
    " WHERE sessions.node IS NULL",
    NULL};
/* A row owned by node $8 (cluster): fenced, it is written only while it
 * names that node and is not lost (docs/cluster.md "Fencing"); the first
 * write of a session placed elsewhere updates its `placed` row. */
static const struct ald_sql q_session_put_owned = {
    "UPDATE sessions SET state = $3, memory_mb = $4, cpu_m = $5, pub = $6, priv = $7"
    " WHERE id = $1 AND \"user\" = $2 AND node = $8 AND state <> 'lost'",
    NULL};
/* ... and a row of a session nobody placed (the node made it itself) */
static const struct ald_sql q_session_insert_owned = {
    "INSERT INTO sessions(id, \"user\", state, memory_mb, cpu_m, pub, priv, node)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT(id) DO NOTHING",
    NULL};
static const struct ald_sql q_session_get = {
    "SELECT \"user\", pub, priv FROM sessions WHERE id = $1", NULL};
static const struct ald_sql q_session_page = {
    "SELECT seq, pub FROM sessions WHERE seq > $1"
    " AND ($2 IS NULL OR \"user\" = $2) AND ($3 IS NULL OR state = $3)"
    " ORDER BY seq LIMIT $4",
    "SELECT seq, pub FROM sessions WHERE seq > $1"
    " AND ($2::text IS NULL OR \"user\" = $2) AND ($3::text IS NULL OR state = $3)"
    " ORDER BY seq LIMIT $4"};
static const struct ald_sql q_session_live = {
    "SELECT pub, priv FROM sessions WHERE state IN " LIVE_STATES " AND node IS $1 ORDER BY seq",
    "SELECT pub, priv FROM sessions WHERE state IN " LIVE_STATES
    " AND node IS NOT DISTINCT FROM $1::text ORDER BY seq"};
static const struct ald_sql q_session_gone = {
    "SELECT pub, priv FROM sessions WHERE node = $1"
    " AND state IN ('lost', 'failed', 'deleted', 'expired')"
    " AND json_extract(priv, '$.record') IS NOT NULL"
    " AND coalesce(json_extract(priv, '$.ended_ms'), 0) >= {now} - 604800000 ORDER BY seq",
    "SELECT pub, priv FROM sessions WHERE node = $1"
    " AND state IN ('lost', 'failed', 'deleted', 'expired')"
    " AND jsonb_typeof(priv::jsonb -> 'record') = 'object'"
    " AND coalesce((priv::jsonb #>> '{ended_ms}')::bigint, 0) >= {now} - 604800000"
    " ORDER BY seq"};
static const struct ald_sql q_session_counts = {
    "SELECT state, count(*) FROM sessions GROUP BY state", NULL};
static const struct ald_sql q_session_kept = {
    "SELECT id, json_extract(priv, '$.ended_ms') FROM sessions"
    " WHERE json_extract(priv, '$.workspace_kept') = 1 AND node IS $1",
    "SELECT id, (priv::jsonb #>> '{ended_ms}') FROM sessions"
    " WHERE (priv::jsonb #>> '{workspace_kept}') = 'true' AND node IS NOT DISTINCT FROM $1::text"};
static const struct ald_sql q_session_branch = {
    "SELECT id, repo FROM (SELECT id, json_extract(pub, '$.repo') AS repo,"
    " lower(json_extract(pub, '$.branch')) AS b,"
    " coalesce(json_extract(pub, '$.end_reason'), '') AS why FROM sessions) AS s,"
    " (SELECT lower($1) AS x) AS q WHERE b IS NOT NULL AND why NOT LIKE 'create-%'"
    " AND (b = x OR substr(x, 1, length(b) + 1) = b || '/'"
    " OR substr(b, 1, length(x) + 1) = x || '/')",
    "SELECT id, repo FROM (SELECT id, (pub::jsonb #>> '{repo}') AS repo,"
    " lower(pub::jsonb #>> '{branch}') AS b,"
    " coalesce(pub::jsonb #>> '{end_reason}', '') AS why FROM sessions) AS s,"
    " (SELECT lower($1::text) AS x) AS q WHERE b IS NOT NULL AND why NOT LIKE 'create-%'"
    " AND (b = x OR substr(x, 1, length(b) + 1) = b || '/'"
    " OR substr(b, 1, length(x) + 1) = x || '/')"};
static const struct ald_sql q_session_revoked = {
    "SELECT id FROM sessions WHERE state IN ('deleted', 'expired', 'failed', 'lost')"
    " AND json_extract(priv, '$.git.token') IS NOT NULL"
    " AND coalesce(json_extract(priv, '$.git.token_exp'),"
    " json_extract(priv, '$.created_ms') / 1000 + json_extract(pub, '$.limits.ttl_s'), 0)"
    " >= $1 AND node IS $2",
    "SELECT id FROM sessions WHERE state IN ('deleted', 'expired', 'failed', 'lost')"
    " AND (priv::jsonb #>> '{git,token}') IS NOT NULL"
    " AND coalesce((priv::jsonb #>> '{git,token_exp}')::numeric,"
    " floor((priv::jsonb #>> '{created_ms}')::numeric / 1000)"
    " + (pub::jsonb #>> '{limits,ttl_s}')::numeric, 0) >= $1"
    " AND node IS NOT DISTINCT FROM $2::text"};
static const struct ald_sql q_proc_put = {
    "INSERT INTO processes(session, num, running, pub, priv) VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT(session, num) DO UPDATE SET running = $3, pub = $4, priv = $5",
    NULL};
static const struct ald_sql q_proc_get = {
    "SELECT pub, priv FROM processes WHERE session = $1 AND num = $2", NULL};
static const struct ald_sql q_proc_list = {
    "SELECT pub FROM processes WHERE session = $1 ORDER BY num", NULL};
static const struct ald_sql q_proc_running = {
    "SELECT pub, priv FROM processes WHERE session = $1 AND running = 1 ORDER BY num", NULL};
static const struct ald_sql q_proc_max = {
    "SELECT coalesce(max(num), 0) FROM processes WHERE session = $1", NULL};
static const struct ald_sql q_idem_insert = {
    "INSERT INTO idempotency(\"user\", key, body_hash, session, created_ms)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    NULL};
static const struct ald_sql q_idem_get = {
    "SELECT body_hash, session FROM idempotency WHERE \"user\" = $1 AND key = $2", NULL};
static const struct ald_sql q_idem_del = {
    "DELETE FROM idempotency WHERE \"user\" = $1 AND key = $2", NULL};
static const struct ald_sql q_idem_purge = {"DELETE FROM idempotency WHERE created_ms < $1", NULL};
static const struct ald_sql q_audit = {
    "INSERT INTO audit(time_ms, \"user\", key_id, method, path, status, session)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)",
    NULL};

/* The audit trail and the users' summary (GET /v1/audit, /v1/admin/users).
 * PostgreSQL has strpos where SQLite has instr, and casts the parameters
 * it compares with NULL. */
static const struct ald_sql q_audit_page = {
    "SELECT seq, time_ms, \"user\", key_id, method, path, status, session FROM audit"
    " WHERE seq < $1 AND ($2 IS NULL OR \"user\" = $2)"
    " AND ($3 IS NULL OR session = $3) AND ($4 IS NULL OR method = $4)"
    " AND time_ms >= $5 AND time_ms < $6 AND ($7 IS NULL OR instr(path, $7) > 0)"
    " ORDER BY seq DESC LIMIT $8",
    "SELECT seq, time_ms, \"user\", key_id, method, path, status, session FROM audit"
    " WHERE seq < $1 AND ($2::text IS NULL OR \"user\" = $2)"
    " AND ($3::text IS NULL OR session = $3) AND ($4::text IS NULL OR method = $4)"
    " AND time_ms >= $5 AND time_ms < $6 AND ($7::text IS NULL OR strpos(path, $7) > 0)"
    " ORDER BY seq DESC LIMIT $8"};
static const struct ald_sql q_user_summary = {
    "SELECT u.name, u.admin, u.created_ms,"
    " (SELECT count(*) FROM api_keys k WHERE k.\"user\" = u.name AND k.revoked_ms IS NULL),"
    " (SELECT count(*) FROM sessions s WHERE s.\"user\" = u.name"
    " AND s.state IN " LIVE_STATES ")"
    " FROM users u ORDER BY u.name",
    NULL};

/* Rows kept while the database cannot be reached (at most this many). */
#define PENDING_MAX 10000

struct ald_store {
    struct ald_db *db;
    sqlite3 *ckpt; /* SQLite: a second connection, checkpoints off the request path */
    /* Session and process rows whose write found the database unreachable
     * (AL_EAGAIN): "s <id>" or "p <session> <num>" -> [session, num (-1:
     * the session's row), pub, priv], the latest of each row, written by
     * ald_store_checkpoint() once the database is back. put_lock orders
     * every write of these rows with the map, so that no kept row is
     * written over a newer one. */
    pthread_mutex_t put_lock;
    json_t *pending;
};

int ald_store_open_db(struct ald_store **out, struct ald_db *db)
{
    *out = NULL;
    struct ald_store *st = calloc(1, sizeof(*st));
    if (!st)
        return AL_ENOMEM;
    st->db = ald_db_ref(db);
    pthread_mutex_init(&st->put_lock, NULL);
    int err = (st->pending = json_object()) ? 0 : AL_ENOMEM;
    if (err == 0)
        err = ald_db_migrate(db, "store", 1, schema, (int)(sizeof(schema) / sizeof(schema[0])));
    if (err < 0) {
        ald_store_close(st);
        return err;
    }
    *out = st;
    return 0;
}

int ald_store_open(struct ald_store **out, const char *path)
{
    struct ald_db *db = NULL;
    int err = ald_db_open_sqlite(&db, path);
    *out = NULL;
    err = err < 0 ? err : ald_store_open_db(out, db);
    ald_db_unref(db);
    return err;
}

/* The conninfo in `path` (at most 4 KiB, trailing white space dropped)
 * into buf. */
static int read_conninfo(const char *path, char *buf, size_t bufsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "store.conninfo_file %s", path);
    size_t n = 0;
    ssize_t r = 0;
    while (n < bufsz && (r = read(fd, buf + n, bufsz - n)) > 0)
        n += (size_t)r;
    int err = r < 0 ? al_error_set_errno(AL_EIO, errno, "store.conninfo_file %s", path) : 0;
    close(fd);
    if (err == 0 && n == bufsz)
        err = al_error_set(AL_ETOOBIG, "store.conninfo_file %s: more than %zu bytes", path,
                           bufsz - 1);
    while (err == 0 && n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    if (err == 0 && n == 0)
        err = al_error_set(AL_EINVAL, "store.conninfo_file %s is empty", path);
    buf[err == 0 ? n : 0] = '\0';
    return err;
}

int ald_store_open_config(struct ald_store **out, const struct ald_config *cfg,
                          const char *sqlite_path)
{
    const struct ald_store_config *sc = &cfg->store;
    *out = NULL;
    if (!sc->postgres)
        return ald_store_open(out, sqlite_path);
    char conninfo[4096];
    struct ald_db *db = NULL;
    int err = read_conninfo(sc->conninfo_file, conninfo, sizeof(conninfo));
    if (err == 0) {
        struct ald_db_cfg dc = {.driver = ALD_DB_POSTGRES,
                                .conninfo = conninfo,
                                .pool_size = (unsigned)sc->pool_size,
                                .statement_timeout_ms = (unsigned)sc->statement_timeout_ms,
                                .connect_timeout_ms = (unsigned)sc->connect_timeout_ms};
        err = ald_db_open(&db, &dc);
    }
    explicit_bzero(conninfo, sizeof(conninfo)); /* may hold a password */
    if (err == 0)
        err = ald_store_open_db(out, db);
    ald_db_unref(db);
    return err;
}

struct ald_db *ald_store_db(struct ald_store *st)
{
    return st->db;
}

struct ald_db *ald_store_sibling(struct ald_store *st)
{
    struct ald_db *db = NULL;
    return ald_db_sibling(st->db, &db) == 0 ? db : NULL;
}

static int write_row(struct ald_store *st, const char *sid, int64_t num, json_t *pub, json_t *priv);

/* Writes the kept rows (struct ald_store, pending) while the database
 * takes them; a row it refuses for another reason is dropped and logged. */
static void flush_pending(struct ald_store *st)
{
    pthread_mutex_lock(&st->put_lock);
    const char *key;
    json_t *row, *tmp;
    size_t before = json_object_size(st->pending);
    json_object_foreach_safe(st->pending, tmp, key, row)
    {
        int err = write_row(st, json_string_value(json_array_get(row, 0)),
                            json_integer_value(json_array_get(row, 1)), json_array_get(row, 2),
                            json_array_get(row, 3));
        if (err == AL_EAGAIN)
            break; /* still down: the next checkpoint tries again */
        if (err < 0)
            al_log(AL_LOG_WARN, "dropping the kept row %s: %s", key, al_error_last());
        json_object_del(st->pending, key);
    }
    size_t left = json_object_size(st->pending);
    pthread_mutex_unlock(&st->put_lock);
    if (before > left)
        al_log(AL_LOG_INFO, "database: wrote %zu row(s) kept while it was unreachable (%zu left)",
               before - left, left);
}

int ald_store_checkpoint(struct ald_store *st)
{
    const char *path = ald_db_path(st->db);
    flush_pending(st);
    if (!path)
        return 0; /* PostgreSQL checkpoints by itself */
    if (!st->ckpt) {
        if (sqlite3_open_v2(path, &st->ckpt, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK) {
            sqlite3_close(st->ckpt);
            st->ckpt = NULL;
            return al_error_set(AL_EIO, "database %s: checkpoint connection", path);
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
    sqlite3_close(st->ckpt);
    if (json_object_size(st->pending) > 0)
        al_log(AL_LOG_WARN, "database: %zu row(s) kept while it was unreachable are lost",
               json_object_size(st->pending));
    json_decref(st->pending);
    pthread_mutex_destroy(&st->put_lock);
    ald_db_unref(st->db);
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

/* Runs `q`, wanting no rows; *changes (may be NULL): rows it touched. */
static int run(struct ald_store *st, const struct ald_sql *q, const struct ald_db_arg *a, int n,
               int64_t *changes)
{
    struct ald_db_rows rows = {0};
    int err = ald_db_run(st->db, q, a, n, &rows);
    if (changes)
        *changes = rows.changes;
    ald_db_rows_free(&rows);
    return err;
}

int ald_store_user_add(struct ald_store *st, const struct ald_user *u)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(u->name), ALD_DB_INT(u->admin ? 1 : 0),
                             ALD_DB_INT(u->max_sessions), ALD_DB_INT(u->max_memory_mb),
                             ALD_DB_INT(u->created_ms)};
    int err = run(st, &q_user_add, a, NARGS(a), NULL);
    if (err == AL_EEXISTS)
        al_error_set(err, "user \"%s\" exists", u->name);
    return err;
}

int ald_store_user_get(struct ald_store *st, const char *name, struct ald_user *out)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(name)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(st->db, &q_user_get, a, NARGS(a), &r);
    if (err == 0 && r.n == 0)
        err = al_error_set(AL_ENOTFOUND, "no user \"%s\"", name);
    if (err == 0) {
        memset(out, 0, sizeof(*out));
        snprintf(out->name, sizeof(out->name), "%s", name);
        out->admin = (int)ald_db_int(&r, 0, 0);
        out->max_sessions = ald_db_int(&r, 0, 1);
        out->max_memory_mb = ald_db_int(&r, 0, 2);
        out->created_ms = (uint64_t)ald_db_int(&r, 0, 3);
    }
    ald_db_rows_free(&r);
    return err;
}

int ald_store_user_remove(struct ald_store *st, const char *name, uint64_t now_ms)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(name), ALD_DB_INT(now_ms)};
    int64_t changes = 0;
    int err = run(st, &q_user_keys_revoke, a, NARGS(a), NULL);
    if (err == 0)
        err = run(st, &q_user_del, a, 1, &changes);
    if (err == 0 && changes == 0)
        err = al_error_set(AL_ENOTFOUND, "no user \"%s\"", name);
    return err;
}

/* A quota column: null when negative (the config's quota). */
static json_t *quota_json(int64_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

int ald_store_user_list(struct ald_store *st, json_t **out)
{
    *out = NULL;
    struct ald_db_rows r = {0};
    json_t *arr = json_array();
    int err = arr ? ald_db_run(st->db, &q_user_list, NULL, 0, &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++)
        json_array_append_new(arr,
                              json_pack("{s:s, s:b, s:o, s:o, s:o}", "name", ald_rows_str(&r, i, 0),
                                        "admin", (int)ald_db_int(&r, i, 1), "max_sessions",
                                        quota_json(ald_db_int(&r, i, 2)), "max_memory_mb",
                                        quota_json(ald_db_int(&r, i, 3)), "created_at",
                                        ald_time_json((uint64_t)ald_db_int(&r, i, 4))));
    ald_db_rows_free(&r);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}

int ald_store_key_add(struct ald_store *st, const char *id, const char *user, const char *name,
                      const unsigned char hash[32], uint64_t now_ms)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(id), ALD_DB_TXT(user), ALD_DB_TXT(name ? name : ""),
                             ALD_DB_BLOB(hash, 32), ALD_DB_INT(now_ms)};
    int64_t changes = 0;
    int err = run(st, &q_key_add, a, NARGS(a), &changes);
    if (err == 0 && changes == 0)
        err = al_error_set(AL_ENOTFOUND, "no user \"%s\"", user);
    return err;
}

int ald_store_key_lookup(struct ald_store *st, const unsigned char hash[32],
                         struct ald_principal *out)
{
    struct ald_db_arg a[] = {ALD_DB_BLOB(hash, 32)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(st->db, &q_key_lookup, a, NARGS(a), &r);
    if (err == 0) {
        const char *h = ald_db_text(&r, 0, 0);
        /* the index found the row; compare again in constant time */
        if (r.n > 0 && h && ald_db_len(&r, 0, 0) == 32 && CRYPTO_memcmp(h, hash, 32) == 0) {
            memset(out, 0, sizeof(*out));
            snprintf(out->key_id, sizeof(out->key_id), "%s", ald_rows_str(&r, 0, 1));
            snprintf(out->user, sizeof(out->user), "%s", ald_rows_str(&r, 0, 2));
            out->admin = (int)ald_db_int(&r, 0, 3);
            out->max_sessions = ald_db_int(&r, 0, 4);
            out->max_memory_mb = ald_db_int(&r, 0, 5);
        } else {
            err = AL_EAUTH;
        }
    }
    ald_db_rows_free(&r);
    return err;
}

int ald_store_key_list(struct ald_store *st, const char *user, json_t **out)
{
    *out = NULL;
    struct ald_db_arg a[] = {ALD_DB_TXT(user)};
    struct ald_db_rows r = {0};
    json_t *arr = json_array();
    int err =
        arr ? ald_db_run(st->db, user ? &q_key_list_user : &q_key_list_all, a, user ? 1 : 0, &r)
            : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++) {
        json_t *revoked =
            ald_db_isnull(&r, i, 4) ? json_null() : ald_time_json((uint64_t)ald_db_int(&r, i, 4));
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", ald_rows_str(&r, i, 0), "user",
                           ald_rows_str(&r, i, 1), "name", ald_rows_str(&r, i, 2), "created_at",
                           ald_time_json((uint64_t)ald_db_int(&r, i, 3)), "revoked_at", revoked));
    }
    ald_db_rows_free(&r);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}

int ald_store_key_revoke(struct ald_store *st, const char *id, uint64_t now_ms)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(id), ALD_DB_INT(now_ms)};
    int64_t changes = 0;
    int err = run(st, &q_key_revoke, a, NARGS(a), &changes);
    if (err == 0 && changes == 0)
        err = al_error_set(AL_ENOTFOUND, "no live key \"%s\"", id);
    return err;
}

/* Writes a session's row: with priv.node set, the fenced write of a
 * node's row (q_session_put_owned, else the insert of a new one), and
 * AL_ESTALE when the row exists but is lost or names another node; with
 * none, the single machine's upsert (AL_ESTALE when a node owns the row).
 * The row's memory_mb and cpu_m come from pub.limits (memory_mb, cpu). */
static int session_write(struct ald_store *st, json_t *pub, json_t *priv)
{
    const char *id = json_string_value(json_object_get(pub, "id"));
    const char *node = json_string_value(json_object_get(priv, "node"));
    json_t *limits = json_object_get(pub, "limits");
    int64_t mem = json_integer_value(json_object_get(limits, "memory_mb"));
    int64_t cpu_m = (int64_t)(json_number_value(json_object_get(limits, "cpu")) * 1000.0 + 0.5);
    char *p = json_dumps(pub, JSON_COMPACT), *v = json_dumps(priv, JSON_COMPACT);
    int err = p && v ? 0 : AL_ENOMEM;
    struct ald_db_arg a[] = {ALD_DB_TXT(id),
                             ALD_DB_TXT(json_string_value(json_object_get(pub, "user"))),
                             ALD_DB_TXT(json_string_value(json_object_get(pub, "state"))),
                             ALD_DB_INT(mem),
                             ALD_DB_INT(cpu_m),
                             ALD_DB_TXT(p),
                             ALD_DB_TXT(v),
                             ALD_DB_TXT(node)};
    int64_t changes = 0;
    if (err == 0 && !node)
        err = run(st, &q_session_put, a, 7, &changes);
    if (err == 0 && node && (err = run(st, &q_session_put_owned, a, 8, &changes)) == 0 &&
        changes == 0)
        err = run(st, &q_session_insert_owned, a, 8, &changes);
    if (err == 0 && changes == 0)
        err = al_error_set(AL_ESTALE,
                           "session %s: its row is lost or owned by another node than %s (fenced)",
                           id ? id : "", node ? node : "this one");
    free(p);
    free(v);
    return err;
}

/* The pending map's key of a session's (num < 0) or process's row. */
static void pending_key(char *buf, size_t n, const char *sid, int64_t num)
{
    if (num < 0)
        snprintf(buf, n, "s %s", sid ? sid : "");
    else
        snprintf(buf, n, "p %s %" PRId64, sid ? sid : "", num);
}

/* After a write of the row (sid, num) that ended with `err`: a success
 * drops a kept older copy; AL_EAGAIN keeps a copy of this one. Caller
 * holds put_lock. */
static void pending_note(struct ald_store *st, int err, const char *sid, int64_t num, json_t *pub,
                         json_t *priv)
{
    char key[160];
    pending_key(key, sizeof(key), sid, num);
    if (err == 0 || err == AL_ESTALE) {
        json_object_del(st->pending, key); /* written, or fenced: never to be written */
    } else if (err == AL_EAGAIN &&
               (json_object_get(st->pending, key) || json_object_size(st->pending) < PENDING_MAX)) {
        json_object_set_new(st->pending, key,
                            json_pack("[s, I, o, o]", sid ? sid : "", (json_int_t)num,
                                      json_deep_copy(pub), json_deep_copy(priv)));
    } else if (err == AL_EAGAIN) {
        al_log(AL_LOG_WARN, "database: %d rows already kept, the row %s is lost", PENDING_MAX, key);
    }
}

int ald_store_session_put(struct ald_store *st, json_t *pub, json_t *priv)
{
    const char *sid = json_string_value(json_object_get(pub, "id"));
    pthread_mutex_lock(&st->put_lock);
    int err = session_write(st, pub, priv);
    pending_note(st, err, sid, -1, pub, priv);
    pthread_mutex_unlock(&st->put_lock);
    return err;
}

/* *pub and *priv (may be NULL) from row 0's columns `col` and `col` + 1:
 * AL_ENOTFOUND when no row. */
static int get_pair(const struct ald_db_rows *r, int col, json_t **pub, json_t **priv)
{
    if (r->n == 0)
        return AL_ENOTFOUND;
    *pub = ald_rows_json(r, 0, col);
    if (priv)
        *priv = ald_rows_json(r, 0, col + 1);
    if (*pub && (!priv || *priv))
        return 0;
    json_decref(*pub);
    *pub = NULL;
    if (priv) {
        json_decref(*priv);
        *priv = NULL;
    }
    return AL_ENOMEM;
}

int ald_store_session_get(struct ald_store *st, const char *id, const char *user, json_t **pub,
                          json_t **priv)
{
    *pub = NULL;
    if (priv)
        *priv = NULL;
    struct ald_db_arg a[] = {ALD_DB_TXT(id)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(st->db, &q_session_get, a, NARGS(a), &r);
    if (err == 0 && r.n > 0 && user && strcmp(ald_rows_str(&r, 0, 0), user) != 0)
        err = AL_ENOTFOUND;
    if (err == 0)
        err = get_pair(&r, 1, pub, priv);
    ald_db_rows_free(&r);
    return err;
}

int ald_store_session_page(struct ald_store *st, const char *user, const char *state, int64_t after,
                           unsigned limit, json_t **out, int64_t *next)
{
    *out = NULL;
    *next = 0;
    struct ald_db_arg a[] = {ALD_DB_INT(after), ALD_DB_TXT(user), ALD_DB_TXT(state),
                             ALD_DB_INT((int64_t)limit + 1)};
    struct ald_db_rows r = {0};
    json_t *arr = json_array();
    int err = arr ? ald_db_run(st->db, &q_session_page, a, NARGS(a), &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++) {
        if ((unsigned)i == limit) {
            *next = ald_db_int(&r, i - 1, 0);
            break;
        }
        json_t *o = ald_rows_json(&r, i, 1);
        if (o)
            json_array_append_new(arr, o);
    }
    ald_db_rows_free(&r);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}

/* Runs `q` and appends each row's two JSON columns to `arr` as [a, b]. */
static int collect_pairs(struct ald_store *st, const struct ald_sql *q, const struct ald_db_arg *a,
                         int n, json_t *arr)
{
    struct ald_db_rows r = {0};
    int err = ald_db_run(st->db, q, a, n, &r);
    for (int i = 0; err == 0 && i < r.n; i++) {
        json_t *x = ald_rows_json(&r, i, 0), *y = ald_rows_json(&r, i, 1);
        if (x && y) {
            json_array_append_new(arr, json_pack("[o, o]", x, y));
        } else {
            json_decref(x);
            json_decref(y);
        }
    }
    ald_db_rows_free(&r);
    return err;
}

int ald_store_session_live_on(struct ald_store *st, const char *node, json_t **out)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(node)};
    *out = json_array();
    return *out ? collect_pairs(st, &q_session_live, a, NARGS(a), *out) : AL_ENOMEM;
}

int ald_store_session_live(struct ald_store *st, json_t **out)
{
    return ald_store_session_live_on(st, NULL, out);
}

int ald_store_session_gone_on(struct ald_store *st, const char *node, json_t **out)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(node)};
    struct ald_db_rows r = {0};
    *out = json_array();
    int err = *out ? ald_db_run(st->db, &q_session_gone, a, NARGS(a), &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++) {
        json_t *x = ald_rows_json(&r, i, 0), *y = ald_rows_json(&r, i, 1);
        if (x && y)
            json_array_append_new(*out, json_pack("{s:o, s:o}", "pub", x, "priv", y));
        else {
            json_decref(x);
            json_decref(y);
        }
    }
    ald_db_rows_free(&r);
    return err;
}

int ald_store_session_counts(struct ald_store *st, json_t **out)
{
    struct ald_db_rows r = {0};
    *out = json_object();
    int err = *out ? ald_db_run(st->db, &q_session_counts, NULL, 0, &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++)
        json_object_set_new(*out, ald_rows_str(&r, i, 0), json_integer(ald_db_int(&r, i, 1)));
    ald_db_rows_free(&r);
    return err;
}

int ald_store_session_kept_on(struct ald_store *st, const char *node, json_t **out)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(node)};
    struct ald_db_rows r = {0};
    *out = json_array();
    int err = *out ? ald_db_run(st->db, &q_session_kept, a, NARGS(a), &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++)
        json_array_append_new(
            *out, json_pack("[s, I]", ald_rows_str(&r, i, 0), (json_int_t)ald_db_int(&r, i, 1)));
    ald_db_rows_free(&r);
    return err;
}

int ald_store_session_kept(struct ald_store *st, json_t **out)
{
    return ald_store_session_kept_on(st, NULL, out);
}

int ald_store_session_revoked_on(struct ald_store *st, const char *node, int64_t after,
                                 json_t **out)
{
    struct ald_db_arg a[] = {ALD_DB_INT(after), ALD_DB_TXT(node)};
    struct ald_db_rows r = {0};
    *out = json_array();
    int err = *out ? ald_db_run(st->db, &q_session_revoked, a, NARGS(a), &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++)
        json_array_append_new(*out, json_string(ald_rows_str(&r, i, 0)));
    ald_db_rows_free(&r);
    return err;
}

int ald_store_session_revoked(struct ald_store *st, int64_t after, json_t **out)
{
    return ald_store_session_revoked_on(st, NULL, after, out);
}

int ald_store_session_branch_clash(struct ald_store *st, const char *branch, json_t **out)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(branch)};
    struct ald_db_rows r = {0};
    *out = json_array();
    int err = *out ? ald_db_run(st->db, &q_session_branch, a, NARGS(a), &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++)
        json_array_append_new(*out,
                              json_pack("[s, s]", ald_rows_str(&r, i, 0), ald_rows_str(&r, i, 1)));
    ald_db_rows_free(&r);
    return err;
}

/* The process row's parameters, pub and priv dumped (free() a[3].s, a[4].s). */
static int proc_args(struct ald_db_arg a[5], const char *session, uint64_t num, json_t *pub,
                     json_t *priv)
{
    const char *state = json_string_value(json_object_get(pub, "state"));
    a[0] = ALD_DB_TXT(session);
    a[1] = ALD_DB_INT(num);
    a[2] = ALD_DB_INT(state && strcmp(state, "running") == 0);
    a[3] = ALD_DB_TXT(json_dumps(pub, JSON_COMPACT));
    a[4] = ALD_DB_TXT(json_dumps(priv, JSON_COMPACT));
    return a[3].s && a[4].s ? 0 : AL_ENOMEM;
}

static void proc_args_free(struct ald_db_arg a[5])
{
    free((char *)a[3].s);
    free((char *)a[4].s);
}

static int proc_write(struct ald_store *st, const char *session, uint64_t num, json_t *pub,
                      json_t *priv)
{
    struct ald_db_arg a[5];
    int err = proc_args(a, session, num, pub, priv);
    if (err == 0)
        err = run(st, &q_proc_put, a, 5, NULL);
    proc_args_free(a);
    return err;
}

/* One kept row: the session's (num < 0) or a process's. */
static int write_row(struct ald_store *st, const char *sid, int64_t num, json_t *pub, json_t *priv)
{
    return num < 0 ? session_write(st, pub, priv) : proc_write(st, sid, (uint64_t)num, pub, priv);
}

int ald_store_proc_put(struct ald_store *st, const char *session, uint64_t num, json_t *pub,
                       json_t *priv)
{
    pthread_mutex_lock(&st->put_lock);
    int err = proc_write(st, session, num, pub, priv);
    pending_note(st, err, session, (int64_t)num, pub, priv);
    pthread_mutex_unlock(&st->put_lock);
    return err;
}

int ald_store_proc_get(struct ald_store *st, const char *session, uint64_t num, json_t **pub,
                       json_t **priv)
{
    *pub = NULL;
    if (priv)
        *priv = NULL;
    struct ald_db_arg a[] = {ALD_DB_TXT(session), ALD_DB_INT(num)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(st->db, &q_proc_get, a, NARGS(a), &r);
    if (err == 0)
        err = get_pair(&r, 0, pub, priv);
    ald_db_rows_free(&r);
    return err;
}

int ald_store_proc_list(struct ald_store *st, const char *session, json_t **out)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(session)};
    struct ald_db_rows r = {0};
    *out = json_array();
    int err = *out ? ald_db_run(st->db, &q_proc_list, a, NARGS(a), &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++) {
        json_t *o = ald_rows_json(&r, i, 0);
        if (o)
            json_array_append_new(*out, o);
    }
    ald_db_rows_free(&r);
    return err;
}

int ald_store_proc_running(struct ald_store *st, const char *session, json_t **out)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(session)};
    *out = json_array();
    return *out ? collect_pairs(st, &q_proc_running, a, NARGS(a), *out) : AL_ENOMEM;
}

int ald_store_proc_max(struct ald_store *st, const char *session, uint64_t *out)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(session)};
    struct ald_db_rows r = {0};
    *out = 0;
    int err = ald_db_run(st->db, &q_proc_max, a, NARGS(a), &r);
    if (err == 0 && r.n > 0)
        *out = (uint64_t)ald_db_int(&r, 0, 0);
    ald_db_rows_free(&r);
    return err;
}

int ald_store_idem_claim(struct ald_store *st, const char *user, const char *key,
                         const char *body_hash, const char *session, uint64_t now_ms,
                         char out_session[32], char out_hash[72])
{
    out_session[0] = out_hash[0] = '\0';
    struct ald_db_arg a[] = {ALD_DB_TXT(user), ALD_DB_TXT(key), ALD_DB_TXT(body_hash),
                             ALD_DB_TXT(session), ALD_DB_INT(now_ms)};
    int64_t changes = 0;
    int err = run(st, &q_idem_insert, a, NARGS(a), &changes);
    if (err == 0 && changes != 1) {
        struct ald_db_rows r = {0};
        err = ald_db_run(st->db, &q_idem_get, a, 2, &r);
        if (err == 0 && r.n > 0) {
            snprintf(out_hash, 72, "%s", ald_rows_str(&r, 0, 0));
            snprintf(out_session, 32, "%s", ald_rows_str(&r, 0, 1));
            err = AL_EEXISTS;
        } else if (err == 0) {
            err = al_error_set(AL_EIO, "database: idempotency key vanished");
        }
        ald_db_rows_free(&r);
    }
    return err;
}

int ald_store_idem_release(struct ald_store *st, const char *user, const char *key)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(user), ALD_DB_TXT(key)};
    return run(st, &q_idem_del, a, NARGS(a), NULL);
}

int ald_store_idem_purge(struct ald_store *st, uint64_t before_ms)
{
    struct ald_db_arg a[] = {ALD_DB_INT(before_ms)};
    return run(st, &q_idem_purge, a, NARGS(a), NULL);
}

static void audit_args(struct ald_db_arg a[7], const struct ald_audit_row *r)
{
    a[0] = ALD_DB_INT(r->time_ms);
    a[1] = ALD_DB_TXT(r->user);
    a[2] = ALD_DB_TXT(r->key_id);
    a[3] = ALD_DB_TXT(r->method);
    a[4] = ALD_DB_TXT(r->path);
    a[5] = ALD_DB_INT(r->status);
    a[6] = ALD_DB_TXT(r->session);
}

int ald_store_audit(struct ald_store *st, const struct ald_audit_row *row)
{
    struct ald_db_arg a[7];
    audit_args(a, row);
    return run(st, &q_audit, a, 7, NULL);
}

int ald_store_proc_put_audit(struct ald_store *st, const char *session, uint64_t num, json_t *pub,
                             json_t *priv, const struct ald_audit_row *row)
{
    struct ald_db_arg pa[5], aa[7];
    struct ald_db_conn *c = NULL;
    audit_args(aa, row);
    pthread_mutex_lock(&st->put_lock);
    int err = proc_args(pa, session, num, pub, priv);
    if (err == 0)
        err = ald_db_acquire(st->db, &c);
    if (err == 0) {
        err = ald_db_begin(c);
        if (err == 0 && (err = ald_db_exec(c, &q_proc_put, pa, 5, NULL)) == 0 &&
            (err = ald_db_exec(c, &q_audit, aa, 7, NULL)) == 0)
            err = ald_db_commit(c);
        if (err < 0)
            ald_db_rollback(c);
        ald_db_release(st->db, c);
    }
    /* unreachable: the process row is kept (the audit row is lost) */
    pending_note(st, err, session, (int64_t)num, pub, priv);
    pthread_mutex_unlock(&st->put_lock);
    proc_args_free(pa);
    return err;
}

/* A cell as a JSON string, or JSON null for SQL NULL (new reference). */
static json_t *cell_str_or_null(const struct ald_db_rows *r, int row, int col)
{
    const char *t = ald_db_text(r, row, col);
    return t ? json_stringn(t, ald_db_len(r, row, col)) : json_null();
}

int ald_store_audit_page(struct ald_store *st, const struct ald_audit_filter *f, json_t **out,
                         int64_t *next)
{
    *out = NULL;
    *next = 0;
    struct ald_db_arg a[] = {ALD_DB_INT(f->before > 0 ? f->before : INT64_MAX),
                             ALD_DB_TXT(f->user),
                             ALD_DB_TXT(f->session),
                             ALD_DB_TXT(f->method),
                             ALD_DB_INT((int64_t)f->since_ms),
                             ALD_DB_INT(f->until_ms ? (int64_t)f->until_ms : INT64_MAX),
                             ALD_DB_TXT(f->text && f->text[0] ? f->text : NULL),
                             ALD_DB_INT((int64_t)f->limit + 1)};
    struct ald_db_rows r = {0};
    json_t *arr = json_array();
    int err = arr ? ald_db_run(st->db, &q_audit_page, a, NARGS(a), &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++) {
        if ((unsigned)i == f->limit) {
            *next = ald_db_int(&r, i - 1, 0);
            break;
        }
        uint64_t t = (uint64_t)ald_db_int(&r, i, 1);
        json_t *o = json_pack(
            "{s:I, s:o, s:I, s:o, s:o, s:o, s:o, s:I, s:o}", "seq",
            (json_int_t)ald_db_int(&r, i, 0), "time", ald_time_json(t), "time_ms", (json_int_t)t,
            "user", cell_str_or_null(&r, i, 2), "key_id", cell_str_or_null(&r, i, 3), "method",
            cell_str_or_null(&r, i, 4), "path", cell_str_or_null(&r, i, 5), "status",
            (json_int_t)ald_db_int(&r, i, 6), "session", cell_str_or_null(&r, i, 7));
        if (o)
            json_array_append_new(arr, o);
    }
    ald_db_rows_free(&r);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}

int ald_store_user_summary(struct ald_store *st, json_t **out)
{
    *out = NULL;
    struct ald_db_rows r = {0};
    json_t *arr = json_array();
    int err = arr ? ald_db_run(st->db, &q_user_summary, NULL, 0, &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++)
        json_array_append_new(arr,
                              json_pack("{s:s, s:b, s:o, s:I, s:I}", "name", ald_rows_str(&r, i, 0),
                                        "admin", (int)ald_db_int(&r, i, 1), "created_at",
                                        ald_time_json((uint64_t)ald_db_int(&r, i, 2)), "keys",
                                        (json_int_t)ald_db_int(&r, i, 3), "live_sessions",
                                        (json_int_t)ald_db_int(&r, i, 4)));
    ald_db_rows_free(&r);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}
