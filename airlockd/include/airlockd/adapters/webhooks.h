/* Outgoing webhooks' outbox and delivery (docs/webhooks.md).
 *
 * The outbox is the table webhook_deliveries in airlockd's database
 * (<state_dir>/airlockd.db), on a connection of its own
 * (store_webhooks.c): the table is created with CREATE TABLE IF NOT EXISTS
 * when it is opened, so it needs no schema version of the main store. The
 * secret of each delivery is kept sealed (creds_store_seal with the
 * proxies' master key, or <state_dir>/webhook.key when there is none).
 *
 * One delivery thread (webhooks.c) sends due deliveries one at a time with
 * libcurl, marks a 2xx delivered in the same moment, and reschedules the
 * rest with exponential backoff until webhooks.retry_for_s is up. */
#ifndef ALD_ADAPTERS_WEBHOOKS_H
#define ALD_ADAPTERS_WEBHOOKS_H

#include <stdint.h>

#include <jansson.h>

#include "airlockd/core/fault.h"
#include "airlockd/core/webhook.h"

struct ald;
struct ald_whstore;
struct ald_db;

/* ---- store_webhooks.c ---- */

/* One row to insert: the item and the sealed secret (borrowed). */
int ald_whstore_open(struct ald_whstore **out, const char *path);
void ald_whstore_close(struct ald_whstore *st);
/* The same on an open database (SQLite or PostgreSQL, adapters/db.h). */
int ald_whstore_open_db(struct ald_whstore **out, struct ald_db *db);

/* Inserts a pending delivery due at once. AL_EEXISTS on a duplicate id. */
int ald_whstore_insert(struct ald_whstore *st, const struct ald_webhook_item *it,
                       const char *sealed_secret);

/* The pending delivery due first: *out a new object {"id", "url", "secret"
 * (sealed), "body", "created_ms", "attempts", "next_ms"}, or NULL when
 * none is pending. */
int ald_whstore_next(struct ald_whstore *st, json_t **out);

/* Records an attempt: its HTTP status (0: none) and error ("" none), the
 * new state ("pending", "delivered", "failed"), the next attempt's time
 * (pending only) and the delivery time (delivered only). */
int ald_whstore_attempt(struct ald_whstore *st, const char *id, long status, const char *error,
                        const char *state, uint64_t next_ms, uint64_t delivered_ms);

/* Cluster mode (issue 13): several nodes send from one outbox, each
 * delivery under a lease. ald_whstore_claim takes the pending delivery due
 * first (next_ms <= the database's clock) that no node holds or whose lease
 * ran out, and leases it to `node` for lease_ms (the delivery timeout + 30
 * s) on the database's clock: *row as ald_whstore_next's plus
 * "lease_until" (database ms), or NULL when none is due. Two nodes never
 * hold the same delivery at once (PostgreSQL: FOR UPDATE SKIP LOCKED; the
 * row's lease is committed by the claim). A node that dies mid-send leaves
 * the lease to run out; then any node claims the delivery again (at least
 * once delivery, as on one machine). ald_whstore_next still tells the
 * sender how long to sleep. ald_whstore_attempt_leased records the
 * attempt as ald_whstore_attempt and drops the lease, only while `node`
 * still holds it: AL_ESTALE when the lease went to another node (its
 * attempt is not recorded). ald_whstore_attempt (one machine) drops any
 * lease too. */
int ald_whstore_claim(struct ald_whstore *st, const char *node, uint64_t lease_ms, json_t **row);
int ald_whstore_attempt_leased(struct ald_whstore *st, const char *node, const char *id,
                               long status, const char *error, const char *state, uint64_t next_ms,
                               uint64_t delivered_ms);

/* The delivery log of `subject` (`user` NULL: any owner), oldest first:
 * *out a new array of {id, event, subject, url, state, attempts,
 * last_status, last_error, created_at, next_attempt_at, delivered_at}; no
 * secret, no body. */
int ald_whstore_list(struct ald_whstore *st, const char *subject, const char *user, json_t **out);

/* ---- webhooks.c ---- */

/* Opens the outbox and the sealing key and sets d->hooks.webhook. */
int ald_webhooks_open(struct ald *d);
/* Starts the delivery thread (after ald_webhooks_open). */
int ald_webhooks_start(struct ald *d);
/* Stops the thread (an attempt in flight is abandoned at once and stays
 * pending) and closes the outbox. Safe when never opened. */
void ald_webhooks_stop(struct ald *d);

/* GET /v1/webhooks/deliveries?subject=ID: the log for `subject`, only the
 * caller's own rows unless `admin`. */
int ald_webhooks_list(struct ald *d, const char *subject, const char *user, int admin, json_t **out,
                      struct ald_fault *f);

#endif
