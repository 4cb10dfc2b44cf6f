/* git-remote-airlock's URL rewrite (gitproxy/src/remote_url.c): each case
 * states the input and the exact expected output. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "airlock/error.h"
#include "airlock/gp_remote_url.h"

#define PROXY "http://127.0.0.1:7418"

static char out[GP_REMOTE_URL_MAX + 512];
static enum gp_remote_route route;
static const char *why;

static int rw(const char *url, const char *proxy, const char *hosts)
{
    return gp_remote_url_rewrite(out, sizeof(out), &route, &why, url, strlen(url), proxy,
                                 strlen(proxy), hosts, strlen(hosts));
}

static void proxies_served_hosts(void **state)
{
    (void)state;
    assert_int_equal(rw("https://github.com/acme/app.git", PROXY, "github.com"), 0);
    assert_int_equal(route, GP_REMOTE_PROXY);
    assert_string_equal(out, "http://127.0.0.1:7418/github.com/acme/app.git");
    /* trailing '/' of the proxy, host case, second host of the list */
    assert_int_equal(rw("https://GitLab.example/g/sub/r", PROXY "/", "github.com,gitlab.example"),
                     0);
    assert_int_equal(route, GP_REMOTE_PROXY);
    assert_string_equal(out, "http://127.0.0.1:7418/gitlab.example/g/sub/r");
    assert_int_equal(rw("https://git.test/o/r.git/", PROXY, "git.test"), 0);
    assert_string_equal(out, "http://127.0.0.1:7418/git.test/o/r.git/");
    assert_int_equal(rw("https://git.test/o/my_repo-1.2~x+y=z,w:v", PROXY, "git.test"), 0);
    assert_string_equal(out, "http://127.0.0.1:7418/git.test/o/my_repo-1.2~x+y=z,w:v");
}

static void other_https_urls_go_direct(void **state)
{
    (void)state;
    assert_int_equal(rw("https://gitlab.com/a/b.git", PROXY, "github.com"), 0);
    assert_int_equal(route, GP_REMOTE_DIRECT);
    assert_string_equal(out, "https://gitlab.com/a/b.git");
    /* a port never matches a served host */
    assert_int_equal(rw("https://github.com:443/a/b.git", PROXY, "github.com"), 0);
    assert_int_equal(route, GP_REMOTE_DIRECT);
    assert_string_equal(out, "https://github.com:443/a/b.git");
    /* a suffix or prefix of a served host is another host */
    assert_int_equal(rw("https://evilgithub.com/a/b", PROXY, "github.com"), 0);
    assert_int_equal(route, GP_REMOTE_DIRECT);
    assert_int_equal(rw("https://github.co/a/b", PROXY, "github.com"), 0);
    assert_int_equal(route, GP_REMOTE_DIRECT);
    assert_int_equal(rw("https://github.com.evil/a/b", PROXY, "github.com"), 0);
    assert_int_equal(route, GP_REMOTE_DIRECT);
    /* no host list: nothing is proxied, the proxy is not looked at */
    assert_int_equal(rw("https://github.com/a/b", "", ""), 0);
    assert_int_equal(route, GP_REMOTE_DIRECT);
    assert_string_equal(out, "https://github.com/a/b");
}

static void refuses_other_schemes(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "http://github.com/a/b",  "HTTPS://github.com/a/b", "ssh://git@github.com/a/b",
        "git@github.com:a/b.git", "file:///etc/passwd",     "/tmp/repo",
        "ext::sh -c id",          "https:/github.com/a/b",  "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(rw(bad[i], PROXY, "github.com"), AL_EINVAL);
        assert_string_equal(out, "");
        assert_true(strlen(why) > 0);
    }
}

static void refuses_malformed_urls(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "https://user@github.com/a/b",
        "https://user:pw@github.com/a/b",
        "https://@github.com/a/b",
        "https://github.com@evil.test/a/b",
        "https://github.com",
        "https://github.com/",
        "https:///a/b",
        "https://github.com:/a/b",
        "https://github.com:123456/a",
        "https://github.com:44x/a",
        "https://[::1]/a/b",
        "https://github..com/a",
        "https://.github.com/a",
        "https://github.com./a",
        "https://-github.com/a",
        "https://git_hub.com/a",
        "https://github.com/a/../b",
        "https://github.com/..",
        "https://github.com/a/./b",
        "https://github.com/a//b",
        "https://github.com//a",
        "https://github.com/a/%2e%2e/b",
        "https://github.com/a/b?x=1",
        "https://github.com/a/b#frag",
        "https://github.com/a\\..\\b",
        "https://github.com/a b",
        "https://github.com/a\tb",
        "https://github.com/a\nb",
        "https://github.com/a\x7f",
        "https://github.com/a\xc3\xa9",
        "https://github.com/a@b",
        "https://github.com/a;b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(rw(bad[i], PROXY, "github.com"), AL_EINVAL);
        assert_string_equal(out, "");
        assert_true(strlen(why) > 0);
    }
    /* a NUL inside the given length */
    assert_int_equal(gp_remote_url_rewrite(out, sizeof(out), &route, &why,
                                           "https://github.com/a\0b", 22, PROXY, strlen(PROXY),
                                           "github.com", 10),
                     AL_EINVAL);
}

static void refuses_bad_proxy_and_hosts(void **state)
{
    (void)state;
    static const char *const proxies[] = {
        "",
        "127.0.0.1:7418",
        "https://127.0.0.1:7418",
        "http://127.0.0.1",
        "http://127.0.0.1:",
        "http://127.0.0.1:7418/x",
        "http://u@127.0.0.1:7418",
        "http://127.0.0.1:123456",
        "http://:7418",
    };
    for (size_t i = 0; i < sizeof(proxies) / sizeof(*proxies); i++)
        assert_int_equal(rw("https://github.com/a/b", proxies[i], "github.com"), AL_EINVAL);
    static const char *const hosts[] = {
        ",",           "github.com,", ",github.com", "github.com,,x", "github.com:443",
        "git hub.com", "a..b"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(*hosts); i++)
        assert_int_equal(rw("https://github.com/a/b", PROXY, hosts[i]), AL_EINVAL);
}

static void enforces_bounds(void **state)
{
    (void)state;
    static char url[GP_REMOTE_URL_MAX + 2];
    memcpy(url, "https://github.com/", 19);
    memset(url + 19, 'a', sizeof(url) - 20);
    url[sizeof(url) - 1] = '\0'; /* GP_REMOTE_URL_MAX + 1 bytes */
    assert_int_equal(rw(url, PROXY, "github.com"), AL_ETOOBIG);
    url[GP_REMOTE_URL_MAX] = '\0'; /* exactly the maximum */
    assert_int_equal(rw(url, PROXY, "github.com"), 0);
    assert_int_equal(route, GP_REMOTE_PROXY);
    assert_int_equal(strlen(out), strlen(PROXY) + 1 + GP_REMOTE_URL_MAX - 8);
    /* the rewrite does not fit a small buffer: nothing half-written */
    char small[32];
    assert_int_equal(gp_remote_url_rewrite(small, sizeof(small), &route, &why,
                                           "https://github.com/acme/app.git", 31, PROXY,
                                           strlen(PROXY), "github.com", 10),
                     AL_ETOOBIG);
    assert_string_equal(small, "");
    static char hosts[GP_REMOTE_HOSTS_MAX + 2];
    memset(hosts, 'h', sizeof(hosts) - 1);
    assert_int_equal(rw("https://github.com/a/b", PROXY, hosts), AL_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(proxies_served_hosts),        cmocka_unit_test(other_https_urls_go_direct),
        cmocka_unit_test(refuses_other_schemes),       cmocka_unit_test(refuses_malformed_urls),
        cmocka_unit_test(refuses_bad_proxy_and_hosts), cmocka_unit_test(enforces_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
