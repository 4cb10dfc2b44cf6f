/* core/cluster.c: the heartbeat streak rule (no down sweep until this
 * node's own heartbeats have been unbroken for down_after_ms), the capacity
 * defaults (MemTotal - 1 GiB, the online CPUs), and the heartbeat thread
 * against a fake store: a database outage does not let the first beat
 * after it sweep, a fenced heartbeat makes the node check its sessions and
 * register again, and mismatched key check values stop the start. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "airlockd/core/cluster.h"
#include "airlockd/core/config.h"
#include "airlockd/core/daemon.h"

#include "airlock/error.h"

/* ---- the streak rule ---- */

static void test_streak(void **state)
{
    (void)state;
    struct ald_cluster_streak s = {0, 0};
    /* down_after 3000: unbroken beats every 500 ms sweep from 3000 ms on */
    assert_int_equal(ald_cluster_streak_beat(&s, 10000, 1, 3000), 0);
    assert_int_equal(ald_cluster_streak_beat(&s, 10500, 1, 3000), 0);
    assert_int_equal(ald_cluster_streak_beat(&s, 12500, 1, 3000), 0); /* gap 2000 > 1500 */
    assert_int_equal(s.since, 12500);
    for (uint64_t t = 13000; t < 15500; t += 500)
        assert_int_equal(ald_cluster_streak_beat(&s, t, 1, 3000), 0);
    assert_int_equal(ald_cluster_streak_beat(&s, 15500, 1, 3000), 1);
    assert_int_equal(ald_cluster_streak_beat(&s, 16000, 1, 3000), 1);
    /* a failed beat (the database is down) breaks it: no sweep at once after */
    assert_int_equal(ald_cluster_streak_beat(&s, 16500, 0, 3000), 0);
    assert_int_equal(s.since, 0);
    assert_int_equal(ald_cluster_streak_beat(&s, 26500, 1, 3000), 0);
    assert_int_equal(ald_cluster_streak_beat(&s, 27000, 1, 3000), 0);
    assert_int_equal(ald_cluster_streak_beat(&s, 28500, 1, 3000), 0); /* gap 1500: kept */
    assert_int_equal(ald_cluster_streak_beat(&s, 29000, 1, 3000), 0);
    assert_int_equal(ald_cluster_streak_beat(&s, 29500, 1, 3000), 1);
}

/* ---- capacity ---- */

static void test_caps(void **state)
{
    (void)state;
    struct ald_cluster_config k = {.cap_sessions = 12};
    struct ald_node_caps c;
    const char *mi = "MemFree:        1000 kB\nMemTotal:        8388608 kB\nSwapTotal: 0 kB\n";
    assert_int_equal(ald_cluster_caps_default(&k, mi, strlen(mi), 6, &c), 0);
    assert_int_equal(c.sessions, 12);
    assert_int_equal(c.memory_mb, 8192 - 1024);
    assert_int_equal(c.cpu_m, 6000);
    /* configured values win */
    k.cap_memory_mb = 4096;
    k.cap_cpus = 2;
    assert_int_equal(ald_cluster_caps_default(&k, "", 0, 6, &c), 0);
    assert_int_equal(c.memory_mb, 4096);
    assert_int_equal(c.cpu_m, 2000);
    /* a small machine still has some room; no CPU count: one */
    k.cap_memory_mb = 0;
    k.cap_cpus = 0;
    const char *small = "MemTotal: 524288 kB\n";
    assert_int_equal(ald_cluster_caps_default(&k, small, strlen(small), -1, &c), 0);
    assert_int_equal(c.memory_mb, 256);
    assert_int_equal(c.cpu_m, 1000);
    /* malformed: no MemTotal at a line start, no digits, cut short */
    static const char *const bad[] = {"", "XMemTotal: 100 kB\n", "MemTotal: kB\n",
                                      "MemTotal:", "MemFree: 5 kB MemTotal: 9 kB"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(ald_cluster_caps_default(&k, bad[i], strlen(bad[i]), 1, &c), AL_EINVAL);
    /* the length bounds the read: the digits past n are not seen */
    const char *cut = "MemTotal: 2097152 kB\n";
    assert_int_equal(ald_cluster_caps_default(&k, cut, 14, 1, &c), 0);
    assert_int_equal(c.memory_mb, 256); /* 2097 kB */
}

/* ---- the heartbeat thread against a fake store ---- */

static pthread_mutex_t fk_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int db_down;       /* heartbeats answer AL_EAGAIN */
    int fence_once;    /* the next heartbeat answers AL_ESTALE */
    int ok_run;        /* successful heartbeats since the last failure */
    int min_run_sweep; /* the smallest ok_run a sweep happened at (since `armed`) */
    int armed;
    int sweeps, registers, beats, live_on, meta_bad;
    int wrong; /* a hook saw an argument it should not (checked by the tests: the
                  hooks run on the heartbeat thread, where cmocka cannot fail) */
    int64_t epoch;
} fk;

static int fk_meta_check(struct ald_store *st, const char *k, const char *v)
{
    (void)st, (void)v;
    pthread_mutex_lock(&fk_lock);
    int bad = fk.meta_bad && strcmp(k, "master_key_check") == 0;
    pthread_mutex_unlock(&fk_lock);
    return bad ? al_error_set(AL_EINVAL, "differs") : 0;
}

static int fk_register(struct ald_store *st, const char *id, const char *address,
                       const char *api_address, const char *version,
                       const struct ald_node_caps *caps, int64_t *epoch, char state[16])
{
    (void)st;
    pthread_mutex_lock(&fk_lock);
    if (strcmp(id, "n1") != 0 || strcmp(address, "127.0.0.1:7071") != 0 ||
        strcmp(api_address, "127.0.0.1:7070") != 0 || strcmp(version, "test") != 0 ||
        caps->sessions != 7 || caps->memory_mb != 2048 || caps->cpu_m != 3000)
        fk.wrong++;
    fk.registers++;
    *epoch = ++fk.epoch;
    pthread_mutex_unlock(&fk_lock);
    snprintf(state, 16, "up");
    return 0;
}

static int fk_heartbeat(struct ald_store *st, const char *id, int64_t epoch, char state[16])
{
    (void)st, (void)id;
    pthread_mutex_lock(&fk_lock);
    fk.beats++;
    int err = 0;
    if (fk.fence_once) {
        fk.fence_once = 0;
        err = AL_ESTALE;
    } else if (fk.db_down) {
        err = AL_EAGAIN;
    } else if (epoch != fk.epoch) {
        err = AL_ESTALE;
    }
    fk.ok_run = err == 0 ? fk.ok_run + 1 : 0;
    pthread_mutex_unlock(&fk_lock);
    snprintf(state, 16, "up");
    return err == 0 ? 0 : al_error_set(err, "fake heartbeat");
}

static int fk_sweep(struct ald_store *st, const char *self, int64_t down_after_ms, json_t **lost)
{
    (void)st, (void)self, (void)down_after_ms;
    pthread_mutex_lock(&fk_lock);
    fk.sweeps++;
    if (fk.armed && (fk.min_run_sweep == 0 || fk.ok_run < fk.min_run_sweep))
        fk.min_run_sweep = fk.ok_run;
    pthread_mutex_unlock(&fk_lock);
    *lost = json_array();
    return 0;
}

static int fk_list(struct ald_store *st, json_t **out)
{
    (void)st;
    *out = json_array();
    return 0;
}

static int fk_live_on(struct ald_store *st, const char *node, json_t **out)
{
    (void)st;
    pthread_mutex_lock(&fk_lock);
    fk.wrong += strcmp(node, "n1") != 0;
    fk.live_on++;
    pthread_mutex_unlock(&fk_lock);
    *out = json_array();
    return 0;
}

struct fixture {
    struct ald_config cfg;
    struct ald d;
    char dir[64];
};

static void write_key(const char *path, char fill)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 32; i++)
        fputc(fill, f);
    fclose(f);
}

static int setup(void **state)
{
    struct fixture *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    snprintf(x->dir, sizeof(x->dir), "/tmp/unit_cluster_core.XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    assert_int_equal(ald_config_init(&x->cfg), 0);
    struct ald_cluster_config *k = &x->cfg.cluster;
    k->enabled = 1;
    k->node_id = strdup("n1");
    k->listen = strdup("127.0.0.1:7071");
    k->heartbeat_ms = 40;
    k->down_after_ms = 240;
    k->cap_sessions = 7;
    k->cap_memory_mb = 2048;
    k->cap_cpus = 3;
    char path[128];
    snprintf(path, sizeof(path), "%s/cluster.key", x->dir);
    write_key(path, 'c');
    k->key_file = strdup(path);
    snprintf(path, sizeof(path), "%s/master.key", x->dir);
    write_key(path, 'm');
    x->cfg.px_master_key = strdup(path);
    free(x->cfg.listen);
    x->cfg.listen = strdup("127.0.0.1:7070");
    x->d.cfg = &x->cfg;
    pthread_mutex_init(&x->d.lock, NULL);
    pthread_cond_init(&x->d.cond, NULL);
    x->d.hooks.cluster.meta_check = fk_meta_check;
    x->d.hooks.cluster.node_register = fk_register;
    x->d.hooks.cluster.node_heartbeat = fk_heartbeat;
    x->d.hooks.cluster.node_sweep = fk_sweep;
    x->d.hooks.cluster.node_list = fk_list;
    x->d.hooks.cluster.session_live_on = fk_live_on;
    memset(&fk, 0, sizeof(fk));
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *x = *state;
    ald_cluster_stop(&x->d);
    char path[128];
    snprintf(path, sizeof(path), "%s/cluster.key", x->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/master.key", x->dir);
    unlink(path);
    rmdir(x->dir);
    ald_config_free(&x->cfg);
    pthread_mutex_destroy(&x->d.lock);
    pthread_cond_destroy(&x->d.cond);
    free(x);
    return 0;
}

/* Waits until cond() holds (polling every 10 ms); fails after 60 s (a
 * bound, not a timing assertion: the heartbeat is 40 ms). */
static void wait_for(int (*cond)(void))
{
    for (int i = 0; i < 6000; i++) {
        pthread_mutex_lock(&fk_lock);
        int ok = cond();
        pthread_mutex_unlock(&fk_lock);
        if (ok)
            return;
        usleep(10000);
    }
    fail_msg("the heartbeat thread never got there");
}

static int swept(void)
{
    return fk.sweeps > 0;
}
static int beats_failed(void)
{
    return fk.db_down && fk.beats >= 20;
}
static int swept_after(void)
{
    return fk.armed && fk.min_run_sweep > 0;
}
static int registered_twice(void)
{
    return fk.registers >= 2 && fk.live_on >= 1;
}

/* After an outage of the store, the first heartbeats that get through do
 * not sweep: only an unbroken streak of down_after_ms does (>= 3 beats at
 * gaps of at most down_after/2), so nodes that were as cut off as this one
 * are not marked down. Without the rule the first beat back sweeps. */
static void test_outage_no_early_sweep(void **state)
{
    struct fixture *x = *state;
    assert_int_equal(ald_cluster_start(&x->d, "test"), 0);
    assert_non_null(x->d.cluster);
    assert_int_equal(ald_cluster_state(&x->d), ALD_NODE_UP);
    assert_string_equal(ald_cluster_self(&x->d), "n1");
    wait_for(swept); /* a healthy node sweeps */
    pthread_mutex_lock(&fk_lock);
    fk.db_down = 1;
    fk.beats = 0;
    pthread_mutex_unlock(&fk_lock);
    wait_for(beats_failed); /* 20 failed beats: far past down_after */
    pthread_mutex_lock(&fk_lock);
    fk.db_down = 0;
    fk.armed = 1;
    pthread_mutex_unlock(&fk_lock);
    wait_for(swept_after);
    pthread_mutex_lock(&fk_lock);
    int run = fk.min_run_sweep;
    pthread_mutex_unlock(&fk_lock);
    assert_true(run >= 3);
    assert_int_equal(fk.wrong, 0);
    json_t *nodes = ald_cluster_nodes_cached(&x->d);
    assert_true(json_is_array(nodes));
    json_decref(nodes);
}

/* A heartbeat that finds its row given away (AL_ESTALE) fences the node:
 * it checks which sessions are still its own and registers again with a
 * new epoch. */
static void test_fence_reregisters(void **state)
{
    struct fixture *x = *state;
    assert_int_equal(ald_cluster_start(&x->d, "test"), 0);
    pthread_mutex_lock(&fk_lock);
    fk.fence_once = 1;
    pthread_mutex_unlock(&fk_lock);
    wait_for(registered_twice);
    pthread_mutex_lock(&fk_lock);
    assert_int_equal(fk.epoch, 2);
    assert_int_equal(fk.wrong, 0);
    pthread_mutex_unlock(&fk_lock);
}

/* A node with another master key is refused at start, saying which. */
static void test_key_mismatch(void **state)
{
    struct fixture *x = *state;
    fk.meta_bad = 1;
    assert_int_equal(ald_cluster_start(&x->d, "test"), AL_EINVAL);
    assert_null(x->d.cluster);
    assert_non_null(strstr(al_error_last(), "master key"));
    assert_non_null(strstr(al_error_last(), "differs from the one the cluster uses"));
    assert_int_equal(fk.registers, 0);
}

/* A single machine: nothing starts, no node id. */
static void test_single_machine(void **state)
{
    struct fixture *x = *state;
    x->cfg.cluster.enabled = 0;
    assert_int_equal(ald_cluster_start(&x->d, "test"), 0);
    assert_null(x->d.cluster);
    assert_null(ald_cluster_self(&x->d));
    assert_int_equal(ald_cluster_state(&x->d), ALD_NODE_UP);
    assert_null(ald_cluster_nodes_cached(&x->d));
    assert_int_equal(fk.registers, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streak),
        cmocka_unit_test(test_caps),
        cmocka_unit_test_setup_teardown(test_outage_no_early_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fence_reregisters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_machine, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
