#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/error.h"
#include "airlock/gp_hdrcheck.h"

static int route(struct gp_route *r, const char *path)
{
    return gp_route_parse(r, path, strlen(path));
}

static void route_parses_smart_http_paths(void **state)
{
    (void)state;
    struct gp_route r;
    assert_int_equal(route(&r, "/git.test/o/r.git/info/refs"), 0);
    assert_string_equal(r.host, "git.test");
    assert_string_equal(r.owner, "o");
    assert_string_equal(r.name, "r");
    assert_int_equal(r.rest, GP_REST_INFO_REFS);
    assert_int_equal(route(&r, "/GitHub.COM:8443/Acme_1/my-App.v2.git/git-upload-pack"), 0);
    assert_string_equal(r.host, "github.com:8443"); /* the host folds case */
    assert_string_equal(r.owner, "Acme_1");         /* owner and name do not */
    assert_string_equal(r.name, "my-App.v2");
    assert_int_equal(r.rest, GP_REST_UPLOAD_PACK);
    assert_int_equal(route(&r, "/h/o/r.git.git/git-receive-pack"), 0);
    assert_string_equal(r.name, "r.git"); /* one ".git" comes off, no more */
    assert_int_equal(r.rest, GP_REST_RECEIVE_PACK);
    /* a repository path with another rest */
    const char *other[] = {"/h/o/r.git/HEAD",
                           "/h/o/r.git/info/refs/",
                           "/h/o/r.git/objects/info/packs",
                           "/h/o/r.git/git-upload-pack/x",
                           "/h/o/r.git/",
                           "/h/o/r.git/info%2Frefs"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_int_equal(route(&r, other[i]), AL_ENOTFOUND);
}

static void route_refuses_other_names(void **state)
{
    (void)state;
    struct gp_route r;
    const char *bad[] = {
        "",
        "/",
        "h/o/r.git/info/refs",
        "/h/o/info/refs",
        "/h/o/r/info/refs",
        "/h/o/.git/info/refs",
        "/h//r.git/info/refs",
        "//o/r.git/info/refs",
        "/h/o/r.git",
        "/h/o/r/extra.git/info/refs",
        /* dot-leading segments */
        "/h/o/.r.git/info/refs",
        "/h/.o/r.git/info/refs",
        "/.h/o/r.git/info/refs",
        "/h/o/..git/info/refs",
        "/h/o/...git/info/refs",
        "/h/../r.git/info/refs",
        /* percent-encoded forms are never decoded, and '%' is refused */
        "/h/o/%2er.git/info/refs",
        "/h/o/%2Er.git/info/refs",
        "/h/o%2Fr.git/info/refs",
        "/h/o%2fx/r.git/info/refs",
        "/h/o/%72.git/info/refs",
        "/h/o/%41pp.git/info/refs",
        "/h/o/r%2egit/info/refs",
        /* outside [A-Za-z0-9._-] */
        "/h/o/r\xc3\xa9.git/info/refs",
        "/h/o/r\xe9.git/info/refs",
        "/h/o/r+x.git/info/refs",
        "/h/o/r x.git/info/refs",
        "/h/o/r\\x.git/info/refs",
        "/h/o:x/r.git/info/refs", /* ':' only in the host */
        "/h/o/r~1.git/info/refs",
        "/h/o/r\t.git/info/refs",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (route(&r, bad[i]) != AL_EINVAL)
            fail_msg("accepted %s", bad[i]);
    /* a NUL inside the length */
    static const char nul[] = "/h/o/r\0x.git/info/refs";
    assert_int_equal(gp_route_parse(&r, nul, sizeof(nul) - 1), AL_EINVAL);
    /* lengths: 127 is the longest owner and name, 255 the longest host */
    char path[1024];
    snprintf(path, sizeof(path), "/h/%0127d/r.git/info/refs", 0);
    assert_int_equal(route(&r, path), 0);
    snprintf(path, sizeof(path), "/h/%0128d/r.git/info/refs", 0);
    assert_int_equal(route(&r, path), AL_EINVAL);
    snprintf(path, sizeof(path), "/h/o/%0127d.git/info/refs", 0);
    assert_int_equal(route(&r, path), 0);
    snprintf(path, sizeof(path), "/h/o/%0128d.git/info/refs", 0);
    assert_int_equal(route(&r, path), AL_EINVAL);
    snprintf(path, sizeof(path), "/%0255d/o/r.git/info/refs", 0);
    assert_int_equal(route(&r, path), 0);
    snprintf(path, sizeof(path), "/%0256d/o/r.git/info/refs", 0);
    assert_int_equal(route(&r, path), AL_EINVAL);
}

static void repo_parse_takes_canonical_names(void **state)
{
    (void)state;
    struct gp_route r = {.rest = GP_REST_UPLOAD_PACK};
    assert_int_equal(gp_repo_parse(&r, "Git.Test/Own/Repo", 17), 0);
    assert_string_equal(r.host, "git.test");
    assert_string_equal(r.owner, "Own");
    assert_string_equal(r.name, "Repo");
    assert_int_equal(r.rest, GP_REST_UPLOAD_PACK);
    const char *bad[] = {"git.test/o",      "git.test/o/r/x", "git.test/o/.r",
                         "git.test//r",     "git.test/o/",    "/o/r",
                         "git.test/o/r%41", "git.test/o/r ",  "git.test/o/\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gp_route before = r;
        if (gp_repo_parse(&r, bad[i], strlen(bad[i])) != AL_EINVAL)
            fail_msg("accepted %s", bad[i]);
        assert_memory_equal(&r, &before, sizeof(r)); /* untouched on failure */
    }
}

static int gp_check(const char *v)
{
    return gp_hdr_git_protocol_check(v, strlen(v));
}

static void git_protocol_grammar(void **state)
{
    (void)state;
    /* what git 2.39 sends, and git's key[=value] items */
    const char *good[] = {"version=2",
                          "version=1",
                          "version=0",
                          "version=2:object-format=sha1",
                          "object-format=sha256:version=2",
                          "agent",
                          "a=b:c",
                          "k=",
                          "x.y-z_1=A,b+c"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (gp_check(good[i]) != 0)
            fail_msg("refused %s", good[i]);
    const char *bad[] = {
        "",
        "version=3",
        "version=22",
        "version=",
        "version",
        "version=2:version=1",
        "version=2:version=2",
        ":version=2",
        "version=2:",
        "version=2::x=1",
        "version=2;x=1",
        "version=2 x=1",
        "version=2,version=1",
        " version=2",
        "version=2\n",
        "version=2\r",
        "version=2\r\nX-Injected: 1",
        "version=2\n\nGET /pub/evil.git/info/refs HTTP/1.1\nHost: x\n",
        "version=2\t",
        "version=2\x7f",
        "=2",
        "-x=1",
        ".x=1",
        "x=a/b",
        "x=a=b",
        "x=a b",
        "x=a\"b",
        "x=\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (gp_check(bad[i]) != AL_EINVAL)
            fail_msg("accepted case %zu", i);
    assert_string_equal(al_error_last(), "invalid Git-Protocol header");
    assert_int_equal(gp_hdr_git_protocol_check("version=2\0", 10), AL_EINVAL);
    char longv[GP_GIT_PROTOCOL_MAX + 2];
    memset(longv, 'a', sizeof(longv));
    memcpy(longv, "version=2:x=", 12);
    assert_int_equal(gp_hdr_git_protocol_check(longv, GP_GIT_PROTOCOL_MAX), 0);
    assert_int_equal(gp_hdr_git_protocol_check(longv, GP_GIT_PROTOCOL_MAX + 1), AL_EINVAL);
}

static int accept_check(const char *v, enum gp_endpoint ep)
{
    return gp_hdr_accept_check(v, strlen(v), ep);
}

static void accept_per_endpoint(void **state)
{
    (void)state;
    /* git 2.39 and curl send the wildcard for GET info/refs, libgit2 the
     * advertisement type; POSTs ask for the endpoint's result type */
    assert_int_equal(accept_check("*/*", GP_EP_INFO_REFS_UPLOAD), 0);
    assert_int_equal(accept_check("", GP_EP_INFO_REFS_UPLOAD), 0);
    assert_int_equal(
        accept_check("application/x-git-upload-pack-advertisement", GP_EP_INFO_REFS_UPLOAD), 0);
    assert_int_equal(
        accept_check("application/x-git-receive-pack-advertisement", GP_EP_INFO_REFS_RECEIVE), 0);
    assert_int_equal(accept_check("application/x-git-upload-pack-result", GP_EP_UPLOAD_PACK), 0);
    assert_int_equal(accept_check("Application/X-Git-Upload-Pack-Result", GP_EP_UPLOAD_PACK), 0);
    assert_int_equal(accept_check("application/x-git-receive-pack-result", GP_EP_RECEIVE_PACK), 0);
    assert_int_equal(accept_check("*/*", GP_EP_RECEIVE_PACK), 0);
    /* another endpoint's type, anything else, anything around it */
    assert_int_equal(
        accept_check("application/x-git-receive-pack-advertisement", GP_EP_INFO_REFS_UPLOAD),
        AL_EINVAL);
    assert_int_equal(accept_check("application/x-git-receive-pack-result", GP_EP_UPLOAD_PACK),
                     AL_EINVAL);
    assert_int_equal(accept_check("application/x-git-upload-pack-result", GP_EP_INFO_REFS_UPLOAD),
                     AL_EINVAL);
    assert_int_equal(accept_check("text/html", GP_EP_UPLOAD_PACK), AL_EINVAL);
    assert_int_equal(accept_check("*/*, text/html", GP_EP_INFO_REFS_UPLOAD), AL_EINVAL);
    assert_int_equal(accept_check("*/*\r\nX: y", GP_EP_INFO_REFS_UPLOAD), AL_EINVAL);
    assert_int_equal(accept_check("*/* ", GP_EP_INFO_REFS_UPLOAD), AL_EINVAL);
    assert_int_equal(accept_check("application/x-git-upload-pack-result\n", GP_EP_UPLOAD_PACK),
                     AL_EINVAL);
    assert_string_equal(al_error_last(), "invalid Accept header");
}

static void content_type_and_encoding(void **state)
{
    (void)state;
    const char *up = "application/x-git-upload-pack-request";
    const char *rp = "application/x-git-receive-pack-request";
    assert_int_equal(gp_hdr_content_type_check(up, strlen(up), GP_EP_UPLOAD_PACK), 0);
    assert_int_equal(gp_hdr_content_type_check(rp, strlen(rp), GP_EP_RECEIVE_PACK), 0);
    assert_int_equal(gp_hdr_content_type_check("APPLICATION/x-git-upload-pack-request", strlen(up),
                                               GP_EP_UPLOAD_PACK),
                     0);
    assert_int_equal(gp_hdr_content_type_check(rp, strlen(rp), GP_EP_UPLOAD_PACK), AL_EINVAL);
    assert_int_equal(gp_hdr_content_type_check(up, strlen(up), GP_EP_RECEIVE_PACK), AL_EINVAL);
    assert_int_equal(gp_hdr_content_type_check("", 0, GP_EP_UPLOAD_PACK), AL_EINVAL);
    assert_int_equal(gp_hdr_content_type_check(up, strlen(up) - 1, GP_EP_UPLOAD_PACK), AL_EINVAL);
    assert_int_equal(
        gp_hdr_content_type_check("application/x-www-form-urlencoded", 33, GP_EP_UPLOAD_PACK),
        AL_EINVAL);
    assert_int_equal(gp_hdr_content_type_check("", 0, GP_EP_INFO_REFS_UPLOAD), 0);
    assert_int_equal(gp_hdr_content_type_check(up, strlen(up), GP_EP_INFO_REFS_UPLOAD), AL_EINVAL);
    int gzip = -1;
    assert_int_equal(gp_hdr_content_encoding_check(&gzip, "", 0), 0);
    assert_int_equal(gzip, 0);
    assert_int_equal(gp_hdr_content_encoding_check(&gzip, "gzip", 4), 0);
    assert_int_equal(gzip, 1);
    assert_int_equal(gp_hdr_content_encoding_check(&gzip, "GZip", 4), 0);
    assert_int_equal(gzip, 1);
    assert_int_equal(gp_hdr_content_encoding_check(&gzip, "identity", 8), 0);
    assert_int_equal(gzip, 0);
    const char *bad[] = {"br", "deflate", "gzip, gzip", "x-gzip", "gzip\r", "gzip\n\nGET", "gzi"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(gp_hdr_content_encoding_check(&gzip, bad[i], strlen(bad[i])), AL_EINVAL);
    assert_int_equal(gp_hdr_content_encoding_check(&gzip, "gzip\0", 5), AL_EINVAL);
}

static void endpoint_strings_are_printable(void **state)
{
    (void)state;
    for (int ep = GP_EP_INFO_REFS_UPLOAD; ep <= GP_EP_RECEIVE_PACK; ep++) {
        const char *s[] = {gp_endpoint_path(ep), gp_endpoint_accept(ep),
                           gp_endpoint_content_type(ep)};
        for (size_t i = 0; i < 3; i++)
            assert_true(!s[i] || gp_hdr_printable(s[i], strlen(s[i])));
    }
    assert_string_equal(gp_endpoint_path(GP_EP_INFO_REFS_RECEIVE),
                        "info/refs?service=git-receive-pack");
    assert_null(gp_endpoint_content_type(GP_EP_INFO_REFS_UPLOAD));
    assert_true(gp_hdr_printable(" ~", 2));
    for (int c = 0; c < 256; c++) {
        char b = (char)c;
        assert_int_equal(gp_hdr_printable(&b, 1), c >= 0x20 && c <= 0x7e);
    }
}

static void request_check_fills_what_goes_upstream(void **state)
{
    (void)state;
    struct gp_http_req req;
    struct gp_upstream_headers h;
    memset(&req, 0, sizeof(req));
    /* a GET with nothing to check */
    assert_int_equal(gp_hdrcheck_request(&h, &req, GP_EP_INFO_REFS_UPLOAD), 0);
    assert_null(h.content_type);
    assert_string_equal(h.accept, "*/*");
    assert_string_equal(h.git_protocol, "");
    assert_false(h.gzip);
    /* a POST as git sends it: the fixed strings go upstream */
    snprintf(req.content_type, sizeof(req.content_type), "APPLICATION/X-GIT-UPLOAD-PACK-REQUEST");
    snprintf(req.accept, sizeof(req.accept), "*/*");
    snprintf(req.git_protocol, sizeof(req.git_protocol), "version=2");
    snprintf(req.content_encoding, sizeof(req.content_encoding), "GZIP");
    req.seen = GP_HDR_CONTENT_TYPE | GP_HDR_ACCEPT | GP_HDR_GIT_PROTOCOL | GP_HDR_CONTENT_ENCODING;
    assert_int_equal(gp_hdrcheck_request(&h, &req, GP_EP_UPLOAD_PACK), 0);
    assert_string_equal(h.content_type, "application/x-git-upload-pack-request");
    assert_string_equal(h.accept, "application/x-git-upload-pack-result");
    assert_string_equal(h.git_protocol, "version=2");
    assert_true(h.gzip);
    /* each header wrong in turn: refused, named */
    struct {
        unsigned bit;
        char *field;
        size_t cap;
        const char *value;
        enum gp_endpoint ep;
        const char *named;
    } cases[] = {
        {GP_HDR_GIT_PROTOCOL, req.git_protocol, sizeof(req.git_protocol), "version=2\nX: y",
         GP_EP_UPLOAD_PACK, "Git-Protocol"},
        {GP_HDR_GIT_PROTOCOL, req.git_protocol, sizeof(req.git_protocol), "", GP_EP_UPLOAD_PACK,
         "Git-Protocol"},
        {GP_HDR_ACCEPT, req.accept, sizeof(req.accept), "", GP_EP_UPLOAD_PACK, "Accept"},
        {GP_HDR_ACCEPT, req.accept, sizeof(req.accept), "text/html", GP_EP_UPLOAD_PACK, "Accept"},
        {GP_HDR_CONTENT_TYPE, req.content_type, sizeof(req.content_type), "", GP_EP_UPLOAD_PACK,
         "Content-Type"},
        {GP_HDR_CONTENT_TYPE, req.content_type, sizeof(req.content_type),
         "application/x-git-receive-pack-request", GP_EP_UPLOAD_PACK, "Content-Type"},
        {GP_HDR_CONTENT_ENCODING, req.content_encoding, sizeof(req.content_encoding), "",
         GP_EP_UPLOAD_PACK, "Content-Encoding"},
        {GP_HDR_CONTENT_ENCODING, req.content_encoding, sizeof(req.content_encoding), "br",
         GP_EP_UPLOAD_PACK, "Content-Encoding"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gp_http_req r = req;
        char *field = (char *)&r + (cases[i].field - (char *)&req);
        snprintf(field, cases[i].cap, "%s", cases[i].value);
        assert_int_equal(gp_hdrcheck_request(&h, &r, cases[i].ep), AL_EINVAL);
        if (!strstr(al_error_last(), cases[i].named))
            fail_msg("case %zu: '%s' does not name %s", i, al_error_last(), cases[i].named);
    }
    /* a POST without Content-Type; a GET with one, or with a gzip body */
    struct gp_http_req r = req;
    r.seen &= ~GP_HDR_CONTENT_TYPE;
    r.content_type[0] = '\0';
    assert_int_equal(gp_hdrcheck_request(&h, &r, GP_EP_RECEIVE_PACK), AL_EINVAL);
    assert_non_null(strstr(al_error_last(), "Content-Type"));
    memset(&r, 0, sizeof(r));
    snprintf(r.content_type, sizeof(r.content_type), "application/x-git-upload-pack-request");
    r.seen = GP_HDR_CONTENT_TYPE;
    assert_int_equal(gp_hdrcheck_request(&h, &r, GP_EP_INFO_REFS_UPLOAD), AL_EINVAL);
    memset(&r, 0, sizeof(r));
    snprintf(r.content_encoding, sizeof(r.content_encoding), "gzip");
    r.seen = GP_HDR_CONTENT_ENCODING;
    assert_int_equal(gp_hdrcheck_request(&h, &r, GP_EP_INFO_REFS_UPLOAD), AL_EINVAL);
    snprintf(r.content_encoding, sizeof(r.content_encoding), "identity");
    assert_int_equal(gp_hdrcheck_request(&h, &r, GP_EP_INFO_REFS_UPLOAD), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(route_parses_smart_http_paths),
        cmocka_unit_test(route_refuses_other_names),
        cmocka_unit_test(repo_parse_takes_canonical_names),
        cmocka_unit_test(git_protocol_grammar),
        cmocka_unit_test(accept_per_endpoint),
        cmocka_unit_test(content_type_and_encoding),
        cmocka_unit_test(endpoint_strings_are_printable),
        cmocka_unit_test(request_check_fills_what_goes_upstream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
