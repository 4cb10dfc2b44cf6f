/* credsync.c: the credential store shared through the database
 * (docs/cluster.md, "Credentials across nodes"). Two "nodes" are two
 * creds.store files with the same master key and one database (SQLite, or
 * PostgreSQL under pg_run.sh): an entry added on one node's file reaches
 * the other's after a pass of each, a removal too, a change of one scope
 * replaces it everywhere, the rows are sealed (the secret is not in the
 * database in clear), a node with another master key cannot read the rows
 * and leaves them out, and at a node's first pass the database wins over a
 * stale file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_backend.h"

#include "airlockd/adapters/credsync.h"
#include "airlockd/adapters/store_nodes.h"

#include "airlock/base64.h"
#include "airlock/creds.h"
#include "airlock/creds_store.h"
#include "airlock/error.h"

static char dir[256];
static char key[300], key_other[300], file_a[300], file_b[300], file_c[300];
static struct ald_store *st;

static int setup(void **state)
{
    (void)state;
    if (t_scratch_setup(t_db_path, sizeof(t_db_path)) < 0)
        return -1;
    snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(t_db_path, '/') - t_db_path), t_db_path);
    snprintf(key, sizeof(key), "%s/master.key", dir);
    snprintf(key_other, sizeof(key_other), "%s/other.key", dir);
    snprintf(file_a, sizeof(file_a), "%s/a.store", dir);
    snprintf(file_b, sizeof(file_b), "%s/b.store", dir);
    snprintf(file_c, sizeof(file_c), "%s/c.store", dir);
    if (creds_key_generate(key) < 0 || creds_key_generate(key_other) < 0)
        return -1;
    return t_store_open(&st, t_db_path);
}

static int teardown(void **state)
{
    (void)state;
    ald_store_close(st);
    const char *files[] = {key, key_other, file_a, file_b, file_c};
    for (size_t i = 0; i < 5; i++)
        unlink(files[i]);
    t_scratch_teardown(t_db_path);
    return 0;
}

/* `airlock creds add` on a node: put a token into the file. */
static void file_put(const char *file, const char *scope, const char *secret)
{
    creds_store *s = NULL;
    assert_int_equal(creds_store_open(&s, file, key), 0);
    struct creds_entry e = {
        .scope = (char *)scope, .kind = CREDS_KIND_TOKEN, .secret = (char *)secret};
    assert_int_equal(creds_store_put(s, &e), 0);
    assert_int_equal(creds_store_save(s), 0);
    creds_store_free(s);
}

static void file_rm(const char *file, const char *scope)
{
    creds_store *s = NULL;
    assert_int_equal(creds_store_open(&s, file, key), 0);
    assert_int_equal(creds_store_remove(s, scope), 0);
    assert_int_equal(creds_store_save(s), 0);
    creds_store_free(s);
}

/* The secret of `scope` in `file`, or "" (static buffer). */
static const char *file_get(const char *file, const char *scope)
{
    static char out[128];
    creds_store *s = NULL;
    out[0] = '\0';
    assert_int_equal(creds_store_open(&s, file, key), 0);
    for (size_t i = 0; i < creds_store_count(s); i++)
        if (strcmp(creds_store_at(s, i)->scope, scope) == 0)
            snprintf(out, sizeof(out), "%s", creds_store_at(s, i)->secret);
    creds_store_free(s);
    return out;
}

static void test_two_nodes(void **state)
{
    (void)state;
    struct ald_credsync *a = NULL, *b = NULL;
    assert_int_equal(ald_credsync_new(&a, st, file_a, key), 0);
    assert_int_equal(ald_credsync_new(&b, st, file_b, key), 0);
    /* node a had an entry before the cluster: it is added to the database */
    file_put(file_a, "github.com/acme", "tok-acme-1");
    assert_int_equal(ald_credsync_run_once(a), 0);
    assert_int_equal(ald_credsync_run_once(b), 0);
    assert_string_equal(file_get(file_b, "github.com/acme"), "tok-acme-1");
    struct stat sb;
    assert_int_equal(stat(file_b, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* the rows are sealed: no secret in clear in the database */
    json_t *rows = NULL;
    int64_t max = 0;
    assert_int_equal(ald_store_cred_rows(st, 0, &rows, &max), 0);
    assert_true(json_array_size(rows) >= 1);
    char *dump = json_dumps(rows, 0);
    assert_null(strstr(dump, "tok-acme"));
    unsigned char *raw = NULL;
    size_t n = 0;
    const char *b64 = json_string_value(json_object_get(json_array_get(rows, 0), "sealed"));
    assert_int_equal(al_base64_decode_alloc(&raw, &n, b64, strlen(b64)), 0);
    assert_null(memmem(raw, n, "tok-acme", 8));
    assert_memory_equal(raw, "alks1.", 6);
    free(raw);
    free(dump);
    json_decref(rows);

    /* added on b, changed on b: a follows */
    file_put(file_b, "gitlab.com", "tok-gl");
    assert_int_equal(ald_credsync_run_once(b), 0);
    assert_int_equal(ald_credsync_run_once(a), 0);
    assert_string_equal(file_get(file_a, "gitlab.com"), "tok-gl");
    file_put(file_b, "github.com/acme", "tok-acme-2");
    assert_int_equal(ald_credsync_run_once(b), 0);
    assert_int_equal(ald_credsync_run_once(a), 0);
    assert_string_equal(file_get(file_a, "github.com/acme"), "tok-acme-2");
    /* a pass with nothing new changes nothing */
    assert_int_equal(ald_credsync_run_once(a), 0);
    assert_string_equal(file_get(file_a, "github.com/acme"), "tok-acme-2");

    /* removed on a: gone on b */
    file_rm(file_a, "gitlab.com");
    assert_int_equal(ald_credsync_run_once(a), 0);
    assert_int_equal(ald_credsync_run_once(b), 0);
    assert_string_equal(file_get(file_b, "gitlab.com"), "");
    assert_string_equal(file_get(file_b, "github.com/acme"), "tok-acme-2");

    /* a third node with a stale file: the database wins over it, and its
     * own scope is added */
    file_put(file_c, "github.com/acme", "tok-acme-stale");
    file_put(file_c, "gitlab.com", "tok-gl-stale"); /* removed in the cluster */
    file_put(file_c, "example.org", "tok-c");
    struct ald_credsync *c = NULL;
    assert_int_equal(ald_credsync_new(&c, st, file_c, key), 0);
    assert_int_equal(ald_credsync_run_once(c), 0);
    assert_string_equal(file_get(file_c, "github.com/acme"), "tok-acme-2");
    assert_string_equal(file_get(file_c, "gitlab.com"), "");
    assert_string_equal(file_get(file_c, "example.org"), "tok-c");
    assert_int_equal(ald_credsync_run_once(a), 0);
    assert_string_equal(file_get(file_a, "example.org"), "tok-c");
    assert_string_equal(file_get(file_a, "github.com/acme"), "tok-acme-2");
    ald_credsync_free(a);
    ald_credsync_free(b);
    ald_credsync_free(c);
}

/* A node with another master key cannot unseal the rows: it leaves them
 * out (logged) and keeps its file as it is. */
static void test_other_master_key(void **state)
{
    (void)state;
    char file_x[320];
    snprintf(file_x, sizeof(file_x), "%s/x.store", dir);
    struct ald_credsync *x = NULL;
    assert_int_equal(ald_credsync_new(&x, st, file_x, key_other), 0);
    assert_int_equal(ald_credsync_run_once(x), 0);
    creds_store *s = NULL;
    assert_int_equal(creds_store_open(&s, file_x, key_other), 0);
    assert_int_equal(creds_store_count(s), 0);
    creds_store_free(s);
    ald_credsync_free(x);
    unlink(file_x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_nodes),
        cmocka_unit_test(test_other_master_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
