/* Bounded ClientHello parser: finds the server_name extension. */
#include "tls_sni.h"

#include <stdint.h>
#include <string.h>

static size_t be16(const unsigned char *p)
{
    return (size_t)p[0] << 8 | p[1];
}

enum np_sni_result np_tls_sni_parse(const unsigned char *buf, size_t len, char *out, size_t size)
{
    if (len < 1)
        return NP_SNI_NEED_MORE;
    if (buf[0] != 0x16) /* handshake record */
        return NP_SNI_NOT_TLS;
    if (len < 5)
        return NP_SNI_NEED_MORE;
    if (buf[1] != 3)
        return NP_SNI_NOT_TLS;
    size_t rec = be16(buf + 3);
    if (rec < 4 || rec > 16384)
        return NP_SNI_MALFORMED;
    if (len < 5 + rec)
        return NP_SNI_NEED_MORE;
    const unsigned char *p = buf + 5, *end = p + rec;
    if (p[0] != 1) /* ClientHello */
        return NP_SNI_MALFORMED;
    size_t hlen = (size_t)p[1] << 16 | be16(p + 2);
    p += 4;
    if (hlen > (size_t)(end - p))
        return NP_SNI_MALFORMED; /* split over records: refuse, not guessed */
    end = p + hlen;
    /* version(2) random(32) */
    if (end - p < 34)
        return NP_SNI_MALFORMED;
    p += 34;
    /* session id */
    if (end - p < 1 || (size_t)(end - p) < 1u + p[0])
        return NP_SNI_MALFORMED;
    p += 1 + p[0];
    /* cipher suites */
    if (end - p < 2 || (size_t)(end - p) < 2 + be16(p))
        return NP_SNI_MALFORMED;
    p += 2 + be16(p);
    /* compression methods */
    if (end - p < 1 || (size_t)(end - p) < 1u + p[0])
        return NP_SNI_MALFORMED;
    p += 1 + p[0];
    if (p == end)
        return NP_SNI_NONE;
    if (end - p < 2 || (size_t)(end - p) < 2 + be16(p))
        return NP_SNI_MALFORMED;
    const unsigned char *ext_end = p + 2 + be16(p);
    p += 2;
    while (ext_end - p >= 4) {
        size_t type = be16(p), elen = be16(p + 2);
        p += 4;
        if ((size_t)(ext_end - p) < elen)
            return NP_SNI_MALFORMED;
        if (type == 0) {
            const unsigned char *q = p, *qe = p + elen;
            if (qe - q < 2 || (size_t)(qe - q) < 2 + be16(q))
                return NP_SNI_MALFORMED;
            qe = q + 2 + be16(q);
            q += 2;
            while (qe - q >= 3) {
                unsigned ntype = q[0];
                size_t nlen = be16(q + 1);
                q += 3;
                if ((size_t)(qe - q) < nlen)
                    return NP_SNI_MALFORMED;
                if (ntype == 0) {
                    if (nlen == 0 || nlen >= size || memchr(q, 0, nlen))
                        return NP_SNI_MALFORMED;
                    memcpy(out, q, nlen);
                    out[nlen] = '\0';
                    return NP_SNI_FOUND;
                }
                q += nlen;
            }
            return NP_SNI_MALFORMED;
        }
        p += elen;
    }
    return NP_SNI_NONE;
}
