#include "airlock/gp_http_head.h"
#include "airlock/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar, in ASCII. */
static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_token(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_tchar((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Copies a kept value; one that does not fit its field is refused. */
static int copy_value(char *dst, size_t cap, const char *v, size_t len, const char *name)
{
    if (len >= cap)
        return al_error_set(AL_ETOOBIG, "%s header too long", name);
    memcpy(dst, v, len);
    dst[len] = '\0';
    return 0;
}

/* Names a header line in messages: its name when that is a token (safe to
 * show), else "a header line". */
static void line_name(char *out, size_t cap, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    size_t n = colon ? (size_t)(colon - line) : 0;
    if (n > 0 && n < 64 && is_token(line, n))
        snprintf(out, cap, "the %.*s header", (int)n, line);
    else
        snprintf(out, cap, "a header line");
}

/* Refuses a header line with a byte that must never reach anyone: NUL, a CR
 * or LF inside the line, other control bytes, DEL. Tabs are fine. */
static int line_bytes_check(const char *line, size_t len)
{
    char what[96];
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c >= 0x20 && c != 0x7f)
            continue;
        if (c == '\t')
            continue;
        line_name(what, sizeof(what), line, len);
        if (c == '\0')
            return al_error_set(AL_EINVAL, "NUL byte in %s", what);
        if (c == '\r' || c == '\n')
            return al_error_set(AL_EINVAL, "bare CR or LF in %s", what);
        return al_error_set(AL_EINVAL, "control character in %s", what);
    }
    return 0;
}

/* Marks `bit` seen; a second time is an error. */
static int seen_once(struct gp_http_req *req, unsigned bit, const char *name)
{
    if (req->seen & bit)
        return al_error_set(AL_EINVAL, "duplicate %s header", name);
    req->seen |= bit;
    return 0;
}

static int parse_header(struct gp_http_req *req, const char *line, size_t len)
{
    int err = 0;
    if (len > 0 && (line[0] == ' ' || line[0] == '\t'))
        return al_error_set(AL_EINVAL, "folded header line (starting with a space or tab)");
    if ((err = line_bytes_check(line, len)) < 0)
        return err;
    const char *colon = memchr(line, ':', len);
    if (!colon || !is_token(line, (size_t)(colon - line)))
        return al_error_set(AL_EINVAL, "malformed header name");
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
#define HDR(name) (nlen == sizeof(name) - 1 && strncasecmp(line, name, nlen) == 0)
#define KEEP(name, bit, field)                                                                     \
    ((err = seen_once(req, bit, name)) < 0                                                         \
         ? err                                                                                     \
         : copy_value(req->field, sizeof(req->field), v, vlen, name))
    if (HDR("Authorization")) {
        err = KEEP("Authorization", GP_HDR_AUTHORIZATION, authorization);
    } else if (HDR("Content-Type")) {
        err = KEEP("Content-Type", GP_HDR_CONTENT_TYPE, content_type);
    } else if (HDR("Content-Encoding")) {
        err = KEEP("Content-Encoding", GP_HDR_CONTENT_ENCODING, content_encoding);
    } else if (HDR("Git-Protocol")) {
        err = KEEP("Git-Protocol", GP_HDR_GIT_PROTOCOL, git_protocol);
    } else if (HDR("Accept")) {
        err = KEEP("Accept", GP_HDR_ACCEPT, accept);
    } else if (HDR("Host")) {
        err = seen_once(req, GP_HDR_HOST, "Host");
    } else if (HDR("Content-Length")) {
        char num[24];
        char *end;
        if ((err = seen_once(req, GP_HDR_CONTENT_LENGTH, "Content-Length")) < 0)
            return err;
        if (vlen == 0 || vlen >= sizeof(num) || v[0] < '0' || v[0] > '9')
            return al_error_set(AL_EINVAL, "bad Content-Length");
        memcpy(num, v, vlen);
        num[vlen] = '\0';
        errno = 0;
        long long n = strtoll(num, &end, 10);
        if (*end || errno || n < 0 || n > (1ll << 50))
            return al_error_set(AL_EINVAL, "bad Content-Length");
        req->content_length = n;
    } else if (HDR("Transfer-Encoding")) {
        if ((err = seen_once(req, GP_HDR_TRANSFER_ENCODING, "Transfer-Encoding")) < 0)
            return err;
        if (vlen == 7 && strncasecmp(v, "chunked", 7) == 0)
            req->chunked = 1;
        else
            return al_error_set(AL_EINVAL, "unsupported Transfer-Encoding");
    } else if (HDR("Expect")) {
        if ((err = seen_once(req, GP_HDR_EXPECT, "Expect")) < 0)
            return err;
        if (vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)
            req->expect_continue = 1;
    }
#undef KEEP
#undef HDR
    return err < 0 ? err : 0;
}

/* "METHOD SP target SP HTTP/1.x" in line[0..len). */
static int parse_request_line(struct gp_http_req *req, const char *line, size_t len)
{
    const char *sp1 = memchr(line, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line + len - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - line) >= sizeof(req->method) ||
        !is_token(line, (size_t)(sp1 - line)) || (size_t)(line + len - sp2 - 1) != 8 ||
        (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 && memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
        return al_error_set(AL_EINVAL, "malformed request line");
    const char *target = sp1 + 1;
    size_t tlen = (size_t)(sp2 - target);
    if (tlen == 0)
        return al_error_set(AL_EINVAL, "malformed request line");
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f)
            return al_error_set(AL_EINVAL, "malformed request target");
    memcpy(req->method, line, (size_t)(sp1 - line));
    req->method[sp1 - line] = '\0';
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    if (plen >= sizeof(req->path) || (q && tlen - plen - 1 >= sizeof(req->query)))
        return al_error_set(AL_ETOOBIG, "request target too long");
    memcpy(req->path, target, plen);
    req->path[plen] = '\0';
    if (q) {
        memcpy(req->query, q + 1, tlen - plen - 1);
        req->query[tlen - plen - 1] = '\0';
    }
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
    /* Lines end in CRLF; the head's own end is the CRLF of the last header
     * line followed by an empty line. A CR or LF anywhere else (caught per
     * line below) is refused, never taken as a line end. */
    const char *end = p + head_len - 2;
    const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    size_t llen = (size_t)(eol - p);
    if (memchr(p, '\r', llen) || memchr(p, '\n', llen) || memchr(p, '\0', llen))
        return al_error_set(AL_EINVAL, "malformed request line");
    int err = parse_request_line(req, p, llen);
    if (err < 0)
        return err;
    for (const char *l = eol + 2; l < end;) {
        const char *e = memmem(l, (size_t)(end - l), "\r\n", 2);
        if ((err = parse_header(req, l, (size_t)(e - l))) < 0)
            return err;
        l = e + 2;
    }
    if (req->chunked && req->content_length >= 0)
        return al_error_set(AL_EINVAL, "both Content-Length and chunked");
    return 0;
}
