/* airlock-gitproxy's key holder (OpenSMTPD's model, docs/gitproxy.md):
 * the process that holds the token keys, the credential store and the
 * upstream connections. It accepts connections on the sessions' listeners
 * but never reads what a client sends: each connection goes, with one end
 * of a new channel, to the front (front.c), whose zygote forks a worker
 * that parses it; this process answers the worker's fixed-format messages
 * (keyd_conn.c). Here: sessions and listeners, revocation, the credential
 * store's reloads, the audit log. */
#include "gp_keyd.h"
#include "gp_chan.h"

#include "airlock/buf.h"
#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct listener {
    gp_proxy *proxy;
    int fd;
    char *session;
    ino_t ino;  /* the socket's inode: the same socket is never served twice */
    int closed; /* under proxy->lock: shut down by gp_proxy_remove_session() */
    struct listener *next;
};

struct conn_job {
    gp_proxy *proxy;
    int fd; /* the client socket (the worker has its own descriptor of it) */
    int ch; /* our end of the worker's channel */
    char *session;
    struct conn_job *next;
};

void gp_config_clear(struct gp_config *cfg)
{
    creds_keyring_clear(&cfg->keys);
    creds_store_free(cfg->store);
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        free(cfg->upstreams[i].host);
        free(cfg->upstreams[i].url);
        free(cfg->upstreams[i].ca_file);
    }
    free(cfg->upstreams);
    free(cfg->cache_dir);
    free(cfg->revoked_file);
    free(cfg->store_path);
    free(cfg->audit_path);
    memset(cfg, 0, sizeof(*cfg));
}

const struct gp_upstream *gp_upstream_for(const gp_proxy *p, const char *host)
{
    for (size_t i = 0; i < p->cfg.nupstreams; i++)
        if (strcmp(p->cfg.upstreams[i].host, host) == 0)
            return &p->cfg.upstreams[i];
    return NULL;
}

/* ---- per-session upstream connection caches ---- */

static void sess_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *u)
{
    (void)h;
    (void)a;
    struct gp_sess *s = u;
    pthread_mutex_lock(&s->locks[data]);
}

static void sess_unlock(CURL *h, curl_lock_data data, void *u)
{
    (void)h;
    struct gp_sess *s = u;
    pthread_mutex_unlock(&s->locks[data]);
}

static void sess_free(struct gp_sess *s)
{
    if (s->share)
        curl_share_cleanup(s->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->locks[i]);
    free(s->id);
    free(s);
}

struct gp_sess *gp_sess_get(gp_proxy *p, const char *session)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&p->lock);
    /* Caches nobody used for a while go (sessions of an operator "*"
     * listener are never removed by airlockd). */
    for (struct gp_sess **pp = &p->sessions; *pp;) {
        struct gp_sess *s = *pp;
        if (s->refs == 0 && now.tv_sec - s->idle.tv_sec >= GP_SHARE_IDLE_S) {
            *pp = s->next;
            sess_free(s);
        } else {
            pp = &s->next;
        }
    }
    for (struct gp_sess *s = p->sessions; s; s = s->next)
        if (strcmp(s->id, session) == 0) {
            s->refs++;
            pthread_mutex_unlock(&p->lock);
            return s;
        }
    struct gp_sess *s = calloc(1, sizeof(*s));
    if (!s || !(s->id = strdup(session)) || !(s->share = curl_share_init())) {
        pthread_mutex_unlock(&p->lock);
        if (s) {
            free(s->id);
            free(s);
        }
        return NULL;
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->locks[i], NULL);
    /* Connections, DNS and TLS sessions are reused within the session
     * only; libcurl reuses a connection only once its previous response
     * was read to its end. */
    curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, sess_lock);
    curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, sess_unlock);
    curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    s->refs = 1;
    s->next = p->sessions;
    p->sessions = s;
    pthread_mutex_unlock(&p->lock);
    return s;
}

/* Unlinks the session's state; freed once no connection holds it. Call with
 * p->lock. */
static void sess_unlink_locked(gp_proxy *p, const char *session)
{
    for (struct gp_sess **pp = &p->sessions; *pp; pp = &(*pp)->next) {
        struct gp_sess *s = *pp;
        if (strcmp(s->id, session) != 0)
            continue;
        *pp = s->next;
        s->removed = 1;
        if (s->refs == 0)
            sess_free(s);
        return;
    }
}

void gp_sess_put(gp_proxy *p, struct gp_sess *s)
{
    pthread_mutex_lock(&p->lock);
    int gone = --s->refs == 0 && s->removed;
    if (s->refs == 0)
        clock_gettime(CLOCK_MONOTONIC, &s->idle);
    pthread_mutex_unlock(&p->lock);
    if (gone)
        sess_free(s);
}

int gp_proxy_new(gp_proxy **out, struct gp_config *cfg)
{
    gp_proxy *p = calloc(1, sizeof(*p));
    if (!p)
        return AL_ENOMEM;
    p->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    p->audit_fd = -1;
    p->store_watch = -1;
    p->revoked_watch = -1;
    p->front_fd = -1;
    p->have_keys = p->cfg.keys.len > 0;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->store_lock, NULL);
    pthread_mutex_init(&p->front_lock, NULL);
    pthread_mutex_init(&p->revoked_lock, NULL);
    pthread_rwlock_init(&p->keys_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->store_cond, &ca);
    pthread_cond_init(&p->front_cond, &ca);
    pthread_condattr_destroy(&ca);
    if (p->cfg.audit_path) {
        p->audit_fd = open(p->cfg.audit_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (p->audit_fd < 0) {
            int err = al_error_set_errno(AL_EIO, errno, "%s", p->cfg.audit_path);
            gp_config_clear(&p->cfg);
            free(p);
            return err;
        }
    }
    *out = p;
    return 0;
}

int gp_proxy_set_keys(gp_proxy *p, const struct creds_keyring *ring)
{
    if (ring->len == 0)
        return al_error_set(AL_EINVAL, "no token keys");
    pthread_rwlock_wrlock(&p->keys_lock);
    creds_keyring_clear(&p->cfg.keys);
    p->cfg.keys = *ring;
    p->have_keys = 1;
    pthread_rwlock_unlock(&p->keys_lock);
    return 0;
}

int gp_proxy_revoke_session(gp_proxy *p, const char *session)
{
    pthread_mutex_lock(&p->lock);
    int err = al_strlist_push_unique(&p->revoked, session);
    atomic_fetch_add(&p->revoke_gen, 1);
    pthread_mutex_unlock(&p->lock);
    return err;
}

/* Shuts down the listeners of `session` (their accept threads then close
 * them) and, when `conns` is set, its open connections. Call with p->lock. */
static void session_shutdown_locked(gp_proxy *p, const char *session, int conns)
{
    for (struct listener *l = p->listeners; l; l = l->next)
        if (!l->closed && strcmp(l->session, session) == 0) {
            l->closed = 1;
            shutdown(l->fd, SHUT_RDWR);
        }
    for (struct conn_job *j = p->jobs; conns && j; j = j->next)
        if (strcmp(j->session, session) == 0) {
            shutdown(j->fd, SHUT_RDWR);
            if (j->ch >= 0)
                shutdown(j->ch, SHUT_RDWR);
        }
}

/* The socket's identity: descriptors of the same socket share the inode. */
static ino_t socket_ino(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

void gp_proxy_close_listeners(gp_proxy *p, const char *session, const int *keep, size_t nkeep)
{
    pthread_mutex_lock(&p->lock);
    for (struct listener *l = p->listeners; l; l = l->next) {
        if (l->closed || strcmp(l->session, session) != 0)
            continue;
        int kept = 0;
        for (size_t i = 0; i < nkeep && !kept; i++)
            kept = socket_ino(keep[i]) == l->ino;
        if (!kept) {
            l->closed = 1;
            shutdown(l->fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&p->lock);
}

int gp_proxy_remove_session(gp_proxy *p, const char *session)
{
    /* Revoke first, so that a request that wins the race against the
     * shutdown below still fails its token check or its upload. */
    int err = gp_proxy_revoke_session(p, session);
    pthread_mutex_lock(&p->lock);
    session_shutdown_locked(p, session, 1);
    sess_unlink_locked(p, session);
    pthread_mutex_unlock(&p->lock);
    return err;
}

int gp_proxy_session_is_revoked(gp_proxy *p, const char *session)
{
    pthread_mutex_lock(&p->lock);
    int hit = al_strlist_find(&p->revoked, session) >= 0;
    pthread_mutex_unlock(&p->lock);
    return hit;
}

void gp_proxy_set_event_hook(gp_proxy *p, gp_event_fn fn, void *payload)
{
    pthread_mutex_lock(&p->lock);
    p->event_fn = fn;
    p->event_payload = payload;
    pthread_mutex_unlock(&p->lock);
}

/* Watches the directory of `path` for changes to that file (a writer may
 * rename a new file over it, rewrite it in place or remove it): a
 * non-blocking inotify descriptor, and *name the file's name in it. */
static int file_watch(const char *path, const char **name)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    int n = slash
                ? snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path)
                : snprintf(dir, sizeof(dir), ".");
    if (n < 0 || (size_t)n >= sizeof(dir))
        return al_error_set(AL_EINVAL, "%s: path too long", path);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "inotify");
    if (inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) < 0) {
        int e = errno;
        close(fd);
        return al_error_set_errno(AL_EIO, e, "watching %s", dir);
    }
    *name = slash ? slash + 1 : path;
    return fd;
}

/* Reads every pending event of a file_watch(): true when one names `name`
 * (or events were lost). */
static int file_changed(int fd, const char *name)
{
    int changed = 0;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *at = buf; at < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)at;
            if ((ev->mask & IN_Q_OVERFLOW) || (ev->len > 0 && strcmp(ev->name, name) == 0))
                changed = 1;
            at += sizeof(*ev) + ev->len;
        }
    }
    return changed;
}

int gp_proxy_store_watch(gp_proxy *p)
{
    const char *name;
    if (!p->cfg.store_path)
        return 0;
    int fd = file_watch(p->cfg.store_path, &name);
    if (fd < 0)
        return fd;
    pthread_mutex_lock(&p->store_lock);
    p->store_watch = fd;
    p->store_name = name;
    pthread_mutex_unlock(&p->store_lock);
    if (creds_store_reload(p->cfg.store) < 0)
        al_log(AL_LOG_ERROR, "credential store: %s; keeping the credentials loaded at start",
               al_error_last());
    return 0;
}

void gp_proxy_set_store_hook(gp_proxy *p, gp_store_fn fn, void *payload)
{
    pthread_mutex_lock(&p->store_lock);
    p->store_fn = fn;
    p->store_payload = payload;
    pthread_mutex_unlock(&p->store_lock);
}

static void store_finish(gp_proxy *p, uint64_t gen)
{
    pthread_mutex_lock(&p->store_lock);
    if (gen > p->store_done)
        p->store_done = gen;
    pthread_cond_broadcast(&p->store_cond);
    pthread_mutex_unlock(&p->store_lock);
}

int gp_proxy_store_reload(gp_proxy *p, int fd, uint64_t gen)
{
    int err = creds_store_reload_fd(p->cfg.store, fd);
    if (err < 0)
        al_log(AL_LOG_ERROR, "credential store reload failed, keeping the previous credentials: %s",
               al_error_last());
    else
        al_log(AL_LOG_INFO, "credential store reloaded (%zu entr%s)",
               creds_store_count(p->cfg.store), creds_store_count(p->cfg.store) == 1 ? "y" : "ies");
    store_finish(p, gen);
    return err;
}

void gp_proxy_store_reload_failed(gp_proxy *p, uint64_t gen, const char *why)
{
    al_log(AL_LOG_ERROR, "credential store reload failed, keeping the previous credentials: %s",
           why);
    store_finish(p, gen);
}

/* Before a credential is resolved: when the store file changed since the
 * last look, reload it (or have it reloaded) and wait for that, bounded. */
void gp_store_refresh(gp_proxy *p)
{
    uint64_t gen = 0;
    gp_store_fn fn = NULL;
    void *payload = NULL;
    pthread_mutex_lock(&p->store_lock);
    if (p->store_watch < 0) {
        pthread_mutex_unlock(&p->store_lock);
        return;
    }
    if (file_changed(p->store_watch, p->store_name)) {
        gen = ++p->store_asked;
        fn = p->store_fn;
        payload = p->store_payload;
    }
    uint64_t want = p->store_asked;
    pthread_mutex_unlock(&p->store_lock);
    if (gen && fn) {
        fn(gen, payload);
    } else if (gen) {
        int err = creds_store_reload(p->cfg.store);
        if (err < 0)
            al_log(AL_LOG_ERROR,
                   "credential store changed but cannot be re-read as uid %u (%s); keeping the"
                   " previous credentials (run the proxy under airlockd, or restart it)",
                   (unsigned)geteuid(), al_error_last());
        else
            al_log(AL_LOG_INFO, "credential store reloaded (%zu entr%s)",
                   creds_store_count(p->cfg.store),
                   creds_store_count(p->cfg.store) == 1 ? "y" : "ies");
        store_finish(p, gen);
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += GP_STORE_RELOAD_WAIT_S;
    pthread_mutex_lock(&p->store_lock);
    while (p->store_done < want) {
        if (pthread_cond_timedwait(&p->store_cond, &p->store_lock, &until) == ETIMEDOUT) {
            if (p->store_done < want) {
                al_log(AL_LOG_ERROR,
                       "credential store changed but no reload came within %d s; going on with"
                       " the previous credentials",
                       GP_STORE_RELOAD_WAIT_S);
                p->store_done = want; /* the next requests do not wait again */
            }
            break;
        }
    }
    pthread_mutex_unlock(&p->store_lock);
}

/* ---- revocation ---- */

/* Reads the revoked file (standalone mode): one session id or token id per
 * line, as the line's first field (anything after a space or tab, such as
 * an expiry time, is ignored; blank lines are skipped). Read at start and
 * when it changes, never per request. */
static int revoked_file_load(gp_proxy *p)
{
    struct al_buf b;
    struct al_strlist ids = AL_STRLIST_INIT;
    al_buf_init(&b, 1u << 20);
    int err = al_buf_read_file(&b, p->cfg.revoked_file);
    if (err == AL_ENOTFOUND) {
        err = 0; /* no file: nothing revoked */
    } else if (err == 0 && b.ptr) {
        for (char *line = b.ptr; line && err == 0;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            line[strcspn(line, " \t\r")] = '\0';
            if (*line)
                err = al_strlist_push_unique(&ids, line);
            line = nl ? nl + 1 : NULL;
        }
    }
    al_buf_free(&b);
    if (err < 0) {
        al_strlist_free(&ids);
        return err;
    }
    pthread_mutex_lock(&p->lock);
    al_strlist_free(&p->revoked_file_ids);
    p->revoked_file_ids = ids;
    atomic_fetch_add(&p->revoke_gen, 1);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int gp_proxy_revoked_file_watch(gp_proxy *p)
{
    if (!p->cfg.revoked_file)
        return 0;
    int err = revoked_file_load(p);
    if (err < 0)
        return err;
    int fd = file_watch(p->cfg.revoked_file, &p->revoked_name);
    if (fd < 0)
        return fd;
    p->revoked_watch = fd;
    return 0;
}

/* Re-reads the revoked file when its directory reported a change. */
static void revoked_file_refresh(gp_proxy *p)
{
    if (p->revoked_watch < 0)
        return;
    pthread_mutex_lock(&p->revoked_lock);
    if (file_changed(p->revoked_watch, p->revoked_name) && revoked_file_load(p) < 0)
        al_log(AL_LOG_ERROR, "revoked file %s: %s; keeping the previous list", p->cfg.revoked_file,
               al_error_last());
    pthread_mutex_unlock(&p->revoked_lock);
}

int gp_proxy_is_revoked(const char *session, const char *jti, void *payload)
{
    gp_proxy *p = payload;
    revoked_file_refresh(p);
    pthread_mutex_lock(&p->lock);
    int hit = al_strlist_find(&p->revoked, session) >= 0 ||
              al_strlist_find(&p->revoked, jti) >= 0 ||
              al_strlist_find(&p->revoked_file_ids, session) >= 0 ||
              al_strlist_find(&p->revoked_file_ids, jti) >= 0;
    pthread_mutex_unlock(&p->lock);
    return hit;
}

/* ---- audit ---- */

void gp_audit_write(gp_proxy *p, const char *session, json_t *record)
{
    pthread_mutex_lock(&p->lock);
    gp_event_fn fn = p->event_fn;
    void *payload = p->event_payload;
    pthread_mutex_unlock(&p->lock);
    if (fn)
        fn(session, record, payload);
    char *line = json_dumps(record, JSON_COMPACT);
    if (!line)
        return;
    if (p->audit_fd >= 0) {
        size_t n = strlen(line);
        line[n] = '\n';
        pthread_mutex_lock(&p->lock);
        ssize_t w = write(p->audit_fd, line, n + 1);
        (void)w;
        pthread_mutex_unlock(&p->lock);
        line[n] = '\0';
    } else {
        al_log(AL_LOG_INFO, "audit %s", line);
    }
    free(line);
}

/* ---- the front ---- */

/* Ends this process when the front does: without it no connection can be
 * served, and the supervisor (airlockd) restarts the whole proxy. */
static void *front_watch(void *arg)
{
    gp_proxy *p = arg;
    int status = 0;
    while (waitpid(p->front_pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status))
        al_log(AL_LOG_ERROR, "the front (pid %d) was killed by signal %d; exiting",
               (int)p->front_pid, WTERMSIG(status));
    else
        al_log(AL_LOG_ERROR, "the front (pid %d) exited with status %d; exiting", (int)p->front_pid,
               WEXITSTATUS(status));
    _exit(1);
    return NULL;
}

/* Waits for the front's report of its start (bounded): 0 when READY, or
 * the front's own reason. */
static int front_ready(int fd)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    int rc;
    while ((rc = poll(&pfd, 1, GP_FRONT_START_TIMEOUT_S * 1000)) < 0 && errno == EINTR)
        ;
    if (rc == 0)
        return al_error_set(AL_ETIMEOUT, "the front did not start within %d s",
                            GP_FRONT_START_TIMEOUT_S);
    uint8_t buf[GP_CHAN_MSG_MAX];
    size_t nfds;
    ssize_t n = gp_chan_recv(fd, buf, sizeof(buf), NULL, 0, &nfds);
    struct gp_rd r;
    int type = n > 0 ? gp_rd_init(&r, buf, (size_t)n) : 0;
    if (type == GP_CH_ZYGOTE_READY && gp_rd_end(&r, "ZYGOTE_READY") == 0)
        return 0;
    if (type == GP_CH_FAIL) {
        char msg[1024];
        gp_rd_u16(&r);
        gp_rd_str(&r, msg, sizeof(msg));
        if (gp_rd_end(&r, "FAIL") == 0)
            return al_error_set(AL_EIO, "%s", msg);
    }
    return al_error_set(AL_EIO, "the front exited during its start");
}

int gp_front_start(gp_proxy *p, const char *self, const char *user, const char *group)
{
    int sv[2];
    char fdarg[16];
    int err = gp_chan_pair(sv);
    if (err < 0)
        return err;
    snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
    pid_t pid = fork();
    if (pid == 0) {
        /* only async-signal-safe calls until exec; the new image starts
         * with none of this process's memory */
        int fl = fcntl(sv[1], F_GETFD);
        if (fl < 0 || fcntl(sv[1], F_SETFD, fl & ~FD_CLOEXEC) < 0)
            _exit(127);
        char *argv[] = {(char *)"airlock-gitproxy", (char *)"--front", fdarg, NULL};
        execv(self, argv);
        _exit(127);
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return al_error_set_errno(AL_EIO, errno, "fork");
    }
    uint8_t buf[GP_CHAN_MSG_MAX];
    struct gp_wire w;
    gp_wire_init(&w, buf, sizeof(buf), GP_CH_ZYGOTE_INIT);
    gp_wire_str(&w, user ? user : "");
    gp_wire_str(&w, group ? group : "");
    gp_wire_str(&w, p->cfg.cache_dir);
    gp_wire_u8(&w, (uint8_t)(p->cfg.leak_guard != 0));
    gp_wire_u8(&w, (uint8_t)(p->cfg.check_ff != 0));
    gp_wire_u64(&w, p->cfg.max_push);
    gp_wire_u8(&w, (uint8_t)al_log_enabled(AL_LOG_DEBUG));
    if ((err = gp_chan_send(sv[0], &w, NULL, 0)) == 0)
        err = front_ready(sv[0]);
    if (err < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(sv[0]);
        return err;
    }
    p->front_pid = pid;
    pthread_mutex_lock(&p->front_lock);
    p->front_fd = sv[0];
    pthread_cond_broadcast(&p->front_cond);
    pthread_mutex_unlock(&p->front_lock);
    pthread_t t;
    if (pthread_create(&t, NULL, front_watch, p) == 0)
        pthread_detach(t);
    al_log(AL_LOG_INFO, "front started (pid %d)", (int)pid);
    return 0;
}

int gp_front_hand(gp_proxy *p, int client_fd, int worker_ch)
{
    uint8_t buf[8];
    struct gp_wire w;
    int fds[2] = {client_fd, worker_ch};
    gp_wire_init(&w, buf, sizeof(buf), GP_CH_ZYGOTE_CONN);
    pthread_mutex_lock(&p->front_lock);
    /* The listeners open (as root) before the front starts, and an fd
     * handed in may hold connections queued already: one accepted
     * meanwhile waits for the front, as long as its start may take. */
    if (p->front_fd < 0) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += GP_FRONT_START_TIMEOUT_S;
        while (p->front_fd < 0 &&
               pthread_cond_timedwait(&p->front_cond, &p->front_lock, &until) != ETIMEDOUT)
            ;
    }
    int err =
        p->front_fd >= 0 ? gp_chan_send(p->front_fd, &w, fds, 2) : al_error_set(AL_EIO, "no front");
    pthread_mutex_unlock(&p->front_lock);
    return err;
}

/* ---- connections ---- */

static void *conn_thread(void *arg)
{
    struct conn_job *job = arg;
    gp_proxy *p = job->proxy;
    int sv[2];
    if (gp_chan_pair(sv) < 0 || (job->ch = sv[0], gp_front_hand(p, job->fd, sv[1]) < 0)) {
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                                   "text/plain\r\nConnection: close\r\n\r\n"
                                   "airlock: the git proxy cannot serve this now\n";
        al_log(AL_LOG_ERROR, "session %s: connection dropped: %s", job->session, al_error_last());
        ssize_t wr = send(job->fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)wr;
    } else {
        close(sv[1]);
        gp_keyd_conn_serve(p, job->ch, job->fd, job->session);
    }
    /* Unlinked before the close, so gp_proxy_remove_session() never shuts
     * down a descriptor number that has been reused meanwhile. */
    pthread_mutex_lock(&p->lock);
    for (struct conn_job **pp = &p->jobs; *pp; pp = &(*pp)->next)
        if (*pp == job) {
            *pp = job->next;
            break;
        }
    pthread_mutex_unlock(&p->lock);
    if (job->ch >= 0)
        close(job->ch);
    close(job->fd);
    atomic_fetch_sub(&p->conns, 1);
    free(job->session);
    free(job);
    return NULL;
}

/* Starts a thread for an accepted connection, or refuses it. */
static void conn_start(struct listener *l, int fd)
{
    gp_proxy *p = l->proxy;
    if (atomic_fetch_add(&p->conns, 1) >= GP_MAX_CONNS) {
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                                   "text/plain\r\nConnection: close\r\n\r\n"
                                   "airlock: too many connections\n";
        ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        close(fd);
        atomic_fetch_sub(&p->conns, 1);
        return;
    }
    struct conn_job *job = calloc(1, sizeof(*job));
    pthread_t t;
    pthread_attr_t attr;
    if (!job || !(job->session = strdup(l->session)))
        goto refuse;
    job->proxy = p;
    job->fd = fd;
    job->ch = -1;
    pthread_mutex_lock(&p->lock);
    if (l->closed) {
        /* The session went away between accept() and here. */
        pthread_mutex_unlock(&p->lock);
        goto refuse;
    }
    job->next = p->jobs;
    p->jobs = job;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, conn_thread, job);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        p->jobs = job->next;
    pthread_mutex_unlock(&p->lock);
    if (rc == 0)
        return;
refuse:
    close(fd);
    atomic_fetch_sub(&p->conns, 1);
    if (job)
        free(job->session);
    free(job);
}

static void *accept_thread(void *arg)
{
    struct listener *l = arg;
    gp_proxy *p = l->proxy;
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            conn_start(l, fd);
            continue;
        }
        int e = errno;
        pthread_mutex_lock(&p->lock);
        int closed = l->closed;
        pthread_mutex_unlock(&p->lock);
        if (closed)
            break;
        if (e == EINTR || e == ECONNABORTED || e == EMFILE || e == ENFILE || e == ENOBUFS ||
            e == ENOMEM) {
            if (e != EINTR && e != ECONNABORTED)
                usleep(100000);
            continue;
        }
        al_log(AL_LOG_ERROR, "accept on listener of session %s: %s", l->session, strerror(e));
        break;
    }
    pthread_mutex_lock(&p->lock);
    for (struct listener **pp = &p->listeners; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    pthread_mutex_unlock(&p->lock);
    al_log(AL_LOG_INFO, "listener of session %s closed", l->session);
    close(l->fd);
    free(l->session);
    free(l);
    return NULL;
}

int gp_proxy_listen_fd(gp_proxy *p, int fd, const char *session)
{
    struct listener *l = calloc(1, sizeof(*l));
    pthread_t t;
    if (!l || !(l->session = strdup(session))) {
        free(l);
        close(fd);
        return AL_ENOMEM;
    }
    l->proxy = p;
    l->fd = fd;
    l->ino = socket_ino(fd);
    /* The accept thread blocks in accept(); a listener made by airlockd
     * may arrive non-blocking. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    pthread_mutex_lock(&p->lock);
    for (struct listener *o = p->listeners; o; o = o->next)
        if (!o->closed && o->ino == l->ino && strcmp(o->session, session) == 0) {
            /* Already served (airlockd re-sent the same socket). */
            pthread_mutex_unlock(&p->lock);
            close(fd);
            free(l->session);
            free(l);
            return 0;
        }
    l->next = p->listeners;
    p->listeners = l;
    if (pthread_create(&t, NULL, accept_thread, l) != 0) {
        p->listeners = l->next;
        pthread_mutex_unlock(&p->lock);
        close(fd);
        free(l->session);
        free(l);
        return al_error_set(AL_ERROR, "cannot start listener thread");
    }
    pthread_detach(t);
    pthread_mutex_unlock(&p->lock);
    return 0;
}
