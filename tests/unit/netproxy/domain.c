#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "airlock/error.h"
#include "airlock/strlist.h"
#include "domain.h"

static void normalize(void **state)
{
    char out[NP_HOST_MAX];
    assert_int_equal(np_host_normalize(out, "Example.COM.", 12), 0);
    assert_string_equal(out, "example.com");
    assert_int_equal(np_host_normalize(out,
                                       "b\xc3\xbc"
                                       "cher.de",
                                       10),
                     0);
    assert_string_equal(out, "xn--bcher-kva.de");
    assert_int_equal(np_host_normalize(out, "a\0b.com", 7), AL_EINVAL);
    assert_int_equal(np_host_normalize(out, "a b.com", 7), AL_EINVAL);
    assert_int_equal(np_host_normalize(out, "a..com", 6), AL_EINVAL);
    assert_int_equal(np_host_normalize(out, ".", 1), AL_EINVAL);
    assert_int_equal(np_host_normalize(out, "", 0), AL_EINVAL);
    assert_int_equal(np_host_normalize(out, "evil.test/allowed.com", 21), AL_EINVAL);
    assert_int_equal(np_host_normalize(out, "allowed.com@evil.test", 21), AL_EINVAL);
    char label[80];
    memset(label, 'a', 64);
    assert_int_equal(np_host_normalize(out, label, 64), AL_EINVAL);
    assert_int_equal(np_host_normalize(out, label, 63), 0);
}

struct match_case {
    const char *host;
    uint16_t port;
    enum np_match want;
};

static void push(struct al_strlist *l, const char *s)
{
    assert_int_equal(al_strlist_push(l, s), 0);
}

static void match_table(void **state)
{
    struct al_netpolicy p;
    struct np_rules rules;

    memset(&p, 0, sizeof(p));
    push(&p.allowed_domains, "allowed.com");
    push(&p.allowed_domains, "*.wild.com");
    push(&p.allowed_domains, "Port.COM.:8443");
    push(&p.allowed_domains, "b\xc3\xbc"
                             "cher.de");
    push(&p.allowed_domains, "*.com"); /* too broad: skipped */
    push(&p.allowed_domains, "bad entry");
    push(&p.allowed_domains, "evil.wild.com");
    push(&p.denied_domains, "evil.wild.com");
    push(&p.denied_domains, "DENIED.allowed.com.");
    push(&p.allowed_domains, "denied.allowed.com");
    push(&p.allowed_addresses, "127.0.0.2/32");
    assert_int_equal(np_rules_build(&rules, &p), 0);

    static const struct match_case cases[] = {
        {"allowed.com", 443, NP_MATCH_ALLOW},
        {"allowed.com", 80, NP_MATCH_ALLOW},
        {"sub.allowed.com", 443, NP_MATCH_NONE}, /* exact entry: no subdomains */
        {"allowed.com.evil.test", 443, NP_MATCH_NONE},
        {"evilallowed.com", 443, NP_MATCH_NONE},
        {"wild.com", 443, NP_MATCH_NONE}, /* wildcard: strict subdomains only */
        {"a.wild.com", 443, NP_MATCH_ALLOW},
        {"a.b.wild.com", 443, NP_MATCH_ALLOW},
        {"notwild.com", 443, NP_MATCH_NONE},
        {"evil.wild.com", 443, NP_MATCH_DENY}, /* denied first, even if allowed */
        {"denied.allowed.com", 443, NP_MATCH_DENY},
        {"port.com", 8443, NP_MATCH_ALLOW},
        {"port.com", 443, NP_MATCH_NONE},
        {"xn--bcher-kva.de", 443, NP_MATCH_ALLOW},
        {"x.com", 443, NP_MATCH_NONE},
        {"com", 443, NP_MATCH_NONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *rule = NULL;
        enum np_match m = np_rules_match(&rules, cases[i].host, NULL, cases[i].port, &rule);
        if (m != cases[i].want)
            fail_msg("%s:%u: got %d want %d", cases[i].host, cases[i].port, m, cases[i].want);
    }

    /* callers normalise first: uppercase and trailing dots reach the deny rule */
    char norm[NP_HOST_MAX];
    assert_int_equal(np_host_normalize(norm, "EVIL.Wild.Com.", 14), 0);
    assert_int_equal(np_rules_match(&rules, norm, NULL, 443, NULL), NP_MATCH_DENY);

    /* IP literals match only allowedAddresses */
    struct al_addr a;
    const char *rule = NULL;
    assert_int_equal(al_addr_parse(&a, "127.0.0.2", 9), 0);
    assert_int_equal(np_rules_match(&rules, "127.0.0.2", &a, 80, &rule), NP_MATCH_ALLOW);
    assert_string_equal(rule, "127.0.0.2/32");
    assert_int_equal(al_addr_parse(&a, "127.0.0.1", 9), 0);
    assert_int_equal(np_rules_match(&rules, "127.0.0.1", &a, 80, NULL), NP_MATCH_NONE);

    np_rules_free(&rules);
    al_strlist_free(&p.allowed_domains);
    al_strlist_free(&p.denied_domains);
    al_strlist_free(&p.allowed_addresses);
}

static void ip_entries_never_match_via_wildcards(void **state)
{
    struct al_netpolicy p;
    struct np_rules rules;
    struct al_addr a;

    memset(&p, 0, sizeof(p));
    push(&p.allowed_domains, "*.0.0.1");
    push(&p.allowed_domains, "127.0.0.1");
    assert_int_equal(np_rules_build(&rules, &p), 0);
    assert_int_equal(al_addr_parse(&a, "127.0.0.1", 9), 0);
    assert_int_equal(np_rules_match(&rules, "127.0.0.1", &a, 80, NULL), NP_MATCH_NONE);
    np_rules_free(&rules);
    al_strlist_free(&p.allowed_domains);
}

/* allowAllDomains allows every name that is not denied, never an IP
 * literal; "*" in deniedDomains denies every name (on its port, if any). */
static void allow_all_and_deny_star(void **state)
{
    struct al_netpolicy p;
    struct np_rules rules;
    struct al_addr a;
    const char *rule = NULL;

    memset(&p, 0, sizeof(p));
    p.allow_all_domains = 1;
    push(&p.denied_domains, "bad.test");
    push(&p.denied_domains, "*:25");
    push(&p.allowed_domains, "*"); /* never valid in the allow list: skipped */
    assert_int_equal(np_rules_build(&rules, &p), 0);
    assert_int_equal(np_rules_match(&rules, "any.example", NULL, 443, &rule), NP_MATCH_ALLOW);
    assert_string_equal(rule, "allowAllDomains");
    assert_int_equal(np_rules_match(&rules, "bad.test", NULL, 443, NULL), NP_MATCH_DENY);
    assert_int_equal(np_rules_match(&rules, "any.example", NULL, 25, &rule), NP_MATCH_DENY);
    assert_string_equal(rule, "*:25");
    assert_int_equal(al_addr_parse(&a, "8.8.8.8", 7), 0);
    assert_int_equal(np_rules_match(&rules, "8.8.8.8", &a, 443, NULL), NP_MATCH_NONE);
    np_rules_free(&rules);
    al_strlist_free(&p.allowed_domains);
    al_strlist_free(&p.denied_domains);

    memset(&p, 0, sizeof(p));
    push(&p.denied_domains, "*");
    push(&p.allowed_domains, "ok.test");
    assert_int_equal(np_rules_build(&rules, &p), 0);
    assert_int_equal(np_rules_match(&rules, "ok.test", NULL, 443, NULL), NP_MATCH_DENY);
    np_rules_free(&rules);
    al_strlist_free(&p.allowed_domains);
    al_strlist_free(&p.denied_domains);
}

static void bad_address_entry_fails(void **state)
{
    struct al_netpolicy p;
    struct np_rules rules;

    memset(&p, 0, sizeof(p));
    push(&p.allowed_addresses, "10.0.0.0/99");
    assert_int_equal(np_rules_build(&rules, &p), AL_EINVAL);
    assert_non_null(strstr(al_error_last(), "10.0.0.0/99"));
    al_strlist_free(&p.allowed_addresses);
}

static void runtime_allow(void **state)
{
    struct np_rules rules;
    memset(&rules, 0, sizeof(rules));
    assert_int_equal(np_rules_add_allow(&rules, "pypi.org:443"), 0);
    assert_int_equal(np_rules_match(&rules, "pypi.org", NULL, 443, NULL), NP_MATCH_ALLOW);
    assert_int_equal(np_rules_match(&rules, "pypi.org", NULL, 80, NULL), NP_MATCH_NONE);
    np_rules_free(&rules);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalize),
        cmocka_unit_test(match_table),
        cmocka_unit_test(ip_entries_never_match_via_wildcards),
        cmocka_unit_test(bad_address_entry_fails),
        cmocka_unit_test(allow_all_and_deny_star),
        cmocka_unit_test(runtime_allow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
