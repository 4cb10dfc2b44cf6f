/* The cluster's rows (store_nodes.h) on the stores' database (db.h).
 *
 * Every time compared across nodes is the database's ({now}, db.h). The
 * statements that must see each other's writes run in one transaction on
 * one connection: placement (ald_store_place) and the down sweep
 * (ald_store_node_sweep). PostgreSQL runs them under READ COMMITTED with
 * explicit locks (advisory locks for a user's quota and a repository's
 * branches, FOR UPDATE on the candidate node rows, taken in id order so
 * that placers never deadlock); SQLite's BEGIN IMMEDIATE takes the whole
 * database's write lock, which serialises them anyway. */
#include "airlockd/adapters/store_nodes.h"

#include "airlockd/adapters/db.h"
#include "store_rows.h"
#include "airlockd/adapters/store.h"
#include "airlockd/core/gitpolicy.h"

#include "airlock/base64.h"
#include "airlock/error.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE_STATES ALD_STORE_LIVE_STATES

/* ---- nodes ---------------------------------------------------------- */

static const struct ald_sql nq_register = {
    /* $1 id $2 address $3 api $4 version $5..$7 caps */
    "INSERT INTO nodes(id, address, api_address, state, version, epoch, cap_sessions,"
    " cap_memory_mb, cap_cpu_m, started_ms, heartbeat_ms)"
    " VALUES ($1, $2, $3, 'up', $4, 1, $5, $6, $7, {now}, {now})"
    " ON CONFLICT(id) DO UPDATE SET address = $2, api_address = $3, version = $4,"
    " epoch = nodes.epoch + 1, cap_sessions = $5, cap_memory_mb = $6, cap_cpu_m = $7,"
    " started_ms = {now}, heartbeat_ms = {now},"
    " state = CASE WHEN nodes.state = 'draining' THEN 'draining' ELSE 'up' END,"
    " down_ms = NULL, down_reason = NULL RETURNING epoch, state",
    NULL};
static const struct ald_sql nq_heartbeat = {
    "UPDATE nodes SET heartbeat_ms = {now} WHERE id = $1 AND epoch = $2"
    " AND state IN ('up', 'draining') RETURNING state",
    NULL};
/* PostgreSQL locks the rows in id order first (as placement does), so
 * that a sweep and a placement never wait for each other in a cycle; the
 * lock re-reads each row, so a node that heartbeated meanwhile, or that
 * another sweeper marked, is left out. */
static const struct ald_sql nq_mark_down = {
    /* $1 down_after_ms $2 the sweeper's id */
    "UPDATE nodes SET state = 'down', down_ms = {now},"
    " down_reason = 'no heartbeat for ' || (({now} - heartbeat_ms) / 1000) || ' s'"
    " WHERE state IN ('up', 'draining') AND id <> $2 AND heartbeat_ms < {now} - $1"
    " RETURNING id, down_reason",
    "UPDATE nodes SET state = 'down', down_ms = {now},"
    " down_reason = 'no heartbeat for ' || (({now} - heartbeat_ms) / 1000) || ' s'"
    " WHERE id IN (SELECT id FROM nodes WHERE state IN ('up', 'draining') AND id <> $2"
    " AND heartbeat_ms < {now} - $1 ORDER BY id FOR UPDATE) RETURNING id, down_reason"};
static const struct ald_sql nq_lose_sessions = {
    /* $1 node $2 reason */
    "UPDATE sessions SET state = 'lost',"
    " pub = json_set(pub, '$.state', 'lost', '$.end_reason', $2,"
    " '$.ended_at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), '$.expires_at', NULL),"
    " priv = json_set(priv, '$.ended_ms', {now})"
    " WHERE node = $1 AND state IN " LIVE_STATES " RETURNING id, \"user\", pub",
    "UPDATE sessions SET state = 'lost',"
    " pub = jsonb_set(jsonb_set(jsonb_set(jsonb_set(pub::jsonb, '{state}', '\"lost\"'),"
    " '{end_reason}', to_jsonb($2::text)), '{ended_at}',"
    " to_jsonb(to_char(clock_timestamp() AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))), '{expires_at}', 'null')::text,"
    " priv = jsonb_set(priv::jsonb, '{ended_ms}', to_jsonb({now}))::text"
    " WHERE node = $1 AND state IN " LIVE_STATES " RETURNING id, \"user\", pub"};
static const struct ald_sql nq_node_jobs = {
    "SELECT pub, priv FROM jobs WHERE node = $1 AND state = 'running' ORDER BY seq", NULL};
static const struct ald_sql nq_list = {
    "SELECT n.id, n.address, n.api_address, n.state, n.version, n.epoch, n.cap_sessions,"
    " n.cap_memory_mb, n.cap_cpu_m, n.heartbeat_ms, {now} - n.heartbeat_ms, n.down_reason,"
    " (SELECT count(*) FROM sessions s WHERE s.node = n.id AND s.state IN " LIVE_STATES "),"
    " (SELECT coalesce(sum(s.memory_mb), 0) FROM sessions s"
    " WHERE s.node = n.id AND s.state IN " LIVE_STATES ")"
    " FROM nodes n ORDER BY n.id",
    NULL};
/* draining and up (undrain) only from up or draining, so that undrain
 * never revives a node marked down (its sessions are lost; it must
 * re-register); left from any state but left */
static const struct ald_sql nq_set_state = {
    "UPDATE nodes SET state = $2 WHERE id = $1 AND (state IN ('up', 'draining')"
    " OR ($2 = 'left' AND state = 'down')) RETURNING state",
    "UPDATE nodes SET state = $2 WHERE id = $1 AND (state IN ('up', 'draining')"
    " OR ($2::text = 'left' AND state = 'down')) RETURNING state"};
static const struct ald_sql nq_node_state = {"SELECT state FROM nodes WHERE id = $1", NULL};

int ald_store_node_register(struct ald_store *st, const char *id, const char *address,
                            const char *api_address, const char *version,
                            const struct ald_node_caps *caps, int64_t *epoch, char state[16])
{
    struct ald_db_arg a[] = {
        ALD_DB_TXT(id),         ALD_DB_TXT(address),        ALD_DB_TXT(api_address),
        ALD_DB_TXT(version),    ALD_DB_INT(caps->sessions), ALD_DB_INT(caps->memory_mb),
        ALD_DB_INT(caps->cpu_m)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(ald_store_db(st), &nq_register, a, NARGS(a), &r);
    if (err == 0 && r.n != 1)
        err = al_error_set(AL_EIO, "node %s: the register returned no row", id);
    if (err == 0) {
        *epoch = ald_db_int(&r, 0, 0);
        snprintf(state, 16, "%s", ald_db_text(&r, 0, 1));
    }
    ald_db_rows_free(&r);
    return err;
}

int ald_store_node_heartbeat(struct ald_store *st, const char *id, int64_t epoch, char state[16])
{
    struct ald_db_arg a[] = {ALD_DB_TXT(id), ALD_DB_INT(epoch)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(ald_store_db(st), &nq_heartbeat, a, NARGS(a), &r);
    if (err == 0 && r.n == 0)
        err = al_error_set(AL_ESTALE,
                           "node %s (epoch %" PRId64 "): the cluster marked it down or another"
                           " process registered it since",
                           id, epoch);
    if (err == 0)
        snprintf(state, 16, "%s", ald_db_text(&r, 0, 0));
    ald_db_rows_free(&r);
    return err;
}

/* One node marked down by the sweep: its live sessions become lost and
 * its running jobs are read, on the sweep's connection. *out: the entry of
 * ald_store_node_sweep's list. */
static int sweep_node(struct ald_db_conn *c, const char *node, const char *why, json_t **out)
{
    char reason[512];
    snprintf(reason, sizeof(reason), "node-down: %s: %s", node, why);
    struct ald_db_arg a[] = {ALD_DB_TXT(node), ALD_DB_TXT(reason)};
    struct ald_db_rows r = {0};
    json_t *sessions = json_array(), *jobs = json_array();
    int err = sessions && jobs ? ald_db_exec(c, &nq_lose_sessions, a, 2, &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++)
        json_array_append_new(sessions,
                              json_pack("{s:s, s:s, s:o*}", "id", ald_rows_str(&r, i, 0), "user",
                                        ald_rows_str(&r, i, 1), "pub", ald_rows_json(&r, i, 2)));
    ald_db_rows_free(&r);
    if (err == 0)
        err = ald_db_exec(c, &nq_node_jobs, a, 1, &r);
    for (int i = 0; err == 0 && i < r.n; i++)
        json_array_append_new(jobs, json_pack("{s:o*, s:o*}", "pub", ald_rows_json(&r, i, 0),
                                              "priv", ald_rows_json(&r, i, 1)));
    ald_db_rows_free(&r);
    if (err == 0 && !(*out = json_pack("{s:s, s:s, s:O, s:O}", "node", node, "reason", reason,
                                       "sessions", sessions, "jobs", jobs)))
        err = AL_ENOMEM;
    json_decref(sessions);
    json_decref(jobs);
    return err;
}

int ald_store_node_sweep(struct ald_store *st, const char *self, int64_t down_after_ms,
                         json_t **lost)
{
    *lost = NULL;
    struct ald_db *db = ald_store_db(st);
    struct ald_db_conn *c = NULL;
    struct ald_db_rows r = {0};
    json_t *out = json_array();
    int err = out ? ald_db_acquire(db, &c) : AL_ENOMEM;
    if (err < 0)
        goto done;
    if ((err = ald_db_begin(c)) < 0)
        goto done;
    struct ald_db_arg a[] = {ALD_DB_INT(down_after_ms), ALD_DB_TXT(self)};
    err = ald_db_exec(c, &nq_mark_down, a, NARGS(a), &r);
    for (int i = 0; err == 0 && i < r.n; i++) {
        json_t *one = NULL;
        if ((err = sweep_node(c, ald_rows_str(&r, i, 0), ald_rows_str(&r, i, 1), &one)) == 0)
            json_array_append_new(out, one);
    }
    err = err < 0 ? err : ald_db_commit(c);
    if (err < 0)
        ald_db_rollback(c);
done:
    ald_db_rows_free(&r);
    ald_db_release(db, c);
    if (err == 0)
        *lost = out;
    else
        json_decref(out);
    return err;
}

int ald_store_node_list(struct ald_store *st, json_t **out)
{
    struct ald_db_rows r = {0};
    json_t *arr = json_array();
    *out = NULL;
    int err = arr ? ald_db_run(ald_store_db(st), &nq_list, NULL, 0, &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++) {
        json_t *one =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:{s:I, s:I, s:I}, s:I, s:I, s:o, s:I, s:I}",
                      "id", ald_rows_str(&r, i, 0), "address", ald_rows_str(&r, i, 1),
                      "api_address", ald_rows_str(&r, i, 2), "state", ald_rows_str(&r, i, 3),
                      "version", ald_rows_str(&r, i, 4), "epoch", (json_int_t)ald_db_int(&r, i, 5),
                      "capacity", "sessions", (json_int_t)ald_db_int(&r, i, 6), "memory_mb",
                      (json_int_t)ald_db_int(&r, i, 7), "cpu_m", (json_int_t)ald_db_int(&r, i, 8),
                      "heartbeat_ms", (json_int_t)ald_db_int(&r, i, 9), "heartbeat_age_ms",
                      (json_int_t)ald_db_int(&r, i, 10), "down_reason",
                      ald_db_isnull(&r, i, 11) ? json_null() : json_string(ald_rows_str(&r, i, 11)),
                      "sessions", (json_int_t)ald_db_int(&r, i, 12), "memory_mb",
                      (json_int_t)ald_db_int(&r, i, 13));
        if (!one || json_array_append_new(arr, one) < 0)
            err = AL_ENOMEM;
    }
    ald_db_rows_free(&r);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}

int ald_store_node_set_state(struct ald_store *st, const char *id, const char *state)
{
    if (strcmp(state, "draining") != 0 && strcmp(state, "up") != 0 && strcmp(state, "left") != 0)
        return al_error_set(AL_EINVAL, "node state \"%s\": draining, up or left", state);
    struct ald_db_arg a[] = {ALD_DB_TXT(id), ALD_DB_TXT(state)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(ald_store_db(st), &nq_set_state, a, NARGS(a), &r);
    if (err == 0 && r.n == 0) {
        ald_db_rows_free(&r);
        err = ald_db_run(ald_store_db(st), &nq_node_state, a, 1, &r);
        if (err == 0 && r.n == 0)
            err = al_error_set(AL_ENOTFOUND, "no node %s", id);
        else if (err == 0)
            err = al_error_set(AL_EINVAL, "node %s is %s: it cannot become %s", id,
                               ald_rows_str(&r, 0, 0), state);
    }
    ald_db_rows_free(&r);
    return err;
}

/* ---- placement ------------------------------------------------------ */

static const struct ald_sql pq_user_lock = {
    "SELECT $1", "SELECT pg_advisory_xact_lock(hashtext('airlock-user:' || $1::text))"};
static const struct ald_sql pq_user_usage = {
    "SELECT count(*), coalesce(sum(memory_mb), 0) FROM sessions"
    " WHERE \"user\" = $1 AND state IN " LIVE_STATES,
    NULL};
static const struct ald_sql pq_branch_lock = {
    "SELECT $1", "SELECT pg_advisory_xact_lock(hashtext('airlock-branch:' || $1::text))"};
/* every session ever recorded with a branch colliding with $1 (store.c's
 * q_session_branch, the same rule as ald_git_plan) */
static const struct ald_sql pq_branch = {
    "SELECT repo FROM (SELECT json_extract(pub, '$.repo') AS repo,"
    " lower(json_extract(pub, '$.branch')) AS b,"
    " coalesce(json_extract(pub, '$.end_reason'), '') AS why FROM sessions) AS s,"
    " (SELECT lower($1) AS x) AS q WHERE b IS NOT NULL AND why NOT LIKE 'create-%'"
    " AND (b = x OR substr(x, 1, length(b) + 1) = b || '/'"
    " OR substr(b, 1, length(x) + 1) = x || '/')",
    "SELECT repo FROM (SELECT (pub::jsonb #>> '{repo}') AS repo,"
    " lower(pub::jsonb #>> '{branch}') AS b,"
    " coalesce(pub::jsonb #>> '{end_reason}', '') AS why FROM sessions) AS s,"
    " (SELECT lower($1::text) AS x) AS q WHERE b IS NOT NULL AND why NOT LIKE 'create-%'"
    " AND (b = x OR substr(x, 1, length(b) + 1) = b || '/'"
    " OR substr(b, 1, length(x) + 1) = x || '/')"};
/* $1 down_after_ms $2 force_node $3 exclude_node */
#define CANDIDATES                                                                                 \
    " n.state = 'up' AND n.heartbeat_ms >= {now} - $1 AND ($2 IS NULL OR n.id = $2)"               \
    " AND ($3 IS NULL OR n.id <> $3)"
#define CANDIDATES_PG                                                                              \
    " n.state = 'up' AND n.heartbeat_ms >= {now} - $1 AND ($2::text IS NULL OR n.id = $2)"         \
    " AND ($3::text IS NULL OR n.id <> $3)"
static const struct ald_sql pq_lock_nodes = {
    "SELECT n.id FROM nodes n WHERE" CANDIDATES " ORDER BY n.id",
    "SELECT n.id FROM nodes n WHERE" CANDIDATES_PG " ORDER BY n.id FOR UPDATE"};
/* $4 memory_mb: the candidate with the most free room (memory, sessions
 * and CPU, each as a share of the node's capacity) that has room */
#define PICK(cand)                                                                                 \
    "SELECT n.id, n.address FROM nodes n LEFT JOIN (SELECT node, count(*) AS k,"                   \
    " coalesce(sum(memory_mb), 0) AS mem, coalesce(sum(cpu_m), 0) AS cpu FROM sessions"            \
    " WHERE state IN " LIVE_STATES " GROUP BY node) u ON u.node = n.id WHERE" cand                 \
    " AND coalesce(u.k, 0) + 1 <= n.cap_sessions"                                                  \
    " AND coalesce(u.mem, 0) + $4 <= n.cap_memory_mb"                                              \
    " ORDER BY CASE WHEN n.cap_memory_mb > 0"                                                      \
    " THEN (n.cap_memory_mb - coalesce(u.mem, 0) - $4) * 1.0 / n.cap_memory_mb ELSE 0 END"         \
    " + (n.cap_sessions - coalesce(u.k, 0) - 1) * 1.0 / n.cap_sessions"                            \
    " + CASE WHEN n.cap_cpu_m > 0 THEN (n.cap_cpu_m - coalesce(u.cpu, 0)) * 1.0 / n.cap_cpu_m"     \
    " ELSE 0 END DESC, n.id LIMIT 1"
static const struct ald_sql pq_pick = {PICK(CANDIDATES), PICK(CANDIDATES_PG)};
static const struct ald_sql pq_insert = {
    "INSERT INTO sessions(id, \"user\", state, node, memory_mb, cpu_m, pub, priv)"
    " VALUES ($1, $2, 'placed', $3, $4, $5, $6, $7)",
    NULL};

/* "host/owner/name" of a repository URL, lower-cased, as gitrepo.c keys a
 * repository (its URL lower-cased when it does not parse). */
static void repo_key(const char *url, char *out, size_t size)
{
    char host[128], owner[128], name[128];
    if (ald_repo_parse(url, host, owner, name, sizeof(host)) == 0)
        snprintf(out, size, "%s/%s/%s", host, owner, name);
    else
        snprintf(out, size, "%s", url);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* (1) the user's quota, under the user's lock (PostgreSQL; SQLite's
 * BEGIN IMMEDIATE serialises all placements). */
static int place_quota(struct ald_db_conn *c, const struct ald_place_req *q, struct ald_fault *f)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(q->user)};
    struct ald_db_rows r = {0};
    int err = ald_db_exec(c, &pq_user_lock, a, 1, NULL);
    if (err == 0)
        err = ald_db_exec(c, &pq_user_usage, a, 1, &r);
    int64_t n = ald_db_int(&r, 0, 0), mem = ald_db_int(&r, 0, 1);
    ald_db_rows_free(&r);
    if (err < 0)
        return err;
    if (q->max_sessions >= 0 && n + 1 > q->max_sessions) {
        ald_fault_set(f, ALD_FAULT_QUOTA, "quota_exceeded", NULL,
                      "user %s has %llu sessions (quota %llu)", q->user, (unsigned long long)n,
                      (unsigned long long)q->max_sessions);
        return al_error_set(AL_EPERM, "%s", f->message);
    }
    if (q->max_memory_mb >= 0 && mem + q->memory_mb > q->max_memory_mb) {
        ald_fault_set(f, ALD_FAULT_QUOTA, "quota_exceeded", "limits.memory_mb",
                      "user %s would use %llu MiB (quota %llu MiB)", q->user,
                      (unsigned long long)(mem + q->memory_mb),
                      (unsigned long long)q->max_memory_mb);
        return al_error_set(AL_EPERM, "%s", f->message);
    }
    return 0;
}

/* (2) the branch: no session ever recorded on the repository has a
 * colliding one (ald_git_plan's rule), under the repository's lock. */
static int place_branch(struct ald_db_conn *c, const struct ald_place_req *q, struct ald_fault *f)
{
    char key[512], other[512];
    repo_key(q->repo, key, sizeof(key));
    struct ald_db_arg lk[] = {ALD_DB_TXT(key)}, br[] = {ALD_DB_TXT(q->branch)};
    struct ald_db_rows r = {0};
    int err = ald_db_exec(c, &pq_branch_lock, lk, 1, NULL);
    if (err == 0)
        err = ald_db_exec(c, &pq_branch, br, 1, &r);
    for (int i = 0; err == 0 && i < r.n; i++) {
        if (ald_db_isnull(&r, i, 0))
            continue;
        repo_key(ald_rows_str(&r, i, 0), other, sizeof(other));
        if (strcmp(key, other) == 0) {
            ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", "branch",
                          "branch \"%.200s\" is, or collides with, the branch of another session"
                          " on this repository: a session's branch is its own",
                          q->branch);
            err = al_error_set(AL_EEXISTS, "%s", f->message);
        }
    }
    ald_db_rows_free(&r);
    return err;
}

/* (3) + (4): locks the candidate nodes and picks the one with the most
 * room into o. */
static int place_pick(struct ald_db_conn *c, const struct ald_place_req *q, struct ald_place_out *o,
                      struct ald_fault *f)
{
    struct ald_db_arg a[] = {ALD_DB_INT(q->down_after_ms), ALD_DB_TXT(q->force_node),
                             ALD_DB_TXT(q->exclude_node), ALD_DB_INT(q->memory_mb)};
    struct ald_db_rows r = {0};
    int err = ald_db_exec(c, &pq_lock_nodes, a, 3, &r);
    int up = r.n;
    ald_db_rows_free(&r);
    if (err == 0)
        err = ald_db_exec(c, &pq_pick, a, 4, &r);
    if (err == 0 && r.n == 0) {
        ald_fault_set(f, ALD_FAULT_UNAVAILABLE, "unavailable", NULL,
                      "no node has room (%d up, %d full)", up, up);
        err = al_error_set(AL_EAGAIN, "%s", f->message);
    } else if (err == 0) {
        snprintf(o->node, sizeof(o->node), "%s", ald_rows_str(&r, 0, 0));
        snprintf(o->address, sizeof(o->address), "%s", ald_rows_str(&r, 0, 1));
    }
    ald_db_rows_free(&r);
    return err;
}

/* (5) the `placed` row, owned by o->node from the start. */
static int place_insert(struct ald_db_conn *c, const struct ald_place_req *q,
                        const struct ald_place_out *o)
{
    json_t *pub = json_copy(q->pub);
    if (pub)
        json_object_set_new(pub, "state", json_string("placed"));
    char *p = pub ? json_dumps(pub, JSON_COMPACT) : NULL;
    json_t *pv = q->priv ? json_copy(q->priv) : json_object();
    if (pv)
        json_object_set_new(pv, "node", json_string(o->node));
    char *v = pv ? json_dumps(pv, JSON_COMPACT) : NULL;
    json_decref(pv);
    int err = p && v ? 0 : AL_ENOMEM;
    if (err == 0) {
        struct ald_db_arg a[] = {ALD_DB_TXT(q->id),    ALD_DB_TXT(q->user),
                                 ALD_DB_TXT(o->node),  ALD_DB_INT(q->memory_mb),
                                 ALD_DB_INT(q->cpu_m), ALD_DB_TXT(p),
                                 ALD_DB_TXT(v)};
        err = ald_db_exec(c, &pq_insert, a, NARGS(a), NULL);
        if (err == AL_EEXISTS)
            al_error_set(err, "session %s exists", q->id);
    }
    free(p);
    free(v);
    json_decref(pub);
    return err;
}

int ald_store_place(struct ald_store *st, const struct ald_place_req *q, struct ald_place_out *o,
                    struct ald_fault *f)
{
    memset(o, 0, sizeof(*o));
    struct ald_fault mine = {0}; /* set by a step that refused */
    struct ald_db *db = ald_store_db(st);
    struct ald_db_conn *c = NULL;
    int err = ald_db_acquire(db, &c);
    if (err == 0 && (err = ald_db_begin(c)) == 0) {
        err = place_quota(c, q, &mine);
        if (err == 0 && q->repo && q->branch)
            err = place_branch(c, q, &mine);
        if (err == 0)
            err = place_pick(c, q, o, &mine);
        if (err == 0)
            err = place_insert(c, q, o);
        err = err < 0 ? err : ald_db_commit(c);
        if (err < 0)
            ald_db_rollback(c);
    }
    ald_db_release(db, c);
    if (err < 0) {
        memset(o, 0, sizeof(*o));
        if (mine.code)
            *f = mine;
        else
            ald_fault_store(f, err); /* the database's failure */
    }
    return err;
}

static const struct ald_sql pq_fail = {
    "UPDATE sessions SET state = 'failed',"
    " pub = json_set(pub, '$.state', 'failed', '$.end_reason', $2,"
    " '$.ended_at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), '$.expires_at', NULL),"
    " priv = json_set(priv, '$.ended_ms', {now}) WHERE id = $1 AND state = 'placed'",
    "UPDATE sessions SET state = 'failed',"
    " pub = jsonb_set(jsonb_set(jsonb_set(jsonb_set(pub::jsonb, '{state}', '\"failed\"'),"
    " '{end_reason}', to_jsonb($2::text)), '{ended_at}',"
    " to_jsonb(to_char(clock_timestamp() AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))), '{expires_at}', 'null')::text,"
    " priv = jsonb_set(priv::jsonb, '{ended_ms}', to_jsonb({now}))::text"
    " WHERE id = $1 AND state = 'placed'"};

int ald_store_place_fail(struct ald_store *st, const char *id, const char *reason)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(id), ALD_DB_TXT(reason)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(ald_store_db(st), &pq_fail, a, NARGS(a), &r);
    if (err == 0 && r.changes == 0)
        err = al_error_set(AL_ENOTFOUND, "no placed session %s", id);
    ald_db_rows_free(&r);
    return err;
}

/* ---- ownership ------------------------------------------------------ */

static const struct ald_sql q_owner = {
    "SELECT s.\"user\", s.state, coalesce(s.node, ''), coalesce(n.address, '')"
    " FROM sessions s LEFT JOIN nodes n ON n.id = s.node WHERE s.id = $1",
    NULL};

int ald_store_session_owner(struct ald_store *st, const char *id, const char *user, char node[64],
                            char address[128], char state[16])
{
    node[0] = address[0] = state[0] = '\0';
    struct ald_db_arg a[] = {ALD_DB_TXT(id)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(ald_store_db(st), &q_owner, a, NARGS(a), &r);
    if (err == 0 && (r.n == 0 || (user && strcmp(ald_db_text(&r, 0, 0), user) != 0)))
        err = al_error_set(AL_ENOTFOUND, "no session %s", id);
    if (err == 0) {
        snprintf(state, 16, "%s", ald_db_text(&r, 0, 1));
        snprintf(node, 64, "%s", ald_db_text(&r, 0, 2));
        snprintf(address, 128, "%s", ald_db_text(&r, 0, 3));
    }
    ald_db_rows_free(&r);
    return err;
}

static const struct ald_sql q_row = {"SELECT state, node FROM sessions WHERE id = $1", NULL};

int ald_store_session_rows(struct ald_store *st, const char *const *ids, size_t n, json_t **out)
{
    struct ald_db *db = ald_store_db(st);
    struct ald_db_conn *c = NULL;
    struct ald_db_rows r = {0};
    json_t *obj = json_object();
    *out = NULL;
    int err = obj ? ald_db_acquire(db, &c) : AL_ENOMEM;
    for (size_t i = 0; err == 0 && i < n; i++) {
        struct ald_db_arg a[] = {ALD_DB_TXT(ids[i])};
        err = ald_db_exec(c, &q_row, a, 1, &r);
        if (err == 0 && r.n > 0)
            json_object_set_new(obj, ids[i],
                                json_pack("{s:s, s:o}", "state", ald_rows_str(&r, 0, 0), "node",
                                          ald_db_isnull(&r, 0, 1)
                                              ? json_null()
                                              : json_string(ald_rows_str(&r, 0, 1))));
        ald_db_rows_free(&r);
    }
    ald_db_release(db, c);
    if (err == 0)
        *out = obj;
    else
        json_decref(obj);
    return err;
}

/* ---- cluster meta --------------------------------------------------- */

static const struct ald_sql mq_put = {
    "INSERT INTO cluster_meta(k, v) VALUES ($1, $2) ON CONFLICT(k) DO NOTHING", NULL};
static const struct ald_sql mq_get = {"SELECT v FROM cluster_meta WHERE k = $1", NULL};

int ald_store_meta_check(struct ald_store *st, const char *k, const char *v)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(k), ALD_DB_TXT(v)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(ald_store_db(st), &mq_put, a, NARGS(a), NULL);
    if (err == 0)
        err = ald_db_run(ald_store_db(st), &mq_get, a, 1, &r);
    if (err == 0 && r.n == 0)
        err = al_error_set(AL_EIO, "cluster_meta %s: not found after its insert", k);
    if (err == 0 && strcmp(ald_rows_str(&r, 0, 0), v) != 0)
        err = al_error_set(AL_EINVAL,
                           "cluster_meta %s: this node's value differs from the"
                           " cluster's",
                           k);
    ald_db_rows_free(&r);
    return err;
}

/* ---- approvals ------------------------------------------------------ */

static const struct ald_sql aq_put = {
    /* $1 id $2 session $3 kind $4 body $5 state $6 decided_by */
    "INSERT INTO approvals(id, session, kind, body, state, created_ms, decided_ms, decided_by)"
    " VALUES ($1, $2, $3, $4, $5, {now}, CASE WHEN $5 = 'pending' THEN NULL ELSE {now} END, $6)"
    " ON CONFLICT(session, id) DO UPDATE SET kind = $3, body = $4, state = $5,"
    " decided_ms = CASE WHEN $5 = 'pending' THEN NULL"
    " ELSE coalesce(approvals.decided_ms, {now}) END, decided_by = $6",
    "INSERT INTO approvals(id, session, kind, body, state, created_ms, decided_ms, decided_by)"
    " VALUES ($1, $2, $3, $4, $5::text, {now},"
    " CASE WHEN $5::text = 'pending' THEN NULL ELSE {now} END, $6)"
    " ON CONFLICT(session, id) DO UPDATE SET kind = $3, body = $4, state = $5::text,"
    " decided_ms = CASE WHEN $5::text = 'pending' THEN NULL"
    " ELSE coalesce(approvals.decided_ms, {now}) END, decided_by = $6"};
static const struct ald_sql aq_list = {
    "SELECT body FROM approvals WHERE session = $1 ORDER BY created_ms, id", NULL};
static const struct ald_sql aq_expire = {
    "UPDATE approvals SET state = 'timed-out', decided_ms = {now},"
    " body = json_set(body, '$.state', 'timed-out') WHERE session = $1 AND state = 'pending'",
    "UPDATE approvals SET state = 'timed-out', decided_ms = {now},"
    " body = jsonb_set(body::jsonb, '{state}', '\"timed-out\"')::text"
    " WHERE session = $1 AND state = 'pending'"};

int ald_store_approval_put(struct ald_store *st, const char *id, const char *session,
                           const char *kind, json_t *body, const char *state,
                           const char *decided_by)
{
    char *b = json_dumps(body, JSON_COMPACT);
    if (!b)
        return AL_ENOMEM;
    struct ald_db_arg a[] = {ALD_DB_TXT(id), ALD_DB_TXT(session), ALD_DB_TXT(kind),
                             ALD_DB_TXT(b),  ALD_DB_TXT(state),   ALD_DB_TXT(decided_by)};
    int err = ald_db_run(ald_store_db(st), &aq_put, a, NARGS(a), NULL);
    free(b);
    return err;
}

int ald_store_approval_list(struct ald_store *st, const char *session, json_t **out)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(session)};
    struct ald_db_rows r = {0};
    json_t *arr = json_array();
    *out = NULL;
    int err = arr ? ald_db_run(ald_store_db(st), &aq_list, a, 1, &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++) {
        json_t *b = ald_rows_json(&r, i, 0);
        if (b)
            json_array_append_new(arr, b);
    }
    ald_db_rows_free(&r);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}

int ald_store_approvals_expire(struct ald_store *st, const char *session)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(session)};
    return ald_db_run(ald_store_db(st), &aq_expire, a, 1, NULL);
}

/* ---- credentials ---------------------------------------------------- */

static const struct ald_sql cq_rows = {
    "SELECT scope, sealed, gen, deleted FROM credentials WHERE gen > $1 ORDER BY gen", NULL};
/* the gens are handed out and committed in order (the lock), so a reader
 * that saw gen N never misses a later-committed gen below N */
static const struct ald_sql cq_lock = {"SELECT 1",
                                       "SELECT pg_advisory_xact_lock(hashtext('airlock-creds'))"};
static const struct ald_sql cq_put = {
    "INSERT INTO credentials(scope, sealed, gen, deleted)"
    " VALUES ($1, $2, (SELECT coalesce(max(gen), 0) + 1 FROM credentials), $3)"
    " ON CONFLICT(scope) DO UPDATE SET sealed = $2,"
    " gen = (SELECT coalesce(max(gen), 0) + 1 FROM credentials), deleted = $3",
    "INSERT INTO credentials(scope, sealed, gen, deleted)"
    " VALUES ($1, $2, nextval('credentials_gen'), $3)"
    " ON CONFLICT(scope) DO UPDATE SET sealed = $2, gen = nextval('credentials_gen'),"
    " deleted = $3"};

int ald_store_cred_rows(struct ald_store *st, int64_t after_gen, json_t **out, int64_t *max_gen)
{
    struct ald_db *db = ald_store_db(st);
    struct ald_db_arg a[] = {ALD_DB_INT(after_gen)};
    struct ald_db_rows r = {0};
    json_t *arr = json_array();
    *out = NULL;
    *max_gen = after_gen;
    int err = arr ? ald_db_run(db, &cq_rows, a, 1, &r) : AL_ENOMEM;
    for (int i = 0; err == 0 && i < r.n; i++) {
        char *b64 = NULL;
        if (!ald_db_isnull(&r, i, 1) &&
            !(b64 = al_base64_encode((const unsigned char *)ald_db_text(&r, i, 1),
                                     ald_db_len(&r, i, 1)))) {
            err = AL_ENOMEM;
            break;
        }
        int64_t gen = ald_db_int(&r, i, 2);
        json_array_append_new(
            arr, json_pack("{s:s, s:s?, s:I, s:b}", "scope", ald_rows_str(&r, i, 0), "sealed", b64,
                           "gen", (json_int_t)gen, "deleted", (int)ald_db_int(&r, i, 3)));
        free(b64);
        if (gen > *max_gen)
            *max_gen = gen;
    }
    ald_db_rows_free(&r);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}

int ald_store_cred_put(struct ald_store *st, const char *scope, const void *sealed, size_t n,
                       int deleted)
{
    struct ald_db *db = ald_store_db(st);
    struct ald_db_conn *c = NULL;
    struct ald_db_arg a[] = {ALD_DB_TXT(scope), sealed ? ALD_DB_BLOB(sealed, n) : ALD_DB_TXT(NULL),
                             ALD_DB_INT(deleted ? 1 : 0)};
    int err = ald_db_acquire(db, &c);
    if (err == 0 && (err = ald_db_begin(c)) == 0) {
        err = ald_db_exec(c, &cq_lock, NULL, 0, NULL);
        if (err == 0)
            err = ald_db_exec(c, &cq_put, a, NARGS(a), NULL);
        err = err < 0 ? err : ald_db_commit(c);
        if (err < 0)
            ald_db_rollback(c);
    }
    ald_db_release(db, c);
    return err;
}
