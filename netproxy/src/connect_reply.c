/* Reply-head parser for airlock-connect (see connect_reply.h). */
#include "connect_reply.h"

#include "airlock/error.h"

#include <string.h>
#include <strings.h>

/* Length of the head through the blank line, or 0 when not complete. */
static size_t head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static int parse_status(struct np_connect_reply *out, const char *p, size_t n)
{
    /* "HTTP/1.x NNN" then end of line or a space and a reason */
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return AL_EINVAL;
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return AL_EINVAL;
        status = status * 10 + (p[i] - '0');
    }
    if (status < 100 || (n > 12 && p[12] != ' '))
        return AL_EINVAL;
    out->status = status;
    return 0;
}

static int parse_header(struct np_connect_reply *out, const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    if (!colon || colon == p)
        return AL_EINVAL;
    size_t name_len = (size_t)(colon - p);
    for (size_t i = 0; i < name_len; i++)
        if (p[i] <= ' ' || p[i] >= 0x7f)
            return AL_EINVAL;
    const char *v = colon + 1, *end = p + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
    if (name_len == 15 && strncasecmp(p, "X-Airlock-Error", 15) == 0) {
        size_t k = vlen < sizeof(out->error) - 1 ? vlen : sizeof(out->error) - 1;
        for (size_t i = 0; i < k; i++)
            out->error[i] = (v[i] >= ' ' && v[i] < 0x7f) ? v[i] : '?';
        out->error[k] = '\0';
    } else if (name_len == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
        size_t cl = 0;
        if (vlen == 0 || vlen > 12)
            return AL_EINVAL;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9')
                return AL_EINVAL;
            cl = cl * 10 + (size_t)(v[i] - '0');
        }
        out->content_length = cl;
        out->has_length = true;
    }
    return 0;
}

int np_connect_reply_parse(struct np_connect_reply *out, const char *buf, size_t len)
{
    memset(out, 0, sizeof(*out));
    if (len > NP_CONNECT_REPLY_MAX)
        len = NP_CONNECT_REPLY_MAX;
    size_t total = head_end(buf, len);
    if (total == 0)
        return len == NP_CONNECT_REPLY_MAX ? AL_ETOOBIG : 0;
    const char *p = buf, *end = buf + total;
    bool first = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (memchr(p, '\r', n) || memchr(p, '\0', n))
            return AL_EINVAL;
        if (n == 0)
            break; /* the blank line */
        int err = first ? parse_status(out, p, n) : parse_header(out, p, n);
        if (err < 0)
            return err;
        first = false;
        p = nl + 1;
    }
    if (first)
        return AL_EINVAL; /* a blank line before any status line */
    return (int)total;
}
