/* The GitHub webhook's parsers (airlockd/api/ghhook.h) and the config's
 * "forge" and "hooks" sections (core/forgecfg.h), on good and malformed
 * input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlockd/api/ghhook.h"
#include "airlockd/core/config.h"

#include "airlock/error.h"

/* GitHub's documented example (docs.github.com, "Validating webhook
 * deliveries"). */
#define DOC_SECRET "It's a Secret to Everybody"
#define DOC_BODY   "Hello, World!"
#define DOC_SIG    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

static int verify(const char *hdr, const char *secret, const char *body)
{
    return ald_ghhook_sig_verify(hdr, hdr ? strlen(hdr) : 0, secret, secret ? strlen(secret) : 0,
                                 body, strlen(body));
}

static void test_sig(void **state)
{
    (void)state;
    assert_int_equal(verify(DOC_SIG, DOC_SECRET, DOC_BODY), 0);
    /* upper-case hex is the same digest */
    char upper[80];
    snprintf(upper, sizeof(upper), "%s", DOC_SIG);
    for (char *p = upper + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(verify(upper, DOC_SECRET, DOC_BODY), 0);
    /* the wrong body, secret, one digit off */
    assert_int_equal(verify(DOC_SIG, DOC_SECRET, "Hello, World?"), AL_EAUTH);
    assert_int_equal(verify(DOC_SIG, "another secret", DOC_BODY), AL_EAUTH);
    char off[80];
    snprintf(off, sizeof(off), "%s", DOC_SIG);
    off[strlen(off) - 1] = '8';
    assert_int_equal(verify(off, DOC_SECRET, DOC_BODY), AL_EAUTH);
    /* malformed headers */
    static const char *const bad[] = {
        "",
        "sha256=",
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d",
        "SHA256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e177",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g",
        "sha256= 57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17 ",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++)
        assert_int_equal(verify(bad[i], DOC_SECRET, DOC_BODY), AL_EAUTH);
    assert_int_equal(verify(NULL, DOC_SECRET, DOC_BODY), AL_EAUTH);
    /* a header with a NUL inside is compared by its length, not strlen */
    char nul[72];
    memcpy(nul, DOC_SIG, 71);
    nul[40] = '\0';
    assert_int_equal(
        ald_ghhook_sig_verify(nul, 71, DOC_SECRET, strlen(DOC_SECRET), DOC_BODY, strlen(DOC_BODY)),
        AL_EAUTH);
    /* no secret: never a match */
    assert_int_equal(verify(DOC_SIG, NULL, DOC_BODY), AL_EINVAL);
    assert_int_equal(verify(DOC_SIG, "", DOC_BODY), AL_EINVAL);
}

static int parse(struct ald_ghhook_comment *c, char *why, const char *event, const char *json)
{
    return ald_ghhook_parse(c, why, 256, event, json, strlen(json), "/airlock");
}

#define ISSUE_COMMENT(body, extra)                                                                 \
    "{\"action\":\"created\",\"issue\":{\"number\":42" extra "},"                                  \
    "\"comment\":{\"id\":99,\"body\":" body ",\"user\":{\"login\":\"octocat\"},"                   \
    "\"author_association\":\"OWNER\",\"html_url\":\"https://github.com/o/r/issues/42#c1\"},"      \
    "\"repository\":{\"full_name\":\"Octo/Widget\"}}"

static void test_parse_good(void **state)
{
    (void)state;
    struct ald_ghhook_comment c;
    char why[256];
    assert_int_equal(
        parse(&c, why, "issue_comment", ISSUE_COMMENT("\"/airlock fix the test\"", "")),
        ALD_GHHOOK_START);
    assert_string_equal(c.repo, "Octo/Widget");
    assert_string_equal(c.author, "octocat");
    assert_string_equal(c.association, "OWNER");
    assert_string_equal(c.url, "https://github.com/o/r/issues/42#c1");
    assert_int_equal(c.number, 42);
    assert_int_equal(c.comment_id, 99);
    assert_int_equal(c.is_pr, 0);
    assert_string_equal(c.text, "/airlock fix the test");
    assert_string_equal(c.args, "fix the test");
    ald_ghhook_comment_free(&c);
    /* a pull request's conversation comment; white space around the command */
    assert_int_equal(parse(&c, why, "issue_comment",
                           ISSUE_COMMENT("\"\\n  /airlock\\n\\tgo\"", ",\"pull_request\":{}")),
                     ALD_GHHOOK_START);
    assert_int_equal(c.is_pr, 1);
    assert_string_equal(c.args, "go");
    ald_ghhook_comment_free(&c);
    /* the command alone */
    assert_int_equal(parse(&c, why, "issue_comment", ISSUE_COMMENT("\"/airlock\"", "")),
                     ALD_GHHOOK_START);
    assert_string_equal(c.args, "");
    ald_ghhook_comment_free(&c);
    /* a review comment on a pull request's diff */
    assert_int_equal(
        parse(&c, why, "pull_request_review_comment",
              "{\"action\":\"created\",\"pull_request\":{\"number\":9},\"comment\":{\"body\":"
              "\"/airlock x\",\"user\":{\"login\":\"a\"},\"author_association\":\"MEMBER\"},"
              "\"repository\":{\"full_name\":\"o/r\"}}"),
        ALD_GHHOOK_START);
    assert_int_equal(c.number, 9);
    assert_int_equal(c.comment_id, 0);
    assert_int_equal(c.is_pr, 1);
    assert_string_equal(c.url, "");
    ald_ghhook_comment_free(&c);
}

static void test_parse_ignored(void **state)
{
    (void)state;
    struct ald_ghhook_comment c;
    char why[256];
    /* other events */
    assert_int_equal(parse(&c, why, "push", "{}"), ALD_GHHOOK_IGNORE);
    assert_non_null(strstr(why, "push"));
    assert_int_equal(parse(&c, why, NULL, "{}"), ALD_GHHOOK_IGNORE);
    assert_int_equal(parse(&c, why, "issues", ISSUE_COMMENT("\"/airlock\"", "")),
                     ALD_GHHOOK_IGNORE);
    /* other actions */
    assert_int_equal(parse(&c, why, "issue_comment",
                           "{\"action\":\"edited\",\"comment\":{\"body\":\"/airlock\"}}"),
                     ALD_GHHOOK_IGNORE);
    assert_int_equal(parse(&c, why, "issue_comment",
                           "{\"action\":\"deleted\",\"comment\":{\"body\":\"/airlock\"}}"),
                     ALD_GHHOOK_IGNORE);
    /* comments that do not start with the command */
    static const char *const texts[] = {
        "\"fix it\"", "\"please /airlock fix\"", "\"/airlockd fix\"", "\"/airlock-x\"",
        "\"\"",       "\"/AIRLOCK fix\"",        "\"/airloc\"",       NULL};
    for (size_t i = 0; texts[i]; i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"action\":\"created\",\"issue\":{\"number\":1},\"comment\":{\"body\":%s},"
                 "\"repository\":{\"full_name\":\"o/r\"}}",
                 texts[i]);
        assert_int_equal(parse(&c, why, "issue_comment", json), ALD_GHHOOK_IGNORE);
        assert_null(c.text);
    }
    /* a NUL inside the comment: never passed on (the JSON is refused) */
    assert_int_equal(parse(&c, why, "issue_comment", ISSUE_COMMENT("\"/airlock a\\u0000b\"", "")),
                     AL_EINVAL);
    assert_null(c.text);
    /* longer than GitHub allows */
    size_t n = ALD_GHHOOK_TEXT_MAX + 16;
    char *big = malloc(n + 300);
    assert_non_null(big);
    int w = snprintf(big, 300,
                     "{\"action\":\"created\",\"issue\":{\"number\":1},\"repository\":{\"full_"
                     "name\":\"o/r\"},\"comment\":{\"body\":\"/airlock ");
    memset(big + w, 'a', n);
    memcpy(big + w + n, "\"}}", 4);
    assert_int_equal(parse(&c, why, "issue_comment", big), ALD_GHHOOK_IGNORE);
    free(big);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    struct ald_ghhook_comment c;
    char why[256];
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "\"created\"",
        "{\"action\":\"created\"",
        "{\"action\":\"created\",\"action\":\"created\"}",
        "{}",
        "{\"action\":7}",
        /* no repository or comment */
        "{\"action\":\"created\",\"issue\":{\"number\":1},\"comment\":{\"body\":\"/airlock\"}}",
        "{\"action\":\"created\",\"issue\":{\"number\":1},\"repository\":{\"full_name\":\"o/r\"}}",
        "{\"action\":\"created\",\"issue\":{\"number\":1},\"comment\":{\"body\":5},"
        "\"repository\":{\"full_name\":\"o/r\"}}",
        "{\"action\":\"created\",\"issue\":{\"number\":1},\"comment\":{\"body\":\"/airlock\"},"
        "\"repository\":{\"full_name\":[]}}",
        "{\"action\":\"created\",\"issue\":{\"number\":1},\"comment\":{\"body\":\"/airlock\"},"
        "\"repository\":{\"full_name\":\"o/\\u0000r\"}}",
        /* no number, or a bad one */
        "{\"action\":\"created\",\"comment\":{\"body\":\"/airlock\"},\"repository\":{\"full_name\":"
        "\"o/r\"}}",
        "{\"action\":\"created\",\"issue\":{\"number\":\"1\"},\"comment\":{\"body\":\"/airlock\"},"
        "\"repository\":{\"full_name\":\"o/r\"}}",
        "{\"action\":\"created\",\"issue\":{\"number\":0},\"comment\":{\"body\":\"/airlock\"},"
        "\"repository\":{\"full_name\":\"o/r\"}}",
        "{\"action\":\"created\",\"issue\":{\"number\":-5},\"comment\":{\"body\":\"/airlock\"},"
        "\"repository\":{\"full_name\":\"o/r\"}}",
        /* a comment id that is not a positive integer */
        "{\"action\":\"created\",\"issue\":{\"number\":1},\"comment\":{\"id\":\"7\",\"body\":"
        "\"/airlock\"},\"repository\":{\"full_name\":\"o/r\"}}",
        "{\"action\":\"created\",\"issue\":{\"number\":1},\"comment\":{\"id\":0,\"body\":"
        "\"/airlock\"},\"repository\":{\"full_name\":\"o/r\"}}",
        "{\"action\":\"created\",\"issue\":{\"number\":1},\"comment\":{\"id\":1.5,\"body\":"
        "\"/airlock\"},\"repository\":{\"full_name\":\"o/r\"}}",
        /* a login that does not fit */
        "{\"action\":\"created\",\"issue\":{\"number\":1},\"comment\":{\"body\":\"/airlock\","
        "\"user\":{\"login\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}},\"repository\":{"
        "\"full_name\":\"o/r\"}}",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        assert_int_equal(parse(&c, why, "issue_comment", bad[i]), AL_EINVAL);
        assert_true(why[0] != '\0');
        assert_null(c.text);
    }
    /* a NULL body of length 0 */
    assert_int_equal(ald_ghhook_parse(&c, why, sizeof(why), "issue_comment", NULL, 0, "/airlock"),
                     AL_EINVAL);
    /* a body cut short of its length: only `len` bytes are read */
    const char *full = ISSUE_COMMENT("\"/airlock go\"", "");
    assert_int_equal(
        ald_ghhook_parse(&c, why, sizeof(why), "issue_comment", full, strlen(full) - 1, "/airlock"),
        AL_EINVAL);
}

static int64_t when(const char *s)
{
    int64_t t = -1;
    return ald_ghhook_time_parse(s, strlen(s), &t) == 0 ? t : -1;
}

static void test_time(void **state)
{
    (void)state;
    assert_int_equal(when("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(when("2026-12-07T18:00:00Z"), 1796666400);
    assert_int_equal(when("2024-02-29T12:30:15Z"), 1709209815);
    assert_int_equal(when("2026-12-07T18:00:00.123Z"), 1796666400);
    assert_int_equal(when("2026-12-07T20:00:00+02:00"), 1796666400);
    assert_int_equal(when("2026-12-07T13:30:00-04:30"), 1796666400);
    static const char *const bad[] = {
        "",
        "2026-12-07",
        "2026-12-07 18:00:00Z",
        "2026-12-07T18:00:00",
        "2026-12-07T18:00:00ZZ",
        "2026-13-07T18:00:00Z",
        "2026-02-30T18:00:00Z",
        "2026-02-29T18:00:00Z",
        "2026-12-07T24:00:00Z",
        "2026-12-07T18:60:00Z",
        "1969-12-31T23:59:59Z",
        "2026-12-07T18:00:00.Z",
        "2026-12-07T18:00:00.1234567890Z",
        "2026-12-07T18:00:00+0200",
        "2026-12-07T18:00:00+24:00",
        "+026-12-07T18:00:00Z",
        "2026-12-07T18:00:00Z\n",
        "yesterday",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++)
        assert_int_equal(when(bad[i]), -1);
    /* only `len` bytes are read */
    int64_t t;
    assert_int_equal(ald_ghhook_time_parse("2026-12-07T18:00:00Z", 19, &t), AL_EINVAL);
    /* in a comment: comment.created_at, optional, a time when there */
    struct ald_ghhook_comment c;
    char why[256];
    assert_int_equal(parse(&c, why, "issue_comment",
                           "{\"action\":\"created\",\"issue\":{\"number\":1},\"comment\":{\"body\":"
                           "\"/airlock\",\"created_at\":\"2026-12-07T18:00:00Z\"},\"repository\":{"
                           "\"full_name\":\"o/r\"}}"),
                     ALD_GHHOOK_START);
    assert_int_equal(c.created_s, 1796666400);
    ald_ghhook_comment_free(&c);
    assert_int_equal(parse(&c, why, "issue_comment", ISSUE_COMMENT("\"/airlock\"", "")),
                     ALD_GHHOOK_START);
    assert_int_equal(c.created_s, 0);
    ald_ghhook_comment_free(&c);
    static const char *const dates[] = {"\"yesterday\"", "1796666400", "null", NULL};
    for (size_t i = 0; dates[i]; i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"action\":\"created\",\"issue\":{\"number\":1},\"comment\":{\"body\":"
                 "\"/airlock\",\"created_at\":%s},\"repository\":{\"full_name\":\"o/r\"}}",
                 dates[i]);
        assert_int_equal(parse(&c, why, "issue_comment", body), AL_EINVAL);
        assert_null(c.text);
    }
}

static int load(struct ald_config *cfg, const char *json)
{
    ald_config_init(cfg);
    return ald_config_load_buffer(cfg, "t.json", json, strlen(json));
}

static void test_config(void **state)
{
    (void)state;
    struct ald_config cfg;
    const char *ca;
    /* defaults: github.com's API, hooks off */
    assert_int_equal(load(&cfg, "{}"), 0);
    assert_string_equal(ald_forgecfg_api(&cfg.forge, "github.com", &ca), "https://api.github.com");
    assert_string_equal(ald_forgecfg_api(&cfg.forge, "GitHub.COM", &ca), "https://api.github.com");
    assert_null(ca);
    assert_null(ald_forgecfg_api(&cfg.forge, "gitlab.com", &ca));
    assert_int_equal(cfg.forge.gh_enabled, 0);
    ald_config_free(&cfg);

    assert_int_equal(
        load(&cfg, "{\"forge\":{\"hosts\":{\"GHE.example.com\":{\"api\":"
                   "\"https://ghe.example.com/api/v3/\",\"ca_file\":\"/etc/ca.pem\"},"
                   "\"127.0.0.1:8443\":{\"api\":\"https://127.0.0.1:9443\"}}},"
                   "\"hooks\":{\"github\":{\"secret_file\":\"/etc/s\",\"repos\":{\"Octo/Widget\":"
                   "{\"user\":\"alice\",\"job\":{\"command\":[\"true\"]}}}}}}"),
        0);
    assert_string_equal(ald_forgecfg_api(&cfg.forge, "ghe.example.com", &ca),
                        "https://ghe.example.com/api/v3");
    assert_string_equal(ca, "/etc/ca.pem");
    assert_string_equal(ald_forgecfg_api(&cfg.forge, "127.0.0.1:8443", &ca),
                        "https://127.0.0.1:9443");
    assert_int_equal(cfg.forge.gh_enabled, 1);
    assert_string_equal(cfg.forge.gh_command, "/airlock");
    assert_string_equal(cfg.forge.gh_host, "github.com");
    assert_int_equal(cfg.forge.gh_associations.len, 3);
    const struct ald_hook_repo *r = ald_forgecfg_repo(&cfg.forge, "octo/WIDGET");
    assert_non_null(r);
    assert_string_equal(r->user, "alice");
    assert_null(ald_forgecfg_repo(&cfg.forge, "octo/other"));
    ald_config_free(&cfg);

    static const char *const bad[] = {
        "{\"forge\":[]}",
        "{\"forge\":{\"x\":1}}",
        "{\"forge\":{\"hosts\":{\"h\":{\"api\":\"http://h\"}}}}",
        "{\"forge\":{\"hosts\":{\"h\":{\"api\":\"https://u:p@h\"}}}}",
        "{\"forge\":{\"hosts\":{\"h\":{\"api\":\"https://h/x?y\"}}}}",
        "{\"forge\":{\"hosts\":{\"h\":{\"api\":\"https://\"}}}}",
        "{\"forge\":{\"hosts\":{\"h\":{\"api\":\"https://h\",\"ca_file\":\"rel\"}}}}",
        "{\"forge\":{\"hosts\":{\"h\":{\"api\":\"https://h\",\"token\":\"x\"}}}}",
        "{\"forge\":{\"hosts\":{\"h/x\":{\"api\":\"https://h\"}}}}",
        "{\"hooks\":{\"gitlab\":{}}}",
        "{\"hooks\":{\"github\":{}}}",
        "{\"hooks\":{\"github\":{\"secret_file\":\"rel\"}}}",
        "{\"hooks\":{\"github\":{\"secret_file\":\"/s\",\"secret\":\"x\"}}}",
        "{\"hooks\":{\"github\":{\"secret_file\":\"/s\",\"command\":\"/a b\"}}}",
        "{\"hooks\":{\"github\":{\"secret_file\":\"/s\",\"associations\":[\"owner\"]}}}",
        "{\"hooks\":{\"github\":{\"secret_file\":\"/s\",\"repos\":{\"norepo\":{}}}}}",
        "{\"hooks\":{\"github\":{\"secret_file\":\"/s\",\"repos\":{\"o/"
        "r\":{\"user\":\"alice\"}}}}}",
        "{\"hooks\":{\"github\":{\"secret_file\":\"/s\",\"repos\":{\"o/r\":{\"user\":\"Al ice\","
        "\"job\":{}}}}}}",
        "{\"hooks\":{\"github\":{\"secret_file\":\"/s\",\"repos\":{\"o/r\":{\"user\":\"a\","
        "\"job\":{},\"x\":1}}}}}",
        "{\"hooks\":{\"github\":{\"secret_file\":\"/s\",\"repos\":{\"o/r\":{\"user\":\"a\","
        "\"job\":{}},\"O/R\":{\"user\":\"a\",\"job\":{}}}}}}",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        int err = load(&cfg, bad[i]);
        if (err != AL_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        ald_config_free(&cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sig),           cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_ignored), cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_config),        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
