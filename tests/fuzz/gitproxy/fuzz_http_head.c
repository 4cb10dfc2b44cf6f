/* libFuzzer: the listener's HTTP request head parser. */
#include <stddef.h>
#include <stdint.h>

#include "airlock/gp_http_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gp_http_req req;
    (void)gp_http_head_parse(&req, (const char *)data, size);
    return 0;
}
