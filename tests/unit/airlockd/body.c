#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "config.h"

#include "airlock/error.h"

static struct ald_config cfg;

static int setup(void **state)
{
    (void)state;
    return ald_config_init(&cfg);
}

static int teardown(void **state)
{
    (void)state;
    ald_config_free(&cfg);
    return 0;
}

/* A create body that must fail with `code` naming `field`. */
static void create_fails(const char *json, const char *code, const char *field)
{
    struct ald_create_req r;
    struct ald_apierr e;
    memset(&e, 0, sizeof(e));
    int err = ald_body_create(&r, json, strlen(json), &cfg, &e);
    if (err == 0) {
        ald_create_req_free(&r);
        fail_msg("accepted: %s", json);
    }
    if (strcmp(e.code, code) != 0)
        fail_msg("%s: code %s (%s), want %s", json, e.code, e.message, code);
    assert_int_equal(e.status, 400);
    if (field && strcmp(e.field, field) != 0)
        fail_msg("%s: field \"%s\", want \"%s\" (%s)", json, e.field, field, e.message);
}

static void exec_fails(const char *json, const char *code, const char *field)
{
    struct ald_exec_req r;
    struct ald_apierr e;
    memset(&e, 0, sizeof(e));
    int err = ald_body_exec(&r, json, strlen(json), "/workspace", &e);
    if (err == 0) {
        ald_exec_req_free(&r);
        fail_msg("accepted: %s", json);
    }
    if (strcmp(e.code, code) != 0)
        fail_msg("%s: code %s (%s), want %s", json, e.code, e.message, code);
    if (field && strcmp(e.field, field) != 0)
        fail_msg("%s: field \"%s\", want \"%s\" (%s)", json, e.field, field, e.message);
}

static void test_create_ok(void **state)
{
    (void)state;
    struct ald_create_req r;
    struct ald_apierr e;
    /* empty body = {} */
    assert_int_equal(ald_body_create(&r, "", 0, &cfg, &e), 0);
    assert_int_equal(r.limits.memory_mb, cfg.limits_default.memory_mb);
    assert_int_equal(r.mode, AL_MODE_AUTO_ALLOW);
    assert_null(r.settings);
    ald_create_req_free(&r);
    const char *json =
        "{\"settings\": {\"sandbox\": {\"filesystem\": {\"denyRead\": [\"/opt/x/.env*\"],"
        " \"allowWrite\": [\"/workspace/out\"]}}},"
        " \"limits\": {\"memory_mb\": 128, \"pids\": 32, \"cpu\": 0.5, \"ttl_s\": 60,"
        " \"idle_s\": 30}, \"env\": {\"FOO\": \"bar\", \"_X1\": \"\"}, \"mode\": \"regular\","
        " \"metadata\": {\"ticket\": \"ENG-42\"}}";
    assert_int_equal(ald_body_create(&r, json, strlen(json), &cfg, &e), 0);
    assert_int_equal(r.limits.memory_mb, 128);
    assert_int_equal(r.limits.pids, 32);
    assert_true(r.limits.cpu == 0.5);
    assert_int_equal(r.limits.ttl_s, 60);
    assert_int_equal(r.limits.idle_s, 30);
    assert_int_equal(r.mode, AL_MODE_REGULAR);
    assert_non_null(r.settings);
    assert_string_equal(json_string_value(json_object_get(r.env, "FOO")), "bar");
    assert_string_equal(json_string_value(json_object_get(r.metadata, "ticket")), "ENG-42");
    ald_create_req_free(&r);
    /* the srt shape too */
    json = "{\"settings\": {\"filesystem\": {\"denyRead\": [\"/opt/secret\"]}}}";
    assert_int_equal(ald_body_create(&r, json, strlen(json), &cfg, &e), 0);
    ald_create_req_free(&r);
}

static void test_create_malformed(void **state)
{
    (void)state;
    create_fails("{", "invalid_json", "");
    create_fails("nonsense", "invalid_json", "");
    create_fails("[]", "invalid_json", "");
    create_fails("\"x\"", "invalid_json", "");
    create_fails("{\"a\": 1, \"a\": 2}", "invalid_json", "");
    create_fails("{\"limts\": {}}", "unknown_field", "limts");
    create_fails("{\"limits\": {\"memory\": 1}}", "unknown_field", "limits.memory");
    create_fails("{\"limits\": []}", "wrong_type", "limits");
    create_fails("{\"limits\": {\"memory_mb\": \"512\"}}", "wrong_type", "limits.memory_mb");
    create_fails("{\"limits\": {\"memory_mb\": 5.5}}", "wrong_type", "limits.memory_mb");
    create_fails("{\"limits\": {\"memory_mb\": 1000000}}", "invalid_value", "limits.memory_mb");
    create_fails("{\"limits\": {\"memory_mb\": -1}}", "invalid_value", "limits.memory_mb");
    create_fails("{\"limits\": {\"memory_mb\": 1}}", "invalid_value", "limits.memory_mb");
    create_fails("{\"limits\": {\"pids\": 100000000}}", "invalid_value", "limits.pids");
    create_fails("{\"limits\": {\"cpu\": 99}}", "invalid_value", "limits.cpu");
    create_fails("{\"limits\": {\"cpu\": \"1\"}}", "wrong_type", "limits.cpu");
    create_fails("{\"limits\": {\"ttl_s\": 0}}", "invalid_value", "limits.ttl_s");
    create_fails("{\"limits\": {\"ttl_s\": 99999999999}}", "invalid_value", "limits.ttl_s");
    create_fails("{\"limits\": {\"idle_s\": true}}", "wrong_type", "limits.idle_s");
    create_fails("{\"env\": []}", "wrong_type", "env");
    create_fails("{\"env\": {\"1BAD\": \"x\"}}", "invalid_value", "env.1BAD");
    create_fails("{\"env\": {\"A-B\": \"x\"}}", "invalid_value", "env.A-B");
    create_fails("{\"env\": {\"\": \"x\"}}", "invalid_value", "env.");
    create_fails("{\"env\": {\"A\": 1}}", "wrong_type", "env.A");
    create_fails("{\"env\": {\"A\": \"x\\u0000y\"}}", "invalid_json",
                 ""); /* NUL: refused by the parser */
    create_fails("{\"mode\": \"yolo\"}", "invalid_value", "mode");
    create_fails("{\"mode\": 1}", "wrong_type", "mode");
    create_fails("{\"metadata\": \"x\"}", "wrong_type", "metadata");
    create_fails("{\"metadata\": {\"k\": 1}}", "wrong_type", "metadata.k");
    create_fails("{\"settings\": []}", "wrong_type", "settings");
    /* too many metadata keys, too long values */
    char big[4096];
    size_t n = (size_t)snprintf(big, sizeof(big), "{\"metadata\": {");
    for (int i = 0; i < 33; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"k%d\": \"v\"", i ? ", " : "", i);
    snprintf(big + n, sizeof(big) - n, "}}");
    create_fails(big, "invalid_value", "metadata");
    char longv[1024];
    memset(longv, 0, sizeof(longv));
    snprintf(longv, sizeof(longv), "{\"metadata\": {\"k\": \"%0300d\"}}", 0);
    create_fails(longv, "invalid_value", "metadata.k");
}

static void test_create_forbidden_settings(void **state)
{
    (void)state;
    create_fails("{\"settings\": {\"sandbox\": {\"filesystem\": {\"allowWrite\": [\"/etc\"]}}}}",
                 "invalid_value", "settings.allowWrite");
    create_fails("{\"settings\": {\"sandbox\": {\"filesystem\": {\"allowWrite\":"
                 " [\"/workspace/../etc\"]}}}}",
                 "invalid_value", "settings.allowWrite");
    create_fails("{\"settings\": {\"sandbox\": {\"filesystem\": {\"allowWrite\": [\"/**\"]}}}}",
                 "invalid_value", "settings.allowWrite");
    create_fails("{\"settings\": {\"sandbox\": {\"filesystem\": {\"allowRead\": [\"/root\"]}}}}",
                 "invalid_value", "settings.allowRead");
    /* deny entries inside the workspace could not be enforced */
    create_fails("{\"settings\": {\"sandbox\": {\"filesystem\": {\"denyRead\":"
                 " [\"/workspace/.env*\"]}}}}",
                 "invalid_value", "settings.denyRead");
    create_fails("{\"settings\": {\"filesystem\": {\"denyRead\": [\"~/.ssh\"]}}}", "invalid_value",
                 "settings.denyRead");
    create_fails("{\"settings\": {\"sandbox\": {\"filesystem\": {\"denyWrite\":"
                 " [\"/workspace\"]}}}}",
                 "invalid_value", "settings.denyWrite");
    create_fails("{\"settings\": {\"sandbox\": {\"excludedCommands\": [\"docker\"]}}}",
                 "invalid_value", "settings.sandbox.excludedCommands");
    create_fails("{\"settings\": {\"sandbox\": {\"allowUnsandboxedCommands\": true}}}",
                 "invalid_value", "settings.sandbox.allowUnsandboxedCommands");
    create_fails("{\"settings\": {\"sandbox\": {\"enableWeakerNestedSandbox\": true}}}",
                 "invalid_value", "settings.sandbox.enableWeakerNestedSandbox");
    create_fails("{\"settings\": {\"sandbox\": {\"network\": {\"allowUnixSockets\":"
                 " [\"/run/docker.sock\"]}}}}",
                 "invalid_value", "settings.sandbox.network.allowUnixSockets");
    create_fails("{\"settings\": {\"sandbox\": {\"allowAllUnixSockets\": true}}}", "invalid_value",
                 "settings.sandbox.allowAllUnixSockets");
    create_fails("{\"settings\": {\"enableWeakerNestedSandbox\": false}}", "invalid_value",
                 "settings.enableWeakerNestedSandbox");
    create_fails("{\"settings\": {\"sandbox\": {\"filesystem\": {\"denyRead\": 5}}}}",
                 "invalid_value", "settings");
    create_fails("{\"settings\": {\"sandbox\": {\"nonsense\": 1}}}", "invalid_value", "settings");
}

static void test_exec_ok(void **state)
{
    (void)state;
    struct ald_exec_req r;
    struct ald_apierr e;
    const char *json = "{\"argv\": [\"echo\", \"hi\"], \"env\": {\"A\": \"1\"}, \"cwd\": \"sub\","
                       " \"stdin\": \"text\", \"timeout_s\": 5, \"background\": false,"
                       " \"merge_stderr\": true}";
    assert_int_equal(ald_body_exec(&r, json, strlen(json), "/workspace", &e), 0);
    assert_string_equal(r.argv[0], "echo");
    assert_string_equal(r.argv[1], "hi");
    assert_null(r.argv[2]);
    assert_string_equal(r.cwd, "/workspace/sub");
    assert_int_equal(r.stdin_len, 4);
    assert_memory_equal(r.stdin_data, "text", 4);
    assert_int_equal(r.timeout_s, 5);
    assert_int_equal(r.merge_stderr, 1);
    ald_exec_req_free(&r);
    json = "{\"shell\": \"echo $X\", \"stdin_b64\": \"/w==\", \"background\": true,"
           " \"cwd\": \"/tmp\", \"argv\": null}";
    assert_int_equal(ald_body_exec(&r, json, strlen(json), "/workspace", &e), 0);
    assert_string_equal(r.argv[0], "/bin/sh");
    assert_string_equal(r.argv[1], "-c");
    assert_string_equal(r.argv[2], "echo $X");
    assert_int_equal(r.stdin_len, 1);
    assert_int_equal(r.stdin_data[0], 0xff);
    assert_string_equal(r.cwd, "/tmp");
    assert_int_equal(r.background, 1);
    ald_exec_req_free(&r);
    json = "{\"argv\": [\"true\"]}";
    assert_int_equal(ald_body_exec(&r, json, strlen(json), "/workspace", &e), 0);
    assert_string_equal(r.cwd, "/workspace");
    assert_int_equal(r.has_stdin, 0);
    ald_exec_req_free(&r);
}

static void test_exec_malformed(void **state)
{
    (void)state;
    exec_fails("", "invalid_json", "");
    exec_fails("{", "invalid_json", "");
    exec_fails("[\"echo\"]", "invalid_json", "");
    exec_fails("{}", "invalid_value", "argv");
    exec_fails("{\"argv\": [\"a\"], \"shell\": \"b\"}", "invalid_value", "shell");
    exec_fails("{\"argv\": []}", "invalid_value", "argv");
    exec_fails("{\"argv\": \"echo\"}", "wrong_type", "argv");
    exec_fails("{\"argv\": [\"echo\", 1]}", "wrong_type", "argv[1]");
    exec_fails("{\"argv\": [\"\"]}", "invalid_value", "argv[0]");
    exec_fails("{\"argv\": [\"a\\u0000b\"]}", "invalid_json", "");
    exec_fails("{\"shell\": 5}", "wrong_type", "shell");
    exec_fails("{\"argv\": [\"a\"], \"agrv\": 1}", "unknown_field", "agrv");
    exec_fails("{\"argv\": [\"a\"], \"env\": {\"A B\": \"x\"}}", "invalid_value", "env.A B");
    exec_fails("{\"argv\": [\"a\"], \"env\": [1]}", "wrong_type", "env");
    exec_fails("{\"argv\": [\"a\"], \"cwd\": 1}", "wrong_type", "cwd");
    exec_fails("{\"argv\": [\"a\"], \"stdin\": \"x\", \"stdin_b64\": \"eA==\"}", "invalid_value",
               "stdin_b64");
    exec_fails("{\"argv\": [\"a\"], \"stdin\": 1}", "wrong_type", "stdin");
    exec_fails("{\"argv\": [\"a\"], \"stdin_b64\": \"***\"}", "invalid_value", "stdin_b64");
    exec_fails("{\"argv\": [\"a\"], \"stdin_b64\": \"eA=\"}", "invalid_value", "stdin_b64");
    exec_fails("{\"argv\": [\"a\"], \"timeout_s\": -1}", "invalid_value", "timeout_s");
    exec_fails("{\"argv\": [\"a\"], \"timeout_s\": \"5\"}", "wrong_type", "timeout_s");
    exec_fails("{\"argv\": [\"a\"], \"timeout_s\": 99999999}", "invalid_value", "timeout_s");
    exec_fails("{\"argv\": [\"a\"], \"background\": 1}", "wrong_type", "background");
    exec_fails("{\"argv\": [\"a\"], \"merge_stderr\": \"yes\"}", "wrong_type", "merge_stderr");
}

static void test_signal_decision(void **state)
{
    (void)state;
    struct ald_apierr e;
    int sig = 0, allow = -1;
    assert_int_equal(ald_body_signal(&sig, "{\"signal\": \"TERM\"}", 18, &e), 0);
    assert_int_equal(sig, SIGTERM);
    const char *j = "{\"signal\": \"sigkill\"}";
    assert_int_equal(ald_body_signal(&sig, j, strlen(j), &e), 0);
    assert_int_equal(sig, SIGKILL);
    j = "{\"signal\": 10}";
    assert_int_equal(ald_body_signal(&sig, j, strlen(j), &e), 0);
    assert_int_equal(sig, 10);
    j = "{\"signal\": \"BOGUS\"}";
    assert_int_not_equal(ald_body_signal(&sig, j, strlen(j), &e), 0);
    assert_string_equal(e.code, "invalid_value");
    j = "{\"signal\": 0}";
    assert_int_not_equal(ald_body_signal(&sig, j, strlen(j), &e), 0);
    j = "{\"signal\": 65}";
    assert_int_not_equal(ald_body_signal(&sig, j, strlen(j), &e), 0);
    j = "{\"signal\": []}";
    assert_int_not_equal(ald_body_signal(&sig, j, strlen(j), &e), 0);
    assert_string_equal(e.code, "wrong_type");
    j = "{\"sig\": 1}";
    assert_int_not_equal(ald_body_signal(&sig, j, strlen(j), &e), 0);
    assert_string_equal(e.code, "unknown_field");
    j = "{}";
    assert_int_not_equal(ald_body_signal(&sig, j, strlen(j), &e), 0);
    j = "{\"decision\": \"allow\"}";
    assert_int_equal(ald_body_decision(&allow, j, strlen(j), &e), 0);
    assert_int_equal(allow, 1);
    j = "{\"decision\": \"deny\"}";
    assert_int_equal(ald_body_decision(&allow, j, strlen(j), &e), 0);
    assert_int_equal(allow, 0);
    j = "{\"decision\": \"maybe\"}";
    assert_int_not_equal(ald_body_decision(&allow, j, strlen(j), &e), 0);
    assert_string_equal(e.code, "invalid_value");
    j = "{\"decision\": true}";
    assert_int_not_equal(ald_body_decision(&allow, j, strlen(j), &e), 0);
    assert_string_equal(e.code, "wrong_type");
    j = "{\"decision\": \"allow\", \"why\": \"x\"}";
    assert_int_not_equal(ald_body_decision(&allow, j, strlen(j), &e), 0);
    assert_string_equal(e.code, "unknown_field");
}

static void test_repo_fields(void **state)
{
    (void)state;
    struct ald_apierr e;
    struct ald_create_req r;
    const char *j = "{\"repo\": \"https://github.com/acme/app.git\", \"base\": \"main\","
                    " \"branch\": \"agent/x-1\"}";
    assert_int_equal(ald_body_create(&r, j, strlen(j), &cfg, &e), 0);
    assert_string_equal(r.repo, "https://github.com/acme/app.git");
    assert_string_equal(r.base, "main");
    assert_string_equal(r.branch, "agent/x-1");
    ald_create_req_free(&r);
    static const char *const bad[] = {
        "{\"repo\": \"http://github.com/acme/app\"}",
        "{\"repo\": \"https://github.com/acme\"}",
        "{\"repo\": \"https://github.com/acme/app/extra\"}",
        "{\"repo\": \"https://github.com/../app\"}",
        "{\"repo\": \"https://github.com/-x/app\"}",
        "{\"repo\": \"https://user@github.com/acme/app\"}",
        "{\"repo\": \"https://github.com/acme/app?x=1\"}",
        "{\"repo\": 5}",
        "{\"branch\": \"x\"}",
        "{\"repo\": \"https://h/o/r\", \"branch\": \"-x\"}",
        "{\"repo\": \"https://h/o/r\", \"branch\": \"a..b\"}",
        "{\"repo\": \"https://h/o/r\", \"branch\": \"a/\"}",
        "{\"repo\": \"https://h/o/r\", \"branch\": \"a.lock\"}",
        "{\"repo\": \"https://h/o/r\", \"branch\": \"a b\"}",
        "{\"repo\": \"https://h/o/r\", \"base\": \"@{x}\"}",
        "{\"repo\": \"https://h/o/r\", \"base\": \"\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_not_equal(ald_body_create(&r, bad[i], strlen(bad[i]), &cfg, &e), 0);
        assert_true(e.status == 400);
        ald_create_req_free(&r);
    }
    char host[128], owner[128], name[128];
    assert_int_equal(ald_repo_parse("https://git.test/o/r", host, owner, name, sizeof(host)), 0);
    assert_string_equal(host, "git.test");
    assert_string_equal(owner, "o");
    assert_string_equal(name, "r");
    assert_int_not_equal(ald_repo_parse("https://git.test/o/r", host, owner, name, 1), 0);
}

static void test_policy_body(void **state)
{
    (void)state;
    struct ald_apierr e;
    json_t *out = NULL;
    const char *j = "{\"network\": {\"allowedDomains\": [\"example.com\"]}}";
    assert_int_equal(ald_body_policy(&out, j, strlen(j), &e), 0);
    assert_non_null(json_object_get(out, "network"));
    json_decref(out);
    j = "{\"sandbox\": {\"enabled\": true, \"network\": {\"deniedDomains\": [\"x.com\"]}}}";
    assert_int_equal(ald_body_policy(&out, j, strlen(j), &e), 0);
    json_decref(out);
    static const char *const bad[] = {
        "{\"filesystem\": {}}",
        "{\"network\": {}, \"sandbox\": {}}",
        "{\"sandbox\": {\"filesystem\": {}}}",
        "{\"sandbox\": []}",
        "{\"network\": {\"allowedDomains\": 5}}",
        "[]",
        "",
        "{\"network\": {\"allowUnixSockets\": [\"/x\"]}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        out = NULL;
        assert_int_not_equal(ald_body_policy(&out, bad[i], strlen(bad[i]), &e), 0);
        assert_null(out);
        assert_true(e.status >= 400);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repo_fields),
        cmocka_unit_test(test_policy_body),
        cmocka_unit_test(test_create_ok),
        cmocka_unit_test(test_create_malformed),
        cmocka_unit_test(test_create_forbidden_settings),
        cmocka_unit_test(test_exec_ok),
        cmocka_unit_test(test_exec_malformed),
        cmocka_unit_test(test_signal_decision),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
