/* Routes: the audit trail (GET /v1/audit), who the caller is (GET /v1/me)
 * and the admin's read-only views of users and keys (GET /v1/admin/users,
 * GET /v1/admin/keys). Creating users and keys stays in `airlock admin`. */
#include "request.h"

#include "airlockd/adapters/store.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX     500
#define AUDIT_TEXT_MAX      200
#define AUDIT_SESSION_MAX   64
#define AUDIT_METHOD_MAX    16

/* 1 when `m` is 1 to AUDIT_METHOD_MAX upper-case ASCII letters. */
static int method_valid(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > AUDIT_METHOD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return 0;
    return 1;
}

/* A route the caller may not use: a 404 like an unknown route (the API
 * never tells a caller about what it cannot see, docs/api.md). */
static enum MHD_Result not_admin(struct ald_req *r, const char *path)
{
    return ald_reply_error(r, 404, "not_found", NULL, "no route GET %s", path);
}

enum MHD_Result ald_route_audit(struct ald_req *r)
{
    const char *limit_s = ald_req_arg(r, "limit");
    const char *cursor = ald_req_arg(r, "cursor");
    const char *since = ald_req_arg(r, "since");
    const char *until = ald_req_arg(r, "until");
    struct ald_audit_filter f = {.user = ald_req_arg(r, "user"),
                                 .session = ald_req_arg(r, "session"),
                                 .method = ald_req_arg(r, "method"),
                                 .text = ald_req_arg(r, "q"),
                                 .limit = AUDIT_LIMIT_DEFAULT};
    uint64_t v = 0;
    if (limit_s && (ald_parse_u64(limit_s, AUDIT_LIMIT_MAX, &v) < 0 || v == 0))
        return ald_reply_error(r, 400, "invalid_value", "limit", "limit must be 1 to %d",
                               AUDIT_LIMIT_MAX);
    if (limit_s)
        f.limit = (unsigned)v;
    if (cursor && *cursor) {
        if (ald_parse_u64(cursor, INT64_MAX, &v) < 0 || v == 0)
            return ald_reply_error(r, 400, "invalid_value", "cursor", "bad cursor");
        f.before = (int64_t)v;
    }
    if (since && ald_parse_u64(since, INT64_MAX, &f.since_ms) < 0)
        return ald_reply_error(r, 400, "invalid_value", "since",
                               "since must be a time in Unix milliseconds");
    if (until && (ald_parse_u64(until, INT64_MAX, &f.until_ms) < 0 || f.until_ms == 0))
        return ald_reply_error(r, 400, "invalid_value", "until",
                               "until must be a time in Unix milliseconds");
    if (f.user && !ald_user_name_valid(f.user))
        return ald_reply_error(r, 400, "invalid_value", "user", "not a user name");
    if (f.session && (!f.session[0] || strlen(f.session) > AUDIT_SESSION_MAX))
        return ald_reply_error(r, 400, "invalid_value", "session", "session must be 1 to %d bytes",
                               AUDIT_SESSION_MAX);
    if (f.method && !method_valid(f.method))
        return ald_reply_error(r, 400, "invalid_value", "method",
                               "method must be 1 to %d upper-case letters (POST, NET, GIT, "
                               "CRED...)",
                               AUDIT_METHOD_MAX);
    if (f.text && strlen(f.text) > AUDIT_TEXT_MAX)
        return ald_reply_error(r, 400, "invalid_value", "q", "q is at most %d bytes",
                               AUDIT_TEXT_MAX);
    /* a user sees their own rows: another user's name matches nothing */
    int nobody = !r->who.admin && f.user && strcmp(f.user, r->who.user) != 0;
    if (!r->who.admin)
        f.user = r->who.user;
    json_t *arr = NULL;
    int64_t next = 0;
    int err;
    if (nobody)
        arr = json_array();
    else if ((err = ald_store_audit_page(r->d->st, &f, &arr, &next)) < 0)
        return ald_reply_store_error(r, err);
    return ald_reply_page(r, "rows", arr, next);
}

enum MHD_Result ald_route_me(struct ald_req *r)
{
    return ald_reply_json(
        r, 200,
        json_pack("{s:s, s:b, s:s, s:o, s:o}", "user", r->who.user, "admin", r->who.admin, "key_id",
                  r->who.key_id, "max_sessions",
                  r->who.max_sessions < 0 ? json_null() : json_integer(r->who.max_sessions),
                  "max_memory_mb",
                  r->who.max_memory_mb < 0 ? json_null() : json_integer(r->who.max_memory_mb)));
}

enum MHD_Result ald_route_admin_users(struct ald_req *r)
{
    if (!r->who.admin)
        return not_admin(r, "/v1/admin/users");
    json_t *arr = NULL;
    int err = ald_store_user_summary(r->d->st, &arr);
    if (err < 0)
        return ald_reply_store_error(r, err);
    return ald_reply_json(r, 200, json_pack("{s:o}", "users", arr));
}

enum MHD_Result ald_route_admin_keys(struct ald_req *r)
{
    if (!r->who.admin)
        return not_admin(r, "/v1/admin/keys");
    const char *user = ald_req_arg(r, "user");
    if (user && !ald_user_name_valid(user))
        return ald_reply_error(r, 400, "invalid_value", "user", "not a user name");
    json_t *arr = NULL;
    /* id, user, name, created_at, revoked_at: never the key or its hash */
    int err = ald_store_key_list(r->d->st, user, &arr);
    if (err < 0)
        return ald_reply_store_error(r, err);
    return ald_reply_json(r, 200, json_pack("{s:o}", "keys", arr));
}
