/* Long-lived sandboxes for airlockd: a sandbox whose pid 1 is airlock-init,
 * which runs commands on request and outlives the daemon that started it.
 *
 * sbs_start() builds the sandbox with the contain list of sb_run() (same
 * plan, mounts, Landlock, seccomp, cgroup), but pid 1 execs the small
 * airlock-init binary (so an idle sandbox costs a few hundred KiB, not a
 * copy of airlockd) and serves a control socket instead of running one
 * command. The control socket listens
 * at spec->control_path, a path in the daemon's state dir that does not exist
 * inside the sandbox; airlockd connects to it, and reconnects after a restart
 * (sbs_attach()). Nothing in the sandbox can reach it.
 *
 * Control protocol (see docs/init-protocol.md): small length-prefixed
 * messages, versioned (3 now). The daemon sends SPAWN (with the command's stdin,
 * stdout, stderr attached by SCM_RIGHTS) and SIGNAL; init answers SPAWNED or
 * SPAWN_FAILED and sends EXITED when a command ends. Exits that happen while
 * no daemon is connected are kept (up to SBS_MAX_PENDING_EXITS) and sent to
 * the next connection after its HELLO. init's messages are parsed as
 * untrusted input (bounded; fuzzed).
 *
 * Threading: one sbs_conn may be used by one thread at a time; the daemon
 * serialises sends with its own lock and reads from one event thread.
 * sbs_start() may be called from any thread of a threaded daemon (the
 * sandbox's pid 1 is cloned with every signal blocked and calls no malloc
 * before it execs airlock-init).
 *
 * Processes: airlock-init is a child of the process that called
 * sbs_start() until that process exits (then it is reparented, and keeps
 * running). sbs_destroy() reaps it; a caller that reaps children with
 * waitpid(-1, ...) may reap it first, which is harmless.
 *
 * Identity: with spec->host_uid set, uid/gid 1000 inside is
 * host_uid/host_gid, and root is mapped to root for the setup only (pid 1
 * builds the root as root, then switches to 1000 for good, with no
 * capability and no way back, before anything untrusted runs). Nothing in
 * the sandbox runs as root.
 */
#ifndef AIRLOCK_SBSESSION_H
#define AIRLOCK_SBSESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "airlock/sandbox.h"
#include "airlock/settings.h"

#define SBS_MAX_PENDING_EXITS 4096
#define SBS_MAX_ARGS          4096
#define SBS_MAX_MSG           (256 * 1024) /* one control message, fds aside */
#define SBS_TTY_MAX_DIM       4096         /* rows and cols of a terminal: 1..this */

struct sbs_spec {
    const struct al_policy *policy; /* after sb_policy_add_defaults() */
    const char *workspace;          /* host dir; mounted read-write at
                                       workspace_mount, the default cwd */
    const char *workspace_mount;    /* path inside, e.g. "/workspace" */
    const char *rootfs;             /* NULL: host system dirs read-only;
                                       else a directory used as / (read-only) */
    const char *control_path;       /* unix socket path to create (state dir,
                                       root-only; its directory is hidden in
                                       the sandbox: keep every session's
                                       socket in one such directory) */
    const char *cgroup_name;        /* leaf cgroup under this process's own
                                       (v2 when it holds the needed
                                       controllers, else v1 hierarchies:
                                       pids always, memory and cpu with
                                       limits); must not exist */
    const char *init_path;          /* the airlock-init executable */
    uid_t host_uid;                 /* the sandbox user (uid 1000 inside) is */
    gid_t host_gid;                 /* this host uid/gid; 0: map the caller */
    uint64_t memory_mb, pids;       /* 0 = no limit */
    double cpus;                    /* 0 = no limit */
    sb_netns_fn on_netns;           /* optional, as in struct sb_config */
    void *netns_payload;
    const uint16_t *tcp_connect_ports;
    size_t n_tcp_connect_ports;
    const char *const *hide; /* optional: host paths hidden in the sandbox
                                (an empty dir or an unreadable file), e.g.
                                the daemon's state dir; the workspace stays
                                mounted at workspace_mount */
    size_t n_hide;
    const char *const *ro_paths; /* optional: host files or dirs bound
                                    read-only at the same path, as in
                                    struct sb_config (e.g. a helper
                                    program the daemon ships) */
    size_t n_ro_paths;
    /* optional: host files bound read-only at another path inside (a
     * session CA's merged trust bundle over the distribution's bundle),
     * after every other mount, as sb_config.file_binds (the same mount kind
     * as `airlock run`'s masked files and bundle). */
    const struct sb_file_bind *file_binds;
    size_t n_file_binds;
};
/* What the daemon stores to find a running sandbox again after a restart. */
struct sbs_record {
    pid_t init_pid;           /* host pid of airlock-init */
    uint64_t init_start_time; /* its start time (/proc/PID/stat field 22),
                                 so a recycled pid is never mistaken for it */
    char control_path[256];
    char cgroup_paths[3][256]; /* v2: [0]; v1: memory, pids, cpu ("" unused) */
    int cgroup_version;
};

/* A connection to one sandbox's init. */
struct sbs_conn {
    int fd; /* the control socket, CLOEXEC; poll it for input */
    struct sbs_record rec;
    unsigned char *rbuf; /* partial input (the implementation may add fields) */
    size_t rlen, rcap;
    uint32_t version; /* init's protocol version (its HELLO) */
};

/* For a long-lived daemon under cgroup v2 whose own cgroup holds the
 * controllers but does not pass them on (systemd's Delegate=yes): the
 * daemon moves itself into the child cgroup `leaf` and enables memory,
 * pids and cpu for the children of its cgroup, where sandbox cgroups are
 * made from then on (beside the leaf: v2 allows no process in a cgroup
 * that passes controllers on). Call before starting threads' children or
 * sandboxes. 1 when it moved, 0 when there was nothing to do (no v2, the
 * root cgroup, nothing to pass on, or already passed on), AL_E* when it
 * could not (another process in the cgroup, say); sandboxes then fall back
 * to v1 hierarchies as before. */
int sbs_cgroup_delegate_self(const char *leaf);

/* 1 when init understands sbs_cmd.watch (protocol version 2 and later). */
int sbs_conn_can_watch(const struct sbs_conn *c);
/* 1 when init understands sbs_cmd.tty and sbs_resize_send (version 3). */
int sbs_conn_can_tty(const struct sbs_conn *c);

/* Builds the sandbox and returns once airlock-init is ready and connected
 * (its HELLO read): fills *out (fd connected, blocking, CLOEXEC; record
 * filled). On failure nothing is left (no process, cgroup, socket file or
 * placeholder) and the reason is in al_error_last(): AL_EEXISTS when the
 * cgroup or the control socket exists already (left alone), AL_EUNSUPP
 * without namespaces, AL_ENOTFOUND without the init binary, AL_ETIMEOUT
 * when the setup took over 10 s. The sandbox does NOT die with the caller.
 * Placeholders the plan creates (an empty .git/hooks) stay in the
 * workspace: they are mount points inside. */
int sbs_start(struct sbs_conn *out, const struct sbs_spec *spec);

/* Reconnects to a sandbox started by an earlier daemon: checks that
 * rec->init_pid is still that init (start time), connects to its control
 * socket. AL_ENOTFOUND when the sandbox is gone (then sbs_destroy_record()
 * cleans up what is left). */
int sbs_attach(struct sbs_conn *out, const struct sbs_record *rec);

/* A command to run. */
struct sbs_cmd {
    char *const *argv;   /* argv[0] looked up in the sandbox's PATH */
    char *const *envp;   /* the whole environment (nothing is added: the daemon
                            sets HOME=<workspace_mount>, PATH, ...) */
    const char *cwd;     /* inside the sandbox; NULL = workspace_mount */
    int stdio[3];        /* fds for 0, 1, 2 (sent with SCM_RIGHTS; the caller
                            keeps and closes its copies) */
    uint32_t timeout_s;  /* 0 = none; init kills the process group after it */
    int watch;           /* 1: watch_fd is sent too (see sbs_conn_can_watch) */
    int watch_fd;        /* a socket on which init also sends this command's
                            SPAWNED / SPAWN_FAILED and EXITED, so the thread
                            that waits for them hears them first-hand; the
                            caller keeps and closes its copy */
    int tty;             /* 1: run on a new terminal of the sandbox's own
                            devpts (init opens it): stdio is ignored, watch
                            and watch_fd are required, and the terminal's
                            master comes back with SPAWNED on the watch
                            socket (sbs_watch_recv_fd); needs
                            sbs_conn_can_tty */
    uint32_t rows, cols; /* tty: the window size, 1..SBS_TTY_MAX_DIM */
};

/* Sends SPAWN for `cmd` with request id `req` (chosen by the caller, echoed
 * in the reply). Does not wait for the reply. AL_ETOOBIG when argv, envp and
 * cwd exceed SBS_MAX_MSG or SBS_MAX_ARGS, AL_EINVAL for an empty argv[0],
 * a relative cwd or a negative stdio fd; AL_ETIMEOUT when init has not
 * read for 5 s. Init answers SPAWN_FAILED with EAGAIN when 1024 commands
 * run already. */
int sbs_spawn_send(struct sbs_conn *c, uint32_t req, const struct sbs_cmd *cmd);

/* Sends SIGNAL: `sig` to the process group of process `proc` (init's id). */
int sbs_signal_send(struct sbs_conn *c, uint32_t proc, int sig);

/* Sends RESIZE: the window size of the terminal of process `proc` (a
 * command started with sbs_cmd.tty; others are ignored by init). AL_EINVAL
 * for a size outside 1..SBS_TTY_MAX_DIM or an init older than version 3. */
int sbs_resize_send(struct sbs_conn *c, uint32_t proc, uint32_t rows, uint32_t cols);

enum sbs_msg_type {
    SBS_MSG_HELLO = 1,        /* first message on a connection */
    SBS_MSG_SPAWNED = 2,      /* req, proc, pid */
    SBS_MSG_SPAWN_FAILED = 3, /* req, err (errno: ENOENT, EACCES, ...) */
    SBS_MSG_EXITED = 4,       /* proc, status (wait status), timed_out */
};

/* Added to SPAWN_FAILED's errno when the command's working directory was
 * the failure (chdir), not the program: SBS_SPAWN_ERR_CWD + ENOENT is "no
 * such directory". Within 1..4095, so an older reader takes it as an
 * errno it does not know. */
#define SBS_SPAWN_ERR_CWD 2048

struct sbs_msg {
    enum sbs_msg_type type;
    uint32_t version;     /* HELLO: protocol version */
    uint32_t req;         /* SPAWNED, SPAWN_FAILED */
    uint32_t proc;        /* SPAWNED, EXITED: init's id for the process */
    pid_t pid;            /* SPAWNED: pid inside the sandbox */
    int err;              /* SPAWN_FAILED */
    int status;           /* EXITED: wait status */
    int timed_out;        /* EXITED: killed by its timeout */
    uint64_t duration_ms; /* EXITED */
};

/* Reads one message (blocks unless the fd is non-blocking: then AL_EAGAIN
 * when none is complete yet; partial input is buffered in the conn).
 * Never reads past the end of the message it returns, so poll() on c->fd
 * stays a true indication of whether another message is waiting.
 * AL_EIO when init closed the connection (the sandbox died, or another
 * daemon connection replaced this one), AL_EINVAL on a malformed message
 * (the caller drops the connection). */
int sbs_recv(struct sbs_conn *c, struct sbs_msg *out);

/* Reads one message from a watch socket (sbs_cmd.watch_fd, SOCK_SEQPACKET:
 * one message per record) without blocking: 0 and *out filled, AL_EAGAIN
 * when none is waiting, AL_EIO when init closed it (the command is over or
 * the sandbox is gone), AL_EINVAL when malformed. */
int sbs_watch_recv(int fd, struct sbs_msg *out);

/* sbs_watch_recv() for a command started with sbs_cmd.tty: a SPAWNED comes
 * with the terminal's master, stored in *out_fd (CLOEXEC, the caller's to
 * close; checked to be a pseudo-terminal master); every other message
 * with none (*out_fd -1). A SPAWNED without a master, or a descriptor that
 * is not one, is AL_EINVAL (descriptors received are closed). */
int sbs_watch_recv_fd(int fd, struct sbs_msg *out, int *out_fd);

/* Parses one message from `buf` (`len` bytes): returns the bytes consumed,
 * 0 when more input is needed, AL_EINVAL when malformed. For the fuzzer. */
long sbs_msg_parse(const unsigned char *buf, size_t len, struct sbs_msg *out);

/* 1 when the kernel's OOM killer fired in the sandbox's cgroup. */
int sbs_oom_killed(const struct sbs_record *rec);

/* Tears the sandbox down: kills its init (and so its pid namespace), then
 * every process left in its cgroup, waits until it is empty, removes the
 * cgroup and the control socket file, reaps init when it is the caller's
 * child, closes the connection. Works from a record alone (after a
 * restart, sandbox dead or alive; again on a destroyed record: no-op).
 * Never leaves a process, cgroup, mount or namespace behind. The
 * workspace itself is the caller's. */
int sbs_destroy(struct sbs_conn *c);
int sbs_destroy_record(const struct sbs_record *rec);

#endif
