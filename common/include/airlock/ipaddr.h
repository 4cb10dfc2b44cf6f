/* IP addresses: literal parsing (inet_aton forms included), CIDR matching,
 * and the SSRF classifier. */
#ifndef AIRLOCK_IPADDR_H
#define AIRLOCK_IPADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct al_addr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t bytes[16]; /* network order; IPv4 uses bytes[0..3] */
};

struct al_cidr {
    struct al_addr addr;
    unsigned prefix;
};

enum al_addr_class {
    AL_ADDR_PUBLIC = 0,
    AL_ADDR_LOOPBACK,
    AL_ADDR_UNSPECIFIED,
    AL_ADDR_PRIVATE,   /* RFC 1918, fc00::/7 */
    AL_ADDR_LINKLOCAL, /* 169.254/16, fe80::/10 */
    AL_ADDR_CGNAT,     /* 100.64/10 */
    AL_ADDR_MULTICAST, /* 224/4, ff00::/8 */
    AL_ADDR_BROADCAST, /* 255.255.255.255 */
    AL_ADDR_RESERVED,  /* 0/8, 240/4, 198.18/15, 192.0.0/24, documentation, ... */
    AL_ADDR_EMBEDS_V4, /* ::ffff:0:0/96, ::/96, 64:ff9b::/96, 2002::/16, 2001::/32 */
};

/* Parses `host` (`len` bytes, no NUL needed) as an IP literal: IPv6 with or
 * without brackets (no zone id), or IPv4 in every form inet_aton(3) accepts
 * (1 to 4 parts, decimal, 0-octal, 0x-hex: "2130706433", "0177.0.0.1",
 * "0x7f.1", "127.1"). One trailing dot is ignored.
 * Returns 0 and *out; AL_ENOTFOUND when `host` is a name; AL_EINVAL when it
 * looks numeric (last label is a number) but is not a valid address, so it
 * must not be looked up as a name either. */
int al_addr_parse(struct al_addr *out, const char *host, size_t len);

/* Classifies an address for the SSRF guard. */
enum al_addr_class al_addr_classify(const struct al_addr *addr);

/* A short name for a class ("loopback", ...). */
const char *al_addr_class_name(enum al_addr_class cls);

/* Parses "IP" or "IP/PREFIX" (IPv6 may be bracketed). 0 or AL_EINVAL. */
int al_cidr_parse(struct al_cidr *out, const char *s);

/* True when `addr` is inside `cidr`. An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) is compared as the IPv4 address it carries. */
bool al_cidr_contains(const struct al_cidr *cidr, const struct al_addr *addr);

/* Writes the canonical text form into `out` (at least 46 bytes). */
void al_addr_format(const struct al_addr *addr, char *out, size_t size);

/* Converts to a sockaddr with `port`; returns its length. */
socklen_t al_addr_to_sockaddr(const struct al_addr *addr, uint16_t port,
                              struct sockaddr_storage *out);

/* Converts from a sockaddr (AF_INET/AF_INET6). 0 or AL_EINVAL. */
int al_addr_from_sockaddr(struct al_addr *out, const struct sockaddr *sa);

#endif
