/* Reading the cells of ald_db_rows (db.h) as the stores (store.c,
 * store_jobs.c, store_nodes.c, store_webhooks.c) keep them: text, and JSON
 * documents stored as text. Internal to the adapters. */
#ifndef AIRLOCKD_ADAPTERS_STORE_ROWS_H
#define AIRLOCKD_ADAPTERS_STORE_ROWS_H

#include "airlockd/adapters/db.h"

#include <jansson.h>

/* The number of elements of the array `a` (a statement's arguments), as
 * ald_db_run takes it. */
#define NARGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Row `row`, column `col` as text: "" for NULL. Owned by `r`. */
const char *ald_rows_str(const struct ald_db_rows *r, int row, int col);

/* Row `row`, column `col` parsed as JSON: a new reference the caller frees,
 * or NULL for NULL or text that is no JSON. */
json_t *ald_rows_json(const struct ald_db_rows *r, int row, int col);

#endif
