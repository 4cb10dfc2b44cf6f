/* Unit tests for sb_protect_discover(): the mandatory write-protected paths
 * found in a writable root (git hooks and config of the repository, its
 * submodules and worktrees, shell rc files, editor and agent config), the
 * placeholder made for a missing .git/hooks, and the limits of the walk.
 * On a scratch tree; no privilege needed. */
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

struct fixture {
    struct scratch s;  /* the scratch tree */
    char ws[PATH_MAX]; /* the writable root searched */
    struct al_strlist out, placeholders;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    scratch_make(&f->s, "airlock-protect");
    scratch_path(f->ws, &f->s, "ws");
    scratch_mkdirs(&f->s, "ws");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    al_strlist_free(&f->out);
    al_strlist_free(&f->placeholders);
    scratch_remove(&f->s);
    free(f);
    return 0;
}

static int has(const struct fixture *f, const char *rel)
{
    char p[PATH_MAX];
    scratch_path(p, &f->s, rel);
    return al_strlist_find(&f->out, p) >= 0;
}

static void discover(struct fixture *f, int depth, int allow_git_config)
{
    assert_int_equal(sb_protect_discover(&f->out, &f->placeholders, f->ws, depth, allow_git_config),
                     0);
}

static void test_repository(void **state)
{
    struct fixture *f = *state;
    scratch_mkdirs(&f->s, "ws/.git/hooks");
    scratch_mkdirs(&f->s, "ws/.git/info");
    scratch_mkdirs(&f->s, "ws/.git/modules/lib/modules/inner");
    scratch_mkdirs(&f->s, "ws/.git/worktrees/wt");
    scratch_put(&f->s, "ws/.git/config", "");
    discover(f, 0, 0);
    assert_true(has(f, "ws/.git/hooks"));
    assert_true(has(f, "ws/.git/config"));
    assert_true(has(f, "ws/.git/config.worktree"));
    assert_true(has(f, "ws/.git/commondir"));
    assert_true(has(f, "ws/.git/info/attributes"));
    /* submodules nest; worktrees have git dirs of their own */
    assert_true(has(f, "ws/.git/modules/lib/hooks"));
    assert_true(has(f, "ws/.git/modules/lib/config"));
    assert_true(has(f, "ws/.git/modules/lib/modules/inner/hooks"));
    assert_true(has(f, "ws/.git/worktrees/wt/hooks"));
    assert_true(has(f, "ws/.git/worktrees/wt/config"));
    /* hooks/ existed: no placeholder for it; the git dirs below had none */
    char p[PATH_MAX];
    scratch_path(p, &f->s, "ws/.git/hooks");
    assert_int_equal(al_strlist_find(&f->placeholders, p), -1);
    scratch_path(p, &f->s, "ws/.git/modules/lib/hooks");
    assert_true(al_strlist_find(&f->placeholders, p) >= 0);
}

/* A missing hooks/ in an existing .git is created (listed as a
 * placeholder): mount-based protection needs a path. */
static void test_hooks_placeholder(void **state)
{
    struct fixture *f = *state;
    scratch_mkdirs(&f->s, "ws/.git");
    discover(f, 0, 1);
    assert_true(has(f, "ws/.git/hooks"));
    assert_false(has(f, "ws/.git/config")); /* allowGitConfig */
    char p[PATH_MAX];
    scratch_path(p, &f->s, "ws/.git/hooks");
    assert_int_equal(f->placeholders.len, 1);
    assert_string_equal(f->placeholders.items[0], p);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

/* `.git` as a file (a linked worktree): its git dir and the common dir it
 * names are protected; a git dir outside the writable root gets no
 * placeholder (a .git file written by an earlier sandbox may point
 * anywhere). */
static void test_gitfile(void **state)
{
    struct fixture *f = *state;
    scratch_mkdirs(&f->s, "main/.git/hooks");
    scratch_mkdirs(&f->s, "main/.git/worktrees/wt");
    scratch_mkdirs(&f->s, "ws/wt");
    char text[PATH_MAX + 16];
    int n = snprintf(text, sizeof(text), "gitdir: %s/main/.git/worktrees/wt\n", f->s.root);
    assert_true(n > 0 && (size_t)n < sizeof(text));
    scratch_put(&f->s, "ws/wt/.git", text);
    scratch_put(&f->s, "main/.git/worktrees/wt/commondir", "../..\n");
    discover(f, 0, 0);
    assert_true(has(f, "main/.git/worktrees/wt/hooks"));
    assert_true(has(f, "main/.git/worktrees/wt/config"));
    assert_true(has(f, "main/.git/hooks"));
    assert_true(has(f, "main/.git/config"));
    assert_int_equal(f->placeholders.len, 0);
    char p[PATH_MAX];
    struct stat st;
    scratch_path(p, &f->s, "main/.git/worktrees/wt/hooks");
    assert_int_equal(stat(p, &st), -1);
}

/* A .git file that is not "gitdir: ..." or names nothing is ignored. */
static void test_gitfile_malformed(void **state)
{
    struct fixture *f = *state;
    scratch_mkdirs(&f->s, "ws/a");
    scratch_mkdirs(&f->s, "ws/b");
    scratch_put(&f->s, "ws/a/.git", "not a gitdir line\n");
    scratch_put(&f->s, "ws/b/.git", "gitdir: /nonexistent/airlock-gitdir\n");
    discover(f, 0, 0);
    assert_int_equal(f->out.len, 0);
    assert_int_equal(f->placeholders.len, 0);
}

static void test_names(void **state)
{
    struct fixture *f = *state;
    scratch_mkdirs(&f->s, "ws/.claude");
    scratch_mkdirs(&f->s, "ws/.vscode");
    scratch_mkdirs(&f->s, "ws/proj/.idea");
    scratch_put(&f->s, "ws/.bashrc", "");
    scratch_put(&f->s, "ws/.zshrc", "");
    scratch_put(&f->s, "ws/.profile", "");
    scratch_put(&f->s, "ws/.gitmodules", "");
    scratch_put(&f->s, "ws/.mcp.json", "");
    scratch_put(&f->s, "ws/proj/.envrc", "");
    scratch_put(&f->s, "ws/README", "");
    discover(f, 0, 0);
    assert_true(has(f, "ws/.bashrc"));
    assert_true(has(f, "ws/.zshrc"));
    assert_true(has(f, "ws/.profile"));
    assert_true(has(f, "ws/.gitmodules"));
    assert_true(has(f, "ws/.mcp.json"));
    assert_true(has(f, "ws/.vscode"));
    assert_true(has(f, "ws/proj/.idea"));
    assert_true(has(f, "ws/proj/.envrc"));
    assert_true(has(f, "ws/.claude/settings.json"));
    assert_true(has(f, "ws/.claude/settings.local.json"));
    assert_true(has(f, "ws/.claude/commands"));
    assert_true(has(f, "ws/.claude/agents"));
    assert_true(has(f, "ws/.claude/hooks"));
    assert_false(has(f, "ws/.claude"));
    assert_false(has(f, "ws/README"));
}

/* The walk stops at the depth asked for (3 by default) and never enters
 * node_modules. */
static void test_depth_and_node_modules(void **state)
{
    struct fixture *f = *state;
    scratch_mkdirs(&f->s, "ws/a/b/c/d");
    scratch_mkdirs(&f->s, "ws/node_modules/pkg");
    scratch_put(&f->s, "ws/a/b/c/.bashrc", "");
    scratch_put(&f->s, "ws/a/b/c/d/.bashrc", "");
    scratch_put(&f->s, "ws/node_modules/pkg/.bashrc", "");
    discover(f, 0, 0);
    assert_true(has(f, "ws/a/b/c/.bashrc"));
    assert_false(has(f, "ws/a/b/c/d/.bashrc"));
    assert_false(has(f, "ws/node_modules/pkg/.bashrc"));
    al_strlist_free(&f->out);
    discover(f, 1, 0);
    assert_false(has(f, "ws/a/b/c/.bashrc"));
    al_strlist_free(&f->out);
    discover(f, 4, 0);
    assert_true(has(f, "ws/a/b/c/d/.bashrc"));
}

/* A symlinked directory is not followed (it may lead out of the root). */
static void test_symlink_not_followed(void **state)
{
    struct fixture *f = *state;
    scratch_mkdirs(&f->s, "elsewhere");
    scratch_put(&f->s, "elsewhere/.bashrc", "");
    char target[PATH_MAX], link[PATH_MAX];
    scratch_path(target, &f->s, "elsewhere");
    scratch_path(link, &f->s, "ws/link");
    assert_int_equal(symlink(target, link), 0);
    discover(f, 0, 0);
    assert_false(has(f, "ws/link/.bashrc"));
    assert_false(has(f, "elsewhere/.bashrc"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_repository, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hooks_placeholder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gitfile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gitfile_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_and_node_modules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_not_followed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
