/* Request rules (network.requestRules) and the path normalisation they are
 * matched after. Pure functions over bounded input; used by the plain HTTP
 * path (http_proxy.c) and by terminated tunnels (tls_term.c). */
#ifndef NP_REQRULE_H
#define NP_REQRULE_H

#include <stddef.h>

#include "airlock/netpolicy.h"

#define NP_PATH_MAX 8192 /* longest normalised request target */

/* Normalises an origin-form request target `target[0..len)` ("/a/b?q=1"):
 * percent-escapes of unreserved characters (ALPHA DIGIT - . _ ~) are decoded,
 * other escapes kept with upper-case hex, dot segments ("." and "..", also
 * once decoded) removed as RFC 3986 section 5.2.4 says. Writes the normalised
 * target (path, then "?query" unchanged) NUL-terminated to out (cap bytes)
 * and the path's length to *path_len. Returns 0, or AL_EINVAL with a reason
 * in al_error_last() when the target is not origin-form (does not start with
 * '/'), a ".." would climb above "/", it holds a NUL, CR, LF or other
 * control byte, a backslash in the path, an encoded '/', '\\' or NUL (%2F
 * %5C %00), a bad escape, a dot segment with parameters ("..;x", ".;x": some
 * servers resolve those as dot segments), or does not fit (cap, NP_PATH_MAX). */
int np_path_normalise(const char *target, size_t len, char *out, size_t cap, size_t *path_len);

enum np_rules_verdict {
    NP_RULES_NONE = 0,  /* the host has no rules: anything goes */
    NP_RULES_MATCH = 1, /* a rule matched */
    NP_RULES_MISS = 2,  /* the host has rules and none matched */
};

/* Checks a request to `host` (normalised, lower case) with `method` and the
 * NORMALISED target `target` (from np_path_normalise; path_len bytes of path,
 * then maybe "?query") against pol->request_rules. On NP_RULES_MISS writes a
 * one-line reason to why (cap bytes) naming the request and the rules it
 * missed, e.g. "POST /repos/acme/app matches no request rule for
 * api.example.com (GET,HEAD /repos/acme/app/\**)"; on NP_RULES_MATCH the
 * matching rule in the same form ("GET,HEAD /repos/acme/app/\**"). */
enum np_rules_verdict np_reqrules_check(const struct al_netpolicy *pol, const char *host,
                                        const char *method, const char *target, size_t path_len,
                                        char *why, size_t why_cap);

/* Whether `host` has any request rule. */
int np_reqrules_has_host(const struct al_netpolicy *pol, const char *host);

#endif
