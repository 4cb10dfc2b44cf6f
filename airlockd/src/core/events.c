/* Events: every state change, process start and exit, limit hit and
 * approval goes to the bus that the SSE routes read. */
#include "airlockd/core/daemon.h"

#include "airlockd/core/evbus.h"
#include "airlockd/core/util.h"

#include "airlock/log.h"

void ald_event(struct ald *d, const char *sid, const char *user, const char *type, json_t *data)
{
    if (!data)
        data = json_object();
    if (!data || !d->bus) {
        json_decref(data);
        return;
    }
    if (json_is_object(data)) {
        json_object_set_new(data, "session", json_string(sid));
        json_object_set_new(data, "time", ald_time_json(ald_now_ms()));
    }
    /* the bus is closed while draining: nobody is listening any more */
    if (evbus_publish(d->bus, user, sid, type, data) == 0 && !atomic_load(&d->draining))
        al_log(AL_LOG_WARN, "event %s of %s not published", type, sid);
}
