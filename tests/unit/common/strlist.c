#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "airlock/strlist.h"

static void push_and_find(void **state)
{
    struct al_strlist l = AL_STRLIST_INIT;
    char name[16];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        assert_int_equal(al_strlist_push(&l, name), 0);
    }
    assert_int_equal(l.len, 100);
    assert_null(l.items[100]);
    assert_int_equal(al_strlist_find(&l, "s42"), 42);
    assert_int_equal(al_strlist_find(&l, "nope"), -1);
    assert_int_equal(al_strlist_push_unique(&l, "s7"), 0);
    assert_int_equal(l.len, 100);
    al_strlist_free(&l);
    assert_int_equal(l.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(push_and_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
