/* Unit tests of airlockd's event bus (evbus.c): order, replay, visibility,
 * overflow, many threads, close, SSE frames. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/error.h"
#include "airlockd/core/evbus.h"

static uint64_t pub_n(struct evbus *bus, const char *user, const char *session, int n)
{
    return evbus_publish(bus, user, session, "state", json_pack("{s:i}", "n", n));
}

/* The next event of sub without waiting; asserts there is one. */
static void expect_next(struct evbus_sub *sub, uint64_t id, const char *json)
{
    struct evbus_event ev;
    int r = evbus_next(sub, 0, &ev);
    if (r != 1)
        fail_msg("expected event %llu, got %d (%s)", (unsigned long long)id, r, al_error_last());
    assert_int_equal(ev.id, id);
    if (json)
        assert_string_equal(ev.json, json);
    evbus_event_free(&ev);
}

static void expect_none(struct evbus_sub *sub)
{
    struct evbus_event ev;
    assert_int_equal(evbus_next(sub, 0, &ev), 0);
    assert_null(ev.type);
}

static void order_and_fields(void **state)
{
    struct evbus *bus = evbus_new(16);
    assert_non_null(bus);
    assert_int_equal(evbus_last_id(bus), 0);
    struct evbus_sub *sub = evbus_subscribe(bus, NULL, NULL, 0);
    expect_none(sub);
    for (int i = 1; i <= 5; i++)
        assert_int_equal(pub_n(bus, "alice", "s_1", i), i);
    assert_int_equal(evbus_last_id(bus), 5);

    struct evbus_event ev;
    assert_int_equal(evbus_next(sub, 0, &ev), 1);
    assert_int_equal(ev.id, 1);
    assert_string_equal(ev.type, "state");
    assert_string_equal(ev.user, "alice");
    assert_string_equal(ev.session, "s_1");
    assert_string_equal(ev.json, "{\"n\":1}");
    assert_true(ev.time_ns > 0);
    evbus_event_free(&ev);
    evbus_event_free(&ev); /* zeroed: harmless */
    evbus_event_free(NULL);
    for (int i = 2; i <= 5; i++) {
        char want[32];
        snprintf(want, sizeof(want), "{\"n\":%d}", i);
        expect_next(sub, (uint64_t)i, want);
    }
    expect_none(sub);
    /* a timed wait with nothing published returns 0 */
    assert_int_equal(evbus_next(sub, 20, &ev), 0);

    /* daemon-wide event, NULL data, non-object data */
    assert_int_equal(evbus_publish(bus, NULL, NULL, "shutdown", NULL), 6);
    assert_int_equal(evbus_next(sub, 0, &ev), 1);
    assert_null(ev.user);
    assert_null(ev.session);
    assert_string_equal(ev.json, "{}");
    evbus_event_free(&ev);
    assert_int_equal(evbus_publish(bus, "u", NULL, "x", json_string("a\nb")), 7);
    expect_next(sub, 7, "\"a\\nb\"");
    evbus_unsubscribe(sub);
    evbus_unsubscribe(NULL);
    evbus_free(bus);
    evbus_free(NULL);
}

/* publish steals the reference; invalid types and a closed bus publish
 * nothing (and still drop the reference). */
static void publish_reference_and_refusals(void **state)
{
    struct evbus *bus = evbus_new(0);
    json_t *obj = json_pack("{s:s}", "k", "v");
    json_incref(obj);
    assert_int_equal(obj->refcount, 2);
    assert_int_equal(evbus_publish(bus, "u", "s", "state", obj), 1);
    assert_int_equal(obj->refcount, 1);
    json_object_set_new(obj, "k", json_string("changed"));
    struct evbus_sub *sub = evbus_subscribe(bus, NULL, NULL, 0);
    static const char *bad[] = {
        "",    "a b",      "new\nline",
        "x:y", "\xc3\xa9", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_incref(obj);
        assert_int_equal(evbus_publish(bus, "u", "s", bad[i], obj), 0);
        assert_int_equal(obj->refcount, 1);
    }
    assert_int_equal(evbus_publish(bus, "u", "s", NULL, NULL), 0);
    expect_none(sub);
    struct evbus_sub *replay = evbus_subscribe(bus, NULL, NULL, 0);
    evbus_unsubscribe(replay);
    replay = evbus_subscribe(bus, "u", NULL, 0);
    evbus_unsubscribe(replay);
    evbus_close(bus);
    json_incref(obj);
    assert_int_equal(evbus_publish(bus, "u", "s", "state", obj), 0);
    assert_int_equal(obj->refcount, 1);
    json_decref(obj);
    evbus_unsubscribe(sub);
    evbus_free(bus);
}

static void replay_after_id(void **state)
{
    struct evbus *bus = evbus_new(64);
    for (int i = 1; i <= 10; i++)
        pub_n(bus, "alice", "s_1", i);
    struct evbus_sub *from4 = evbus_subscribe(bus, "alice", NULL, 4);
    struct evbus_sub *now = evbus_subscribe(bus, "alice", NULL, 0);
    struct evbus_sub *future = evbus_subscribe(bus, "alice", NULL, 1000); /* a restart */
    struct evbus_sub *last = evbus_subscribe(bus, "alice", NULL, 10);
    for (uint64_t i = 5; i <= 10; i++)
        expect_next(from4, i, NULL);
    expect_none(from4);
    expect_none(now);
    expect_none(future);
    expect_none(last);
    pub_n(bus, "alice", "s_1", 11);
    expect_next(from4, 11, "{\"n\":11}");
    expect_next(now, 11, NULL);
    expect_next(future, 11, NULL);
    expect_next(last, 11, NULL);
    evbus_unsubscribe(from4);
    evbus_unsubscribe(now);
    evbus_unsubscribe(future);
    evbus_unsubscribe(last);
    evbus_free(bus);
}

/* Admin sees all; a user sees exactly their own events (never another
 * user's, nor user-less ones); a session filter narrows further. */
static void visibility(void **state)
{
    struct evbus *bus = evbus_new(64);
    struct evbus_sub *admin = evbus_subscribe(bus, NULL, NULL, 0);
    struct evbus_sub *alice = evbus_subscribe(bus, "alice", NULL, 0);
    struct evbus_sub *alice1 = evbus_subscribe(bus, "alice", "s_1", 0);
    struct evbus_sub *bob = evbus_subscribe(bus, "bob", NULL, 0);
    struct evbus_sub *bob1 = evbus_subscribe(bus, "bob", "s_1", 0); /* alice's session id */
    struct evbus_sub *carol = evbus_subscribe(bus, "carol", NULL, 0);
    struct evbus_sub *prefix = evbus_subscribe(bus, "ali", NULL, 0);

    pub_n(bus, "alice", "s_1", 1); /* id 1 */
    pub_n(bus, "alice", "s_2", 2); /* id 2 */
    pub_n(bus, "bob", "s_3", 3);   /* id 3 */
    pub_n(bus, NULL, NULL, 4);     /* id 4: daemon-wide */
    pub_n(bus, "alice", NULL, 5);  /* id 5: alice, no session */
    pub_n(bus, "alicex", "s_1", 6);

    for (uint64_t i = 1; i <= 6; i++)
        expect_next(admin, i, NULL);
    expect_next(alice, 1, NULL);
    expect_next(alice, 2, NULL);
    expect_next(alice, 5, NULL);
    expect_next(alice1, 1, NULL);
    expect_next(bob, 3, NULL);
    struct evbus_sub *subs[] = {admin, alice, alice1, bob, bob1, carol, prefix};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        expect_none(subs[i]);
        evbus_unsubscribe(subs[i]);
    }
    evbus_free(bus);
}

/* A subscriber that falls more than `retain` behind is told "events lost",
 * and keeps being told; exactly `retain` behind is fine. */
static void overflow(void **state)
{
    struct evbus *bus = evbus_new(8);
    struct evbus_sub *slow = evbus_subscribe(bus, NULL, NULL, 0);
    struct evbus_sub *edge = evbus_subscribe(bus, NULL, NULL, 0);
    struct evbus_sub *other_user = evbus_subscribe(bus, "nobody", NULL, 0);
    for (int i = 1; i <= 8; i++)
        pub_n(bus, "u", NULL, i);
    for (uint64_t i = 1; i <= 8; i++)
        expect_next(edge, i, NULL);
    pub_n(bus, "u", NULL, 9);
    struct evbus_event ev;
    assert_int_equal(evbus_next(slow, 0, &ev), AL_ETOOBIG);
    assert_string_equal(al_error_last(), "events lost");
    assert_null(ev.json);
    assert_int_equal(evbus_next(slow, 0, &ev), AL_ETOOBIG);
    expect_next(edge, 9, NULL);
    /* lost even when the lost events were not for it: it cannot know */
    assert_int_equal(evbus_next(other_user, 0, &ev), AL_ETOOBIG);
    /* a replay from before the ring */
    for (int i = 10; i <= 20; i++)
        pub_n(bus, "u", NULL, i);
    struct evbus_sub *old = evbus_subscribe(bus, NULL, NULL, 5);
    assert_int_equal(evbus_next(old, 0, &ev), AL_ETOOBIG);
    struct evbus_sub *oldest = evbus_subscribe(bus, NULL, NULL, 12); /* ring: 13..20 */
    for (uint64_t i = 13; i <= 20; i++)
        expect_next(oldest, i, NULL);
    evbus_unsubscribe(slow);
    evbus_unsubscribe(edge);
    evbus_unsubscribe(other_user);
    evbus_unsubscribe(old);
    evbus_unsubscribe(oldest);
    evbus_free(bus);
}

/* The byte budget drops the oldest events early; one event over
 * EVBUS_EVENT_MAX_BYTES is refused. */
static void byte_budget(void **state)
{
    static char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    struct evbus *bus = evbus_new_bounded(100, 5000);
    struct evbus_sub *sub = evbus_subscribe(bus, NULL, NULL, 0);
    for (int i = 1; i <= 20; i++)
        assert_int_equal(evbus_publish(bus, "u", "s", "big", json_pack("{s:s}", "b", big)), i);
    struct evbus_event ev;
    assert_int_equal(evbus_next(sub, 0, &ev), AL_ETOOBIG);
    /* about 5000 / 1000 of them are left: the latest */
    struct evbus_sub *replay = evbus_subscribe(bus, NULL, NULL, 16);
    for (uint64_t i = 17; i <= 20; i++)
        expect_next(replay, i, NULL);
    expect_none(replay);
    struct evbus_sub *too_old = evbus_subscribe(bus, NULL, NULL, 10);
    assert_int_equal(evbus_next(too_old, 0, &ev), AL_ETOOBIG);
    /* small events keep flowing */
    assert_int_equal(pub_n(bus, "u", "s", 21), 21);
    expect_next(replay, 21, "{\"n\":21}");

    char *huge = malloc(EVBUS_EVENT_MAX_BYTES + 1);
    memset(huge, 'h', EVBUS_EVENT_MAX_BYTES);
    huge[EVBUS_EVENT_MAX_BYTES] = '\0';
    assert_int_equal(evbus_publish(bus, "u", "s", "big", json_pack("{s:s}", "b", huge)), 0);
    free(huge);
    assert_int_equal(evbus_last_id(bus), 21);
    evbus_unsubscribe(sub);
    evbus_unsubscribe(replay);
    evbus_unsubscribe(too_old);
    evbus_free(bus);
}

/* ---- threads ---- */

#define PUBLISHERS    4
#define PER_PUBLISHER 5000

struct reader {
    struct evbus_sub *sub;
    int want;                /* events to read */
    int got;                 /* events read */
    int per_pub[PUBLISHERS]; /* events seen from each publisher */
    int last_n[PUBLISHERS];  /* last n seen from each publisher */
    int bad;                 /* order or visibility violations */
    const char *user;        /* NULL: admin */
};

static struct evbus *shared_bus;

static void *publisher(void *arg)
{
    int p = (int)(intptr_t)arg;
    char user[16];
    snprintf(user, sizeof(user), "u%d", p);
    for (int i = 1; i <= PER_PUBLISHER; i++)
        if (!evbus_publish(shared_bus, user, "s", "tick", json_pack("{s:i, s:i}", "p", p, "n", i)))
            return (void *)1;
    return NULL;
}

static void *reader_run(void *arg)
{
    struct reader *r = arg;
    uint64_t last_id = 0;
    while (r->got < r->want) {
        struct evbus_event ev;
        int n = evbus_next(r->sub, -1, &ev);
        if (n != 1) {
            r->bad++;
            break;
        }
        json_t *j = json_loads(ev.json, 0, NULL);
        int p = (int)json_integer_value(json_object_get(j, "p"));
        int seq = (int)json_integer_value(json_object_get(j, "n"));
        json_decref(j);
        char user[16];
        snprintf(user, sizeof(user), "u%d", p);
        if (ev.id <= last_id || seq != r->last_n[p] + 1 || strcmp(ev.user, user) != 0 ||
            (r->user && strcmp(r->user, ev.user) != 0))
            r->bad++;
        last_id = ev.id;
        r->last_n[p] = seq;
        r->per_pub[p]++;
        r->got++;
        evbus_event_free(&ev);
    }
    return NULL;
}

/* 4 publishers and 6 readers at once, the ring large enough: every reader
 * gets every event it may see, in id order and in each publisher's order. */
static void concurrent_no_loss(void **state)
{
    shared_bus = evbus_new(PUBLISHERS * PER_PUBLISHER);
    struct reader readers[6] = {
        {.user = NULL, .want = PUBLISHERS * PER_PUBLISHER},
        {.user = NULL, .want = PUBLISHERS * PER_PUBLISHER},
        {.user = "u0", .want = PER_PUBLISHER},
        {.user = "u1", .want = PER_PUBLISHER},
        {.user = "u2", .want = PER_PUBLISHER},
        {.user = "u3", .want = PER_PUBLISHER},
    };
    pthread_t pt[PUBLISHERS], rt[6];
    for (int i = 0; i < 6; i++) {
        readers[i].sub = evbus_subscribe(shared_bus, readers[i].user, NULL, 0);
        assert_int_equal(pthread_create(&rt[i], NULL, reader_run, &readers[i]), 0);
    }
    for (int i = 0; i < PUBLISHERS; i++)
        assert_int_equal(pthread_create(&pt[i], NULL, publisher, (void *)(intptr_t)i), 0);
    for (int i = 0; i < PUBLISHERS; i++) {
        void *ret;
        pthread_join(pt[i], &ret);
        assert_null(ret);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(rt[i], NULL);
        assert_int_equal(readers[i].bad, 0);
        assert_int_equal(readers[i].got, readers[i].want);
        for (int p = 0; p < PUBLISHERS; p++)
            assert_int_equal(readers[i].per_pub[p],
                             !readers[i].user || readers[i].user[1] - '0' == p ? PER_PUBLISHER : 0);
        evbus_unsubscribe(readers[i].sub);
    }
    assert_int_equal(evbus_last_id(shared_bus), PUBLISHERS * PER_PUBLISHER);
    evbus_free(shared_bus);
}

/* A reader that never reads, under a small ring, loses its place without
 * slowing the publishers; a reader that keeps up either keeps up or is told
 * it lost events; nothing crashes or leaks. */
static void concurrent_small_ring(void **state)
{
    shared_bus = evbus_new(16);
    struct evbus_sub *idle = evbus_subscribe(shared_bus, NULL, NULL, 0);
    struct reader r = {.user = NULL, .want = PUBLISHERS * PER_PUBLISHER};
    r.sub = evbus_subscribe(shared_bus, NULL, NULL, 0);
    pthread_t pt[PUBLISHERS], rt;
    assert_int_equal(pthread_create(&rt, NULL, reader_run, &r), 0);
    for (int i = 0; i < PUBLISHERS; i++)
        assert_int_equal(pthread_create(&pt[i], NULL, publisher, (void *)(intptr_t)i), 0);
    for (int i = 0; i < PUBLISHERS; i++)
        pthread_join(pt[i], NULL);
    evbus_close(shared_bus); /* ends the reader if it lost its place */
    pthread_join(rt, NULL);
    assert_true(r.got == r.want || r.bad == 1);
    struct evbus_event ev;
    assert_int_equal(evbus_next(idle, 0, &ev), AL_EIO);
    evbus_unsubscribe(idle);
    evbus_unsubscribe(r.sub);
    evbus_free(shared_bus);
}

struct waiter {
    struct evbus_sub *sub;
    int ret;
};

static void *waiter_run(void *arg)
{
    struct waiter *w = arg;
    struct evbus_event ev;
    w->ret = evbus_next(w->sub, -1, &ev);
    return NULL;
}

/* evbus_close wakes every waiter with AL_EIO; evbus_free may come before
 * the subscriptions end (the last unsubscribe frees the bus). */
static void close_wakes_waiters(void **state)
{
    struct evbus *bus = evbus_new(8);
    struct waiter w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i].sub = evbus_subscribe(bus, i % 2 ? "alice" : NULL, NULL, 0);
        w[i].ret = 1;
        assert_int_equal(pthread_create(&th[i], NULL, waiter_run, &w[i]), 0);
    }
    evbus_free(bus); /* closes */
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ret, AL_EIO);
    }
    struct evbus_event ev;
    assert_int_equal(evbus_next(w[0].sub, 0, &ev), AL_EIO);
    assert_int_equal(evbus_next(w[1].sub, 100, &ev), AL_EIO);
    for (int i = 0; i < 4; i++)
        evbus_unsubscribe(w[i].sub);
}

/* ---- SSE ---- */

static void sse_frames(void **state)
{
    struct evbus_event ev = {.id = 42, .type = "process_exit", .json = "{\"code\":0}"};
    char *s = evbus_sse_format(&ev);
    assert_string_equal(s, "id: 42\nevent: process_exit\ndata: {\"code\":0}\n\n");
    free(s);
    /* a raw line break cannot end the frame early */
    ev.json = "a\nb\r\nc\rd";
    ev.type = "x\ny";
    s = evbus_sse_format(&ev);
    assert_string_equal(s, "id: 42\nevent: x_y\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
    free(s);
    ev.json = NULL;
    ev.type = NULL;
    s = evbus_sse_format(&ev);
    assert_string_equal(s, "id: 42\nevent: message\ndata: {}\n\n");
    free(s);

    /* from the bus: strings with newlines are escaped by jansson */
    struct evbus *bus = evbus_new(4);
    struct evbus_sub *sub = evbus_subscribe(bus, NULL, NULL, 0);
    evbus_publish(bus, "u", "s_1", "approval",
                  json_pack("{s:s, s:[s,s]}", "session", "s_1", "argv", "echo", "a\nb\r\n"));
    struct evbus_event got;
    assert_int_equal(evbus_next(sub, 0, &got), 1);
    s = evbus_sse_format(&got);
    assert_string_equal(s, "id: 1\nevent: approval\ndata: "
                           "{\"session\":\"s_1\",\"argv\":[\"echo\",\"a\\nb\\r\\n\"]}\n\n");
    free(s);
    evbus_event_free(&got);
    evbus_unsubscribe(sub);
    evbus_free(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_and_fields),
        cmocka_unit_test(publish_reference_and_refusals),
        cmocka_unit_test(replay_after_id),
        cmocka_unit_test(visibility),
        cmocka_unit_test(overflow),
        cmocka_unit_test(byte_budget),
        cmocka_unit_test(concurrent_no_loss),
        cmocka_unit_test(concurrent_small_ring),
        cmocka_unit_test(close_wakes_waiters),
        cmocka_unit_test(sse_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
