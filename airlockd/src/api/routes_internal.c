/* Routes of the peer listener only (docs/cluster.md "Forwarding"): the
 * owner's half of a create another node placed here, and this node's live
 * counts. Both run after the node signature was checked (http.c). */
#include "forward.h"
#include "request.h"

#include "airlockd/core/cluster.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/session.h"

#include "airlock/error.h"

#include <string.h>

enum MHD_Result ald_route_internal_start(struct ald_req *r)
{
    const char *id = r->params[0];
    struct ald_apierr e;
    struct ald_create_req req;
    const char *body = r->body.ptr ? r->body.ptr : "";
    if (ald_body_create(&req, body, r->body.len, r->d->cfg, r->who.user, &e) < 0)
        return ald_reply_apierr(r, &e);
    snprintf(r->session, sizeof(r->session), "%s", id);
    json_t *pub = NULL;
    struct ald_fault f;
    int err = ald_session_create_placed(r->d, &r->who, &req, id, &pub, &f);
    ald_create_req_free(&req);
    if (err < 0)
        return ald_reply_fault(r, &f);
    return ald_reply_created(r, pub, 0);
}

enum MHD_Result ald_route_internal_node(struct ald_req *r)
{
    struct ald *d = r->d;
    long long live = 0, ready = 0;
    pthread_mutex_lock(&d->lock);
    for (struct ald_session *s = d->sessions; s; s = s->next) {
        live++;
        if (s->state == ALD_READY)
            ready++;
    }
    pthread_mutex_unlock(&d->lock);
    const char *self = ald_cluster_self(d);
    static const char *const states[] = {"up", "draining", "fenced"};
    enum ald_node_state st = ald_cluster_state(d);
    return ald_reply_json(r, 200,
                          json_pack("{s:s, s:s, s:I, s:I, s:i}", "node", self ? self : "", "state",
                                    (unsigned)st < 3 ? states[st] : "up", "sessions",
                                    (json_int_t)live, "ready", (json_int_t)ready, "inflight",
                                    (int)atomic_load(&d->inflight)));
}
