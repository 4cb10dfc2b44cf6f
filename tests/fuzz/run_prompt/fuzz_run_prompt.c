/* Fuzzes run_prompt_quote and run_prompt_feed on any bytes. The first byte
 * picks the output size (8..263). The input is split at NULs into words
 * for the quoting, and fed whole to the answer editor. Whatever the input:
 * the quoted line is NUL-terminated inside its buffer and holds only
 * printable ASCII; the answer line stays within its maximum, printable,
 * and the echo is terminated. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "run_prompt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t out_size = 8 + data[0];
    data++;
    size--;
    char *copy = malloc(size + 1);
    char *out = malloc(out_size);
    const char *words[64];
    size_t n = 0;
    if (!copy || !out)
        abort();
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (size_t i = 0; i <= size && n < 64;) {
        words[n++] = copy + i;
        i += strlen(copy + i) + 1;
    }
    size_t len = run_prompt_quote(out, out_size, words, n);
    if (len >= out_size || out[len] != '\0' || strlen(out) != len)
        abort();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
            abort();

    struct run_prompt_line line = {0};
    char echo[32];
    size_t off = 0;
    while (off < size) {
        size_t used;
        enum run_prompt_state st =
            run_prompt_feed(&line, (const char *)data + off, size - off, &used, echo, sizeof(echo));
        if (used == 0 || used > size - off || strlen(echo) >= sizeof(echo) ||
            line.len > RUN_PROMPT_LINE_MAX || strlen(line.text) != line.len)
            abort();
        for (size_t i = 0; i < line.len; i++)
            if ((unsigned char)line.text[i] < 0x20 || (unsigned char)line.text[i] >= 0x7f)
                abort();
        char v = run_prompt_verdict(&line);
        if (v != 'y' && v != 'a' && v != 'n')
            abort();
        off += used;
        if (st != RUN_PROMPT_MORE)
            memset(&line, 0, sizeof(line));
    }
    free(copy);
    free(out);
    return 0;
}
