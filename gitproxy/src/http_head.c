#include "airlock/gp_http_head.h"
#include "airlock/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void copy_value(char *dst, size_t cap, const char *v, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static int parse_header(struct gp_http_req *req, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line)
        return al_error_set(AL_EINVAL, "malformed header");
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
#define HDR(name) (nlen == sizeof(name) - 1 && strncasecmp(line, name, nlen) == 0)
    if (HDR("Authorization")) {
        if (vlen >= sizeof(req->authorization))
            return al_error_set(AL_ETOOBIG, "Authorization header too long");
        copy_value(req->authorization, sizeof(req->authorization), v, vlen);
    } else if (HDR("Content-Type")) {
        copy_value(req->content_type, sizeof(req->content_type), v, vlen);
    } else if (HDR("Content-Encoding")) {
        copy_value(req->content_encoding, sizeof(req->content_encoding), v, vlen);
    } else if (HDR("Git-Protocol")) {
        copy_value(req->git_protocol, sizeof(req->git_protocol), v, vlen);
    } else if (HDR("Accept")) {
        copy_value(req->accept, sizeof(req->accept), v, vlen);
    } else if (HDR("Content-Length")) {
        char num[24];
        char *end;
        if (vlen == 0 || vlen >= sizeof(num) || req->content_length >= 0)
            return al_error_set(AL_EINVAL, "bad Content-Length");
        copy_value(num, sizeof(num), v, vlen);
        errno = 0;
        long long n = strtoll(num, &end, 10);
        if (*end || errno || n < 0 || n > (1ll << 50) || num[0] < '0' || num[0] > '9')
            return al_error_set(AL_EINVAL, "bad Content-Length");
        req->content_length = n;
    } else if (HDR("Transfer-Encoding")) {
        if (vlen == 7 && strncasecmp(v, "chunked", 7) == 0)
            req->chunked = 1;
        else
            return al_error_set(AL_EINVAL, "unsupported Transfer-Encoding");
    } else if (HDR("Expect")) {
        if (vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)
            req->expect_continue = 1;
    }
#undef HDR
    return 0;
}

int gp_http_head_parse(struct gp_http_req *req, const char *p, size_t head_len)
{
    memset(req, 0, sizeof(*req));
    req->content_length = -1;
    if (head_len > GP_HTTP_HEAD_MAX)
        return al_error_set(AL_ETOOBIG, "request head too large");
    if (head_len < 4 || memcmp(p + head_len - 4, "\r\n\r\n", 4) != 0)
        return al_error_set(AL_EINVAL, "request head not terminated");
    const char *end = p + head_len - 4;
    const char *eol = memmem(p, head_len, "\r\n", 2);
    /* Request line: METHOD SP target SP HTTP/1.x */
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - p) >= sizeof(req->method) || (size_t)(eol - sp2 - 1) != 8 ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return al_error_set(AL_EINVAL, "malformed request line");
    copy_value(req->method, sizeof(req->method), p, (size_t)(sp1 - p));
    const char *target = sp1 + 1;
    size_t tlen = (size_t)(sp2 - target);
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    if (plen >= sizeof(req->path) || (q && tlen - plen - 1 >= sizeof(req->query)))
        return al_error_set(AL_ETOOBIG, "request target too long");
    copy_value(req->path, sizeof(req->path), target, plen);
    if (q)
        copy_value(req->query, sizeof(req->query), q + 1, tlen - plen - 1);
    for (const char *l = eol + 2; l < end + 2;) {
        const char *e = memmem(l, (size_t)(end + 2 - l), "\r\n", 2);
        int err = parse_header(req, l, (size_t)(e - l));
        if (err < 0)
            return err;
        l = e + 2;
    }
    if (req->chunked && req->content_length >= 0)
        return al_error_set(AL_EINVAL, "both Content-Length and chunked");
    return 0;
}
