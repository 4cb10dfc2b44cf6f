#include "airlock/gitproxy.h"
#include "airlock/gp_hdrcheck.h"
#include "airlock/gp_pktline.h"
#include "airlock/gp_receive.h"
#include "airlock/gp_refname.h"
#include "airlock/buf.h"
#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "gp_http.h"
#include "gp_inspect.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CT_TEXT           "text/plain; charset=utf-8"
#define CT_RECEIVE_RESULT "application/x-git-receive-pack-result"
#define IO_CHUNK          (64u << 10)
#define CONN_TIMEOUT_SEC  300
#define MAX_CONNS         256 /* concurrent connections; more are answered 503 */
#define SHARE_IDLE_SEC    120 /* a session's unused connection cache is dropped after this */

/* One session's upstream connections, DNS cache and TLS sessions: a libcurl
 * share of its own, so that bytes one session's request leaves on an
 * upstream connection are never read as the answer to another session's.
 * Made on the session's first transfer; freed once no transfer uses it and
 * the session was removed, or it sat unused for SHARE_IDLE_SEC. libcurl
 * puts a connection back in the cache only after reading a response to its
 * framed end (an aborted transfer closes its connection). */
struct session_share {
    char *session;
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    unsigned users;       /* transfers using it; under proxy->lock */
    int removed;          /* the session was removed; under proxy->lock */
    struct timespec idle; /* CLOCK_MONOTONIC when users last dropped to 0 */
    struct session_share *next;
};

struct gp_proxy {
    struct gp_config cfg;
    struct session_share *shares; /* under lock */
    pthread_mutex_t lock;         /* revoked, audit, listeners, jobs, shares */
    struct al_strlist revoked;
    int audit_fd;
    atomic_int conns;
    atomic_uint revoke_gen;     /* bumped by every revocation */
    struct listener *listeners; /* under lock */
    struct conn_job *jobs;      /* open connections, under lock */
    gp_event_fn event_fn;
    void *event_payload;
    /* credential store reloads (gitproxy.h) */
    pthread_mutex_t store_lock;
    pthread_cond_t store_cond;
    int store_watch;        /* inotify descriptor, or -1 */
    const char *store_name; /* the store file's name in the watched directory */
    uint64_t store_asked;   /* reloads asked for */
    uint64_t store_done;    /* reloads finished (loaded or failed) */
    gp_store_fn store_fn;
    void *store_payload;
};

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
    int fd;
    char *session;
    struct conn_job *next;
};

/* One request being served. */
struct request {
    gp_proxy *p;
    struct gp_conn conn;
    struct gp_http_req http;
    const char *listener_session;
    char host[GP_HOST_MAX + 1];     /* lower-case */
    char owner[GP_SEGMENT_MAX + 1]; /* the token's spelling once authorised */
    char name[GP_SEGMENT_MAX + 1];
    char repo[GP_HOST_MAX + 2 * GP_SEGMENT_MAX + 3]; /* host/owner/name */
    enum gp_route_rest rest;
    enum gp_endpoint ep;
    struct gp_upstream_headers up;      /* what may go upstream from the client's headers */
    const struct gp_upstream *upstream; /* configured upstream of host, or NULL */
    struct creds_claims claims;
    char *real_user;
    char *real_secret;
    int status;          /* what we answered, for the log */
    unsigned revoke_gen; /* proxy->revoke_gen when the token was verified */
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

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *u)
{
    struct session_share *s = u;
    pthread_mutex_lock(&s->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *u)
{
    struct session_share *s = u;
    pthread_mutex_unlock(&s->locks[data]);
}

/* Frees a share no transfer uses (closing its connections). */
static void session_share_free(struct session_share *s)
{
    if (s->share)
        curl_share_cleanup(s->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->locks[i]);
    free(s->session);
    free(s);
}

/* Unlinks and frees the unused shares of removed sessions, and those unused
 * for SHARE_IDLE_SEC. Call with p->lock. */
static void session_shares_sweep_locked(gp_proxy *p)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    for (struct session_share **pp = &p->shares; *pp;) {
        struct session_share *s = *pp;
        if (s->users == 0 && (s->removed || now.tv_sec - s->idle.tv_sec >= SHARE_IDLE_SEC)) {
            *pp = s->next;
            session_share_free(s);
        } else {
            pp = &s->next;
        }
    }
}

/* The connection cache of `session` for one transfer, made on first use;
 * hand it back with session_share_put(). NULL (the transfer then uses a
 * connection of its own, closed after it) when the session is revoked or
 * memory is short. */
static struct session_share *session_share_get(gp_proxy *p, const char *session)
{
    struct session_share *s = NULL;
    pthread_mutex_lock(&p->lock);
    session_shares_sweep_locked(p);
    /* a revoked session gets no new cache: it would outlive the removal */
    if (al_strlist_find(&p->revoked, session) >= 0)
        goto out;
    for (s = p->shares; s; s = s->next)
        if (!s->removed && strcmp(s->session, session) == 0)
            break;
    if (!s) {
        if (!(s = calloc(1, sizeof(*s))))
            goto out;
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
            pthread_mutex_init(&s->locks[i], NULL);
        if (!(s->session = strdup(session)) || !(s->share = curl_share_init())) {
            session_share_free(s);
            s = NULL;
            goto out;
        }
        curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock);
        curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
        curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
        curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
        curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        s->next = p->shares;
        p->shares = s;
    }
    s->users++;
out:
    pthread_mutex_unlock(&p->lock);
    return s;
}

/* Ends one transfer's use of `s` (NULL is fine). The easy handle must have
 * been cleaned up: libcurl refuses to free a share still attached. */
static void session_share_put(gp_proxy *p, struct session_share *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&p->lock);
    if (--s->users == 0)
        clock_gettime(CLOCK_MONOTONIC, &s->idle);
    session_shares_sweep_locked(p);
    pthread_mutex_unlock(&p->lock);
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
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->store_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->store_cond, &ca);
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
        if (strcmp(j->session, session) == 0)
            shutdown(j->fd, SHUT_RDWR);
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
    /* its upstream connections go with it (now, or when its last transfer
     * ends) */
    for (struct session_share *s = p->shares; s; s = s->next)
        if (strcmp(s->session, session) == 0)
            s->removed = 1;
    session_shares_sweep_locked(p);
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

int gp_proxy_store_watch(gp_proxy *p)
{
    const char *path = p->cfg.store_path;
    if (!path)
        return 0;
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
    /* a save renames a new file over the store; other writers may rewrite
     * it in place or remove it */
    if (inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) < 0) {
        int e = errno;
        close(fd);
        return al_error_set_errno(AL_EIO, e, "watching %s", dir);
    }
    pthread_mutex_lock(&p->store_lock);
    p->store_watch = fd;
    p->store_name = slash ? slash + 1 : path;
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

/* Reads every pending watch event: true when one names the store file (or
 * events were lost). Call with p->store_lock. */
static int store_changed_locked(gp_proxy *p)
{
    int changed = 0;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(p->store_watch, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *at = buf; at < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)at;
            if ((ev->mask & IN_Q_OVERFLOW) || (ev->len > 0 && strcmp(ev->name, p->store_name) == 0))
                changed = 1;
            at += sizeof(*ev) + ev->len;
        }
    }
    return changed;
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
static void store_refresh(gp_proxy *p)
{
    uint64_t gen = 0;
    gp_store_fn fn = NULL;
    void *payload = NULL;
    pthread_mutex_lock(&p->store_lock);
    if (p->store_watch < 0) {
        pthread_mutex_unlock(&p->store_lock);
        return;
    }
    if (store_changed_locked(p)) {
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

/* Revocation hook for creds_token_verify: the in-memory list, then the
 * revoked file (re-read on every check so an operator's edit applies at once):
 * one session id or token id per line, as the line's first field (anything
 * after a space or tab, such as airlockd's expiry time, is ignored). */
static int proxy_is_revoked(const char *session, const char *jti, void *payload)
{
    gp_proxy *p = payload;
    int hit = 0;
    pthread_mutex_lock(&p->lock);
    hit = al_strlist_find(&p->revoked, session) >= 0 || al_strlist_find(&p->revoked, jti) >= 0;
    pthread_mutex_unlock(&p->lock);
    if (hit || !p->cfg.revoked_file)
        return hit;
    struct al_buf b;
    al_buf_init(&b, 1u << 20);
    if (al_buf_read_file(&b, p->cfg.revoked_file) == 0 && b.ptr) {
        char *line = b.ptr;
        while (line && !hit) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            /* the id is the line's first field; airlockd writes "ID EXP";
             * an empty line does not end the list */
            line[strcspn(line, " \t\r")] = '\0';
            hit = *line && (strcmp(line, session) == 0 || strcmp(line, jti) == 0);
            line = nl ? nl + 1 : NULL;
        }
    }
    al_buf_free(&b);
    return hit;
}

static int respond_text(struct request *rq, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int respond_text(struct request *rq, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof(msg) - 2)
        n = (int)sizeof(msg) - 2;
    msg[n++] = '\n';
    rq->status = status;
    const char *extra = status == 401 ? "WWW-Authenticate: Basic realm=\"airlock\"\r\n" : NULL;
    return gp_http_respond(&rq->conn, status, CT_TEXT, extra, msg, (size_t)n);
}

static const struct gp_upstream *upstream_for(gp_proxy *p, const char *host)
{
    for (size_t i = 0; i < p->cfg.nupstreams; i++)
        if (strcasecmp(p->cfg.upstreams[i].host, host) == 0)
            return &p->cfg.upstreams[i];
    return NULL;
}

/* Takes host, owner and name from `r` (already checked by gp_route_parse or
 * gp_repo_parse) and sets rq->repo to "host/owner/name". */
static void request_set_repo(struct request *rq, const struct gp_route *r)
{
    snprintf(rq->host, sizeof(rq->host), "%s", r->host);
    snprintf(rq->owner, sizeof(rq->owner), "%s", r->owner);
    snprintf(rq->name, sizeof(rq->name), "%s", r->name);
    /* cannot truncate: repo holds the three parts at their longest */
    snprintf(rq->repo, sizeof(rq->repo), "%s/%s/%s", rq->host, rq->owner, rq->name);
}

/* Splits "/<host>/<owner>/<name>.git/<rest>" (gp_route_parse): 0, AL_EINVAL
 * or AL_ENOTFOUND. */
static int request_route(struct request *rq)
{
    struct gp_route r;
    int err = gp_route_parse(&r, rq->http.path, strlen(rq->http.path));
    if (err < 0)
        return err;
    request_set_repo(rq, &r);
    rq->rest = r.rest;
    rq->upstream = upstream_for(rq->p, rq->host);
    return 0;
}

/* Extracts the scoped token from Basic (password, or user when the password
 * is empty) or Bearer. Returns 0 and an allocated token, AL_ENOTFOUND when
 * there is none, AL_EINVAL when malformed. */
static int request_token(char **out, const char *auth)
{
    if (strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *t = auth + 7;
        while (*t == ' ')
            t++;
        if (!*t)
            return AL_EINVAL;
        return (*out = strdup(t)) ? 0 : AL_ENOMEM;
    }
    if (strncasecmp(auth, "Basic ", 6) != 0)
        return *auth ? AL_EINVAL : AL_ENOTFOUND;
    const char *b = auth + 6;
    while (*b == ' ')
        b++;
    size_t blen = strlen(b);
    if (blen == 0 || blen % 4 != 0 || blen > 10000)
        return AL_EINVAL;
    unsigned char *dec = malloc(blen / 4 * 3 + 1);
    if (!dec)
        return AL_ENOMEM;
    int n = EVP_DecodeBlock(dec, (const unsigned char *)b, (int)blen);
    int err = AL_EINVAL;
    if (n < 0)
        goto out;
    if (b[blen - 1] == '=')
        n--;
    if (b[blen - 2] == '=')
        n--;
    dec[n] = '\0';
    if ((int)strlen((char *)dec) != n)
        goto out;
    char *colon = strchr((char *)dec, ':');
    const char *tok = colon && colon[1] ? colon + 1 : (char *)dec;
    if (colon && !colon[1])
        *colon = '\0';
    if (!*tok)
        goto out;
    err = (*out = strdup(tok)) ? 0 : AL_ENOMEM;
out:
    OPENSSL_cleanse(dec, blen / 4 * 3 + 1);
    free(dec);
    return err;
}

/* Authenticates and authorises the request for `op`. On refusal the answer
 * has been sent and a negative code is returned. */
static int request_authorise(struct request *rq, unsigned op)
{
    char *token = NULL;
    int err = request_token(&token, rq->http.authorization);
    if (err == AL_ENOTFOUND) {
        respond_text(rq, 401, "airlock: authentication required");
        return err;
    }
    if (err < 0) {
        respond_text(rq, 403, "airlock: malformed Authorization header");
        return err;
    }
    rq->revoke_gen = atomic_load(&rq->p->revoke_gen);
    err = creds_token_verify(&rq->claims, token, strlen(token), &rq->p->cfg.keys, time(NULL),
                             proxy_is_revoked, rq->p);
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    if (err < 0) {
        respond_text(rq, 403, "airlock: %s", al_error_last());
        return err;
    }
    if (strcmp(rq->listener_session, "*") != 0 &&
        strcmp(rq->claims.session, rq->listener_session) != 0) {
        respond_text(rq, 403, "airlock: token belongs to another session");
        return AL_EPERM;
    }
    /* Repository names are compared the way the upstream compares them:
     * byte for byte unless it folds case; then the token's spelling is the
     * name from here on (credential lookup, mirror, audit, upstream URL),
     * never the client's. */
    int fold_case = rq->upstream && rq->upstream->fold_case;
    const char *claimed = creds_claims_repo_find(&rq->claims, rq->repo, fold_case);
    if (!claimed) {
        respond_text(rq, 403, "airlock: token does not grant access to %s", rq->repo);
        return AL_EPERM;
    }
    if (fold_case) {
        struct gp_route r = {.rest = rq->rest};
        if (gp_repo_parse(&r, claimed, strlen(claimed)) < 0) {
            respond_text(rq, 403, "airlock: token names an invalid repository");
            return AL_EPERM;
        }
        request_set_repo(rq, &r);
    }
    if (!(rq->claims.ops & op)) {
        respond_text(rq, 403, "airlock: token does not allow %s",
                     op == CREDS_OP_PUSH ? "push" : "fetch");
        return AL_EPERM;
    }
    store_refresh(rq->p);
    err = creds_store_resolve(&rq->real_user, &rq->real_secret, rq->p->cfg.store, rq->repo,
                              time(NULL));
    if (err < 0) {
        al_log(AL_LOG_WARN, "no upstream credential for %s: %s", rq->repo, al_error_last());
        if (err == AL_ENOTFOUND)
            respond_text(rq, 502, "airlock: no upstream credential for %s", rq->repo);
        else
            respond_text(rq, 502, "airlock: cannot obtain an upstream credential for %s", rq->repo);
        return err;
    }
    return 0;
}

/* "<base>/<owner>/<name>.git" into buf: 0, or AL_ETOOBIG when it does not
 * fit. */
static int upstream_repo_url(char *buf, size_t cap, struct request *rq,
                             const struct gp_upstream *up)
{
    int n = up ? snprintf(buf, cap, "%s/%s/%s.git", up->url, rq->owner, rq->name)
               : snprintf(buf, cap, "https://%s/%s/%s.git", rq->host, rq->owner, rq->name);
    if (n < 0 || (size_t)n >= cap)
        return al_error_set(AL_ETOOBIG, "upstream URL too long");
    return 0;
}

/* "Authorization: Basic base64(user:secret)"; allocated; wipe when done. */
static char *auth_header_make(const char *user, const char *secret)
{
    size_t plain_len = strlen(user) + 1 + strlen(secret);
    char *plain = malloc(plain_len + 1);
    size_t enc_cap = (plain_len + 2) / 3 * 4 + 1;
    char *hdr = malloc(enc_cap + 32);
    if (!plain || !hdr) {
        free(plain);
        free(hdr);
        return NULL;
    }
    snprintf(plain, plain_len + 1, "%s:%s", user, secret);
    memcpy(hdr, "Authorization: Basic ", 21);
    EVP_EncodeBlock((unsigned char *)hdr + 21, (unsigned char *)plain, (int)plain_len);
    OPENSSL_cleanse(plain, plain_len);
    free(plain);
    return hdr;
}

/* ---- upstream transfer ---- */

struct xfer {
    struct request *rq;
    long status;
    char ctype[128];
    int head_sent;
    /* request body: pre[], then spool file or client body */
    const char *pre;
    size_t pre_len, pre_off;
    int spool_fd;
    off_t spool_off;
    int from_client;
    int client_error;
    unsigned revoke_gen; /* proxy->revoke_gen when last checked */
    int revoked;         /* the session or token was revoked mid-request */
    uint64_t up_bytes, down_bytes;
    struct al_buf *report; /* keeps the start of the response for the audit */
};

static size_t xfer_header(char *data, size_t size, size_t nmemb, void *u)
{
    struct xfer *x = u;
    size_t len = size * nmemb;
    if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
        x->ctype[0] = '\0';
        const char *sp = memchr(data, ' ', len);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if (len > 13 && strncasecmp(data, "Content-Type:", 13) == 0) {
        const char *v = data + 13;
        size_t vl = len - 13;
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        /* Only a plain media type is relayed. */
        if (vl < sizeof(x->ctype)) {
            int ok = 1;
            for (size_t i = 0; i < vl; i++)
                if (!isprint((unsigned char)v[i]))
                    ok = 0;
            if (ok) {
                memcpy(x->ctype, v, vl);
                x->ctype[vl] = '\0';
            }
        }
    }
    return len;
}

static size_t xfer_write(char *data, size_t size, size_t nmemb, void *u)
{
    struct xfer *x = u;
    size_t len = size * nmemb;
    if (x->status < 200 || x->status >= 300)
        return len; /* swallowed; our own answer follows */
    if (!x->head_sent) {
        if (gp_http_send_head(&x->rq->conn, 200,
                              x->ctype[0] ? x->ctype : "application/octet-stream", NULL) < 0)
            return 0;
        x->head_sent = 1;
    }
    if (x->report && x->report->len < 4096)
        al_buf_append(x->report, data, len < 4096 - x->report->len ? len : 4096 - x->report->len);
    if (gp_http_write(&x->rq->conn, data, len) < 0)
        return 0;
    x->down_bytes += len;
    return len;
}

/* True when the request's session or token has been revoked since the
 * request started: checked before every piece of the request body goes
 * upstream, the end of the body included, so an upload cut short by a
 * revocation never completes and upstream updates no ref. */
static int xfer_revoked(struct xfer *x)
{
    gp_proxy *p = x->rq->p;
    unsigned gen = atomic_load(&p->revoke_gen);
    if (gen != x->revoke_gen) {
        x->revoke_gen = gen;
        x->revoked = proxy_is_revoked(x->rq->claims.session, x->rq->claims.jti, p);
    }
    return x->revoked;
}

static size_t xfer_read(char *dst, size_t size, size_t nmemb, void *u)
{
    struct xfer *x = u;
    size_t max = size * nmemb;
    if (xfer_revoked(x))
        return CURL_READFUNC_ABORT;
    if (x->pre_off < x->pre_len) {
        size_t n = x->pre_len - x->pre_off;
        if (n > max)
            n = max;
        memcpy(dst, x->pre + x->pre_off, n);
        x->pre_off += n;
        x->up_bytes += n;
        return n;
    }
    if (x->spool_fd >= 0) {
        ssize_t n;
        do
            n = pread(x->spool_fd, dst, max, x->spool_off);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return CURL_READFUNC_ABORT;
        x->spool_off += n;
        x->up_bytes += (size_t)n;
        return (size_t)n;
    }
    if (x->from_client) {
        ssize_t n = gp_http_read_body(&x->rq->conn, dst, max);
        if (n < 0) {
            x->client_error = 1;
            return CURL_READFUNC_ABORT;
        }
        x->up_bytes += (size_t)n;
        return (size_t)n;
    }
    return 0;
}

/* Appends "name: value" to *list, when the line is printable
 * (gp_hdr_printable). 0, AL_EINVAL or AL_ENOMEM. */
static int header_add(struct curl_slist **list, const char *name, const char *value)
{
    char line[GP_GIT_PROTOCOL_MAX + 64];
    int n = snprintf(line, sizeof(line), "%s%s%s", name, value ? ": " : "", value ? value : "");
    if (n < 0 || (size_t)n >= sizeof(line) || !gp_hdr_printable(line, (size_t)n))
        return al_error_set(AL_EINVAL, "refusing to send a %s header upstream", name);
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return AL_ENOMEM;
    *list = l;
    return 0;
}

/* The upstream request's URL and headers, from checked or fixed pieces
 * only: the configured base URL, the route's segments, the endpoint's
 * path, Accept and Content-Type, the Git-Protocol and Content-Encoding that
 * passed gp_hdrcheck_request(), our Authorization. Each line is checked to
 * be printable once more as it goes in. `*headers` is the caller's to free,
 * also on failure. 0, AL_EINVAL, AL_ETOOBIG or AL_ENOMEM. */
static int xfer_request_build(char *url, size_t cap, struct curl_slist **headers,
                              struct request *rq, int post, int64_t body_len, const char *auth)
{
    struct curl_slist *l;
    int err = upstream_repo_url(url, cap, rq, rq->upstream);
    if (err < 0)
        return err;
    size_t ul = strlen(url);
    int n = snprintf(url + ul, cap - ul, "/%s", gp_endpoint_path(rq->ep));
    if (n < 0 || (size_t)n >= cap - ul || !gp_hdr_printable(url, ul + (size_t)n))
        return al_error_set(AL_EINVAL, "refusing an upstream URL");
    /* The client's Authorization is never forwarded: only ours goes out. */
    if (!gp_hdr_printable(auth, strlen(auth)))
        return al_error_set(AL_EINVAL, "refusing an Authorization header");
    if (!(l = curl_slist_append(*headers, auth)))
        return AL_ENOMEM;
    *headers = l;
    if (rq->up.content_type && (err = header_add(headers, "Content-Type", rq->up.content_type)) < 0)
        return err;
    if ((err = header_add(headers, "Accept", rq->up.accept)) < 0)
        return err;
    if (rq->up.git_protocol[0] &&
        (err = header_add(headers, "Git-Protocol", rq->up.git_protocol)) < 0)
        return err;
    if (post && rq->up.gzip && (err = header_add(headers, "Content-Encoding", "gzip")) < 0)
        return err;
    if ((err = header_add(headers, "Expect:", NULL)) < 0) /* no 100-continue round trip */
        return err;
    if (post && body_len < 0 && (err = header_add(headers, "Transfer-Encoding", "chunked")) < 0)
        return err;
    return 0;
}

/* Forwards the request upstream and relays the answer. `body_len` is the
 * request body length or -1 (chunked); NULL-equivalent for GET when
 * `post` is 0. The transfer uses the connection cache of the token's
 * session only. Returns 0 when an answer was relayed. */
static int xfer_run(struct xfer *x, int post, int64_t body_len)
{
    struct request *rq = x->rq;
    const struct gp_upstream *up = rq->upstream;
    char url[2048];
    struct curl_slist *headers = NULL;
    struct session_share *share = NULL;
    char *auth = NULL;
    CURL *curl = NULL;
    int err = 0;
    x->revoke_gen = rq->revoke_gen;
    if (!(auth = auth_header_make(rq->real_user, rq->real_secret)) || !(curl = curl_easy_init())) {
        err = AL_ENOMEM;
        respond_text(rq, 500, "airlock: out of memory");
        goto out;
    }
    if ((err = xfer_request_build(url, sizeof(url), &headers, rq, post, body_len, auth)) < 0) {
        al_log(AL_LOG_ERROR, "%s: cannot build the upstream request: %s", rq->repo,
               al_error_last());
        respond_text(rq, 500, "airlock: cannot build the upstream request");
        goto out;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "git/2 (airlock-gitproxy)");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L); /* never carry the token elsewhere */
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)CONN_TIMEOUT_SEC);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, xfer_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, xfer_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, (long)IO_CHUNK);
    if ((share = session_share_get(rq->p, rq->claims.session)))
        curl_easy_setopt(curl, CURLOPT_SHARE, share->share);
    if (up && up->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, up->ca_file);
    if (post) {
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, xfer_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, x);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, (long)IO_CHUNK);
    }
    CURLcode rc = curl_easy_perform(curl);
    if (x->revoked) {
        al_log(AL_LOG_WARN, "%s: session %s revoked during the request; upload aborted", rq->repo,
               rq->claims.session);
        if (!x->head_sent)
            respond_text(rq, 403, "airlock: session %s was revoked", rq->claims.session);
        goto out;
    }
    if (x->head_sent) {
        rq->status = 200;
        if (rc != CURLE_OK)
            al_log(AL_LOG_WARN, "%s: transfer cut short: %s", rq->repo, curl_easy_strerror(rc));
        goto out;
    }
    if (x->client_error) {
        respond_text(rq, 400, "airlock: malformed request body");
    } else if (rc != CURLE_OK) {
        al_log(AL_LOG_WARN, "%s: upstream: %s", rq->repo, curl_easy_strerror(rc));
        respond_text(rq, 502, "airlock: upstream %s unreachable", rq->host);
    } else if (x->status >= 200 && x->status < 300) {
        rq->status = 200;
        gp_http_send_head(&rq->conn, 200, x->ctype[0] ? x->ctype : "application/octet-stream",
                          NULL);
    } else if (x->status == 401 || x->status == 403) {
        al_log(AL_LOG_WARN, "%s: upstream refused airlock's credential (%ld)", rq->repo, x->status);
        respond_text(rq, 502, "airlock: upstream refused airlock's credential for %s", rq->repo);
    } else if (x->status == 404) {
        respond_text(rq, 404, "airlock: %s not found upstream", rq->repo);
    } else if (x->status >= 300 && x->status < 400) {
        respond_text(rq, 502, "airlock: upstream redirected; redirects are not followed");
    } else {
        respond_text(rq, 502, "airlock: upstream answered %ld", x->status);
    }
out:
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl); /* detaches it from the share */
    session_share_put(rq->p, share);
    creds_secret_free(auth);
    return err;
}

/* ---- push ---- */

/* Drains the rest of the request body (so the client reads our answer rather
 * than a reset), up to max bytes. */
static void body_drain(struct gp_conn *c, uint64_t max)
{
    char buf[16384];
    uint64_t total = 0;
    ssize_t n;
    while ((n = gp_http_read_body(c, buf, sizeof(buf))) > 0 && total < max)
        total += (uint64_t)n;
}

/* Checks one command against the token; returns a reason or NULL. */
static const char *command_check(const struct creds_claims *claims, const struct gp_command *c)
{
    if (!gp_refname_valid(c->ref, strlen(c->ref)))
        return "invalid ref name";
    if (gp_oid_is_zero(c->new_oid))
        return "deleting refs is not allowed";
    int allowed = creds_claims_allow_ref(claims, c->ref);
    if (strncmp(c->ref, "refs/tags/", 10) == 0 && !allowed)
        return "pushing tags is not allowed";
    if (strncmp(c->ref, "refs/heads/", 11) != 0 && !allowed)
        return "only branches (refs/heads/) may be pushed";
    if (!allowed)
        return "this token may not push to this branch";
    return NULL;
}

/* Sends report-status with every command refused. */
static int send_refusal(struct request *rq, const struct gp_receive *r, char **reasons)
{
    struct al_buf inner, outer;
    int err = 0;
    const char *first = NULL;
    al_buf_init(&inner, 8u << 20);
    al_buf_init(&outer, 8u << 20);
    for (size_t i = 0; i < r->ncmds && !first; i++)
        first = reasons[i];
    if (!gp_receive_has_cap(r, "report-status") && !gp_receive_has_cap(r, "report-status-v2")) {
        err = gp_pktline_printf(&outer, "ERR airlock: %s", first ? first : "push refused");
        goto send;
    }
    gp_pktline_printf(&inner, "unpack ok\n");
    for (size_t i = 0; i < r->ncmds; i++)
        gp_pktline_printf(&inner, "ng %s airlock: %s\n", r->cmds[i].ref,
                          reasons[i] ? reasons[i] : "refused because another ref was refused");
    gp_pktline_flush(&inner);
    if (gp_receive_has_cap(r, "side-band-64k") || gp_receive_has_cap(r, "side-band")) {
        size_t max = gp_receive_has_cap(r, "side-band-64k") ? 65515 : 995;
        char band[65520];
        for (size_t off = 0; off < inner.len;) {
            size_t n = inner.len - off < max ? inner.len - off : max;
            band[0] = 1;
            memcpy(band + 1, inner.ptr + off, n);
            gp_pktline_append(&outer, band, n + 1);
            off += n;
        }
        err = gp_pktline_flush(&outer);
    } else {
        err = al_buf_append(&outer, inner.ptr, inner.len);
    }
send:
    if (err == 0) {
        rq->status = 200;
        err = gp_http_respond(&rq->conn, 200, CT_RECEIVE_RESULT, NULL, outer.ptr, outer.len);
    }
    al_buf_free(&inner);
    al_buf_free(&outer);
    return err;
}

static void audit_push(struct request *rq, const struct gp_receive *r, char **reasons,
                       const char *decision, const char *reason, uint64_t bytes, long upstream,
                       const char *upstream_report)
{
    json_t *refs = json_array();
    for (size_t i = 0; r && i < r->ncmds; i++)
        json_array_append_new(refs, json_pack("{s:s, s:s, s:s, s:s?}", "ref", r->cmds[i].ref, "old",
                                              r->cmds[i].old_oid, "new", r->cmds[i].new_oid,
                                              "refused", reasons ? reasons[i] : NULL));
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:o, s:s, s:s?, s:I, s:I, s:s?}", "event",
                          "push", "time", (json_int_t)time(NULL), "session", rq->claims.session,
                          "user", rq->claims.user, "repo", rq->repo, "refs", refs, "decision",
                          decision, "reason", reason, "bytes", (json_int_t)bytes, "upstream_status",
                          (json_int_t)upstream, "upstream_report", upstream_report);
    pthread_mutex_lock(&rq->p->lock);
    gp_event_fn fn = rq->p->event_fn;
    void *payload = rq->p->event_payload;
    pthread_mutex_unlock(&rq->p->lock);
    if (o && fn)
        fn(rq->claims.session, o, payload);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!line)
        return;
    if (rq->p->audit_fd >= 0) {
        size_t n = strlen(line);
        line[n] = '\n';
        pthread_mutex_lock(&rq->p->lock);
        ssize_t w = write(rq->p->audit_fd, line, n + 1);
        (void)w;
        pthread_mutex_unlock(&rq->p->lock);
        line[n] = '\0';
    } else {
        al_log(AL_LOG_INFO, "audit %s", line);
    }
    free(line);
}

static int collect_secret(const char *secret, void *payload)
{
    return al_strlist_push_unique(payload, secret) < 0;
}

/* Writes all `len` bytes of `data` to the spool file `fd`. 0 or AL_EIO
 * (with the path's directory and the system's reason). */
static int spool_write(int fd, const char *dir, const void *data, size_t len)
{
    for (const char *p = data; len > 0;) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return al_error_set_errno(AL_EIO, n < 0 ? errno : ENOSPC, "writing a spool file in %s",
                                      dir);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Spools the head and the rest of the body into an unlinked temp file in
 * cache_dir: *out_fd (the caller closes it) and *out_len. The client's
 * faults are AL_EINVAL (the body ended early or is malformed) and
 * AL_ETOOBIG (past max_push_bytes); the proxy's are AL_EIO (the file) and
 * AL_ENOMEM. */
static int spool_body(int *out_fd, uint64_t *out_len, struct request *rq, const struct al_buf *head)
{
    char path[4096];
    const char *dir = rq->p->cfg.cache_dir;
    cleanup_free char *buf = NULL;
    int n = snprintf(path, sizeof(path), "%s/spool-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return al_error_set(AL_EIO, "cache_dir %s: path too long", dir);
    cleanup_fd int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "creating a spool file in %s", dir);
    unlink(path);
    uint64_t total = head->len;
    int err = spool_write(fd, dir, head->ptr, head->len);
    if (err < 0)
        return err;
    if (!(buf = malloc(IO_CHUNK)))
        return al_error_set(AL_ENOMEM, "out of memory");
    for (;;) {
        ssize_t got = gp_http_read_body(&rq->conn, buf, IO_CHUNK);
        if (got < 0)
            return al_error_set(AL_EINVAL, "malformed request body");
        if (got == 0)
            break;
        total += (uint64_t)got;
        if (total > rq->p->cfg.max_push)
            return al_error_set(AL_ETOOBIG, "push larger than %llu bytes",
                                (unsigned long long)rq->p->cfg.max_push);
        if ((err = spool_write(fd, dir, buf, (size_t)got)) < 0)
            return err;
    }
    *out_fd = steal_fd(&fd);
    *out_len = total;
    return 0;
}

/* Answers a push that failed on the proxy's side or upstream's, not the
 * client's: the detail (al_error_last()) goes to the proxy's log and the
 * audit record (decision "failed"); git gets `status` (5xx) and the plain
 * `message`. */
static void push_failed(struct request *rq, const struct gp_receive *r, int status, uint64_t bytes,
                        const char *message)
{
    char why[768];
    snprintf(why, sizeof(why), "%s", al_error_last()[0] ? al_error_last() : "unknown error");
    al_log(AL_LOG_ERROR, "session=%s repo=%s: push not forwarded (%d): %s",
           rq->claims.session ? rq->claims.session : "-", rq->repo, status, why);
    respond_text(rq, status, "airlock: %s", message);
    audit_push(rq, r, NULL, "failed", why, bytes, 0, NULL);
}

static void handle_receive_pack(struct request *rq)
{
    struct al_buf head;
    struct gp_receive r = {0};
    struct al_strlist secrets = AL_STRLIST_INIT;
    struct al_buf report;
    char **reasons = NULL;
    char *chunk = NULL;
    char *auth = NULL;
    int spool_fd = -1;
    uint64_t spool_len = 0;
    int err, refused = 0;
    al_buf_init(&head, GP_RECEIVE_HEAD_MAX + IO_CHUNK);
    al_buf_init(&report, 4096);
    if (rq->http.content_encoding[0] && strcasecmp(rq->http.content_encoding, "identity") != 0) {
        respond_text(rq, 415, "airlock: compressed push requests are not supported");
        goto out;
    }
    if (!(chunk = malloc(IO_CHUNK))) {
        al_error_set(AL_ENOMEM, "out of memory");
        push_failed(rq, NULL, 500, 0, "out of memory");
        goto out;
    }
    /* Read until the command list (and push options) are complete. */
    for (;;) {
        err = gp_receive_parse(&r, head.ptr ? head.ptr : "", head.len);
        if (err != AL_EAGAIN)
            break;
        ssize_t n = gp_http_read_body(&rq->conn, chunk, IO_CHUNK);
        if (n <= 0) {
            err = al_error_set(AL_EINVAL, "request ended inside the command list");
            break;
        }
        if ((err = al_buf_append(&head, chunk, (size_t)n)) < 0) {
            if (err == AL_ETOOBIG)
                al_error_set(AL_ETOOBIG, "command list too long");
            break;
        }
    }
    if (err == AL_ENOMEM) {
        al_error_set(AL_ENOMEM, "out of memory reading the command list");
        push_failed(rq, NULL, 500, head.len, "out of memory");
        goto out;
    }
    if (err < 0) {
        respond_text(rq, 400, "airlock: malformed receive-pack request: %s", al_error_last());
        audit_push(rq, NULL, NULL, "refused", "malformed request", head.len, 0, NULL);
        goto out;
    }
    if (r.probe) {
        rq->status = 200;
        gp_http_send_head(&rq->conn, 200, CT_RECEIVE_RESULT, NULL);
        goto out;
    }
    if (!(reasons = calloc(r.ncmds, sizeof(*reasons)))) {
        al_error_set(AL_ENOMEM, "out of memory");
        push_failed(rq, &r, 500, head.len, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r.ncmds; i++) {
        const char *why = command_check(&rq->claims, &r.cmds[i]);
        if (why && !(reasons[i] = strdup(why))) {
            al_error_set(AL_ENOMEM, "out of memory");
            push_failed(rq, &r, 500, head.len, "out of memory");
            goto out;
        }
        refused |= why != NULL;
    }
    int need_ff = 0;
    for (size_t i = 0; i < r.ncmds; i++)
        need_ff |= !gp_oid_is_zero(r.cmds[i].old_oid);
    need_ff &= rq->p->cfg.check_ff;
    int inspect = !refused && (need_ff || rq->p->cfg.leak_guard);
    if (inspect) {
        if ((err = spool_body(&spool_fd, &spool_len, rq, &head)) < 0) {
            if (gp_proxy_session_is_revoked(rq->p, rq->claims.session)) {
                /* A removed session's connections are shut down: say why. */
                respond_text(rq, 403, "airlock: the session was revoked");
                audit_push(rq, &r, NULL, "refused", "the session was revoked", head.len, 0, NULL);
            } else if (err == AL_ETOOBIG || err == AL_EINVAL) {
                respond_text(rq, err == AL_ETOOBIG ? 413 : 400, "airlock: %s", al_error_last());
                audit_push(rq, &r, NULL, "refused", al_error_last(), head.len, 0, NULL);
            } else {
                /* The proxy's own fault: the client is not to blame. Its
                 * body is read to the end so that it sees the answer. */
                char why[512];
                snprintf(why, sizeof(why), "%s", al_error_last());
                body_drain(&rq->conn, rq->p->cfg.max_push);
                al_error_set(err, "%s", why);
                push_failed(rq, &r, err == AL_ENOMEM ? 500 : 503, head.len,
                            err == AL_ENOMEM ? "out of memory"
                                             : "the proxy cannot store the push (a server-side "
                                               "failure, logged by the proxy); try again later");
            }
            goto out;
        }
        if (creds_store_foreach_secret(rq->p->cfg.store, collect_secret, &secrets) != 0 ||
            al_strlist_push_unique(&secrets, rq->real_secret) < 0 ||
            !(auth = auth_header_make(rq->real_user, rq->real_secret))) {
            al_error_set(AL_ENOMEM, "out of memory");
            push_failed(rq, &r, 500, spool_len, "out of memory");
            goto out;
        }
        const struct gp_upstream *up = upstream_for(rq->p, rq->host);
        char url[2048];
        upstream_repo_url(url, sizeof(url), rq, up);
        struct gp_inspect in = {
            .cache_dir = rq->p->cfg.cache_dir,
            .repo = rq->repo,
            .url = url,
            .auth_header = auth,
            .spool_fd = spool_fd,
            .pack_offset = (off_t)r.head_len,
            .has_pack = spool_len > r.head_len,
            .check_ff = need_ff,
            .leak_guard = rq->p->cfg.leak_guard,
            .secrets = &secrets,
        };
        enum gp_inspect_fault fault;
        if ((err = gp_inspect_push(&in, &r, reasons, &fault)) < 0) {
            /* Not the push's fault: no per-ref refusal blames it. */
            char msg[768];
            if (err == AL_ENOMEM)
                snprintf(msg, sizeof(msg), "out of memory");
            else if (fault == GP_INSPECT_FAULT_UPSTREAM)
                snprintf(msg, sizeof(msg),
                         "cannot verify the push: %s could not be fetched from upstream (logged "
                         "by the proxy); try again later",
                         rq->repo);
            else
                snprintf(msg, sizeof(msg),
                         "cannot verify the push: a server-side failure (logged by the proxy); "
                         "try again later");
            push_failed(rq, &r,
                        err == AL_ENOMEM                     ? 500
                        : fault == GP_INSPECT_FAULT_UPSTREAM ? 502
                                                             : 503,
                        spool_len, msg);
            goto out;
        }
        for (size_t i = 0; i < r.ncmds; i++)
            refused |= reasons[i] != NULL;
    }
    struct xfer x = {.rq = rq, .spool_fd = -1, .report = &report, .revoke_gen = rq->revoke_gen};
    /* The inspection may have taken a while: a session removed meanwhile
     * has its push refused before anything goes upstream. */
    if (!refused && xfer_revoked(&x)) {
        for (size_t i = 0; i < r.ncmds; i++)
            if (!reasons[i])
                reasons[i] = strdup("the session was revoked");
        refused = 1;
    }
    if (refused) {
        if (!inspect)
            body_drain(&rq->conn, rq->p->cfg.max_push);
        send_refusal(rq, &r, reasons);
        const char *first = NULL;
        for (size_t i = 0; i < r.ncmds && !first; i++)
            first = reasons[i];
        audit_push(rq, &r, reasons, "refused", first, inspect ? spool_len : rq->conn.body_read, 0,
                   NULL);
        goto out;
    }
    int64_t body_len;
    if (spool_fd >= 0) {
        x.spool_fd = spool_fd;
        body_len = (int64_t)spool_len;
    } else {
        /* No check needs the pack: stream it straight through. */
        x.pre = head.ptr;
        x.pre_len = head.len;
        x.from_client = 1;
        body_len = rq->http.content_length;
    }
    xfer_run(&x, 1, body_len);
    /* The report is pkt-lines, possibly side-band: keep only printable
     * bytes for the audit record. */
    for (size_t i = 0; i < report.len; i++)
        if (!isprint((unsigned char)report.ptr[i]))
            report.ptr[i] = ' ';
    const char *decision = x.revoked                           ? "refused"
                           : x.status >= 200 && x.status < 300 ? "forwarded"
                                                               : "failed";
    audit_push(rq, &r, NULL, decision, x.revoked ? "the session was revoked" : NULL, x.up_bytes,
               x.status, report.ptr);
out:
    if (spool_fd >= 0)
        close(spool_fd);
    if (reasons)
        for (size_t i = 0; i < r.ncmds; i++)
            free(reasons[i]);
    free(reasons);
    for (size_t i = 0; i < secrets.len; i++)
        OPENSSL_cleanse(secrets.items[i], strlen(secrets.items[i]));
    al_strlist_free(&secrets);
    creds_secret_free(auth);
    free(chunk);
    gp_receive_clear(&r);
    al_buf_free(&head);
    al_buf_free(&report);
}

static void request_handle(struct request *rq)
{
    int err = gp_http_read_request(&rq->conn, &rq->http);
    if (err == AL_EIO)
        return;
    if (err < 0) {
        respond_text(rq, 400, "airlock: %s", al_error_last());
        return;
    }
    err = request_route(rq);
    if (err < 0) {
        respond_text(rq, 404, "airlock: expected /<host>/<owner>/<repo>.git/...");
        return;
    }
    int info = rq->rest == GP_REST_INFO_REFS;
    int receive = rq->rest == GP_REST_RECEIVE_PACK;
    if (info) {
        if (strcmp(rq->http.method, "GET") != 0) {
            respond_text(rq, 405, "airlock: GET expected");
            return;
        }
        if (strcmp(rq->http.query, "service=git-upload-pack") == 0)
            receive = 0;
        else if (strcmp(rq->http.query, "service=git-receive-pack") == 0)
            receive = 1;
        else {
            respond_text(rq, 403, "airlock: only git's smart HTTP protocol is supported");
            return;
        }
        rq->ep = receive ? GP_EP_INFO_REFS_RECEIVE : GP_EP_INFO_REFS_UPLOAD;
    } else {
        if (strcmp(rq->http.method, "POST") != 0) {
            respond_text(rq, 405, "airlock: POST expected");
            return;
        }
        rq->ep = receive ? GP_EP_RECEIVE_PACK : GP_EP_UPLOAD_PACK;
    }
    /* Before anything else looks at them: every client header value that
     * could reach upstream is checked against its grammar. */
    if (gp_hdrcheck_request(&rq->up, &rq->http, rq->ep) < 0) {
        respond_text(rq, 400, "airlock: %s", al_error_last());
        return;
    }
    if (request_authorise(rq, receive ? CREDS_OP_PUSH : CREDS_OP_FETCH) < 0)
        return;
    if (!info && receive) {
        handle_receive_pack(rq);
        return;
    }
    struct xfer x = {.rq = rq, .spool_fd = -1, .from_client = !info};
    xfer_run(&x, !info, rq->http.chunked ? -1 : rq->http.content_length);
}

/* Serves one connection; the caller closes fd. */
static void serve_conn(gp_proxy *p, int fd, const char *session)
{
    struct request *rq = calloc(1, sizeof(*rq));
    if (!rq)
        return;
    struct timeval tv = {.tv_sec = CONN_TIMEOUT_SEC};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    rq->p = p;
    rq->conn.fd = fd;
    rq->listener_session = session;
    request_handle(rq);
    if (rq->http.method[0])
        al_log(AL_LOG_INFO, "session=%s user=%s %s %s -> %d", session,
               rq->claims.user ? rq->claims.user : "-", rq->http.method, rq->http.path, rq->status);
    shutdown(fd, SHUT_WR);
    /* Let the client see the end of the response before the close. */
    char sink[4096];
    struct timeval shortv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &shortv, sizeof(shortv));
    for (int i = 0; i < 64 && recv(fd, sink, sizeof(sink), 0) > 0; i++)
        ;
    creds_claims_clear(&rq->claims);
    free(rq->real_user);
    creds_secret_free(rq->real_secret);
    OPENSSL_cleanse(rq->http.authorization, sizeof(rq->http.authorization));
    OPENSSL_cleanse(rq->conn.in, sizeof(rq->conn.in));
    free(rq);
}

void gp_proxy_serve(gp_proxy *p, int fd, const char *session)
{
    serve_conn(p, fd, session);
    close(fd);
}

static void *conn_thread(void *arg)
{
    struct conn_job *job = arg;
    gp_proxy *p = job->proxy;
    serve_conn(p, job->fd, job->session);
    /* Unlinked before the close, so gp_proxy_remove_session() never shuts
     * down a descriptor number that has been reused meanwhile. */
    pthread_mutex_lock(&p->lock);
    for (struct conn_job **pp = &p->jobs; *pp; pp = &(*pp)->next)
        if (*pp == job) {
            *pp = job->next;
            break;
        }
    pthread_mutex_unlock(&p->lock);
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
    if (atomic_fetch_add(&p->conns, 1) >= MAX_CONNS) {
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
