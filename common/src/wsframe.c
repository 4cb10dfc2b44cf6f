/* WebSocket frames (airlock/wsframe.h). Every length comes from the
 * untrusted header and is checked against the bytes at hand and the
 * caller's limit before use. */
#include "airlock/wsframe.h"

#include "airlock/error.h"

#include <string.h>

static int is_control(unsigned op)
{
    return op >= 0x8;
}

static int known_opcode(unsigned op)
{
    return op == AL_WS_CONT || op == AL_WS_TEXT || op == AL_WS_BINARY || op == AL_WS_CLOSE ||
           op == AL_WS_PING || op == AL_WS_PONG;
}

long al_ws_frame_parse(struct al_ws_frame *out, const unsigned char *buf, size_t len, int masked,
                       size_t max_payload)
{
    if (len < 2)
        return 0;
    unsigned op = buf[0] & 0x0f;
    int fin = (buf[0] & 0x80) != 0;
    int has_mask = (buf[1] & 0x80) != 0;
    uint64_t plen = buf[1] & 0x7f;
    if ((buf[0] & 0x70) != 0 || !known_opcode(op) || has_mask != (masked != 0))
        return AL_EINVAL;
    if (is_control(op) && (!fin || plen > AL_WS_MAX_CONTROL))
        return AL_EINVAL;
    size_t hlen = 2;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = (uint64_t)buf[2] << 8 | buf[3];
        hlen = 4;
        if (plen < 126)
            return AL_EINVAL; /* not the shortest form */
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | buf[2 + i];
        hlen = 10;
        if (plen >> 63 || plen <= 0xffff)
            return AL_EINVAL;
    }
    if (plen > max_payload)
        return AL_ETOOBIG;
    if (has_mask)
        hlen += 4;
    if (len < hlen || len - hlen < plen)
        return 0;
    memset(out, 0, sizeof(*out));
    out->fin = fin;
    out->opcode = (enum al_ws_opcode)op;
    out->masked = has_mask;
    if (has_mask)
        memcpy(out->mask, buf + hlen - 4, 4);
    out->header_len = hlen;
    out->payload_len = (size_t)plen;
    return (long)(hlen + plen);
}

void al_ws_unmask(unsigned char *data, size_t len, const unsigned char mask[4], size_t offset)
{
    for (size_t i = 0; i < len; i++)
        data[i] ^= mask[(offset + i) & 3];
}

int al_ws_msg_step(struct al_ws_msgstate *st, const struct al_ws_frame *f)
{
    int op;
    if (is_control(f->opcode))
        return AL_EINVAL;
    if (f->opcode == AL_WS_CONT) {
        if (!st->opcode)
            return AL_EINVAL; /* nothing to continue */
        op = st->opcode;
    } else {
        if (st->opcode)
            return AL_EINVAL; /* the last message is not over */
        op = f->opcode;
    }
    st->opcode = f->fin ? 0 : (enum al_ws_opcode)op;
    return op;
}

long al_ws_header_encode(unsigned char *buf, size_t cap, int fin, enum al_ws_opcode opcode,
                         uint64_t payload_len, const unsigned char *mask)
{
    unsigned op = (unsigned)opcode;
    if (!known_opcode(op) || (is_control(op) && (!fin || payload_len > AL_WS_MAX_CONTROL)) ||
        payload_len >> 63)
        return AL_EINVAL;
    size_t hlen = 2 + (payload_len > 0xffff ? 8 : payload_len > 125 ? 2 : 0) + (mask ? 4 : 0);
    if (cap < hlen)
        return AL_ETOOBIG;
    buf[0] = (unsigned char)((fin ? 0x80 : 0) | op);
    unsigned char m = mask ? 0x80 : 0;
    size_t off = 2;
    if (payload_len > 0xffff) {
        buf[1] = m | 127;
        for (int i = 0; i < 8; i++)
            buf[2 + i] = (unsigned char)(payload_len >> (56 - 8 * i));
        off = 10;
    } else if (payload_len > 125) {
        buf[1] = m | 126;
        buf[2] = (unsigned char)(payload_len >> 8);
        buf[3] = (unsigned char)payload_len;
        off = 4;
    } else {
        buf[1] = (unsigned char)(m | payload_len);
    }
    if (mask)
        memcpy(buf + off, mask, 4);
    return (long)hlen;
}

size_t al_ws_close_payload(unsigned char *out, uint16_t code, const char *reason)
{
    out[0] = (unsigned char)(code >> 8);
    out[1] = (unsigned char)code;
    size_t n = reason ? strlen(reason) : 0;
    if (n > AL_WS_MAX_CONTROL - 2) {
        n = AL_WS_MAX_CONTROL - 2;
        /* back off to the start of a UTF-8 sequence */
        while (n > 0 && ((unsigned char)reason[n] & 0xc0) == 0x80)
            n--;
    }
    if (n)
        memcpy(out + 2, reason, n);
    return 2 + n;
}

int al_ws_close_parse(const unsigned char *payload, size_t len, uint16_t *code)
{
    if (len == 0) {
        *code = 1005;
        return 0;
    }
    if (len == 1)
        return AL_EINVAL;
    uint16_t c = (uint16_t)(payload[0] << 8 | payload[1]);
    if (!((c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999)))
        return AL_EINVAL;
    *code = c;
    return 0;
}
