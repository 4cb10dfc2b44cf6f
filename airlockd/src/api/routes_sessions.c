/* Routes: service (healthz, metrics) and sessions. */
#include "request.h"

#include "forward.h"

#include "airlockd/adapters/db.h"
#include "airlockd/adapters/proxies.h"
#include "airlockd/adapters/store.h"
#include "airlockd/adapters/store_nodes.h"
#include "airlockd/api/metrics.h"
#include "airlockd/core/cluster.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/netpolicy.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

/* GET /healthz: always 200 while the daemon serves (503 once it began
 * to shut down), with the sessions here, "db": "up" or "down: REASON" and,
 * in cluster mode, "node": up | draining | fenced. `?ready=1` (readiness)
 * is also 503 while the database is down or the node is fenced: the node
 * cannot create or change sessions then. */
enum MHD_Result ald_route_healthz(struct ald_req *r)
{
    struct ald *d = r->d;
    json_int_t n = 0;
    pthread_mutex_lock(&d->lock);
    for (struct ald_session *s = d->sessions; s; s = s->next)
        n++;
    pthread_mutex_unlock(&d->lock);
    int draining = atomic_load(&d->draining);
    char why[200], db[224];
    int db_down = ald_db_down(ald_store_db(d->st), why, sizeof(why));
    snprintf(db, sizeof(db), db_down ? "down: %s" : "up", why);
    static const char *const node_states[] = {"up", "draining", "fenced"};
    enum ald_node_state ns = ald_cluster_state(d);
    const char *node = ald_cluster_self(d) ? node_states[ns] : NULL;
    const char *ready = ald_req_arg(r, "ready");
    int unready = ready && strcmp(ready, "0") != 0 && (db_down || ns == ALD_NODE_FENCED);
    return ald_reply_json(r, draining || unready ? 503 : 200,
                          json_pack("{s:s, s:I, s:s, s:s*}", "status",
                                    draining  ? "draining"
                                    : unready ? "unready"
                                              : "ok",
                                    "sessions", n, "db", db, "node", node));
}

enum MHD_Result ald_route_metrics(struct ald_req *r)
{
    char *txt = ald_metrics_render(r->d);
    if (!txt)
        return ald_reply_error(r, 500, "internal", NULL, "out of memory");
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(txt), txt, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(txt);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
    return ald_reply(r, 200, resp);
}

/* A string list as a JSON array (a new reference; NULL on ENOMEM). */
static json_t *strlist_json(const struct al_strlist *l)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < l->len; i++)
        if (json_array_append_new(arr, json_string(l->items[i])) < 0) {
            json_decref(arr);
            return NULL;
        }
    return arr;
}

/* Adds "warnings": the settings loader's warnings about the request's
 * settings document (docs/api.md), to the reply object `obj`. 0 or
 * AL_ENOMEM. */
static int warnings_put(json_t *obj, const struct al_strlist *warnings)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < warnings->len; i++) {
        /* a line quoting bytes that are not UTF-8 goes out with '?' for
         * each non-ASCII byte rather than failing the reply */
        char line[1024];
        snprintf(line, sizeof(line), "%s", warnings->items[i]);
        json_t *str = json_string(line);
        for (char *c = line; !str && *c; c++)
            if ((unsigned char)*c >= 0x80)
                *c = '?';
        if (!str)
            str = json_string(line);
        if (json_array_append_new(arr, str) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    if (!arr || json_object_set_new(obj, "warnings", arr) < 0)
        return AL_ENOMEM;
    return 0;
}

enum MHD_Result ald_route_session_create(struct ald_req *r)
{
    struct ald_apierr e;
    struct ald_create_req req;
    const char *body = r->body.ptr ? r->body.ptr : "";
    if (ald_body_create(&req, body, r->body.len, r->d->cfg, r->who.user, &e) < 0)
        return ald_reply_apierr(r, &e);
    unsigned char hash[32];
    char hash_hex[65];
    SHA256((const unsigned char *)body, r->body.len, hash);
    ald_hex(hash_hex, hash, 32);
    json_t *pub = NULL;
    int replayed = 0;
    struct ald_fault f;
    /* the warnings stay here: the create takes the policy */
    struct al_strlist warnings = req.policy.warnings;
    memset(&req.policy.warnings, 0, sizeof(req.policy.warnings));
    /* in a cluster the session may be placed on another node: the create
     * is then sent there (forward.c) and its answer relayed */
    struct ald_place_out remote;
    memset(&remote, 0, sizeof(remote));
    int err = ald_session_create_ex(r->d, &r->who, &req, ald_req_header(r, "Idempotency-Key"),
                                    hash_hex, &pub, &replayed, &remote, &f);
    for (int attempt = 0; err == ALD_CREATE_REMOTE; attempt++) {
        char id[64];
        snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(pub, "id")));
        json_decref(pub);
        pub = NULL;
        enum MHD_Result ret = MHD_NO;
        snprintf(r->session, sizeof(r->session), "%.31s", id);
        if (ald_forward_start(r, remote.node, remote.address, id, &ret) == 0) {
            ald_create_req_free(&req);
            al_strlist_free(&warnings);
            return ret;
        }
        /* the node was not reached: its placed row fails, and the create
         * is placed once more (the failed node's row no longer counts) */
        al_log(AL_LOG_WARN, "create %s: node %s did not answer: %s", id, remote.node,
               al_error_last());
        char why[160];
        snprintf(why, sizeof(why), "create-failed: node %s did not answer", remote.node);
        ald_store_place_fail(r->d->st, id, why);
        if (attempt > 0) {
            ald_create_req_free(&req);
            al_strlist_free(&warnings);
            return ald_reply_error(r, 503, "unavailable", NULL,
                                   "session %s was placed on node %s, which does not answer", id,
                                   remote.node);
        }
        /* remote.node stays: the node not to place on this time */
        remote.address[0] = '\0';
        err = ald_session_create_ex(r->d, &r->who, &req, NULL, hash_hex, &pub, &replayed, &remote,
                                    &f);
    }
    ald_create_req_free(&req);
    /* the same body gives the same warnings, so a replay has them too */
    if (err == 0 && warnings_put(pub, &warnings) < 0) {
        json_decref(pub);
        al_strlist_free(&warnings);
        return ald_reply_error(r, 500, "internal", NULL, "out of memory");
    }
    al_strlist_free(&warnings);
    if (err < 0)
        return ald_reply_fault(r, &f);
    snprintf(r->session, sizeof(r->session), "%s", json_string_value(json_object_get(pub, "id")));
    return ald_reply_created(r, pub, replayed);
}

enum MHD_Result ald_route_session_list(struct ald_req *r)
{
    const char *state = ald_req_arg(r, "state");
    const char *limit_s = ald_req_arg(r, "limit");
    const char *cursor = ald_req_arg(r, "cursor");
    uint64_t limit = 50, after = 0;
    if (state && ald_state_parse(state) < 0) {
        char shown[ALD_QUOTED_ID]; /* up to 64 of the query's bytes, quoted */
        return ald_reply_error(r, 400, "invalid_value", "state", "unknown state \"%s\"",
                               ald_str_quote(shown, sizeof(shown), state, strlen(state)));
    }
    if (limit_s && (ald_parse_u64(limit_s, 500, &limit) < 0 || limit == 0))
        return ald_reply_error(r, 400, "invalid_value", "limit", "limit must be 1 to 500");
    if (cursor && *cursor && ald_parse_u64(cursor, INT64_MAX, &after) < 0)
        return ald_reply_error(r, 400, "invalid_value", "cursor", "bad cursor");
    json_t *arr = NULL;
    int64_t next = 0;
    int err = ald_store_session_page(r->d->st, r->who.admin ? NULL : r->who.user, state,
                                     (int64_t)after, (unsigned)limit, &arr, &next);
    if (err < 0)
        return ald_reply_store_error(r, err);
    /* live sessions: the in-memory object is the current one */
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        const char *id = json_string_value(json_object_get(o, "id"));
        struct ald_session *s = id ? ald_session_get(r->d, &r->who, id) : NULL;
        if (s) {
            pthread_mutex_lock(&r->d->lock);
            json_t *live = ald_session_json(s);
            pthread_mutex_unlock(&r->d->lock);
            if (live)
                json_array_set_new(arr, i, live);
            ald_session_unref(r->d, s);
        }
    }
    return ald_reply_page(r, "sessions", arr, next);
}

enum MHD_Result ald_route_session_get(struct ald_req *r)
{
    struct ald_fault f;
    json_t *pub = NULL;
    if (ald_session_lookup_json(r->d, &r->who, r->params[0], &pub, &f) < 0)
        return ald_reply_fault(r, &f);
    return ald_reply_json(r, 200, pub);
}

enum MHD_Result ald_route_session_delete(struct ald_req *r)
{
    enum ald_reply_state replied;
    struct ald_session *s = ald_req_session(r, 0, &replied);
    if (replied == ALD_REPLIED)
        return MHD_YES;
    if (s) {
        ald_session_end(r->d, s, ALD_DELETED, NULL);
        ald_session_unref(r->d, s);
    }
    struct ald_fault f;
    json_t *pub = NULL;
    if (ald_session_lookup_json(r->d, &r->who, r->params[0], &pub, &f) < 0)
        return ald_reply_fault(r, &f);
    return ald_reply_json(r, 200, pub);
}

enum MHD_Result ald_route_session_keepalive(struct ald_req *r)
{
    enum ald_reply_state replied;
    struct ald_session *s = ald_req_session(r, 1, &replied);
    if (!s)
        return replied == ALD_REPLIED ? MHD_YES
                                      : ald_reply_error(r, 404, "not_found", NULL, "no session");
    ald_session_touch(r->d, s);
    ald_session_save(r->d, s);
    pthread_mutex_lock(&r->d->lock);
    json_t *pub = ald_session_json(s);
    pthread_mutex_unlock(&r->d->lock);
    ald_session_unref(r->d, s);
    return ald_reply_json(r, 200, pub);
}

enum MHD_Result ald_route_session_policy(struct ald_req *r)
{
    enum ald_reply_state replied;
    struct ald_session *s = ald_req_session(r, 1, &replied);
    if (!s)
        return replied == ALD_REPLIED ? MHD_YES
                                      : ald_reply_error(r, 404, "not_found", NULL, "no session");
    /* checked with the grant of the session's owner (an admin may patch it) */
    struct ald_apierr e;
    json_t *settings = NULL;
    struct al_netpolicy net;
    struct al_strlist warnings = AL_STRLIST_INIT;
    if (ald_body_policy(&settings, &net, &warnings, r->body.ptr ? r->body.ptr : "", r->body.len,
                        r->d->cfg, s->user, &e) < 0) {
        al_strlist_free(&warnings);
        ald_session_unref(r->d, s);
        return ald_reply_apierr(r, &e);
    }
    ald_session_touch(r->d, s);
    int err = ald_px_session_policy(r->d, s, &net);
    al_netpolicy_free(&net);
    if (err == AL_ENOMEM) {
        al_strlist_free(&warnings);
        json_decref(settings);
        ald_session_unref(r->d, s);
        return ald_reply_error(r, 500, "internal", NULL, "out of memory");
    }
    ald_session_save(r->d, s);
    ald_event(r->d, s->id, s->user, "policy", json_pack("{s:O}", "settings", settings));
    json_decref(settings);
    pthread_mutex_lock(&r->d->lock);
    json_t *pub = ald_session_json(s);
    pthread_mutex_unlock(&r->d->lock);
    ald_session_unref(r->d, s);
    if (pub && warnings_put(pub, &warnings) < 0) {
        json_decref(pub);
        pub = NULL; /* ald_reply_json answers 500 */
    }
    al_strlist_free(&warnings);
    return ald_reply_json(r, 200, pub);
}

/* GET /v1/sessions/{id}/policy: the session's network policy now, as the
 * settings document PATCH takes ({"network": {...}}), so that a client can
 * change one entry and send the whole back. */
enum MHD_Result ald_route_session_policy_get(struct ald_req *r)
{
    enum ald_reply_state replied;
    struct ald_session *s = ald_req_session(r, 0, &replied);
    if (!s)
        return replied == ALD_REPLIED ? MHD_YES
                                      : ald_reply_error(r, 404, "not_found", NULL, "no session");
    struct al_netpolicy np;
    pthread_mutex_lock(&r->d->lock);
    int err = al_netpolicy_from_json(&np, s->px.netpolicy);
    pthread_mutex_unlock(&r->d->lock);
    ald_session_unref(r->d, s);
    if (err < 0)
        return ald_reply_error(r, 500, "internal", NULL, "the stored policy: %s", al_error_last());
    json_t *net = json_pack(
        "{s:o, s:o, s:o, s:b, s:b, s:b}", "allowedDomains", strlist_json(&np.allowed_domains),
        "deniedDomains", strlist_json(&np.denied_domains), "allowedAddresses",
        strlist_json(&np.allowed_addresses), "allowAllDomains", np.allow_all_domains,
        "requireSniMatch", np.require_sni_match, "strictAllowlist", np.strict_allowlist);
    al_netpolicy_free(&np);
    return ald_reply_json(r, 200, net ? json_pack("{s:o}", "network", net) : NULL);
}
