#include "airlock/gp_hdrcheck.h"
#include "airlock/error.h"

#include <stdio.h>
#include <string.h>

/* Character classes in ASCII, whatever the locale. */
static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static char to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* a[0..alen) equals the NUL-terminated b, ASCII case aside. */
static int equal_fold(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (to_lower(a[i]) != to_lower(b[i]))
            return 0;
    return 1;
}

int gp_hdr_printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* ---- repository paths ---- */

/* A segment of [A-Za-z0-9._-] (the host also ':'), not starting with '.',
 * 1..max bytes. */
static int segment_valid(const char *s, size_t len, size_t max, int host)
{
    if (len == 0 || len > max || s[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!(is_alnum(c) || c == '.' || c == '-' || c == '_' || (host && c == ':')))
            return 0;
    }
    return 1;
}

/* Splits s[0..len) at its first two slashes into host, owner and the rest;
 * fills out->host and out->owner. Returns the rest's start, or NULL. */
static const char *split_host_owner(struct gp_route *out, const char *s, size_t len)
{
    const char *end = s + len;
    const char *s1 = memchr(s, '/', len);
    if (!s1)
        return NULL;
    const char *s2 = memchr(s1 + 1, '/', (size_t)(end - s1 - 1));
    if (!s2)
        return NULL;
    size_t hlen = (size_t)(s1 - s), olen = (size_t)(s2 - s1 - 1);
    if (!segment_valid(s, hlen, GP_HOST_MAX, 1) || !segment_valid(s1 + 1, olen, GP_SEGMENT_MAX, 0))
        return NULL;
    for (size_t i = 0; i < hlen; i++)
        out->host[i] = to_lower(s[i]);
    out->host[hlen] = '\0';
    memcpy(out->owner, s1 + 1, olen);
    out->owner[olen] = '\0';
    return s2 + 1;
}

static int name_set(struct gp_route *out, const char *s, size_t len)
{
    if (!segment_valid(s, len, GP_SEGMENT_MAX, 0))
        return AL_EINVAL;
    memcpy(out->name, s, len);
    out->name[len] = '\0';
    return 0;
}

int gp_route_parse(struct gp_route *out, const char *path, size_t len)
{
    struct gp_route r;
    if (len < 1 || path[0] != '/')
        return al_error_set(AL_EINVAL, "not a repository path");
    const char *end = path + len;
    const char *name = split_host_owner(&r, path + 1, len - 1);
    if (!name)
        return al_error_set(AL_EINVAL, "not a repository path");
    const char *slash = memchr(name, '/', (size_t)(end - name));
    if (!slash || slash - name <= 4 || memcmp(slash - 4, ".git", 4) != 0 ||
        name_set(&r, name, (size_t)(slash - name) - 4) < 0)
        return al_error_set(AL_EINVAL, "not a repository path");
    const char *rest = slash + 1;
    size_t rlen = (size_t)(end - rest);
    if (rlen == 9 && memcmp(rest, "info/refs", 9) == 0)
        r.rest = GP_REST_INFO_REFS;
    else if (rlen == 15 && memcmp(rest, "git-upload-pack", 15) == 0)
        r.rest = GP_REST_UPLOAD_PACK;
    else if (rlen == 16 && memcmp(rest, "git-receive-pack", 16) == 0)
        r.rest = GP_REST_RECEIVE_PACK;
    else
        return al_error_set(AL_ENOTFOUND, "not a smart HTTP request");
    *out = r;
    return 0;
}

int gp_repo_parse(struct gp_route *out, const char *repo, size_t len)
{
    struct gp_route r = *out;
    const char *name = split_host_owner(&r, repo, len);
    if (!name || memchr(name, '/', (size_t)(repo + len - name)) ||
        name_set(&r, name, (size_t)(repo + len - name)) < 0)
        return al_error_set(AL_EINVAL, "not a repository name");
    *out = r;
    return 0;
}

/* ---- headers ---- */

static int key_char(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

static int value_char(char c)
{
    return key_char(c) || c == ',' || c == '+';
}

int gp_hdr_git_protocol_check(const char *v, size_t len)
{
    int versions = 0;
    if (len == 0 || len > GP_GIT_PROTOCOL_MAX)
        return al_error_set(AL_EINVAL, "invalid Git-Protocol header");
    for (size_t at = 0; at <= len;) {
        /* one item: key, then optionally '=' value, up to ':' or the end */
        size_t k = at;
        while (k < len && key_char(v[k]))
            k++;
        if (k == at || !is_alnum(v[at]))
            return al_error_set(AL_EINVAL, "invalid Git-Protocol header");
        size_t e = k;
        if (e < len && v[e] == '=') {
            e++;
            while (e < len && value_char(v[e]))
                e++;
        }
        if (e < len && v[e] != ':')
            return al_error_set(AL_EINVAL, "invalid Git-Protocol header");
        if (k - at == 7 && memcmp(v + at, "version", 7) == 0) {
            /* "version=0", "version=1" or "version=2", once */
            if (versions++ || e - k != 2 || v[k] != '=' || v[k + 1] < '0' || v[k + 1] > '2')
                return al_error_set(AL_EINVAL, "invalid Git-Protocol header");
        }
        if (e == len)
            break;
        at = e + 1; /* after the ':'; an empty item after it fails above */
    }
    return 0;
}

static const char *service_of(enum gp_endpoint ep)
{
    return ep == GP_EP_INFO_REFS_RECEIVE || ep == GP_EP_RECEIVE_PACK ? "receive-pack"
                                                                     : "upload-pack";
}

static int is_post(enum gp_endpoint ep)
{
    return ep == GP_EP_UPLOAD_PACK || ep == GP_EP_RECEIVE_PACK;
}

const char *gp_endpoint_path(enum gp_endpoint ep)
{
    switch (ep) {
    case GP_EP_INFO_REFS_UPLOAD:
        return "info/refs?service=git-upload-pack";
    case GP_EP_INFO_REFS_RECEIVE:
        return "info/refs?service=git-receive-pack";
    case GP_EP_UPLOAD_PACK:
        return "git-upload-pack";
    case GP_EP_RECEIVE_PACK:
        return "git-receive-pack";
    }
    return "";
}

const char *gp_endpoint_accept(enum gp_endpoint ep)
{
    switch (ep) {
    case GP_EP_UPLOAD_PACK:
        return "application/x-git-upload-pack-result";
    case GP_EP_RECEIVE_PACK:
        return "application/x-git-receive-pack-result";
    default:
        return "*/*";
    }
}

const char *gp_endpoint_content_type(enum gp_endpoint ep)
{
    switch (ep) {
    case GP_EP_UPLOAD_PACK:
        return "application/x-git-upload-pack-request";
    case GP_EP_RECEIVE_PACK:
        return "application/x-git-receive-pack-request";
    default:
        return NULL;
    }
}

int gp_hdr_accept_check(const char *v, size_t len, enum gp_endpoint ep)
{
    char alt[64];
    if (len == 0 || equal_fold(v, len, "*/*"))
        return 0;
    /* libgit2 asks for the advertisement by its media type */
    if (!is_post(ep)) {
        int n = snprintf(alt, sizeof(alt), "application/x-git-%s-advertisement", service_of(ep));
        if (n > 0 && (size_t)n < sizeof(alt) && equal_fold(v, len, alt))
            return 0;
    } else if (equal_fold(v, len, gp_endpoint_accept(ep))) {
        return 0;
    }
    return al_error_set(AL_EINVAL, "invalid Accept header");
}

int gp_hdr_content_type_check(const char *v, size_t len, enum gp_endpoint ep)
{
    const char *want = gp_endpoint_content_type(ep);
    if (!want && len == 0)
        return 0;
    if (want && equal_fold(v, len, want))
        return 0;
    return al_error_set(AL_EINVAL, "invalid Content-Type header");
}

int gp_hdr_content_encoding_check(int *out_gzip, const char *v, size_t len)
{
    *out_gzip = 0;
    if (len == 0 || equal_fold(v, len, "identity"))
        return 0;
    if (equal_fold(v, len, "gzip")) {
        *out_gzip = 1;
        return 0;
    }
    return al_error_set(AL_EINVAL, "invalid Content-Encoding header");
}

/* The length of a NUL-terminated field of gp_http_req. */
#define FIELD_LEN(f) strnlen(req->f, sizeof(req->f))

int gp_hdrcheck_request(struct gp_upstream_headers *out, const struct gp_http_req *req,
                        enum gp_endpoint ep)
{
    struct gp_upstream_headers h = {0};
    size_t gp_len = FIELD_LEN(git_protocol);
    int err;
    /* A header sent with an empty value is refused, not taken as absent. */
    if ((req->seen & GP_HDR_GIT_PROTOCOL) &&
        (err = gp_hdr_git_protocol_check(req->git_protocol, gp_len)) < 0)
        return err;
    if ((req->seen & GP_HDR_ACCEPT) &&
        (FIELD_LEN(accept) == 0 || gp_hdr_accept_check(req->accept, FIELD_LEN(accept), ep) < 0))
        return al_error_set(AL_EINVAL, "invalid Accept header");
    if (((req->seen & GP_HDR_CONTENT_TYPE) && FIELD_LEN(content_type) == 0) ||
        gp_hdr_content_type_check(req->content_type, FIELD_LEN(content_type), ep) < 0)
        return al_error_set(AL_EINVAL, is_post(ep) ? "invalid or missing Content-Type header"
                                                   : "invalid Content-Type header");
    if ((req->seen & GP_HDR_CONTENT_ENCODING) &&
        (FIELD_LEN(content_encoding) == 0 ||
         gp_hdr_content_encoding_check(&h.gzip, req->content_encoding,
                                       FIELD_LEN(content_encoding)) < 0 ||
         (h.gzip && !is_post(ep))))
        return al_error_set(AL_EINVAL, "invalid Content-Encoding header");
    memcpy(h.git_protocol, req->git_protocol, gp_len);
    h.git_protocol[gp_len] = '\0';
    h.content_type = gp_endpoint_content_type(ep);
    h.accept = gp_endpoint_accept(ep);
    *out = h;
    return 0;
}
