/* Event bus: a ring of the latest events under one mutex; see evbus.h. */
#include "airlockd/core/evbus.h"

#include "airlock/buf.h"
#include "airlock/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVBUS_DEFAULT_RETAIN 4096
#define EVBUS_TYPE_MAX       64

struct evbus {
    pthread_mutex_t mu;
    pthread_cond_t cond;      /* broadcast on publish and close; CLOCK_MONOTONIC */
    struct evbus_event *ring; /* event id i is in ring[(i - 1) % retain] */
    size_t retain;
    size_t bytes;      /* retained, as event_bytes counts them */
    size_t max_bytes;  /* older events are dropped early to stay below */
    uint64_t first_id; /* oldest id retained (last_id + 1 when none is) */
    uint64_t last_id;  /* latest id published, 0 when none */
    int closed;
    unsigned refs; /* the owner's (until evbus_free) + one per subscription */
};

struct evbus_sub {
    struct evbus *bus;
    char *user;       /* NULL: admin, sees everything */
    char *session;    /* NULL: every session of user */
    uint64_t next_id; /* the next id to consider */
    int lost;         /* fell behind the ring: AL_ETOOBIG from now on */
};

void evbus_event_free(struct evbus_event *ev)
{
    if (!ev)
        return;
    free(ev->type);
    free(ev->session);
    free(ev->user);
    free(ev->json);
    memset(ev, 0, sizeof(*ev));
}

static char *strdup_null(const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = 1;
    return d;
}

/* Deep copy of src into dst; AL_ENOMEM leaves dst zeroed. */
static int event_copy(struct evbus_event *dst, const struct evbus_event *src)
{
    int failed = 0;
    dst->id = src->id;
    dst->time_ns = src->time_ns;
    dst->type = strdup_null(src->type, &failed);
    dst->session = strdup_null(src->session, &failed);
    dst->user = strdup_null(src->user, &failed);
    dst->json = strdup_null(src->json, &failed);
    if (failed) {
        evbus_event_free(dst);
        return al_error_set(AL_ENOMEM, "out of memory");
    }
    return 0;
}

/* What an event costs to retain, roughly. */
static size_t event_bytes(const struct evbus_event *ev)
{
    return sizeof(*ev) + (ev->type ? strlen(ev->type) : 0) + (ev->user ? strlen(ev->user) : 0) +
           (ev->session ? strlen(ev->session) : 0) + (ev->json ? strlen(ev->json) : 0);
}

struct evbus *evbus_new_bounded(size_t retain, size_t max_bytes)
{
    struct evbus *bus = calloc(1, sizeof(*bus));
    pthread_condattr_t ca;

    if (!bus)
        return NULL;
    bus->retain = retain ? retain : EVBUS_DEFAULT_RETAIN;
    bus->max_bytes = max_bytes ? max_bytes : EVBUS_RETAIN_MAX_BYTES;
    bus->first_id = 1;
    bus->refs = 1;
    if (!(bus->ring = calloc(bus->retain, sizeof(*bus->ring)))) {
        free(bus);
        return NULL;
    }
    pthread_mutex_init(&bus->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&bus->cond, &ca);
    pthread_condattr_destroy(&ca);
    return bus;
}

struct evbus *evbus_new(size_t retain)
{
    return evbus_new_bounded(retain, EVBUS_RETAIN_MAX_BYTES);
}

/* Drops one reference; the last one frees the bus. */
static void bus_unref(struct evbus *bus)
{
    pthread_mutex_lock(&bus->mu);
    unsigned left = --bus->refs;
    pthread_mutex_unlock(&bus->mu);
    if (left)
        return;
    for (size_t i = 0; i < bus->retain; i++)
        evbus_event_free(&bus->ring[i]);
    free(bus->ring);
    pthread_cond_destroy(&bus->cond);
    pthread_mutex_destroy(&bus->mu);
    free(bus);
}

void evbus_close(struct evbus *bus)
{
    pthread_mutex_lock(&bus->mu);
    bus->closed = 1;
    pthread_cond_broadcast(&bus->cond);
    pthread_mutex_unlock(&bus->mu);
}

void evbus_free(struct evbus *bus)
{
    if (!bus)
        return;
    evbus_close(bus);
    bus_unref(bus);
}

static int type_valid(const char *type)
{
    size_t n = type ? strlen(type) : 0;
    if (n == 0 || n > EVBUS_TYPE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = type[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

uint64_t evbus_publish(struct evbus *bus, const char *user, const char *session, const char *type,
                       json_t *data)
{
    struct evbus_event ev = {0}, old;
    struct timespec now;
    int failed = 0;
    uint64_t id = 0;

    if (!type_valid(type)) {
        al_error_set(AL_EINVAL, "invalid event type");
        goto out;
    }
    /* Everything is built before taking the lock, so the critical section
     * is a slot swap: O(1), whatever the subscribers do. */
    clock_gettime(CLOCK_REALTIME, &now);
    ev.time_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    ev.type = strdup_null(type, &failed);
    ev.user = strdup_null(user, &failed);
    ev.session = strdup_null(session, &failed);
    ev.json = data ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
    if (failed || !ev.json) {
        al_error_set(AL_ENOMEM, "out of memory");
        goto out;
    }
    if (strlen(ev.json) > EVBUS_EVENT_MAX_BYTES) {
        al_error_set(AL_ETOOBIG, "event data over %d bytes", EVBUS_EVENT_MAX_BYTES);
        goto out;
    }
    pthread_mutex_lock(&bus->mu);
    if (bus->closed) {
        pthread_mutex_unlock(&bus->mu);
        al_error_set(AL_EIO, "event bus closed");
        goto out;
    }
    id = ev.id = ++bus->last_id;
    struct evbus_event *slot = &bus->ring[(id - 1) % bus->retain];
    old = *slot;
    if (old.json) { /* the ring is full: the oldest goes */
        bus->bytes -= event_bytes(&old);
        bus->first_id = old.id + 1;
    }
    bus->bytes += event_bytes(&ev);
    *slot = ev;
    ev = old; /* freed below, outside the lock */
    /* Over the byte budget: drop the oldest early (each event is dropped
     * once, so this stays O(1) amortised). */
    while (bus->bytes > bus->max_bytes && bus->first_id < id) {
        struct evbus_event *drop = &bus->ring[(bus->first_id - 1) % bus->retain];
        bus->bytes -= event_bytes(drop);
        evbus_event_free(drop);
        bus->first_id++;
    }
    pthread_cond_broadcast(&bus->cond);
    pthread_mutex_unlock(&bus->mu);
out:
    evbus_event_free(&ev);
    json_decref(data);
    return id;
}

uint64_t evbus_last_id(struct evbus *bus)
{
    pthread_mutex_lock(&bus->mu);
    uint64_t id = bus->last_id;
    pthread_mutex_unlock(&bus->mu);
    return id;
}

struct evbus_sub *evbus_subscribe(struct evbus *bus, const char *user, const char *session,
                                  uint64_t after_id)
{
    int failed = 0;
    struct evbus_sub *sub = calloc(1, sizeof(*sub));

    if (!sub)
        return NULL;
    sub->user = strdup_null(user, &failed);
    sub->session = strdup_null(session, &failed);
    if (failed) {
        free(sub->user);
        free(sub->session);
        free(sub);
        return NULL;
    }
    sub->bus = bus;
    pthread_mutex_lock(&bus->mu);
    bus->refs++;
    sub->next_id = (after_id == 0 || after_id > bus->last_id) ? bus->last_id + 1 : after_id + 1;
    pthread_mutex_unlock(&bus->mu);
    return sub;
}

void evbus_unsubscribe(struct evbus_sub *sub)
{
    if (!sub)
        return;
    bus_unref(sub->bus);
    free(sub->user);
    free(sub->session);
    free(sub);
}

/* Whether the subscription sees `ev`. */
static int sub_sees(const struct evbus_sub *sub, const struct evbus_event *ev)
{
    if (!sub->user)
        return 1;
    if (!ev->user || strcmp(ev->user, sub->user) != 0)
        return 0;
    return !sub->session || (ev->session && strcmp(ev->session, sub->session) == 0);
}

/* The monotonic deadline timeout_ms from now. */
static struct timespec deadline_after(int timeout_ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += timeout_ms / 1000;
    t.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

int evbus_next(struct evbus_sub *sub, int timeout_ms, struct evbus_event *out)
{
    struct evbus *bus = sub->bus;
    struct timespec deadline = {0};
    int ret = 0, timed_out = 0;

    memset(out, 0, sizeof(*out));
    if (timeout_ms > 0)
        deadline = deadline_after(timeout_ms);
    pthread_mutex_lock(&bus->mu);
    for (;;) {
        if (bus->closed) {
            ret = al_error_set(AL_EIO, "event bus closed");
            break;
        }
        if (sub->lost) {
            ret = al_error_set(AL_ETOOBIG, "events lost");
            break;
        }
        if (sub->next_id <= bus->last_id) {
            if (sub->next_id < bus->first_id) {
                sub->lost = 1;
                continue;
            }
            const struct evbus_event *ev = &bus->ring[(sub->next_id - 1) % bus->retain];
            if (!sub_sees(sub, ev)) {
                sub->next_id++;
                continue;
            }
            if ((ret = event_copy(out, ev)) == 0) {
                sub->next_id++;
                ret = 1;
            }
            break;
        }
        if (timeout_ms == 0 || timed_out)
            break;
        if (timeout_ms < 0)
            pthread_cond_wait(&bus->cond, &bus->mu);
        else if (pthread_cond_timedwait(&bus->cond, &bus->mu, &deadline) == ETIMEDOUT)
            timed_out = 1; /* one more look, then 0 */
    }
    pthread_mutex_unlock(&bus->mu);
    return ret;
}

char *evbus_sse_format(const struct evbus_event *ev)
{
    struct al_buf b;
    int err = 0;

    al_buf_init(&b, (size_t)-1 / 2);
    err = al_buf_printf(&b, "id: %llu\nevent: ", (unsigned long long)ev->id);
    for (const char *p = ev->type ? ev->type : "message"; *p && err == 0; p++)
        err = al_buf_append(&b, (*p == '\n' || *p == '\r') ? "_" : p, 1);
    if (err == 0)
        err = al_buf_puts(&b, "\ndata: ");
    /* A line break in the data starts another "data:" line (CRLF counts as
     * one); the reader joins them with "\n". Compact JSON has none. */
    for (const char *p = ev->json ? ev->json : "{}"; err == 0;) {
        size_t n = strcspn(p, "\r\n");
        if ((err = al_buf_append(&b, p, n)) < 0 || !p[n])
            break;
        p += n + (p[n] == '\r' && p[n + 1] == '\n' ? 2 : 1);
        err = al_buf_puts(&b, "\ndata: ");
    }
    if (err == 0)
        err = al_buf_puts(&b, "\n\n");
    if (err < 0) {
        al_buf_free(&b);
        return NULL;
    }
    return al_buf_detach(&b);
}
