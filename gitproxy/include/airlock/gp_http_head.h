/* Parsing of an HTTP/1.1 request head (request line and headers), the part
 * of the listener's HTTP that looks at untrusted bytes. */
#ifndef AIRLOCK_GP_HTTP_HEAD_H
#define AIRLOCK_GP_HTTP_HEAD_H

#include <stddef.h>
#include <stdint.h>

#define GP_HTTP_HEAD_MAX 16384

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
};

/* Parses head[0..len), which ends with the blank line ("\r\n\r\n") and is
 * at most GP_HTTP_HEAD_MAX bytes. Only the headers above are kept (values
 * truncated to their fields, except Authorization which must fit). 0,
 * AL_EINVAL (malformed: bad request line, header without colon, bad
 * Content-Length, unsupported Transfer-Encoding, both length and chunked) or
 * AL_ETOOBIG. */
int gp_http_head_parse(struct gp_http_req *req, const char *head, size_t len);

#endif
