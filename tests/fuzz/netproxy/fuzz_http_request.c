/* libFuzzer: HTTP request-head parser, chunked framer, ClientHello parser. */
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
    char sni[256];
    if (np_tls_sni_parse(data, size, sni, sizeof(sni)) == NP_SNI_FOUND &&
        strlen(sni) >= sizeof(sni))
        __builtin_trap();
    return 0;
}
