/* libFuzzer: scoped-token verification and claim decoding. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "airlock/creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct creds_keyring ring = {.len = 1};
    struct creds_claims c = {0};
    memcpy(ring.keys[0].kid, "k1", 3);
    if (creds_token_verify(&c, (const char *)data, size, &ring, 1000, NULL, NULL) == 0)
        creds_claims_clear(&c);
    if (creds_token_decode(&c, (const char *)data, size) == 0) {
        (void)creds_claims_allow_ref(&c, "refs/heads/agent/x");
        creds_claims_clear(&c);
    }
    return 0;
}
