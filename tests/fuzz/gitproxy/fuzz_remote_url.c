/* libFuzzer: git-remote-airlock's URL rewrite. The input is the URL; a
 * second run splits it at the first newline into URL and host list. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "airlock/gp_remote_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char proxy[] = "http://127.0.0.1:7418";
    char out[GP_REMOTE_URL_MAX + 512];
    enum gp_remote_route route;
    const char *why;
    const char *s = (const char *)data;
    (void)gp_remote_url_rewrite(out, sizeof(out), &route, &why, s, size, proxy, sizeof(proxy) - 1,
                                "github.com,git.test", 19);
    const char *nl = memchr(s, '\n', size);
    if (nl) {
        size_t n = (size_t)(nl - s);
        (void)gp_remote_url_rewrite(out, sizeof(out), &route, &why, s, n, s + n + 1,
                                    size - n - 1 < 64 ? size - n - 1 : 64, nl + 1, size - n - 1);
    }
    /* a small output buffer */
    (void)gp_remote_url_rewrite(out, 40, &route, &why, s, size, proxy, sizeof(proxy) - 1,
                                "github.com", 10);
    return 0;
}
