/* Fuzzes ald_git_clone_explain on any bytes (a failed clone's stderr). The
 * first byte picks the output size (1..256, or one of 1024) and whether a
 * base branch is given. Whatever the input: the output is NUL-terminated
 * inside the buffer, holds only printable ASCII and newlines (each newline
 * followed by the "  | " of a tail line), at most ALD_CLONE_TAIL_LINES of
 * them, and begins with "cannot clone" when there is room. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlockd/adapters/clonemsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t out_size = data[0] & 0x80 ? 1024 : (size_t)(data[0] & 0x7f) * 2 + 1;
    const char *base = data[0] & 1 ? "main" : NULL;
    char *out = malloc(out_size + 1);
    if (!out)
        return 0;
    out[out_size] = 'Z'; /* a canary past the end */
    ald_git_clone_explain(out, out_size, "https://git.test/o/r", base, 128, (const char *)data + 1,
                          size - 1);
    if (out[out_size] != 'Z')
        abort();
    size_t len = strnlen(out, out_size);
    if (len >= out_size)
        abort();
    int lines = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c == '\n') {
            lines++;
            if (len - i > 4 && memcmp(out + i, "\n  | ", 5) != 0)
                abort();
        } else if (c < 0x20 || c >= 0x7f) {
            abort();
        }
    }
    if (lines > ALD_CLONE_TAIL_LINES)
        abort();
    if (out_size > 13 && strncmp(out, "cannot clone", 12) != 0)
        abort();
    free(out);
    return 0;
}
