/* Per-session state of TLS termination: the session CA (np_proxy_set_tls),
 * the masked credentials (np_proxy_set_credentials) and the policy
 * snapshot the terminated path reads. */
#include "internal.h"
#include "tls_ca.h"

#include "airlock/error.h"

#include <stdlib.h>
#include <string.h>

int np_proxy_set_tls(np_proxy *proxy, const char *session_id, const char *ca_cert_pem,
                     const char *ca_key_pem, const char *extra_trust_pem)
{
    struct np_tls *t = NULL, *old;
    int err;

    if ((err = np_tls_new(&t, ca_cert_pem, ca_key_pem, extra_trust_pem)) < 0)
        return err;
    pthread_mutex_lock(&proxy->lock);
    struct np_session *s = np_session_get(proxy, session_id, true);
    if (!s) {
        pthread_mutex_unlock(&proxy->lock);
        np_tls_unref(t);
        return AL_ENOMEM;
    }
    old = s->tls;
    s->tls = t;
    pthread_mutex_unlock(&proxy->lock);
    np_tls_unref(old);
    return 0;
}

void np_creds_unref(struct np_creds *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->inject)
        for (size_t i = 0; i < c->set.len; i++)
            np_rules_free(&c->inject[i]);
    free(c->inject);
    al_credset_free(&c->set);
    free(c);
}

int np_proxy_set_keyholder(np_proxy *proxy, int conns_fd)
{
    if (conns_fd < 0)
        return al_error_set(AL_EINVAL, "np_proxy_set_keyholder: no connections socket");
    int err = 0;
    pthread_mutex_lock(&proxy->lock);
    for (struct np_session *s = proxy->sessions; s; s = s->next)
        if (s->creds && s->creds->set.len)
            err = al_error_set(AL_EINVAL, "np_proxy_set_keyholder: after credentials were set");
    if (err == 0)
        proxy->kh_fd = conns_fd;
    pthread_mutex_unlock(&proxy->lock);
    return err;
}

/* Copies `src` into `dst` keeping no value: each credential's "real" is
 * its sentinel (so substituting and re-masking leave bytes as they are).
 * 0 or AL_ENOMEM (dst empty). */
static int credset_sentinel_only(struct al_credset *dst, const struct al_credset *src)
{
    int err = al_credset_copy(dst, src);
    for (size_t i = 0; err == 0 && i < dst->len; i++) {
        struct al_cred *c = &dst->v[i];
        char *s = strdup(c->sentinel);
        if (!s) {
            err = AL_ENOMEM;
            break;
        }
        explicit_bzero(c->real, c->real_len);
        free(c->real);
        c->real = s;
        c->real_len = c->sentinel_len;
    }
    if (err < 0)
        al_credset_free(dst);
    return err;
}

int np_creds_new(struct np_creds **out, const struct al_credset *creds, bool sentinel_only)
{
    struct np_creds *c = calloc(1, sizeof(*c));
    int err = 0;

    *out = NULL;
    if (!c)
        return AL_ENOMEM;
    atomic_init(&c->refs, 1);
    err = sentinel_only ? credset_sentinel_only(&c->set, creds) : al_credset_copy(&c->set, creds);
    if (err < 0)
        goto out;
    if (c->set.len && !(c->inject = calloc(c->set.len, sizeof(*c->inject)))) {
        err = AL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < c->set.len; i++) {
        /* inject_hosts use the allowedDomains syntax: the same matcher */
        struct al_netpolicy pol;
        al_netpolicy_init(&pol);
        pol.allowed_domains = c->set.v[i].inject_hosts;
        err = np_rules_build(&c->inject[i], &pol);
        if (err < 0)
            goto out;
    }
    *out = c;
    c = NULL;
out:
    np_creds_unref(c);
    return err;
}

int np_proxy_set_credentials(np_proxy *proxy, const char *session_id,
                             const struct al_credset *creds)
{
    struct np_creds *c = NULL, *old;
    int err;

    pthread_mutex_lock(&proxy->lock);
    bool split = proxy->kh_fd >= 0;
    pthread_mutex_unlock(&proxy->lock);
    /* split: the front keeps no value (docs/netproxy.md, "Processes") */
    if ((err = np_creds_new(&c, creds, split)) < 0)
        return err;
    pthread_mutex_lock(&proxy->lock);
    struct np_session *s = np_session_get(proxy, session_id, true);
    if (!s) {
        pthread_mutex_unlock(&proxy->lock);
        np_creds_unref(c);
        return AL_ENOMEM;
    }
    old = s->creds;
    s->creds = c;
    pthread_mutex_unlock(&proxy->lock);
    np_creds_unref(old);
    return 0;
}

uint64_t np_creds_inject_mask(const struct np_creds *c, const char *host, bool host_is_ip,
                              uint16_t port)
{
    uint64_t mask = 0;

    if (!c)
        return 0;
    for (size_t i = 0; i < c->set.len && i < AL_CRED_MAX; i++) {
        const char *rule = NULL;
        bool ok;
        if (host_is_ip) {
            /* an IP literal matches only an inject_hosts entry spelling it */
            ok = al_strlist_find(&c->set.v[i].inject_hosts, host) >= 0;
        } else {
            ok = np_rules_match(&c->inject[i], host, NULL, port, &rule) == NP_MATCH_ALLOW;
        }
        if (ok)
            mask |= (uint64_t)1 << i;
    }
    return mask;
}

int np_polsnap_new(struct np_polsnap **out, const struct al_netpolicy *pol)
{
    struct np_polsnap *s = calloc(1, sizeof(*s));
    int err;

    if (!s)
        return AL_ENOMEM;
    atomic_init(&s->refs, 1);
    if ((err = al_netpolicy_copy(&s->pol, pol)) < 0) {
        free(s);
        return err;
    }
    *out = s;
    return 0;
}

void np_polsnap_unref(struct np_polsnap *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    al_netpolicy_free(&s->pol);
    free(s);
}

bool np_polsnap_excluded(const struct np_polsnap *s, const char *host, bool host_is_ip,
                         uint16_t port)
{
    /* the same matcher (port ignored) as http_proxy.c's tunnel check for
     * hosts with request rules: both must agree on what is terminated */
    (void)host_is_ip;
    (void)port;
    if (!s)
        return false;
    for (size_t i = 0; i < s->pol.tls_exclude.len; i++)
        if (np_domain_pattern_match(s->pol.tls_exclude.items[i], host))
            return true;
    return false;
}
