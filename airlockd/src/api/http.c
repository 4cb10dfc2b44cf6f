#include "request.h"

#include "forward.h"

#include "airlockd/api/metrics.h"

#include "airlockd/adapters/auth.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/process.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Every route, and where it is served (ALD_ON_API: the API listener, API
 * keys; ALD_ON_PEER: the node-to-node listener of a cluster, node
 * signatures only, docs/cluster.md "Forwarding": the session routes a node
 * forwards, the node-local event stream, job output and the internal
 * routes). */
static const struct ald_route routes[] = {
    {"GET", "/healthz", ALD_BODY_NONE, 0, ald_route_healthz, NULL, ALD_ON_API},
    {"GET", "/metrics", ALD_BODY_NONE, 0, ald_route_metrics, NULL, ALD_ON_API},
    {"POST", "/v1/sessions", ALD_BODY_JSON, 1, ald_route_session_create, NULL, ALD_ON_API},
    {"GET", "/v1/sessions", ALD_BODY_NONE, 1, ald_route_session_list, NULL, ALD_ON_API},
    {"GET", "/v1/sessions/*", ALD_BODY_NONE, 1, ald_route_session_get, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"DELETE", "/v1/sessions/*", ALD_BODY_NONE, 1, ald_route_session_delete, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"PATCH", "/v1/sessions/*/policy", ALD_BODY_JSON, 1, ald_route_session_policy, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"GET", "/v1/sessions/*/policy", ALD_BODY_NONE, 1, ald_route_session_policy_get, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"POST", "/v1/sessions/*/keepalive", ALD_BODY_JSON, 1, ald_route_session_keepalive, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"POST", "/v1/sessions/*/exec", ALD_BODY_JSON, 1, ald_route_exec, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"GET", "/v1/sessions/*/processes", ALD_BODY_NONE, 1, ald_route_proc_list, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"GET", "/v1/sessions/*/processes/*", ALD_BODY_NONE, 1, ald_route_proc_get, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"GET", "/v1/sessions/*/processes/*/output", ALD_BODY_NONE, 1, ald_route_proc_output, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"POST", "/v1/sessions/*/processes/*/signal", ALD_BODY_JSON, 1, ald_route_proc_signal, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"POST", "/v1/sessions/*/processes/*/stdin", ALD_BODY_RAW, 1, ald_route_proc_stdin, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"POST", "/v1/sessions/*/processes/*/resize", ALD_BODY_JSON, 1, ald_route_proc_resize, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"GET", "/v1/sessions/*/processes/*/tty", ALD_BODY_NONE, 1, ald_route_proc_tty, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"GET", "/v1/sessions/*/approvals", ALD_BODY_NONE, 1, ald_route_approval_list, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"POST", "/v1/sessions/*/approvals/*", ALD_BODY_JSON, 1, ald_route_approval_decide, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"GET", "/v1/sessions/*/files/**", ALD_BODY_NONE, 1, ald_route_file_get, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"PUT", "/v1/sessions/*/files/**", ALD_BODY_UPLOAD, 1, ald_route_file_put, &ald_file_upload_ops,
     ALD_ON_API | ALD_ON_PEER},
    {"DELETE", "/v1/sessions/*/files/**", ALD_BODY_NONE, 1, ald_route_file_delete, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"GET", "/v1/sessions/*/events", ALD_BODY_NONE, 1, ald_route_events, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"GET", "/v1/events", ALD_BODY_NONE, 1, ald_route_events, NULL, ALD_ON_API | ALD_ON_PEER},
    {"POST", "/v1/jobs", ALD_BODY_JSON, 1, ald_route_job_create, NULL, ALD_ON_API},
    {"GET", "/v1/jobs", ALD_BODY_NONE, 1, ald_route_job_list, NULL, ALD_ON_API},
    {"GET", "/v1/jobs/*", ALD_BODY_NONE, 1, ald_route_job_get, NULL, ALD_ON_API},
    {"GET", "/v1/jobs/*/output", ALD_BODY_NONE, 1, ald_route_job_output, NULL,
     ALD_ON_API | ALD_ON_PEER},
    {"POST", "/v1/jobs/*/cancel", ALD_BODY_JSON, 1, ald_route_job_cancel, NULL, ALD_ON_API},
    {"GET", "/v1/webhooks/deliveries", ALD_BODY_NONE, 1, ald_route_webhook_deliveries, NULL,
     ALD_ON_API},
    {"GET", "/v1/audit", ALD_BODY_NONE, 1, ald_route_audit, NULL, ALD_ON_API},
    {"GET", "/v1/me", ALD_BODY_NONE, 1, ald_route_me, NULL, ALD_ON_API},
    {"GET", "/v1/admin/users", ALD_BODY_NONE, 1, ald_route_admin_users, NULL, ALD_ON_API},
    {"GET", "/v1/admin/keys", ALD_BODY_NONE, 1, ald_route_admin_keys, NULL, ALD_ON_API},
    {"POST", "/v1/hooks/github", ALD_BODY_RAW, 0, ald_route_hook_github, NULL, ALD_ON_API},
    {"GET", "/console", ALD_BODY_NONE, 0, ald_route_console, NULL, ALD_ON_API},
    {"GET", "/console/**", ALD_BODY_NONE, 0, ald_route_console, NULL, ALD_ON_API},
    {"POST", "/internal/v1/sessions/*/start", ALD_BODY_JSON, 1, ald_route_internal_start, NULL,
     ALD_ON_PEER},
    {"GET", "/internal/v1/node", ALD_BODY_NONE, 1, ald_route_internal_node, NULL, ALD_ON_PEER},
};

#define N_ROUTES (sizeof(routes) / sizeof(*routes))

/* The peer listener (cluster mode only). */
static struct MHD_Daemon *peer_http;

/* Matches `path` (raw, without query) against `pattern`; on a match stores
 * the raw spans of the wildcards in spans[] (start, length pairs). */
static int match(const char *pattern, const char *path, const char *spans[3], size_t lens[3],
                 int *n)
{
    *n = 0;
    const char *p = pattern, *u = path;
    while (*p) {
        if (p[0] == '*' && p[1] == '*') {
            if (*n >= 3)
                return 0;
            spans[*n] = u;
            lens[(*n)++] = strlen(u);
            return 1;
        }
        if (p[0] == '*') {
            const char *end = strchr(u, '/');
            size_t len = end ? (size_t)(end - u) : strlen(u);
            if (len == 0 || *n >= 3)
                return 0;
            spans[*n] = u;
            lens[(*n)++] = len;
            u += len;
            p++;
            continue;
        }
        if (*p != *u)
            return 0;
        p++;
        u++;
    }
    return *u == '\0';
}

static int mutating(const char *method)
{
    return method && (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                      strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0);
}

/* The raw path of `uri` (up to '?') for the audit log, a new string the
 * caller frees (NULL when out of memory): a byte outside printable ASCII
 * (a client may send raw bytes in the request line) is percent-encoded,
 * so the row is the same URL and never holds a control byte or invalid
 * UTF-8. */
static char *audit_path(const char *uri)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t len = strcspn(uri, "?");
    char *out = malloc(3 * len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)uri[i];
        if (c > 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = digits[c >> 4];
            out[o++] = digits[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

/* Appends the audit row of a changing call, once, as soon as its status is
 * known: before the reply leaves (so a client's next call is logged after
 * this one), or when the request ends without a reply being queued. */
static void audit_write(struct ald_req *r)
{
    struct ald *d = r->d;
    /* a forwarded request is audited by the node it entered */
    if (r->audited || r->peer || r->on_peer || !r->route || !r->route->auth ||
        !mutating(r->method) || !r->status)
        return;
    r->audited = 1;
    char *path = r->raw_uri ? audit_path(r->raw_uri) : NULL;
    struct ald_audit_row row = {.time_ms = ald_now_ms(),
                                .user = r->authed ? r->who.user : NULL,
                                .key_id = r->authed ? r->who.key_id : NULL,
                                .method = r->method,
                                .path = path ? path : "",
                                .status = r->status,
                                .session = r->session[0] ? r->session : NULL};
    if (r->exit_proc) {
        /* logged by proc_save on failure */
        ald_proc_save_audit(d, r->exit_proc, &row);
        r->exit_proc = NULL;
    } else if (ald_store_audit(d->st, &row) < 0) {
        al_log(AL_LOG_ERROR, "audit: %s", al_error_last());
    }
    free(path);
}

enum MHD_Result ald_reply(struct ald_req *r, int status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    if (r->replied) {
        MHD_destroy_response(resp);
        return MHD_YES;
    }
    r->replied = 1;
    r->status = status;
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_NO) {
        r->replied = 0;
        r->status = 0;
    } else {
        audit_write(r);
    }
    return ret;
}

/* The error reply of last resort, formatted without jansson: `status` and
 * `code` (a static identifier; "internal" unless it is [a-z_]+) with a
 * fixed message, so it is valid JSON whatever failed. */
static enum MHD_Result reply_error_plain(struct ald_req *r, int status, const char *code)
{
    if (!code || !*code || strspn(code, "abcdefghijklmnopqrstuvwxyz_") != strlen(code) ||
        strlen(code) > 64)
        code = "internal";
    char txt[256];
    int n = snprintf(txt, sizeof(txt),
                     "{\"error\":{\"code\":\"%s\",\"message\":\"the reply could not be"
                     " encoded as JSON\"}}\n",
                     code);
    if (n < 0 || (size_t)n >= sizeof(txt))
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer((size_t)n, txt, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    return ald_reply(r, status, resp);
}

/* Replies with `body` (reference stolen) as JSON; when it is NULL (not
 * built) or cannot be encoded, with reply_error_plain(fail_status,
 * fail_code). */
static enum MHD_Result reply_json_or(struct ald_req *r, int status, json_t *body, int fail_status,
                                     const char *fail_code, const char *replayed)
{
    char *txt = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!txt)
        return reply_error_plain(r, fail_status, fail_code);
    size_t len = strlen(txt);
    txt[len] = '\0';
    char *withnl = realloc(txt, len + 2);
    if (withnl) {
        txt = withnl;
        txt[len++] = '\n';
        txt[len] = '\0';
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, txt, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(txt);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (replayed)
        MHD_add_response_header(resp, "Idempotent-Replayed", replayed);
    return ald_reply(r, status, resp);
}

enum MHD_Result ald_reply_json(struct ald_req *r, int status, json_t *body)
{
    /* a value that was not built or not encodable is our failure */
    return reply_json_or(r, status, body, 500, "internal", NULL);
}

enum MHD_Result ald_reply_created(struct ald_req *r, json_t *body, int replayed)
{
    return replayed ? reply_json_or(r, 200, body, 500, "internal", "true")
                    : reply_json_or(r, 201, body, 500, "internal", NULL);
}

enum MHD_Result ald_reply_page(struct ald_req *r, const char *key, json_t *rows, int64_t next)
{
    json_t *next_j = json_null();
    if (next) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long)next);
        next_j = json_string(buf);
    }
    return ald_reply_json(r, 200, json_pack("{s:o, s:o}", key, rows, "next_cursor", next_j));
}

enum MHD_Result ald_reply_apierr(struct ald_req *r, const struct ald_apierr *e)
{
    /* a message or field that is not valid UTF-8 (a request's bytes not
     * quoted, a character cut by a `%.40s`) would make jansson refuse the
     * whole body: scrubbed copies go out instead */
    char message[sizeof(e->message)], field[sizeof(e->field)];
    snprintf(message, sizeof(message), "%s", e->message);
    snprintf(field, sizeof(field), "%s", e->field);
    ald_utf8_scrub(message, strlen(message));
    ald_utf8_scrub(field, strlen(field));
    int status = e->status ? e->status : 500;
    const char *code = e->code ? e->code : "internal";
    json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);
    if (err && field[0] && json_object_set_new(err, "field", json_string(field)) < 0) {
        json_decref(err);
        err = NULL;
    }
    if (err && e->earliest_offset >= 0 &&
        json_object_set_new(err, "earliest_offset", json_integer(e->earliest_offset)) < 0) {
        json_decref(err);
        err = NULL;
    }
    return reply_json_or(r, status, err ? json_pack("{s:o}", "error", err) : NULL, status, code,
                         NULL);
}

/* The HTTP status of each kind of refusal core reports. */
static int fault_status(enum ald_fault_kind kind)
{
    switch (kind) {
    case ALD_FAULT_INVALID:
        return 400;
    case ALD_FAULT_FORBIDDEN:
        return 403;
    case ALD_FAULT_NOT_FOUND:
        return 404;
    case ALD_FAULT_CONFLICT:
        return 409;
    case ALD_FAULT_QUOTA:
        return 429;
    case ALD_FAULT_UNAVAILABLE:
        return 503;
    case ALD_FAULT_UPSTREAM:
        return 502;
    case ALD_FAULT_INTERNAL:
        break;
    }
    return 500;
}

void ald_apierr_from_fault(struct ald_apierr *e, const struct ald_fault *f)
{
    e->status = fault_status(f->kind);
    e->code = f->code;
    e->earliest_offset = -1;
    snprintf(e->field, sizeof(e->field), "%s", f->field);
    snprintf(e->message, sizeof(e->message), "%s", f->message);
}

enum MHD_Result ald_reply_fault(struct ald_req *r, const struct ald_fault *f)
{
    struct ald_apierr e;
    ald_apierr_from_fault(&e, f);
    return ald_reply_apierr(r, &e);
}

enum MHD_Result ald_reply_store_error(struct ald_req *r, int err)
{
    if (err == AL_EAGAIN)
        return ald_reply_error(r, 503, "unavailable", NULL, "%s", al_error_last());
    return ald_reply_error(r, 500, "internal", NULL, "%s", al_error_last());
}

enum MHD_Result ald_reply_error(struct ald_req *r, int status, const char *code, const char *field,
                                const char *fmt, ...)
{
    struct ald_apierr e;
    e.status = status;
    e.code = code;
    e.earliest_offset = -1;
    snprintf(e.field, sizeof(e.field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof(e.message), fmt, ap);
    va_end(ap);
    return ald_reply_apierr(r, &e);
}

const char *ald_req_arg(struct ald_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *ald_req_header(struct ald_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int ald_req_socket(struct ald_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

struct ald_session *ald_req_session(struct ald_req *r, int need_ready,
                                    enum ald_reply_state *replied)
{
    *replied = ALD_NOT_REPLIED;
    const char *id = r->params[0];
    struct ald_session *s = id ? ald_session_get(r->d, &r->who, id) : NULL;
    if (s) {
        /* for the audit row: an id that names a session, never the URL's bytes */
        snprintf(r->session, sizeof(r->session), "%s", s->id);
        if (need_ready) {
            pthread_mutex_lock(&r->d->lock);
            enum ald_state st = s->state;
            pthread_mutex_unlock(&r->d->lock);
            if (st != ALD_READY) {
                ald_session_unref(r->d, s);
                ald_reply_error(r, 409, "conflict", NULL, "session %s is %s", id,
                                ald_state_name(st));
                *replied = ALD_REPLIED;
                return NULL;
            }
        }
        return s;
    }
    char node[64], addr[128];
    if (id && ald_forward_owner(r, node, addr)) {
        ald_forward(r, node, addr);
        *replied = ALD_REPLIED;
        return NULL;
    }
    json_t *pub = NULL;
    int err =
        id ? ald_store_session_get(r->d->st, id, r->who.admin ? NULL : r->who.user, &pub, NULL)
           : AL_ENOTFOUND;
    if (err == AL_ENOTFOUND) {
        char shown[ALD_QUOTED_ID];
        ald_reply_error(r, 404, "not_found", NULL, "no session %s",
                        ald_str_quote(shown, sizeof(shown), id ? id : "", id ? strlen(id) : 0));
        *replied = ALD_REPLIED;
    } else if (err < 0) {
        ald_reply_store_error(r, err);
        *replied = ALD_REPLIED;
    } else if (need_ready) {
        snprintf(r->session, sizeof(r->session), "%s", id);
        ald_reply_error(r, 409, "conflict", NULL, "session %s is %s", id,
                        json_string_value(json_object_get(pub, "state")));
        *replied = ALD_REPLIED;
    } else {
        snprintf(r->session, sizeof(r->session), "%s", id);
    }
    json_decref(pub);
    return NULL;
}

/* 405 with the Allow header. */
static enum MHD_Result reply_405(struct ald_req *r, const char *allow)
{
    char method[ALD_QUOTED_ID];
    ald_str_quote(method, sizeof(method), r->method, strlen(r->method));
    json_t *body = json_pack("{s:{s:s, s:s+}}", "error", "code", "method_not_allowed", "message",
                             method, " is not allowed here");
    char *txt = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!txt)
        return reply_error_plain(r, 405, "method_not_allowed");
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(txt), txt, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(txt);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Allow", allow);
    return ald_reply(r, 405, resp);
}

/* Which route: fills r->route and params, or replies 404/405. */
static enum MHD_Result route(struct ald_req *r, const char *path)
{
    char allow[128] = "";
    const struct ald_route *table = routes;
    unsigned here = r->on_peer ? ALD_ON_PEER : ALD_ON_API;
    for (size_t i = 0; i < N_ROUTES; i++) {
        const char *spans[3];
        size_t lens[3];
        int n;
        if (!(table[i].on & here) || !match(table[i].pattern, path, spans, lens, &n))
            continue;
        if (strcmp(table[i].method, r->method) != 0) {
            if (!strstr(allow, table[i].method)) {
                size_t l = strlen(allow);
                snprintf(allow + l, sizeof(allow) - l, "%s%s", l ? ", " : "", table[i].method);
            }
            continue;
        }
        r->route = &table[i];
        for (int k = 0; k < n; k++)
            if (ald_percent_decode(&r->params[k], spans[k], lens[k]) < 0)
                r->param_bad = 1;
        return MHD_YES;
    }
    if (allow[0])
        return reply_405(r, allow);
    char method[ALD_QUOTED_ID], shown[256];
    return ald_reply_error(r, 404, "not_found", NULL, "no route %s %s",
                           ald_str_quote(method, sizeof(method), r->method, strlen(r->method)),
                           ald_str_quote(shown, sizeof(shown), path, strlen(path)));
}

/* Finds a query argument whose name or value holds a NUL byte (which the
 * C-string lookups would silently cut). */
static enum MHD_Result arg_nul(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                               const char *value, size_t value_size)
{
    (void)kind;
    const char **bad = cls;
    if (strlen(key) != key_size || (value && strlen(value) != value_size)) {
        *bad = key;
        return MHD_NO;
    }
    return MHD_YES;
}

/* The first call for a request: route, drain check, auth, limits. */
static enum MHD_Result begin(struct ald_req *r)
{
    struct ald *d = r->d;
    r->started = 1;
    const char *uri = r->raw_uri ? r->raw_uri : "/";
    const char *q = strchr(uri, '?');
    size_t plen = q ? (size_t)(q - uri) : strlen(uri);
    char *path = strndup(uri, plen);
    if (!path)
        return MHD_NO;
    enum MHD_Result ret = route(r, path);
    free(path);
    if (r->replied || !r->route)
        return ret;
    if (atomic_load(&d->draining) && r->route->handler != ald_route_healthz)
        return ald_reply_error(r, 503, "unavailable", NULL, "airlockd is shutting down");
    if (r->on_peer) {
        /* node signatures only: API keys are never accepted here */
        if (ald_peer_auth(r) != 0)
            return r->replied ? MHD_YES : MHD_NO;
    } else if (r->route->auth) {
        const char *authz = ald_req_header(r, "Authorization");
        char ws_authz[256];
        if (!authz && r->route->handler == ald_route_proc_tty &&
            ald_ws_bearer_from_protocol(ald_req_header(r, "Sec-WebSocket-Protocol"), ws_authz,
                                        sizeof(ws_authz)) == 0)
            authz = ws_authz; /* a browser cannot set Authorization on a WebSocket */
        int err = ald_auth_check(d->st, authz, &r->who);
        explicit_bzero(ws_authz, sizeof(ws_authz)); /* held a key */
        if (err == AL_EAUTH)
            return ald_reply_error(r, 401, "unauthorized", NULL,
                                   "missing, unknown or revoked"
                                   " API key");
        if (err < 0) /* the database down: 503 with the reason, as any store failure */
            return ald_reply_store_error(r, err);
        r->authed = 1;
    }
    r->body_limit =
        r->route->body == ALD_BODY_UPLOAD ? d->cfg->max_upload_bytes : d->cfg->max_body_bytes;
    const char *cl = ald_req_header(r, "Content-Length");
    uint64_t len = 0;
    if (cl && ald_parse_u64(cl, UINT64_MAX, &len) == 0 && len > r->body_limit) {
        r->too_large = 1;
        return ald_reply_error(r, 413, "too_large", NULL, "body over %llu bytes",
                               (unsigned long long)r->body_limit);
    }
    const char *te = ald_req_header(r, "Transfer-Encoding");
    int has_body = len > 0 || (te && strcasecmp(te, "identity") != 0);
    const char *ct = ald_req_header(r, "Content-Type");
    if (r->route->body == ALD_BODY_JSON && has_body && ct &&
        strncasecmp(ct, "application/json", 16) != 0) {
        char shown[128];
        return ald_reply_error(r, 415, "unsupported_media_type", NULL,
                               "expected Content-Type: application/json, got %s",
                               ald_str_quote(shown, sizeof(shown), ct, strlen(ct)));
    }
    if (r->param_bad)
        return ald_reply_error(r, 400, "invalid_path", NULL,
                               "bad percent-encoding or a NUL byte in the URL");
    const char *bad_arg = NULL;
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, arg_nul, &bad_arg);
    if (bad_arg) {
        char shown[ALD_QUOTED_ID];
        ald_str_quote(shown, sizeof(shown), bad_arg, strlen(bad_arg));
        return ald_reply_error(r, 400, "invalid_value", shown, "query argument %s holds a NUL byte",
                               shown);
    }
    al_buf_init(&r->body, r->body_limit);
    if (r->route->body == ALD_BODY_UPLOAD) {
        /* a file for a session another node holds is spooled, then sent
         * there (the owner must be known before the body comes) */
        r->upload_ops = r->route->upload;
        if (ald_forward_owner(r, r->fwd_node, r->fwd_addr))
            r->upload_ops = &ald_forward_upload_ops;
        if (r->upload_ops->begin(r) != 0 && !r->replied)
            return ald_reply_apierr(r, &r->err);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)url;
    (void)version;
    struct ald_req *r = *con_cls;
    if (!r)
        return MHD_NO;
    r->d = cls;
    r->conn = conn;
    r->method = method;
    if (!r->started) {
        enum MHD_Result ret = begin(r);
        if (r->replied || ret == MHD_NO)
            return ret;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->replied || r->too_large)
            return MHD_YES; /* an error reply is queued or due: discard */
        r->received += n;
        if (r->peer)
            ald_peer_body_update(r, upload_data, n);
        if (r->received > r->body_limit) {
            /* libmicrohttpd takes no reply in the middle of a body (chunked
             * uploads): the rest is read and dropped, the 413 comes at the end */
            r->too_large = 1;
            if (r->upload && r->upload_ops)
                r->upload_ops->abort(r);
            al_buf_free(&r->body);
            return MHD_YES;
        }
        if (r->route->body == ALD_BODY_UPLOAD) {
            /* a write error is reported once the body is in (see above) */
            if (!r->err.code && r->upload_ops->write(r, upload_data, n) != 0 && !r->err.code)
                ald_apierr_set(&r->err, 500, "internal", NULL, "upload failed");
        } else if (r->route->body != ALD_BODY_NONE) {
            if (al_buf_append(&r->body, upload_data, n) < 0)
                r->too_large = 1;
        }
        return MHD_YES;
    }
    if (r->replied)
        return MHD_YES;
    if (r->too_large)
        return ald_reply_error(r, 413, "too_large", NULL, "body over %llu bytes",
                               (unsigned long long)r->body_limit);
    if (r->peer && ald_peer_body_check(r) != 0)
        return MHD_YES; /* 401 queued; the body is discarded */
    if (r->err.code && r->route->body == ALD_BODY_UPLOAD)
        return ald_reply_apierr(r, &r->err);
    if (r->upload_ops == &ald_forward_upload_ops)
        return ald_forward_upload_finish(r);
    return r->route->handler(r);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    struct ald *d = cls;
    struct ald_req *r = calloc(1, sizeof(*r));
    if (r) {
        r->raw_uri = strdup(uri ? uri : "/");
        atomic_fetch_add(&d->inflight, 1);
    }
    return r;
}

/* The same on the peer listener: the request must carry a node signature. */
static void *on_uri_peer(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct ald_req *r = on_uri(cls, uri, conn);
    if (r)
        r->on_peer = 1;
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    struct ald *d = cls;
    struct ald_req *r = *con_cls;
    if (!r)
        return;
    atomic_fetch_sub(&d->inflight, 1);
    if (r->upgrade)
        ald_ws_abandoned(r->upgrade);
    if (r->fwd_upgrade)
        ald_forward_ws_abandoned(r->fwd_upgrade);
    if (r->upload && r->upload_ops)
        r->upload_ops->abort(r);
    EVP_MD_CTX_free(r->peer_hash);
    if (r->status)
        ald_metrics_http(d, r->status);
    audit_write(r);
    for (int i = 0; i < 3; i++)
        free(r->params[i]);
    al_buf_free(&r->body);
    free(r->raw_uri);
    free(r);
    *con_cls = NULL;
}

/* libmicrohttpd's own messages, at debug level. */
static void __attribute__((format(printf, 2, 0))) mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512], shown[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    /* it may quote a request's bytes: one line, no control bytes */
    al_log(AL_LOG_DEBUG, "http: %s", ald_str_quote(shown, sizeof(shown), msg, n));
}

/* Creates the listening socket on HOST:PORT. */
static int listen_on(const char *addr, char *bound, size_t boundsz)
{
    char host[256];
    uint16_t port;
    if (ald_config_listen_split(addr, host, sizeof(host), &port) < 0)
        return al_error_set(AL_EINVAL, "listen: bad address \"%s\"", addr);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    if (getaddrinfo(host, portstr, &hints, &ai) != 0 || !ai)
        return al_error_set(AL_EINVAL, "listen: \"%s\" is not a numeric address", host);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    int err = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 512) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "listen on %s", addr);
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (err < 0)
        return err;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char h[INET6_ADDRSTRLEN] = "?";
    unsigned p = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, h, sizeof(h));
            p = ntohs(in->sin_port);
            snprintf(bound, boundsz, "%s:%u", h, p);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof(h));
            p = ntohs(in6->sin6_port);
            snprintf(bound, boundsz, "[%s]:%u", h, p);
        }
    }
    return fd;
}

/* The node-to-node listener on cluster.listen: the same handlers, the
 * routes marked ALD_ON_PEER, node signatures instead of API keys. */
static int peer_start(struct ald *d)
{
    int err = ald_forward_init(d);
    if (err < 0)
        return err;
    char bound[128];
    int fd = listen_on(d->cfg->cluster.listen, bound, sizeof(bound));
    if (fd < 0)
        return fd;
    peer_http =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                             MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE | MHD_USE_POLL,
                         0, NULL, NULL, on_request, d, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, d,
                         MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)d->cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)0, MHD_OPTION_URI_LOG_CALLBACK, on_uri_peer, d,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, d, MHD_OPTION_END);
    if (!peer_http) {
        close(fd);
        return al_error_set(AL_EIO, "libmicrohttpd did not start on %s", d->cfg->cluster.listen);
    }
    al_log(AL_LOG_INFO, "node-to-node listener on %s (node %s)", bound,
           d->cfg->cluster.node_id ? d->cfg->cluster.node_id : "?");
    return 0;
}

int ald_http_start(struct ald *d, char *bound, size_t boundsz)
{
    int fd = listen_on(d->cfg->listen, bound, boundsz);
    if (fd < 0)
        return fd;
    d->http = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                   MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE |
                                   MHD_USE_POLL, /* select() stops at fd 1024 */
                               0, NULL, NULL, on_request, d, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, d,
                               MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                               (unsigned)d->cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                               (unsigned)0, MHD_OPTION_URI_LOG_CALLBACK, on_uri, d,
                               MHD_OPTION_NOTIFY_COMPLETED, on_completed, d, MHD_OPTION_END);
    if (!d->http) {
        close(fd);
        return al_error_set(AL_EIO, "libmicrohttpd did not start on %s", d->cfg->listen);
    }
    int err = d->cfg->cluster.enabled ? peer_start(d) : 0;
    if (err < 0)
        ald_http_stop(d);
    return err;
}

void ald_http_quiesce(struct ald *d)
{
    if (d->http) {
        MHD_socket fd = MHD_quiesce_daemon(d->http);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
    if (peer_http) {
        MHD_socket fd = MHD_quiesce_daemon(peer_http);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
}

void ald_http_stop(struct ald *d)
{
    if (d->http)
        MHD_stop_daemon(d->http);
    d->http = NULL;
    if (peer_http)
        MHD_stop_daemon(peer_http);
    peer_http = NULL;
    ald_forward_fini();
}
