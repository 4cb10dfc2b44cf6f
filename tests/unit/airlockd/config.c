#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "airlockd/core/config.h"

#include "airlock/error.h"

static int load(struct ald_config *c, const char *json)
{
    return ald_config_load_buffer(c, "airlockd.json", json, strlen(json));
}

/* Loads `json` into a default config; expects failure with `needle` in the
 * message. */
static void expect_error(const char *json, const char *needle)
{
    struct ald_config c;
    assert_int_equal(ald_config_init(&c), 0);
    int err = load(&c, json);
    if (err == 0)
        fail_msg("accepted: %s", json);
    if (!strstr(al_error_last(), needle))
        fail_msg("message \"%s\" lacks \"%s\"", al_error_last(), needle);
    ald_config_free(&c);
}

static void test_defaults(void **state)
{
    (void)state;
    struct ald_config c;
    assert_int_equal(ald_config_init(&c), 0);
    assert_string_equal(c.listen, "127.0.0.1:7070");
    assert_string_equal(c.state_dir, "/var/lib/airlock");
    assert_int_equal(c.uid_start, 200000);
    assert_int_equal(c.uid_count, 60000);
    assert_null(c.rootfs);
    assert_int_equal(c.limits_default.memory_mb, 512);
    assert_int_equal(c.limits_default.pids, 256);
    assert_int_equal(c.limits_default.ttl_s, 3600);
    assert_int_equal(c.limits_default.idle_s, 900);
    assert_int_equal(c.max_body_bytes, 1024 * 1024);
    assert_int_equal(c.workspace_retention_s, 0);
    /* an empty document changes nothing */
    assert_int_equal(load(&c, "{}"), 0);
    assert_string_equal(c.listen, "127.0.0.1:7070");
    ald_config_free(&c);
}

static void test_full(void **state)
{
    (void)state;
    struct ald_config c;
    assert_int_equal(ald_config_init(&c), 0);
    const char *json =
        "{\"listen\": \"[::1]:8080\", \"state_dir\": \"/srv/airlock\","
        " \"uid_range\": {\"start\": 300000, \"count\": 1000}, \"rootfs\": \"/srv/rootfs\","
        " \"limits\": {\"default\": {\"memory_mb\": 256, \"pids\": 64, \"cpu\": 0.5,"
        " \"ttl_s\": 600, \"idle_s\": 60}, \"max\": {\"memory_mb\": 1024, \"pids\": 128,"
        " \"cpu\": 2, \"ttl_s\": 7200, \"idle_s\": 3600}},"
        " \"quotas\": {\"max_sessions\": 3, \"max_memory_mb\": 2048},"
        " \"max_body_bytes\": 4096, \"max_upload_bytes\": 1048576, \"max_output_bytes\": 65536,"
        " \"approval_timeout_s\": 10, \"workspace_retention_s\": 60, \"max_connections\": 50,"
        " \"drain_timeout_s\": 5, \"event_retention\": 100, \"log_level\": \"debug\","
        " \"init_path\": \"/usr/libexec/airlock/airlock-init\"}";
    assert_int_equal(load(&c, json), 0);
    assert_string_equal(c.listen, "[::1]:8080");
    assert_string_equal(c.state_dir, "/srv/airlock");
    assert_string_equal(c.rootfs, "/srv/rootfs");
    assert_int_equal(c.uid_start, 300000);
    assert_int_equal(c.uid_count, 1000);
    assert_int_equal(c.limits_default.memory_mb, 256);
    assert_true(c.limits_default.cpu == 0.5);
    assert_int_equal(c.limits_max.pids, 128);
    assert_int_equal(c.quota_max_sessions, 3);
    assert_int_equal(c.quota_max_memory_mb, 2048);
    assert_int_equal(c.max_body_bytes, 4096);
    assert_int_equal(c.workspace_retention_s, 60);
    assert_int_equal(c.max_connections, 50);
    assert_int_equal(c.event_retention, 100);
    assert_string_equal(c.log_level, "debug");
    /* rootfs back to null */
    assert_int_equal(load(&c, "{\"rootfs\": null}"), 0);
    assert_null(c.rootfs);
    ald_config_free(&c);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("", "airlockd.json");
    expect_error("[1]", "expected a JSON object");
    expect_error("{\"listn\": \"x\"}", "listn: unknown key");
    expect_error("{\"listen\": 7070}", "listen: expected a string");
    expect_error("{\"listen\": \"7070\"}", "listen: expected \"HOST:PORT\"");
    expect_error("{\"listen\": \"1.2.3.4:99999\"}", "listen");
    expect_error("{\"state_dir\": \"relative\"}", "state_dir: must be an absolute path");
    expect_error("{\"state_dir\": \"\"}", "state_dir");
    expect_error("{\"uid_range\": {\"start\": 10}}", "uid_range.start");
    expect_error("{\"uid_range\": {\"begin\": 10}}", "uid_range.begin: unknown key");
    expect_error("{\"uid_range\": []}", "uid_range: expected an object");
    expect_error("{\"uid_range\": {\"start\": 4294000000, \"count\": 16000000}}", "uid_range");
    expect_error("{\"limits\": {\"default\": {\"memory_mb\": \"1\"}}}",
                 "limits.default.memory_mb: expected an integer");
    expect_error("{\"limits\": {\"default\": {\"memroy_mb\": 1}}}",
                 "limits.default.memroy_mb: unknown key");
    expect_error("{\"limits\": {\"default\": {\"memory_mb\": -5}}}", "limits.default.memory_mb");
    expect_error("{\"limits\": {\"default\": {\"cpu\": \"fast\"}}}",
                 "limits.default.cpu: expected a number");
    expect_error("{\"limits\": {\"default\": {\"cpu\": 0}}}", "limits.default.cpu");
    expect_error("{\"limits\": {\"min\": {}}}", "limits.min: unknown key");
    expect_error(
        "{\"limits\": {\"default\": {\"memory_mb\": 4096}, \"max\": {\"memory_mb\": 1024}}}",
        "limits.default.memory_mb: above limits.max.memory_mb");
    expect_error("{\"quotas\": {\"max_sessions\": true}}", "quotas.max_sessions");
    expect_error("{\"quotas\": {\"sessions\": 1}}", "quotas.sessions: unknown key");
    expect_error("{\"max_body_bytes\": 1}", "max_body_bytes: must be between");
    expect_error("{\"max_body_bytes\": 1.5}", "max_body_bytes: expected an integer");
    expect_error("{\"approval_timeout_s\": 0}", "approval_timeout_s");
    expect_error("{\"log_level\": \"loud\"}", "log_level");
    expect_error("{\"rootfs\": 1}", "rootfs: expected a string or null");
    expect_error("{\"listen\": \"a:1\", \"listen\": \"b:2\"}", "duplicate");
    expect_error("{\"proxies\": {\"user\": \"root\"}}", "proxies.user");
    expect_error("{\"proxies\": {\"netproxy\": \"rel\"}}", "proxies.netproxy: must be an absolute");
    expect_error("{\"proxies\": {\"hosts\": [\"noequals\"]}}", "proxies.hosts");
    expect_error("{\"proxies\": {\"hosts\": \"a=1\"}}", "proxies.hosts");
    expect_error("{\"proxies\": {\"enabled\": 1}}", "proxies.enabled");
    expect_error("{\"proxies\": {\"bogus\": 1}}", "proxies.bogus: unknown key");
    expect_error("{\"proxies\": {\"approval_timeout_s\": 0}}", "proxies.approval_timeout_s");
    expect_error("{\"proxies\": {\"home_dir\": \"rel\"}}",
                 "proxies.home_dir: must be an absolute path");
    expect_error("{\"proxies\": {\"home_dir\": 1}}", "proxies.home_dir: expected a string or null");
}

static void test_proxies(void **state)
{
    (void)state;
    struct ald_config cfg;
    assert_int_equal(ald_config_init(&cfg), 0);
    assert_int_equal(cfg.px_enabled, 1);
    assert_string_equal(cfg.proxy_user, "nobody");
    const char *j = "{\"proxies\": {\"netproxy\": false, \"gitproxy\": \"/x/gp\","
                    " \"gitproxy_config\": \"/x/gp.json\", \"user\": \"airlock-proxy\","
                    " \"hosts\": [\"a.test=127.0.0.1\", \"b.test=::1\"]}}";
    assert_int_equal(ald_config_load_buffer(&cfg, "t", j, strlen(j)), 0);
    assert_int_equal(cfg.px_no_net, 1);
    assert_string_equal(cfg.gitproxy_path, "/x/gp");
    assert_string_equal(cfg.gitproxy_config, "/x/gp.json");
    assert_string_equal(cfg.proxy_user, "airlock-proxy");
    assert_string_equal(cfg.px_hosts[1], "b.test=::1");
    assert_null(cfg.px_hosts[2]);
    assert_null(cfg.px_home_dir); /* default: "<state_dir>-proxy-home", made at start */
    j = "{\"proxies\": {\"home_dir\": \"/srv/airlock-homes\"}}";
    assert_int_equal(ald_config_load_buffer(&cfg, "t", j, strlen(j)), 0);
    assert_string_equal(cfg.px_home_dir, "/srv/airlock-homes");
    j = "{\"proxies\": {\"home_dir\": null}}";
    assert_int_equal(ald_config_load_buffer(&cfg, "t", j, strlen(j)), 0);
    assert_null(cfg.px_home_dir);
    ald_config_free(&cfg);
}

/* proxies.token_keys and proxies.credential_store: airlockd's own, so it
 * never reads the gitproxy's configuration. */
static void test_token_keys(void **state)
{
    (void)state;
    struct ald_config cfg;
    assert_int_equal(ald_config_init(&cfg), 0);
    assert_int_equal(cfg.n_px_token_keys, 0); /* default: k1 in <state_dir>/token.key */
    assert_null(cfg.px_credential_store);     /* default: <state_dir>/creds.store */
    const char *j = "{\"proxies\": {\"token_keys\": [{\"kid\": \"k2\", \"file\": \"/s/k2.key\"},"
                    " {\"kid\": \"k1\", \"file\": \"/s/k1.key\"}],"
                    " \"credential_store\": \"/s/creds.store\"}}";
    assert_int_equal(ald_config_load_buffer(&cfg, "t", j, strlen(j)), 0);
    assert_int_equal(cfg.n_px_token_keys, 2);
    assert_string_equal(cfg.px_token_keys[0].kid, "k2");
    assert_string_equal(cfg.px_token_keys[1].file, "/s/k1.key");
    assert_string_equal(cfg.px_credential_store, "/s/creds.store");
    /* a second load replaces the list */
    j = "{\"proxies\": {\"token_keys\": [{\"kid\": \"k3\", \"file\": \"/s/k3.key\"}]}}";
    assert_int_equal(ald_config_load_buffer(&cfg, "t", j, strlen(j)), 0);
    assert_int_equal(cfg.n_px_token_keys, 1);
    assert_string_equal(cfg.px_token_keys[0].kid, "k3");
    ald_config_free(&cfg);
    expect_error("{\"proxies\": {\"token_keys\": []}}", "proxies.token_keys: expected an array");
    expect_error("{\"proxies\": {\"token_keys\": {\"kid\": \"k\"}}}", "proxies.token_keys");
    expect_error("{\"proxies\": {\"token_keys\": [{\"kid\": \"a\", \"file\": \"/a\"},"
                 " {\"kid\": \"b\", \"file\": \"/b\"}, {\"kid\": \"c\", \"file\": \"/c\"},"
                 " {\"kid\": \"d\", \"file\": \"/d\"}, {\"kid\": \"e\", \"file\": \"/e\"}]}}",
                 "1 to 4");
    expect_error("{\"proxies\": {\"token_keys\": [{\"file\": \"/a\"}]}}",
                 "proxies.token_keys[0]: \"kid\" must be");
    expect_error("{\"proxies\": {\"token_keys\": [{\"kid\": \"k 1\", \"file\": \"/a\"}]}}",
                 "\"kid\" must be");
    expect_error("{\"proxies\": {\"token_keys\": [{\"kid\": \"k\\n\", \"file\": \"/a\"}]}}",
                 "\"kid\" must be");
    expect_error("{\"proxies\": {\"token_keys\": [{\"kid\": \"k1\"}]}}",
                 "proxies.token_keys[0]: expected a string");
    expect_error("{\"proxies\": {\"token_keys\": [{\"kid\": \"k1\", \"file\": \"k1.key\"}]}}",
                 "must be an absolute path");
    expect_error("{\"proxies\": {\"token_keys\": [{\"kid\": \"k1\", \"file\": \"/a\"},"
                 " {\"kid\": \"k1\", \"file\": \"/b\"}]}}",
                 "the same kid twice");
    expect_error("{\"proxies\": {\"token_keys\": [{\"kid\": \"k1\", \"file\": \"/a\", \"x\": 1}]}}",
                 "unknown key");
    expect_error("{\"proxies\": {\"credential_store\": \"creds.store\"}}",
                 "proxies.credential_store: must be an absolute path");
}

static void test_listen_split(void **state)
{
    (void)state;
    char host[64];
    uint16_t port;
    assert_int_equal(ald_config_listen_split("127.0.0.1:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 0);
    assert_int_equal(ald_config_listen_split("[::1]:7070", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 7070);
    assert_int_equal(ald_config_listen_split(":80", host, sizeof(host), &port), AL_EINVAL);
    assert_int_equal(ald_config_listen_split("h:", host, sizeof(host), &port), AL_EINVAL);
    assert_int_equal(ald_config_listen_split("h:8x", host, sizeof(host), &port), AL_EINVAL);
    assert_int_equal(ald_config_listen_split("[::1]80", host, sizeof(host), &port), AL_EINVAL);
    assert_int_equal(ald_config_listen_split("h:65536", host, sizeof(host), &port), AL_EINVAL);
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/var/tmp/airlockd-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *json = "{\"listen\": \"127.0.0.1:9999\"}";
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    struct ald_config c;
    assert_int_equal(ald_config_init(&c), 0);
    assert_int_equal(ald_config_load_file(&c, path), 0);
    assert_string_equal(c.listen, "127.0.0.1:9999");
    unlink(path);
    assert_true(ald_config_load_file(&c, path) < 0);
    ald_config_free(&c);
}

/* "git": the sessions' branches. */
static void test_git(void **state)
{
    (void)state;
    struct ald_config c;
    assert_int_equal(ald_config_init(&c), 0);
    assert_string_equal(c.git.session_ref, "refs/heads/airlock/{session}");
    assert_string_equal(c.git.branch_pattern, "airlock/*");
    assert_int_equal(c.git.protected_refs.len, 3);
    assert_string_equal(c.git.protected_refs.items[0], "main");
    assert_string_equal(c.git.protected_refs.items[1], "master");
    assert_string_equal(c.git.protected_refs.items[2], "release/*");
    const char *j = "{\"git\": {\"session_ref\": \"refs/heads/agents/{session}/work\","
                    " \"branch_pattern\": \"agents/*\", \"protected_refs\": [\"trunk\","
                    " \"prod/*\"]}}";
    assert_int_equal(load(&c, j), 0);
    assert_string_equal(c.git.session_ref, "refs/heads/agents/{session}/work");
    assert_string_equal(c.git.branch_pattern, "agents/*");
    assert_int_equal(c.git.protected_refs.len, 2);
    char branch[128], why[512];
    assert_int_equal(ald_gitpolicy_session_branch(&c.git, "s_ab", branch, sizeof(branch)), 0);
    assert_string_equal(branch, "agents/s_ab/work");
    /* the session form, a directory of it and a branch below it are reserved */
    assert_int_equal(ald_gitpolicy_check_branch(&c.git, "agents/s_ab/work", why, sizeof(why)),
                     AL_EPERM);
    assert_int_equal(ald_gitpolicy_check_branch(&c.git, "agents/s_ab", why, sizeof(why)), AL_EPERM);
    assert_int_equal(ald_gitpolicy_check_branch(&c.git, "agents/s_ab/work/x", why, sizeof(why)),
                     AL_EPERM);
    assert_int_equal(ald_gitpolicy_check_branch(&c.git, "agents/s_ab/play", why, sizeof(why)), 0);
    assert_int_equal(ald_gitpolicy_check_branch(&c.git, "agents/prod", why, sizeof(why)), 0);
    assert_int_equal(ald_gitpolicy_check_branch(&c.git, "agents/x", why, sizeof(why)), 0);
    /* "main" is no longer protected, but outside the pattern */
    assert_int_equal(ald_gitpolicy_check_branch(&c.git, "main", why, sizeof(why)), AL_EPERM);
    assert_int_equal(load(&c, "{\"git\": {\"branch_pattern\": null}}"), 0);
    assert_null(c.git.branch_pattern);
    assert_int_equal(load(&c, "{\"git\": {\"protected_refs\": []}}"), 0);
    assert_int_equal(c.git.protected_refs.len, 0);
    ald_config_free(&c);

    expect_error("{\"git\": []}", "git: expected an object");
    expect_error("{\"git\": {\"sessionref\": \"x\"}}", "git.sessionref: unknown key");
    expect_error("{\"git\": {\"session_ref\": 1}}", "git.session_ref: expected a string");
    expect_error("{\"git\": {\"session_ref\": \"refs/heads/airlock\"}}", "git.session_ref");
    expect_error("{\"git\": {\"session_ref\": \"airlock/{session}\"}}", "git.session_ref");
    expect_error("{\"git\": {\"session_ref\": \"refs/tags/{session}\"}}", "git.session_ref");
    expect_error("{\"git\": {\"session_ref\": \"refs/heads/{session}/{session}\"}}",
                 "git.session_ref");
    expect_error("{\"git\": {\"session_ref\": \"refs/heads/a..{session}\"}}", "git.session_ref");
    expect_error("{\"git\": {\"session_ref\": \"refs/heads/a b/{session}\"}}", "git.session_ref");
    expect_error("{\"git\": {\"session_ref\": \"refs/heads/{session}.lock\"}}", "git.session_ref");
    /* a session_ref whose branches are protected */
    expect_error("{\"git\": {\"protected_refs\": [\"airlock/*\"]}}",
                 "git.session_ref: its branches collide with git.protected_refs");
    expect_error("{\"git\": {\"session_ref\": \"refs/heads/release/{session}\"}}",
                 "git.session_ref: its branches collide");
    expect_error("{\"git\": {\"session_ref\": \"refs/heads/main/{session}\"}}",
                 "git.session_ref: its branches collide");
    expect_error("{\"git\": {\"branch_pattern\": 5}}", "git.branch_pattern: expected a string");
    expect_error("{\"git\": {\"branch_pattern\": \"*\"}}", "git.branch_pattern");
    expect_error("{\"git\": {\"branch_pattern\": \"a/**\"}}", "git.branch_pattern");
    expect_error("{\"git\": {\"branch_pattern\": \"a..b/*\"}}", "git.branch_pattern");
    expect_error("{\"git\": {\"branch_pattern\": \"/*\"}}", "git.branch_pattern");
    expect_error("{\"git\": {\"branch_pattern\": \"\"}}", "git.branch_pattern");
    expect_error("{\"git\": {\"protected_refs\": \"main\"}}", "git.protected_refs: expected");
    expect_error("{\"git\": {\"protected_refs\": [\"main\", 1]}}", "git.protected_refs[1]");
    expect_error("{\"git\": {\"protected_refs\": [\"ma in\"]}}", "git.protected_refs[0]");
    expect_error("{\"git\": {\"protected_refs\": [\"-x\"]}}", "git.protected_refs[0]");
}

/* "grants": what one user may widen; never the host's loopback,
 * unspecified, link-local or metadata addresses. */
static void test_grants(void **state)
{
    (void)state;
    struct ald_config c;
    assert_int_equal(ald_config_init(&c), 0);
    assert_int_equal(c.grants.len, 0);
    assert_null(ald_grants_find(&c.grants, "alice"));
    const char *j = "{\"grants\": {\"alice\": {\"allowedAddresses\": [\"10.20.0.0/16\","
                    " \"192.0.2.5\", \"2001:db8::/32\"], \"allowLocalBinding\": true},"
                    " \"bob.b-1\": {\"allowAllDomains\": true, \"requireSniMatch\": false},"
                    " \"carol\": {\"allowLocalBinding\": false, \"requireSniMatch\": true}}}";
    assert_int_equal(load(&c, j), 0);
    assert_int_equal(c.grants.len, 3);
    const struct ald_grant *a = ald_grants_find(&c.grants, "alice");
    assert_non_null(a);
    assert_int_equal(a->n_addresses, 3);
    assert_int_equal(a->allow_local_binding, 1);
    assert_int_equal(a->allow_all_domains, 0);
    const struct ald_grant *b = ald_grants_find(&c.grants, "bob.b-1");
    assert_int_equal(b->allow_all_domains, 1);
    assert_int_equal(b->no_sni_match, 1);
    const struct ald_grant *cg = ald_grants_find(&c.grants, "carol");
    assert_int_equal(cg->allow_local_binding, 0);
    assert_int_equal(cg->no_sni_match, 0);
    assert_null(ald_grants_find(&c.grants, "dave"));
    assert_null(ald_grants_find(&c.grants, NULL));
    struct ald_cidr x;
    assert_int_equal(ald_cidr_parse(&x, "10.20.3.4", 9), 0);
    assert_true(ald_grant_allows_address(a, &x));
    assert_false(ald_grant_allows_address(b, &x));
    assert_false(ald_grant_allows_address(NULL, &x));
    assert_int_equal(ald_cidr_parse(&x, "::ffff:10.20.3.4", 16), 0);
    assert_true(ald_grant_allows_address(a, &x));
    assert_int_equal(ald_cidr_parse(&x, "10.0.0.0/8", 10), 0);
    assert_false(ald_grant_allows_address(a, &x));
    /* a later "grants" replaces the earlier one */
    assert_int_equal(load(&c, "{\"grants\": {}}"), 0);
    assert_int_equal(c.grants.len, 0);
    ald_config_free(&c);

    /* never grantable: the host's loopback, unspecified, link-local and
     * metadata addresses, in any spelling, or a range that holds one */
    static const char *const never[] = {
        "127.0.0.1",
        "127.0.0.0/8",
        "127.1.2.3",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:127.0.0.0/104",
        "::ffff:0:0/96",
        "0.0.0.0",
        "0.0.0.0/0",
        "::",
        "::/0",
        "::/1",
        "169.254.169.254",
        "169.254.0.0/16",
        "169.254.1.1",
        "fe80::1",
        "fe80::/10",
        "fd00:ec2::254",
        "fd00::/8",
        "100.100.100.200",
        "100.64.0.0/10",
        "192.0.0.192",
        "192.0.0.0/24",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::/96",
        "::127.0.0.1",
        "96.0.0.0/3",
        "0.0.0.0/1",
    };
    char doc[256];
    for (size_t i = 0; i < sizeof(never) / sizeof(*never); i++) {
        snprintf(doc, sizeof(doc), "{\"grants\": {\"alice\": {\"allowedAddresses\": [\"%s\"]}}}",
                 never[i]);
        expect_error(doc, "grants.alice.allowedAddresses[0]: ");
        expect_error(doc, "which no grant may open");
        struct ald_cidr n;
        assert_int_equal(ald_cidr_parse(&n, never[i], strlen(never[i])), 0);
        assert_non_null(ald_cidr_never_grantable(&n));
    }
    /* ranges next to them are fine */
    static const char *const fine[] = {"126.255.255.255", "128.0.0.0/8", "169.253.0.0/16",
                                       "169.255.0.1",     "fe00::/9",    "fd00:ec2::253",
                                       "100.100.100.201", "192.0.0.193", "::2:0:0/96",
                                       "10.0.0.0/8",      "1.0.0.0/8"};
    for (size_t i = 0; i < sizeof(fine) / sizeof(*fine); i++) {
        struct ald_cidr n;
        assert_int_equal(ald_cidr_parse(&n, fine[i], strlen(fine[i])), 0);
        if (ald_cidr_never_grantable(&n))
            fail_msg("%s: %s", fine[i], ald_cidr_never_grantable(&n));
    }
    expect_error("{\"grants\": []}", "grants: expected an object");
    expect_error("{\"grants\": {\"Alice\": {}}}", "grants.Alice: not a user name");
    expect_error("{\"grants\": {\"alice\": []}}", "grants.alice: expected an object");
    expect_error("{\"grants\": {\"alice\": {\"httpProxyPort\": 8080}}}",
                 "grants.alice.httpProxyPort: unknown key");
    expect_error("{\"grants\": {\"alice\": {\"excludedCommands\": [\"x\"]}}}",
                 "grants.alice.excludedCommands: unknown key");
    expect_error("{\"grants\": {\"alice\": {\"allowLocalBinding\": 1}}}",
                 "grants.alice.allowLocalBinding: expected true or false");
    expect_error("{\"grants\": {\"alice\": {\"allowedAddresses\": \"10.0.0.0/8\"}}}",
                 "grants.alice.allowedAddresses: expected an array");
    expect_error("{\"grants\": {\"alice\": {\"allowedAddresses\": [\"10.0.0.0/33\"]}}}",
                 "grants.alice.allowedAddresses[0]: expected an IP");
    expect_error("{\"grants\": {\"alice\": {\"allowedAddresses\": [\"example.com\"]}}}",
                 "grants.alice.allowedAddresses[0]");
    expect_error("{\"grants\": {\"alice\": {\"allowedAddresses\": [\"10.0.0.1/\"]}}}",
                 "grants.alice.allowedAddresses[0]");
    expect_error("{\"grants\": {\"alice\": {\"allowedAddresses\": [\"[::2]\"]}}}",
                 "grants.alice.allowedAddresses[0]");
}

static void test_jobs(void **state)
{
    (void)state;
    struct ald_config c;
    assert_int_equal(ald_config_init(&c), 0);
    assert_int_equal(c.jobs.max_running, 4);
    assert_int_equal(c.jobs.max_running_per_user, 2);
    assert_int_equal(c.jobs.max_queued_per_user, 100);
    assert_int_equal(c.jobs.max_output_bytes, 1024 * 1024);
    assert_int_equal(load(&c, "{\"jobs\": {\"max_running\": 9, \"max_running_per_user\": 3,"
                              " \"max_queued_per_user\": 7,"
                              " \"max_output_bytes\": 4096, \"default_timeout_s\": 60,"
                              " \"max_timeout_s\": 120}}"),
                     0);
    assert_int_equal(c.jobs.max_running, 9);
    assert_int_equal(c.jobs.max_running_per_user, 3);
    assert_int_equal(c.jobs.max_queued_per_user, 7);
    assert_int_equal(c.jobs.max_output_bytes, 4096);
    assert_int_equal(c.jobs.default_timeout_s, 60);
    assert_int_equal(c.jobs.max_timeout_s, 120);
    ald_config_free(&c);
    expect_error("{\"jobs\": {\"max_running\": 0}}", "jobs.max_running");
    expect_error("{\"jobs\": {\"max_running_per_user\": \"2\"}}", "jobs.max_running_per_user");
    expect_error("{\"jobs\": {\"max_queued_per_user\": 0}}", "jobs.max_queued_per_user");
    expect_error("{\"jobs\": {\"max_output_bytes\": 10}}", "jobs.max_output_bytes");
    expect_error("{\"jobs\": {\"default_timeout_s\": 100, \"max_timeout_s\": 50}}",
                 "jobs.default_timeout_s");
    expect_error("{\"jobs\": {\"nope\": 1}}", "jobs.nope");
    expect_error("{\"jobs\": []}", "jobs");
}

/* "store" (issue 13): SQLite by default; postgres needs conninfo_file;
 * every key checked, named in the refusal. */
static void test_store(void **state)
{
    (void)state;
    struct ald_config c;
    assert_int_equal(ald_config_init(&c), 0);
    assert_int_equal(c.store.postgres, 0);
    assert_null(c.store.conninfo_file);
    assert_int_equal(c.store.pool_size, 4);
    assert_int_equal(c.store.statement_timeout_ms, 5000);
    assert_int_equal(c.store.connect_timeout_ms, 3000);
    assert_int_equal(load(&c, "{\"store\": {\"driver\": \"postgres\","
                              " \"conninfo_file\": \"/etc/airlock/pg.conninfo\","
                              " \"pool_size\": 8, \"statement_timeout_ms\": 1000,"
                              " \"connect_timeout_ms\": 2000}}"),
                     0);
    assert_int_equal(c.store.postgres, 1);
    assert_string_equal(c.store.conninfo_file, "/etc/airlock/pg.conninfo");
    assert_int_equal(c.store.pool_size, 8);
    assert_int_equal(c.store.statement_timeout_ms, 1000);
    assert_int_equal(c.store.connect_timeout_ms, 2000);
    ald_config_free(&c);
    assert_int_equal(ald_config_init(&c), 0);
    assert_int_equal(load(&c, "{\"store\": {\"driver\": \"sqlite\"}}"), 0);
    assert_int_equal(c.store.postgres, 0);
    ald_config_free(&c);
    expect_error("{\"store\": {\"driver\": \"postgres\"}}", "store.conninfo_file");
    expect_error("{\"store\": {\"driver\": \"mysql\"}}", "store.driver");
    expect_error("{\"store\": {\"driver\": \"postgres\", \"conninfo_file\": \"pg.conf\"}}",
                 "store.conninfo_file");
    expect_error("{\"store\": {\"pool_size\": 0}}", "store.pool_size");
    expect_error("{\"store\": {\"statement_timeout_ms\": 5}}", "store.statement_timeout_ms");
    expect_error("{\"store\": {\"connect_timeout_ms\": \"3\"}}", "store.connect_timeout_ms");
    expect_error("{\"store\": {\"conninfo\": \"host=x\"}}", "store.conninfo");
    expect_error("{\"store\": []}", "store");
}

/* "cluster" (issue 13): needs postgres, a listener and a key; every key
 * checked and named in the refusal. */
#define PG "\"store\": {\"driver\": \"postgres\", \"conninfo_file\": \"/etc/airlock/pg\"}, "
static void test_cluster(void **state)
{
    (void)state;
    struct ald_config c;
    assert_int_equal(ald_config_init(&c), 0);
    assert_int_equal(c.cluster.enabled, 0);
    assert_int_equal(load(&c, "{" PG "\"cluster\": {\"node_id\": \"n1\","
                              " \"listen\": \"10.0.0.5:7071\", \"key_file\": \"/etc/airlock/ck\","
                              " \"heartbeat_ms\": 500, \"down_after_ms\": 3000,"
                              " \"capacity\": {\"sessions\": 4, \"memory_mb\": 2048, \"cpus\": 2},"
                              " \"forward_timeout_ms\": 2000}}"),
                     0);
    assert_int_equal(c.cluster.enabled, 1);
    assert_string_equal(c.cluster.node_id, "n1");
    assert_string_equal(c.cluster.listen, "10.0.0.5:7071");
    assert_string_equal(c.cluster.advertise, "10.0.0.5:7071");
    assert_string_equal(c.cluster.key_file, "/etc/airlock/ck");
    assert_int_equal(c.cluster.heartbeat_ms, 500);
    assert_int_equal(c.cluster.down_after_ms, 3000);
    assert_int_equal(c.cluster.cap_sessions, 4);
    assert_int_equal(c.cluster.cap_memory_mb, 2048);
    assert_int_equal(c.cluster.cap_cpus, 2);
    assert_int_equal(c.cluster.forward_timeout_ms, 2000);
    ald_config_free(&c);
    /* defaults: the host name as the id, 2 s / 15 s */
    assert_int_equal(ald_config_init(&c), 0);
    int hn = load(&c, "{" PG "\"cluster\": {\"listen\": \"10.0.0.5:7071\","
                      " \"advertise\": \"10.0.0.6:7071\", \"key_file\": \"/k\"}}");
    if (hn == 0) {
        assert_non_null(c.cluster.node_id);
        assert_string_equal(c.cluster.advertise, "10.0.0.6:7071");
        assert_int_equal(c.cluster.heartbeat_ms, 2000);
        assert_int_equal(c.cluster.down_after_ms, 15000);
        assert_int_equal(c.cluster.cap_sessions, 500);
    }
    ald_config_free(&c);
    expect_error("{\"cluster\": {\"node_id\": \"n1\", \"listen\": \"10.0.0.5:7071\","
                 " \"key_file\": \"/k\"}}",
                 "store");
    expect_error("{" PG "\"cluster\": {\"node_id\": \"n1\", \"key_file\": \"/k\"}}",
                 "cluster.listen");
    expect_error("{" PG "\"cluster\": {\"node_id\": \"n1\", \"listen\": \"10.0.0.5:7071\"}}",
                 "cluster.key_file");
    expect_error("{" PG "\"cluster\": {\"node_id\": \"n1\", \"listen\": \"0.0.0.0:7071\","
                 " \"key_file\": \"/k\"}}",
                 "cluster.advertise");
    expect_error("{" PG "\"cluster\": {\"node_id\": \"n1\", \"listen\": \"10.0.0.5:7071\","
                 " \"advertise\": \"[::]:7071\", \"key_file\": \"/k\"}}",
                 "cluster.advertise");
    expect_error("{" PG "\"cluster\": {\"node_id\": \"n1\", \"listen\": \"10.0.0.5:7071\","
                 " \"key_file\": \"/k\", \"heartbeat_ms\": 1000, \"down_after_ms\": 2000}}",
                 "cluster.down_after_ms");
    expect_error("{" PG "\"cluster\": {\"node_id\": \"n/1\"}}", "cluster.node_id");
    expect_error("{" PG "\"cluster\": {\"node_id\": \"-n\"}}", "cluster.node_id");
    expect_error("{" PG "\"cluster\": {\"node_id\": \"n\\r\\n1\"}}", "cluster.node_id");
    expect_error("{" PG "\"cluster\": {\"listen\": \"10.0.0.5\"}}", "cluster.listen");
    expect_error("{" PG "\"cluster\": {\"listen\": \"10.0.0.5:0\"}}", "cluster.listen");
    expect_error("{" PG "\"cluster\": {\"key_file\": \"ck\"}}", "cluster.key_file");
    expect_error("{" PG "\"cluster\": {\"capacity\": {\"sessions\": 0}}}",
                 "cluster.capacity.sessions");
    expect_error("{" PG "\"cluster\": {\"capacity\": {\"disk\": 1}}}", "cluster.capacity.disk");
    expect_error("{" PG "\"cluster\": {\"heartbeat_ms\": 5}}", "cluster.heartbeat_ms");
    expect_error("{" PG "\"cluster\": {\"peers\": []}}", "cluster.peers");
    expect_error("{" PG "\"cluster\": []}", "cluster");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_full),
        cmocka_unit_test(test_errors),     cmocka_unit_test(test_listen_split),
        cmocka_unit_test(test_file),       cmocka_unit_test(test_proxies),
        cmocka_unit_test(test_git),        cmocka_unit_test(test_grants),
        cmocka_unit_test(test_token_keys), cmocka_unit_test(test_jobs),
        cmocka_unit_test(test_store),      cmocka_unit_test(test_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
