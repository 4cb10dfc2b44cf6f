/* ald_console_find (airlockd/src/api/console.c): the lookup of a console
 * file from the raw URL path below /console/. Only an asset's exact name
 * (or "" for index.html) finds anything; every traversal or encoding trick
 * finds nothing. Also checks the generated table (embed.cmake). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "airlockd/api/console.h"

static const struct ald_console_asset *find(const char *s)
{
    return ald_console_find(s, strlen(s));
}

static void test_found(void **state)
{
    (void)state;
    const struct ald_console_asset *a = find("");
    assert_non_null(a);
    assert_string_equal(a->name, "index.html");
    assert_ptr_equal(find("index.html"), a);
    a = find("js/app.js");
    assert_non_null(a);
    assert_string_equal(a->type, "text/javascript; charset=utf-8");
    a = find("css/console.css");
    assert_non_null(a);
    assert_string_equal(a->type, "text/css; charset=utf-8");
    /* the length counts, not a NUL: "index.html" followed by more bytes */
    assert_ptr_equal(ald_console_find("index.htmlXYZ", 10), find("index.html"));
    assert_null(ald_console_find("index.html", 9));
}

static void test_table(void **state)
{
    (void)state;
    assert_true(ald_console_n_assets >= 3);
    for (size_t i = 0; i < ald_console_n_assets; i++) {
        const struct ald_console_asset *a = &ald_console_assets[i];
        assert_ptr_equal(find(a->name), a);
        assert_true(a->len > 0);
        assert_non_null(a->data);
        assert_non_null(a->type);
        /* a strong ETag: 32 hex digits in quotes */
        assert_int_equal(strlen(a->etag), 34);
        assert_true(a->etag[0] == '"' && a->etag[33] == '"');
        assert_int_equal(strspn(a->etag + 1, "0123456789abcdef"), 32);
        if (i > 0)
            assert_true(strcmp(ald_console_assets[i - 1].name, a->name) < 0);
    }
}

static void test_refused(void **state)
{
    (void)state;
    static const char *bad[] = {
        "..",
        "../",
        "../index.html",
        "js/../index.html",
        "js/../../etc/passwd",
        "./index.html",
        "js/./app.js",
        "/index.html",
        "//index.html",
        "js//app.js",
        "index.html/",
        "js/",
        "js",
        "%2e%2e/index.html",
        "js%2fapp.js",
        "js%2Fapp.js",
        "js\\app.js",
        "..\\index.html",
        "index.html%00",
        "index.html?x",
        "index.html#x",
        "INDEX.HTML",
        "index.htm",
        "index.html ",
        " index.html",
        "index.html\r\n",
        "\xc0\xae\xc0\xae/index.html",
        "embed.cmake",
        "js/app.js.map",
        "~/index.html",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_null(find(bad[i]));
    /* a NUL inside the length */
    assert_null(ald_console_find("index.html\0", 11));
    assert_null(ald_console_find("js/\0app.js", 10));
    /* long input */
    char big[4096];
    memset(big, 'a', sizeof(big));
    assert_null(ald_console_find(big, sizeof(big)));
    for (size_t i = 0; i + 1 < sizeof(big); i += 2)
        big[i + 1] = '/';
    assert_null(ald_console_find(big, sizeof(big)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
