/* Unit tests for the status pipe of every sandbox (contain.c): one struct
 * sb_status or nothing, then end-of-file. Against real pipes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sandbox_int.h"

#include "airlock/error.h"

#include <string.h>
#include <unistd.h>

static void test_record(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    sb_status_write(p[1], SB_NOT_FOUND, 2, "cmd: No such file or directory");
    close(p[1]);
    struct sb_status st;
    assert_int_equal(sb_status_read(p[0], &st, 1000), 1);
    assert_int_equal(st.outcome, SB_NOT_FOUND);
    assert_int_equal(st.code, 2);
    assert_string_equal(st.message, "cmd: No such file or directory");
    close(p[0]);
}

/* End-of-file without a byte: the setup went through. */
static void test_eof(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[1]);
    struct sb_status st;
    assert_int_equal(sb_status_read(p[0], &st, -1), 0);
    close(p[0]);
}

static void test_partial(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "setup failed", 12), 12);
    close(p[1]);
    struct sb_status st;
    assert_int_equal(sb_status_read(p[0], &st, 1000), AL_EIO);
    close(p[0]);
}

/* A writer still holding the pipe, nothing written: no wait beyond the
 * timeout (0: none at all). */
static void test_timeout(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct sb_status st;
    assert_int_equal(sb_status_read(p[0], &st, 0), AL_ETIMEOUT);
    assert_int_equal(sb_status_read(p[0], &st, 20), AL_ETIMEOUT);
    close(p[0]);
    close(p[1]);
}

/* A message without its NUL is cut, never read past. */
static void test_unterminated(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct sb_status raw;
    memset(&raw, 'x', sizeof(raw));
    raw.outcome = SB_SETUP_FAILED;
    raw.code = 0;
    assert_int_equal(write(p[1], &raw, sizeof(raw)), (ssize_t)sizeof(raw));
    close(p[1]);
    struct sb_status st;
    assert_int_equal(sb_status_read(p[0], &st, 1000), 1);
    assert_int_equal(strlen(st.message), sizeof(st.message) - 1);
    close(p[0]);
}

/* A long message is cut to fit; NULL writes an empty one. */
static void test_write_bounds(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    char big[1000];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sb_status_write(p[1], SB_SETUP_FAILED, 0, big);
    sb_status_write(p[1], SB_EXITED, 3, NULL);
    close(p[1]);
    struct sb_status st;
    assert_int_equal(sb_status_read(p[0], &st, 1000), 1);
    assert_int_equal(strlen(st.message), sizeof(st.message) - 1);
    assert_int_equal(sb_status_read(p[0], &st, 1000), 1);
    assert_int_equal(st.outcome, SB_EXITED);
    assert_int_equal(st.code, 3);
    assert_string_equal(st.message, "");
    close(p[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record),       cmocka_unit_test(test_eof),
        cmocka_unit_test(test_partial),      cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_unterminated), cmocka_unit_test(test_write_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
