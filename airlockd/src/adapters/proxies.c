/* Supervision of airlock-netproxy and airlock-gitproxy (control mode,
 * docs/control-protocol.md) and the per-session listeners handed to them.
 *
 * One thread per proxy: it spawns the proxy with one end of a socketpair as
 * --control, re-sends every live session (session_add with airlockd's own
 * copies of the session's listeners), then reads acks and events until the
 * socket closes, reaps the proxy and starts it again. Other threads send
 * requests under the proxy's send_lock. A session_add made for a new
 * session is waited for (struct ald_px_wait: matched to its ack by proxy
 * generation and seq, re-matched to the re-sent session_add when the proxy
 * restarts meanwhile); other requests are not (a refused one is logged). */
#include "airlockd/adapters/proxies.h"

#include "airlockd/adapters/store.h"
#include "airlockd/adapters/store_nodes.h"
#include "airlockd/core/approval.h"

#include "airlockd/core/cluster.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

#include "airlock/buf.h"
#include "airlock/cleanup.h"
#include "airlock/creds.h"
#include "airlock/ctlmsg.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The loopback ports of the sandbox's proxies, in lfd[] order. */
static const uint16_t px_ports[3] = {3128, 1080, 7418};
static const char *const px_kinds[3] = {"http", "socks5", "git"};

size_t ald_px_ports(const struct ald *d, const uint16_t **ports)
{
    if (!d->px[ALD_PX_NET].enabled && !d->px[ALD_PX_GIT].enabled) {
        *ports = NULL;
        return 0;
    }
    *ports = px_ports;
    return 3;
}

/* Wipes the secrets a session_add carries (its CA's key, its credentials'
 * values) in `msg`'s strings, before they are freed. */
static void msg_wipe(json_t *msg)
{
    json_t *k = json_object_get(json_object_get(msg, "tls"), "ca_key");
    if (json_is_string(k))
        OPENSSL_cleanse((char *)json_string_value(k), json_string_length(k));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(msg, "credentials"), i, c)
    {
        json_t *v = json_object_get(c, "value");
        if (json_is_string(v))
            OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
    }
}

/* Sends one request (new seq) to a proxy. Caller holds p->send_lock.
 * Steals `msg` (its secrets are wiped). AL_EIO while the proxy is down. */
static int px_send_locked(struct ald_proxy *p, json_t *msg, const int *fds, size_t nfds)
{
    int err = AL_EIO;
    if (!msg)
        return AL_ENOMEM;
    if (p->fd >= 0) {
        json_object_set_new(msg, "seq", json_integer(++p->seq));
        err = ctl_send(p->fd, msg, fds, nfds);
        if (err < 0)
            al_log(AL_LOG_WARN, "%s: send: %s", p->name, al_error_last());
    }
    msg_wipe(msg);
    json_decref(msg);
    return err;
}

static int px_send(struct ald_proxy *p, json_t *msg, const int *fds, size_t nfds)
{
    if (!p->enabled) {
        json_decref(msg);
        return 0;
    }
    pthread_mutex_lock(&p->send_lock);
    int err = px_send_locked(p, msg, fds, nfds);
    pthread_mutex_unlock(&p->send_lock);
    return err;
}

/* One session_add whose ack a creating thread waits for (on its stack,
 * linked into p->waits under p->ack_lock). */
struct ald_px_wait {
    const char *session;
    unsigned gen;  /* the proxy generation `seq` was sent in */
    long long seq; /* 0: not sent (yet) in any generation */
    int done;
    int ok;
    char error[256];
    struct ald_px_wait *next;
};

/* Points the waiters of session `id` at the request about to be sent with
 * seq p->seq + 1. Caller holds p->send_lock (p->gen and p->seq are stable). */
static void waits_expect(struct ald_proxy *p, const char *id)
{
    pthread_mutex_lock(&p->ack_lock);
    for (struct ald_px_wait *w = p->waits; w; w = w->next) {
        if (!w->done && strcmp(w->session, id) == 0) {
            w->gen = p->gen;
            w->seq = p->seq + 1;
        }
    }
    pthread_mutex_unlock(&p->ack_lock);
}

/* Completes the waiters matched by an ack of generation `gen`. */
static void waits_ack(struct ald_proxy *p, unsigned gen, json_t *ack)
{
    json_t *jseq = json_object_get(ack, "seq");
    if (!json_is_integer(jseq))
        return;
    pthread_mutex_lock(&p->ack_lock);
    for (struct ald_px_wait *w = p->waits; w; w = w->next) {
        if (w->done || w->gen != gen || w->seq != (long long)json_integer_value(jseq))
            continue;
        w->done = 1;
        w->ok = json_is_true(json_object_get(ack, "ok"));
        const char *why = json_string_value(json_object_get(ack, "error"));
        snprintf(w->error, sizeof(w->error), "%s", w->ok ? "" : why ? why : "refused");
        pthread_cond_broadcast(&p->ack_cond);
    }
    pthread_mutex_unlock(&p->ack_lock);
}

/* After a restart's re-send: waiters sent to the previous proxy whose
 * session was not re-sent (it ended meanwhile) will get no ack; they fail
 * now. Waiters not sent yet keep waiting for their own send. Caller holds
 * p->send_lock. */
static void waits_orphaned(struct ald_proxy *p)
{
    pthread_mutex_lock(&p->ack_lock);
    for (struct ald_px_wait *w = p->waits; w; w = w->next) {
        if (!w->done && w->seq != 0 && w->gen != p->gen) {
            w->done = 1;
            snprintf(w->error, sizeof(w->error), "the session ended while being registered");
            pthread_cond_broadcast(&p->ack_cond);
        }
    }
    pthread_mutex_unlock(&p->ack_lock);
}

/* The session_add for proxy `which`, or NULL when the session has no
 * listener for it. fds[] receives the descriptors to attach (borrowed).
 * Caller holds d->lock. */
static json_t *add_msg(const struct ald_session *s, int which, int *fds, size_t *nfds)
{
    *nfds = 0;
    json_t *ls = json_array();
    for (int i = 0; i < 3 && ls; i++) {
        if (s->px.lfd[i] < 0 || (which == ALD_PX_NET) != (i < 2))
            continue;
        json_array_append_new(ls, json_pack("{s:s, s:i}", "kind", px_kinds[i], "fd", (int)*nfds));
        fds[(*nfds)++] = s->px.lfd[i];
    }
    if (!ls || *nfds == 0) {
        json_decref(ls);
        return NULL;
    }
    json_t *m = ctl_msg_new("session_add");
    if (!m) {
        json_decref(ls);
        return NULL;
    }
    json_object_set_new(m, "session", json_string(s->id));
    json_object_set_new(m, "user", json_string(s->user));
    json_object_set_new(m, "policy",
                        s->px.netpolicy ? json_incref(s->px.netpolicy) : json_object());
    json_object_set_new(m, "listeners", ls);
    /* The netproxy's copy of the session CA and of the real values
     * (docs/control-protocol.md): with the session itself, so no request
     * on its listeners is served without them. */
    if (which == ALD_PX_NET && s->creds.ca_cert) {
        json_t *creds = json_array();
        for (size_t i = 0; creds && i < s->creds.set.len; i++) {
            const struct al_cred *c = &s->creds.set.v[i];
            json_t *hosts = json_array();
            for (size_t k = 0; hosts && k < c->inject_hosts.len; k++)
                json_array_append_new(hosts, json_string(c->inject_hosts.items[k]));
            json_array_append_new(creds, json_pack("{s:s, s:s%, s:s, s:o}", "name", c->name,
                                                   "value", c->real, c->real_len, "sentinel",
                                                   c->sentinel, "inject_hosts", hosts));
        }
        json_object_set_new(
            m, "tls",
            json_pack("{s:s, s:s}", "ca_cert", s->creds.ca_cert, "ca_key", s->creds.ca_key));
        json_object_set_new(m, "credentials", creds);
        if (!json_object_get(m, "tls") || !creds || json_array_size(creds) != s->creds.set.len) {
            msg_wipe(m);
            json_decref(m);
            return NULL;
        }
    }
    return m;
}

/* keys: the scoped-token keys, to a freshly started gitproxy, before any
 * session. Caller holds p->send_lock. */
static void keys_send(struct ald *d, struct ald_proxy *p)
{
    json_t *m = ctl_msg_new("keys");
    json_t *arr = json_array();
    for (size_t i = 0; m && arr && i < d->token_keys.len; i++) {
        char hex[2 * CREDS_KEY_LEN + 1];
        for (size_t k = 0; k < CREDS_KEY_LEN; k++)
            snprintf(hex + 2 * k, 3, "%02x", d->token_keys.keys[i].key[k]);
        json_array_append_new(
            arr, json_pack("{s:s, s:s}", "kid", d->token_keys.keys[i].kid, "key", hex));
        OPENSSL_cleanse(hex, sizeof(hex));
    }
    if (m && arr)
        json_object_set_new(m, "keys", arr);
    else
        json_decref(arr);
    px_send_locked(p, m, NULL, 0);
}

/* revoke: every ended session whose git token has not expired yet, to a
 * freshly started gitproxy (its own list was in its memory). From the store
 * and from the sessions still in memory. Caller holds p->send_lock. */
static void revocations_send(struct ald *d, struct ald_proxy *p)
{
    json_t *ids = NULL;
    size_t n = 0;
    /* in cluster mode only this node's: the other nodes' tokens were
     * issued by, and are revoked at, their own gitproxies */
    if (ald_store_session_revoked_on(d->st, ald_cluster_self(d),
                                     (int64_t)time(NULL) - CREDS_CLOCK_SKEW, &ids) < 0) {
        al_log(AL_LOG_ERROR, "%s: cannot list the revoked sessions: %s", p->name, al_error_last());
        ids = json_array();
    }
    pthread_mutex_lock(&d->lock);
    for (struct ald_session *s = d->sessions; s && ids; s = s->next)
        if ((s->px.removed || ALD_STATE_ENDED(s->state)) && s->git.repo &&
            json_object_get(s->git.repo, "token"))
            json_array_append_new(ids, json_string(s->id));
    pthread_mutex_unlock(&d->lock);
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        json_t *m = ctl_msg_new("revoke");
        if (m)
            json_object_set_new(m, "session", json_incref(id));
        if (px_send_locked(p, m, NULL, 0) == 0)
            n++;
    }
    json_decref(ids);
    if (n)
        al_log(AL_LOG_INFO, "%s: re-sent %zu revoked sessions", p->name, n);
}

/* Re-sends every live session to a freshly started proxy. Caller holds
 * p->send_lock, so no session_remove can overtake an add sent here. */
static void resend_all(struct ald *d, int which)
{
    struct ald_proxy *p = &d->px[which];
    size_t n = 0, cap = 0;
    struct pending {
        json_t *msg;
        int fds[3];
        size_t nfds;
        char id[sizeof(((struct ald_session *)0)->id)];
    } *list = NULL;
    pthread_mutex_lock(&d->lock);
    for (struct ald_session *s = d->sessions; s; s = s->next) {
        if (s->px.removed || ALD_STATE_ENDED(s->state))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct pending *nl = realloc(list, ncap * sizeof(*nl));
            if (!nl)
                break;
            list = nl;
            cap = ncap;
        }
        int fds[3];
        size_t nfds;
        json_t *m = add_msg(s, which, fds, &nfds);
        if (!m)
            continue;
        list[n].msg = m;
        list[n].nfds = 0;
        snprintf(list[n].id, sizeof(list[n].id), "%s", s->id);
        /* our own duplicates: the session may end while we send */
        for (size_t i = 0; i < nfds; i++) {
            int fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            if (fd >= 0)
                list[n].fds[list[n].nfds++] = fd;
        }
        n++;
    }
    pthread_mutex_unlock(&d->lock);
    for (size_t i = 0; i < n; i++) {
        waits_expect(p, list[i].id);
        px_send_locked(p, list[i].msg, list[i].fds, list[i].nfds);
        ctl_fds_close(list[i].fds, list[i].nfds);
    }
    free(list);
    waits_orphaned(p);
    if (n)
        al_log(AL_LOG_INFO, "%s: re-sent %zu sessions", p->name, n);
}

/* Builds the proxy's argv (caller frees each string and the array). */
static char **px_argv(const struct ald *d, int which, int ctl_fd)
{
    const struct ald_config *c = d->cfg;
    size_t nhosts = 0;
    while (c->px_hosts && c->px_hosts[nhosts])
        nhosts++;
    char **argv = calloc(16 + 2 * nhosts, sizeof(char *));
    if (!argv)
        return NULL;
    size_t n = 0;
    char num[32];
    argv[n++] = strdup(d->px[which].path);
    if (which == ALD_PX_GIT) {
        argv[n++] = strdup("--config");
        argv[n++] = strdup(c->gitproxy_config);
    }
    snprintf(num, sizeof(num), "%d", ctl_fd);
    argv[n++] = strdup("--control");
    argv[n++] = strdup(num);
    argv[n++] = strdup("--user");
    argv[n++] = strdup(c->proxy_user);
    if (c->proxy_group) {
        argv[n++] = strdup("--group");
        argv[n++] = strdup(c->proxy_group);
    }
    if (which == ALD_PX_NET) {
        snprintf(num, sizeof(num), "%llu", (unsigned long long)c->px_approval_timeout_s * 1000);
        argv[n++] = strdup("--approval-timeout");
        argv[n++] = strdup(num);
        for (size_t i = 0; i < nhosts; i++) {
            argv[n++] = strdup("--hosts");
            argv[n++] = strdup(c->px_hosts[i]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!argv[i]) {
            for (size_t k = 0; k < n; k++)
                free(argv[k]);
            free(argv);
            return NULL;
        }
    }
    return argv;
}

static void argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

/* What a proxy keeps of airlockd's environment, when set: the outbound
 * HTTP proxy and the CA locations of the gitproxy's upstream connections
 * (libcurl, OpenSSL), the time zone, and the log format (main.c sets it
 * from airlockd's). Nothing else is inherited. */
static const char *const px_env_keep[] = {
    "http_proxy", "https_proxy",   "HTTPS_PROXY",  "all_proxy", "ALL_PROXY",          "no_proxy",
    "NO_PROXY",   "SSL_CERT_FILE", "SSL_CERT_DIR", "TZ",        "AIRLOCK_LOG_FORMAT",
};

/* The proxy's environment (caller frees each string and the array): its
 * own HOME and XDG directories under it, a fixed PATH, the C.UTF-8 locale,
 * and px_env_keep[] from airlockd's. No HOME of root's, no other variable
 * of whoever started airlockd. */
static char **px_env(const struct ald_proxy *p)
{
    static const char *const xdg[][2] = {{"XDG_CONFIG_HOME", ".config"},
                                         {"XDG_CACHE_HOME", ".cache"},
                                         {"XDG_DATA_HOME", ".local/share"},
                                         {"XDG_STATE_HOME", ".local/state"}};
    size_t nkeep = sizeof(px_env_keep) / sizeof(*px_env_keep), n = 0;
    char **env = calloc(8 + nkeep + 1, sizeof(char *));
    struct al_buf b;
    int err = 0;
    if (!env)
        return NULL;
    al_buf_init(&b, 2 * PATH_MAX);
    for (size_t i = 0; i < 4 + 4 + nkeep && err == 0; i++) {
        const char *v;
        if (i == 0)
            err = al_buf_printf(&b, "HOME=%s", p->home);
        else if (i < 5)
            err = al_buf_printf(&b, "%s=%s/%s", xdg[i - 1][0], p->home, xdg[i - 1][1]);
        else if (i == 5)
            err = al_buf_puts(&b,
                              "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        else if (i == 6)
            err = al_buf_puts(&b, "LANG=C.UTF-8");
        else if (i == 7)
            err = al_buf_puts(&b, "LC_ALL=C.UTF-8");
        else if ((v = getenv(px_env_keep[i - 8])))
            err = al_buf_printf(&b, "%s=%s", px_env_keep[i - 8], v);
        else
            continue;
        if (err == 0 && !(env[n++] = al_buf_detach(&b)))
            err = AL_ENOMEM;
    }
    al_buf_free(&b);
    if (err < 0) {
        argv_free(env);
        return NULL;
    }
    return env;
}

/* Starts the proxy: sets p->fd (non-blocking) and p->pid. */
static int px_spawn(struct ald *d, int which)
{
    struct ald_proxy *p = &d->px[which];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return al_error_set_errno(AL_EIO, errno, "socketpair");
    char **argv = px_argv(d, which, sv[1]);
    char **env = px_env(p);
    if (!argv || !env) {
        argv_free(argv);
        argv_free(env);
        close(sv[0]);
        close(sv[1]);
        return al_error_set(AL_ENOMEM, "out of memory");
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* only async-signal-safe calls until exec */
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);
        int fl = fcntl(sv[1], F_GETFD);
        if (fl < 0 || fcntl(sv[1], F_SETFD, fl & ~FD_CLOEXEC) < 0)
            _exit(127);
        execve(argv[0], argv, env);
        _exit(127);
    }
    int err = 0;
    if (pid < 0)
        err = al_error_set_errno(AL_EIO, errno, "fork");
    close(sv[1]);
    argv_free(argv);
    argv_free(env);
    if (err < 0) {
        close(sv[0]);
        return err;
    }
    int fl = fcntl(sv[0], F_GETFL);
    if (fl >= 0)
        fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    pthread_mutex_lock(&p->send_lock);
    p->fd = sv[0];
    p->pid = pid;
    p->seq = 0;
    pthread_mutex_lock(&p->ack_lock);
    p->gen++;
    pthread_mutex_unlock(&p->ack_lock);
    pthread_mutex_unlock(&p->send_lock);
    atomic_fetch_add(&p->starts, 1);
    al_log(AL_LOG_INFO, "%s started (pid %d)", p->name, (int)pid);
    return 0;
}

/* Finds a live session by id and takes a reference (any user). */
static struct ald_session *session_by_id(struct ald *d, const char *id)
{
    struct ald_principal all;
    memset(&all, 0, sizeof(all));
    all.admin = 1;
    return ald_session_get(d, &all, id);
}

/* An approval request from the netproxy: kept with the session's approvals
 * (kind network) and published. */
static void net_approval(struct ald *d, struct ald_session *s, json_t *data)
{
    json_t *jid = json_object_get(data, "id");
    const char *host = json_string_value(json_object_get(data, "host"));
    json_int_t port = json_integer_value(json_object_get(data, "port"));
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 || !host)
        return;
    struct ald_approval *a = calloc(1, sizeof(*a));
    if (!a)
        return;
    snprintf(a->id, sizeof(a->id), "n_%lld", (long long)json_integer_value(jid));
    a->kind = "network";
    a->host = strdup(host);
    a->port = (int)port;
    if (!a->host) {
        free(a);
        return;
    }
    a->state = "pending";
    a->created_ms = ald_now_ms();
    pthread_mutex_lock(&d->lock);
    a->next = s->approvals.list;
    s->approvals.list = a;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    ald_approval_event(d, s, a);
}

/* A netproxy decision that names credentials (data "credential": secret
 * names, never a value): one "credential" event and audit row for a use,
 * "credential-refused" for a refusal (a sentinel bound elsewhere):
 * {session, secret, host, port, method, path, status, decision, reason}. */
static void cred_event(struct ald *d, struct ald_session *s, json_t *data)
{
    const char *names = json_string_value(json_object_get(data, "credential"));
    const char *reason = json_string_value(json_object_get(data, "reason"));
    const char *decision = json_string_value(json_object_get(data, "decision"));
    if (!names || !names[0])
        return;
    int refused = (reason && strcmp(reason, "credential-not-allowed-here") == 0) ||
                  (decision && strcmp(decision, "allow") != 0);
    const char *type = refused ? "credential-refused" : "credential";
    const char *host = json_string_value(json_object_get(data, "host"));
    const char *method = json_string_value(json_object_get(data, "method"));
    const char *path = json_string_value(json_object_get(data, "path"));
    json_int_t status = json_integer_value(json_object_get(data, "status"));
    json_t *ev = json_pack("{s:s, s:s, s:O?, s:s, s:s, s:I, s:s, s:s}", "secret", names, "host",
                           host ? host : "", "port", json_object_get(data, "port"), "method",
                           method ? method : "", "path", path ? path : "", "status", status,
                           "decision", decision ? decision : "", "reason", reason ? reason : "");
    char line[768];
    snprintf(line, sizeof(line), "%s %s %s %s %.300s %lld", type, names, host ? host : "-",
             method && method[0] ? method : "-", path && path[0] ? path : "-", (long long)status);
    struct ald_audit_row row = {.time_ms = ald_now_ms(),
                                .user = s->user,
                                .method = "CRED",
                                .path = line,
                                .status = (int)status,
                                .session = s->id};
    ald_store_audit(d->st, &row);
    if (ev)
        ald_event(d, s->id, s->user, type, ev);
}

/* The audit row's text of a proxy event: "TYPE WHERE DECISION", then
 * " reason=R" when the proxy gave one and, for a push, each ref as
 * " REF=OLD..NEW" (shortened ids) with ":refused(WHY)" when a check refused
 * it; cut at `size` bytes. */
static void audit_px_line(char *out, size_t size, const char *type, const char *where,
                          const char *what, json_t *data)
{
    const char *reason = json_string_value(json_object_get(data, "reason"));
    int n = snprintf(out, size, "%s %.300s %s", type, where, what ? what : "-");
    if (reason && reason[0] && n > 0 && (size_t)n < size)
        n += snprintf(out + n, size - (size_t)n, " reason=%.200s", reason);
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(data, "refs"), i, ref)
    {
        if (n < 0 || (size_t)n >= size)
            break;
        const char *name = json_string_value(json_object_get(ref, "ref"));
        const char *old = json_string_value(json_object_get(ref, "old"));
        const char *new = json_string_value(json_object_get(ref, "new"));
        const char *why = json_string_value(json_object_get(ref, "refused"));
        n += snprintf(out + n, size - (size_t)n, " %.200s=%.12s..%.12s", name ? name : "-",
                      old ? old : "-", new ? new : "-");
        if (why && n > 0 && (size_t)n < size)
            n += snprintf(out + n, size - (size_t)n, ":refused(%.120s)", why);
    }
}

/* One event from a proxy: becomes a session event (and audit row). */
static void px_event(struct ald *d, int which, json_t *msg)
{
    const char *sid = json_string_value(json_object_get(msg, "session"));
    const char *kind = json_string_value(json_object_get(msg, "kind"));
    json_t *data = json_object_get(msg, "data");
    if (!sid || !kind || !json_is_object(data))
        return;
    struct ald_session *s = session_by_id(d, sid);
    if (!s)
        return;
    if (which == ALD_PX_NET && strcmp(kind, "approval_request") == 0) {
        net_approval(d, s, data);
    } else {
        const char *type = strcmp(kind, "decision") == 0 ? "network" : kind;
        json_t *copy = json_deep_copy(data);
        const char *what = json_string_value(json_object_get(data, "decision"));
        const char *host = json_string_value(json_object_get(data, "host"));
        const char *repo = json_string_value(json_object_get(data, "repo"));
        char path[1024];
        audit_px_line(path, sizeof(path), type, host ? host : repo ? repo : "-", what, data);
        struct ald_audit_row row = {.time_ms = ald_now_ms(),
                                    .user = s->user,
                                    .method = which == ALD_PX_NET ? "NET" : "GIT",
                                    .path = path,
                                    .session = s->id};
        ald_store_audit(d->st, &row);
        ald_event(d, s->id, s->user, type, copy);
        if (which == ALD_PX_NET && strcmp(kind, "decision") == 0)
            cred_event(d, s, data);
    }
    ald_session_unref(d, s);
}

/* The credential store the gitproxy decrypts: proxies.credential_store,
 * default <state_dir>/creds.store (where `airlock up` keeps it). */
static int credential_store_path(const struct ald *d, char *out, size_t size)
{
    int n = d->cfg->px_credential_store ? snprintf(out, size, "%s", d->cfg->px_credential_store)
                                        : snprintf(out, size, "%s/creds.store", d->cfg->state_dir);
    return n > 0 && (size_t)n < size ? 0
                                     : al_error_set(AL_ETOOBIG, "credential store path too long");
}

/* A store_request from the gitproxy: its credential store file changed and
 * it cannot open it itself (it runs unprivileged and the state dir is
 * root's). Answered with store_reload carrying a read-only descriptor of
 * the file: the proxy decrypts it with the master key it loaded at start.
 * The path comes from airlockd's configuration, never from the message. */
static void git_store_request(struct ald *d, json_t *msg)
{
    json_t *jgen = json_object_get(msg, "gen");
    if (!json_is_integer(jgen) || json_integer_value(jgen) < 0)
        return;
    char path[PATH_MAX];
    int fd = -1;
    json_t *m = ctl_msg_new("store_reload");
    if (!m)
        return;
    json_object_set_new(m, "gen", json_integer(json_integer_value(jgen)));
    if (credential_store_path(d, path, sizeof(path)) < 0) {
        json_object_set_new(m, "error", json_string(al_error_last()));
    } else if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
        al_log(AL_LOG_INFO, "gitproxy: credential store %s changed; sending it", path);
    } else if (errno == ENOENT) {
        al_log(AL_LOG_INFO, "gitproxy: credential store %s removed", path);
        json_object_set_new(m, "missing", json_true());
    } else {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof(why), "airlockd cannot open %s: %s", path, strerror(errno));
        json_object_set_new(m, "error", json_string(why));
    }
    px_send(&d->px[ALD_PX_GIT], m, &fd, fd >= 0 ? 1 : 0);
    if (fd >= 0)
        close(fd);
}

/* Ends the wait of ald_px_start() for the proxy's first start, if it
 * still waits: with `boot` (ALD_PX_BOOT_UP or _FAILED and the wait status).
 * Returns 1 when it did (the start waited for this answer). */
static int px_boot_end(struct ald_proxy *p, int boot, int status)
{
    int waited = 0;
    pthread_mutex_lock(&p->ack_lock);
    if (p->boot == ALD_PX_BOOT_WAIT) {
        p->boot = boot;
        p->boot_status = status;
        waited = 1;
        pthread_cond_broadcast(&p->ack_cond);
    }
    pthread_mutex_unlock(&p->ack_lock);
    return waited;
}

/* Reads frames until the proxy's control socket closes or we stop.
 * Returns 1 when the proxy said hello (it did start). */
static int px_serve(struct ald *d, int which)
{
    int hello = 0;
    struct ald_proxy *p = &d->px[which];
    pthread_mutex_lock(&p->send_lock);
    unsigned gen = p->gen;
    pthread_mutex_unlock(&p->send_lock);
    struct ctl_reader r;
    ctl_reader_init(&r);
    for (;;) {
        struct pollfd pfd[2] = {{p->fd, POLLIN, 0}, {d->stop_fd, POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents)
            break;
        int stop = 0;
        for (;;) {
            json_t *msg = NULL;
            int fds[CTL_FDS_MAX];
            size_t nfds = 0;
            int err = ctl_recv(&r, p->fd, &msg, fds, &nfds);
            if (err == AL_EAGAIN)
                break;
            if (err < 0) {
                al_log(AL_LOG_WARN, "%s: control socket: %s", p->name,
                       err == AL_EIO ? "closed" : al_error_last());
                stop = 1;
                break;
            }
            ctl_fds_close(fds, nfds);
            const char *type = ctl_msg_type(msg);
            if (strcmp(type, "ack") == 0) {
                waits_ack(p, gen, msg);
                if (!json_is_true(json_object_get(msg, "ok")))
                    al_log(AL_LOG_WARN, "%s: request %lld refused: %s", p->name,
                           (long long)json_integer_value(json_object_get(msg, "seq")),
                           json_string_value(json_object_get(msg, "error")));
            } else if (strcmp(type, "event") == 0) {
                px_event(d, which, msg);
            } else if (strcmp(type, "store_request") == 0 && which == ALD_PX_GIT) {
                git_store_request(d, msg);
            } else if (strcmp(type, "hello") == 0) {
                hello = 1;
                px_boot_end(p, ALD_PX_BOOT_UP, 0);
                al_log(AL_LOG_DEBUG, "%s: hello from pid %lld", p->name,
                       (long long)json_integer_value(json_object_get(msg, "pid")));
            }
            json_decref(msg);
        }
        if (stop)
            break;
    }
    ctl_reader_clear(&r);
    return hello;
}

/* Closes the control socket and reaps the proxy (killing it when it does
 * not exit within 2 s of EOF). Returns its wait status, -1 when unknown. */
static int px_reap(struct ald_proxy *p)
{
    pthread_mutex_lock(&p->send_lock);
    int fd = p->fd;
    pid_t pid = p->pid;
    p->fd = -1;
    p->pid = 0;
    pthread_mutex_unlock(&p->send_lock);
    if (fd >= 0)
        close(fd);
    if (pid <= 0)
        return -1;
    int status = 0;
    for (int i = 0; i < 200; i++) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            goto done;
        if (w < 0)
            return -1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
done:
    if (WIFSIGNALED(status))
        al_log(AL_LOG_WARN, "%s (pid %d) killed by signal %d", p->name, (int)pid, WTERMSIG(status));
    else
        al_log(AL_LOG_INFO, "%s (pid %d) exited with status %d", p->name, (int)pid,
               WEXITSTATUS(status));
    return status;
}

struct px_arg {
    struct ald *d;
    int which;
};

static void *px_main(void *arg)
{
    struct px_arg *a = arg;
    struct ald *d = a->d;
    int which = a->which;
    free(a);
    struct ald_proxy *p = &d->px[which];
    int delay_ms = 200;
    while (!atomic_load(&d->stopping)) {
        int started = 0, status = -1;
        if (px_spawn(d, which) == 0) {
            pthread_mutex_lock(&p->send_lock);
            if (which == ALD_PX_GIT) {
                keys_send(d, p);
                revocations_send(d, p);
            }
            resend_all(d, which);
            pthread_mutex_unlock(&p->send_lock);
            started = px_serve(d, which);
            status = px_reap(p);
        } else {
            al_log(AL_LOG_ERROR, "%s: %s", p->name, al_error_last());
        }
        /* the first start failed while airlockd's own start waits for it:
         * airlockd does not start (no retry) */
        if (!started && px_boot_end(p, ALD_PX_BOOT_FAILED, status))
            break;
        /* a proxy that ran is restarted well within a second; one that
         * never said hello (bad binary or config) is retried less and less
         * often, up to every 10 s */
        delay_ms = started ? 200 : delay_ms * 2 > 10000 ? 10000 : delay_ms * 2;
        struct pollfd pfd = {d->stop_fd, POLLIN, 0};
        if (poll(&pfd, 1, delay_ms) > 0)
            break;
    }
    return NULL;
}

/* git-remote-airlock, which repo sessions' git runs for their remote
 * (remote.origin.vcs=airlock): found like the proxies; its real path must
 * be usable as a PATH entry (no ':') and a bind target. Without it repo
 * sessions cannot fetch: warned, not fatal (as a missing proxy). */
static void find_git_helper(struct ald *d)
{
    char found[PATH_MAX], real[PATH_MAX];
    d->git_helper[0] = d->git_helper_dir[0] = '\0';
    if (ald_find_binary(NULL, NULL, "git-remote-airlock", "../gitproxy", "/usr/bin", found,
                        sizeof(found)) < 0) {
        al_log(AL_LOG_WARN, "%s: repo sessions cannot fetch or push", al_error_last());
        return;
    }
    if (!realpath(found, real) || strchr(real, ':') || strlen(real) >= sizeof(d->git_helper)) {
        al_log(AL_LOG_WARN, "%s: unusable path: repo sessions cannot fetch or push", found);
        return;
    }
    snprintf(d->git_helper, sizeof(d->git_helper), "%s", real);
    *strrchr(real, '/') = '\0';
    snprintf(d->git_helper_dir, sizeof(d->git_helper_dir), "%s", real[0] ? real : "/");
    if (d->cfg->rootfs) {
        char in_rootfs[PATH_MAX];
        int n = snprintf(in_rootfs, sizeof(in_rootfs), "%s%s", d->cfg->rootfs, d->git_helper);
        /* the bind needs a mount point: the rootfs is read-only */
        if (n < 0 || (size_t)n >= sizeof(in_rootfs) || access(in_rootfs, F_OK) < 0) {
            al_log(AL_LOG_WARN,
                   "the rootfs %s has no file at %s for git-remote-airlock to be bound over: "
                   "repo sessions cannot fetch or push",
                   d->cfg->rootfs, d->git_helper);
            d->git_helper[0] = d->git_helper_dir[0] = '\0';
            return;
        }
    }
    al_log(AL_LOG_INFO, "repo sessions use %s", d->git_helper);
}

/* In the directory `dirfd` (shown as `dir` in errors), makes `name` a
 * directory owned by uid:gid (when airlockd is root), mode 0700, never
 * through a symlink. Returns its descriptor (the caller closes it) or a
 * negative code. */
static int subdir_owned(int dirfd, const char *dir, const char *name, uid_t uid, gid_t gid)
{
    if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
        return al_error_set_errno(AL_EIO, errno, "proxies.home_dir: mkdir %s/%s", dir, name);
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "proxies.home_dir: %s/%s", dir, name);
    if ((geteuid() == 0 && fchown(fd, uid, gid) < 0) || fchmod(fd, 0700) < 0) {
        int e = errno;
        close(fd);
        return al_error_set_errno(AL_EIO, e, "proxies.home_dir: %s/%s", dir, name);
    }
    return fd;
}

/* Makes the proxy's HOME, p->home = <home_dir>/<p->name>: home_dir is
 * proxies.home_dir, else "<state_dir>-proxy-home" (beside the state dir,
 * which the proxy user cannot enter), created with its parents when missing
 * (0755, whatever the umask) and made 0755; the HOME and its XDG directories (.config, .cache,
 * .local/share, .local/state) belong to the proxy user, mode 0700. */
static int px_home_make(const struct ald *d, struct ald_proxy *p)
{
    static const char *const subs[][2] = {{NULL, ".config"},
                                          {NULL, ".cache"},
                                          {NULL, ".local"},
                                          {".local", "share"},
                                          {".local", "state"}};
    const struct ald_config *c = d->cfg;
    char base[PATH_MAX];
    uid_t uid;
    gid_t gid;
    int err = ctl_privs_lookup(&uid, &gid, c->proxy_user, c->proxy_group);
    if (err < 0)
        return al_error_set(err, "proxies.user: %s", al_error_last());
    size_t len = strlen(c->state_dir);
    while (len > 1 && c->state_dir[len - 1] == '/')
        len--;
    int n = c->px_home_dir
                ? snprintf(base, sizeof(base), "%s", c->px_home_dir)
                : snprintf(base, sizeof(base), "%.*s-proxy-home", (int)len, c->state_dir);
    if (n < 0 || (size_t)n >= sizeof(base) ||
        (size_t)snprintf(p->home, sizeof(p->home), "%s/%s", base, p->name) >= sizeof(p->home))
        return al_error_set(AL_ETOOBIG, "proxies.home_dir: path too long");
    for (char *s = base + 1;; s++) {
        if (*s && *s != '/')
            continue;
        char was = *s;
        *s = '\0';
        if (mkdir(base, 0755) == 0 ? chmod(base, 0755) < 0 : errno != EEXIST)
            return al_error_set_errno(AL_EIO, errno, "proxies.home_dir: mkdir %s", base);
        *s = was;
        if (!was)
            break;
    }
    /* searchable by the proxy user, whatever made it (systemd's
     * StateDirectory= makes it 0700) */
    cleanup_fd int basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (basefd < 0 || (geteuid() == 0 && fchmod(basefd, 0755) < 0))
        return al_error_set_errno(AL_EIO, errno, "proxies.home_dir: %s", base);
    cleanup_fd int home = subdir_owned(basefd, base, p->name, uid, gid);
    cleanup_fd int local = -1;
    if (home < 0)
        return home;
    for (size_t i = 0; i < sizeof(subs) / sizeof(*subs); i++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s%s%s", p->home, subs[i][0] ? "/" : "",
                 subs[i][0] ? subs[i][0] : "");
        int fd = subdir_owned(subs[i][0] ? local : home, dir, subs[i][1], uid, gid);
        if (fd < 0)
            return fd;
        if (!subs[i][0] && strcmp(subs[i][1], ".local") == 0)
            local = fd;
        else
            close(fd);
    }
    return 0;
}

/* Waits (up to ALD_PX_HELLO_TIMEOUT_S in all) for the first start of each
 * enabled proxy. AL_EIO naming the proxy and how it ended when one failed. */
static int px_boot_wait(struct ald *d)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ALD_PX_HELLO_TIMEOUT_S;
    int err = 0;
    for (int i = 0; i < ALD_PX_N && err == 0; i++) {
        struct ald_proxy *p = &d->px[i];
        if (!p->started)
            continue;
        pthread_mutex_lock(&p->ack_lock);
        while (p->boot == ALD_PX_BOOT_WAIT)
            if (pthread_cond_timedwait(&p->ack_cond, &p->ack_lock, &until) == ETIMEDOUT)
                break;
        int boot = p->boot, status = p->boot_status;
        if (boot == ALD_PX_BOOT_WAIT)
            p->boot = ALD_PX_BOOT_LATE;
        pthread_mutex_unlock(&p->ack_lock);
        if (boot == ALD_PX_BOOT_WAIT)
            al_log(AL_LOG_WARN,
                   "airlock-%s has not said hello within %d s; going on (it is supervised and "
                   "restarted as usual)",
                   p->name, ALD_PX_HELLO_TIMEOUT_S);
        else if (boot == ALD_PX_BOOT_FAILED && status >= 0 && WIFSIGNALED(status))
            err = al_error_set(AL_EIO,
                               "airlock-%s (%s) was killed by signal %d before it was ready; "
                               "airlockd does not start without it",
                               p->name, p->path, WTERMSIG(status));
        else if (boot == ALD_PX_BOOT_FAILED && status >= 0)
            err = al_error_set(AL_EIO,
                               "airlock-%s (%s) exited with status %d before it was ready (its "
                               "own message is above); airlockd does not start without it",
                               p->name, p->path, WEXITSTATUS(status));
        else if (boot == ALD_PX_BOOT_FAILED)
            err = al_error_set(AL_EIO,
                               "airlock-%s (%s) could not be started (see above); airlockd does "
                               "not start without it",
                               p->name, p->path);
    }
    return err;
}

/* Reads proxies.token_keys (default: "k1" in <state_dir>/token.key, as
 * `airlock up` makes it) into d->token_keys. */
static int token_keys_load(struct ald *d)
{
    const struct ald_config *c = d->cfg;
    char path[PATH_MAX];
    creds_keyring_clear(&d->token_keys);
    if (c->n_px_token_keys == 0) {
        int n = snprintf(path, sizeof(path), "%s/token.key", c->state_dir);
        if (n < 0 || (size_t)n >= sizeof(path))
            return al_error_set(AL_ETOOBIG, "state dir path too long");
        if (creds_key_load(&d->token_keys.keys[0], "k1", path) < 0) {
            char why[512];
            snprintf(why, sizeof(why), "%s", al_error_last());
            return al_error_set(AL_EINVAL, "proxies.token_keys (default: k1 in %s): %s", path, why);
        }
        d->token_keys.len = 1;
        return 0;
    }
    for (size_t i = 0; i < c->n_px_token_keys; i++) {
        if (creds_key_load(&d->token_keys.keys[i], c->px_token_keys[i].kid,
                           c->px_token_keys[i].file) < 0) {
            char why[512];
            snprintf(why, sizeof(why), "%s", al_error_last());
            int err = al_error_set(AL_EINVAL, "proxies.token_keys[%zu]: %s", i, why);
            creds_keyring_clear(&d->token_keys);
            return err;
        }
        d->token_keys.len++;
    }
    return 0;
}

int ald_px_start(struct ald *d)
{
    const struct ald_config *c = d->cfg;
    static const char *const names[ALD_PX_N] = {"airlock-netproxy", "airlock-gitproxy"};
    static const char *const dirs[ALD_PX_N] = {"netproxy", "gitproxy"};
    static const char *const build[ALD_PX_N] = {"../netproxy", "../gitproxy"};
    const char *conf[ALD_PX_N] = {c->netproxy_path, c->gitproxy_path};
    for (int i = 0; i < ALD_PX_N; i++) {
        struct ald_proxy *p = &d->px[i];
        p->name = dirs[i];
        p->fd = -1;
        pthread_mutex_init(&p->send_lock, NULL);
        pthread_mutex_init(&p->ack_lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&p->ack_cond, &ca);
        pthread_condattr_destroy(&ca);
        if (!c->px_enabled || (i == ALD_PX_GIT && (!c->gitproxy_config || c->px_no_git)) ||
            (i == ALD_PX_NET && c->px_no_net))
            continue;
        if (ald_find_binary(conf[i], NULL, names[i], build[i], "/usr/bin", p->path,
                            sizeof(p->path)) < 0) {
            if (conf[i])
                return al_error_set(AL_ENOTFOUND, "proxies: %s", al_error_last());
            al_log(AL_LOG_WARN, "%s: sessions have no %s", al_error_last(),
                   i == ALD_PX_NET ? "network" : "git access");
            continue;
        }
        p->enabled = 1;
        if (i == ALD_PX_GIT) {
            int err = token_keys_load(d);
            if (err < 0)
                return err;
            find_git_helper(d);
        }
        int err = px_home_make(d, p);
        if (err < 0)
            return err;
    }
    for (int i = 0; i < ALD_PX_N; i++) {
        struct ald_proxy *p = &d->px[i];
        if (!p->enabled)
            continue;
        struct px_arg *a = malloc(sizeof(*a));
        if (!a)
            return AL_ENOMEM;
        a->d = d;
        a->which = i;
        if ((errno = pthread_create(&p->thread, NULL, px_main, a)) != 0) {
            free(a);
            return al_error_set_errno(AL_EIO, errno, "starting the %s thread", p->name);
        }
        p->started = 1;
        al_log(AL_LOG_INFO, "supervising %s (%s, user %s, HOME %s)", p->name, p->path,
               c->proxy_user, p->home);
    }
    int err = px_boot_wait(d);
    if (err < 0) {
        /* airlockd does not start: stop the other proxies too (their
         * threads see the stop and reap them), keeping the message */
        char why[1024];
        snprintf(why, sizeof(why), "%s", al_error_last());
        atomic_store(&d->stopping, 1);
        uint64_t one = 1;
        if (write(d->stop_fd, &one, sizeof(one)) < 0)
            al_log(AL_LOG_WARN, "stop: %s", strerror(errno));
        ald_px_stop(d);
        err = al_error_set(err, "%s", why);
    }
    return err;
}

void ald_px_stop(struct ald *d)
{
    creds_keyring_clear(&d->token_keys);
    /* d->stop_fd is readable: the threads leave their loops and reap */
    for (int i = 0; i < ALD_PX_N; i++) {
        struct ald_proxy *p = &d->px[i];
        if (p->started)
            pthread_join(p->thread, NULL);
        p->started = 0;
        if (p->name) {
            pthread_mutex_destroy(&p->send_lock);
            pthread_mutex_destroy(&p->ack_lock);
            pthread_cond_destroy(&p->ack_cond);
        }
    }
}

struct mkl {
    pid_t pid;
    int fds[3];
    int err;
};

/* Thread body: enters the sandbox's netns (this thread only) and makes the
 * listeners there. */
static void *mkl_main(void *arg)
{
    struct mkl *m = arg;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)m->pid);
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0) {
        m->err = al_error_set_errno(AL_EIO, errno, "open %s", path);
        return NULL;
    }
    if (setns(ns, CLONE_NEWNET) < 0) {
        m->err = al_error_set_errno(AL_EIO, errno, "setns %s", path);
        close(ns);
        return NULL;
    }
    close(ns);
    for (int i = 0; i < 3; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(px_ports[i])};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
            m->err =
                al_error_set_errno(errno == EADDRINUSE ? AL_EEXISTS : AL_EIO, errno,
                                   "listener 127.0.0.1:%u in the sandbox", (unsigned)px_ports[i]);
            if (fd >= 0)
                close(fd);
            return NULL;
        }
        m->fds[i] = fd;
    }
    return NULL;
}

/* Makes the three listeners in the netns of `pid`: fds[] on success. */
static int listeners_make(pid_t pid, int fds[3])
{
    struct mkl m = {.pid = pid, .fds = {-1, -1, -1}};
    pthread_t t;
    if ((errno = pthread_create(&t, NULL, mkl_main, &m)) != 0)
        return al_error_set_errno(AL_EIO, errno, "thread");
    pthread_join(t, NULL);
    if (m.err < 0) {
        ctl_fds_close(m.fds, 3);
        return m.err;
    }
    memcpy(fds, m.fds, sizeof(m.fds));
    return 0;
}

/* Waits for `w` (registered in p->waits) and unlinks it. */
static int wait_ack(struct ald_proxy *p, struct ald_px_wait *w, const char *id)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ALD_PX_ACK_TIMEOUT_S;
    int err = 0;
    pthread_mutex_lock(&p->ack_lock);
    while (!w->done)
        if (pthread_cond_timedwait(&p->ack_cond, &p->ack_lock, &until) == ETIMEDOUT)
            break;
    if (!w->done)
        err = al_error_set(AL_ETIMEOUT, "%s did not acknowledge session %s within %d s", p->name,
                           id, ALD_PX_ACK_TIMEOUT_S);
    else if (!w->ok)
        err = al_error_set(AL_EIO, "%s refused session %s: %s", p->name, id, w->error);
    for (struct ald_px_wait **at = &p->waits; *at; at = &(*at)->next) {
        if (*at == w) {
            *at = w->next;
            break;
        }
    }
    pthread_mutex_unlock(&p->ack_lock);
    return err;
}

int ald_px_session_add(struct ald *d, struct ald_session *s, pid_t init_pid, int wait)
{
    if (!d->px[ALD_PX_NET].enabled && !d->px[ALD_PX_GIT].enabled)
        return 0;
    int fds[3] = {-1, -1, -1};
    int err;
    /* after a daemon restart the old proxies may still hold the ports for a
     * moment (they exit when their control socket closes) */
    for (int tries = 0;; tries++) {
        err = listeners_make(init_pid, fds);
        if (err != AL_EEXISTS || tries >= 100)
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (err < 0)
        return err;
    json_t *msgs[ALD_PX_N];
    int att[ALD_PX_N][3];
    size_t natt[ALD_PX_N];
    struct ald_px_wait waits[ALD_PX_N];
    memset(waits, 0, sizeof(waits));
    /* Waiters are registered before the listeners are published: a proxy
     * restart's re-send from then on finds them. */
    for (int i = 0; i < ALD_PX_N && wait; i++) {
        struct ald_proxy *p = &d->px[i];
        if (!p->enabled)
            continue;
        waits[i].session = s->id;
        pthread_mutex_lock(&p->ack_lock);
        waits[i].next = p->waits;
        p->waits = &waits[i];
        pthread_mutex_unlock(&p->ack_lock);
    }
    pthread_mutex_lock(&d->lock);
    memcpy(s->px.lfd, fds, sizeof(fds));
    if (!s->px.netpolicy)
        s->px.netpolicy = json_object();
    for (int i = 0; i < ALD_PX_N; i++) {
        msgs[i] = d->px[i].enabled ? add_msg(s, i, att[i], &natt[i]) : NULL;
        if (!msgs[i])
            natt[i] = 0;
        /* our own duplicates: a concurrent teardown may close s->px.lfd */
        for (size_t k = 0; k < natt[i]; k++)
            att[i][k] = fcntl(att[i][k], F_DUPFD_CLOEXEC, 3);
    }
    pthread_mutex_unlock(&d->lock);
    for (int i = 0; i < ALD_PX_N; i++) {
        struct ald_proxy *p = &d->px[i];
        if (msgs[i]) {
            pthread_mutex_lock(&p->send_lock);
            if (p->fd >= 0)
                waits_expect(p, s->id);
            /* down: the restart's re-send carries the session */
            px_send_locked(p, msgs[i], att[i], natt[i]);
            pthread_mutex_unlock(&p->send_lock);
        } else if (waits[i].session) {
            pthread_mutex_lock(&p->ack_lock);
            waits[i].done = waits[i].ok = 1; /* nothing for this proxy */
            pthread_mutex_unlock(&p->ack_lock);
        }
        ctl_fds_close(att[i], natt[i]);
    }
    for (int i = 0; i < ALD_PX_N; i++) {
        if (!waits[i].session)
            continue;
        int e = wait_ack(&d->px[i], &waits[i], s->id);
        if (e < 0 && err == 0) {
            err = e;
            al_log(AL_LOG_WARN, "%s", al_error_last());
        }
    }
    return err;
}

void ald_px_session_remove(struct ald *d, struct ald_session *s)
{
    pthread_mutex_lock(&d->lock);
    int had = s->px.lfd[0] >= 0 || s->px.lfd[2] >= 0;
    int token = s->git.repo && json_object_get(s->git.repo, "token");
    s->px.removed = 1;
    pthread_mutex_unlock(&d->lock);
    /* Its tokens must fail on every listener, an operator "*" one too:
     * session_remove revokes it in the gitproxy, which learns it again
     * after a restart (revocations_send). */
    if (had || token) {
        for (int i = 0; i < ALD_PX_N; i++) {
            json_t *m = ctl_msg_new("session_remove");
            if (m)
                json_object_set_new(m, "session", json_string(s->id));
            px_send(&d->px[i], m, NULL, 0);
        }
    }
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < 3; i++) {
        if (s->px.lfd[i] >= 0)
            close(s->px.lfd[i]);
        s->px.lfd[i] = -1;
    }
    pthread_mutex_unlock(&d->lock);
}

int ald_px_session_policy(struct ald *d, struct ald_session *s, const struct al_netpolicy *net)
{
    /* A session with HTTP secrets keeps its tunnels terminated whatever a
     * change says: its secrets are put back only there. */
    struct al_netpolicy forced;
    if (s->creds.set.len && !net->tls_terminate) {
        if (al_netpolicy_copy(&forced, net) < 0)
            return al_error_set(AL_ENOMEM, "out of memory");
        forced.tls_terminate = 1;
    }
    json_t *wire = al_netpolicy_to_json(s->creds.set.len && !net->tls_terminate ? &forced : net);
    if (s->creds.set.len && !net->tls_terminate)
        al_netpolicy_free(&forced);
    if (!wire)
        return al_error_set(AL_ENOMEM, "out of memory");
    pthread_mutex_lock(&d->lock);
    json_decref(s->px.netpolicy);
    s->px.netpolicy = wire;
    int live = !s->px.removed && s->px.lfd[0] >= 0;
    pthread_mutex_unlock(&d->lock);
    if (!live)
        return 0;
    json_t *m = ctl_msg_new("session_policy");
    if (m) {
        json_object_set_new(m, "session", json_string(s->id));
        json_object_set_new(m, "policy", json_incref(wire));
    }
    return px_send(&d->px[ALD_PX_NET], m, NULL, 0);
}

int ald_px_approve(struct ald *d, struct ald_session *s, const char *aid, const char *verdict)
{
    uint64_t num = 0;
    if (ald_parse_u64(aid, INT64_MAX, &num) < 0)
        return al_error_set(AL_EINVAL, "bad approval id %s", aid);
    json_t *m = ctl_msg_new("approve");
    if (m)
        json_object_set_new(m, "approval", json_integer((json_int_t)num));
    if (m) {
        json_object_set_new(m, "session", json_string(s->id));
        json_object_set_new(m, "verdict", json_string(verdict));
    }
    return px_send(&d->px[ALD_PX_NET], m, NULL, 0);
}
