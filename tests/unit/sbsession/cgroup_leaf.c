/* Unit tests for sb_cgroup_v2_leaf(): the decision and the writes that move
 * a daemon into a leaf of its v2 cgroup and pass the controllers on to its
 * children (systemd's Delegate=yes). A scratch directory stands in for the
 * cgroup: its files are what cgroupfs shows (the kernel's side, refusing a
 * write, cannot be imitated here; the machine's v2 hierarchy has no
 * controllers to test with). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sandbox_int.h"

#include "airlock/error.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(const char *dir, const char *file, const char *text)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *get(const char *dir, const char *file)
{
    static char buf[4096];
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A fake cgroup: its controllers and what it passes on; the leaf's
 * cgroup.procs made in advance (cgroupfs makes it with the directory). */
#define FAKE_TEMPLATE "/tmp/airlock-cgleaf-XXXXXX" /* mkdtemp fills in the X's */

static void fake(char dir[sizeof(FAKE_TEMPLATE)], const char *avail, const char *on)
{
    memcpy(dir, FAKE_TEMPLATE, sizeof(FAKE_TEMPLATE));
    assert_non_null(mkdtemp(dir));
    put(dir, "cgroup.controllers", avail);
    put(dir, "cgroup.subtree_control", on);
    char leaf[4200];
    snprintf(leaf, sizeof(leaf), "%s/airlockd", dir);
    assert_int_equal(mkdir(leaf, 0755), 0);
    put(leaf, "cgroup.procs", "");
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void cleanup(const char *dir)
{
    assert_int_equal(nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS), 0);
}

static void test_moves_and_passes_on(void **state)
{
    (void)state;
    char dir[sizeof(FAKE_TEMPLATE)];
    fake(dir, "cpuset cpu io memory hugetlb pids rdma misc\n", "");
    assert_int_equal(sb_cgroup_v2_leaf(dir, "airlockd", 4242), 1);
    char leaf[200];
    snprintf(leaf, sizeof(leaf), "%s/airlockd", dir);
    assert_string_equal(get(leaf, "cgroup.procs"), "4242");
    assert_string_equal(get(dir, "cgroup.subtree_control"), "+memory +pids +cpu");
    cleanup(dir);
}

static void test_only_what_is_missing(void **state)
{
    (void)state;
    char dir[sizeof(FAKE_TEMPLATE)];
    /* memory passed on already, cpu not available: pids only */
    fake(dir, "memory pids io\n", "memory\n");
    assert_int_equal(sb_cgroup_v2_leaf(dir, "airlockd", 7), 1);
    /* a plain file keeps the tail of what it held; cgroupfs keeps nothing */
    assert_memory_equal(get(dir, "cgroup.subtree_control"), "+pids", 5);
    cleanup(dir);
}

static void test_nothing_to_do(void **state)
{
    (void)state;
    char dir[sizeof(FAKE_TEMPLATE)];
    /* no controller at all (this machine's v2 hierarchy) */
    fake(dir, "\n", "");
    assert_int_equal(sb_cgroup_v2_leaf(dir, "airlockd", 7), 0);
    assert_string_equal(get(dir, "cgroup.subtree_control"), "");
    char leaf[200];
    snprintf(leaf, sizeof(leaf), "%s/airlockd", dir);
    assert_string_equal(get(leaf, "cgroup.procs"), "");
    cleanup(dir);
    /* everything passed on already: nobody moves */
    fake(dir, "cpu memory pids\n", "cpu memory pids\n");
    snprintf(leaf, sizeof(leaf), "%s/airlockd", dir);
    assert_int_equal(sb_cgroup_v2_leaf(dir, "airlockd", 7), 0);
    assert_string_equal(get(leaf, "cgroup.procs"), "");
    cleanup(dir);
    /* "memoryx" is not "memory" */
    fake(dir, "memoryx pidsy\n", "");
    assert_int_equal(sb_cgroup_v2_leaf(dir, "airlockd", 7), 0);
    cleanup(dir);
}

static void test_errors(void **state)
{
    (void)state;
    char dir[sizeof(FAKE_TEMPLATE)];
    fake(dir, "memory\n", "");
    assert_int_equal(sb_cgroup_v2_leaf(dir, "", 7), AL_EINVAL);
    assert_int_equal(sb_cgroup_v2_leaf(dir, "a/b", 7), AL_EINVAL);
    assert_int_equal(sb_cgroup_v2_leaf(dir, "..", 7), AL_EINVAL);
    /* the kernel refusing the move (here: no cgroup.procs to write) */
    assert_int_equal(sb_cgroup_v2_leaf(dir, "other", 7), AL_EIO);
    assert_string_equal(get(dir, "cgroup.subtree_control"), "");
    cleanup(dir);
    /* not a cgroup at all */
    assert_int_equal(sb_cgroup_v2_leaf("/nonexistent-airlock-cgroup", "airlockd", 7), AL_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moves_and_passes_on),
        cmocka_unit_test(test_only_what_is_missing),
        cmocka_unit_test(test_nothing_to_do),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
