/* Resource limits with cgroups: v2 where this process's cgroup delegates
 * the controllers, v1 hierarchies otherwise. The sandbox's cgroup is created
 * below this process's own cgroup and removed when the sandbox ends. */
#include "sandbox_int.h"

#include "airlock/sbsession.h"

#include "airlock/buf.h"
#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { CG_MEMORY = 0, CG_PIDS = 1, CG_CPU = 2 };
static const char *const cg_names[] = {"memory", "pids", "cpu"};

static int cg_write(const char *dir, const char *file, const char *value)
{
    char path[PATH_MAX];
    if (al_path_join(path, sizeof(path), dir, file) < 0)
        return al_error_set(AL_ETOOBIG, "cgroup: path too long");
    cleanup_fd int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "cgroup: open %s", path);
    ssize_t n = write(fd, value, strlen(value));
    if (n < 0)
        return al_error_set_errno(AL_EIO, errno, "cgroup: write %s to %s", value, path);
    return 0;
}

/* Copies the line of `text` starting at `p` into `line` (cut to `size`,
 * without its newline); returns where the next one starts, NULL at the end. */
static const char *cg_next_line(const char *p, char *line, size_t size)
{
    if (!p || !*p)
        return NULL;
    size_t n = strcspn(p, "\n");
    snprintf(line, size, "%.*s", (int)n, p);
    return p[n] ? p + n + 1 : p + n;
}

/* The mount point of the cgroup hierarchy holding `controller` (v1), or of
 * the v2 hierarchy when `controller` is NULL, from `mountinfo` (the text
 * of /proc/self/mountinfo). */
static char *cg_find_mount(const char *mountinfo, const char *controller)
{
    char line[4096];
    for (const char *p = mountinfo; (p = cg_next_line(p, line, sizeof(line)));) {
        /* ... mountpoint ... - fstype source superoptions */
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        char fstype[32], source[256], opts[1024];
        if (sscanf(sep + 3, "%31s %255s %1023s", fstype, source, opts) != 3)
            continue;
        char *fields[5] = {0};
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        for (int i = 0; tok && i < 5; i++, tok = strtok_r(NULL, " ", &save))
            fields[i] = tok;
        if (!fields[4])
            continue;
        if (!controller && strcmp(fstype, "cgroup2") == 0)
            return strdup(fields[4]);
        if (controller && strcmp(fstype, "cgroup") == 0) {
            char *o, *s2 = NULL;
            for (o = strtok_r(opts, ",", &s2); o; o = strtok_r(NULL, ",", &s2))
                if (strcmp(o, controller) == 0)
                    return strdup(fields[4]);
        }
    }
    return NULL;
}

/* This process's cgroup path in the hierarchy of `controller` (v1) or in
 * the v2 hierarchy ("0::") when `controller` is NULL, from `cgroups` (the
 * text of /proc/self/cgroup). */
static char *cg_own_path(const char *cgroups, const char *controller)
{
    char line[4096];
    for (const char *p = cgroups; (p = cg_next_line(p, line, sizeof(line)));) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = '\0'; /* line: the hierarchy id */
        *c2 = '\0';
        const char *list = c1 + 1;
        if (!controller) {
            if (strcmp(line, "0") == 0 && *list == '\0')
                return strdup(c2 + 1);
            continue;
        }
        char copy[256], *s2 = NULL;
        snprintf(copy, sizeof(copy), "%s", list);
        for (char *o = strtok_r(copy, ",", &s2); o; o = strtok_r(NULL, ",", &s2))
            if (strcmp(o, controller) == 0)
                return strdup(c2 + 1);
    }
    return NULL;
}

/* mount/own/name, or mount/own/airlock-PID-NSEC without a name. */
static char *cg_child_path(const char *mount, const char *own, const char *name)
{
    char path[PATH_MAX];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int n = name ? snprintf(path, sizeof(path), "%s%s/%s", mount, strcmp(own, "/") ? own : "", name)
                 : snprintf(path, sizeof(path), "%s%s/airlock-%d-%lx", mount,
                            strcmp(own, "/") ? own : "", (int)getpid(), (unsigned long)ts.tv_nsec);
    if (n < 0 || (size_t)n >= sizeof(path))
        return NULL;
    return strdup(path);
}

/* Creates the cgroup directory `path` (NULL: out of memory). */
static int cg_mkdir(const char *path, const char *what)
{
    if (!path)
        return al_error_set(AL_ETOOBIG, "%s: path too long", what);
    if (mkdir(path, 0755) == 0)
        return 0;
    if (errno == EEXIST)
        return al_error_set(AL_EEXISTS, "%s: %s exists already", what, path);
    return al_error_set_errno(AL_EIO, errno, "%s: mkdir %s", what, path);
}

/* Reads the controller list `file` of the v2 cgroup `dir` into `words`
 * as " a b c " (blank-separated, a blank at each end). 0, or -1 when it
 * cannot be read. */
static int cg_read_words(const char *dir, const char *file, char *words, size_t size)
{
    char path[PATH_MAX];
    struct al_buf b;
    al_buf_init(&b, 4096);
    int ok = al_path_join(path, sizeof(path), dir, file) == 0 && al_buf_read_file(&b, path) == 0;
    if (ok) {
        snprintf(words, size, " %s ", b.ptr);
        for (char *p = words; *p; p++)
            if (*p == '\n')
                *p = ' ';
    }
    al_buf_free(&b);
    return ok ? 0 : -1;
}

/* 1 when the list `words` (see cg_read_words) names `controller`. */
static int cg_has(const char *words, const char *controller)
{
    char word[32];
    snprintf(word, sizeof(word), " %s ", controller);
    return strstr(words, word) != NULL;
}

/* 1 when the v2 cgroup `dir` lets children use every controller needed. */
static int cg_v2_delegates(const char *dir, const struct sb_config *cfg)
{
    char on[4200];
    return cg_read_words(dir, "cgroup.subtree_control", on, sizeof(on)) == 0 &&
           (!cfg->memory_mb || cg_has(on, "memory")) && (!cfg->pids || cg_has(on, "pids")) &&
           (!cfg->cpus || cg_has(on, "cpu"));
}

static int cg_set_limits(struct sb_cgroup *cg, const struct sb_config *cfg)
{
    char v[64];
    int err = 0;
    const char *mem = cg->paths[cg->version == 2 ? 0 : CG_MEMORY];
    const char *pids = cg->paths[cg->version == 2 ? 0 : CG_PIDS];
    const char *cpu = cg->paths[cg->version == 2 ? 0 : CG_CPU];
    if (cfg->memory_mb) {
        snprintf(v, sizeof(v), "%llu", (unsigned long long)cfg->memory_mb << 20);
        if (cg->version == 2) {
            if ((err = cg_write(mem, "memory.max", v)) < 0)
                return err;
            cg_write(mem, "memory.swap.max", "0"); /* absent without swap accounting */
        } else {
            if ((err = cg_write(mem, "memory.limit_in_bytes", v)) < 0)
                return err;
            cg_write(mem, "memory.memsw.limit_in_bytes", v);
            cg_write(mem, "memory.swappiness", "0");
        }
    }
    if (cfg->pids) {
        snprintf(v, sizeof(v), "%llu", (unsigned long long)cfg->pids);
        if ((err = cg_write(pids, "pids.max", v)) < 0)
            return err;
    }
    if (cfg->cpus > 0) {
        long quota = (long)(cfg->cpus * 100000.0);
        if (quota < 1000)
            quota = 1000;
        if (cg->version == 2) {
            snprintf(v, sizeof(v), "%ld 100000", quota);
            err = cg_write(cpu, "cpu.max", v);
        } else {
            snprintf(v, sizeof(v), "%ld", quota);
            if ((err = cg_write(cpu, "cpu.cfs_period_us", "100000")) == 0)
                err = cg_write(cpu, "cpu.cfs_quota_us", v);
        }
    }
    return err;
}

int sb_cgroup_create(struct sb_cgroup *out, const struct sb_config *cfg)
{
    return sb_cgroup_create_named(out, cfg, NULL);
}

/* Set by sbs_cgroup_delegate_self(): the v2 cgroup (path below the mount)
 * this process left for its leaf, where sandbox cgroups go from then on. */
static char *v2_parent;

int sb_cgroup_v2_leaf(const char *dir, const char *leaf, pid_t pid)
{
    char avail[4200], on[4200];
    if (cg_read_words(dir, "cgroup.controllers", avail, sizeof(avail)) < 0 ||
        cg_read_words(dir, "cgroup.subtree_control", on, sizeof(on)) < 0)
        return al_error_set(AL_EIO, "cgroup v2: cannot read the controllers of %s", dir);
    /* the controllers this cgroup has and does not yet pass on */
    char want[64] = "";
    for (int c = 0; c < 3; c++) {
        if (cg_has(avail, cg_names[c]) && !cg_has(on, cg_names[c])) {
            size_t n = strlen(want);
            snprintf(want + n, sizeof(want) - n, "%s+%s", n ? " " : "", cg_names[c]);
        }
    }
    if (!want[0])
        return 0; /* nothing to pass on: nothing to do */
    char path[PATH_MAX];
    if (!leaf[0] || strchr(leaf, '/') || al_path_is_dot(leaf) ||
        al_path_join(path, sizeof(path), dir, leaf) < 0)
        return al_error_set(AL_EINVAL, "cgroup v2: bad leaf name \"%s\"", leaf);
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return al_error_set_errno(AL_EIO, errno, "cgroup v2: mkdir %s", path);
    char v[32];
    snprintf(v, sizeof(v), "%d", (int)pid);
    /* "No internal processes": the controllers can be passed on only once
     * no process is left in `dir` itself */
    int err = cg_write(path, "cgroup.procs", v);
    if (err == 0)
        err = cg_write(dir, "cgroup.subtree_control", want);
    return err < 0 ? err : 1;
}

/* Reads /proc/self/mountinfo and /proc/self/cgroup into the two buffers
 * (the caller frees both, also on failure). 0, or AL_EIO. */
static int cg_read_self(struct al_buf *mountinfo, struct al_buf *cgroups)
{
    al_buf_init(mountinfo, 1 << 20);
    al_buf_init(cgroups, 1 << 16);
    if (al_buf_read_file(mountinfo, "/proc/self/mountinfo") < 0 ||
        al_buf_read_file(cgroups, "/proc/self/cgroup") < 0)
        return al_error_set(AL_EIO, "cgroup: cannot read this process's cgroups: %s",
                            al_error_last());
    return 0;
}

int sbs_cgroup_delegate_self(const char *leaf)
{
    struct al_buf mountinfo, cgroups;
    char *mnt = NULL, *own = NULL;
    int err = cg_read_self(&mountinfo, &cgroups);
    if (err < 0)
        goto out;
    mnt = cg_find_mount(mountinfo.ptr, NULL);
    own = mnt ? cg_own_path(cgroups.ptr, NULL) : NULL;
    char dir[PATH_MAX];
    /* no v2 here, or the root cgroup (no rule against processes there) */
    if (!own || strcmp(own, "/") == 0 || al_path_join(dir, sizeof(dir), mnt, own) < 0)
        goto out;
    err = sb_cgroup_v2_leaf(dir, leaf, getpid());
    if (err == 1) {
        free(v2_parent);
        v2_parent = own;
        own = NULL;
    }
out:
    free(mnt);
    free(own);
    al_buf_free(&mountinfo);
    al_buf_free(&cgroups);
    return err;
}

int sb_cgroup_create_named(struct sb_cgroup *out, const struct sb_config *cfg, const char *name)
{
    memset(out, 0, sizeof(*out));
    if (!cfg->memory_mb && !cfg->pids && cfg->cpus <= 0 && !name)
        return 0;
    if (name && (!name[0] || strchr(name, '/') || al_path_is_dot(name) || strlen(name) > 128))
        return al_error_set(AL_EINVAL, "bad cgroup name \"%s\"", name);
    struct sb_cgroup cg = {0};
    int err = 0;
    char dir[PATH_MAX];
    /* Read once, looked up for each hierarchy. */
    struct al_buf mountinfo, cgroups;
    if ((err = cg_read_self(&mountinfo, &cgroups)) < 0) {
        al_buf_free(&mountinfo);
        al_buf_free(&cgroups);
        return err;
    }

    cleanup_free char *v2_mount = cg_find_mount(mountinfo.ptr, NULL);
    cleanup_free char *v2_own = !v2_mount   ? NULL
                                : v2_parent ? strdup(v2_parent)
                                            : cg_own_path(cgroups.ptr, NULL);
    if (v2_own) {
        if (al_path_join(dir, sizeof(dir), v2_mount, v2_own) == 0 && cg_v2_delegates(dir, cfg)) {
            cg.version = 2;
            cg.paths[0] = cg_child_path(v2_mount, v2_own, name);
            if ((err = cg_mkdir(cg.paths[0], "cgroup v2")) < 0) {
                free(cg.paths[0]); /* not ours to remove */
                cg.paths[0] = NULL;
                goto out;
            }
            char oom[PATH_MAX];
            if (al_path_join(oom, sizeof(oom), cg.paths[0], "memory.events") == 0)
                cg.oom_file = strdup(oom);
        }
    }
    if (cg.version == 0) {
        cg.version = 1;
        /* A named cgroup always exists, to find and kill every process of
         * the sandbox: the pids hierarchy holds it when no limit does. */
        int wanted[3] = {cfg->memory_mb != 0, cfg->pids != 0 || name, cfg->cpus > 0};
        for (int c = 0; c < 3; c++) {
            if (!wanted[c])
                continue;
            cleanup_free char *mnt = cg_find_mount(mountinfo.ptr, cg_names[c]);
            cleanup_free char *own = mnt ? cg_own_path(cgroups.ptr, cg_names[c]) : NULL;
            if (!own) {
                err = al_error_set(AL_EUNSUPP,
                                   "no cgroup controller \"%s\" available (neither delegated on "
                                   "cgroup v2 nor mounted as v1): cannot apply --%s",
                                   cg_names[c],
                                   c == CG_MEMORY ? "memory"
                                   : c == CG_PIDS ? "pids"
                                                  : "cpus");
                goto out;
            }
            cg.paths[c] = cg_child_path(mnt, own, name);
            if ((err = cg_mkdir(cg.paths[c], "cgroup v1")) < 0) {
                free(cg.paths[c]); /* not ours to remove */
                cg.paths[c] = NULL;
                goto out;
            }
        }
        if (cg.paths[CG_MEMORY]) {
            char oom[PATH_MAX];
            if (al_path_join(oom, sizeof(oom), cg.paths[CG_MEMORY], "memory.oom_control") == 0)
                cg.oom_file = strdup(oom);
        }
    }
    if ((err = cg_set_limits(&cg, cfg)) < 0)
        goto out;
    al_log(AL_LOG_DEBUG, "cgroup v%d: %s", cg.version,
           cg.paths[0]   ? cg.paths[0]
           : cg.paths[1] ? cg.paths[1]
                         : cg.paths[2]);
    *out = cg;
    memset(&cg, 0, sizeof(cg));
out:
    sb_cgroup_destroy(&cg);
    al_buf_free(&mountinfo);
    al_buf_free(&cgroups);
    return err;
}

int sb_cgroup_add(const struct sb_cgroup *cg, pid_t pid)
{
    char v[32];
    snprintf(v, sizeof(v), "%d", (int)pid);
    for (int i = 0; i < 3; i++) {
        if (!cg->paths[i])
            continue;
        int err = cg_write(cg->paths[i], "cgroup.procs", v);
        if (err < 0)
            return err;
    }
    return 0;
}

int sb_cgroup_oom_killed(const struct sb_cgroup *cg)
{
    if (!cg->oom_file)
        return 0;
    struct al_buf b;
    al_buf_init(&b, 8192);
    int killed = 0;
    if (al_buf_read_file(&b, cg->oom_file) == 0) {
        const char *p = strstr(b.ptr, "oom_kill ");
        killed = p && strtoul(p + 9, NULL, 10) > 0;
    }
    al_buf_free(&b);
    return killed;
}

/* Kills every process in the cgroup dir and waits (bounded) until empty. */
static void cg_kill_all(const char *dir)
{
    char path[PATH_MAX];
    int have_kill = al_path_join(path, sizeof(path), dir, "cgroup.kill") == 0 &&
                    access(path, W_OK) == 0 && cg_write(dir, "cgroup.kill", "1") == 0;
    if (al_path_join(path, sizeof(path), dir, "cgroup.procs") < 0)
        return;
    for (int round = 0; round < 2000; round++) {
        struct al_buf b;
        al_buf_init(&b, 1 << 20);
        int empty = 1;
        if (al_buf_read_file(&b, path) == 0) {
            for (char *p = b.ptr; *p;) {
                char *end;
                long pid = strtol(p, &end, 10);
                if (end == p)
                    break;
                empty = 0;
                if (!have_kill && pid > 0)
                    kill((pid_t)pid, SIGKILL);
                p = end + (*end == '\n');
            }
        }
        al_buf_free(&b);
        if (empty)
            return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

void sb_cgroup_destroy(struct sb_cgroup *cg)
{
    for (int i = 0; i < 3; i++) {
        if (!cg->paths[i])
            continue;
        cg_kill_all(cg->paths[i]);
        if (rmdir(cg->paths[i]) < 0 && errno != ENOENT)
            al_log(AL_LOG_WARN, "cannot remove cgroup %s: %s", cg->paths[i], strerror(errno));
        free(cg->paths[i]);
        cg->paths[i] = NULL;
    }
    free(cg->oom_file);
    cg->oom_file = NULL;
    cg->version = 0;
}
