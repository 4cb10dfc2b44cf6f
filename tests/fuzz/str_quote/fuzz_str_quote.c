/* Fuzzes ald_str_quote and ald_utf8_scrub on any bytes (a URL's id, a query
 * value, a header). The first byte picks the output size (1..256, or one
 * big enough for any input). Whatever the input: the output is
 * NUL-terminated inside the buffer, valid UTF-8 that jansson takes as a
 * string, free of control bytes; when nothing was cut, undoing the escapes
 * gives the input back. The scrubbed input is valid UTF-8 of the same
 * length. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "airlock/hex.h"

#include "airlockd/core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Undoes ald_str_quote's escapes of `len` bytes at q into out (room for
 * len bytes); returns the length, or (size_t)-1 on a stray backslash. */
static size_t unquote(unsigned char *out, const char *q, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (q[i] != '\\') {
            out[o++] = (unsigned char)q[i];
            continue;
        }
        if (i + 1 < len && q[i + 1] == '\\') {
            out[o++] = '\\';
            i++;
            continue;
        }
        if (i + 3 >= len || q[i + 1] != 'x')
            return (size_t)-1;
        int hi = al_hex_digit((unsigned char)q[i + 2]), lo = al_hex_digit((unsigned char)q[i + 3]);
        if (hi < 0 || lo < 0)
            return (size_t)-1;
        out[o++] = (unsigned char)(hi << 4 | lo);
        i += 3;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    int whole = data[0] == 0;
    size_t outsz = whole ? 4 * len + 1 : (size_t)data[0];
    char *out = malloc(outsz);
    unsigned char *back = malloc(len + 1);
    char *copy = malloc(len + 1);
    if (!out || !back || !copy)
        goto done;
    if (ald_str_quote(out, outsz, in, len) != out)
        __builtin_trap();
    size_t n = strnlen(out, outsz);
    if (n >= outsz)
        __builtin_trap(); /* not terminated inside the buffer */
    if (ald_utf8_valid_prefix((const unsigned char *)out, n) != n)
        __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < n && (unsigned char)out[i + 1] < 0xa0))
            __builtin_trap();
    }
    json_t *j = json_stringn(out, n);
    if (!j)
        __builtin_trap();
    json_decref(j);
    if (whole && (unquote(back, out, n) != len || memcmp(back, in, len) != 0))
        __builtin_trap(); /* nothing was cut: the escapes are undone exactly */

    memcpy(copy, in, len);
    ald_utf8_scrub(copy, len);
    if (ald_utf8_valid_prefix((const unsigned char *)copy, len) != len)
        __builtin_trap();
done:
    free(out);
    free(back);
    free(copy);
    return 0;
}
