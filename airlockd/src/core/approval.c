/* Approvals (approval.h): their JSON, their events, the wait for a
 * decision. */
#include "airlockd/core/approval.h"

#include "airlockd/core/cluster.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"
#include "airlockd/core/webhook.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

json_t *ald_approval_json(const struct ald_approval *a)
{
    if (a->kind)
        return json_pack("{s:s, s:s, s:s, s:i, s:s, s:o}", "id", a->id, "kind", a->kind, "host",
                         a->host, "port", a->port, "state", a->state, "created_at",
                         ald_time_json(a->created_ms));
    return json_pack("{s:s, s:s, s:O, s:s, s:o}", "id", a->id, "kind", "exec", "argv", a->argv,
                     "state", a->state, "created_at", ald_time_json(a->created_ms));
}

/* Cluster mode: the approval's row, as its JSON says now (fire-and-log). */
static void approval_store(struct ald *d, const struct ald_session *s, json_t *body,
                           const char *kind, const char *id, const char *state, const char *by)
{
    if (!ald_cluster_self(d) || !d->hooks.cluster.approval_put || !body)
        return;
    if (d->hooks.cluster.approval_put(d->st, id, s->id, kind, body, state, by[0] ? by : NULL) < 0)
        al_log(AL_LOG_WARN, "session %s: approval %s (%s) not stored: %s", s->id, id, state,
               al_error_last());
}

void ald_approval_event(struct ald *d, struct ald_session *s, struct ald_approval *a)
{
    json_t *notify = NULL, *row = NULL;
    char id[sizeof(a->id)], by[sizeof(a->decided_by)];
    const char *state, *kind;
    pthread_mutex_lock(&d->lock);
    /* a copy taken under the lock: a decision may change a->state after it */
    if (ald_cluster_self(d))
        row = ald_approval_json(a);
    snprintf(id, sizeof(id), "%s", a->id);
    snprintf(by, sizeof(by), "%s", a->decided_by);
    state = a->state;
    kind = a->kind ? a->kind : "exec";
    /* a session that asked for it hears of each new pending approval */
    if (s->webhook && strcmp(a->state, "pending") == 0)
        notify = json_pack("{s:s, s:o}", "session", s->id, "approval", ald_approval_json(a));
    json_t *ev = a->kind ? json_pack("{s:s, s:s, s:s, s:i, s:s}", "approval", a->id, "kind",
                                     a->kind, "host", a->host, "port", a->port, "state", a->state)
                         : json_pack("{s:s, s:s, s:O, s:s}", "approval", a->id, "kind", "exec",
                                     "argv", a->argv, "state", a->state);
    pthread_mutex_unlock(&d->lock);
    approval_store(d, s, row, kind, id, state, by);
    json_decref(row);
    ald_event(d, s->id, s->user, "approval", ev);
    if (notify)
        ald_webhook_session_notify(d, s->id, s->user, s->webhook, "approval.pending", notify);
    json_decref(notify);
}

json_t *ald_approval_list_stored(struct ald *d, const char *sid)
{
    json_t *rows = NULL;
    if (ald_cluster_self(d) && d->hooks.cluster.approval_list &&
        d->hooks.cluster.approval_list(d->st, sid, &rows) < 0) {
        al_log(AL_LOG_WARN, "session %s: stored approvals not read: %s", sid, al_error_last());
        rows = NULL;
    }
    return json_pack("{s:o}", "approvals", rows ? rows : json_array());
}

int ald_approvals_expire_stored(struct ald *d, const char *sid)
{
    if (!ald_cluster_self(d) || !d->hooks.cluster.approvals_expire)
        return 0;
    return d->hooks.cluster.approvals_expire(d->st, sid);
}

int ald_approval_wait(struct ald *d, struct ald_session *s, json_t *argv, struct ald_fault *f)
{
    struct ald_approval *a = calloc(1, sizeof(*a));
    if (!a)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
    memcpy(a->id, "a_", 2);
    if (ald_random_hex(a->id + 2, 16) < 0) {
        free(a);
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
    }
    a->argv = json_incref(argv);
    a->state = "pending";
    a->created_ms = ald_now_ms();
    pthread_mutex_lock(&d->lock);
    a->next = s->approvals.list;
    s->approvals.list = a;
    pthread_mutex_unlock(&d->lock);
    ald_approval_event(d, s, a);

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)d->cfg->approval_timeout_s;
    pthread_mutex_lock(&d->lock);
    int timed_out = 0;
    while (strcmp(a->state, "pending") == 0 && s->state == ALD_READY &&
           !atomic_load(&d->stopping)) {
        if (pthread_cond_timedwait(&d->cond, &d->lock, &deadline) == ETIMEDOUT) {
            if (strcmp(a->state, "pending") == 0) {
                a->state = "timed-out";
                timed_out = 1;
            }
            break;
        }
    }
    if (strcmp(a->state, "pending") == 0) {
        a->state = "timed-out";
        timed_out = 1;
    }
    const char *st = a->state;
    pthread_mutex_unlock(&d->lock);
    if (timed_out)
        ald_approval_event(d, s, a);
    if (strcmp(st, "allowed") == 0)
        return 0;
    if (strcmp(st, "denied") == 0)
        return ald_fault_set(f, ALD_FAULT_FORBIDDEN, "approval_denied", NULL,
                             "the command was refused");
    return ald_fault_set(f, ALD_FAULT_FORBIDDEN, "approval_timeout", NULL,
                         "nobody decided within %llu s",
                         (unsigned long long)d->cfg->approval_timeout_s);
}
