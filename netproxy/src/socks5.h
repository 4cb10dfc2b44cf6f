/* SOCKS5 (RFC 1928) server-side parser: greeting and request, no-auth only. */
#ifndef NP_SOCKS5_H
#define NP_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/ipaddr.h"

enum np_socks5_reply {
    NP_SOCKS5_SUCCEEDED = 0x00,
    NP_SOCKS5_GENERAL_FAILURE = 0x01,
    NP_SOCKS5_NOT_ALLOWED = 0x02, /* connection not allowed by ruleset */
    NP_SOCKS5_NET_UNREACHABLE = 0x03,
    NP_SOCKS5_HOST_UNREACHABLE = 0x04,
    NP_SOCKS5_REFUSED = 0x05,
    NP_SOCKS5_TTL_EXPIRED = 0x06,
    NP_SOCKS5_CMD_UNSUPPORTED = 0x07,
    NP_SOCKS5_ATYP_UNSUPPORTED = 0x08,
};

#define NP_SOCKS5_CMD_CONNECT  0x01
#define NP_SOCKS5_GREETING_MAX 257
#define NP_SOCKS5_REQUEST_MAX  262

struct np_socks5_request {
    uint8_t cmd;
    uint8_t atyp;   /* 1 IPv4, 3 domain, 4 IPv6 */
    char host[256]; /* domain as sent, or the IP literal's text; NUL-terminated */
    bool is_ip;     /* atyp 1 or 4: `addr` is set */
    struct al_addr addr;
    uint16_t port;
    uint8_t reply; /* on error: the reply code to send */
};

/* Parses the method greeting (VER NMETHODS METHODS...). Returns its length
 * (> 0) with *noauth telling whether method 0x00 was offered; 0 when more
 * bytes are needed; AL_EINVAL for a wrong version or no methods. */
int np_socks5_parse_greeting(const uint8_t *buf, size_t len, bool *noauth);

/* Parses a request (VER CMD RSV ATYP DST.ADDR DST.PORT). Returns its length
 * (> 0) for a well-formed CONNECT; 0 when more bytes are needed; AL_EINVAL
 * with out->reply set otherwise: 0x07 for BIND / UDP ASSOCIATE / unknown
 * commands, 0x08 for unknown address types, 0x02 for a domain with NUL or
 * other bytes not valid in a host name, 0x01 for other malformed requests
 * (wrong version, reserved byte, empty domain, port 0). */
int np_socks5_parse_request(struct np_socks5_request *out, const uint8_t *buf, size_t len);

/* Writes a reply with `code` and bound address `bound` (NULL: 0.0.0.0:0)
 * into `out` (at least 22 bytes). Returns its length. */
size_t np_socks5_reply(uint8_t *out, uint8_t code, const struct al_addr *bound, uint16_t port);

#endif
