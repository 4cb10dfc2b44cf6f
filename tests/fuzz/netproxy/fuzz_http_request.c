/* libFuzzer: HTTP request-head parser, response-head parser (upstreams of
 * terminated tunnels), chunked framer, ClientHello parser. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http_parse.h"
#include "tls_sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct np_http_request r;
    int n = np_http_parse_request(&r, (const char *)data, size);
    if (n > 0) {
        /* every span must lie inside the head */
        if ((size_t)n > size || r.method.off + r.method.len > (size_t)n ||
            r.path.off + r.path.len > (size_t)n || r.nheaders > NP_HTTP_MAX_HEADERS ||
            r.port == 0 || strlen(r.host) == 0)
            __builtin_trap();
        for (size_t i = 0; i < r.nheaders; i++)
            if (r.headers[i].value.off + r.headers[i].value.len > (size_t)n)
                __builtin_trap();
        if (r.has_content_length && r.chunked)
            __builtin_trap();
        struct np_chunked ch;
        size_t used;
        np_chunked_init(&ch);
        if (np_chunked_feed(&ch, (const char *)data + n, size - (size_t)n, &used) >= 0 &&
            used > size - (size_t)n)
            __builtin_trap();
    } else if (n < 0 && (r.status < 400 || r.status > 505)) {
        __builtin_trap();
    }
    struct np_http_response rs;
    int m = np_http_parse_response(&rs, (const char *)data, size);
    if (m > 0) {
        if ((size_t)m > size || rs.status < 100 || rs.status > 999 ||
            (rs.has_content_length && rs.chunked))
            __builtin_trap();
        /* the body as tls_term.c reads it: data runs from
         * np_chunked_data_left, everything else byte by byte */
        struct np_chunked ch;
        size_t pos = (size_t)m, used;
        np_chunked_init(&ch);
        while (pos < size) {
            uint64_t left = np_chunked_data_left(&ch);
            size_t take = left ? (size - pos < left ? size - pos : (size_t)left) : 1;
            int rc = np_chunked_feed(&ch, (const char *)data + pos, take, &used);
            if (rc < 0 || rc == 1)
                break;
            if (used != take)
                __builtin_trap();
            pos += take;
        }
    } else if (m < 0 && !rs.error) {
        __builtin_trap();
    }
    char sni[256];
    if (np_tls_sni_parse(data, size, sni, sizeof(sni)) == NP_SNI_FOUND &&
        strlen(sni) >= sizeof(sni))
        __builtin_trap();
    return 0;
}
