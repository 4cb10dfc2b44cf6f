#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "airlock/refname.h"

static int ref_ok(const char *s)
{
    return al_refname_valid(s, strlen(s));
}

static int branch_ok(const char *s)
{
    return al_refname_branch_valid(s, strlen(s));
}

static void valid_refs(void **state)
{
    (void)state;
    static const char *const good[] = {
        "refs/heads/main",
        "refs/heads/airlock/s_0123456789abcdef0123",
        "refs/heads/a/b/c.d",
        "refs/tags/v1.2.3",
        "refs/heads/x-y_z+1",
        "refs/heads/a@b",
        "refs/heads/{x}",
        "refs/heads/caf\xc3\xa9",      /* U+00E9 */
        "refs/heads/\xe2\x82\xac",     /* U+20AC */
        "refs/heads/\xf0\x9f\x98\x80", /* U+1F600 */
        "refs/heads/\xf4\x8f\xbf\xbf", /* U+10FFFF */
        "refs/heads/a.b.lockx",
        "refs/heads/lock",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        if (!ref_ok(good[i]))
            fail_msg("refused: %s", good[i]);
}

static void malformed_refs(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "refs",
        "refs/",
        "heads/main",  /* not under refs/ */
        "refs/heads/", /* trailing slash */
        "refs/heads/a/",
        "refs/heads//a", /* empty component */
        "refs//heads/a",
        "/refs/heads/a",
        "refs/heads/a..b", /* .. */
        "refs/heads/..",
        "refs/heads/a@{1}", /* @{ */
        "refs/heads/@{",
        "refs/heads/a b", /* space */
        "refs/heads/a~1",
        "refs/heads/a^",
        "refs/heads/a:b",
        "refs/heads/a?",
        "refs/heads/a*",
        "refs/heads/a[b",
        "refs/heads/a\\b",
        "refs/heads/a\tb", /* control bytes */
        "refs/heads/a\nb",
        "refs/heads/a\rb",
        "refs/heads/a\x01",
        "refs/heads/a\x1f",
        "refs/heads/a\x7f",
        "refs/heads/a.lock", /* .lock at the end of a component */
        "refs/heads/a.lock/b",
        "refs/heads/.hidden", /* component starting with '.' */
        "refs/heads/a/.b",
        "refs/heads/a.", /* trailing '.' */
        "refs/heads/a/b.",
        "refs/heads/\x80",             /* stray continuation byte */
        "refs/heads/\xc0\xaf",         /* overlong '/' */
        "refs/heads/\xc1\xbf",         /* overlong */
        "refs/heads/\xe0\x80\xae",     /* overlong '.' */
        "refs/heads/\xe0\x9f\xbf",     /* overlong (below U+0800) */
        "refs/heads/\xf0\x8f\xbf\xbf", /* overlong (below U+10000) */
        "refs/heads/\xed\xa0\x80",     /* surrogate U+D800 */
        "refs/heads/\xf4\x90\x80\x80", /* above U+10FFFF */
        "refs/heads/\xf5\x80\x80\x80",
        "refs/heads/\xff",
        "refs/heads/\xc3", /* cut sequence at the end */
        "refs/heads/\xe2\x82",
        "refs/heads/\xe2\x82/x", /* cut by a slash */
        "refs/heads/\xc3(",      /* bad continuation */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        if (ref_ok(bad[i]))
            fail_msg("accepted: \"%s\"", bad[i]);
    /* "refs/heads" has two components: git accepts it as a ref name */
    assert_true(ref_ok("refs/heads"));
}

static void lengths_and_nul(void **state)
{
    (void)state;
    /* a NUL inside the given length is refused, whatever follows */
    assert_false(al_refname_valid("refs/heads/a\0b", 14));
    /* only `len` bytes are read: a prefix of a longer string */
    assert_true(al_refname_valid("refs/heads/main..x", 15));
    assert_false(al_refname_valid("refs/heads/main", 4));
    char big[AL_REFNAME_MAX + 2];
    memcpy(big, "refs/heads/", 11);
    memset(big + 11, 'a', sizeof(big) - 11);
    assert_true(al_refname_valid(big, AL_REFNAME_MAX));
    assert_false(al_refname_valid(big, AL_REFNAME_MAX + 1));
    /* a UTF-8 sequence cut by the length */
    assert_false(al_refname_valid("refs/heads/\xc3\xa9", 12));
    assert_true(al_refname_valid("refs/heads/\xc3\xa9", 13));
}

static void branches(void **state)
{
    (void)state;
    assert_true(branch_ok("main"));
    assert_true(branch_ok("airlock/fix-login"));
    assert_true(branch_ok("release/1.0"));
    assert_false(branch_ok(""));
    assert_false(branch_ok("-x")); /* leading '-' */
    assert_false(branch_ok("-"));
    assert_false(branch_ok("HEAD"));
    assert_true(branch_ok("HEADS"));
    assert_false(branch_ok("@")); /* "refs/heads/@" is fine for git, "@" is not */
    assert_true(branch_ok("a@"));
    assert_false(branch_ok("a..b"));
    assert_false(branch_ok("a/"));
    assert_false(branch_ok("/a"));
    assert_false(branch_ok("a//b"));
    assert_false(branch_ok("a.lock"));
    assert_false(branch_ok("a."));
    assert_false(branch_ok(".a"));
    assert_false(branch_ok("a b"));
    assert_false(branch_ok("a@{u}"));
    assert_false(branch_ok("a\x01"));
    assert_false(branch_ok("\xc0\xae\xc0\xae"));
    char big[AL_REFNAME_MAX];
    memset(big, 'b', sizeof(big));
    assert_true(al_refname_branch_valid(big, AL_REFNAME_MAX - 11));
    assert_false(al_refname_branch_valid(big, AL_REFNAME_MAX - 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_refs),
        cmocka_unit_test(malformed_refs),
        cmocka_unit_test(lengths_and_nul),
        cmocka_unit_test(branches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
