/* The cluster's store rows (adapters/store_nodes.c, issue 13): nodes,
 * heartbeats and fencing, the down sweep, placement (capacity, quotas,
 * branches) under concurrency, the fenced session writes. Runs on SQLite
 * and, under pg_run.sh (unit_airlockd_store_nodes_pg), on PostgreSQL, where
 * the concurrent cases run on many connections at once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "airlockd/adapters/store.h"
#include "airlockd/adapters/store_jobs.h"
#include "airlockd/adapters/store_nodes.h"
#include "airlockd/adapters/webhooks.h"

#include "airlock/error.h"

#include "store_backend.h"

/* A store on a database of its own with a pool of `pool` connections
 * (PostgreSQL; SQLite: a connection of its own), plus the jobs table. */
static struct ald_store *open_store(unsigned pool)
{
    struct ald_db *d = t_db_pool(t_db_path, pool, 20000);
    struct ald_store *st = NULL;
    struct ald_jobstore *js = NULL;
    if (d && ald_store_open_db(&st, d) == 0 && ald_jobstore_open_db(&js, d) == 0)
        ald_jobstore_close(js);
    ald_db_unref(d);
    assert_non_null(st);
    return st;
}

static void sql(struct ald_store *st, const char *text)
{
    assert_int_equal(ald_db_script(ald_store_db(st), text), 0);
}

static void add_node(struct ald_store *st, const char *id, int64_t sessions, int64_t mem)
{
    struct ald_node_caps caps = {.sessions = sessions, .memory_mb = mem, .cpu_m = 4000};
    char addr[64], api[64], state[16];
    int64_t epoch = 0;
    snprintf(addr, sizeof(addr), "10.0.0.%s:7071", id + 1);
    snprintf(api, sizeof(api), "10.0.0.%s:7070", id + 1);
    assert_int_equal(ald_store_node_register(st, id, addr, api, "test", &caps, &epoch, state), 0);
    assert_string_equal(state, "up");
}

/* A placement request of `user` for session `id` (pub/priv made here;
 * free with req_free). */
static struct ald_place_req req_make(const char *id, const char *user, int64_t mem)
{
    struct ald_place_req q = {.id = id,
                              .user = user,
                              .max_sessions = -1,
                              .max_memory_mb = -1,
                              .memory_mb = mem,
                              .cpu_m = 500,
                              .down_after_ms = 60000};
    q.pub = json_pack("{s:s, s:s, s:s, s:{s:I, s:f}}", "id", id, "user", user, "state", "placed",
                      "limits", "memory_mb", (json_int_t)mem, "cpu", 0.5);
    q.priv = json_pack("{s:I}", "uid", (json_int_t)0);
    return q;
}

static void req_free(struct ald_place_req *q)
{
    json_decref(q->pub);
    json_decref(q->priv);
}

static int place(struct ald_store *st, const char *id, const char *user, const char *force,
                 const char *exclude, char node[64], struct ald_fault *f)
{
    struct ald_place_req q = req_make(id, user, 100);
    q.force_node = force;
    q.exclude_node = exclude;
    struct ald_place_out o;
    int err = ald_store_place(st, &q, &o, f);
    if (node)
        snprintf(node, 64, "%s", o.node);
    req_free(&q);
    return err;
}

/* The live sessions of node `id`, from ald_store_node_list. */
static int64_t node_sessions(struct ald_store *st, const char *id)
{
    json_t *list = NULL, *n;
    size_t i;
    int64_t k = -1;
    assert_int_equal(ald_store_node_list(st, &list), 0);
    json_array_foreach(list, i, n)
    {
        if (strcmp(json_string_value(json_object_get(n, "id")), id) == 0)
            k = json_integer_value(json_object_get(n, "sessions"));
    }
    json_decref(list);
    return k;
}

static void test_register_heartbeat(void **state)
{
    (void)state;
    struct ald_store *st = open_store(2);
    struct ald_node_caps caps = {.sessions = 10, .memory_mb = 4096, .cpu_m = 2000};
    int64_t epoch = 0;
    char s[16];
    assert_int_equal(ald_store_node_register(st, "n1", "a:1", "a:2", "v1", &caps, &epoch, s), 0);
    assert_int_equal(epoch, 1);
    assert_string_equal(s, "up");
    assert_int_equal(ald_store_node_heartbeat(st, "n1", 1, s), 0);
    assert_string_equal(s, "up");
    /* a second process registering the same id: the first is fenced */
    assert_int_equal(ald_store_node_register(st, "n1", "a:1", "a:2", "v1", &caps, &epoch, s), 0);
    assert_int_equal(epoch, 2);
    assert_int_equal(ald_store_node_heartbeat(st, "n1", 1, s), AL_ESTALE);
    assert_int_equal(ald_store_node_heartbeat(st, "n1", 2, s), 0);
    /* drain survives a re-register; undrain */
    assert_int_equal(ald_store_node_set_state(st, "n1", "draining"), 0);
    assert_int_equal(ald_store_node_heartbeat(st, "n1", 2, s), 0);
    assert_string_equal(s, "draining");
    assert_int_equal(ald_store_node_register(st, "n1", "a:1", "a:2", "v1", &caps, &epoch, s), 0);
    assert_int_equal(epoch, 3);
    assert_string_equal(s, "draining");
    assert_int_equal(ald_store_node_set_state(st, "n1", "up"), 0);
    assert_int_equal(ald_store_node_heartbeat(st, "n1", 3, s), 0);
    assert_string_equal(s, "up");
    assert_int_equal(ald_store_node_set_state(st, "n1", "bogus"), AL_EINVAL);
    assert_int_equal(ald_store_node_set_state(st, "n9", "draining"), AL_ENOTFOUND);
    /* a node marked down is fenced and cannot be undrained back */
    sql(st, "UPDATE nodes SET state = 'down' WHERE id = 'n1'");
    assert_int_equal(ald_store_node_heartbeat(st, "n1", 3, s), AL_ESTALE);
    assert_int_equal(ald_store_node_set_state(st, "n1", "up"), AL_EINVAL);
    assert_int_equal(ald_store_node_set_state(st, "n1", "left"), 0);
    assert_int_equal(ald_store_node_heartbeat(st, "n1", 3, s), AL_ESTALE);
    /* registering again brings it back, up */
    assert_int_equal(ald_store_node_register(st, "n1", "a:1", "a:2", "v1", &caps, &epoch, s), 0);
    assert_int_equal(epoch, 4);
    assert_string_equal(s, "up");

    json_t *list = NULL;
    assert_int_equal(ald_store_node_list(st, &list), 0);
    assert_int_equal(json_array_size(list), 1);
    json_t *n = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(n, "address")), "a:1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(n, "capacity"), "cpu_m")),
                     2000);
    assert_true(json_integer_value(json_object_get(n, "heartbeat_age_ms")) >= 0);
    assert_true(json_integer_value(json_object_get(n, "heartbeat_age_ms")) < 60000);
    json_decref(list);

    /* {now} is the database's clock, in Unix ms */
    static const struct ald_sql q_now = {"SELECT {now}", NULL};
    struct ald_db_rows r = {0};
    assert_int_equal(ald_db_run(ald_store_db(st), &q_now, NULL, 0, &r), 0);
    int64_t now = ald_db_int(&r, 0, 0);
    ald_db_rows_free(&r);
    assert_true(now > 1700000000000LL && now < 4102444800000LL);
    ald_store_close(st);
}

static void test_meta_approvals_creds(void **state)
{
    (void)state;
    struct ald_store *st = open_store(2);
    assert_int_equal(ald_store_meta_check(st, "cluster_key_check", "abc"), 0);
    assert_int_equal(ald_store_meta_check(st, "cluster_key_check", "abc"), 0);
    assert_int_equal(ald_store_meta_check(st, "cluster_key_check", "abd"), AL_EINVAL);

    json_t *b1 = json_pack("{s:s, s:s}", "id", "a1", "state", "pending");
    json_t *b2 = json_pack("{s:s, s:s}", "id", "a2", "state", "pending");
    assert_int_equal(ald_store_approval_put(st, "a1", "s_1", "exec", b1, "pending", NULL), 0);
    assert_int_equal(ald_store_approval_put(st, "a2", "s_1", "net", b2, "pending", NULL), 0);
    json_object_set_new(b1, "state", json_string("approved"));
    assert_int_equal(ald_store_approval_put(st, "a1", "s_1", "exec", b1, "approved", "bob"), 0);
    assert_int_equal(ald_store_approvals_expire(st, "s_1"), 0);
    json_t *list = NULL;
    assert_int_equal(ald_store_approval_list(st, "s_1", &list), 0);
    assert_int_equal(json_array_size(list), 2);
    const char *s1 = json_string_value(json_object_get(json_array_get(list, 0), "state"));
    const char *s2 = json_string_value(json_object_get(json_array_get(list, 1), "state"));
    /* oldest first; a1 decided, a2 timed out */
    assert_true((strcmp(s1, "approved") == 0 && strcmp(s2, "timed-out") == 0) ||
                (strcmp(s2, "approved") == 0 && strcmp(s1, "timed-out") == 0));
    json_decref(list);
    assert_int_equal(ald_store_approval_list(st, "s_2", &list), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    json_decref(b1);
    json_decref(b2);

    /* gens grow (PostgreSQL's sequence may skip some); "after the last
     * seen" returns exactly the newer rows */
    int64_t max = 0, max2 = 0;
    assert_int_equal(ald_store_cred_put(st, "github.com/a", "\x01\x02\x00\x03", 4, 0), 0);
    assert_int_equal(ald_store_cred_put(st, "github.com/b", "xyz", 3, 0), 0);
    assert_int_equal(ald_store_cred_rows(st, 0, &list, &max), 0);
    assert_int_equal(json_array_size(list), 2);
    assert_true(max >= 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "scope")),
                        "github.com/a");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "sealed")),
                        "AQIAAw==");
    json_decref(list);
    assert_int_equal(ald_store_cred_put(st, "github.com/a", NULL, 0, 1), 0);
    assert_int_equal(ald_store_cred_rows(st, max, &list, &max2), 0);
    assert_int_equal(json_array_size(list), 1);
    assert_true(max2 > max);
    json_t *row = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(row, "scope")), "github.com/a");
    assert_true(json_is_true(json_object_get(row, "deleted")));
    assert_true(json_is_null(json_object_get(row, "sealed")));
    json_decref(list);
    assert_int_equal(ald_store_cred_rows(st, max2, &list, &max), 0);
    assert_int_equal(json_array_size(list), 0);
    assert_int_equal(max, max2);
    json_decref(list);
    ald_store_close(st);
}

static void test_place_rules(void **state)
{
    (void)state;
    struct ald_store *st = open_store(2);
    struct ald_fault f;
    char node[64];
    /* no node at all */
    assert_int_equal(place(st, "s_0", "alice", NULL, NULL, node, &f), AL_EAGAIN);
    assert_int_equal(f.kind, ALD_FAULT_UNAVAILABLE);
    assert_string_equal(f.message, "no node has room (0 up, 0 full)");

    add_node(st, "n1", 2, 10000);
    add_node(st, "n2", 4, 10000);
    add_node(st, "n3", 4, 10000);
    /* the most free room first: n2 (ties by id), then n3, ... */
    assert_int_equal(place(st, "s_1", "alice", NULL, NULL, node, &f), 0);
    assert_string_equal(node, "n2");
    assert_int_equal(place(st, "s_2", "alice", NULL, NULL, node, &f), 0);
    assert_string_equal(node, "n3");
    /* force and exclude */
    assert_int_equal(place(st, "s_3", "alice", "n1", NULL, node, &f), 0);
    assert_string_equal(node, "n1");
    assert_int_equal(place(st, "s_4", "alice", NULL, "n2", node, &f), 0);
    assert_string_equal(node, "n3");
    assert_int_equal(place(st, "s_3", "alice", NULL, NULL, node, &f), AL_EEXISTS);
    assert_int_equal(f.kind, ALD_FAULT_INTERNAL);
    /* the row: placed, owned, sized, listed */
    char owner[64], addr[128], rs[16];
    assert_int_equal(ald_store_session_owner(st, "s_3", "alice", owner, addr, rs), 0);
    assert_string_equal(owner, "n1");
    assert_string_equal(addr, "10.0.0.1:7071");
    assert_string_equal(rs, "placed");
    json_t *live = NULL;
    assert_int_equal(ald_store_session_live_on(st, "n3", &live), 0);
    assert_int_equal(json_array_size(live), 2);
    json_decref(live);
    assert_int_equal(ald_store_session_live(st, &live), 0); /* single machine: none */
    assert_int_equal(json_array_size(live), 0);
    json_decref(live);
    assert_int_equal(node_sessions(st, "n1"), 1);

    /* draining and down nodes are skipped, as are silent ones */
    assert_int_equal(ald_store_node_set_state(st, "n2", "draining"), 0);
    sql(st, "UPDATE nodes SET state = 'down' WHERE id = 'n3'");
    assert_int_equal(place(st, "s_5", "alice", NULL, NULL, node, &f), 0);
    assert_string_equal(node, "n1");
    assert_int_equal(place(st, "s_6", "alice", "n2", NULL, node, &f), AL_EAGAIN);
    assert_string_equal(f.message, "no node has room (0 up, 0 full)");
    /* n1 is full now (2 sessions) */
    assert_int_equal(place(st, "s_7", "alice", NULL, NULL, node, &f), AL_EAGAIN);
    assert_string_equal(f.code, "unavailable");
    assert_string_equal(f.message, "no node has room (1 up, 1 full)");
    assert_int_equal(ald_store_node_set_state(st, "n2", "up"), 0);
    sql(st, "UPDATE nodes SET heartbeat_ms = heartbeat_ms - 120000 WHERE id = 'n2'");
    assert_int_equal(place(st, "s_7", "alice", NULL, NULL, node, &f), AL_EAGAIN);
    sql(st, "UPDATE nodes SET heartbeat_ms = heartbeat_ms + 120000 WHERE id = 'n2'");
    assert_int_equal(place(st, "s_7", "alice", NULL, NULL, node, &f), 0);
    assert_string_equal(node, "n2");

    /* memory capacity */
    struct ald_place_req q = req_make("s_big", "alice", 9950);
    struct ald_place_out o;
    assert_int_equal(ald_store_place(st, &q, &o, &f), AL_EAGAIN); /* n2 has 2*100 */
    req_free(&q);

    /* quotas: sessions and memory (core/session.c's texts) */
    q = req_make("s_q1", "bob", 600);
    q.max_sessions = 1;
    assert_int_equal(ald_store_place(st, &q, &o, &f), 0);
    req_free(&q);
    q = req_make("s_q2", "bob", 100);
    q.max_sessions = 1;
    assert_int_equal(ald_store_place(st, &q, &o, &f), AL_EPERM);
    assert_int_equal(f.kind, ALD_FAULT_QUOTA);
    assert_string_equal(f.code, "quota_exceeded");
    assert_string_equal(f.message, "user bob has 1 sessions (quota 1)");
    q.max_sessions = 5;
    q.max_memory_mb = 650;
    assert_int_equal(ald_store_place(st, &q, &o, &f), AL_EPERM);
    assert_string_equal(f.field, "limits.memory_mb");
    assert_string_equal(f.message, "user bob would use 700 MiB (quota 650 MiB)");
    q.max_memory_mb = 700;
    assert_int_equal(ald_store_place(st, &q, &o, &f), 0);
    req_free(&q);

    /* place_fail: only a placed row; it frees its quota */
    assert_int_equal(ald_store_place_fail(st, "s_q1", "create-failed: node n2 unreachable"), 0);
    assert_int_equal(ald_store_place_fail(st, "s_q1", "again"), AL_ENOTFOUND);
    json_t *pub = NULL;
    assert_int_equal(ald_store_session_get(st, "s_q1", "bob", &pub, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(pub, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(pub, "end_reason")),
                        "create-failed: node n2 unreachable");
    assert_non_null(json_string_value(json_object_get(pub, "ended_at")));
    json_decref(pub);
    ald_store_close(st);
}

static void test_place_branch(void **state)
{
    (void)state;
    struct ald_store *st = open_store(2);
    add_node(st, "n1", 50, 100000);
    struct ald_fault f;
    struct ald_place_out o;
    struct ald_place_req q = req_make("s_b1", "alice", 100);
    q.repo = "https://github.com/Acme/App";
    q.branch = "airlock/feature";
    json_object_set_new(q.pub, "repo", json_string(q.repo));
    json_object_set_new(q.pub, "branch", json_string(q.branch));
    assert_int_equal(ald_store_place(st, &q, &o, &f), 0);
    req_free(&q);
    /* the same repository (another spelling), a colliding branch, another user */
    const char *clashing[] = {"airlock/feature", "airlock/feature/x", "airlock"};
    for (int i = 0; i < 3; i++) {
        q = req_make("s_b2", "bob", 100);
        q.repo = "https://github.com/acme/app.git";
        q.branch = clashing[i];
        assert_int_equal(ald_store_place(st, &q, &o, &f), AL_EEXISTS);
        assert_int_equal(f.kind, ALD_FAULT_CONFLICT);
        assert_string_equal(f.field, "branch");
        req_free(&q);
    }
    /* another repository, or another branch: fine */
    q = req_make("s_b3", "bob", 100);
    q.repo = "https://github.com/acme/other";
    q.branch = "airlock/feature";
    json_object_set_new(q.pub, "repo", json_string(q.repo));
    json_object_set_new(q.pub, "branch", json_string(q.branch));
    assert_int_equal(ald_store_place(st, &q, &o, &f), 0);
    req_free(&q);
    q = req_make("s_b4", "bob", 100);
    q.repo = "https://github.com/acme/app";
    q.branch = "airlock/feature2";
    assert_int_equal(ald_store_place(st, &q, &o, &f), 0);
    req_free(&q);
    /* a failed create frees its branch */
    assert_int_equal(ald_store_place_fail(st, "s_b1", "create-failed: test"), 0);
    q = req_make("s_b5", "bob", 100);
    q.repo = "https://github.com/acme/app";
    q.branch = "airlock/feature";
    assert_int_equal(ald_store_place(st, &q, &o, &f), 0);
    req_free(&q);
    ald_store_close(st);
}

/* ---- concurrency -------------------------------------------------------- */

#define THREADS 20
#define EACH    20

struct placer {
    struct ald_store *st; /* NULL: open one of its own (SQLite) */
    int t;
    const char *user; /* NULL: one per thread */
    int64_t max_sessions, max_memory_mb;
    int ok, full, quota, other;
};

static void *placer_main(void *arg)
{
    struct placer *p = arg;
    struct ald_store *st = p->st ? p->st : open_store(1);
    char user[32], id[64];
    snprintf(user, sizeof(user), "u%d", p->t);
    for (int i = 0; i < EACH; i++) {
        snprintf(id, sizeof(id), "s_%s_t%d_%d", p->user ? p->user : "x", p->t, i);
        struct ald_place_req q = req_make(id, p->user ? p->user : user, 100);
        q.max_sessions = p->max_sessions;
        q.max_memory_mb = p->max_memory_mb;
        struct ald_place_out o;
        struct ald_fault f;
        int err = ald_store_place(st, &q, &o, &f);
        if (err == 0)
            p->ok++;
        else if (err == AL_EAGAIN && strncmp(f.message, "no node has room", 16) == 0)
            p->full++;
        else if (err == AL_EPERM)
            p->quota++;
        else
            p->other++;
        req_free(&q);
    }
    if (!p->st)
        ald_store_close(st);
    return NULL;
}

/* THREADS x EACH placements at once; the totals into *sum. */
static void run_placers(struct ald_store *shared, const char *user, int64_t max_s, int64_t max_m,
                        struct placer *sum)
{
    struct placer p[THREADS];
    pthread_t th[THREADS];
    memset(sum, 0, sizeof(*sum));
    for (int t = 0; t < THREADS; t++) {
        p[t] = (struct placer){
            .st = shared, .t = t, .user = user, .max_sessions = max_s, .max_memory_mb = max_m};
        assert_int_equal(pthread_create(&th[t], NULL, placer_main, &p[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        sum->ok += p[t].ok;
        sum->full += p[t].full;
        sum->quota += p[t].quota;
        sum->other += p[t].other;
    }
}

/* PostgreSQL: one store with a pool as large as the threads (each placement
 * on its own connection at once); SQLite: a connection per thread. */
static struct ald_store *shared_store(void)
{
    return t_pg() ? open_store(THREADS) : NULL;
}

static void test_place_concurrent_capacity(void **state)
{
    (void)state;
    struct ald_store *st = open_store(2);
    add_node(st, "n1", 37, 1000000);
    add_node(st, "n2", 23, 1000000);
    add_node(st, "n3", 11, 1000000);
    struct ald_store *shared = shared_store();
    struct placer sum;
    run_placers(shared, NULL, -1, -1, &sum);
    ald_store_close(shared);
    /* never more than a node's capacity; every refusal is "no room" */
    assert_int_equal(node_sessions(st, "n1"), 37);
    assert_int_equal(node_sessions(st, "n2"), 23);
    assert_int_equal(node_sessions(st, "n3"), 11);
    assert_int_equal(sum.ok, 37 + 23 + 11);
    assert_int_equal(sum.full, THREADS * EACH - sum.ok);
    assert_int_equal(sum.other, 0);
    ald_store_close(st);
}

static void test_place_concurrent_quota(void **state)
{
    (void)state;
    struct ald_store *st = open_store(2);
    add_node(st, "n1", 1000, 1000000);
    add_node(st, "n2", 1000, 1000000);
    struct ald_store *shared = shared_store();
    struct placer sum;
    /* one user, 13 sessions */
    run_placers(shared, "carol", 13, -1, &sum);
    assert_int_equal(sum.ok, 13);
    assert_int_equal(sum.quota, THREADS * EACH - 13);
    assert_int_equal(sum.other, 0);
    /* one user, 1700 MiB at 100 each: 17 sessions (plus nothing of carol's) */
    run_placers(shared, "dave", -1, 1700, &sum);
    assert_int_equal(sum.ok, 17);
    assert_int_equal(sum.other, 0);
    ald_store_close(shared);
    assert_int_equal(node_sessions(st, "n1") + node_sessions(st, "n2"), 13 + 17);
    ald_store_close(st);
}

/* ---- failure: the sweep, lost sessions, fenced writes ------------------- */

static json_t *session_pub(const char *id, const char *user, const char *state)
{
    return json_pack("{s:s, s:s, s:s, s:{s:I, s:f}}", "id", id, "user", user, "state", state,
                     "limits", "memory_mb", (json_int_t)256, "cpu", 1.5);
}

static void test_fenced_put(void **state)
{
    (void)state;
    struct ald_store *st = open_store(2);
    add_node(st, "n1", 10, 100000);
    add_node(st, "n2", 10, 100000);
    struct ald_fault f;
    char node[64];
    assert_int_equal(place(st, "s_f1", "alice", "n1", NULL, node, &f), 0);
    /* the owner's first write updates the placed row; size from limits */
    json_t *pub = session_pub("s_f1", "alice", "creating");
    json_t *priv = json_pack("{s:s}", "node", "n1");
    assert_int_equal(ald_store_session_put(st, pub, priv), 0);
    json_object_set_new(pub, "state", json_string("ready"));
    assert_int_equal(ald_store_session_put(st, pub, priv), 0);
    static const struct ald_sql q_size = {
        "SELECT memory_mb * 10000 + cpu_m FROM sessions WHERE id = $1", NULL};
    assert_int_equal(t_count(t_db_path, &q_size, "s_f1"), 256 * 10000 + 1500);
    /* another node may not write it */
    json_t *other = json_pack("{s:s}", "node", "n2");
    assert_int_equal(ald_store_session_put(st, pub, other), AL_ESTALE);
    /* nor a single machine (no node) */
    json_t *none = json_object();
    assert_int_equal(ald_store_session_put(st, pub, none), AL_ESTALE);
    /* a row a node makes itself (not placed) is inserted */
    json_t *pub2 = session_pub("s_f2", "alice", "creating");
    assert_int_equal(ald_store_session_put(st, pub2, priv), 0);
    char owner[64], addr[128], rs[16];
    assert_int_equal(ald_store_session_owner(st, "s_f2", NULL, owner, addr, rs), 0);
    assert_string_equal(owner, "n1");
    /* once lost, not even the owner */
    sql(st, "UPDATE sessions SET state = 'lost' WHERE id = 's_f1'");
    assert_int_equal(ald_store_session_put(st, pub, priv), AL_ESTALE);
    json_t *got = NULL;
    assert_int_equal(ald_store_session_get(st, "s_f1", NULL, &got, NULL), 0);
    json_decref(got);
    assert_int_equal(ald_store_session_owner(st, "s_f1", NULL, owner, addr, rs), 0);
    assert_string_equal(rs, "lost");

    /* single machine: the upsert as before */
    json_t *pub3 = session_pub("s_f3", "bob", "creating");
    assert_int_equal(ald_store_session_put(st, pub3, none), 0);
    json_object_set_new(pub3, "state", json_string("ready"));
    assert_int_equal(ald_store_session_put(st, pub3, none), 0);
    json_t *live = NULL;
    assert_int_equal(ald_store_session_live(st, &live), 0);
    assert_int_equal(json_array_size(live), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_array_get(live, 0), 0), "state")),
        "ready");
    json_decref(live);
    assert_int_equal(ald_store_session_live_on(st, "n1", &live), 0);
    assert_int_equal(json_array_size(live), 1); /* s_f2 */
    json_decref(live);
    json_t *counts = NULL;
    assert_int_equal(ald_store_session_counts(st, &counts), 0);
    assert_int_equal(json_integer_value(json_object_get(counts, "lost")), 1);
    json_decref(counts);

    /* session_rows */
    const char *ids[] = {"s_f1", "s_f3", "s_nope"};
    json_t *rows = NULL;
    assert_int_equal(ald_store_session_rows(st, ids, 3, &rows), 0);
    assert_int_equal(json_object_size(rows), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(rows, "s_f1"), "state")),
                        "lost");
    assert_string_equal(json_string_value(json_object_get(json_object_get(rows, "s_f1"), "node")),
                        "n1");
    assert_true(json_is_null(json_object_get(json_object_get(rows, "s_f3"), "node")));
    json_decref(rows);

    json_decref(pub);
    json_decref(pub2);
    json_decref(pub3);
    json_decref(priv);
    json_decref(other);
    json_decref(none);
    ald_store_close(st);
}

static void test_sweep(void **state)
{
    (void)state;
    struct ald_store *st = open_store(2);
    add_node(st, "n1", 10, 100000);
    add_node(st, "n2", 10, 100000);
    add_node(st, "n3", 10, 100000);
    struct ald_fault f;
    char node[64];
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "s_w%d", i);
        assert_int_equal(place(st, id, "alice", "n2", NULL, node, &f), 0);
    }
    assert_int_equal(place(st, "s_w9", "alice", "n3", NULL, node, &f), 0);
    /* s_w0 is ready with a sandbox record; s_w1 already ended */
    json_t *pub = session_pub("s_w0", "alice", "ready");
    json_t *priv = json_pack("{s:s, s:{s:i}}", "node", "n2", "record", "init_pid", 42);
    assert_int_equal(ald_store_session_put(st, pub, priv), 0);
    json_t *pub1 = session_pub("s_w1", "alice", "deleted");
    assert_int_equal(ald_store_session_put(st, pub1, priv), 0);
    /* a running job of n2 */
    sql(st, "INSERT INTO jobs(id, \"user\", state, pub, priv, node) VALUES"
            " ('j_1', 'alice', 'running', '{\"id\":\"j_1\"}', '{}', 'n2'),"
            " ('j_2', 'alice', 'running', '{\"id\":\"j_2\"}', '{}', 'n3')");

    /* n2 and n1 (the sweeper itself) are silent; n3 is not */
    sql(st, "UPDATE nodes SET heartbeat_ms = heartbeat_ms - 30000 WHERE id IN ('n1', 'n2')");
    json_t *lost = NULL;
    assert_int_equal(ald_store_node_sweep(st, "n1", 10000, &lost), 0);
    assert_int_equal(json_array_size(lost), 1);
    json_t *e = json_array_get(lost, 0);
    assert_string_equal(json_string_value(json_object_get(e, "node")), "n2");
    const char *reason = json_string_value(json_object_get(e, "reason"));
    assert_string_equal(reason, "node-down: n2: no heartbeat for 30 s");
    assert_int_equal(json_array_size(json_object_get(e, "sessions")), 2); /* s_w0, s_w2 */
    json_t *jobs = json_object_get(e, "jobs");
    assert_int_equal(json_array_size(jobs), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(jobs, 0), "pub"), "id")),
        "j_1");
    json_t *lp = json_object_get(json_array_get(json_object_get(e, "sessions"), 0), "pub");
    assert_string_equal(json_string_value(json_object_get(lp, "state")), "lost");
    assert_string_equal(json_string_value(json_object_get(lp, "end_reason")), reason);
    json_decref(lost);
    /* reported once */
    assert_int_equal(ald_store_node_sweep(st, "n1", 10000, &lost), 0);
    assert_int_equal(json_array_size(lost), 0);
    json_decref(lost);

    /* the rows */
    json_t *got = NULL, *gpriv = NULL;
    assert_int_equal(ald_store_session_get(st, "s_w0", NULL, &got, &gpriv), 0);
    assert_string_equal(json_string_value(json_object_get(got, "state")), "lost");
    assert_true(json_integer_value(json_object_get(gpriv, "ended_ms")) > 1700000000000LL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(gpriv, "record"), "init_pid")), 42);
    json_decref(got);
    json_decref(gpriv);
    assert_int_equal(ald_store_session_get(st, "s_w1", NULL, &got, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(got, "state")), "deleted");
    json_decref(got);
    char s[16];
    assert_int_equal(ald_store_node_heartbeat(st, "n2", 1, s), AL_ESTALE);
    assert_int_equal(ald_store_node_heartbeat(st, "n1", 1, s), 0);
    /* n2's process comes back: its rows are fenced, its gone rows listed */
    json_object_set_new(pub, "state", json_string("ready"));
    assert_int_equal(ald_store_session_put(st, pub, priv), AL_ESTALE);
    json_t *live = NULL;
    assert_int_equal(ald_store_session_live_on(st, "n2", &live), 0);
    assert_int_equal(json_array_size(live), 0);
    json_decref(live);
    json_t *gone = NULL;
    assert_int_equal(ald_store_session_gone_on(st, "n2", &gone), 0);
    assert_int_equal(json_array_size(gone), 1); /* s_w0: lost, with a record (s_w1: no ended_ms) */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(gone, 0), "pub"), "id")),
        "s_w0");
    json_decref(gone);
    json_decref(pub);
    json_decref(pub1);
    json_decref(priv);
    ald_store_close(st);
}

struct sweeper {
    struct ald_store *st;
    const char *self;
    json_t *lost;
    int err;
};

static void *sweeper_main(void *arg)
{
    struct sweeper *w = arg;
    w->err = ald_store_node_sweep(w->st, w->self, 10000, &w->lost);
    return NULL;
}

/* Two sweepers at once (two nodes, each on its own connection): every
 * down node and every lost session is reported by exactly one. */
static void test_sweep_concurrent(void **state)
{
    (void)state;
    struct ald_store *st = open_store(2);
    enum { NODES = 8, PER = 6 };
    add_node(st, "na", 1000, 1000000);
    add_node(st, "nb", 1000, 1000000);
    struct ald_fault f;
    for (int n = 0; n < NODES; n++) {
        char id[16];
        snprintf(id, sizeof(id), "n%d", n);
        add_node(st, id, 1000, 1000000);
        for (int i = 0; i < PER; i++) {
            char sid[32];
            snprintf(sid, sizeof(sid), "s_%d_%d", n, i);
            assert_int_equal(place(st, sid, "alice", id, NULL, NULL, &f), 0);
        }
    }
    sql(st, "UPDATE nodes SET heartbeat_ms = heartbeat_ms - 30000 WHERE id NOT IN ('na', 'nb')");
    struct sweeper w[2] = {{.st = open_store(2), .self = "na"},
                           {.st = open_store(2), .self = "nb"}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, sweeper_main, &w[i]), 0);
    json_t *seen = json_object();
    int nodes = 0;
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].err, 0);
        size_t k, j;
        json_t *e, *s;
        json_array_foreach(w[i].lost, k, e)
        {
            nodes++;
            json_array_foreach(json_object_get(e, "sessions"), j, s)
            {
                const char *sid = json_string_value(json_object_get(s, "id"));
                assert_null(json_object_get(seen, sid)); /* never twice */
                json_object_set_new(seen, sid, json_true());
            }
        }
        json_decref(w[i].lost);
        ald_store_close(w[i].st);
    }
    assert_int_equal(nodes, NODES);
    assert_int_equal(json_object_size(seen), NODES * PER);
    json_decref(seen);
    ald_store_close(st);
}

/* ---- jobs: the claim -------------------------------------------------- */

static struct ald_jobstore *open_jobs(void)
{
    struct ald_db *d = t_db_pool(t_db_path, 2, 20000);
    struct ald_jobstore *js = NULL;
    if (d)
        ald_jobstore_open_db(&js, d);
    ald_db_unref(d);
    assert_non_null(js);
    return js;
}

static void queue_job(struct ald_jobstore *js, const char *id, const char *user)
{
    json_t *pub = json_pack("{s:s, s:s, s:s}", "id", id, "user", user, "state", "queued");
    json_t *priv = json_pack("{s:s}", "cmd", "true");
    assert_int_equal(ald_jobstore_put(js, pub, priv), 0);
    json_decref(pub);
    json_decref(priv);
}

/* The running jobs of `user` in the whole table. */
static long long running_of(const char *user)
{
    static const struct ald_sql q = {
        "SELECT count(*) FROM jobs WHERE state = 'running' AND \"user\" = $1", NULL};
    return t_count(t_pg() ? NULL : t_db_path, &q, user);
}

static void test_jobs_claim(void **state)
{
    (void)state;
    struct ald_jobstore *js = open_jobs();
    char id[32];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "j_a%d", i);
        queue_job(js, id, "a");
        snprintf(id, sizeof(id), "j_b%d", i);
        queue_job(js, id, "b");
    }
    json_t *got = NULL;
    assert_int_equal(ald_jobstore_claim(js, "n1", 0, 2, &got), 0);
    assert_int_equal(json_array_size(got), 0);
    json_decref(got);
    /* oldest first: a0 b0 a1 b1, then a and b are at their cap of 2 */
    assert_int_equal(ald_jobstore_claim(js, "n1", 10, 2, &got), 0);
    assert_int_equal(json_array_size(got), 4);
    json_t *p0 = json_object_get(json_array_get(got, 0), "pub");
    assert_string_equal(json_string_value(json_object_get(p0, "id")), "j_a0");
    assert_string_equal(json_string_value(json_object_get(p0, "state")), "running");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(got, 0), "priv"), "cmd")),
        "true");
    json_decref(got);
    /* the cap is cluster-wide: another node takes nothing more */
    assert_int_equal(ald_jobstore_claim(js, "n2", 10, 2, &got), 0);
    assert_int_equal(json_array_size(got), 0);
    json_decref(got);
    assert_int_equal(ald_jobstore_claim(js, "n2", 1, 3, &got), 0);
    assert_int_equal(json_array_size(got), 1);
    json_decref(got);
    json_t *mine = NULL;
    assert_int_equal(ald_jobstore_running_on(js, "n1", &mine), 0);
    assert_int_equal(json_array_size(mine), 4);
    json_decref(mine);
    assert_int_equal(ald_jobstore_running_on(js, "n2", &mine), 0);
    assert_int_equal(json_array_size(mine), 1);
    json_decref(mine);
    assert_int_equal(ald_jobstore_running_on(js, NULL, &mine), 0);
    assert_int_equal(json_array_size(mine), 0);
    json_decref(mine);
    /* a single machine's running job (no node) */
    json_t *pub = json_pack("{s:s, s:s, s:s}", "id", "j_local", "user", "c", "state", "running");
    assert_int_equal(ald_jobstore_put(js, pub, NULL), 0);
    json_decref(pub);
    assert_int_equal(ald_jobstore_running_on(js, NULL, &mine), 0);
    assert_int_equal(json_array_size(mine), 1);
    json_decref(mine);
    ald_jobstore_close(js);
}

struct claimer {
    const char *node;
    unsigned cap;
    json_t *ids; /* claimed job ids */
    int err;
};

static void *claimer_main(void *arg)
{
    struct claimer *c = arg;
    struct ald_jobstore *js = open_jobs();
    for (int misses = 0; misses < 5 && c->err == 0;) {
        json_t *got = NULL, *one;
        size_t i;
        c->err = ald_jobstore_claim(js, c->node, 1, c->cap, &got);
        misses = json_array_size(got) ? 0 : misses + 1;
        json_array_foreach(got, i, one)
        {
            json_array_append(c->ids, json_object_get(json_object_get(one, "pub"), "id"));
        }
        json_decref(got);
    }
    ald_jobstore_close(js);
    return NULL;
}

/* Eight nodes claim at once, one job per claim, `jobs` jobs of each of
 * `users` users queued one user after another (so that claimers meet on
 * the same users): no job is taken twice, and every user ends with
 * min(cap, jobs) running in the cluster, never more. */
static void claim_race(int users, int jobs, unsigned cap)
{
    enum { CLAIMERS = 8 };
    struct ald_jobstore *js = open_jobs();
    char id[32], user[16];
    for (int u = 0; u < users; u++)
        for (int i = 0; i < jobs; i++) {
            snprintf(id, sizeof(id), "j_%d_%d", u, i);
            snprintf(user, sizeof(user), "u%d", u);
            queue_job(js, id, user);
        }
    struct claimer c[CLAIMERS];
    pthread_t th[CLAIMERS];
    char nodes[CLAIMERS][8];
    for (int i = 0; i < CLAIMERS; i++) {
        snprintf(nodes[i], sizeof(nodes[i]), "n%d", i);
        c[i] = (struct claimer){.node = nodes[i], .cap = cap, .ids = json_array()};
        assert_int_equal(pthread_create(&th[i], NULL, claimer_main, &c[i]), 0);
    }
    json_t *seen = json_object();
    for (int i = 0; i < CLAIMERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].err, 0);
        size_t k;
        json_t *v;
        json_array_foreach(c[i].ids, k, v)
        {
            assert_null(json_object_get(seen, json_string_value(v))); /* never twice */
            json_object_set_new(seen, json_string_value(v), json_true());
        }
        json_decref(c[i].ids);
    }
    long long each = (long long)cap < jobs ? (long long)cap : jobs;
    for (int u = 0; u < users; u++) {
        snprintf(user, sizeof(user), "u%d", u);
        assert_int_equal(running_of(user), each);
    }
    assert_int_equal(json_object_size(seen), users * each);
    json_decref(seen);
    ald_jobstore_close(js);
}

static void test_jobs_claim_cap_concurrent(void **state)
{
    (void)state;
    claim_race(40, 3, 1);
}

static void test_jobs_claim_once_concurrent(void **state)
{
    (void)state;
    claim_race(3, 40, 1000);
}

/* ---- webhooks: the lease ---------------------------------------------- */

static struct ald_whstore *open_wh(void)
{
    struct ald_db *d = t_db_pool(t_db_path, 2, 20000);
    struct ald_whstore *wh = NULL;
    if (d)
        ald_whstore_open_db(&wh, d);
    ald_db_unref(d);
    assert_non_null(wh);
    return wh;
}

static void add_delivery(struct ald_whstore *wh, int i, uint64_t created_ms)
{
    char id[32];
    snprintf(id, sizeof(id), "d_%020d", i);
    struct ald_webhook_item it = {.id = id,
                                  .user = "alice",
                                  .subject = "s_1",
                                  .event = "session.ended",
                                  .url = "https://example.com/hook",
                                  .body = "{}",
                                  .body_len = 2,
                                  .created_ms = created_ms};
    assert_int_equal(ald_whstore_insert(wh, &it, "alks1.SEALED"), 0);
}

static void test_webhook_lease(void **state)
{
    (void)state;
    struct ald_whstore *wh = open_wh();
    add_delivery(wh, 1, 1000);
    add_delivery(wh, 2, 2000);
    add_delivery(wh, 3, 4102444800000ULL); /* due in 2100 */
    json_t *r1 = NULL, *r2 = NULL, *r3 = NULL;
    assert_int_equal(ald_whstore_claim(wh, "n1", 60000, &r1), 0);
    assert_int_equal(ald_whstore_claim(wh, "n2", 60000, &r2), 0);
    assert_int_equal(ald_whstore_claim(wh, "n2", 60000, &r3), 0);
    assert_non_null(r1);
    assert_non_null(r2);
    assert_null(r3); /* the rest is leased or not due */
    assert_string_equal(json_string_value(json_object_get(r1, "id")), "d_00000000000000000001");
    assert_string_equal(json_string_value(json_object_get(r2, "id")), "d_00000000000000000002");
    assert_string_equal(json_string_value(json_object_get(r1, "secret")), "alks1.SEALED");
    assert_true(json_integer_value(json_object_get(r1, "lease_until")) > 1700000000000LL);
    /* n2's lease runs out (n2 died): n1 claims it again, n2's late attempt
     * is refused, n1's recorded */
    struct ald_db *d = t_db(t_pg() ? NULL : t_db_path);
    assert_int_equal(ald_db_script(d, "UPDATE webhook_deliveries SET lease_until = lease_until"
                                      " - 120000 WHERE id = 'd_00000000000000000002'"),
                     0);
    ald_db_unref(d);
    json_t *again = NULL;
    assert_int_equal(ald_whstore_claim(wh, "n1", 60000, &again), 0);
    assert_non_null(again);
    assert_string_equal(json_string_value(json_object_get(again, "id")), "d_00000000000000000002");
    assert_int_equal(ald_whstore_attempt_leased(wh, "n2", "d_00000000000000000002", 200, "",
                                                "delivered", 0, 5000),
                     AL_ESTALE);
    assert_int_equal(ald_whstore_attempt_leased(wh, "n1", "d_00000000000000000002", 500, "boom",
                                                "pending", 3000, 0),
                     0);
    /* the attempt dropped the lease: due again (next_ms 3000), claimable */
    json_t *after = NULL;
    assert_int_equal(ald_whstore_claim(wh, "n2", 60000, &after), 0);
    assert_non_null(after);
    assert_int_equal(json_integer_value(json_object_get(after, "attempts")), 1);
    /* one machine's attempt works as before, and drops a lease too */
    assert_int_equal(
        ald_whstore_attempt(wh, "d_00000000000000000002", 200, "", "delivered", 0, 6000), 0);
    assert_int_equal(ald_whstore_attempt(wh, "d_nope", 200, "", "delivered", 0, 6000),
                     AL_ENOTFOUND);
    json_decref(r1);
    json_decref(r2);
    json_decref(again);
    json_decref(after);
    ald_whstore_close(wh);
}

struct leaser {
    const char *node;
    json_t *ids;
    int err;
};

static void *leaser_main(void *arg)
{
    struct leaser *l = arg;
    struct ald_whstore *wh = open_wh();
    for (int misses = 0; misses < 3 && l->err == 0;) {
        json_t *row = NULL;
        l->err = ald_whstore_claim(wh, l->node, 600000, &row);
        if (row)
            json_array_append(l->ids, json_object_get(row, "id"));
        else
            misses++;
        json_decref(row);
    }
    ald_whstore_close(wh);
    return NULL;
}

/* Four senders at once: every due delivery is leased exactly once. */
static void test_webhook_lease_concurrent(void **state)
{
    (void)state;
    struct ald_whstore *wh = open_wh();
    enum { N = 60 };
    for (int i = 0; i < N; i++)
        add_delivery(wh, i, 1000 + (uint64_t)i);
    struct leaser l[4] = {{.node = "n1"}, {.node = "n2"}, {.node = "n3"}, {.node = "n4"}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        l[i].ids = json_array();
        assert_int_equal(pthread_create(&th[i], NULL, leaser_main, &l[i]), 0);
    }
    json_t *seen = json_object();
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(l[i].err, 0);
        size_t k;
        json_t *v;
        json_array_foreach(l[i].ids, k, v)
        {
            assert_null(json_object_get(seen, json_string_value(v))); /* never twice */
            json_object_set_new(seen, json_string_value(v), json_true());
        }
        json_decref(l[i].ids);
    }
    assert_int_equal(json_object_size(seen), N);
    json_decref(seen);
    ald_whstore_close(wh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_heartbeat, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_meta_approvals_creds, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_place_rules, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_place_branch, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_place_concurrent_capacity, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_place_concurrent_quota, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_fenced_put, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_sweep, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_sweep_concurrent, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_claim, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_claim_cap_concurrent, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_claim_once_concurrent, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_webhook_lease, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_webhook_lease_concurrent, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
