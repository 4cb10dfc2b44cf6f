/* libFuzzer: the front ↔ key holder channel's decoder (netproxy/src/kh_wire.h)
 * on arbitrary bytes, as sent by either side: what decodes holds only what
 * the decoder promises (strings NUL-terminated and printable in their
 * fields, borrowed bytes inside the message) and encodes back to exactly
 * the same bytes (one spelling per message). A front's REQ_HEAD then goes
 * through the key holder's head step (kh_req.h): what it accepts ends with
 * exactly one framing header of its own and the blank line. The same bytes
 * as an upstream's response head go through np_kh_resp_head: what it hands
 * the front never holds a real value. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/error.h"

#include "kh_req.h"
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

static struct al_credset set;

static void set_init(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    struct al_strlist hosts = {0};
    al_strlist_push(&hosts, "h");
    /* sentinels the corpus can hold: "SENTA...", "SENTB..." */
    if (al_credset_add(&set, "A", "realvalueA", 10, &hosts, "SENTAAAAAAAAAAAAAAAAAAAAAAA") < 0 ||
        al_credset_add(&set, "B", "realvalueBBBBBBBBBBBBBBBBBBBBBBBBBBBB", 36, &hosts,
                       "SENTBBBBB") < 0)
        abort();
    al_strlist_free(&hosts);
}

static size_t count(const char *hay, size_t n, const char *needle)
{
    size_t k = 0, l = strlen(needle);
    for (const char *p = hay; (p = memmem(p, n - (size_t)(p - hay), needle, l)); p += l)
        k++;
    return k;
}

static void req_head(const struct np_kh_msg *m)
{
    struct al_buf out;
    uint64_t used;
    size_t culprit;
    al_buf_init(&out, 1u << 20);
    set_init();
    int err = np_kh_req_head(&out, &used, &culprit, &set, 1, "h", 443, m, m->length);
    if (err == 0) {
        size_t te = count(out.ptr, out.len, "\r\nTransfer-Encoding: ");
        size_t cl = count(out.ptr, out.len, "\r\nContent-Length: ");
        if (out.len < 4 || memcmp(out.ptr + out.len - 4, "\r\n\r\n", 4) != 0 ||
            te != (m->framing == NP_KH_FRAME_CHUNKED) || cl != (m->framing == NP_KH_FRAME_LENGTH) ||
            (used & ~1ull) || count(out.ptr, out.len, "SENTAAAAAAAAAAAAAAAAAAAAAAA"))
            abort();
    } else if (out.len || (err != AL_EINVAL && err != AL_EPERM && err != AL_ETOOBIG)) {
        abort();
    } else if (err == AL_EPERM && culprit != 1) {
        abort();
    }
    al_buf_wipe_free(&out);
}

static void resp_head(const uint8_t *data, size_t size)
{
    struct al_buf out;
    struct np_kh_resp info;
    al_buf_init(&out, 1u << 17);
    set_init();
    int n = np_kh_resp_head(&out, &info, &set, (const char *)data, size, data[0] & NP_KH_REQ_ALL);
    if (n > 0) {
        if ((size_t)n > size || info.status < 100 || info.status > 599 ||
            count(out.ptr, out.len, "realvalueA") ||
            count(out.ptr, out.len, "realvalueBBBBBBBBBBBBBBBBBBBBBBBBBBBB"))
            abort();
    } else if (out.len) {
        abort();
    }
    al_buf_wipe_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct np_kh_msg m;
    static uint8_t out[NP_KH_MSG_MAX];
    const enum np_kh_from from[] = {NP_KH_FROM_FRONT, NP_KH_FROM_KEYHOLDER};

    if (size)
        resp_head(data, size);
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
        if (m.type == NP_KH_REQ_HEAD)
            req_head(&m);
    }
    return 0;
}
