/* Push inspection in a front worker (gp_inspect.h): the pushed pack is
 * indexed as it streams, then scanned and walked. Nothing here holds a
 * secret: the leak guard looks for fingerprints (gp_scan.h). */
#include "gp_inspect.h"
#include "airlock/gp_packscan.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <git2.h>
#include <git2/sys/odb_backend.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct gp_pack {
    char dir[4096]; /* scratch directory, removed by gp_pack_free() */
    char idx_path[4200];
    git_indexer *idx;
    git_indexer_progress stats;
    git_odb *odb; /* the committed pack alone */
    int committed;
    int none; /* no pack was sent */
};

int gp_inspect_global_init(const char *ca_file)
{
    if (git_libgit2_init() < 0)
        return al_error_set(AL_ERROR, "libgit2 init failed");
    /* Bound what libgit2 keeps mapped and cached while indexing big packs:
     * memory must not grow with the size of a push. */
    git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, (size_t)(1u << 20));
    git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, (size_t)(8u << 20));
    git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)(4u << 20));
    /* No configuration file of any user or of the system changes how the
     * proxy reads packs or its mirrors. */
    static const int levels[] = {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG,
                                 GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_PROGRAMDATA};
    for (size_t i = 0; i < sizeof(levels) / sizeof(*levels); i++)
        if (git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "") < 0)
            return al_error_set(AL_ERROR, "libgit2: cannot clear the config search path");
    /* Objects read back are checked against their ids. */
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 1);
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 1);
    if (ca_file && git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, ca_file, NULL) < 0)
        return al_error_set(AL_EINVAL, "libgit2 cannot use CA file %s", ca_file);
    return 0;
}

static int git_fail(int code, const char *what)
{
    const git_error *e = git_error_last();
    al_log(AL_LOG_WARN, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
    return al_error_set(code, "%s", what);
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[4400];
    if (d) {
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

int gp_pack_new(gp_pack **out, const char *cache_dir)
{
    gp_pack *pk = calloc(1, sizeof(*pk));
    if (!pk)
        return AL_ENOMEM;
    int n = snprintf(pk->dir, sizeof(pk->dir), "%s/tmp", cache_dir);
    if (n < 0 || (size_t)n >= sizeof(pk->dir)) {
        free(pk);
        return al_error_set(AL_EINVAL, "cache_dir path too long");
    }
    if (mkdir(pk->dir, 0700) < 0 && errno != EEXIST) {
        int err = al_error_set_errno(AL_EIO, errno, "mkdir %s", pk->dir);
        free(pk);
        return err;
    }
    snprintf(pk->dir, sizeof(pk->dir), "%s/tmp/push-XXXXXX", cache_dir);
    if (!mkdtemp(pk->dir)) {
        int err = al_error_set_errno(AL_EIO, errno, "mkdtemp under %s/tmp", cache_dir);
        free(pk);
        return err;
    }
    git_indexer_options opts;
    git_indexer_options_init(&opts, GIT_INDEXER_OPTIONS_VERSION);
    /* No object database: a pack whose deltas need objects it does not
     * hold is refused (git was told no-thin). */
    if (git_indexer_new(&pk->idx, pk->dir, 0600, NULL, &opts) < 0) {
        int err = git_fail(AL_EIO, "cannot index the pushed pack");
        gp_pack_free(pk);
        return err;
    }
    *out = pk;
    return 0;
}

int gp_pack_append(gp_pack *pk, const void *data, size_t len)
{
    if (pk->committed)
        return al_error_set(AL_EINVAL, "data after the end of the pack");
    if (git_indexer_append(pk->idx, data, len, &pk->stats) < 0)
        return git_fail(AL_EINVAL, "the pushed pack is malformed");
    return 0;
}

int gp_pack_commit(gp_pack *pk, int none)
{
    git_odb_backend *be = NULL;
    pk->none = none;
    pk->committed = 1;
    if (none)
        return git_odb_new(&pk->odb) < 0 ? git_fail(AL_EIO, "libgit2") : 0;
    if (git_indexer_commit(pk->idx, &pk->stats) < 0)
        return git_fail(AL_EINVAL, "the pushed pack is malformed, incomplete, or thin (its deltas"
                                   " need objects it does not hold)");
    snprintf(pk->idx_path, sizeof(pk->idx_path), "%s/pack-%s.idx", pk->dir,
             git_indexer_name(pk->idx));
    if (git_odb_new(&pk->odb) < 0 || git_odb_backend_one_pack(&be, pk->idx_path) < 0 ||
        git_odb_add_backend(pk->odb, be, 1) < 0) {
        if (be)
            be->free(be);
        return git_fail(AL_EIO, "cannot open the pushed pack");
    }
    return 0;
}

const char *gp_pack_idx_path(const gp_pack *pk)
{
    return pk->idx_path[0] ? pk->idx_path : NULL;
}

void gp_pack_free(gp_pack *pk)
{
    if (!pk)
        return;
    git_odb_free(pk->odb);
    git_indexer_free(pk->idx);
    if (pk->dir[0])
        rm_dir(pk->dir);
    free(pk);
}

/* ---- the leak guard, after indexing ---- */

struct wanted {
    uint64_t off;
    size_t index;
};

static int wanted_cmp(const void *a, const void *b)
{
    const struct wanted *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The ids of the entries at offs[0..n) of the pack, from its .idx (version
 * 2, written by libgit2's indexer): one pass over the offset table, memory
 * for the wanted entries only. out[i] stays zero for an offset not found. */
static int oids_at(gp_pack *pk, const uint64_t *offs, size_t n, git_oid *out)
{
    struct wanted *w = calloc(n ? n : 1, sizeof(*w));
    unsigned char *chunk = malloc(4096 * 4);
    int fd = open(pk->idx_path, O_RDONLY | O_CLOEXEC);
    int err = 0;
    unsigned char head[8 + 1024];
    if (!w || !chunk) {
        err = AL_ENOMEM;
        goto out;
    }
    if (fd < 0 || pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head) ||
        memcmp(head, "\377tOc", 4) != 0 || be32(head + 4) != 2) {
        err = al_error_set(AL_EIO, "cannot read the pushed pack's index");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        w[i].off = offs[i];
        w[i].index = i;
        memset(&out[i], 0, sizeof(out[i]));
    }
    qsort(w, n, sizeof(*w), wanted_cmp);
    uint64_t count = be32(head + 8 + 255 * 4);
    off_t oids_at_pos = 8 + 1024, offs_pos = oids_at_pos + (off_t)count * 24;
    off_t big_pos = offs_pos + (off_t)count * 4;
    for (uint64_t i = 0; i < count;) {
        size_t k = count - i < 4096 ? (size_t)(count - i) : 4096;
        if (pread(fd, chunk, k * 4, offs_pos + (off_t)i * 4) != (ssize_t)(k * 4)) {
            err = al_error_set(AL_EIO, "cannot read the pushed pack's index");
            goto out;
        }
        for (size_t e = 0; e < k; e++) {
            uint64_t off = be32(chunk + e * 4);
            if (off & 0x80000000u) {
                unsigned char b[8];
                if (pread(fd, b, 8, big_pos + (off_t)(off & 0x7fffffffu) * 8) != 8) {
                    err = al_error_set(AL_EIO, "cannot read the pushed pack's index");
                    goto out;
                }
                off = (uint64_t)be32(b) << 32 | be32(b + 4);
            }
            struct wanted key = {off, 0};
            struct wanted *hit = bsearch(&key, w, n, sizeof(*w), wanted_cmp);
            /* equal offsets sit together: take them all */
            while (hit && hit > w && hit[-1].off == off)
                hit--;
            for (; hit && hit < w + n && hit->off == off; hit++)
                if (pread(fd, out[hit->index].id, GIT_OID_RAWSZ,
                          oids_at_pos + (off_t)(i + e) * GIT_OID_RAWSZ) != GIT_OID_RAWSZ) {
                    err = al_error_set(AL_EIO, "cannot read the pushed pack's index");
                    goto out;
                }
        }
        i += k;
    }
out:
    if (fd >= 0)
        close(fd);
    free(chunk);
    free(w);
    return err;
}

struct name_state {
    gp_pack *pk;
    const git_oid *target;
    char name[256];
};

/* Finds a tree entry of the pack naming the blob `target`. */
static int name_object(const git_oid *oid, void *payload)
{
    struct name_state *st = payload;
    size_t size;
    git_object_t type;
    git_odb_object *obj = NULL;
    if (git_odb_read_header(&size, &type, st->pk->odb, oid) < 0 || type != GIT_OBJECT_TREE ||
        size > GP_SCAN_OBJECT_MAX || git_odb_read(&obj, st->pk->odb, oid) < 0)
        return 0;
    const unsigned char *p = git_odb_object_data(obj);
    const unsigned char *end = p + git_odb_object_size(obj);
    int found = 0;
    while (p < end && !found) {
        const unsigned char *sp = memchr(p, ' ', (size_t)(end - p));
        const unsigned char *nul = sp ? memchr(sp, '\0', (size_t)(end - sp)) : NULL;
        if (!nul || (size_t)(end - nul) < 1 + GIT_OID_RAWSZ)
            break;
        if (memcmp(nul + 1, st->target->id, GIT_OID_RAWSZ) == 0) {
            size_t n = (size_t)(nul - sp - 1);
            int printable = n > 0 && n < sizeof(st->name);
            for (size_t i = 0; i < n && printable; i++)
                printable = sp[1 + i] >= 0x20 && sp[1 + i] < 0x7f;
            if (printable) {
                memcpy(st->name, sp + 1, n);
                st->name[n] = '\0';
                found = 1;
            }
        }
        p = nul + 1 + GIT_OID_RAWSZ;
    }
    git_odb_object_free(obj);
    return found;
}

/* The reason for a hit in object `oid` of type `type`: where it is, never
 * the secret. */
static int hit_describe(gp_pack *pk, const git_oid *oid, git_object_t type, const char *what,
                        char **why)
{
    char msg[600], hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof(hex), oid);
    if (type == GIT_OBJECT_BLOB) {
        struct name_state ns = {.pk = pk, .target = oid};
        git_odb_foreach(pk->odb, name_object, &ns);
        if (ns.name[0])
            snprintf(msg, sizeof(msg), "%s contains %s", ns.name, what);
        else
            snprintf(msg, sizeof(msg), "blob %.12s contains %s", hex, what);
    } else if (type == GIT_OBJECT_TREE) {
        snprintf(msg, sizeof(msg), "a file name in tree %.12s contains %s", hex, what);
    } else if (type == GIT_OBJECT_TAG) {
        snprintf(msg, sizeof(msg), "tag %.12s (its message or tagger) contains %s", hex, what);
    } else {
        snprintf(msg, sizeof(msg), "commit %.12s (its message or an identity) contains %s", hex,
                 what);
    }
    return (*why = strdup(msg)) ? 1 : AL_ENOMEM;
}

int gp_pack_describe(gp_pack *pk, uint64_t offset, int type, const char *what, char **why)
{
    git_oid oid;
    int err = oids_at(pk, &offset, 1, &oid);
    if (err < 0)
        return err;
    return hit_describe(pk, &oid, (git_object_t)type, what, why);
}

int gp_pack_scan_at(gp_pack *pk, const uint64_t *offs, size_t n, const gp_secretset *set,
                    char **why, gp_pack_tick_fn tick, void *payload)
{
    *why = NULL;
    if (n == 0)
        return 0;
    git_oid *oids = calloc(n, sizeof(*oids));
    if (!oids)
        return AL_ENOMEM;
    int err = oids_at(pk, offs, n, oids);
    for (size_t i = 0; i < n && err == 0; i++) {
        size_t size;
        git_object_t type;
        git_odb_object *obj = NULL;
        if (tick && i % 64 == 63)
            tick(payload);
        if (git_oid_is_zero(&oids[i])) {
            err = al_error_set(AL_EIO, "an object of the pushed pack is not in its index");
            break;
        }
        if (git_odb_read_header(&size, &type, pk->odb, &oids[i]) < 0) {
            err = git_fail(AL_EIO, "cannot read the pushed pack");
            break;
        }
        if (size > GP_SCAN_OBJECT_MAX) {
            char msg[300], hex[GIT_OID_HEXSZ + 1];
            git_oid_tostr(hex, sizeof(hex), &oids[i]);
            snprintf(msg, sizeof(msg),
                     "%s %.12s is stored as a delta larger than the leak guard resolves (%u MiB):"
                     " push it without delta compression (git -c pack.window=0 push), or ask"
                     " the operator",
                     git_object_type2string(type), hex, GP_SCAN_OBJECT_MAX >> 20);
            err = (*why = strdup(msg)) ? 1 : AL_ENOMEM;
            break;
        }
        if (git_odb_read(&obj, pk->odb, &oids[i]) < 0) {
            err = git_fail(AL_EIO, "cannot read the pushed pack");
            break;
        }
        const char *what = NULL;
        const void *data = git_odb_object_data(obj);
        size_t len = git_odb_object_size(obj);
        int hit = type == GIT_OBJECT_TREE ? gp_tree_scan_names(&what, data, len, set)
                                          : gp_scan_buffer2(&what, data, len, set) != 0;
        git_odb_object_free(obj);
        if (hit)
            err = hit_describe(pk, &oids[i], type, what, why);
    }
    free(oids);
    return err;
}

/* ---- fast-forward from the pack's commits ---- */

/* A set of object ids (open addressing), for the walk. */
struct oidset {
    git_oid *slots;
    unsigned char *used;
    size_t cap, len;
};

static int oidset_add(struct oidset *s, const git_oid *id)
{
    if ((s->len + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 256;
        struct oidset n = {calloc(ncap, sizeof(git_oid)), calloc(ncap, 1), ncap, 0};
        if (!n.slots || !n.used) {
            free(n.slots);
            free(n.used);
            return AL_ENOMEM;
        }
        for (size_t i = 0; i < s->cap; i++)
            if (s->used[i])
                oidset_add(&n, &s->slots[i]);
        free(s->slots);
        free(s->used);
        *s = n;
    }
    size_t h;
    memcpy(&h, id->id, sizeof(h));
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->used[i]) {
            s->used[i] = 1;
            git_oid_cpy(&s->slots[i], id);
            s->len++;
            return 1;
        }
        if (git_oid_equal(&s->slots[i], id))
            return 0;
    }
}

static void oidset_free(struct oidset *s)
{
    free(s->slots);
    free(s->used);
}

int gp_pack_descends(gp_pack *pk, const char *new_hex, const char *old_hex)
{
    git_oid old, start;
    if (git_oid_fromstr(&old, old_hex) < 0 || git_oid_fromstr(&start, new_hex) < 0)
        return al_error_set(AL_EINVAL, "bad object id");
    if (git_oid_equal(&old, &start))
        return GP_FF_YES;
    struct oidset seen = {0};
    git_oid *queue = NULL;
    size_t qlen = 0, qcap = 0, head = 0;
    int result = GP_FF_NO, err = 0;
    if ((err = oidset_add(&seen, &start)) < 0)
        goto out;
    if (!(queue = malloc(64 * sizeof(*queue)))) {
        err = AL_ENOMEM;
        goto out;
    }
    qcap = 64;
    git_oid_cpy(&queue[qlen++], &start);
    while (head < qlen) {
        git_oid cur = queue[head++];
        git_odb_object *obj = NULL;
        if (pk->none || !git_odb_exists(pk->odb, &cur)) {
            result = GP_FF_UNKNOWN; /* history that is upstream, not in the pack */
            continue;
        }
        if (git_odb_read(&obj, pk->odb, &cur) < 0) {
            err = git_fail(AL_EIO, "cannot read the pushed pack");
            goto out;
        }
        if (git_odb_object_type(obj) != GIT_OBJECT_COMMIT) {
            git_odb_object_free(obj);
            continue; /* a tag or a tree pushed as a branch tip: no history */
        }
        /* "tree <hex>\n" then "parent <hex>\n"... */
        const char *p = git_odb_object_data(obj);
        const char *end = p + git_odb_object_size(obj);
        if (end - p >= 46 && memcmp(p, "tree ", 5) == 0 && p[45] == '\n')
            p += 46;
        while (end - p >= 48 && memcmp(p, "parent ", 7) == 0 && p[47] == '\n') {
            git_oid parent;
            if (git_oid_fromstrn(&parent, p + 7, GIT_OID_HEXSZ) == 0) {
                if (git_oid_equal(&parent, &old)) {
                    git_odb_object_free(obj);
                    result = GP_FF_YES;
                    goto out;
                }
                int added = oidset_add(&seen, &parent);
                if (added < 0) {
                    git_odb_object_free(obj);
                    err = added;
                    goto out;
                }
                if (added) {
                    if (qlen == qcap) {
                        git_oid *nq = realloc(queue, 2 * qcap * sizeof(*nq));
                        if (!nq) {
                            git_odb_object_free(obj);
                            err = AL_ENOMEM;
                            goto out;
                        }
                        queue = nq;
                        qcap *= 2;
                    }
                    git_oid_cpy(&queue[qlen++], &parent);
                }
            }
            p += 48;
        }
        git_odb_object_free(obj);
    }
out:
    free(queue);
    oidset_free(&seen);
    return err < 0 ? err : result;
}
