/* libFuzzer: SOCKS5 greeting and request parsers, host normalisation and
 * IP literal parsing (everything a SOCKS5 client controls). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "airlock/ipaddr.h"
#include "domain.h"
#include "socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool noauth;
    int n = np_socks5_parse_greeting(data, size, &noauth);
    if (n > (int)size)
        __builtin_trap();
    if (n > 0) {
        data += n;
        size -= (size_t)n;
    }
    struct np_socks5_request r;
    n = np_socks5_parse_request(&r, data, size);
    if (n > 0) {
        if ((size_t)n > size || r.port == 0 || strlen(r.host) >= sizeof(r.host))
            __builtin_trap();
        char norm[NP_HOST_MAX];
        struct al_addr a;
        if (al_addr_parse(&a, r.host, strlen(r.host)) > 0)
            __builtin_trap();
        if (np_host_normalize(norm, r.host, strlen(r.host)) == 0 && memchr(norm, 0, strlen(norm)))
            __builtin_trap();
    }
    struct al_addr a;
    al_addr_parse(&a, (const char *)data, size);
    char norm[NP_HOST_MAX];
    np_host_normalize(norm, (const char *)data, size);
    return 0;
}
