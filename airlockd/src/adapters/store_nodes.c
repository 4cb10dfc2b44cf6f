/* The cluster's rows (store_nodes.h) on the stores' database (db.h). */
#include "airlockd/adapters/store_nodes.h"

#include "airlockd/adapters/db.h"
#include "airlockd/adapters/store.h"

#include "airlock/error.h"

#include <stdio.h>
#include <string.h>

#define NARGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

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
