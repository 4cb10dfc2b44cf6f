#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airlock/error.h"
#include "airlock/settings.h"

#define HOME "/home/u"
#define CWD  "/w/proj"

static int load(struct al_policy *p, const char *json)
{
    return al_settings_load_buffer(p, "settings.json", json, strlen(json), HOME, CWD);
}

static void assert_list(const struct al_strlist *l, const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    if (l->len != n) {
        for (size_t i = 0; i < l->len; i++)
            print_message("  got[%zu] = %s\n", i, l->items[i]);
        fail_msg("list has %zu items, want %zu", l->len, n);
    }
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l->items[i], want[i]);
}

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})
#define EMPTY     ((const char *const[]){NULL})

static void defaults(void **state)
{
    struct al_policy p;
    al_policy_init(&p);
    assert_int_equal(p.allow_write.len, 0);
    assert_int_equal(p.deny_read.len, 0);
    assert_int_equal(p.allow_git_config, 0);
    assert_int_equal(p.mandatory_deny_depth, 3);
    assert_int_equal(p.http_proxy_port, 0);
    assert_int_equal(p.socks_proxy_port, 0);
    assert_null(p.custom_proxy);
    assert_int_equal(p.allow_local_binding, 0);
    assert_int_equal(p.net.require_sni_match, 1);
    assert_int_equal(p.net.allow_all_domains, 0);
    assert_int_equal(p.unix_sockets, AL_UNIX_SOCKETS_NONE);
    assert_int_equal(p.weaker_nested, 0);
    assert_int_equal(p.allow_unsandboxed, 1);
    assert_int_equal(p.mode, AL_MODE_AUTO_ALLOW);
    al_policy_free(&p);
}

static void shape_claude_code(void **state)
{
    struct al_policy p;
    al_policy_init(&p);
    const char *json =
        "{\n"
        "  \"permissions\": {\"allow\": [\"Bash(ls)\"]},\n"
        "  \"model\": \"whatever\",\n"
        "  \"sandbox\": {\n"
        "    \"enabled\": true,\n"
        "    \"autoAllowBashIfSandboxed\": false,\n"
        "    \"filesystem\": {\n"
        "      \"allowedPaths\": [\".\", \"~/cache\", \"/tmp/x/../y\"],\n"
        "      \"deniedPaths\": [\"~/.*_key\", \"**/.env*\", \"*/.env*\"]\n"
        "    },\n"
        "    \"network\": {\n"
        "      \"allowedDomains\": [\"GitHub.com\", \"*.npmjs.org\", \"example.com:443\"],\n"
        "      \"deniedDomains\": [\"evil.example.com\", \"*\"],\n"
        "      \"allowedAddresses\": [\"10.0.0.1\", \"192.168.0.0/16\", \"::1\", \"fd00::/8\"],\n"
        "      \"httpProxyPort\": 8080,\n"
        "      \"socksProxyPort\": 1081,\n"
        "      \"customProxy\": \"my-proxy --port 9000\",\n"
        "      \"allowLocalBinding\": true,\n"
        "      \"requireSniMatch\": false\n"
        "    },\n"
        "    \"allowUnixSockets\": [\"/run/docker.sock\"],\n"
        "    \"enableWeakerNestedSandbox\": true,\n"
        "    \"excludedCommands\": [\"docker\", \"git\"],\n"
        "    \"allowUnsandboxedCommands\": false,\n"
        "    \"mode\": \"regular\",\n"
        "    \"ignoreViolations\": {\"*\": [\"/usr/bin\"]}\n"
        "  }\n"
        "}\n";
    assert_int_equal(load(&p, json), 0);
    assert_list(&p.allow_write, LIST("/w/proj", "/home/u/cache", "/tmp/y"));
    assert_list(&p.deny_read, LIST("/home/u/.*_key", "/w/proj/**/.env*", "/w/proj/*/.env*"));
    assert_list(&p.net.allowed_domains, LIST("github.com", "*.npmjs.org", "example.com:443"));
    assert_list(&p.net.denied_domains, LIST("evil.example.com", "*"));
    assert_list(&p.net.allowed_addresses, LIST("10.0.0.1", "192.168.0.0/16", "::1", "fd00::/8"));
    assert_int_equal(p.http_proxy_port, 8080);
    assert_int_equal(p.socks_proxy_port, 1081);
    assert_string_equal(p.custom_proxy, "my-proxy --port 9000");
    assert_int_equal(p.allow_local_binding, 1);
    assert_int_equal(p.net.require_sni_match, 0);
    assert_int_equal(p.unix_sockets, AL_UNIX_SOCKETS_LIST);
    assert_list(&p.unix_socket_paths, LIST("/run/docker.sock"));
    assert_int_equal(p.weaker_nested, 1);
    assert_list(&p.excluded_commands, LIST("docker", "git"));
    assert_int_equal(p.allow_unsandboxed, 0);
    assert_int_equal(p.mode, AL_MODE_REGULAR);
    al_policy_free(&p);
}

static void shape_srt(void **state)
{
    struct al_policy p;
    al_policy_init(&p);
    const char *json =
        "{\n"
        "  \"network\": {\n"
        "    \"allowedDomains\": [\"registry.npmjs.org\", \"*.github.com\"],\n"
        "    \"deniedDomains\": [\"*:22\"],\n"
        "    \"deniedDomainReasons\": {\"*:22\": \"no ssh\"},\n"
        "    \"strictAllowlist\": true,\n"
        "    \"allowUnixSockets\": [\"/var/run/a.sock\"],\n"
        "    \"allowAllUnixSockets\": false,\n"
        "    \"allowLocalBinding\": true,\n"
        "    \"allowMachLookup\": [\"com.example.*\"],\n"
        "    \"httpProxyPort\": 3129,\n"
        "    \"socksProxyPort\": 1082,\n"
        "    \"tlsTerminate\": {\"caCertPath\": \"/ca.pem\", \"caKeyPath\": \"/ca.key\",\n"
        "                     \"excludeDomains\": [\"pinned.example.com\"],\n"
        "                     \"extraCaCertPaths\": [\"/etc/ca.pem\"]},\n"
        "    \"requestRules\": [{\"host\": \"API.github.com\", \"methods\": [\"GET\"]}],\n"
        "    \"reportOnly\": true\n"
        "  },\n"
        "  \"filesystem\": {\n"
        "    \"disabled\": false,\n"
        "    \"denyRead\": [\"~/.ssh\"],\n"
        "    \"allowRead\": [\"~/.ssh/known_hosts\"],\n"
        "    \"allowWrite\": [\".\", \"/tmp\"],\n"
        "    \"denyWrite\": [\"./secrets\"],\n"
        "    \"allowGitConfig\": true\n"
        "  },\n"
        "  \"credentials\": {\n"
        "    \"files\": [{\"path\": \"~/.netrc\", \"mode\": \"mask\", \"extract\": \"password "
        "([^ ]+)\",\n"
        "                 \"onExtractNoMatch\": \"error\", \"maskDuplicates\": false,\n"
        "                 \"injectHosts\": [\"api.github.com\"]},\n"
        "               {\"path\": \"/etc/token\", \"mode\": \"deny\"}],\n"
        "    \"envVars\": [{\"name\": \"GITHUB_TOKEN\", \"mode\": \"deny\"},\n"
        "                {\"name\": \"NPM_TOKEN\", \"mode\": \"mask\",\n"
        "                 \"injectHosts\": [\"registry.npmjs.org\"]}],\n"
        "    \"allowPlaintextInject\": true,\n"
        "    \"awsPairs\": [],\n"
        "    \"sigv4\": {}\n"
        "  },\n"
        "  \"ignoreViolations\": {\"npm\": [\"/tmp\"]},\n"
        "  \"enableWeakerNestedSandbox\": true,\n"
        "  \"enableWeakerNetworkIsolation\": false,\n"
        "  \"allowAppleEvents\": false,\n"
        "  \"ripgrep\": {\"command\": \"rg\", \"args\": [\"--hidden\"]},\n"
        "  \"mandatoryDenySearchDepth\": 5,\n"
        "  \"allowPty\": true,\n"
        "  \"seccomp\": {\"applyPath\": \"/usr/lib/apply-seccomp\"},\n"
        "  \"bwrapPath\": \"/usr/bin/bwrap\",\n"
        "  \"socatPath\": \"/usr/bin/socat\",\n"
        "  \"windows\": {\"sandboxUser\": \"srt\", \"proxyPortRange\": [60080, 60089],\n"
        "              \"srtWin\": {\"path\": \"C:/srt-win.exe\"}},\n"
        "  \"git\": {\"safeDirectories\": [\"/w\"]}\n"
        "}\n";
    assert_int_equal(load(&p, json), 0);
    assert_list(&p.net.allowed_domains, LIST("registry.npmjs.org", "*.github.com"));
    assert_list(&p.net.denied_domains, LIST("*:22"));
    assert_int_equal(p.unix_sockets, AL_UNIX_SOCKETS_LIST);
    assert_list(&p.unix_socket_paths, LIST("/var/run/a.sock"));
    assert_int_equal(p.allow_local_binding, 1);
    assert_int_equal(p.http_proxy_port, 3129);
    assert_int_equal(p.socks_proxy_port, 1082);
    assert_list(&p.deny_read, LIST("/home/u/.ssh", "/etc/token"));
    assert_list(&p.allow_read, LIST("/home/u/.ssh/known_hosts"));
    assert_list(&p.allow_write, LIST("/w/proj", "/tmp"));
    assert_list(&p.deny_write, LIST("/w/proj/secrets"));
    assert_int_equal(p.allow_git_config, 1);
    assert_list(&p.deny_env, LIST("GITHUB_TOKEN"));
    assert_int_equal(p.n_mask_env, 1);
    assert_string_equal(p.mask_env[0].name, "NPM_TOKEN");
    assert_list(&p.mask_env[0].inject_hosts, LIST("registry.npmjs.org"));
    assert_null(p.mask_env[0].extract);
    assert_int_equal(p.n_mask_files, 1);
    assert_string_equal(p.mask_files[0].name, "/home/u/.netrc");
    assert_string_equal(p.mask_files[0].extract, "password ([^ ]+)");
    assert_list(&p.mask_files[0].inject_hosts, LIST("api.github.com"));
    assert_int_equal(p.net.allow_plaintext_inject, 1);
    assert_int_equal(p.net.tls_terminate, 1);
    assert_list(&p.net.tls_exclude, LIST("pinned.example.com"));
    assert_string_equal(p.tls.ca_cert_path, "/ca.pem");
    assert_string_equal(p.tls.ca_key_path, "/ca.key");
    assert_list(&p.tls.extra_ca_paths, LIST("/etc/ca.pem"));
    assert_int_equal(p.net.n_request_rules, 1);
    assert_string_equal(p.net.request_rules[0].host, "api.github.com");
    assert_list(&p.net.request_rules[0].methods, LIST("GET"));
    assert_int_equal(p.net.report_only, 1);
    assert_int_equal(p.weaker_nested, 1);
    assert_int_equal(p.mandatory_deny_depth, 5);
    /* what has no effect on Linux is said by name */
    assert_list(&p.warnings,
                LIST("settings.json: network.deniedDomainReasons: not shown: airlock's refusal "
                     "names the deniedDomains entry that matched, not this text",
                     "settings.json: network.allowMachLookup: ignored: macOS only (no effect on "
                     "Linux, where airlock runs)",
                     "settings.json: ignoreViolations: ignored: airlock does not report "
                     "filesystem violations per command, so there is nothing to silence",
                     "settings.json: ripgrep: does not apply: it configures sandbox-runtime's own "
                     "sandbox helpers; airlock builds its sandbox itself",
                     "settings.json: allowPty: ignored: macOS only (no effect on Linux, where "
                     "airlock runs)",
                     "settings.json: seccomp: does not apply: it configures sandbox-runtime's own "
                     "sandbox helpers; airlock builds its sandbox itself",
                     "settings.json: bwrapPath: does not apply: it configures sandbox-runtime's "
                     "own sandbox helpers; airlock builds its sandbox itself",
                     "settings.json: socatPath: does not apply: it configures sandbox-runtime's "
                     "own sandbox helpers; airlock builds its sandbox itself",
                     "settings.json: windows: ignored: Windows only (no effect on Linux, where "
                     "airlock runs)",
                     "settings.json: git: safeDirectories ignored: airlock does not set git's "
                     "safe.directory; set it with git config inside the sandbox if git asks for "
                     "it"));
    assert_int_equal(al_policy_check_credentials(&p), 0);
    al_policy_free(&p);
}

/* A settings.json without a sandbox block (or an empty file) changes
 * nothing; other tools' keys are never checked. */
static void shape_without_sandbox(void **state)
{
    struct al_policy p;
    al_policy_init(&p);
    assert_int_equal(load(&p, "{\"permissions\": {\"deny\": [\"Read(./.env)\"]}, \"x\": 1}"), 0);
    assert_int_equal(load(&p, "{}"), 0);
    assert_int_equal(load(&p, "{\"sandbox\": {}, \"filesystem\": 7}"), 0);
    assert_int_equal(p.allow_write.len, 0);
    /* the Read() deny rule is the sandbox's too; the other keys are named */
    assert_list(&p.deny_read, LIST(CWD "/.env"));
    assert_list(&p.warnings,
                LIST("settings.json: x: unknown key, ignored (not a Claude Code or airlock "
                     "setting)",
                     "settings.json: filesystem: ignored: a sandbox-runtime key; in a "
                     "settings.json it goes inside \"sandbox\" (\"sandbox\": {\"filesystem\": "
                     "...})"));
    al_policy_free(&p);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* settings.json, settings.dev.json, settings.local.json applied in order:
 * later scalars win, lists merge without duplicates, shapes mix. */
static void layering(void **state)
{
    char dir[] = "/tmp/airlock-settings-XXXXXX";
    char a[64], b[64], c[64];
    assert_non_null(mkdtemp(dir));
    snprintf(a, sizeof(a), "%s/settings.json", dir);
    snprintf(b, sizeof(b), "%s/settings.dev.json", dir);
    snprintf(c, sizeof(c), "%s/settings.local.json", dir);
    write_file(a,
               "{\"sandbox\": {\"filesystem\": {\"allowedPaths\": [\".\", \"/tmp\"]},"
               " \"network\": {\"allowedDomains\": [\"a.example.com\"], \"httpProxyPort\": 1000},"
               " \"mode\": \"regular\", \"allowUnsandboxedCommands\": false,"
               " \"excludedCommands\": [\"docker\"]}}");
    write_file(b, "{\"network\": {\"allowedDomains\": [\"b.example.com\", \"a.example.com\"],"
                  " \"deniedDomains\": [], \"httpProxyPort\": 2000},"
                  " \"filesystem\": {\"allowWrite\": [\"/tmp\", \"/var/tmp\"], \"denyRead\": [],"
                  " \"denyWrite\": []}}");
    write_file(
        c, "{\"sandbox\": {\"mode\": \"auto-allow\", \"excludedCommands\": [\"docker\", \"make\"],"
           " \"network\": {\"httpProxyPort\": null}}}");

    struct al_policy p;
    al_policy_init(&p);
    assert_int_equal(al_settings_load_file(&p, a, HOME, CWD), 0);
    assert_int_equal(p.http_proxy_port, 1000);
    assert_int_equal(al_settings_load_file(&p, b, HOME, CWD), 0);
    assert_int_equal(p.http_proxy_port, 2000);
    assert_int_equal(al_settings_load_file(&p, c, HOME, CWD), 0);
    assert_list(&p.allow_write, LIST("/w/proj", "/tmp", "/var/tmp"));
    assert_list(&p.net.allowed_domains, LIST("a.example.com", "b.example.com"));
    assert_list(&p.excluded_commands, LIST("docker", "make"));
    assert_int_equal(p.http_proxy_port, 0);
    assert_int_equal(p.mode, AL_MODE_AUTO_ALLOW);
    assert_int_equal(p.allow_unsandboxed, 0); /* set once, never overridden */
    al_policy_free(&p);

    unlink(a);
    unlink(b);
    unlink(c);
    rmdir(dir);
}

static void load_file_errors(void **state)
{
    struct al_policy p;
    char dir[] = "/tmp/airlock-settings-XXXXXX", big[64];
    assert_non_null(mkdtemp(dir));
    al_policy_init(&p);

    assert_int_equal(al_settings_load_file(&p, "/nonexistent/settings.json", HOME, CWD),
                     AL_ENOTFOUND);
    assert_non_null(strstr(al_error_last(), "/nonexistent/settings.json"));

    snprintf(big, sizeof(big), "%s/big.json", dir);
    FILE *f = fopen(big, "w");
    assert_non_null(f);
    fputs("{\"sandbox\": {\"excludedCommands\": [\"", f);
    for (int i = 0; i < 1100 * 1024; i++)
        fputc('a', f);
    fputs("\"]}}", f);
    fclose(f);
    assert_int_equal(al_settings_load_file(&p, big, HOME, CWD), AL_ETOOBIG);
    assert_non_null(strstr(al_error_last(), "big.json: larger than 1 MiB"));

    static const char small[] = "{}";
    assert_int_equal(al_settings_load_buffer(&p, "x.json", small, 2 * 1024 * 1024, HOME, CWD),
                     AL_ETOOBIG);

    assert_int_equal(al_settings_load_file(&p, dir, HOME, CWD), AL_EIO);

    al_policy_free(&p);
    unlink(big);
    rmdir(dir);
}

struct bad_case {
    const char *json;
    const char *message; /* al_error_last() must equal this */
};

/* Every validation error, with its exact message: file, key path, reason. */
static void validation_errors(void **state)
{
    static const struct bad_case cases[] = {
        {"{\"sandbox\": {\"filesysem\": {}}}",
         "settings.json: sandbox.filesysem: unknown key (did you mean \"filesystem\"?)"},
        {"{\"sandbox\": {\"zzz\": 1}}", "settings.json: sandbox.zzz: unknown key"},
        {"{\"sandbox\": {\"network\": {\"allowedDomain\": []}}}",
         "settings.json: sandbox.network.allowedDomain: unknown key (did you mean "
         "\"allowedDomains\"?)"},
        {"{\"filesystem\": {\"allowWrite\": []}, \"netwrk\": {}}",
         "settings.json: netwrk: unknown key (did you mean \"network\"?)"},
        {"{\"filesystem\": {\"alowWrite\": []}}",
         "settings.json: filesystem.alowWrite: unknown key (did you mean \"allowWrite\"?)"},
        {"{\"sandbox\": 3}", "settings.json: sandbox: expected an object"},
        {"{\"sandbox\": {\"filesystem\": {\"allowedPaths\": \"/tmp\"}}}",
         "settings.json: sandbox.filesystem.allowedPaths: expected a list of strings"},
        {"{\"sandbox\": {\"filesystem\": {\"deniedPaths\": [\"/a\", 3]}}}",
         "settings.json: sandbox.filesystem.deniedPaths[1]: expected a string (in a list of "
         "strings)"},
        {"{\"sandbox\": {\"enabled\": \"yes\"}}",
         "settings.json: sandbox.enabled: expected true or false"},
        {"{\"sandbox\": {\"autoAllowBashIfSandboxed\": 1}}",
         "settings.json: sandbox.autoAllowBashIfSandboxed: expected true or false"},
        {"{\"sandbox\": {\"mode\": \"yolo\"}}",
         "settings.json: sandbox.mode: expected \"auto-allow\" or \"regular\""},
        {"{\"sandbox\": {\"allowUnixSockets\": \"yes\"}}",
         "settings.json: sandbox.allowUnixSockets: expected false, true or a list of socket "
         "paths"},
        {"{\"sandbox\": {\"allowAllUnixSockets\": null}}",
         "settings.json: sandbox.allowAllUnixSockets: expected true or false"},
        {"{\"sandbox\": {\"network\": {\"httpProxyPort\": 0}}}",
         "settings.json: sandbox.network.httpProxyPort: expected an integer from 1 to 65535"},
        {"{\"sandbox\": {\"network\": {\"socksProxyPort\": 65536}}}",
         "settings.json: sandbox.network.socksProxyPort: expected an integer from 1 to 65535"},
        {"{\"sandbox\": {\"network\": {\"httpProxyPort\": \"8080\"}}}",
         "settings.json: sandbox.network.httpProxyPort: expected an integer from 1 to 65535"},
        {"{\"sandbox\": {\"network\": {\"httpProxyPort\": 80.5}}}",
         "settings.json: sandbox.network.httpProxyPort: expected an integer from 1 to 65535"},
        {"{\"sandbox\": {\"network\": {\"customProxy\": \"\"}}}",
         "settings.json: sandbox.network.customProxy: expected a non-empty string"},
        {"{\"sandbox\": {\"network\": {\"customProxy\": []}}}",
         "settings.json: sandbox.network.customProxy: expected a string"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"ok.example.com\", \"*.com\"]}}}",
         "settings.json: sandbox.network.allowedDomains[1]: \"*.com\" is too broad: a wildcard "
         "must stand for subdomains of a registered domain, e.g. \"*.example.com\""},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"*.co.uk\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: \"*.co.uk\" is too broad: a "
         "wildcard must stand for subdomains of a registered domain, e.g. \"*.example.com\""},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"*\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: \"*\" is too broad: it matches every "
         "domain"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: empty domain"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"a.*.example.com\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: \"a.*.example.com\": a wildcard is "
         "only allowed as a leading \"*.\""},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"*example.com\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: \"*example.com\": a wildcard is only "
         "allowed as a leading \"*.\""},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"http://example.com\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: \"http://example.com\" is a URL, not "
         "a domain: write the host name alone, \"example.com\""},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"https://example.com/\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: \"https://example.com/\" is a URL, not "
         "a domain: write the host name alone, \"example.com\""},
        {"{\"network\": {\"allowedDomains\": [\"http://mirror.example.com:8080/pypi\"]}}",
         "settings.json: network.allowedDomains[0]: \"http://mirror.example.com:8080/pypi\" is a "
         "URL, not a domain: write the host name alone, \"mirror.example.com:8080\" (a path "
         "cannot be allowed on its own: the whole host is)"},
        {"{\"sandbx\": {}, \"permissions\": {}}",
         "settings.json: sandbx: unknown key (did you mean \"sandbox\"?): refused, as without a "
         "\"sandbox\" block the sandbox would run with the default policy"},
        {"{\"sandbx\": {\"filesystem\": {}}}",
         "settings.json: sandbx: unknown key (did you mean \"sandbox\"?)"},
        {"{\"permissions\": 3}", "settings.json: permissions: expected an object"},
        {"{\"permissions\": {\"deny\": \"Read(x)\"}}",
         "settings.json: permissions.deny: expected a list of strings"},
        {"{\"permissions\": {\"allow\": [3]}}",
         "settings.json: permissions.allow[0]: expected a string (in a list of strings)"},
        {"{\"permissions\": {\"deny\": [\"Read(~bob/x)\"]}}",
         "settings.json: permissions.deny[0]: \"~bob/x\": only \"~\" and \"~/...\" are "
         "expanded, not \"~user\""},
        {"{\"sandbox\": {\"network\": {\"allowManagedDomainsOnly\": 1}}}",
         "settings.json: sandbox.network.allowManagedDomainsOnly: expected true or false"},
        {"{\"sandbox\": {\"network\": {\"strictAllowlist\": \"yes\"}}}",
         "settings.json: sandbox.network.strictAllowlist: expected true or false"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"example.com/x\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: \"example.com/x\": character '/' is "
         "not allowed in a domain"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"exa mple.com\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: \"exa mple.com\": byte 0x20 is not "
         "allowed in a domain"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"example.com:0\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: \"example.com:0\": bad port: "
         "expected a number from 1 to 65535"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"example.com:70000\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: \"example.com:70000\": bad port: "
         "expected a number from 1 to 65535"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"example..com\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: \"example..com\": empty label "
         "(leading, trailing or double dot)"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"example.com.\"]}}}",
         "settings.json: sandbox.network.allowedDomains[0]: \"example.com.\": empty label "
         "(leading, trailing or double dot)"},
        {"{\"sandbox\": {\"network\": {\"deniedDomains\": [\"*.org\"]}}}",
         "settings.json: sandbox.network.deniedDomains[0]: \"*.org\" is too broad: a wildcard "
         "must stand for subdomains of a registered domain, e.g. \"*.example.com\""},
        {"{\"sandbox\": {\"network\": {\"allowedAddresses\": [\"10.0.0.300\"]}}}",
         "settings.json: sandbox.network.allowedAddresses[0]: \"10.0.0.300\": expected an IP "
         "address or CIDR block"},
        {"{\"sandbox\": {\"network\": {\"allowedAddresses\": [\"0.0.0.0/0\"]}}}",
         "settings.json: sandbox.network.allowedAddresses[0]: \"0.0.0.0/0\" is too broad: it "
         "matches every address"},
        {"{\"sandbox\": {\"network\": {\"allowedAddresses\": [\"10.0.0.0/33\"]}}}",
         "settings.json: sandbox.network.allowedAddresses[0]: \"10.0.0.0/33\": bad prefix "
         "length: expected 1 to 32"},
        {"{\"sandbox\": {\"filesystem\": {\"allowedPaths\": [\"~bob/x\"]}}}",
         "settings.json: sandbox.filesystem.allowedPaths[0]: \"~bob/x\": only \"~\" and "
         "\"~/...\" are expanded, not \"~user\""},
        {"{\"sandbox\": {\"filesystem\": {\"allowedPaths\": [\"\"]}}}",
         "settings.json: sandbox.filesystem.allowedPaths[0]: empty path"},
        {"{\"sandbox\": {\"excludedCommands\": [\"/usr/bin/docker\"]}}",
         "settings.json: sandbox.excludedCommands[0]: \"/usr/bin/docker\": expected a command "
         "name, not a path"},
        {"{\"sandbox\": {\"excludedCommands\": [\"\"]}}",
         "settings.json: sandbox.excludedCommands[0]: expected a non-empty string"},
        {"{\"sandbox\": {\"ignoreViolations\": {\"*\": \"/tmp\"}}}",
         "settings.json: sandbox.ignoreViolations.*: expected a list of strings"},
        {"{\"filesystem\": {\"disabled\": true}}",
         "settings.json: filesystem.disabled: true is not supported: airlock always enforces a "
         "filesystem policy"},
        {"{\"filesystem\": {\"allowGitConfig\": \"yes\"}}",
         "settings.json: filesystem.allowGitConfig: expected true or false"},
        {"{\"network\": {\"allowUnixSockets\": true}}",
         "settings.json: network.allowUnixSockets: expected a list of strings"},
        {"{\"network\": {\"parentProxy\": {\"http\": 1}}}",
         "settings.json: network.parentProxy: not supported: airlock's proxy connects to "
         "upstreams directly and cannot chain through another proxy; remove it"},
        {"{\"network\": {\"mitmProxy\": {\"domains\": [\"a.example.com\"]}}}",
         "settings.json: network.mitmProxy: not supported: airlock does not hand domains to "
         "another proxy (its own proxy and policy handle every domain; network.tlsTerminate "
         "inspects HTTPS itself); remove it"},
        {"{\"network\": {\"deniedResolvedAddresses\": [\"10.0.0.0/8\"]}}",
         "settings.json: network.deniedResolvedAddresses: not supported: airlock's address guard "
         "refuses loopback, private, link-local and metadata addresses itself and takes no list "
         "of further ones; remove it, or deny the host names in deniedDomains"},
        {"{\"network\": {\"deniedDomainReasons\": {\"x.com\": \"\"}}}",
         "settings.json: network.deniedDomainReasons.x.com: expected a non-empty string"},
        {"{\"credentials\": {\"files\": [{\"mode\": \"deny\"}]}}",
         "settings.json: credentials.files[0].path: missing"},
        {"{\"credentials\": {\"files\": [{\"path\": \"/x\", \"mode\": \"hide\"}]}}",
         "settings.json: credentials.files[0].mode: expected one of \"deny\", \"mask\""},
        {"{\"credentials\": {\"envVars\": [{\"name\": \"A-B\", \"mode\": \"deny\"}]}}",
         "settings.json: credentials.envVars[0].name: \"A-B\": expected a variable name "
         "([A-Za-z_][A-Za-z0-9_]*)"},
        {"{\"credentials\": {\"injectHosts\": []}}",
         "settings.json: credentials.injectHosts: unknown key"},
        {"{\"mandatoryDenySearchDepth\": 11}",
         "settings.json: mandatoryDenySearchDepth: expected an integer from 1 to 10"},
        {"{\"bwrapPath\": \"bwrap\"}", "settings.json: bwrapPath: expected an absolute path"},
        {"{\"windows\": {\"proxyPortRange\": [10, 5]}}",
         "settings.json: windows.proxyPortRange: expected [low, high] with 1 <= low <= high <= "
         "65535"},
        {"{\"allowPty\": 1}", "settings.json: allowPty: expected true or false"},
        {"{\"ripgrep\": {}}", "settings.json: ripgrep.command: missing"},
        {"[1, 2]", "settings.json: expected a JSON object at the top level"},
        {"{\"sandbox\": {\"mode\": \"regular\",\n \"mode\": \"auto-allow\"}}",
         "settings.json:2:7: invalid JSON: duplicate object key near '\"mode\"'"},
        {"{\n  \"sandbox\": {,}\n}", "settings.json:2:15: invalid JSON: string or '}' expected "
                                     "near ','"},
        {"", "settings.json:1:0: invalid JSON: '[' or '{' expected near end of file"},
        {"{\"sandbox\": {\"a\\u0001b\": 1}}", "settings.json: sandbox.\"a\\x01b\": unknown key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct al_policy p;
        al_policy_init(&p);
        int err = load(&p, cases[i].json);
        if (err != AL_EINVAL || strcmp(al_error_last(), cases[i].message) != 0)
            fail_msg("case %zu: %s\n  got  %d %s\n  want %s", i, cases[i].json, err,
                     al_error_last(), cases[i].message);
        al_policy_free(&p);
    }
}

/* Relative paths need a working directory and "~" needs a home. */
static void missing_home_or_cwd(void **state)
{
    struct al_policy p;
    static const char rel[] = "{\"filesystem\": {\"allowWrite\": [\"build\"]}}";
    static const char tilde[] = "{\"filesystem\": {\"allowWrite\": [\"~/x\"]}}";
    al_policy_init(&p);
    assert_int_equal(al_settings_load_buffer(&p, "srt.json", rel, strlen(rel), HOME, NULL),
                     AL_EINVAL);
    assert_string_equal(al_error_last(), "srt.json: filesystem.allowWrite[0]: \"build\": not "
                                         "absolute after expansion (no absolute working "
                                         "directory)");
    assert_int_equal(al_settings_load_buffer(&p, "srt.json", tilde, strlen(tilde), "rel", CWD),
                     AL_EINVAL);
    assert_string_equal(al_error_last(), "srt.json: filesystem.allowWrite[0]: \"~/x\": not "
                                         "absolute after expansion (no absolute home "
                                         "directory)");
    al_policy_free(&p);
}

static void expand_paths(void **state)
{
    static const char *const cases[][2] = {
        {"~", "/home/u"},
        {"~/", "/home/u"},
        {"~/.ssh", "/home/u/.ssh"},
        {"~/a/../b", "/home/u/b"},
        {".", "/w/proj"},
        {"./src", "/w/proj/src"},
        {"..", "/w"},
        {"../../../..", "/"},
        {"x//y/./z/", "/w/proj/x/y/z"},
        {"/", "/"},
        {"//etc///passwd", "/etc/passwd"},
        {"/a/b/../../..", "/"},
        {"/a/./b/.", "/a/b"},
        {"/a/..b/c", "/a/..b/c"},
        {"**/.env*", "/w/proj/**/.env*"},
        {"~/.*_key", "/home/u/.*_key"},
        {"/a/*/../b", "/a/b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = al_settings_expand_path(cases[i][0], HOME, CWD);
        if (!got || strcmp(got, cases[i][1]) != 0)
            fail_msg("expand(\"%s\") = \"%s\", want \"%s\"", cases[i][0], got ? got : "(null)",
                     cases[i][1]);
        free(got);
    }
    assert_null(al_settings_expand_path("~root", HOME, CWD));
    assert_null(al_settings_expand_path("", HOME, CWD));
    assert_null(al_settings_expand_path("x", HOME, NULL));
    assert_null(al_settings_expand_path("x", HOME, "relative"));
    assert_null(al_settings_expand_path("~", NULL, CWD));

    char *longp = malloc(5000);
    assert_non_null(longp);
    longp[0] = '/';
    memset(longp + 1, 'a', 4998);
    longp[4999] = '\0';
    assert_null(al_settings_expand_path(longp, HOME, CWD));
    assert_non_null(strstr(al_error_last(), "longer than 4096 bytes"));
    free(longp);
}

static void domains(void **state)
{
    static const char *const good[] = {
        "example.com",
        "*.example.com",
        "localhost",
        "a-b.example.co.uk",
        "host:443",
        "*.example.com:8443",
        "b\xc3\xbc"
        "cher.de",
        "*.b\xc3\xbc"
        "cher.de",
        "EXAMPLE.COM",
        "xn--bcher-kva.de",
        "*.github.io",
        "1.2.3.4",
    };
    static const char *const bad[] = {
        "",
        "*",
        "*.com",
        "*.co.uk",
        "*.",
        "*.*.example.com",
        "a*.example.com",
        "ex ample.com",
        "example.com:",
        "example.com:abc",
        "example.com:1:2",
        ":443",
        ".example.com",
        "example.com.",
        "exa_mple.com",
        "[::1]",
        "example.com:123456",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (al_settings_check_domain(good[i]) != 0)
            fail_msg("\"%s\" refused: %s", good[i], al_error_last());
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (al_settings_check_domain(bad[i]) != AL_EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
    assert_int_equal(al_settings_check_denied_domain("*"), 0);
    assert_int_equal(al_settings_check_denied_domain("*:22"), 0);
    assert_int_equal(al_settings_check_denied_domain("*.com"), AL_EINVAL);

    char long_label[80];
    memset(long_label, 'a', 64);
    memcpy(long_label + 64, ".com", 5);
    assert_int_equal(al_settings_check_domain(long_label), AL_EINVAL);
    assert_non_null(strstr(al_error_last(), "longer than 63"));
}

static void addresses(void **state)
{
    assert_int_equal(al_settings_check_address("127.0.0.1"), 0);
    assert_int_equal(al_settings_check_address("10.0.0.0/8"), 0);
    assert_int_equal(al_settings_check_address("::1"), 0);
    assert_int_equal(al_settings_check_address("2001:db8::/32"), 0);
    assert_int_equal(al_settings_check_address("2001:db8::/129"), AL_EINVAL);
    assert_int_equal(al_settings_check_address("::/0"), AL_EINVAL);
    assert_int_equal(al_settings_check_address("10.0.0.1/"), AL_EINVAL);
    assert_int_equal(al_settings_check_address("10.0.0.1/x"), AL_EINVAL);
    assert_int_equal(al_settings_check_address("example.com"), AL_EINVAL);
    assert_int_equal(al_settings_check_address(""), AL_EINVAL);
    assert_int_equal(al_settings_check_address("/8"), AL_EINVAL);
}

/* allowUnixSockets false/true/list and allowAllUnixSockets combine as
 * documented: a list turns NONE into LIST, true is ALL, false undoes. */
static void unix_sockets(void **state)
{
    struct al_policy p;
    al_policy_init(&p);
    assert_int_equal(load(&p, "{\"sandbox\": {\"allowUnixSockets\": true}}"), 0);
    assert_int_equal(p.unix_sockets, AL_UNIX_SOCKETS_ALL);
    assert_int_equal(load(&p, "{\"sandbox\": {\"allowUnixSockets\": [\"/run/a.sock\"]}}"), 0);
    assert_int_equal(p.unix_sockets, AL_UNIX_SOCKETS_ALL);
    assert_int_equal(load(&p, "{\"sandbox\": {\"allowAllUnixSockets\": false}}"), 0);
    assert_int_equal(p.unix_sockets, AL_UNIX_SOCKETS_LIST);
    assert_list(&p.unix_socket_paths, LIST("/run/a.sock"));
    assert_int_equal(load(&p, "{\"sandbox\": {\"allowUnixSockets\": false}}"), 0);
    assert_int_equal(p.unix_sockets, AL_UNIX_SOCKETS_NONE);
    assert_int_equal(load(&p, "{\"sandbox\": {\"network\": {\"allowAllUnixSockets\": true}}}"), 0);
    assert_int_equal(p.unix_sockets, AL_UNIX_SOCKETS_ALL);
    al_policy_free(&p);

    al_policy_init(&p);
    assert_int_equal(load(&p, "{\"sandbox\": {\"allowUnixSockets\": false,"
                              " \"allowAllUnixSockets\": false}}"),
                     0);
    assert_int_equal(p.unix_sockets, AL_UNIX_SOCKETS_NONE);
    al_policy_free(&p);
}

/* --print-policy output names every field and loads back to the same
 * policy. */
static void to_json_round_trip(void **state)
{
    struct al_policy p, q;
    al_policy_init(&p);
    char *empty = al_policy_to_json(&p);
    assert_non_null(empty);
    static const char *const keys[] = {
        "\"allowedPaths\": []",
        "\"deniedPaths\": []",
        "\"allowRead\": []",
        "\"denyWrite\": []",
        "\"allowGitConfig\": false",
        "\"mandatoryDenySearchDepth\": 3",
        "\"allowedDomains\": []",
        "\"deniedDomains\": []",
        "\"allowAllDomains\": false",
        "\"allowedAddresses\": []",
        "\"httpProxyPort\": null",
        "\"socksProxyPort\": null",
        "\"customProxy\": null",
        "\"allowLocalBinding\": false",
        "\"requireSniMatch\": true",
        "\"allowUnixSockets\": false",
        "\"enableWeakerNestedSandbox\": false",
        "\"excludedCommands\": []",
        "\"allowUnsandboxedCommands\": true",
        "\"mode\": \"auto-allow\"",
        "\"deniedEnv\": []",
        "\"requestRules\": []",
        "\"reportOnly\": false",
        "\"envVars\": []",
        "\"files\": []",
        "\"allowPlaintextInject\": false",
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!strstr(empty, keys[i]))
            fail_msg("%s missing from\n%s", keys[i], empty);
    assert_null(strstr(empty, "tlsTerminate")); /* present only when on */
    free(empty);

    const char *json =
        "{\"sandbox\": {\"filesystem\": {\"allowedPaths\": [\".\"],"
        " \"deniedPaths\": [\"~/.ssh\"], \"allowRead\": [\"/r\"],"
        " \"denyWrite\": [\"/dw\"], \"allowGitConfig\": true,"
        " \"mandatoryDenySearchDepth\": 4},"
        " \"network\": {\"allowedDomains\": [\"*.example.com\"],"
        " \"deniedDomains\": [\"x.example.com\"], \"allowAllDomains\": true,"
        " \"allowedAddresses\": [\"10.0.0.0/8\"], \"httpProxyPort\": 3128,"
        " \"socksProxyPort\": 1080, \"customProxy\": \"p\","
        " \"allowLocalBinding\": true, \"requireSniMatch\": false,"
        " \"tlsTerminate\": {\"caCertPath\": \"~/ca.pem\", \"caKeyPath\": \"ca.key\","
        " \"excludeDomains\": [\"pinned.example.com\"], \"extraCaCertPaths\": [\"/etc/x.pem\"],"
        " \"maxTunnels\": 64, \"handshakeTimeoutMs\": 5000},"
        " \"requestRules\": [{\"host\": \"api.example.com\", \"methods\": [\"GET\"],"
        " \"paths\": [\"/a/**\"], \"queryKeys\": []}, {\"host\": \"b.example.com\","
        " \"queryKeys\": [\"page\"]}], \"reportOnly\": true},"
        " \"credentials\": {\"envVars\": [{\"name\": \"GH\", \"mode\": \"mask\","
        " \"injectHosts\": [\"api.example.com\"]}], \"files\": [{\"path\": \"~/.npmrc\","
        " \"mode\": \"mask\", \"extract\": \"_authToken=(.*)\", \"injectHosts\":"
        " [\"*.example.com\"]}], \"allowPlaintextInject\": true},"
        " \"allowUnixSockets\": [\"/run/x.sock\"], \"enableWeakerNestedSandbox\": true,"
        " \"excludedCommands\": [\"docker\"], \"allowUnsandboxedCommands\": false,"
        " \"mode\": \"regular\", \"deniedEnv\": [\"TOKEN\"]}}";
    assert_int_equal(load(&p, json), 0);
    char *first = al_policy_to_json(&p);
    assert_non_null(first);
    al_policy_init(&q);
    assert_int_equal(al_settings_load_buffer(&q, "policy.json", first, strlen(first), "/x", "/y"),
                     0);
    char *second = al_policy_to_json(&q);
    assert_non_null(second);
    assert_string_equal(first, second);
    assert_non_null(strstr(first, "\"allowedPaths\": [\n        \"/w/proj\"\n      ]"));
    /* the issue-15 fields come back the same (not only the same text) */
    assert_int_equal(q.net.tls_terminate, 1);
    assert_string_equal(q.tls.ca_cert_path, HOME "/ca.pem");
    assert_string_equal(q.tls.ca_key_path, CWD "/ca.key");
    assert_list(&q.tls.extra_ca_paths, LIST("/etc/x.pem"));
    assert_int_equal(q.tls.max_tunnels, 64);
    assert_int_equal(q.tls.handshake_timeout_ms, 5000);
    assert_list(&q.warnings,
                LIST("policy.json: sandbox.network.tlsTerminate.maxTunnels: not applied: "
                     "airlock's proxy uses its own limits for terminated tunnels; remove it to "
                     "silence this",
                     "policy.json: sandbox.network.tlsTerminate.handshakeTimeoutMs: not applied: "
                     "airlock's proxy uses its own limits for terminated tunnels; remove it to "
                     "silence this"));
    assert_list(&q.net.tls_exclude, LIST("pinned.example.com"));
    assert_int_equal(q.net.n_request_rules, 2);
    assert_int_equal(q.net.request_rules[0].has_query_keys, 1);
    assert_int_equal(q.net.request_rules[0].query_keys.len, 0);
    assert_list(&q.net.request_rules[1].query_keys, LIST("page"));
    assert_int_equal(q.net.request_rules[1].methods.len, 0);
    assert_int_equal(q.net.report_only, 1);
    assert_int_equal(q.net.allow_plaintext_inject, 1);
    assert_int_equal(q.n_mask_env, 1);
    assert_string_equal(q.mask_env[0].name, "GH");
    assert_int_equal(q.n_mask_files, 1);
    assert_string_equal(q.mask_files[0].name, HOME "/.npmrc");
    assert_string_equal(q.mask_files[0].extract, "_authToken=(.*)");
    assert_list(&q.mask_files[0].inject_hosts, LIST("*.example.com"));
    free(first);
    free(second);
    al_policy_free(&p);
    al_policy_free(&q);
}

/* A working directory that is not UTF-8 still prints. */
static void to_json_non_utf8(void **state)
{
    struct al_policy p;
    al_policy_init(&p);
    static const char json[] = "{\"filesystem\": {\"allowWrite\": [\".\"]}}";
    assert_int_equal(al_settings_load_buffer(&p, "s.json", json, strlen(json), HOME, "/w/caf\xe9"),
                     0);
    char *out = al_policy_to_json(&p);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"/w/caf?\""));
    free(out);
    al_policy_free(&p);
}

/* The key path and file that refusal messages name: those of the last file
 * with a network block, in that file's shape. */
static void network_source(void **state)
{
    struct al_policy p;
    al_policy_init(&p);
    assert_string_equal(p.net_key_path, "sandbox.network");
    assert_null(p.net_file);
    const char *srt = "{\"network\": {\"allowedDomains\": [\"a.example.com\"]}}";
    assert_int_equal(al_settings_load_buffer(&p, "./srt.json", srt, strlen(srt), "/h", "/w"), 0);
    assert_string_equal(p.net_key_path, "network");
    assert_string_equal(p.net_file, "./srt.json");
    /* a later file without a network block changes nothing */
    const char *fs = "{\"sandbox\": {\"excludedCommands\": [\"docker\"]}}";
    assert_int_equal(al_settings_load_buffer(&p, "other.json", fs, strlen(fs), "/h", "/w"), 0);
    assert_string_equal(p.net_key_path, "network");
    assert_string_equal(p.net_file, "./srt.json");
    const char *cc = "{\"sandbox\": {\"network\": {\"allowedDomains\": [\"b.example.com\"]}}}";
    assert_int_equal(al_settings_load_buffer(&p, "cc.json", cc, strlen(cc), "/h", "/w"), 0);
    assert_string_equal(p.net_key_path, "sandbox.network");
    assert_string_equal(p.net_file, "cc.json");
    al_policy_free(&p);
    assert_null(p.net_file);
}

/* Top-level keys of a settings.json: Claude Code's own are quiet, others
 * are warned about by name with the closest known key. */
static void top_level_keys(void **state)
{
    struct al_policy p;
    (void)state;
    al_policy_init(&p);
    assert_int_equal(load(&p, "{\"theme\": \"dark\", \"env\": {}, \"hooks\": {}, "
                              "\"model\": \"x\", \"permissions\": {}, \"sandbox\": {}}"),
                     0);
    assert_int_equal(p.warnings.len, 0);
    assert_int_equal(load(&p, "{\"modle\": \"x\", \"sandbox\": {\"enabled\": true}, "
                              "\"Sandbox\": {}}"),
                     0);
    assert_list(&p.warnings,
                LIST("settings.json: modle: unknown key, ignored (did you mean \"model\"?)",
                     "settings.json: Sandbox: unknown key, ignored (did you mean \"sandbox\"?)"));
    al_policy_free(&p);
}

/* permissions rules: Read()/Edit() denials become denyRead/denyWrite with
 * Claude Code's path prefixes; WebFetch(domain:) allows become allowed
 * domains; other tools' rules change nothing. */
static void permission_rules(void **state)
{
    struct al_policy p;
    (void)state;
    al_policy_init(&p);
    assert_int_equal(load(&p,
                          "{\"permissions\": {\"deny\": [\"Read(//etc/x)\", \"Read(~/.kube/**)\", "
                          "\"Read(*.pem)\", \"Read(/conf/**)\", \"Read(./a/b)\", \"Read(logs/)\", "
                          "\"Edit(src/gen)\", \"Write(//opt/w)\", \"Bash(rm:*)\", \"WebFetch\", "
                          "\"Read(secret/**/*.key)\"], "
                          "\"ask\": [\"Read(//x)\"], "
                          "\"allow\": [\"WebFetch(domain:Docs.Example.com)\", \"Edit(src/**)\", "
                          "\"Bash(ls)\", \"Read(//y)\"], \"defaultMode\": \"plan\", "
                          "\"additionalDirectories\": [\"../x\"]}}"),
                     0);
    assert_list(&p.deny_read, LIST("/etc/x", HOME "/.kube", CWD "/**/*.pem", CWD "/conf",
                                   CWD "/a/b", CWD "/**/logs", CWD "/secret/**/*.key"));
    assert_list(&p.deny_write, LIST(CWD "/src/gen", "/opt/w"));
    assert_list(&p.net.allowed_domains, LIST("docs.example.com"));
    assert_int_equal(p.warnings.len, 0);
    al_policy_free(&p);

    al_policy_init(&p);
    assert_int_equal(load(&p, "{\"permissions\": {\"deny\": [\"Read\", \"Edit(**)\"], "
                              "\"allow\": [\"WebFetch(domain:*.com)\", \"Edit(//opt/x/**)\", "
                              "\"WebFetch(domain:https://a.example/)\"]}}"),
                     0);
    assert_int_equal(p.deny_read.len, 0);
    assert_int_equal(p.deny_write.len, 0);
    assert_int_equal(p.net.allowed_domains.len, 0);
    assert_list(
        &p.warnings,
        LIST("settings.json: permissions.allow[0]: \"WebFetch(domain:*.com)\": not added to the "
             "allowed domains: \"*.com\" is too broad: a wildcard must stand for subdomains of a "
             "registered domain, e.g. \"*.example.com\"",
             "settings.json: permissions.allow[1]: \"Edit(//opt/x/**)\": not made writable for "
             "sandboxed commands (airlock takes only Read/Edit deny rules and WebFetch domains "
             "from permissions); add the path to sandbox.filesystem.allowWrite",
             "settings.json: permissions.allow[2]: \"WebFetch(domain:https://a.example/)\": not "
             "added to the allowed domains: \"https://a.example/\" is a URL, not a domain: write "
             "the host name alone, \"a.example\"",
             "settings.json: permissions.deny[0]: \"Read\": denies Claude's Read tool everywhere; "
             "airlock does not turn it into a sandbox rule (it would hide every file); name "
             "paths, e.g. Read(~/.secrets/**)",
             "settings.json: permissions.deny[1]: \"Edit(**)\": denies Claude's Edit tool "
             "everywhere; airlock does not turn it into a sandbox rule (it would write-protect "
             "every file); name paths, e.g. Edit(~/.secrets/**)"));
    al_policy_free(&p);
}

/* strictAllowlist is honoured (no asking); the managed-only switches are
 * warned about outside managed settings. */
static void network_switches(void **state)
{
    struct al_policy p;
    (void)state;
    al_policy_init(&p);
    assert_int_equal(p.net.strict_allowlist, 0);
    assert_int_equal(load(&p, "{\"sandbox\": {\"failIfUnavailable\": true, \"network\": "
                              "{\"strictAllowlist\": true, \"allowManagedDomainsOnly\": false}, "
                              "\"filesystem\": {\"allowManagedReadPathsOnly\": true}}}"),
                     0);
    assert_int_equal(p.net.strict_allowlist, 1);
    assert_list(&p.warnings,
                LIST("settings.json: sandbox.filesystem.allowManagedReadPathsOnly: ignored: it "
                     "has an effect only in Claude Code's managed settings "
                     "(/etc/claude-code/managed-settings.json), and airlock honours every file "
                     "it is given"));
    assert_int_equal(load(&p, "{\"network\": {\"strictAllowlist\": false}}"), 0);
    assert_int_equal(p.net.strict_allowlist, 0);
    assert_string_equal(p.key_prefix, "");
    al_policy_free(&p);
}

/* Claude Code's newer sandbox keys: credentials are honoured, its helper
 * paths said not to apply, macOS and platform switches accepted. */
static void cc_newer_sandbox_keys(void **state)
{
    struct al_policy p;
    (void)state;
    al_policy_init(&p);
    assert_int_equal(
        load(&p, "{\"sandbox\": {\"credentials\": {\"files\": [{\"path\": \"~/.config/tok\", "
                 "\"mode\": \"deny\"}], \"envVars\": [{\"name\": \"GH_TOKEN\", \"mode\": "
                 "\"deny\"}]}, \"bwrapPath\": \"/usr/bin/bwrap\", \"ripgrep\": {\"command\": "
                 "\"rg\"}, \"enabledPlatforms\": [\"linux\"], \"allowAppleEvents\": false, "
                 "\"enableWeakerNetworkIsolation\": false, \"network\": {\"allowMachLookup\": "
                 "[\"com.x.*\"]}}}"),
        0);
    assert_list(&p.deny_read, LIST(HOME "/.config/tok"));
    assert_list(&p.deny_env, LIST("GH_TOKEN"));
    assert_list(&p.warnings,
                LIST("settings.json: sandbox.network.allowMachLookup: ignored: macOS only (no "
                     "effect on Linux, where airlock runs)",
                     "settings.json: sandbox.ripgrep: does not apply: it configures Claude Code's "
                     "own sandbox helpers; airlock builds its sandbox itself",
                     "settings.json: sandbox.bwrapPath: does not apply: it configures Claude "
                     "Code's own sandbox helpers; airlock builds its sandbox itself"));
    assert_int_equal(load(&p, "{\"sandbox\": {\"socatPath\": \"socat\"}}"), AL_EINVAL);
    assert_string_equal(al_error_last(),
                        "settings.json: sandbox.socatPath: expected an absolute path");
    assert_int_equal(load(&p, "{\"sandbox\": {\"ripgrep\": {}}}"), AL_EINVAL);
    assert_string_equal(al_error_last(), "settings.json: sandbox.ripgrep.command: missing");
    al_policy_free(&p);
}

/* Files on disk: paths are checked against the host; "/x" in a permission
 * rule is relative to the project folder of a file in .claude/. */
static void host_paths(void **state)
{
    char dir[] = "/tmp/al-settings-XXXXXX", file[256], exists[256];
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/.claude", dir);
    assert_int_equal(mkdir(file, 0700), 0);
    snprintf(exists, sizeof(exists), "%s/there", dir);
    assert_int_equal(mkdir(exists, 0700), 0);
    snprintf(file, sizeof(file), "%s/.claude/settings.json", dir);
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"permissions\": {\"deny\": [\"Read(/secret)\", \"Edit(/there)\"]}, "
             "\"sandbox\": {\"filesystem\": {\"allowWrite\": [\"%s\", \"%s/nope\"], "
             "\"denyRead\": [\"%s/gone1\", \"%s/gone2\", \"%s/*.x\"]}}}",
             exists, dir, dir, dir, dir);
    write_file(file, json);

    struct al_policy p;
    al_policy_init(&p);
    assert_int_equal(al_settings_load_file(&p, file, HOME, CWD), 0);
    char want[4][1024];
    snprintf(want[0], sizeof(want[0]), "%s/secret", dir);
    assert_string_equal(p.deny_read.items[0], want[0]);
    snprintf(want[1], sizeof(want[1]), "%s/there", dir);
    assert_string_equal(p.deny_write.items[0], want[1]);
    assert_int_equal(p.warnings.len, 3);
    snprintf(want[1], sizeof(want[1]),
             "%s: permissions.deny (Read): \"%s/secret\" does not exist (yet): the rule is kept "
             "and applies to sandboxes started after it appears",
             file, dir);
    assert_string_equal(p.warnings.items[0], want[1]);
    snprintf(want[2], sizeof(want[2]),
             "%s: sandbox.filesystem.allowWrite: \"%s/nope\" does not exist: the entry has no "
             "effect (airlock creates nothing; create it first, or fix the path)",
             file, dir);
    assert_string_equal(p.warnings.items[1], want[2]);
    snprintf(want[3], sizeof(want[3]),
             "%s: sandbox.filesystem.denyRead: \"%s/gone1\", \"%s/gone2\" do not exist (yet): "
             "the rules are kept and apply to sandboxes started after they appear",
             file, dir, dir);
    assert_string_equal(p.warnings.items[2], want[3]);
    /* "/x" in denyRead is also read as Claude Code documents it: relative
     * to the settings file (the project folder for .claude/) */
    snprintf(want[0], sizeof(want[0]), "%s%s/gone1", dir, dir);
    assert_int_not_equal(al_strlist_find(&p.deny_read, want[0]), -1);
    snprintf(want[0], sizeof(want[0]), "%s/gone1", dir);
    assert_int_not_equal(al_strlist_find(&p.deny_read, want[0]), -1);
    /* grants keep the absolute reading only */
    snprintf(want[0], sizeof(want[0]), "%s%s", dir, exists);
    assert_int_equal(al_strlist_find(&p.allow_write, want[0]), -1);
    al_policy_free(&p);

    /* a grant "/there" is absolute; the settings-relative "there" exists, so
     * the two readings differ and a warning says which was granted */
    write_file(file, "{\"sandbox\": {\"filesystem\": {\"allowWrite\": [\"/there\", \"//tmp\"]}}}");
    al_policy_init(&p);
    assert_int_equal(al_settings_load_file(&p, file, HOME, CWD), 0);
    assert_list(&p.allow_write, LIST("/there", "/tmp"));
    snprintf(want[1], sizeof(want[1]),
             "%s: sandbox.filesystem.allowWrite[0]: \"/there\" is the absolute path here; Claude "
             "Code reads it relative to the settings file, as \"%s/there\", which exists and is "
             "NOT granted: write \"%s/there\" to grant that, or \"//there\" to keep the absolute "
             "path and silence this",
             file, dir, dir);
    assert_int_equal(p.warnings.len, 2);
    assert_string_equal(p.warnings.items[0], want[1]);
    al_policy_free(&p);

    /* from a buffer the host is not looked at */
    al_policy_init(&p);
    assert_int_equal(load(&p, "{\"sandbox\": {\"filesystem\": {\"allowWrite\": [\"/nope/x\"]}}}"),
                     0);
    assert_int_equal(p.warnings.len, 0);
    al_policy_free(&p);
    unlink(file);
    rmdir(exists);
    snprintf(file, sizeof(file), "%s/.claude", dir);
    rmdir(file);
    rmdir(dir);
}

/* --- issue 15: credentials, tlsTerminate, requestRules, reportOnly ------- */

/* Claude Code's shape: credentials.envVars/files with "mask", the
 * tlsTerminate `{}` it documents, airlock's requestRules and reportOnly. */
static void credentials_claude_code(void **state)
{
    struct al_policy p;
    (void)state;
    al_policy_init(&p);
    assert_int_equal(
        load(&p, "{\"sandbox\": {\"network\": {\"allowedDomains\": [\"*.github.com\", "
                 "\"registry.npmjs.org:443\"], \"tlsTerminate\": {}, \"reportOnly\": true, "
                 "\"requestRules\": [{\"host\": \"api.github.com\", \"methods\": [\"GET\", "
                 "\"HEAD\", \"GET\"], \"paths\": [\"/repos/acme/app/**\"], \"queryKeys\": []}, "
                 "{\"host\": \"*.npmjs.org\"}]}, \"credentials\": {\"envVars\": [{\"name\": "
                 "\"GITHUB_TOKEN\", \"mode\": \"mask\", \"injectHosts\": [\"API.github.com\", "
                 "\"*.github.com\"]}, {\"name\": \"AWS_KEY\", \"mode\": \"deny\"}], \"files\": "
                 "[{\"path\": \"~/.npmrc\", \"mode\": \"mask\", \"injectHosts\": "
                 "[\"registry.npmjs.org\"]}, {\"path\": \"~/.kube\", \"mode\": \"deny\"}]}}}"),
        0);
    assert_int_equal(p.net.tls_terminate, 1);
    assert_null(p.tls.ca_cert_path);
    assert_int_equal(p.net.report_only, 1);
    assert_int_equal(p.net.allow_plaintext_inject, 0);
    assert_int_equal(p.n_mask_env, 1);
    assert_string_equal(p.mask_env[0].name, "GITHUB_TOKEN");
    assert_list(&p.mask_env[0].inject_hosts, LIST("api.github.com", "*.github.com"));
    assert_int_equal(p.n_mask_files, 1);
    assert_string_equal(p.mask_files[0].name, HOME "/.npmrc");
    assert_null(p.mask_files[0].extract);
    assert_list(&p.deny_env, LIST("AWS_KEY"));
    assert_list(&p.deny_read, LIST(HOME "/.kube"));
    assert_int_equal(p.net.n_request_rules, 2);
    assert_string_equal(p.net.request_rules[0].host, "api.github.com");
    assert_list(&p.net.request_rules[0].methods, LIST("GET", "HEAD"));
    assert_list(&p.net.request_rules[0].paths, LIST("/repos/acme/app/**"));
    assert_int_equal(p.net.request_rules[0].has_query_keys, 1);
    assert_int_equal(p.net.request_rules[0].query_keys.len, 0);
    assert_string_equal(p.net.request_rules[1].host, "*.npmjs.org");
    assert_int_equal(p.net.request_rules[1].methods.len, 0);
    assert_int_equal(p.net.request_rules[1].has_query_keys, 0);
    assert_int_equal(p.warnings.len, 0);
    assert_int_equal(al_policy_check_credentials(&p), 0);
    al_policy_free(&p);
}

/* Each value the loader refuses, with the message a user sees. */
static void credentials_refused(void **state)
{
    static const struct bad_case cases[] = {
        /* what srt's masking does and airlock's does not */
        {"{\"credentials\": {\"envVars\": [{\"name\": \"J\", \"mode\": \"mask\", \"decode\": "
         "\"jwt\", \"injectHosts\": [\"a.example.com\"]}]}}",
         "settings.json: credentials.envVars[0].decode: not supported: airlock does not decode "
         "JWTs; it masks the whole value; remove it, or use mode \"deny\""},
        {"{\"credentials\": {\"files\": [{\"path\": \"/t\", \"mode\": \"mask\", \"decode\": "
         "\"jwt\", \"injectHosts\": [\"a.example.com\"]}]}}",
         "settings.json: credentials.files[0].decode: not supported: airlock does not decode "
         "JWTs; it masks the whole file (or what extract matches); remove it, or use mode "
         "\"deny\""},
        {"{\"sandbox\": {\"credentials\": {\"envVars\": [{\"name\": \"J\", \"mode\": \"mask\", "
         "\"maskClaims\": [\"sub\"], \"injectHosts\": [\"a.example.com\"]}]}}}",
         "settings.json: sandbox.credentials.envVars[0].maskClaims: not supported: airlock does "
         "not decode JWTs to mask single claims; remove it, or use mode \"deny\""},
        {"{\"credentials\": {\"files\": [{\"path\": \"/t\", \"mode\": \"mask\", "
         "\"maskDuplicates\": true, \"extract\": \"t=(.*)\", \"injectHosts\": "
         "[\"a.example.com\"]}]}}",
         "settings.json: credentials.files[0].maskDuplicates: true is not supported: airlock "
         "replaces only what extract matches; remove it, or use mode \"deny\""},
        {"{\"credentials\": {\"envVars\": [{\"name\": \"DB\", \"mode\": \"mask\", \"extract\": "
         "\"://[^:]+:([^@]+)@\", \"injectHosts\": [\"a.example.com\"]}]}}",
         "settings.json: credentials.envVars[0].extract: not supported for envVars: airlock "
         "masks a variable's whole value; remove it, or use mode \"deny\""},
        {"{\"credentials\": {\"files\": [{\"path\": \"/t\", \"mode\": \"mask\", "
         "\"onExtractNoMatch\": \"warn\", \"extract\": \"t=(.*)\", \"injectHosts\": "
         "[\"a.example.com\"]}]}}",
         "settings.json: credentials.files[0].onExtractNoMatch: \"warn\" is not supported: "
         "airlock never leaves a credential unmasked; use \"error\" (airlock's behaviour: a file "
         "extract does not match stops the sandbox from starting)"},
        {"{\"credentials\": {\"files\": [{\"path\": \"/t\", \"mode\": \"mask\", \"extract\": "
         "\"t=(\", \"injectHosts\": [\"a.example.com\"]}]}}",
         "settings.json: credentials.files[0].extract: \"t=(\": not a valid POSIX extended "
         "regular expression: Unmatched ( or \\("},
        {"{\"credentials\": {\"awsPairs\": [{\"accessKeyIdVar\": \"A\", "
         "\"secretAccessKeyVar\": \"B\"}]}}",
         "settings.json: credentials.awsPairs: not supported: airlock does not re-sign AWS "
         "requests; use mode \"deny\" for the AWS variables"},
        {"{\"sandbox\": {\"credentials\": {\"sigv4\": {\"streaming\": \"deny\"}}}}",
         "settings.json: sandbox.credentials.sigv4: not supported: airlock does not re-sign AWS "
         "requests; use mode \"deny\" for the AWS variables"},
        {"{\"credentials\": {\"sigv4\": []}}",
         "settings.json: credentials.sigv4: expected an object"},
        {"{\"credentials\": {\"allowPlaintextInject\": 1}}",
         "settings.json: credentials.allowPlaintextInject: expected true or false"},
        /* injectHosts */
        {"{\"credentials\": {\"envVars\": [{\"name\": \"T\", \"mode\": \"mask\"}]}}",
         "settings.json: credentials.envVars[0]: mode \"mask\" needs injectHosts: the hosts the "
         "real value may be sent to (airlock does not default to every allowedDomains entry)"},
        {"{\"credentials\": {\"envVars\": [{\"name\": \"T\", \"mode\": \"mask\", \"injectHosts\": "
         "[]}]}}",
         "settings.json: credentials.envVars[0].injectHosts: is empty: the real value would "
         "never be sent; list the hosts it is for"},
        {"{\"credentials\": {\"envVars\": [{\"name\": \"T\", \"mode\": \"mask\", \"injectHosts\": "
         "[\"a.example.com:443\"]}]}}",
         "settings.json: credentials.envVars[0].injectHosts[0]: \"a.example.com:443\": expected "
         "a host name without a port (a credential is put back for the host on any port "
         "allowedDomains allows)"},
        {"{\"credentials\": {\"envVars\": [{\"name\": \"T\", \"mode\": \"mask\", \"injectHosts\": "
         "[\"*.com\"]}]}}",
         "settings.json: credentials.envVars[0].injectHosts[0]: \"*.com\" is too broad: a "
         "wildcard must stand for subdomains of a registered domain, e.g. \"*.example.com\""},
        /* mask is for one file */
        {"{\"credentials\": {\"files\": [{\"path\": \"~/.aws/\", \"mode\": \"mask\", "
         "\"injectHosts\": [\"a.example.com\"]}]}}",
         "settings.json: credentials.files[0].path: \"/home/u/.aws\": mode \"mask\" applies to "
         "one file, not a directory: use mode \"deny\" for it, or name the credential file "
         "inside it"},
        {"{\"credentials\": {\"files\": [{\"path\": \"~/*.token\", \"mode\": \"mask\", "
         "\"injectHosts\": [\"a.example.com\"]}]}}",
         "settings.json: credentials.files[0].path: \"/home/u/*.token\": mode \"mask\" applies "
         "to one file, not a pattern: name the file"},
        /* tlsTerminate */
        {"{\"network\": {\"tlsTerminate\": {\"caCertPath\": \"/ca.pem\"}}}",
         "settings.json: network.tlsTerminate.caKeyPath: missing: caCertPath and caKeyPath must "
         "be given together"},
        {"{\"sandbox\": {\"network\": {\"tlsTerminate\": {\"caKeyPath\": \"/ca.key\"}}}}",
         "settings.json: sandbox.network.tlsTerminate.caCertPath: missing: caCertPath and "
         "caKeyPath must be given together"},
        {"{\"sandbox\": {\"network\": {\"tlsTerminate\": true}}}",
         "settings.json: sandbox.network.tlsTerminate: expected an object"},
        {"{\"network\": {\"tlsTerminate\": {\"excludeDomains\": [\"*\"]}}}",
         "settings.json: network.tlsTerminate.excludeDomains[0]: \"*\" is too broad: it matches "
         "every domain"},
        {"{\"network\": {\"tlsTerminate\": {\"maxTunnels\": 0}}}",
         "settings.json: network.tlsTerminate.maxTunnels: expected an integer from 1 to 1000000"},
        {"{\"network\": {\"tlsTerminate\": {\"handshakeTimeoutMs\": \"5s\"}}}",
         "settings.json: network.tlsTerminate.handshakeTimeoutMs: expected an integer from 1 to "
         "600000"},
        {"{\"network\": {\"tlsTerminate\": {\"caCertPath\": \"~bob/ca\", \"caKeyPath\": "
         "\"/k\"}}}",
         "settings.json: network.tlsTerminate.caCertPath: \"~bob/ca\": only \"~\" and \"~/...\" "
         "are expanded, not \"~user\""},
        /* requestRules */
        {"{\"network\": {\"requestRules\": [{\"methods\": [\"GET\"]}]}}",
         "settings.json: network.requestRules[0].host: missing"},
        {"{\"network\": {\"requestRules\": [{\"host\": \"https://api.example.com/x\"}]}}",
         "settings.json: network.requestRules[0].host: \"https://api.example.com/x\" is a URL, "
         "not a domain: write the host name alone, \"api.example.com\" (a path cannot be "
         "allowed on its own: the whole host is)"},
        {"{\"network\": {\"requestRules\": [{\"host\": \"a.example.com\", \"methods\": "
         "[\"get\"]}]}}",
         "settings.json: network.requestRules[0].methods[0]: \"get\": methods are matched as "
         "sent, in upper case: write it in upper case"},
        {"{\"network\": {\"requestRules\": [{\"host\": \"a.example.com\", \"methods\": "
         "[\"GET POST\"]}]}}",
         "settings.json: network.requestRules[0].methods[0]: \"GET POST\": expected an HTTP "
         "method (\"GET\", \"POST\", ...): bad character"},
        {"{\"network\": {\"requestRules\": [{\"host\": \"a.example.com\", \"methods\": "
         "[\"\"]}]}}",
         "settings.json: network.requestRules[0].methods[0]: \"\": expected an HTTP method "
         "(\"GET\", \"POST\", ...)"},
        {"{\"network\": {\"requestRules\": [{\"host\": \"a.example.com\", \"methods\": []}]}}",
         "settings.json: network.requestRules[0].methods: is empty: leave the key out to allow "
         "any"},
        {"{\"network\": {\"requestRules\": [{\"host\": \"a.example.com\", \"paths\": []}]}}",
         "settings.json: network.requestRules[0].paths: is empty: leave the key out to allow "
         "any"},
        {"{\"network\": {\"requestRules\": [{\"host\": \"a.example.com\", \"paths\": "
         "[\"repos/**\"]}]}}",
         "settings.json: network.requestRules[0].paths[0]: \"repos/**\": a path pattern starts "
         "with \"/\""},
        {"{\"network\": {\"requestRules\": [{\"host\": \"a.example.com\", \"paths\": "
         "[\"/x?page=1\"]}]}}",
         "settings.json: network.requestRules[0].paths[0]: \"/x?page=1\": \"?\" is not allowed: "
         "a rule matches the path; name the query parameters in queryKeys"},
        {"{\"network\": {\"requestRules\": [{\"host\": \"a.example.com\", \"paths\": "
         "[\"/a\\\\b\"]}]}}",
         "settings.json: network.requestRules[0].paths[0]: \"/a\\\\b\": CR, LF and \"\\\" are "
         "not allowed in a path pattern"},
        {"{\"network\": {\"requestRules\": [{\"host\": \"a.example.com\", \"paths\": "
         "[\"/a\\r\\nX: y\"]}]}}",
         "settings.json: network.requestRules[0].paths[0]: \"/a\\x0d\\x0aX: y\": CR, LF and "
         "\"\\\" are not allowed in a path pattern"},
        {"{\"network\": {\"requestRules\": [{\"host\": \"a.example.com\", \"queryKeys\": "
         "[\"a=b\"]}]}}",
         "settings.json: network.requestRules[0].queryKeys[0]: \"a=b\": expected a query "
         "parameter name (no spaces, control characters, \"&\", \"=\", \"#\" or \"?\")"},
        {"{\"network\": {\"requestRules\": [{\"host\": \"a.example.com\", \"method\": []}]}}",
         "settings.json: network.requestRules[0].method: unknown key (did you mean "
         "\"methods\"?)"},
        {"{\"network\": {\"requestRules\": {\"host\": \"a.example.com\"}}}",
         "settings.json: network.requestRules: expected a list of objects"},
        {"{\"sandbox\": {\"network\": {\"reportOnly\": \"yes\"}}}",
         "settings.json: sandbox.network.reportOnly: expected true or false"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct al_policy p;
        al_policy_init(&p);
        int err = load(&p, cases[i].json);
        if (err != AL_EINVAL || strcmp(al_error_last(), cases[i].message) != 0)
            fail_msg("case %zu: %s\n  got  %d %s\n  want %s", i, cases[i].json, err,
                     al_error_last(), cases[i].message);
        al_policy_free(&p);
    }
}

/* What only the layered whole can tell: al_policy_check_credentials(). */
static void credentials_check(void **state)
{
    static const struct bad_case cases[] = {
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"api.github.com\"]}, "
         "\"credentials\": {\"envVars\": [{\"name\": \"GITHUB_TOKEN\", \"mode\": \"mask\", "
         "\"injectHosts\": [\"api.github.com\"]}]}}}",
         "sandbox.credentials.envVars (\"GITHUB_TOKEN\"): mode \"mask\" needs "
         "sandbox.network.tlsTerminate: without it the proxy cannot see HTTPS requests to put "
         "the real value back"},
        {"{\"network\": {\"allowedDomains\": [\"api.github.com\"]}, \"credentials\": "
         "{\"allowPlaintextInject\": true, \"files\": [{\"path\": \"/t\", \"mode\": \"mask\", "
         "\"injectHosts\": [\"api.github.com\"]}]}}",
         "credentials.files (\"/t\"): mode \"mask\" needs network.tlsTerminate: without it the "
         "proxy cannot see HTTPS requests to put the real value back"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"a.example.com\"], "
         "\"requestRules\": [{\"host\": \"a.example.com\", \"methods\": [\"GET\"]}]}}}",
         "sandbox.network.requestRules[0] (\"a.example.com\"): needs "
         "sandbox.network.tlsTerminate: without it the proxy cannot see the method and path of "
         "HTTPS requests"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"github.com\"], \"tlsTerminate\": "
         "{}}, \"credentials\": {\"envVars\": [{\"name\": \"GITHUB_TOKEN\", \"mode\": \"mask\", "
         "\"injectHosts\": [\"api.github.com\"]}]}}}",
         "sandbox.credentials.envVars (\"GITHUB_TOKEN\"): injectHosts \"api.github.com\" is not "
         "covered by sandbox.network.allowedDomains: add it (or a wildcard covering it) there, "
         "or remove it from injectHosts"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"*.github.com\"], \"tlsTerminate\": "
         "{}}, \"credentials\": {\"envVars\": [{\"name\": \"T\", \"mode\": \"mask\", "
         "\"injectHosts\": [\"github.com\"]}]}}}",
         "sandbox.credentials.envVars (\"T\"): injectHosts \"github.com\" is not covered by "
         "sandbox.network.allowedDomains: add it (or a wildcard covering it) there, or remove it "
         "from injectHosts"},
        {"{\"sandbox\": {\"network\": {\"allowedDomains\": [\"api.github.com\"], "
         "\"tlsTerminate\": {}}, \"credentials\": {\"envVars\": [{\"name\": \"T\", \"mode\": "
         "\"mask\", \"injectHosts\": [\"*.github.com\"]}]}}}",
         "sandbox.credentials.envVars (\"T\"): injectHosts \"*.github.com\" is not covered by "
         "sandbox.network.allowedDomains: add it (or a wildcard covering it) there, or remove it "
         "from injectHosts"},
        {"{\"network\": {\"allowAllDomains\": true, \"deniedDomains\": [\"*.evil.example.com\"], "
         "\"tlsTerminate\": {}}, \"credentials\": {\"envVars\": [{\"name\": \"T\", \"mode\": "
         "\"mask\", \"injectHosts\": [\"x.evil.example.com\"]}]}}",
         "credentials.envVars (\"T\"): injectHosts \"x.evil.example.com\" is denied by "
         "network.deniedDomains \"*.evil.example.com\""},
        {"{\"network\": {\"allowedDomains\": [\"api.example.com\"], \"deniedDomains\": [\"*\"], "
         "\"tlsTerminate\": {}}, \"credentials\": {\"envVars\": [{\"name\": \"T\", \"mode\": "
         "\"mask\", \"injectHosts\": [\"api.example.com\"]}]}}",
         "credentials.envVars (\"T\"): injectHosts \"api.example.com\" is denied by "
         "network.deniedDomains \"*\""},
        {"{\"network\": {\"allowedDomains\": [\"*.example.com\"], \"tlsTerminate\": "
         "{\"excludeDomains\": [\"*.pinned.example.com\"]}}, \"credentials\": {\"files\": "
         "[{\"path\": \"/t\", \"mode\": \"mask\", \"injectHosts\": [\"a.pinned.example.com\"]}]}}",
         "credentials.files (\"/t\"): injectHosts \"a.pinned.example.com\" is covered by "
         "network.tlsTerminate.excludeDomains \"*.pinned.example.com\": TLS to it is not "
         "terminated, so the real value could never be put back; remove it from one of the two "
         "lists"},
        {"{\"network\": {\"allowedDomains\": [\"*.example.com\"], \"tlsTerminate\": "
         "{\"excludeDomains\": [\"pinned.example.com\"]}, \"requestRules\": [{\"host\": "
         "\"x.example.com\"}, {\"host\": \"PINNED.example.com\", \"methods\": [\"GET\"]}]}}",
         "network.requestRules[1] (\"pinned.example.com\"): the host is covered by "
         "network.tlsTerminate.excludeDomains \"pinned.example.com\": its HTTPS requests are not "
         "inspected, so the rule could not be enforced; remove it from one of the two lists"},
    };
    static const char *const fine[] = {
        /* wildcards cover single hosts and narrower wildcards; ports ignored */
        ("{\"network\": {\"allowedDomains\": [\"*.github.com\", \"registry.npmjs.org:443\"], "
         "\"tlsTerminate\": {\"excludeDomains\": [\"pinned.github.com\"]}}, \"credentials\": "
         "{\"envVars\": [{\"name\": \"T\", \"mode\": \"mask\", \"injectHosts\": "
         "[\"api.github.com\", \"*.api.github.com\", \"registry.npmjs.org\"]}]}}"),
        /* allowAllDomains covers what is not denied; a denial on one port does
         * not deny the host */
        ("{\"network\": {\"allowAllDomains\": true, \"deniedDomains\": [\"*:25\", "
         "\"x.example.com\"], \"tlsTerminate\": {}}, \"credentials\": {\"envVars\": [{\"name\": "
         "\"T\", \"mode\": \"mask\", \"injectHosts\": [\"api.example.com\"]}]}}"),
        /* nothing masked, no rules: nothing to check */
        ("{\"network\": {\"allowedDomains\": [\"a.example.com\"]}, \"credentials\": "
         "{\"envVars\": [{\"name\": \"T\", \"mode\": \"deny\"}]}}"),
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct al_policy p;
        al_policy_init(&p);
        if (load(&p, cases[i].json) != 0)
            fail_msg("case %zu: load: %s", i, al_error_last());
        int err = al_policy_check_credentials(&p);
        if (err != AL_EINVAL || strcmp(al_error_last(), cases[i].message) != 0)
            fail_msg("case %zu: %s\n  got  %d %s\n  want %s", i, cases[i].json, err,
                     al_error_last(), cases[i].message);
        al_policy_free(&p);
    }
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
        struct al_policy p;
        al_policy_init(&p);
        assert_int_equal(load(&p, fine[i]), 0);
        if (al_policy_check_credentials(&p) != 0)
            fail_msg("fine %zu: %s", i, al_error_last());
        al_policy_free(&p);
    }
}

/* Layers: deny wins over mask whichever file says which; the same name
 * masked twice takes the later entry; rules append; tlsTerminate's paths
 * are replaced and its lists append. */
static void credentials_layering(void **state)
{
    struct al_policy p;
    (void)state;
    al_policy_init(&p);
    /* masked first, denied by a later file (the other shape) */
    assert_int_equal(load(&p, "{\"sandbox\": {\"network\": {\"allowedDomains\": "
                              "[\"*.example.com\"], \"tlsTerminate\": {\"caCertPath\": \"/c1\", "
                              "\"caKeyPath\": \"/k1\", \"excludeDomains\": [\"p.example.com\"]}, "
                              "\"requestRules\": [{\"host\": \"a.example.com\"}]}, "
                              "\"credentials\": {\"envVars\": [{\"name\": \"A\", \"mode\": "
                              "\"mask\", \"injectHosts\": [\"a.example.com\"]}, {\"name\": \"B\", "
                              "\"mode\": \"mask\", \"injectHosts\": [\"a.example.com\"]}], "
                              "\"files\": [{\"path\": \"/s/one\", \"mode\": \"mask\", "
                              "\"injectHosts\": [\"a.example.com\"]}, {\"path\": \"/d/two\", "
                              "\"mode\": \"mask\", \"injectHosts\": [\"a.example.com\"]}, "
                              "{\"path\": \"/g/x.key\", \"mode\": \"mask\", \"injectHosts\": "
                              "[\"a.example.com\"]}]}}}"),
                     0);
    assert_int_equal(p.n_mask_env, 2);
    assert_int_equal(p.n_mask_files, 3);
    assert_int_equal(
        load(&p, "{\"network\": {\"tlsTerminate\": {\"caCertPath\": \"/c2\", \"caKeyPath\": "
                 "\"/k2\", \"excludeDomains\": [\"q.example.com\"]}, \"requestRules\": "
                 "[{\"host\": \"b.example.com\"}], \"reportOnly\": false}, \"filesystem\": "
                 "{\"denyRead\": [\"/d\", \"/g/*.key\"]}, \"credentials\": {\"envVars\": "
                 "[{\"name\": \"A\", \"mode\": \"deny\"}, {\"name\": \"B\", \"mode\": \"mask\", "
                 "\"injectHosts\": [\"b.example.com\"]}, {\"name\": \"C\", \"mode\": \"mask\", "
                 "\"injectHosts\": [\"c.example.com\"]}]}}"),
        0);
    assert_int_equal(p.n_mask_env, 2);
    assert_string_equal(p.mask_env[0].name, "B");
    assert_list(&p.mask_env[0].inject_hosts, LIST("b.example.com"));
    assert_string_equal(p.mask_env[1].name, "C");
    assert_int_equal(p.n_mask_files, 1);
    assert_string_equal(p.mask_files[0].name, "/s/one");
    assert_list(&p.deny_env, LIST("A"));
    assert_string_equal(p.tls.ca_cert_path, "/c2");
    assert_string_equal(p.tls.ca_key_path, "/k2");
    assert_list(&p.net.tls_exclude, LIST("p.example.com", "q.example.com"));
    assert_int_equal(p.net.n_request_rules, 2);
    assert_string_equal(p.net.request_rules[1].host, "b.example.com");
    assert_list(&p.warnings,
                LIST("settings.json: credentials.envVars: \"A\" is both masked and denied: deny "
                     "wins, the variable is not passed in",
                     "settings.json: credentials.files: \"/d/two\" is both masked and denied: "
                     "deny wins, the file is hidden",
                     "settings.json: credentials.files: \"/g/x.key\" is both masked and denied: "
                     "deny wins, the file is hidden"));
    /* denied first: a later mask of the same name is dropped */
    assert_int_equal(load(&p, "{\"sandbox\": {\"credentials\": {\"envVars\": [{\"name\": \"A\", "
                              "\"mode\": \"mask\", \"injectHosts\": [\"a.example.com\"]}], "
                              "\"files\": [{\"path\": \"/d/three\", \"mode\": \"mask\", "
                              "\"injectHosts\": [\"a.example.com\"]}]}}}"),
                     0);
    assert_int_equal(p.n_mask_env, 2);
    assert_int_equal(p.n_mask_files, 1);
    assert_int_equal(al_policy_check_credentials(&p), 0);
    al_policy_free(&p);
}

/* What srt and Claude Code accept but means nothing here is warned about
 * by name, only when set to something other than the default. */
static void credentials_warnings(void **state)
{
    struct al_policy p;
    (void)state;
    al_policy_init(&p);
    assert_int_equal(
        load(&p, "{\"sandbox\": {\"enabled\": true, \"autoAllowBashIfSandboxed\": true, "
                 "\"enabledPlatforms\": [\"macos\", \"linux\"], \"allowAppleEvents\": false, "
                 "\"enableWeakerNetworkIsolation\": false, \"ignoreViolations\": {}, "
                 "\"network\": {\"allowMachLookup\": []}}}"),
        0);
    assert_int_equal(p.warnings.len, 0);
    assert_int_equal(
        load(&p, "{\"sandbox\": {\"enabled\": false, \"autoAllowBashIfSandboxed\": false, "
                 "\"enabledPlatforms\": [\"macos\"], \"allowAppleEvents\": true, "
                 "\"enableWeakerNetworkIsolation\": true, \"credentials\": {\"envVars\": "
                 "[{\"name\": \"X\", \"mode\": \"deny\", \"injectHosts\": [\"a.example.com\"]}, "
                 "{\"name\": \"AWS_SECRET_ACCESS_KEY\", \"mode\": \"mask\", \"injectHosts\": "
                 "[\"s3.example.com\"]}], \"files\": [{\"path\": \"/t\", \"mode\": \"mask\", "
                 "\"extract\": \"k=(.*)\", \"onExtractNoMatch\": \"deny\", \"injectHosts\": "
                 "[\"a.example.com\"]}]}}}"),
        0);
    assert_list(
        &p.warnings,
        LIST("settings.json: sandbox.enabled: ignored: false turns Claude Code's sandbox off; "
             "airlock always runs the command sandboxed",
             "settings.json: sandbox.autoAllowBashIfSandboxed: ignored: it configures Claude "
             "Code's permission prompt for its Bash tool; use sandbox.mode \"regular\" to have "
             "airlock ask before running",
             "settings.json: sandbox.credentials.files[0].onExtractNoMatch: \"deny\": airlock "
             "refuses to start when extract matches nothing, rather than hiding the file",
             "settings.json: sandbox.credentials.envVars[0].injectHosts: ignored: it means "
             "something only with mode \"mask\"",
             "settings.json: sandbox.credentials.envVars[1]: AWS_SECRET_ACCESS_KEY: airlock does "
             "not re-sign AWS SigV4 requests, so a request signed with the sentinel is refused "
             "by AWS; use mode \"deny\" for AWS keys",
             "settings.json: sandbox.enabledPlatforms: ignored: \"linux\" is not in the list, so "
             "Claude Code would not sandbox here; airlock always does",
             "settings.json: sandbox.allowAppleEvents: ignored: macOS only (no effect on Linux, "
             "where airlock runs)",
             "settings.json: sandbox.enableWeakerNetworkIsolation: ignored: macOS only (no "
             "effect on Linux, where airlock runs)"));
    al_policy_free(&p);
}

/* A file on disk: caCertPath and caKeyPath must be readable files now; a
 * buffer (another machine's files) is not checked. */
static void tls_files_on_disk(void **state)
{
    char dir[] = "/tmp/al-tls-XXXXXX", cert[128], key[128], file[128], json[512];
    struct al_policy p;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof(cert), "%s/ca.pem", dir);
    snprintf(key, sizeof(key), "%s/ca.key", dir);
    snprintf(file, sizeof(file), "%s/settings.json", dir);
    write_file(cert, "cert");
    snprintf(json, sizeof(json),
             "{\"sandbox\": {\"network\": {\"tlsTerminate\": {\"caCertPath\": \"%s\", "
             "\"caKeyPath\": \"%s\"}}}}",
             cert, key);
    write_file(file, json);
    al_policy_init(&p);
    assert_int_equal(al_settings_load_file(&p, file, HOME, CWD), AL_EINVAL);
    char want[512];
    snprintf(want, sizeof(want),
             "%s: sandbox.network.tlsTerminate.caKeyPath: \"%s\": cannot be read: No such file "
             "or directory",
             file, key);
    assert_string_equal(al_error_last(), want);
    al_policy_free(&p);
    write_file(key, "key");
    al_policy_init(&p);
    assert_int_equal(al_settings_load_file(&p, file, HOME, CWD), 0);
    assert_string_equal(p.tls.ca_cert_path, cert);
    assert_string_equal(p.tls.ca_key_path, key);
    al_policy_free(&p);
    unlink(key);
    al_policy_init(&p);
    assert_int_equal(load(&p, json), 0);
    al_policy_free(&p);
    unlink(cert);
    unlink(file);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(shape_claude_code),
        cmocka_unit_test(shape_srt),
        cmocka_unit_test(shape_without_sandbox),
        cmocka_unit_test(layering),
        cmocka_unit_test(load_file_errors),
        cmocka_unit_test(validation_errors),
        cmocka_unit_test(missing_home_or_cwd),
        cmocka_unit_test(expand_paths),
        cmocka_unit_test(domains),
        cmocka_unit_test(addresses),
        cmocka_unit_test(unix_sockets),
        cmocka_unit_test(to_json_round_trip),
        cmocka_unit_test(to_json_non_utf8),
        cmocka_unit_test(network_source),
        cmocka_unit_test(top_level_keys),
        cmocka_unit_test(permission_rules),
        cmocka_unit_test(network_switches),
        cmocka_unit_test(host_paths),
        cmocka_unit_test(cc_newer_sandbox_keys),
        cmocka_unit_test(credentials_claude_code),
        cmocka_unit_test(credentials_refused),
        cmocka_unit_test(credentials_check),
        cmocka_unit_test(credentials_layering),
        cmocka_unit_test(credentials_warnings),
        cmocka_unit_test(tls_files_on_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
