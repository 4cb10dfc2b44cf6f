/* A session's network policy: what the egress proxy enforces, as a typed
 * structure. The settings loader computes it once (struct al_policy.net),
 * where the settings are validated; airlockd sends it to the netproxy in the
 * control protocol as the JSON object below, and the netproxy decodes that
 * object, never a settings document.
 *
 * Wire form (docs/control-protocol.md), every key required but the last,
 * no other key:
 *   {"allowed_domains": ["example.com", "*.example.org", "host:443"],
 *    "denied_domains": ["*:25"], "allowed_addresses": ["10.1.2.3/32"],
 *    "allow_all_domains": false, "require_sni_match": true,
 *    "strict_allowlist": true}
 * "strict_allowlist" came later: absent means false, and it is written only
 * when true, so a peer of the previous version decodes every policy it can
 * enforce and refuses (rather than silently weakens) one it cannot.
 * Issue 15 added, under the same rule (optional, written only when set):
 *   "report_only": true, "tls_terminate": true,
 *   "tls_exclude_domains": ["pinned.example.com"],
 *   "allow_plaintext_inject": true,
 *   "request_rules": [{"host": "api.example.com", "methods": ["GET"],
 *                      "paths": ["/repos/acme/\**"], "query_keys": ["page"]}]
 * ("methods", "paths" and "query_keys" optional in a rule; absent "query_keys"
 * means any query, [] means no query at all).
 */
#ifndef AIRLOCK_NETPOLICY_H
#define AIRLOCK_NETPOLICY_H

#include <jansson.h>

#include "airlock/strlist.h"

/* One request rule (network.requestRules[i]). A host that has rules
 * accepts only requests that match one of them; matched after the path is
 * normalised (netproxy/src/reqrule.h). */
struct al_reqrule {
    char *host;                   /* domain pattern as in allowed_domains (lower-cased) */
    struct al_strlist methods;    /* upper-case method tokens; empty = any method */
    struct al_strlist paths;      /* path globs ("/repos/acme/app/\**": "*" within one
                                     segment, "**" any number of segments); empty = any path */
    int has_query_keys;           /* 0: any query string */
    struct al_strlist query_keys; /* has_query_keys: every query parameter's name must be
                                     one of these (empty list: no query allowed) */
};

struct al_netpolicy {
    struct al_strlist allowed_domains;   /* "example.com", "*.example.com", "host:443";
                                            ASCII lower-cased */
    struct al_strlist denied_domains;    /* the same, and "*" / "*:PORT" */
    struct al_strlist allowed_addresses; /* IP or CIDR literals */
    int allow_all_domains;               /* any domain but denied_domains (default 0) */
    int require_sni_match;               /* default 1 */
    int strict_allowlist;                /* strictAllowlist: a host in neither list is refused,
                                            never held for an approval (default 0) */
    int report_only;                     /* reportOnly: domain and request-rule denials are
                                            logged "would-deny" and let through; the address
                                            guard and credential rules still apply (default 0) */
    int tls_terminate;                   /* network.tlsTerminate present: CONNECT/SOCKS5
                                            tunnels are TLS-terminated with the session CA
                                            (default 0) */
    struct al_strlist tls_exclude;       /* tlsTerminate.excludeDomains: opaque tunnels */
    int allow_plaintext_inject;          /* credentials.allowPlaintextInject: sentinels may
                                            be replaced in plain-HTTP requests (default 0) */
    struct al_reqrule *request_rules;    /* network.requestRules, in file order */
    size_t n_request_rules;
};

/* Frees what `r` owns. */
void al_reqrule_free(struct al_reqrule *r);

/* The defaults: nothing allowed, nothing denied, SNI must match. */
void al_netpolicy_init(struct al_netpolicy *np);

/* Frees what `np` owns; it may be re-initialised afterwards. */
void al_netpolicy_free(struct al_netpolicy *np);

/* Deep copy of `src` into `dst` (initialised here). 0 or AL_ENOMEM (then
 * `dst` holds nothing). */
int al_netpolicy_copy(struct al_netpolicy *dst, const struct al_netpolicy *src);

/* The wire form of `np`: a new JSON object, or NULL on ENOMEM or a string
 * that is not UTF-8 (the settings loader never stores one). */
json_t *al_netpolicy_to_json(const struct al_netpolicy *np);

/* Decodes the wire form `obj` into `np` (initialised here). Strict: `obj`
 * must be an object holding exactly the five required keys and at most
 * the optional ones above besides (absent: 0 / empty), lists of strings
 * and booleans; "tls_exclude_domains" only with "tls_terminate": true; a
 * request rule holds "host" and at most "methods", "paths" (not empty)
 * and "query_keys", each entry checked as the settings loader checks
 * network.requestRules (upper-case method tokens; paths starting with "/"
 * without NUL, CR, LF, "\\" or "?"),
 * and every entry passes the settings loader's own check
 * (al_settings_check_domain, al_settings_check_denied_domain,
 * al_settings_check_address) with domains already lower-cased. Returns 0, or
 * AL_EINVAL with a message naming the key and entry (e.g.
 * "allowed_domains[2]: \"*.com\" is too broad"), or AL_ENOMEM; on error `np`
 * holds nothing. */
int al_netpolicy_from_json(struct al_netpolicy *np, const json_t *obj);

#endif
