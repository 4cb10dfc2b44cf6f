/* A session's HTTP secrets and its CA (adapters/secrets.h). */
#include "airlockd/adapters/secrets.h"

#include "airlockd/core/daemon.h"
#include "airlockd/core/grants.h"
#include "airlockd/core/requests.h"
#include "airlockd/core/session.h"

#include "airlock/credmask.h"
#include "airlock/creds_store.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/netproxy.h"
#include "airlock/proxy_env.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ald_secrets_store_paths(const struct ald_config *c, char store[PATH_MAX], char key[PATH_MAX])
{
    int n1 = c->px_credential_store ? snprintf(store, PATH_MAX, "%s", c->px_credential_store)
                                    : snprintf(store, PATH_MAX, "%s/creds.store", c->state_dir);
    int n2 = c->px_master_key ? snprintf(key, PATH_MAX, "%s", c->px_master_key)
                              : snprintf(key, PATH_MAX, "%s/master.key", c->state_dir);
    if (n1 < 0 || n1 >= PATH_MAX || n2 < 0 || n2 >= PATH_MAX)
        return al_error_set(AL_ETOOBIG, "credential store path too long");
    return 0;
}

/* Opens the credential store airlockd reads (ald_secrets_store_paths). */
static int store_open(creds_store **out, const struct ald_config *c)
{
    char store[PATH_MAX], key[PATH_MAX];
    int err = ald_secrets_store_paths(c, store, key);
    return err < 0 ? err : creds_store_open(out, store, key);
}

/* The additional data a session CA's key is sealed with: it opens only
 * for the row of that session. */
static void seal_aad(char *out, size_t size, const char *id)
{
    snprintf(out, size, "airlock-session-ca:%s", id);
}

/* s->creds.env: each credential's VAR=sentinel (from `list`) and the CA
 * trust variables, the same as `airlock run` sets (np_trust_vars; and
 * JAVA_TOOL_OPTIONS: the proxy's properties, when sessions have the
 * netproxy, and the truststore). */
static int env_build(const struct ald *d, struct ald_session *s, json_t *list)
{
    json_t *env = json_object();
    size_t i;
    json_t *c;
    char java[1024];
    if (!env)
        return AL_ENOMEM;
    json_array_foreach(list, i, c)
    {
        json_object_set(env, json_string_value(json_object_get(c, "env")),
                        json_object_get(c, "sentinel"));
    }
    int err = np_trust_java_options(java, sizeof(java),
                                    d->px[ALD_PX_NET].enabled ? AL_PROXY_ENV_JAVA : NULL);
    for (size_t k = 0; k < np_trust_n_vars && err == 0; k++)
        if (json_object_set_new(env, np_trust_vars[k].name, json_string(np_trust_vars[k].value)))
            err = AL_ENOMEM;
    if (err == 0 && json_object_set_new(env, "JAVA_TOOL_OPTIONS", json_string(java)))
        err = AL_ENOMEM;
    if (err < 0) {
        json_decref(env);
        return err;
    }
    s->creds.env = env;
    return 0;
}

/* The stored host list of `e`, for messages ("a.example.com, b.example.com"). */
static void hosts_text(char *out, size_t size, const struct creds_entry *e)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < e->hosts.len && n < size; i++) {
        int w = snprintf(out + n, size - n, "%s%s", i ? ", " : "", e->hosts.items[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* Whether one of the secret's stored hosts covers `host`. */
static int stored_covers(const struct creds_entry *e, const char *host)
{
    for (size_t k = 0; k < e->hosts.len; k++)
        if (al_settings_domain_covers(e->hosts.items[k], host))
            return 1;
    return 0;
}

int ald_secrets_prepare(struct ald *d, struct ald_session *s, const struct ald_create_req *req,
                        struct ald_fault *f)
{
    creds_store *store = NULL;
    char *cert = NULL, *key = NULL, *sealed = NULL, aad[96];
    json_t *list = NULL;
    int err = 0;
    if (req->n_creds == 0 && !req->policy.net.tls_terminate)
        return 0;
    if (store_open(&store, d->cfg) < 0) {
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL,
                            "cannot open the credential store: %s", al_error_last());
        goto out;
    }
    if (!(list = json_array())) {
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < req->n_creds; i++) {
        const struct ald_cred_req *r = &req->creds[i];
        const struct creds_entry *e;
        char field[96], hosts[512];
        snprintf(field, sizeof(field), "credentials[%zu].secret", i);
        if (creds_store_http_find(&e, store, r->secret) < 0) {
            err = ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", field,
                                "%s: no HTTP secret \"%s\" in the credential store (an operator "
                                "adds it with `airlock creds add --kind http --name %s --hosts "
                                "...`)",
                                field, r->secret, r->secret);
            goto out;
        }
        for (size_t j = 0; j < r->inject_hosts.len; j++) {
            if (stored_covers(e, r->inject_hosts.items[j]))
                continue;
            hosts_text(hosts, sizeof(hosts), e);
            snprintf(field, sizeof(field), "credentials[%zu].injectHosts[%zu]", i, j);
            err = ald_fault_set(f, ALD_FAULT_FORBIDDEN, "forbidden", field,
                                "%s: \"%s\" is not among the hosts the operator stored for "
                                "secret %s (%s)",
                                field, r->inject_hosts.items[j], r->secret, hosts);
            goto out;
        }
        if (al_credset_add(&s->creds.set, r->secret, e->secret, strlen(e->secret), &r->inject_hosts,
                           NULL) < 0) {
            err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "credential %s: %s",
                                r->secret, al_error_last());
            goto out;
        }
        const struct al_cred *c = &s->creds.set.v[s->creds.set.len - 1];
        json_t *hl = json_array();
        for (size_t j = 0; hl && j < r->inject_hosts.len; j++)
            json_array_append_new(hl, json_string(r->inject_hosts.items[j]));
        if (!hl || json_array_append_new(list, json_pack("{s:s, s:s, s:o, s:s}", "secret",
                                                         r->secret, "env", r->env, "inject_hosts",
                                                         hl, "sentinel", c->sentinel)) < 0) {
            err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
            goto out;
        }
    }
    char cn[64];
    snprintf(cn, sizeof(cn), "airlock session %s", s->id);
    seal_aad(aad, sizeof(aad), s->id);
    if (np_ca_generate(&cert, &key, cn) < 0 ||
        creds_store_seal(&sealed, store, aad, key, strlen(key)) < 0) {
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "session CA: %s",
                            al_error_last());
        goto out;
    }
    if (!(s->creds.rec =
              json_pack("{s:s, s:s, s:O}", "ca_cert", cert, "ca_key", sealed, "list", list)) ||
        env_build(d, s, list) < 0) {
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
        goto out;
    }
    s->creds.ca_cert = cert;
    s->creds.ca_key = key;
    cert = key = NULL;
out:
    if (err < 0)
        ald_session_creds_clear(&s->creds);
    json_decref(list);
    free(cert);
    if (key) {
        explicit_bzero(key, strlen(key));
        free(key);
    }
    free(sealed);
    creds_store_free(store);
    return err;
}

int ald_secrets_load(const struct ald *d, struct ald_session *s, json_t *rec)
{
    creds_store *store = NULL;
    unsigned char *key = NULL;
    size_t key_len = 0;
    char aad[96];
    const char *cert = json_string_value(json_object_get(rec, "ca_cert"));
    const char *sealed = json_string_value(json_object_get(rec, "ca_key"));
    json_t *list = json_object_get(rec, "list");
    int err = 0;
    if (!cert || !sealed || !json_is_array(list))
        return al_error_set(AL_EINVAL, "malformed stored credentials");
    seal_aad(aad, sizeof(aad), s->id);
    if ((err = store_open(&store, d->cfg)) < 0 ||
        (err = creds_store_unseal(&key, &key_len, store, aad, sealed, strlen(sealed))) < 0)
        goto out;
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "secret"));
        const char *sentinel = json_string_value(json_object_get(c, "sentinel"));
        json_t *hosts = json_object_get(c, "inject_hosts");
        const struct creds_entry *e;
        struct al_strlist kept = AL_STRLIST_INIT;
        if (!name || !sentinel || !json_is_array(hosts) ||
            !json_is_string(json_object_get(c, "env"))) {
            err = al_error_set(AL_EINVAL, "malformed stored credential %zu", i);
            goto out;
        }
        if (creds_store_http_find(&e, store, name) < 0) {
            al_log(AL_LOG_WARN,
                   "session %s: HTTP secret %s is no longer in the credential store: its "
                   "sentinel is never replaced from now on",
                   s->id, name);
            continue;
        }
        size_t j;
        json_t *h;
        json_array_foreach(hosts, j, h)
        {
            const char *host = json_string_value(h);
            if (host && stored_covers(e, host))
                err = al_strlist_push(&kept, host);
            else if (host)
                al_log(AL_LOG_WARN,
                       "session %s: secret %s is no longer stored for %s: not put back there",
                       s->id, name, host);
            if (err < 0)
                break;
        }
        if (err == 0 && kept.len)
            err =
                al_credset_add(&s->creds.set, name, e->secret, strlen(e->secret), &kept, sentinel);
        al_strlist_free(&kept);
        if (err < 0)
            goto out;
    }
    if ((err = env_build(d, s, list)) < 0)
        goto out;
    if (!(s->creds.ca_cert = strdup(cert))) {
        err = AL_ENOMEM;
        goto out;
    }
    s->creds.ca_key = (char *)key;
    key = NULL;
    s->creds.rec = json_incref(rec);
out:
    if (err < 0)
        ald_session_creds_clear(&s->creds);
    if (key) {
        explicit_bzero(key, key_len);
        free(key);
    }
    creds_store_free(store);
    return err;
}

int ald_secrets_trust_files(const struct ald *d, const struct ald_session *s, const char *dir,
                            struct al_strlist *src, struct al_strlist *dst)
{
    struct np_trust_files files;
    int err = np_trust_files_write(&files, dir, d->cfg->rootfs, s->creds.ca_cert, NULL);
    for (size_t i = 0; err == 0 && i < files.src.len; i++)
        if (al_strlist_push(src, files.src.items[i]) < 0 ||
            al_strlist_push(dst, files.dst.items[i]) < 0)
            err = al_error_set(AL_ENOMEM, "out of memory");
    np_trust_files_free(&files);
    return err;
}
