/* SOCKS5 greeting/request parser (RFC 1928), CONNECT with no auth only. */
#include "socks5.h"

#include "airlock/error.h"

#include <netinet/in.h>
#include <string.h>

int np_socks5_parse_greeting(const uint8_t *buf, size_t len, bool *noauth)
{
    *noauth = false;
    if (len < 1)
        return 0;
    if (buf[0] != 5)
        return AL_EINVAL;
    if (len < 2)
        return 0;
    size_t n = buf[1];
    if (n == 0)
        return AL_EINVAL;
    if (len < 2 + n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (buf[2 + i] == 0x00)
            *noauth = true;
    return (int)(2 + n);
}

static int fail(struct np_socks5_request *r, uint8_t reply)
{
    r->reply = reply;
    return AL_EINVAL;
}

static bool host_byte_ok(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || c >= 0x80;
}

int np_socks5_parse_request(struct np_socks5_request *out, const uint8_t *buf, size_t len)
{
    struct np_socks5_request *r = out;
    size_t alen, need;

    memset(r, 0, sizeof(*r));
    if (len < 4)
        return 0;
    r->cmd = buf[1];
    r->atyp = buf[3];
    if (buf[0] != 5 || buf[2] != 0)
        return fail(r, NP_SOCKS5_GENERAL_FAILURE);
    if (r->cmd != NP_SOCKS5_CMD_CONNECT)
        return fail(r, NP_SOCKS5_CMD_UNSUPPORTED);
    switch (r->atyp) {
    case 1:
        alen = 4;
        need = 4 + 4 + 2;
        break;
    case 4:
        alen = 16;
        need = 4 + 16 + 2;
        break;
    case 3:
        if (len < 5)
            return 0;
        alen = buf[4];
        if (alen == 0)
            return fail(r, NP_SOCKS5_GENERAL_FAILURE);
        need = 5 + alen + 2;
        break;
    default:
        return fail(r, NP_SOCKS5_ATYP_UNSUPPORTED);
    }
    if (len < need)
        return 0;
    if (r->atyp == 3) {
        const uint8_t *name = buf + 5;
        for (size_t i = 0; i < alen; i++)
            if (!host_byte_ok(name[i]))
                return fail(r, NP_SOCKS5_NOT_ALLOWED);
        memcpy(r->host, name, alen);
        r->host[alen] = '\0';
    } else {
        r->is_ip = true;
        r->addr.family = r->atyp == 1 ? AF_INET : AF_INET6;
        memcpy(r->addr.bytes, buf + 4, alen);
        al_addr_format(&r->addr, r->host, sizeof(r->host));
    }
    r->port = (uint16_t)(buf[need - 2] << 8 | buf[need - 1]);
    if (r->port == 0)
        return fail(r, NP_SOCKS5_GENERAL_FAILURE);
    return (int)need;
}

size_t np_socks5_reply(uint8_t *out, uint8_t code, const struct al_addr *bound, uint16_t port)
{
    size_t n = 4;
    out[0] = 5;
    out[1] = code;
    out[2] = 0;
    if (bound && bound->family == AF_INET6) {
        out[3] = 4;
        memcpy(out + 4, bound->bytes, 16);
        n += 16;
    } else {
        out[3] = 1;
        if (bound)
            memcpy(out + 4, bound->bytes, 4);
        else
            memset(out + 4, 0, 4);
        n += 4;
    }
    out[n++] = (uint8_t)(port >> 8);
    out[n++] = (uint8_t)port;
    return n;
}
