/* airlockd's shared state (struct ald): the live sessions (session.h),
 * their processes (process.h) and approvals (approval.h), the supervised
 * proxies, the counters, and the threads that serve them.
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
#include "airlockd/core/hooks.h"

#include "airlock/creds.h"

struct evbus;
struct ald_session;
struct ald_jobs;
struct ald_webhooks;

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
    void *http; /* the api's HTTP server (api/http.c: libmicrohttpd's daemon) */
    struct ald_metrics metrics;
    struct ald_proxy px[ALD_PX_N];
    /* the scoped-token keys (proxies.token_keys): keys[0] signs; all are
     * sent to the gitproxy, which verifies with them. Read at start. */
    struct creds_keyring token_keys;
    struct ald_jobs *jobs;         /* core/jobs.c, set by ald_jobs_start() */
    struct ald_webhooks *webhooks; /* the outbox and its thread (adapters/webhooks.c) */
    struct ald_cluster *cluster;   /* core/cluster.c; NULL on a single machine */
};

/* ---- adopt.c ---- */
/* Re-adopts the sessions of an earlier daemon from the store. */
int ald_adopt_all(struct ald *d);

/* ---- events.c ---- */
/* Publishes an event of `type` with `data` (reference stolen) for the
 * session `sid` of `user`. "session" and "time" are added to data. */
void ald_event(struct ald *d, const char *sid, const char *user, const char *type, json_t *data);

#endif
