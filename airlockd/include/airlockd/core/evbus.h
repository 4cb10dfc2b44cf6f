/* In-memory event bus of airlockd, with replay, for server-sent events.
 *
 * The bus keeps the latest `retain` events in a ring; subscribers read at
 * their own pace from it. Publishing is O(1) and never waits for a
 * subscriber: a subscriber that falls more than `retain` events behind loses
 * its place and is told so (AL_ETOOBIG), and must restart its stream.
 *
 * Thread-safe: any thread may publish, subscribe, read and close. One
 * subscription is read by one thread at a time.
 *
 * Visibility: an event carries the user it belongs to and optionally a
 * session. An admin subscription (user NULL) sees every event; a user's
 * subscription sees only events of that exact user (never one of another
 * user, nor one published with user NULL), and, when it names a session, only
 * that session's events.
 */
#ifndef AIRLOCKD_EVBUS_H
#define AIRLOCKD_EVBUS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct evbus;
struct evbus_sub;

#define EVBUS_EVENT_MAX_BYTES  (1 << 20)  /* serialised data of one event */
#define EVBUS_RETAIN_MAX_BYTES (64 << 20) /* all retained events, by default */

/* One event as handed to a subscriber. Every string is owned by the struct
 * (evbus_event_free). */
struct evbus_event {
    uint64_t id;     /* strictly increasing from 1 */
    char *type;      /* "state", "process_exit", ... */
    char *session;   /* NULL for a daemon-wide event */
    char *user;      /* NULL for an event published with no user */
    char *json;      /* the data, compact JSON without any newline */
    int64_t time_ns; /* publication time, CLOCK_REALTIME */
};

/* A new bus that retains the latest `retain` events (0 -> 4096), and fewer
 * when they would take more than EVBUS_RETAIN_MAX_BYTES together (the
 * oldest are dropped early; a subscriber that still wanted them is told
 * "events lost"). NULL when out of memory. Free with evbus_free. */
struct evbus *evbus_new(size_t retain);

/* evbus_new with another byte budget (0 -> EVBUS_RETAIN_MAX_BYTES). */
struct evbus *evbus_new_bounded(size_t retain, size_t max_bytes);

/* Closes the bus (like evbus_close) and drops the caller's reference: the
 * memory goes when the last subscription is unsubscribed too, so this may
 * be called while other threads still hold subscriptions (their
 * evbus_next answers AL_EIO). No publish may follow. NULL is a no-op. */
void evbus_free(struct evbus *bus);

/* Publishes an event and returns its id (> 0, strictly increasing).
 * `data` is a JSON object, array or other value, or NULL for {}; the bus
 * STEALS the caller's reference (like json_object_set_new): do not
 * json_decref it afterwards, even on failure. It is serialised at once
 * (compact, so no newline), so later changes to it are not seen. `user` and
 * `session` are copied and may be NULL. `type` must be 1..64 bytes of
 * [A-Za-z0-9_.-]. Returns 0 (and publishes nothing) when out of memory, when
 * `type` is invalid, when the data serialise to more than
 * EVBUS_EVENT_MAX_BYTES, or when the bus is closed. */
uint64_t evbus_publish(struct evbus *bus, const char *user, const char *session, const char *type,
                       json_t *data);

/* The id of the latest event published, 0 when none. */
uint64_t evbus_last_id(struct evbus *bus);

/* A new subscription (strings copied): every event when `user` is NULL
 * (admin), else only `user`'s, and only `session`'s when that is not NULL.
 * `after_id` > 0 replays the retained events with an id above it first
 * (Last-Event-ID); 0, or an id above the latest one (say, from before a
 * daemon restart), delivers only events published from now on. NULL when out
 * of memory. Each subscription holds a reference on the bus. Free with
 * evbus_unsubscribe. */
struct evbus_sub *evbus_subscribe(struct evbus *bus, const char *user, const char *session,
                                  uint64_t after_id);

/* Waits up to timeout_ms (< 0: forever, 0: do not wait) for the next event of
 * the subscription. Returns
 *   1           and fills *out (caller frees with evbus_event_free);
 *   0           timeout, nothing to deliver (*out zeroed);
 *   AL_EIO      the bus was closed (daemon shutdown); every later call too;
 *   AL_ETOOBIG  "events lost": events after the last one delivered were
 *               dropped from the ring before this subscriber read them (it
 *               fell more than `retain` events behind, or its after_id was
 *               older than the ring); every later call too, so restart the
 *               stream (a new subscription);
 *   AL_ENOMEM   copying the event failed; the event is not consumed.
 * Events the subscription does not see are skipped silently. */
int evbus_next(struct evbus_sub *sub, int timeout_ms, struct evbus_event *out);

/* Frees the strings of *ev (not ev itself) and zeroes it; NULL is a no-op. */
void evbus_event_free(struct evbus_event *ev);

/* Ends the subscription and frees it; the last one of a freed bus frees the
 * bus. Must not race with evbus_next on the same subscription. NULL is a
 * no-op. */
void evbus_unsubscribe(struct evbus_sub *sub);

/* Marks the bus closed and wakes every waiting subscriber: evbus_next then
 * answers AL_EIO, evbus_publish 0. Idempotent. */
void evbus_close(struct evbus *bus);

/* One SSE frame, "id: N\nevent: TYPE\ndata: JSON\n\n", newly allocated
 * (caller frees); should the data ever hold a CR or LF, it is split over
 * several "data:" lines, as SSE allows, so the frame cannot be broken. NULL
 * when out of memory. */
char *evbus_sse_format(const struct evbus_event *ev);

#endif
