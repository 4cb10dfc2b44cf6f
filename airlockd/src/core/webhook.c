/* Outgoing webhooks, the part core owns (webhook.h): the URL check and its
 * SSRF guard, the body and its signature, the retry delays, and the
 * hand-over to the outbox (hooks.webhook, adapters/webhooks.c). */
#include "airlockd/core/webhook.h"

#include "airlockd/core/daemon.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int why_set(char *why, size_t whysz, const char *msg)
{
    snprintf(why, whysz, "%s", msg);
    return AL_EINVAL;
}

static int scheme_take(const char *url, size_t len, const char *scheme, size_t *pos)
{
    size_t n = strlen(scheme);
    if (len < n || strncasecmp(url, scheme, n) != 0)
        return 0;
    *pos = n;
    return 1;
}

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* The port digits [p, end): 1..65535. */
static int port_parse(const char *p, const char *end, uint16_t *out)
{
    unsigned v = 0;
    if (p == end || end - p > 5)
        return AL_EINVAL;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return AL_EINVAL;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return AL_EINVAL;
    *out = (uint16_t)v;
    return 0;
}

int ald_webhook_url_parse(struct ald_webhook_url *out, const char *url, size_t len, char *why,
                          size_t whysz)
{
    size_t pos = 0;
    memset(out, 0, sizeof(*out));
    if (len == 0 || len > ALD_WEBHOOK_URL_MAX)
        return why_set(why, whysz, "must be 1 to 2048 bytes");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f || url[i] == '\\')
            return why_set(why, whysz,
                           "must be printable ASCII without spaces, control characters or \\");
    if (memchr(url, '#', len))
        return why_set(why, whysz, "must not have a fragment (#)");
    if (scheme_take(url, len, "https://", &pos))
        out->https = 1;
    else if (!scheme_take(url, len, "http://", &pos))
        return why_set(why, whysz, "must be an http:// or https:// URL");
    const char *a = url + pos, *end = url + len, *ae = a;
    while (ae < end && *ae != '/' && *ae != '?')
        ae++;
    if (memchr(a, '@', (size_t)(ae - a)))
        return why_set(why, whysz, "must not carry a user name or password (userinfo)");
    if (memchr(a, '%', (size_t)(ae - a)))
        return why_set(why, whysz, "must not have percent-encoding in the host");
    const char *h = a, *he, *port = NULL;
    if (a < ae && *a == '[') {
        h = a + 1;
        he = memchr(h, ']', (size_t)(ae - h));
        if (!he)
            return why_set(why, whysz, "has an unclosed [ in the host");
        if (he + 1 < ae && he[1] != ':')
            return why_set(why, whysz, "has text after the ] of the host");
        if (he + 1 < ae)
            port = he + 2;
    } else {
        he = h;
        while (he < ae && *he != ':')
            he++;
        if (he < ae)
            port = he + 1;
        for (const char *c = h; c < he; c++)
            if (!host_char(*c))
                return why_set(why, whysz, "has a host that is not a DNS name or IP address");
    }
    size_t hlen = (size_t)(he - h);
    if (hlen == 0 || hlen >= sizeof(out->host))
        return why_set(why, whysz, "must have a host of 1 to 255 bytes");
    for (size_t i = 0; i < hlen; i++)
        out->host[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] - 'A' + 'a' : h[i]);
    out->host[hlen] = '\0';
    struct al_addr ip;
    int lit = al_addr_parse(&ip, out->host, hlen);
    if (a < ae && *a == '[' && (lit != 0 || ip.family != AF_INET6))
        return why_set(why, whysz, "has a bracketed host that is not an IPv6 address");
    if (lit == AL_EINVAL)
        return why_set(why, whysz, "has a numeric host that is not a valid IP address");
    if (lit == AL_ENOTFOUND && (out->host[0] == '.' || out->host[0] == '-'))
        return why_set(why, whysz, "has a host that is not a DNS name or IP address");
    out->port = out->https ? 443 : 80;
    if (port && port_parse(port, ae, &out->port) < 0)
        return why_set(why, whysz, "has a port that is not 1 to 65535");
    return 0;
}

int ald_webhook_addr_ok(const struct al_addr *a, int allow_private)
{
    return allow_private || al_addr_classify(a) == AL_ADDR_PUBLIC;
}

static int addr_refused(char *why, size_t whysz, const char *host, const struct al_addr *a)
{
    char txt[64];
    al_addr_format(a, txt, sizeof(txt));
    if (strcmp(txt, host) == 0)
        snprintf(why, whysz,
                 "%s is a %s address (refused unless the operator sets"
                 " webhooks.allow_private)",
                 txt, al_addr_class_name(al_addr_classify(a)));
    else
        snprintf(why, whysz,
                 "%s resolves to %s, a %s address (refused unless the operator"
                 " sets webhooks.allow_private)",
                 host, txt, al_addr_class_name(al_addr_classify(a)));
    return AL_EPERM;
}

int ald_webhook_resolve(struct al_addr *out, size_t max, size_t *n, const char *host,
                        int allow_private, char *why, size_t whysz)
{
    *n = 0;
    int lit = al_addr_parse(out, host, strlen(host));
    if (lit == 0) {
        if (!ald_webhook_addr_ok(out, allow_private))
            return addr_refused(why, whysz, host, out);
        *n = 1;
        return 0;
    }
    if (lit != AL_ENOTFOUND)
        return why_set(why, whysz, "not a valid IP address");
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(why, whysz, "%s does not resolve: %s", host, gai_strerror(rc));
        if (res)
            freeaddrinfo(res);
        return AL_ENOTFOUND;
    }
    int err = 0;
    for (struct addrinfo *r = res; r && err == 0; r = r->ai_next) {
        struct al_addr a;
        if (al_addr_from_sockaddr(&a, r->ai_addr) < 0)
            continue;
        /* every address must pass: a name with one public and one private
         * address would otherwise reach the private one on some attempt */
        if (!ald_webhook_addr_ok(&a, allow_private))
            err = addr_refused(why, whysz, host, &a);
        else if (*n < max)
            out[(*n)++] = a;
    }
    freeaddrinfo(res);
    if (err < 0)
        *n = 0;
    else if (*n == 0) {
        snprintf(why, whysz, "%s has no IPv4 or IPv6 address", host);
        err = AL_ENOTFOUND;
    }
    return err;
}

int ald_webhook_sign(char out[72], const char *secret, const void *body, size_t len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    static const char hex[] = "0123456789abcdef";
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, mac, &maclen) || maclen != 32)
        return al_error_set(AL_ERROR, "HMAC-SHA256 failed");
    memcpy(out, "sha256=", 7);
    for (unsigned i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[8 + 2 * i] = hex[mac[i] & 15];
    }
    out[71] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

uint64_t ald_webhook_backoff_ms(unsigned attempt, uint64_t initial_ms, uint64_t max_ms,
                                uint32_t rnd)
{
    uint64_t d = initial_ms ? initial_ms : 1;
    for (unsigned i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    uint64_t half = d / 2;
    return d - half + rnd % (half + 1);
}

int ald_webhook_url_check(struct ald *d, const char *field, const char *url, struct ald_fault *f)
{
    struct ald_webhook_url u;
    struct al_addr a[ALD_WEBHOOK_ADDR_MAX];
    size_t n;
    char why[512];
    if (!url)
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", field, "expected a URL");
    if (ald_webhook_url_parse(&u, url, strlen(url), why, sizeof(why)) < 0)
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", field, "%s", why);
    if (ald_webhook_resolve(a, ALD_WEBHOOK_ADDR_MAX, &n, u.host, d->cfg->webhooks.allow_private,
                            why, sizeof(why)) < 0)
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", field, "%s", why);
    return 0;
}

int ald_webhook_enqueue(struct ald *d, const char *user, const char *subject, const char *url,
                        const char *secret, const char *event, json_t *payload, struct ald_fault *f)
{
    char id[ALD_WEBHOOK_ID_LEN + 1];
    char *body = NULL;
    int err;
    if (!d->hooks.webhook.enqueue)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "webhooks are not set up");
    if (!user || !subject || !url || !secret || !*secret || !event || !payload)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL,
                             "webhook delivery without user, subject, url, secret or event");
    memcpy(id, "d_", 2);
    if (ald_random_hex(id + 2, 20) < 0)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
    uint64_t now = ald_now_ms();
    json_t *doc = json_pack("{s:s, s:s, s:o, s:O}", "event", event, "delivery", id, "created_at",
                            ald_time_json(now), "data", payload);
    if (!doc || !(body = json_dumps(doc, JSON_COMPACT))) {
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
        goto out;
    }
    struct ald_webhook_item it = {.id = id,
                                  .user = user,
                                  .subject = subject,
                                  .event = event,
                                  .url = url,
                                  .secret = secret,
                                  .body = body,
                                  .body_len = strlen(body),
                                  .created_ms = now};
    err = d->hooks.webhook.enqueue(d, &it, f);
out:
    free(body);
    json_decref(doc);
    return err;
}

static void session_aad(char *out, size_t size, const char *sid)
{
    snprintf(out, size, "airlock-session-webhook:%s", sid);
}

int ald_webhook_session_prepare(struct ald *d, const char *sid, json_t *v, json_t **out,
                                struct ald_fault *f)
{
    const char *k;
    json_t *x;
    char aad[96], *sealed = NULL;
    *out = NULL;
    if (!json_is_object(v))
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "webhook",
                             "expected an object {\"url\", \"secret\"}");
    json_object_foreach(v, k, x)
    {
        if (strcmp(k, "url") && strcmp(k, "secret"))
            return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "webhook",
                                 "unknown key (expected url and secret)");
    }
    json_t *url = json_object_get(v, "url"), *secret = json_object_get(v, "secret");
    if (!json_is_string(url) || strlen(json_string_value(url)) != json_string_length(url))
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "webhook.url",
                             "expected a URL string");
    int err = ald_webhook_url_check(d, "webhook.url", json_string_value(url), f);
    if (err < 0)
        return err;
    const char *s = json_is_string(secret) ? json_string_value(secret) : NULL;
    size_t slen = s ? json_string_length(secret) : 0;
    int ok = s && slen >= 1 && slen <= ALD_WEBHOOK_SECRET_MAX && strlen(s) == slen;
    for (size_t i = 0; ok && i < slen; i++)
        ok = (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f;
    if (!ok)
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "webhook.secret",
                             "expected 1 to 256 printable ASCII characters without spaces");
    if (!d->hooks.webhook.seal)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "webhooks are not set up");
    session_aad(aad, sizeof(aad), sid);
    if (d->hooks.webhook.seal(d, aad, s, &sealed) < 0)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL,
                             "cannot seal the webhook secret: %s", al_error_last());
    *out = json_pack("{s:O, s:s}", "url", url, "secret", sealed);
    free(sealed);
    if (!*out)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
    return 0;
}

void ald_webhook_session_notify(struct ald *d, const char *sid, const char *user, json_t *rec,
                                const char *event, json_t *payload)
{
    char aad[96], *secret = NULL;
    struct ald_fault f = {0};
    const char *url = json_string_value(json_object_get(rec, "url"));
    const char *sealed = json_string_value(json_object_get(rec, "secret"));
    if (!url || !sealed || !d->hooks.webhook.unseal)
        return;
    session_aad(aad, sizeof(aad), sid);
    if (d->hooks.webhook.unseal(d, aad, sealed, &secret) < 0) {
        al_log(AL_LOG_WARN, "session %s: webhook secret cannot be unsealed: %s", sid,
               al_error_last());
        return;
    }
    if (ald_webhook_enqueue(d, user, sid, url, secret, event, payload, &f) < 0)
        al_log(AL_LOG_WARN, "session %s: %s not queued: %s", sid, event, f.message);
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
}
