/* The key holder's pure steps on a terminated connection (docs/netproxy.md,
 * "Processes"): what it writes upstream for a front's REQ_HEAD, and what it
 * tells the front about the upstream's response head. No I/O. */
#ifndef NP_KH_REQ_H
#define NP_KH_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/buf.h"
#include "airlock/credmask.h"
#include "kh_wire.h"

/* The request head to write upstream for `req` (a decoded REQ_HEAD) on
 * the connection OPEN made to `host` (as OPEN gave it) and `port`: its head
 * with every sentinel of a credential whose bit is set in `inject_ok`
 * replaced by the real value (al_cred_subst_head; `inject_ok` is the key
 * holder's own mask for `host`, never the front's word), then the framing
 * header the key holder writes itself: `Content-Length: content_length` for
 * NP_KH_FRAME_LENGTH (the caller's length: req->length, or the length of a
 * substituted body it buffered), `Transfer-Encoding: chunked` for
 * NP_KH_FRAME_CHUNKED, none for NP_KH_FRAME_NONE. Appended to `out` (whose
 * max bounds it).
 *
 * The key holder does not trust the front's head: it is refused
 * (AL_EINVAL) unless its request line is origin-form ("METHOD /path
 * HTTP/1.x"), every line ends with CRLF (no bare CR or LF, no folding),
 * every header line is "token:...", it has no Content-Length or
 * Transfer-Encoding (the upstream never sees framing the key holder did not
 * write), at most one Host header and that one naming `host` (any case, a
 * trailing dot, brackets for IPv6) with no port or `port`; and when a
 * value was put in, a Host header is required (a server behind a shared
 * address picks the site by it: no value goes to a site the certificate
 * check did not cover).
 *
 * Returns 0 with *used = the credentials replaced; AL_EPERM when a
 * sentinel of a credential whose bit is clear is in the head (*culprit =
 * its index; a front that checked would not have sent it); AL_EINVAL;
 * AL_ETOOBIG / AL_ENOMEM from `out`. On error nothing is appended (and
 * what was written is wiped). The real values only ever go to `out`,
 * never into an error message. */
int np_kh_req_head(struct al_buf *out, uint64_t *used, size_t *culprit,
                   const struct al_credset *set, uint64_t inject_ok, const char *host,
                   uint16_t port, const struct np_kh_msg *req, uint64_t content_length);

/* What the key holder tells the front about an upstream response head. */
struct np_kh_resp {
    uint16_t status;
    uint8_t framing; /* enum np_kh_framing of the body that follows */
    uint64_t length; /* with NP_KH_FRAME_LENGTH */
    bool close;      /* the upstream connection cannot be reused after it */
    bool interim;    /* a 1xx other than an accepted 101: the final head follows */
    bool upgraded;   /* a 101 to a request with NP_KH_REQ_UPGRADE: RELAY follows */
};

/* The response head at the start of buf[0..len) (the upstream's bytes),
 * for the front: `req_flags` are the request's NP_KH_REQ_* flags. Appends
 * the head to `out`, re-masked (every real value of `set` as its sentinel
 * or '*'s, and its base64 forms, as AL_SUBST_RESPONSE), and, when a body
 * follows, without its Content-Length and Transfer-Encoding lines (the
 * front frames the body for its client from *info); a head with no body
 * (HEAD, 1xx, 204, 304) keeps them. Returns the head's length in buf (> 0)
 * with *info filled; 0 when more bytes are needed; AL_EINVAL for a head
 * the key holder does not relay (malformed as np_http_parse_response says,
 * a status above 599, a transfer coding other than plain "chunked": the
 * front answers 502); AL_ETOOBIG / AL_ENOMEM. On error nothing is
 * appended. */
int np_kh_resp_head(struct al_buf *out, struct np_kh_resp *info, const struct al_credset *set,
                    const char *buf, size_t len, uint8_t req_flags);

#endif
