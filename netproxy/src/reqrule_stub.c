/* TEMPORARY: stands in for netproxy/src/reqrule.c (branch reqrules) until it
 * is merged; deleted then. No rules, paths pass unchanged. */
#include "reqrule.h"

#include "airlock/error.h"

#include <stdio.h>
#include <string.h>

int np_path_normalise(const char *target, size_t len, char *out, size_t cap, size_t *path_len)
{
    if (len == 0 || target[0] != '/' || len >= cap)
        return al_error_set(AL_EINVAL, "not a path");
    memcpy(out, target, len);
    out[len] = '\0';
    const char *q = memchr(target, '?', len);
    *path_len = q ? (size_t)(q - target) : len;
    return 0;
}

enum np_rules_verdict np_reqrules_check(const struct al_netpolicy *pol, const char *host,
                                        const char *method, const char *target, size_t path_len,
                                        char *why, size_t why_cap)
{
    (void)pol;
    (void)host;
    (void)method;
    (void)target;
    (void)path_len;
    if (why_cap)
        why[0] = '\0';
    return NP_RULES_NONE;
}

int np_reqrules_has_host(const struct al_netpolicy *pol, const char *host)
{
    (void)pol;
    (void)host;
    return 0;
}
