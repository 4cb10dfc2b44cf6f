/* The key holder's request head (kh_req.h). */
#include "kh_req.h"
#include "airlock/error.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Whether line[0..n) (without its CRLF) is a header named `name`. */
static bool header_named(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n > k && line[k] == ':' && strncasecmp(line, name, k) == 0;
}

/* Checks the front's head h[0..len) (ends with CRLFCRLF, no NUL: the
 * decoder made sure): CRLF line ends only, no folding, every header line
 * "name:..." with a token name, no framing header. 0 or AL_EINVAL. */
static int head_check(const char *h, size_t len)
{
    size_t off = 0;
    bool first = true;

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
    }
    return al_error_set(AL_EINVAL, "kh request head: no end");
}

int np_kh_req_head(struct al_buf *out, uint64_t *used, size_t *culprit,
                   const struct al_credset *set, uint64_t inject_ok, const struct np_kh_msg *req,
                   uint64_t content_length)
{
    static const struct al_credset empty = {0};
    size_t start = out->len;
    int err;

    *used = 0;
    *culprit = 0;
    if (req->type != NP_KH_REQ_HEAD || !req->data || req->data_len < 4)
        return al_error_set(AL_EINVAL, "kh request head: not a request head");
    const char *h = (const char *)req->data;
    if ((err = head_check(h, req->data_len)) < 0)
        return err;
    /* everything but the blank line, rewritten; then framing; then the end */
    err =
        al_cred_subst_head(set ? set : &empty, inject_ok, h, req->data_len - 2, out, used, culprit);
    if (err < 0)
        return err;
    if (req->framing == NP_KH_FRAME_LENGTH)
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
