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

#include "airlock/creds.h"
#include "airlock/creds_github.h"
#include "airlock/creds_store.h"
#include "airlock/error.h"

static char dir[] = "/tmp/airlock-creds-test-XXXXXX";
static char store_path[256], key_path[256];

static int setup(void **state)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(store_path, sizeof(store_path), "%s/store", dir);
    snprintf(key_path, sizeof(key_path), "%s/master.key", dir);
    return creds_key_generate(key_path);
}

static int teardown(void **state)
{
    unlink(store_path);
    unlink(key_path);
    char other[300];
    snprintf(other, sizeof(other), "%s/other.key", dir);
    unlink(other);
    rmdir(dir);
    return 0;
}

static void put(creds_store *s, const char *scope, const char *secret)
{
    struct creds_entry e = {
        .scope = (char *)scope, .kind = CREDS_KIND_TOKEN, .secret = (char *)secret};
    assert_int_equal(creds_store_put(s, &e), 0);
}

static void round_trip_and_lookup(void **state)
{
    creds_store *s = NULL;
    unlink(store_path);
    assert_int_equal(creds_store_open(&s, store_path, key_path), 0);
    assert_int_equal(creds_store_count(s), 0);
    put(s, "github.com", "host-secret-1234");
    put(s, "github.com/acme", "owner-secret-1234");
    put(s, "github.com/acme/special", "repo-secret-1234");
    assert_int_equal(creds_store_save(s), 0);
    creds_store_free(s);

    /* The file holds no plaintext and is 0600. */
    struct stat st;
    assert_int_equal(stat(store_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    FILE *f = fopen(store_path, "rb");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_null(memmem(buf, n, "secret", 6));
    assert_null(memmem(buf, n, "github.com", 10));

    assert_int_equal(creds_store_open(&s, store_path, key_path), 0);
    assert_int_equal(creds_store_count(s), 3);
    const struct creds_entry *e;
    assert_int_equal(creds_store_lookup(&e, s, "github.com/acme/special"), 0);
    assert_string_equal(e->secret, "repo-secret-1234");
    assert_int_equal(creds_store_lookup(&e, s, "github.com/acme/other"), 0);
    assert_string_equal(e->secret, "owner-secret-1234");
    assert_int_equal(creds_store_lookup(&e, s, "github.com/someone/x"), 0);
    assert_string_equal(e->secret, "host-secret-1234");
    assert_int_equal(creds_store_lookup(&e, s, "gitlab.com/a/b"), AL_ENOTFOUND);
    char *user, *secret;
    assert_int_equal(creds_store_resolve(&user, &secret, s, "github.com/acme/x", 0), 0);
    assert_string_equal(user, "x-access-token");
    assert_string_equal(secret, "owner-secret-1234");
    free(user);
    creds_secret_free(secret);
    assert_int_equal(creds_store_remove(s, "github.com/acme"), 0);
    assert_int_equal(creds_store_remove(s, "github.com/acme"), AL_ENOTFOUND);
    assert_int_equal(creds_store_lookup(&e, s, "github.com/acme/other"), 0);
    assert_string_equal(e->secret, "host-secret-1234");
    struct creds_entry bad = {.scope = "a//b", .kind = CREDS_KIND_TOKEN, .secret = "x"};
    assert_int_equal(creds_store_put(s, &bad), AL_EINVAL);
    creds_store_free(s);
}

static void tampered_file_refused(void **state)
{
    creds_store *s = NULL;
    unlink(store_path);
    assert_int_equal(creds_store_open(&s, store_path, key_path), 0);
    put(s, "github.com", "host-secret-1234");
    assert_int_equal(creds_store_save(s), 0);
    creds_store_free(s);
    struct stat st;
    assert_int_equal(stat(store_path, &st), 0);
    /* Flip one byte anywhere: decryption must fail. */
    for (off_t off = 0; off < st.st_size; off += 7) {
        int fd = open(store_path, O_RDWR);
        unsigned char c;
        assert_int_equal(pread(fd, &c, 1, off), 1);
        c ^= 0x40;
        assert_int_equal(pwrite(fd, &c, 1, off), 1);
        assert_true(creds_store_open(&s, store_path, key_path) < 0);
        c ^= 0x40;
        assert_int_equal(pwrite(fd, &c, 1, off), 1);
        close(fd);
    }
    assert_int_equal(creds_store_open(&s, store_path, key_path), 0);
    creds_store_free(s);
    /* Another master key cannot open it. */
    char other[300];
    snprintf(other, sizeof(other), "%s/other.key", dir);
    unlink(other);
    assert_int_equal(creds_key_generate(other), 0);
    assert_int_equal(creds_store_open(&s, store_path, other), AL_EAUTH);
}

static void loose_permissions_refused(void **state)
{
    creds_store *s = NULL;
    chmod(key_path, 0640);
    assert_int_equal(creds_store_open(&s, store_path, key_path), AL_EPERM);
    chmod(key_path, 0604);
    assert_int_equal(creds_store_open(&s, store_path, key_path), AL_EPERM);
    chmod(key_path, 0600);
    chmod(store_path, 0644);
    assert_int_equal(creds_store_open(&s, store_path, key_path), AL_EPERM);
    chmod(store_path, 0600);
    assert_int_equal(creds_store_open(&s, store_path, key_path), 0);
    creds_store_free(s);
}

static void secret_of(creds_store *s, const char *repo, const char *want)
{
    char *user = NULL, *secret = NULL;
    int err = creds_store_resolve(&user, &secret, s, repo, 0);
    if (!want) {
        assert_int_equal(err, AL_ENOTFOUND);
        return;
    }
    assert_int_equal(err, 0);
    assert_string_equal(secret, want);
    free(user);
    creds_secret_free(secret);
}

/* A running proxy's store picks up another writer's save; a bad file keeps
 * the old entries. */
static void reload_all_or_nothing(void **state)
{
    creds_store *live = NULL, *writer = NULL;
    unlink(store_path);
    assert_int_equal(creds_store_open(&live, store_path, key_path), 0);
    secret_of(live, "git.test/o/r", NULL);
    /* missing file: still empty */
    assert_int_equal(creds_store_reload(live), 0);
    assert_int_equal(creds_store_count(live), 0);

    assert_int_equal(creds_store_open(&writer, store_path, key_path), 0);
    put(writer, "git.test/o", "first-secret-1234");
    assert_int_equal(creds_store_save(writer), 0);
    assert_int_equal(creds_store_reload(live), 0);
    secret_of(live, "git.test/o/r", "first-secret-1234");

    /* through a descriptor opened by someone else, read from offset 0 */
    put(writer, "git.test/o", "second-secret-1234");
    assert_int_equal(creds_store_save(writer), 0);
    int fd = open(store_path, O_RDONLY);
    assert_true(fd >= 0);
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
    assert_int_equal(creds_store_reload_fd(live, fd), 0);
    secret_of(live, "git.test/o/r", "second-secret-1234");

    /* tampered, truncated, loose mode, not a regular file: old entries stay */
    unsigned char junk[64];
    memset(junk, 'x', sizeof(junk));
    int bad = open(store_path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(bad, "ALKSTOR1", 8), 8);
    assert_int_equal(write(bad, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(bad);
    assert_int_equal(creds_store_reload_fd(live, fd), AL_EAUTH);
    assert_int_equal(creds_store_reload(live), AL_EAUTH);
    secret_of(live, "git.test/o/r", "second-secret-1234");
    bad = open(store_path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(bad, "ALKS", 4), 4);
    close(bad);
    assert_int_equal(creds_store_reload(live), AL_EINVAL);
    assert_int_equal(creds_store_save(writer), 0);
    chmod(store_path, 0640);
    assert_int_equal(creds_store_reload(live), AL_EPERM);
    chmod(store_path, 0600);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_int_equal(creds_store_reload_fd(live, dfd), AL_EINVAL);
    close(dfd);
    close(fd);
    secret_of(live, "git.test/o/r", "second-secret-1234");

    /* an entry removed by the writer disappears; -1 empties */
    assert_int_equal(creds_store_remove(writer, "git.test/o"), 0);
    put(writer, "git.test/o/other", "third-secret-1234");
    assert_int_equal(creds_store_save(writer), 0);
    assert_int_equal(creds_store_reload(live), 0);
    secret_of(live, "git.test/o/r", NULL);
    secret_of(live, "git.test/o/other", "third-secret-1234");
    assert_int_equal(creds_store_reload_fd(live, -1), 0);
    assert_int_equal(creds_store_count(live), 0);
    creds_store_free(writer);
    creds_store_free(live);
}

static void github_time(void **state)
{
    time_t t;
    assert_int_equal(creds_github_time_parse(&t, "2026-01-01T00:00:00Z"), 0);
    assert_int_equal((long long)t, 1767225600LL);
    assert_int_equal(creds_github_time_parse(&t, "2026-01-01 00:00:00"), AL_EINVAL);
    assert_int_equal(creds_github_time_parse(&t, "2026-01-01T00:00:00Zjunk"), AL_EINVAL);
}

static void put_http(creds_store *s, const char *name, const char *value, const char *hosts)
{
    char scope[128];
    struct creds_entry e = {.kind = CREDS_KIND_HTTP, .secret = (char *)value};
    snprintf(scope, sizeof(scope), "http:%s", name);
    e.scope = scope;
    assert_int_equal(creds_http_hosts_parse(&e.hosts, hosts, strlen(hosts)), 0);
    assert_int_equal(creds_store_put(s, &e), 0);
    al_strlist_free(&e.hosts);
}

/* HTTP secrets: a namespace of their own, never a repository's credential,
 * with their hosts kept across a save. */
static void http_secrets(void **state)
{
    creds_store *s = NULL;
    unlink(store_path);
    assert_int_equal(creds_store_open(&s, store_path, key_path), 0);
    put(s, "github.com", "git-secret-1234");
    put_http(s, "openai", "sk-real-value-1234", "api.openai.com,*.Example.ORG");
    /* named like a host: still never a git credential */
    put_http(s, "localhost", "http-secret-5678", "localhost");
    assert_int_equal(creds_store_save(s), 0);
    creds_store_free(s);
    assert_int_equal(creds_store_open(&s, store_path, key_path), 0);
    assert_int_equal(creds_store_count(s), 3);
    const struct creds_entry *e;
    assert_int_equal(creds_store_http_find(&e, s, "openai"), 0);
    assert_int_equal(e->kind, CREDS_KIND_HTTP);
    assert_string_equal(e->secret, "sk-real-value-1234");
    assert_int_equal(e->hosts.len, 2);
    assert_string_equal(e->hosts.items[0], "api.openai.com");
    assert_string_equal(e->hosts.items[1], "*.example.org");
    assert_int_equal(creds_store_http_find(&e, s, "github"), AL_ENOTFOUND);
    assert_int_equal(creds_store_http_find(&e, s, "http:openai"), AL_ENOTFOUND);
    /* a git scope is never an HTTP secret, nor the reverse */
    assert_int_equal(creds_store_http_find(&e, s, "github.com"), AL_ENOTFOUND);
    assert_int_equal(creds_store_lookup(&e, s, "localhost/o/r"), AL_ENOTFOUND);
    assert_int_equal(creds_store_lookup(&e, s, "http:openai/o/r"), AL_ENOTFOUND);
    secret_of(s, "http:localhost/o/r", NULL);
    /* a git scope cannot take the HTTP namespace */
    struct creds_entry sneaky = {.scope = "http:openai", .kind = CREDS_KIND_TOKEN, .secret = "x"};
    assert_int_equal(creds_store_put(s, &sneaky), AL_EINVAL);
    assert_int_equal(creds_store_http_find(&e, s, "openai"), 0);
    assert_string_equal(e->secret, "sk-real-value-1234");
    /* malformed HTTP entries */
    struct creds_entry bad = {.scope = "http:9bad", .kind = CREDS_KIND_HTTP, .secret = "v1234"};
    al_strlist_push(&bad.hosts, "a.example.com");
    assert_int_equal(creds_store_put(s, &bad), AL_EINVAL); /* name */
    bad.scope = "http:good";
    bad.secret = "has space";
    assert_int_equal(creds_store_put(s, &bad), AL_EINVAL); /* value */
    bad.secret = "";
    assert_int_equal(creds_store_put(s, &bad), AL_EINVAL);
    al_strlist_free(&bad.hosts);
    bad.secret = "v1234";
    assert_int_equal(creds_store_put(s, &bad), AL_EINVAL); /* no host */
    al_strlist_push(&bad.hosts, "*.com");
    assert_int_equal(creds_store_put(s, &bad), AL_EINVAL); /* too broad */
    al_strlist_free(&bad.hosts);
    assert_int_equal(creds_store_remove(s, "http:localhost"), 0);
    assert_int_equal(creds_store_http_find(&e, s, "localhost"), AL_ENOTFOUND);
    creds_store_free(s);
}

static void http_names_values_hosts(void **state)
{
    assert_true(creds_http_name_valid("OPENAI_KEY"));
    assert_true(creds_http_name_valid("a-b_c9"));
    assert_false(creds_http_name_valid(""));
    assert_false(creds_http_name_valid("9a"));
    assert_false(creds_http_name_valid("_a"));
    assert_false(creds_http_name_valid("a.b"));
    assert_false(creds_http_name_valid("a/b"));
    assert_false(creds_http_name_valid("a b"));
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_false(creds_http_name_valid(longname));
    longname[64] = '\0';
    assert_true(creds_http_name_valid(longname));

    assert_int_equal(creds_http_value_check("tok_123", 7), 0);
    assert_int_equal(creds_http_value_check("", 0), AL_EINVAL);
    assert_int_equal(creds_http_value_check("a\nb", 3), AL_EINVAL);
    assert_int_equal(creds_http_value_check("a\0b", 3), AL_EINVAL);
    assert_int_equal(creds_http_value_check("a b", 3), AL_EINVAL);
    assert_int_equal(creds_http_value_check("\xc3\xa9", 2), AL_EINVAL);
    /* the reason never repeats the value */
    assert_int_equal(creds_http_value_check("zqVALUEzq-\x01-x", 14), AL_EINVAL);
    assert_null(strstr(al_error_last(), "zqVALUEzq"));
    static char big[CREDS_HTTP_VALUE_MAX + 2];
    memset(big, 'x', sizeof(big));
    assert_int_equal(creds_http_value_check(big, CREDS_HTTP_VALUE_MAX), 0);
    assert_int_equal(creds_http_value_check(big, CREDS_HTTP_VALUE_MAX + 1), AL_EINVAL);

    struct al_strlist h = AL_STRLIST_INIT;
    static const char *const bad[] = {
        "",
        ",",
        "a.example.com,",
        ",a.example.com",
        "a.example.com,,b.example.com",
        "*.com",
        "*",
        "a b.example.com",
        "a.example.com,A.EXAMPLE.COM",
        "http://a.example.com",
        "a.example.com/path",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(creds_http_hosts_parse(&h, bad[i], strlen(bad[i])), AL_EINVAL);
        al_strlist_free(&h);
    }
    /* a NUL inside the given length */
    assert_int_equal(creds_http_hosts_parse(&h, "a.example.com\0,b", 17), AL_EINVAL);
    al_strlist_free(&h);
    char many[2048] = "";
    for (int i = 0; i <= CREDS_HTTP_HOSTS_MAX; i++) {
        char one[32];
        snprintf(one, sizeof(one), "%sh%d.example.com", i ? "," : "", i);
        strncat(many, one, sizeof(many) - strlen(many) - 1);
    }
    assert_int_equal(creds_http_hosts_parse(&h, many, strlen(many)), AL_EINVAL);
    al_strlist_free(&h);
    /* the given length is the end, not the NUL */
    assert_int_equal(creds_http_hosts_parse(&h, "a.example.com,b.example.com", 13), 0);
    assert_int_equal(h.len, 1);
    al_strlist_free(&h);
    assert_int_equal(creds_http_hosts_parse(&h, "API.example.com:8443,*.example.org", 34), 0);
    assert_string_equal(h.items[0], "api.example.com:8443");
    assert_string_equal(h.items[1], "*.example.org");
    al_strlist_free(&h);
}

static void seal_round_trip(void **state)
{
    creds_store *s = NULL, *other = NULL;
    char *sealed = NULL;
    unsigned char *plain = NULL;
    size_t plen = 0;
    unlink(store_path);
    assert_int_equal(creds_store_open(&s, store_path, key_path), 0);
    assert_int_equal(creds_store_seal(&sealed, s, "ca:s_1", "-----BEGIN KEY-----x", 20), 0);
    assert_non_null(strstr(sealed, "alks1."));
    assert_null(strstr(sealed, "BEGIN"));
    assert_int_equal(creds_store_unseal(&plain, &plen, s, "ca:s_1", sealed, strlen(sealed)), 0);
    assert_int_equal(plen, 20);
    assert_memory_equal(plain, "-----BEGIN KEY-----x", 20);
    free(plain);
    /* another session's aad, a flipped byte, truncations, junk */
    assert_int_equal(creds_store_unseal(&plain, &plen, s, "ca:s_2", sealed, strlen(sealed)),
                     AL_EAUTH);
    size_t n = strlen(sealed);
    for (size_t i = 6; i < n; i++) {
        char saved = sealed[i];
        sealed[i] = saved == 'A' ? 'B' : 'A';
        assert_true(creds_store_unseal(&plain, &plen, s, "ca:s_1", sealed, n) < 0);
        sealed[i] = saved;
    }
    for (size_t i = 0; i < n; i++)
        assert_true(creds_store_unseal(&plain, &plen, s, "ca:s_1", sealed, i) < 0);
    assert_int_equal(creds_store_unseal(&plain, &plen, s, "ca:s_1", "alks1.", 6), AL_EINVAL);
    assert_int_equal(creds_store_unseal(&plain, &plen, s, "ca:s_1", "alks1.!!!!", 10), AL_EINVAL);
    assert_int_equal(creds_store_unseal(&plain, &plen, s, "ca:s_1", "xyz", 3), AL_EINVAL);
    /* another master key */
    char okey[300];
    snprintf(okey, sizeof(okey), "%s/other.key", dir);
    unlink(okey);
    assert_int_equal(creds_key_generate(okey), 0);
    char ostore[300];
    snprintf(ostore, sizeof(ostore), "%s/none", dir);
    assert_int_equal(creds_store_open(&other, ostore, okey), 0);
    assert_int_equal(creds_store_unseal(&plain, &plen, other, "ca:s_1", sealed, n), AL_EAUTH);
    creds_store_free(other);
    free(sealed);
    creds_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_and_lookup),
        cmocka_unit_test(tampered_file_refused),
        cmocka_unit_test(loose_permissions_refused),
        cmocka_unit_test(reload_all_or_nothing),
        cmocka_unit_test(http_secrets),
        cmocka_unit_test(http_names_values_hosts),
        cmocka_unit_test(seal_round_trip),
        cmocka_unit_test(github_time),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
