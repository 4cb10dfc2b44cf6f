#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "airlockd/adapters/auth.h"
#include "airlockd/adapters/store.h"
#include "airlockd/adapters/webhooks.h"

#include "airlock/error.h"

#include "store_backend.h"

static void test_users_keys(void **state)
{
    (void)state;
    struct ald_store *st;
    assert_int_equal(t_store_open(&st, t_db_path), 0);
    struct ald_user u = {
        .name = "alice", .max_sessions = -1, .max_memory_mb = 1024, .created_ms = 1000};
    assert_int_equal(ald_store_user_add(st, &u), 0);
    assert_int_equal(ald_store_user_add(st, &u), AL_EEXISTS);
    struct ald_user got;
    assert_int_equal(ald_store_user_get(st, "alice", &got), 0);
    assert_int_equal(got.admin, 0);
    assert_int_equal(got.max_sessions, -1);
    assert_int_equal(got.max_memory_mb, 1024);
    assert_int_equal(ald_store_user_get(st, "bob", &got), AL_ENOTFOUND);
    struct ald_user admin = {.name = "root", .admin = 1, .max_sessions = 5, .max_memory_mb = -1};
    assert_int_equal(ald_store_user_add(st, &admin), 0);
    json_t *users;
    assert_int_equal(ald_store_user_list(st, &users), 0);
    assert_int_equal(json_array_size(users), 2);
    json_decref(users);

    /* keys: created, found by hash, listed, revoked */
    char key[ALD_KEY_LEN + 1], id[24];
    unsigned char hash[32];
    assert_int_equal(ald_auth_key_new(key, id, hash), 0);
    assert_int_equal(strlen(key), ALD_KEY_LEN);
    assert_int_equal(strncmp(id, "k_", 2), 0);
    assert_int_equal(strlen(id), 18);
    assert_int_equal(ald_store_key_add(st, id, "alice", "laptop", hash, 2000), 0);
    assert_int_equal(ald_store_key_add(st, "k_x", "nobody", "", hash, 2000), AL_ENOTFOUND);
    char header[128];
    snprintf(header, sizeof(header), "Bearer %s", key);
    struct ald_principal who;
    assert_int_equal(ald_auth_check(st, header, &who), 0);
    assert_string_equal(who.user, "alice");
    assert_string_equal(who.key_id, id);
    assert_int_equal(who.admin, 0);
    assert_int_equal(who.max_memory_mb, 1024);
    assert_int_equal(ald_auth_check(st, NULL, &who), AL_EAUTH);
    assert_int_equal(ald_auth_check(st, "Basic abc", &who), AL_EAUTH);
    assert_int_equal(ald_auth_check(st, "Bearer alk_short", &who), AL_EAUTH);
    header[strlen(header) - 1] ^= 1; /* one character off */
    assert_int_equal(ald_auth_check(st, header, &who), AL_EAUTH);
    header[strlen(header) - 1] ^= 1;
    json_t *keys;
    assert_int_equal(ald_store_key_list(st, "alice", &keys), 0);
    assert_int_equal(json_array_size(keys), 1);
    /* the key itself is never stored or listed */
    char *txt = json_dumps(keys, 0);
    assert_null(strstr(txt, key + 4));
    free(txt);
    json_decref(keys);
    assert_int_equal(ald_store_key_revoke(st, id, 3000), 0);
    assert_int_equal(ald_store_key_revoke(st, id, 3000), AL_ENOTFOUND);
    assert_int_equal(ald_auth_check(st, header, &who), AL_EAUTH);

    /* removing a user revokes their keys */
    assert_int_equal(ald_auth_key_new(key, id, hash), 0);
    assert_int_equal(ald_store_key_add(st, id, "root", "", hash, 4000), 0);
    snprintf(header, sizeof(header), "Bearer %s", key);
    assert_int_equal(ald_auth_check(st, header, &who), 0);
    assert_int_equal(who.admin, 1);
    assert_int_equal(ald_store_user_remove(st, "root", 5000), 0);
    assert_int_equal(ald_store_user_remove(st, "root", 5000), AL_ENOTFOUND);
    assert_int_equal(ald_auth_check(st, header, &who), AL_EAUTH);
    ald_store_close(st);
}

static json_t *session(const char *id, const char *user, const char *state)
{
    return json_pack("{s:s, s:s, s:s}", "id", id, "user", user, "state", state);
}

static void test_sessions_procs(void **state)
{
    (void)state;
    struct ald_store *st;
    assert_int_equal(t_store_open(&st, t_db_path), 0);
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof(id), "s_%020d", i);
        json_t *pub = session(id, i % 2 ? "bob" : "alice", i == 4 ? "deleted" : "ready");
        json_t *priv = json_pack("{s:i}", "uid", 200000 + i);
        assert_int_equal(ald_store_session_put(st, pub, priv), 0);
        json_decref(pub);
        json_decref(priv);
    }
    /* update keeps the order */
    json_t *pub = session("s_00000000000000000000", "alice", "expired");
    json_t *priv = json_object();
    assert_int_equal(ald_store_session_put(st, pub, priv), 0);
    json_decref(pub);
    json_decref(priv);

    json_t *page;
    int64_t next;
    assert_int_equal(ald_store_session_page(st, NULL, NULL, 0, 2, &page, &next), 0);
    assert_int_equal(json_array_size(page), 2);
    assert_true(next > 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(page, 0), "state")),
                        "expired");
    json_decref(page);
    assert_int_equal(ald_store_session_page(st, NULL, NULL, next, 10, &page, &next), 0);
    assert_int_equal(json_array_size(page), 3);
    assert_int_equal(next, 0);
    json_decref(page);
    assert_int_equal(ald_store_session_page(st, "bob", NULL, 0, 10, &page, &next), 0);
    assert_int_equal(json_array_size(page), 2);
    json_decref(page);
    assert_int_equal(ald_store_session_page(st, "alice", "ready", 0, 10, &page, &next), 0);
    assert_int_equal(json_array_size(page), 1);
    json_decref(page);

    /* visibility: another user's session is not found */
    json_t *p2, *v2;
    assert_int_equal(ald_store_session_get(st, "s_00000000000000000001", "alice", &p2, &v2),
                     AL_ENOTFOUND);
    assert_int_equal(ald_store_session_get(st, "s_00000000000000000001", "bob", &p2, &v2), 0);
    assert_int_equal(json_integer_value(json_object_get(v2, "uid")), 200001);
    json_decref(p2);
    json_decref(v2);
    assert_int_equal(ald_store_session_get(st, "s_nope", NULL, &p2, NULL), AL_ENOTFOUND);

    json_t *live;
    assert_int_equal(ald_store_session_live(st, &live), 0);
    assert_int_equal(json_array_size(live), 3); /* 1, 2, 3 are ready */
    json_decref(live);
    json_t *counts;
    assert_int_equal(ald_store_session_counts(st, &counts), 0);
    assert_int_equal(json_integer_value(json_object_get(counts, "ready")), 3);
    assert_int_equal(json_integer_value(json_object_get(counts, "deleted")), 1);
    json_decref(counts);

    /* processes */
    const char *sid = "s_00000000000000000001";
    for (int n = 1; n <= 3; n++) {
        json_t *pp = json_pack("{s:s, s:s}", "id", "p", "state", n == 2 ? "exited" : "running");
        json_t *pv = json_pack("{s:i}", "init_id", n);
        assert_int_equal(ald_store_proc_put(st, sid, (uint64_t)n, pp, pv), 0);
        json_decref(pp);
        json_decref(pv);
    }
    json_t *list;
    assert_int_equal(ald_store_proc_list(st, sid, &list), 0);
    assert_int_equal(json_array_size(list), 3);
    json_decref(list);
    assert_int_equal(ald_store_proc_running(st, sid, &list), 0);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    uint64_t max;
    assert_int_equal(ald_store_proc_max(st, sid, &max), 0);
    assert_int_equal(max, 3);
    assert_int_equal(ald_store_proc_max(st, "s_none", &max), 0);
    assert_int_equal(max, 0);
    assert_int_equal(ald_store_proc_get(st, sid, 9, &p2, &v2), AL_ENOTFOUND);
    ald_store_close(st);
}

static void test_idempotency_audit(void **state)
{
    (void)state;
    struct ald_store *st;
    assert_int_equal(t_store_open(&st, t_db_path), 0);
    char sid[32], hash[72];
    assert_int_equal(ald_store_idem_claim(st, "alice", "k1", "h1", "s_1", 1000, sid, hash), 0);
    assert_int_equal(ald_store_idem_claim(st, "alice", "k1", "h2", "s_2", 1001, sid, hash),
                     AL_EEXISTS);
    assert_string_equal(sid, "s_1");
    assert_string_equal(hash, "h1");
    /* keys are per user */
    assert_int_equal(ald_store_idem_claim(st, "bob", "k1", "h1", "s_3", 1002, sid, hash), 0);
    assert_int_equal(ald_store_idem_release(st, "alice", "k1"), 0);
    assert_int_equal(ald_store_idem_claim(st, "alice", "k1", "h9", "s_4", 1003, sid, hash), 0);
    assert_int_equal(ald_store_idem_purge(st, 5000), 0);
    assert_int_equal(ald_store_idem_claim(st, "bob", "k1", "h7", "s_5", 6000, sid, hash), 0);

    struct ald_audit_row a1 = {1, "alice", "k_1", "POST", "/v1/sessions", 201, "s_1"};
    struct ald_audit_row a2 = {2, NULL, NULL, "DELETE", "/v1/sessions/x", 401, NULL};
    assert_int_equal(ald_store_audit(st, &a1), 0);
    assert_int_equal(ald_store_audit(st, &a2), 0);
    /* the WAL is copied back by the second connection; twice is fine */
    assert_int_equal(ald_store_checkpoint(st), 0);
    assert_int_equal(ald_store_checkpoint(st), 0);
    ald_store_close(st);
}

/* Rows of t_db_path whose path is `path`, counted on a connection of its own. */
static int audit_rows(const char *path)
{
    static const struct ald_sql q = {"SELECT count(*) FROM audit WHERE path = $1", NULL};
    return (int)t_count(t_db_path, &q, path);
}

static void test_proc_put_audit(void **state)
{
    (void)state;
    struct ald_store *st;
    assert_int_equal(t_store_open(&st, t_db_path), 0);
    json_t *pub = json_pack("{s:s}", "state", "exited"), *priv = json_object(), *got = NULL;
    struct ald_audit_row a = {10, "alice", "k_1", "POST", "/v1/sessions/s_9/exec", 200, "s_9"};
    assert_int_equal(ald_store_proc_put_audit(st, "s_9", 1, pub, priv, &a), 0);
    assert_int_equal(ald_store_proc_get(st, "s_9", 1, &got, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(got, "state")), "exited");
    json_decref(got);
    assert_int_equal(audit_rows("/v1/sessions/s_9/exec"), 1);
    /* an audit row the schema refuses (no method) takes the process row
     * with it: both or neither */
    struct ald_audit_row bad = {11, "alice", NULL, NULL, "/v1/sessions/s_9/bad", 200, "s_9"};
    assert_true(ald_store_proc_put_audit(st, "s_9", 2, pub, priv, &bad) < 0);
    assert_int_equal(ald_store_proc_get(st, "s_9", 2, &got, NULL), AL_ENOTFOUND);
    assert_int_equal(audit_rows("/v1/sessions/s_9/bad"), 0);
    /* and the store goes on working after the rollback */
    a.path = "/v1/sessions/s_9/again";
    assert_int_equal(ald_store_proc_put_audit(st, "s_9", 3, pub, priv, &a), 0);
    assert_int_equal(ald_store_audit(st, &a), 0);
    assert_int_equal(audit_rows("/v1/sessions/s_9/again"), 2);
    json_decref(pub);
    json_decref(priv);
    ald_store_close(st);
}

static void test_reopen_schema(void **state)
{
    (void)state;
    /* a second open of an existing database keeps the data */
    struct ald_store *st;
    assert_int_equal(t_store_open(&st, t_db_path), 0);
    struct ald_user got;
    assert_int_equal(ald_store_user_get(st, "alice", &got), 0);
    ald_store_close(st);
    assert_true(ald_store_open(&st, "/nonexistent-dir/x/airlockd.db") < 0);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(ald_user_name_valid("alice"));
    assert_true(ald_user_name_valid("a.b-c_d9"));
    assert_false(ald_user_name_valid(""));
    assert_false(ald_user_name_valid("Alice"));
    assert_false(ald_user_name_valid("-a"));
    assert_false(ald_user_name_valid("a b"));
    assert_false(ald_user_name_valid("a/b"));
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_false(ald_user_name_valid(longname));
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The webhook outbox (adapters/store_webhooks.c) on the same file: it
 * survives a reopen, hands out the due delivery first, records attempts,
 * lists without secrets. */
static void test_webhook_outbox(void **state)
{
    (void)state;
    /* beside the main store, on the same file */
    struct ald_store *main_st;
    assert_int_equal(t_store_open(&main_st, t_db_path), 0);
    struct ald_whstore *st;
    assert_int_equal(t_whstore_open(&st, t_db_path), 0);
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
    assert_int_equal(t_whstore_open(&st, t_db_path), 0);
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

/* The audit table refuses UPDATE and DELETE on both databases. */
static void test_audit_append_only(void **state)
{
    (void)state;
    struct ald_store *st;
    assert_int_equal(t_store_open(&st, t_db_path), 0);
    struct ald_audit_row a = {20, "alice", "k_1", "GET", "/v1/append-only", 200, NULL};
    assert_int_equal(ald_store_audit(st, &a), 0);
    struct ald_db *d = ald_store_db(st);
    assert_true(ald_db_script(d, "UPDATE audit SET status = 500") < 0);
    assert_non_null(strstr(al_error_last(), "append-only"));
    assert_true(ald_db_script(d, "DELETE FROM audit") < 0);
    assert_int_equal(audit_rows("/v1/append-only"), 1);
    ald_store_close(st);
}

/* Runs `$AIRLOCK_TEST_PG_CTL what` (pg_run.sh: stop or start the server). */
static int pg_ctl(const char *what)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s %s", getenv("AIRLOCK_TEST_PG_CTL"), what);
    char *argv[] = {"sh", "-c", cmd, NULL};
    pid_t pid;
    int status = -1;
    extern char **environ;
    if (posix_spawnp(&pid, "sh", NULL, NULL, argv, environ) != 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* PostgreSQL only: a statement past the statement timeout, a pool with no
 * free connection and a server that is down are each AL_EAGAIN with a
 * reason (the API's 503), never a wait without end; once the server is
 * back the same store works again by itself (reconnect with backoff). */
static void test_pg_unavailable(void **state)
{
    (void)state;
    if (!t_pg() || !getenv("AIRLOCK_TEST_PG_CTL")) {
        print_message("test_pg_unavailable: SQLite run, nothing to test\n");
        return;
    }
    struct ald_store *st;
    assert_int_equal(t_store_open(&st, t_db_path), 0);
    struct ald_db *d = ald_store_db(st);
    static const struct ald_sql slow = {"SELECT pg_sleep(10)", NULL};
    assert_int_equal(ald_db_run(d, &slow, NULL, 0, NULL), AL_EAGAIN);
    assert_non_null(strstr(al_error_last(), "statement timeout"));

    /* the pool (2) taken: the third caller is told so */
    struct ald_db_conn *c1, *c2, *c3 = NULL;
    assert_int_equal(ald_db_acquire(d, &c1), 0);
    assert_int_equal(ald_db_acquire(d, &c2), 0);
    assert_int_equal(ald_db_acquire(d, &c3), AL_EAGAIN);
    assert_non_null(strstr(al_error_last(), "no connection of the pool"));
    ald_db_release(d, c1);
    ald_db_release(d, c2);

    /* a server that stops answering (its backend process stopped): the
     * statement gives up after the statement and connect timeouts, and
     * the connection is dropped for a new one */
    struct ald_db_conn *c;
    struct ald_db_rows rows = {0};
    static const struct ald_sql q_pid = {"SELECT pg_backend_pid()", NULL};
    static const struct ald_sql q_one = {"SELECT 1", NULL};
    assert_int_equal(ald_db_acquire(d, &c), 0);
    assert_int_equal(ald_db_exec(c, &q_pid, NULL, 0, &rows), 0);
    pid_t backend = (pid_t)ald_db_int(&rows, 0, 0);
    ald_db_rows_free(&rows);
    assert_true(backend > 0);
    assert_int_equal(kill(backend, SIGSTOP), 0);
    assert_int_equal(ald_db_exec(c, &q_one, NULL, 0, NULL), AL_EAGAIN);
    assert_non_null(strstr(al_error_last(), "no answer within"));
    ald_db_release(d, c);
    kill(backend, SIGCONT);
    struct ald_user u;
    assert_int_equal(ald_store_user_get(st, "alice", &u), 0);
    assert_int_equal(pg_ctl("stop"), 0);
    char why[256];
    for (int i = 0; i < 3; i++) { /* the first on a pooled connection, then connecting */
        assert_int_equal(ald_store_user_get(st, "alice", &u), AL_EAGAIN);
        assert_non_null(strstr(al_error_last(), "database unavailable: "));
    }
    assert_true(ald_db_down(d, why, sizeof(why)));
    assert_true(strlen(why) > 0);
    /* rows written meanwhile are kept: "s_kept" for the checkpoint to
     * write, "s_newer" overtaken by a later put that must not be undone */
    json_t *kept = session("s_kept", "alice", "ready"), *priv = json_object();
    json_t *old = session("s_newer", "alice", "creating");
    json_t *newer = session("s_newer", "alice", "ready");
    assert_int_equal(ald_store_session_put(st, kept, priv), AL_EAGAIN);
    assert_int_equal(ald_store_session_put(st, old, priv), AL_EAGAIN);
    json_t *ppub = json_pack("{s:s, s:s}", "id", "p_1", "state", "exited");
    assert_int_equal(ald_store_proc_put(st, "s_kept", 1, ppub, priv), AL_EAGAIN);
    assert_int_equal(ald_store_checkpoint(st), 0); /* still down: kept */
    assert_int_equal(pg_ctl("start"), 0);
    int err = AL_EAGAIN;
    for (int i = 0; i < 200 && err == AL_EAGAIN; i++) { /* backoff: at most 5 s apart */
        err = ald_store_user_get(st, "alice", &u);
        if (err == AL_EAGAIN)
            usleep(50 * 1000);
    }
    assert_int_equal(err, 0);
    assert_false(ald_db_down(d, why, sizeof(why)));
    assert_int_equal(ald_store_session_put(st, newer, priv), 0);
    json_t *got = NULL;
    assert_int_equal(ald_store_session_get(st, "s_kept", NULL, &got, NULL), AL_ENOTFOUND);
    assert_int_equal(ald_store_checkpoint(st), 0);
    assert_int_equal(ald_store_session_get(st, "s_kept", NULL, &got, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(got, "state")), "ready");
    json_decref(got);
    assert_int_equal(ald_store_proc_get(st, "s_kept", 1, &got, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(got, "state")), "exited");
    json_decref(got);
    assert_int_equal(ald_store_session_get(st, "s_newer", NULL, &got, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(got, "state")), "ready");
    json_decref(got);
    json_decref(kept);
    json_decref(old);
    json_decref(newer);
    json_decref(ppub);
    json_decref(priv);
    ald_store_close(st);
}

/* GET /v1/audit's and /v1/admin/users' reads: filters, newest first,
 * cursor pages, counts. */
static void test_audit_page_user_summary(void **state)
{
    (void)state;
    struct ald_store *st;
    assert_int_equal(t_store_open(&st, t_db_path), 0);
    const char *users[] = {"aud-a", "aud-b"};
    for (int i = 0; i < 5; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/aud/%d", i);
        struct ald_audit_row row = {.time_ms = 900000 + (uint64_t)i * 10,
                                    .user = users[i % 2],
                                    .method = i == 4 ? "NET" : "DELETE",
                                    .path = path,
                                    .status = 404,
                                    .session = i == 2 ? "s_aud" : NULL};
        assert_int_equal(ald_store_audit(st, &row), 0);
    }
    json_t *rows = NULL;
    int64_t next = -1;
    /* aud-a: rows 0, 2, 4, newest first */
    struct ald_audit_filter f = {.user = "aud-a", .limit = 10};
    assert_int_equal(ald_store_audit_page(st, &f, &rows, &next), 0);
    assert_int_equal(json_array_size(rows), 3);
    assert_int_equal(next, 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "path")),
                        "/v1/aud/4");
    assert_true(json_is_null(json_object_get(json_array_get(rows, 1), "key_id")));
    json_decref(rows);
    /* pages of one */
    f.limit = 1;
    assert_int_equal(ald_store_audit_page(st, &f, &rows, &next), 0);
    assert_int_equal(json_array_size(rows), 1);
    assert_true(next > 0);
    json_decref(rows);
    f.before = next;
    assert_int_equal(ald_store_audit_page(st, &f, &rows, &next), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "path")),
                        "/v1/aud/2");
    json_decref(rows);
    /* method, session, text, time window */
    struct ald_audit_filter g = {.method = "NET", .text = "/v1/aud/", .limit = 10};
    assert_int_equal(ald_store_audit_page(st, &g, &rows, &next), 0);
    assert_int_equal(json_array_size(rows), 1);
    json_decref(rows);
    struct ald_audit_filter h = {.session = "s_aud", .limit = 10};
    assert_int_equal(ald_store_audit_page(st, &h, &rows, &next), 0);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "user")),
                        "aud-a");
    json_decref(rows);
    struct ald_audit_filter w = {
        .text = "/v1/aud/", .since_ms = 900010, .until_ms = 900030, .limit = 10};
    assert_int_equal(ald_store_audit_page(st, &w, &rows, &next), 0);
    assert_int_equal(json_array_size(rows), 2); /* 900010 and 900020 */
    json_decref(rows);
    struct ald_audit_filter none = {.user = "aud-a", .text = "no such", .limit = 10};
    assert_int_equal(ald_store_audit_page(st, &none, &rows, &next), 0);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);

    /* user summary: live keys only */
    struct ald_user u = {.name = "aud-u", .max_sessions = -1, .max_memory_mb = -1, .created_ms = 5};
    assert_int_equal(ald_store_user_add(st, &u), 0);
    unsigned char h1[32] = {0xa1}, h2[32] = {0xa2};
    assert_int_equal(ald_store_key_add(st, "k_aud1", "aud-u", "", h1, 6), 0);
    assert_int_equal(ald_store_key_add(st, "k_aud2", "aud-u", "", h2, 7), 0);
    assert_int_equal(ald_store_key_revoke(st, "k_aud2", 8), 0);
    json_t *list = NULL;
    assert_int_equal(ald_store_user_summary(st, &list), 0);
    size_t i;
    json_t *o;
    int found = 0;
    json_array_foreach(list, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "name")), "aud-u") != 0)
            continue;
        found = 1;
        assert_int_equal(json_integer_value(json_object_get(o, "keys")), 1);
        assert_int_equal(json_integer_value(json_object_get(o, "live_sessions")), 0);
        assert_true(json_is_false(json_object_get(o, "admin")));
    }
    assert_true(found);
    json_decref(list);
    ald_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users_keys),        cmocka_unit_test(test_sessions_procs),
        cmocka_unit_test(test_idempotency_audit), cmocka_unit_test(test_proc_put_audit),
        cmocka_unit_test(test_reopen_schema),     cmocka_unit_test(test_names),
        cmocka_unit_test(test_webhook_outbox),    cmocka_unit_test(test_audit_append_only),
        cmocka_unit_test(test_pg_unavailable),    cmocka_unit_test(test_audit_page_user_summary),
    };
    return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
