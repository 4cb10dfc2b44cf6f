/* The typed network policy and its wire form (airlock/netpolicy.h). */
#include "airlock/netpolicy.h"

#include "airlock/error.h"
#include "airlock/settings.h"
#include "settings_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void al_netpolicy_init(struct al_netpolicy *np)
{
    memset(np, 0, sizeof(*np));
    np->require_sni_match = 1;
}

void al_reqrule_free(struct al_reqrule *r)
{
    free(r->host);
    r->host = NULL;
    al_strlist_free(&r->methods);
    al_strlist_free(&r->paths);
    al_strlist_free(&r->query_keys);
}

void al_netpolicy_free(struct al_netpolicy *np)
{
    al_strlist_free(&np->allowed_domains);
    al_strlist_free(&np->denied_domains);
    al_strlist_free(&np->allowed_addresses);
    al_strlist_free(&np->tls_exclude);
    for (size_t i = 0; i < np->n_request_rules; i++)
        al_reqrule_free(&np->request_rules[i]);
    free(np->request_rules);
    np->request_rules = NULL;
    np->n_request_rules = 0;
}

static int list_copy(struct al_strlist *dst, const struct al_strlist *src)
{
    for (size_t i = 0; i < src->len; i++)
        if (al_strlist_push(dst, src->items[i]) < 0)
            return AL_ENOMEM;
    return 0;
}

/* Deep copy of one request rule into `dst` (zeroed by the caller). */
static int reqrule_copy(struct al_reqrule *dst, const struct al_reqrule *src)
{
    dst->has_query_keys = src->has_query_keys;
    if (!(dst->host = strdup(src->host)) || list_copy(&dst->methods, &src->methods) < 0 ||
        list_copy(&dst->paths, &src->paths) < 0 ||
        list_copy(&dst->query_keys, &src->query_keys) < 0)
        return AL_ENOMEM;
    return 0;
}

int al_netpolicy_copy(struct al_netpolicy *dst, const struct al_netpolicy *src)
{
    al_netpolicy_init(dst);
    dst->allow_all_domains = src->allow_all_domains;
    dst->require_sni_match = src->require_sni_match;
    dst->strict_allowlist = src->strict_allowlist;
    dst->report_only = src->report_only;
    dst->tls_terminate = src->tls_terminate;
    dst->allow_plaintext_inject = src->allow_plaintext_inject;
    int err = 0;
    if (list_copy(&dst->allowed_domains, &src->allowed_domains) < 0 ||
        list_copy(&dst->denied_domains, &src->denied_domains) < 0 ||
        list_copy(&dst->allowed_addresses, &src->allowed_addresses) < 0 ||
        list_copy(&dst->tls_exclude, &src->tls_exclude) < 0)
        err = AL_ENOMEM;
    if (!err && src->n_request_rules) {
        dst->request_rules = calloc(src->n_request_rules, sizeof(*dst->request_rules));
        if (!dst->request_rules)
            err = AL_ENOMEM;
        for (size_t i = 0; !err && i < src->n_request_rules; i++) {
            dst->n_request_rules = i + 1; /* freed with the rest on error */
            err = reqrule_copy(&dst->request_rules[i], &src->request_rules[i]);
        }
    }
    if (err) {
        al_netpolicy_free(dst);
        return al_error_set(AL_ENOMEM, "out of memory");
    }
    return 0;
}

/* A JSON array of `list`'s strings; NULL on ENOMEM or a non-UTF-8 string. */
static json_t *list_json(const struct al_strlist *list)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < list->len; i++) {
        if (json_array_append_new(arr, json_string(list->items[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

/* One request rule's wire form; optional lists only when they say
 * something ("methods", "paths": not empty; "query_keys": has_query_keys). */
static json_t *reqrule_json(const struct al_reqrule *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (json_object_set_new(o, "host", json_string(r->host)) < 0 ||
        (r->methods.len && json_object_set_new(o, "methods", list_json(&r->methods)) < 0) ||
        (r->paths.len && json_object_set_new(o, "paths", list_json(&r->paths)) < 0) ||
        (r->has_query_keys &&
         json_object_set_new(o, "query_keys", list_json(&r->query_keys)) < 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The issue-15 keys of `np` into `obj`, each only when set, so a netproxy
 * of the previous version refuses a policy it cannot enforce. -1 on
 * failure. */
static int issue15_json(json_t *obj, const struct al_netpolicy *np)
{
    if ((np->report_only && json_object_set_new(obj, "report_only", json_true()) < 0) ||
        (np->tls_terminate && json_object_set_new(obj, "tls_terminate", json_true()) < 0) ||
        (np->tls_exclude.len &&
         json_object_set_new(obj, "tls_exclude_domains", list_json(&np->tls_exclude)) < 0) ||
        (np->allow_plaintext_inject &&
         json_object_set_new(obj, "allow_plaintext_inject", json_true()) < 0))
        return -1;
    if (!np->n_request_rules)
        return 0;
    json_t *arr = json_array();
    if (json_object_set_new(obj, "request_rules", arr) < 0)
        return -1;
    for (size_t i = 0; i < np->n_request_rules; i++)
        if (json_array_append_new(arr, reqrule_json(&np->request_rules[i])) < 0)
            return -1;
    return 0;
}

json_t *al_netpolicy_to_json(const struct al_netpolicy *np)
{
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    if (json_object_set_new(obj, "allowed_domains", list_json(&np->allowed_domains)) < 0 ||
        json_object_set_new(obj, "denied_domains", list_json(&np->denied_domains)) < 0 ||
        json_object_set_new(obj, "allowed_addresses", list_json(&np->allowed_addresses)) < 0 ||
        json_object_set_new(obj, "allow_all_domains", json_boolean(np->allow_all_domains)) < 0 ||
        json_object_set_new(obj, "require_sni_match", json_boolean(np->require_sni_match)) < 0 ||
        /* only when set: a netproxy of the previous version refuses the key */
        (np->strict_allowlist && json_object_set_new(obj, "strict_allowlist", json_true()) < 0) ||
        issue15_json(obj, np) < 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

enum entry_kind { ENTRY_DOMAIN, ENTRY_DENIED_DOMAIN, ENTRY_ADDRESS };

/* Checks one decoded entry with the settings loader's own rules. */
static int entry_check(enum entry_kind kind, const char *s, size_t len)
{
    if (strlen(s) != len)
        return al_error_set(AL_EINVAL, "contains a NUL byte");
    if (kind == ENTRY_ADDRESS)
        return al_settings_check_address(s);
    for (const char *c = s; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            return al_error_set(AL_EINVAL, "upper-case letter in a domain pattern");
    return kind == ENTRY_DOMAIN ? al_settings_check_domain(s) : al_settings_check_denied_domain(s);
}

/* obj[key], an array of strings of `kind`, appended to `out`. */
static int list_get(struct al_strlist *out, const json_t *obj, const char *key,
                    enum entry_kind kind)
{
    json_t *arr = json_object_get(obj, key);
    if (!json_is_array(arr))
        return al_error_set(AL_EINVAL, "%s: expected an array of strings", key);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v))
            return al_error_set(AL_EINVAL, "%s[%zu]: expected a string", key, i);
        if (entry_check(kind, json_string_value(v), json_string_length(v)) < 0) {
            char why[256];
            snprintf(why, sizeof(why), "%s", al_error_last());
            return al_error_set(AL_EINVAL, "%s[%zu]: %s", key, i, why);
        }
        if (al_strlist_push(out, json_string_value(v)) < 0)
            return al_error_set(AL_ENOMEM, "out of memory");
    }
    return 0;
}

static int flag_get(int *out, const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_boolean(v))
        return al_error_set(AL_EINVAL, "%s: expected true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* Optional obj[key] (absent: *out stays 0). */
static int flag_opt(int *out, const json_t *obj, const char *key)
{
    return json_object_get(obj, key) ? flag_get(out, obj, key) : 0;
}

/* `arr`, the list `what` (e.g. "request_rules[0].methods") of strings each
 * passing `check`, appended to `out`; an empty list is refused (the writer
 * leaves the key out instead). */
static int rule_list_get(struct al_strlist *out, const json_t *arr, const char *what,
                         int (*check)(const char *, size_t), int nonempty)
{
    size_t i;
    json_t *v;
    if (!json_is_array(arr))
        return al_error_set(AL_EINVAL, "%s: expected an array of strings", what);
    if (nonempty && json_array_size(arr) == 0)
        return al_error_set(AL_EINVAL, "%s: empty (absent means any)", what);
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v))
            return al_error_set(AL_EINVAL, "%s[%zu]: expected a string", what, i);
        if (check(json_string_value(v), json_string_length(v)) < 0) {
            char why[256];
            snprintf(why, sizeof(why), "%s", al_error_last());
            return al_error_set(AL_EINVAL, "%s[%zu]: %s", what, i, why);
        }
        if (al_strlist_push(out, json_string_value(v)) < 0)
            return al_error_set(AL_ENOMEM, "out of memory");
    }
    return 0;
}

/* request_rules[i]: {"host", "methods"?, "paths"?, "query_keys"?} into `r`
 * (zeroed by the caller, freed by it on error). */
static int reqrule_get(struct al_reqrule *r, const json_t *o, size_t i)
{
    static const char *const keys[] = {"host", "methods", "paths", "query_keys"};
    char what[64], q[96];
    const char *key;
    json_t *v;
    int err;
    if (!json_is_object(o))
        return al_error_set(AL_EINVAL, "request_rules[%zu]: expected an object", i);
    json_object_foreach((json_t *)o, key, v)
    {
        size_t k = 0;
        while (k < sizeof(keys) / sizeof(*keys) && strcmp(key, keys[k]) != 0)
            k++;
        if (k == sizeof(keys) / sizeof(*keys))
            return al_error_set(AL_EINVAL, "request_rules[%zu]: unknown key %s", i,
                                al_settings_quote(q, sizeof(q), key));
    }
    v = json_object_get(o, "host");
    if (!json_is_string(v))
        return al_error_set(AL_EINVAL, "request_rules[%zu].host: expected a string", i);
    if (entry_check(ENTRY_DOMAIN, json_string_value(v), json_string_length(v)) < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", al_error_last());
        return al_error_set(AL_EINVAL, "request_rules[%zu].host: %s", i, why);
    }
    if (!(r->host = strdup(json_string_value(v))))
        return al_error_set(AL_ENOMEM, "out of memory");
    if ((v = json_object_get(o, "methods"))) {
        snprintf(what, sizeof(what), "request_rules[%zu].methods", i);
        if ((err = rule_list_get(&r->methods, v, what, al_reqrule_check_method, 1)) < 0)
            return err;
    }
    if ((v = json_object_get(o, "paths"))) {
        snprintf(what, sizeof(what), "request_rules[%zu].paths", i);
        if ((err = rule_list_get(&r->paths, v, what, al_reqrule_check_path, 1)) < 0)
            return err;
    }
    if ((v = json_object_get(o, "query_keys"))) {
        snprintf(what, sizeof(what), "request_rules[%zu].query_keys", i);
        r->has_query_keys = 1;
        if ((err = rule_list_get(&r->query_keys, v, what, al_reqrule_check_query_key, 0)) < 0)
            return err;
    }
    return 0;
}

/* The issue-15 keys of `obj` (each optional) into `np`. */
static int issue15_get(struct al_netpolicy *np, const json_t *obj)
{
    int err = flag_opt(&np->report_only, obj, "report_only");
    if (err == 0)
        err = flag_opt(&np->tls_terminate, obj, "tls_terminate");
    if (err == 0)
        err = flag_opt(&np->allow_plaintext_inject, obj, "allow_plaintext_inject");
    if (err == 0 && json_object_get(obj, "tls_exclude_domains")) {
        if (!np->tls_terminate)
            return al_error_set(AL_EINVAL,
                                "tls_exclude_domains: given without \"tls_terminate\": true");
        err = list_get(&np->tls_exclude, obj, "tls_exclude_domains", ENTRY_DOMAIN);
    }
    json_t *rules = json_object_get(obj, "request_rules");
    if (err < 0 || !rules)
        return err;
    if (!json_is_array(rules))
        return al_error_set(AL_EINVAL, "request_rules: expected an array of objects");
    size_t n = json_array_size(rules);
    if (n == 0)
        return 0;
    if (!(np->request_rules = calloc(n, sizeof(*np->request_rules))))
        return al_error_set(AL_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && err == 0; i++) {
        np->n_request_rules = i + 1; /* freed with the rest on error */
        err = reqrule_get(&np->request_rules[i], json_array_get(rules, i), i);
    }
    return err;
}

int al_netpolicy_from_json(struct al_netpolicy *np, const json_t *obj)
{
    static const char *const keys[] = {
        "allowed_domains",     "denied_domains",         "allowed_addresses", "allow_all_domains",
        "require_sni_match",   "strict_allowlist",       "report_only",       "tls_terminate",
        "tls_exclude_domains", "allow_plaintext_inject", "request_rules"};
    al_netpolicy_init(np);
    if (!json_is_object(obj))
        return al_error_set(AL_EINVAL, "expected a network policy object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t k = 0;
        while (k < sizeof(keys) / sizeof(*keys) && strcmp(key, keys[k]) != 0)
            k++;
        if (k == sizeof(keys) / sizeof(*keys)) {
            char q[96];
            return al_error_set(AL_EINVAL, "unknown key %s", al_settings_quote(q, sizeof(q), key));
        }
    }
    int err = list_get(&np->allowed_domains, obj, "allowed_domains", ENTRY_DOMAIN);
    if (err == 0)
        err = list_get(&np->denied_domains, obj, "denied_domains", ENTRY_DENIED_DOMAIN);
    if (err == 0)
        err = list_get(&np->allowed_addresses, obj, "allowed_addresses", ENTRY_ADDRESS);
    if (err == 0)
        err = flag_get(&np->allow_all_domains, obj, "allow_all_domains");
    if (err == 0)
        err = flag_get(&np->require_sni_match, obj, "require_sni_match");
    /* optional: a policy stored or sent by the previous version lacks it */
    if (err == 0 && json_object_get(obj, "strict_allowlist"))
        err = flag_get(&np->strict_allowlist, obj, "strict_allowlist");
    if (err == 0)
        err = issue15_get(np, obj);
    if (err < 0)
        al_netpolicy_free(np);
    return err;
}
