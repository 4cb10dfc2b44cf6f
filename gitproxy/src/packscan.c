#include "airlock/gp_packscan.h"
#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/hex.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define OID_RAW     20
#define INFLATE_OUT (64u << 10)

enum state {
    ST_HEADER,  /* "PACK", version, count */
    ST_ENTRY,   /* an entry's type and size */
    ST_OFS,     /* an OFS_DELTA's base offset */
    ST_REF,     /* a REF_DELTA's base id */
    ST_DATA,    /* the entry's zlib stream */
    ST_TRAILER, /* the pack's checksum */
    ST_DONE,
};

struct gp_packscan {
    const gp_secretset *set;
    struct gp_scanner scanner;
    z_stream z;
    int z_live;
    enum state st;
    uint8_t header[12];
    size_t header_len;
    uint32_t count, seen;
    uint64_t off;       /* offset of the next byte in the pack */
    uint64_t entry_off; /* offset of the current entry */
    int type;
    uint64_t size; /* inflated size the entry's header announces */
    unsigned shift;
    int header_more; /* the entry's size continues */
    uint64_t ofs;
    unsigned ofs_bytes;
    size_t ref_got;
    uint64_t out_total; /* inflated bytes of the current entry so far */
    struct al_buf tree; /* a tree being inflated, up to GP_PACKSCAN_TREE_MAX */
    int tree_over;
    size_t trailer_got;
    int noscan; /* follow the pack only */
    int hit;
    uint64_t hit_off;
    enum gp_obj_type hit_type;
    const char *hit_what;
    uint64_t *later;
    size_t nlater, later_cap;
    /* object ids (SHA-1 of "<type> <size>\0" and the content) */
    EVP_MD_CTX *obj_md;
    EVP_MD_CTX *pack_md; /* the whole pack but its trailer */
    uint8_t trailer[OID_RAW];
    /* commits: ids, and their parents in one array */
    struct commit {
        uint8_t id[OID_RAW];
        uint32_t first, n; /* parents[first..first+n) */
    } * commits;
    size_t ncommits, commits_cap;
    uint8_t (*parents)[OID_RAW];
    size_t nparents, parents_cap;
    int parents_unknown; /* a commit's parent lines did not fit its head */
    uint8_t *head;       /* the start of the current commit */
    size_t head_len;
    /* the commits by id, for the walk (built on first use) */
    int32_t *index;
    size_t index_cap;
    uint8_t out[INFLATE_OUT];
};

int gp_packscan_new(gp_packscan **out, const gp_secretset *set, int scan)
{
    gp_packscan *ps = calloc(1, sizeof(*ps));
    if (!ps)
        return AL_ENOMEM;
    ps->set = set;
    ps->noscan = !scan;
    int err = gp_scanner_init(&ps->scanner, set);
    if (err < 0) {
        free(ps);
        return err;
    }
    if (inflateInit(&ps->z) != Z_OK) {
        gp_scanner_free(&ps->scanner);
        free(ps);
        return AL_ENOMEM;
    }
    ps->z_live = 1;
    al_buf_init(&ps->tree, GP_PACKSCAN_TREE_MAX);
    ps->obj_md = EVP_MD_CTX_new();
    ps->pack_md = EVP_MD_CTX_new();
    ps->head = malloc(GP_PACKSCAN_COMMIT_HEAD);
    if (!ps->obj_md || !ps->pack_md || !ps->head ||
        !EVP_DigestInit_ex(ps->pack_md, EVP_sha1(), NULL)) {
        gp_packscan_free(ps);
        return AL_ENOMEM;
    }
    *out = ps;
    return 0;
}

void gp_packscan_free(gp_packscan *ps)
{
    if (!ps)
        return;
    if (ps->z_live)
        inflateEnd(&ps->z);
    gp_scanner_free(&ps->scanner);
    al_buf_free(&ps->tree);
    free(ps->later);
    EVP_MD_CTX_free(ps->obj_md);
    EVP_MD_CTX_free(ps->pack_md);
    free(ps->commits);
    free(ps->parents);
    free(ps->head);
    free(ps->index);
    free(ps);
}

static int fail(const char *why)
{
    return al_error_set(AL_EINVAL, "the pushed pack is malformed: %s", why);
}

static int later_add(gp_packscan *ps, uint64_t off)
{
    if (ps->nlater == ps->later_cap) {
        size_t cap = ps->later_cap ? ps->later_cap * 2 : 64;
        uint64_t *n = realloc(ps->later, cap * sizeof(*n));
        if (!n)
            return AL_ENOMEM;
        ps->later = n;
        ps->later_cap = cap;
    }
    ps->later[ps->nlater++] = off;
    return 0;
}

static void hit_set(gp_packscan *ps, const char *what)
{
    if (ps->hit || ps->noscan)
        return;
    ps->hit = 1;
    ps->hit_off = ps->entry_off;
    ps->hit_type = (enum gp_obj_type)ps->type;
    ps->hit_what = what;
}

int gp_tree_scan_names(const char **what, const void *tree, size_t len, const gp_secretset *set)
{
    const unsigned char *p = tree, *end = p + len;
    while (p < end) {
        const unsigned char *sp = memchr(p, ' ', (size_t)(end - p));
        const unsigned char *nul = sp ? memchr(sp, '\0', (size_t)(end - sp)) : NULL;
        if (!nul || (size_t)(end - nul) < 1 + OID_RAW)
            return 0; /* the rest is no entry: libgit2 judges the tree */
        int r = gp_scan_buffer2(what, sp + 1, (size_t)(nul - sp - 1), set);
        if (r != 0)
            return 1; /* a failure to scan counts as a hit: fail closed */
        p = nul + 1 + OID_RAW;
    }
    return 0;
}

/* The inflated bytes of the current entry. */
static int whole(int type)
{
    return type >= GP_OBJ_COMMIT && type <= GP_OBJ_TAG;
}

static int entry_output(gp_packscan *ps, const uint8_t *data, size_t len)
{
    const char *what;
    if (len == 0)
        return 0;
    if (whole(ps->type) && !EVP_DigestUpdate(ps->obj_md, data, len))
        return AL_ENOMEM;
    if (ps->type == GP_OBJ_COMMIT && ps->head_len < GP_PACKSCAN_COMMIT_HEAD) {
        size_t n = GP_PACKSCAN_COMMIT_HEAD - ps->head_len;
        if (n > len)
            n = len;
        memcpy(ps->head + ps->head_len, data, n);
        ps->head_len += n;
    }
    if (ps->hit || ps->noscan)
        return 0;
    switch (ps->type) {
    case GP_OBJ_COMMIT:
    case GP_OBJ_TAG:
    case GP_OBJ_BLOB:
        if (gp_scanner_feed(&ps->scanner, data, len, &what) != 0)
            hit_set(ps, what);
        return 0;
    case GP_OBJ_TREE:
        if (!ps->tree_over && al_buf_append(&ps->tree, data, len) < 0) {
            ps->tree_over = 1; /* scanned after indexing */
            al_buf_free(&ps->tree);
            al_buf_init(&ps->tree, GP_PACKSCAN_TREE_MAX);
        }
        return 0;
    default:
        return 0; /* a delta: scanned once resolved */
    }
}

static int hex_to_raw(uint8_t *out, const uint8_t *hex)
{
    return al_hex_decode(out, (const char *)hex, OID_RAW);
}

/* Keeps a commit's id and parents: "tree <hex>\n" then "parent <hex>\n"
 * lines, as git reads them. */
static int commit_record(gp_packscan *ps, const uint8_t *id)
{
    if (ps->ncommits == ps->commits_cap) {
        size_t cap = ps->commits_cap ? ps->commits_cap * 2 : 64;
        struct commit *n = realloc(ps->commits, cap * sizeof(*n));
        if (!n)
            return AL_ENOMEM;
        ps->commits = n;
        ps->commits_cap = cap;
    }
    struct commit *c = &ps->commits[ps->ncommits++];
    memcpy(c->id, id, OID_RAW);
    c->first = (uint32_t)ps->nparents;
    c->n = 0;
    const uint8_t *p = ps->head, *end = ps->head + ps->head_len;
    if (end - p >= 46 && memcmp(p, "tree ", 5) == 0 && p[45] == '\n')
        p += 46;
    while (end - p >= 48 && memcmp(p, "parent ", 7) == 0 && p[47] == '\n') {
        if (ps->nparents == ps->parents_cap) {
            size_t cap = ps->parents_cap ? ps->parents_cap * 2 : 64;
            uint8_t(*n)[OID_RAW] = realloc(ps->parents, cap * OID_RAW);
            if (!n)
                return AL_ENOMEM;
            ps->parents = n;
            ps->parents_cap = cap;
        }
        if (hex_to_raw(ps->parents[ps->nparents], p + 7) < 0)
            break; /* not a parent line git would take */
        ps->nparents++;
        c->n++;
        p += 48;
    }
    /* A head cut short in the middle of its parent lines: unknown. */
    if (ps->head_len == GP_PACKSCAN_COMMIT_HEAD && (size_t)(end - p) < 48)
        ps->parents_unknown = 1;
    return 0;
}

/* The current entry's zlib stream ended. */
static int entry_end(gp_packscan *ps)
{
    const char *what;
    int err = 0;
    if (ps->out_total != ps->size)
        return fail("an object's size differs from its header");
    if (whole(ps->type)) {
        uint8_t id[EVP_MAX_MD_SIZE];
        unsigned idlen = 0;
        if (!EVP_DigestFinal_ex(ps->obj_md, id, &idlen) || idlen != OID_RAW)
            return AL_ENOMEM;
        if (ps->type == GP_OBJ_COMMIT && (err = commit_record(ps, id)) < 0)
            return err;
    }
    ps->head_len = 0;
    if (ps->type == GP_OBJ_OFS_DELTA || ps->type == GP_OBJ_REF_DELTA ||
        (ps->type == GP_OBJ_TREE && ps->tree_over)) {
        err = later_add(ps, ps->entry_off);
    } else if (ps->type == GP_OBJ_TREE && !ps->hit) {
        if (gp_tree_scan_names(&what, ps->tree.ptr ? ps->tree.ptr : "", ps->tree.len, ps->set))
            hit_set(ps, what);
    }
    al_buf_reset(&ps->tree);
    ps->tree_over = 0;
    gp_scanner_reset(&ps->scanner);
    if (inflateReset(&ps->z) != Z_OK)
        return AL_ENOMEM;
    ps->seen++;
    ps->st = ps->seen == ps->count ? ST_TRAILER : ST_ENTRY;
    return err;
}

/* Inflates what it can of data[0..len); *used: bytes consumed. */
static int entry_inflate(gp_packscan *ps, const uint8_t *data, size_t len, size_t *used)
{
    ps->z.next_in = (Bytef *)data;
    ps->z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
    size_t offered = ps->z.avail_in;
    int err = 0;
    for (;;) {
        ps->z.next_out = ps->out;
        ps->z.avail_out = sizeof(ps->out);
        int rc = inflate(&ps->z, Z_NO_FLUSH);
        size_t produced = sizeof(ps->out) - ps->z.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            err = rc == Z_MEM_ERROR ? AL_ENOMEM : fail("bad zlib data");
            break;
        }
        if (produced > ps->size - ps->out_total) {
            err = fail("an object is larger than its header says");
            break;
        }
        ps->out_total += produced;
        if ((err = entry_output(ps, ps->out, produced)) < 0)
            break;
        if (rc == Z_STREAM_END) {
            *used = offered - ps->z.avail_in;
            return entry_end(ps);
        }
        if (ps->z.avail_in == 0 && ps->z.avail_out > 0)
            break; /* wants more input */
        if (rc == Z_BUF_ERROR && produced == 0)
            break;
    }
    *used = offered - ps->z.avail_in;
    return err;
}

int gp_packscan_feed(gp_packscan *ps, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t i = 0;
    int err = 0;
    while (i < len && err == 0) {
        uint8_t b = p[i];
        size_t used = 1;
        enum state before = ps->st;
        switch (ps->st) {
        case ST_HEADER:
            ps->header[ps->header_len++] = b;
            if (ps->header_len == sizeof(ps->header)) {
                const uint8_t *h = ps->header;
                uint32_t version =
                    (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
                ps->count =
                    (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
                if (memcmp(h, "PACK", 4) != 0 || (version != 2 && version != 3))
                    err = fail("not a pack (version 2 or 3)");
                ps->st = ps->count ? ST_ENTRY : ST_TRAILER;
            }
            break;
        case ST_ENTRY:
            if (!ps->header_more) {
                ps->entry_off = ps->off;
                ps->type = (b >> 4) & 7;
                ps->size = b & 15;
                ps->shift = 4;
                ps->out_total = 0;
                ps->ofs = 0;
                ps->ofs_bytes = 0;
                ps->ref_got = 0;
                if (ps->type == 0 || ps->type == 5)
                    err = fail("an entry of unknown type");
            } else {
                if (ps->shift > 57)
                    err = fail("an object size too large");
                ps->size |= (uint64_t)(b & 0x7f) << ps->shift;
                ps->shift += 7;
            }
            ps->header_more = (b & 0x80) != 0;
            if (!ps->header_more && err == 0) {
                ps->st = ps->type == GP_OBJ_OFS_DELTA   ? ST_OFS
                         : ps->type == GP_OBJ_REF_DELTA ? ST_REF
                                                        : ST_DATA;
                if (whole(ps->type)) {
                    static const char *const names[] = {"", "commit", "tree", "blob", "tag"};
                    char hdr[40];
                    int hn = snprintf(hdr, sizeof(hdr), "%s %llu", names[ps->type],
                                      (unsigned long long)ps->size);
                    if (!EVP_DigestInit_ex(ps->obj_md, EVP_sha1(), NULL) ||
                        !EVP_DigestUpdate(ps->obj_md, hdr, (size_t)hn + 1))
                        err = AL_ENOMEM;
                }
            }
            break;
        case ST_OFS:
            /* git's offset encoding: each continuation adds one */
            if (ps->ofs_bytes++ > 0) {
                if (ps->ofs > (UINT64_MAX >> 7) - 1) {
                    err = fail("a delta base offset too large");
                    break;
                }
                ps->ofs = ((ps->ofs + 1) << 7) | (b & 0x7f);
            } else {
                ps->ofs = b & 0x7f;
            }
            if (!(b & 0x80)) {
                if (ps->ofs == 0 || ps->ofs > ps->entry_off)
                    err = fail("a delta base offset outside the pack");
                ps->st = ST_DATA;
            }
            break;
        case ST_REF:
            if (++ps->ref_got == OID_RAW)
                ps->st = ST_DATA;
            break;
        case ST_DATA:
            err = entry_inflate(ps, p + i, len - i, &used);
            if (err == 0 && used == 0 && ps->st == ST_DATA)
                err = fail("zlib made no progress");
            break;
        case ST_TRAILER:
            ps->trailer[ps->trailer_got++] = b;
            if (ps->trailer_got == OID_RAW)
                ps->st = ST_DONE;
            break;
        case ST_DONE:
            err = fail("bytes after the end of the pack");
            break;
        }
        /* every byte but the trailer is in the pack's checksum */
        if (err == 0 && before != ST_TRAILER && before != ST_DONE &&
            !EVP_DigestUpdate(ps->pack_md, p + i, used))
            err = AL_ENOMEM;
        i += used;
        ps->off += used;
    }
    if (err < 0)
        return err;
    return ps->hit;
}

int gp_packscan_finish(gp_packscan *ps)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (ps->st != ST_DONE)
        return fail("the pack ended early");
    if (!EVP_DigestFinal_ex(ps->pack_md, md, &n) || n != OID_RAW ||
        memcmp(md, ps->trailer, OID_RAW) != 0)
        return fail("its checksum does not match");
    return 0;
}

/* The commits by id: open addressing over indexes into ps->commits. */
static int index_build(gp_packscan *ps)
{
    size_t cap = 64;
    while (cap < ps->ncommits * 2 + 1)
        cap *= 2;
    int32_t *idx = malloc(cap * sizeof(*idx));
    if (!idx)
        return AL_ENOMEM;
    for (size_t i = 0; i < cap; i++)
        idx[i] = -1;
    for (size_t c = 0; c < ps->ncommits; c++) {
        uint32_t h;
        memcpy(&h, ps->commits[c].id, sizeof(h));
        size_t i = h & (cap - 1);
        while (idx[i] >= 0 && memcmp(ps->commits[idx[i]].id, ps->commits[c].id, OID_RAW) != 0)
            i = (i + 1) & (cap - 1);
        idx[i] = (int32_t)c;
    }
    free(ps->index);
    ps->index = idx;
    ps->index_cap = cap;
    return 0;
}

static int32_t commit_find(const gp_packscan *ps, const uint8_t *id)
{
    uint32_t h;
    memcpy(&h, id, sizeof(h));
    for (size_t i = h & (ps->index_cap - 1);; i = (i + 1) & (ps->index_cap - 1)) {
        if (ps->index[i] < 0)
            return -1;
        if (memcmp(ps->commits[ps->index[i]].id, id, OID_RAW) == 0)
            return ps->index[i];
    }
}

int gp_packscan_descends(gp_packscan *ps, const char *new_hex, const char *old_hex)
{
    uint8_t want[OID_RAW], start[OID_RAW];
    if (strlen(new_hex) != 2 * OID_RAW || strlen(old_hex) != 2 * OID_RAW ||
        hex_to_raw(start, (const uint8_t *)new_hex) < 0 ||
        hex_to_raw(want, (const uint8_t *)old_hex) < 0)
        return al_error_set(AL_EINVAL, "bad object id");
    if (memcmp(start, want, OID_RAW) == 0)
        return GP_FF_YES;
    if (ps->nlater || ps->parents_unknown || ps->st != ST_DONE)
        return AL_EAGAIN;
    if (!ps->index && ps->ncommits && index_build(ps) < 0)
        return AL_ENOMEM;
    /* Breadth first over the pack's commits from new; a parent outside the
     * pack is history upstream has: there only upstream can answer. */
    uint8_t *seen = calloc(ps->ncommits ? ps->ncommits : 1, 1);
    int32_t *queue = malloc((ps->ncommits ? ps->ncommits : 1) * sizeof(*queue));
    int result = GP_FF_NO;
    size_t qlen = 0, head = 0;
    if (!seen || !queue) {
        free(seen);
        free(queue);
        return AL_ENOMEM;
    }
    int32_t c = ps->ncommits ? commit_find(ps, start) : -1;
    if (c < 0)
        result = GP_FF_UNKNOWN; /* new is not a commit of the pack */
    else
        seen[c] = 1, queue[qlen++] = c;
    while (head < qlen && result != GP_FF_YES) {
        const struct commit *cm = &ps->commits[queue[head++]];
        for (uint32_t k = 0; k < cm->n; k++) {
            const uint8_t *parent = ps->parents[cm->first + k];
            if (memcmp(parent, want, OID_RAW) == 0) {
                result = GP_FF_YES;
                break;
            }
            int32_t pc = commit_find(ps, parent);
            if (pc < 0)
                result = GP_FF_UNKNOWN;
            else if (!seen[pc])
                seen[pc] = 1, queue[qlen++] = pc;
        }
    }
    free(seen);
    free(queue);
    return result;
}

int gp_packscan_hit(const gp_packscan *ps, uint64_t *offset, enum gp_obj_type *type,
                    const char **what)
{
    if (!ps->hit)
        return 0;
    *offset = ps->hit_off;
    *type = ps->hit_type;
    *what = ps->hit_what;
    return 1;
}

const uint64_t *gp_packscan_later(const gp_packscan *ps, size_t *n)
{
    *n = ps->nlater;
    return ps->later;
}

uint32_t gp_packscan_count(const gp_packscan *ps)
{
    return ps->count;
}
