/* Decoders of session_add's "tls" and "credentials" (ctl_creds.h). */
#include "ctl_creds.h"

#include "airlock/error.h"
#include "airlock/settings.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string of 1..max bytes without NUL; printable ASCII when `ascii`. */
static const char *str_get(const json_t *v, size_t max, int ascii)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > max || strlen(s) != n)
        return NULL;
    for (size_t i = 0; ascii && i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return NULL;
    return s;
}

/* Whether `obj` holds exactly the keys of `known` (NULL-terminated). */
static int keys_exactly(const json_t *obj, const char *const *known)
{
    size_t n = 0;
    while (known[n])
        if (!json_object_get(obj, known[n++]))
            return 0;
    return json_object_size(obj) == n;
}

int np_ctl_tls_decode(const char **cert, const char **key, const json_t *tls)
{
    static const char *const known[] = {"ca_cert", "ca_key", NULL};
    *cert = *key = NULL;
    if (!tls)
        return 0;
    if (!json_is_object(tls) || !keys_exactly(tls, known))
        return al_error_set(AL_EINVAL, "tls: expected {\"ca_cert\", \"ca_key\"}");
    if (!(*cert = str_get(json_object_get(tls, "ca_cert"), NP_CTL_PEM_MAX, 0)) ||
        !(*key = str_get(json_object_get(tls, "ca_key"), NP_CTL_PEM_MAX, 0))) {
        int which = *cert == NULL;
        *cert = *key = NULL;
        return al_error_set(AL_EINVAL, "tls.%s: expected a PEM string of at most %d bytes",
                            which ? "ca_cert" : "ca_key", NP_CTL_PEM_MAX);
    }
    return 0;
}

/* The credentials of session_add; `front`: without "value" (each
 * credential's real value is then its own sentinel). */
static int creds_decode(struct al_credset *out, const json_t *creds, bool front)
{
    static const char *const known_all[] = {"name", "value", "sentinel", "inject_hosts", NULL};
    static const char *const known_front[] = {"name", "sentinel", "inject_hosts", NULL};
    const char *const *known = front ? known_front : known_all;
    size_t i;
    json_t *c;
    if (!creds)
        return 0;
    if (!json_is_array(creds) || json_array_size(creds) > AL_CRED_MAX)
        return al_error_set(AL_EINVAL, "credentials: expected an array of at most %d objects",
                            AL_CRED_MAX);
    json_array_foreach(creds, i, c)
    {
        struct al_strlist hosts = AL_STRLIST_INIT;
        if (!json_is_object(c) || !keys_exactly(c, known))
            return al_error_set(AL_EINVAL,
                                "credentials[%zu]: expected {\"name\", %s\"sentinel\", "
                                "\"inject_hosts\"}",
                                i, front ? "" : "\"value\", ");
        const char *name = str_get(json_object_get(c, "name"), NP_CTL_NAME_MAX, 1);
        const json_t *jv = json_object_get(c, "value");
        /* front: a placeholder that no sentinel equals (not URL-safe),
         * replaced by the sentinel below */
        const char *value = front ? " " : str_get(jv, AL_CRED_VALUE_MAX, 0);
        size_t value_len = front ? 1 : json_string_length(jv);
        const char *sentinel = str_get(json_object_get(c, "sentinel"), 2 * AL_CRED_VALUE_MAX, 1);
        const json_t *jh = json_object_get(c, "inject_hosts");
        const char *bad = !name ? "name" : !value ? "value" : !sentinel ? "sentinel" : NULL;
        if (bad)
            return al_error_set(AL_EINVAL, "credentials[%zu].%s: malformed", i, bad);
        if (!json_is_array(jh) || json_array_size(jh) == 0 ||
            json_array_size(jh) > NP_CTL_INJECT_MAX)
            return al_error_set(AL_EINVAL,
                                "credentials[%zu].inject_hosts: expected 1 to %d domains", i,
                                NP_CTL_INJECT_MAX);
        size_t k;
        json_t *h;
        int err = 0;
        json_array_foreach(jh, k, h)
        {
            const char *host = str_get(h, 253, 1);
            if (!host || al_settings_check_domain(host) < 0) {
                err = al_error_set(AL_EINVAL, "credentials[%zu].inject_hosts[%zu]: not a domain", i,
                                   k);
                break;
            }
            if ((err = al_strlist_push(&hosts, host)) < 0)
                break;
        }
        if (err == 0 && (err = al_credset_add(out, name, value, value_len, &hosts, sentinel)) < 0 &&
            err != AL_ENOMEM)
            err = al_error_set(AL_EINVAL, "credentials[%zu] (%s): refused (a duplicate name?)", i,
                               name);
        if (err == 0 && front) {
            struct al_cred *cr = &out->v[out->len - 1];
            char *s = strdup(cr->sentinel);
            if (!s) {
                err = AL_ENOMEM;
            } else {
                free(cr->real);
                cr->real = s;
                cr->real_len = cr->sentinel_len;
            }
        }
        al_strlist_free(&hosts);
        if (err < 0)
            return err;
    }
    return 0;
}

int np_ctl_creds_decode(struct al_credset *out, const json_t *creds)
{
    return creds_decode(out, creds, false);
}

int np_ctl_creds_decode_front(struct al_credset *out, const json_t *creds)
{
    return creds_decode(out, creds, true);
}

void np_ctl_creds_strip(json_t *creds)
{
    size_t i;
    json_t *c;
    json_array_foreach(creds, i, c)
    {
        json_t *v = json_object_get(c, "value");
        if (json_is_string(v))
            explicit_bzero((char *)json_string_value(v), json_string_length(v));
        json_object_del(c, "value");
    }
}

void np_ctl_msg_wipe(json_t *msg)
{
    json_t *k = json_object_get(json_object_get(msg, "tls"), "ca_key");
    if (json_is_string(k))
        explicit_bzero((char *)json_string_value(k), json_string_length(k));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(msg, "credentials"), i, c)
    {
        json_t *v = json_object_get(c, "value");
        if (json_is_string(v))
            explicit_bzero((char *)json_string_value(v), json_string_length(v));
    }
}
