/* The streaming pack scanner (airlock/gp_packscan.h): secrets in every kind
 * of whole object, found whatever the chunking; object ids and commits as git
 * computes them; the fast-forward walk over the pack's commits; deltas left
 * for later; malformed packs refused. Packs are built here byte by byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/gp_packscan.h"

#define GH_TOKEN "ghp_0123456789abcdefghijABCDEFGHIJ012345"

struct pk {
    uint8_t *b;
    size_t len, cap;
    uint32_t count;
};

static void put(struct pk *p, const void *d, size_t n)
{
    if (p->len + n > p->cap) {
        p->cap = (p->len + n) * 2 + 64;
        p->b = realloc(p->b, p->cap);
        assert_non_null(p->b);
    }
    memcpy(p->b + p->len, d, n);
    p->len += n;
}

static void pk_start(struct pk *p, uint32_t count)
{
    memset(p, 0, sizeof(*p));
    uint8_t h[12] = {'P', 'A', 'C', 'K', 0, 0, 0, 2};
    h[8] = (uint8_t)(count >> 24);
    h[9] = (uint8_t)(count >> 16);
    h[10] = (uint8_t)(count >> 8);
    h[11] = (uint8_t)count;
    put(p, h, sizeof(h));
    p->count = count;
}

static void entry_header(struct pk *p, int type, size_t size)
{
    uint8_t b = (uint8_t)((type << 4) | (size & 15));
    size >>= 4;
    while (size) {
        b |= 0x80;
        put(p, &b, 1);
        b = size & 0x7f;
        size >>= 7;
    }
    put(p, &b, 1);
}

static void deflated(struct pk *p, const void *data, size_t len)
{
    uLongf n = compressBound((uLong)len);
    uint8_t *z = malloc(n);
    assert_int_equal(compress2(z, &n, data, (uLong)len, 6), Z_OK);
    put(p, z, n);
    free(z);
}

/* Returns the entry's offset. */
static size_t pk_obj(struct pk *p, int type, const void *data, size_t len)
{
    size_t off = p->len;
    entry_header(p, type, len);
    deflated(p, data, len);
    return off;
}

static size_t pk_ofs_delta(struct pk *p, size_t base_off, const void *delta, size_t len)
{
    size_t off = p->len;
    entry_header(p, GP_OBJ_OFS_DELTA, len);
    uint64_t d = off - base_off;
    uint8_t buf[16];
    size_t i = sizeof(buf) - 1;
    buf[i] = d & 0x7f;
    while (d >>= 7)
        buf[--i] = (uint8_t)(0x80 | (--d & 0x7f));
    put(p, buf + i, sizeof(buf) - i);
    deflated(p, delta, len);
    return off;
}

static void pk_end(struct pk *p)
{
    uint8_t md[20];
    unsigned n;
    EVP_Digest(p->b, p->len, md, &n, EVP_sha1(), NULL);
    put(p, md, sizeof(md));
}

static void oid_hex(char *hex, const char *type, const void *data, size_t len)
{
    char hdr[64];
    int n = snprintf(hdr, sizeof(hdr), "%s %zu", type, len);
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    uint8_t md[20];
    unsigned ml;
    EVP_DigestInit_ex(x, EVP_sha1(), NULL);
    EVP_DigestUpdate(x, hdr, (size_t)n + 1);
    EVP_DigestUpdate(x, data, len);
    EVP_DigestFinal_ex(x, md, &ml);
    EVP_MD_CTX_free(x);
    for (int i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* A commit with `parent` (or none) and `msg`; its id in `id`. */
static char *commit_text(char *id, const char *parent, const char *msg)
{
    static char text[4][512];
    static int k;
    char *t = text[k++ % 4];
    snprintf(t, 512,
             "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n%s%s%sauthor A <a@x> 1 +0000\n"
             "committer A <a@x> 1 +0000\n\n%s\n",
             parent ? "parent " : "", parent ? parent : "", parent ? "\n" : "", msg);
    oid_hex(id, "commit", t, strlen(t));
    return t;
}

/* Feeds the pack in pieces of `step` bytes (0: whole); returns the last
 * feed's result or the first error, and finishes. */
static int feed(gp_packscan **out, const struct pk *p, size_t step, const gp_secretset *set)
{
    gp_packscan *ps;
    assert_int_equal(gp_packscan_new(&ps, set, 1), 0);
    int rc = 0;
    if (!step)
        step = p->len;
    for (size_t off = 0; off < p->len && rc >= 0; off += step) {
        size_t n = p->len - off < step ? p->len - off : step;
        int r = gp_packscan_feed(ps, p->b + off, n);
        if (r != 0)
            rc = r;
    }
    if (rc >= 0 && gp_packscan_finish(ps) < 0)
        rc = AL_EINVAL;
    *out = ps;
    return rc;
}

static void blob_id_as_git(void **state)
{
    (void)state;
    char hex[41];
    oid_hex(hex, "blob", "hello\n", 6);
    assert_string_equal(hex, "ce013625030ba8dba906f756967f9e9ca394464a");
}

static void secrets_in_every_kind_of_object(void **state)
{
    (void)state;
    static const char *const where[] = {"blob", "commit", "tag", "tree"};
    for (int kind = 0; kind < 4; kind++) {
        struct pk p;
        char id[41];
        pk_start(&p, 3);
        pk_obj(&p, GP_OBJ_BLOB, "harmless\n", 9);
        size_t hit_off;
        if (kind == 0) {
            char blob[200];
            snprintf(blob, sizeof(blob), "export TOKEN=%s\n", GH_TOKEN);
            hit_off = pk_obj(&p, GP_OBJ_BLOB, blob, strlen(blob));
        } else if (kind == 1) {
            const char *t = commit_text(id, NULL, "oops " GH_TOKEN);
            hit_off = pk_obj(&p, GP_OBJ_COMMIT, t, strlen(t));
        } else if (kind == 2) {
            static const char tag[] = "object 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ntype "
                                      "tree\ntag v1\ntagger " GH_TOKEN " <x> 1 +0000\n\nt\n";
            hit_off = pk_obj(&p, GP_OBJ_TAG, tag, sizeof(tag) - 1);
        } else {
            uint8_t tree[200];
            size_t n = 0;
            memcpy(tree, "100644 ok.txt", 13);
            n = 13;
            tree[n++] = 0;
            memset(tree + n, 1, 20);
            n += 20;
            const char *e = "100644 " GH_TOKEN ".txt";
            memcpy(tree + n, e, strlen(e));
            n += strlen(e);
            tree[n++] = 0;
            memset(tree + n, 2, 20);
            n += 20;
            hit_off = pk_obj(&p, GP_OBJ_TREE, tree, n);
        }
        pk_obj(&p, GP_OBJ_BLOB, "after\n", 6);
        pk_end(&p);
        for (size_t step = 0; step < 24; step++) {
            gp_packscan *ps;
            int rc = feed(&ps, &p, step, NULL);
            uint64_t off;
            enum gp_obj_type type;
            const char *what;
            assert_int_equal(rc, 1);
            assert_int_equal(gp_packscan_hit(ps, &off, &type, &what), 1);
            assert_int_equal(off, hit_off);
            assert_string_equal(what, "a GitHub token");
            assert_int_equal((int)type, kind == 0   ? GP_OBJ_BLOB
                                        : kind == 1 ? GP_OBJ_COMMIT
                                        : kind == 2 ? GP_OBJ_TAG
                                                    : GP_OBJ_TREE);
            (void)where;
            gp_packscan_free(ps);
        }
        free(p.b);
    }
}

static void credential_from_fingerprints(void **state)
{
    (void)state;
    const char *secret = "real-upstream-secret-0123456789abcdef";
    struct al_buf blob;
    gp_secretset *set = NULL;
    al_buf_init(&blob, GP_SECRETSET_BLOB_MAX);
    assert_true(gp_secretset_build(&blob, &secret, 1) >= 0);
    assert_int_equal(gp_secretset_load(&set, blob.ptr, blob.len), 0);
    /* a big blob, the secret far from its start: found in any chunking */
    size_t n = 300000;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + i % 23);
    memcpy(data + 200001, secret, strlen(secret));
    struct pk p;
    pk_start(&p, 1);
    pk_obj(&p, GP_OBJ_BLOB, data, n);
    pk_end(&p);
    size_t steps[] = {0, 1000, 4097, 65536};
    for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
        gp_packscan *ps;
        assert_int_equal(feed(&ps, &p, steps[i], set), 1);
        gp_packscan_free(ps);
    }
    /* with the leak guard off, nothing is reported */
    gp_packscan *ps;
    assert_int_equal(gp_packscan_new(&ps, set, 0), 0);
    assert_int_equal(gp_packscan_feed(ps, p.b, p.len), 0);
    assert_int_equal(gp_packscan_finish(ps), 0);
    gp_packscan_free(ps);
    free(p.b);
    free(data);
    gp_secretset_free(set);
    al_buf_free(&blob);
}

static void fast_forward_walk(void **state)
{
    (void)state;
    char x[41] = "1234567890123456789012345678901234567890", c1[41], c2[41], c3[41], r0[41], r1[41];
    const char *t1 = commit_text(c1, x, "one");
    const char *t2 = commit_text(c2, c1, "two");
    const char *t3 = commit_text(c3, c2, "three");
    const char *tr0 = commit_text(r0, NULL, "root");
    struct pk p;
    pk_start(&p, 5);
    pk_obj(&p, GP_OBJ_COMMIT, t3, strlen(t3)); /* any order */
    pk_obj(&p, GP_OBJ_COMMIT, t1, strlen(t1));
    pk_obj(&p, GP_OBJ_COMMIT, t2, strlen(t2));
    pk_obj(&p, GP_OBJ_COMMIT, tr0, strlen(tr0));
    const char *tr1 = commit_text(r1, r0, "root's child");
    pk_obj(&p, GP_OBJ_COMMIT, tr1, strlen(tr1));
    pk_end(&p);
    gp_packscan *ps;
    assert_int_equal(feed(&ps, &p, 7, NULL), 0);
    assert_int_equal(gp_packscan_descends(ps, c3, c1), GP_FF_YES);
    assert_int_equal(gp_packscan_descends(ps, c3, c2), GP_FF_YES);
    assert_int_equal(gp_packscan_descends(ps, c3, x), GP_FF_YES); /* a parent outside */
    assert_int_equal(gp_packscan_descends(ps, c3, c3), GP_FF_YES);
    /* an unrelated old tip: the history leaves the pack at x */
    assert_int_equal(gp_packscan_descends(ps, c3, r0), GP_FF_UNKNOWN);
    assert_int_equal(gp_packscan_descends(ps, c1, c3), GP_FF_UNKNOWN);
    /* a complete history without the old tip: not a fast-forward */
    assert_int_equal(gp_packscan_descends(ps, r1, c1), GP_FF_NO);
    assert_int_equal(gp_packscan_descends(ps, r1, r0), GP_FF_YES);
    /* new not in the pack */
    assert_int_equal(gp_packscan_descends(ps, x, r0), GP_FF_UNKNOWN);
    assert_int_equal(gp_packscan_descends(ps, "zz", r0), AL_EINVAL);
    assert_int_equal(gp_packscan_descends(ps, "ZZ34567890123456789012345678901234567890", r0),
                     AL_EINVAL);
    gp_packscan_free(ps);
    free(p.b);
}

static void deltas_left_for_later(void **state)
{
    (void)state;
    char c1[41];
    const char *t1 = commit_text(c1, NULL, "one");
    struct pk p;
    pk_start(&p, 3);
    size_t base = pk_obj(&p, GP_OBJ_BLOB, "base content\n", 13);
    /* delta: source size 13, target size 4, insert "new\n" */
    static const uint8_t delta[] = {13, 4, 4, 'n', 'e', 'w', '\n'};
    size_t doff = pk_ofs_delta(&p, base, delta, sizeof(delta));
    pk_obj(&p, GP_OBJ_COMMIT, t1, strlen(t1));
    pk_end(&p);
    gp_packscan *ps;
    assert_int_equal(feed(&ps, &p, 3, NULL), 0);
    size_t n;
    const uint64_t *later = gp_packscan_later(ps, &n);
    assert_int_equal(n, 1);
    assert_int_equal(later[0], doff);
    /* deltas may hide commits: the walk asks for an index */
    assert_int_equal(gp_packscan_descends(ps, c1, "1234567890123456789012345678901234567890"),
                     AL_EAGAIN);
    gp_packscan_free(ps);
    free(p.b);
}

/* A one-blob pack to break. */
static void small_pack(struct pk *p)
{
    pk_start(p, 1);
    pk_obj(p, GP_OBJ_BLOB, "hello\n", 6);
    pk_end(p);
}

static int feed_raw(const uint8_t *b, size_t len)
{
    gp_packscan *ps;
    assert_int_equal(gp_packscan_new(&ps, NULL, 1), 0);
    int rc = gp_packscan_feed(ps, b, len);
    if (rc >= 0)
        rc = gp_packscan_finish(ps);
    gp_packscan_free(ps);
    return rc;
}

static void malformed_packs_refused(void **state)
{
    (void)state;
    struct pk p;
    small_pack(&p);
    assert_int_equal(feed_raw(p.b, p.len), 0);
    /* every truncation */
    for (size_t cut = 0; cut < p.len; cut++)
        assert_int_equal(feed_raw(p.b, cut), AL_EINVAL);
    /* bytes after the trailer */
    uint8_t *more = malloc(p.len + 1);
    memcpy(more, p.b, p.len);
    more[p.len] = 0;
    assert_int_equal(feed_raw(more, p.len + 1), AL_EINVAL);
    free(more);
    /* every single flipped byte is refused or still a sound pack: the
     * checksum catches what the structure does not */
    for (size_t i = 0; i < p.len; i++) {
        p.b[i] ^= 0x40;
        assert_int_equal(feed_raw(p.b, p.len), AL_EINVAL);
        p.b[i] ^= 0x40;
    }
    free(p.b);
    /* bad magic, version, type 5, size larger than the data */
    small_pack(&p);
    p.b[7] = 4;
    assert_int_equal(feed_raw(p.b, p.len), AL_EINVAL);
    free(p.b);
    pk_start(&p, 1);
    entry_header(&p, 5, 6);
    deflated(&p, "hello\n", 6);
    pk_end(&p);
    assert_int_equal(feed_raw(p.b, p.len), AL_EINVAL);
    free(p.b);
    pk_start(&p, 1);
    entry_header(&p, GP_OBJ_BLOB, 5); /* says 5, holds 6 */
    deflated(&p, "hello\n", 6);
    pk_end(&p);
    assert_int_equal(feed_raw(p.b, p.len), AL_EINVAL);
    free(p.b);
    pk_start(&p, 1);
    entry_header(&p, GP_OBJ_BLOB, 7); /* says 7, holds 6 */
    deflated(&p, "hello\n", 6);
    pk_end(&p);
    assert_int_equal(feed_raw(p.b, p.len), AL_EINVAL);
    free(p.b);
    /* a delta whose base would lie before the pack */
    pk_start(&p, 1);
    entry_header(&p, GP_OBJ_OFS_DELTA, 3);
    uint8_t far = 100;
    put(&p, &far, 1);
    deflated(&p, "abc", 3);
    pk_end(&p);
    assert_int_equal(feed_raw(p.b, p.len), AL_EINVAL);
    free(p.b);
    /* a size field longer than 64 bits */
    pk_start(&p, 1);
    for (int i = 0; i < 12; i++) {
        uint8_t b = i == 0 ? (0x80 | (GP_OBJ_BLOB << 4)) : 0xff;
        put(&p, &b, 1);
    }
    pk_end(&p);
    assert_int_equal(feed_raw(p.b, p.len), AL_EINVAL);
    free(p.b);
    /* zlib garbage */
    pk_start(&p, 1);
    entry_header(&p, GP_OBJ_BLOB, 6);
    put(&p, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    pk_end(&p);
    assert_int_equal(feed_raw(p.b, p.len), AL_EINVAL);
    free(p.b);
    /* an empty pack is a pack */
    pk_start(&p, 0);
    pk_end(&p);
    assert_int_equal(feed_raw(p.b, p.len), 0);
    free(p.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blob_id_as_git),
        cmocka_unit_test(secrets_in_every_kind_of_object),
        cmocka_unit_test(credential_from_fingerprints),
        cmocka_unit_test(fast_forward_walk),
        cmocka_unit_test(deltas_left_for_later),
        cmocka_unit_test(malformed_packs_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
