/* Bounded HTTP/1.x request-head parser for a forward proxy, and a chunked
 * body framer. Both work on (pointer, length) and never allocate. */
#ifndef NP_HTTP_PARSE_H
#define NP_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_HTTP_HEAD_MAX    16384 /* request line + headers + blank line */
#define NP_HTTP_MAX_HEADERS 100
#define NP_HTTP_HOST_MAX    256

struct np_http_span {
    uint32_t off, len; /* into the parsed buffer */
};

struct np_http_header {
    struct np_http_span name, value; /* value without surrounding blanks */
};

struct np_http_request {
    bool connect; /* CONNECT host:port */
    struct np_http_span method;
    char host[NP_HTTP_HOST_MAX]; /* target host as written, brackets of an
                                    IPv6 literal removed, NUL-terminated */
    bool host_is_v6;             /* host was [bracketed] */
    uint16_t port;               /* explicit or default (80) */
    struct np_http_span path;    /* absolute-form: path and query, may be
                                    empty or start with '?' */
    int minor;                   /* HTTP/1.minor */
    size_t nheaders;
    struct np_http_header headers[NP_HTTP_MAX_HEADERS];
    bool has_content_length;
    uint64_t content_length;
    bool chunked;
    bool conn_close;   /* Connection: close, or HTTP/1.0 without keep-alive */
    bool upgrade;      /* Upgrade header with Connection: upgrade */
    int status;        /* on error: the HTTP status to answer */
    const char *error; /* on error: short reason */
};

/* Parses one request head from `buf` (`len` bytes). Returns the head length
 * (> 0, up to and including the blank line) and fills *out; 0 when more
 * bytes are needed; AL_EINVAL or AL_ETOOBIG with out->status (400, 431, 501,
 * 505) and out->error set. Only absolute-form "http://" targets and CONNECT
 * authority-form are accepted (this is a proxy). Rejected: userinfo in the
 * target, port 0 or > 65535, a missing CONNECT port, a Host header that
 * disagrees with the target, Content-Length together with
 * Transfer-Encoding, duplicate framing headers, transfer codings other than
 * "chunked", obs-fold, bare CR or LF, control bytes, heads > 16 KiB. */
int np_http_parse_request(struct np_http_request *out, const char *buf, size_t len);

/* The same for a request inside a TLS-terminated tunnel: the target must be
 * origin-form ("/path?query"; CONNECT and absolute-form refused), and
 * out->host / out->port come from the Host header (port 0 when it has none;
 * host "" when there is no Host header, which HTTP/1.1 refuses). */
int np_http_parse_origin_request(struct np_http_request *out, const char *buf, size_t len);

#define NP_HTTP_RESP_HEAD_MAX 65536

/* A response head from an upstream. */
struct np_http_response {
    int status; /* 100..999 */
    int minor;
    bool has_content_length;
    uint64_t content_length;
    bool chunked;      /* Transfer-Encoding ends with chunked */
    bool conn_close;   /* Connection: close, HTTP/1.0 without keep-alive, or a
                          transfer coding other than chunked (read until close) */
    const char *error; /* on error: short reason */
};

/* Parses one response head from buf[0..len). Returns its length (> 0), 0
 * when more bytes are needed, AL_EINVAL (malformed: bad status line, bare
 * CR/LF, obs-fold, control bytes, conflicting Content-Length, Content-Length
 * with Transfer-Encoding) or AL_ETOOBIG (no end within 64 KiB), with
 * out->error set. */
int np_http_parse_response(struct np_http_response *out, const char *buf, size_t len);

/* True when the header name (span in `buf`) equals `name` (ASCII case-insensitive). */
bool np_http_header_is(const char *buf, const struct np_http_header *h, const char *name);

/* Chunked request-body framer: finds where a chunked body ends. */
struct np_chunked {
    int state;
    uint64_t remaining;
    unsigned line;
};

void np_chunked_init(struct np_chunked *ch);

/* Feeds `len` body bytes. Returns 1 when the body ended (*used = bytes that
 * belong to it), 0 when all `len` bytes belong to it and more are needed,
 * or AL_EINVAL on a malformed body. */
int np_chunked_feed(struct np_chunked *ch, const char *buf, size_t len, size_t *used);

/* Bytes of chunk data that come next (0 when the framer is not inside a
 * chunk's data): a decoder feeds those as data, everything else is
 * framing. */
uint64_t np_chunked_data_left(const struct np_chunked *ch);

/* The reason phrase of a status the proxy answers with itself ("Forbidden");
 * "Error" for any other. A static string. */
const char *np_http_status_text(int status);

#endif
