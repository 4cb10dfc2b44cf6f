#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "airlock/gp_refname.h"

static int valid(const char *s)
{
    return gp_refname_valid(s, strlen(s));
}

static void accepts_valid_names(void **state)
{
    const char *ok[] = {"refs/heads/main",
                        "refs/heads/agent/feature-1",
                        "refs/tags/v1.0",
                        "refs/heads/a.b",
                        "refs/heads/x@y",
                        "refs/heads/a/b/c/d",
                        "refs/heads/\xc3\xa9t\xc3\xa9",
                        "refs/heads/lock.x"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(valid(ok[i]));
}

static void refuses_invalid_names(void **state)
{
    const char *bad[] = {"",
                         "main",
                         "refs",
                         "refs/",
                         "HEAD",
                         "refs/heads/",
                         "refs/heads//x",
                         "refs/heads/a..b",
                         "refs/heads/.hidden",
                         "refs/heads/a/.b",
                         "refs/heads/x.lock",
                         "refs/heads/x.lock/y",
                         "refs/heads/x.",
                         "refs/heads/a b",
                         "refs/heads/a~1",
                         "refs/heads/a^",
                         "refs/heads/a:b",
                         "refs/heads/a?",
                         "refs/heads/a*",
                         "refs/heads/a[b",
                         "refs/heads/a\\b",
                         "refs/heads/a@{1}",
                         "refs/heads/\x01x",
                         "refs/heads/\x7f",
                         "/refs/heads/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (valid(bad[i]))
            fail_msg("accepted '%s'", bad[i]);
    }
    /* A NUL inside the given length is refused. */
    assert_false(gp_refname_valid("refs/heads/a\0b", 14));
    char longname[GP_REFNAME_MAX + 20];
    memset(longname, 'a', sizeof(longname));
    memcpy(longname, "refs/heads/", 11);
    assert_false(gp_refname_valid(longname, GP_REFNAME_MAX + 1));
    assert_true(gp_refname_valid(longname, GP_REFNAME_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_valid_names),
        cmocka_unit_test(refuses_invalid_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
