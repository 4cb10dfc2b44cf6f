#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "airlock/ipaddr.h"
#include "airlock/error.h"

struct addr_case {
    const char *host;
    int rc;            /* al_addr_parse result */
    const char *canon; /* canonical text when rc == 0 */
    enum al_addr_class cls;
};

static const struct addr_case cases[] = {
    /* numeric forms of 127.0.0.1 are loopback, never names */
    {"127.0.0.1", 0, "127.0.0.1", AL_ADDR_LOOPBACK},
    {"2130706433", 0, "127.0.0.1", AL_ADDR_LOOPBACK},
    {"0177.0.0.1", 0, "127.0.0.1", AL_ADDR_LOOPBACK},
    {"0x7f.1", 0, "127.0.0.1", AL_ADDR_LOOPBACK},
    {"0x7f000001", 0, "127.0.0.1", AL_ADDR_LOOPBACK},
    {"127.1", 0, "127.0.0.1", AL_ADDR_LOOPBACK},
    {"127.0.1", 0, "127.0.0.1", AL_ADDR_LOOPBACK},
    {"0x7F.0.0.1", 0, "127.0.0.1", AL_ADDR_LOOPBACK},
    {"017700000001", 0, "127.0.0.1", AL_ADDR_LOOPBACK},
    {"127.0.0.1.", 0, "127.0.0.1", AL_ADDR_LOOPBACK},
    {"0", 0, "0.0.0.0", AL_ADDR_UNSPECIFIED},
    {"0.0.0.0", 0, "0.0.0.0", AL_ADDR_UNSPECIFIED},
    {"0.1.2.3", 0, "0.1.2.3", AL_ADDR_RESERVED},
    {"10.1.2.3", 0, "10.1.2.3", AL_ADDR_PRIVATE},
    {"172.16.0.1", 0, "172.16.0.1", AL_ADDR_PRIVATE},
    {"172.31.255.255", 0, "172.31.255.255", AL_ADDR_PRIVATE},
    {"172.32.0.1", 0, "172.32.0.1", AL_ADDR_PUBLIC},
    {"192.168.1.1", 0, "192.168.1.1", AL_ADDR_PRIVATE},
    {"169.254.169.254", 0, "169.254.169.254", AL_ADDR_LINKLOCAL},
    {"0xa9fea9fe", 0, "169.254.169.254", AL_ADDR_LINKLOCAL},
    {"100.64.0.1", 0, "100.64.0.1", AL_ADDR_CGNAT},
    {"100.127.255.255", 0, "100.127.255.255", AL_ADDR_CGNAT},
    {"100.128.0.1", 0, "100.128.0.1", AL_ADDR_PUBLIC},
    {"224.0.0.1", 0, "224.0.0.1", AL_ADDR_MULTICAST},
    {"239.255.255.250", 0, "239.255.255.250", AL_ADDR_MULTICAST},
    {"255.255.255.255", 0, "255.255.255.255", AL_ADDR_BROADCAST},
    {"240.0.0.1", 0, "240.0.0.1", AL_ADDR_RESERVED},
    {"198.18.0.1", 0, "198.18.0.1", AL_ADDR_RESERVED},
    {"198.19.255.255", 0, "198.19.255.255", AL_ADDR_RESERVED},
    {"192.0.0.8", 0, "192.0.0.8", AL_ADDR_RESERVED},
    {"192.0.2.1", 0, "192.0.2.1", AL_ADDR_RESERVED},
    {"8.8.8.8", 0, "8.8.8.8", AL_ADDR_PUBLIC},
    {"1.1.1.1", 0, "1.1.1.1", AL_ADDR_PUBLIC},
    /* IPv6 */
    {"::1", 0, "::1", AL_ADDR_LOOPBACK},
    {"[::1]", 0, "::1", AL_ADDR_LOOPBACK},
    {"::", 0, "::", AL_ADDR_UNSPECIFIED},
    {"::ffff:127.0.0.1", 0, "::ffff:127.0.0.1", AL_ADDR_EMBEDS_V4},
    {"::ffff:8.8.8.8", 0, "::ffff:8.8.8.8", AL_ADDR_EMBEDS_V4},
    {"::ffff:7f00:1", 0, "::ffff:127.0.0.1", AL_ADDR_EMBEDS_V4},
    {"::127.0.0.1", 0, "::127.0.0.1", AL_ADDR_EMBEDS_V4},
    {"64:ff9b::7f00:1", 0, "64:ff9b::7f00:1", AL_ADDR_EMBEDS_V4},
    {"64:ff9b:1::1", 0, "64:ff9b:1::1", AL_ADDR_RESERVED},
    {"2002:7f00:1::", 0, "2002:7f00:1::", AL_ADDR_EMBEDS_V4},
    {"2001:0:4136:e378:8000:63bf:3fff:fdd2", 0, "2001:0:4136:e378:8000:63bf:3fff:fdd2",
     AL_ADDR_EMBEDS_V4},
    {"2001:db8::1", 0, "2001:db8::1", AL_ADDR_RESERVED},
    {"fc00::1", 0, "fc00::1", AL_ADDR_PRIVATE},
    {"fd12:3456::1", 0, "fd12:3456::1", AL_ADDR_PRIVATE},
    {"fe80::1", 0, "fe80::1", AL_ADDR_LINKLOCAL},
    {"febf::1", 0, "febf::1", AL_ADDR_LINKLOCAL},
    {"fec0::1", 0, "fec0::1", AL_ADDR_PRIVATE},
    {"ff02::1", 0, "ff02::1", AL_ADDR_MULTICAST},
    {"2606:4700::1111", 0, "2606:4700::1111", AL_ADDR_PUBLIC},
    /* IETF protocol assignments 2001::/23 and its edges */
    {"2001:2::1", 0, "2001:2::1", AL_ADDR_RESERVED},
    {"2001:10::1", 0, "2001:10::1", AL_ADDR_RESERVED},
    {"2001:1ff:ffff::1", 0, "2001:1ff:ffff::1", AL_ADDR_RESERVED},
    {"2001:200::1", 0, "2001:200::1", AL_ADDR_PUBLIC},
    /* documentation 3fff::/20 and its edge */
    {"3fff::1", 0, "3fff::1", AL_ADDR_RESERVED},
    {"3fff:fff:ffff::1", 0, "3fff:fff:ffff::1", AL_ADDR_RESERVED},
    {"3fff:1000::1", 0, "3fff:1000::1", AL_ADDR_PUBLIC},
    /* outside 2000::/3: never global unicast */
    {"5f00::1", 0, "5f00::1", AL_ADDR_RESERVED},
    {"100:0:0:1::1", 0, "100:0:0:1::1", AL_ADDR_RESERVED},
    {"1fff:ffff::1", 0, "1fff:ffff::1", AL_ADDR_RESERVED},
    {"4000::1", 0, "4000::1", AL_ADDR_RESERVED},
    {"2000::1", 0, "2000::1", AL_ADDR_PUBLIC},
    {"3ffe:ffff::1", 0, "3ffe:ffff::1", AL_ADDR_PUBLIC},
    /* not literals: names */
    {"example.com", AL_ENOTFOUND, NULL, 0},
    {"1.2.3.com", AL_ENOTFOUND, NULL, 0},
    {"0x7f.example", AL_ENOTFOUND, NULL, 0},
    {"127.0.0.1x", AL_ENOTFOUND, NULL, 0},
    /* numeric-looking but invalid: neither address nor name */
    {"256.0.0.1", AL_EINVAL, NULL, 0},
    {"1.2.3.4.5", AL_EINVAL, NULL, 0},
    {"08.0.0.1", AL_EINVAL, NULL, 0},
    {"4294967296", AL_EINVAL, NULL, 0},
    {"1.16777216", AL_EINVAL, NULL, 0},
    {"example.123", AL_EINVAL, NULL, 0},
    {"1..2", AL_EINVAL, NULL, 0},
    {"::1%lo", AL_EINVAL, NULL, 0},
    {"[::1", AL_EINVAL, NULL, 0},
    {"[127.0.0.1]", AL_EINVAL, NULL, 0},
    {"1:2:3:4:5:6:7:8:9", AL_EINVAL, NULL, 0},
};

static void parse_and_classify_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct addr_case *t = &cases[i];
        struct al_addr a;
        char text[64];
        int rc = al_addr_parse(&a, t->host, strlen(t->host));
        if (rc != t->rc)
            fail_msg("%s: rc %d, want %d", t->host, rc, t->rc);
        if (rc != 0)
            continue;
        al_addr_format(&a, text, sizeof(text));
        if (strcmp(text, t->canon) != 0)
            fail_msg("%s: parsed as %s, want %s", t->host, text, t->canon);
        if (al_addr_classify(&a) != t->cls)
            fail_msg("%s: class %s, want %s", t->host, al_addr_class_name(al_addr_classify(&a)),
                     al_addr_class_name(t->cls));
    }
}

static void parse_respects_length(void **state)
{
    struct al_addr a;
    /* only the first 9 bytes count: "127.0.0.1" */
    assert_int_equal(al_addr_parse(&a, "127.0.0.1junk", 9), 0);
    assert_int_equal(al_addr_classify(&a), AL_ADDR_LOOPBACK);
    assert_int_equal(al_addr_parse(&a, "", 0), AL_ENOTFOUND);
}

static void cidr_contains(void **state)
{
    struct al_cidr c;
    struct al_addr a;

    assert_int_equal(al_cidr_parse(&c, "127.0.0.2/32"), 0);
    assert_int_equal(al_addr_parse(&a, "127.0.0.2", 9), 0);
    assert_true(al_cidr_contains(&c, &a));
    assert_int_equal(al_addr_parse(&a, "::ffff:127.0.0.2", 16), 0);
    assert_true(al_cidr_contains(&c, &a)); /* mapped form compares as IPv4 */
    assert_int_equal(al_addr_parse(&a, "127.0.0.1", 9), 0);
    assert_false(al_cidr_contains(&c, &a));

    assert_int_equal(al_cidr_parse(&c, "10.0.0.0/8"), 0);
    assert_int_equal(al_addr_parse(&a, "10.255.1.1", 10), 0);
    assert_true(al_cidr_contains(&c, &a));
    assert_int_equal(al_cidr_parse(&c, "fd00::/8"), 0);
    assert_int_equal(al_addr_parse(&a, "fd12::1", 7), 0);
    assert_true(al_cidr_contains(&c, &a));
    assert_int_equal(al_cidr_parse(&c, "0.0.0.0/0"), 0);
    assert_false(al_cidr_contains(&c, &a)); /* families differ */

    assert_int_equal(al_cidr_parse(&c, "10.0.0.0/33"), AL_EINVAL);
    assert_int_equal(al_cidr_parse(&c, "10.0.0.0/"), AL_EINVAL);
    assert_int_equal(al_cidr_parse(&c, "example.com"), AL_EINVAL);
    assert_int_equal(al_cidr_parse(&c, "::/129"), AL_EINVAL);
    assert_int_equal(al_cidr_parse(&c, "1.2.3.4/1x"), AL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_and_classify_table),
        cmocka_unit_test(parse_respects_length),
        cmocka_unit_test(cidr_contains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
