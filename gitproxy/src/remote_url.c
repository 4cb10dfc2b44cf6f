/* URL rewrite of git-remote-airlock (see airlock/gp_remote_url.h). Only
 * libc: the helper that uses it runs inside sandboxes. */
#include "airlock/gp_remote_url.h"

#include "airlock/error.h"

#include <string.h>

#define HTTPS "https://"
#define HTTP  "http://"

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_host_char(char c)
{
    return is_alnum(c) || c == '-' || c == '.';
}

static int is_path_char(char c)
{
    return is_alnum(c) || (c && strchr("-._~/+=,:", c));
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* A host name: 1-253 bytes of letters, digits, '-' and '.', no empty label,
 * not starting or ending with '.' or '-'. */
static int host_valid(const char *h, size_t n)
{
    if (n == 0 || n > 253 || h[0] == '.' || h[0] == '-' || h[n - 1] == '.' || h[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_host_char(h[i]) || (h[i] == '.' && i + 1 < n && h[i + 1] == '.'))
            return 0;
    return 1;
}

/* PATH of the URL: starts with '/', allowed bytes only, no empty (except a
 * final one), "." or ".." segment. */
static int path_valid(const char *p, size_t n)
{
    if (n < 2 || p[0] != '/')
        return 0;
    size_t seg = 1; /* start of the current segment */
    for (size_t i = 1; i <= n; i++) {
        if (i < n && p[i] != '/') {
            if (!is_path_char(p[i]))
                return 0;
            continue;
        }
        size_t len = i - seg;
        if ((len == 0 && i < n) || (len == 1 && p[seg] == '.') ||
            (len == 2 && p[seg] == '.' && p[seg + 1] == '.'))
            return 0;
        seg = i + 1;
    }
    return 1;
}

/* Whether host[0..n) is one of the comma-separated `hosts`; *canon points
 * at the listed spelling. -1 when the list is malformed. */
static int host_listed(const char **canon, const char *host, size_t n, const char *hosts,
                       size_t hosts_len)
{
    size_t start = 0;
    int found = 0;
    if (hosts_len == 0)
        return 0;
    for (size_t i = 0; i <= hosts_len; i++) {
        if (i < hosts_len && hosts[i] != ',')
            continue;
        const char *h = hosts + start;
        size_t len = i - start;
        if (!host_valid(h, len))
            return -1;
        if (!found && len == n) {
            size_t k = 0;
            while (k < n && lower(h[k]) == lower(host[k]))
                k++;
            if (k == n) {
                *canon = h;
                found = 1;
            }
        }
        start = i + 1;
    }
    return found;
}

/* The proxy base without its optional trailing '/': its length, or 0 when
 * it is not "http://HOST:PORT" (HOST of host characters, PORT digits). */
static size_t proxy_base(const char *proxy, size_t len)
{
    size_t pre = sizeof(HTTP) - 1;
    if (len > 0 && proxy[len - 1] == '/')
        len--;
    if (len <= pre || len > 256 || memcmp(proxy, HTTP, pre) != 0)
        return 0;
    const char *colon = memchr(proxy + pre, ':', len - pre);
    if (!colon || !host_valid(proxy + pre, (size_t)(colon - proxy) - pre))
        return 0;
    size_t digits = len - (size_t)(colon + 1 - proxy);
    if (digits == 0 || digits > 5)
        return 0;
    for (const char *d = colon + 1; d < proxy + len; d++)
        if (*d < '0' || *d > '9')
            return 0;
    return len;
}

/* Appends src[0..n) at *at; 0 or -1 when `out` is full. */
static int put(char *out, size_t size, size_t *at, const char *src, size_t n)
{
    if (n >= size - *at)
        return -1;
    memcpy(out + *at, src, n);
    *at += n;
    out[*at] = '\0';
    return 0;
}

int gp_remote_url_rewrite(char *out, size_t out_size, enum gp_remote_route *route, const char **why,
                          const char *url, size_t url_len, const char *proxy, size_t proxy_len,
                          const char *hosts, size_t hosts_len)
{
    size_t pre = sizeof(HTTPS) - 1, at = 0;
    *why = "";
    *route = GP_REMOTE_DIRECT;
    if (out_size == 0)
        return AL_ETOOBIG;
    out[0] = '\0';
    if (url_len > GP_REMOTE_URL_MAX) {
        *why = "the URL is too long";
        return AL_ETOOBIG;
    }
    if (hosts_len > GP_REMOTE_HOSTS_MAX) {
        *why = "AIRLOCK_GIT_HOSTS is too long";
        return AL_ETOOBIG;
    }
    for (size_t i = 0; i < url_len; i++) {
        if (url[i] <= 0x20 || url[i] >= 0x7f) {
            *why = "the URL contains a space, control or non-ASCII byte";
            return AL_EINVAL;
        }
    }
    if (url_len < pre || memcmp(url, HTTPS, pre) != 0) {
        *why = "only https:// URLs are supported";
        return AL_EINVAL;
    }
    const char *auth = url + pre, *end = url + url_len;
    const char *slash = memchr(auth, '/', (size_t)(end - auth));
    if (!slash) {
        *why = "the URL has no path";
        return AL_EINVAL;
    }
    size_t auth_len = (size_t)(slash - auth), host_len = auth_len;
    if (memchr(auth, '@', auth_len)) {
        *why = "the URL carries a user name (user@host): not supported";
        return AL_EINVAL;
    }
    const char *colon = memchr(auth, ':', auth_len);
    if (colon) {
        host_len = (size_t)(colon - auth);
        size_t digits = auth_len - host_len - 1;
        int ok = digits > 0 && digits <= 5;
        for (size_t i = 0; ok && i < digits; i++)
            ok = colon[1 + i] >= '0' && colon[1 + i] <= '9';
        if (!ok) {
            *why = "the URL has a malformed port";
            return AL_EINVAL;
        }
    }
    if (!host_valid(auth, host_len)) {
        *why = "the URL has a malformed host name";
        return AL_EINVAL;
    }
    if (!path_valid(slash, (size_t)(end - slash))) {
        *why = "the URL path is malformed (empty, \".\" or \"..\" segment, or a byte other "
               "than letters, digits and -._~/+=,:)";
        return AL_EINVAL;
    }
    const char *canon = NULL;
    int listed = 0;
    size_t base = 0;
    if (hosts_len > 0) {
        if (!(base = proxy_base(proxy, proxy_len))) {
            *why = "AIRLOCK_GIT_PROXY is not http://HOST:PORT";
            return AL_EINVAL;
        }
        if ((listed = host_listed(&canon, auth, host_len, hosts, hosts_len)) < 0) {
            *why = "AIRLOCK_GIT_HOSTS is not a comma-separated list of host names";
            return AL_EINVAL;
        }
    }
    /* A port never matches: the listener serves HOST on the default port. */
    if (listed && !colon) {
        if (put(out, out_size, &at, proxy, base) < 0 || put(out, out_size, &at, "/", 1) < 0 ||
            put(out, out_size, &at, canon, host_len) < 0 ||
            put(out, out_size, &at, slash, (size_t)(end - slash)) < 0)
            goto toobig;
        *route = GP_REMOTE_PROXY;
        return 0;
    }
    if (put(out, out_size, &at, url, url_len) < 0)
        goto toobig;
    return 0;
toobig:
    out[0] = '\0';
    *why = "the rewritten URL is too long";
    return AL_ETOOBIG;
}
