/* IP literal parsing and the SSRF address classifier (shared by the egress
 * proxy and airlockd's webhook URL check). */
#include "airlock/ipaddr.h"

#include "airlock/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* One inet_aton part: decimal, 0-prefixed octal or 0x-prefixed hex.
 * Returns 0 and *out, or AL_EINVAL (bad digit, empty, > 32 bits). */
static int parse_v4_part(const char *s, size_t len, uint32_t *out)
{
    unsigned base = 10;
    size_t i = 0;
    uint64_t v = 0;

    if (len == 0)
        return AL_EINVAL;
    if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2; /* "0x" alone is 0, as inet_aton has it */
    } else if (len >= 2 && s[0] == '0') {
        base = 8;
        i = 1;
    }
    for (; i < len; i++) {
        unsigned d;
        char c = s[i];
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return AL_EINVAL;
        if (d >= base)
            return AL_EINVAL;
        v = v * base + d;
        if (v > 0xffffffffu)
            return AL_EINVAL;
    }
    *out = (uint32_t)v;
    return 0;
}

/* True when the label [s, s+len) is a number in the inet_aton sense (all
 * decimal digits, or 0x followed by hex digits). */
static int label_is_numeric(const char *s, size_t len)
{
    size_t i = 0;
    int hex = 0;

    if (len == 0)
        return 0;
    if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        hex = 1;
        i = 2;
    }
    for (; i < len; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            continue;
        if (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            continue;
        return 0;
    }
    return 1;
}

static int parse_v4(struct al_addr *out, const char *s, size_t len)
{
    uint32_t parts[4];
    size_t n = 0, start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (n == 4)
                return AL_EINVAL;
            if (parse_v4_part(s + start, i - start, &parts[n]) < 0)
                return AL_EINVAL;
            n++;
            start = i + 1;
        }
    }
    uint32_t v;
    switch (n) {
    case 1:
        v = parts[0];
        break;
    case 2:
        if (parts[0] > 0xff || parts[1] > 0xffffff)
            return AL_EINVAL;
        v = parts[0] << 24 | parts[1];
        break;
    case 3:
        if (parts[0] > 0xff || parts[1] > 0xff || parts[2] > 0xffff)
            return AL_EINVAL;
        v = parts[0] << 24 | parts[1] << 16 | parts[2];
        break;
    default:
        for (int i = 0; i < 4; i++)
            if (parts[i] > 0xff)
                return AL_EINVAL;
        v = parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3];
        break;
    }
    memset(out, 0, sizeof(*out));
    out->family = AF_INET;
    out->bytes[0] = (uint8_t)(v >> 24);
    out->bytes[1] = (uint8_t)(v >> 16);
    out->bytes[2] = (uint8_t)(v >> 8);
    out->bytes[3] = (uint8_t)v;
    return 0;
}

int al_addr_parse(struct al_addr *out, const char *host, size_t len)
{
    char tmp[64];

    if (len > 0 && host[0] == '[') {
        if (len < 3 || host[len - 1] != ']')
            return AL_EINVAL;
        host++;
        len -= 2;
        if (len >= sizeof(tmp) || memchr(host, ':', len) == NULL)
            return AL_EINVAL;
    }
    if (memchr(host, ':', len)) {
        if (len >= sizeof(tmp))
            return AL_EINVAL;
        memcpy(tmp, host, len);
        tmp[len] = '\0';
        memset(out, 0, sizeof(*out));
        out->family = AF_INET6;
        /* inet_pton rejects zone ids ("%eth0") and anything else odd. */
        return inet_pton(AF_INET6, tmp, out->bytes) == 1 ? 0 : AL_EINVAL;
    }
    if (len > 0 && host[len - 1] == '.')
        len--;
    /* The last label decides: a numeric last label makes the whole host an
     * IPv4 literal or invalid (WHATWG URL rule), never a name to look up. */
    size_t last = len;
    while (last > 0 && host[last - 1] != '.')
        last--;
    if (!label_is_numeric(host + last, len - last))
        return AL_ENOTFOUND;
    return parse_v4(out, host, len);
}

static bool v4_in(const uint8_t *b, uint32_t net, unsigned prefix)
{
    uint32_t v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    uint32_t mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
    return (v & mask) == (net & mask);
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

static enum al_addr_class classify_v4(const uint8_t *b)
{
    static const struct {
        uint32_t net;
        unsigned prefix;
        enum al_addr_class cls;
    } table[] = {
        {0x00000000, 8, AL_ADDR_RESERVED}, /* "this network"; 0.0.0.0 below */
        {0x0a000000, 8, AL_ADDR_PRIVATE},
        {0x64400000, 10, AL_ADDR_CGNAT},
        {0x7f000000, 8, AL_ADDR_LOOPBACK},
        {0xa9fe0000, 16, AL_ADDR_LINKLOCAL}, /* includes 169.254.169.254 */
        {0xac100000, 12, AL_ADDR_PRIVATE},
        {0xc0000000, 24, AL_ADDR_RESERVED}, /* IETF protocol assignments */
        {0xc0000200, 24, AL_ADDR_RESERVED}, /* TEST-NET-1 */
        {0xc0586300, 24, AL_ADDR_RESERVED}, /* 6to4 relay anycast */
        {0xc0a80000, 16, AL_ADDR_PRIVATE},
        {0xc6120000, 15, AL_ADDR_RESERVED}, /* benchmarking */
        {0xc6336400, 24, AL_ADDR_RESERVED}, /* TEST-NET-2 */
        {0xcb007100, 24, AL_ADDR_RESERVED}, /* TEST-NET-3 */
        {0xffffffff, 32, AL_ADDR_BROADCAST},
        {0xe0000000, 4, AL_ADDR_MULTICAST},
        {0xf0000000, 4, AL_ADDR_RESERVED},
    };
    if (b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0)
        return AL_ADDR_UNSPECIFIED;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (v4_in(b, table[i].net, table[i].prefix))
            return table[i].cls;
    return AL_ADDR_PUBLIC;
}

enum al_addr_class al_addr_classify(const struct al_addr *addr)
{
    static const uint8_t zero[16] = {0};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
    static const uint8_t sixto4[2] = {0x20, 0x02};
    static const uint8_t teredo[4] = {0x20, 0x01, 0, 0};
    static const uint8_t doc[4] = {0x20, 0x01, 0x0d, 0xb8};
    static const uint8_t doc2[3] = {0x3f, 0xff, 0x00}; /* 3fff::/20 */
    static const uint8_t ietf[3] = {0x20, 0x01, 0x00}; /* 2001::/23 */
    static const uint8_t discard[8] = {0x01, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t *b = addr->bytes;

    if (addr->family == AF_INET)
        return classify_v4(b);
    if (memcmp(b, zero, 16) == 0)
        return AL_ADDR_UNSPECIFIED;
    if (memcmp(b, zero, 15) == 0 && b[15] == 1)
        return AL_ADDR_LOOPBACK;
    /* Forms that carry an IPv4 address: the kernel or a translator may
     * deliver them to the embedded IPv4 host, so none is treated as public. */
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, zero, 12) == 0 || memcmp(b, nat64, 12) == 0 ||
        prefix_eq(b, sixto4, 16) || prefix_eq(b, teredo, 32))
        return AL_ADDR_EMBEDS_V4;
    /* Not globally reachable (IANA's IPv6 special-purpose registry):
     * local-use NAT64, documentation (2001:db8::/32, 3fff::/20), discard-only,
     * and the IETF protocol assignments 2001::/23 (benchmarking 2001:2::/48,
     * ORCHID, ...), blocked whole like 192.0.0.0/24 (Teredo, inside it, is
     * caught above). */
    if (prefix_eq(b, nat64_local, 48) || prefix_eq(b, doc, 32) || prefix_eq(b, doc2, 20) ||
        prefix_eq(b, ietf, 23) || prefix_eq(b, discard, 64))
        return AL_ADDR_RESERVED;
    if ((b[0] & 0xfe) == 0xfc)
        return AL_ADDR_PRIVATE;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return AL_ADDR_LINKLOCAL;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return AL_ADDR_PRIVATE; /* deprecated site-local fec0::/10 */
    if (b[0] == 0xff)
        return AL_ADDR_MULTICAST;
    /* Global unicast is allocated from 2000::/3 only; the rest is reserved
     * by the IETF or special (SRv6 SIDs 5f00::/16, 100::/8), as 240/4 is. */
    if ((b[0] & 0xe0) != 0x20)
        return AL_ADDR_RESERVED;
    return AL_ADDR_PUBLIC;
}

const char *al_addr_class_name(enum al_addr_class cls)
{
    switch (cls) {
    case AL_ADDR_PUBLIC:
        return "public";
    case AL_ADDR_LOOPBACK:
        return "loopback";
    case AL_ADDR_UNSPECIFIED:
        return "unspecified";
    case AL_ADDR_PRIVATE:
        return "private";
    case AL_ADDR_LINKLOCAL:
        return "link-local";
    case AL_ADDR_CGNAT:
        return "cgnat";
    case AL_ADDR_MULTICAST:
        return "multicast";
    case AL_ADDR_BROADCAST:
        return "broadcast";
    case AL_ADDR_RESERVED:
        return "reserved";
    case AL_ADDR_EMBEDS_V4:
        return "ipv4-in-ipv6";
    }
    return "unknown";
}

int al_cidr_parse(struct al_cidr *out, const char *s)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    struct al_addr a;

    if (alen == 0 || al_addr_parse(&a, s, alen) != 0)
        return AL_EINVAL;
    /* A CIDR is written in dotted quads or IPv6; the odd inet_aton forms
     * are accepted too since they denote exactly one address. */
    unsigned max = a.family == AF_INET ? 32 : 128, prefix = max;
    if (slash) {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3)
            return AL_EINVAL;
        prefix = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return AL_EINVAL;
            prefix = prefix * 10 + (unsigned)(*p - '0');
        }
        if (prefix > max)
            return AL_EINVAL;
    }
    out->addr = a;
    out->prefix = prefix;
    return 0;
}

bool al_cidr_contains(const struct al_cidr *cidr, const struct al_addr *addr)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct al_addr v4;

    if (addr->family == AF_INET6 && cidr->addr.family == AF_INET &&
        memcmp(addr->bytes, mapped, 12) == 0) {
        memset(&v4, 0, sizeof(v4));
        v4.family = AF_INET;
        memcpy(v4.bytes, addr->bytes + 12, 4);
        addr = &v4;
    }
    if (addr->family != cidr->addr.family)
        return false;
    return prefix_eq(addr->bytes, cidr->addr.bytes, cidr->prefix);
}

void al_addr_format(const struct al_addr *addr, char *out, size_t size)
{
    if (!inet_ntop(addr->family, addr->bytes, out, (socklen_t)size) && size)
        out[0] = '\0';
}

socklen_t al_addr_to_sockaddr(const struct al_addr *addr, uint16_t port,
                              struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (addr->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, addr->bytes, 4);
        return sizeof(*sin);
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    memcpy(&sin6->sin6_addr, addr->bytes, 16);
    return sizeof(*sin6);
}

int al_addr_from_sockaddr(struct al_addr *out, const struct sockaddr *sa)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        out->family = AF_INET;
        memcpy(out->bytes, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        out->family = AF_INET6;
        memcpy(out->bytes, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return AL_EINVAL;
}
