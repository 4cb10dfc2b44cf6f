/* The web console's file lookup (docs/console.md), apart from the route so
 * that the unit test and the fuzz target link it with the table alone. */
#include "airlockd/api/console.h"

#include <string.h>

/* Whether a component of `len` bytes is "", "." or "..". */
static int bad_component(const char *c, size_t len)
{
    return len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.');
}

const struct ald_console_asset *ald_console_find(const char *path, size_t len)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789._/-";
    if (len == 0) {
        path = "index.html";
        len = strlen(path);
    }
    if (!path || len > 256)
        return NULL;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && path[i] != '/') {
            /* a NUL or any byte a name cannot hold (strchr would find the
             * terminator: test it apart) */
            if (path[i] == '\0' || !strchr(allowed, path[i]))
                return NULL;
            continue;
        }
        if (bad_component(path + start, i - start))
            return NULL;
        start = i + 1;
    }
    for (size_t i = 0; i < ald_console_n_assets; i++) {
        const struct ald_console_asset *a = &ald_console_assets[i];
        if (strlen(a->name) == len && memcmp(a->name, path, len) == 0)
            return a;
    }
    return NULL;
}
