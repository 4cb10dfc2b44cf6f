/* Request rules: path normalisation and the rule matcher (reqrule.h). */
#include "reqrule.h"

#include "airlock/error.h"
#include "domain.h"
#include "airlock/hex.h"

#include <stdbool.h>
#include <string.h>

static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool ctl_byte(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Whether the segment seg[0..n) is "." or "..", also with ";params" after it
 * (some servers drop path parameters before resolving dot segments), the ';'
 * raw or encoded ("%3B": servers that decode before they drop parameters).
 * Returns 0 for a plain segment, 1 for ".", 2 for "..", 3 for either with
 * ';'. The segment is already normalised (escapes in upper case). */
static int dot_kind(const char *seg, size_t n)
{
    size_t dots = 0;
    if (n == 1 && seg[0] == '.')
        return 1;
    if (n == 2 && seg[0] == '.' && seg[1] == '.')
        return 2;
    while (dots < n && dots < 2 && seg[dots] == '.')
        dots++;
    if (dots && n > dots &&
        (seg[dots] == ';' || (n - dots >= 3 && memcmp(seg + dots, "%3B", 3) == 0)))
        return 3;
    return 0;
}

int np_path_normalise(const char *target, size_t len, char *out, size_t cap, size_t *path_len)
{
    size_t plen = 0; /* bytes of the raw path */
    size_t w = 0;    /* bytes written to out */
    size_t limit = cap < NP_PATH_MAX + 1 ? cap : NP_PATH_MAX + 1;
    bool trailing = false;

    if (cap == 0)
        return al_error_set(AL_EINVAL, "request target does not fit");
    out[0] = '\0';
    if (len == 0 || target[0] != '/')
        return al_error_set(AL_EINVAL, "request target is not a path");
    while (plen < len && target[plen] != '?')
        plen++;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)target[i];
        if (ctl_byte(c))
            return al_error_set(AL_EINVAL, "request target holds a control byte");
        if (c == '\\' && i < plen)
            return al_error_set(AL_EINVAL, "request path holds a backslash");
    }
    /* One segment at a time: "/" then the decoded segment are appended to
     * out, then a dot segment is taken back out again. */
    size_t i = 0;
    while (i < plen) {
        /* target[i] == '/' */
        size_t seg_start;
        if (w + 1 >= limit)
            return al_error_set(AL_EINVAL, "request path is too long");
        out[w++] = '/';
        seg_start = w;
        i++;
        while (i < plen && target[i] != '/') {
            unsigned char c = (unsigned char)target[i];
            if (c == '%') {
                int hi = i + 2 < plen ? al_hex_digit(target[i + 1]) : -1;
                int lo = i + 2 < plen ? al_hex_digit(target[i + 2]) : -1;
                if (hi < 0 || lo < 0)
                    return al_error_set(AL_EINVAL, "request path holds a bad percent-escape");
                unsigned char v = (unsigned char)(hi * 16 + lo);
                if (v == '/' || v == '\\' || v == 0)
                    return al_error_set(AL_EINVAL,
                                        "request path holds an encoded '/', '\\' or NUL");
                if (unreserved(v)) {
                    if (w + 1 >= limit)
                        return al_error_set(AL_EINVAL, "request path is too long");
                    out[w++] = (char)v;
                } else {
                    static const char hex[] = "0123456789ABCDEF";
                    if (w + 3 >= limit)
                        return al_error_set(AL_EINVAL, "request path is too long");
                    out[w++] = '%';
                    out[w++] = hex[v >> 4];
                    out[w++] = hex[v & 15];
                }
                i += 3;
                continue;
            }
            if (w + 1 >= limit)
                return al_error_set(AL_EINVAL, "request path is too long");
            out[w++] = (char)c;
            i++;
        }
        int kind = dot_kind(out + seg_start, w - seg_start);
        trailing = kind != 0;
        if (kind == 3)
            return al_error_set(AL_EINVAL, "request path holds a dot segment with parameters");
        if (kind == 1) {
            w = seg_start - 1; /* drop "/." */
        } else if (kind == 2) {
            w = seg_start - 1; /* drop "/.." and the segment before it */
            if (w == 0)
                return al_error_set(AL_EINVAL, "request path climbs above \"/\"");
            while (w > 0 && out[w - 1] != '/')
                w--;
            w--; /* its '/' */
        }
    }
    if (trailing || w == 0) {
        if (w + 1 >= limit)
            return al_error_set(AL_EINVAL, "request path is too long");
        out[w++] = '/';
    }
    *path_len = w;
    if (w + (len - plen) + 1 > limit)
        return al_error_set(AL_EINVAL, "request target is too long");
    memcpy(out + w, target + plen, len - plen);
    w += len - plen;
    out[w] = '\0';
    return 0;
}

/* --- matching -------------------------------------------------------------- */

/* Glob within one segment: '*' matches any run of bytes (the segment holds no
 * '/'). Iterative with one backtrack point: O(n*m). */
static bool seg_match(const char *p, size_t pn, const char *s, size_t sn)
{
    size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < pn && p[pi] == s[si]) {
            pi++;
            si++;
        } else if (star != (size_t)-1) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

/* Length of the segment starting at s (up to '/' or end n). */
static size_t seg_len(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    return slash ? (size_t)(slash - s) : n;
}

/* Segment-wise glob: pattern and path are split on '/'; a pattern segment
 * "**" matches any number (also zero) of whole path segments, every other
 * pattern segment matches exactly one path segment (seg_match). Same
 * backtracking scheme as seg_match with segments for bytes. */
static bool path_match(const char *pat, const char *path, size_t path_len)
{
    size_t pn = strlen(pat);
    /* positions are offsets of segment starts; the end is n + 1 */
    size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;
    size_t pend = pn + 1, send = path_len + 1;

    while (si < send) {
        size_t sl = seg_len(path + si, path_len - si);
        if (pi < pend) {
            size_t pl = seg_len(pat + pi, pn - pi);
            if (pl == 2 && pat[pi] == '*' && pat[pi + 1] == '*') {
                star = pi;
                pi += pl + 1;
                mark = si;
                continue;
            }
            if (seg_match(pat + pi, pl, path + si, sl)) {
                pi += pl + 1;
                si += sl + 1;
                continue;
            }
        }
        if (star == (size_t)-1)
            return false;
        /* let the last "**" take one more segment */
        pi = star + 3;
        mark += seg_len(path + mark, path_len - mark) + 1;
        si = mark;
        if (pi > pend)
            pi = pend;
    }
    /* path consumed: the rest of the pattern must be "**" segments */
    while (pi < pend) {
        size_t pl = seg_len(pat + pi, pn - pi);
        if (!(pl == 2 && pat[pi] == '*' && pat[pi + 1] == '*'))
            return false;
        pi += pl + 1;
    }
    return true;
}

/* Decodes percent-escapes of unreserved characters in key[0..n) into out
 * (cap bytes, NUL-terminated); other escapes kept with upper-case hex.
 * False when it does not fit. */
static bool key_decode(const char *key, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (c == '%' && i + 2 < n) {
            int hi = al_hex_digit(key[i + 1]);
            int lo = al_hex_digit(key[i + 2]);
            if (hi >= 0 && lo >= 0) {
                unsigned char v = (unsigned char)(hi * 16 + lo);
                if (unreserved(v)) {
                    if (w + 1 >= cap)
                        return false;
                    out[w++] = (char)v;
                } else {
                    static const char hex[] = "0123456789ABCDEF";
                    if (w + 3 >= cap)
                        return false;
                    out[w++] = '%';
                    out[w++] = hex[v >> 4];
                    out[w++] = hex[v & 15];
                }
                i += 2;
                continue;
            }
        }
        if (w + 1 >= cap)
            return false;
        out[w++] = c;
    }
    out[w] = '\0';
    return true;
}

/* Whether every parameter name of query[0..n) is in keys. */
static bool query_ok(const struct al_strlist *keys, const char *query, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(query + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - query) : n;
        const char *eq = memchr(query + i, '=', end - i);
        size_t kend = eq ? (size_t)(eq - query) : end;
        if (end > i) {
            char key[256];
            if (!key_decode(query + i, kend - i, key, sizeof(key)))
                return false;
            if (al_strlist_find(keys, key) < 0)
                return false;
        }
        i = end + 1;
    }
    return true;
}

static bool rule_ok(const struct al_reqrule *r, const char *method, const char *target,
                    size_t path_len)
{
    if (r->methods.len && al_strlist_find(&r->methods, method) < 0)
        return false;
    if (r->paths.len) {
        bool hit = false;
        for (size_t i = 0; i < r->paths.len && !hit; i++)
            hit = path_match(r->paths.items[i], target, path_len);
        if (!hit)
            return false;
    }
    if (r->has_query_keys && target[path_len] == '?') {
        const char *q = target + path_len + 1;
        if (!query_ok(&r->query_keys, q, strlen(q)))
            return false;
    }
    return true;
}

/* Bounded one-line writer: bytes that are not printable ASCII become '?';
 * a line that does not fit ends in "...". */
struct line {
    char *buf;
    size_t cap, len;
    bool full;
};

static void line_putn(struct line *l, const char *s, size_t n)
{
    for (size_t i = 0; i < n && !l->full; i++) {
        unsigned char c = (unsigned char)s[i];
        if (l->len + 4 >= l->cap) { /* room for "..." and NUL */
            if (l->cap >= 4) {
                memcpy(l->buf + l->len, "...", 3);
                l->len += 3;
            }
            l->full = true;
            break;
        }
        l->buf[l->len++] = (char)(c < 0x20 || c >= 0x7f ? '?' : c);
    }
    if (l->cap)
        l->buf[l->len < l->cap ? l->len : l->cap - 1] = '\0';
}

static void line_puts(struct line *l, const char *s)
{
    line_putn(l, s, strlen(s));
}

static void line_list(struct line *l, const struct al_strlist *list, const char *sep)
{
    for (size_t i = 0; i < list->len; i++) {
        if (i)
            line_puts(l, sep);
        line_puts(l, list->items[i]);
    }
}

/* "GET,HEAD /a/\**,/b query:page,per_page" */
static void line_rule(struct line *l, const struct al_reqrule *r)
{
    if (r->methods.len)
        line_list(l, &r->methods, ",");
    else
        line_puts(l, "ANY");
    line_puts(l, " ");
    if (r->paths.len)
        line_list(l, &r->paths, ",");
    else
        line_puts(l, "/**");
    if (r->has_query_keys) {
        line_puts(l, " query:");
        if (r->query_keys.len)
            line_list(l, &r->query_keys, ",");
        else
            line_puts(l, "none");
    }
}

enum np_rules_verdict np_reqrules_check(const struct al_netpolicy *pol, const char *host,
                                        const char *method, const char *target, size_t path_len,
                                        char *why, size_t why_cap)
{
    struct line l = {why, why_cap, 0, false};
    bool any = false;

    if (why_cap)
        why[0] = '\0';
    if (!pol)
        return NP_RULES_NONE;
    for (size_t i = 0; i < pol->n_request_rules; i++) {
        const struct al_reqrule *r = &pol->request_rules[i];
        if (!r->host || !np_domain_pattern_match(r->host, host))
            continue;
        any = true;
        if (rule_ok(r, method, target, path_len)) {
            line_rule(&l, r);
            return NP_RULES_MATCH;
        }
    }
    if (!any)
        return NP_RULES_NONE;
    line_puts(&l, method);
    line_puts(&l, " ");
    line_putn(&l, target, path_len);
    line_puts(&l, " matches no request rule for ");
    line_puts(&l, host);
    line_puts(&l, " (");
    bool first = true;
    for (size_t i = 0; i < pol->n_request_rules; i++) {
        const struct al_reqrule *r = &pol->request_rules[i];
        if (!r->host || !np_domain_pattern_match(r->host, host))
            continue;
        if (!first)
            line_puts(&l, "; ");
        first = false;
        line_rule(&l, r);
    }
    line_puts(&l, ")");
    return NP_RULES_MISS;
}

int np_reqrules_has_host(const struct al_netpolicy *pol, const char *host)
{
    if (!pol)
        return 0;
    for (size_t i = 0; i < pol->n_request_rules; i++)
        if (pol->request_rules[i].host && np_domain_pattern_match(pol->request_rules[i].host, host))
            return 1;
    return 0;
}
