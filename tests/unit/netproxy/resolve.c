/* The resolver's DNS-server parser and its override table (no network:
 * override answers and hosts_only finish without asking DNS). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/error.h"
#include "resolve.h"

static void server_specs(void **state)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    char text[64];

    assert_int_equal(np_resolver_parse_server(&ss, "192.0.2.1"), 0);
    assert_int_equal(s4->sin_family, AF_INET);
    assert_int_equal(ntohs(s4->sin_port), 53);
    assert_int_equal(np_resolver_parse_server(&ss, "127.0.0.1:5353"), 0);
    assert_int_equal(ntohs(s4->sin_port), 5353);
    assert_int_equal(np_resolver_parse_server(&ss, "2001:db8::1"), 0);
    assert_int_equal(s6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(s6->sin6_port), 53);
    assert_int_equal(np_resolver_parse_server(&ss, "[::1]:5300"), 0);
    assert_int_equal(ntohs(s6->sin6_port), 5300);
    inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof(text));
    assert_string_equal(text, "::1");

    static const char *const bad[] = {
        "",          "dns.example", "1.2.3.4:", "1.2.3.4:0",    "1.2.3.4:65536", "1.2.3.4:-1",
        "1.2.3.4:x", "[::1",        "[::1]x",   "[::1]:",       "[]:53",         "1.2.3",
        "1.2.3.4.5", "[1.2.3.4]",   "::1]:53",  "1.2.3.4:53:1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        if (np_resolver_parse_server(&ss, bad[i]) != AL_EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
}

static void overrides_rotate_and_hosts_only(void **state)
{
    struct np_resolver *r;
    struct np_resolve_job job;
    char text[64];

    assert_int_equal(np_resolver_new(&r, 1, 1, NULL, 0), 0);
    assert_int_equal(np_resolver_add_override(r, "Rebind.Test.", "192.0.2.7"), 0);
    assert_int_equal(np_resolver_add_override(r, "rebind.test", "127.0.0.1,::1"), 0);
    assert_int_equal(np_resolver_add_override(r, "bad.test", "not-an-ip"), AL_EINVAL);
    assert_int_equal(np_resolver_add_override(r, "bad.test", ""), AL_EINVAL);

    memset(&job, 0, sizeof(job));
    memcpy(job.name, "rebind.test", sizeof("rebind.test"));
    assert_int_equal(np_resolver_submit(r, &job), 1);
    assert_int_equal(job.n, 1);
    al_addr_format(&job.addrs[0], text, sizeof(text));
    assert_string_equal(text, "192.0.2.7");
    assert_int_equal(np_resolver_submit(r, &job), 1);
    assert_int_equal(job.n, 2); /* the second answer, then back to the first */
    assert_int_equal(np_resolver_submit(r, &job), 1);
    assert_int_equal(job.n, 1);

    memcpy(job.name, "other.test", sizeof("other.test"));
    assert_int_equal(np_resolver_submit(r, &job), 1); /* hosts_only: done at once */
    assert_int_equal(job.err, AL_ENOTFOUND);
    np_resolver_free(r);

    struct sockaddr_storage four[4];
    memset(four, 0, sizeof(four));
    assert_int_equal(np_resolver_new(&r, 1, 0, four, 4), AL_EINVAL); /* at most 3 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_specs),
        cmocka_unit_test(overrides_rotate_and_hosts_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
