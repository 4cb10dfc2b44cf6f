/* Fuzzes the glob matcher: input is "PATTERN\nPATH" (a pattern is at most
 * 4096 bytes, as settings allow). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/glob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    size_t plen = nl ? (size_t)(nl - (const char *)data) : size;
    if (plen > 4096)
        return 0;
    char *pattern = strndup((const char *)data, plen);
    char *path = nl ? strndup(nl + 1, size - plen - 1) : strdup("/");
    if (pattern && path) {
        al_glob_match(pattern, path);
        al_glob_has_magic(pattern);
        free(al_glob_literal_prefix(pattern));
    }
    free(pattern);
    free(path);
    return 0;
}
