/* The head of an HTTP proxy's answer to CONNECT, as airlock-connect reads
 * it: status code, X-Airlock-Error, Content-Length. */
#ifndef NP_CONNECT_REPLY_H
#define NP_CONNECT_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define NP_CONNECT_REPLY_MAX 16384 /* longest head accepted */

struct np_connect_reply {
    int status;            /* 100..599 */
    char error[64];        /* X-Airlock-Error value (truncated), "" when absent */
    size_t content_length; /* valid when has_length */
    bool has_length;
};

/* Parses the reply head at the start of buf[0..len) (no NUL needed).
 * Returns the head's length through its blank line when it is complete; 0
 * when more bytes are needed; AL_ETOOBIG when no blank line comes within
 * NP_CONNECT_REPLY_MAX bytes; AL_EINVAL when the status line or a header
 * line is malformed. Lines end with CRLF or LF. */
int np_connect_reply_parse(struct np_connect_reply *out, const char *buf, size_t len);

#endif
