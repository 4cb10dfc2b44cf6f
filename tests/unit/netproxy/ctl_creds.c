/* The netproxy's decoders of session_add's "tls" and "credentials"
 * (netproxy/src/ctl_creds.h): strict, malformed input refused, a value
 * never quoted in a message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_creds.h"

#include "airlock/error.h"

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        fail_msg("test JSON: %s: %s", text, je.text);
    return v;
}

static void tls_ok_and_malformed(void **state)
{
    (void)state;
    const char *cert, *key;
    assert_int_equal(np_ctl_tls_decode(&cert, &key, NULL), 0);
    assert_null(cert);
    json_t *v = parse("{\"ca_cert\": \"C\", \"ca_key\": \"K\"}");
    assert_int_equal(np_ctl_tls_decode(&cert, &key, v), 0);
    assert_string_equal(cert, "C");
    assert_string_equal(key, "K");
    json_decref(v);
    static const char *const bad[] = {
        "[]",
        "\"x\"",
        "{}",
        "{\"ca_cert\": \"C\"}",
        "{\"ca_key\": \"K\"}",
        "{\"ca_cert\": \"C\", \"ca_key\": \"K\", \"extra\": 1}",
        "{\"ca_cert\": 1, \"ca_key\": \"K\"}",
        "{\"ca_cert\": \"C\", \"ca_key\": null}",
        "{\"ca_cert\": \"\", \"ca_key\": \"K\"}",
        "{\"ca_cert\": \"C\", \"ca_key\": \"a\\u0000b\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        v = parse(bad[i]);
        if (np_ctl_tls_decode(&cert, &key, v) != AL_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_null(cert);
        assert_null(key);
        json_decref(v);
    }
    /* over the size limit */
    char *big = malloc(NP_CTL_PEM_MAX + 64);
    memset(big, 'a', NP_CTL_PEM_MAX + 1);
    big[NP_CTL_PEM_MAX + 1] = '\0';
    v = json_pack("{s:s, s:s}", "ca_cert", big, "ca_key", "K");
    assert_int_equal(np_ctl_tls_decode(&cert, &key, v), AL_EINVAL);
    json_decref(v);
    free(big);
}

#define CRED(name, value, sentinel, hosts)                                                         \
    "{\"name\": " name ", \"value\": " value ", \"sentinel\": " sentinel                           \
    ", \"inject_hosts\": " hosts "}"

static void creds_ok(void **state)
{
    (void)state;
    struct al_credset set = {0};
    assert_int_equal(np_ctl_creds_decode(&set, NULL), 0);
    assert_int_equal(set.len, 0);
    json_t *v = parse("[" CRED(
        "\"openai\"", "\"sk-real-1\"", "\"sk-sent-1xxxxxxxxxxxxxxxxxxxxxxxx\"",
        "[\"api.test\", \"*.corp.test\"]") ", " CRED("\"npm\"", "\"npm_real\"",
                                                     "\"npm_sentinelxxxxxxxxxxxxxxxxxxxxx\"",
                                                     "[\"r.test\"]") "]");
    assert_int_equal(np_ctl_creds_decode(&set, v), 0);
    assert_int_equal(set.len, 2);
    assert_string_equal(set.v[0].name, "openai");
    assert_int_equal(set.v[0].real_len, 9);
    assert_memory_equal(set.v[0].real, "sk-real-1", 9);
    assert_string_equal(set.v[0].sentinel, "sk-sent-1xxxxxxxxxxxxxxxxxxxxxxxx");
    assert_int_equal(set.v[0].inject_hosts.len, 2);
    assert_string_equal(set.v[1].inject_hosts.items[0], "r.test");
    al_credset_free(&set);
    json_decref(v);
}

/* The front's form (forwarded by the key holder without values): no
 * "value" accepted, none given back; each real value is its sentinel. */
static void creds_front(void **state)
{
    (void)state;
    struct al_credset set = {0};
    json_t *v =
        parse("[{\"name\": \"openai\", \"sentinel\": \"sk-sent-1xxxxxxxxxxxxxxxxxxxxxxxx\", "
              "\"inject_hosts\": [\"api.test\"]}]");
    assert_int_equal(np_ctl_creds_decode_front(&set, v), 0);
    assert_int_equal(set.len, 1);
    assert_string_equal(set.v[0].name, "openai");
    assert_string_equal(set.v[0].real, "sk-sent-1xxxxxxxxxxxxxxxxxxxxxxxx");
    assert_int_equal(set.v[0].real_len, set.v[0].sentinel_len);
    al_credset_free(&set);
    /* the daemon's decoder wants the value */
    assert_int_equal(np_ctl_creds_decode(&set, v), AL_EINVAL);
    al_credset_free(&set);
    json_decref(v);
    /* a value for the front is refused (and not quoted) */
    v = parse("[" CRED("\"openai\"", "\"sk-real-1\"", "\"sk-sent-1xxxxxxxxxxxxxxxxxxxxxxxx\"",
                       "[\"api.test\"]") "]");
    assert_int_equal(np_ctl_creds_decode_front(&set, v), AL_EINVAL);
    assert_null(strstr(al_error_last(), "sk-real-1"));
    assert_int_equal(set.len, 0);
    al_credset_free(&set);
    json_decref(v);
}

static void creds_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{}",
        "\"x\"",
        "[1]",
        "[{}]",
        "[" CRED("\"a\"", "\"v\"", "\"s\"", "[\"a.test\"]") "]", /* fine but for the next */
        "[" CRED("\"a\"", "\"v\"", "\"sxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"", "[\"a.test\"]") ", " CRED(
            "\"a\"", "\"w\"", "\"tyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"", "[\"a.test\"]") "]",
        "[{\"name\": \"a\", \"value\": \"v\", \"sentinel\": \"s\"}]",
        "[{\"name\": \"a\", \"value\": \"v\", \"sentinel\": \"s\", \"inject_hosts\": [\"a.test\"], "
        "\"x\": 1}]",
        "[" CRED("\"\"", "\"v\"", "\"s\"", "[\"a.test\"]") "]",
        "[" CRED("\"a\\nb\"", "\"v\"", "\"s\"", "[\"a.test\"]") "]",
        "[" CRED("1", "\"v\"", "\"s\"", "[\"a.test\"]") "]",
        "[" CRED("\"a\"", "\"\"", "\"s\"", "[\"a.test\"]") "]",
        "[" CRED("\"a\"", "\"v\\u0000w\"", "\"s\"", "[\"a.test\"]") "]",
        "[" CRED("\"a\"", "1", "\"s\"", "[\"a.test\"]") "]",
        "[" CRED("\"a\"", "\"v\"", "\"\"", "[\"a.test\"]") "]",
        "[" CRED("\"a\"", "\"v\"", "\"s\\u0001\"", "[\"a.test\"]") "]",
        "[" CRED("\"a\"", "\"v\"", "\"s\"", "[]") "]",
        "[" CRED("\"a\"", "\"v\"", "\"s\"", "\"a.test\"") "]",
        "[" CRED("\"a\"", "\"v\"", "\"s\"", "[1]") "]",
        "[" CRED("\"a\"", "\"v\"", "\"s\"", "[\"*.com\"]") "]",
        "[" CRED("\"a\"", "\"v\"", "\"s\"", "[\"a b.test\"]") "]",
        "[" CRED("\"a\"", "\"v\"", "\"s\"", "[\"\"]") "]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (i == 4)
            continue; /* the control: well formed */
        struct al_credset set = {0};
        json_t *v = parse(bad[i]);
        int err = np_ctl_creds_decode(&set, v);
        if (err != AL_EINVAL)
            fail_msg("not refused (%d): %s", err, bad[i]);
        al_credset_free(&set);
        json_decref(v);
    }
    /* the control case decodes */
    struct al_credset set = {0};
    json_t *v = parse(bad[4]);
    assert_int_equal(np_ctl_creds_decode(&set, v), 0);
    al_credset_free(&set);
    json_decref(v);
    /* a bad entry after a good one: refused, its message never quotes a value */
    v = parse("[" CRED("\"a\"", "\"zqSECRETzq\"", "\"sxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
                       "[\"a.test\"]") ", " CRED("\"b\"", "\"zqSECRETzq2\"",
                                                 "\"txxxxxxxxxxxxxxxxxxxxxxxxxx\"",
                                                 "[\"*.com\"]") "]");
    assert_int_equal(np_ctl_creds_decode(&set, v), AL_EINVAL);
    assert_null(strstr(al_error_last(), "zqSECRETzq"));
    assert_non_null(strstr(al_error_last(), "credentials[1]"));
    al_credset_free(&set);
    json_decref(v);
    /* more than AL_CRED_MAX */
    json_t *arr = json_array();
    for (int i = 0; i <= AL_CRED_MAX; i++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", i);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:[s]}", "name", name, "value", "v",
                                             "sentinel", "sxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                                             "inject_hosts", "a.test"));
    }
    assert_int_equal(np_ctl_creds_decode(&set, arr), AL_EINVAL);
    al_credset_free(&set);
    json_decref(arr);
}

/* The key holder's step before forwarding: every "value" gone, the rest
 * kept; then the front's decoder takes it. */
static void creds_strip(void **state)
{
    (void)state;
    json_t *v = parse("[{\"name\": \"k\", \"value\": \"zqSECRETzq\", \"sentinel\": "
                      "\"sk-sentinelxxxxxxxxxxxxxxxxxxxx\", \"inject_hosts\": [\"api.test\"]}]");
    np_ctl_creds_strip(v);
    char *text = json_dumps(v, 0);
    assert_null(strstr(text, "zqSECRETzq"));
    assert_null(strstr(text, "value"));
    assert_non_null(strstr(text, "sk-sentinel"));
    free(text);
    struct al_credset set = {0};
    assert_int_equal(np_ctl_creds_decode_front(&set, v), 0);
    al_credset_free(&set);
    json_decref(v);
    np_ctl_creds_strip(NULL);
    v = parse("\"x\"");
    np_ctl_creds_strip(v);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls_ok_and_malformed), cmocka_unit_test(creds_ok),
        cmocka_unit_test(creds_malformed),      cmocka_unit_test(creds_front),
        cmocka_unit_test(creds_strip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
