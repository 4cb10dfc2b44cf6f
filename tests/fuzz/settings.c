/* Fuzzes the settings loader: any bytes as a settings file, both shapes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "airlock/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct al_policy policy;
    al_policy_init(&policy);
    if (al_settings_load_buffer(&policy, "fuzz.json", (const char *)data, size, "/home/u",
                                "/w/proj") == 0) {
        free(al_policy_to_json(&policy));
        /* a second layer on top of the first exercises the merging paths */
        al_settings_load_buffer(&policy, "fuzz.json", (const char *)data, size, "/home/u",
                                "/w/proj");
    }
    al_policy_free(&policy);
    return 0;
}
