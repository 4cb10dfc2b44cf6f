/* The webhook outbox (adapters/webhooks.h) on the stores' database (db.h). */
#include "airlockd/adapters/webhooks.h"

#include "airlockd/adapters/db.h"
#include "store_rows.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Created when missing; versioned apart from the main store's schema
 * (store.c), so the two can change apart. */
static const struct ald_db_migration schema[] = {
    {.sql = "CREATE TABLE IF NOT EXISTS webhook_deliveries ("
            " seq {serial}, id TEXT NOT NULL UNIQUE, \"user\" TEXT NOT NULL,"
            " subject TEXT NOT NULL, event TEXT NOT NULL, url TEXT NOT NULL, secret TEXT NOT NULL,"
            " body TEXT NOT NULL, created_ms {int} NOT NULL, state TEXT NOT NULL,"
            " attempts {int} NOT NULL DEFAULT 0, next_ms {int}, last_status {int},"
            " last_error TEXT, delivered_ms {int});"
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_due"
            " ON webhook_deliveries(state, next_ms);"
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_subject"
            " ON webhook_deliveries(subject, seq);"},
};

static const struct ald_sql wq_insert = {
    "INSERT INTO webhook_deliveries(id, \"user\", subject, event, url, secret, body,"
    " created_ms, state, next_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $8)",
    NULL};
static const struct ald_sql wq_next = {
    "SELECT id, url, secret, body, created_ms, attempts, next_ms"
    " FROM webhook_deliveries WHERE state = 'pending' ORDER BY next_ms, seq LIMIT 1",
    NULL};
static const struct ald_sql wq_attempt = {
    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $2,"
    " last_error = $3, state = $4, next_ms = $5, delivered_ms = $6,"
    " lease_node = NULL, lease_until = NULL WHERE id = $1",
    NULL};
/* Cluster mode (issue 13): a sender leases the delivery due first that
 * nobody holds (or whose lease ran out), on the database's clock. */
static const struct ald_sql wq_claim = {
    "UPDATE webhook_deliveries SET lease_node = $1, lease_until = {now} + $2"
    " WHERE id = (SELECT id FROM webhook_deliveries WHERE state = 'pending'"
    " AND next_ms <= {now} AND (lease_until IS NULL OR lease_until < {now})"
    " ORDER BY next_ms, seq LIMIT 1)"
    " RETURNING id, url, secret, body, created_ms, attempts, next_ms, lease_until",
    "UPDATE webhook_deliveries SET lease_node = $1, lease_until = {now} + $2"
    " WHERE id = (SELECT id FROM webhook_deliveries WHERE state = 'pending'"
    " AND next_ms <= {now} AND (lease_until IS NULL OR lease_until < {now})"
    " ORDER BY next_ms, seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING id, url, secret, body, created_ms, attempts, next_ms, lease_until"};
/* ... and records its attempt only while it still holds the lease */
static const struct ald_sql wq_attempt_leased = {
    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $2,"
    " last_error = $3, state = $4, next_ms = $5, delivered_ms = $6,"
    " lease_node = NULL, lease_until = NULL WHERE id = $1 AND lease_node = $7",
    NULL};
static const struct ald_sql wq_list = {
    "SELECT id, event, subject, url, state, attempts, last_status, last_error,"
    " created_ms, next_ms, delivered_ms FROM webhook_deliveries"
    " WHERE subject = $1 AND ($2 IS NULL OR \"user\" = $2) ORDER BY seq",
    "SELECT id, event, subject, url, state, attempts, last_status, last_error,"
    " created_ms, next_ms, delivered_ms FROM webhook_deliveries"
    " WHERE subject = $1 AND ($2::text IS NULL OR \"user\" = $2) ORDER BY seq"};

struct ald_whstore {
    struct ald_db *db;
};

int ald_whstore_open_db(struct ald_whstore **out, struct ald_db *db)
{
    *out = NULL;
    struct ald_whstore *st = calloc(1, sizeof(*st));
    if (!st)
        return AL_ENOMEM;
    st->db = ald_db_ref(db);
    int err = ald_db_migrate(db, "webhooks", 0, schema, 1);
    /* the lease of a delivery being sent (cluster mode) */
    if (err == 0)
        err = ald_db_add_column(db, "webhook_deliveries", "lease_node", "TEXT");
    if (err == 0)
        err = ald_db_add_column(db, "webhook_deliveries", "lease_until",
                                ald_db_driver_of(db) == ALD_DB_POSTGRES ? "BIGINT" : "INTEGER");
    if (err < 0) {
        ald_whstore_close(st);
        return err;
    }
    *out = st;
    return 0;
}

int ald_whstore_open(struct ald_whstore **out, const char *path)
{
    struct ald_db *db = NULL;
    int err = ald_db_open_sqlite(&db, path);
    *out = NULL;
    err = err < 0 ? err : ald_whstore_open_db(out, db);
    ald_db_unref(db);
    return err;
}

void ald_whstore_close(struct ald_whstore *st)
{
    if (!st)
        return;
    ald_db_unref(st->db);
    free(st);
}

int ald_whstore_insert(struct ald_whstore *st, const struct ald_webhook_item *it,
                       const char *sealed_secret)
{
    struct ald_db_arg a[] = {ALD_DB_TXT(it->id),
                             ALD_DB_TXT(it->user),
                             ALD_DB_TXT(it->subject),
                             ALD_DB_TXT(it->event),
                             ALD_DB_TXT(it->url),
                             ALD_DB_TXT(sealed_secret),
                             ALD_DB_TXTN(it->body, it->body_len),
                             ALD_DB_INT(it->created_ms)};
    int err = ald_db_run(st->db, &wq_insert, a, 8, NULL);
    if (err == AL_EEXISTS)
        al_error_set(AL_EEXISTS, "delivery %s exists", it->id);
    return err;
}

/* The delivery of row 0 of `r` (wq_next's or wq_claim's columns). */
static json_t *delivery_json(const struct ald_db_rows *r)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "id", ald_rows_str(r, 0, 0), "url",
                     ald_rows_str(r, 0, 1), "secret", ald_rows_str(r, 0, 2), "body",
                     ald_rows_str(r, 0, 3), "created_ms", (json_int_t)ald_db_int(r, 0, 4),
                     "attempts", (json_int_t)ald_db_int(r, 0, 5), "next_ms",
                     (json_int_t)ald_db_int(r, 0, 6));
}

int ald_whstore_next(struct ald_whstore *st, json_t **out)
{
    *out = NULL;
    struct ald_db_rows r = {0};
    int err = ald_db_run(st->db, &wq_next, NULL, 0, &r);
    if (err == 0 && r.n > 0) {
        *out = delivery_json(&r);
        err = *out ? 0 : AL_ENOMEM;
    }
    ald_db_rows_free(&r);
    return err;
}

int ald_whstore_claim(struct ald_whstore *st, const char *node, uint64_t lease_ms, json_t **row)
{
    *row = NULL;
    struct ald_db_arg a[] = {ALD_DB_TXT(node), ALD_DB_INT((int64_t)lease_ms)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(st->db, &wq_claim, a, 2, &r);
    if (err == 0 && r.n > 0) {
        *row = delivery_json(&r);
        if (*row)
            json_object_set_new(*row, "lease_until", json_integer(ald_db_int(&r, 0, 7)));
        err = *row ? 0 : AL_ENOMEM;
    }
    ald_db_rows_free(&r);
    return err;
}

/* ald_whstore_attempt, and with `node` set only while node holds the
 * lease (AL_ESTALE otherwise). */
static int attempt(struct ald_whstore *st, const char *node, const char *id, long status,
                   const char *error, const char *state, uint64_t next_ms, uint64_t delivered_ms)
{
    struct ald_db_arg none = {.type = ALD_DB_NULL};
    struct ald_db_arg a[] = {ALD_DB_TXT(id),
                             status ? ALD_DB_INT(status) : none,
                             ALD_DB_TXT(error && *error ? error : NULL),
                             ALD_DB_TXT(state),
                             next_ms ? ALD_DB_INT(next_ms) : none,
                             delivered_ms ? ALD_DB_INT(delivered_ms) : none,
                             ALD_DB_TXT(node)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(st->db, node ? &wq_attempt_leased : &wq_attempt, a, node ? 7 : 6, &r);
    if (err == 0 && r.changes == 0 && node)
        err = al_error_set(AL_ESTALE, "delivery %s: %s does not hold its lease", id, node);
    else if (err == 0 && r.changes == 0)
        err = al_error_set(AL_ENOTFOUND, "no delivery %s", id);
    ald_db_rows_free(&r);
    return err;
}

int ald_whstore_attempt(struct ald_whstore *st, const char *id, long status, const char *error,
                        const char *state, uint64_t next_ms, uint64_t delivered_ms)
{
    return attempt(st, NULL, id, status, error, state, next_ms, delivered_ms);
}

int ald_whstore_attempt_leased(struct ald_whstore *st, const char *node, const char *id,
                               long status, const char *error, const char *state, uint64_t next_ms,
                               uint64_t delivered_ms)
{
    return attempt(st, node, id, status, error, state, next_ms, delivered_ms);
}

static json_t *cell_time(const struct ald_db_rows *r, int row, int col)
{
    return ald_db_isnull(r, row, col) ? json_null()
                                      : ald_time_json((uint64_t)ald_db_int(r, row, col));
}

int ald_whstore_list(struct ald_whstore *st, const char *subject, const char *user, json_t **out)
{
    *out = NULL;
    json_t *arr = json_array();
    if (!arr)
        return AL_ENOMEM;
    struct ald_db_arg a[] = {ALD_DB_TXT(subject), ALD_DB_TXT(user)};
    struct ald_db_rows r = {0};
    int err = ald_db_run(st->db, &wq_list, a, 2, &r);
    for (int i = 0; err == 0 && i < r.n; i++) {
        int pending = strcmp(ald_rows_str(&r, i, 4), "pending") == 0;
        json_t *row = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "id", ald_rows_str(&r, i, 0),
            "event", ald_rows_str(&r, i, 1), "subject", ald_rows_str(&r, i, 2), "url",
            ald_rows_str(&r, i, 3), "state", ald_rows_str(&r, i, 4), "attempts",
            (json_int_t)ald_db_int(&r, i, 5), "last_status",
            ald_db_isnull(&r, i, 6) ? json_null() : json_integer(ald_db_int(&r, i, 6)),
            "last_error",
            ald_db_isnull(&r, i, 7) ? json_null() : json_string(ald_rows_str(&r, i, 7)),
            "created_at", cell_time(&r, i, 8), "next_attempt_at",
            pending ? cell_time(&r, i, 9) : json_null(), "delivered_at", cell_time(&r, i, 10));
        if (!row || json_array_append_new(arr, row) < 0)
            err = AL_ENOMEM;
    }
    ald_db_rows_free(&r);
    if (err == 0)
        *out = arr;
    else
        json_decref(arr);
    return err;
}
