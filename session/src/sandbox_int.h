/* Internal interfaces between the steps of the sandbox runtime. Each step
 * lives in its own file; sandbox.c lists them in order. */
#ifndef AIRLOCK_SANDBOX_INT_H
#define AIRLOCK_SANDBOX_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "airlock/sandbox.h"
#include "airlock/strlist.h"

/* Mount groups, applied in this order (and by depth within a group). */
enum sb_mount_kind {
    SB_MNT_RO = 0,       /* read-only bind of a host path (home outside /) */
    SB_MNT_RW = 1,       /* read-write bind (workspace, allowWrite) */
    SB_MNT_PIN = 2,      /* read-write self-bind: a directory holding protected
                            paths becomes a mount point, so it cannot be renamed
                            or removed (taking the protection with it) */
    SB_MNT_MASK = 3,     /* hidden: empty tmpfs (dir) or empty file */
    SB_MNT_REEXPOSE = 4, /* read-only bind inside a masked dir (allowRead) */
    SB_MNT_PROTECT = 5,  /* read-only self-bind inside a writable path */
};

struct sb_mount {
    enum sb_mount_kind kind;
    char *path; /* absolute, symlink-free host path (also the sandbox path
                   unless `dst` is set) */
    char *dst;  /* the path inside the sandbox when it differs (a path in a
                   workspace mounted elsewhere); NULL otherwise */
    int is_dir;
    int no_remap; /* a host path hidden as such, never moved to `dst` */
};

/* What the sandbox's filesystem will be, computed on the host before clone. */
struct sb_plan {
    struct sb_mount *mounts;
    size_t len, cap;
    struct al_strlist writable;     /* read-write roots, for Landlock (paths
                                       inside the sandbox) */
    struct al_strlist placeholders; /* host paths created for this run */
    int allow_unix_sockets;         /* socket(AF_UNIX) allowed */
    int allow_local_binding;        /* TCP bind/connect on loopback */
    uint16_t connect_ports[8];      /* TCP connect allowed to these ports */
    size_t n_connect_ports;
    char *rootfs; /* host dir used as the sandbox's /; NULL: the host's */
};

/* What a long-lived sandbox (sbs_start) adds to the plan of sb_run(). */
struct sb_plan_opts {
    const char *workspace_mount; /* cfg->cwd is mounted here instead of at
                                    its host path (NULL: at its host path) */
    const char *rootfs;          /* see struct sb_plan */
    const char *const *hide;     /* host paths hidden in the sandbox */
    size_t n_hide;
};

/* plan.c: resolves the policy against the host filesystem (globs expanded,
 * symlinks resolved, credential stores and mandatory protections added).
 * Placeholders it creates are listed in out->placeholders and must be
 * removed with sb_plan_remove_placeholders(). */
int sb_plan_build(struct sb_plan *out, const struct sb_config *cfg);
/* The same with the options of a long-lived sandbox (`opts` may be NULL). */
int sb_plan_build_ex(struct sb_plan *out, const struct sb_config *cfg,
                     const struct sb_plan_opts *opts);
void sb_plan_free(struct sb_plan *plan);
void sb_plan_remove_placeholders(const struct sb_plan *plan);

/* glob_walk.c: appends to `out` every existing path matching `pattern`
 * (absolute), found by walking from its literal prefix, without following
 * symlinked directories, visiting at most `max_entries` entries. */
int sb_glob_expand(struct al_strlist *out, const char *pattern, size_t max_entries);

/* protect.c: appends the mandatory write-protected paths found in the
 * writable root `root` (down to `depth` directories, git worktrees followed)
 * to `out`; a
 * missing .git/hooks in an existing .git gets a placeholder directory
 * (listed in `placeholders`). */
int sb_protect_discover(struct al_strlist *out, struct al_strlist *placeholders, const char *root,
                        int depth, int allow_git_config);

/* mounts.c (in the sandbox's pid 1, in its new mount namespace): builds the
 * new root from the plan, pivots into it and detaches the host's root. */
int sb_mounts_build_root(const struct sb_plan *plan);

/* userns.c: maps `uid` and `gid` 1:1 in the user namespace of process
 * `pid` (0: the caller itself, which may map only its own ids), after
 * denying setgroups() there as the kernel requires. */
int sb_userns_map_ids(pid_t pid, uid_t uid, gid_t gid);

/* The uid and gid of the sandbox's user in a long-lived sandbox. */
#define SB_SANDBOX_UID 1000

/* userns.c: maps SB_SANDBOX_UID/GID in the user namespace of `pid` to the
 * host ids `host_uid`/`host_gid`, and root to root for the setup (needs
 * CAP_SETUID/CAP_SETGID outside: root). setgroups() stays allowed so the
 * sandbox can drop the groups it inherited before switching to that user. */
int sb_userns_map_user(pid_t pid, uid_t host_uid, gid_t host_gid);

/* net.c: brings the loopback interface of the current network namespace up. */
int sb_net_loopback_up(void);

/* net.c: calls `fn` with the network namespace of process `pid` open. */
int sb_net_hook(pid_t pid, sb_netns_fn fn, void *payload);

/* sandbox.c: closes every descriptor but 0-2 and the `n` in `keep`
 * (sorted in place). Async-signal-safe: for a freshly cloned child. */
void sb_close_fds_except(int *keep, size_t n);

/* privs.c: rlimits, no_new_privs, locked securebits, every capability
 * dropped (bounding, ambient, effective, permitted, inheritable). */
int sb_privs_drop(void);
/* The same in two halves, for a uid switch between them: everything but the
 * capabilities of this process (which SECBIT_NO_SETUID_FIXUP keeps across
 * setresuid), then those. */
int sb_privs_lock(void);
int sb_privs_clear_caps(void);

/* landlock.c: restricts the calling thread to read/execute everywhere and
 * write on plan->writable; scopes signals and abstract unix sockets.
 * AL_EUNSUPP when the kernel has no Landlock (callers then warn). */
int sb_landlock_apply(const struct sb_plan *plan);

/* landlock.c, long-lived sandboxes: the same rules (without the caller's
 * stdio) as a ruleset in *out_fd (CLOEXEC), for airlock-init to enforce with
 * landlock_restrict_self() after it is exec'd. AL_EUNSUPP without Landlock. */
int sb_landlock_prepare(int *out_fd, const struct sb_plan *plan);

/* landlock.c, weaker mode: same, and hides plan's masked paths by granting
 * read only on the complement of them. */
int sb_landlock_apply_weaker(const struct sb_plan *plan);

/* seccomp.c: installs the syscall filter (see docs/security.md). */
int sb_seccomp_apply(const struct sb_plan *plan);

/* cgroup.c */
struct sb_cgroup {
    int version;    /* 0 = none, 1 or 2 */
    char *paths[3]; /* v2: paths[0]; v1: memory, pids, cpu (NULL if unused) */
    char *oom_file; /* memory.events (v2) or memory.oom_control (v1) */
};
/* Creates a cgroup below this process's own cgroup with the configured
 * limits (v2 where the controllers are enabled there, v1 otherwise).
 * out->version is 0 when no limit was asked for. */
int sb_cgroup_create(struct sb_cgroup *out, const struct sb_config *cfg);
/* The same, always created (even without limits) and called `name`;
 * AL_EEXISTS when it exists already (it is then left alone). */
int sb_cgroup_create_named(struct sb_cgroup *out, const struct sb_config *cfg, const char *name);
/* The v2 cgroup `dir` has controllers (cgroup.controllers) among memory,
 * pids and cpu that it does not pass on to children (cgroup.subtree_control),
 * as a systemd unit with Delegate=yes: moves process `pid` into the child
 * `leaf` (made if missing) and enables those controllers for the children
 * of `dir`. 1 when done (sandbox cgroups then go in `dir`, beside the
 * leaf), 0 when there was nothing to pass on, AL_E* on failure. */
int sb_cgroup_v2_leaf(const char *dir, const char *leaf, pid_t pid);
int sb_cgroup_add(const struct sb_cgroup *cg, pid_t pid);
/* 1 when the kernel's OOM killer fired inside the cgroup. */
int sb_cgroup_oom_killed(const struct sb_cgroup *cg);
/* Kills every process left in the cgroup, waits for it to empty, removes it
 * and frees `cg`. Safe on a zeroed struct. */
void sb_cgroup_destroy(struct sb_cgroup *cg);

/* janitor.c: a process outside the sandbox that removes the cgroup and the
 * placeholders if the caller dies without doing it (kill -9). Returns the
 * write end of its pipe in *out_fd; -1 when there is nothing to clean. */
int sb_janitor_start(int *out_fd, const struct sb_plan *plan, const struct sb_cgroup *cg);
/* Tells the janitor the caller cleaned up itself, and closes the pipe. */
void sb_janitor_dismiss(int fd);

/* init.c: the body of the sandbox's pid 1 (never returns). */
struct sb_child_args {
    const struct sb_config *cfg;
    const struct sb_plan *plan;
    int go_fd;     /* read: parent says uid map and cgroup are set; or, with
                      `map_self`, only watched for the parent's death */
    int map_self;  /* write our own uid/gid map; do not wait for the parent */
    int status_fd; /* write: struct sb_status for the parent */
    int use_cgroupns;
    uid_t outer_uid; /* the caller's ids (getuid() says 65534 until mapped) */
    gid_t outer_gid;
};
struct sb_status {
    int outcome; /* enum sb_outcome */
    int code;
    char message[400];
};
int sb_init_main(void *args);

/* Runs the command (or cfg->inner) in the current process, which is already
 * restricted: closes stray descriptors, setsid(), chdir(cwd), exec. Reports an
 * exec failure as errno on `err_fd` (CLOEXEC) and exits 127/126. */
void sb_exec_command(const struct sb_config *cfg, int err_fd) __attribute__((noreturn));

#endif
