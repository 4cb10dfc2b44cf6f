/* Path globs: `*` and `?` inside one component, `**` over whole components.
 *
 * Both levels use the two-pointer wildcard algorithm (remember the last star
 * and where it started matching; on a mismatch let that star eat one more
 * unit and retry). Only the last star is ever revisited, which is correct
 * for stars that match any run, so the cost is O(pattern * subject) at each
 * level and no pattern can make it exponential.
 */
#include "airlock/glob.h"

#include <stdlib.h>
#include <string.h>

int al_glob_has_magic(const char *pattern)
{
    return strpbrk(pattern, "*?") != NULL;
}

/* Length in bytes of the UTF-8 sequence starting at `s` (at most `n`): a
 * lead byte and the continuation bytes after it, so `?` eats one character. */
static size_t utf8_len(const char *s, size_t n)
{
    size_t i = 1;
    while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
        i++;
    return i;
}

/* 1 when the component `s` (`sn` bytes) matches the component pattern `p`
 * (`pn` bytes; `*` any run, `?` one character, anything else literal). */
static int component_match(const char *p, size_t pn, const char *s, size_t sn)
{
    size_t pi = 0, si = 0;
    size_t star_p = (size_t)-1, star_s = 0;

    while (si < sn) {
        if (pi < pn && p[pi] == '*') {
            while (pi < pn && p[pi] == '*')
                pi++;
            star_p = pi;
            star_s = si;
        } else if (pi < pn && p[pi] == '?') {
            pi++;
            si += utf8_len(s + si, sn - si);
        } else if (pi < pn && p[pi] == s[si]) {
            pi++;
            si++;
        } else if (star_p != (size_t)-1) {
            pi = star_p;
            star_s += utf8_len(s + star_s, sn - star_s);
            si = star_s;
        } else {
            return 0;
        }
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

/* Component cursor over a slash-separated string: empty components ("//")
 * are skipped. */
struct comp {
    const char *at; /* start of the current component, or at the NUL */
    size_t len;     /* its length */
};

static void comp_load(struct comp *c, const char *at)
{
    while (*at == '/')
        at++;
    c->at = at;
    c->len = strcspn(at, "/");
}

static void comp_next(struct comp *c)
{
    comp_load(c, c->at + c->len);
}

static int comp_is_globstar(const struct comp *c)
{
    return c->len == 2 && c->at[0] == '*' && c->at[1] == '*';
}

int al_glob_match(const char *pattern, const char *path)
{
    if ((pattern[0] == '/') != (path[0] == '/'))
        return 0;

    struct comp p, s, star_p = {NULL, 0}, star_s = {NULL, 0};
    comp_load(&p, pattern);
    comp_load(&s, path);

    while (s.len > 0) {
        if (p.len > 0 && comp_is_globstar(&p)) {
            /* `**` (several in a row act as one) may cover zero components
             * first; a mismatch later makes it cover one more. */
            while (p.len > 0 && comp_is_globstar(&p))
                comp_next(&p);
            star_p = p;
            star_s = s;
        } else if (p.len > 0 && component_match(p.at, p.len, s.at, s.len)) {
            comp_next(&p);
            comp_next(&s);
        } else if (star_p.at) {
            comp_next(&star_s);
            p = star_p;
            s = star_s;
        } else {
            return 0;
        }
    }
    while (p.len > 0 && comp_is_globstar(&p))
        comp_next(&p);
    return p.len == 0;
}

char *al_glob_literal_prefix(const char *pattern)
{
    size_t end = 0; /* bytes of `pattern` kept: up to the end of the last literal component */
    struct comp c;

    for (comp_load(&c, pattern); c.len > 0; comp_next(&c)) {
        size_t i;
        for (i = 0; i < c.len; i++)
            if (c.at[i] == '*' || c.at[i] == '?')
                break;
        if (i < c.len)
            break;
        end = (size_t)(c.at - pattern) + c.len;
    }
    if (end == 0)
        return strdup(pattern[0] == '/' ? "/" : "");

    /* Copy the kept part with runs of '/' folded to one. */
    char *out = malloc(end + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < end; i++) {
        if (pattern[i] == '/' && n > 0 && out[n - 1] == '/')
            continue;
        out[n++] = pattern[i];
    }
    out[n] = '\0';
    return out;
}
