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
};

/* The public JSON object of an approval (caller holds d->lock; new
 * reference, NULL when out of memory). */
json_t *ald_approval_json(const struct ald_approval *a);
/* Publishes an approval's current state (takes d->lock). */
void ald_approval_event(struct ald *d, struct ald_session *s, struct ald_approval *a);
/* Regular mode: holds the command `argv` of a request on session `s` as a
 * pending approval until somebody decides, the session ends, the daemon
 * stops or approval_timeout_s passes. 0 when allowed; else `f` says why
 * (ALD_FAULT_FORBIDDEN "approval_denied" or "approval_timeout";
 * ALD_FAULT_INTERNAL). */
int ald_approval_wait(struct ald *d, struct ald_session *s, json_t *argv, struct ald_fault *f);

#endif
