/* Parsing of an HTTP/1.1 request head (request line and headers), the part
 * of the listener's HTTP that looks at untrusted bytes. */
#ifndef AIRLOCK_GP_HTTP_HEAD_H
#define AIRLOCK_GP_HTTP_HEAD_H

#include <stddef.h>
#include <stdint.h>

#define GP_HTTP_HEAD_MAX 16384

/* The headers a request head may carry at most once (gp_http_req.seen). */
#define GP_HDR_AUTHORIZATION     0x001u
#define GP_HDR_CONTENT_TYPE      0x002u
#define GP_HDR_CONTENT_ENCODING  0x004u
#define GP_HDR_GIT_PROTOCOL      0x008u
#define GP_HDR_ACCEPT            0x010u
#define GP_HDR_CONTENT_LENGTH    0x020u
#define GP_HDR_TRANSFER_ENCODING 0x040u
#define GP_HDR_HOST              0x080u
#define GP_HDR_EXPECT            0x100u

struct gp_http_req {
    char method[8];
    char path[1024]; /* without the query */
    char query[512];
    char authorization[10240];
    char content_type[128];
    char content_encoding[32];
    char git_protocol[256];
    char accept[256];
    int64_t content_length; /* -1 when absent */
    int chunked;
    int expect_continue;
    unsigned seen; /* GP_HDR_* of the headers present */
};

/* Parses head[0..len), which ends with the blank line ("\r\n\r\n") and is
 * at most GP_HTTP_HEAD_MAX bytes. Only the headers above are kept, with
 * surrounding spaces and tabs removed; a kept value that does not fit its
 * field is refused, never truncated. Returns 0, AL_ETOOBIG, or AL_EINVAL
 * (answer 400; al_error_last() names the header, safe to show) when:
 *  - a NUL byte, or a CR or LF that does not end a line, is anywhere;
 *  - the request line is not "METHOD SP target SP HTTP/1.0|1.1" with a
 *    token method and a target of visible ASCII;
 *  - a header line starts with a space or tab (obs-fold), its name is not a
 *    token directly followed by ':', or its value holds a control byte
 *    (below 0x20 other than tab, or 0x7f);
 *  - one of the GP_HDR_* headers appears twice;
 *  - Content-Length is not a decimal number, Transfer-Encoding is not
 *    "chunked", or both are present. */
int gp_http_head_parse(struct gp_http_req *req, const char *head, size_t len);

#endif
