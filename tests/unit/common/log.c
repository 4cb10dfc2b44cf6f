/* airlock/log.h: the JSON format (one valid JSON object per line whatever
 * the message holds: quotes, newlines, control bytes, invalid UTF-8, more
 * than the line holds), its fields, and the text format unchanged. Each
 * case captures stderr in a pipe and parses what was written with jansson. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "airlock/error.h"
#include "airlock/log.h"

/* Lines written to stderr while capturing, NUL-terminated. */
static char captured[65536];
static int saved_stderr = -1, pipe_fds[2] = {-1, -1};

static void capture_start(void)
{
    assert_int_equal(pipe2(pipe_fds, O_CLOEXEC), 0);
    /* big enough for every case: nothing blocks */
    fcntl(pipe_fds[1], F_SETPIPE_SZ, 1 << 20);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(pipe_fds[1], STDERR_FILENO) >= 0);
}

/* Returns the captured text (static). */
static const char *capture_end(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    close(pipe_fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(captured) - 1 &&
           (r = read(pipe_fds[0], captured + n, sizeof(captured) - 1 - n)) > 0)
        n += (size_t)r;
    close(pipe_fds[0]);
    captured[n] = '\0';
    return captured;
}

/* Parses the one line of `text`: it must end in its only newline, be valid
 * UTF-8 JSON, and have the five keys. Returns the object (caller frees). */
static json_t *one_line(const char *text)
{
    const char *nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
    for (const char *p = text; p < nl; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    json_error_t je;
    json_t *o = json_loadb(text, (size_t)(nl - text), 0, &je);
    if (!o)
        fail_msg("not JSON (%s): %s", je.text, text);
    assert_true(json_is_string(json_object_get(o, "time")));
    assert_true(json_is_string(json_object_get(o, "level")));
    assert_true(json_is_string(json_object_get(o, "component")));
    assert_true(json_is_string(json_object_get(o, "message")));
    json_t *fields = json_object_get(o, "fields");
    assert_true(json_is_object(fields));
    assert_int_equal(json_integer_value(json_object_get(fields, "pid")), getpid());
    return o;
}

/* Logs `msg` at `level` in JSON; returns the parsed line (caller frees). */
static json_t *log_json(enum al_log_level level, const char *msg)
{
    al_log_init("unit-log", AL_LOG_DEBUG);
    al_log_set_format(AL_LOG_FORMAT_JSON);
    capture_start();
    al_log(level, "%s", msg);
    return one_line(capture_end());
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void json_plain(void **state)
{
    (void)state;
    json_t *o = log_json(AL_LOG_INFO, "listening on 127.0.0.1:7070");
    assert_string_equal(str(o, "message"), "listening on 127.0.0.1:7070");
    assert_string_equal(str(o, "level"), "info");
    assert_string_equal(str(o, "component"), "unit-log");
    /* 2026-01-02T03:04:05.678Z */
    const char *t = str(o, "time");
    assert_int_equal(strlen(t), 24);
    assert_int_equal(t[10], 'T');
    assert_int_equal(t[23], 'Z');
    assert_null(json_object_get(json_object_get(o, "fields"), "session"));
    assert_null(json_object_get(json_object_get(o, "fields"), "truncated"));
    json_decref(o);
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int l = AL_LOG_ERROR; l <= AL_LOG_DEBUG; l++) {
        o = log_json((enum al_log_level)l, "x");
        assert_string_equal(str(o, "level"), names[l]);
        json_decref(o);
    }
}

static void json_escapes(void **state)
{
    (void)state;
    /* every byte from 1 to 255 */
    char all[256], msg[300];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    snprintf(msg, sizeof(msg), "bytes: %s", all);
    json_t *o = log_json(AL_LOG_WARN, msg);
    const char *m = str(o, "message");
    assert_non_null(m);
    /* ASCII, control bytes included, comes back as it was */
    assert_memory_equal(m, "bytes: ", 7);
    assert_memory_equal(m + 7, all, 127);
    /* each byte 0x80..0xff alone is invalid UTF-8: U+FFFD */
    for (int i = 0; i < 128; i++)
        assert_memory_equal(m + 7 + 127 + 3 * i, "\xef\xbf\xbd", 3);
    assert_int_equal(strlen(m), 7 + 127 + 3 * 128);
    json_decref(o);

    static const char *const cases[][2] = {
        {"say \"hi\"\\n", "say \"hi\"\\n"},
        {"two\nlines\r\n", "two\nlines\r\n"},
        {"tab\there, esc \x1b[31m, del \x7f", "tab\there, esc \x1b[31m, del \x7f"},
        {"utf-8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92 ok",
         "utf-8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92 ok"},
        /* overlong '/', a surrogate, past U+10FFFF, a cut sequence */
        {"over \xc0\xaf", "over \xef\xbf\xbd\xef\xbf\xbd"},
        {"surr \xed\xa0\x80", "surr \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"big \xf4\x90\x80\x80", "big \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        o = log_json(AL_LOG_INFO, cases[i][0]);
        assert_string_equal(str(o, "message"), cases[i][1]);
        json_decref(o);
    }
}

static void json_session_field(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"session s_4f2a created for alice", "s_4f2a"},
        {"session s_4f2a: teardown: gone", "s_4f2a"},
        {"session s_4f2a", "s_4f2a"},
        {"session s\"x created", NULL},
        {"sessions: 3", NULL},
        {"re-adopted 2 sessions", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        json_t *o = log_json(AL_LOG_INFO, cases[i][0]);
        json_t *sid = json_object_get(json_object_get(o, "fields"), "session");
        if (cases[i][1])
            assert_string_equal(json_string_value(sid), cases[i][1]);
        else
            assert_null(sid);
        json_decref(o);
    }
}

static void json_truncated(void **state)
{
    (void)state;
    /* longer than the message buffer, and with every byte escaped to 6 */
    size_t n = 10000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = i % 2 ? '\x01' : '\xff';
    big[n] = '\0';
    json_t *o = log_json(AL_LOG_ERROR, big);
    assert_true(json_is_true(json_object_get(json_object_get(o, "fields"), "truncated")));
    assert_true(strlen(str(o, "message")) > 1000);
    json_decref(o);
    /* a long session id next to a cut message */
    memset(big, '"', n);
    memcpy(big, "session s_1 ", 12);
    o = log_json(AL_LOG_ERROR, big);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "fields"), "session")),
                        "s_1");
    assert_true(json_is_true(json_object_get(json_object_get(o, "fields"), "truncated")));
    json_decref(o);
    free(big);
}

static void text_unchanged(void **state)
{
    (void)state;
    al_log_init("unit-log", AL_LOG_INFO);
    al_log_set_format(AL_LOG_FORMAT_TEXT);
    capture_start();
    al_log(AL_LOG_WARN, "a %s", "warning");
    al_log(AL_LOG_INFO, "a note");
    al_log(AL_LOG_DEBUG, "not shown");
    assert_string_equal(capture_end(), "unit-log: warning: a warning\nunit-log: a note\n");
}

static void format_from_env(void **state)
{
    (void)state;
    enum al_log_format f;
    assert_int_equal(al_log_format_parse(&f, "json"), 0);
    assert_int_equal(f, AL_LOG_FORMAT_JSON);
    assert_int_equal(al_log_format_parse(&f, "text"), 0);
    assert_int_equal(f, AL_LOG_FORMAT_TEXT);
    assert_int_equal(al_log_format_parse(&f, "JSON"), AL_EINVAL);
    setenv("AIRLOCK_LOG_FORMAT", "json", 1);
    al_log_init("unit-log", AL_LOG_INFO);
    capture_start();
    al_log(AL_LOG_INFO, "from the environment");
    json_t *o = one_line(capture_end());
    assert_string_equal(str(o, "message"), "from the environment");
    json_decref(o);
    unsetenv("AIRLOCK_LOG_FORMAT");
    al_log_init("unit-log", AL_LOG_INFO);
    capture_start();
    al_log(AL_LOG_INFO, "text again");
    assert_string_equal(capture_end(), "unit-log: text again\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_plain),         cmocka_unit_test(json_escapes),
        cmocka_unit_test(json_session_field), cmocka_unit_test(json_truncated),
        cmocka_unit_test(text_unchanged),     cmocka_unit_test(format_from_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
