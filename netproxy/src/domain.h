/* Domain policy: host normalisation and the allow/deny matcher. */
#ifndef NP_DOMAIN_H
#define NP_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/ipaddr.h"
#include "airlock/netpolicy.h"

#define NP_HOST_MAX 256 /* 253 + NUL, rounded */

/* Normalises a host name from the wire (`len` bytes): lower case, one
 * trailing dot removed, UTF-8 names converted to punycode (libidn2), then
 * checked: letters, digits, '-', '_' and dots, labels of 1..63 bytes, at most
 * 253 bytes. NUL or any other byte is refused. Writes a NUL-terminated result
 * into `out` (NP_HOST_MAX bytes). Returns 0 or AL_EINVAL.
 * Callers first try al_addr_parse(): IP literals are not names. */
int np_host_normalize(char *out, const char *host, size_t len);

struct np_rule {
    char *name;    /* normalised, without the "*." of a wildcard */
    bool wildcard; /* "*.name": strict subdomains only */
    bool any;      /* "*" (deniedDomains only): every name */
    uint16_t port; /* 0 = any port */
    char *text;    /* the entry as written, for the log */
};

struct np_rules {
    struct np_rule *allow;
    size_t n_allow;
    struct np_rule *deny;
    size_t n_deny;
    struct al_cidr *addrs; /* allowedAddresses */
    char **addr_text;
    size_t n_addrs;
    bool require_sni_match;
    bool allow_all; /* allowAllDomains: every name not denied is allowed */
    bool strict;    /* strictAllowlist: a name in neither list is refused, never
                       held for the approver */
};

enum np_match {
    NP_MATCH_NONE = 0, /* in neither list: ask or deny */
    NP_MATCH_ALLOW,
    NP_MATCH_DENY,
};

/* Builds matcher rules from the network fields of `policy`. Domain entries
 * that cannot match anything (bad characters) are skipped with a warning;
 * a bad allowedAddresses entry fails with AL_EINVAL naming it. On success the
 * caller frees `out` with np_rules_free(). */
int np_rules_build(struct np_rules *out, const struct al_netpolicy *policy);

/* Appends one allow rule ("host", "*.host", "host:port"). 0/AL_EINVAL/AL_ENOMEM. */
int np_rules_add_allow(struct np_rules *rules, const char *entry);

void np_rules_free(struct np_rules *rules);

/* Decides a request by name: `host` must be normalised (np_host_normalize)
 * or be the text of an IP literal with `ip` set. Denied entries are checked
 * first; with allowAllDomains every other name is allowed. IP literals
 * match only allowedAddresses, never a domain entry nor allowAllDomains.
 * *rule (may be NULL) receives the entry text that decided, or NULL. */
enum np_match np_rules_match(const struct np_rules *rules, const char *host,
                             const struct al_addr *ip, uint16_t port, const char **rule);

/* True when allowedAddresses contains `addr` (this lifts the SSRF guard for
 * it). *rule receives the entry text. */
bool np_rules_addr_allowed(const struct np_rules *rules, const struct al_addr *addr,
                           const char **rule);

/* Whether the normalised `host` matches `pattern`, an allowedDomains-style
 * entry ("name" or "*.name", strict subdomains only), by the same matcher as
 * np_rules_match(). A ":port" suffix on the pattern is ignored (host only).
 * False for a pattern that is not a host pattern. */
bool np_domain_pattern_match(const char *pattern, const char *host);

/* idn.c: `utf8` (a host name) to punycode ASCII in a new string *out (the
 * caller frees). AL_EINVAL for a name IDNA refuses, AL_EUNSUPP when libidn2
 * cannot be loaded. */
int np_idn_to_ascii(const char *utf8, char **out);

#endif
