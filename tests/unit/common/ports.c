/* airlock/ports.h and airlock/proxy_env.h: the string forms are the numbers
 * (a port written as 03128 or (3128) would stringify to something else), and
 * the proxy variables name the ports the documentation gives. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "airlock/ports.h"
#include "airlock/proxy_env.h"

static void strings_are_the_numbers(void **state)
{
    (void)state;
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", AL_PORT_HTTP_PROXY);
    assert_string_equal(buf, AL_PORT_HTTP_PROXY_STR);
    snprintf(buf, sizeof(buf), "%d", AL_PORT_SOCKS_PROXY);
    assert_string_equal(buf, AL_PORT_SOCKS_PROXY_STR);
    snprintf(buf, sizeof(buf), "%d", AL_PORT_GIT_PROXY);
    assert_string_equal(buf, AL_PORT_GIT_PROXY_STR);
}

/* The documented values (docs/cloud.md, docs/run.md): changing a port is a
 * change of the sandbox's interface, made here on purpose. */
static void documented_values(void **state)
{
    (void)state;
    assert_int_equal(AL_PORT_HTTP_PROXY, 3128);
    assert_int_equal(AL_PORT_SOCKS_PROXY, 1080);
    assert_int_equal(AL_PORT_GIT_PROXY, 7418);
}

static const char *env_get(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < AL_PROXY_ENV_LEN; i++)
        if (strncmp(al_proxy_env[i], name, n) == 0 && al_proxy_env[i][n] == '=')
            return al_proxy_env[i] + n + 1;
    return NULL;
}

static void proxy_env_uses_the_ports(void **state)
{
    (void)state;
    static const char *const http[] = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"};
    for (size_t i = 0; i < sizeof(http) / sizeof(*http); i++) {
        assert_non_null(env_get(http[i]));
        assert_string_equal(env_get(http[i]), "http://127.0.0.1:3128");
    }
    assert_string_equal(env_get("ALL_PROXY"), "socks5h://127.0.0.1:1080");
    assert_string_equal(env_get("all_proxy"), "socks5h://127.0.0.1:1080");
    assert_string_equal(env_get("JAVA_TOOL_OPTIONS"),
                        "-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=3128 "
                        "-Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=3128");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strings_are_the_numbers),
        cmocka_unit_test(documented_values),
        cmocka_unit_test(proxy_env_uses_the_ports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
