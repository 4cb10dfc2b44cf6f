/* The typed network policy: computed by the settings loader, carried as
 * JSON, decoded strictly on the other side. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "airlock/error.h"
#include "airlock/netpolicy.h"
#include "airlock/settings.h"

static void assert_same(const struct al_strlist *a, const struct al_strlist *b)
{
    assert_int_equal(a->len, b->len);
    for (size_t i = 0; i < a->len; i++)
        assert_string_equal(a->items[i], b->items[i]);
}

/* Loads `text` as JSON and decodes it; returns what the decoder returned. */
static int decode(struct al_netpolicy *np, const char *text)
{
    json_error_t jerr;
    json_t *obj = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    assert_non_null(obj);
    int err = al_netpolicy_from_json(np, obj);
    json_decref(obj);
    return err;
}

/* What the settings loader computed arrives unchanged. */
static void round_trip_from_settings(void **state)
{
    (void)state;
    static const char settings[] =
        "{\"sandbox\": {\"network\": {"
        "\"allowedDomains\": [\"GitHub.com\", \"*.npmjs.org\", \"example.com:443\"],"
        "\"deniedDomains\": [\"*:25\", \"evil.example.com\"],"
        "\"allowedAddresses\": [\"10.0.0.1\", \"fd00::/8\"],"
        "\"allowAllDomains\": true, \"requireSniMatch\": false}}}";
    struct al_policy pol;
    al_policy_init(&pol);
    assert_int_equal(
        al_settings_load_buffer(&pol, "s.json", settings, strlen(settings), "/h", "/w"), 0);
    json_t *wire = al_netpolicy_to_json(&pol.net);
    assert_non_null(wire);
    char *text = json_dumps(wire, JSON_COMPACT);
    struct al_netpolicy got;
    assert_int_equal(decode(&got, text), 0);
    assert_same(&got.allowed_domains, &pol.net.allowed_domains);
    assert_string_equal(got.allowed_domains.items[0], "github.com");
    assert_same(&got.denied_domains, &pol.net.denied_domains);
    assert_same(&got.allowed_addresses, &pol.net.allowed_addresses);
    assert_int_equal(got.allow_all_domains, 1);
    assert_int_equal(got.require_sni_match, 0);

    struct al_netpolicy copy;
    assert_int_equal(al_netpolicy_copy(&copy, &got), 0);
    assert_same(&copy.denied_domains, &got.denied_domains);
    assert_int_equal(copy.require_sni_match, 0);
    al_netpolicy_free(&copy);
    al_netpolicy_free(&got);
    free(text);
    json_decref(wire);
    al_policy_free(&pol);
}

/* The defaults travel too: nothing allowed, SNI must match. */
static void defaults(void **state)
{
    (void)state;
    struct al_netpolicy np, got;
    al_netpolicy_init(&np);
    assert_int_equal(np.require_sni_match, 1);
    json_t *wire = al_netpolicy_to_json(&np);
    char *text = json_dumps(wire, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"allow_all_domains\":false,\"allowed_addresses\":[],"
                              "\"allowed_domains\":[],\"denied_domains\":[],"
                              "\"require_sni_match\":true}");
    assert_int_equal(decode(&got, text), 0);
    assert_int_equal(got.allowed_domains.len, 0);
    assert_int_equal(got.require_sni_match, 1);
    al_netpolicy_free(&got);
    free(text);
    json_decref(wire);
}

#define BASE_LISTS "\"allowed_domains\":[],\"denied_domains\":[],\"allowed_addresses\":[]"
#define BASE_FLAGS "\"allow_all_domains\":false,\"require_sni_match\":true"

/* Every malformed form is refused with a message naming the key, and leaves
 * nothing allocated (the ASan build checks the last part). */
static void malformed(void **state)
{
    (void)state;
    static const struct {
        const char *json, *message;
    } cases[] = {
        {"[]", "expected a network policy object"},
        {"\"x\"", "expected a network policy object"},
        {"{" BASE_FLAGS "}", "allowed_domains: expected an array of strings"},
        {"{" BASE_LISTS "}", "allow_all_domains: expected true or false"},
        {"{" BASE_LISTS "," BASE_FLAGS ",\"allowedDomains\":[]}", "unknown key \"allowedDomains\""},
        {"{" BASE_LISTS "," BASE_FLAGS ",\"sandbox\":{}}", "unknown key \"sandbox\""},
        {"{\"allowed_domains\":\"a.com\",\"denied_domains\":[],\"allowed_addresses\":[]," BASE_FLAGS
         "}",
         "allowed_domains: expected an array of strings"},
        {"{\"allowed_domains\":[1],\"denied_domains\":[],\"allowed_addresses\":[]," BASE_FLAGS "}",
         "allowed_domains[0]: expected a string"},
        {"{\"allowed_domains\":[\"ok.com\",\"*.com\"],\"denied_domains\":[],"
         "\"allowed_addresses\":[]," BASE_FLAGS "}",
         "allowed_domains[1]: "},
        {"{\"allowed_domains\":[\"*\"],\"denied_domains\":[],\"allowed_addresses\":[]," BASE_FLAGS
         "}",
         "allowed_domains[0]: "},
        {"{\"allowed_domains\":[\"Example.com\"],\"denied_domains\":[],\"allowed_addresses\":[]"
         "," BASE_FLAGS "}",
         "allowed_domains[0]: upper-case letter in a domain pattern"},
        {"{\"allowed_domains\":[\"a.com\\u0000.evil.com\"],\"denied_domains\":[],"
         "\"allowed_addresses\":[]," BASE_FLAGS "}",
         "allowed_domains[0]: contains a NUL byte"},
        {"{\"allowed_domains\":[\"a.com\\r\\nx: y\"],\"denied_domains\":[],"
         "\"allowed_addresses\":[]," BASE_FLAGS "}",
         "allowed_domains[0]: "},
        {"{\"allowed_domains\":[],\"denied_domains\":[\"*:99999\"],\"allowed_addresses\":[]"
         "," BASE_FLAGS "}",
         "denied_domains[0]: "},
        {"{\"allowed_domains\":[],\"denied_domains\":[],\"allowed_addresses\":[\"0.0.0.0/"
         "0\"]," BASE_FLAGS "}",
         "allowed_addresses[0]: "},
        {"{\"allowed_domains\":[],\"denied_domains\":[],\"allowed_addresses\":[\"example.com\"]"
         "," BASE_FLAGS "}",
         "allowed_addresses[0]: "},
        {"{" BASE_LISTS ",\"allow_all_domains\":1,\"require_sni_match\":true}",
         "allow_all_domains: expected true or false"},
        {"{" BASE_LISTS ",\"allow_all_domains\":false,\"require_sni_match\":\"no\"}",
         "require_sni_match: expected true or false"},
        {"{" BASE_LISTS "," BASE_FLAGS ",\"strict_allowlist\":1}",
         "strict_allowlist: expected true or false"},
        {"{" BASE_LISTS "," BASE_FLAGS ",\"strict_allowlist\":\"true\"}",
         "strict_allowlist: expected true or false"},
        {"{" BASE_LISTS "," BASE_FLAGS ",\"strict_allowlist\":null}",
         "strict_allowlist: expected true or false"},
        {"{" BASE_LISTS "," BASE_FLAGS ",\"strictAllowlist\":true}",
         "unknown key \"strictAllowlist\""},
        {"{" BASE_LISTS ",\"allow_all_domains\":false,\"strict_allowlist\":true}",
         "require_sni_match: expected true or false"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct al_netpolicy np;
        assert_int_equal(decode(&np, cases[i].json), AL_EINVAL);
        const char *msg = al_error_last();
        if (strncmp(msg, cases[i].message, strlen(cases[i].message)) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s...\"", i, msg, cases[i].message);
        assert_null(np.allowed_domains.items);
        assert_null(np.denied_domains.items);
        assert_null(np.allowed_addresses.items);
    }
    /* NULL (a message without "policy") is refused too */
    struct al_netpolicy np;
    assert_int_equal(al_netpolicy_from_json(&np, NULL), AL_EINVAL);
}

/* "*" and "*:PORT" mean "every domain" in the deny list only. */
static void star_in_deny_list_only(void **state)
{
    (void)state;
    struct al_netpolicy np;
    assert_int_equal(decode(&np, "{\"allowed_domains\":[],\"denied_domains\":[\"*\",\"*:22\"],"
                                 "\"allowed_addresses\":[]," BASE_FLAGS "}"),
                     0);
    assert_int_equal(np.denied_domains.len, 2);
    al_netpolicy_free(&np);
}

/* strictAllowlist, in either settings shape, arrives as strict_allowlist
 * and survives a copy; it is on the wire only when set, so a netproxy of
 * the previous version, which refuses the key, gets the very bytes it knew
 * for every policy it can enforce. */
static void strict_allowlist(void **state)
{
    (void)state;
    static const char *const settings[] = {
        "{\"sandbox\": {\"network\": {\"allowedDomains\": [\"a.com\"], \"strictAllowlist\": "
        "true}}}",
        "{\"network\": {\"allowedDomains\": [\"a.com\"], \"strictAllowlist\": true}}",
    };
    for (size_t i = 0; i < sizeof(settings) / sizeof(*settings); i++) {
        struct al_policy pol;
        al_policy_init(&pol);
        assert_int_equal(
            al_settings_load_buffer(&pol, "s.json", settings[i], strlen(settings[i]), "/h", "/w"),
            0);
        assert_int_equal(pol.net.strict_allowlist, 1);
        json_t *wire = al_netpolicy_to_json(&pol.net);
        assert_true(json_is_true(json_object_get(wire, "strict_allowlist")));
        char *text = json_dumps(wire, JSON_COMPACT);
        struct al_netpolicy got, copy;
        assert_int_equal(decode(&got, text), 0);
        assert_int_equal(got.strict_allowlist, 1);
        assert_int_equal(al_netpolicy_copy(&copy, &got), 0);
        assert_int_equal(copy.strict_allowlist, 1);
        al_netpolicy_free(&copy);
        al_netpolicy_free(&got);
        free(text);
        json_decref(wire);
        al_policy_free(&pol);
    }
    struct al_netpolicy np;
    al_netpolicy_init(&np);
    json_t *wire = al_netpolicy_to_json(&np);
    assert_null(json_object_get(wire, "strict_allowlist"));
    json_decref(wire);
}

/* A policy from the previous version (sent by an older airlockd, or stored
 * for a session that is adopted after an upgrade) has no strict_allowlist:
 * it decodes, not strict, as it was enforced; an explicit false too. */
static void strict_allowlist_absent(void **state)
{
    (void)state;
    struct al_netpolicy np;
    assert_int_equal(decode(&np, "{" BASE_LISTS "," BASE_FLAGS "}"), 0);
    assert_int_equal(np.strict_allowlist, 0);
    al_netpolicy_free(&np);
    assert_int_equal(decode(&np, "{" BASE_LISTS "," BASE_FLAGS ",\"strict_allowlist\":false}"), 0);
    assert_int_equal(np.strict_allowlist, 0);
    al_netpolicy_free(&np);
    assert_int_equal(decode(&np, "{" BASE_LISTS "," BASE_FLAGS ",\"strict_allowlist\":true}"), 0);
    assert_int_equal(np.strict_allowlist, 1);
    al_netpolicy_free(&np);
}

/* Issue 15's fields: computed by the loader, written only when set, read
 * back the same. */
static void issue15_round_trip(void **state)
{
    (void)state;
    static const char settings[] =
        "{\"network\": {\"allowedDomains\": [\"*.example.com\"], \"reportOnly\": true,"
        "\"tlsTerminate\": {\"excludeDomains\": [\"Pinned.example.com\"]},"
        "\"requestRules\": [{\"host\": \"API.example.com\", \"methods\": [\"GET\", \"HEAD\"],"
        " \"paths\": [\"/repos/acme/**\"], \"queryKeys\": []},"
        " {\"host\": \"b.example.com\", \"queryKeys\": [\"page\", \"per_page\"]},"
        " {\"host\": \"c.example.com\"}]},"
        " \"credentials\": {\"allowPlaintextInject\": true}}";
    struct al_policy pol;
    al_policy_init(&pol);
    assert_int_equal(
        al_settings_load_buffer(&pol, "s.json", settings, strlen(settings), "/h", "/w"), 0);
    json_t *wire = al_netpolicy_to_json(&pol.net);
    assert_non_null(wire);
    char *text = json_dumps(wire, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        text, "{\"allow_all_domains\":false,\"allow_plaintext_inject\":true,"
              "\"allowed_addresses\":[],\"allowed_domains\":[\"*.example.com\"],"
              "\"denied_domains\":[],\"report_only\":true,\"request_rules\":[{\"host\":"
              "\"api.example.com\",\"methods\":[\"GET\",\"HEAD\"],\"paths\":[\"/repos/acme/**\"],"
              "\"query_keys\":[]},{\"host\":\"b.example.com\",\"query_keys\":[\"page\","
              "\"per_page\"]},{\"host\":\"c.example.com\"}],\"require_sni_match\":true,"
              "\"tls_exclude_domains\":[\"pinned.example.com\"],\"tls_terminate\":true}");
    struct al_netpolicy got, copy;
    assert_int_equal(decode(&got, text), 0);
    assert_int_equal(got.report_only, 1);
    assert_int_equal(got.tls_terminate, 1);
    assert_int_equal(got.allow_plaintext_inject, 1);
    assert_same(&got.tls_exclude, &pol.net.tls_exclude);
    assert_int_equal(got.n_request_rules, 3);
    for (size_t i = 0; i < 3; i++) {
        const struct al_reqrule *a = &got.request_rules[i], *b = &pol.net.request_rules[i];
        assert_string_equal(a->host, b->host);
        assert_same(&a->methods, &b->methods);
        assert_same(&a->paths, &b->paths);
        assert_same(&a->query_keys, &b->query_keys);
        assert_int_equal(a->has_query_keys, b->has_query_keys);
    }
    assert_int_equal(got.request_rules[0].has_query_keys, 1);
    assert_int_equal(got.request_rules[2].has_query_keys, 0);
    assert_int_equal(al_netpolicy_copy(&copy, &got), 0);
    json_t *again = al_netpolicy_to_json(&copy);
    char *text2 = json_dumps(again, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, text2);
    free(text2);
    json_decref(again);
    al_netpolicy_free(&copy);
    al_netpolicy_free(&got);
    free(text);
    json_decref(wire);
    al_policy_free(&pol);

    /* absent optional keys: all off; false is accepted as absent */
    assert_int_equal(decode(&got, "{" BASE_LISTS "," BASE_FLAGS ",\"report_only\":false,"
                                  "\"tls_terminate\":false,\"request_rules\":[]}"),
                     0);
    assert_int_equal(got.report_only + got.tls_terminate + got.allow_plaintext_inject, 0);
    assert_int_equal(got.n_request_rules, 0);
    al_netpolicy_free(&got);
}

/* Malformed issue-15 keys: refused naming the key and the entry, nothing
 * left allocated. */
static void issue15_malformed(void **state)
{
    (void)state;
#define BASE "{" BASE_LISTS "," BASE_FLAGS ","
    static const struct {
        const char *json, *message;
    } cases[] = {
        {BASE "\"report_only\":1}", "report_only: expected true or false"},
        {BASE "\"tls_terminate\":\"yes\"}", "tls_terminate: expected true or false"},
        {BASE "\"allow_plaintext_inject\":null}", "allow_plaintext_inject: expected true or false"},
        {BASE "\"tls_exclude_domains\":[\"a.example.com\"]}",
         "tls_exclude_domains: given without \"tls_terminate\": true"},
        {BASE "\"tls_terminate\":true,\"tls_exclude_domains\":\"a.example.com\"}",
         "tls_exclude_domains: expected an array of strings"},
        {BASE "\"tls_terminate\":true,\"tls_exclude_domains\":[\"*.com\"]}",
         "tls_exclude_domains[0]: \"*.com\" is too broad"},
        {BASE "\"tls_terminate\":true,\"tls_exclude_domains\":[\"A.example.com\"]}",
         "tls_exclude_domains[0]: upper-case letter in a domain pattern"},
        {BASE "\"request_rules\":{}}", "request_rules: expected an array of objects"},
        {BASE "\"request_rules\":[\"a.example.com\"]}", "request_rules[0]: expected an object"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\"},{}]}",
         "request_rules[1].host: expected a string"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"queryKeys\":[]}]}",
         "request_rules[0]: unknown key \"queryKeys\""},
        {BASE "\"request_rules\":[{\"host\":\"API.example.com\"}]}",
         "request_rules[0].host: upper-case letter in a domain pattern"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\\u0000.evil.com\"}]}",
         "request_rules[0].host: contains a NUL byte"},
        {BASE "\"request_rules\":[{\"host\":\"*\"}]}", "request_rules[0].host: \"*\" is too broad"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"methods\":[]}]}",
         "request_rules[0].methods: empty (absent means any)"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"methods\":\"GET\"}]}",
         "request_rules[0].methods: expected an array of strings"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"methods\":[\"get\"]}]}",
         "request_rules[0].methods[0]: \"get\": methods are matched as sent, in upper case"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"methods\":[\"GET\\r\\n\"]}]}",
         "request_rules[0].methods[0]: \"GET\\x0d\\x0a\": expected an HTTP method"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"methods\":[\"G\\u0000T\"]}]}",
         "request_rules[0].methods[0]: \"G\": expected an HTTP method"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"paths\":[]}]}",
         "request_rules[0].paths: empty (absent means any)"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"paths\":[1]}]}",
         "request_rules[0].paths[0]: expected a string"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"paths\":[\"x/**\"]}]}",
         "request_rules[0].paths[0]: \"x/**\": a path pattern starts with \"/\""},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"paths\":[\"/a\\u0000/b\"]}]}",
         "request_rules[0].paths[0]: \"/a\": contains a NUL byte"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"paths\":[\"/a?b=1\"]}]}",
         "request_rules[0].paths[0]: \"/a?b=1\": \"?\" is not allowed"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"paths\":[\"/a\\nb\"]}]}",
         "request_rules[0].paths[0]: \"/a\\x0ab\": CR, LF and \"\\\" are not allowed"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"paths\":[\"/a\\\\b\"]}]}",
         "request_rules[0].paths[0]: \"/a\\\\b\": CR, LF and \"\\\" are not allowed"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"query_keys\":[\"\"]}]}",
         "request_rules[0].query_keys[0]: \"\": expected a query parameter name"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"query_keys\":[\"a&b\"]}]}",
         "request_rules[0].query_keys[0]: \"a&b\": expected a query parameter name"},
        {BASE "\"request_rules\":[{\"host\":\"a.example.com\",\"query_keys\":null}]}",
         "request_rules[0].query_keys: expected an array of strings"},
    };
#undef BASE
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct al_netpolicy np;
        assert_int_equal(decode(&np, cases[i].json), AL_EINVAL);
        const char *msg = al_error_last();
        if (strncmp(msg, cases[i].message, strlen(cases[i].message)) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s...\"", i, msg, cases[i].message);
        assert_null(np.allowed_domains.items);
        assert_null(np.tls_exclude.items);
        assert_null(np.request_rules);
        assert_int_equal(np.n_request_rules, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_from_settings),
        cmocka_unit_test(defaults),
        cmocka_unit_test(malformed),
        cmocka_unit_test(star_in_deny_list_only),
        cmocka_unit_test(strict_allowlist),
        cmocka_unit_test(strict_allowlist_absent),
        cmocka_unit_test(issue15_round_trip),
        cmocka_unit_test(issue15_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
