/* The leak guard's scanner: fingerprint sets of real credentials (built by the
 * key holder, loaded by the scanning process) and the well-known secret
 * formats, on one buffer or as a stream. Scheme and limits: gp_scan.h. */
#include "airlock/gp_scan.h"
#include "airlock/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC       "ALKSCAN1"
#define MAGIC_LEN   8
#define KEY_LEN     16
#define SALT_LEN    32
#define DIGEST_LEN  32
#define HEADER_LEN  (MAGIC_LEN + KEY_LEN + SALT_LEN + 4)
#define BLOCK       16  /* AES block; the longest fingerprinted window */
#define BATCH       128 /* blocks per AES call */
#define CANNOT_SCAN "data the leak guard could not scan"
#define CREDENTIAL  "an upstream credential held by airlock"

struct fp_entry {
    uint64_t fp;
    uint32_t secret;
    uint16_t offset; /* of the block in the secret */
    uint16_t len;    /* of the secret: entries of one length form a group */
};

struct secret_rec {
    uint16_t len;
    unsigned char digest[DIGEST_LEN];
};

/* One per distinct secret length: blocks of k bytes every `step` bytes. */
struct group {
    uint16_t len, k, step;
};

struct gp_secretset {
    unsigned char key[KEY_LEN];
    unsigned char salt[SALT_LEN];
    EVP_CIPHER *aes; /* AES-128-ECB and SHA-256, fetched at load */
    EVP_MD *sha256;
    size_t nsecrets;
    struct secret_rec *secrets;
    size_t ngroups;
    struct group *groups;
    size_t nentries;
    struct fp_entry *entries; /* sorted by fp */
    uint32_t *bucket;         /* entries with fp >> shift == b: bucket[b]..bucket[b + 1] */
    unsigned shift;
    uint64_t *filter; /* bit fp >> fshift set when some entry has that prefix */
    unsigned fshift;
    size_t max_len;
};

/* 16 lanes of bytes (GCC/clang vector extension: SSE2, NEON or scalar). */
typedef unsigned char v16 __attribute__((vector_size(16)));

#define VLOOK 11 /* the filter reads bytes p[0..VLOOK) of each position */

static v16 vload(const unsigned char *p)
{
    v16 v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static v16 vsplat(unsigned char c)
{
    v16 v;
    memset(&v, c, sizeof(v));
    return v;
}

static int vany(v16 m)
{
    uint64_t w[2];
    memcpy(w, &m, sizeof(w));
    return (w[0] | w[1]) != 0;
}

static size_t block_len(size_t len)
{
    return len < BLOCK ? len : BLOCK;
}

static uint64_t get_le64(const unsigned char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
#else
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
#endif
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes the 16-byte AES input for the k-byte block at p into dst. */
static void block_load(unsigned char *dst, const unsigned char *p, size_t k)
{
    if (k == BLOCK) {
        memcpy(dst, p, BLOCK);
        return;
    }
    memcpy(dst, p, k);
    memset(dst + k, (int)k, BLOCK - k);
}

/* fp[i] = fingerprint of blocks[i] (n <= BATCH, already padded); blocks is
 * left as it was. 0 or AL_ERROR. */
static int fp_batch(EVP_CIPHER_CTX *aes, uint64_t *fp, const unsigned char *blocks, size_t n)
{
    unsigned char enc[BATCH * BLOCK];
    int outl = 0;
    if (!EVP_EncryptUpdate(aes, enc, &outl, blocks, (int)(n * BLOCK)) || (size_t)outl != n * BLOCK)
        return al_error_set(AL_ERROR, "AES failed");
    for (size_t i = 0; i < n; i++)
        fp[i] = get_le64(enc + i * BLOCK) ^ get_le64(blocks + i * BLOCK);
    return 0;
}

static EVP_CIPHER_CTX *aes_new(EVP_CIPHER *cipher, const unsigned char *key)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c && EVP_EncryptInit_ex2(c, cipher, key, NULL, NULL) && EVP_CIPHER_CTX_set_padding(c, 0))
        return c;
    EVP_CIPHER_CTX_free(c);
    return NULL;
}

static int secret_digest(unsigned char *out, const EVP_MD *sha256, const unsigned char *salt,
                         const void *data, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = md && EVP_DigestInit_ex(md, sha256, NULL) && EVP_DigestUpdate(md, salt, SALT_LEN) &&
             EVP_DigestUpdate(md, data, len) && EVP_DigestFinal_ex(md, out, &n) && n == DIGEST_LEN;
    EVP_MD_CTX_free(md);
    return ok ? 0 : al_error_set(AL_ERROR, "SHA-256 failed");
}

/* ---- key holder: building the blob ---- */

/* Appends one secret's record: length, digest, fingerprints of every block. */
static int build_one(struct al_buf *out, EVP_CIPHER_CTX *aes, const unsigned char *salt,
                     const unsigned char *sec, size_t len)
{
    unsigned char blocks[BATCH * BLOCK], rec[2 + DIGEST_LEN], le[8 * BATCH];
    uint64_t fp[BATCH];
    size_t k = block_len(len), nblocks = len - k + 1;
    int err;
    rec[0] = (unsigned char)len;
    rec[1] = (unsigned char)(len >> 8);
    if ((err = secret_digest(rec + 2, EVP_sha256(), salt, sec, len)) < 0 ||
        (err = al_buf_append(out, rec, sizeof(rec))) < 0)
        goto out;
    for (size_t j = 0; j < nblocks;) {
        size_t n = nblocks - j < BATCH ? nblocks - j : BATCH;
        for (size_t i = 0; i < n; i++)
            block_load(blocks + i * BLOCK, sec + j + i, k);
        if ((err = fp_batch(aes, fp, blocks, n)) < 0)
            goto out;
        for (size_t i = 0; i < n; i++)
            put_le64(le + 8 * i, fp[i]);
        if ((err = al_buf_append(out, le, 8 * n)) < 0)
            goto out;
        j += n;
    }
out:
    OPENSSL_cleanse(blocks, sizeof(blocks));
    return err;
}

int gp_secretset_build(struct al_buf *out, const char *const *secrets, size_t n)
{
    unsigned char head[HEADER_LEN];
    size_t start = out->len, count = 0, skipped = 0;
    EVP_CIPHER *cipher = NULL;
    EVP_CIPHER_CTX *aes = NULL;
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(secrets[i]);
        if (len > GP_SECRET_MAX)
            return al_error_set(AL_ETOOBIG, "secret %zu is longer than %d bytes", i, GP_SECRET_MAX);
        if (len < GP_SECRET_MIN)
            skipped++;
        else
            count++;
    }
    if (count > GP_SECRETSET_MAX)
        return al_error_set(AL_ETOOBIG, "more than %d secrets", GP_SECRETSET_MAX);
    memcpy(head, MAGIC, MAGIC_LEN);
    if (RAND_bytes(head + MAGIC_LEN, KEY_LEN + SALT_LEN) != 1)
        return al_error_set(AL_ERROR, "no randomness for the fingerprint key");
    for (int i = 0; i < 4; i++)
        head[MAGIC_LEN + KEY_LEN + SALT_LEN + i] = (unsigned char)(count >> (8 * i));
    if (!(cipher = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL)) ||
        !(aes = aes_new(cipher, head + MAGIC_LEN))) {
        err = al_error_set(AL_ERROR, "AES-128 unavailable");
        goto out;
    }
    if ((err = al_buf_append(out, head, sizeof(head))) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(secrets[i]);
        if (len >= GP_SECRET_MIN && (err = build_one(out, aes, head + MAGIC_LEN + KEY_LEN,
                                                     (const unsigned char *)secrets[i], len)) < 0)
            goto out;
    }
out:
    if (err < 0 && out->ptr) {
        out->len = start;
        out->ptr[start] = '\0';
    }
    OPENSSL_cleanse(head, sizeof(head));
    EVP_CIPHER_CTX_free(aes);
    EVP_CIPHER_free(cipher);
    return err < 0 ? err : skipped > INT_MAX ? INT_MAX : (int)skipped;
}

/* ---- scanner side: loading ---- */

static int entry_cmp(const void *a, const void *b)
{
    const struct fp_entry *x = a, *y = b;
    return x->fp < y->fp ? -1 : x->fp > y->fp;
}

/* Builds the bucket index over the sorted entries (about one entry per
 * bucket) and a filter with about 32 bits per entry, so that the scan's
 * lookups mostly end on one well-predicted bit test. */
static int index_build(gp_secretset *s)
{
    unsigned bits = 4, fbits = 6;
    while (bits < 20 && ((size_t)1 << bits) < s->nentries)
        bits++;
    while (fbits < 24 && ((size_t)1 << fbits) < 32 * s->nentries)
        fbits++;
    size_t nb = (size_t)1 << bits;
    s->shift = 64 - bits;
    s->fshift = 64 - fbits;
    if (!(s->bucket = calloc(nb + 1, sizeof(*s->bucket))) ||
        !(s->filter = calloc((size_t)1 << (fbits - 6), sizeof(*s->filter))))
        return AL_ENOMEM;
    for (size_t i = 0; i < s->nentries; i++) {
        uint64_t f = s->entries[i].fp >> s->fshift;
        s->filter[f >> 6] |= (uint64_t)1 << (f & 63);
    }
    for (size_t i = 0; i < s->nentries; i++)
        s->bucket[(s->entries[i].fp >> s->shift) + 1]++;
    for (size_t b = 0; b < nb; b++)
        s->bucket[b + 1] += s->bucket[b];
    return 0;
}

static void group_add(gp_secretset *s, size_t len)
{
    for (size_t g = 0; g < s->ngroups; g++)
        if (s->groups[g].len == len)
            return;
    size_t k = block_len(len);
    s->groups[s->ngroups++] = (struct group){(uint16_t)len, (uint16_t)k, (uint16_t)(len - k + 1)};
}

/* Parses the records after the header into s (arrays already sized for
 * `count` secrets and `nentries` entries, checked by load_sizes()). */
static void load_records(gp_secretset *s, const unsigned char *p, size_t count)
{
    size_t e = 0;
    for (size_t i = 0; i < count; i++) {
        size_t len = (size_t)p[0] | (size_t)p[1] << 8, k = block_len(len);
        s->secrets[i].len = (uint16_t)len;
        memcpy(s->secrets[i].digest, p + 2, DIGEST_LEN);
        p += 2 + DIGEST_LEN;
        for (size_t j = 0; j + k <= len; j++, p += 8)
            s->entries[e++] =
                (struct fp_entry){get_le64(p), (uint32_t)i, (uint16_t)j, (uint16_t)len};
        group_add(s, len);
        if (len > s->max_len)
            s->max_len = len;
    }
    s->nentries = e;
}

/* Walks the records without storing them: every length in range, every
 * record inside the blob, nothing after the last. Sets *entries. */
static int load_sizes(size_t *entries, const unsigned char *p, size_t len, size_t count)
{
    size_t off = HEADER_LEN;
    *entries = 0;
    for (size_t i = 0; i < count; i++) {
        if (len - off < 2)
            return al_error_set(AL_EINVAL, "fingerprint set truncated (secret %zu)", i);
        size_t l = (size_t)p[off] | (size_t)p[off + 1] << 8;
        if (l < GP_SECRET_MIN || l > GP_SECRET_MAX)
            return al_error_set(AL_EINVAL, "fingerprint set: bad length %zu", l);
        size_t nfp = l - block_len(l) + 1, rec = 2 + DIGEST_LEN + 8 * nfp;
        if (len - off < rec)
            return al_error_set(AL_EINVAL, "fingerprint set truncated (secret %zu)", i);
        off += rec;
        *entries += nfp;
    }
    if (off != len)
        return al_error_set(AL_EINVAL, "fingerprint set: %zu trailing bytes", len - off);
    return 0;
}

int gp_secretset_load(gp_secretset **out, const void *blob, size_t len)
{
    const unsigned char *p = blob;
    gp_secretset *s = NULL;
    size_t count = 0, nentries = 0;
    int err = 0;
    *out = NULL;
    if (len > GP_SECRETSET_BLOB_MAX)
        return al_error_set(AL_ETOOBIG, "fingerprint set larger than %zu bytes",
                            (size_t)GP_SECRETSET_BLOB_MAX);
    if (len < HEADER_LEN || memcmp(p, MAGIC, MAGIC_LEN) != 0)
        return al_error_set(AL_EINVAL, "not a fingerprint set");
    for (int i = 3; i >= 0; i--)
        count = count << 8 | p[MAGIC_LEN + KEY_LEN + SALT_LEN + i];
    if (count > GP_SECRETSET_MAX)
        return al_error_set(AL_EINVAL, "fingerprint set: %zu secrets", count);
    if ((err = load_sizes(&nentries, p, len, count)) < 0)
        return err;
    if (!(s = calloc(1, sizeof(*s)))) {
        err = AL_ENOMEM;
        goto out;
    }
    memcpy(s->key, p + MAGIC_LEN, KEY_LEN);
    memcpy(s->salt, p + MAGIC_LEN + KEY_LEN, SALT_LEN);
    s->nsecrets = count;
    if (count && (!(s->secrets = calloc(count, sizeof(*s->secrets))) ||
                  !(s->groups = calloc(count, sizeof(*s->groups))) ||
                  !(s->entries = calloc(nentries, sizeof(*s->entries))))) {
        err = AL_ENOMEM;
        goto out;
    }
    load_records(s, p + HEADER_LEN, count);
    if (count) {
        qsort(s->entries, s->nentries, sizeof(*s->entries), entry_cmp);
        if ((err = index_build(s)) < 0)
            goto out;
    }
    /* Fetched even for an empty set: the first load is where OpenSSL reads
     * its configuration and loads its provider. */
    if (!(s->aes = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL)) ||
        !(s->sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL))) {
        err = al_error_set(AL_ERROR, "AES-128 or SHA-256 unavailable");
        goto out;
    }
    *out = s;
    s = NULL;
out:
    gp_secretset_free(s);
    return err;
}

void gp_secretset_free(gp_secretset *s)
{
    if (!s)
        return;
    EVP_CIPHER_free(s->aes);
    EVP_MD_free(s->sha256);
    free(s->secrets);
    free(s->groups);
    free(s->entries);
    free(s->bucket);
    free(s->filter);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

size_t gp_secretset_count(const gp_secretset *s)
{
    return s ? s->nsecrets : 0;
}

/* ---- scanning one region ---- */

/* Secret `e->secret` at d[start..start + len)? Bounds checked by the caller. */
static int confirm(const gp_secretset *s, const struct fp_entry *e, const unsigned char *d)
{
    unsigned char dg[DIGEST_LEN];
    int err = secret_digest(dg, s->sha256, s->salt, d, e->len);
    if (err < 0)
        return err;
    return CRYPTO_memcmp(dg, s->secrets[e->secret].digest, DIGEST_LEN) == 0;
}

/* Looks up the fingerprint of the block at d[q..) of group g; confirms each
 * candidate occurrence that lies inside d[0..n). 1, 0 or a negative code. */
static inline int lookup(const gp_secretset *s, const struct group *g, uint64_t fp,
                         const unsigned char *d, size_t n, size_t q)
{
    uint64_t f = fp >> s->fshift;
    if (!(s->filter[f >> 6] >> (f & 63) & 1))
        return 0;
    size_t b = (size_t)(fp >> s->shift);
    for (uint32_t i = s->bucket[b]; i < s->bucket[b + 1]; i++) {
        const struct fp_entry *e = &s->entries[i];
        if (e->fp != fp || e->len != g->len || e->offset > q || q - e->offset > n - g->len)
            continue;
        int r = confirm(s, e, d + q - e->offset);
        if (r != 0)
            return r;
    }
    return 0;
}

/* Finds any secret of the set wholly inside d[0..n). */
static int scan_secrets(const gp_secretset *s, EVP_CIPHER_CTX *aes, const unsigned char *d,
                        size_t n)
{
    unsigned char blocks[BATCH * BLOCK];
    uint64_t fp[BATCH];
    size_t pos[BATCH];
    for (size_t gi = 0; gi < s->ngroups; gi++) {
        const struct group *g = &s->groups[gi];
        const size_t k = g->k, step = g->step;
        if (n < g->len)
            continue;
        /* Padding of a short block as a blend: bytes < k kept, the rest k. */
        v16 keep, pad;
        for (size_t i = 0; i < BLOCK; i++) {
            keep[i] = i < k ? 0xff : 0;
            pad[i] = i < k ? 0 : (unsigned char)k;
        }
        size_t q = 0, last = n - k;
        while (q <= last) {
            size_t nb = 0;
            for (; nb < BATCH && q <= last; nb++, q += step) {
                unsigned char *b = blocks + nb * BLOCK;
                pos[nb] = q;
                if (k == BLOCK) {
                    memcpy(b, d + q, BLOCK);
                } else if (n - q >= BLOCK) {
                    v16 v = (vload(d + q) & keep) | pad;
                    memcpy(b, &v, BLOCK);
                } else {
                    block_load(b, d + q, k);
                }
            }
            int r = fp_batch(aes, fp, blocks, nb);
            for (size_t i = 0; r == 0 && i < nb; i++)
                r = lookup(s, g, fp[i], d, n, pos[i]);
            if (r != 0)
                return r;
        }
    }
    return 0;
}

static int is_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int is_upper_digit(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* At least `min` bytes of the class at p, before end. */
static int run_of(const unsigned char *p, const unsigned char *end, size_t min,
                  int (*in_class)(unsigned char))
{
    if ((size_t)(end - p) < min)
        return 0;
    for (size_t i = 0; i < min; i++)
        if (!in_class(p[i]))
            return 0;
    return 1;
}

/* The patterns, in the order gp_scan_buffer() reports them. */
enum pattern { PAT_GITHUB, PAT_GITHUB_PAT, PAT_AWS, PAT_PEM, PAT_NONE };

static const char *const pattern_what[] = {"a GitHub token", "a GitHub fine-grained token",
                                           "an AWS access key id", "a PEM private key"};

/* The pattern that starts at p, if any (end bounds the data). */
static enum pattern pattern_at(const unsigned char *p, const unsigned char *end)
{
    size_t left = (size_t)(end - p);
    if (left >= 4 && p[0] == 'g' && p[1] == 'h' && p[3] == '_' && memchr("pousr", p[2], 5)) {
        if (run_of(p + 4, end, 36, is_word))
            return PAT_GITHUB;
    } else if (left >= 11 && memcmp(p, "github_pat_", 11) == 0) {
        if (run_of(p + 11, end, 22, is_word))
            return PAT_GITHUB_PAT;
    } else if (left >= 4 && memcmp(p, "AKIA", 4) == 0) {
        if (run_of(p + 4, end, 16, is_upper_digit))
            return PAT_AWS;
    } else if (left >= 11 && memcmp(p, "-----BEGIN ", 11) == 0) {
        size_t l = left < GP_SCAN_PATTERN_WINDOW ? left : GP_SCAN_PATTERN_WINDOW;
        const unsigned char *eol = memchr(p, '\n', l);
        if (eol)
            l = (size_t)(eol - p);
        if (memmem(p, l, "PRIVATE KEY-----", 16))
            return PAT_PEM;
    }
    return PAT_NONE;
}

/* Candidates among the 16 positions at p: some of the bytes that each
 * pattern's prefix fixes ("gh" with '_' at 3, "gi" with '_' at 6, "AKIA",
 * "-----B" with ' ' at 10). Reads p[0..16 + VLOOK - 1). */
static int candidates(const unsigned char *p)
{
    v16 b0 = vload(p), b1 = vload(p + 1), b3 = vload(p + 3);
    v16 us = vsplat('_');
    v16 gh = (b0 == vsplat('g')) &
             (((b1 == vsplat('h')) & (b3 == us)) | ((b1 == vsplat('i')) & (vload(p + 6) == us)));
    v16 aws = (b0 == vsplat('A')) & (b1 == vsplat('K')) & (vload(p + 2) == vsplat('I')) &
              (b3 == vsplat('A'));
    v16 pem = (b0 == vsplat('-')) & (vload(p + 4) == vsplat('-')) & (vload(p + 5) == vsplat('B')) &
              (vload(p + 10) == vsplat(' '));
    return vany((v16)(gh | aws | pem));
}

int gp_scan_patterns(const char **what, const void *data, size_t len)
{
    const unsigned char *d = data, *end = d + len;
    enum pattern best = PAT_NONE;
    size_t i = 0;
    /* One pass; stop early only on the first kind in the reporting order. */
    for (; len >= 16 + VLOOK && i <= len - (16 + VLOOK) && best != PAT_GITHUB; i += 16) {
        if (!candidates(d + i))
            continue;
        for (size_t j = i; j < i + 16; j++) {
            enum pattern p = pattern_at(d + j, end);
            if (p < best)
                best = p;
        }
    }
    for (; i < len && best != PAT_GITHUB; i++) {
        enum pattern p = pattern_at(d + i, end);
        if (p < best)
            best = p;
    }
    if (best == PAT_NONE)
        return 0;
    *what = pattern_what[best];
    return 1;
}

/* Secrets first, then the patterns (the order of gp_scan_buffer()). */
static int scan_region(const char **what, const gp_secretset *s, EVP_CIPHER_CTX *aes, const void *d,
                       size_t n)
{
    if (aes) {
        int r = scan_secrets(s, aes, d, n);
        if (r != 0) {
            *what = r > 0 ? CREDENTIAL : CANNOT_SCAN;
            return r;
        }
    }
    return gp_scan_patterns(what, d, n);
}

int gp_scan_buffer2(const char **what, const void *data, size_t len, const gp_secretset *set)
{
    EVP_CIPHER_CTX *aes = NULL;
    if (set && set->nsecrets && len >= GP_SECRET_MIN && !(aes = aes_new(set->aes, set->key))) {
        *what = CANNOT_SCAN;
        return al_error_set(AL_ENOMEM, "cannot set up AES");
    }
    int r = scan_region(what, set, aes, data, len);
    EVP_CIPHER_CTX_free(aes);
    return r;
}

/* ---- streaming ---- */

int gp_scanner_init(struct gp_scanner *s, const gp_secretset *set)
{
    size_t longest = GP_SCAN_PATTERN_WINDOW;
    memset(s, 0, sizeof(*s));
    s->set = set;
    if (set && set->max_len > longest)
        longest = set->max_len;
    s->overlap = longest - 1;
    if (!(s->buf = malloc(3 * s->overlap)))
        return AL_ENOMEM;
    if (set && set->nsecrets && !(s->aes = aes_new(set->aes, set->key))) {
        gp_scanner_free(s);
        return al_error_set(AL_ENOMEM, "cannot set up AES");
    }
    return 0;
}

int gp_scanner_feed(struct gp_scanner *s, const void *data, size_t len, const char **what)
{
    unsigned char *tail = s->buf, *seam = s->buf + s->overlap;
    int r = 0;
    if (len == 0)
        return 0;
    /* Whatever spans the boundary lies in the kept tail plus at most
     * `overlap` new bytes; whatever does not lies in the new bytes alone. */
    if (s->tail_len) {
        size_t head = len < s->overlap ? len : s->overlap;
        memcpy(seam, tail, s->tail_len);
        memcpy(seam + s->tail_len, data, head);
        r = scan_region(what, s->set, s->aes, seam, s->tail_len + head);
    }
    if (r == 0 && (!s->tail_len || len > s->overlap))
        r = scan_region(what, s->set, s->aes, data, len);
    if (len >= s->overlap) {
        memcpy(tail, (const unsigned char *)data + len - s->overlap, s->overlap);
        s->tail_len = s->overlap;
    } else {
        size_t keep = s->tail_len < s->overlap - len ? s->tail_len : s->overlap - len;
        memmove(tail, tail + s->tail_len - keep, keep);
        memcpy(tail + keep, data, len);
        s->tail_len = keep + len;
    }
    return r;
}

void gp_scanner_reset(struct gp_scanner *s)
{
    s->tail_len = 0;
}

void gp_scanner_free(struct gp_scanner *s)
{
    EVP_CIPHER_CTX_free(s->aes);
    free(s->buf);
    s->aes = NULL;
    s->buf = NULL;
    s->tail_len = 0;
}
