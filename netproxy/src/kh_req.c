/* The key holder's request and response head steps (kh_req.h). */
#include "kh_req.h"
#include "airlock/error.h"
#include "http_parse.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Whether line[0..n) (without its CRLF) is a header named `name`. */
static bool header_named(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n > k && line[k] == ':' && strncasecmp(line, name, k) == 0;
}

/* Whether a Host header's value v[0..n) names `host` (as OPEN gave it:
 * lower case, no trailing dot, an IPv6 address without brackets) and, when
 * it has a port, `port`. */
static bool host_is(const char *v, size_t n, const char *host, uint16_t port)
{
    size_t hl = strlen(host);
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    bool v6 = memchr(host, ':', hl) != NULL;
    if (v6) {
        if (n < hl + 2 || v[0] != '[' || v[hl + 1] != ']' || strncasecmp(v + 1, host, hl) != 0)
            return false;
        v += hl + 2, n -= hl + 2;
    } else {
        if (n < hl || strncasecmp(v, host, hl) != 0)
            return false;
        v += hl, n -= hl;
        if (n && *v == '.') /* the absolute form of the name */
            v++, n--;
    }
    if (n == 0)
        return true;
    if (*v != ':' || n < 2 || n > 6)
        return false;
    unsigned long p = 0;
    for (size_t i = 1; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        p = p * 10 + (unsigned long)(v[i] - '0');
    }
    return p == port;
}

/* The request line: "METHOD /target HTTP/1.x" with a token method and an
 * origin-form target (no absolute-form: the request goes to the host the
 * key holder verified, never to one the line names). */
static bool request_line_ok(const char *l, size_t n)
{
    const char *sp1 = memchr(l, ' ', n);
    if (!sp1 || sp1 == l)
        return false;
    for (const char *p = l; p < sp1; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *p))
            return false;
    const char *t = sp1 + 1, *end = l + n;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2 || sp2 == t || *t != '/' || (sp2 - t >= 2 && t[1] == '/'))
        return false;
    for (const char *p = t; p < sp2; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    return end - sp2 == 9 && memcmp(sp2 + 1, "HTTP/1.", 7) == 0 && (sp2[8] == '0' || sp2[8] == '1');
}

/* Checks the front's head h[0..len) (ends with CRLFCRLF, no NUL: the
 * decoder made sure): an origin-form request line, CRLF line ends only, no
 * folding, every header line "name:..." with a token name, no framing
 * header, at most one Host header and that one naming host (and port).
 * *has_host says whether there was one. 0 or AL_EINVAL. */
static int head_check(bool *has_host, const char *h, size_t len, const char *host, uint16_t port)
{
    size_t off = 0;
    bool first = true;

    *has_host = false;
    while (off < len) {
        const char *lf = memchr(h + off, '\n', len - off);
        if (!lf || lf == h + off || lf[-1] != '\r')
            return al_error_set(AL_EINVAL, "kh request head: a line not ended by CRLF");
        size_t n = (size_t)(lf - (h + off)) - 1; /* without CRLF */
        const char *line = h + off;
        off = (size_t)(lf - h) + 1;
        if (memchr(line, '\r', n))
            return al_error_set(AL_EINVAL, "kh request head: a bare CR");
        if (n == 0) /* the blank line: the decoder put it at the end */
            return off == len ? 0
                              : al_error_set(AL_EINVAL, "kh request head: bytes after the head");
        if (first) {
            if (!request_line_ok(line, n))
                return al_error_set(AL_EINVAL, "kh request head: not an origin-form request "
                                               "line");
            first = false;
            continue;
        }
        const char *colon = memchr(line, ':', n);
        if (!colon || colon == line)
            return al_error_set(AL_EINVAL, "kh request head: a header line without a name");
        for (const char *p = line; p < colon; p++)
            if (*p <= ' ' || *p >= 0x7f || strchr("\"(),/;<=>?@[\\]{}", *p))
                return al_error_set(AL_EINVAL, "kh request head: a header name that is not a "
                                               "token");
        if (header_named(line, n, "content-length") || header_named(line, n, "transfer-encoding"))
            return al_error_set(AL_EINVAL, "kh request head: framing header from the front");
        if (header_named(line, n, "host")) {
            if (*has_host || !host_is(line + 5, n - 5, host, port))
                return al_error_set(AL_EINVAL, "kh request head: a Host header that does not "
                                               "name the connection's host");
            *has_host = true;
        }
    }
    return al_error_set(AL_EINVAL, "kh request head: no end");
}

int np_kh_req_head(struct al_buf *out, uint64_t *used, size_t *culprit,
                   const struct al_credset *set, uint64_t inject_ok, const char *host,
                   uint16_t port, const struct np_kh_msg *req, uint64_t content_length)
{
    static const struct al_credset empty = {0};
    size_t start = out->len;
    bool has_host;
    int err;

    *used = 0;
    *culprit = 0;
    if (req->type != NP_KH_REQ_HEAD || !req->data || req->data_len < 4)
        return al_error_set(AL_EINVAL, "kh request head: not a request head");
    const char *h = (const char *)req->data;
    if ((err = head_check(&has_host, h, req->data_len, host, port)) < 0)
        return err;
    /* everything but the blank line, rewritten; then framing; then the end */
    err =
        al_cred_subst_head(set ? set : &empty, inject_ok, h, req->data_len - 2, out, used, culprit);
    if (err < 0)
        return err;
    /* a value only goes with a Host header that names its host: a server
     * behind a shared address picks the site by it */
    if (*used && !has_host)
        err = al_error_set(AL_EINVAL, "kh request head: a credential in a request without Host");
    else if (req->framing == NP_KH_FRAME_LENGTH)
        err = al_buf_printf(out, "Content-Length: %llu\r\n", (unsigned long long)content_length);
    else if (req->framing == NP_KH_FRAME_CHUNKED)
        err = al_buf_puts(out, "Transfer-Encoding: chunked\r\n");
    else if (req->framing != NP_KH_FRAME_NONE)
        err = al_error_set(AL_EINVAL, "kh request head: unknown framing");
    if (err >= 0)
        err = al_buf_puts(out, "\r\n");
    if (err < 0) {
        /* nothing appended on error; what was written may hold a value */
        if (out->ptr) {
            explicit_bzero(out->ptr + start, out->len - start);
            out->len = start;
            out->ptr[start] = '\0';
        }
        *used = 0;
    }
    return err;
}

/* Whether value v[0..n) is exactly "chunked" (blanks around it allowed,
 * any letter case). */
static bool only_chunked(const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n == 7 && strncasecmp(v, "chunked", 7) == 0;
}

/* Copies head h[0..n) into `out`, without its framing lines when
 * `strip`. AL_EINVAL for a transfer coding other than "chunked". */
static int copy_head(struct al_buf *out, const char *h, size_t n, bool strip)
{
    size_t off = 0;
    bool first = true;
    int err = 0;

    while (off < n && err == 0) {
        const char *lf = memchr(h + off, '\n', n - off);
        size_t end = lf ? (size_t)(lf - h) + 1 : n;
        const char *line = h + off;
        size_t ll = end - off;
        off = end;
        if (!first) {
            size_t bare = ll;
            while (bare && (line[bare - 1] == '\n' || line[bare - 1] == '\r'))
                bare--;
            if (header_named(line, bare, "transfer-encoding") &&
                !only_chunked(line + 18, bare - 18))
                return al_error_set(AL_EINVAL, "kh response head: a transfer coding other than "
                                               "chunked");
            if (strip && (header_named(line, bare, "content-length") ||
                          header_named(line, bare, "transfer-encoding")))
                continue;
        }
        first = false;
        err = al_buf_append(out, line, ll);
    }
    return err;
}

int np_kh_resp_head(struct al_buf *out, struct np_kh_resp *info, const struct al_credset *set,
                    const char *buf, size_t len, uint8_t req_flags)
{
    static const struct al_credset empty = {0};
    struct np_http_response rs;
    struct al_buf tmp;
    struct al_subst_stream st;
    size_t start = out->len;
    int n, err;

    memset(info, 0, sizeof(*info));
    n = np_http_parse_response(&rs, buf, len);
    if (n <= 0)
        return n;
    if (rs.status > 599)
        return al_error_set(AL_EINVAL, "kh response head: status %d", rs.status);
    info->status = (uint16_t)rs.status;
    info->close = rs.conn_close;
    bool no_body = (req_flags & NP_KH_REQ_HEAD_METHOD) || rs.status < 200 || rs.status == 204 ||
                   rs.status == 304;
    if (rs.status == 101 && (req_flags & NP_KH_REQ_UPGRADE))
        info->upgraded = true;
    else if (rs.status < 200)
        info->interim = true;
    if (no_body) {
        info->framing = NP_KH_FRAME_NONE;
    } else if (rs.chunked) {
        info->framing = NP_KH_FRAME_CHUNKED;
    } else if (rs.has_content_length) {
        info->framing = NP_KH_FRAME_LENGTH;
        info->length = rs.content_length;
    } else {
        info->framing = NP_KH_FRAME_CLOSE;
        info->close = true;
    }
    al_buf_init(&tmp, (size_t)n);
    err = copy_head(&tmp, buf, (size_t)n, !no_body);
    if (err == 0 &&
        (err = al_subst_stream_init(&st, set ? set : &empty, AL_SUBST_RESPONSE, 0)) == 0) {
        err = al_subst_stream_feed(&st, tmp.ptr ? tmp.ptr : "", tmp.len, out, NULL);
        if (err == 0)
            err = al_subst_stream_finish(&st, out);
        al_subst_stream_free(&st);
    }
    al_buf_wipe_free(&tmp);
    if (err < 0) {
        if (out->ptr) {
            explicit_bzero(out->ptr + start, out->len - start);
            out->len = start;
            out->ptr[start] = '\0';
        }
        memset(info, 0, sizeof(*info));
        return err;
    }
    return n;
}
