/* Routes: jobs (docs/jobs.md). POST /v1/jobs, GET /v1/jobs,
 * GET /v1/jobs/{id}, GET /v1/jobs/{id}/output, POST /v1/jobs/{id}/cancel. */
#include "request.h"

#include "forward.h"

#include "airlockd/adapters/store_nodes.h"
#include "airlockd/api/jobs_api.h"
#include "airlockd/core/cluster.h"
#include "airlockd/core/jobs.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"

#include <stdlib.h>
#include <string.h>

int ald_api_job_create_req(struct ald_create_req *out, const char *data, size_t len,
                           const struct ald_config *cfg, const char *user, struct ald_fault *f)
{
    struct ald_apierr e;
    if (ald_body_create(out, data, len, cfg, user, &e) == 0)
        return 0;
    enum ald_fault_kind kind = ALD_FAULT_INVALID;
    if (e.status == 403)
        kind = ALD_FAULT_FORBIDDEN;
    else if (e.status == 409)
        kind = ALD_FAULT_CONFLICT;
    else if (e.status >= 500)
        kind = ALD_FAULT_INTERNAL;
    return ald_fault_set(f, kind, e.code, e.field, "%s", e.message);
}

/* The job id of the first URL param, or a 404 reply (*replied). */
static const char *job_param(struct ald_req *r, enum ald_reply_state *replied)
{
    *replied = ALD_NOT_REPLIED;
    const char *id = r->params[0];
    if (!id || r->param_bad || !ald_job_id_valid(id)) {
        *replied = ALD_REPLIED;
        ald_reply_error(r, 404, "not_found", NULL, "no such job");
        return NULL;
    }
    return id;
}

enum MHD_Result ald_route_job_create(struct ald_req *r)
{
    json_error_t jerr;
    const char *data = r->body.ptr ? r->body.ptr : "";
    json_t *body = json_loadb(data, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body)
        return ald_reply_error(r, 400, "invalid_json", NULL, "body: line %d column %d: %s",
                               jerr.line, jerr.column, jerr.text);
    if (!json_is_object(body)) {
        json_decref(body);
        return ald_reply_error(r, 400, "invalid_json", NULL, "body: expected a JSON object");
    }
    json_t *job = NULL;
    int replayed = 0;
    struct ald_fault f;
    int err = ald_job_submit_ex(r->d, &r->who, body, ald_req_header(r, "Idempotency-Key"), &job,
                                &replayed, &f);
    json_decref(body);
    if (err < 0)
        return ald_reply_fault(r, &f);
    return ald_reply_created(r, job, replayed);
}

static int job_state_valid(const char *s)
{
    static const char *const states[] = {"queued", "running",   "succeeded",
                                         "failed", "cancelled", "timed_out"};
    for (size_t i = 0; i < sizeof(states) / sizeof(*states); i++)
        if (strcmp(s, states[i]) == 0)
            return 1;
    return 0;
}

enum MHD_Result ald_route_job_list(struct ald_req *r)
{
    const char *state = ald_req_arg(r, "state");
    const char *limit_s = ald_req_arg(r, "limit");
    const char *cursor = ald_req_arg(r, "cursor");
    uint64_t limit = 50, after = 0;
    if (state && !job_state_valid(state)) {
        char shown[ALD_QUOTED_ID];
        return ald_reply_error(r, 400, "invalid_value", "state", "unknown state \"%s\"",
                               ald_str_quote(shown, sizeof(shown), state, strlen(state)));
    }
    if (limit_s && (ald_parse_u64(limit_s, 500, &limit) < 0 || limit == 0))
        return ald_reply_error(r, 400, "invalid_value", "limit", "limit must be 1 to 500");
    if (cursor && *cursor && ald_parse_u64(cursor, INT64_MAX, &after) < 0)
        return ald_reply_error(r, 400, "invalid_value", "cursor", "bad cursor");
    json_t *arr = NULL;
    int64_t next = 0;
    struct ald_fault f;
    if (ald_job_list(r->d, &r->who, state, (int64_t)after, (unsigned)limit, &arr, &next, &f) < 0)
        return ald_reply_fault(r, &f);
    return ald_reply_page(r, "jobs", arr, next);
}

enum MHD_Result ald_route_job_get(struct ald_req *r)
{
    enum ald_reply_state replied;
    const char *id = job_param(r, &replied);
    if (!id)
        return MHD_YES;
    json_t *job = NULL;
    struct ald_fault f;
    if (ald_job_get(r->d, &r->who, id, &job, &f) < 0)
        return ald_reply_fault(r, &f);
    return ald_reply_json(r, 200, job);
}

enum MHD_Result ald_route_job_cancel(struct ald_req *r)
{
    enum ald_reply_state replied;
    const char *id = job_param(r, &replied);
    if (!id)
        return MHD_YES;
    json_t *job = NULL;
    struct ald_fault f;
    if (ald_job_cancel(r->d, &r->who, id, &job, &f) < 0)
        return ald_reply_fault(r, &f);
    return ald_reply_json(r, 200, job);
}

/* In a cluster: whether the job ran on another node (its session's row
 * names it), whose disk holds the output; node and addr filled. Never for a
 * request that came from a peer. */
static int job_elsewhere(struct ald_req *r, const char *id, char node[64], char addr[128])
{
    const char *self = ald_cluster_self(r->d);
    if (!self || r->peer)
        return 0;
    json_t *pub = NULL;
    struct ald_fault f;
    if (ald_job_get(r->d, &r->who, id, &pub, &f) < 0)
        return 0; /* the route's own call answers */
    const char *sid = json_string_value(json_object_get(pub, "session"));
    char state[16];
    int elsewhere = sid && ald_store_session_owner(r->d->st, sid, NULL, node, addr, state) == 0 &&
                    node[0] && addr[0] && strcmp(node, self) != 0;
    json_decref(pub);
    return elsewhere;
}

enum MHD_Result ald_route_job_output(struct ald_req *r)
{
    enum ald_reply_state replied;
    const char *id = job_param(r, &replied);
    if (!id)
        return MHD_YES;
    char node[64], addr[128];
    if (job_elsewhere(r, id, node, addr))
        return ald_forward(r, node, addr);
    char *data = NULL;
    size_t len = 0;
    int truncated = 0;
    struct ald_fault f;
    if (ald_job_output(r->d, &r->who, id, &data, &len, &truncated, &f) < 0)
        return ald_reply_fault(r, &f);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    MHD_add_response_header(resp, "X-Airlock-Output-Truncated", truncated ? "true" : "false");
    return ald_reply(r, 200, resp);
}
