/* Bounded HTTP/1.x request-head parser (proxy side) and chunked framer. */
#include "http_parse.h"

#include "airlock/error.h"

#include <string.h>

static int fail(struct np_http_request *r, int code, int status, const char *why)
{
    r->status = status;
    r->error = why;
    return code;
}

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool span_ieq(const char *buf, struct np_http_span s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(buf[s.off + i]) != lit[i])
            return false;
    return true;
}

bool np_http_header_is(const char *buf, const struct np_http_header *h, const char *name)
{
    return span_ieq(buf, h->name, name);
}

/* Parses a decimal port of 1..5 digits, 1..65535. */
static int parse_port(const char *s, size_t len, uint16_t *out)
{
    unsigned v = 0;
    if (len == 0 || len > 5)
        return AL_EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return AL_EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return AL_EINVAL;
    *out = (uint16_t)v;
    return 0;
}

/* Splits an authority "host[:port]" / "[v6][:port]" (no userinfo).
 * *has_port tells whether a port was written. 0 or AL_EINVAL. */
static int split_authority(const char *s, size_t len, char *host, bool *v6, uint16_t *port,
                           bool *has_port)
{
    const char *s0 = s;
    size_t hlen;
    const char *rest;

    *has_port = false;
    *v6 = false;
    if (len == 0)
        return AL_EINVAL;
    if (s[0] == '[') {
        const char *end = memchr(s, ']', len);
        if (!end)
            return AL_EINVAL;
        hlen = (size_t)(end - s) - 1;
        s++;
        rest = end + 1;
        *v6 = true;
    } else {
        const char *colon = memchr(s, ':', len);
        hlen = colon ? (size_t)(colon - s) : len;
        rest = s + hlen;
    }
    size_t rlen = len - (size_t)(rest - s0);
    if (hlen == 0 || hlen >= NP_HTTP_HOST_MAX)
        return AL_EINVAL;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)s[i];
        /* reg-name / IP-literal bytes only; '@', '/', '%', '\' and the rest
         * never reach the policy check */
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || (*v6 && c == ':') || c >= 0x80))
            return AL_EINVAL;
    }
    if (rlen > 0) {
        if (rest[0] != ':' || parse_port(rest + 1, rlen - 1, port) < 0)
            return AL_EINVAL;
        *has_port = true;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    return 0;
}

/* Host names compare case-insensitively, one trailing dot ignored. */
static bool host_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la && a[la - 1] == '.')
        la--;
    if (lb && b[lb - 1] == '.')
        lb--;
    if (la != lb)
        return false;
    for (size_t i = 0; i < la; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

static int parse_target(struct np_http_request *r, const char *t, size_t len, bool origin)
{
    static const char scheme[] = "http://";
    bool has_port;
    size_t alen;

    if (origin) {
        /* inside a terminated tunnel: origin-form only ("/path?query") */
        if (r->connect || t[0] != '/')
            return fail(r, AL_EINVAL, 400, "request target must be a path (origin-form)");
        if (memchr(t, '#', len))
            return fail(r, AL_EINVAL, 400, "fragment in request target");
        r->path.len = (uint32_t)len;
        return 0;
    }
    if (r->connect) {
        if (memchr(t, '@', len) || memchr(t, '/', len))
            return fail(r, AL_EINVAL, 400, "bad CONNECT target");
        if (split_authority(t, len, r->host, &r->host_is_v6, &r->port, &has_port) < 0)
            return fail(r, AL_EINVAL, 400, "bad CONNECT target");
        if (!has_port)
            return fail(r, AL_EINVAL, 400, "CONNECT target needs a port");
        return 0;
    }
    if (len < sizeof(scheme) - 1 || strncasecmp(t, scheme, sizeof(scheme) - 1) != 0)
        return fail(r, AL_EINVAL, 400, "proxy requests need an absolute http:// URL");
    t += sizeof(scheme) - 1;
    len -= sizeof(scheme) - 1;
    for (alen = 0; alen < len; alen++)
        if (t[alen] == '/' || t[alen] == '?' || t[alen] == '#')
            break;
    if (memchr(t, '@', alen))
        return fail(r, AL_EINVAL, 400, "userinfo in URL");
    if (memchr(t, '#', len))
        return fail(r, AL_EINVAL, 400, "fragment in request target");
    r->port = 80;
    if (split_authority(t, alen, r->host, &r->host_is_v6, &r->port, &has_port) < 0)
        return fail(r, AL_EINVAL, 400, "bad host or port in URL");
    r->path.len = (uint32_t)(len - alen);
    return 0;
}

static int check_host_header(struct np_http_request *r, const char *buf,
                             const struct np_http_header *h, bool origin)
{
    char host[NP_HTTP_HOST_MAX];
    bool v6, has_port;
    uint16_t port = r->connect ? 443 : 80;

    if (origin) {
        /* the Host header names the target; the caller compares it with
         * the tunnel's host. port 0: not written. */
        r->port = 0;
        if (split_authority(buf + h->value.off, h->value.len, r->host, &r->host_is_v6, &r->port,
                            &has_port) < 0)
            return fail(r, AL_EINVAL, 400, "bad Host header");
        return 0;
    }
    if (split_authority(buf + h->value.off, h->value.len, host, &v6, &port, &has_port) < 0)
        return fail(r, AL_EINVAL, 400, "bad Host header");
    if (!host_eq(host, r->host) || port != r->port)
        return fail(r, AL_EINVAL, 400, "Host header does not match the request target");
    return 0;
}

static int parse_content_length(struct np_http_request *r, const char *s, size_t len)
{
    uint64_t v = 0;
    if (len == 0 || len > 18)
        return fail(r, AL_EINVAL, 400, "bad Content-Length");
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return fail(r, AL_EINVAL, 400, "bad Content-Length");
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    r->content_length = v;
    r->has_content_length = true;
    return 0;
}

/* Looks for a token in a comma-separated header value. */
static bool value_has_token(const char *s, size_t len, const char *tok)
{
    size_t n = strlen(tok), i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        size_t start = i;
        while (i < len && s[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
            end--;
        if (end - start == n && strncasecmp(s + start, tok, n) == 0)
            return true;
    }
    return false;
}

static int parse_headers(struct np_http_request *r, const char *buf, size_t pos, size_t end,
                         bool origin)
{
    const struct np_http_header *host = NULL;
    bool has_te = false, keep_alive = false, conn_upgrade = false, has_upgrade = false;
    int err;

    while (pos < end) {
        size_t eol = pos;
        while (eol < end && buf[eol] != '\r' && buf[eol] != '\n')
            eol++;
        if (eol + 1 >= end || buf[eol] != '\r' || buf[eol + 1] != '\n')
            return fail(r, AL_EINVAL, 400, "bare CR or LF in header");
        if (eol == pos)
            break; /* the blank line */
        if (buf[pos] == ' ' || buf[pos] == '\t')
            return fail(r, AL_EINVAL, 400, "obsolete header line folding");
        size_t colon = pos;
        while (colon < eol && is_tchar((unsigned char)buf[colon]))
            colon++;
        if (colon == pos || colon == eol || buf[colon] != ':')
            return fail(r, AL_EINVAL, 400, "bad header name");
        size_t vs = colon + 1, ve = eol;
        while (vs < ve && (buf[vs] == ' ' || buf[vs] == '\t'))
            vs++;
        while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
            ve--;
        for (size_t i = vs; i < ve; i++) {
            unsigned char c = (unsigned char)buf[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return fail(r, AL_EINVAL, 400, "control byte in header value");
        }
        if (r->nheaders == NP_HTTP_MAX_HEADERS)
            return fail(r, AL_ETOOBIG, 431, "too many headers");
        struct np_http_header *h = &r->headers[r->nheaders++];
        h->name.off = (uint32_t)pos;
        h->name.len = (uint32_t)(colon - pos);
        h->value.off = (uint32_t)vs;
        h->value.len = (uint32_t)(ve - vs);

        if (np_http_header_is(buf, h, "host")) {
            if (host)
                return fail(r, AL_EINVAL, 400, "more than one Host header");
            host = h;
        } else if (np_http_header_is(buf, h, "content-length")) {
            if (r->has_content_length)
                return fail(r, AL_EINVAL, 400, "more than one Content-Length");
            if ((err = parse_content_length(r, buf + vs, ve - vs)) < 0)
                return err;
        } else if (np_http_header_is(buf, h, "transfer-encoding")) {
            if (has_te)
                return fail(r, AL_EINVAL, 400, "more than one Transfer-Encoding");
            has_te = true;
            if (ve - vs != 7 || strncasecmp(buf + vs, "chunked", 7) != 0)
                return fail(r, AL_EINVAL, 501, "only Transfer-Encoding: chunked is supported");
            r->chunked = true;
        } else if (np_http_header_is(buf, h, "connection")) {
            if (value_has_token(buf + vs, ve - vs, "close"))
                r->conn_close = true;
            if (value_has_token(buf + vs, ve - vs, "keep-alive"))
                keep_alive = true;
            if (value_has_token(buf + vs, ve - vs, "upgrade"))
                conn_upgrade = true;
        } else if (np_http_header_is(buf, h, "upgrade")) {
            has_upgrade = true;
        }
        pos = eol + 2;
    }
    /* Request smuggling: a body framed two ways is read differently by
     * different hops, so it is never forwarded. */
    if (r->has_content_length && r->chunked)
        return fail(r, AL_EINVAL, 400, "Content-Length with Transfer-Encoding");
    if (r->chunked && r->minor == 0)
        return fail(r, AL_EINVAL, 400, "Transfer-Encoding in HTTP/1.0");
    if (r->minor == 0 && !keep_alive)
        r->conn_close = true;
    r->upgrade = conn_upgrade && has_upgrade && r->minor == 1 && !r->connect;
    if (host && (err = check_host_header(r, buf, host, origin)) < 0)
        return err;
    if (!host && !r->connect && r->minor == 1)
        return fail(r, AL_EINVAL, 400, "HTTP/1.1 request without Host");
    return 0;
}

/* The length of the head in buf[0..scan) up to and including its blank
 * line ("\r\n\r\n"), or 0 when it has not ended there. */
static size_t head_end(const char *buf, size_t scan)
{
    for (size_t i = 0; i + 3 < scan; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
            return i + 4;
    return 0;
}

static int parse_request(struct np_http_request *out, const char *buf, size_t len, bool origin)
{
    struct np_http_request *r = out;
    size_t scan = len < NP_HTTP_HEAD_MAX ? len : NP_HTTP_HEAD_MAX;
    size_t head = 0;
    int err;

    memset(r, 0, sizeof(*r));
    head = head_end(buf, scan);
    if (head == 0) {
        if (len >= NP_HTTP_HEAD_MAX)
            return fail(r, AL_ETOOBIG, 431, "request head larger than 16 KiB");
        /* fail early on obvious garbage instead of waiting for 16 KiB */
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '\0')
                return fail(r, AL_EINVAL, 400, "NUL byte in request head");
        return 0;
    }

    /* request line: METHOD SP target SP HTTP/1.x CRLF */
    size_t p = 0;
    while (p < head && is_tchar((unsigned char)buf[p]))
        p++;
    if (p == 0 || buf[p] != ' ')
        return fail(r, AL_EINVAL, 400, "bad request line");
    r->method.off = 0;
    r->method.len = (uint32_t)p;
    size_t ts = ++p;
    while (p < head && (unsigned char)buf[p] > 0x20 && (unsigned char)buf[p] < 0x7f)
        p++;
    if (p == ts || buf[p] != ' ')
        return fail(r, AL_EINVAL, 400, "bad request target");
    size_t te = p++;
    if (head - p < 10 || memcmp(buf + p, "HTTP/", 5) != 0)
        return fail(r, AL_EINVAL, 400, "bad request line");
    if (buf[p + 5] < '0' || buf[p + 5] > '9' || buf[p + 6] != '.' || buf[p + 7] < '0' ||
        buf[p + 7] > '9' || buf[p + 8] != '\r' || buf[p + 9] != '\n')
        return fail(r, AL_EINVAL, 400, "bad HTTP version");
    if (buf[p + 5] != '1' || (buf[p + 7] != '0' && buf[p + 7] != '1'))
        return fail(r, AL_EINVAL, 505, "HTTP version not supported");
    r->minor = buf[p + 7] - '0';
    r->connect = r->method.len == 7 && memcmp(buf, "CONNECT", 7) == 0;
    if ((err = parse_target(r, buf + ts, te - ts, origin)) < 0)
        return err;
    if (!r->connect)
        r->path.off = (uint32_t)(te - r->path.len);
    if ((err = parse_headers(r, buf, p + 10, head, origin)) < 0)
        return err;
    return (int)head;
}

int np_http_parse_request(struct np_http_request *out, const char *buf, size_t len)
{
    return parse_request(out, buf, len, false);
}

int np_http_parse_origin_request(struct np_http_request *out, const char *buf, size_t len)
{
    return parse_request(out, buf, len, true);
}

/* Response heads (from upstreams of terminated tunnels). */
int np_http_parse_response(struct np_http_response *out, const char *buf, size_t len)
{
    struct np_http_response *r = out;
    size_t scan = len < NP_HTTP_RESP_HEAD_MAX ? len : NP_HTTP_RESP_HEAD_MAX;
    size_t head = 0;
    bool has_te = false, keep_alive = false;

    memset(r, 0, sizeof(*r));
    head = head_end(buf, scan);
    if (head == 0) {
        if (len >= NP_HTTP_RESP_HEAD_MAX) {
            r->error = "response head too large";
            return AL_ETOOBIG;
        }
        return 0;
    }
    r->error = "malformed status line";
    /* HTTP/1.x SP 3DIGIT SP reason CRLF (reason may be empty) */
    if (head < 14 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
        buf[8] != ' ')
        return AL_EINVAL;
    for (int i = 9; i < 12; i++)
        if (buf[i] < '0' || buf[i] > '9')
            return AL_EINVAL;
    if (buf[12] != ' ' && buf[12] != '\r')
        return AL_EINVAL;
    r->minor = buf[7] - '0';
    r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (r->status < 100)
        return AL_EINVAL;
    size_t pos = 12;
    while (pos < head && buf[pos] != '\r' && buf[pos] != '\n') {
        unsigned char c = (unsigned char)buf[pos];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return AL_EINVAL;
        pos++;
    }
    if (pos + 1 >= head || buf[pos] != '\r' || buf[pos + 1] != '\n')
        return AL_EINVAL;
    pos += 2;
    r->error = "malformed header";
    while (pos < head) {
        size_t eol = pos;
        while (eol < head && buf[eol] != '\r' && buf[eol] != '\n')
            eol++;
        if (eol + 1 >= head || buf[eol] != '\r' || buf[eol + 1] != '\n')
            return AL_EINVAL;
        if (eol == pos)
            break;
        if (buf[pos] == ' ' || buf[pos] == '\t')
            return AL_EINVAL;
        size_t colon = pos;
        while (colon < eol && is_tchar((unsigned char)buf[colon]))
            colon++;
        if (colon == pos || colon == eol || buf[colon] != ':')
            return AL_EINVAL;
        size_t vs = colon + 1, ve = eol;
        while (vs < ve && (buf[vs] == ' ' || buf[vs] == '\t'))
            vs++;
        while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
            ve--;
        for (size_t i = vs; i < ve; i++) {
            unsigned char c = (unsigned char)buf[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return AL_EINVAL;
        }
        struct np_http_span name = {(uint32_t)pos, (uint32_t)(colon - pos)};
        if (span_ieq(buf, name, "content-length")) {
            struct np_http_request tmp;
            memset(&tmp, 0, sizeof(tmp));
            if (parse_content_length(&tmp, buf + vs, ve - vs) < 0 ||
                (r->has_content_length && r->content_length != tmp.content_length)) {
                r->error = "bad Content-Length";
                return AL_EINVAL;
            }
            r->has_content_length = true;
            r->content_length = tmp.content_length;
        } else if (span_ieq(buf, name, "transfer-encoding")) {
            if (has_te) {
                r->error = "more than one Transfer-Encoding";
                return AL_EINVAL;
            }
            has_te = true;
            /* the last coding must be chunked for the framing to be known;
             * other codings are read until close */
            size_t k = ve;
            while (k > vs && buf[k - 1] != ',')
                k--;
            while (k < ve && (buf[k] == ' ' || buf[k] == '\t'))
                k++;
            r->chunked = ve - k == 7 && strncasecmp(buf + k, "chunked", 7) == 0;
            if (!r->chunked)
                r->conn_close = true;
        } else if (span_ieq(buf, name, "connection")) {
            if (value_has_token(buf + vs, ve - vs, "close"))
                r->conn_close = true;
            if (value_has_token(buf + vs, ve - vs, "keep-alive"))
                keep_alive = true;
        }
        pos = eol + 2;
    }
    if (has_te && r->has_content_length) {
        r->error = "Content-Length with Transfer-Encoding";
        return AL_EINVAL;
    }
    if (r->minor == 0 && !keep_alive)
        r->conn_close = true;
    r->error = NULL;
    return (int)head;
}

enum {
    CH_SIZE = 0, /* hex digits */
    CH_EXT,      /* ";ext" up to CR */
    CH_SIZE_LF,  /* LF after the size line */
    CH_DATA,     /* chunk bytes */
    CH_DATA_CR,  /* CR after data */
    CH_DATA_LF,  /* LF after data */
    CH_TRAILER,  /* start of a trailer line (or the final CRLF) */
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_FINAL_LF,
    CH_DONE,
};

#define CH_LINE_MAX 4096

void np_chunked_init(struct np_chunked *ch)
{
    memset(ch, 0, sizeof(*ch));
}

uint64_t np_chunked_data_left(const struct np_chunked *ch)
{
    return ch->state == CH_DATA ? ch->remaining : 0;
}

int np_chunked_feed(struct np_chunked *ch, const char *buf, size_t len, size_t *used)
{
    size_t i = 0;

    while (i < len) {
        char c = buf[i];
        switch (ch->state) {
        case CH_SIZE: {
            int d = -1;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (lower(c) >= 'a' && lower(c) <= 'f')
                d = lower(c) - 'a' + 10;
            if (d >= 0) {
                if (++ch->line > 15)
                    return AL_EINVAL;
                ch->remaining = ch->remaining * 16 + (uint64_t)d;
            } else if (ch->line == 0) {
                return AL_EINVAL;
            } else if (c == ';' || c == ' ' || c == '\t') {
                ch->state = CH_EXT;
            } else if (c == '\r') {
                ch->state = CH_SIZE_LF;
            } else {
                return AL_EINVAL;
            }
            i++;
            break;
        }
        case CH_EXT:
            if (c == '\r')
                ch->state = CH_SIZE_LF;
            else if (c == '\n' || (unsigned char)c < 0x09 || ++ch->line > CH_LINE_MAX)
                return AL_EINVAL;
            i++;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                return AL_EINVAL;
            ch->line = 0;
            ch->state = ch->remaining ? CH_DATA : CH_TRAILER;
            i++;
            break;
        case CH_DATA: {
            size_t take = len - i;
            if (take > ch->remaining)
                take = (size_t)ch->remaining;
            ch->remaining -= take;
            i += take;
            if (ch->remaining == 0)
                ch->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (c != '\r')
                return AL_EINVAL;
            ch->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                return AL_EINVAL;
            ch->state = CH_SIZE;
            ch->line = 0;
            i++;
            break;
        case CH_TRAILER:
            if (c == '\r') {
                ch->state = CH_FINAL_LF;
            } else if (c == '\n') {
                return AL_EINVAL;
            } else {
                ch->state = CH_TRAILER_LINE;
                ch->line = 1;
            }
            i++;
            break;
        case CH_TRAILER_LINE:
            if (c == '\r')
                ch->state = CH_TRAILER_LF;
            else if (c == '\n' || ++ch->line > CH_LINE_MAX)
                return AL_EINVAL;
            i++;
            break;
        case CH_TRAILER_LF:
            if (c != '\n')
                return AL_EINVAL;
            ch->state = CH_TRAILER;
            i++;
            break;
        case CH_FINAL_LF:
            if (c != '\n')
                return AL_EINVAL;
            ch->state = CH_DONE;
            *used = i + 1;
            return 1;
        default:
            *used = 0;
            return 1;
        }
    }
    *used = len;
    return 0;
}

const char *np_http_status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 421:
        return "Misdirected Request";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Error";
}
