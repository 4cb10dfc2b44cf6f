#include "airlockd/api/body.h"

#include "airlockd/core/grants.h"
#include "airlockd/core/util.h"

#include "airlock/base64.h"
#include "airlock/error.h"
#include "airlock/path.h"
#include "airlock/refname.h"
#include "airlock/sbsession.h"

#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int ald_apierr_set(struct ald_apierr *e, int status, const char *code, const char *field,
                   const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    e->earliest_offset = -1;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return AL_EINVAL;
}

static int bad_type(struct ald_apierr *e, const char *field, const char *want)
{
    return ald_apierr_set(e, 400, "wrong_type", field, "body: %s: expected %s", field, want);
}

static int bad_value(struct ald_apierr *e, const char *field, const char *why)
{
    return ald_apierr_set(e, 400, "invalid_value", field, "body: %s: %s", field, why);
}

/* Parses `len` bytes as a JSON object (an empty body is `{}` when
 * `empty_ok`). *out: new reference. */
static int parse_object(json_t **out, const char *data, size_t len, int empty_ok,
                        struct ald_apierr *e)
{
    *out = NULL;
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
        i++;
    if (i == len && empty_ok) {
        *out = json_object();
        return *out ? 0 : AL_ENOMEM;
    }
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ald_apierr_set(e, 400, "invalid_json", NULL, "body: line %d column %d: %s",
                              jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return ald_apierr_set(e, 400, "invalid_json", NULL, "body: expected a JSON object");
    }
    *out = root;
    return 0;
}

/* Refuses any field of `obj` not in `known` (NULL-terminated). */
static int known_fields(json_t *obj, const char *prefix, const char *const *known,
                        struct ald_apierr *e)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        int ok = 0;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(k, known[i]) == 0;
        if (!ok) {
            char field[128];
            snprintf(field, sizeof(field), "%s%.100s", prefix, k);
            return ald_apierr_set(e, 400, "unknown_field", field, "body: unknown field \"%s\"",
                                  field);
        }
    }
    return 0;
}

/* A JSON string without NUL of at most `max` bytes. */
static const char *get_string(json_t *v, const char *field, size_t max, struct ald_apierr *e)
{
    if (!json_is_string(v)) {
        bad_type(e, field, "a string");
        return NULL;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) {
        bad_value(e, field, "contains a NUL byte");
        return NULL;
    }
    if (json_string_length(v) > max) {
        char why[64];
        snprintf(why, sizeof(why), "longer than %zu bytes", max);
        bad_value(e, field, why);
        return NULL;
    }
    return s;
}

int ald_env_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

/* An object of env strings: names checked, at most ALD_ENV_MAX entries. */
static int check_env(json_t *v, const char *field, struct ald_apierr *e)
{
    if (!json_is_object(v))
        return bad_type(e, field, "an object of strings");
    if (json_object_size(v) > ALD_ENV_MAX)
        return bad_value(e, field, "too many variables (at most 256)");
    const char *k;
    json_t *val;
    json_object_foreach(v, k, val)
    {
        char f[160];
        snprintf(f, sizeof(f), "%s.%.100s", field, k);
        if (!ald_env_name_valid(k))
            return bad_value(e, f, "name must match [A-Za-z_][A-Za-z0-9_]*");
        if (!get_string(val, f, 65536, e))
            return AL_EINVAL;
    }
    return 0;
}

static int check_metadata(json_t *v, struct ald_apierr *e)
{
    if (!json_is_object(v))
        return bad_type(e, "metadata", "an object of strings");
    if (json_object_size(v) > ALD_METADATA_MAX_KEYS)
        return bad_value(e, "metadata", "more than 32 keys");
    const char *k;
    json_t *val;
    json_object_foreach(v, k, val)
    {
        char f[160];
        snprintf(f, sizeof(f), "metadata.%.100s", k);
        if (strlen(k) == 0 || strlen(k) > ALD_METADATA_MAX_BYTES)
            return bad_value(e, f, "keys are 1 to 256 bytes");
        if (!get_string(val, f, ALD_METADATA_MAX_BYTES, e))
            return AL_EINVAL;
    }
    return 0;
}

static int check_u64(json_t *v, const char *field, uint64_t min, uint64_t max, uint64_t *out,
                     struct ald_apierr *e)
{
    char why[96];
    switch (ald_json_u64(v, min, max, out, why, sizeof(why))) {
    case ALD_U64_NOT_INTEGER:
        return bad_type(e, field, "an integer");
    case ALD_U64_OUT_OF_RANGE:
        return bad_value(e, field, why);
    case ALD_U64_OK:
        break;
    }
    return 0;
}

static int check_limits(json_t *v, const struct ald_config *cfg, struct ald_limits *l,
                        struct ald_apierr *e)
{
    static const char *const known[] = {"memory_mb", "pids", "cpu", "ttl_s", "idle_s", NULL};
    if (!json_is_object(v))
        return bad_type(e, "limits", "an object");
    int err = known_fields(v, "limits.", known, e);
    const struct ald_limits *m = &cfg->limits_max;
    json_t *x;
    if (err == 0 && (x = json_object_get(v, "memory_mb")))
        err = check_u64(x, "limits.memory_mb", 16, m->memory_mb, &l->memory_mb, e);
    if (err == 0 && (x = json_object_get(v, "pids")))
        err = check_u64(x, "limits.pids", 8, m->pids, &l->pids, e);
    if (err == 0 && (x = json_object_get(v, "ttl_s")))
        err = check_u64(x, "limits.ttl_s", 1, m->ttl_s, &l->ttl_s, e);
    if (err == 0 && (x = json_object_get(v, "idle_s")))
        err = check_u64(x, "limits.idle_s", 1, m->idle_s, &l->idle_s, e);
    if (err == 0 && (x = json_object_get(v, "cpu"))) {
        if (!json_is_number(x))
            return bad_type(e, "limits.cpu", "a number");
        double d = json_number_value(x);
        if (!isfinite(d) || d < 0.01 || d > m->cpu) {
            char why[96];
            snprintf(why, sizeof(why), "must be between 0.01 and %g", m->cpu);
            return bad_value(e, "limits.cpu", why);
        }
        l->cpu = d;
    }
    return err;
}

static int forbidden(struct ald_apierr *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 403: a setting that would widen what the session reaches. */
static int forbidden(struct ald_apierr *e, const char *field, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return ald_apierr_set(e, 403, "forbidden", field, "body: %s: %s", field, why);
}

/* Keys of either settings shape that widen what a session reaches, and the
 * value that does: everything else they may hold is the default or
 * narrower. */
enum widen {
    W_TRUE,      /* true widens */
    W_FALSE,     /* false widens (requireSniMatch) */
    W_SET,       /* anything but null, false or an empty array/object widens */
    W_NOT_FALSE, /* anything but null or false widens (an empty list of unix
                    sockets still lets the sandbox make unix sockets) */
    W_ADDRESSES, /* each entry must be inside a granted range */
};

static const struct {
    const char *key;
    enum widen how;
    int grantable; /* see grants.h */
} widening[] = {
    {"allowedAddresses", W_ADDRESSES, 1},
    {"allowLocalBinding", W_TRUE, 1},
    {"allowAllDomains", W_TRUE, 1},
    {"requireSniMatch", W_FALSE, 1},
    {"httpProxyPort", W_SET, 0},
    {"socksProxyPort", W_SET, 0},
    {"customProxy", W_SET, 0},
    {"parentProxy", W_SET, 0},
    {"mitmProxy", W_SET, 0},
    {"allowUnixSockets", W_NOT_FALSE, 0},
    {"allowAllUnixSockets", W_TRUE, 0},
    {"enableWeakerNetworkIsolation", W_TRUE, 0},
    {"enableWeakerNestedSandbox", W_TRUE, 0},
    {"excludedCommands", W_SET, 0},
    {"allowUnsandboxedCommands", W_TRUE, 0},
};

static int granted_flag(const struct ald_grant *g, const char *key)
{
    if (!g)
        return 0;
    if (strcmp(key, "allowLocalBinding") == 0)
        return g->allow_local_binding;
    if (strcmp(key, "allowAllDomains") == 0)
        return g->allow_all_domains;
    if (strcmp(key, "requireSniMatch") == 0)
        return g->no_sni_match;
    return 0;
}

/* One allowedAddresses entry (a string the settings loader accepted). */
static int check_address(const char *field, const char *text, size_t len,
                         const struct ald_grant *grant, struct ald_apierr *e)
{
    struct ald_cidr c;
    if (ald_cidr_parse(&c, text, len) < 0)
        return bad_value(e, field, "expected an IP address or CIDR block");
    const char *never = ald_cidr_never_grantable(&c);
    if (never)
        return forbidden(e, field, "\"%.64s\" reaches %s: never allowed in a session", text, never);
    if (!ald_grant_allows_address(grant, &c))
        return forbidden(e, field,
                         "\"%.64s\" is not inside an address range the operator granted to"
                         " this user (airlockd's grants.USER.allowedAddresses)",
                         text);
    return 0;
}

/* Looks for a widening key anywhere in the settings document (both shapes,
 * and wherever else it may hide); `path` holds the field name so far. */
static int find_widening(json_t *v, char *path, size_t pathsz, const struct ald_grant *grant,
                         struct ald_apierr *e)
{
    if (!json_is_object(v))
        return 0;
    size_t base = strlen(path);
    const char *k;
    json_t *val;
    json_object_foreach(v, k, val)
    {
        snprintf(path + base, pathsz - base, ".%.60s", k);
        for (size_t i = 0; i < sizeof(widening) / sizeof(*widening); i++) {
            if (strcmp(k, widening[i].key) != 0)
                continue;
            int widens = 0;
            switch (widening[i].how) {
            case W_TRUE:
                widens = json_is_true(val);
                break;
            case W_FALSE:
                widens = json_is_false(val);
                break;
            case W_SET:
                widens = !json_is_null(val) && !json_is_false(val) &&
                         !(json_is_array(val) && json_array_size(val) == 0) &&
                         !(json_is_object(val) && json_object_size(val) == 0);
                break;
            case W_NOT_FALSE:
                widens = !json_is_null(val) && !json_is_false(val);
                break;
            case W_ADDRESSES: {
                size_t j;
                json_t *a;
                char field[300];
                json_array_foreach(val, j, a)
                {
                    snprintf(field, sizeof(field), "%s[%zu]", path, j);
                    if (!json_is_string(a))
                        return bad_type(e, field, "an IP address or CIDR string");
                    int err =
                        check_address(field, json_string_value(a), json_string_length(a), grant, e);
                    if (err < 0)
                        return err;
                }
                break;
            }
            }
            if (widens && !(widening[i].grantable && granted_flag(grant, k)))
                return forbidden(e, path,
                                 widening[i].grantable
                                     ? "widens what the session reaches: only an operator's"
                                       " grant (airlockd's grants.USER.%s) allows it"
                                     : "widens what the session reaches: never allowed in a"
                                       " session (%s)",
                                 k);
        }
        int err = find_widening(val, path, pathsz, grant, e);
        if (err < 0)
            return err;
    }
    path[base] = '\0';
    return 0;
}

static int check_inside(const struct al_strlist *list, const char *field, const char *workspace,
                        struct ald_apierr *e)
{
    for (size_t i = 0; i < list->len; i++) {
        if (!al_path_within(list->items[i], workspace)) {
            char why[600];
            snprintf(why, sizeof(why), "\"%.500s\" is outside %s", list->items[i], workspace);
            return bad_value(e, field, why);
        }
    }
    return 0;
}

/* A deny entry inside the workspace would be a promise the runtime cannot
 * keep: the workspace is empty when the sandbox starts and belongs to the
 * sandbox's user, and mounts can hide only what exists then. Refused rather
 * than silently ignored. */
static int check_outside(const struct al_strlist *list, const char *field, const char *workspace,
                         struct ald_apierr *e)
{
    for (size_t i = 0; i < list->len; i++) {
        if (al_path_within(list->items[i], workspace)) {
            char why[700];
            snprintf(why, sizeof(why),
                     "\"%.500s\" is inside %s: the workspace starts empty and belongs to the"
                     " sandbox's user, so nothing in it can be hidden or made read-only"
                     " (\"~\" is the workspace in a session)",
                     list->items[i], workspace);
            return bad_value(e, field, why);
        }
    }
    return 0;
}

/* The loaded policy, checked again as a whole: whatever the document's
 * shape, nothing wider than the grant reaches the sandbox or the netproxy. */
static int check_policy(const struct al_policy *p, const struct ald_grant *grant,
                        struct ald_apierr *e)
{
    for (size_t i = 0; i < p->net.allowed_addresses.len; i++) {
        const char *a = p->net.allowed_addresses.items[i];
        int err = check_address("settings.allowedAddresses", a, strlen(a), grant, e);
        if (err < 0)
            return err;
    }
    const char *key = NULL;
    if (p->excluded_commands.len)
        key = "excludedCommands";
    else if (p->weaker_nested)
        key = "enableWeakerNestedSandbox";
    else if (p->unix_sockets != AL_UNIX_SOCKETS_NONE)
        key = "allowUnixSockets";
    else if (p->http_proxy_port)
        key = "httpProxyPort";
    else if (p->socks_proxy_port)
        key = "socksProxyPort";
    else if (p->custom_proxy)
        key = "customProxy";
    else if (p->allow_local_binding && !granted_flag(grant, "allowLocalBinding"))
        key = "allowLocalBinding";
    else if (p->net.allow_all_domains && !granted_flag(grant, "allowAllDomains"))
        key = "allowAllDomains";
    else if (!p->net.require_sni_match && !granted_flag(grant, "requireSniMatch"))
        key = "requireSniMatch";
    if (key)
        return forbidden(e, "settings", "%s widens what the session reaches", key);
    return 0;
}

int ald_settings_restrict_check(struct al_policy *policy, json_t *settings, const char *workspace,
                                const struct ald_grant *grant, struct ald_apierr *e)
{
    if (!json_is_object(settings))
        return bad_type(e, "settings", "an object");
    char *text = json_dumps(settings, JSON_COMPACT);
    if (!text)
        return ald_apierr_set(e, 500, "internal", NULL, "out of memory");
    int err = al_settings_load_buffer(policy, "settings", text, strlen(text), workspace, workspace);
    free(text);
    if (err < 0)
        return ald_apierr_set(e, 400, "invalid_value", "settings", "body: %s", al_error_last());
    if (al_policy_check_credentials(policy) < 0)
        return ald_apierr_set(e, 400, "invalid_value", "settings", "body: settings: %s",
                              al_error_last());
    /* masked credentials and CA files in settings name the server's own
     * environment and files: a session's secrets come from airlockd's store */
    if (policy->n_mask_env || policy->n_mask_files)
        return forbidden(e, "settings.credentials",
                         "mode \"mask\" names the server's environment or files; a session's "
                         "secrets come from airlockd's credential store");
    if (policy->tls.ca_cert_path || policy->tls.extra_ca_paths.len)
        return forbidden(e, "settings.network.tlsTerminate",
                         "caCertPath, caKeyPath and extraCaCertPaths name the server's files; a "
                         "session's CA is made for it");
    char path[256] = "settings";
    if ((err = find_widening(settings, path, sizeof(path), grant, e)) < 0)
        return err;
    if ((err = check_policy(policy, grant, e)) < 0)
        return err;
    if ((err = check_inside(&policy->allow_write, "settings.allowWrite", workspace, e)) < 0)
        return err;
    if ((err = check_inside(&policy->allow_read, "settings.allowRead", workspace, e)) < 0)
        return err;
    if ((err = check_outside(&policy->deny_read, "settings.denyRead", workspace, e)) < 0)
        return err;
    return check_outside(&policy->deny_write, "settings.denyWrite", workspace, e);
}

/* Variables airlock sets in a session's commands itself (exec.c, the
 * proxies' environment, git's configuration, the session CA's trust): a
 * credential's "env" may not take one of them. */
static int env_reserved(const char *name)
{
    static const char *const names[] = {
        "PATH",
        "HOME",
        "LANG",
        "TERM",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "JAVA_TOOL_OPTIONS",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "GIT_CONFIG_COUNT",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return strncmp(name, "GIT_CONFIG_", 11) == 0 || strncmp(name, "AIRLOCK_", 8) == 0;
}

/* One injectHosts entry (`field` names it): a domain pattern, lower-cased
 * into `out`, covered by the session's allowed domains (or
 * allowAllDomains) and not by its denied domains nor tlsTerminate's
 * excludeDomains: the proxy must be able to see the requests it goes into. */
static int check_inject_host(char *out, size_t outsz, json_t *v, const char *field,
                             const struct al_netpolicy *net, struct ald_apierr *e)
{
    const char *h = get_string(v, field, 253, e);
    if (!h)
        return AL_EINVAL;
    size_t n = strlen(h);
    if (n >= outsz)
        return bad_value(e, field, "too long");
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)h[i]);
    if (al_settings_check_domain(out) < 0)
        return ald_apierr_set(e, 400, "invalid_value", field, "%s: %s", field, al_error_last());
    char q[300];
    ald_str_quote(q, sizeof(q), out, strlen(out));
    for (size_t i = 0; i < net->denied_domains.len; i++)
        if (strcmp(net->denied_domains.items[i], "*") == 0 ||
            al_settings_domain_covers(net->denied_domains.items[i], out))
            return ald_apierr_set(e, 400, "invalid_value", field,
                                  "%s: \"%s\" is in the session's network.deniedDomains", field, q);
    for (size_t i = 0; i < net->tls_exclude.len; i++)
        if (al_settings_domain_covers(net->tls_exclude.items[i], out))
            return ald_apierr_set(e, 400, "invalid_value", field,
                                  "%s: \"%s\" is in network.tlsTerminate.excludeDomains: its "
                                  "requests are not terminated, so no secret can be put in them",
                                  field, q);
    int covered = net->allow_all_domains;
    for (size_t i = 0; i < net->allowed_domains.len && !covered; i++)
        covered = al_settings_domain_covers(net->allowed_domains.items[i], out);
    if (!covered)
        return ald_apierr_set(e, 400, "invalid_value", field,
                              "%s: \"%s\" is not covered by the session's "
                              "network.allowedDomains (settings): add it there too",
                              field, q);
    return 0;
}

/* "credentials" of a create body (docs/api.md): after "env" and
 * "settings", whose values it is checked against. */
static int check_creds(struct ald_create_req *out, json_t *v, const struct ald_grant *grant,
                       const char *user, struct ald_apierr *e)
{
    static const char *const known[] = {"secret", "env", "injectHosts", NULL};
    if (!json_is_array(v))
        return bad_type(e, "credentials", "an array of objects");
    if (json_array_size(v) > ALD_CREDS_MAX)
        return bad_value(e, "credentials", "at most 16 entries");
    if (!(out->creds = calloc(json_array_size(v) + 1, sizeof(*out->creds))))
        return ald_apierr_set(e, 500, "internal", NULL, "out of memory");
    size_t i;
    json_t *c;
    json_array_foreach(v, i, c)
    {
        char f[160], prefix[48];
        struct ald_cred_req *r = &out->creds[out->n_creds++];
        snprintf(prefix, sizeof(prefix), "credentials[%zu].", i);
        snprintf(f, sizeof(f), "credentials[%zu]", i);
        if (!json_is_object(c))
            return bad_type(e, f, "an object");
        int err = known_fields(c, prefix, known, e);
        if (err < 0)
            return err;
        for (size_t k = 0; known[k]; k++) {
            if (!json_object_get(c, known[k])) {
                snprintf(f, sizeof(f), "%s%s", prefix, known[k]);
                return bad_value(e, f, "required");
            }
        }
        snprintf(f, sizeof(f), "%ssecret", prefix);
        const char *name = get_string(json_object_get(c, "secret"), f, 256, e);
        if (!name)
            return AL_EINVAL;
        char q[300];
        ald_str_quote(q, sizeof(q), name, strlen(name));
        if (!ald_secret_name_valid(name))
            return ald_apierr_set(e, 400, "invalid_value", f,
                                  "%s: \"%s\" is not the name of an HTTP secret "
                                  "([A-Za-z][A-Za-z0-9_-]*)",
                                  f, q);
        if (!ald_grant_allows_credential(grant, name))
            return forbidden(e, f,
                             "the operator granted no HTTP secret \"%s\" to %s (airlockd's "
                             "grants.%s.credentials)",
                             q, user ? user : "this user", user ? user : "USER");
        for (size_t k = 0; k + 1 < out->n_creds; k++)
            if (strcmp(out->creds[k].secret, name) == 0)
                return ald_apierr_set(e, 400, "invalid_value", f,
                                      "%s: secret \"%s\" is listed twice", f, q);
        if (!(r->secret = strdup(name)))
            return ald_apierr_set(e, 500, "internal", NULL, "out of memory");
        snprintf(f, sizeof(f), "%senv", prefix);
        const char *env = get_string(json_object_get(c, "env"), f, 255, e);
        if (!env)
            return AL_EINVAL;
        ald_str_quote(q, sizeof(q), env, strlen(env));
        if (!ald_env_name_valid(env))
            return bad_value(e, f, "name must match [A-Za-z_][A-Za-z0-9_]*");
        if (env_reserved(env))
            return ald_apierr_set(e, 400, "invalid_value", f,
                                  "%s: airlock sets %s in the session itself", f, q);
        if (json_object_get(out->env, env))
            return ald_apierr_set(e, 400, "invalid_value", f,
                                  "%s: %s is also in the create's \"env\"", f, q);
        for (size_t k = 0; k + 1 < out->n_creds; k++)
            if (strcmp(out->creds[k].env, env) == 0)
                return ald_apierr_set(e, 400, "invalid_value", f,
                                      "%s: %s is the env of another credential", f, q);
        if (!(r->env = strdup(env)))
            return ald_apierr_set(e, 500, "internal", NULL, "out of memory");
        snprintf(f, sizeof(f), "%sinjectHosts", prefix);
        json_t *hosts = json_object_get(c, "injectHosts");
        if (!json_is_array(hosts))
            return bad_type(e, f, "an array of domains");
        if (json_array_size(hosts) == 0 || json_array_size(hosts) > ALD_INJECT_HOSTS_MAX)
            return bad_value(e, f, "1 to 32 domains");
        size_t j;
        json_t *h;
        json_array_foreach(hosts, j, h)
        {
            char hf[200], low[256];
            snprintf(hf, sizeof(hf), "%s[%zu]", f, j);
            if ((err = check_inject_host(low, sizeof(low), h, hf, &out->policy.net, e)) < 0)
                return err;
            if (al_strlist_find(&r->inject_hosts, low) >= 0)
                return bad_value(e, hf, "listed twice");
            if (al_strlist_push(&r->inject_hosts, low) < 0)
                return ald_apierr_set(e, 500, "internal", NULL, "out of memory");
        }
    }
    return 0;
}

/* "repo", "base", "branch" of a create body. A branch outside the
 * operator's rules (gitpolicy.h) is a 409: the name is well formed, the
 * server's branches are not the caller's to pick. */
static int check_repo(struct ald_create_req *out, json_t *root, const struct ald_config *cfg,
                      struct ald_apierr *e)
{
    json_t *v;
    char host[128], owner[128], name[128];
    if ((v = json_object_get(root, "repo")) && !json_is_null(v)) {
        const char *u = get_string(v, "repo", 512, e);
        if (!u)
            return AL_EINVAL;
        if (ald_repo_parse(u, host, owner, name, sizeof(host)) < 0)
            return bad_value(e, "repo", "expected https://HOST/OWNER/NAME[.git]");
        if (!(out->repo = strdup(u)))
            return ald_apierr_set(e, 500, "internal", NULL, "out of memory");
    }
    static const char *const refs[] = {"base", "branch"};
    for (int i = 0; i < 2; i++) {
        if (!(v = json_object_get(root, refs[i])) || json_is_null(v))
            continue;
        if (!out->repo)
            return bad_value(e, refs[i], "only with \"repo\"");
        const char *b = get_string(v, refs[i], 256, e);
        if (!b)
            return AL_EINVAL;
        if (!al_refname_branch_valid(b, strlen(b)))
            return bad_value(e, refs[i], "not a valid branch name (git check-ref-format)");
        char why[700];
        if (i == 1 && ald_gitpolicy_check_branch(&cfg->git, b, why, sizeof(why)) < 0)
            return ald_apierr_set(e, 409, "conflict", "branch", "branch %s", why);
        char **dst = i == 0 ? &out->base : &out->branch;
        if (!(*dst = strdup(b)))
            return ald_apierr_set(e, 500, "internal", NULL, "out of memory");
    }
    return 0;
}

int ald_body_create(struct ald_create_req *out, const char *data, size_t len,
                    const struct ald_config *cfg, const char *user, struct ald_apierr *e)
{
    static const char *const known[] = {"settings",    "limits",  "env",  "mode",
                                        "metadata",    "repo",    "base", "branch",
                                        "credentials", "webhook", NULL};
    memset(out, 0, sizeof(*out));
    al_policy_init(&out->policy);
    out->limits = cfg->limits_default;
    json_t *root = NULL;
    int err = parse_object(&root, data, len, 1, e);
    if (err < 0)
        return err;
    if ((err = known_fields(root, "", known, e)) < 0)
        goto out;
    json_t *v;
    if ((v = json_object_get(root, "limits")) && (err = check_limits(v, cfg, &out->limits, e)) < 0)
        goto out;
    if ((v = json_object_get(root, "env")) && (err = check_env(v, "env", e)) < 0)
        goto out;
    out->env = v ? json_incref(v) : json_object();
    if ((v = json_object_get(root, "metadata")) && (err = check_metadata(v, e)) < 0)
        goto out;
    out->metadata = v ? json_incref(v) : json_object();
    if ((v = json_object_get(root, "mode")) && !json_is_null(v)) {
        const char *m = get_string(v, "mode", 32, e);
        if (!m) {
            err = AL_EINVAL;
            goto out;
        }
        if (strcmp(m, "auto-allow") == 0)
            out->mode = AL_MODE_AUTO_ALLOW;
        else if (strcmp(m, "regular") == 0)
            out->mode = AL_MODE_REGULAR;
        else {
            err = bad_value(e, "mode", "expected \"auto-allow\" or \"regular\"");
            goto out;
        }
    }
    if ((v = json_object_get(root, "settings")) && !json_is_null(v) &&
        (err = ald_settings_restrict_check(&out->policy, v, "/workspace",
                                           ald_grants_find(&cfg->grants, user), e)) < 0)
        goto out;
    if ((err = check_repo(out, root, cfg, e)) < 0)
        goto out;
    if (out->env && (v = json_object_get(root, "credentials")) && !json_is_null(v) &&
        (err = check_creds(out, v, ald_grants_find(&cfg->grants, user), user, e)) < 0)
        goto out;
    /* a secret is put back only in a terminated request: the session's
     * tunnels are terminated (with its own CA) whatever its settings say */
    if (out->n_creds)
        out->policy.net.tls_terminate = 1;
    /* its URL is checked (and resolved) by core, ald_webhook_session_prepare */
    if ((v = json_object_get(root, "webhook")) && !json_is_null(v)) {
        if (!json_is_object(v)) {
            err = bad_type(e, "webhook", "an object {\"url\", \"secret\"}");
            goto out;
        }
        out->webhook = json_incref(v);
    }
    if (!out->env || !out->metadata)
        err = ald_apierr_set(e, 500, "internal", NULL, "out of memory");
out:
    json_decref(root);
    if (err < 0)
        ald_create_req_free(out);
    return err;
}

static int set_argv(struct ald_exec_req *out, json_t *argv, struct ald_apierr *e)
{
    size_t n = json_array_size(argv);
    out->argv = calloc(n + 1, sizeof(char *));
    if (!out->argv)
        return ald_apierr_set(e, 500, "internal", NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char field[32];
        snprintf(field, sizeof(field), "argv[%zu]", i);
        const char *s = get_string(json_array_get(argv, i), field, 128 * 1024, e);
        if (!s)
            return AL_EINVAL;
        if (!(out->argv[i] = strdup(s)))
            return ald_apierr_set(e, 500, "internal", NULL, "out of memory");
    }
    out->argv_json = json_incref(argv);
    return 0;
}

/* A terminal's size {"rows": R, "cols": C}, each 1..SBS_TTY_MAX_DIM,
 * nothing else; `field` names it in errors ("tty", "resize"). */
static int tty_size(json_t *v, const char *field, uint32_t *rows, uint32_t *cols,
                    struct ald_apierr *e)
{
    static const char *const known[] = {"rows", "cols", NULL};
    char prefix[32], name[48];
    if (!json_is_object(v))
        return bad_type(e, field, "an object {\"rows\": R, \"cols\": C}");
    snprintf(prefix, sizeof(prefix), "%s.", field);
    int err = known_fields(v, prefix, known, e);
    uint32_t *outs[2] = {rows, cols};
    for (int i = 0; i < 2 && err == 0; i++) {
        uint64_t n = 0;
        snprintf(name, sizeof(name), "%s%s", prefix, known[i]);
        json_t *x = json_object_get(v, known[i]);
        if (!x)
            err = bad_value(e, name, "missing");
        else if ((err = check_u64(x, name, 1, SBS_TTY_MAX_DIM, &n, e)) == 0)
            *outs[i] = (uint32_t)n;
    }
    return err;
}

int ald_body_resize(uint32_t *rows, uint32_t *cols, const char *data, size_t len,
                    struct ald_apierr *e)
{
    json_t *root = NULL;
    int err = parse_object(&root, data, len, 0, e);
    if (err == 0)
        err = tty_size(root, "body", rows, cols, e);
    json_decref(root);
    return err;
}

int ald_body_tty_message(uint32_t *rows, uint32_t *cols, const char *data, size_t len,
                         struct ald_apierr *e)
{
    static const char *const known[] = {"resize", NULL};
    json_t *root = NULL;
    int err = parse_object(&root, data, len, 0, e);
    if (err == 0)
        err = known_fields(root, "", known, e);
    json_t *v = root ? json_object_get(root, "resize") : NULL;
    if (err == 0 && !v)
        err = bad_value(e, "resize", "missing");
    if (err == 0)
        err = tty_size(v, "resize", rows, cols, e);
    json_decref(root);
    return err;
}

int ald_body_exec(struct ald_exec_req *out, const char *data, size_t len, const char *workspace,
                  struct ald_apierr *e)
{
    static const char *const known[] = {"argv",         "shell",     "env",       "cwd",
                                        "stdin",        "stdin_b64", "timeout_s", "background",
                                        "merge_stderr", "notices",   "tty",       NULL};
    memset(out, 0, sizeof(*out));
    json_t *root = NULL;
    int err = parse_object(&root, data, len, 0, e);
    if (err < 0)
        return err;
    if ((err = known_fields(root, "", known, e)) < 0)
        goto out;
    json_t *argv = json_object_get(root, "argv"), *shell = json_object_get(root, "shell");
    if (argv && json_is_null(argv))
        argv = NULL;
    if (shell && json_is_null(shell))
        shell = NULL;
    if (!argv == !shell) {
        err = bad_value(e, argv ? "shell" : "argv", "give exactly one of argv and shell");
        goto out;
    }
    if (argv) {
        if (!json_is_array(argv)) {
            err = bad_type(e, "argv", "an array of strings");
            goto out;
        }
        if (json_array_size(argv) == 0 || json_array_size(argv) > ALD_ARGV_MAX) {
            err = bad_value(e, "argv", "must have 1 to 4096 entries");
            goto out;
        }
        if (json_string_length(json_array_get(argv, 0)) == 0 &&
            json_is_string(json_array_get(argv, 0))) {
            err = bad_value(e, "argv[0]", "must not be empty");
            goto out;
        }
        if ((err = set_argv(out, argv, e)) < 0)
            goto out;
    } else {
        if (!get_string(shell, "shell", 128 * 1024, e)) {
            err = AL_EINVAL;
            goto out;
        }
        json_t *a = json_pack("[s, s, O]", "/bin/sh", "-c", shell);
        err = a ? set_argv(out, a, e) : ald_apierr_set(e, 500, "internal", NULL, "out of memory");
        json_decref(a);
        if (err < 0)
            goto out;
    }
    json_t *v;
    if ((v = json_object_get(root, "env")) && !json_is_null(v) &&
        (err = check_env(v, "env", e)) < 0)
        goto out;
    out->env = v && !json_is_null(v) ? json_incref(v) : json_object();
    v = json_object_get(root, "cwd");
    if (v && !json_is_null(v)) {
        const char *cwd = get_string(v, "cwd", 4000, e);
        if (!cwd) {
            err = AL_EINVAL;
            goto out;
        }
        char buf[8192];
        if (cwd[0] == '/')
            snprintf(buf, sizeof(buf), "%s", cwd);
        else
            snprintf(buf, sizeof(buf), "%s/%s", workspace, cwd);
        out->cwd = strdup(buf);
    } else {
        out->cwd = strdup(workspace);
    }
    json_t *in = json_object_get(root, "stdin"), *in64 = json_object_get(root, "stdin_b64");
    if (in && json_is_null(in))
        in = NULL;
    if (in64 && json_is_null(in64))
        in64 = NULL;
    if (in && in64) {
        err = bad_value(e, "stdin_b64", "give at most one of stdin and stdin_b64");
        goto out;
    }
    if (in) {
        if (!json_is_string(in)) {
            err = bad_type(e, "stdin", "a string");
            goto out;
        }
        out->stdin_len = json_string_length(in);
        out->stdin_data = malloc(out->stdin_len + 1);
        if (out->stdin_data)
            memcpy(out->stdin_data, json_string_value(in), out->stdin_len);
        out->has_stdin = 1;
    } else if (in64) {
        if (!json_is_string(in64)) {
            err = bad_type(e, "stdin_b64", "a base64 string");
            goto out;
        }
        if (al_base64_decode_alloc(&out->stdin_data, &out->stdin_len, json_string_value(in64),
                                   json_string_length(in64)) < 0) {
            err = bad_value(e, "stdin_b64", "not valid base64");
            goto out;
        }
        out->has_stdin = 1;
    }
    uint64_t t = 0;
    if ((v = json_object_get(root, "timeout_s")) && !json_is_null(v) &&
        (err = check_u64(v, "timeout_s", 0, 7 * 86400, &t, e)) < 0)
        goto out;
    out->timeout_s = (uint32_t)t;
    if ((v = json_object_get(root, "background"))) {
        if (!json_is_boolean(v)) {
            err = bad_type(e, "background", "true or false");
            goto out;
        }
        out->background = json_is_true(v);
    }
    if ((v = json_object_get(root, "notices"))) {
        if (!json_is_boolean(v)) {
            err = bad_type(e, "notices", "true or false");
            goto out;
        }
        out->notices = json_is_true(v);
    }
    if ((v = json_object_get(root, "merge_stderr"))) {
        if (!json_is_boolean(v)) {
            err = bad_type(e, "merge_stderr", "true or false");
            goto out;
        }
        out->merge_stderr = json_is_true(v);
    }
    if ((v = json_object_get(root, "tty")) && !json_is_null(v)) {
        if ((err = tty_size(v, "tty", &out->rows, &out->cols, e)) < 0)
            goto out;
        if (out->has_stdin) {
            err = bad_value(e, "tty", "a terminal's input is typed, not given: drop stdin");
            goto out;
        }
        out->tty = 1;
    }
    if (!out->env || !out->cwd || (out->has_stdin && !out->stdin_data))
        err = ald_apierr_set(e, 500, "internal", NULL, "out of memory");
out:
    json_decref(root);
    if (err < 0)
        ald_exec_req_free(out);
    return err;
}

static const struct {
    const char *name;
    int sig;
} signals[] = {
    {"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT},   {"HUP", SIGHUP},   {"QUIT", SIGQUIT},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"STOP", SIGSTOP}, {"CONT", SIGCONT},
};

int ald_signal_parse(const char *name)
{
    if (strncasecmp(name, "SIG", 3) == 0)
        name += 3;
    for (size_t i = 0; i < sizeof(signals) / sizeof(*signals); i++)
        if (strcasecmp(name, signals[i].name) == 0)
            return signals[i].sig;
    uint64_t n;
    if (ald_parse_u64(name, 64, &n) == 0 && n >= 1)
        return (int)n;
    return -1;
}

int ald_body_signal(int *sig, const char *data, size_t len, struct ald_apierr *e)
{
    static const char *const known[] = {"signal", NULL};
    json_t *root = NULL;
    int err = parse_object(&root, data, len, 0, e);
    if (err < 0)
        return err;
    if ((err = known_fields(root, "", known, e)) < 0)
        goto out;
    json_t *v = json_object_get(root, "signal");
    if (!v) {
        err = bad_value(e, "signal", "missing");
    } else if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 1 || n > 64)
            err = bad_value(e, "signal", "must be between 1 and 64");
        else
            *sig = (int)n;
    } else if (json_is_string(v)) {
        const char *s = get_string(v, "signal", 16, e);
        if (!s)
            err = AL_EINVAL;
        else if ((*sig = ald_signal_parse(s)) < 0)
            err = bad_value(e, "signal", "unknown signal");
    } else {
        err = bad_type(e, "signal", "a signal name or number");
    }
out:
    json_decref(root);
    return err;
}

int ald_body_decision(int *allow, const char *data, size_t len, struct ald_apierr *e)
{
    static const char *const known[] = {"decision", NULL};
    json_t *root = NULL;
    int err = parse_object(&root, data, len, 0, e);
    if (err < 0)
        return err;
    if ((err = known_fields(root, "", known, e)) < 0)
        goto out;
    json_t *v = json_object_get(root, "decision");
    if (!v) {
        err = bad_value(e, "decision", "missing");
        goto out;
    }
    const char *s = get_string(v, "decision", 16, e);
    if (!s)
        err = AL_EINVAL;
    else if (strcmp(s, "allow") == 0)
        *allow = 1;
    else if (strcmp(s, "deny") == 0)
        *allow = 0;
    else
        err = bad_value(e, "decision", "expected \"allow\" or \"deny\"");
out:
    json_decref(root);
    return err;
}

int ald_body_policy(json_t **settings, struct al_netpolicy *net, struct al_strlist *warnings,
                    const char *data, size_t len, const struct ald_config *cfg, const char *user,
                    struct ald_apierr *e)
{
    *settings = NULL;
    al_netpolicy_init(net);
    json_t *root = NULL;
    int err = parse_object(&root, data, len, 0, e);
    if (err < 0)
        return err;
    /* only the network part can change in a running sandbox */
    static const char *const top[] = {"network", "sandbox", NULL};
    static const char *const sb[] = {"network", "enabled", NULL};
    if ((err = known_fields(root, "", top, e)) < 0)
        goto out;
    json_t *inner = json_object_get(root, "sandbox");
    if (inner && json_object_get(root, "network")) {
        err = bad_value(e, "network", "give either \"network\" or \"sandbox.network\"");
        goto out;
    }
    if (inner && (!json_is_object(inner) || (err = known_fields(inner, "sandbox.", sb, e)) < 0)) {
        if (err == 0)
            err = bad_type(e, "sandbox", "an object");
        goto out;
    }
    struct al_policy pol;
    al_policy_init(&pol);
    err = ald_settings_restrict_check(&pol, root, "/workspace", ald_grants_find(&cfg->grants, user),
                                      e);
    if (err == 0) {
        /* the loaded network part moves to the caller */
        *net = pol.net;
        al_netpolicy_init(&pol.net);
        *settings = json_incref(root);
    }
    for (size_t i = 0; err == 0 && warnings && i < pol.warnings.len; i++)
        if (al_strlist_push(warnings, pol.warnings.items[i]) < 0) {
            json_decref(*settings);
            *settings = NULL;
            al_netpolicy_free(net);
            err = ald_apierr_set(e, 500, "internal", NULL, "out of memory");
        }
    al_policy_free(&pol);
out:
    json_decref(root);
    return err;
}
