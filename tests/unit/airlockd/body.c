#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlockd/api/body.h"
#include "airlockd/core/config.h"
#include "airlockd/core/grants.h"

#include "airlock/creds_store.h"
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
    int err = ald_body_create(&r, json, strlen(json), &cfg, NULL, &e);
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

/* A create body by `user` that must fail with `status` and `code`, naming
 * `field` (NULL: any). */
static void create_refused(const struct ald_config *c, const char *user, const char *json,
                           int status, const char *code, const char *field)
{
    struct ald_create_req r;
    struct ald_apierr e;
    memset(&e, 0, sizeof(e));
    int err = ald_body_create(&r, json, strlen(json), c, user, &e);
    if (err == 0) {
        ald_create_req_free(&r);
        fail_msg("accepted for %s: %s", user ? user : "(none)", json);
    }
    if (e.status != status || strcmp(e.code, code) != 0)
        fail_msg("%s: %d %s (%s), want %d %s", json, e.status, e.code, e.message, status, code);
    if (field && strcmp(e.field, field) != 0)
        fail_msg("%s: field \"%s\", want \"%s\" (%s)", json, e.field, field, e.message);
    /* the message names the field it is about */
    if (field && !strstr(e.message, field))
        fail_msg("%s: message \"%s\" does not name %s", json, e.message, field);
}

static void create_accepted(const struct ald_config *c, const char *user, const char *json)
{
    struct ald_create_req r;
    struct ald_apierr e;
    memset(&e, 0, sizeof(e));
    if (ald_body_create(&r, json, strlen(json), c, user, &e) < 0)
        fail_msg("refused for %s: %s: %d %s %s", user ? user : "(none)", json, e.status, e.code,
                 e.message);
    ald_create_req_free(&r);
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
    assert_int_equal(ald_body_create(&r, "", 0, &cfg, NULL, &e), 0);
    assert_int_equal(r.limits.memory_mb, cfg.limits_default.memory_mb);
    assert_int_equal(r.mode, AL_MODE_AUTO_ALLOW);
    /* no settings: the defaults, nothing allowed */
    assert_int_equal(r.policy.allow_write.len, 0);
    assert_int_equal(r.policy.net.allowed_domains.len, 0);
    assert_int_equal(r.policy.mode, AL_MODE_AUTO_ALLOW);
    ald_create_req_free(&r);
    const char *json =
        "{\"settings\": {\"sandbox\": {\"filesystem\": {\"denyRead\": [\"/opt/x/.env*\"],"
        " \"allowWrite\": [\"/workspace/out\"]}}},"
        " \"limits\": {\"memory_mb\": 128, \"pids\": 32, \"cpu\": 0.5, \"ttl_s\": 60,"
        " \"idle_s\": 30}, \"env\": {\"FOO\": \"bar\", \"_X1\": \"\"}, \"mode\": \"regular\","
        " \"metadata\": {\"ticket\": \"ENG-42\"}}";
    assert_int_equal(ald_body_create(&r, json, strlen(json), &cfg, NULL, &e), 0);
    assert_int_equal(r.limits.memory_mb, 128);
    assert_int_equal(r.limits.pids, 32);
    assert_true(r.limits.cpu == 0.5);
    assert_int_equal(r.limits.ttl_s, 60);
    assert_int_equal(r.limits.idle_s, 30);
    assert_int_equal(r.mode, AL_MODE_REGULAR);
    /* the settings loaded once, in sandbox paths */
    assert_int_equal(r.policy.deny_read.len, 1);
    assert_string_equal(r.policy.deny_read.items[0], "/opt/x/.env*");
    assert_int_equal(r.policy.allow_write.len, 1);
    assert_string_equal(r.policy.allow_write.items[0], "/workspace/out");
    assert_string_equal(json_string_value(json_object_get(r.env, "FOO")), "bar");
    assert_string_equal(json_string_value(json_object_get(r.metadata, "ticket")), "ENG-42");
    ald_create_req_free(&r);
    /* the srt shape too */
    json = "{\"settings\": {\"filesystem\": {\"denyRead\": [\"/opt/secret\"]}}}";
    assert_int_equal(ald_body_create(&r, json, strlen(json), &cfg, NULL, &e), 0);
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

/* "tty" in exec, POST …/resize, a terminal's WebSocket text message: the
 * size is 1..4096 each, nothing else is taken. */
static void test_tty_size(void **state)
{
    (void)state;
    struct ald_exec_req r;
    struct ald_apierr e;
    const char *json = "{\"argv\": [\"bash\"], \"tty\": {\"rows\": 24, \"cols\": 80}}";
    assert_int_equal(ald_body_exec(&r, json, strlen(json), "/workspace", &e), 0);
    assert_int_equal(r.tty, 1);
    assert_int_equal(r.rows, 24);
    assert_int_equal(r.cols, 80);
    ald_exec_req_free(&r);
    json = "{\"argv\": [\"bash\"], \"tty\": null}";
    assert_int_equal(ald_body_exec(&r, json, strlen(json), "/workspace", &e), 0);
    assert_int_equal(r.tty, 0);
    ald_exec_req_free(&r);
    exec_fails("{\"argv\": [\"a\"], \"tty\": true}", "wrong_type", "tty");
    exec_fails("{\"argv\": [\"a\"], \"tty\": {\"rows\": 1}}", "invalid_value", "tty.cols");
    exec_fails("{\"argv\": [\"a\"], \"tty\": {\"rows\": 0, \"cols\": 1}}", "invalid_value",
               "tty.rows");
    exec_fails("{\"argv\": [\"a\"], \"tty\": {\"rows\": 1, \"cols\": 4097}}", "invalid_value",
               "tty.cols");
    exec_fails("{\"argv\": [\"a\"], \"tty\": {\"rows\": -1, \"cols\": 1}}", "invalid_value",
               "tty.rows");
    exec_fails("{\"argv\": [\"a\"], \"tty\": {\"rows\": 1.5, \"cols\": 1}}", "wrong_type",
               "tty.rows");
    exec_fails("{\"argv\": [\"a\"], \"tty\": {\"rows\": \"24\", \"cols\": 1}}", "wrong_type",
               "tty.rows");
    exec_fails("{\"argv\": [\"a\"], \"tty\": {\"rows\": 1, \"cols\": 1, \"x\": 0}}",
               "unknown_field", "tty.x");
    exec_fails("{\"argv\": [\"a\"], \"stdin\": \"x\", \"tty\": {\"rows\": 1, \"cols\": 1}}",
               "invalid_value", "tty");

    uint32_t rows = 0, cols = 0;
    const char *j = "{\"rows\": 4096, \"cols\": 1}";
    assert_int_equal(ald_body_resize(&rows, &cols, j, strlen(j), &e), 0);
    assert_int_equal(rows, 4096);
    assert_int_equal(cols, 1);
    const char *bad[] = {"",
                         "{",
                         "[]",
                         "{\"rows\": 1}",
                         "{\"rows\": 0, \"cols\": 1}",
                         "{\"rows\": 1, \"cols\": 99999999999999999999}",
                         "{\"rows\": 1, \"cols\": 1, \"rows\": 2}",
                         "{\"resize\": {}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        memset(&e, 0, sizeof(e));
        assert_int_not_equal(ald_body_resize(&rows, &cols, bad[i], strlen(bad[i]), &e), 0);
        assert_int_equal(e.status, 400);
    }
    j = "{\"resize\": {\"rows\": 50, \"cols\": 132}}";
    assert_int_equal(ald_body_tty_message(&rows, &cols, j, strlen(j), &e), 0);
    assert_int_equal(rows, 50);
    assert_int_equal(cols, 132);
    const char *bad_msg[] = {"",
                             "null",
                             "{}",
                             "{\"rows\": 1, \"cols\": 1}",
                             "{\"resize\": [1, 2]}",
                             "{\"resize\": {\"rows\": 1, \"cols\": 0}}",
                             "{\"resize\": {\"rows\": 1, \"cols\": 1}, \"exit\": 1}",
                             "{\"resize\": {\"rows\": 1, \"cols\": 1}} x",
                             "\xff\xfe"};
    for (size_t i = 0; i < sizeof(bad_msg) / sizeof(*bad_msg); i++) {
        memset(&e, 0, sizeof(e));
        assert_int_not_equal(ald_body_tty_message(&rows, &cols, bad_msg[i], strlen(bad_msg[i]), &e),
                             0);
        assert_int_equal(e.status, 400);
    }
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
                    " \"branch\": \"airlock/x-1\"}";
    assert_int_equal(ald_body_create(&r, j, strlen(j), &cfg, NULL, &e), 0);
    assert_string_equal(r.repo, "https://github.com/acme/app.git");
    assert_string_equal(r.base, "main");
    assert_string_equal(r.branch, "airlock/x-1");
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
        assert_int_not_equal(ald_body_create(&r, bad[i], strlen(bad[i]), &cfg, NULL, &e), 0);
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
    struct al_netpolicy net;
    const char *j = "{\"network\": {\"allowedDomains\": [\"example.com\"]}}";
    assert_int_equal(ald_body_policy(&out, &net, NULL, j, strlen(j), &cfg, NULL, &e), 0);
    assert_non_null(json_object_get(out, "network"));
    assert_int_equal(net.allowed_domains.len, 1);
    assert_string_equal(net.allowed_domains.items[0], "example.com");
    assert_true(net.require_sni_match);
    json_decref(out);
    al_netpolicy_free(&net);
    j = "{\"sandbox\": {\"enabled\": true, \"network\": {\"deniedDomains\": [\"x.com\"]}}}";
    assert_int_equal(ald_body_policy(&out, &net, NULL, j, strlen(j), &cfg, NULL, &e), 0);
    assert_int_equal(net.allowed_domains.len, 0);
    assert_int_equal(net.denied_domains.len, 1);
    assert_string_equal(net.denied_domains.items[0], "x.com");
    json_decref(out);
    al_netpolicy_free(&net);
    /* strictAllowlist reaches the typed policy; the loader's warnings reach
     * the caller */
    struct al_strlist warnings = AL_STRLIST_INIT;
    j = "{\"sandbox\": {\"network\": {\"strictAllowlist\": true,"
        " \"allowManagedDomainsOnly\": true}}}";
    assert_int_equal(ald_body_policy(&out, &net, &warnings, j, strlen(j), &cfg, NULL, &e), 0);
    assert_int_equal(net.strict_allowlist, 1);
    assert_int_equal(warnings.len, 1);
    assert_non_null(strstr(warnings.items[0], "sandbox.network.allowManagedDomainsOnly: ignored"));
    json_decref(out);
    al_netpolicy_free(&net);
    al_strlist_free(&warnings);
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
        assert_int_not_equal(
            ald_body_policy(&out, &net, NULL, bad[i], strlen(bad[i]), &cfg, NULL, &e), 0);
        assert_null(out);
        assert_int_equal(net.allowed_domains.len + net.denied_domains.len, 0);
        assert_true(e.status >= 400);
    }
}

/* Every key that widens what a session reaches, in both settings shapes
 * (Claude Code's sandbox.* and sandbox-runtime's top level): 403 naming it
 * when nothing grants it. */
static void test_widening_refused(void **state)
{
    (void)state;
    static const struct {
        const char *settings, *field;
    } cases[] = {
        /* shape 1: sandbox.network.* and sandbox.* */
        {"{\"sandbox\": {\"network\": {\"allowedAddresses\": [\"127.0.0.1\"]}}}",
         "settings.sandbox.network.allowedAddresses[0]"},
        {"{\"sandbox\": {\"network\": {\"allowedAddresses\": [\"::1\"]}}}",
         "settings.sandbox.network.allowedAddresses[0]"},
        {"{\"sandbox\": {\"network\": {\"allowedAddresses\": [\"169.254.169.254\"]}}}",
         "settings.sandbox.network.allowedAddresses[0]"},
        {"{\"sandbox\": {\"network\": {\"allowedAddresses\": [\"10.0.0.0/8\", "
         "\"::ffff:127.0.0.1\"]}}}",
         "settings.sandbox.network.allowedAddresses[0]"},
        {"{\"sandbox\": {\"network\": {\"allowedAddresses\": [\"192.0.2.7\"]}}}",
         "settings.sandbox.network.allowedAddresses[0]"},
        {"{\"sandbox\": {\"network\": {\"httpProxyPort\": 8080}}}",
         "settings.sandbox.network.httpProxyPort"},
        {"{\"sandbox\": {\"network\": {\"socksProxyPort\": 1080}}}",
         "settings.sandbox.network.socksProxyPort"},
        {"{\"sandbox\": {\"network\": {\"customProxy\": \"tinyproxy -d\"}}}",
         "settings.sandbox.network.customProxy"},
        {"{\"sandbox\": {\"network\": {\"allowLocalBinding\": true}}}",
         "settings.sandbox.network.allowLocalBinding"},
        {"{\"sandbox\": {\"network\": {\"allowAllDomains\": true}}}",
         "settings.sandbox.network.allowAllDomains"},
        {"{\"sandbox\": {\"network\": {\"requireSniMatch\": false}}}",
         "settings.sandbox.network.requireSniMatch"},
        {"{\"sandbox\": {\"network\": {\"allowUnixSockets\": [\"/run/docker.sock\"]}}}",
         "settings.sandbox.network.allowUnixSockets"},
        {"{\"sandbox\": {\"network\": {\"allowAllUnixSockets\": true}}}",
         "settings.sandbox.network.allowAllUnixSockets"},
        {"{\"sandbox\": {\"allowUnixSockets\": [\"/run/docker.sock\"]}}",
         "settings.sandbox.allowUnixSockets"},
        {"{\"sandbox\": {\"allowUnixSockets\": []}}", "settings.sandbox.allowUnixSockets"},
        {"{\"sandbox\": {\"allowUnixSockets\": true}}", "settings.sandbox.allowUnixSockets"},
        {"{\"sandbox\": {\"allowAllUnixSockets\": true}}", "settings.sandbox.allowAllUnixSockets"},
        {"{\"sandbox\": {\"enableWeakerNestedSandbox\": true}}",
         "settings.sandbox.enableWeakerNestedSandbox"},
        {"{\"sandbox\": {\"excludedCommands\": [\"docker\"]}}",
         "settings.sandbox.excludedCommands"},
        {"{\"sandbox\": {\"allowUnsandboxedCommands\": true}}",
         "settings.sandbox.allowUnsandboxedCommands"},
        /* shape 2: network.* and the top level */
        {"{\"network\": {\"allowedAddresses\": [\"127.0.0.1\"]}}",
         "settings.network.allowedAddresses[0]"},
        {"{\"network\": {\"allowedAddresses\": [\"::1\"]}}",
         "settings.network.allowedAddresses[0]"},
        {"{\"network\": {\"allowedAddresses\": [\"169.254.169.254\"]}}",
         "settings.network.allowedAddresses[0]"},
        {"{\"network\": {\"allowedAddresses\": [\"fd00:ec2::254\"]}}",
         "settings.network.allowedAddresses[0]"},
        {"{\"network\": {\"allowedAddresses\": [\"100.100.100.200\"]}}",
         "settings.network.allowedAddresses[0]"},
        {"{\"network\": {\"allowedAddresses\": [\"192.0.0.192\"]}}",
         "settings.network.allowedAddresses[0]"},
        {"{\"network\": {\"allowedAddresses\": [\"0.0.0.0\"]}}",
         "settings.network.allowedAddresses[0]"},
        {"{\"network\": {\"allowedAddresses\": [\"::\"]}}", "settings.network.allowedAddresses[0]"},
        {"{\"network\": {\"allowedAddresses\": [\"fe80::1\"]}}",
         "settings.network.allowedAddresses[0]"},
        {"{\"network\": {\"allowedAddresses\": [\"::ffff:127.0.0.1\"]}}",
         "settings.network.allowedAddresses[0]"},
        {"{\"network\": {\"allowedAddresses\": [\"::ffff:169.254.169.254\"]}}",
         "settings.network.allowedAddresses[0]"},
        {"{\"network\": {\"allowedAddresses\": [\"126.0.0.0/7\"]}}",
         "settings.network.allowedAddresses[0]"},
        {"{\"network\": {\"httpProxyPort\": 8080}}", "settings.network.httpProxyPort"},
        {"{\"network\": {\"socksProxyPort\": 1080}}", "settings.network.socksProxyPort"},
        {"{\"network\": {\"allowLocalBinding\": true}}", "settings.network.allowLocalBinding"},
        {"{\"network\": {\"allowAllDomains\": true}}", "settings.network.allowAllDomains"},
        {"{\"network\": {\"requireSniMatch\": false}}", "settings.network.requireSniMatch"},
        {"{\"network\": {\"allowUnixSockets\": [\"/run/docker.sock\"]}}",
         "settings.network.allowUnixSockets"},
        {"{\"network\": {\"allowAllUnixSockets\": true}}", "settings.network.allowAllUnixSockets"},
        {"{\"enableWeakerNestedSandbox\": true}", "settings.enableWeakerNestedSandbox"},
        {"{\"enableWeakerNetworkIsolation\": true}", "settings.enableWeakerNetworkIsolation"},
    };
    char body[1024];
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        snprintf(body, sizeof(body), "{\"settings\": %s}", cases[i].settings);
        create_refused(&cfg, "alice", body, 403, "forbidden", cases[i].field);
        create_refused(&cfg, NULL, body, 403, "forbidden", cases[i].field);
        /* PATCH …/policy holds only network rules: the same answer there */
        if (strstr(cases[i].settings, "\"network\"") &&
            !strstr(cases[i].settings, "\"sandbox\": {\"allow") &&
            !strstr(cases[i].settings, "\"sandbox\": {\"e")) {
            json_t *out = NULL;
            struct al_netpolicy net;
            struct ald_apierr e;
            memset(&e, 0, sizeof(e));
            assert_int_not_equal(ald_body_policy(&out, &net, NULL, cases[i].settings,
                                                 strlen(cases[i].settings), &cfg, "alice", &e),
                                 0);
            assert_null(out);
            if (e.status != 403 || strcmp(e.field, cases[i].field) != 0)
                fail_msg("policy %s: %d %s %s", cases[i].settings, e.status, e.field, e.message);
        }
    }
    /* the default or narrower value of those keys is no widening */
    static const char *const fine[] = {
        "{\"sandbox\": {\"network\": {\"allowLocalBinding\": false, \"allowAllDomains\": false,"
        " \"requireSniMatch\": true, \"httpProxyPort\": null, \"socksProxyPort\": null,"
        " \"customProxy\": null, \"allowedAddresses\": []},"
        " \"allowUnsandboxedCommands\": false, \"enableWeakerNestedSandbox\": false,"
        " \"excludedCommands\": [], \"allowAllUnixSockets\": false}}",
        "{\"network\": {\"allowLocalBinding\": false, \"allowAllDomains\": false,"
        " \"allowAllUnixSockets\": false}, \"enableWeakerNestedSandbox\": false,"
        " \"enableWeakerNetworkIsolation\": false}",
        "{\"network\": {\"allowedDomains\": [\"example.com\"], \"deniedDomains\": [\"x.com\"]}}",
    };
    for (size_t i = 0; i < sizeof(fine) / sizeof(*fine); i++) {
        snprintf(body, sizeof(body), "{\"settings\": %s}", fine[i]);
        create_accepted(&cfg, NULL, body);
    }
    /* keys the settings loader refuses (issue 15: no key silently ignored) are
     * a 400 before any widening check */
    create_refused(&cfg, NULL,
                   "{\"settings\": {\"network\": {\"parentProxy\": {\"http\": "
                   "\"http://proxy.corp:3128\"}}}}",
                   400, "invalid_value", "settings");
    create_refused(&cfg, NULL,
                   "{\"settings\": {\"network\": {\"mitmProxy\": {\"socketPath\": "
                   "\"/run/mitm.sock\", \"domains\": [\"example.com\"]}}}}",
                   400, "invalid_value", "settings");
    /* settings must not name the server's secrets or files (issue 15) */
    create_refused(&cfg, NULL,
                   "{\"settings\": {\"network\": {\"allowedDomains\": [\"a.example.com\"], "
                   "\"tlsTerminate\": {}}, \"credentials\": {\"envVars\": [{\"name\": \"HOME\", "
                   "\"mode\": \"mask\", \"injectHosts\": [\"a.example.com\"]}]}}}",
                   403, "forbidden", "settings.credentials");
    create_refused(&cfg, NULL,
                   "{\"settings\": {\"network\": {\"tlsTerminate\": {\"caCertPath\": "
                   "\"/etc/ssl/private/ca.pem\", \"caKeyPath\": \"/etc/ssl/private/ca.key\"}}}}",
                   403, "forbidden", "settings.network.tlsTerminate");
    /* a mask without tlsTerminate is refused by the loader's whole-policy check */
    create_refused(&cfg, NULL,
                   "{\"settings\": {\"network\": {\"allowedDomains\": [\"a.example.com\"]}, "
                   "\"credentials\": {\"envVars\": [{\"name\": \"T\", \"mode\": \"mask\", "
                   "\"injectHosts\": [\"a.example.com\"]}]}}}",
                   400, "invalid_value", "settings");
    /* malformed stays 400 */
    create_refused(&cfg, NULL, "{\"settings\": {\"network\": {\"allowedAddresses\": [\"x\"]}}}",
                   400, "invalid_value", "settings");
    create_refused(&cfg, NULL, "{\"settings\": {\"network\": {\"allowedAddresses\": \"::1\"}}}",
                   400, "invalid_value", "settings");
}

/* An operator's grant lets one user widen, and only as far as granted. */

/* "credentials" (issue 15): HTTP secrets granted by name, injectHosts
 * covered by the session's allowedDomains, env names airlock does not set. */
static void test_create_credentials(void **state)
{
    (void)state;
    struct ald_config g;
    assert_int_equal(ald_config_init(&g), 0);
    const char *conf = "{\"grants\": {\"alice\": {\"credentials\": [\"openai\", \"npm\"]}}}";
    if (ald_config_load_buffer(&g, "t.json", conf, strlen(conf)) < 0)
        fail_msg("%s", al_error_last());
    char body[2048];
#define NET "\"settings\": {\"network\": {\"allowedDomains\": [\"api.test\", \"*.corp.test\"]}}"
#define CRED(secret, env, hosts)                                                                   \
    "{\"secret\": " secret ", \"env\": " env ", \"injectHosts\": " hosts "}"
    const char *ok = "{" NET ", \"credentials\": [" CRED("\"openai\"", "\"OPENAI_API_KEY\"",
                                                         "[\"api.test\", \"X.Corp.Test\"]") "]}";
    struct ald_create_req r;
    struct ald_apierr e;
    memset(&e, 0, sizeof(e));
    if (ald_body_create(&r, ok, strlen(ok), &g, "alice", &e) < 0)
        fail_msg("%s", e.message);
    assert_int_equal(r.n_creds, 1);
    assert_string_equal(r.creds[0].secret, "openai");
    assert_string_equal(r.creds[0].env, "OPENAI_API_KEY");
    assert_int_equal(r.creds[0].inject_hosts.len, 2);
    assert_string_equal(r.creds[0].inject_hosts.items[1], "x.corp.test");
    assert_true(r.policy.net.tls_terminate); /* secrets need terminated tunnels */
    ald_create_req_free(&r);
    create_refused(&g, "bob", ok, 403, "forbidden", "credentials[0].secret");
    create_refused(&g, NULL, ok, 403, "forbidden", "credentials[0].secret");
    static const struct {
        const char *creds;
        int status;
        const char *code, *field;
    } bad[] = {
        {"{}", 400, "wrong_type", "credentials"},
        {"[1]", 400, "wrong_type", "credentials[0]"},
        {"[{}]", 400, "invalid_value", "credentials[0].secret"},
        {"[{\"secret\": \"openai\", \"env\": \"A\"}]", 400, "invalid_value",
         "credentials[0].injectHosts"},
        {"[" CRED("\"openai\"", "\"A\"", "[\"api.test\"]") ", {\"x\": 1}]", 400, "unknown_field",
         "credentials[1].x"},
        {"[" CRED("\"ghost\"", "\"A\"", "[\"api.test\"]") "]", 403, "forbidden",
         "credentials[0].secret"},
        {"[" CRED("\"9bad\"", "\"A\"", "[\"api.test\"]") "]", 400, "invalid_value",
         "credentials[0].secret"},
        {"[" CRED("1", "\"A\"", "[\"api.test\"]") "]", 400, "wrong_type", "credentials[0].secret"},
        {"[" CRED("\"openai\"", "\"1A\"", "[\"api.test\"]") "]", 400, "invalid_value",
         "credentials[0].env"},
        {"[" CRED("\"openai\"", "\"A=B\"", "[\"api.test\"]") "]", 400, "invalid_value",
         "credentials[0].env"},
        {"[" CRED("\"openai\"", "\"HTTPS_PROXY\"", "[\"api.test\"]") "]", 400, "invalid_value",
         "credentials[0].env"},
        {"[" CRED("\"openai\"", "\"NODE_EXTRA_CA_CERTS\"", "[\"api.test\"]") "]", 400,
         "invalid_value", "credentials[0].env"},
        {"[" CRED("\"openai\"", "\"GIT_CONFIG_VALUE_3\"", "[\"api.test\"]") "]", 400,
         "invalid_value", "credentials[0].env"},
        {"[" CRED("\"openai\"", "\"AIRLOCK_X\"", "[\"api.test\"]") "]", 400, "invalid_value",
         "credentials[0].env"},
        {"[" CRED("\"openai\"", "\"FOO\"", "[\"api.test\"]") "]", 400, "invalid_value",
         "credentials[0].env"}, /* also in the body's env */
        {"[" CRED("\"openai\"", "\"A\"", "[]") "]", 400, "invalid_value",
         "credentials[0].injectHosts"},
        {"[" CRED("\"openai\"", "\"A\"", "\"api.test\"") "]", 400, "wrong_type",
         "credentials[0].injectHosts"},
        {"[" CRED("\"openai\"", "\"A\"", "[1]") "]", 400, "wrong_type",
         "credentials[0].injectHosts[0]"},
        {"[" CRED("\"openai\"", "\"A\"", "[\"other.test\"]") "]", 400, "invalid_value",
         "credentials[0].injectHosts[0]"},
        {"[" CRED("\"openai\"", "\"A\"", "[\"corp.test\"]") "]", 400, "invalid_value",
         "credentials[0].injectHosts[0]"},
        {"[" CRED("\"openai\"", "\"A\"", "[\"api.test\", \"*.test\"]") "]", 400, "invalid_value",
         "credentials[0].injectHosts[1]"},
        {"[" CRED("\"openai\"", "\"A\"", "[\"*.com\"]") "]", 400, "invalid_value",
         "credentials[0].injectHosts[0]"},
        {"[" CRED("\"openai\"", "\"A\"", "[\"api.test\", \"API.TEST\"]") "]", 400, "invalid_value",
         "credentials[0].injectHosts[1]"},
        {"[" CRED("\"openai\"", "\"A\"", "[\"api.test\"]") ", " CRED("\"openai\"", "\"B\"",
                                                                     "[\"api.test\"]") "]",
         400, "invalid_value", "credentials[1].secret"},
        {"[" CRED("\"openai\"", "\"A\"", "[\"api.test\"]") ", " CRED("\"npm\"", "\"A\"",
                                                                     "[\"api.test\"]") "]",
         400, "invalid_value", "credentials[1].env"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        snprintf(body, sizeof(body), "{" NET ", \"env\": {\"FOO\": \"x\"}, \"credentials\": %s}",
                 bad[i].creds);
        create_refused(&g, "alice", body, bad[i].status, bad[i].code, bad[i].field);
    }
    /* more than 16 */
    char many[4096] = "{" NET ", \"credentials\": [";
    for (int i = 0; i < 17; i++) {
        char one[128];
        snprintf(one, sizeof(one),
                 "%s{\"secret\": \"openai\", \"env\": \"V%d\", \"injectHosts\": "
                 "[\"api.test\"]}",
                 i ? ", " : "", i);
        strncat(many, one, sizeof(many) - strlen(many) - 1);
    }
    strncat(many, "]}", sizeof(many) - strlen(many) - 1);
    create_refused(&g, "alice", many, 400, "invalid_value", "credentials");
    /* allowAllDomains covers any host; deniedDomains and excludeDomains never */
    ald_config_free(&g);
    assert_int_equal(ald_config_init(&g), 0);
    conf = "{\"grants\": {\"alice\": {\"credentials\": [\"openai\"], \"allowAllDomains\": true}}}";
    if (ald_config_load_buffer(&g, "t.json", conf, strlen(conf)) < 0)
        fail_msg("%s", al_error_last());
    create_accepted(&g, "alice",
                    "{\"settings\": {\"network\": {\"allowAllDomains\": true}}, \"credentials\": "
                    "[" CRED("\"openai\"", "\"A\"", "[\"anything.test\"]") "]}");
    create_refused(&g, "alice",
                   "{\"settings\": {\"network\": {\"allowAllDomains\": true, \"deniedDomains\": "
                   "[\"*.corp.test\"]}}, \"credentials\": [" CRED("\"openai\"", "\"A\"",
                                                                  "[\"x.corp.test\"]") "]}",
                   400, "invalid_value", "credentials[0].injectHosts[0]");
    /* tlsTerminate: {} gives the session its own CA; the server's files never */
    memset(&e, 0, sizeof(e));
    const char *tt = "{\"settings\": {\"network\": {\"allowedDomains\": [\"api.test\"], "
                     "\"tlsTerminate\": {\"excludeDomains\": [\"pinned.test\"]}}}}";
    if (ald_body_create(&r, tt, strlen(tt), &g, "alice", &e) < 0)
        fail_msg("%s", e.message);
    assert_true(r.policy.net.tls_terminate);
    assert_int_equal(r.policy.net.tls_exclude.len, 1);
    ald_create_req_free(&r);
    create_refused(&g, "alice",
                   "{\"settings\": {\"network\": {\"tlsTerminate\": {\"caCertPath\": "
                   "\"/etc/ssl/certs/ca-certificates.crt\", \"caKeyPath\": \"/etc/hostname\"}}}}",
                   403, "forbidden", "settings.network.tlsTerminate");
    create_refused(&g, "alice",
                   "{\"settings\": {\"network\": {\"tlsTerminate\": {\"extraCaCertPaths\": "
                   "[\"/etc/ssl/certs/ca-certificates.crt\"]}}}}",
                   403, "forbidden", "settings.network.tlsTerminate");
    /* an injectHost under excludeDomains is never terminated */
    create_refused(&g, "alice",
                   "{\"settings\": {\"network\": {\"allowedDomains\": [\"api.test\"], "
                   "\"tlsTerminate\": {\"excludeDomains\": [\"api.test\"]}}}, \"credentials\": "
                   "[" CRED("\"openai\"", "\"A\"", "[\"api.test\"]") "]}",
                   400, "invalid_value", "credentials[0].injectHosts[0]");
    /* a mask entry takes its value from airlock run's environment: not here */
    create_refused(&g, "alice",
                   "{\"settings\": {\"sandbox\": {\"network\": {\"allowedDomains\": "
                   "[\"api.test\"], \"tlsTerminate\": {}}, \"credentials\": {\"envVars\": "
                   "[{\"name\": \"T\", \"mode\": \"mask\", \"injectHosts\": [\"api.test\"]}]}}}}",
                   403, "forbidden", "settings.credentials");
#undef CRED
#undef NET
    ald_config_free(&g);
}

static void test_domain_covers(void **state)
{
    (void)state;
    assert_true(al_settings_domain_covers("api.test", "api.test"));
    assert_true(al_settings_domain_covers("API.test", "api.TEST"));
    assert_true(al_settings_domain_covers("*.test", "api.test"));
    assert_true(al_settings_domain_covers("*.test", "a.b.test"));
    assert_true(al_settings_domain_covers("*.test", "*.test"));
    assert_true(al_settings_domain_covers("*.test", "*.b.test"));
    assert_true(al_settings_domain_covers("api.test", "api.test:443"));
    assert_true(al_settings_domain_covers("api.test:443", "api.test:443"));
    assert_false(al_settings_domain_covers("api.test:443", "api.test"));
    assert_false(al_settings_domain_covers("api.test:443", "api.test:8443"));
    assert_false(al_settings_domain_covers("*.test", "test"));
    assert_false(al_settings_domain_covers("*.test", "xtest"));
    assert_false(al_settings_domain_covers("*.test", "api.testx"));
    assert_false(al_settings_domain_covers("api.test", "*.api.test"));
    assert_false(al_settings_domain_covers("api.test", "x.api.test"));
    assert_false(al_settings_domain_covers("*.b.test", "*.test"));
    assert_false(al_settings_domain_covers("a.test", "b.test"));
    assert_false(al_settings_domain_covers("*", "a.test")); /* not a pattern these take */
    assert_false(al_settings_domain_covers("", "a.test"));
    assert_false(al_settings_domain_covers("*.", "a."));
}

static void test_grant_credentials(void **state)
{
    (void)state;
    struct ald_config g;
    assert_int_equal(ald_config_init(&g), 0);
    static const char *const bad[] = {
        "{\"grants\": {\"alice\": {\"credentials\": \"openai\"}}}",
        "{\"grants\": {\"alice\": {\"credentials\": [1]}}}",
        "{\"grants\": {\"alice\": {\"credentials\": [\"9x\"]}}}",
        "{\"grants\": {\"alice\": {\"credentials\": [\"a.b\"]}}}",
        "{\"grants\": {\"alice\": {\"credentials\": [\"\"]}}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(ald_config_load_buffer(&g, "t.json", bad[i], strlen(bad[i])), AL_EINVAL);
        assert_non_null(strstr(al_error_last(), "grants.alice.credentials"));
    }
    const char *ok = "{\"grants\": {\"alice\": {\"credentials\": [\"openai\", \"openai\"]}}}";
    assert_int_equal(ald_config_load_buffer(&g, "t.json", ok, strlen(ok)), 0);
    assert_true(ald_grant_allows_credential(ald_grants_find(&g.grants, "alice"), "openai"));
    assert_false(ald_grant_allows_credential(ald_grants_find(&g.grants, "alice"), "npm"));
    assert_false(ald_grant_allows_credential(ald_grants_find(&g.grants, "bob"), "openai"));
    assert_false(ald_grant_allows_credential(NULL, "openai"));
    ald_config_free(&g);
    /* the api's name rule is the store's */
    static const char *const names[] = {
        "openai",
        "A",
        "a-b_C9",
        "",
        "9a",
        "_a",
        "-a",
        "a.b",
        "a b",
        "a/b",
        "é",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        if (ald_secret_name_valid(names[i]) != creds_http_name_valid(names[i]))
            fail_msg("the rules differ on \"%s\"", names[i]);
}

static void test_grants(void **state)
{
    (void)state;
    struct ald_config g;
    assert_int_equal(ald_config_init(&g), 0);
    const char *conf = "{\"grants\": {\"alice\": {\"allowedAddresses\": [\"10.20.0.0/16\","
                       " \"2001:db8:1::/48\"], \"allowLocalBinding\": true},"
                       " \"carol\": {\"allowAllDomains\": true, \"requireSniMatch\": false}}}";
    if (ald_config_load_buffer(&g, "t.json", conf, strlen(conf)) < 0)
        fail_msg("%s", al_error_last());
    /* inside alice's ranges, either spelling */
    static const char *const inside[] = {"10.20.1.2",        "10.20.0.0/16",    "10.20.128.0/17",
                                         "::ffff:10.20.3.4", "2001:db8:1:2::5", "2001:db8:1::/64"};
    char body[512];
    for (size_t i = 0; i < sizeof(inside) / sizeof(*inside); i++) {
        snprintf(body, sizeof(body),
                 "{\"settings\": {\"network\": {\"allowedAddresses\": [\"%s\"]}}}", inside[i]);
        create_accepted(&g, "alice", body);
        create_refused(&g, "bob", body, 403, "forbidden", "settings.network.allowedAddresses[0]");
        create_refused(&g, "carol", body, 403, "forbidden", "settings.network.allowedAddresses[0]");
        snprintf(body, sizeof(body),
                 "{\"settings\": {\"sandbox\": {\"network\": {\"allowedAddresses\": [\"%s\"]}}}}",
                 inside[i]);
        create_accepted(&g, "alice", body);
    }
    /* outside them, wider than them, or never grantable */
    static const char *const outside[] = {"10.21.0.1",   "10.0.0.0/8",      "10.20.0.0/15",
                                          "10.2.0.1",    "2001:db8:2::1",   "2001:db8::/32",
                                          "127.0.0.1",   "169.254.169.254", "::1",
                                          "192.168.1.1", "::ffff:10.21.0.1"};
    for (size_t i = 0; i < sizeof(outside) / sizeof(*outside); i++) {
        snprintf(body, sizeof(body),
                 "{\"settings\": {\"network\": {\"allowedAddresses\": [\"10.20.1.1\", \"%s\"]}}}",
                 outside[i]);
        create_refused(&g, "alice", body, 403, "forbidden", "settings.network.allowedAddresses[1]");
    }
    /* flags: only the granted ones, only for that user */
    const char *lb = "{\"settings\": {\"sandbox\": {\"network\": {\"allowLocalBinding\": true}}}}";
    create_accepted(&g, "alice", lb);
    create_refused(&g, "carol", lb, 403, "forbidden", "settings.sandbox.network.allowLocalBinding");
    const char *ad = "{\"settings\": {\"network\": {\"allowAllDomains\": true,"
                     " \"requireSniMatch\": false}}}";
    create_accepted(&g, "carol", ad);
    create_refused(&g, "alice", ad, 403, "forbidden", "settings.network.allowAllDomains");
    /* never grantable, whatever the grant */
    create_refused(&g, "alice", "{\"settings\": {\"network\": {\"httpProxyPort\": 8080}}}", 403,
                   "forbidden", "settings.network.httpProxyPort");
    /* PATCH …/policy with the owner's grant */
    json_t *out = NULL;
    struct al_netpolicy net;
    struct ald_apierr e;
    const char *j = "{\"network\": {\"allowedAddresses\": [\"10.20.9.9\"]}}";
    assert_int_equal(ald_body_policy(&out, &net, NULL, j, strlen(j), &g, "alice", &e), 0);
    assert_int_equal(net.allowed_addresses.len, 1);
    assert_string_equal(net.allowed_addresses.items[0], "10.20.9.9");
    json_decref(out);
    al_netpolicy_free(&net);
    out = NULL;
    assert_int_not_equal(ald_body_policy(&out, &net, NULL, j, strlen(j), &g, "bob", &e), 0);
    assert_int_equal(e.status, 403);
    assert_null(out);
    /* the restrict check as the sandbox builder calls it */
    struct al_policy pol;
    al_policy_init(&pol);
    json_t *settings =
        json_loads("{\"network\": {\"allowedAddresses\": [\"10.20.0.1\"]}}", 0, NULL);
    assert_int_equal(ald_settings_restrict_check(&pol, settings, "/workspace",
                                                 ald_grants_find(&g.grants, "alice"), &e),
                     0);
    al_policy_free(&pol);
    al_policy_init(&pol);
    assert_int_not_equal(ald_settings_restrict_check(&pol, settings, "/workspace", NULL, &e), 0);
    assert_int_equal(e.status, 403);
    al_policy_free(&pol);
    json_decref(settings);
    ald_config_free(&g);
}

/* The server's branches: only names inside git.branch_pattern, never a
 * protected one or one of a session's own form (409); malformed ones 400. */
static void test_branch_rules(void **state)
{
    (void)state;
    char body[512];
    static const char *const ok[] = {"airlock/fix-login", "airlock/a/b", "airlock/s_x",
                                     "airlock/sess_1",    "airlock/s_",  "airlock/s_abc-1"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
        snprintf(body, sizeof(body), "{\"repo\": \"https://h/o/r\", \"branch\": \"%s\"}", ok[i]);
        create_accepted(&cfg, "bob", body);
    }
    static const char *const conflict[] = {
        "main", /* outside the pattern, and protected */
        "master",
        "release/x", /* protected (release/ + *) */
        "release",
        "feature/x", /* outside the pattern */
        "airlock",
        "Airlock/x",
        "airlock/s_0123456789abcdef0123", /* a session's own branch */
        "airlock/s_0123456789ABCDEF0123",
        "airlock/S_abc",
        "airlock/s_0123456789abcdef0123/x", /* below one */
    };
    for (size_t i = 0; i < sizeof(conflict) / sizeof(*conflict); i++) {
        snprintf(body, sizeof(body), "{\"repo\": \"https://h/o/r\", \"branch\": \"%s\"}",
                 conflict[i]);
        create_refused(&cfg, "bob", body, 409, "conflict", "branch");
    }
    /* base "dev", branch "main": the branch is refused, naming protected_refs */
    struct ald_config g;
    assert_int_equal(ald_config_init(&g), 0);
    const char *conf = "{\"git\": {\"branch_pattern\": \"work/*\", \"protected_refs\": [\"main\","
                       " \"work/prod\", \"work/rel/*\"]}}";
    if (ald_config_load_buffer(&g, "t.json", conf, strlen(conf)) < 0)
        fail_msg("%s", al_error_last());
    create_accepted(&g, "bob",
                    "{\"repo\": \"https://h/o/r\", \"base\": \"dev\","
                    " \"branch\": \"work/x\"}");
    create_accepted(&g, "bob", "{\"repo\": \"https://h/o/r\", \"branch\": \"work/prodx\"}");
    static const char *const prot[] = {"work/prod", "work/PROD",  "work/prod/x",
                                       "work/rel",  "work/rel/1", "work/Rel/1/2"};
    for (size_t i = 0; i < sizeof(prot) / sizeof(*prot); i++) {
        snprintf(body, sizeof(body),
                 "{\"repo\": \"https://h/o/r\", \"base\": \"dev\", \"branch\": \"%s\"}", prot[i]);
        create_refused(&g, "bob", body, 409, "conflict", "branch");
        struct ald_create_req r;
        struct ald_apierr e;
        assert_int_not_equal(ald_body_create(&r, body, strlen(body), &g, "bob", &e), 0);
        if (!strstr(e.message, "git.protected_refs"))
            fail_msg("%s: %s", prot[i], e.message);
    }
    create_refused(&g, "bob", "{\"repo\": \"https://h/o/r\", \"branch\": \"airlock/x\"}", 409,
                   "conflict", "branch");
    ald_config_free(&g);
    /* branch_pattern null: API users name no branch */
    assert_int_equal(ald_config_init(&g), 0);
    conf = "{\"git\": {\"branch_pattern\": null}}";
    assert_int_equal(ald_config_load_buffer(&g, "t.json", conf, strlen(conf)), 0);
    create_refused(&g, "bob", "{\"repo\": \"https://h/o/r\", \"branch\": \"airlock/x\"}", 409,
                   "conflict", "branch");
    create_accepted(&g, "bob", "{\"repo\": \"https://h/o/r\"}");
    ald_config_free(&g);
    /* malformed names are 400 before any rule */
    static const char *const bad[] = {
        "airlock/a..b", "airlock/a b", "airlock/a@{1}", "airlock/x.lock",  "airlock/x.",
        "airlock/",     "-airlock/x",  "airlock//x",    "airlock/\\u0001", "airlock/a~1",
        "airlock/a:b",  "airlock/.x",  "HEAD",          "airlock/a\\\\b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        snprintf(body, sizeof(body), "{\"repo\": \"https://h/o/r\", \"branch\": \"%s\"}", bad[i]);
        create_refused(&cfg, "bob", body, 400, "invalid_value", "branch");
        snprintf(body, sizeof(body), "{\"repo\": \"https://h/o/r\", \"base\": \"%s\"}", bad[i]);
        create_refused(&cfg, "bob", body, 400, "invalid_value", "base");
    }
    /* the pure checks */
    char why[512];
    assert_int_equal(ald_gitpolicy_check_branch(&cfg.git, "airlock/ok", why, sizeof(why)), 0);
    assert_int_equal(ald_gitpolicy_check_branch(&cfg.git, "feature", why, sizeof(why)), AL_EPERM);
    assert_non_null(strstr(why, "git.branch_pattern"));
    /* a directory of every session's branch */
    assert_int_equal(ald_gitpolicy_check_branch(&cfg.git, "airlock", why, sizeof(why)), AL_EPERM);
    assert_non_null(strstr(why, "git.session_ref"));
    /* protected comes first: "main" is named as protected, not as outside */
    assert_int_equal(ald_gitpolicy_check_branch(&cfg.git, "main", why, sizeof(why)), AL_EPERM);
    assert_non_null(strstr(why, "git.protected_refs"));
    assert_int_equal(ald_gitpolicy_check_branch(&cfg.git, "airlock/s_1f", why, sizeof(why)),
                     AL_EPERM);
    assert_non_null(strstr(why, "git.session_ref"));
    assert_true(ald_branch_collides("a/b", "A"));
    assert_true(ald_branch_collides("a", "a/b/c"));
    assert_true(ald_branch_collides("Main", "main"));
    assert_false(ald_branch_collides("a", "ab"));
    assert_false(ald_branch_collides("a/b", "a/c"));
    assert_true(ald_branch_pattern_match("x/*", "x/y/z"));
    assert_false(ald_branch_pattern_match("x/*", "x"));
    assert_false(ald_branch_pattern_match("x/*", "x/"));
    assert_false(ald_branch_pattern_match("x/*", "X/y"));
    assert_true(ald_branch_pattern_match("x", "x"));
    assert_false(ald_branch_pattern_match("x", "x/y"));
    char branch[128];
    assert_int_equal(ald_gitpolicy_session_branch(&cfg.git, "s_00ff", branch, sizeof(branch)), 0);
    assert_string_equal(branch, "airlock/s_00ff");
    assert_int_equal(ald_gitpolicy_session_branch(&cfg.git, "s_00ff", branch, 8), AL_ETOOBIG);
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
        cmocka_unit_test(test_tty_size),
        cmocka_unit_test(test_widening_refused),
        cmocka_unit_test(test_grants),
        cmocka_unit_test(test_create_credentials),
        cmocka_unit_test(test_domain_covers),
        cmocka_unit_test(test_grant_credentials),
        cmocka_unit_test(test_branch_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
