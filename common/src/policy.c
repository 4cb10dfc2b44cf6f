/* The effective policy: defaults, release, and the JSON form printed by
 * `airlock run --print-policy` (documented in docs/settings.md). */
#include "airlock/settings.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void al_policy_init(struct al_policy *policy)
{
    memset(policy, 0, sizeof(*policy));
    policy->mandatory_deny_depth = 3;
    al_netpolicy_init(&policy->net);
    snprintf(policy->net_key_path, sizeof(policy->net_key_path), "sandbox.network");
    snprintf(policy->key_prefix, sizeof(policy->key_prefix), "sandbox.");
    policy->unix_sockets = AL_UNIX_SOCKETS_NONE;
    policy->allow_unsandboxed = 1;
    policy->mode = AL_MODE_AUTO_ALLOW;
}

/* Frees `n` masked-credential entries and the array. */
static void masked_free(struct al_masked *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].extract);
        al_strlist_free(&v[i].inject_hosts);
    }
    free(v);
}

void al_policy_free(struct al_policy *policy)
{
    masked_free(policy->mask_env, policy->n_mask_env);
    policy->mask_env = NULL;
    policy->n_mask_env = 0;
    masked_free(policy->mask_files, policy->n_mask_files);
    policy->mask_files = NULL;
    policy->n_mask_files = 0;
    free(policy->tls.ca_cert_path);
    free(policy->tls.ca_key_path);
    al_strlist_free(&policy->tls.extra_ca_paths);
    memset(&policy->tls, 0, sizeof(policy->tls));
    al_strlist_free(&policy->allow_write);
    al_strlist_free(&policy->deny_read);
    al_strlist_free(&policy->allow_read);
    al_strlist_free(&policy->deny_write);
    al_netpolicy_free(&policy->net);
    al_strlist_free(&policy->unix_socket_paths);
    al_strlist_free(&policy->excluded_commands);
    al_strlist_free(&policy->deny_env);
    al_strlist_free(&policy->warnings);
    free(policy->custom_proxy);
    policy->custom_proxy = NULL;
    free(policy->net_file);
    policy->net_file = NULL;
}

/* Sets `key` of `obj` to `value`, taking the reference; counts failures in
 * `*bad` so a caller checks once at the end. */
static void put(json_t *obj, const char *key, json_t *value, int *bad)
{
    if (!value || json_object_set_new(obj, key, value) < 0)
        (*bad)++;
}

/* A JSON string for `s`; a string that is not valid UTF-8 (a path under a
 * home directory with Latin-1 bytes, say) is shown with '?' for every
 * non-ASCII byte rather than failing the whole output. */
static json_t *string_json(const char *s)
{
    json_t *str = json_string(s);
    if (str)
        return str;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *c = copy; *c; c++)
        if ((unsigned char)*c >= 0x80)
            *c = '?';
    str = json_string(copy);
    free(copy);
    return str;
}

static json_t *strlist_json(const struct al_strlist *list)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (size_t i = 0; i < list->len; i++) {
        if (json_array_append_new(arr, string_json(list->items[i])) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *port_json(int port)
{
    return port ? json_integer(port) : json_null();
}

/* network.tlsTerminate as the loader reads it back. */
static json_t *tls_json(const struct al_policy *p)
{
    int bad = 0;
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (p->tls.ca_cert_path) {
        put(o, "caCertPath", string_json(p->tls.ca_cert_path), &bad);
        put(o, "caKeyPath", string_json(p->tls.ca_key_path), &bad);
    }
    put(o, "excludeDomains", strlist_json(&p->net.tls_exclude), &bad);
    put(o, "extraCaCertPaths", strlist_json(&p->tls.extra_ca_paths), &bad);
    if (p->tls.max_tunnels)
        put(o, "maxTunnels", json_integer(p->tls.max_tunnels), &bad);
    if (p->tls.handshake_timeout_ms)
        put(o, "handshakeTimeoutMs", json_integer(p->tls.handshake_timeout_ms), &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* network.requestRules: "methods" and "paths" only when not empty (empty
 * means any, and the loader wants the key left out for that). */
static json_t *reqrules_json(const struct al_netpolicy *np)
{
    int bad = 0;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < np->n_request_rules; i++) {
        const struct al_reqrule *r = &np->request_rules[i];
        json_t *o = json_object();
        if (!o || json_array_append_new(arr, o) < 0) {
            bad++;
            break;
        }
        put(o, "host", string_json(r->host), &bad);
        if (r->methods.len)
            put(o, "methods", strlist_json(&r->methods), &bad);
        if (r->paths.len)
            put(o, "paths", strlist_json(&r->paths), &bad);
        if (r->has_query_keys)
            put(o, "queryKeys", strlist_json(&r->query_keys), &bad);
    }
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* The masked credentials as credentials.envVars / .files entries ("path"
 * for files, "name" for variables). */
static json_t *masked_json(const struct al_masked *v, size_t n, const char *name_key)
{
    int bad = 0;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = json_object();
        if (!o || json_array_append_new(arr, o) < 0) {
            bad++;
            break;
        }
        put(o, name_key, string_json(v[i].name), &bad);
        put(o, "mode", json_string("mask"), &bad);
        put(o, "injectHosts", strlist_json(&v[i].inject_hosts), &bad);
        if (v[i].extract)
            put(o, "extract", string_json(v[i].extract), &bad);
    }
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

char *al_policy_to_json(const struct al_policy *p)
{
    int bad = 0;
    char *out = NULL;
    json_t *root = json_object();
    json_t *sandbox = json_object();
    json_t *fs = json_object();
    json_t *net = json_object();

    if (!root || !sandbox || !fs || !net) {
        json_decref(fs);
        json_decref(net);
        json_decref(sandbox);
        goto out;
    }
    put(root, "sandbox", sandbox, &bad);

    put(fs, "allowedPaths", strlist_json(&p->allow_write), &bad);
    put(fs, "deniedPaths", strlist_json(&p->deny_read), &bad);
    put(fs, "allowRead", strlist_json(&p->allow_read), &bad);
    put(fs, "denyWrite", strlist_json(&p->deny_write), &bad);
    put(fs, "allowGitConfig", json_boolean(p->allow_git_config), &bad);
    put(fs, "mandatoryDenySearchDepth", json_integer(p->mandatory_deny_depth), &bad);
    put(sandbox, "filesystem", fs, &bad);

    put(net, "allowedDomains", strlist_json(&p->net.allowed_domains), &bad);
    put(net, "deniedDomains", strlist_json(&p->net.denied_domains), &bad);
    put(net, "allowAllDomains", json_boolean(p->net.allow_all_domains), &bad);
    put(net, "strictAllowlist", json_boolean(p->net.strict_allowlist), &bad);
    put(net, "allowedAddresses", strlist_json(&p->net.allowed_addresses), &bad);
    put(net, "httpProxyPort", port_json(p->http_proxy_port), &bad);
    put(net, "socksProxyPort", port_json(p->socks_proxy_port), &bad);
    put(net, "customProxy", p->custom_proxy ? string_json(p->custom_proxy) : json_null(), &bad);
    put(net, "allowLocalBinding", json_boolean(p->allow_local_binding), &bad);
    put(net, "requireSniMatch", json_boolean(p->net.require_sni_match), &bad);
    if (p->net.tls_terminate)
        put(net, "tlsTerminate", tls_json(p), &bad);
    put(net, "requestRules", reqrules_json(&p->net), &bad);
    put(net, "reportOnly", json_boolean(p->net.report_only), &bad);
    put(sandbox, "network", net, &bad);

    switch (p->unix_sockets) {
    case AL_UNIX_SOCKETS_ALL:
        put(sandbox, "allowUnixSockets", json_true(), &bad);
        break;
    case AL_UNIX_SOCKETS_LIST:
        put(sandbox, "allowUnixSockets", strlist_json(&p->unix_socket_paths), &bad);
        break;
    default:
        put(sandbox, "allowUnixSockets", json_false(), &bad);
        break;
    }
    put(sandbox, "enableWeakerNestedSandbox", json_boolean(p->weaker_nested), &bad);
    put(sandbox, "excludedCommands", strlist_json(&p->excluded_commands), &bad);
    put(sandbox, "allowUnsandboxedCommands", json_boolean(p->allow_unsandboxed), &bad);
    put(sandbox, "mode", json_string(p->mode == AL_MODE_REGULAR ? "regular" : "auto-allow"), &bad);
    put(sandbox, "deniedEnv", strlist_json(&p->deny_env), &bad);
    json_t *creds = json_object();
    if (creds) {
        put(creds, "envVars", masked_json(p->mask_env, p->n_mask_env, "name"), &bad);
        put(creds, "files", masked_json(p->mask_files, p->n_mask_files, "path"), &bad);
        put(creds, "allowPlaintextInject", json_boolean(p->net.allow_plaintext_inject), &bad);
    }
    put(sandbox, "credentials", creds, &bad);

    if (!bad)
        out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
out:
    json_decref(root);
    return out;
}
