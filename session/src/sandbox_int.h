/* Internal interfaces between the steps of the sandbox runtime.
 *
 * Every sandbox (`airlock run`, airlockd's sessions, the weaker nested
 * mode) is built by one contain list, in contain.c: the parent side
 * (sb_contain_spawn: clone into the cgroup, id maps, cgroup, network hook,
 * go bytes) and the steps of the child, in order, each step a function in
 * the file of its concern (mounts.c, landlock.c, privs.c, seccomp.c, ...).
 * A hardening step is added there once, and every kind of sandbox gets it.
 * sandbox.c (sb_run, sb_run_weaker) and sbs_start.c (sbs_start) only say
 * how the list ends and wait for the result. */
#ifndef AIRLOCK_SANDBOX_INT_H
#define AIRLOCK_SANDBOX_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "airlock/sandbox.h"
#include "airlock/sbsession.h"
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
    SB_MNT_SOCKET = 6,   /* read-only bind of a host unix socket listed in
                            allowUnixSockets, last: reachable at its path even
                            under the private /tmp or /run or a hidden dir */
    SB_MNT_FILE = 7,     /* read-only bind of a file the caller made (`path`)
                            at `dst` (sb_config.file_binds), last of all */
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
 * symlinked directories, visiting at most `max_entries` entries. With
 * SB_GLOB_SKIP_VENDORED the walk does not enter directories named ".git" or
 * "node_modules" (git's own files and installed packages: for the built-in
 * dotenv rule, whose matches there are not the user's). When the walk stops
 * at `max_entries`, a warning names the pattern and the directory it
 * stopped in. */
#define SB_GLOB_SKIP_VENDORED 1
int sb_glob_expand(struct al_strlist *out, const char *pattern, size_t max_entries, int flags);

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

/* privs.c, in two halves, for a uid switch between them: rlimits,
 * no_new_privs, locked securebits, the bounding and ambient sets emptied
 * (everything but the capabilities of this process, which
 * SECBIT_NO_SETUID_FIXUP keeps across setresuid); then those capabilities
 * (effective, permitted, inheritable). With `strict` 0 (no user namespace
 * of our own: the weaker mode), securebits and the bounding set are left
 * as they are when this process lacks CAP_SETPCAP, which setting them
 * needs (a process without capabilities has nothing there to give up);
 * with `strict` every failure is one. */
int sb_privs_lock(int strict);
int sb_privs_clear_caps(void);

/* landlock.c. Access rights (the kernel's uapi as of ABI 6). */
#define SB_LL_FS_EXECUTE     (1ULL << 0)
#define SB_LL_FS_WRITE_FILE  (1ULL << 1)
#define SB_LL_FS_READ_FILE   (1ULL << 2)
#define SB_LL_FS_READ_DIR    (1ULL << 3)
#define SB_LL_FS_REMOVE_DIR  (1ULL << 4)
#define SB_LL_FS_REMOVE_FILE (1ULL << 5)
#define SB_LL_FS_MAKE_CHAR   (1ULL << 6)
#define SB_LL_FS_MAKE_DIR    (1ULL << 7)
#define SB_LL_FS_MAKE_REG    (1ULL << 8)
#define SB_LL_FS_MAKE_SOCK   (1ULL << 9)
#define SB_LL_FS_MAKE_FIFO   (1ULL << 10)
#define SB_LL_FS_MAKE_BLOCK  (1ULL << 11)
#define SB_LL_FS_MAKE_SYM    (1ULL << 12)
#define SB_LL_FS_REFER       (1ULL << 13) /* ABI 2 */
#define SB_LL_FS_TRUNCATE    (1ULL << 14) /* ABI 3 */

#define SB_LL_NET_BIND_TCP    (1ULL << 0) /* ABI 4 */
#define SB_LL_NET_CONNECT_TCP (1ULL << 1)

#define SB_LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define SB_LL_SCOPE_SIGNAL               (1ULL << 1)

#define SB_LL_READ (SB_LL_FS_EXECUTE | SB_LL_FS_READ_FILE | SB_LL_FS_READ_DIR)
#define SB_LL_WRITE                                                                                \
    (SB_LL_FS_WRITE_FILE | SB_LL_FS_REMOVE_DIR | SB_LL_FS_REMOVE_FILE | SB_LL_FS_MAKE_DIR |        \
     SB_LL_FS_MAKE_REG | SB_LL_FS_MAKE_SOCK | SB_LL_FS_MAKE_FIFO | SB_LL_FS_MAKE_SYM |             \
     SB_LL_FS_REFER | SB_LL_FS_TRUNCATE)

/* Flags of a ruleset. SB_LL_STDIO: the caller's stdin/out/err files stay
 * reopenable. SB_LL_HIDE_MASKED: no mount hides the plan's masked paths (the
 * weaker mode), so read is granted on their complement only. */
#define SB_LL_STDIO       1U
#define SB_LL_HIDE_MASKED 2U

/* What a ruleset handles (restricts unless a rule allows). */
struct sb_landlock_attr {
    uint64_t handled_fs, handled_net, scoped;
};

/* One rule: `access` beneath `path`, or on descriptor `fd` (>= 0, stdio),
 * or, with neither, TCP connect to `port`. */
struct sb_landlock_rule {
    const char *path;
    int fd;
    uint64_t access;
    uint16_t port;
};
typedef int (*sb_landlock_rule_fn)(const struct sb_landlock_rule *rule, void *payload);

/* landlock.c: what the ruleset for `plan` handles under Landlock ABI `abi`. */
void sb_landlock_attr(struct sb_landlock_attr *out, const struct sb_plan *plan, int abi);

/* landlock.c: hands each rule of the ruleset for `plan` under ABI `abi`
 * to `fn`, in order (read and execute beneath /, or with
 * SB_LL_HIDE_MASKED beneath everything but the masked paths; read-write
 * on the sandbox's scratch paths and on plan->writable; the caller's
 * stdio files with SB_LL_STDIO; TCP connect to plan's ports). Stops at
 * the first negative return of `fn` and returns it. Calls no malloc. */
int sb_landlock_rules(const struct sb_plan *plan, int abi, unsigned flags, sb_landlock_rule_fn fn,
                      void *payload);

/* landlock.c: the ruleset for `plan` in *out_fd (CLOEXEC; the caller
 * closes it), paths resolved where the caller is. AL_EUNSUPP when the
 * kernel has no Landlock. */
int sb_landlock_ruleset(int *out_fd, const struct sb_plan *plan, unsigned flags);
/* landlock.c: enforces `ruleset` on the calling thread (needs
 * no_new_privs or CAP_SYS_ADMIN). */
int sb_landlock_restrict(int ruleset);

/* landlock.c, shorthands: the ruleset without stdio rules (what
 * airlock-init enforces), and ruleset + restrict with the caller's stdio
 * (with SB_LL_HIDE_MASKED for the weaker one). */
int sb_landlock_prepare(int *out_fd, const struct sb_plan *plan);
int sb_landlock_apply(const struct sb_plan *plan);
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

/* What the child tells its parent on the status pipe: at most one record,
 * then end-of-file. A setup failure (SB_SETUP_FAILED with the reason in
 * `message`), an exec failure (SB_NOT_FOUND, SB_NOT_EXEC: `code` is the
 * errno), or, from the pid 1 of sb_run, how the command ended. Nothing at
 * all: the sandbox's setup went through (airlock-init serves, or the
 * command was exec'd and its wait status says how it ended). */
struct sb_status {
    int outcome; /* enum sb_outcome */
    int code;
    char message[400];
};

/* Writes one record on `fd` (message may be NULL). Async-signal-safe. */
void sb_status_write(int fd, int outcome, int code, const char *message);

/* Reads the record from `fd`, waiting at most `timeout_ms` (-1: no limit)
 * for it or for end-of-file: 1 and *out filled (message NUL-terminated), 0
 * at end-of-file without a record, AL_ETIMEOUT, or AL_EIO for a partial
 * record. */
int sb_status_read(int fd, struct sb_status *out, int timeout_ms);

/* contain.c: how the contain list ends, in the sandbox's first process. */
enum sb_contain_end {
    SB_END_SUPERVISE, /* pid 1 runs cfg's command in a child, reaps every
                         orphan, forwards signals, reports how the command
                         ended on the status pipe (airlock run) */
    SB_END_EXEC,      /* the process becomes cfg's command (weaker mode) */
    SB_END_INIT,      /* pid 1 execs airlock-init (airlockd's sessions) */
};

/* contain.c: one sandbox to build. Everything is the caller's; it must
 * outlive sb_contain_spawn() only (the child has its own copy). */
struct sb_contain {
    const struct sb_config *cfg; /* the command (SB_END_SUPERVISE, SB_END_EXEC) */
    const struct sb_plan *plan;  /* the filesystem, Landlock and seccomp input */
    const struct sb_cgroup *cg;  /* version 0: none */
    enum sb_contain_end end;
    int namespaces;  /* 1: new user, mount, pid, net, ipc, uts and cgroup
                        namespaces, the plan's root; 0: the weaker mode
                        (Landlock hides the masked paths, no limits) */
    int switch_user; /* become SB_SANDBOX_UID, mapped to host_uid/gid (root
                        maps to root for the setup); else the caller's
                        ids are mapped 1:1 */
    uid_t host_uid;
    gid_t host_gid;
    int die_with_parent;  /* the sandbox dies with the caller (parent-death
                             signal); else it outlives it */
    sb_netns_fn on_netns; /* optional, run before the sandbox may go on */
    void *netns_payload;
    /* SB_END_INIT only */
    int init_fd;           /* O_PATH of the airlock-init executable */
    int listen_fd;         /* the control socket init serves */
    const char *init_cwd;  /* its default cwd and HOME (the workspace mount) */
    const char *init_path; /* names init_fd in messages */
};

/* contain.c: a spawned sandbox, for its caller. */
struct sb_spawned {
    pid_t pid;     /* the sandbox's first process: the caller's to reap */
    int status_fd; /* read end of its status pipe (struct sb_status) */
    int go_fd;     /* write end of its go pipe: keep it open until the child
                      is reaped (a child that dies with its parent takes a
                      hang-up there, before its parent-death signal was
                      armed, as the parent's death) */
};

/* contain.c: the one spawn of a sandbox. Clones the child (into c->cg at
 * birth where the kernel can, with clone3), and lets it run the contain
 * list while this process does what must be done from outside: id maps,
 * cgroup membership, the network hook, then the go bytes. On success
 * fills *out (its descriptors are the caller's to close). On failure the
 * child is killed and reaped, *out holds no descriptor, and the reason is
 * in al_error_last(): AL_EUNSUPP "cannot create namespaces" when the clone
 * was refused. Callable from any thread: the child runs with every signal
 * blocked and calls no malloc before it execs (the caller may be a
 * threaded daemon); the caller's signal mask is as it was on return. */
int sb_contain_spawn(struct sb_spawned *out, const struct sb_contain *c);

/* init.c: the rest of the life of the pid 1 of sb_run, once the contain
 * list is done: runs the command in a child, reaps every orphan, forwards
 * signals to the command's process group, and writes how the command ended
 * on `status_fd` before it exits (which kills whatever is left in the
 * sandbox's pid namespace). Never returns. */
void sb_init_supervise(const struct sb_config *cfg, int status_fd) __attribute__((noreturn));

/* exec.c: runs the command (or cfg->inner) in the current process, which is
 * already restricted: signal mask cleared, setsid(), chdir(cwd), exec. A
 * failure is reported on `status_fd` (CLOEXEC) as a struct sb_status
 * (SB_SETUP_FAILED when the chdir failed, SB_NOT_FOUND or SB_NOT_EXEC when
 * the exec did) before it exits 125, 127 or 126. */
void sb_exec_command(const struct sb_config *cfg, int status_fd) __attribute__((noreturn));

/* pty.c, in the command's process after setsid(), for cfg->pty_stdio:
 * opens a new pseudo-terminal from this mount namespace's devpts (the
 * sandbox's own), makes its slave the controlling terminal, sends the
 * master to the caller over cfg->pty_sock (one byte 'p' with SCM_RIGHTS),
 * waits for its one byte 'g' (size and modes set), then puts the slave on
 * the std descriptors that cfg->pty_stdio names. Closes cfg->pty_sock and
 * every descriptor it opened but those std ones, on success and failure. */
int sb_pty_attach(const struct sb_config *cfg);

/* pty.c: puts /dev/null on the std descriptors cfg->pty_stdio names (the
 * caller's terminal there is not for the sandbox's pid 1 to keep). */
int sb_pty_detach_stdio(const struct sb_config *cfg);

#endif
