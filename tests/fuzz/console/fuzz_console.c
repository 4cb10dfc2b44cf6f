/* Fuzzes ald_console_find (input: the raw URL path below /console/) and
 * checks what it promises: a file is found only for "" (index.html) or for
 * the exact bytes of an asset's name, and such a name never holds a "..",
 * "." or empty component, a backslash, a '%' or a NUL. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlockd/api/console.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct ald_console_asset *a = ald_console_find((const char *)data, size);
    if (!a)
        return 0;
    if (size == 0) {
        must(strcmp(a->name, "index.html") == 0);
        return 0;
    }
    must(strlen(a->name) == size && memcmp(a->name, data, size) == 0);
    must(memchr(data, '\0', size) == NULL && memchr(data, '\\', size) == NULL &&
         memchr(data, '%', size) == NULL);
    must(data[0] != '/' && data[size - 1] != '/');
    const char *n = a->name;
    must(strstr(n, "//") == NULL && strstr(n, "/./") == NULL && strstr(n, "/../") == NULL &&
         strncmp(n, "./", 2) != 0 && strncmp(n, "../", 3) != 0);
    return 0;
}
