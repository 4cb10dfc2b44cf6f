/* libFuzzer: the leak guard's scanner. The first byte picks the chunk sizes;
 * the rest is scanned with a fixed fingerprint set, on one buffer and as a
 * stream: both must agree (a match spanning chunks is found), and a hit
 * always names what it found. The seed corpus holds the secrets below, so
 * mutations reach the fingerprint lookups and the confirmation. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "airlock/buf.h"
#include "airlock/gp_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const secrets[] = {
    "short-s1",                                 /* 8: a block at every byte */
    "sixteen-bytes-16",                         /* 16 */
    "seventeen-bytes17",                        /* 17: step 2 */
    "ghp_FuzzSecret0123456789abcdefghijklmnop", /* 40: step 25 */
    "a secret of length 93 that is long enough to need a step of seventy-eight bytes to be found!!",
};

static gp_secretset *fixed_set(void)
{
    static gp_secretset *set;
    if (!set) {
        struct al_buf b;
        al_buf_init(&b, GP_SECRETSET_BLOB_MAX);
        if (gp_secretset_build(&b, secrets, sizeof(secrets) / sizeof(secrets[0])) != 0 ||
            gp_secretset_load(&set, b.ptr, b.len) < 0)
            abort();
        al_buf_free(&b);
    }
    return set;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const gp_secretset *set = fixed_set();
    const char *what = NULL;
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 64;
    data++;
    size--;
    int whole = gp_scan_buffer2(&what, data, size, set);
    if (whole < 0 || (whole == 1 && !what))
        abort();
    /* Chunks of step, 2 * step, 3 * step, ... bytes, wrapping. The first
     * chunk that makes the stream report a hit must be the first one after
     * which the bytes so far hold one. */
    struct gp_scanner sc;
    long first_stream = -1, first_prefix = -1;
    if (gp_scanner_init(&sc, set) < 0)
        abort();
    for (size_t off = 0, k = 1, i = 0; off < size; k = k % 5 + 1, i++) {
        size_t n = size - off < step * k ? size - off : step * k;
        const char *w = NULL;
        int r = gp_scanner_feed(&sc, data + off, n, &w);
        if (r < 0 || (r == 1 && !w))
            abort();
        off += n;
        if (r == 1 && first_stream < 0)
            first_stream = (long)i;
        if (first_prefix < 0 && gp_scan_buffer2(&w, data, off, set) == 1)
            first_prefix = (long)i;
        if (first_stream >= 0 && first_prefix >= 0)
            break;
    }
    if (first_stream != first_prefix || (first_stream >= 0) != whole)
        abort();
    gp_scanner_free(&sc);
    return 0;
}
