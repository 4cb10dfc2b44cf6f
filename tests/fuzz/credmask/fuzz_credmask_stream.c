/* libFuzzer: a body rewritten by the streaming rewriter in pieces chosen by
 * the input, against the same body rewritten in one piece. First byte: bit
 * 0 direction (request/response), bit 1 credential set (delimited/nested),
 * bits 2-4 inject_ok; second byte seeds the split points. Properties:
 *  - the output (or the AL_EPERM and its culprit) does not depend on the
 *    split;
 *  - a response keeps its length, and with the delimited set holds no real
 *    value at all;
 *  - a request fails with AL_EPERM exactly when a forbidden sentinel is in
 *    the body (delimited set);
 *  - held-back bytes never exceed carry_cap. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/buf.h"
#include "airlock/credmask.h"
#include "airlock/error.h"
#include "fuzz_credset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct al_credset sets[2];

static int run(const struct al_credset *set, enum al_subst_dir dir, uint64_t ok, const char *body,
               size_t len, uint32_t seed, struct al_buf *out, size_t *culprit)
{
    struct al_subst_stream st;
    if (al_subst_stream_init(&st, set, dir, ok) != 0)
        abort();
    size_t at = 0;
    int rc = 0;
    while (at < len && rc == 0) {
        size_t n = len - at;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % (n < 40 ? n : 40);
        }
        rc = al_subst_stream_feed(&st, body + at, n, out, culprit);
        if (st.carry_len > st.carry_cap)
            abort();
        at += n;
    }
    if (rc == 0)
        rc = al_subst_stream_finish(&st, out);
    al_subst_stream_free(&st);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sets[0].len == 0) {
        fuzz_credset(&sets[0], delimited, sizeof(delimited) / sizeof(*delimited));
        fuzz_credset(&sets[1], nested, sizeof(nested) / sizeof(*nested));
    }
    if (size < 2)
        return 0;
    enum al_subst_dir dir = (data[0] & 1) ? AL_SUBST_RESPONSE : AL_SUBST_REQUEST;
    int which = (data[0] >> 1) & 1;
    const struct al_credset *set = &sets[which];
    uint64_t ok = (data[0] >> 2) & 7;
    uint32_t seed = data[1] | 1u;
    size_t len = size - 2;
    char *body = malloc(len ? len : 1);
    if (!body)
        return 0;
    memcpy(body, data + 2, len);

    struct al_buf one, split;
    al_buf_init(&one, 4 * 1024 * 1024);
    al_buf_init(&split, 4 * 1024 * 1024);
    size_t c1 = 99, c2 = 99;
    int r1 = run(set, dir, ok, body, len, 0, &one, &c1);
    int r2 = run(set, dir, ok, body, len, seed, &split, &c2);
    if (r1 != r2 || (r1 == AL_EPERM && c1 != c2))
        abort();
    if (r1 == 0 && (one.len != split.len || memcmp(one.ptr, split.ptr, one.len) != 0))
        abort();
    if (dir == AL_SUBST_RESPONSE) {
        if (r1 != 0 || one.len != len)
            abort();
        for (size_t i = 0; which == 0 && i < set->len; i++)
            if (memmem(one.ptr, one.len, set->v[i].real, set->v[i].real_len))
                abort();
    } else if (which == 0) {
        int forbidden = 0;
        for (size_t i = 0; i < set->len; i++)
            if (!(ok >> i & 1) && memmem(body, len, set->v[i].sentinel, set->v[i].sentinel_len))
                forbidden = 1;
        if ((r1 == AL_EPERM) != forbidden)
            abort();
    }
    al_buf_free(&one);
    al_buf_free(&split);
    free(body);
    return 0;
}
