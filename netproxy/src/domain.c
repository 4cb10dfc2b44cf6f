/* Host normalisation and the domain allow/deny matcher. */
#include "domain.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <stdlib.h>
#include <string.h>

static int host_check(const char *s, size_t len)
{
    size_t label = 0;

    if (len == 0 || len > 253)
        return AL_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return AL_EINVAL;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return AL_EINVAL;
        if (++label > 63)
            return AL_EINVAL;
    }
    return label == 0 ? AL_EINVAL : 0;
}

int np_host_normalize(char *out, const char *host, size_t len)
{
    char tmp[NP_HOST_MAX * 4];
    bool ascii = true;

    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0 || len >= sizeof(tmp))
        return AL_EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c == 0)
            return AL_EINVAL;
        if (c >= 0x80)
            ascii = false;
        tmp[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    tmp[len] = '\0';
    if (!ascii) {
        char *puny = NULL;
        if (np_idn_to_ascii(tmp, &puny) < 0)
            return AL_EINVAL;
        size_t plen = strlen(puny);
        if (plen >= NP_HOST_MAX) {
            free(puny);
            return AL_EINVAL;
        }
        for (size_t i = 0; i < plen; i++)
            tmp[i] = (char)(puny[i] >= 'A' && puny[i] <= 'Z' ? puny[i] + 32 : puny[i]);
        tmp[plen] = '\0';
        len = plen;
        free(puny);
    }
    if (host_check(tmp, len) < 0)
        return AL_EINVAL;
    memcpy(out, tmp, len + 1);
    return 0;
}

static void rule_free(struct np_rule *r)
{
    free(r->name);
    free(r->text);
}

/* Parses "name", "*.name", either with ":port". 0 or AL_EINVAL/AL_ENOMEM. */
static int rule_parse(struct np_rule *out, const char *entry, bool star_ok)
{
    char name[NP_HOST_MAX];
    const char *s = entry;
    size_t len = strlen(entry);
    uint16_t port = 0;

    memset(out, 0, sizeof(*out));
    const char *colon = memchr(s, ':', len);
    if (colon) {
        const char *p = colon + 1;
        unsigned v = 0;
        if (*p == '\0' || strlen(p) > 5)
            return AL_EINVAL;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return AL_EINVAL;
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (v == 0 || v > 65535)
            return AL_EINVAL;
        port = (uint16_t)v;
        len = (size_t)(colon - s);
    }
    if (len == 1 && s[0] == '*') {
        /* "*" / "*:PORT": settings allow it in deniedDomains only */
        if (!star_ok)
            return AL_EINVAL;
        out->any = true;
        out->port = port;
        out->name = strdup("");
        out->text = strdup(entry);
        if (!out->name || !out->text) {
            rule_free(out);
            return AL_ENOMEM;
        }
        return 0;
    }
    bool wildcard = len > 2 && s[0] == '*' && s[1] == '.';
    if (wildcard) {
        s += 2;
        len -= 2;
    }
    if (np_host_normalize(name, s, len) < 0)
        return AL_EINVAL;
    /* A wildcard must cover at least a two-label suffix ("*.com" is too broad). */
    if (wildcard && !strchr(name, '.'))
        return AL_EINVAL;
    out->name = strdup(name);
    out->text = strdup(entry);
    if (!out->name || !out->text) {
        rule_free(out);
        return AL_ENOMEM;
    }
    out->wildcard = wildcard;
    out->port = port;
    return 0;
}

static int rules_push(struct np_rule **list, size_t *n, const char *entry, bool star_ok)
{
    struct np_rule r;
    int err = rule_parse(&r, entry, star_ok);
    if (err == AL_EINVAL) {
        al_log(AL_LOG_WARN, "netproxy: ignoring domain entry \"%s\": not a host name", entry);
        return 0;
    }
    if (err < 0)
        return err;
    struct np_rule *grown = realloc(*list, (*n + 1) * sizeof(**list));
    if (!grown) {
        rule_free(&r);
        return AL_ENOMEM;
    }
    grown[(*n)++] = r;
    *list = grown;
    return 0;
}

int np_rules_add_allow(struct np_rules *rules, const char *entry)
{
    return rules_push(&rules->allow, &rules->n_allow, entry, false);
}

int np_rules_build(struct np_rules *out, const struct al_netpolicy *policy)
{
    int err = 0;

    memset(out, 0, sizeof(*out));
    out->require_sni_match = policy->require_sni_match != 0;
    out->allow_all = policy->allow_all_domains != 0;
    out->strict = policy->strict_allowlist != 0;
    for (size_t i = 0; i < policy->denied_domains.len; i++)
        if ((err = rules_push(&out->deny, &out->n_deny, policy->denied_domains.items[i], true)) < 0)
            goto out;
    for (size_t i = 0; i < policy->allowed_domains.len; i++)
        if ((err = rules_push(&out->allow, &out->n_allow, policy->allowed_domains.items[i],
                              false)) < 0)
            goto out;
    if (policy->allowed_addresses.len) {
        size_t n = policy->allowed_addresses.len;
        out->addrs = calloc(n, sizeof(*out->addrs));
        out->addr_text = calloc(n, sizeof(*out->addr_text));
        if (!out->addrs || !out->addr_text) {
            err = AL_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            const char *text = policy->allowed_addresses.items[i];
            if (al_cidr_parse(&out->addrs[i], text) < 0) {
                err =
                    al_error_set(AL_EINVAL, "allowedAddresses: \"%s\" is not an IP or CIDR", text);
                goto out;
            }
            if (!(out->addr_text[i] = strdup(text))) {
                err = AL_ENOMEM;
                goto out;
            }
            out->n_addrs++;
        }
    }
out:
    if (err < 0)
        np_rules_free(out);
    return err;
}

void np_rules_free(struct np_rules *rules)
{
    for (size_t i = 0; i < rules->n_allow; i++)
        rule_free(&rules->allow[i]);
    for (size_t i = 0; i < rules->n_deny; i++)
        rule_free(&rules->deny[i]);
    for (size_t i = 0; i < rules->n_addrs; i++)
        free(rules->addr_text[i]);
    free(rules->allow);
    free(rules->deny);
    free(rules->addrs);
    free(rules->addr_text);
    memset(rules, 0, sizeof(*rules));
}

static bool rule_matches(const struct np_rule *r, const char *host, size_t hlen, uint16_t port)
{
    if (r->port && r->port != port)
        return false;
    if (r->any)
        return true;
    size_t nlen = strlen(r->name);
    if (!r->wildcard)
        return hlen == nlen && memcmp(host, r->name, nlen) == 0;
    /* strict subdomain: at least one label, then ".", then the name */
    return hlen > nlen + 1 && host[hlen - nlen - 1] == '.' &&
           memcmp(host + hlen - nlen, r->name, nlen) == 0;
}

enum np_match np_rules_match(const struct np_rules *rules, const char *host,
                             const struct al_addr *ip, uint16_t port, const char **rule)
{
    const char *dummy;
    if (!rule)
        rule = &dummy;
    *rule = NULL;
    if (ip)
        return np_rules_addr_allowed(rules, ip, rule) ? NP_MATCH_ALLOW : NP_MATCH_NONE;
    size_t hlen = strlen(host);
    for (size_t i = 0; i < rules->n_deny; i++) {
        if (rule_matches(&rules->deny[i], host, hlen, port)) {
            *rule = rules->deny[i].text;
            return NP_MATCH_DENY;
        }
    }
    for (size_t i = 0; i < rules->n_allow; i++) {
        if (rule_matches(&rules->allow[i], host, hlen, port)) {
            *rule = rules->allow[i].text;
            return NP_MATCH_ALLOW;
        }
    }
    if (rules->allow_all) {
        *rule = "allowAllDomains";
        return NP_MATCH_ALLOW;
    }
    return NP_MATCH_NONE;
}

bool np_rules_addr_allowed(const struct np_rules *rules, const struct al_addr *addr,
                           const char **rule)
{
    for (size_t i = 0; i < rules->n_addrs; i++) {
        if (al_cidr_contains(&rules->addrs[i], addr)) {
            if (rule)
                *rule = rules->addr_text[i];
            return true;
        }
    }
    return false;
}

bool np_domain_pattern_match(const char *pattern, const char *host)
{
    struct np_rule r;
    if (rule_parse(&r, pattern, false) < 0)
        return false;
    bool hit = rule_matches(&r, host, strlen(host), r.port);
    rule_free(&r);
    return hit;
}
