/* The channel's message format (gp_chan.h): writing and reading fields,
 * and the decoders of the messages a key holder reads from a worker. Pure:
 * no I/O; fuzzed (fuzz_chan). */
#include "gp_chan.h"
#include "airlock/error.h"

#include <string.h>

static int printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

static void wput(struct gp_wire *w, const void *p, size_t n)
{
    if (w->err)
        return;
    if (n > w->cap - w->len) {
        w->err = AL_ETOOBIG;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void gp_wire_init(struct gp_wire *w, uint8_t *buf, size_t cap, enum gp_chan_type type)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->err = cap == 0 ? AL_ETOOBIG : 0;
    gp_wire_u8(w, (uint8_t)type);
}

void gp_wire_u8(struct gp_wire *w, uint8_t v)
{
    wput(w, &v, 1);
}

void gp_wire_u16(struct gp_wire *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    wput(w, b, 2);
}

static void wire_u32(struct gp_wire *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wput(w, b, 4);
}

void gp_wire_u64(struct gp_wire *w, uint64_t v)
{
    wire_u32(w, (uint32_t)v);
    wire_u32(w, (uint32_t)(v >> 32));
}

void gp_wire_strn(struct gp_wire *w, const char *s, size_t n)
{
    if (!w->err && (n > 0xffff || !printable(s, n)))
        w->err = AL_EINVAL;
    gp_wire_u16(w, (uint16_t)n);
    wput(w, s, n);
}

void gp_wire_str(struct gp_wire *w, const char *s)
{
    gp_wire_strn(w, s ? s : "", s ? strlen(s) : 0);
}

void gp_wire_bin(struct gp_wire *w, const void *p, size_t n)
{
    if (!w->err && n > UINT32_MAX)
        w->err = AL_ETOOBIG;
    wire_u32(w, (uint32_t)n);
    wput(w, p, n);
}

void gp_wire_raw(struct gp_wire *w, const void *p, size_t n)
{
    wput(w, p, n);
}

int gp_rd_init(struct gp_rd *r, const void *msg, size_t len)
{
    r->p = msg;
    r->len = len;
    r->off = 0;
    r->err = 0;
    if (len == 0) {
        r->err = AL_EINVAL;
        return 0;
    }
    r->off = 1;
    return r->p[0];
}

static const uint8_t *rget(struct gp_rd *r, size_t n)
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

uint8_t gp_rd_u8(struct gp_rd *r)
{
    const uint8_t *b = rget(r, 1);
    return b ? b[0] : 0;
}

uint16_t gp_rd_u16(struct gp_rd *r)
{
    const uint8_t *b = rget(r, 2);
    return b ? (uint16_t)(b[0] | b[1] << 8) : 0;
}

static uint32_t rd_u32(struct gp_rd *r)
{
    const uint8_t *b = rget(r, 4);
    return b ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24
             : 0;
}

uint64_t gp_rd_u64(struct gp_rd *r)
{
    uint64_t lo = rd_u32(r);
    return lo | (uint64_t)rd_u32(r) << 32;
}

void gp_rd_str(struct gp_rd *r, char *dst, size_t cap)
{
    size_t n = gp_rd_u16(r);
    const uint8_t *s = rget(r, n);
    dst[0] = '\0';
    if (!s)
        return;
    if (n >= cap || !printable((const char *)s, n)) {
        r->err = AL_EINVAL;
        return;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

const uint8_t *gp_rd_bin(struct gp_rd *r, size_t *len)
{
    size_t n = rd_u32(r);
    const uint8_t *b = rget(r, n);
    *len = b ? n : 0;
    return b;
}

const uint8_t *gp_rd_rest(struct gp_rd *r, size_t *len)
{
    *len = r->err ? 0 : r->len - r->off;
    const uint8_t *b = r->err ? NULL : r->p + r->off;
    r->off = r->len;
    return b;
}

int gp_rd_end(struct gp_rd *r, const char *what)
{
    if (r->err || r->off != r->len)
        return al_error_set(AL_EINVAL, "malformed %s message", what);
    return 0;
}

/* ---- the messages a worker sends (read by the key holder) ---- */

int gp_msg_auth_decode(struct gp_msg_auth *out, const void *msg, size_t len)
{
    memset(out, 0, sizeof(*out));
    struct gp_rd r;
    if (gp_rd_init(&r, msg, len) != GP_CH_AUTH)
        return al_error_set(AL_EINVAL, "not an AUTH message");
    out->op = gp_rd_u8(&r);
    gp_rd_str(&r, out->host, sizeof(out->host));
    gp_rd_str(&r, out->owner, sizeof(out->owner));
    gp_rd_str(&r, out->name, sizeof(out->name));
    gp_rd_str(&r, out->token, sizeof(out->token));
    return gp_rd_end(&r, "AUTH");
}

int gp_msg_cmd_decode(struct gp_msg_cmd *out, const void *msg, size_t len)
{
    memset(out, 0, sizeof(*out));
    struct gp_rd r;
    if (gp_rd_init(&r, msg, len) != GP_CH_PUSH_CMD)
        return al_error_set(AL_EINVAL, "not a PUSH_CMD message");
    gp_rd_str(&r, out->old_oid, sizeof(out->old_oid));
    gp_rd_str(&r, out->new_oid, sizeof(out->new_oid));
    gp_rd_str(&r, out->ref, sizeof(out->ref));
    return gp_rd_end(&r, "PUSH_CMD");
}

int gp_msg_str_decode(int type, char *dst, size_t cap, const void *msg, size_t len)
{
    if (cap)
        dst[0] = '\0';
    struct gp_rd r;
    if (gp_rd_init(&r, msg, len) != type)
        return al_error_set(AL_EINVAL, "unexpected message type");
    gp_rd_str(&r, dst, cap);
    return gp_rd_end(&r, "string");
}

int gp_msg_request_decode(struct gp_msg_request *out, const void *msg, size_t len)
{
    memset(out, 0, sizeof(*out));
    struct gp_rd r;
    if (gp_rd_init(&r, msg, len) != GP_CH_REQUEST)
        return al_error_set(AL_EINVAL, "not a REQUEST message");
    out->kind = gp_rd_u8(&r);
    gp_rd_str(&r, out->git_protocol, sizeof(out->git_protocol));
    out->encoding = gp_rd_u8(&r);
    out->length = gp_rd_u64(&r);
    out->direct = gp_rd_u8(&r);
    return gp_rd_end(&r, "REQUEST");
}

int gp_msg_refuse_decode(struct gp_msg_refuse *out, const void *msg, size_t len)
{
    memset(out, 0, sizeof(*out));
    struct gp_rd r;
    if (gp_rd_init(&r, msg, len) != GP_CH_REFUSE_REF)
        return al_error_set(AL_EINVAL, "not a REFUSE_REF message");
    out->index = gp_rd_u16(&r);
    gp_rd_str(&r, out->reason, sizeof(out->reason));
    return gp_rd_end(&r, "REFUSE_REF");
}

int gp_msg_outcome_decode(struct gp_msg_outcome *out, const void *msg, size_t len)
{
    memset(out, 0, sizeof(*out));
    struct gp_rd r;
    if (gp_rd_init(&r, msg, len) != GP_CH_OUTCOME)
        return al_error_set(AL_EINVAL, "not an OUTCOME message");
    gp_rd_str(&r, out->decision, sizeof(out->decision));
    gp_rd_str(&r, out->reason, sizeof(out->reason));
    return gp_rd_end(&r, "OUTCOME");
}
