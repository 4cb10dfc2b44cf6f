/* The text of airlock's terminal questions (cli/src/run_prompt.c): the
 * command quoted for a question (terminal-safe, bounded, shell-readable)
 * and the answer line edited key by key, on well-formed and malformed
 * input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "run_prompt.h"

static const char *quote(char *out, size_t size, const char *const *argv, size_t argc)
{
    size_t n = run_prompt_quote(out, size, argv, argc);
    assert_int_equal(n, strlen(out));
    assert_true(n < size);
    return out;
}

static void test_quote_plain_and_quoted(void **state)
{
    (void)state;
    char out[128];
    const char *a[] = {"npm", "install", "--save-dev", "a/b.c@1.2"};
    assert_string_equal(quote(out, sizeof(out), a, 4), "npm install --save-dev a/b.c@1.2");
    const char *b[] = {"sh", "-c", "echo 'hi' && ls *", ""};
    assert_string_equal(quote(out, sizeof(out), b, 4), "sh -c 'echo '\\''hi'\\'' && ls *' ''");
}

static void test_quote_control_bytes(void **state)
{
    (void)state;
    char out[128];
    const char *a[] = {"printf", "\x1b[2J\r\n\x7f\xc3\xa9"};
    assert_string_equal(quote(out, sizeof(out), a, 2), "printf '?[2J?????"
                                                       "'");
    for (const char *p = out; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
}

static void test_quote_bounded(void **state)
{
    (void)state;
    char out[16];
    const char *a[] = {"averyveryverylongcommand", "x"};
    assert_string_equal(quote(out, sizeof(out), a, 2), "averyveryver...");
    const char *b[] = {"a", "b c d e f g h i j k"};
    assert_string_equal(quote(out, sizeof(out), b, 2), "a 'b c d e f...");
    char small[8];
    assert_string_equal(quote(small, sizeof(small), b, 2), "a 'b...");
    assert_string_equal(quote(out, sizeof(out), b, 0), "");
    const char *c[] = {NULL};
    assert_string_equal(quote(out, sizeof(out), c, 1), "''");
}

static enum run_prompt_state feed(struct run_prompt_line *l, const char *in, size_t *used,
                                  char *echo, size_t echo_size)
{
    return run_prompt_feed(l, in, strlen(in), used, echo, echo_size);
}

static void test_answer_words(void **state)
{
    (void)state;
    static const struct {
        const char *typed;
        char verdict;
    } cases[] = {
        {"y\r", 'y'}, {"Y\n", 'y'},      {"yes\r", 'y'},    {"YeS\r", 'y'},
        {"a\r", 'a'}, {"always\r", 'a'}, {" a\r", 'a'},     {"n\r", 'n'},
        {"\r", 'n'},  {"yess\r", 'n'},   {"ya\r", 'n'},     {"alwaysx\r", 'n'},
        {"x\r", 'n'}, {"x\by\r", 'y'},   {"n\x15y\r", 'y'}, {"\x1b[Ay\r", 'n'},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct run_prompt_line l = {0};
        char echo[64];
        size_t used;
        assert_int_equal(feed(&l, cases[i].typed, &used, echo, sizeof(echo)), RUN_PROMPT_DONE);
        assert_int_equal(used, strlen(cases[i].typed));
        assert_int_equal(run_prompt_verdict(&l), cases[i].verdict);
    }
}

static void test_answer_abort_and_more(void **state)
{
    (void)state;
    struct run_prompt_line l = {0};
    char echo[64];
    size_t used;
    assert_int_equal(feed(&l, "y", &used, echo, sizeof(echo)), RUN_PROMPT_MORE);
    assert_string_equal(echo, "y");
    assert_int_equal(feed(&l, "\x03rest", &used, echo, sizeof(echo)), RUN_PROMPT_ABORT);
    assert_int_equal(used, 1);
    struct run_prompt_line e = {0};
    assert_int_equal(feed(&e, "\x04", &used, echo, sizeof(echo)), RUN_PROMPT_ABORT);
    /* Ctrl-D on a non-empty line is ignored */
    assert_int_equal(feed(&l, "\x04", &used, echo, sizeof(echo)), RUN_PROMPT_MORE);
    /* the bytes after Enter are left to the caller */
    struct run_prompt_line m = {0};
    assert_int_equal(feed(&m, "a\rtyped ahead", &used, echo, sizeof(echo)), RUN_PROMPT_DONE);
    assert_int_equal(used, 2);
}

static void test_answer_bounds(void **state)
{
    (void)state;
    struct run_prompt_line l = {0};
    char echo[4];
    size_t used;
    char many[200];
    memset(many, 'y', sizeof(many) - 1);
    many[sizeof(many) - 1] = '\0';
    assert_int_equal(feed(&l, many, &used, echo, sizeof(echo)), RUN_PROMPT_MORE);
    assert_int_equal(l.len, RUN_PROMPT_LINE_MAX);
    assert_int_equal(strlen(echo), 3); /* cut, still terminated */
    /* erasing past the start is harmless */
    char erase[40];
    memset(erase, 0x7f, sizeof(erase) - 1);
    erase[sizeof(erase) - 1] = '\0';
    feed(&l, erase, &used, echo, sizeof(echo));
    assert_int_equal(l.len, 0);
    assert_string_equal(l.text, "");
    /* binary bytes and NULs are not typed */
    const char bin[] = {'\0', (char)0xff, (char)0x80, 'n', '\r'};
    assert_int_equal(run_prompt_feed(&l, bin, sizeof(bin), &used, echo, sizeof(echo)),
                     RUN_PROMPT_DONE);
    assert_string_equal(l.text, "n");
    /* no echo buffer at all */
    struct run_prompt_line z = {0};
    assert_int_equal(run_prompt_feed(&z, "y\r", 2, &used, NULL, 0), RUN_PROMPT_DONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote_plain_and_quoted), cmocka_unit_test(test_quote_control_bytes),
        cmocka_unit_test(test_quote_bounded),          cmocka_unit_test(test_answer_words),
        cmocka_unit_test(test_answer_abort_and_more),  cmocka_unit_test(test_answer_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
