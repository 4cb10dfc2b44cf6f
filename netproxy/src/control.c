/* airlock-netproxy --control: sessions, their policies and their listeners
 * come from airlockd over the control socket; decisions and approval
 * requests go back to it as events.
 *
 *   airlock-netproxy --control FD | --control-path PATH [--user NAME [--group NAME]]
 *                    [--hosts NAME=IP[,IP]]... [--hosts-only] [--dns-server IP[:PORT]]...
 *                    [--log FILE]
 *                    [--connect-timeout MS] [--idle-timeout MS] [--header-timeout MS]
 *                    [--approval-timeout MS] [--max-conns N] [-v]
 *
 * Threads: the event loop runs on its own thread; the control protocol on
 * the main thread. The proxy's hooks run on the loop thread and only queue
 * events (ctl_outq_push never blocks).
 */
#include "control.h"
#include "ctl_creds.h"
#include "kh_proc.h"
#include "airlock/ctlmsg.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/netproxy.h"
#include "airlock/netpolicy.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EVENT_QUEUE_MAX 4096 /* events waiting for the daemon; more are dropped */
#define SESSIONS_MAX    4096

/* What the control side remembers of a session: a duplicate of each of its
 * listening sockets, so that session_remove can shut the socket down for
 * good (airlockd keeps a copy of it, so closing ours alone would leave it
 * accepting into a backlog nobody serves), and so that a session re-sent
 * with the same sockets keeps them. Touched only on the main thread. */
struct ctl_session {
    char *id;
    int fds[CTL_FDS_MAX];
    ino_t inos[CTL_FDS_MAX];
    size_t nfds;
    int tls; /* it has a CA ("tls"): its tunnels are terminated whatever a
                later session_policy says */
    struct ctl_session *next;
};

struct np_control {
    int front; /* the front of the split (--front): credentials come without values */
    np_proxy *proxy;
    ctl_outq *q;
    struct ctl_session *sessions;
    size_t nsessions;
};

int np_control_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--control") == 0 || strcmp(argv[i], "--control-path") == 0 ||
            strncmp(argv[i], "--control=", 10) == 0 ||
            strncmp(argv[i], "--control-path=", 15) == 0 ||
            (i == 1 && strcmp(argv[i], "--front") == 0))
            return 1;
    return 0;
}

static json_t *event_new(const char *session, const char *kind, json_t *data)
{
    json_t *ev = ctl_msg_new("event");
    if (!ev || !data) {
        json_decref(ev);
        json_decref(data);
        return NULL;
    }
    json_object_set_new(ev, "session", json_string(session));
    json_object_set_new(ev, "kind", json_string(kind));
    json_object_set_new(ev, "data", data);
    return ev;
}

/* Loop thread: every finished decision becomes an event. A request that
 * has them (inside a terminated tunnel, plain HTTP) adds "method", "path"
 * and "credential" (names of the credentials replaced or refused, never a
 * value). */
static void on_decision(const struct np_decision *d, void *payload)
{
    struct np_control *c = payload;
    json_t *data =
        json_pack("{s:I, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I}", "time",
                  (json_int_t)time(NULL), "client", d->client, "proxy", d->proxy, "host", d->host,
                  "port", (int)d->port, "addr", d->addr, "decision", d->decision, "reason",
                  d->reason, "rule", d->rule, "detail", d->detail, "status", d->status, "bytes_up",
                  (json_int_t)d->bytes_up, "bytes_down", (json_int_t)d->bytes_down);
    const char *const extra[][2] = {
        {"method", d->method}, {"path", d->path}, {"credential", d->credential}};
    for (size_t i = 0; data && i < sizeof(extra) / sizeof(*extra); i++)
        if (extra[i][1] && extra[i][1][0])
            json_object_set_new(data, extra[i][0], json_string(extra[i][1]));
    json_t *ev = event_new(d->session_id, "decision", data);
    if (ev)
        ctl_outq_push(c->q, ev);
}

/* Loop thread: a host in neither list; the connection is held until
 * "approve" arrives or the approval timeout passes. */
static void on_approval(const struct np_approval *req, void *payload)
{
    struct np_control *c = payload;
    json_t *data = json_pack("{s:I, s:s, s:i}", "id", (json_int_t)req->id, "host", req->host,
                             "port", (int)req->port);
    json_t *ev = event_new(req->session_id, "approval_request", data);
    if (ev && ctl_outq_push(c->q, ev) < 0)
        np_proxy_approve(c->proxy, req->id, NP_VERDICT_DENY);
}

static struct ctl_session *session_find(struct np_control *c, const char *id)
{
    for (struct ctl_session *s = c->sessions; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

/* Forgets a session; shuts its sockets down when `shut` is set. */
static void session_forget(struct np_control *c, const char *id, int shut)
{
    for (struct ctl_session **pp = &c->sessions; *pp; pp = &(*pp)->next) {
        struct ctl_session *s = *pp;
        if (strcmp(s->id, id) != 0)
            continue;
        for (size_t i = 0; i < s->nfds; i++) {
            if (shut)
                shutdown(s->fds[i], SHUT_RDWR);
            close(s->fds[i]);
        }
        *pp = s->next;
        free(s->id);
        free(s);
        c->nsessions--;
        return;
    }
}

static ino_t fd_ino(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

/* msg["policy"], the typed network policy (airlock/netpolicy.h), into `pol`
 * (initialised here; freed by the caller on success). */
static int policy_get(struct al_netpolicy *pol, const json_t *msg, const char *session)
{
    if (al_netpolicy_from_json(pol, json_object_get(msg, "policy")) < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", al_error_last());
        return al_error_set(AL_EINVAL, "policy of session %s: %s", session, why);
    }
    return 0;
}

static int session_add(struct np_control *c, const char *id, json_t *msg, int *fds, size_t nfds)
{
    struct ctl_listener ls[CTL_FDS_MAX];
    struct al_netpolicy pol;
    int n = ctl_listeners_get(ls, msg, fds, nfds), err;
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++)
        if (strcmp(ls[i].kind, "http") != 0 && strcmp(ls[i].kind, "socks5") != 0)
            return al_error_set(AL_EINVAL,
                                "listener kind \"%s\": the egress proxy serves \"http\" and"
                                " \"socks5\"",
                                ls[i].kind);
    struct ctl_session *old = session_find(c, id);
    if (!old && c->nsessions >= SESSIONS_MAX)
        return al_error_set(AL_ETOOBIG, "too many sessions");
    if ((err = policy_get(&pol, msg, id)) < 0)
        return err;
    /* The session CA and the real values (ctl_creds.h), decoded whole
     * before anything changes; applied before any listener of the session
     * accepts, so no request is served without them. */
    const char *ca_cert = NULL, *ca_key = NULL;
    struct al_credset creds = {0};
    if ((err = np_ctl_tls_decode(&ca_cert, &ca_key, json_object_get(msg, "tls"))) < 0 ||
        (err = (c->front ? np_ctl_creds_decode_front
                         : np_ctl_creds_decode)(&creds, json_object_get(msg, "credentials"))) < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", al_error_last());
        al_credset_free(&creds);
        al_netpolicy_free(&pol);
        return al_error_set(AL_EINVAL, "session %s: %s", id, why);
    }
    if (creds.len && !ca_cert) {
        al_credset_free(&creds);
        al_netpolicy_free(&pol);
        return al_error_set(AL_EINVAL, "session %s: credentials without tls", id);
    }
    /* A session given a CA is terminated: its secrets are put back only
     * in terminated requests, and a sentinel is seen only there. */
    if (ca_cert)
        pol.tls_terminate = 1;
    /* Same sockets as before (a re-sent session): only the policy changes,
     * connections go on. Otherwise the old session is dropped whole and the
     * new one starts clean. */
    int same = old && old->nfds == (size_t)n;
    for (int i = 0; same && i < n; i++) {
        int found = 0;
        ino_t ino = fd_ino(fds[ls[i].index]);
        for (size_t k = 0; k < old->nfds && !found; k++)
            found = old->inos[k] == ino;
        same = found;
    }
    if (same) {
        old->tls = ca_cert != NULL;
        if ((err = np_proxy_set_policy(c->proxy, id, &pol)) == 0 &&
            (!ca_cert || (err = np_proxy_set_tls(c->proxy, id, ca_cert, ca_key, NULL)) == 0))
            err = np_proxy_set_credentials(c->proxy, id, &creds);
        goto out;
    }
    if (old) {
        /* Sockets that stay (same inode among the new ones) must not be
         * shut down: closing our descriptors is enough. */
        for (size_t k = 0; k < old->nfds; k++) {
            int keep = 0;
            for (int i = 0; i < n && !keep; i++)
                keep = fd_ino(fds[ls[i].index]) == old->inos[k];
            if (keep) {
                close(old->fds[k]);
                old->fds[k] = old->fds[--old->nfds];
                old->inos[k] = old->inos[old->nfds];
                k--;
            }
        }
        np_proxy_remove_session(c->proxy, id);
        session_forget(c, id, 1);
    }
    struct ctl_session *s = calloc(1, sizeof(*s));
    if (!s || !(s->id = strdup(id))) {
        free(s);
        err = AL_ENOMEM;
        goto out;
    }
    s->next = c->sessions;
    s->tls = ca_cert != NULL;
    c->sessions = s;
    c->nsessions++;
    if ((err = np_proxy_set_policy(c->proxy, id, &pol)) < 0 ||
        (ca_cert && (err = np_proxy_set_tls(c->proxy, id, ca_cert, ca_key, NULL)) < 0) ||
        (creds.len && (err = np_proxy_set_credentials(c->proxy, id, &creds)) < 0))
        goto out;
    for (int i = 0; i < n; i++) {
        int fd = fds[ls[i].index];
        int keep = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (keep < 0) {
            err = al_error_set_errno(AL_EIO, errno, "dup");
            goto out;
        }
        s->fds[s->nfds] = keep;
        s->inos[s->nfds++] = fd_ino(fd);
        /* The proxy's loop accepts without blocking. */
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        fds[ls[i].index] = -1; /* owned by the proxy from here on, also on failure */
        if ((err = np_proxy_add_listener(
                 c->proxy, fd, strcmp(ls[i].kind, "http") == 0 ? NP_HTTP : NP_SOCKS5, id)) < 0)
            goto out;
    }
    al_log(AL_LOG_INFO, "session %s added with %d listener%s", id, n, n == 1 ? "" : "s");
out:
    if (err < 0 && !same) {
        /* Half-added: leave nothing of it behind. */
        np_proxy_remove_session(c->proxy, id);
        session_forget(c, id, 1);
    }
    al_credset_free(&creds);
    al_netpolicy_free(&pol);
    return err;
}

static int verdict_parse(enum np_verdict *out, const char *v)
{
    if (v && strcmp(v, "deny") == 0)
        *out = NP_VERDICT_DENY;
    else if (v && strcmp(v, "once") == 0)
        *out = NP_VERDICT_ALLOW_ONCE;
    else if (v && strcmp(v, "session") == 0)
        *out = NP_VERDICT_ALLOW_SESSION;
    else
        return al_error_set(AL_EINVAL, "\"verdict\" must be \"deny\", \"once\" or \"session\"");
    return 0;
}

static int handle(json_t *msg, int *fds, size_t nfds, void *payload)
{
    struct np_control *c = payload;
    const char *type = ctl_msg_type(msg);
    const char *id = json_string_value(json_object_get(msg, "session"));
    struct al_netpolicy pol;
    int err;
    if (strcmp(type, "session_add") != 0 && strcmp(type, "session_policy") != 0 &&
        strcmp(type, "session_remove") != 0 && strcmp(type, "approve") != 0) {
        err = al_error_set(AL_EINVAL, "unknown message type \"%s\"", type);
        goto out;
    }
    if (!ctl_session_id_valid(id)) {
        err = al_error_set(AL_EINVAL, "%s: \"session\" must be 1-128 of [A-Za-z0-9._:-]", type);
        goto out;
    }
    if (strcmp(type, "session_add") == 0) {
        err = session_add(c, id, msg, fds, nfds);
    } else if (!session_find(c, id)) {
        err = al_error_set(AL_ENOTFOUND, "no session %s", id);
    } else if (strcmp(type, "session_policy") == 0) {
        if ((err = policy_get(&pol, msg, id)) == 0) {
            if (session_find(c, id)->tls)
                pol.tls_terminate = 1;
            err = np_proxy_set_policy(c->proxy, id, &pol);
            al_netpolicy_free(&pol);
        }
    } else if (strcmp(type, "session_remove") == 0) {
        np_proxy_remove_session(c->proxy, id);
        session_forget(c, id, 1);
        al_log(AL_LOG_INFO, "session %s removed", id);
        err = 0;
    } else {
        json_t *ja = json_object_get(msg, "approval");
        enum np_verdict v = NP_VERDICT_DENY;
        if (!json_is_integer(ja) || json_integer_value(ja) < 0)
            err = al_error_set(AL_EINVAL, "\"approval\" must be an approval id");
        else if ((err = verdict_parse(&v, json_string_value(json_object_get(msg, "verdict")))) == 0)
            err = np_proxy_approve(c->proxy, (uint64_t)json_integer_value(ja), v);
    }
out:
    ctl_fds_close(fds, nfds);
    np_ctl_msg_wipe(msg);
    return err;
}

/* The front's --conns FD: an inherited SOCK_SEQPACKET socket (made
 * close-on-exec). The descriptor, or AL_EINVAL. */
static int conns_fd_open(const char *arg)
{
    char *end;
    int type = 0;
    socklen_t len = sizeof(type);
    errno = 0;
    long fd = strtol(arg, &end, 10);
    if (errno || end == arg || *end || fd < 3 || fd > 65535 ||
        getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
        return al_error_set(AL_EINVAL, "--conns %s: not a SOCK_SEQPACKET socket", arg);
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    return (int)fd;
}

static void *loop_thread(void *arg)
{
    np_proxy *p = arg;
    if (np_proxy_run(p) < 0)
        al_log(AL_LOG_ERROR, "event loop: %s", al_error_last());
    return NULL;
}

static int parse_ms(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > 86400000)
        return al_error_set(AL_EINVAL, "\"%s\" is not a number up to 86400000", s);
    *out = (unsigned)v;
    return 0;
}

enum {
    O_CONTROL = 256,
    O_CONTROL_PATH,
    O_USER,
    O_GROUP,
    O_HOSTS,
    O_HOSTS_ONLY,
    O_LOG,
    O_CONNECT_TO,
    O_IDLE_TO,
    O_HEADER_TO,
    O_APPROVAL_TO,
    O_MAX_CONNS,
    O_DNS_SERVER,
    O_FRONT,
    O_CONNS,
};

int np_control_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"control", required_argument, NULL, O_CONTROL},
        {"control-path", required_argument, NULL, O_CONTROL_PATH},
        {"user", required_argument, NULL, O_USER},
        {"group", required_argument, NULL, O_GROUP},
        {"hosts", required_argument, NULL, O_HOSTS},
        {"hosts-only", no_argument, NULL, O_HOSTS_ONLY},
        {"log", required_argument, NULL, O_LOG},
        {"connect-timeout", required_argument, NULL, O_CONNECT_TO},
        {"idle-timeout", required_argument, NULL, O_IDLE_TO},
        {"header-timeout", required_argument, NULL, O_HEADER_TO},
        {"approval-timeout", required_argument, NULL, O_APPROVAL_TO},
        {"max-conns", required_argument, NULL, O_MAX_CONNS},
        {"dns-server", required_argument, NULL, O_DNS_SERVER},
        {"front", required_argument, NULL, O_FRONT},
        {"conns", required_argument, NULL, O_CONNS},
        {NULL, 0, NULL, 0},
    };
    const char *control = NULL, *control_path = NULL, *user = NULL, *group = NULL;
    const char *log_path = NULL, *front = NULL, *conns_arg = NULL;
    struct al_strlist hosts = AL_STRLIST_INIT;
    struct np_config cfg;
    struct np_control c = {0};
    pthread_t loop;
    int opt, rc = 1, err = 0, ctl = -1, log_fd = -1, running = 0, conns = -1;

    al_log_init("airlock-netproxy", AL_LOG_INFO);
    np_config_init(&cfg);
    while ((opt = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
        switch (opt) {
        case O_CONTROL:
            control = optarg;
            break;
        case O_CONTROL_PATH:
            control_path = optarg;
            break;
        case O_FRONT:
            front = optarg;
            break;
        case O_CONNS:
            conns_arg = optarg;
            break;
        case O_USER:
            user = optarg;
            break;
        case O_GROUP:
            group = optarg;
            break;
        case O_HOSTS:
            err = al_strlist_push(&hosts, optarg);
            break;
        case O_HOSTS_ONLY:
            cfg.hosts_only = 1;
            break;
        case O_LOG:
            log_path = optarg;
            break;
        case O_CONNECT_TO:
            err = parse_ms(optarg, &cfg.connect_timeout_ms);
            break;
        case O_IDLE_TO:
            err = parse_ms(optarg, &cfg.idle_timeout_ms);
            break;
        case O_HEADER_TO:
            err = parse_ms(optarg, &cfg.header_timeout_ms);
            break;
        case O_APPROVAL_TO:
            err = parse_ms(optarg, &cfg.approval_timeout_ms);
            break;
        case O_MAX_CONNS:
            err = parse_ms(optarg, &cfg.max_conns_per_session);
            break;
        case O_DNS_SERVER: {
            size_t n = 0;
            while (n < NP_DNS_SERVERS_MAX && cfg.dns_servers[n])
                n++;
            if (n == NP_DNS_SERVERS_MAX)
                err = al_error_set(AL_EINVAL, "--dns-server: at most %d", NP_DNS_SERVERS_MAX);
            else
                cfg.dns_servers[n] = optarg;
            break;
        }
        case 'v':
            al_log_set_level(AL_LOG_DEBUG);
            break;
        default:
            err = al_error_set(AL_EINVAL, "unknown option");
            break;
        }
        if (err < 0)
            break;
    }
    if (err < 0 || optind != argc || (control && control_path) || (group && !user) ||
        (front && (control || control_path || !conns_arg)) || (!front && conns_arg)) {
        al_log(AL_LOG_ERROR,
               "usage: airlock-netproxy --control FD | --control-path PATH"
               " [--user NAME [--group NAME]] [--hosts NAME=IP[,IP]]..."
               " [--hosts-only] [--dns-server IP[:PORT]]... [--log FILE]"
               " [--connect-timeout MS]"
               " [--idle-timeout MS] [--header-timeout MS]"
               " [--approval-timeout MS] [--max-conns N] [-v]%s%s",
               err < 0 ? ": " : "", err < 0 ? al_error_last() : "");
        rc = 2;
        goto out;
    }
    if (!front) {
        /* the key holder: it execs the front (below, with --front) */
        if ((ctl = ctl_socket_open(control, control_path)) < 0) {
            rc = 2;
            goto fail;
        }
        rc = np_kh_proc_main(ctl, user, group, argc, argv);
        ctl = -1;
        goto out;
    }
    al_log_init("airlock-netproxy[front]",
                al_log_enabled(AL_LOG_DEBUG) ? AL_LOG_DEBUG : AL_LOG_INFO);
    c.front = 1;
    if ((ctl = ctl_socket_open(front, NULL)) < 0 || (conns = conns_fd_open(conns_arg)) < 0) {
        rc = 2;
        goto fail;
    }
    if (log_path) {
        log_fd = strcmp(log_path, "-") == 0
                     ? dup(STDOUT_FILENO)
                     : open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0) {
            al_error_set_errno(AL_EIO, errno, "%s", log_path);
            goto fail;
        }
        cfg.log_fd = log_fd;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Everything that needs root is done (log opened, descriptor limit
     * raised); the proxy's threads start after the drop and the seccomp
     * filter, and inherit both. */
    if (np_front_harden(user, group) < 0)
        goto fail;
    al_log(AL_LOG_INFO, "front running as uid %u", (unsigned)getuid());
    signal(SIGPIPE, SIG_IGN);
    if (ctl_outq_new(&c.q, EVENT_QUEUE_MAX) < 0 || np_proxy_new(&c.proxy, &cfg) < 0 ||
        np_proxy_set_keyholder(c.proxy, conns) < 0)
        goto fail;
    for (size_t i = 0; i < hosts.len; i++) {
        char *eq = strchr(hosts.items[i], '=');
        if (!eq) {
            al_error_set(AL_EINVAL, "--hosts %s: expected NAME=IP[,IP]", hosts.items[i]);
            goto fail;
        }
        *eq = '\0';
        if (np_proxy_add_host_override(c.proxy, hosts.items[i], eq + 1) < 0)
            goto fail;
    }
    np_proxy_set_decision_hook(c.proxy, on_decision, &c);
    np_proxy_set_approver(c.proxy, on_approval, &c);
    if (pthread_create(&loop, NULL, loop_thread, c.proxy) != 0) {
        al_error_set(AL_ERROR, "cannot start the event loop");
        goto fail;
    }
    running = 1;
    err = ctl_serve(ctl, c.q, "netproxy", handle, &c);
    if (err == AL_EIO) {
        al_log(AL_LOG_INFO, "control socket closed (%s); exiting", al_error_last());
        rc = 0;
        goto out;
    }
fail:
    al_log(AL_LOG_ERROR, "%s", al_error_last()[0] ? al_error_last() : "failed");
out:
    if (running) {
        np_proxy_stop(c.proxy);
        pthread_join(loop, NULL);
    }
    while (c.sessions)
        session_forget(&c, c.sessions->id, 0);
    np_proxy_free(c.proxy);
    ctl_outq_free(c.q);
    al_strlist_free(&hosts);
    if (ctl >= 0)
        close(ctl);
    if (log_fd >= 0)
        close(log_fd);
    if (conns >= 0)
        close(conns);
    return rc;
}
