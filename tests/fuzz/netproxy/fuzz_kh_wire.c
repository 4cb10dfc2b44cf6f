/* libFuzzer: the front ↔ key holder channel's decoder (netproxy/src/kh_wire.h)
 * on arbitrary bytes, as sent by either side: what decodes holds only what
 * the decoder promises (strings NUL-terminated and printable in their
 * fields, borrowed bytes inside the message) and encodes back to exactly
 * the same bytes (one spelling per message). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kh_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void printable(const char *s, size_t cap)
{
    const char *nul = memchr(s, '\0', cap);
    if (!nul)
        abort();
    for (const char *p = s; p < nul; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct np_kh_msg m;
    static uint8_t out[NP_KH_MSG_MAX];
    const enum np_kh_from from[] = {NP_KH_FROM_FRONT, NP_KH_FROM_KEYHOLDER};

    for (size_t i = 0; i < 2; i++) {
        if (np_kh_msg_decode(&m, data, size, from[i]) != 0)
            continue;
        printable(m.session, sizeof(m.session));
        printable(m.host, sizeof(m.host));
        printable(m.error, sizeof(m.error));
        printable(m.why, sizeof(m.why));
        if (m.data && (m.data < data || m.data + m.data_len > data + size))
            abort();
        size_t n = 0;
        if (np_kh_msg_encode(&n, out, sizeof(out), &m) != 0)
            abort();
        if (n != size || memcmp(out, data, size) != 0)
            abort();
    }
    return 0;
}
