/* libFuzzer: airlock-connect's parser of the proxy's answer to CONNECT
 * (what a proxy, possibly the user's own, sends back). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "connect_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct np_connect_reply r;
    int n = np_connect_reply_parse(&r, (const char *)data, size);
    if (n > 0 && ((size_t)n > size || (size_t)n > NP_CONNECT_REPLY_MAX || r.status < 100 ||
                  r.status > 999 || strlen(r.error) >= sizeof(r.error)))
        __builtin_trap();
    return 0;
}
