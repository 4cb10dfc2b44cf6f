/* libFuzzer: the leak guard's fingerprint-set loader (the blob the key holder
 * sends the scanning process). A set that loads is then used: the input is
 * scanned with it, on one buffer and as a stream, and the two must agree. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "airlock/gp_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gp_secretset *set = (gp_secretset *)1;
    const char *what = NULL;
    if (gp_secretset_load(&set, data, size) < 0) {
        if (set)
            abort(); /* *out is NULL on every error */
        return 0;
    }
    if (gp_secretset_count(set) > GP_SECRETSET_MAX)
        abort();
    int whole = gp_scan_buffer2(&what, data, size, set);
    struct gp_scanner sc;
    int streamed = 0;
    if (whole < 0 || gp_scanner_init(&sc, set) < 0)
        abort();
    for (size_t off = 0; off < size; off += 7) {
        size_t n = size - off < 7 ? size - off : 7;
        int r = gp_scanner_feed(&sc, data + off, n, &what);
        if (r < 0)
            abort();
        streamed |= r;
    }
    if (streamed != whole)
        abort();
    gp_scanner_free(&sc);
    gp_secretset_free(set);
    return 0;
}
