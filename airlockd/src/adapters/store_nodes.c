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

/* Not built yet (issue 13, W1): every function below answers AL_EUNSUPP. */
#define NOT_YET() al_error_set(AL_EUNSUPP, "%s: cluster store not built yet", __func__)

int ald_store_node_register(struct ald_store *st, const char *id, const char *address,
                            const char *api_address, const char *version,
                            const struct ald_node_caps *caps, int64_t *epoch, char state[16])
{
    (void)st, (void)id, (void)address, (void)api_address, (void)version, (void)caps, (void)epoch,
        (void)state;
    return NOT_YET();
}
int ald_store_node_heartbeat(struct ald_store *st, const char *id, int64_t epoch, char state[16])
{
    (void)st, (void)id, (void)epoch, (void)state;
    return NOT_YET();
}
int ald_store_node_sweep(struct ald_store *st, const char *self, int64_t down_after_ms,
                         json_t **lost)
{
    (void)st, (void)self, (void)down_after_ms, (void)lost;
    return NOT_YET();
}
int ald_store_node_list(struct ald_store *st, json_t **out)
{
    (void)st, (void)out;
    return NOT_YET();
}
int ald_store_node_set_state(struct ald_store *st, const char *id, const char *state)
{
    (void)st, (void)id, (void)state;
    return NOT_YET();
}
int ald_store_place(struct ald_store *st, const struct ald_place_req *q, struct ald_place_out *o,
                    struct ald_fault *f)
{
    (void)st, (void)q, (void)o, (void)f;
    return NOT_YET();
}
int ald_store_place_fail(struct ald_store *st, const char *id, const char *reason)
{
    (void)st, (void)id, (void)reason;
    return NOT_YET();
}
int ald_store_session_live_on(struct ald_store *st, const char *node, json_t **out)
{
    (void)st, (void)node, (void)out;
    return NOT_YET();
}
int ald_store_session_gone_on(struct ald_store *st, const char *node, json_t **out)
{
    (void)st, (void)node, (void)out;
    return NOT_YET();
}
int ald_store_session_rows(struct ald_store *st, const char *const *ids, size_t n, json_t **out)
{
    (void)st, (void)ids, (void)n, (void)out;
    return NOT_YET();
}
int ald_store_meta_check(struct ald_store *st, const char *k, const char *v)
{
    (void)st, (void)k, (void)v;
    return NOT_YET();
}
int ald_store_approval_put(struct ald_store *st, const char *id, const char *session,
                           const char *kind, json_t *body, const char *state,
                           const char *decided_by)
{
    (void)st, (void)id, (void)session, (void)kind, (void)body, (void)state, (void)decided_by;
    return NOT_YET();
}
int ald_store_approval_list(struct ald_store *st, const char *session, json_t **out)
{
    (void)st, (void)session, (void)out;
    return NOT_YET();
}
int ald_store_approvals_expire(struct ald_store *st, const char *session)
{
    (void)st, (void)session;
    return NOT_YET();
}
int ald_store_cred_rows(struct ald_store *st, int64_t after_gen, json_t **out, int64_t *max_gen)
{
    (void)st, (void)after_gen, (void)out, (void)max_gen;
    return NOT_YET();
}
int ald_store_cred_put(struct ald_store *st, const char *scope, const void *sealed, size_t n,
                       int deleted)
{
    (void)st, (void)scope, (void)sealed, (void)n, (void)deleted;
    return NOT_YET();
}
