#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "airlock/glob.h"

struct glob_case {
    const char *pattern;
    const char *path;
    int match;
};

static void check_cases(const struct glob_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = al_glob_match(cases[i].pattern, cases[i].path);
        if (got != cases[i].match)
            fail_msg("al_glob_match(\"%s\", \"%s\") = %d, want %d", cases[i].pattern, cases[i].path,
                     got, cases[i].match);
    }
}

static void literal_and_single_star(void **state)
{
    static const struct glob_case cases[] = {
        {"/etc/shadow", "/etc/shadow", 1},
        {"/etc/shadow", "/etc/shadow2", 0},
        {"/etc/shadow", "/etc", 0},
        {"/etc//shadow/", "/etc/shadow", 1},
        {"/etc/ssh/*_key", "/etc/ssh/ssh_host_rsa_key", 1},
        {"/etc/ssh/*_key", "/etc/ssh/ssh_host_rsa_key.pub", 0},
        {"/etc/ssh/*_key", "/etc/ssh/sub/x_key", 0},
        {"/a/*", "/a/b", 1},
        {"/a/*", "/a", 0},
        {"/a/*", "/a/b/c", 0},
        {"/a/*b*c", "/a/xxbyyc", 1},
        {"/a/*b*c", "/a/xxbyyd", 0},
        {"/a/f?o", "/a/foo", 1},
        {"/a/f?o", "/a/fo", 0},
        {"/a/f?o", "/a/f/o", 0},
        {"/a/f?o", "/a/f\xc3\xa9o", 1}, /* ? is one character, not one byte */
        {"/a/*", "/a/.hidden", 1},      /* * matches a leading dot */
        {"relative/*", "relative/x", 1},
        {"/abs/*", "abs/x", 0},
        {"/", "/", 1},
        {"/*", "/", 0},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void globstar(void **state)
{
    static const struct glob_case cases[] = {
        {"/a/**/b", "/a/b", 1},
        {"/a/**/b", "/a/x/b", 1},
        {"/a/**/b", "/a/x/y/z/b", 1},
        {"/a/**/b", "/a/x/y/z/c", 0},
        {"/a/**/b", "/b", 0},
        {"/a/**", "/a", 1},
        {"/a/**", "/a/x/y", 1},
        {"/**", "/", 1},
        {"/**", "/anything/at/all", 1},
        {"/a/**/**/b", "/a/b", 1},
        {"/a/**/x/**/b", "/a/1/x/2/3/b", 1},
        {"/a/**/x/**/b", "/a/1/2/3/b", 0},
        {"/a/x**y", "/a/xzzy", 1}, /* ** inside a component is a plain * */
        {"/a/x**y", "/a/xz/zy", 0},
        {"/a/**/c/d", "/a/c/c/d", 1}, /* needs backtracking */
        {"/a/**/c/d", "/a/c/c/e/d", 0},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* The patterns users write: ~/.*_key, **\/.env*, *\/.env* (after expansion
 * against home /home/u and working directory /w). */
static void user_patterns(void **state)
{
    static const struct glob_case cases[] = {
        {"/home/u/.*_key", "/home/u/.deploy_key", 1},
        {"/home/u/.*_key", "/home/u/._key", 1},
        {"/home/u/.*_key", "/home/u/deploy_key", 0},
        {"/home/u/.*_key", "/home/u/sub/.x_key", 0},
        {"/w/**/.env*", "/w/.env", 1},
        {"/w/**/.env*", "/w/.env.local", 1},
        {"/w/**/.env*", "/w/a/b/c/.env.production", 1},
        {"/w/**/.env*", "/w/a/env", 0},
        {"/w/**/.env*", "/other/.env", 0},
        {"/w/*/.env*", "/w/a/.env", 1},
        {"/w/*/.env*", "/w/.env", 0},
        {"/w/*/.env*", "/w/a/b/.env", 0},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Patterns that make naive recursive matchers exponential finish here (the
 * test has no clock: it only has to finish, and CI would time out if not). */
static void pathological(void **state)
{
    char *pattern = malloc(4097), *path = malloc(8192);
    assert_non_null(pattern);
    assert_non_null(path);

    /* many globstars against a deep path that does not end in x */
    size_t n = 0;
    while (n + 4 < 4000) {
        memcpy(pattern + n, "/**", 3);
        n += 3;
    }
    memcpy(pattern + n, "/x", 3);
    n = 0;
    while (n + 3 < 8000) {
        memcpy(path + n, "/ab", 3);
        n += 3;
    }
    path[n] = '\0';
    assert_int_equal(al_glob_match(pattern, path), 0);
    memcpy(path + n, "/x", 3);
    assert_int_equal(al_glob_match(pattern, path), 1);

    /* many stars inside one component against a long run of 'a' */
    pattern[0] = '/';
    n = 1;
    while (n + 3 < 4000) {
        memcpy(pattern + n, "*a", 2);
        n += 2;
    }
    memcpy(pattern + n, "*b", 3);
    path[0] = '/';
    memset(path + 1, 'a', 8000);
    path[8001] = '\0';
    assert_int_equal(al_glob_match(pattern, path), 0);

    /* alternating globstars and component stars */
    n = 0;
    while (n + 8 < 4000) {
        memcpy(pattern + n, "/**/*a*", 7);
        n += 7;
    }
    memcpy(pattern + n, "/z", 3);
    n = 0;
    while (n + 3 < 8000) {
        memcpy(path + n, "/aa", 3);
        n += 3;
    }
    path[n] = '\0';
    assert_int_equal(al_glob_match(pattern, path), 0);

    free(pattern);
    free(path);
}

static void has_magic(void **state)
{
    assert_true(al_glob_has_magic("/a/*"));
    assert_true(al_glob_has_magic("/a/?"));
    assert_true(al_glob_has_magic("/a/**/b"));
    assert_false(al_glob_has_magic("/a/b"));
    assert_false(al_glob_has_magic("/a/[b]"));
}

static void literal_prefix(void **state)
{
    static const char *const cases[][2] = {
        {"/home/u/**/.env*", "/home/u"},
        {"/home/u/.*_key", "/home/u"},
        {"/etc/ssh/*_key", "/etc/ssh"},
        {"/**/x", "/"},
        {"/*", "/"},
        {"/a/b/c", "/a/b/c"},
        {"/a//b///c*/d", "/a/b"},
        {"/", "/"},
        {"/a/b?/c", "/a"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = al_glob_literal_prefix(cases[i][0]);
        assert_non_null(got);
        assert_string_equal(got, cases[i][1]);
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_and_single_star),
        cmocka_unit_test(globstar),
        cmocka_unit_test(user_patterns),
        cmocka_unit_test(pathological),
        cmocka_unit_test(has_magic),
        cmocka_unit_test(literal_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
