/* libFuzzer: pkt-line framing. Walks the input as a stream of pkt-lines and
 * checks every parsed line stays inside the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "airlock/gp_pktline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t off = 0;
    while (off < size) {
        struct gp_pkt pkt;
        ssize_t n = gp_pktline_parse(&pkt, p + off, size - off);
        if (n <= 0)
            break;
        if ((size_t)n > size - off || pkt.data < p || pkt.data + pkt.len > p + size)
            abort();
        off += (size_t)n;
    }
    return 0;
}
