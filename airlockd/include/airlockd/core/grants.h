/* What the operator lets one API user widen in a session's settings: the
 * config's "grants" section, and the address ranges that no grant can ever
 * open (the host's loopback, unspecified and link-local addresses, cloud
 * metadata services).
 *
 * "grants": {"alice": {"allowedAddresses": ["10.20.0.0/16"],
 *                      "allowLocalBinding": true, "allowAllDomains": true,
 *                      "requireSniMatch": false,
 *                      "credentials": ["openai"]}}
 *
 * Each value is the most that user's sessions may set: addresses inside the
 * granted ranges, a flag set the widening way, the HTTP secrets of the
 * credential store (by name) a create's "credentials" may use. Every other widening key of
 * a settings document (proxy ports, parent/MITM/custom proxies, unix
 * sockets, weaker isolation, excluded or unsandboxed commands) is never
 * grantable: airlockd's sessions have no such thing to offer. */
#ifndef ALD_GRANTS_H
#define ALD_GRANTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "airlock/strlist.h"

/* An address range. IPv4 is held as its IPv4-mapped IPv6 form
 * (::ffff:a.b.c.d, prefix + 96), so one comparison covers both spellings. */
struct ald_cidr {
    uint8_t addr[16];
    unsigned prefix; /* 0..128 */
};

struct ald_grant {
    char *user;
    struct ald_cidr *addresses; /* allowedAddresses ranges */
    size_t n_addresses;
    int allow_local_binding;
    int allow_all_domains;
    int no_sni_match;              /* requireSniMatch may be false */
    struct al_strlist credentials; /* HTTP secrets (store names) the user's sessions may use */
};

struct ald_grants {
    struct ald_grant *items;
    size_t len;
};

/* Parses "IP" or "IP/PREFIX" (`len` bytes; IPv4 dotted quad or IPv6 as
 * inet_pton(3) takes them; PREFIX 0..32 or 0..128). 0 or AL_EINVAL. */
int ald_cidr_parse(struct ald_cidr *out, const char *s, size_t len);

/* 1 when every address of `inner` is inside `outer`. */
int ald_cidr_within(const struct ald_cidr *inner, const struct ald_cidr *outer);

/* When `c` shares an address with a range no grant may open, a short name of
 * that range ("the host's loopback (127.0.0.0/8)", ...); else NULL. */
const char *ald_cidr_never_grantable(const struct ald_cidr *c);

/* Applies the config's "grants" object (replaces earlier grants). User names
 * as in the users table; unknown keys, wrong types, bad ranges and ranges
 * that touch a never-grantable one are AL_EINVAL with
 * "NAME: grants.USER.KEY: reason" in al_error_last(). */
int ald_grants_load(struct ald_grants *g, const char *name, json_t *v);
void ald_grants_free(struct ald_grants *g);

/* The grant of `user`, or NULL (also for a NULL user). */
const struct ald_grant *ald_grants_find(const struct ald_grants *g, const char *user);

/* 1 when `name` can name an HTTP secret of the credential store:
 * [A-Za-z][A-Za-z0-9_-]*, at most 64 bytes (the rule of
 * creds_http_name_valid(), creds_store.h; kept here so that the api's
 * parsers do not link the store). */
int ald_secret_name_valid(const char *name);

/* 1 when `grant` (may be NULL) lets a session use the HTTP secret `name`. */
int ald_grant_allows_credential(const struct ald_grant *grant, const char *name);

/* 1 when `grant` (may be NULL) lets a session list the address range `c`. */
int ald_grant_allows_address(const struct ald_grant *grant, const struct ald_cidr *c);

#endif
