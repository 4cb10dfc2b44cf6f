/* libFuzzer: request-target normalisation and the request-rule matcher with a
 * fixed policy. Input: a method, a NUL byte, then the request target (with no
 * NUL byte the whole input is the target and the method is "GET"). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/netpolicy.h"
#include "airlock/strlist.h"
#include "reqrule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct al_netpolicy pol;
static int ready;

static void rule(const char *host, const char *const *methods, const char *const *paths,
                 const char *const *keys, int has_keys)
{
    struct al_reqrule *r =
        realloc(pol.request_rules, (pol.n_request_rules + 1) * sizeof(*pol.request_rules));
    if (!r)
        abort();
    pol.request_rules = r;
    r = &r[pol.n_request_rules++];
    memset(r, 0, sizeof(*r));
    r->host = strdup(host);
    for (; methods && *methods; methods++)
        al_strlist_push(&r->methods, *methods);
    for (; paths && *paths; paths++)
        al_strlist_push(&r->paths, *paths);
    r->has_query_keys = has_keys;
    for (; keys && *keys; keys++)
        al_strlist_push(&r->query_keys, *keys);
}

static void setup(void)
{
    static const char *const get[] = {"GET", "HEAD", NULL};
    static const char *const post[] = {"POST", NULL};
    static const char *const p1[] = {"/repos/acme/app/**", "/a/*/b/**/c*d", NULL};
    static const char *const p2[] = {"/**/x/**/y", "/upload/*.json", NULL};
    static const char *const k[] = {"page", "q", NULL};
    al_netpolicy_init(&pol);
    rule("api.example.com", get, p1, NULL, 0);
    rule("*.example.com", post, p2, k, 1);
    rule("api.example.com", NULL, NULL, k, 1);
    ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[NP_PATH_MAX + 1];
    char method[32] = "GET";
    char why[300];
    size_t path_len = 0;
    const char *target = (const char *)data;
    size_t tlen = size;

    if (!ready)
        setup();
    const uint8_t *nul = memchr(data, 0, size);
    if (nul) {
        size_t mlen = (size_t)(nul - data);
        if (mlen >= sizeof(method))
            return 0;
        memcpy(method, data, mlen);
        method[mlen] = '\0';
        target = (const char *)nul + 1;
        tlen = size - mlen - 1;
    }
    if (np_path_normalise(target, tlen, out, sizeof(out), &path_len) < 0)
        return 0;
    /* the result is a normalised path: no dot segment, no control byte */
    if (path_len == 0 || out[0] != '/' || path_len > strlen(out) ||
        (out[path_len] != '\0' && out[path_len] != '?'))
        __builtin_trap();
    char path[NP_PATH_MAX + 2];
    memcpy(path, out, path_len);
    memcpy(path + path_len, "/", 2); /* so a final "/.." is seen as "/../" */
    if (strstr(path, "/../") || strstr(path, "/./") || memchr(path, '\\', path_len))
        __builtin_trap();
    for (size_t i = 0; out[i]; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            __builtin_trap();
    /* normalising again changes nothing */
    char again[NP_PATH_MAX + 1];
    size_t len2 = 0;
    if (np_path_normalise(out, strlen(out), again, sizeof(again), &len2) < 0 || len2 != path_len ||
        strcmp(again, out) != 0)
        __builtin_trap();
    static const char *const hosts[] = {"api.example.com", "x.example.com", "other.test"};
    for (size_t i = 0; i < 3; i++) {
        enum np_rules_verdict v =
            np_reqrules_check(&pol, hosts[i], method, out, path_len, why, sizeof(why));
        if (strlen(why) >= sizeof(why))
            __builtin_trap();
        for (const char *c = why; *c; c++)
            if (*c < 0x20 || *c == 0x7f)
                __builtin_trap();
        if ((v == NP_RULES_NONE) != (i == 2))
            __builtin_trap();
    }
    return 0;
}
