/* libFuzzer: an HTTP request head rewritten for upstream with a fixed
 * credential set (first input byte: the inject_ok bits). Properties:
 *  - a forbidden credential's real value never appears in the output
 *    unless the input had it;
 *  - a forbidden credential's sentinel in the input, plainly or inside
 *    Basic credentials, makes the rewrite fail with AL_EPERM naming one;
 *  - on failure nothing is appended;
 *  - the rewrite is deterministic.
 * ASan catches any read beyond the copy of the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/buf.h"
#include "airlock/credmask.h"
#include "airlock/error.h"
#include "fuzz_credset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCRED (sizeof(delimited) / sizeof(*delimited))

static struct al_credset set, single[NCRED];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (set.len == 0) {
        fuzz_credset(&set, delimited, NCRED);
        for (size_t i = 0; i < NCRED; i++)
            fuzz_credset(&single[i], &delimited[i], 1);
    }
    if (size < 1)
        return 0;
    uint64_t ok = data[0] & 7;
    size_t len = size - 1;
    char *head = malloc(len ? len : 1);
    if (!head)
        return 0;
    memcpy(head, data + 1, len);

    struct al_buf out, again;
    al_buf_init(&out, 4 * 1024 * 1024);
    al_buf_init(&again, 4 * 1024 * 1024);
    if (al_buf_append(&out, "pre", 3) != 0)
        abort();
    uint64_t used = 0;
    size_t culprit = 99;
    int rc = al_cred_subst_head(&set, ok, head, len, &out, &used, &culprit);
    int forbidden_seen = 0;
    for (size_t i = 0; i < NCRED; i++)
        if (!(ok >> i & 1) && al_cred_find_sentinel(&single[i], head, len) == 0)
            forbidden_seen = 1;
    if (rc == 0) {
        if (forbidden_seen || (used & ~ok) != 0)
            abort();
        for (size_t i = 0; i < NCRED; i++) {
            const struct al_cred *c = &set.v[i];
            if (!(ok >> i & 1) && memmem(out.ptr, out.len, c->real, c->real_len) &&
                !memmem(head, len, c->real, c->real_len))
                abort();
        }
        uint64_t used2 = 0;
        if (al_cred_subst_head(&set, ok, head, len, &again, &used2, &culprit) != 0 ||
            again.len + 3 != out.len ||
            memcmp(again.ptr ? again.ptr : "", out.ptr + 3, again.len) != 0 || used2 != used)
            abort();
    } else if (rc == AL_EPERM) {
        if (out.len != 3 || culprit >= NCRED || (ok >> culprit & 1) || !forbidden_seen)
            abort();
    } else if (rc != AL_ENOMEM && rc != AL_ETOOBIG) {
        abort();
    }
    al_buf_free(&out);
    al_buf_free(&again);
    free(head);
    return 0;
}
