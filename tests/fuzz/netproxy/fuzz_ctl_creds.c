/* libFuzzer: the netproxy's decoders of session_add's "tls" and
 * "credentials" (ctl_creds.h, also the front's form without values): any
 * bytes as JSON, decoded; what decodes holds only what the decoder
 * promises. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ctl_creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    json_t *obj = json_loadb((const char *)data, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    if (!obj)
        return 0;
    const char *cert, *key;
    if (np_ctl_tls_decode(&cert, &key, json_object_get(obj, "tls")) == 0 && cert &&
        (!key || strlen(cert) > NP_CTL_PEM_MAX || strlen(key) > NP_CTL_PEM_MAX))
        __builtin_trap();
    struct al_credset set = {0};
    if (np_ctl_creds_decode(&set, json_object_get(obj, "credentials")) == 0) {
        if (set.len > AL_CRED_MAX)
            __builtin_trap();
        for (size_t i = 0; i < set.len; i++)
            if (set.v[i].real_len == 0 || set.v[i].real_len > AL_CRED_VALUE_MAX ||
                !set.v[i].inject_hosts.len || !set.v[i].sentinel_len)
                __builtin_trap();
    }
    al_credset_free(&set);
    /* the front's form: no value in, each real value is its sentinel */
    if (np_ctl_creds_decode_front(&set, json_object_get(obj, "credentials")) == 0) {
        if (set.len > AL_CRED_MAX)
            __builtin_trap();
        for (size_t i = 0; i < set.len; i++)
            if (set.v[i].real_len != set.v[i].sentinel_len ||
                memcmp(set.v[i].real, set.v[i].sentinel, set.v[i].sentinel_len) != 0)
                __builtin_trap();
    }
    al_credset_free(&set);
    json_decref(obj);
    return 0;
}
