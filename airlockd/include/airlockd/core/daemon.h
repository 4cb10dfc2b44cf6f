/* airlockd's shared state: the live sessions, their processes and
 * approvals, and the threads that serve them.
 *
 * Locking: `d->lock` guards the session list, every session's lifecycle,
 * process table, approvals, proxy and git parts, and every process's fields;
 * `d->cond` is broadcast whenever one of them changes. A session's sandbox
 * link has its own `send_lock` and `recv_lock` (struct ald_sandbox_link).
 * struct ald_session names the lock of each of its parts. The store has its
 * own lock and is never called with `d->lock` held for long work.
 */
#ifndef ALD_DAEMON_H
#define ALD_DAEMON_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "airlockd/core/config.h"
#include "airlockd/core/fault.h"
#include "airlockd/core/hooks.h"
#include "airlockd/core/principal.h"
#include "airlockd/core/requests.h"

#include "airlock/creds.h"
#include "airlock/sbsession.h"

struct evbus;
struct MHD_Daemon;

enum ald_state {
    ALD_CREATING,
    ALD_READY,
    ALD_DELETING,
    ALD_DELETED,
    ALD_EXPIRED,
    ALD_FAILED,
};

#define ALD_STATE_ENDED(s) ((s) >= ALD_DELETED)

const char *ald_state_name(enum ald_state st);
/* -1 when `name` is no state. */
int ald_state_parse(const char *name);

enum ald_proc_state { ALD_P_SPAWNING, ALD_P_RUNNING, ALD_P_EXITED };

struct ald_session;

struct ald_proc {
    struct ald_proc *next;
    struct ald_session *s;
    uint64_t num;     /* "p_<num>"; also the SPAWN request id */
    uint32_t init_id; /* init's id, from SPAWNED */
    pid_t pid;        /* inside the sandbox */
    enum ald_proc_state state;
    int background;
    int spawn_err; /* SPAWN_FAILED's errno (0: it started) */
    int refs;      /* 1 while not exited, +1 per request thread using it */
    int exit_efd;  /* eventfd, readable from the moment it exited */
    int stdin_fd;  /* background: our end of its stdin pipe; -1 when none */
    json_t *argv;
    uint64_t started_ms, ended_ms, start_mono;
    /* exit, valid once ALD_P_EXITED */
    int code; /* -1: none */
    int sig;  /* 0: none */
    const char *reason;
    uint64_t duration_ms;
    uint64_t earliest[2]; /* first kept byte of stdout, stderr (background) */
};

struct ald_approval {
    struct ald_approval *next;
    char id[48];
    const char *kind; /* NULL: "exec"; "network" (netproxy) */
    json_t *argv;     /* exec */
    char *host;       /* network: host and port the request is held for */
    int port;
    const char *state; /* "pending", "allowed", "denied", "timed-out" */
    uint64_t created_ms;
};

/* A session's connection to the init of its sandbox.
 *
 * Locks: `send_lock` serialises the messages to init; `recv_lock` is held by
 * the control thread while it reads, so teardown can wait for it. `conn`,
 * `open` and `have_record` are set under d->lock before the control socket
 * is watched (creation, re-adoption); after that they change only in
 * teardown, with both send_lock and recv_lock held, so holding either keeps
 * them stable. `oom_seen` and `oom_kills_seen` are the control thread's,
 * under d->lock. */
struct ald_sandbox_link {
    struct sbs_conn conn;
    int open;        /* conn is connected */
    int have_record; /* conn.rec is valid (sandbox started) */
    pthread_mutex_t send_lock, recv_lock;
    int oom_seen;        /* fallback: sbs_oom_killed() was seen true */
    long oom_kills_seen; /* the cgroup's OOM kill count at the last exit */
};

/* A session's processes (struct ald_proc), under d->lock; d->cond is
 * broadcast whenever one of them changes. */
struct ald_proc_table {
    struct ald_proc *list; /* newest first */
    uint64_t next;         /* the number of the next process */
};

/* A session's approvals (struct ald_approval), newest first, under d->lock;
 * d->cond is broadcast when one is decided. */
struct ald_approvals {
    struct ald_approval *list;
};

/* What the proxies know of a session (proxies.c), under d->lock. */
struct ald_session_px {
    int lfd[3];        /* listeners in the sandbox's netns: http, socks5, git; -1 none */
    json_t *netpolicy; /* settings JSON sent to the netproxy ({} when none) */
    int removed;       /* session_remove sent (or due): never re-sent */
};

/* A session's repository and its scoped git token (gitrepo.c), under
 * d->lock. */
struct ald_session_git {
    json_t *repo; /* NULL or {repo, branch, base, token, token_exp} */
    json_t *env;  /* NULL or GIT_CONFIG_* for every command */
};

/* One session. Each part says which lock guards it. */
struct ald_session {
    /* Identity and limits: set before the session is linked into the live
     * list (d->sessions), never changed after, so read without a lock. */
    char id[32];
    char user[ALD_NAME_MAX];
    uint64_t tag; /* the control thread's key for this session */
    uid_t uid;
    int mode;
    struct ald_limits limits;
    json_t *metadata, *env;
    uint64_t created_ms;
    /* Lifecycle, under d->lock; d->cond is broadcast when the state
     * changes. */
    struct ald_session *next; /* in d->sessions */
    int refs;
    enum ald_state state;
    char end_reason[256];
    uint64_t last_active_ms, ended_ms;
    int workspace_kept;
    /* The parts */
    struct ald_sandbox_link sandbox; /* its own send_lock and recv_lock */
    struct ald_proc_table procs;     /* d->lock */
    struct ald_approvals approvals;  /* d->lock */
    struct ald_session_px px;        /* d->lock */
    struct ald_session_git git;      /* d->lock */
};

enum { ALD_PX_NET, ALD_PX_GIT, ALD_PX_N };

/* One supervised proxy (proxies.c). `send_lock` serialises every frame to
 * it and the re-send of the session table after a restart. */
struct ald_proxy {
    const char *name; /* "netproxy", "gitproxy" */
    char path[PATH_MAX];
    int enabled;
    int started; /* the thread runs */
    pthread_t thread;
    pthread_mutex_t send_lock;
    int fd;    /* control socket, -1 while the proxy is down */
    pid_t pid; /* 0 while down */
    long long seq;
    atomic_uint starts;
    /* acks awaited by ald_px_session_add() (proxies.c): the waiters, the
     * proxy generation (bumped by each start) they are matched in */
    pthread_mutex_t ack_lock; /* never taken before send_lock */
    pthread_cond_t ack_cond;
    struct ald_px_wait *waits;
    unsigned gen; /* under send_lock and ack_lock */
    /* the first start, which ald_px_start() waits for (under ack_lock) */
    int boot;            /* ALD_PX_BOOT_* */
    int boot_status;     /* a failed first start: its wait status; -1 not started */
    char home[PATH_MAX]; /* HOME of the proxy (proxies.home_dir/<name>) */
};

/* How a proxy's first start went (struct ald_proxy.boot). */
enum {
    ALD_PX_BOOT_WAIT,   /* not known yet: ald_px_start() waits */
    ALD_PX_BOOT_UP,     /* it said hello */
    ALD_PX_BOOT_FAILED, /* it exited (or could not be started) without a hello */
    ALD_PX_BOOT_LATE,   /* no hello in time: supervised as any later start */
};

struct ald_metrics {
    atomic_ullong execs_total;
    atomic_ullong exec_buckets[12]; /* ald_metrics_buckets */
    atomic_ullong exec_count;
    atomic_ullong exec_ms_sum;
    atomic_ullong limit_kills[4]; /* memory, pids, timeout, output */
    atomic_ullong http[600];
};

struct ald {
    struct ald_config *cfg;
    struct ald_hooks hooks; /* set by main.c before ald_sessions_start() */
    struct ald_store *st;
    struct evbus *bus;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct ald_session *sessions; /* live (not ended) */
    uint64_t next_tag;
    uid_t next_uid;
    int epfd;     /* control thread: every session's control socket */
    int stop_fd;  /* eventfd, readable once the daemon stops */
    int drain_fd; /* eventfd, readable once draining began (ends long polls) */
    atomic_int draining, stopping;
    atomic_int inflight; /* HTTP requests begun and not completed */
    pthread_t ctl_thread, reaper_thread;
    char init_path[PATH_MAX];
    char git_helper[PATH_MAX];     /* git-remote-airlock (real path), bound
                                      read-only into repo sessions at the
                                      same path; "" = not found */
    char git_helper_dir[PATH_MAX]; /* its directory, first on their PATH */
    char sessions_dir[PATH_MAX];
    struct MHD_Daemon *mhd;
    struct ald_metrics metrics;
    struct ald_proxy px[ALD_PX_N];
    /* the scoped-token keys (proxies.token_keys): keys[0] signs; all are
     * sent to the gitproxy, which verifies with them. Read at start. */
    struct creds_keyring token_keys;
};

/* ---- sessions.c ---- */

/* Loads the live sessions, starts the control and reaper threads. */
int ald_sessions_start(struct ald *d);
/* Stops the threads (sandboxes keep running); frees the in-memory state. */
void ald_sessions_stop(struct ald *d);

/* Creates a session for `who` (blocking until it is ready or failed).
 * *out_pub: the session object (new reference). */
int ald_session_create(struct ald *d, const struct ald_principal *who,
                       const struct ald_create_req *req, const char *idem_key,
                       const char *body_hash, json_t **out_pub, int *replayed, struct ald_fault *f);

/* A new session object (state creating, one reference for the live list)
 * and its insertion into the live list (caller holds d->lock). */
struct ald_session *ald_session_new(const char *id, const char *user);
void ald_session_link(struct ald *d, struct ald_session *s);

/* Finds a live session `id` visible to `who` and takes a reference; NULL
 * when none (then the caller looks in the store for ended ones). */
struct ald_session *ald_session_get(struct ald *d, const struct ald_principal *who, const char *id);
void ald_session_unref(struct ald *d, struct ald_session *s);

/* The public JSON object of a session (caller holds d->lock). */
json_t *ald_session_json(const struct ald_session *s);

/* Looks a session up live or in the store: *out the public object. ALD_FAULT_NOT_FOUND
 * in `f` when `who` may not see it. */
int ald_session_lookup_json(struct ald *d, const struct ald_principal *who, const char *id,
                            json_t **out, struct ald_fault *f);

/* Tears a live session down and gives it the final `state` with `reason`
 * (NULL for none). Waits for a teardown already under way. Takes its own
 * references; `s` stays valid for the caller's reference. */
int ald_session_end(struct ald *d, struct ald_session *s, enum ald_state state, const char *reason);

/* Marks activity (resets the idle timer). */
void ald_session_touch(struct ald *d, struct ald_session *s);

/* Writes the session's row (takes d->lock itself). */
int ald_session_save(struct ald *d, struct ald_session *s);

/* Host path of the session's workspace / output dir. */
void ald_session_path(const struct ald *d, const char *id, const char *leaf, char *out,
                      size_t size);

/* ---- procs.c ---- */

/* The public JSON object of a process (caller holds d->lock). */
json_t *ald_proc_json(const struct ald *d, const struct ald_proc *p);
/* Saves the process row (takes d->lock to build it). */
int ald_proc_save(struct ald *d, struct ald_proc *p);
/* ald_proc_save with the audit row of the request that ran it, in one
 * transaction (see ald_store_proc_put_audit); audit NULL: the row alone. */
int ald_proc_save_audit(struct ald *d, struct ald_proc *p, const struct ald_audit_row *audit);
/* Drops a reference (takes d->lock); frees an exited process with none left. */
void ald_proc_unref(struct ald *d, struct ald_proc *p);
/* Finds a live process of `s` by number and takes a reference, or NULL. */
struct ald_proc *ald_proc_find(struct ald *d, struct ald_session *s, uint64_t num);
/* Records an exit (caller holds d->lock); publishes nothing. 1 when this
 * call made the process exited (the caller then owns its running
 * reference), 0 when it had exited already. */
int ald_proc_set_exit(struct ald *d, struct ald_proc *p, int code, int sig, const char *reason,
                      uint64_t duration_ms);
/* After ald_proc_set_exit() without d->lock: saves, publishes, counts. */
void ald_proc_exited(struct ald *d, struct ald_proc *p);
/* ald_proc_exited without the save: the exit event, a limit event and the
 * metrics (for a caller that saved the exit itself). */
void ald_proc_publish_exit(struct ald *d, struct ald_proc *p);
/* Output file of a background process. */
void ald_proc_out_path(const struct ald *d, const char *session, uint64_t num, int stream,
                       char *out, size_t size);
/* Keeps only max_output_bytes of each stream of the running background
 * processes (called by the reaper). */
void ald_procs_trim_output(struct ald *d);

/* ---- ctl.c ---- */
int ald_ctl_start(struct ald *d);
void ald_ctl_stop(struct ald *d);
/* Watches a session's control socket (sets it non-blocking). */
int ald_ctl_add(struct ald *d, struct ald_session *s);
void ald_ctl_remove(struct ald *d, struct ald_session *s);
/* Sends SIGNAL to a process (no-op when the connection is closed). */
int ald_ctl_signal(struct ald *d, struct ald_session *s, uint32_t init_id, int sig);
/* Applies SPAWNED as the control thread does (idempotent): for a request
 * thread that heard it first on the command's watch socket. */
void ald_ctl_spawned(struct ald *d, struct ald_session *s, const struct sbs_msg *m);
/* What an EXITED message means: exit code (-1 none), signal (0 none) and
 * reason ("exited", "signaled", "timeout"). Returns 1 when the process was
 * SIGKILLed and only the session's cgroup can tell whether the OOM killer
 * did it (the control thread then says "memory"), else 0. */
int ald_exit_decode(const struct sbs_msg *m, int *code, int *sig, const char **reason);

/* ---- adopt.c ---- */
/* Re-adopts the sessions of an earlier daemon from the store. */
int ald_adopt_all(struct ald *d);

/* ---- events.c ---- */
/* Publishes an event of `type` with `data` (reference stolen) for the
 * session `sid` of `user`. "session" and "time" are added to data. */
void ald_event(struct ald *d, const char *sid, const char *user, const char *type, json_t *data);

#endif
