/* Checks and expansions applied to single settings values: paths, domain
 * patterns, address literals. Each sets al_error_last() to a reason that
 * quotes the value; the loader prefixes the file and key. */
#include "airlock/settings.h"
#include "airlock/error.h"
#include "settings_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *al_settings_quote(char *out, size_t size, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    const size_t room = size - 6; /* closing quote, "...", NUL */

    out[n++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        size_t need = (c < 0x20 || c == 0x7f) ? 4 : (c == '"' || c == '\\') ? 2 : 1;
        if (n + need > room) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        if (need == 4) {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else {
            if (need == 2)
                out[n++] = '\\';
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
    return out;
}

/* Appends the components of `src` to the normalised absolute path `out`
 * (`*len` bytes, "/" or no trailing slash), folding "." and "..". `out` has
 * room for strlen(out) + strlen(src) + 2 bytes. */
static void path_fold(char *out, size_t *len, const char *src)
{
    while (*src) {
        while (*src == '/')
            src++;
        size_t cl = strcspn(src, "/");
        if (cl == 0)
            break;
        if (cl == 1 && src[0] == '.') {
            /* nothing */
        } else if (cl == 2 && src[0] == '.' && src[1] == '.') {
            char *slash = memrchr(out, '/', *len);
            *len = (slash && slash != out) ? (size_t)(slash - out) : 1;
        } else {
            if (*len > 1)
                out[(*len)++] = '/';
            memcpy(out + *len, src, cl);
            *len += cl;
        }
        src += cl;
    }
    out[*len] = '\0';
}

char *al_settings_expand_path(const char *path, const char *home, const char *cwd)
{
    char q[96];
    const char *base = NULL, *rest = path;

    if (path[0] == '\0') {
        al_error_set(AL_EINVAL, "empty path");
        return NULL;
    }
    if (path[0] == '~') {
        if (path[1] != '\0' && path[1] != '/') {
            al_error_set(AL_EINVAL, "%s: only \"~\" and \"~/...\" are expanded, not \"~user\"",
                         al_settings_quote(q, sizeof(q), path));
            return NULL;
        }
        if (!home || home[0] != '/') {
            al_error_set(AL_EINVAL, "%s: not absolute after expansion (no absolute home directory)",
                         al_settings_quote(q, sizeof(q), path));
            return NULL;
        }
        base = home;
        rest = path + 1;
    } else if (path[0] != '/') {
        if (!cwd || cwd[0] != '/') {
            al_error_set(AL_EINVAL,
                         "%s: not absolute after expansion (no absolute working directory)",
                         al_settings_quote(q, sizeof(q), path));
            return NULL;
        }
        base = cwd;
    }

    size_t total = strlen(rest) + (base ? strlen(base) : 0);
    if (total > AL_SETTINGS_PATH_MAX) {
        al_error_set(AL_EINVAL, "%s: longer than %d bytes", al_settings_quote(q, sizeof(q), path),
                     AL_SETTINGS_PATH_MAX);
        return NULL;
    }
    char *out = malloc(total + 3);
    if (!out) {
        al_error_set(AL_ENOMEM, "out of memory");
        return NULL;
    }
    size_t len = 1;
    out[0] = '/';
    out[1] = '\0';
    if (base)
        path_fold(out, &len, base);
    path_fold(out, &len, rest);
    return out;
}

/* Two-label public suffixes under which "*.<suffix>" is as broad as "*.com".
 * Not the whole Public Suffix List: the common ones. */
static const char *const broad_suffixes[] = {
    "co.uk", "org.uk", "ac.uk",  "gov.uk", "com.au", "net.au", "org.au", "co.nz",
    "co.jp", "ne.jp",  "or.jp",  "co.kr",  "com.br", "com.cn", "com.tw", "com.hk",
    "co.in", "co.za",  "com.mx", "com.tr", "com.sg", "co.il",  "com.ar", NULL,
};

static int domain_is_broad_suffix(const char *s, size_t len)
{
    for (size_t i = 0; broad_suffixes[i]; i++)
        if (strlen(broad_suffixes[i]) == len && strncasecmp(broad_suffixes[i], s, len) == 0)
            return 1;
    return 0;
}

static int domain_check(const char *pattern, int allow_star)
{
    char q[96];
    size_t len = strlen(pattern);

    al_settings_quote(q, sizeof(q), pattern);
    if (len == 0)
        return al_error_set(AL_EINVAL, "empty domain");
    if (len > 253 + 6)
        return al_error_set(AL_EINVAL, "%s: longer than 253 characters", q);
    const char *scheme_end = strstr(pattern, "://");
    if (scheme_end) {
        /* A URL: the scheme and path would not mean what they seem (the proxy
         * allows a host on any port it is asked for, and cannot see an HTTPS
         * path), so refuse and say what to write. */
        char host[96], shown[112];
        const char *h = scheme_end + 3;
        size_t hl = strcspn(h, "/?#");
        snprintf(host, sizeof(host), "%.*s", (int)(hl < 80 ? hl : 80), h);
        al_settings_quote(shown, sizeof(shown), host);
        return al_error_set(
            AL_EINVAL, "%s is a URL, not a domain: write the host name alone, %s%s", q, shown,
            h[hl] == '/' && h[hl + 1] ? " (a path cannot be allowed on its own: the whole host is)"
                                      : "");
    }

    size_t host_len = len;
    const char *colon = strchr(pattern, ':');
    if (colon) {
        const char *port = colon + 1;
        size_t pl = strlen(port);
        long value = 0;
        if (pl == 0 || pl > 5 || strspn(port, "0123456789") != pl)
            return al_error_set(AL_EINVAL, "%s: bad port: expected a number from 1 to 65535", q);
        for (size_t i = 0; i < pl; i++)
            value = value * 10 + (port[i] - '0');
        if (value < 1 || value > 65535)
            return al_error_set(AL_EINVAL, "%s: bad port: expected a number from 1 to 65535", q);
        host_len = (size_t)(colon - pattern);
    }
    if (host_len == 0)
        return al_error_set(AL_EINVAL, "%s: empty host name", q);
    if (host_len > 253)
        return al_error_set(AL_EINVAL, "%s: longer than 253 characters", q);
    if (host_len == 1 && pattern[0] == '*') {
        if (allow_star)
            return 0;
        return al_error_set(AL_EINVAL, "%s is too broad: it matches every domain", q);
    }

    const char *host = pattern;
    int wildcard = 0;
    if (host_len >= 2 && host[0] == '*' && host[1] == '.') {
        wildcard = 1;
        host += 2;
        host_len -= 2;
    }
    if (memchr(host, '*', host_len))
        return al_error_set(AL_EINVAL, "%s: a wildcard is only allowed as a leading \"*.\"", q);

    size_t labels = 0, label_len = 0;
    for (size_t i = 0; i <= host_len; i++) {
        unsigned char c = i < host_len ? (unsigned char)host[i] : '.';
        if (c == '.') {
            if (label_len == 0)
                return al_error_set(AL_EINVAL, "%s: empty label (leading, trailing or double dot)",
                                    q);
            if (label_len > 63)
                return al_error_set(AL_EINVAL, "%s: a label is longer than 63 characters", q);
            labels++;
            label_len = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c >= 0x80)) {
            if (c > 0x20 && c < 0x7f)
                return al_error_set(AL_EINVAL, "%s: character '%c' is not allowed in a domain", q,
                                    c);
            return al_error_set(AL_EINVAL, "%s: byte 0x%02x is not allowed in a domain", q, c);
        }
        label_len++;
    }
    if (wildcard && (labels < 2 || (labels == 2 && domain_is_broad_suffix(host, host_len))))
        return al_error_set(AL_EINVAL,
                            "%s is too broad: a wildcard must stand for subdomains of a "
                            "registered domain, e.g. \"*.example.com\"",
                            q);
    return 0;
}

int al_settings_check_domain(const char *pattern)
{
    return domain_check(pattern, 0);
}

int al_settings_check_denied_domain(const char *pattern)
{
    return domain_check(pattern, 1);
}

int al_settings_check_address(const char *cidr)
{
    char q[96], host[64];
    unsigned char addr[16];
    const char *slash = strchr(cidr, '/');
    size_t hl = slash ? (size_t)(slash - cidr) : strlen(cidr);

    al_settings_quote(q, sizeof(q), cidr);
    if (hl == 0 || hl >= sizeof(host))
        return al_error_set(AL_EINVAL, "%s: expected an IP address or CIDR block", q);
    memcpy(host, cidr, hl);
    host[hl] = '\0';

    int max;
    if (inet_pton(AF_INET, host, addr) == 1)
        max = 32;
    else if (inet_pton(AF_INET6, host, addr) == 1)
        max = 128;
    else
        return al_error_set(AL_EINVAL, "%s: expected an IP address or CIDR block", q);

    if (slash) {
        const char *p = slash + 1;
        size_t pl = strlen(p);
        int prefix = 0;
        if (pl == 0 || pl > 3 || strspn(p, "0123456789") != pl)
            return al_error_set(AL_EINVAL, "%s: bad prefix length: expected 1 to %d", q, max);
        for (size_t i = 0; i < pl; i++)
            prefix = prefix * 10 + (p[i] - '0');
        if (prefix == 0)
            return al_error_set(AL_EINVAL, "%s is too broad: it matches every address", q);
        if (prefix > max)
            return al_error_set(AL_EINVAL, "%s: bad prefix length: expected 1 to %d", q, max);
    }
    return 0;
}

int al_reqrule_check_method(const char *s, size_t len)
{
    char q[96];
    al_settings_quote(q, sizeof(q), s);
    if (len == 0 || strlen(s) != len || len > AL_REQRULE_TOKEN_MAX)
        return al_error_set(AL_EINVAL, "%s: expected an HTTP method (\"GET\", \"POST\", ...)", q);
    for (const char *c = s; *c; c++) {
        if (*c >= 'a' && *c <= 'z')
            return al_error_set(AL_EINVAL,
                                "%s: methods are matched as sent, in upper case: write it in "
                                "upper case",
                                q);
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *c)))
            return al_error_set(AL_EINVAL,
                                "%s: expected an HTTP method (\"GET\", \"POST\", ...): bad "
                                "character",
                                q);
    }
    return 0;
}

int al_reqrule_check_path(const char *s, size_t len)
{
    char q[96];
    al_settings_quote(q, sizeof(q), s);
    if (strlen(s) != len)
        return al_error_set(AL_EINVAL, "%s: contains a NUL byte", q);
    if (len > AL_SETTINGS_PATH_MAX)
        return al_error_set(AL_EINVAL, "%s: longer than %d bytes", q, AL_SETTINGS_PATH_MAX);
    if (s[0] != '/')
        return al_error_set(AL_EINVAL, "%s: a path pattern starts with \"/\"", q);
    if (strchr(s, '?'))
        return al_error_set(AL_EINVAL,
                            "%s: \"?\" is not allowed: a rule matches the path; name the "
                            "query parameters in queryKeys",
                            q);
    if (strpbrk(s, "\r\n\\"))
        return al_error_set(AL_EINVAL, "%s: CR, LF and \"\\\" are not allowed in a path pattern",
                            q);
    return 0;
}

int al_reqrule_check_query_key(const char *s, size_t len)
{
    char q[96];
    al_settings_quote(q, sizeof(q), s);
    if (len == 0 || strlen(s) != len || len > AL_REQRULE_TOKEN_MAX)
        return al_error_set(AL_EINVAL, "%s: expected a query parameter name", q);
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f || strchr("&=#?", *c))
            return al_error_set(AL_EINVAL,
                                "%s: expected a query parameter name (no spaces, control "
                                "characters, \"&\", \"=\", \"#\" or \"?\")",
                                q);
    return 0;
}

/* Splits "host[:port]" into its host part's length and the port ("" when
 * none). */
static size_t domain_split(const char *p, const char **port)
{
    const char *colon = strrchr(p, ':');
    *port = colon ? colon + 1 : "";
    return colon ? (size_t)(colon - p) : strlen(p);
}

int al_settings_domain_covers(const char *outer, const char *inner)
{
    const char *oport, *iport;
    size_t ol = domain_split(outer, &oport), il = domain_split(inner, &iport);
    if (oport[0] && strcmp(oport, iport) != 0)
        return 0;
    if (ol == il && strncasecmp(outer, inner, ol) == 0)
        return 1;
    if (ol < 3 || outer[0] != '*' || outer[1] != '.')
        return 0;
    /* "*.D" covers "x.D", "*.D" and "*.x.D": inner ends in ".D" */
    size_t dl = ol - 1; /* ".D" */
    return il > dl && strncasecmp(inner + il - dl, outer + 1, dl) == 0;
}
