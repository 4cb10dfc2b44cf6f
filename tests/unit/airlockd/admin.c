/* admin.c: the command lines of `airlock admin node …` (docs/cluster.md):
 * every mistake exits 2 with a reason before any file or database is
 * touched, --help exits 0, and a node command on a store that is not a
 * cluster's PostgreSQL store says "no cluster" and exits 1 without creating
 * the state dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airlockd/adapters/admin.h"

static char err_text[4096];

/* Runs `admin ARGS…` (NULL-terminated) with stdout and stderr captured;
 * returns its exit status, stderr's text in err_text. */
static int run(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"admin";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    char path[] = "/tmp/airlock-w4-admin-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stdout);
    fflush(stderr);
    int o1 = dup(1), o2 = dup(2);
    dup2(fd, 1);
    dup2(fd, 2);
    int rc = ald_admin_main("airlock", argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(o1, 1);
    dup2(o2, 2);
    close(o1);
    close(o2);
    ssize_t n = pread(fd, err_text, sizeof(err_text) - 1, 0);
    err_text[n > 0 ? n : 0] = '\0';
    close(fd);
    return rc;
}

static void expect_usage(int rc, const char *why)
{
    if (rc != 2 || !strstr(err_text, why))
        fail_msg("want 2 and \"%s\", got %d: %s", why, rc, err_text);
}

static void test_node_bad_lines(void **state)
{
    (void)state;
    expect_usage(run("node", NULL), "which node command?");
    expect_usage(run("node", "stop", "n1", NULL), "unknown node command \"stop\"");
    expect_usage(run("node", "drain", NULL), "node drain wants NODE");
    expect_usage(run("node", "undrain", NULL), "node undrain wants NODE");
    expect_usage(run("node", "rm", NULL), "node rm wants NODE");
    expect_usage(run("node", "ls", "n1", NULL), "unexpected \"n1\"");
    expect_usage(run("node", "drain", "n1", "n2", NULL), "unexpected \"n2\"");
    /* --timeout only with --wait, --wait only with drain */
    expect_usage(run("node", "drain", "n1", "--timeout", "5", NULL),
                 "--timeout goes with node drain --wait");
    expect_usage(run("node", "undrain", "n1", "--wait", NULL), "node undrain takes no --wait");
    expect_usage(run("node", "rm", "n1", "--wait", NULL), "node rm takes no --wait");
    expect_usage(run("node", "ls", "--wait", NULL), "node ls takes no --wait");
    expect_usage(run("node", "drain", "n1", "--wait", "--timeout", NULL),
                 "--timeout needs a value");
    expect_usage(run("node", "drain", "n1", "--wait", "--timeout", "soon", NULL),
                 "is not a number");
    expect_usage(run("node", "drain", "n1", "--wait", "--timeout", "-1", NULL), "is not a number");
    expect_usage(run("node", "drain", "n1", "--json", NULL), "node drain takes no --json");
    expect_usage(run("node", "drain", "n1", "--user", "alice", NULL), "node drain takes no --user");
    expect_usage(run("node", "ls", "--user", "alice", NULL), "node ls takes no --user");
    expect_usage(run("node", "drain", "n1", "--admin", NULL), "takes no --admin");
    /* node names as config.c allows them */
    expect_usage(run("node", "drain", "a/b", NULL), "a node name is");
    expect_usage(run("node", "rm", "n1;rm", NULL), "a node name is");
    char longname[80];
    memset(longname, 'n', 64);
    longname[64] = '\0';
    expect_usage(run("node", "drain", longname, NULL), "a node name is");
    expect_usage(run("node", "drain", "n1", "--config", "/x", "--state-dir", "/y", NULL),
                 "not both");
    /* user and key lines still go their way */
    expect_usage(run("nodes", "ls", NULL), "unknown command \"nodes\"");
    expect_usage(run("user", "add", "bob", "--wait", NULL), "user add takes no --wait");
}

static void test_node_help(void **state)
{
    (void)state;
    assert_int_equal(run("node", "--help", NULL), 0);
    assert_non_null(strstr(err_text, "node drain NODE [--wait [--timeout S]]"));
    assert_non_null(strstr(err_text, "node rm NODE"));
    assert_int_equal(run("node", "drain", "--help", NULL), 0);
    assert_non_null(strstr(err_text, "usage: airlock admin node drain"));
    assert_int_equal(run("--help", NULL), 0);
    assert_non_null(strstr(err_text, "node ls [--json]"));
}

/* A SQLite state dir is no cluster: the node commands say so, exit 1, and
 * create nothing. */
static void test_node_no_cluster(void **state)
{
    (void)state;
    char dir[] = "/tmp/airlock-w4-admin-dir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sd[256];
    snprintf(sd, sizeof(sd), "%s/state", dir);
    const char *verbs[][2] = {{"ls", NULL}, {"drain", "n1"}, {"undrain", "n1"}, {"rm", "n1"}};
    for (size_t i = 0; i < 4; i++) {
        int rc = verbs[i][1] ? run("node", verbs[i][0], verbs[i][1], "--state-dir", sd, NULL)
                             : run("node", verbs[i][0], "--state-dir", sd, NULL);
        if (rc != 1 || !strstr(err_text, "no cluster: this store has no nodes"))
            fail_msg("node %s: want 1 and no cluster, got %d: %s", verbs[i][0], rc, err_text);
        struct stat sb;
        assert_int_equal(stat(sd, &sb), -1);
    }
    /* a config without a postgres store: the same */
    char cfgp[256];
    snprintf(cfgp, sizeof(cfgp), "%s/airlockd.json", dir);
    FILE *f = fopen(cfgp, "w");
    assert_non_null(f);
    fprintf(f, "{\"state_dir\": \"%s\"}\n", sd);
    fclose(f);
    assert_int_equal(run("node", "ls", "--config", cfgp, NULL), 1);
    assert_non_null(strstr(err_text, "no cluster: this store has no nodes (its store is SQLite)"));
    unlink(cfgp);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_bad_lines),
        cmocka_unit_test(test_node_help),
        cmocka_unit_test(test_node_no_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
