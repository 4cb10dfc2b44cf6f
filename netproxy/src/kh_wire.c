/* The front ↔ key holder channel's message format (kh_wire.h): one encoder
 * and one decoder that check the same bounds. Pure: no I/O; fuzzed
 * (fuzz_kh_wire). */
#include "kh_wire.h"
#include "airlock/error.h"

#include <string.h>

/* --- writing --- */

struct wr {
    uint8_t *buf;
    size_t len, cap;
    int err;
};

static void wput(struct wr *w, const void *p, size_t n)
{
    if (w->err)
        return;
    if (n > w->cap - w->len) {
        w->err = AL_ETOOBIG;
        return;
    }
    if (n)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void w_u8(struct wr *w, uint8_t v)
{
    wput(w, &v, 1);
}

static void w_u16(struct wr *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    wput(w, b, 2);
}

static void w_u32(struct wr *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wput(w, b, 4);
}

static void w_u64(struct wr *w, uint64_t v)
{
    w_u32(w, (uint32_t)v);
    w_u32(w, (uint32_t)(v >> 32));
}

static void w_str(struct wr *w, const char *s)
{
    size_t n = strlen(s);
    w_u16(w, (uint16_t)n); /* n was bounded by the caller's check */
    wput(w, s, n);
}

static void w_bin(struct wr *w, const uint8_t *p, size_t n)
{
    w_u32(w, (uint32_t)n); /* n was bounded by the caller's check */
    wput(w, p, n);
}

/* --- reading --- */

struct rd {
    const uint8_t *p;
    size_t len, off;
    int err;
};

static const uint8_t *rget(struct rd *r, size_t n)
{
    if (r->err)
        return NULL;
    if (n > r->len - r->off) {
        r->err = AL_EINVAL;
        return NULL;
    }
    const uint8_t *at = r->p + r->off;
    r->off += n;
    return at;
}

static uint8_t r_u8(struct rd *r)
{
    const uint8_t *b = rget(r, 1);
    return b ? b[0] : 0;
}

static uint16_t r_u16(struct rd *r)
{
    const uint8_t *b = rget(r, 2);
    return b ? (uint16_t)(b[0] | b[1] << 8) : 0;
}

static uint32_t r_u32(struct rd *r)
{
    const uint8_t *b = rget(r, 4);
    return b ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24
             : 0;
}

static uint64_t r_u64(struct rd *r)
{
    uint64_t lo = r_u32(r);
    return lo | (uint64_t)r_u32(r) << 32;
}

/* A str field into dst (cap bytes with its NUL): its bytes are only
 * copied; the caller checks their class. Too long for dst or holding a
 * NUL (a string is never cut short): AL_EINVAL. */
static void r_str(struct rd *r, char *dst, size_t cap)
{
    size_t n = r_u16(r);
    if (!r->err && n >= cap)
        r->err = AL_EINVAL;
    const uint8_t *b = rget(r, n);
    if (!b)
        return;
    if (memchr(b, '\0', n)) {
        r->err = AL_EINVAL;
        return;
    }
    memcpy(dst, b, n);
    dst[n] = '\0';
}

static const uint8_t *r_bin(struct rd *r, size_t *n)
{
    *n = r_u32(r);
    const uint8_t *b = rget(r, *n);
    if (!b)
        *n = 0;
    return b;
}

static const uint8_t *r_rest(struct rd *r, size_t *n)
{
    *n = r->err ? 0 : r->len - r->off;
    return rget(r, *n);
}

/* --- the bounds both sides check --- */

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* A session id: 1..NP_KH_SESSION_MAX printable bytes. */
static bool session_ok(const char *s)
{
    size_t n = strnlen(s, NP_KH_SESSION_MAX + 1);
    return n >= 1 && n <= NP_KH_SESSION_MAX && printable(s, n);
}

/* A host as the proxy normalised it: a name, an IPv4 or an IPv6 text
 * (letters, digits, '.', '-', '_', ':'), 1..NP_KH_HOST_MAX bytes. */
static bool host_ok(const char *s)
{
    size_t n = strnlen(s, NP_KH_HOST_MAX + 1);
    if (n < 1 || n > NP_KH_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':'))
            return false;
    }
    return true;
}

/* An X-Airlock-Error token or an ABORT reason: 1..NP_KH_TOKEN_MAX of
 * [a-z0-9-]. */
static bool token_ok(const char *s)
{
    size_t n = strnlen(s, NP_KH_TOKEN_MAX + 1);
    if (n < 1 || n > NP_KH_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static bool why_ok(const char *s)
{
    size_t n = strnlen(s, NP_KH_WHY_MAX + 1);
    return n <= NP_KH_WHY_MAX && printable(s, n);
}

/* An HTTP head: 4..max bytes, no NUL, ending with the blank line. */
static bool head_ok(const uint8_t *p, size_t n, size_t max)
{
    return p && n >= 4 && n <= max && !memchr(p, '\0', n) && memcmp(p + n - 4, "\r\n\r\n", 4) == 0;
}

static bool data_ok(const uint8_t *p, size_t n)
{
    return p && n >= 1 && n <= NP_KH_DATA_MAX;
}

/* Framing and length agree: a length only with NP_KH_FRAME_LENGTH;
 * NP_KH_FRAME_CLOSE only for responses. */
static bool framing_ok(uint8_t framing, uint64_t length, bool response)
{
    switch (framing) {
    case NP_KH_FRAME_LENGTH:
        return true;
    case NP_KH_FRAME_NONE:
    case NP_KH_FRAME_CHUNKED:
        return length == 0;
    case NP_KH_FRAME_CLOSE:
        return response && length == 0;
    default:
        return false;
    }
}

/* Which side may send `type`. */
static bool sent_by(uint8_t type, enum np_kh_from from)
{
    switch (type) {
    case NP_KH_OPEN:
    case NP_KH_REQ_HEAD:
    case NP_KH_BODY:
    case NP_KH_BODY_END:
    case NP_KH_ABORT:
        return from == NP_KH_FROM_FRONT;
    case NP_KH_OPEN_OK:
    case NP_KH_RESP_HEAD:
    case NP_KH_RESP_BODY:
    case NP_KH_RESP_END:
    case NP_KH_ERROR:
        return from == NP_KH_FROM_KEYHOLDER;
    case NP_KH_RELAY:
    case NP_KH_CLOSE:
        return from == NP_KH_FROM_FRONT || from == NP_KH_FROM_KEYHOLDER;
    default:
        return false;
    }
}

/* Whether the fields of `m` that its type uses are in bounds (the same
 * check for a message about to be sent and one just read). */
static bool fields_ok(const struct np_kh_msg *m)
{
    switch (m->type) {
    case NP_KH_OPEN:
        return session_ok(m->session) && host_ok(m->host) && m->port != 0 &&
               (m->flags & ~NP_KH_OPEN_ALL) == 0;
    case NP_KH_REQ_HEAD:
        return (m->flags & ~NP_KH_REQ_ALL) == 0 && framing_ok(m->framing, m->length, false) &&
               head_ok(m->data, m->data_len, NP_KH_REQ_HEAD_MAX);
    case NP_KH_RESP_HEAD:
        return m->status >= 100 && m->status <= 599 && framing_ok(m->framing, m->length, true) &&
               (m->status >= 200 || m->framing == NP_KH_FRAME_NONE) &&
               head_ok(m->data, m->data_len, NP_KH_RESP_HEAD_MAX);
    case NP_KH_BODY:
    case NP_KH_RESP_BODY:
    case NP_KH_RELAY:
        return data_ok(m->data, m->data_len);
    case NP_KH_ABORT:
        return token_ok(m->error);
    case NP_KH_RESP_END:
        return m->close <= 1;
    case NP_KH_ERROR:
        return m->status >= 400 && m->status <= 599 && m->close <= 1 && token_ok(m->error) &&
               why_ok(m->why);
    case NP_KH_BODY_END:
    case NP_KH_OPEN_OK:
    case NP_KH_CLOSE:
        return true;
    default:
        return false;
    }
}

int np_kh_msg_encode(size_t *out_len, uint8_t *buf, size_t cap, const struct np_kh_msg *m)
{
    struct wr w = {.buf = buf, .cap = cap};

    *out_len = 0;
    if (!fields_ok(m))
        return al_error_set(AL_EINVAL, "kh channel: message %u has a field out of bounds",
                            (unsigned)m->type);
    w_u8(&w, m->type);
    switch (m->type) {
    case NP_KH_OPEN:
        w_str(&w, m->session);
        w_str(&w, m->host);
        w_u16(&w, m->port);
        w_u8(&w, m->flags);
        break;
    case NP_KH_REQ_HEAD:
        w_u8(&w, m->flags);
        w_u8(&w, m->framing);
        w_u64(&w, m->length);
        w_bin(&w, m->data, m->data_len);
        break;
    case NP_KH_RESP_HEAD:
        w_u16(&w, m->status);
        w_u8(&w, m->framing);
        w_u64(&w, m->length);
        w_u64(&w, m->used);
        w_bin(&w, m->data, m->data_len);
        break;
    case NP_KH_BODY:
    case NP_KH_RESP_BODY:
    case NP_KH_RELAY:
        wput(&w, m->data, m->data_len);
        break;
    case NP_KH_ABORT:
        w_str(&w, m->error);
        break;
    case NP_KH_RESP_END:
        w_u8(&w, m->close);
        break;
    case NP_KH_ERROR:
        w_u16(&w, m->status);
        w_u8(&w, m->close);
        w_u64(&w, m->used);
        w_str(&w, m->error);
        w_str(&w, m->why);
        break;
    default: /* no fields */
        break;
    }
    if (w.err)
        return al_error_set(w.err, "kh channel: message %u does not fit in %zu bytes",
                            (unsigned)m->type, cap);
    *out_len = w.len;
    return 0;
}

int np_kh_msg_decode(struct np_kh_msg *out, const void *msg, size_t len, enum np_kh_from from)
{
    struct rd r = {.p = msg, .len = len};

    memset(out, 0, sizeof(*out));
    if (len == 0 || len > NP_KH_MSG_MAX)
        return al_error_set(AL_EINVAL, "kh channel: message of %zu bytes", len);
    out->type = r_u8(&r);
    if (!sent_by(out->type, from))
        return al_error_set(AL_EINVAL, "kh channel: unexpected message type %u",
                            (unsigned)out->type);
    switch (out->type) {
    case NP_KH_OPEN:
        r_str(&r, out->session, sizeof(out->session));
        r_str(&r, out->host, sizeof(out->host));
        out->port = r_u16(&r);
        out->flags = r_u8(&r);
        break;
    case NP_KH_REQ_HEAD:
        out->flags = r_u8(&r);
        out->framing = r_u8(&r);
        out->length = r_u64(&r);
        out->data = r_bin(&r, &out->data_len);
        break;
    case NP_KH_RESP_HEAD:
        out->status = r_u16(&r);
        out->framing = r_u8(&r);
        out->length = r_u64(&r);
        out->used = r_u64(&r);
        out->data = r_bin(&r, &out->data_len);
        break;
    case NP_KH_BODY:
    case NP_KH_RESP_BODY:
    case NP_KH_RELAY:
        out->data = r_rest(&r, &out->data_len);
        break;
    case NP_KH_ABORT:
        r_str(&r, out->error, sizeof(out->error));
        break;
    case NP_KH_RESP_END:
        out->close = r_u8(&r);
        break;
    case NP_KH_ERROR:
        out->status = r_u16(&r);
        out->close = r_u8(&r);
        out->used = r_u64(&r);
        r_str(&r, out->error, sizeof(out->error));
        r_str(&r, out->why, sizeof(out->why));
        break;
    default: /* no fields */
        break;
    }
    if (r.err)
        return al_error_set(AL_EINVAL,
                            "kh channel: message %u is truncated or has a field "
                            "too long",
                            (unsigned)out->type);
    if (r.off != r.len)
        return al_error_set(AL_EINVAL, "kh channel: %zu bytes left over in message %u",
                            r.len - r.off, (unsigned)out->type);
    if (!fields_ok(out))
        return al_error_set(AL_EINVAL, "kh channel: message %u has a field out of bounds",
                            (unsigned)out->type);
    return 0;
}
