/* ald_git_clone_explain (airlockd/src/adapters/clonemsg.c): why a clone
 * failed, from the clone's stderr (untrusted bytes) and its exit status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "airlockd/adapters/clonemsg.h"

static char out[1024];

static const char *explain(const char *base, int code, const char *err, size_t len)
{
    ald_git_clone_explain(out, sizeof(out), "https://git.test/o/r", base, code, err, len);
    return out;
}

#define EXPLAIN(base, code, s) explain(base, code, s, sizeof(s) - 1)

static void proxy_reason_is_the_cause(void **state)
{
    (void)state;
    assert_string_equal(
        EXPLAIN(NULL, 128,
                "Cloning into '.'...\n"
                "remote: airlock: upstream x.test unreachable: unknown host\n"
                "fatal: unable to access 'http://127.0.0.1:7418/x.test/o/r.git/': The requested "
                "URL returned error: 502\n"),
        "cannot clone https://git.test/o/r: upstream x.test unreachable: unknown host; git said:\n"
        "  | Cloning into '.'...\n"
        "  | remote: airlock: upstream x.test unreachable: unknown host\n"
        "  | fatal: unable to access 'http://127.0.0.1:7418/x.test/o/r.git/': The requested "
        "URL returned error: 502");
}

static void missing_base_is_named(void **state)
{
    (void)state;
    assert_string_equal(
        EXPLAIN("feature/x", 128,
                "warning: Could not find remote branch feature/x to clone.\n"
                "fatal: Remote branch feature/x not found in upstream origin\n"),
        "cannot clone https://git.test/o/r: the base branch \"feature/x\" does not exist upstream "
        "(create's \"base\"); git said:\n"
        "  | warning: Could not find remote branch feature/x to clone.\n"
        "  | fatal: Remote branch feature/x not found in upstream origin");
    /* without a base, the same words are no cause */
    assert_non_null(strstr(EXPLAIN(NULL, 128, "fatal: Remote branch x not found\n"),
                           "git clone exited with status 128"));
}

static void other_failures_give_the_status_and_tail(void **state)
{
    (void)state;
    assert_string_equal(EXPLAIN(NULL, 2, ""),
                        "cannot clone https://git.test/o/r: git clone exited with status 2");
    /* only the last lines, blank ones and trailing blanks dropped, CR ends a line */
    assert_string_equal(EXPLAIN(NULL, 1, "one\n\ntwo  \r\nthree\rfour\nfive\n\n"),
                        "cannot clone https://git.test/o/r: git clone exited with status 1; git "
                        "said:\n  | two\n  | three\n  | four\n  | five");
}

static void hostile_bytes_are_shown_safely(void **state)
{
    (void)state;
    /* escape sequences, BEL, NUL, DEL and non-ASCII become '?' */
    static const char err[] = "remote: airlock: a\x1b[2Jb\x07\x00\x7f\xc3\xa9\n";
    explain(NULL, 128, err, sizeof(err) - 1);
    assert_string_equal(out, "cannot clone https://git.test/o/r: a?[2Jb?????; git said:\n"
                             "  | remote: airlock: a?[2Jb?????");
    for (const char *p = out; *p; p++)
        assert_true(*p == '\n' || (*p >= 0x20 && *p < 0x7f));
    /* an over-long line is cut with "..." */
    char big[5000];
    memset(big, 'x', sizeof(big));
    explain(NULL, 1, big, sizeof(big));
    assert_non_null(strstr(out, "  | xxxx"));
    assert_non_null(strstr(out, "..."));
    assert_true(strlen(out) < sizeof(out));
}

static void output_is_bounded_by_size(void **state)
{
    (void)state;
    static const char err[] = "remote: airlock: a long reason that does not fit\n";
    char small[40];
    ald_git_clone_explain(small, sizeof(small), "https://git.test/o/r", NULL, 1, err,
                          sizeof(err) - 1);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, "cannot clone https://git.test/o/r: a lo", sizeof(small) - 1);
    char one[1];
    ald_git_clone_explain(one, sizeof(one), "https://git.test/o/r", NULL, 1, "x", 1);
    assert_string_equal(one, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(proxy_reason_is_the_cause),
        cmocka_unit_test(missing_base_is_named),
        cmocka_unit_test(other_failures_give_the_status_and_tail),
        cmocka_unit_test(hostile_bytes_are_shown_safely),
        cmocka_unit_test(output_is_bounded_by_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
