#include "airlockd/core/grants.h"

#include "airlock/error.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ald_cidr_parse(struct ald_cidr *out, const char *s, size_t len)
{
    char host[64];
    const char *slash = memchr(s, '/', len);
    size_t hl = slash ? (size_t)(slash - s) : len;
    if (hl == 0 || hl >= sizeof(host) || memchr(s, '\0', len))
        return AL_EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    unsigned max, shift;
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, host, out->addr + 12) == 1) {
        out->addr[10] = out->addr[11] = 0xff;
        max = 32;
        shift = 96;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        max = 128;
        shift = 0;
    } else {
        return AL_EINVAL;
    }
    unsigned prefix = max;
    if (slash) {
        size_t pl = len - hl - 1;
        if (pl == 0 || pl > 3)
            return AL_EINVAL;
        prefix = 0;
        for (size_t i = 0; i < pl; i++) {
            char c = slash[1 + i];
            if (c < '0' || c > '9')
                return AL_EINVAL;
            prefix = prefix * 10 + (unsigned)(c - '0');
        }
        if (prefix > max)
            return AL_EINVAL;
    }
    out->prefix = prefix + shift;
    return 0;
}

/* 1 when a and b agree on their first `bits` bits. */
static int same_bits(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int ald_cidr_within(const struct ald_cidr *inner, const struct ald_cidr *outer)
{
    return inner->prefix >= outer->prefix && same_bits(inner->addr, outer->addr, outer->prefix);
}

/* Ranges that no grant opens. IPv4 ranges cover their ::ffff: forms too;
 * NAT64 (64:ff9b::/96) forms of the IPv4 ones are listed as well. */
static const struct {
    const char *range, *name;
} never[] = {
    {"127.0.0.0/8", "the host's loopback (127.0.0.0/8)"},
    {"::1/128", "the host's loopback (::1)"},
    {"0.0.0.0/8", "unspecified (0.0.0.0/8)"},
    {"::/96", "unspecified, loopback or IPv4-compatible (::/96)"},
    {"169.254.0.0/16", "link-local (169.254.0.0/16, cloud metadata at 169.254.169.254)"},
    {"fe80::/10", "link-local (fe80::/10)"},
    {"fd00:ec2::254/128", "a cloud metadata service (fd00:ec2::254)"},
    {"100.100.100.200/32", "a cloud metadata service (100.100.100.200)"},
    {"192.0.0.192/32", "a cloud metadata service (192.0.0.192)"},
    {"64:ff9b::7f00:0/104", "the host's loopback through NAT64 (64:ff9b::127.0.0.0/104)"},
    {"64:ff9b::/104", "unspecified through NAT64 (64:ff9b::0.0.0.0/104)"},
    {"64:ff9b::a9fe:0/112", "link-local through NAT64 (64:ff9b::169.254.0.0/112)"},
    {"64:ff9b::6464:64c8/128", "a cloud metadata service through NAT64"},
    {"64:ff9b::c000:c0/128", "a cloud metadata service through NAT64"},
};

const char *ald_cidr_never_grantable(const struct ald_cidr *c)
{
    for (size_t i = 0; i < sizeof(never) / sizeof(*never); i++) {
        struct ald_cidr r;
        if (ald_cidr_parse(&r, never[i].range, strlen(never[i].range)) < 0)
            continue; /* not reached: the table is checked by the unit test */
        /* two ranges overlap when the wider one holds the other's start */
        unsigned p = c->prefix < r.prefix ? c->prefix : r.prefix;
        if (same_bits(c->addr, r.addr, p))
            return never[i].name;
    }
    return NULL;
}

int ald_grant_allows_address(const struct ald_grant *grant, const struct ald_cidr *c)
{
    if (!grant || ald_cidr_never_grantable(c))
        return 0;
    for (size_t i = 0; i < grant->n_addresses; i++)
        if (ald_cidr_within(c, &grant->addresses[i]))
            return 1;
    return 0;
}

int ald_secret_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 ||
        !((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z')))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int ald_grant_allows_credential(const struct ald_grant *grant, const char *name)
{
    return grant && al_strlist_find(&grant->credentials, name) >= 0;
}

static void grant_free(struct ald_grant *g)
{
    free(g->user);
    free(g->addresses);
    al_strlist_free(&g->credentials);
    memset(g, 0, sizeof(*g));
}

void ald_grants_free(struct ald_grants *g)
{
    for (size_t i = 0; i < g->len; i++)
        grant_free(&g->items[i]);
    free(g->items);
    memset(g, 0, sizeof(*g));
}

const struct ald_grant *ald_grants_find(const struct ald_grants *g, const char *user)
{
    for (size_t i = 0; user && i < g->len; i++)
        if (strcmp(g->items[i].user, user) == 0)
            return &g->items[i];
    return NULL;
}

static int fail(const char *name, const char *user, const char *key, const char *why)
{
    return al_error_set(AL_EINVAL, "%s: grants%s%.63s%s%s: %s", name, user ? "." : "",
                        user ? user : "", key ? "." : "", key ? key : "", why);
}

/* The users table's rule: [a-z0-9][a-z0-9._-]{0,62}. */
static int user_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (i > 0 && (c == '.' || c == '_' || c == '-'))))
            return 0;
    }
    return 1;
}

static int load_addresses(struct ald_grant *g, const char *name, json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) > 256)
        return fail(name, g->user, "allowedAddresses",
                    "expected an array of at most 256 IP or CIDR strings");
    size_t n = json_array_size(v);
    g->addresses = calloc(n ? n : 1, sizeof(*g->addresses));
    if (!g->addresses)
        return AL_ENOMEM;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        char key[48], why[300];
        snprintf(key, sizeof(key), "allowedAddresses[%zu]", i);
        const char *s = json_string_value(e);
        struct ald_cidr c;
        if (!s || ald_cidr_parse(&c, s, json_string_length(e)) < 0)
            return fail(name, g->user, key, "expected an IP address or CIDR block");
        const char *bad = ald_cidr_never_grantable(&c);
        if (bad) {
            snprintf(why, sizeof(why), "\"%.64s\" reaches %s, which no grant may open", s, bad);
            return fail(name, g->user, key, why);
        }
        g->addresses[g->n_addresses++] = c;
    }
    return 0;
}

static int load_credentials(struct ald_grant *g, const char *name, json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) > 256)
        return fail(name, g->user, "credentials",
                    "expected an array of at most 256 HTTP secret names");
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        char key[48];
        snprintf(key, sizeof(key), "credentials[%zu]", i);
        const char *s = json_string_value(e);
        if (!s || strlen(s) != json_string_length(e) || !ald_secret_name_valid(s))
            return fail(name, g->user, key,
                        "expected the name of an HTTP secret ([A-Za-z][A-Za-z0-9_-]*, as "
                        "`airlock creds add --kind http --name` takes it)");
        if (al_strlist_push_unique(&g->credentials, s) < 0)
            return AL_ENOMEM;
    }
    return 0;
}

static int load_flag(struct ald_grant *g, const char *name, const char *key, json_t *v,
                     int widening, int *out)
{
    if (!json_is_boolean(v))
        return fail(name, g->user, key, "expected true or false");
    *out = json_is_true(v) == widening;
    return 0;
}

static int load_grant(struct ald_grant *g, const char *name, const char *user, json_t *v)
{
    if (!user_name_ok(user))
        return fail(name, user, NULL, "not a user name ([a-z0-9][a-z0-9._-]*)");
    if (!(g->user = strdup(user)))
        return AL_ENOMEM;
    if (!json_is_object(v))
        return fail(name, user, NULL, "expected an object");
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        int err;
        if (strcmp(k, "allowedAddresses") == 0)
            err = load_addresses(g, name, x);
        else if (strcmp(k, "allowLocalBinding") == 0)
            err = load_flag(g, name, k, x, 1, &g->allow_local_binding);
        else if (strcmp(k, "allowAllDomains") == 0)
            err = load_flag(g, name, k, x, 1, &g->allow_all_domains);
        else if (strcmp(k, "requireSniMatch") == 0)
            err = load_flag(g, name, k, x, 0, &g->no_sni_match);
        else if (strcmp(k, "credentials") == 0)
            err = load_credentials(g, name, x);
        else {
            char key[64];
            snprintf(key, sizeof(key), "%.40s", k);
            err = fail(name, user, key,
                       "unknown key (grantable: allowedAddresses, allowLocalBinding,"
                       " allowAllDomains, requireSniMatch, credentials)");
        }
        if (err < 0)
            return err;
    }
    return 0;
}

int ald_grants_load(struct ald_grants *g, const char *name, json_t *v)
{
    if (!json_is_object(v) || json_object_size(v) > 4096)
        return fail(name, NULL, NULL, "expected an object of at most 4096 users");
    struct ald_grants next = {calloc(json_object_size(v) + 1, sizeof(struct ald_grant)), 0};
    if (!next.items)
        return AL_ENOMEM;
    const char *user;
    json_t *x;
    int err = 0;
    json_object_foreach(v, user, x)
    {
        if ((err = load_grant(&next.items[next.len++], name, user, x)) < 0)
            break;
    }
    if (err < 0) {
        ald_grants_free(&next);
        return err;
    }
    ald_grants_free(g);
    *g = next;
    return 0;
}
