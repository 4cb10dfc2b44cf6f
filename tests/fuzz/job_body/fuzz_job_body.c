/* Fuzzes the job-body checks (ald_job_body_parse): every input is accepted
 * with a complete result (argv a non-empty array of strings, a timeout in
 * range, the session spec without the job's own fields) or refused with a
 * fault that has a code and a message; never a crash or a leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlockd/core/config.h"
#include "airlockd/core/jobs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct ald_jobs_config jc = {4, 2, 1024 * 1024, 3600, 86400, 100};
    if (size > 65536)
        return 0;
    json_t *fields = NULL, *spec = NULL;
    struct ald_fault f;
    memset(&f, 0, sizeof(f));
    if (ald_job_body_parse((const char *)data, size, &jc, &fields, &spec, &f) == 0) {
        json_t *argv = json_object_get(fields, "argv");
        json_int_t t = json_integer_value(json_object_get(fields, "timeout_s"));
        if (!json_is_array(argv) || json_array_size(argv) < 1 || t < 1 || t > 86400 ||
            json_object_get(spec, "command") || json_object_get(spec, "script") ||
            json_object_get(spec, "webhook") || !json_is_boolean(json_object_get(fields, "push")))
            abort();
        for (size_t i = 0; i < json_array_size(argv); i++)
            if (!json_is_string(json_array_get(argv, i)))
                abort();
    } else if (!f.code || !f.message[0] || fields || spec) {
        abort();
    }
    json_decref(fields);
    json_decref(spec);
    return 0;
}
