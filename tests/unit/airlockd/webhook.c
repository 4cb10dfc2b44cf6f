/* core/webhook.c: the webhook URL parser and its SSRF guard, the
 * signature, the retry delays. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "airlockd/core/webhook.h"

#include "airlock/error.h"

static int parse(const char *url, struct ald_webhook_url *u)
{
    char why[256];
    return ald_webhook_url_parse(u, url, strlen(url), why, sizeof(why));
}

static void test_parse_ok(void **state)
{
    (void)state;
    struct ald_webhook_url u;
    assert_int_equal(parse("https://Hooks.Example.COM/a/b?c=d", &u), 0);
    assert_true(u.https);
    assert_string_equal(u.host, "hooks.example.com");
    assert_int_equal(u.port, 443);
    assert_int_equal(parse("http://example.com:8080", &u), 0);
    assert_false(u.https);
    assert_int_equal(u.port, 8080);
    assert_int_equal(parse("HTTP://127.0.0.1:9/x", &u), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(parse("http://[2001:db8::1]:81/", &u), 0);
    assert_string_equal(u.host, "2001:db8::1");
    assert_int_equal(u.port, 81);
    assert_int_equal(parse("http://[::1]", &u), 0);
    assert_int_equal(u.port, 80);
    assert_int_equal(parse("http://example.com?x=1", &u), 0);
    assert_string_equal(u.host, "example.com");
}

static void test_parse_bad(void **state)
{
    (void)state;
    struct ald_webhook_url u;
    static const char *const bad[] = {
        "",
        "example.com",
        "ftp://example.com/",
        "javascript:alert(1)",
        "http:/example.com",
        "http://",
        "http:///path",
        "http://user@example.com/",
        "http://user:pw@example.com/",
        "http://example.com@127.0.0.1/",
        "http://a@b@c/",
        "http://example.com/\r\nX-Injected: 1",
        "http://example.com\r\n/",
        "http://exa mple.com/",
        "http://example.com/ x",
        "http://example.com\\@127.0.0.1/",
        "http://example.com/#frag",
        "http://example.com:/",
        "http://example.com:0/",
        "http://example.com:65536/",
        "http://example.com:99999/",
        "http://example.com:8o/",
        "http://example.com:-1/",
        "http://[::1/",
        "http://[::1]x/",
        "http://[127.0.0.1]/",
        "http://[example.com]/",
        "http://[fe80::1%25eth0]/",
        "http://%31%32%37.0.0.1/",
        "http://1.2.3.4.5/",
        "http://256.0.0.1/",
        "http://0x1g.0.0.1/",
        "http://exa_mple..com:80:80/",
        "http://-example.com/",
        "http://.example.com/",
        "http://ex\xc3\xa4mple.com/",
        "http://example.com/\x7f",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (parse(bad[i], &u) != AL_EINVAL)
            fail_msg("accepted: %s", bad[i]);
    }
    /* an embedded NUL: the length counts, not the C string */
    char why[64];
    assert_int_equal(ald_webhook_url_parse(&u, "http://a.com\0@127.0.0.1/", 24, why, sizeof(why)),
                     AL_EINVAL);
    /* too long */
    static char big[ALD_WEBHOOK_URL_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "http://example.com/", 19);
    assert_int_equal(ald_webhook_url_parse(&u, big, sizeof(big) - 1, why, sizeof(why)), AL_EINVAL);
    assert_int_equal(ald_webhook_url_parse(&u, big, ALD_WEBHOOK_URL_MAX, why, sizeof(why)), 0);
}

/* Every blocked class, in every literal form, is refused unless the
 * operator allows private addresses; public ones pass. */
static void test_guard(void **state)
{
    (void)state;
    static const char *const blocked[] = {
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "0177.0.0.1",
        "017700000001",
        "127.255.255.254",
        "::1",
        "0::1",
        "0:0:0:0:0:0:0:1",
        "::ffff:127.0.0.1",
        "::ffff:7f00:1",
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
        "169.254.169.254",
        "fe80::1",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "fc00::1",
        "fd12:3456::1",
        "0.0.0.0",
        "0",
        "::",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
        "100.64.0.1",
        "240.0.0.1",
        "198.18.0.1",
        "localhost",
    };
    struct al_addr a[8];
    size_t n;
    char why[256];
    for (size_t i = 0; i < sizeof(blocked) / sizeof(*blocked); i++) {
        if (ald_webhook_resolve(a, 8, &n, blocked[i], 0, why, sizeof(why)) != AL_EPERM)
            fail_msg("not refused: %s", blocked[i]);
        if (strstr(why, "webhooks.allow_private") == NULL)
            fail_msg("reason does not name the config key: %s", why);
        if (ald_webhook_resolve(a, 8, &n, blocked[i], 1, why, sizeof(why)) != 0)
            fail_msg("refused although allowed: %s (%s)", blocked[i], why);
    }
    static const char *const public[] = {"93.184.216.34", "8.8.8.8", "2606:4700:4700::1111",
                                         "172.32.0.1", "1.1.1.1"};
    for (size_t i = 0; i < sizeof(public) / sizeof(*public); i++)
        if (ald_webhook_resolve(a, 8, &n, public[i], 0, why, sizeof(why)) != 0)
            fail_msg("refused: %s (%s)", public[i], why);
    assert_int_equal(ald_webhook_resolve(a, 8, &n, "1.2.3.4.5", 1, why, sizeof(why)), AL_EINVAL);
    /* a name: every address it has, each vetted */
    assert_int_equal(ald_webhook_resolve(a, 8, &n, "localhost", 1, why, sizeof(why)), 0);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(al_addr_classify(&a[i]), AL_ADDR_LOOPBACK);
    assert_int_equal(ald_webhook_resolve(a, 8, &n, "localhost", 0, why, sizeof(why)), AL_EPERM);
    assert_int_equal(n, 0);
}

static void test_sign(void **state)
{
    (void)state;
    char sig[72];
    const char *msg = "The quick brown fox jumps over the lazy dog";
    assert_int_equal(ald_webhook_sign(sig, "key", msg, strlen(msg)), 0);
    assert_string_equal(sig,
                        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    /* the exact bytes: one byte more is another signature */
    char sig2[72];
    assert_int_equal(ald_webhook_sign(sig2, "key", msg, strlen(msg) - 1), 0);
    assert_string_not_equal(sig, sig2);
    assert_int_equal(ald_webhook_sign(sig2, "kex", msg, strlen(msg)), 0);
    assert_string_not_equal(sig, sig2);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(ald_webhook_backoff_ms(1, 1000, 600000, 0), 500);
    assert_int_equal(ald_webhook_backoff_ms(1, 1000, 600000, 500), 1000);
    assert_int_equal(ald_webhook_backoff_ms(1, 1000, 600000, 501), 500);
    assert_int_equal(ald_webhook_backoff_ms(2, 1000, 600000, 1000), 2000);
    assert_int_equal(ald_webhook_backoff_ms(5, 1000, 600000, 0), 8000);
    assert_int_equal(ald_webhook_backoff_ms(5, 1000, 600000, 8000), 16000);
    /* capped, and no overflow however many attempts */
    assert_int_equal(ald_webhook_backoff_ms(20, 1000, 600000, 300000), 600000);
    assert_int_equal(ald_webhook_backoff_ms(4000000000u, 1000, 600000, 0), 300000);
    for (uint32_t r = 0; r < 100000; r += 997) {
        uint64_t d = ald_webhook_backoff_ms(3, 1000, 600000, r * 7919u);
        assert_true(d >= 2000 && d <= 4000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok), cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_guard),    cmocka_unit_test(test_sign),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
