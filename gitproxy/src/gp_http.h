/* A minimal HTTP/1.1 server side for one connection: request head, body
 * (Content-Length or chunked) as a stream, close-delimited responses. */
#ifndef GP_HTTP_H
#define GP_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "airlock/gp_http_head.h"

struct gp_conn {
    int fd;
    char in[GP_HTTP_HEAD_MAX];
    size_t in_start, in_end;
    /* body state */
    int chunked;
    uint64_t remaining; /* bytes left in the body or in the current chunk */
    int body_done;
    int chunk_trailer;  /* a chunk's data ended; its CRLF is pending */
    uint64_t body_read; /* total body bytes delivered */
    int continue_pending;
    int headers_sent;
};

/* Reads and parses the request head. 0, AL_EINVAL (malformed: answer 400),
 * AL_ETOOBIG (head too big), AL_EIO (connection gone). */
int gp_http_read_request(struct gp_conn *c, struct gp_http_req *req);

/* Reads up to `max` body bytes into dst: > 0 bytes, 0 at the end of the body,
 * AL_EIO or AL_EINVAL (bad chunk framing). */
ssize_t gp_http_read_body(struct gp_conn *c, void *dst, size_t max);

/* Writes every byte (MSG_NOSIGNAL). 0 or AL_EIO. */
int gp_http_write(struct gp_conn *c, const void *data, size_t len);

/* The same on a socket descriptor (the key holder's direct answers). */
int gp_write_all(int fd, const void *data, size_t len);

/* Sends a status line and headers for a close-delimited response; `extra`
 * holds further header lines each ending in CRLF (may be NULL). */
int gp_http_send_head(struct gp_conn *c, int status, const char *content_type, const char *extra);

/* A whole response: head, then body[0..len). */
int gp_http_respond(struct gp_conn *c, int status, const char *content_type, const char *extra,
                    const void *body, size_t len);

#endif
