/* Expansion of path glob patterns against the host filesystem. */
#include "sandbox_int.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/glob.h"
#include "airlock/log.h"
#include "airlock/path.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* `**` descends at most this many directories below the literal prefix
 * (the entry limit bounds the work; this bounds the recursion). A directory
 * not entered because of it is warned about. */
#define GLOB_MAX_DEPTH 32

struct glob_walk {
    const char *pattern;
    struct al_strlist *out;
    size_t visited, max_entries;
    unsigned max_depth;
    int flags;
    int truncated;
    char stopped_in[PATH_MAX]; /* the directory being read when the limit hit */
    int deep;                  /* a directory was not entered: too deep */
    char deep_dir[PATH_MAX];   /* the first such directory */
};

/* Components in `p` after `prefix` ("/a/b/c" after "/a" -> 2). */
static unsigned count_components(const char *p)
{
    unsigned n = 0;
    for (; *p; p++)
        if (*p == '/' && p[1] && p[1] != '/')
            n++;
    return n;
}

static int glob_walk_dir(struct glob_walk *w, char *path, size_t len, unsigned depth)
{
    cleanup_fd int fd = open(len ? path : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    DIR *dir = fdopendir(fd);
    if (!dir)
        return 0;
    fd = -1; /* owned by dir now */
    int err = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (al_path_is_dot(de->d_name))
            continue;
        if (++w->visited > w->max_entries) {
            w->truncated = 1;
            snprintf(w->stopped_in, sizeof(w->stopped_in), "%.*s", (int)(len ? len : 1),
                     len ? path : "/");
            break;
        }
        size_t nlen = strlen(de->d_name);
        if (len + 1 + nlen >= PATH_MAX)
            continue;
        path[len] = '/';
        memcpy(path + len + 1, de->d_name, nlen + 1);
        if (al_glob_match(w->pattern, path) && (err = al_strlist_push(w->out, path)) < 0)
            break;
        int is_dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
        }
        if (is_dir && (w->flags & SB_GLOB_SKIP_VENDORED) &&
            (strcmp(de->d_name, ".git") == 0 || strcmp(de->d_name, "node_modules") == 0))
            continue;
        if (is_dir && depth + 1 >= w->max_depth && w->max_depth == GLOB_MAX_DEPTH && !w->deep) {
            w->deep = 1;
            snprintf(w->deep_dir, sizeof(w->deep_dir), "%s", path);
        }
        if (is_dir && depth + 1 < w->max_depth &&
            (err = glob_walk_dir(w, path, len + 1 + nlen, depth + 1)) < 0)
            break;
    }
    path[len] = '\0';
    closedir(dir);
    return err;
}

int sb_glob_expand(struct al_strlist *out, const char *pattern, size_t max_entries, int flags)
{
    cleanup_free char *prefix = al_glob_literal_prefix(pattern);
    if (!prefix)
        return AL_ENOMEM;
    struct glob_walk w = {
        .pattern = pattern,
        .out = out,
        .max_entries = max_entries,
        .flags = flags,
        .max_depth =
            strstr(pattern, "**") ? GLOB_MAX_DEPTH : count_components(pattern + strlen(prefix)),
    };
    char path[PATH_MAX];
    size_t len = strcmp(prefix, "/") == 0 ? 0 : strlen(prefix);
    if (len >= sizeof(path))
        return al_error_set(AL_EINVAL, "%s: path too long", pattern);
    memcpy(path, prefix, len + 1);
    if (len == 0)
        path[0] = '\0';
    int err = glob_walk_dir(&w, path, len, 0);
    if (w.truncated)
        al_log(AL_LOG_WARN,
               "pattern %s: searched %zu entries and stopped (in %s): files it matches that "
               "were not reached yet are NOT hidden; name a narrower folder in the pattern",
               pattern, max_entries, w.stopped_in);
    if (w.deep)
        al_log(AL_LOG_WARN,
               "pattern %s: \"**\" searches %d levels deep; %s and other folders below that "
               "depth were not searched, and files there are NOT hidden",
               pattern, GLOB_MAX_DEPTH, w.deep_dir);
    return err;
}
