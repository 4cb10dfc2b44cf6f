/* Fuzzes the typed network policy decoder (the netproxy's side of the
 * control protocol): any bytes as JSON, decoded; what decodes must encode
 * and decode again to the same lists, flags and request rules. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/netpolicy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct al_strlist *a, const struct al_strlist *b)
{
    if (a->len != b->len)
        abort();
    for (size_t i = 0; i < a->len; i++)
        if (strcmp(a->items[i], b->items[i]) != 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    json_t *obj = json_loadb((const char *)data, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    struct al_netpolicy np, again;
    if (obj && al_netpolicy_from_json(&np, obj) == 0) {
        json_t *wire = al_netpolicy_to_json(&np);
        if (!wire || al_netpolicy_from_json(&again, wire) < 0)
            abort();
        same(&np.allowed_domains, &again.allowed_domains);
        same(&np.denied_domains, &again.denied_domains);
        same(&np.allowed_addresses, &again.allowed_addresses);
        same(&np.tls_exclude, &again.tls_exclude);
        if (np.allow_all_domains != again.allow_all_domains ||
            np.require_sni_match != again.require_sni_match ||
            np.strict_allowlist != again.strict_allowlist || np.report_only != again.report_only ||
            np.tls_terminate != again.tls_terminate ||
            np.allow_plaintext_inject != again.allow_plaintext_inject ||
            np.n_request_rules != again.n_request_rules)
            abort();
        for (size_t i = 0; i < np.n_request_rules; i++) {
            const struct al_reqrule *a = &np.request_rules[i], *b = &again.request_rules[i];
            if (strcmp(a->host, b->host) != 0 || a->has_query_keys != b->has_query_keys)
                abort();
            same(&a->methods, &b->methods);
            same(&a->paths, &b->paths);
            same(&a->query_keys, &b->query_keys);
        }
        al_netpolicy_free(&again);
        al_netpolicy_free(&np);
        json_decref(wire);
    }
    json_decref(obj);
    return 0;
}
