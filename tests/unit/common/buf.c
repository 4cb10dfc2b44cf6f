#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "airlock/buf.h"
#include "airlock/error.h"

static void append_within_limit(void **state)
{
    struct al_buf b;
    al_buf_init(&b, 16);
    assert_int_equal(al_buf_append(&b, "hello", 5), 0);
    assert_int_equal(al_buf_printf(&b, " %d", 42), 0);
    assert_string_equal(b.ptr, "hello 42");
    assert_int_equal(b.len, 8);
    al_buf_free(&b);
}

static void append_past_limit_leaves_buffer_unchanged(void **state)
{
    struct al_buf b;
    al_buf_init(&b, 8);
    assert_int_equal(al_buf_puts(&b, "12345678"), 0);
    assert_int_equal(al_buf_puts(&b, "9"), AL_ETOOBIG);
    assert_int_equal(al_buf_printf(&b, "%s", "x"), AL_ETOOBIG);
    assert_string_equal(b.ptr, "12345678");
    assert_int_equal(al_buf_append(&b, "", (size_t)-1), AL_ETOOBIG);
    al_buf_free(&b);
}

static void detach_empty_gives_string(void **state)
{
    struct al_buf b;
    al_buf_init(&b, 8);
    char *s = al_buf_detach(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

static void read_file_respects_max(void **state)
{
    char path[] = "/tmp/airlock-buf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    close(fd);
    struct al_buf b;
    al_buf_init(&b, 9);
    assert_int_equal(al_buf_read_file(&b, path), AL_ETOOBIG);
    assert_non_null(strstr(al_error_last(), "larger than 9 bytes"));
    al_buf_free(&b);
    al_buf_init(&b, 10);
    assert_int_equal(al_buf_read_file(&b, path), 0);
    assert_string_equal(b.ptr, "0123456789");
    al_buf_free(&b);
    unlink(path);
    assert_int_equal(al_buf_read_file(&b, path), AL_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_within_limit),
        cmocka_unit_test(append_past_limit_leaves_buffer_unchanged),
        cmocka_unit_test(detach_empty_gives_string),
        cmocka_unit_test(read_file_respects_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
