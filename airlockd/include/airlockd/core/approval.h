/* Approvals (regular mode): a command or a network request held until
 * somebody decides. */
#ifndef ALD_CORE_APPROVAL_H
#define ALD_CORE_APPROVAL_H

#include <jansson.h>

#include "airlockd/core/daemon.h"

/* The public JSON object of an approval (caller holds d->lock; new
 * reference, NULL when out of memory). */
json_t *ald_approval_json(const struct ald_approval *a);
/* Publishes an approval's current state (takes d->lock). */
void ald_approval_event(struct ald *d, struct ald_session *s, struct ald_approval *a);

#endif
