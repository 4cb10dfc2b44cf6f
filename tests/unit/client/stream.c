/* The `airlock session` client's stream parsers: NDJSON lines of an exec,
 * exec events, base64, server-sent events; well-formed and malformed input,
 * fed whole and byte by byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/base64.h"
#include "airlock/error.h"
#include "client_stream.h"

struct lines {
    char got[16][64];
    int n;
    int stop_at; /* return an error at this line (1-based), 0: never */
};

static int collect(const char *line, size_t len, void *payload)
{
    struct lines *l = payload;
    assert_int_equal(line[len], '\0');
    if (l->n < 16)
        snprintf(l->got[l->n], sizeof(l->got[0]), "%.*s", (int)len, line);
    l->n++;
    if (l->stop_at && l->n == l->stop_at)
        return AL_EPERM;
    return 0;
}

static void ndjson_splits_lines_in_any_chunks(void **state)
{
    const char in[] = "{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}\n";
    for (size_t step = 1; step <= sizeof(in); step++) {
        struct cl_ndjson p;
        struct lines l = {0};
        cl_ndjson_init(&p, 64);
        for (size_t i = 0; i < sizeof(in) - 1; i += step) {
            size_t n = sizeof(in) - 1 - i < step ? sizeof(in) - 1 - i : step;
            assert_int_equal(cl_ndjson_feed(&p, in + i, n, collect, &l), 0);
        }
        assert_int_equal(cl_ndjson_finish(&p), 0);
        assert_int_equal(l.n, 3);
        assert_string_equal(l.got[0], "{\"a\":1}");
        assert_string_equal(l.got[1], "{\"b\":2}");
        assert_string_equal(l.got[2], "{\"c\":3}");
        cl_ndjson_free(&p);
    }
}

static void ndjson_line_too_long_fails_and_stays_failed(void **state)
{
    struct cl_ndjson p;
    struct lines l = {0};
    char big[100];
    memset(big, 'x', sizeof(big));
    cl_ndjson_init(&p, 16);
    assert_int_equal(cl_ndjson_feed(&p, "short\n", 6, collect, &l), 0);
    assert_int_equal(cl_ndjson_feed(&p, big, 10, collect, &l), 0);
    assert_int_equal(cl_ndjson_feed(&p, big, 10, collect, &l), AL_ETOOBIG);
    assert_int_equal(cl_ndjson_feed(&p, "ok\n", 3, collect, &l), AL_EINVAL);
    assert_int_equal(cl_ndjson_finish(&p), AL_EINVAL);
    assert_int_equal(l.n, 1);
    cl_ndjson_free(&p);
    /* Exactly at the limit is fine. */
    cl_ndjson_init(&p, 16);
    assert_int_equal(cl_ndjson_feed(&p, big, 16, collect, &l), 0);
    assert_int_equal(cl_ndjson_feed(&p, "\n", 1, collect, &l), 0);
    assert_int_equal(l.n, 2);
    cl_ndjson_free(&p);
}

static void ndjson_unfinished_line_and_callback_error(void **state)
{
    struct cl_ndjson p;
    struct lines l = {.stop_at = 2};
    cl_ndjson_init(&p, 64);
    assert_int_equal(cl_ndjson_feed(&p, "a\nb\nc\n", 6, collect, &l), AL_EPERM);
    assert_int_equal(l.n, 2);
    cl_ndjson_free(&p);
    cl_ndjson_init(&p, 64);
    l = (struct lines){0};
    assert_int_equal(cl_ndjson_feed(&p, "a\nhalf", 6, collect, &l), 0);
    assert_int_equal(cl_ndjson_finish(&p), AL_EINVAL);
    cl_ndjson_free(&p);
}

static void base64_decodes_and_rejects(void **state)
{
    unsigned char out[16];
    assert_int_equal(al_base64_decode(out, "", 0), 0);
    assert_int_equal(al_base64_decode(out, "/w==", 4), 1);
    assert_int_equal(out[0], 0xff);
    assert_int_equal(al_base64_decode(out, "aGk=", 4), 2);
    assert_memory_equal(out, "hi", 2);
    assert_int_equal(al_base64_decode(out, "aGV5", 4), 3);
    assert_memory_equal(out, "hey", 3);
    assert_int_equal(al_base64_decode(out, "aGk", 3), AL_EINVAL);
    assert_int_equal(al_base64_decode(out, "a=Gk", 4), AL_EINVAL);
    assert_int_equal(al_base64_decode(out, "aG=k", 4), AL_EINVAL);
    assert_int_equal(al_base64_decode(out, "aGk=aGk=", 8), AL_EINVAL);
    assert_int_equal(al_base64_decode(out, "a\nk=", 4), AL_EINVAL);
    assert_int_equal(al_base64_decode(out, "====", 4), AL_EINVAL);
}

static void exec_events_parse(void **state)
{
    struct cl_exec_event ev;
    const char *l;
    l = "{\"type\":\"start\",\"process\":\"p_7\",\"pid\":12}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(ev.kind, CL_EXEC_START);
    assert_string_equal(ev.process, "p_7");
    assert_int_equal(ev.pid, 12);
    cl_exec_event_free(&ev);
    l = "{\"type\":\"stdout\",\"data\":\"a\\u0000b\\n\"}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(ev.kind, CL_EXEC_STDOUT);
    assert_int_equal(ev.data_len, 4);
    assert_memory_equal(ev.data, "a\0b\n", 4);
    cl_exec_event_free(&ev);
    l = "{\"type\":\"stderr\",\"data_b64\":\"/w==\"}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(ev.kind, CL_EXEC_STDERR);
    assert_int_equal(ev.data_len, 1);
    assert_int_equal(ev.data[0], 0xff);
    cl_exec_event_free(&ev);
    l = "{\"type\":\"exit\",\"code\":3,\"signal\":null,\"reason\":\"exited\",\"duration_ms\":3}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(cl_exec_event_status(&ev), 3);
    l = "{\"type\":\"exit\",\"code\":null,\"signal\":9,\"reason\":\"signaled\"}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(cl_exec_event_status(&ev), 137);
    l = "{\"type\":\"exit\",\"signal\":\"TERM\",\"reason\":\"signaled\"}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(cl_exec_event_status(&ev), 143);
    l = "{\"type\":\"exit\",\"code\":null,\"signal\":9,\"reason\":\"timeout\"}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(cl_exec_event_status(&ev), 124);
    l = "{\"type\":\"exit\",\"code\":null,\"signal\":9,\"reason\":\"memory\"}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(cl_exec_event_status(&ev), 137);
    l = "{\"type\":\"exit\",\"code\":127,\"reason\":\"not-found\",\"future\":[1]}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(cl_exec_event_status(&ev), 127);
    l = "{\"type\":\"exit\",\"code\":null,\"signal\":null,\"reason\":\"session-ended\"}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(cl_exec_event_status(&ev), 125);
}

static void exec_notices_parse(void **state)
{
    (void)state;
    struct cl_exec_event ev;
    const char *l = "{\"type\":\"notice\",\"event\":\"approval\",\"data\":{\"approval\":"
                    "\"n_3\",\"kind\":\"network\",\"host\":\"new.test\",\"port\":443,"
                    "\"state\":\"pending\",\"future\":true}}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(ev.kind, CL_EXEC_NOTICE);
    assert_int_equal(ev.notice, CL_NOTICE_APPROVAL);
    assert_string_equal(ev.id, "n_3");
    assert_string_equal(ev.host, "new.test");
    assert_int_equal(ev.port, 443);
    cl_exec_event_free(&ev);
    l = "{\"type\":\"notice\",\"event\":\"network\",\"data\":{\"host\":\"d.test\","
        "\"port\":80,\"decision\":\"deny\",\"reason\":\"blocked-by-policy\",\"rule\":"
        "\"d.test\",\"addr\":\"\",\"status\":403}}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(ev.notice, CL_NOTICE_NETWORK);
    assert_string_equal(ev.why, "blocked-by-policy");
    assert_string_equal(ev.rule, "d.test");
    assert_string_equal(ev.decision, "deny");
    cl_exec_event_free(&ev);
    /* no port: -1; control bytes are kept here (the printer escapes them) */
    l = "{\"type\":\"notice\",\"event\":\"network\",\"data\":{\"host\":\"a\\u001bb\"}}";
    assert_int_equal(cl_exec_event_parse(&ev, l, strlen(l)), 0);
    assert_int_equal(ev.port, -1);
    assert_string_equal(ev.host, "a\033b");
    cl_exec_event_free(&ev);
}

static void exec_events_malformed(void **state)
{
    static const char *bad[] = {
        "",
        "not json",
        "[1,2]",
        "\"stdout\"",
        "{}",
        "{\"type\":7}",
        "{\"type\":\"nope\"}",
        "{\"type\":\"stdout\"}",
        "{\"type\":\"stdout\",\"data\":5}",
        "{\"type\":\"stdout\",\"data_b64\":\"abc\"}",
        "{\"type\":\"stdout\",\"data_b64\":\"@@@@\"}",
        "{\"type\":\"exit\",\"code\":256}",
        "{\"type\":\"exit\",\"code\":-1}",
        "{\"type\":\"exit\",\"code\":\"0\"}",
        "{\"type\":\"exit\",\"signal\":0}",
        "{\"type\":\"exit\",\"signal\":65}",
        "{\"type\":\"exit\",\"signal\":\"NOPE\"}",
        "{\"type\":\"exit\",\"reason\":7}",
        "{\"type\":\"exit\",\"reason\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
        "{\"type\":\"start\",\"process\":\"p_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
        "{\"type\":\"start\",\"type\":\"exit\"}",
        "{\"type\":\"stdout\",\"data\":\"x\"} trailing",
        "{\"type\":\"notice\"}",
        "{\"type\":\"notice\",\"event\":\"approval\"}",
        "{\"type\":\"notice\",\"event\":\"approval\",\"data\":[]}",
        "{\"type\":\"notice\",\"event\":\"approval\",\"data\":{}}",
        "{\"type\":\"notice\",\"event\":\"other\",\"data\":{}}",
        "{\"type\":\"notice\",\"event\":7,\"data\":{}}",
        "{\"type\":\"notice\",\"event\":\"network\",\"data\":{\"port\":65536}}",
        "{\"type\":\"notice\",\"event\":\"network\",\"data\":{\"port\":-1}}",
        "{\"type\":\"notice\",\"event\":\"network\",\"data\":{\"port\":\"80\"}}",
        "{\"type\":\"notice\",\"event\":\"network\",\"data\":{\"host\":7}}",
        "{\"type\":\"notice\",\"event\":\"network\",\"data\":{\"host\":\"a\\u0000b\"}}",
        "{\"type\":\"notice\",\"event\":\"network\",\"data\":{\"reason\":"
        "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}",
        "{\"type\":\"notice\",\"event\":\"approval\",\"data\":{\"approval\":"
        "\"n_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cl_exec_event ev;
        assert_int_equal(cl_exec_event_parse(&ev, bad[i], strlen(bad[i])), AL_EINVAL);
        assert_null(ev.data);
    }
    /* Length is honoured: the NUL-free prefix only. */
    struct cl_exec_event ev;
    const char *l = "{\"type\":\"start\"}garbage";
    assert_int_equal(cl_exec_event_parse(&ev, l, 16), 0);
}

struct sse_got {
    char ids[8][64];
    char names[8][64];
    char data[8][128];
    int n;
};

static int sse_collect(const char *id, const char *event, const char *data, size_t len,
                       void *payload)
{
    struct sse_got *g = payload;
    assert_int_equal(data[len], '\0');
    if (g->n < 8) {
        snprintf(g->ids[g->n], 64, "%s", id);
        snprintf(g->names[g->n], 64, "%s", event);
        snprintf(g->data[g->n], 128, "%.*s", (int)len, data);
    }
    g->n++;
    return 0;
}

static void sse_parses_events_in_any_chunks(void **state)
{
    const char in[] = ": keepalive\n\n"
                      "id: 42\nevent: process_exit\ndata: {\"a\":1}\n\n"
                      "data:one\ndata: two\r\n\r\n"
                      "id: 43\nevent: state\nretry: 5\nunknown: x\ndata\n\n"
                      "event: no_data\n\n";
    for (size_t step = 1; step <= sizeof(in); step++) {
        struct cl_sse p;
        struct sse_got g = {0};
        cl_sse_init(&p, 256, sse_collect, &g);
        for (size_t i = 0; i < sizeof(in) - 1; i += step) {
            size_t n = sizeof(in) - 1 - i < step ? sizeof(in) - 1 - i : step;
            assert_int_equal(cl_sse_feed(&p, in + i, n), 0);
        }
        assert_int_equal(g.n, 3);
        assert_string_equal(g.ids[0], "42");
        assert_string_equal(g.names[0], "process_exit");
        assert_string_equal(g.data[0], "{\"a\":1}");
        assert_string_equal(g.ids[1], "42"); /* the last id persists */
        assert_string_equal(g.names[1], "message");
        assert_string_equal(g.data[1], "one\ntwo");
        assert_string_equal(g.ids[2], "43");
        assert_string_equal(g.names[2], "state");
        assert_string_equal(g.data[2], "");
        cl_sse_free(&p);
    }
}

static void sse_malformed(void **state)
{
    struct cl_sse p;
    struct sse_got g = {0};
    char big[600];
    memset(big, 'x', sizeof(big));
    memcpy(big, "data: ", 6);
    big[sizeof(big) - 1] = '\n';
    /* One line too long. */
    cl_sse_init(&p, 256, sse_collect, &g);
    assert_int_equal(cl_sse_feed(&p, big, sizeof(big)), AL_ETOOBIG);
    assert_int_equal(cl_sse_feed(&p, "\n", 1), AL_EINVAL);
    cl_sse_free(&p);
    /* Many short data lines making one event too large. */
    cl_sse_init(&p, 256, sse_collect, &g);
    int err = 0;
    for (int i = 0; i < 100 && err == 0; i++)
        err = cl_sse_feed(&p, "data: 0123456789\n", 17);
    assert_int_equal(err, AL_ETOOBIG);
    cl_sse_free(&p);
    /* NUL, long id, long event name. */
    cl_sse_init(&p, 256, sse_collect, &g);
    assert_int_equal(cl_sse_feed(&p, "data: a\0b\n", 10), AL_EINVAL);
    cl_sse_free(&p);
    cl_sse_init(&p, 256, sse_collect, &g);
    char line[100];
    int n = snprintf(line, sizeof(line), "id: %080d\n", 1);
    assert_int_equal(cl_sse_feed(&p, line, (size_t)n), AL_EINVAL);
    cl_sse_free(&p);
    cl_sse_init(&p, 256, sse_collect, &g);
    n = snprintf(line, sizeof(line), "event: %080d\n", 1);
    assert_int_equal(cl_sse_feed(&p, line, (size_t)n), AL_EINVAL);
    cl_sse_free(&p);
    assert_int_equal(g.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ndjson_splits_lines_in_any_chunks),
        cmocka_unit_test(ndjson_line_too_long_fails_and_stays_failed),
        cmocka_unit_test(ndjson_unfinished_line_and_callback_error),
        cmocka_unit_test(base64_decodes_and_rejects),
        cmocka_unit_test(exec_events_parse),
        cmocka_unit_test(exec_notices_parse),
        cmocka_unit_test(exec_events_malformed),
        cmocka_unit_test(sse_parses_events_in_any_chunks),
        cmocka_unit_test(sse_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
