/* Push inspection in a front worker (gp_inspect.h): the pushed pack is
 * indexed as it streams, then scanned and walked. Nothing here holds a
 * secret: the leak guard looks for fingerprints (gp_scan.h). */
#include "gp_inspect.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <dirent.h>
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
    /* The mirrors belong to the proxy's own user. */
    git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
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

/* ---- the leak guard ---- */

struct scan_state {
    gp_pack *pk;
    const gp_secretset *set;
    gp_pack_tick_fn tick;
    void *payload;
    size_t seen;
    git_oid hit;
    git_object_t hit_type;
    const char *what;
    int found; /* 1 secret, 2 too large to read */
    int err;
};

/* Scans each entry name of a raw tree. */
static int scan_tree(const char **what, const unsigned char *p, size_t len,
                     const gp_secretset *set)
{
    const unsigned char *end = p + len;
    while (p < end) {
        const unsigned char *sp = memchr(p, ' ', (size_t)(end - p));
        const unsigned char *nul = sp ? memchr(sp, '\0', (size_t)(end - sp)) : NULL;
        if (!nul || (size_t)(end - nul) < 1 + GIT_OID_RAWSZ)
            return 0; /* the indexer accepted it; nothing more to read */
        if (gp_scan_buffer2(what, sp + 1, (size_t)(nul - sp - 1), set))
            return 1;
        p = nul + 1 + GIT_OID_RAWSZ;
    }
    return 0;
}

static int scan_object(const git_oid *oid, void *payload)
{
    struct scan_state *st = payload;
    size_t size;
    git_object_t type;
    git_odb_object *obj = NULL;
    if (st->tick && ++st->seen % 64 == 0)
        st->tick(st->payload);
    if (git_odb_read_header(&size, &type, st->pk->odb, oid) < 0) {
        st->err = git_fail(AL_EIO, "cannot read the pushed pack");
        return 1;
    }
    if (size > GP_SCAN_OBJECT_MAX) {
        git_oid_cpy(&st->hit, oid);
        st->hit_type = type;
        st->found = 2;
        return 1;
    }
    if (git_odb_read(&obj, st->pk->odb, oid) < 0) {
        st->err = git_fail(AL_EIO, "cannot read the pushed pack");
        return 1;
    }
    const unsigned char *data = git_odb_object_data(obj);
    size_t len = git_odb_object_size(obj);
    const char *what = NULL;
    int hit = type == GIT_OBJECT_TREE ? scan_tree(&what, data, len, st->set)
                                      : gp_scan_buffer2(&what, data, len, st->set);
    git_odb_object_free(obj);
    if (hit) {
        git_oid_cpy(&st->hit, oid);
        st->hit_type = type;
        st->what = what;
        st->found = 1;
    }
    return hit;
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

int gp_pack_scan(gp_pack *pk, const gp_secretset *set, char **why, gp_pack_tick_fn tick,
                 void *payload)
{
    struct scan_state st = {.pk = pk, .set = set, .tick = tick, .payload = payload};
    char msg[600], hex[GIT_OID_HEXSZ + 1];
    *why = NULL;
    if (pk->none)
        return 0;
    git_odb_foreach(pk->odb, scan_object, &st);
    if (st.err)
        return st.err;
    if (!st.found)
        return 0;
    git_oid_tostr(hex, sizeof(hex), &st.hit);
    if (st.found == 2) {
        snprintf(msg, sizeof(msg),
                 "%s %.12s is larger than the leak guard reads (%u MiB): split the file, or ask"
                 " the operator",
                 git_object_type2string(st.hit_type), hex, GP_SCAN_OBJECT_MAX >> 20);
    } else if (st.hit_type == GIT_OBJECT_BLOB) {
        struct name_state ns = {.pk = pk, .target = &st.hit};
        git_odb_foreach(pk->odb, name_object, &ns);
        if (ns.name[0])
            snprintf(msg, sizeof(msg), "%s contains %s", ns.name, st.what);
        else
            snprintf(msg, sizeof(msg), "blob %.12s contains %s", hex, st.what);
    } else if (st.hit_type == GIT_OBJECT_TREE) {
        snprintf(msg, sizeof(msg), "a file name in tree %.12s contains %s", hex, st.what);
    } else if (st.hit_type == GIT_OBJECT_TAG) {
        snprintf(msg, sizeof(msg), "tag %.12s (its message or tagger) contains %s", hex, st.what);
    } else {
        snprintf(msg, sizeof(msg), "commit %.12s (its message or an identity) contains %s", hex,
                 st.what);
    }
    return (*why = strdup(msg)) ? 1 : AL_ENOMEM;
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
