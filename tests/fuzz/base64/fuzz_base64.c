/* libFuzzer: both base64 decoders on arbitrary bytes, into buffers of
 * exactly the documented size (ASan catches a write past), and what
 * decodes must encode back: to the same text for the canonical url-safe
 * form, to the same bytes for the standard one. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    unsigned char *out = malloc(size / 4 * 3 + 2);
    if (!out)
        return 0;

    long n = al_base64url_decode(out, in, size);
    if (n >= 0) {
        char *again = al_base64url_encode(out, (size_t)n);
        if (again && (strlen(again) != size || memcmp(again, in, size) != 0))
            abort(); /* two spellings of one byte string */
        free(again);
    }

    unsigned char *exact = malloc(size / 4 * 3 + 1);
    n = exact ? al_base64_decode(exact, in, size) : -1;
    if (n >= 0) {
        char *again = al_base64_encode(exact, (size_t)n);
        unsigned char *back = NULL;
        size_t back_len = 0;
        if (again && (al_base64_decode_alloc(&back, &back_len, again, strlen(again)) != 0 ||
                      back_len != (size_t)n || memcmp(back, exact, back_len) != 0))
            abort();
        free(back);
        free(again);
    }
    free(exact);
    free(out);
    return 0;
}
