/* The key holder's internals: the proxy state shared by proxy.c (sessions,
 * listeners, revocation, the credential store, the audit log) and keyd_conn.c
 * (one thread per client connection, answering its front worker over a
 * channel, gp_chan.h). Nothing here parses what a sandbox sends. */
#ifndef GP_KEYD_H
#define GP_KEYD_H

#include "airlock/gitproxy.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <time.h>

#define GP_IO_CHUNK              (64u << 10)
#define GP_CONN_TIMEOUT_SEC      300
#define GP_MAX_CONNS             256 /* concurrent connections; more are answered 503 */
#define GP_FRONT_START_TIMEOUT_S 15
#define GP_SHARE_IDLE_S          120 /* a session's unused connection cache is dropped after this */

/* Per-session upstream state: a connection cache of its own, so an upstream
 * connection is never reused across sessions. Refcounted; unlinked when the
 * session is removed. */
struct gp_sess {
    char *id;
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    int refs;             /* under proxy->lock */
    int removed;          /* unlinked from proxy->sessions */
    struct timespec idle; /* CLOCK_MONOTONIC when refs last dropped to 0 */
    struct gp_sess *next;
};

struct listener;
struct conn_job;

struct gp_proxy {
    struct gp_config cfg;
    pthread_mutex_t lock; /* revoked, audit, listeners, jobs, sessions */
    struct al_strlist revoked;
    int audit_fd;
    atomic_int conns;
    atomic_uint revoke_gen;     /* bumped by every revocation */
    struct listener *listeners; /* under lock */
    struct conn_job *jobs;      /* open connections, under lock */
    struct gp_sess *sessions;   /* under lock */
    gp_event_fn event_fn;
    void *event_payload;
    /* token keys: from the configuration, or replaced by airlockd */
    pthread_rwlock_t keys_lock;
    int have_keys;
    /* the revoked file (standalone): read at start and when it changes */
    int revoked_watch;            /* inotify, or -1 */
    const char *revoked_name;     /* the file's name in the watched directory */
    pthread_mutex_t revoked_lock; /* one reader of the watch at a time */
    struct al_strlist revoked_file_ids;
    /* credential store reloads (gitproxy.h) */
    pthread_mutex_t store_lock;
    pthread_cond_t store_cond;
    int store_watch;        /* inotify descriptor, or -1 */
    const char *store_name; /* the store file's name in the watched directory */
    uint64_t store_asked;   /* reloads asked for */
    uint64_t store_done;    /* reloads finished (loaded or failed) */
    gp_store_fn store_fn;
    void *store_payload;
    /* the front (front.c): its zygote forks one worker per connection */
    pthread_mutex_t front_lock;
    pthread_cond_t front_cond; /* broadcast when front_fd is set (CLOCK_MONOTONIC) */
    int front_fd;              /* channel to the zygote, or -1 */
    pid_t front_pid;
};

/* The upstream configured for `host` (lower-case), or NULL (then
 * https://<host>). */
const struct gp_upstream *gp_upstream_for(const gp_proxy *p, const char *host);

/* Refreshes the credential store when its file changed (bounded wait). */
void gp_store_refresh(gp_proxy *p);

/* Revocation hook for creds_token_verify(). */
int gp_proxy_is_revoked(const char *session, const char *jti, void *payload);

/* Takes a reference to the per-session state of `session` (made on first
 * use). NULL on ENOMEM. Release with gp_sess_put(). */
struct gp_sess *gp_sess_get(gp_proxy *p, const char *session);
void gp_sess_put(gp_proxy *p, struct gp_sess *s);

/* Writes one push audit record (and sends the event hook). `record` is
 * borrowed. */
void gp_audit_write(gp_proxy *p, const char *session, json_t *record);

/* Serves one client connection whose worker talks over `ch`: returns when
 * the worker closes its end. `client` is the client's socket, only ever
 * written to (a fetch's direct answer); `session` is the listener's ("*":
 * any). Closes nothing. */
void gp_keyd_conn_serve(gp_proxy *p, int ch, int client, const char *session);

/* Starts the front (exec of this program with --front): see front.c. Call
 * while still root, before dropping privileges; `user`/`group` is who the
 * front runs as. */
int gp_front_start(gp_proxy *p, const char *self, const char *user, const char *group);

/* Hands a client connection and the worker's end of its channel to the
 * front (which forks a worker for them), waiting for the front while it is
 * still starting (up to GP_FRONT_START_TIMEOUT_S). The descriptors stay the
 * caller's. */
int gp_front_hand(gp_proxy *p, int client_fd, int worker_ch);

#endif
