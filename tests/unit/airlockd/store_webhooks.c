/* adapters/store_webhooks.c: the webhook outbox survives a reopen, hands
 * out the due delivery first, records attempts, lists without secrets. */
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
#include "airlockd/adapters/webhooks.h"

#include "airlock/error.h"

static char dir[] = "/var/tmp/airlockd-whstore-XXXXXX";
static char db[256];

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(db, sizeof(db), "%s/airlockd.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[300];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", db, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void test_outbox(void **state)
{
    (void)state;
    /* beside the main store, on the same file */
    struct ald_store *main_st;
    assert_int_equal(ald_store_open(&main_st, db), 0);
    struct ald_whstore *st;
    assert_int_equal(ald_whstore_open(&st, db), 0);
    json_t *row = NULL;
    assert_int_equal(ald_whstore_next(st, &row), 0);
    assert_null(row);

    struct ald_webhook_item a = {.id = "d_aaaaaaaaaaaaaaaaaaaa",
                                 .user = "alice",
                                 .subject = "s_1",
                                 .event = "approval.pending",
                                 .url = "http://127.0.0.1:9/h",
                                 .body = "{\"event\":\"approval.pending\"}",
                                 .created_ms = 1000};
    a.body_len = strlen(a.body);
    struct ald_webhook_item b = a;
    b.id = "d_bbbbbbbbbbbbbbbbbbbb";
    b.user = "bob";
    b.created_ms = 2000;
    assert_int_equal(ald_whstore_insert(st, &a, "alks1.SEALED-A"), 0);
    assert_int_equal(ald_whstore_insert(st, &b, "alks1.SEALED-B"), 0);
    assert_int_equal(ald_whstore_insert(st, &a, "alks1.SEALED-A"), AL_EEXISTS);

    /* the earliest due first, with its sealed secret and exact body */
    assert_int_equal(ald_whstore_next(st, &row), 0);
    assert_non_null(row);
    assert_string_equal(str(row, "id"), a.id);
    assert_string_equal(str(row, "secret"), "alks1.SEALED-A");
    assert_string_equal(str(row, "body"), a.body);
    assert_int_equal(json_integer_value(json_object_get(row, "attempts")), 0);
    json_decref(row);

    /* a failed attempt moves it behind b */
    assert_int_equal(ald_whstore_attempt(st, a.id, 503, "HTTP status 503", "pending", 5000, 0), 0);
    assert_int_equal(ald_whstore_next(st, &row), 0);
    assert_string_equal(str(row, "id"), b.id);
    json_decref(row);
    assert_int_equal(ald_whstore_attempt(st, b.id, 200, "", "delivered", 0, 2500), 0);
    assert_int_equal(ald_whstore_attempt(st, "d_nope", 200, "", "delivered", 0, 1), AL_ENOTFOUND);

    /* reopened (a restart): b stays delivered, a pending with its count */
    ald_whstore_close(st);
    assert_int_equal(ald_whstore_open(&st, db), 0);
    assert_int_equal(ald_whstore_next(st, &row), 0);
    assert_string_equal(str(row, "id"), a.id);
    assert_int_equal(json_integer_value(json_object_get(row, "attempts")), 1);
    assert_int_equal(json_integer_value(json_object_get(row, "next_ms")), 5000);
    json_decref(row);
    assert_int_equal(ald_whstore_attempt(st, a.id, 0, "gave up", "failed", 0, 0), 0);
    assert_int_equal(ald_whstore_next(st, &row), 0);
    assert_null(row);

    /* the log: owner's rows only unless NULL (admin); never the secret */
    json_t *list = NULL;
    assert_int_equal(ald_whstore_list(st, "s_1", NULL, &list), 0);
    assert_int_equal(json_array_size(list), 2);
    char *txt = json_dumps(list, 0);
    assert_null(strstr(txt, "SEALED"));
    assert_null(strstr(txt, "\"body\""));
    free(txt);
    json_t *x = json_array_get(list, 0);
    assert_string_equal(str(x, "state"), "failed");
    assert_int_equal(json_integer_value(json_object_get(x, "attempts")), 2);
    assert_true(json_is_null(json_object_get(x, "last_status")));
    assert_string_equal(str(x, "last_error"), "gave up");
    assert_true(json_is_null(json_object_get(x, "next_attempt_at")));
    x = json_array_get(list, 1);
    assert_string_equal(str(x, "state"), "delivered");
    assert_int_equal(json_integer_value(json_object_get(x, "last_status")), 200);
    assert_true(json_is_string(json_object_get(x, "delivered_at")));
    json_decref(list);
    assert_int_equal(ald_whstore_list(st, "s_1", "bob", &list), 0);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(str(json_array_get(list, 0), "id"), b.id);
    json_decref(list);
    assert_int_equal(ald_whstore_list(st, "s_2", NULL, &list), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    ald_whstore_close(st);
    ald_store_close(main_st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbox),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
