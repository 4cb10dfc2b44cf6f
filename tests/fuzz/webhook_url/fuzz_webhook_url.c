/* Fuzzes ald_webhook_url_parse: any input is accepted or refused with a
 * reason, never read past its length; an accepted URL has a non-empty
 * host of allowed characters (no '@', '%', '/', control bytes, spaces)
 * and a port, and parsing it again gives the same result. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlockd/core/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ald_webhook_url u, again;
    char why[256];
    /* a copy of exactly `size` bytes, so reading past it is caught */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (ald_webhook_url_parse(&u, buf, size, why, sizeof(why)) == 0) {
        size_t n = strlen(u.host);
        if (n == 0 || u.port == 0 || strpbrk(u.host, "@%/?#\\ \r\n\t") || memchr(buf, '\r', size) ||
            memchr(buf, '\n', size))
            abort();
        if (ald_webhook_url_parse(&again, buf, size, why, sizeof(why)) != 0 ||
            memcmp(&u, &again, sizeof(u)) != 0)
            abort();
    } else if (why[0] == '\0')
        abort();
    free(buf);
    return 0;
}
