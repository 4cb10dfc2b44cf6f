/* The jobs table (adapters/store_jobs.c): rows in and out, per-user
 * visibility, pages, states, a database shared with store.c, reopening. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "airlockd/adapters/store.h"
#include "airlockd/adapters/store_jobs.h"

#include "airlock/error.h"

#include "store_backend.h"

static json_t *job(const char *id, const char *user, const char *state)
{
    return json_pack("{s:s, s:s, s:s, s:n}", "id", id, "user", user, "state", state, "session");
}

static void put(struct ald_jobstore *st, const char *id, const char *user, const char *state)
{
    json_t *pub = job(id, user, state), *priv = json_pack("{s:s}", "secret", "x");
    assert_int_equal(ald_jobstore_put(st, pub, priv), 0);
    json_decref(pub);
    json_decref(priv);
}

static void test_put_get(void **state)
{
    (void)state;
    struct ald_jobstore *st;
    assert_int_equal(t_jobstore_open(&st, t_db_path), 0);
    put(st, "j_1", "alice", "queued");
    json_t *pub = NULL, *priv = NULL;
    assert_int_equal(ald_jobstore_get(st, "j_1", "alice", &pub, &priv), 0);
    assert_string_equal(json_string_value(json_object_get(pub, "state")), "queued");
    assert_string_equal(json_string_value(json_object_get(priv, "secret")), "x");
    json_decref(pub);
    json_decref(priv);
    /* another user's job is not found; NULL user: any */
    assert_int_equal(ald_jobstore_get(st, "j_1", "bob", &pub, &priv), AL_ENOTFOUND);
    assert_null(pub);
    assert_int_equal(ald_jobstore_get(st, "j_1", NULL, &pub, NULL), 0);
    json_decref(pub);
    assert_int_equal(ald_jobstore_get(st, "j_404", NULL, &pub, NULL), AL_ENOTFOUND);
    /* an update replaces the row (state too) */
    put(st, "j_1", "alice", "running");
    assert_int_equal(ald_jobstore_get(st, "j_1", NULL, &pub, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(pub, "state")), "running");
    json_decref(pub);
    /* a row without id, user or state is refused */
    json_t *bad = json_pack("{s:s, s:s}", "id", "j_2", "user", "alice");
    assert_int_equal(ald_jobstore_put(st, bad, NULL), AL_EINVAL);
    json_decref(bad);
    bad = json_pack("{s:i, s:s, s:s}", "id", 5, "user", "alice", "state", "queued");
    assert_int_equal(ald_jobstore_put(st, bad, NULL), AL_EINVAL);
    json_decref(bad);
    /* a NULL private part is stored as {} */
    json_t *p2 = job("j_3", "bob", "queued");
    assert_int_equal(ald_jobstore_put(st, p2, NULL), 0);
    json_decref(p2);
    assert_int_equal(ald_jobstore_get(st, "j_3", "bob", &pub, &priv), 0);
    assert_true(json_is_object(priv) && json_object_size(priv) == 0);
    json_decref(pub);
    json_decref(priv);
    ald_jobstore_close(st);
}

static void test_pages_states(void **state)
{
    (void)state;
    struct ald_jobstore *st;
    assert_int_equal(t_jobstore_open(&st, t_db_path), 0);
    char id[16];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "j_p%d", i);
        put(st, id, i % 2 ? "bob" : "carol", i < 3 ? "queued" : "succeeded");
    }
    json_t *arr = NULL;
    int64_t next = -1;
    assert_int_equal(ald_jobstore_page(st, "carol", NULL, 0, 2, &arr, &next), 0);
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "id")), "j_p0");
    assert_true(next > 0);
    json_decref(arr);
    assert_int_equal(ald_jobstore_page(st, "carol", NULL, next, 2, &arr, &next), 0);
    assert_int_equal(json_array_size(arr), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "id")), "j_p4");
    assert_int_equal(next, 0);
    json_decref(arr);
    assert_int_equal(ald_jobstore_page(st, "bob", "succeeded", 0, 50, &arr, &next), 0);
    assert_int_equal(json_array_size(arr), 1);
    json_decref(arr);
    /* an exact page: no next cursor */
    assert_int_equal(ald_jobstore_page(st, "carol", NULL, 0, 3, &arr, &next), 0);
    assert_int_equal(json_array_size(arr), 3);
    assert_int_equal(next, 0);
    json_decref(arr);
    /* a state no job has */
    assert_int_equal(ald_jobstore_page(st, NULL, "' OR 1=1 --", 0, 50, &arr, &next), 0);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    assert_int_equal(ald_jobstore_in_state(st, "queued", &arr), 0);
    /* oldest first, [pub, priv] pairs; j_1 is running, j_3 queued */
    size_t n = json_array_size(arr);
    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(arr, i);
        assert_int_equal(json_array_size(row), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(row, 0), "state")),
                            "queued");
    }
    json_decref(arr);
    ald_jobstore_close(st);
}

static void test_shared_database(void **state)
{
    (void)state;
    /* the jobs table beside store.c's schema, in one file, either opened
     * first; both connections at once */
    struct ald_store *main_st;
    struct ald_jobstore *st;
    assert_int_equal(t_store_open(&main_st, t_db_path), 0);
    assert_int_equal(t_jobstore_open(&st, t_db_path), 0);
    put(st, "j_shared", "dave", "queued");
    char sid[32], hash[72];
    assert_int_equal(ald_store_idem_claim(main_st, "dave", "job k", "h", "j_shared", 1, sid, hash),
                     0);
    ald_jobstore_close(st);
    ald_store_close(main_st);
    assert_int_equal(t_jobstore_open(&st, t_db_path), 0);
    json_t *pub = NULL;
    assert_int_equal(ald_jobstore_get(st, "j_shared", "dave", &pub, NULL), 0);
    json_decref(pub);
    ald_jobstore_close(st);
    assert_int_equal(t_store_open(&main_st, t_db_path), 0);
    ald_store_close(main_st);
    assert_true(ald_jobstore_open(&st, "/nonexistent-dir/x/airlockd.db") < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get),
        cmocka_unit_test(test_pages_states),
        cmocka_unit_test(test_shared_database),
    };
    return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
