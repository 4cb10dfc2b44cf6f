/* Approvals (approval.h): their JSON and their events. */
#include "airlockd/core/approval.h"

#include "airlockd/core/daemon.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

json_t *ald_approval_json(const struct ald_approval *a)
{
    if (a->kind)
        return json_pack("{s:s, s:s, s:s, s:i, s:s, s:o}", "id", a->id, "kind", a->kind, "host",
                         a->host, "port", a->port, "state", a->state, "created_at",
                         ald_time_json(a->created_ms));
    return json_pack("{s:s, s:s, s:O, s:s, s:o}", "id", a->id, "kind", "exec", "argv", a->argv,
                     "state", a->state, "created_at", ald_time_json(a->created_ms));
}

void ald_approval_event(struct ald *d, struct ald_session *s, struct ald_approval *a)
{
    pthread_mutex_lock(&d->lock);
    json_t *ev = a->kind ? json_pack("{s:s, s:s, s:s, s:i, s:s}", "approval", a->id, "kind",
                                     a->kind, "host", a->host, "port", a->port, "state", a->state)
                         : json_pack("{s:s, s:s, s:O, s:s}", "approval", a->id, "kind", "exec",
                                     "argv", a->argv, "state", a->state);
    pthread_mutex_unlock(&d->lock);
    ald_event(d, s->id, s->user, "approval", ev);
}
