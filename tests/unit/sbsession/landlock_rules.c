/* Unit tests for the Landlock rule set built for a plan
 * (sb_landlock_attr, sb_landlock_rules): what is handled under each ABI,
 * which paths get which rights, the caller's stdio, the proxy ports, and
 * the weaker mode's read grant on the complement of the masked paths.
 * Recorded through the rule callback: no Landlock system call, no
 * privilege. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sandbox_int.h"
#include "scratch.h"

#include "airlock/error.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The rules handed to the callback, in order (grown as needed: the
 * weaker mode's walk lists /tmp, whatever it holds). */
struct recorded {
    size_t n, cap;
    char **path; /* NULL for fd and port rules */
    int *fd;
    uint64_t *access;
    uint16_t *port;
    size_t fail_at; /* return AL_EIO at this rule (0: never) */
};

static int record(const struct sb_landlock_rule *r, void *payload)
{
    struct recorded *rec = payload;
    if (rec->n == rec->cap) {
        rec->cap = rec->cap ? rec->cap * 2 : 64;
        rec->path = realloc(rec->path, rec->cap * sizeof(*rec->path));
        rec->fd = realloc(rec->fd, rec->cap * sizeof(*rec->fd));
        rec->access = realloc(rec->access, rec->cap * sizeof(*rec->access));
        rec->port = realloc(rec->port, rec->cap * sizeof(*rec->port));
        assert_true(rec->path && rec->fd && rec->access && rec->port);
    }
    rec->path[rec->n] = r->path ? strdup(r->path) : NULL;
    rec->fd[rec->n] = r->fd;
    rec->access[rec->n] = r->access;
    rec->port[rec->n] = r->port;
    rec->n++;
    return rec->fail_at && rec->n == rec->fail_at ? AL_EIO : 0;
}

/* Forgets the rules recorded (the arrays stay for the next walk). */
static void recorded_clear(struct recorded *rec)
{
    for (size_t i = 0; i < rec->n; i++)
        free(rec->path[i]);
    rec->n = 0;
}

static void recorded_free(struct recorded *rec)
{
    recorded_clear(rec);
    free(rec->path);
    free(rec->fd);
    free(rec->access);
    free(rec->port);
    free(rec);
}

/* The access granted beneath `path` (-1 when no rule names it). */
static int64_t path_access(const struct recorded *rec, const char *path)
{
    for (size_t i = 0; i < rec->n; i++)
        if (rec->path[i] && strcmp(rec->path[i], path) == 0)
            return (int64_t)rec->access[i];
    return -1;
}

static size_t count_ports(const struct recorded *rec)
{
    size_t n = 0;
    for (size_t i = 0; i < rec->n; i++)
        n += !rec->path[i] && rec->fd[i] < 0;
    return n;
}

static size_t count_fds(const struct recorded *rec)
{
    size_t n = 0;
    for (size_t i = 0; i < rec->n; i++)
        n += !rec->path[i] && rec->fd[i] >= 0;
    return n;
}

static void plan_init(struct sb_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    assert_int_equal(al_strlist_push(&plan->writable, "/work/ws"), 0);
    assert_int_equal(al_strlist_push(&plan->writable, "/work/cache"), 0);
    plan->connect_ports[0] = 3128;
    plan->connect_ports[1] = 1080;
    plan->n_connect_ports = 2;
}

static void test_attr_by_abi(void **state)
{
    (void)state;
    struct sb_plan plan;
    plan_init(&plan);
    struct sb_landlock_attr a;

    sb_landlock_attr(&a, &plan, 1);
    assert_int_equal(a.handled_fs & SB_LL_FS_REFER, 0);
    assert_int_equal(a.handled_fs & SB_LL_FS_TRUNCATE, 0);
    assert_true(a.handled_fs & SB_LL_FS_WRITE_FILE);
    assert_true(a.handled_fs & SB_LL_FS_MAKE_CHAR);
    assert_true(a.handled_fs & SB_LL_FS_MAKE_BLOCK);
    assert_int_equal(a.handled_net, 0);
    assert_int_equal(a.scoped, 0);

    sb_landlock_attr(&a, &plan, 3);
    assert_true(a.handled_fs & SB_LL_FS_REFER);
    assert_true(a.handled_fs & SB_LL_FS_TRUNCATE);
    assert_int_equal(a.handled_net, 0);

    sb_landlock_attr(&a, &plan, 4);
    assert_int_equal(a.handled_net, SB_LL_NET_BIND_TCP | SB_LL_NET_CONNECT_TCP);
    assert_int_equal(a.scoped, 0);

    sb_landlock_attr(&a, &plan, 6);
    assert_int_equal(a.scoped, SB_LL_SCOPE_ABSTRACT_UNIX_SOCKET | SB_LL_SCOPE_SIGNAL);

    /* allowLocalBinding: TCP is not handled at all */
    plan.allow_local_binding = 1;
    sb_landlock_attr(&a, &plan, 6);
    assert_int_equal(a.handled_net, 0);
    sb_plan_free(&plan);
}

static void test_rules(void **state)
{
    (void)state;
    struct sb_plan plan;
    plan_init(&plan);
    struct recorded *rec = calloc(1, sizeof(*rec));
    assert_int_equal(sb_landlock_rules(&plan, 6, 0, record, rec), 0);
    /* read and execute everywhere, first */
    assert_string_equal(rec->path[0], "/");
    assert_int_equal(rec->access[0], SB_LL_READ);
    /* read-write on the scratch paths and the writable roots */
    static const char *const rw[] = {"/tmp",     "/dev/shm", "/dev/null", "/dev/zero",  "/dev/full",
                                     "/dev/tty", "/dev/pts", "/work/ws",  "/work/cache"};
    for (size_t i = 0; i < sizeof(rw) / sizeof(*rw); i++)
        assert_int_equal(path_access(rec, rw[i]), SB_LL_READ | SB_LL_WRITE);
    /* connect to the proxies' ports only */
    assert_int_equal(count_ports(rec), 2);
    assert_int_equal(rec->port[rec->n - 2], 3128);
    assert_int_equal(rec->port[rec->n - 1], 1080);
    assert_int_equal(rec->access[rec->n - 1], SB_LL_NET_CONNECT_TCP);
    assert_int_equal(count_fds(rec), 0); /* no SB_LL_STDIO */
    assert_int_equal(rec->n, 1 + sizeof(rw) / sizeof(*rw) + 2);
    recorded_clear(rec);

    /* ABI 1 knows neither refer nor truncate, nor TCP rules */
    assert_int_equal(sb_landlock_rules(&plan, 1, 0, record, rec), 0);
    assert_int_equal(path_access(rec, "/work/ws"),
                     (SB_LL_READ | SB_LL_WRITE) & ~(SB_LL_FS_REFER | SB_LL_FS_TRUNCATE));
    assert_int_equal(count_ports(rec), 0);
    recorded_clear(rec);

    /* allowLocalBinding: no port rules (TCP is not restricted) */
    plan.allow_local_binding = 1;
    assert_int_equal(sb_landlock_rules(&plan, 6, 0, record, rec), 0);
    assert_int_equal(count_ports(rec), 0);
    recorded_clear(rec);

    /* the first failure of the callback ends the walk */
    rec->fail_at = 3;
    assert_int_equal(sb_landlock_rules(&plan, 6, 0, record, rec), AL_EIO);
    assert_int_equal(rec->n, 3);
    recorded_free(rec);
    sb_plan_free(&plan);
}

/* The caller's stdio files stay reopenable: a rule for each one that is a
 * regular file or a terminal, none for pipes. */
static void test_stdio(void **state)
{
    (void)state;
    struct sb_plan plan;
    plan_init(&plan);
    struct recorded *rec = calloc(1, sizeof(*rec));
    char tmpl[] = "/tmp/airlock-llstdio-XXXXXX";
    int file = mkstemp(tmpl);
    assert_true(file >= 0);
    unlink(tmpl);
    int p[2];
    assert_int_equal(pipe(p), 0);
    int saved[3];
    for (int i = 0; i < 3; i++)
        saved[i] = dup(i);
    dup2(file, 0);
    dup2(p[1], 1);
    dup2(file, 2);
    int err = sb_landlock_rules(&plan, 6, SB_LL_STDIO, record, rec);
    for (int i = 0; i < 3; i++) {
        dup2(saved[i], i);
        close(saved[i]);
    }
    close(file);
    close(p[0]);
    close(p[1]);
    assert_int_equal(err, 0);
    assert_int_equal(count_fds(rec), 2);
    for (size_t i = 0; i < rec->n; i++) {
        if (rec->path[i] || rec->fd[i] < 0)
            continue;
        assert_true(rec->fd[i] == 0 || rec->fd[i] == 2);
        assert_int_equal(rec->access[i],
                         SB_LL_FS_READ_FILE | SB_LL_FS_WRITE_FILE | SB_LL_FS_TRUNCATE);
    }
    recorded_free(rec);
    sb_plan_free(&plan);
}

static void add_mask(struct sb_plan *plan, const char *path, int is_dir)
{
    if (plan->len == plan->cap) {
        plan->cap = plan->cap ? plan->cap * 2 : 8;
        plan->mounts = realloc(plan->mounts, plan->cap * sizeof(*plan->mounts));
        assert_non_null(plan->mounts);
    }
    plan->mounts[plan->len++] = (struct sb_mount){SB_MNT_MASK, strdup(path), NULL, is_dir, 0};
}

/* The weaker mode: no mount hides anything, so read is granted on every
 * sibling along the way to a masked path and never on it or its
 * ancestors. */
static void test_hide_masked(void **state)
{
    (void)state;
    struct scratch tree;
    char p[PATH_MAX];
    scratch_make(&tree, "airlock-llhide");
    static const char *const dirs[] = {"home",         "home/.ssh",       "home/src",
                                       "home/.config", "home/.config/gh", "home/.config/editor"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
        scratch_path(p, &tree, dirs[i]);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    scratch_touch(&tree, "home/.netrc");

    struct sb_plan plan;
    plan_init(&plan);
    scratch_path(p, &tree, "home/.ssh");
    add_mask(&plan, p, 1);
    scratch_path(p, &tree, "home/.config/gh");
    add_mask(&plan, p, 1);
    scratch_path(p, &tree, "home/.netrc");
    add_mask(&plan, p, 0);

    struct recorded *rec = calloc(1, sizeof(*rec));
    assert_int_equal(sb_landlock_rules(&plan, 6, SB_LL_HIDE_MASKED, record, rec), 0);
    /* hidden: the masked paths and their ancestors get no rule */
    static const char *const none[] = {"home/.ssh", "home/.config/gh", "home/.netrc", "home",
                                       "home/.config"};
    for (size_t i = 0; i < sizeof(none) / sizeof(*none); i++) {
        scratch_path(p, &tree, none[i]);
        assert_int_equal(path_access(rec, p), -1);
    }
    assert_int_equal(path_access(rec, "/"), -1);
    assert_int_equal(path_access(rec, tree.root), -1);
    /* readable: their siblings, all the way up */
    scratch_path(p, &tree, "home/src");
    assert_int_equal(path_access(rec, p), SB_LL_READ);
    scratch_path(p, &tree, "home/.config/editor");
    assert_int_equal(path_access(rec, p), SB_LL_READ);
    assert_int_equal(path_access(rec, "/usr"), SB_LL_READ);
    /* and the writable roots stay writable */
    assert_int_equal(path_access(rec, "/work/ws"), SB_LL_READ | SB_LL_WRITE);
    recorded_free(rec);
    sb_plan_free(&plan);
    scratch_remove(&tree);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attr_by_abi),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_stdio),
        cmocka_unit_test(test_hide_masked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
