/* Approvals (regular mode): a command or a network request held until
 * somebody decides. */
#ifndef ALD_CORE_APPROVAL_H
#define ALD_CORE_APPROVAL_H

#include <stdint.h>

#include <jansson.h>

#include "airlockd/core/fault.h"

struct ald;
struct ald_session;

struct ald_approval {
    struct ald_approval *next;
    char id[48];
    const char *kind; /* NULL: "exec"; "network" (netproxy) */
    json_t *argv;     /* exec */
    char *host;       /* network: host and port the request is held for */
    int port;
    const char *state; /* "pending", "allowed", "denied", "timed-out" */
    uint64_t created_ms;
    char decided_by[64]; /* the user who decided ("" while pending or when it timed out) */
};

/* The public JSON object of an approval (caller holds d->lock; new
 * reference, NULL when out of memory). */
json_t *ald_approval_json(const struct ald_approval *a);
/* Publishes an approval's current state (takes d->lock). In cluster mode
 * it also writes the approval's row (hooks.cluster.approval_put), so that
 * its history outlives this node; a failed write is logged, never waited
 * for again (the decision is already made in memory). */
void ald_approval_event(struct ald *d, struct ald_session *s, struct ald_approval *a);
/* The stored approvals of session `sid` (cluster mode: the approvals
 * table, oldest first) as a new {"approvals": [...]} object; on a single
 * machine, or when the store cannot answer, {"approvals": []} (logged).
 * For a session that is no longer live here (GET …/approvals). NULL only
 * when out of memory. */
json_t *ald_approval_list_stored(struct ald *d, const char *sid);
/* Re-adoption (cluster mode): the pending approvals of session `sid`,
 * which waited in a process that is gone, become "timed-out" in the table.
 * 0 on a single machine; else the store's result (logged by the caller). */
int ald_approvals_expire_stored(struct ald *d, const char *sid);
/* Regular mode: holds the command `argv` of a request on session `s` as a
 * pending approval until somebody decides, the session ends, the daemon
 * stops or approval_timeout_s passes. 0 when allowed; else `f` says why
 * (ALD_FAULT_FORBIDDEN "approval_denied" or "approval_timeout";
 * ALD_FAULT_INTERNAL). */
int ald_approval_wait(struct ald *d, struct ald_session *s, json_t *argv, struct ald_fault *f);

#endif
