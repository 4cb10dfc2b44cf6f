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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_and_lookup),
        cmocka_unit_test(tampered_file_refused),
        cmocka_unit_test(loose_permissions_refused),
        cmocka_unit_test(reload_all_or_nothing),
        cmocka_unit_test(github_time),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
