#include "gp_inspect.h"
#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <git2.h>
#include <git2/sys/odb_backend.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

static pthread_mutex_t mirror_lock = PTHREAD_MUTEX_INITIALIZER;

int gp_inspect_global_init(const char *ca_file)
{
    /* No git configuration is read but the mirrors' own: the ProgramData,
     * system, XDG and global search paths are empty, so neither the
     * environment the proxy was started with (HOME, XDG_CONFIG_HOME) nor any
     * user's or the system's gitconfig changes how a mirror is created or
     * fetched, and libgit2 never looks into a home the proxy user cannot
     * enter ("failed to stat '/root/.gitconfig'"). */
    static const int levels[] = {GIT_CONFIG_LEVEL_PROGRAMDATA, GIT_CONFIG_LEVEL_SYSTEM,
                                 GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL};
    if (git_libgit2_init() < 0)
        return al_error_set(AL_ERROR, "libgit2 init failed");
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "") < 0)
            return al_error_set(AL_ERROR, "libgit2: cannot clear the config search paths");
    /* Owner validation stays on: the proxy opens only the mirrors of its own
     * cache_dir, which it hands to the user it runs as at start (main.c), so
     * a repository owned by anyone else there is refused. safe.directory
     * cannot widen that: no global config is read. */
    if (git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 1) < 0)
        return al_error_set(AL_ERROR, "libgit2: cannot enable owner validation");
    /* Bound what libgit2 keeps mapped and cached while indexing big packs:
     * the proxy's memory must not grow with the size of a push. */
    git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, (size_t)(1u << 20));
    git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, (size_t)(8u << 20));
    git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)(4u << 20));
    if (ca_file && git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, ca_file, NULL) < 0)
        return al_error_set(AL_EINVAL, "libgit2 cannot use CA file %s", ca_file);
    return 0;
}

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A literal prefix followed by at least `min` characters of [A-Za-z0-9_]. */
static int scan_prefixed(const char *data, size_t len, const char *prefix, size_t min,
                         int upper_digits_only)
{
    size_t plen = strlen(prefix);
    const char *p = data, *end = data + len;
    while ((p = memmem(p, (size_t)(end - p), prefix, plen)) != NULL) {
        const char *q = p + plen;
        size_t n = 0;
        while (q + n < end &&
               (upper_digits_only ? ((q[n] >= 'A' && q[n] <= 'Z') || (q[n] >= '0' && q[n] <= '9'))
                                  : (is_alnum(q[n]) || q[n] == '_')))
            n++;
        if (n >= min)
            return 1;
        p += plen;
    }
    return 0;
}

int gp_scan_buffer(const char **what, const char *data, size_t len,
                   const struct al_strlist *secrets)
{
    if (secrets) {
        for (size_t i = 0; i < secrets->len; i++) {
            size_t n = strlen(secrets->items[i]);
            if (n >= 8 && memmem(data, len, secrets->items[i], n)) {
                *what = "an upstream credential held by airlock";
                return 1;
            }
        }
    }
    if (scan_prefixed(data, len, "ghp_", 36, 0) || scan_prefixed(data, len, "gho_", 36, 0) ||
        scan_prefixed(data, len, "ghu_", 36, 0) || scan_prefixed(data, len, "ghs_", 36, 0) ||
        scan_prefixed(data, len, "ghr_", 36, 0)) {
        *what = "a GitHub token";
        return 1;
    }
    if (scan_prefixed(data, len, "github_pat_", 22, 0)) {
        *what = "a GitHub fine-grained token";
        return 1;
    }
    if (scan_prefixed(data, len, "AKIA", 16, 1)) {
        *what = "an AWS access key id";
        return 1;
    }
    const char *p = data, *end = data + len;
    while ((p = memmem(p, (size_t)(end - p), "-----BEGIN ", 11)) != NULL) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (l < 128 && memmem(p, l, "PRIVATE KEY-----", 16)) {
            *what = "a PEM private key";
            return 1;
        }
        p += 11;
    }
    return 0;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                return al_error_set_errno(AL_EIO, errno, "mkdir %s", tmp);
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return al_error_set_errno(AL_EIO, errno, "mkdir %s", tmp);
    return 0;
}

/* AL_EIO with "what: <libgit2's message>" in al_error_last(), for the
 * proxy's log and audit record (libgit2 names paths and URLs; the real
 * credential travels in a header and is never part of it). */
static int git_fail(const char *what)
{
    const git_error *e = git_error_last();
    return al_error_set(AL_EIO, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

/* Opens (creating) the mirror and fetches upstream's branches and tags into
 * it with the real credential. Caller holds mirror_lock. On a failed fetch
 * *fault becomes GP_INSPECT_FAULT_UPSTREAM; other failures leave it. */
static int mirror_update(git_repository **out, enum gp_inspect_fault *fault,
                         const struct gp_inspect *in)
{
    char path[4096];
    git_repository *repo = NULL;
    git_remote *remote = NULL;
    int err = 0;
    snprintf(path, sizeof(path), "%s/mirrors/%s.git", in->cache_dir, in->repo);
    if (git_repository_open_bare(&repo, path) < 0) {
        if ((err = mkdir_p(path)) < 0)
            return err;
        if (git_repository_init(&repo, path, 1) < 0)
            return git_fail("cannot create the mirror");
    }
    char *refspecs[] = {"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"};
    git_strarray specs = {refspecs, 2};
    char *hdrs[] = {(char *)in->auth_header};
    git_fetch_options fo;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.custom_headers.strings = hdrs;
    fo.custom_headers.count = 1;
    fo.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
    fo.prune = GIT_FETCH_PRUNE;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    /* No url.<base>.insteadOf of the mirror's config may send the fetch
     * (and the real credential) elsewhere; skipping it also skips
     * libgit2 1.5's config iteration by regexp, which leaks a pcre2 match
     * block for every entry that does not match, on every push. */
    git_remote_create_options ro;
    git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    ro.repository = repo;
    ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    if (git_remote_create_with_opts(&remote, in->url, &ro) < 0) {
        err = git_fail("cannot set up the mirror's fetch");
        goto out;
    }
    if (git_remote_fetch(remote, &specs, &fo, NULL) < 0) {
        *fault = GP_INSPECT_FAULT_UPSTREAM;
        err = git_fail("cannot fetch upstream into the mirror");
        goto out;
    }
    *out = repo;
    repo = NULL;
out:
    git_remote_free(remote);
    git_repository_free(repo);
    return err;
}

/* A failed git_indexer_append/commit: the proxy's own fault when libgit2
 * says the system failed (writing the index, memory), else the pack's. */
static int pack_fail(void)
{
    const git_error *e = git_error_last();
    int ours = e && (e->klass == GIT_ERROR_OS || e->klass == GIT_ERROR_NOMEMORY);
    int err = git_fail(ours ? "cannot index the pushed pack" : "the pushed pack is unusable");
    return ours ? err : AL_EINVAL;
}

/* Indexes the pushed pack (thin packs completed from `odb`) into tmpdir and
 * returns the .idx path in idx_path. AL_EINVAL when the pack itself is at
 * fault (malformed, or a thin pack whose bases the mirror lacks); AL_EIO or
 * AL_ENOMEM when the proxy is (its files, its memory). */
static int pack_index(char *idx_path, size_t cap, const struct gp_inspect *in, git_odb *odb,
                      const char *tmpdir)
{
    git_indexer *idx = NULL;
    git_indexer_progress stats = {0};
    git_indexer_options opts;
    git_indexer_options_init(&opts, GIT_INDEXER_OPTIONS_VERSION);
    char *chunk = NULL;
    int err = 0;
    if (git_indexer_new(&idx, tmpdir, 0600, odb, &opts) < 0)
        return git_fail("cannot index the pushed pack");
    if (!(chunk = malloc(1 << 16))) {
        err = AL_ENOMEM;
        goto out;
    }
    off_t off = in->pack_offset;
    for (;;) {
        ssize_t n = pread(in->spool_fd, chunk, 1 << 16, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = al_error_set_errno(AL_EIO, errno, "read spool");
            goto out;
        }
        if (n == 0)
            break;
        if (git_indexer_append(idx, chunk, (size_t)n, &stats) < 0) {
            err = pack_fail();
            goto out;
        }
        off += n;
    }
    if (git_indexer_commit(idx, &stats) < 0) {
        err = pack_fail();
        goto out;
    }
    snprintf(idx_path, cap, "%s/pack-%s.idx", tmpdir, git_indexer_name(idx));
out:
    free(chunk);
    git_indexer_free(idx);
    return err;
}

struct scan_state {
    git_odb *pack_odb;   /* only the pushed pack */
    git_odb *mirror_odb; /* upstream objects */
    const struct al_strlist *secrets;
    git_oid hit;
    const char *what;
    int found;
};

static int scan_object(const git_oid *oid, void *payload)
{
    struct scan_state *st = payload;
    size_t size;
    git_object_t type;
    git_odb_object *obj = NULL;
    if (git_odb_exists(st->mirror_odb, oid))
        return 0; /* already upstream (a thin pack base) */
    if (git_odb_read_header(&size, &type, st->pack_odb, oid) < 0 || type != GIT_OBJECT_BLOB ||
        size > GP_SCAN_BLOB_MAX)
        return 0;
    if (git_odb_read(&obj, st->pack_odb, oid) < 0)
        return 0;
    const char *what;
    if (gp_scan_buffer(&what, git_odb_object_data(obj), git_odb_object_size(obj), st->secrets)) {
        git_oid_cpy(&st->hit, oid);
        st->what = what;
        st->found = 1;
    }
    git_odb_object_free(obj);
    return st->found ? 1 : 0;
}

struct name_state {
    git_repository *repo;
    git_odb *pack_odb;
    const git_oid *target;
    char name[512];
};

static int name_object(const git_oid *oid, void *payload)
{
    struct name_state *st = payload;
    size_t size;
    git_object_t type;
    git_tree *tree = NULL;
    if (git_odb_read_header(&size, &type, st->pack_odb, oid) < 0 || type != GIT_OBJECT_TREE)
        return 0;
    if (git_tree_lookup(&tree, st->repo, oid) < 0)
        return 0;
    const git_tree_entry *e = git_tree_entry_byid(tree, st->target);
    if (e)
        snprintf(st->name, sizeof(st->name), "%s", git_tree_entry_name(e));
    git_tree_free(tree);
    return e ? 1 : 0;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[4096];
    if (d) {
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int set_reason(char **reasons, size_t i, const char *why)
{
    free(reasons[i]);
    reasons[i] = strdup(why);
    return reasons[i] ? 0 : AL_ENOMEM;
}

int gp_inspect_push(const struct gp_inspect *in, const struct gp_receive *r, char **reasons,
                    enum gp_inspect_fault *fault)
{
    git_repository *repo = NULL;
    git_odb *odb = NULL, *pack_odb = NULL;
    git_odb_backend *be = NULL, *be2 = NULL;
    char tmpdir[4096] = "";
    char idx_path[4200];
    int err = 0;
    *fault = GP_INSPECT_FAULT_PROXY;
    pthread_mutex_lock(&mirror_lock);
    if ((err = mirror_update(&repo, fault, in)) < 0)
        goto out;
    if (git_repository_odb(&odb, repo) < 0) {
        err = git_fail("cannot open the mirror");
        goto out;
    }
    if (in->has_pack) {
        snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", in->cache_dir);
        if ((err = mkdir_p(tmpdir)) < 0)
            goto out;
        snprintf(tmpdir, sizeof(tmpdir), "%s/tmp/push-XXXXXX", in->cache_dir);
        if (!mkdtemp(tmpdir)) {
            err = al_error_set_errno(AL_EIO, errno, "mkdtemp %s", tmpdir);
            tmpdir[0] = '\0';
            goto out;
        }
        err = pack_index(idx_path, sizeof(idx_path), in, odb, tmpdir);
        if (err == AL_EINVAL) {
            /* the push's own fault: every command is refused with it */
            al_log(AL_LOG_WARN, "%s: push refused: %s", in->repo, al_error_last());
            err = 0;
            for (size_t i = 0; i < r->ncmds && err == 0; i++)
                err = set_reason(reasons, i, "the pushed pack is malformed or incomplete");
            goto out;
        }
        if (err < 0)
            goto out;
        if (in->leak_guard) {
            struct scan_state st = {0};
            if (git_odb_new(&pack_odb) < 0 || git_odb_backend_one_pack(&be2, idx_path) < 0 ||
                git_odb_add_backend(pack_odb, be2, 1) < 0) {
                err = git_fail("cannot open the pushed pack");
                goto out;
            }
            be2 = NULL;
            st.pack_odb = pack_odb;
            st.mirror_odb = odb;
            st.secrets = in->secrets;
            git_odb_foreach(pack_odb, scan_object, &st);
            if (st.found) {
                struct name_state ns = {.repo = repo, .pack_odb = pack_odb, .target = &st.hit};
                char msg[700];
                /* Trees of the pack are read through the mirror repository
                 * once the pack is attached below. */
                if (git_odb_backend_one_pack(&be, idx_path) == 0 &&
                    git_odb_add_backend(odb, be, 1000) == 0) {
                    be = NULL;
                    git_odb_foreach(pack_odb, name_object, &ns);
                }
                if (!ns.name[0]) {
                    char hex[GIT_OID_HEXSZ + 1];
                    git_oid_tostr(hex, sizeof(hex), &st.hit);
                    snprintf(ns.name, sizeof(ns.name), "blob %s", hex);
                }
                snprintf(msg, sizeof(msg), "%s contains %s", ns.name, st.what);
                for (size_t i = 0; i < r->ncmds; i++)
                    if (!gp_oid_is_zero(r->cmds[i].new_oid) &&
                        (err = set_reason(reasons, i, msg)) < 0)
                        goto out;
                goto out;
            }
        }
        if (git_odb_backend_one_pack(&be, idx_path) < 0 || git_odb_add_backend(odb, be, 1000) < 0) {
            err = git_fail("cannot open the pushed pack");
            goto out;
        }
        be = NULL;
    }
    if (in->check_ff) {
        for (size_t i = 0; i < r->ncmds; i++) {
            const struct gp_command *c = &r->cmds[i];
            git_oid old, new;
            if (reasons[i] || gp_oid_is_zero(c->old_oid) || gp_oid_is_zero(c->new_oid))
                continue;
            if (git_oid_fromstr(&old, c->old_oid) < 0 || git_oid_fromstr(&new, c->new_oid) < 0)
                continue;
            if (git_oid_equal(&old, &new))
                continue;
            if (!git_odb_exists(odb, &old)) {
                if ((err = set_reason(reasons, i, "upstream changed; fetch first")) < 0)
                    goto out;
                continue;
            }
            int d = git_graph_descendant_of(repo, &new, &old);
            if (d != 1 && (err = set_reason(reasons, i, "non-fast-forward update refused")) < 0)
                goto out;
        }
    }
out:
    if (be)
        be->free(be);
    if (be2)
        be2->free(be2);
    git_odb_free(pack_odb);
    git_odb_free(odb);
    git_repository_free(repo);
    pthread_mutex_unlock(&mirror_lock);
    if (tmpdir[0])
        rm_dir(tmpdir);
    return err;
}
