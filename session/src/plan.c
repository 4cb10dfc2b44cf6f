/* The mount plan: what the sandbox's filesystem will be, resolved against the
 * host before the sandbox is cloned. */
#include "sandbox_int.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/glob.h"
#include "airlock/log.h"
#include "airlock/path.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Secrets inside the workspace: dotenv files. */
static const char *const builtin_workspace_denied[] = {
    "**/.env*",
};

/* Glob walks stop after this many directory entries per pattern (with a
 * warning naming the pattern): about a tenth of a second of readdir on a
 * warm cache. The built-in dotenv rule skips .git and node_modules, so a
 * large checkout stays well below it. */
#define PLAN_GLOB_MAX_ENTRIES 200000

/* Appends an entry for `path` even when one of the same kind exists. */
static int plan_add_unique(struct sb_plan *plan, enum sb_mount_kind kind, const char *path,
                           int is_dir)
{
    if (plan->len == plan->cap) {
        size_t cap = plan->cap ? plan->cap * 2 : 32;
        struct sb_mount *m = realloc(plan->mounts, cap * sizeof(*m));
        if (!m)
            return AL_ENOMEM;
        plan->mounts = m;
        plan->cap = cap;
    }
    char *copy = strdup(path);
    if (!copy)
        return AL_ENOMEM;
    plan->mounts[plan->len++] = (struct sb_mount){kind, copy, NULL, is_dir, 0};
    return 0;
}

/* Appends an entry for `path` unless one of the same kind is there. */
static int plan_add(struct sb_plan *plan, enum sb_mount_kind kind, const char *path, int is_dir)
{
    for (size_t i = 0; i < plan->len; i++)
        if (plan->mounts[i].kind == kind && strcmp(plan->mounts[i].path, path) == 0)
            return 0;
    return plan_add_unique(plan, kind, path, is_dir);
}

/* Calls add() for each existing host path `pattern` names: itself when it has
 * no glob, every match otherwise. Symlinks are resolved (the target is what
 * gets hidden or bound). */
static int plan_resolve_filtered(struct sb_plan *plan, enum sb_mount_kind kind, const char *pattern,
                                 int files_only, int glob_flags)
{
    struct al_strlist paths = AL_STRLIST_INIT;
    int err = 0;
    if (al_glob_has_magic(pattern)) {
        if ((err = sb_glob_expand(&paths, pattern, PLAN_GLOB_MAX_ENTRIES, glob_flags)) < 0)
            goto out;
    } else if ((err = al_strlist_push(&paths, pattern)) < 0) {
        goto out;
    }
    for (size_t i = 0; i < paths.len; i++) {
        char real[PATH_MAX];
        struct stat st;
        /* lstat first: most credential stores do not exist, and realpath()
         * costs a readlink per component. */
        if ((lstat(paths.items[i], &st) < 0 && errno == ENOENT) ||
            !realpath(paths.items[i], real) || stat(real, &st) < 0) {
            al_log(AL_LOG_DEBUG, "plan: %s does not exist, nothing to %s", paths.items[i],
                   kind == SB_MNT_RW ? "bind" : "hide");
            continue;
        }
        if (files_only && !S_ISREG(st.st_mode))
            continue;
        if ((err = plan_add(plan, kind, real, S_ISDIR(st.st_mode))) < 0)
            goto out;
        if (kind == SB_MNT_RW && (err = al_strlist_push_unique(&plan->writable, real)) < 0)
            goto out;
    }
out:
    al_strlist_free(&paths);
    return err;
}

static int plan_resolve(struct sb_plan *plan, enum sb_mount_kind kind, const char *pattern)
{
    return plan_resolve_filtered(plan, kind, pattern, 0, 0);
}

/* sb_config.file_binds: each host file bound at its `dst`, after every
 * other mount (see SB_MNT_FILE). Several binds may share one source. */
static int plan_file_binds(struct sb_plan *plan, const struct sb_config *cfg)
{
    for (size_t i = 0; i < cfg->n_file_binds; i++) {
        const struct sb_file_bind *b = &cfg->file_binds[i];
        char real[PATH_MAX];
        struct stat st;
        if (!b->dst || b->dst[0] != '/' || strstr(b->dst, "/.."))
            return al_error_set(AL_EINVAL, "file bind at %s: not an absolute path",
                                b->dst ? b->dst : "(null)");
        if (!realpath(b->src, real) || stat(real, &st) < 0 || !S_ISREG(st.st_mode))
            return al_error_set_errno(AL_EINVAL, errno, "file bind %s: not a regular file", b->src);
        /* one entry per destination: several may share a source */
        int err = plan_add_unique(plan, SB_MNT_FILE, real, 0);
        if (err < 0)
            return err;
        struct sb_mount *m = &plan->mounts[plan->len - 1];
        if (!(m->dst = strdup(b->dst)))
            return AL_ENOMEM;
        m->no_remap = 1;
    }
    return 0;
}

/* allowUnixSockets as a list: each listed socket (or directory of sockets)
 * is bound at its real path, so it is reachable even where the sandbox has
 * its own /tmp or /run, or inside a hidden directory (an ssh agent under
 * /tmp, a socket in ~/.ssh). A listed path that is missing (the settings
 * loader warned) or neither a socket nor a directory (warned here) binds
 * nothing. */
static int plan_unix_sockets(struct sb_plan *plan, const struct al_policy *pol)
{
    if (pol->unix_sockets != AL_UNIX_SOCKETS_LIST)
        return 0;
    for (size_t i = 0; i < pol->unix_socket_paths.len; i++) {
        const char *path = pol->unix_socket_paths.items[i];
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(path, real) || stat(real, &st) < 0) {
            al_log(AL_LOG_DEBUG, "plan: %s does not exist, no socket to bind", path);
            continue;
        }
        if (!S_ISSOCK(st.st_mode) && !S_ISDIR(st.st_mode)) {
            al_log(AL_LOG_WARN,
                   "allowUnixSockets: %s is not a unix socket (nor a directory of sockets): "
                   "nothing bound for it",
                   path);
            continue;
        }
        int err = plan_add(plan, SB_MNT_SOCKET, real, S_ISDIR(st.st_mode));
        if (err < 0)
            return err;
    }
    return 0;
}

static size_t path_depth(const char *p)
{
    size_t d = 0;
    for (; *p; p++)
        d += *p == '/';
    return d;
}

static int mount_order(const void *a, const void *b)
{
    const struct sb_mount *x = a, *y = b;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    size_t dx = path_depth(x->path), dy = path_depth(y->path);
    if (dx != dy)
        return dx < dy ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* Every directory between a protected path and the writable root holding it
 * gets pinned: `mv .git .git.old; mkdir -p .git/hooks` would otherwise leave
 * the protection behind, attached to the moved directory. */
static int plan_pin_parents(struct sb_plan *plan)
{
    size_t n = plan->len;
    for (size_t i = 0; i < n; i++) {
        if (plan->mounts[i].kind != SB_MNT_PROTECT)
            continue;
        const char *root = NULL;
        for (size_t w = 0; w < plan->writable.len; w++) {
            const char *r = plan->writable.items[w];
            if (al_path_within(plan->mounts[i].path, r) && (!root || strlen(r) > strlen(root)))
                root = r;
        }
        if (!root)
            continue;
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", plan->mounts[i].path);
        for (char *slash = strrchr(dir, '/'); slash && slash > dir; slash = strrchr(dir, '/')) {
            *slash = '\0';
            if (strlen(dir) <= strlen(root))
                break;
            int err = plan_add(plan, SB_MNT_PIN, dir, 1);
            if (err < 0)
                return err;
        }
    }
    return 0;
}

/* The workspace mounted at `mount` instead of its host path `ws`: every
 * planned path inside it moves there, and so do the writable roots (which
 * Landlock resolves inside the sandbox). */
static int plan_remap_workspace(struct sb_plan *plan, const char *ws, const char *mount)
{
    char p[PATH_MAX];
    size_t n = strlen(ws);
    for (size_t i = 0; i < plan->len; i++) {
        struct sb_mount *m = &plan->mounts[i];
        if (m->no_remap || !al_path_within(m->path, ws))
            continue;
        if ((size_t)snprintf(p, sizeof(p), "%s%s", mount, m->path + n) >= sizeof(p))
            return al_error_set(AL_ETOOBIG, "%s: path too long", m->path);
        if (!(m->dst = strdup(p)))
            return AL_ENOMEM;
    }
    for (size_t i = 0; i < plan->writable.len; i++) {
        char *w = plan->writable.items[i];
        if (!al_path_within(w, ws))
            continue;
        if ((size_t)snprintf(p, sizeof(p), "%s%s", mount, w + n) >= sizeof(p))
            return al_error_set(AL_ETOOBIG, "%s: path too long", w);
        char *copy = strdup(p);
        if (!copy)
            return AL_ENOMEM;
        free(w);
        plan->writable.items[i] = copy;
    }
    return 0;
}

/* Options of a long-lived sandbox: the rootfs, the hidden host paths, the
 * workspace moved to its mount point. */
static int plan_apply_opts(struct sb_plan *plan, const struct sb_config *cfg,
                           const struct sb_plan_opts *opts)
{
    char real[PATH_MAX];
    int err;
    if (opts->rootfs) {
        if (!realpath(opts->rootfs, real))
            return al_error_set_errno(AL_EINVAL, errno, "rootfs %s", opts->rootfs);
        if (!(plan->rootfs = strdup(real)))
            return AL_ENOMEM;
    }
    for (size_t i = 0; i < opts->n_hide; i++) {
        struct stat st;
        if (!realpath(opts->hide[i], real) || stat(real, &st) < 0)
            continue;
        if ((err = plan_add(plan, SB_MNT_MASK, real, S_ISDIR(st.st_mode))) < 0)
            return err;
        plan->mounts[plan->len - 1].no_remap = 1;
    }
    if (!opts->workspace_mount)
        return 0;
    if (opts->workspace_mount[0] != '/' || strcmp(opts->workspace_mount, "/") == 0 ||
        strstr(opts->workspace_mount, "/.."))
        return al_error_set(AL_EINVAL, "workspace mount %s: not an absolute directory",
                            opts->workspace_mount);
    if (!realpath(cfg->cwd, real))
        return al_error_set_errno(AL_EINVAL, errno, "workspace %s", cfg->cwd);
    /* The host copy of the workspace is not visible a second time. */
    if ((err = plan_add(plan, SB_MNT_MASK, real, 1)) < 0)
        return err;
    plan->mounts[plan->len - 1].no_remap = 1;
    return plan_remap_workspace(plan, real, opts->workspace_mount);
}

int sb_plan_build(struct sb_plan *out, const struct sb_config *cfg)
{
    return sb_plan_build_ex(out, cfg, NULL);
}

int sb_plan_build_ex(struct sb_plan *out, const struct sb_config *cfg,
                     const struct sb_plan_opts *opts)
{
    const struct al_policy *pol = cfg->policy;
    struct sb_plan plan = {0};
    struct al_strlist protect = AL_STRLIST_INIT;
    int err = 0;

    for (size_t i = 0; i < pol->allow_write.len; i++) {
        if (strcmp(pol->allow_write.items[i], "/") == 0) {
            err = al_error_set(AL_EINVAL, "refusing to make / writable (allowWrite)");
            goto out;
        }
    }
    if (strcmp(cfg->cwd, "/") == 0) {
        err = al_error_set(AL_EINVAL, "refusing to run in / : the working directory is made "
                                      "writable; cd to a project directory");
        goto out;
    }
    plan.allow_unix_sockets = pol->unix_sockets != AL_UNIX_SOCKETS_NONE;
    plan.allow_local_binding = pol->allow_local_binding;
    if (cfg->n_tcp_connect_ports > sizeof(plan.connect_ports) / sizeof(*plan.connect_ports)) {
        err = al_error_set(AL_EINVAL, "too many proxy ports");
        goto out;
    }
    for (size_t i = 0; i < cfg->n_tcp_connect_ports; i++)
        plan.connect_ports[plan.n_connect_ports++] = cfg->tcp_connect_ports[i];

    /* Writable: the workspace and allowWrite. */
    if ((err = plan_resolve(&plan, SB_MNT_RW, cfg->cwd)) < 0)
        goto out;
    for (size_t i = 0; i < pol->allow_write.len; i++)
        if ((err = plan_resolve(&plan, SB_MNT_RW, pol->allow_write.items[i])) < 0)
            goto out;

    /* The home directory stays readable even where the host's copy of its
     * parent is replaced by a private one (a home under /tmp). */
    char home_real[PATH_MAX];
    struct stat st;
    if (cfg->home && realpath(cfg->home, home_real) && stat(home_real, &st) == 0 &&
        S_ISDIR(st.st_mode) &&
        (al_path_within(home_real, "/tmp") || al_path_within(home_real, "/run"))) {
        if ((err = plan_add(&plan, SB_MNT_RO, home_real, 1)) < 0)
            goto out;
    }
    for (size_t i = 0; i < cfg->n_ro_paths; i++) {
        char real[PATH_MAX];
        if (!realpath(cfg->ro_paths[i], real) || stat(real, &st) < 0)
            continue;
        if ((err = plan_add(&plan, SB_MNT_RO, real, S_ISDIR(st.st_mode))) < 0)
            goto out;
    }

    /* Hidden: dotenv files in the writable roots, then deniedPaths/denyRead
     * (which holds the built-in credential stores, see defaults.c). */
    for (size_t w = 0; w < plan.writable.len; w++) {
        for (size_t i = 0; i < sizeof(builtin_workspace_denied) / sizeof(char *); i++) {
            char pattern[PATH_MAX];
            snprintf(pattern, sizeof(pattern), "%s/%s",
                     strcmp(plan.writable.items[w], "/") ? plan.writable.items[w] : "",
                     builtin_workspace_denied[i]);
            /* Files only: a virtualenv named .env stays usable. Not inside
             * .git or node_modules: git's files and installed packages'. */
            if ((err = plan_resolve_filtered(&plan, SB_MNT_MASK, pattern, 1,
                                             SB_GLOB_SKIP_VENDORED)) < 0)
                goto out;
        }
    }
    for (size_t i = 0; i < pol->deny_read.len; i++)
        if ((err = plan_resolve(&plan, SB_MNT_MASK, pol->deny_read.items[i])) < 0)
            goto out;
    for (size_t i = 0; i < pol->allow_read.len; i++)
        if ((err = plan_resolve(&plan, SB_MNT_REEXPOSE, pol->allow_read.items[i])) < 0)
            goto out;

    /* Write-protected: denyWrite, and the mandatory list in writable roots. */
    for (size_t i = 0; i < pol->deny_write.len; i++)
        if ((err = plan_resolve(&plan, SB_MNT_PROTECT, pol->deny_write.items[i])) < 0)
            goto out;
    for (size_t w = 0; w < plan.writable.len; w++)
        if ((err = sb_protect_discover(&protect, &plan.placeholders, plan.writable.items[w],
                                       pol->mandatory_deny_depth, pol->allow_git_config)) < 0)
            goto out;
    for (size_t i = 0; i < protect.len; i++)
        if ((err = plan_resolve(&plan, SB_MNT_PROTECT, protect.items[i])) < 0)
            goto out;

    /* A re-exposed path only makes sense inside a masked one; a protected
     * path only inside a writable one. Drop the rest. */
    for (size_t i = 0; i < plan.len;) {
        struct sb_mount *m = &plan.mounts[i];
        int keep = 1;
        if (m->kind == SB_MNT_REEXPOSE || m->kind == SB_MNT_PROTECT) {
            enum sb_mount_kind outer = m->kind == SB_MNT_REEXPOSE ? SB_MNT_MASK : SB_MNT_RW;
            keep = 0;
            for (size_t j = 0; j < plan.len && !keep; j++)
                keep = plan.mounts[j].kind == outer && plan.mounts[j].is_dir &&
                       al_path_within(m->path, plan.mounts[j].path) &&
                       strcmp(m->path, plan.mounts[j].path) != 0;
        }
        if (keep) {
            i++;
            continue;
        }
        free(m->path);
        free(m->dst);
        memmove(m, m + 1, (plan.len - i - 1) * sizeof(*m));
        plan.len--;
    }
    if ((err = plan_pin_parents(&plan)) < 0 || (err = plan_unix_sockets(&plan, pol)) < 0 ||
        (err = plan_file_binds(&plan, cfg)) < 0)
        goto out;
    if (opts && (err = plan_apply_opts(&plan, cfg, opts)) < 0)
        goto out;
    qsort(plan.mounts, plan.len, sizeof(*plan.mounts), mount_order);

    if (al_log_enabled(AL_LOG_DEBUG)) {
        static const char *const names[] = {"ro",       "rw",      "pin",    "hide",
                                            "reexpose", "protect", "socket", "file"};
        for (size_t i = 0; i < plan.len; i++)
            al_log(AL_LOG_DEBUG, "plan: %-8s %s%s%s", names[plan.mounts[i].kind],
                   plan.mounts[i].path, plan.mounts[i].dst ? " at " : "",
                   plan.mounts[i].dst ? plan.mounts[i].dst : "");
    }
    *out = plan;
    memset(&plan, 0, sizeof(plan));
out:
    al_strlist_free(&protect);
    sb_plan_remove_placeholders(&plan);
    sb_plan_free(&plan);
    return err;
}

void sb_plan_remove_placeholders(const struct sb_plan *plan)
{
    /* Newest first, so nested placeholders go before their parents. Only
     * empty ones are removed: anything written into them is kept. */
    for (size_t i = plan->placeholders.len; i-- > 0;) {
        const char *p = plan->placeholders.items[i];
        if (rmdir(p) < 0 && errno == ENOTDIR) {
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
                unlink(p);
        }
    }
}

void sb_plan_free(struct sb_plan *plan)
{
    for (size_t i = 0; i < plan->len; i++) {
        free(plan->mounts[i].path);
        free(plan->mounts[i].dst);
    }
    free(plan->mounts);
    free(plan->rootfs);
    al_strlist_free(&plan->writable);
    al_strlist_free(&plan->placeholders);
    memset(plan, 0, sizeof(*plan));
}
