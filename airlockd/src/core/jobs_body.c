/* The job's own fields of a POST /v1/jobs body (jobs.h, docs/jobs.md):
 * pure checks of untrusted JSON, no daemon state, unit-tested and fuzzed
 * (tests/unit/airlockd/job_body.c, tests/fuzz/job_body). */
#include "airlockd/core/jobs.h"

#include "airlockd/core/util.h"

#include "airlock/error.h"

#include <stdio.h>
#include <string.h>

#define JOB_SCRIPT_MAX (64 * 1024)
/* a command's strings in all (each with its NUL): the job's row keeps it
 * and the scheduler reads every queued row every two seconds */
#define JOB_COMMAND_BYTES_MAX (256 * 1024)
#define JOB_PR_TITLE_MAX      256
#define JOB_PR_BODY_MAX       (64 * 1024)
#define JOB_URL_MAX           2048
#define JOB_SECRET_MAX        256

static const char *const job_fields[] = {"command", "script",       "timeout_s",
                                         "push",    "pull_request", "webhook"};

static int str_ok(json_t *v, size_t min, size_t max)
{
    if (!json_is_string(v))
        return 0;
    size_t n = json_string_length(v);
    return n >= min && n <= max && strlen(json_string_value(v)) == n;
}

/* Only `names` in the object `o`; else a 400 naming the first other key
 * (as `prefix`.KEY). */
static int only_keys(json_t *o, const char *prefix, const char *const *names, size_t n,
                     struct ald_fault *f)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        int known = 0;
        for (size_t i = 0; i < n; i++)
            known |= strcmp(k, names[i]) == 0;
        if (!known) {
            char field[128];
            snprintf(field, sizeof(field), "%s.%.64s", prefix, k);
            return ald_fault_set(f, ALD_FAULT_INVALID, "unknown_field", field,
                                 "unknown field \"%.64s\"", k);
        }
    }
    return 0;
}

/* The checks of ald_job_body_check into `out` (an object) and `spec`. */
static int body_check(json_t *body, const struct ald_jobs_config *jc, json_t *out, json_t *spec,
                      struct ald_fault *f)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        int ours = 0;
        for (size_t i = 0; i < sizeof(job_fields) / sizeof(*job_fields); i++)
            ours |= strcmp(k, job_fields[i]) == 0;
        if (!ours)
            json_object_set(spec, k, v);
    }
    json_t *cmd = json_object_get(body, "command"), *script = json_object_get(body, "script");
    json_t *argv = NULL;
    if (cmd && script)
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "command",
                             "give \"command\" or \"script\", not both");
    if (!cmd && !script)
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "command",
                             "a job needs \"command\" (an array of strings) or \"script\"");
    if (cmd) {
        if (!json_is_array(cmd) || json_array_size(cmd) < 1 || json_array_size(cmd) > 4096)
            return ald_fault_set(f, ALD_FAULT_INVALID, "wrong_type", "command",
                                 "command must be an array of 1 to 4096 strings");
        size_t i, total = 0;
        json_t *a;
        json_array_foreach(cmd, i, a)
        {
            if (!str_ok(a, i == 0 ? 1 : 0, JOB_SCRIPT_MAX))
                return ald_fault_set(f, ALD_FAULT_INVALID, "wrong_type", "command",
                                     "command[%zu] must be a string without NUL (the first "
                                     "not empty)",
                                     i);
            total += json_string_length(a) + 1;
            if (total > JOB_COMMAND_BYTES_MAX)
                return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "command",
                                     "command must be at most %d bytes in all",
                                     JOB_COMMAND_BYTES_MAX);
        }
        argv = json_incref(cmd);
    } else {
        if (!str_ok(script, 1, JOB_SCRIPT_MAX))
            return ald_fault_set(f, ALD_FAULT_INVALID, "wrong_type", "script",
                                 "script must be a non-empty string (at most 65536 bytes)");
        argv = json_pack("[ssO]", "/bin/sh", "-c", script);
    }
    json_object_set_new(out, "argv", argv);

    uint64_t timeout = jc->default_timeout_s;
    json_t *t = json_object_get(body, "timeout_s");
    char why[96];
    if (t && ald_json_u64(t, 1, jc->max_timeout_s, &timeout, why, sizeof(why)) != ALD_U64_OK)
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "timeout_s",
                             "timeout_s must be an integer from 1 to %llu",
                             (unsigned long long)jc->max_timeout_s);
    json_object_set_new(out, "timeout_s", json_integer((json_int_t)timeout));

    json_t *push = json_object_get(body, "push");
    if (push && !json_is_boolean(push))
        return ald_fault_set(f, ALD_FAULT_INVALID, "wrong_type", "push",
                             "push must be true or false");
    json_t *repo = json_object_get(body, "repo");
    if (json_is_true(push) && !json_is_string(repo))
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "push",
                             "push needs a \"repo\"");
    json_object_set_new(out, "push", json_boolean(json_is_true(push)));

    json_t *pr = json_object_get(body, "pull_request");
    if (pr && !json_is_null(pr)) {
        static const char *const names[] = {"title", "body"};
        if (!json_is_object(pr))
            return ald_fault_set(f, ALD_FAULT_INVALID, "wrong_type", "pull_request",
                                 "pull_request must be an object {\"title\", \"body\"}");
        if (only_keys(pr, "pull_request", names, 2, f) < 0)
            return AL_EINVAL;
        if (!str_ok(json_object_get(pr, "title"), 1, JOB_PR_TITLE_MAX))
            return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "pull_request.title",
                                 "pull_request.title must be a string of 1 to 256 bytes");
        json_t *b = json_object_get(pr, "body");
        if (b && !str_ok(b, 0, JOB_PR_BODY_MAX))
            return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "pull_request.body",
                                 "pull_request.body must be a string of at most 65536 bytes");
        if (!json_is_true(push))
            return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "pull_request",
                                 "pull_request needs \"push\": true");
        json_object_set(out, "pull_request", pr);
    } else {
        json_object_set_new(out, "pull_request", json_null());
    }

    json_t *wh = json_object_get(body, "webhook");
    if (wh && !json_is_null(wh)) {
        static const char *const names[] = {"url", "secret"};
        if (!json_is_object(wh))
            return ald_fault_set(f, ALD_FAULT_INVALID, "wrong_type", "webhook",
                                 "webhook must be an object {\"url\", \"secret\"}");
        if (only_keys(wh, "webhook", names, 2, f) < 0)
            return AL_EINVAL;
        json_t *url = json_object_get(wh, "url"), *secret = json_object_get(wh, "secret");
        if (!str_ok(url, 1, JOB_URL_MAX))
            return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "webhook.url",
                                 "webhook.url must be a string of 1 to 2048 bytes");
        if (!str_ok(secret, 1, JOB_SECRET_MAX))
            return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "webhook.secret",
                                 "webhook.secret must be a string of 1 to 256 bytes");
        json_object_set(out, "webhook", wh);
    } else {
        json_object_set_new(out, "webhook", json_null());
    }
    /* the session spec's own checks are the session parser's; these two
     * are shown in the job */
    json_object_set_new(out, "repo", json_incref(json_is_string(repo) ? repo : json_null()));
    json_t *base = json_object_get(body, "base");
    json_object_set_new(out, "base", json_incref(json_is_string(base) ? base : json_null()));
    return 0;
}

int ald_job_body_check(json_t *body, const struct ald_jobs_config *jc, json_t **fields,
                       json_t **spec, struct ald_fault *f)
{
    *fields = *spec = NULL;
    if (!json_is_object(body))
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_json", NULL,
                             "body: expected a JSON object");
    json_t *out = json_object(), *sp = json_object();
    int err = out && sp ? body_check(body, jc, out, sp, f)
                        : ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
    if (err < 0) {
        json_decref(out);
        json_decref(sp);
        return err;
    }
    *fields = out;
    *spec = sp;
    return 0;
}

int ald_job_body_parse(const char *data, size_t len, const struct ald_jobs_config *jc,
                       json_t **fields, json_t **spec, struct ald_fault *f)
{
    *fields = *spec = NULL;
    json_error_t jerr;
    json_t *body = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body)
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_json", NULL,
                             "body: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    int err = ald_job_body_check(body, jc, fields, spec, f);
    json_decref(body);
    return err;
}
