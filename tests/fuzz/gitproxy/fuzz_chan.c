/* libFuzzer: the decoders of the messages the key holder reads from a front
 * worker (gitproxy/src/gp_chan.h), on arbitrary bytes: every field bounded,
 * every string printable and NUL-terminated in its field. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gp_chan.h"

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
    static struct gp_msg_auth a;
    struct gp_msg_cmd c;
    struct gp_msg_request q;
    struct gp_msg_refuse f;
    struct gp_msg_outcome o;
    char s[4096];
    if (gp_msg_auth_decode(&a, data, size) == 0) {
        printable(a.host, sizeof(a.host));
        printable(a.token, sizeof(a.token));
    }
    if (gp_msg_cmd_decode(&c, data, size) == 0)
        printable(c.ref, sizeof(c.ref));
    if (gp_msg_request_decode(&q, data, size) == 0)
        printable(q.git_protocol, sizeof(q.git_protocol));
    if (gp_msg_refuse_decode(&f, data, size) == 0)
        printable(f.reason, sizeof(f.reason));
    if (gp_msg_outcome_decode(&o, data, size) == 0)
        printable(o.decision, sizeof(o.decision));
    int type = size ? data[0] : 0;
    if (gp_msg_str_decode(type, s, sizeof(s), data, size) == 0)
        printable(s, sizeof(s));
    struct gp_rd r;
    size_t n;
    gp_rd_init(&r, data, size);
    const uint8_t *b = gp_rd_bin(&r, &n);
    if (b && (b < data || b + n > data + size))
        abort();
    return 0;
}
