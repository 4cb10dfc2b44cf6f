/* Masked credentials: sentinels, credential sets, and the substitutions of
 * the egress proxy (contract in airlock/credmask.h).
 *
 * Every rewrite here is one greedy left-to-right scan: at each position the
 * longest pattern that matches there is replaced, else the byte is copied.
 * The streaming rewriter runs the same scan and holds back only the bytes
 * where a pattern could still begin, so its output equals the one-shot
 * output however the input is split. Real values never reach an error
 * message; buffers that held them are wiped before they are freed. */
#include "airlock/credmask.h"

#include "airlock/base64.h"
#include "airlock/error.h"

#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define MASK_FILE_MAX   (1024 * 1024) /* largest credential file */
#define SENTINEL_MBITS  128000        /* random bits a sentinel needs, in milli-bits */
#define MBITS_DIGIT     3321          /* floor(1000 * log2(10)) */
#define MBITS_LETTER    4700          /* floor(1000 * log2(26)) */
#define MBITS_ALNUM     5954          /* floor(1000 * log2(62)) */
#define GENERIC_PFX_MAX 16
#define NONE            SIZE_MAX
#define SCAN_MAX        (AL_CRED_MAX * 4) /* patterns of one scan: values and their base64 forms */

/* Known token prefixes, kept as they are in a sentinel, separated by
 * spaces. The longest one that matches wins ("sk-ant-api03-" before
 * "sk-ant-" before "sk-"). */
static const char known_prefixes[] =
    "ghp_ gho_ ghu_ ghs_ ghr_ github_pat_ glpat- glptt- gldt- glsa_ "
    "sk-ant-api03- sk-ant-admin01- sk-ant- sk-proj- sk-svcacct- sk- "
    "xoxb- xoxp- xoxa- xoxs- xapp- npm_ AKIA ASIA AIza ya29. hf_ pypi- dop_v1_ "
    "sk_live_ sk_test_ rk_live_ rk_test_ pk_live_ pk_test_ SG. shpat_ shpca_ shppa_ dckr_pat_";

static const char digits[] = "0123456789";
static const char lower[] = "abcdefghijklmnopqrstuvwxyz";
static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* ---- randomness ---------------------------------------------------------- */

struct rnd {
    unsigned char buf[256];
    size_t pos, len;
};

static int rnd_byte(struct rnd *r, unsigned char *out)
{
    while (r->pos == r->len) {
        ssize_t n = getrandom(r->buf, sizeof(r->buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return al_error_set_errno(AL_EIO, n < 0 ? errno : EIO, "getrandom");
        r->pos = 0;
        r->len = (size_t)n;
    }
    *out = r->buf[r->pos++];
    return 0;
}

/* A uniformly random character of `chars` (`n` of them, n <= 256). */
static int rnd_pick(struct rnd *r, const char *chars, unsigned n, char *out)
{
    unsigned limit = 256 - 256 % n;
    for (;;) {
        unsigned char b = 0;
        int err = rnd_byte(r, &b);
        if (err < 0)
            return err;
        if (b < limit) {
            *out = chars[b % n];
            return 0;
        }
    }
}

/* ---- sentinels ----------------------------------------------------------- */

static int is_letter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Bytes of `real` kept as they are at its start. */
static size_t sentinel_prefix_len(const char *real, size_t len)
{
    size_t best = 0;
    for (const char *p = known_prefixes; *p;) {
        size_t n = strcspn(p, " ");
        if (n <= len && n > best && memcmp(real, p, n) == 0)
            best = n;
        p += n;
        p += strspn(p, " ");
    }
    if (best)
        return best;
    size_t i = 0;
    while (i < len && i < GENERIC_PFX_MAX && is_letter((unsigned char)real[i]))
        i++;
    if (i > 0 && i < len && i < GENERIC_PFX_MAX && (real[i] == '_' || real[i] == '-'))
        return i + 1;
    return 0;
}

/* One candidate sentinel into `out` (room for real_len + 32 bytes + NUL). */
static int sentinel_once(struct rnd *r, char *out, size_t *out_len, const char *real,
                         size_t real_len, size_t pfx)
{
    unsigned long mbits = 0;
    size_t o = 0;
    int err = 0;
    memcpy(out, real, pfx);
    o = pfx;
    for (size_t i = pfx; i < real_len && err == 0; i++) {
        unsigned char c = (unsigned char)real[i];
        if (c >= '0' && c <= '9') {
            err = rnd_pick(r, digits, 10, &out[o++]);
            mbits += MBITS_DIGIT;
        } else if (c >= 'a' && c <= 'z') {
            err = rnd_pick(r, lower, 26, &out[o++]);
            mbits += MBITS_LETTER;
        } else if (c >= 'A' && c <= 'Z') {
            err = rnd_pick(r, upper, 26, &out[o++]);
            mbits += MBITS_LETTER;
        } else if (c == '-' || c == '_' || c == '.') {
            out[o++] = (char)c;
        } else {
            err = rnd_pick(r, alnum, 62, &out[o++]);
            mbits += MBITS_ALNUM;
        }
    }
    while (err == 0 && mbits < SENTINEL_MBITS) {
        err = rnd_pick(r, alnum, 62, &out[o++]);
        mbits += MBITS_ALNUM;
    }
    out[o] = '\0';
    *out_len = o;
    return err;
}

int al_sentinel_make(char **out, size_t *out_len, const char *real, size_t real_len)
{
    *out = NULL;
    *out_len = 0;
    if (real_len == 0 || real_len > AL_CRED_VALUE_MAX)
        return al_error_set(AL_EINVAL, "sentinel: a credential value must have 1 to %d bytes",
                            AL_CRED_VALUE_MAX);
    /* at most 128 / log2(62) = 22 bytes are appended */
    char *s = malloc(real_len + 32 + 1);
    if (!s)
        return AL_ENOMEM;
    struct rnd r = {.pos = 0, .len = 0};
    size_t pfx = sentinel_prefix_len(real, real_len), n = 0;
    int err = 0;
    /* A sentinel must differ from the real value, and should not contain it
     * either (a scan of the sandbox would find it); values made only of kept
     * bytes (a bare prefix, "-") cannot avoid the latter. */
    for (int tries = 0;; tries++) {
        err = sentinel_once(&r, s, &n, real, real_len, pfx);
        if (err < 0)
            break;
        if (n == real_len && memcmp(s, real, n) == 0)
            continue;
        if (tries < 64 && memmem(s, n, real, real_len))
            continue;
        break;
    }
    explicit_bzero(&r, sizeof(r));
    if (err < 0) {
        free(s);
        return err;
    }
    *out = s;
    *out_len = n;
    return 0;
}

/* ---- credential sets ----------------------------------------------------- */

static void cred_free(struct al_cred *c)
{
    if (c->real) {
        explicit_bzero(c->real, c->real_len);
        free(c->real);
    }
    free(c->name);
    free(c->sentinel);
    al_strlist_free(&c->inject_hosts);
    memset(c, 0, sizeof(*c));
}

void al_credset_free(struct al_credset *set)
{
    for (size_t i = 0; i < set->len; i++)
        cred_free(&set->v[i]);
    free(set->v);
    set->v = NULL;
    set->len = 0;
}

static int strlist_copy(struct al_strlist *dst, const struct al_strlist *src)
{
    *dst = (struct al_strlist)AL_STRLIST_INIT;
    for (size_t i = 0; src && i < src->len; i++) {
        if (al_strlist_push(dst, src->items[i]) < 0) {
            al_strlist_free(dst);
            return AL_ENOMEM;
        }
    }
    return 0;
}

static int url_safe(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!(is_letter(c) || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
              c == '~'))
            return 0;
    }
    return 1;
}

/* Whether `s` can join `set` as a sentinel: no sentinel of the set contains
 * it or is contained in it (so matches never nest, see the stream). */
static int sentinel_fits(const struct al_credset *set, const char *s, size_t n)
{
    for (size_t i = 0; i < set->len; i++) {
        const struct al_cred *c = &set->v[i];
        if (n <= c->sentinel_len ? memmem(c->sentinel, c->sentinel_len, s, n) != NULL
                                 : memmem(s, n, c->sentinel, c->sentinel_len) != NULL)
            return 0;
    }
    return 1;
}

int al_credset_add(struct al_credset *set, const char *name, const char *real, size_t real_len,
                   const struct al_strlist *inject_hosts, const char *sentinel)
{
    struct al_cred c = {0};
    int err = 0;
    if (!name || !*name)
        return al_error_set(AL_EINVAL, "credential without a name");
    if (real_len == 0 || real_len > AL_CRED_VALUE_MAX)
        return al_error_set(AL_EINVAL, "credential %s: the value must have 1 to %d bytes", name,
                            AL_CRED_VALUE_MAX);
    if (set->len >= AL_CRED_MAX)
        return al_error_set(AL_EINVAL, "credential %s: more than %d masked credentials", name,
                            AL_CRED_MAX);
    for (size_t i = 0; i < set->len; i++)
        if (strcmp(set->v[i].name, name) == 0)
            return al_error_set(AL_EINVAL, "credential %s is defined twice", name);

    if (sentinel) {
        size_t n = strlen(sentinel);
        if (n == 0 || !url_safe(sentinel) || (n == real_len && memcmp(sentinel, real, n) == 0))
            return al_error_set(AL_EINVAL,
                                "credential %s: a sentinel must be non-empty, URL-safe and "
                                "differ from the value",
                                name);
        if (!sentinel_fits(set, sentinel, n))
            return al_error_set(AL_EINVAL,
                                "credential %s: its sentinel contains or is contained in "
                                "another credential's sentinel",
                                name);
        c.sentinel = strdup(sentinel);
        c.sentinel_len = n;
        if (!c.sentinel) {
            err = AL_ENOMEM;
            goto out;
        }
    } else {
        /* a clash needs 2^-128 luck; try again rather than reason about it */
        for (int tries = 0; tries < 8; tries++) {
            free(c.sentinel);
            c.sentinel = NULL;
            if ((err = al_sentinel_make(&c.sentinel, &c.sentinel_len, real, real_len)) < 0)
                goto out;
            if (sentinel_fits(set, c.sentinel, c.sentinel_len))
                break;
            err = al_error_set(AL_EIO, "credential %s: no sentinel apart from the others", name);
        }
        if (err < 0)
            goto out;
    }

    c.name = strdup(name);
    c.real = malloc(real_len + 1);
    if (!c.name || !c.real) {
        err = AL_ENOMEM;
        goto out;
    }
    memcpy(c.real, real, real_len);
    c.real[real_len] = '\0';
    c.real_len = real_len;
    if ((err = strlist_copy(&c.inject_hosts, inject_hosts)) < 0)
        goto out;
    struct al_cred *v = realloc(set->v, (set->len + 1) * sizeof(*v));
    if (!v) {
        err = AL_ENOMEM;
        goto out;
    }
    set->v = v;
    set->v[set->len++] = c;
    return 0;
out:
    cred_free(&c);
    return err;
}

int al_credset_copy(struct al_credset *dst, const struct al_credset *src)
{
    dst->v = NULL;
    dst->len = 0;
    if (src->len == 0)
        return 0;
    dst->v = calloc(src->len, sizeof(*dst->v));
    if (!dst->v)
        return AL_ENOMEM;
    for (size_t i = 0; i < src->len; i++) {
        const struct al_cred *s = &src->v[i];
        struct al_cred *d = &dst->v[i];
        dst->len = i + 1;
        d->name = strdup(s->name);
        d->sentinel = strdup(s->sentinel);
        d->real = malloc(s->real_len + 1);
        if (!d->name || !d->sentinel || !d->real ||
            strlist_copy(&d->inject_hosts, &s->inject_hosts) < 0) {
            al_credset_free(dst);
            return AL_ENOMEM;
        }
        memcpy(d->real, s->real, s->real_len + 1);
        d->real_len = s->real_len;
        d->sentinel_len = s->sentinel_len;
    }
    return 0;
}

int al_credset_same_length(const struct al_credset *set, uint64_t inject_ok)
{
    for (size_t i = 0; i < set->len && i < 64; i++)
        if ((inject_ok >> i & 1) && set->v[i].sentinel_len != set->v[i].real_len)
            return 0;
    return 1;
}

/* ---- the scan ------------------------------------------------------------ */

/* What a scan looks for and what it puts in its place. */
enum scan_mode {
    SCAN_REQUEST = AL_SUBST_REQUEST,   /* sentinel -> real, checked against inject_ok */
    SCAN_RESPONSE = AL_SUBST_RESPONSE, /* real -> sentinel of the same length, or '*'s */
    SCAN_FILE = 3,                     /* real -> sentinel */
    SCAN_FIND = 4,                     /* sentinels, nothing replaced (first one reported) */
};

static const char *pat(const struct al_cred *c, enum scan_mode mode, size_t *len)
{
    if (mode == SCAN_REQUEST || mode == SCAN_FIND) {
        *len = c->sentinel_len;
        return c->sentinel;
    }
    *len = c->real_len;
    return c->real;
}

static size_t max_pattern(const struct al_credset *set, enum scan_mode mode)
{
    size_t m = 0, n;
    for (size_t i = 0; i < set->len; i++) {
        pat(&set->v[i], mode, &n);
        if (n > m)
            m = n;
    }
    return m;
}

static size_t find_from(const char *w, size_t len, size_t from, const char *p, size_t plen)
{
    if (from >= len)
        return NONE;
    const char *hit = memmem(w + from, len - from, p, plen);
    return hit ? (size_t)(hit - w) : NONE;
}

/* Whether a pattern longer than `min` begins at w[q] and runs past `len`. */
static int partial_at(const struct al_credset *set, enum scan_mode mode, const char *w, size_t len,
                      size_t q, size_t min)
{
    for (size_t j = 0; j < set->len; j++) {
        size_t plen;
        const char *p = pat(&set->v[j], mode, &plen);
        if (plen > min && q + plen > len && memcmp(w + q, p, len - q) == 0)
            return 1;
    }
    return 0;
}

static int emit_replacement(struct al_buf *out, const struct al_cred *c, enum scan_mode mode)
{
    switch (mode) {
    case SCAN_REQUEST:
        return al_buf_append(out, c->real, c->real_len);
    case SCAN_FILE:
        return al_buf_append(out, c->sentinel, c->sentinel_len);
    case SCAN_RESPONSE:
        if (c->sentinel_len == c->real_len)
            return al_buf_append(out, c->sentinel, c->sentinel_len);
        for (size_t k = 0; k < c->real_len; k += 32) {
            size_t n = c->real_len - k < 32 ? c->real_len - k : 32;
            int err = al_buf_append(out, "********************************", n);
            if (err < 0)
                return err;
        }
        return 0;
    case SCAN_FIND:
        break;
    }
    return 0;
}

struct scan_result {
    size_t consumed; /* bytes of w decided; the rest may begin a match */
    uint64_t used;
    size_t culprit; /* SCAN_REQUEST: forbidden credential; SCAN_FIND: first found */
    int found;      /* SCAN_FIND */
};

/* Scans w[0..len) and appends the rewrite to `out` (SCAN_FIND: appends
 * nothing, stops at the first sentinel). Unless `final`, stops before a
 * position where a pattern could still begin with bytes not seen yet.
 * 0, AL_EPERM (SCAN_REQUEST, res->culprit) or an al_buf error; on error
 * part of the rewrite may have been appended (the caller rolls back). */
static int scan(const struct al_credset *set, enum scan_mode mode, uint64_t inject_ok,
                const char *w, size_t len, int final, struct al_buf *out, struct scan_result *res)
{
    size_t next[SCAN_MAX], plen[SCAN_MAX];
    const char *pats[SCAN_MAX];
    size_t pos = 0, maxlen = 0, n = set->len < SCAN_MAX ? set->len : SCAN_MAX;
    int err = 0;
    res->consumed = 0;
    res->found = 0;
    for (size_t j = 0; j < n; j++) {
        pats[j] = pat(&set->v[j], mode, &plen[j]);
        next[j] = find_from(w, len, 0, pats[j], plen[j]);
        if (plen[j] > maxlen)
            maxlen = plen[j];
    }
    for (;;) {
        size_t m = NONE, bj = 0;
        for (size_t j = 0; j < n; j++) {
            if (next[j] != NONE && next[j] < pos)
                next[j] = find_from(w, len, pos, pats[j], plen[j]);
            if (next[j] < m || (next[j] == m && m != NONE && plen[j] > plen[bj])) {
                m = next[j];
                bj = j;
            }
        }
        size_t stop = NONE;
        if (!final && maxlen > 0) {
            size_t tail = len > maxlen - 1 ? len - (maxlen - 1) : 0;
            size_t end = m == NONE ? len : m;
            for (size_t q = pos > tail ? pos : tail; q < end && stop == NONE; q++)
                if (partial_at(set, mode, w, len, q, 0))
                    stop = q;
            if (stop == NONE && m != NONE && partial_at(set, mode, w, len, m, plen[bj]))
                stop = m;
        }
        if (stop != NONE || m == NONE) {
            size_t end = stop != NONE ? stop : len;
            if (mode != SCAN_FIND && (err = al_buf_append(out, w + pos, end - pos)) < 0)
                return err;
            res->consumed = end;
            return 0;
        }
        if (mode == SCAN_FIND) {
            res->found = 1;
            res->culprit = bj;
            res->consumed = len;
            return 0;
        }
        if (mode == SCAN_REQUEST && !(inject_ok >> bj & 1)) {
            res->culprit = bj;
            return al_error_set(AL_EPERM, "credential %s is not allowed here", set->v[bj].name);
        }
        if ((err = al_buf_append(out, w + pos, m - pos)) < 0 ||
            (err = emit_replacement(out, &set->v[bj], mode)) < 0)
            return err;
        if (bj < AL_CRED_MAX)
            res->used |= (uint64_t)1 << bj;
        pos = m + plen[bj];
    }
}

/* Drops what was appended to `out` after `len` bytes, wiping it. */
static void buf_truncate(struct al_buf *out, size_t len)
{
    if (out->ptr && out->len > len) {
        explicit_bzero(out->ptr + len, out->len - len);
        out->len = len;
    }
}

/* ---- heads and Basic credentials ----------------------------------------- */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Where the base64 token of an "Authorization: Basic" or
 * "Proxy-Authorization: Basic" line lies (line without its CR LF): 1 and
 * [*tok, *tok + *tok_len), else 0. Header name and scheme case-insensitive,
 * optional whitespace around them, nothing but whitespace after the token. */
static int basic_token(const char *line, size_t len, size_t *tok, size_t *tok_len)
{
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return 0;
    size_t nlen = (size_t)(colon - line);
    while (nlen > 0 && is_ows(line[nlen - 1]))
        nlen--;
    if (!((nlen == 13 && strncasecmp(line, "authorization", 13) == 0) ||
          (nlen == 19 && strncasecmp(line, "proxy-authorization", 19) == 0)))
        return 0;
    size_t i = (size_t)(colon - line) + 1;
    while (i < len && is_ows(line[i]))
        i++;
    if (len - i < 6 || strncasecmp(line + i, "basic", 5) != 0 || !is_ows(line[i + 5]))
        return 0;
    i += 5;
    while (i < len && is_ows(line[i]))
        i++;
    size_t start = i;
    while (i < len && !is_ows(line[i]))
        i++;
    size_t end = i;
    while (i < len && is_ows(line[i]))
        i++;
    if (i != len || end == start)
        return 0;
    *tok = start;
    *tok_len = end - start;
    return 1;
}

/* Decodes a Basic token (padding may be left out). 0 and *out (caller wipes
 * and frees), AL_EINVAL when it is not base64, AL_ENOMEM. */
static int basic_decode(unsigned char **out, size_t *out_len, const char *tok, size_t len)
{
    *out = NULL;
    if (len % 4 == 1)
        return AL_EINVAL;
    size_t padded = len + (4 - len % 4) % 4;
    char *t = malloc(padded);
    if (!t)
        return AL_ENOMEM;
    memcpy(t, tok, len);
    memset(t + len, '=', padded - len);
    unsigned char *d = malloc(padded / 4 * 3 + 1);
    long n = d ? al_base64_decode(d, t, padded) : AL_ENOMEM;
    free(t);
    if (n < 0) {
        free(d);
        al_error_clear();
        return (int)n;
    }
    *out = d;
    *out_len = (size_t)n;
    return 0;
}

static void wipe_free(void *p, size_t len)
{
    if (p) {
        explicit_bzero(p, len);
        free(p);
    }
}

/* Rewrites one Basic token into `out` when its decoded form holds a
 * sentinel: 1 (rewritten), 0 (not base64 or no sentinel: nothing appended),
 * AL_EPERM (res->culprit) or an error. */
static int basic_rewrite(const struct al_credset *set, uint64_t inject_ok, const char *tok,
                         size_t len, struct al_buf *out, struct scan_result *res)
{
    unsigned char *dec = NULL;
    size_t dlen = 0;
    struct al_buf plain;
    char *enc = NULL;
    size_t enc_size = 0;
    int err = basic_decode(&dec, &dlen, tok, len);
    if (err == AL_EINVAL)
        return 0;
    if (err < 0)
        return err;
    struct scan_result found = {0};
    scan(set, SCAN_FIND, 0, (const char *)dec, dlen, 1, NULL, &found);
    if (!found.found) {
        wipe_free(dec, dlen);
        return 0;
    }
    al_buf_init(&plain, SIZE_MAX / 2);
    if ((err = scan(set, SCAN_REQUEST, inject_ok, (const char *)dec, dlen, 1, &plain, res)) < 0)
        goto out;
    enc_size = AL_BASE64_ENCODED_SIZE(plain.len);
    if (!(enc = malloc(enc_size))) {
        err = AL_ENOMEM;
        goto out;
    }
    long n = al_base64_encode_buf(enc, enc_size, (const unsigned char *)plain.ptr, plain.len);
    if (n < 0) {
        err = (int)n;
        goto out;
    }
    if ((err = al_buf_append(out, enc, (size_t)n)) < 0)
        goto out;
    err = 1;
out:
    wipe_free(enc, enc_size);
    wipe_free(dec, dlen);
    al_buf_wipe_free(&plain);
    return err;
}

/* AL_EPERM (*culprit) when data[0..len) holds the sentinel of a credential
 * whose bit is clear, else 0. */
static int forbidden_in(const struct al_credset *set, uint64_t inject_ok, const char *data,
                        size_t len, size_t *culprit)
{
    for (size_t i = 0; i < set->len && i < AL_CRED_MAX; i++) {
        const struct al_cred *c = &set->v[i];
        if (!(inject_ok >> i & 1) && memmem(data, len, c->sentinel, c->sentinel_len)) {
            *culprit = i;
            return al_error_set(AL_EPERM, "credential %s is not allowed here", c->name);
        }
    }
    return 0;
}

/* The end of the line starting at `start` (after its '\n', or `len`). */
static size_t line_end(const char *head, size_t len, size_t start)
{
    const char *nl = memchr(head + start, '\n', len - start);
    return nl ? (size_t)(nl - head) + 1 : len;
}

/* The line's length without its "\n" or "\r\n". */
static size_t line_body(const char *line, size_t n)
{
    if (n > 0 && line[n - 1] == '\n')
        n--;
    if (n > 0 && line[n - 1] == '\r')
        n--;
    return n;
}

int al_cred_subst_head(const struct al_credset *set, uint64_t inject_ok, const char *head,
                       size_t len, struct al_buf *out, uint64_t *used, size_t *culprit)
{
    struct al_buf tmp;
    struct scan_result res = {0};
    int err = 0;
    al_buf_init(&tmp, out->max);
    for (size_t s = 0; s < len;) {
        size_t e = line_end(head, len, s);
        const char *line = head + s;
        size_t tok = 0, tok_len = 0, body = line_body(line, e - s);
        int rewritten = 0;
        if (set->len > 0 && basic_token(line, body, &tok, &tok_len)) {
            size_t mark = tmp.len;
            if ((err = scan(set, SCAN_REQUEST, inject_ok, line, tok, 1, &tmp, &res)) < 0)
                goto out;
            if ((err = basic_rewrite(set, inject_ok, line + tok, tok_len, &tmp, &res)) < 0)
                goto out;
            rewritten = err;
            err = 0;
            /* the token's own text is replaced by the new encoding: a
             * forbidden sentinel spelt out in it still refuses the request */
            if (rewritten &&
                (err = forbidden_in(set, inject_ok, line + tok, tok_len, &res.culprit)) < 0)
                goto out;
            if (rewritten) {
                size_t after = tok + tok_len;
                err =
                    scan(set, SCAN_REQUEST, inject_ok, line + after, e - s - after, 1, &tmp, &res);
                if (err < 0)
                    goto out;
            } else {
                buf_truncate(&tmp, mark);
            }
        }
        if (!rewritten &&
            (err = scan(set, SCAN_REQUEST, inject_ok, line, e - s, 1, &tmp, &res)) < 0)
            goto out;
        s = e;
    }
    err = al_buf_append(out, tmp.ptr ? tmp.ptr : "", tmp.len);
out:
    if (used)
        *used = err == 0 ? res.used : 0;
    if (err == AL_EPERM && culprit)
        *culprit = res.culprit;
    al_buf_wipe_free(&tmp);
    return err;
}

long al_cred_find_sentinel(const struct al_credset *set, const char *data, size_t len)
{
    long best = -1;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < set->len && i < AL_CRED_MAX; i++)
        if (memmem(data, len, set->v[i].sentinel, set->v[i].sentinel_len)) {
            best = (long)i;
            break;
        }
    /* Basic credentials: base64 hides a sentinel from the scan above. */
    for (size_t s = 0; s < len && set->len > 0;) {
        size_t e = line_end(data, len, s), tok, tok_len;
        unsigned char *dec = NULL;
        size_t dlen = 0;
        if (basic_token(data + s, line_body(data + s, e - s), &tok, &tok_len) &&
            basic_decode(&dec, &dlen, data + s + tok, tok_len) == 0) {
            for (size_t i = 0; i < set->len && i < AL_CRED_MAX; i++)
                if ((best < 0 || (long)i < best) &&
                    memmem(dec, dlen, set->v[i].sentinel, set->v[i].sentinel_len))
                    best = (long)i;
            wipe_free(dec, dlen);
        }
        s = e;
    }
    return best;
}

/* ---- streams ------------------------------------------------------------- */

static void b64_set_free(struct al_credset *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->len; i++) {
        if (b->v[i].sentinel_len == 0 && b->v[i].real) { /* a base64 form: owned */
            explicit_bzero(b->v[i].real, b->v[i].real_len);
            free(b->v[i].real);
        }
    }
    free(b->v);
    free(b);
}

/* The base64 form of `real` preceded by `k` bytes (0..2): the characters
 * whose six bits all come from `real`, into *out (caller wipes and frees).
 * 0 (*out NULL when shorter than AL_CRED_B64_MIN), AL_ENOMEM. */
static int b64_form(const struct al_cred *c, size_t k, char **out, size_t *out_len)
{
    size_t in_len = k + c->real_len + 2, enc_size = AL_BASE64_ENCODED_SIZE(in_len);
    unsigned char *in = calloc(1, in_len);
    char *enc = malloc(enc_size);
    int err = 0;
    *out = NULL;
    *out_len = 0;
    if (!in || !enc) {
        err = AL_ENOMEM;
        goto out;
    }
    memcpy(in + k, c->real, c->real_len);
    long n = al_base64_encode_buf(enc, enc_size, in, in_len);
    if (n < 0) {
        err = (int)n;
        goto out;
    }
    /* character i holds bits [6i, 6i + 6); the value has [8k, 8(k + len)) */
    size_t first = (8 * k + 5) / 6, end = 8 * (k + c->real_len) / 6;
    if (end > first && end - first >= AL_CRED_B64_MIN) {
        *out_len = end - first;
        memmove(enc, enc + first, *out_len);
        enc[*out_len] = '\0';
        *out = enc;
        enc = NULL;
    }
out:
    wipe_free(in, in_len);
    wipe_free(enc, enc_size);
    return err;
}

/* `set` followed by the base64 forms of its real values (see
 * struct al_subst_stream). 0 or AL_ENOMEM. */
static int b64_set_make(struct al_credset **out, const struct al_credset *set)
{
    size_t n = set->len < AL_CRED_MAX ? set->len : AL_CRED_MAX;
    struct al_credset *b = calloc(1, sizeof(*b));
    int err = 0;
    *out = NULL;
    if (!b || !(b->v = calloc(n * 4 + 1, sizeof(*b->v)))) {
        free(b);
        return AL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        b->v[b->len++] = set->v[i];
    for (size_t i = 0; i < n && err == 0; i++) {
        for (size_t k = 0; k < 3 && err == 0; k++) {
            char *form = NULL;
            size_t flen = 0;
            if ((err = b64_form(&set->v[i], k, &form, &flen)) < 0 || !form)
                continue;
            struct al_cred *e = &b->v[b->len++];
            e->name = set->v[i].name;
            e->real = form;
            e->real_len = flen;
            e->sentinel = NULL; /* sentinel_len 0: masked with '*'s */
            e->sentinel_len = 0;
        }
    }
    if (err < 0) {
        b64_set_free(b);
        return err;
    }
    *out = b;
    return 0;
}

int al_subst_stream_init(struct al_subst_stream *st, const struct al_credset *set,
                         enum al_subst_dir dir, uint64_t inject_ok)
{
    st->b64 = NULL;
    st->carry = NULL;
    if (dir == AL_SUBST_RESPONSE && set->len > 0) {
        if (b64_set_make(&st->b64, set) < 0)
            return AL_ENOMEM;
        set = st->b64;
    }
    size_t maxlen = max_pattern(set, (enum scan_mode)dir);
    st->set = set;
    st->dir = dir;
    st->inject_ok = inject_ok;
    st->used = 0;
    st->carry_len = 0;
    st->carry_cap = maxlen > 0 ? maxlen - 1 : 0;
    st->carry = malloc(st->carry_cap + 1);
    if (!st->carry) {
        b64_set_free(st->b64);
        st->b64 = NULL;
        return AL_ENOMEM;
    }
    return 0;
}

/* Holds w[from..len) back for the next call. */
static void keep_carry(struct al_subst_stream *st, const char *w, size_t len, size_t from)
{
    size_t n = len - from;
    if (n > st->carry_cap) /* cannot happen: a held-back run is a proper prefix */
        n = st->carry_cap;
    memmove(st->carry, w + len - n, n);
    if (n < st->carry_len)
        explicit_bzero(st->carry + n, st->carry_len - n);
    st->carry_len = n;
}

int al_subst_stream_feed(struct al_subst_stream *st, const char *data, size_t len,
                         struct al_buf *out, size_t *culprit)
{
    size_t mark = out->len, wlen = st->carry_len + len;
    char *w = NULL;
    const char *win = data ? data : "";
    struct scan_result res = {0};
    int err;
    if (!st->carry || (st->dir != AL_SUBST_REQUEST && st->dir != AL_SUBST_RESPONSE))
        return al_error_set(AL_EINVAL, "credential stream used after an error");
    if (st->carry_len > 0) {
        if (!(w = malloc(wlen + 1)))
            return AL_ENOMEM;
        memcpy(w, st->carry, st->carry_len);
        if (len)
            memcpy(w + st->carry_len, data, len);
        win = w;
    }
    err = scan(st->set, (enum scan_mode)st->dir, st->inject_ok, win, wlen, 0, out, &res);
    if (err == 0) {
        keep_carry(st, win, wlen, res.consumed);
        st->used |= res.used;
    } else {
        buf_truncate(out, mark);
        if (err == AL_EPERM) {
            if (culprit)
                *culprit = res.culprit;
            /* the stream is unusable now */
            explicit_bzero(st->carry, st->carry_len);
            st->carry_len = 0;
            st->dir = 0;
        }
    }
    wipe_free(w, wlen);
    return err;
}

int al_subst_stream_finish(struct al_subst_stream *st, struct al_buf *out)
{
    size_t mark = out->len;
    struct scan_result res = {0};
    if (!st->carry || (st->dir != AL_SUBST_REQUEST && st->dir != AL_SUBST_RESPONSE))
        return al_error_set(AL_EINVAL, "credential stream used after an error");
    /* The held-back bytes are a proper prefix of one pattern. A request's
     * patterns are sentinels, which never contain one another, so no match
     * is left in them; a response's real values may (one may be a prefix of
     * another), so the final scan can still re-mask a shorter one. */
    int err = scan(st->set, (enum scan_mode)st->dir, st->inject_ok, st->carry, st->carry_len, 1,
                   out, &res);
    if (err < 0) {
        buf_truncate(out, mark);
        return err;
    }
    st->used |= res.used;
    explicit_bzero(st->carry, st->carry_len);
    st->carry_len = 0;
    return 0;
}

void al_subst_stream_free(struct al_subst_stream *st)
{
    if (st->carry) {
        explicit_bzero(st->carry, st->carry_cap + 1);
        free(st->carry);
    }
    st->carry = NULL;
    st->carry_len = 0;
    b64_set_free(st->b64);
    st->b64 = NULL;
}

/* ---- credential files ---------------------------------------------------- */

/* Adds the secret w[0..n) unless an equal one was added by this call
 * (credentials first..set->len). */
static int file_secret(struct al_credset *set, size_t first, const char *path, const char *v,
                       size_t n, const struct al_strlist *inject_hosts)
{
    for (size_t i = first; i < set->len; i++)
        if (set->v[i].real_len == n && memcmp(set->v[i].real, v, n) == 0)
            return 0;
    size_t k = set->len - first + 1;
    size_t nsize = strlen(path) + 32;
    char *name = malloc(nsize);
    if (!name)
        return AL_ENOMEM;
    int w = k == 1 ? snprintf(name, nsize, "file:%s", path)
                   : snprintf(name, nsize, "file:%s#%zu", path, k);
    int err = (w < 0 || (size_t)w >= nsize)
                  ? al_error_set(AL_EINVAL, "credential file %s: name too long", path)
                  : al_credset_add(set, name, v, n, inject_hosts, NULL);
    free(name);
    if (err == AL_EINVAL)
        err = al_error_set(AL_EINVAL, "credential file %s: %s", path, al_error_last());
    return err;
}

/* Adds every distinct secret `extract` finds in content (NUL-terminated copy,
 * `len` bytes). */
static int file_extract(struct al_credset *set, size_t first, const char *path, const char *content,
                        size_t len, const char *extract, const struct al_strlist *inject_hosts)
{
    regex_t re;
    int rc = regcomp(&re, extract, REG_EXTENDED | REG_NEWLINE);
    if (rc != 0) {
        char msg[256];
        regerror(rc, &re, msg, sizeof(msg));
        return al_error_set(AL_EINVAL, "credential file %s: bad extract expression: %s", path, msg);
    }
    int err = 0;
    size_t off = 0;
    while (off <= len) {
        regmatch_t m[2];
        m[0].rm_so = (regoff_t)off;
        m[0].rm_eo = (regoff_t)len;
        if (regexec(&re, content, 2, m, REG_STARTEND) != 0)
            break;
        regmatch_t g = re.re_nsub >= 1 && m[1].rm_so >= 0 ? m[1] : m[0];
        if (g.rm_eo > g.rm_so && (err = file_secret(set, first, path, content + g.rm_so,
                                                    (size_t)(g.rm_eo - g.rm_so), inject_hosts)) < 0)
            break;
        off = m[0].rm_eo > m[0].rm_so ? (size_t)m[0].rm_eo : (size_t)m[0].rm_eo + 1;
    }
    regfree(&re);
    if (err == 0 && set->len == first)
        err = al_error_set(AL_EINVAL,
                           "credential file %s: the extract expression matches no "
                           "secret",
                           path);
    return err;
}

int al_cred_mask_file(struct al_credset *set, const char *path, const char *content, size_t len,
                      const char *extract, const struct al_strlist *inject_hosts, char **out,
                      size_t *out_len)
{
    size_t first = set->len;
    char *copy = NULL;
    struct al_buf o;
    struct scan_result res = {0};
    int err = 0;
    *out = NULL;
    *out_len = 0;
    al_buf_init(&o, SIZE_MAX / 2);
    if (len > MASK_FILE_MAX)
        return al_error_set(AL_EINVAL, "credential file %s is over %d bytes", path, MASK_FILE_MAX);
    if (!extract) {
        size_t n = len;
        if (n > 0 && content[n - 1] == '\n')
            n--;
        if (n > 0 && content[n - 1] == '\r' && n + 1 == len)
            n--;
        if (n == 0)
            return al_error_set(AL_EINVAL, "credential file %s is empty", path);
        if ((err = file_secret(set, first, path, content, n, inject_hosts)) < 0)
            goto out;
    } else {
        if (!(copy = malloc(len + 1))) {
            err = AL_ENOMEM;
            goto out;
        }
        if (len)
            memcpy(copy, content, len);
        copy[len] = '\0';
        if ((err = file_extract(set, first, path, copy, len, extract, inject_hosts)) < 0)
            goto out;
    }
    /* every occurrence of each secret, not only where the expression found it */
    struct al_credset mine = {set->v + first, set->len - first};
    if ((err = scan(&mine, SCAN_FILE, 0, content, len, 1, &o, &res)) < 0)
        goto out;
    *out_len = o.len;
    if (!(*out = al_buf_detach(&o)))
        err = AL_ENOMEM;
out:
    if (err < 0) {
        while (set->len > first)
            cred_free(&set->v[--set->len]);
        if (set->len == 0) {
            free(set->v);
            set->v = NULL;
        }
        *out_len = 0;
    }
    wipe_free(copy, len + 1);
    al_buf_wipe_free(&o);
    return err;
}
