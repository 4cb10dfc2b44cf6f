/* Mandatory write-protection inside writable paths: files that make other
 * programs run code later (git hooks and config, shell rc files, editor and
 * agent config) stay read-only whatever the settings say. */
#include "sandbox_int.h"

#include "airlock/buf.h"
#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PROTECT_MAX_ENTRIES 20000

/* Names protected wherever they are found (files or directories). */
static const char *const protected_names[] = {
    ".gitmodules", ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".zshrc", ".zprofile",
    ".zshenv",     ".zlogin", ".profile",      ".mcp.json",   ".vscode",      ".idea",  ".envrc",
};

/* Paths inside a ".claude" directory. */
static const char *const claude_protected[] = {
    "commands", "agents", "settings.json", "settings.local.json", "hooks",
};

struct protect_walk {
    const char *root; /* the writable root being searched */
    struct al_strlist *out;
    struct al_strlist *placeholders;
    int allow_git_config;
    unsigned max_depth;
    size_t visited;
};

static int push_joined(struct al_strlist *out, const char *dir, const char *name)
{
    char p[PATH_MAX];
    if (al_path_join(p, sizeof(p), dir, name) < 0)
        return 0;
    return al_strlist_push_unique(out, p);
}

/* Files in a git directory that make git run code or read config. */
static const char *const gitdir_files[] = {"config.worktree", "commondir", "info/attributes"};

static int protect_gitdir_depth(struct protect_walk *w, const char *gitdir, unsigned depth);

/* Each subdirectory of `dir` (.git/modules or .git/worktrees) is a git
 * directory of its own (submodules nest: modules/a/modules/b). */
static int protect_gitdir_children(struct protect_walk *w, const char *gitdir, const char *sub,
                                   unsigned depth)
{
    char dir[PATH_MAX];
    if (depth > 4 || al_path_join(dir, sizeof(dir), gitdir, sub) < 0)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int err = 0;
    struct dirent *de;
    while ((de = readdir(d)) && err == 0) {
        char child[PATH_MAX];
        if (de->d_name[0] == '.' || al_path_join(child, sizeof(child), dir, de->d_name) < 0)
            continue;
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
            err = protect_gitdir_depth(w, child, depth + 1);
    }
    closedir(d);
    return err;
}

/* Protects hooks/, config and the other code-running files of the git
 * directory `gitdir`, its submodules' and its worktrees'. Creates hooks/ when
 * it is missing (only inside the writable root: a .git file written by an
 * earlier sandbox may point anywhere) so a hook cannot be planted there. */
static int protect_gitdir(struct protect_walk *w, const char *gitdir)
{
    return protect_gitdir_depth(w, gitdir, 0);
}

static int protect_gitdir_depth(struct protect_walk *w, const char *gitdir, unsigned depth)
{
    char hooks[PATH_MAX];
    int err;
    if (al_path_join(hooks, sizeof(hooks), gitdir, "hooks") < 0)
        return 0;
    struct stat st;
    if (lstat(hooks, &st) < 0 && errno == ENOENT && al_path_within(gitdir, w->root)) {
        if (mkdir(hooks, 0755) == 0) {
            if ((err = al_strlist_push(w->placeholders, hooks)) < 0)
                return err;
        } else {
            al_log(AL_LOG_WARN, "cannot create %s to protect it: %s", hooks, strerror(errno));
        }
    }
    if ((err = al_strlist_push_unique(w->out, hooks)) < 0)
        return err;
    if (!w->allow_git_config && (err = push_joined(w->out, gitdir, "config")) < 0)
        return err;
    for (size_t i = 0; i < sizeof(gitdir_files) / sizeof(*gitdir_files); i++)
        if ((err = push_joined(w->out, gitdir, gitdir_files[i])) < 0)
            return err;
    if ((err = protect_gitdir_children(w, gitdir, "modules", depth)) < 0)
        return err;
    return protect_gitdir_children(w, gitdir, "worktrees", depth);
}

/* `.git` as a file (worktree or submodule): "gitdir: PATH". Protects that
 * git dir and, for a worktree, the common dir it names. */
static int protect_gitfile(struct protect_walk *w, const char *dir, const char *gitfile)
{
    struct al_buf buf;
    al_buf_init(&buf, 4096);
    int err = 0;
    if (al_buf_read_file(&buf, gitfile) < 0 || strncmp(buf.ptr, "gitdir: ", 8) != 0)
        goto out;
    char *target = buf.ptr + 8;
    target[strcspn(target, "\r\n")] = '\0';
    char joined[PATH_MAX], real[PATH_MAX];
    if (al_path_join(joined, sizeof(joined), target[0] == '/' ? "" : dir, target) < 0 ||
        !realpath(joined, real))
        goto out;
    if ((err = protect_gitdir(w, real)) < 0)
        goto out;
    /* Worktrees share hooks and config with the main repository. */
    char commondir_file[PATH_MAX];
    al_buf_reset(&buf);
    if (al_path_join(commondir_file, sizeof(commondir_file), real, "commondir") == 0 &&
        al_buf_read_file(&buf, commondir_file) == 0) {
        buf.ptr[strcspn(buf.ptr, "\r\n")] = '\0';
        char common[PATH_MAX], common_real[PATH_MAX];
        if (al_path_join(common, sizeof(common), buf.ptr[0] == '/' ? "" : real, buf.ptr) == 0 &&
            realpath(common, common_real))
            err = protect_gitdir(w, common_real);
    }
out:
    al_buf_free(&buf);
    return err;
}

static int protect_walk_dir(struct protect_walk *w, const char *dir, unsigned depth)
{
    cleanup_fd int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    DIR *d = fdopendir(fd);
    if (!d)
        return 0;
    fd = -1;
    int err = 0;
    struct dirent *de;
    while ((de = readdir(d)) && err == 0) {
        const char *name = de->d_name;
        if (al_path_is_dot(name))
            continue;
        if (++w->visited > PROTECT_MAX_ENTRIES)
            break;
        char path[PATH_MAX];
        if (al_path_join(path, sizeof(path), dir, name) < 0)
            continue;
        struct stat st;
        if (lstat(path, &st) < 0)
            continue;
        if (strcmp(name, ".git") == 0) {
            if (S_ISDIR(st.st_mode))
                err = protect_gitdir(w, path);
            else if (S_ISREG(st.st_mode))
                err = protect_gitfile(w, dir, path);
            continue;
        }
        if (strcmp(name, ".claude") == 0 && S_ISDIR(st.st_mode)) {
            for (size_t i = 0; i < sizeof(claude_protected) / sizeof(*claude_protected); i++)
                if ((err = push_joined(w->out, path, claude_protected[i])) < 0)
                    break;
            continue;
        }
        int listed = 0;
        for (size_t i = 0; i < sizeof(protected_names) / sizeof(*protected_names); i++)
            listed |= strcmp(name, protected_names[i]) == 0;
        if (listed) {
            err = al_strlist_push_unique(w->out, path);
            continue;
        }
        if (S_ISDIR(st.st_mode) && depth < w->max_depth && strcmp(name, "node_modules") != 0)
            err = protect_walk_dir(w, path, depth + 1);
    }
    closedir(d);
    return err;
}

int sb_protect_discover(struct al_strlist *out, struct al_strlist *placeholders, const char *root,
                        int depth, int allow_git_config)
{
    struct protect_walk w = {
        root, out, placeholders, allow_git_config, depth > 0 ? (unsigned)depth : 3, 0};
    return protect_walk_dir(&w, root, 0);
}
