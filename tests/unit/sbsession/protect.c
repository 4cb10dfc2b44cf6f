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

#include "airlock/error.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char root[PATH_MAX]; /* the scratch dir (realpath) */
    char ws[PATH_MAX];   /* the writable root searched */
    struct al_strlist out, placeholders;
};

static void path_of(char *out, const struct fixture *f, const char *rel)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", f->root, rel);
    assert_true(n > 0 && n < PATH_MAX);
}

static void mkdirs(const struct fixture *f, const char *rel)
{
    char p[PATH_MAX];
    path_of(p, f, rel);
    for (char *s = p + strlen(f->root) + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(p, 0755);
        *s = '/';
    }
    mkdir(p, 0755);
}

static void put(const struct fixture *f, const char *rel, const char *text)
{
    char p[PATH_MAX];
    path_of(p, f, rel);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char tmpl[] = "/tmp/airlock-protect-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(realpath(tmpl, f->root));
    path_of(f->ws, f, "ws");
    mkdirs(f, "ws");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    al_strlist_free(&f->out);
    al_strlist_free(&f->placeholders);
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static int has(const struct fixture *f, const char *rel)
{
    char p[PATH_MAX];
    path_of(p, f, rel);
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
    mkdirs(f, "ws/.git/hooks");
    mkdirs(f, "ws/.git/info");
    mkdirs(f, "ws/.git/modules/lib/modules/inner");
    mkdirs(f, "ws/.git/worktrees/wt");
    put(f, "ws/.git/config", "");
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
    path_of(p, f, "ws/.git/hooks");
    assert_int_equal(al_strlist_find(&f->placeholders, p), -1);
    path_of(p, f, "ws/.git/modules/lib/hooks");
    assert_true(al_strlist_find(&f->placeholders, p) >= 0);
}

/* A missing hooks/ in an existing .git is created (listed as a
 * placeholder): mount-based protection needs a path. */
static void test_hooks_placeholder(void **state)
{
    struct fixture *f = *state;
    mkdirs(f, "ws/.git");
    discover(f, 0, 1);
    assert_true(has(f, "ws/.git/hooks"));
    assert_false(has(f, "ws/.git/config")); /* allowGitConfig */
    char p[PATH_MAX];
    path_of(p, f, "ws/.git/hooks");
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
    mkdirs(f, "main/.git/hooks");
    mkdirs(f, "main/.git/worktrees/wt");
    mkdirs(f, "ws/wt");
    char text[PATH_MAX + 16];
    int n = snprintf(text, sizeof(text), "gitdir: %s/main/.git/worktrees/wt\n", f->root);
    assert_true(n > 0 && (size_t)n < sizeof(text));
    put(f, "ws/wt/.git", text);
    put(f, "main/.git/worktrees/wt/commondir", "../..\n");
    discover(f, 0, 0);
    assert_true(has(f, "main/.git/worktrees/wt/hooks"));
    assert_true(has(f, "main/.git/worktrees/wt/config"));
    assert_true(has(f, "main/.git/hooks"));
    assert_true(has(f, "main/.git/config"));
    assert_int_equal(f->placeholders.len, 0);
    char p[PATH_MAX];
    struct stat st;
    path_of(p, f, "main/.git/worktrees/wt/hooks");
    assert_int_equal(stat(p, &st), -1);
}

/* A .git file that is not "gitdir: ..." or names nothing is ignored. */
static void test_gitfile_malformed(void **state)
{
    struct fixture *f = *state;
    mkdirs(f, "ws/a");
    mkdirs(f, "ws/b");
    put(f, "ws/a/.git", "not a gitdir line\n");
    put(f, "ws/b/.git", "gitdir: /nonexistent/airlock-gitdir\n");
    discover(f, 0, 0);
    assert_int_equal(f->out.len, 0);
    assert_int_equal(f->placeholders.len, 0);
}

static void test_names(void **state)
{
    struct fixture *f = *state;
    mkdirs(f, "ws/.claude");
    mkdirs(f, "ws/.vscode");
    mkdirs(f, "ws/proj/.idea");
    put(f, "ws/.bashrc", "");
    put(f, "ws/.zshrc", "");
    put(f, "ws/.profile", "");
    put(f, "ws/.gitmodules", "");
    put(f, "ws/.mcp.json", "");
    put(f, "ws/proj/.envrc", "");
    put(f, "ws/README", "");
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
    mkdirs(f, "ws/a/b/c/d");
    mkdirs(f, "ws/node_modules/pkg");
    put(f, "ws/a/b/c/.bashrc", "");
    put(f, "ws/a/b/c/d/.bashrc", "");
    put(f, "ws/node_modules/pkg/.bashrc", "");
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
    mkdirs(f, "elsewhere");
    put(f, "elsewhere/.bashrc", "");
    char target[PATH_MAX], link[PATH_MAX];
    path_of(target, f, "elsewhere");
    path_of(link, f, "ws/link");
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
