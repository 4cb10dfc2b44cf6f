/* The job's own fields of a POST /v1/jobs body (core/jobs_body.c):
 * accepted shapes and the 400 for each malformed one, with its field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "airlockd/core/jobs.h"

#include "airlock/error.h"

static const struct ald_jobs_config jc = {4, 2, 1024 * 1024, 3600, 86400, 100};

static int parse(const char *body, json_t **fields, json_t **spec, struct ald_fault *f)
{
    memset(f, 0, sizeof(*f));
    return ald_job_body_parse(body, strlen(body), &jc, fields, spec, f);
}

/* Expects a 400 on `field` (NULL: any) with code `code` (NULL: any). */
static void refused(const char *body, const char *field, const char *code)
{
    json_t *fields = NULL, *spec = NULL;
    struct ald_fault f;
    if (parse(body, &fields, &spec, &f) == 0)
        fail_msg("accepted: %s", body);
    assert_null(fields);
    assert_null(spec);
    assert_int_equal(f.kind, ALD_FAULT_INVALID);
    assert_non_null(f.code);
    assert_true(f.message[0] != '\0');
    if (field && strcmp(f.field, field) != 0)
        fail_msg("%s: field \"%s\", expected \"%s\" (%s)", body, f.field, field, f.message);
    if (code && strcmp(f.code, code) != 0)
        fail_msg("%s: code \"%s\", expected \"%s\"", body, f.code, code);
}

static void test_accepted(void **state)
{
    (void)state;
    json_t *fields = NULL, *spec = NULL;
    struct ald_fault f;
    assert_int_equal(parse("{\"command\": [\"sh\", \"-c\", \"echo hi\"]}", &fields, &spec, &f), 0);
    assert_int_equal(json_array_size(json_object_get(fields, "argv")), 3);
    assert_int_equal(json_integer_value(json_object_get(fields, "timeout_s")), 3600);
    assert_true(json_is_false(json_object_get(fields, "push")));
    assert_true(json_is_null(json_object_get(fields, "pull_request")));
    assert_true(json_is_null(json_object_get(fields, "webhook")));
    assert_true(json_is_null(json_object_get(fields, "repo")));
    assert_int_equal(json_object_size(spec), 0);
    json_decref(fields);
    json_decref(spec);
    /* a script runs with /bin/sh -c; the session's fields go to the spec */
    assert_int_equal(parse("{\"script\": \"make test\", \"repo\": \"https://h/o/r\","
                           " \"base\": \"main\", \"env\": {\"A\": \"1\"}, \"push\": true,"
                           " \"timeout_s\": 60, \"pull_request\": {\"title\": \"t\"},"
                           " \"webhook\": {\"url\": \"https://x/h\", \"secret\": \"s\"},"
                           " \"limits\": {\"memory_mb\": 64}}",
                           &fields, &spec, &f),
                     0);
    json_t *argv = json_object_get(fields, "argv");
    assert_string_equal(json_string_value(json_array_get(argv, 0)), "/bin/sh");
    assert_string_equal(json_string_value(json_array_get(argv, 1)), "-c");
    assert_string_equal(json_string_value(json_array_get(argv, 2)), "make test");
    assert_int_equal(json_integer_value(json_object_get(fields, "timeout_s")), 60);
    assert_true(json_is_true(json_object_get(fields, "push")));
    assert_string_equal(json_string_value(json_object_get(fields, "repo")), "https://h/o/r");
    assert_string_equal(json_string_value(json_object_get(fields, "base")), "main");
    assert_int_equal(json_object_size(spec), 4); /* repo, base, env, limits */
    assert_null(json_object_get(spec, "script"));
    assert_null(json_object_get(spec, "webhook"));
    assert_null(json_object_get(spec, "push"));
    json_decref(fields);
    json_decref(spec);
    /* null pull_request and webhook: none */
    assert_int_equal(parse("{\"command\": [\"true\"], \"pull_request\": null, \"webhook\": null}",
                           &fields, &spec, &f),
                     0);
    json_decref(fields);
    json_decref(spec);
}

static void test_refused(void **state)
{
    (void)state;
    refused("", NULL, "invalid_json");
    refused("{", NULL, "invalid_json");
    refused("[]", NULL, "invalid_json");
    refused("null", NULL, "invalid_json");
    refused("{\"command\": [\"a\"], \"command\": [\"b\"]}", NULL, "invalid_json");
    refused("{}", "command", "invalid_value");
    refused("{\"command\": []}", "command", NULL);
    refused("{\"command\": \"echo\"}", "command", NULL);
    refused("{\"command\": [1]}", "command", NULL);
    refused("{\"command\": [\"\"]}", "command", NULL);
    refused("{\"command\": [\"a\\u0000b\"]}", NULL, "invalid_json");
    /* a command of more than 256 KiB in all (each string under 64 KiB) */
    {
        size_t n = 5 * 60 * 1024, at = 0;
        char *big = malloc(n + 64);
        assert_non_null(big);
        at += (size_t)snprintf(big, n + 64, "{\"command\": [\"a\"");
        for (int k = 0; k < 5; k++) {
            big[at++] = ',';
            big[at++] = '"';
            memset(big + at, 'x', 60 * 1024 - 16);
            at += 60 * 1024 - 16;
            big[at++] = '"';
        }
        snprintf(big + at, n + 64 - at, "]}");
        refused(big, "command", "invalid_value");
        /* four of them fit */
        char *cut = strstr(big, ",\"");
        for (int k = 0; k < 4 && cut; k++)
            cut = strstr(cut + 1, ",\"");
        assert_non_null(cut);
        snprintf(cut, 3, "]}");
        json_t *fields = NULL, *spec = NULL;
        struct ald_fault f;
        assert_int_equal(parse(big, &fields, &spec, &f), 0);
        json_decref(fields);
        json_decref(spec);
        free(big);
    }
    refused("{\"command\": [\"a\"], \"script\": \"b\"}", "command", NULL);
    refused("{\"script\": \"\"}", "script", NULL);
    refused("{\"script\": [\"x\"]}", "script", NULL);
    refused("{\"command\": [\"a\"], \"timeout_s\": 0}", "timeout_s", NULL);
    refused("{\"command\": [\"a\"], \"timeout_s\": 86401}", "timeout_s", NULL);
    refused("{\"command\": [\"a\"], \"timeout_s\": -1}", "timeout_s", NULL);
    refused("{\"command\": [\"a\"], \"timeout_s\": 1.5}", "timeout_s", NULL);
    refused("{\"command\": [\"a\"], \"timeout_s\": \"5\"}", "timeout_s", NULL);
    refused("{\"command\": [\"a\"], \"push\": 1}", "push", NULL);
    refused("{\"command\": [\"a\"], \"push\": true}", "push", NULL);
    refused("{\"command\": [\"a\"], \"repo\": \"https://h/o/r\", \"pull_request\": {\"title\":"
            " \"t\"}}",
            "pull_request", NULL);
    refused("{\"command\": [\"a\"], \"repo\": \"r\", \"push\": true, \"pull_request\": 1}",
            "pull_request", NULL);
    refused("{\"command\": [\"a\"], \"repo\": \"r\", \"push\": true, \"pull_request\": {}}",
            "pull_request.title", NULL);
    refused("{\"command\": [\"a\"], \"repo\": \"r\", \"push\": true, \"pull_request\":"
            " {\"title\": \"t\", \"body\": 5}}",
            "pull_request.body", NULL);
    refused("{\"command\": [\"a\"], \"repo\": \"r\", \"push\": true, \"pull_request\":"
            " {\"title\": \"t\", \"draft\": true}}",
            "pull_request.draft", "unknown_field");
    refused("{\"command\": [\"a\"], \"webhook\": \"https://x/\"}", "webhook", NULL);
    refused("{\"command\": [\"a\"], \"webhook\": {\"secret\": \"s\"}}", "webhook.url", NULL);
    refused("{\"command\": [\"a\"], \"webhook\": {\"url\": \"https://x/\"}}", "webhook.secret",
            NULL);
    refused("{\"command\": [\"a\"], \"webhook\": {\"url\": \"https://x/\", \"secret\": \"\"}}",
            "webhook.secret", NULL);
    refused("{\"command\": [\"a\"], \"webhook\": {\"url\": \"https://x/\", \"secret\": \"s\","
            " \"x\": 1}}",
            "webhook.x", "unknown_field");
    /* over the bounds */
    size_t big = 64 * 1024 + 1;
    char *body = malloc(big + 64);
    assert_non_null(body);
    memcpy(body, "{\"script\": \"", 12);
    memset(body + 12, 'x', big);
    memcpy(body + 12 + big, "\"}", 3);
    refused(body, "script", NULL);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
