/* Embeds libairlock_netproxy like `airlock run` does (no arguments), or
 * serves one session on loopback for the shell tests (`serve ...`, see
 * serve_usage): TLS termination with a session CA made by np_ca_generate,
 * masked credentials, extra upstream trust.
 *
 * Without arguments:
 *  - a child process unshares a network namespace with only loopback (the
 *    "sandbox");
 *  - the parent creates the HTTP listener inside that namespace with
 *    np_listener_open_in_netns() and runs the proxy in a thread;
 *  - the child reaches an upstream in the parent's namespace only through
 *    the proxy, and the approver decides hosts that are in neither list.
 * Exit 0 on success, 1 on failure, 77 when namespaces are not available. */
#include "airlock/netproxy.h"
#include "split.h"

#include "airlock/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int approver_calls;
static atomic_int denials_seen;

/* What `airlock run` does with every refusal: one line on stderr. */
static void on_decision(const struct np_decision *d, void *payload)
{
    (void)payload;
    if (strcmp(d->decision, "deny") != 0)
        return;
    fprintf(stderr, "airlock: blocked network: %s:%u (%s)\n", d->host, d->port, d->reason);
    atomic_fetch_add(&denials_seen, 1);
}
static np_proxy *g_proxy;

/* Upstream in the parent's namespace: answers every connection with "ok". */
static void *upstream_main(void *arg)
{
    int lfd = *(int *)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof(buf));
        (void)n;
        static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                                   "Connection: close\r\n\r\nok\n";
        if (write(fd, resp, sizeof(resp) - 1) < 0) {
            /* client went away */
        }
        close(fd);
    }
}

static void approver(const struct np_approval *req, void *payload)
{
    (void)payload;
    atomic_fetch_add(&approver_calls, 1);
    if (strcmp(req->host, "ask.test") == 0)
        np_proxy_approve(g_proxy, req->id, NP_VERDICT_ALLOW_ONCE);
    else if (strcmp(req->host, "session.test") == 0)
        np_proxy_approve(g_proxy, req->id, NP_VERDICT_ALLOW_SESSION);
    else if (strcmp(req->host, "no.test") == 0)
        np_proxy_approve(g_proxy, req->id, NP_VERDICT_DENY);
    /* slow.test: never answered; the hold timeout decides */
}

static void *proxy_main(void *arg)
{
    np_proxy_run(arg);
    return NULL;
}

/* In the child: one request through the proxy; returns "STATUS ERROR". */
static void request(uint16_t proxy_port, const char *host, uint16_t port, char *out, size_t size)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(proxy_port)};
    char req[512], resp[2048];
    size_t got = 0;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    snprintf(out, size, "connect-failed");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
        goto out;
    int n = snprintf(req, sizeof(req), "GET http://%s:%u/ HTTP/1.1\r\nHost: %s:%u\r\n\r\n", host,
                     port, host, port);
    if (write(fd, req, (size_t)n) != n)
        goto out;
    for (;;) {
        ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    resp[got] = '\0';
    const char *err = strstr(resp, "X-Airlock-Error: ");
    char code[8] = "???";
    if (got > 12)
        memcpy(code, resp + 9, 3), code[3] = '\0';
    if (err) {
        err += strlen("X-Airlock-Error: ");
        snprintf(out, size, "%s %.*s", code, (int)strcspn(err, "\r\n"), err);
    } else {
        snprintf(out, size, "%s %s", code, strstr(resp, "\r\n\r\nok") ? "ok" : "-");
    }
out:
    if (fd >= 0)
        close(fd);
}

static int child_main(int ready_w, int go_r, uint16_t up_port)
{
    if (unshare(CLONE_NEWNET) < 0) {
        char c = 'S';
        (void)!write(ready_w, &c, 1);
        return 77;
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return 1;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        return 1;
    close(s);
    char c = 'R';
    if (write(ready_w, &c, 1) != 1)
        return 1;
    uint16_t proxy_port;
    if (read(go_r, &proxy_port, sizeof(proxy_port)) != sizeof(proxy_port))
        return 1;

    static const struct {
        const char *host;
        const char *want;
    } cases[] = {
        {"allowed.test", "200 ok"},
        {"ask.test", "200 ok"},
        {"no.test", "403 blocked-by-policy"},
        {"slow.test", "403 needs-approval-timeout"},
        {"session.test", "200 ok"},
        {"session.test", "200 ok"}, /* allowed for the session: no second prompt */
        {"denied.test", "403 blocked-by-policy"},
    };
    int fails = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char got[128];
        request(proxy_port, cases[i].host, up_port, got, sizeof(got));
        int ok = strcmp(got, cases[i].want) == 0;
        printf("%s %s: %s%s%s\n", ok ? "ok" : "FAIL", cases[i].host, got, ok ? "" : ", want ",
               ok ? "" : cases[i].want);
        fails += !ok;
    }
    /* The upstream is not reachable directly from inside the namespace. */
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(up_port)};
    inet_pton(AF_INET, "127.0.0.2", &sin.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int direct = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    printf("%s direct connection to the upstream from the sandbox %s\n", direct ? "FAIL" : "ok",
           direct ? "worked" : "failed");
    close(fd);
    fflush(stdout);
    return fails || direct ? 1 : 0;
}

static volatile sig_atomic_t g_stop;

static void on_term(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_proxy)
        np_proxy_stop(g_proxy);
}

static const char serve_usage[] =
    "usage: integration_netproxy_embed serve --port-file F [options]\n"
    "  --allow D  --deny D  --allow-address CIDR  --hosts NAME=IP  --log F\n"
    "  --tls-terminate          terminate TLS (policy tls_terminate)\n"
    "  --tls-exclude D          tlsTerminate.excludeDomains entry\n"
    "  --plaintext-inject       credentials.allowPlaintextInject\n"
    "  --no-ca                  do not give the session a CA\n"
    "  --ca-out F               write the session CA certificate (PEM) to F\n"
    "  --extra-trust F          extra upstream trust anchors (PEM bundle)\n"
    "  --cred NAME=VALUE@H1,H2  masked credential (repeatable)\n"
    "  --sentinel-out F         write NAME=SENTINEL lines to F\n"
    "  --rule HOST|METHODS|PATHS  request rule (METHODS, PATHS comma-separated, may be\n"
    "                           empty: any)\n"
    "  --report-only            network.reportOnly\n"
    "  --remove-when F          remove the session once file F exists\n"
    "  --max-conns N            max_conns_per_session\n"
    "  --idle-timeout MS  --header-timeout MS\n"
    "  --split                  run the key-holder split in this process (split.c):\n"
    "                           the proxy keeps no credential value\n";

static int write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fwrite(data, 1, len, f) == len ? 0 : -1;
    return fclose(f) == 0 ? rc : -1;
}

/* Reads a whole (small) file; NULL on error. The caller frees. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *g = realloc(buf, cap);
            if (!g)
                break;
            buf = g;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static const char *g_remove_when;
static struct np_kh_sessions *g_ks; /* --split */

/* --remove-when: np_proxy_remove_session("s1") once the file exists (what
 * airlockd does when a session ends). */
static void *remover_main(void *arg)
{
    (void)arg;
    while (!g_stop && access(g_remove_when, F_OK) != 0)
        usleep(20000);
    if (!g_stop && np_proxy_remove_session(g_proxy, "s1") == 0)
        fprintf(stderr, "session s1 removed\n");
    if (!g_stop && g_ks)
        np_kh_sessions_remove(g_ks, "s1");
    return NULL;
}

static int serve_main(int argc, char **argv)
{
    enum {
        OPT_PORTS = 256,
        OPT_ALLOW,
        OPT_DENY,
        OPT_ADDR,
        OPT_HOSTS,
        OPT_LOG,
        OPT_TERM,
        OPT_EXCL,
        OPT_PLAIN,
        OPT_NOCA,
        OPT_CAOUT,
        OPT_TRUST,
        OPT_CRED,
        OPT_SENT,
        OPT_IDLE,
        OPT_HEADER_TIMEOUT,
        OPT_RULE,
        OPT_REPORT,
        OPT_REMOVE,
        OPT_MAXCONN,
        OPT_SPLIT,
    };
    static const struct option opts[] = {
        {"port-file", required_argument, NULL, OPT_PORTS},
        {"allow", required_argument, NULL, OPT_ALLOW},
        {"deny", required_argument, NULL, OPT_DENY},
        {"allow-address", required_argument, NULL, OPT_ADDR},
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {"log", required_argument, NULL, OPT_LOG},
        {"tls-terminate", no_argument, NULL, OPT_TERM},
        {"tls-exclude", required_argument, NULL, OPT_EXCL},
        {"plaintext-inject", no_argument, NULL, OPT_PLAIN},
        {"no-ca", no_argument, NULL, OPT_NOCA},
        {"ca-out", required_argument, NULL, OPT_CAOUT},
        {"extra-trust", required_argument, NULL, OPT_TRUST},
        {"cred", required_argument, NULL, OPT_CRED},
        {"sentinel-out", required_argument, NULL, OPT_SENT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
        {"rule", required_argument, NULL, OPT_RULE},
        {"report-only", no_argument, NULL, OPT_REPORT},
        {"remove-when", required_argument, NULL, OPT_REMOVE},
        {"max-conns", required_argument, NULL, OPT_MAXCONN},
        {"split", no_argument, NULL, OPT_SPLIT},
        {NULL, 0, NULL, 0},
    };
    struct al_netpolicy policy;
    struct al_credset creds = {0};
    struct al_strlist hosts = {0};
    struct np_config cfg;
    const char *port_file = NULL, *ca_out = NULL, *trust_file = NULL, *sent_out = NULL;
    bool no_ca = false, split = false;
    struct np_kh_sessions *ks = NULL;
    int opt, rc = 1, logfd = -1;

    al_netpolicy_init(&policy);
    np_config_init(&cfg);
    cfg.hosts_only = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_PORTS:
            port_file = optarg;
            break;
        case OPT_ALLOW:
            al_strlist_push(&policy.allowed_domains, optarg);
            break;
        case OPT_DENY:
            al_strlist_push(&policy.denied_domains, optarg);
            break;
        case OPT_ADDR:
            al_strlist_push(&policy.allowed_addresses, optarg);
            break;
        case OPT_HOSTS:
            al_strlist_push(&hosts, optarg);
            break;
        case OPT_LOG:
            logfd = open(optarg, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            cfg.log_fd = logfd;
            break;
        case OPT_TERM:
            policy.tls_terminate = 1;
            break;
        case OPT_EXCL:
            al_strlist_push(&policy.tls_exclude, optarg);
            break;
        case OPT_PLAIN:
            policy.allow_plaintext_inject = 1;
            break;
        case OPT_NOCA:
            no_ca = true;
            break;
        case OPT_CAOUT:
            ca_out = optarg;
            break;
        case OPT_TRUST:
            trust_file = optarg;
            break;
        case OPT_CRED: {
            /* NAME=VALUE@H1,H2 */
            char *spec = strdup(optarg), *eq = strchr(spec, '='), *at = strrchr(spec, '@');
            struct al_strlist inject = {0};
            if (!eq || !at || at < eq) {
                fprintf(stderr, "--cred %s: expected NAME=VALUE@HOST[,HOST]\n", optarg);
                free(spec);
                goto out;
            }
            *eq = *at = '\0';
            for (char *h = at + 1, *comma; h && *h; h = comma ? comma + 1 : NULL) {
                comma = strchr(h, ',');
                if (comma)
                    *comma = '\0';
                al_strlist_push(&inject, h);
            }
            int err = al_credset_add(&creds, spec, eq + 1, strlen(eq + 1), &inject, NULL);
            al_strlist_free(&inject);
            free(spec);
            if (err < 0) {
                fprintf(stderr, "--cred: %s\n", al_error_last());
                goto out;
            }
            break;
        }
        case OPT_SENT:
            sent_out = optarg;
            break;
        case OPT_HEADER_TIMEOUT:
            cfg.header_timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case OPT_IDLE:
            cfg.idle_timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case OPT_REPORT:
            policy.report_only = 1;
            break;
        case OPT_REMOVE:
            g_remove_when = optarg;
            break;
        case OPT_SPLIT:
            split = true;
            break;
        case OPT_MAXCONN:
            cfg.max_conns_per_session = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case OPT_RULE: {
            /* e.g. "api.test|GET,HEAD|/repos/x" */
            char *spec = strdup(optarg), *f[3] = {spec, NULL, NULL};
            for (int k = 1; k < 3 && f[k - 1]; k++)
                if ((f[k] = strchr(f[k - 1], '|')))
                    *f[k]++ = '\0';
            struct al_reqrule *grown = realloc(
                policy.request_rules, (policy.n_request_rules + 1) * sizeof(*policy.request_rules));
            if (!grown || !f[2]) {
                fprintf(stderr, "--rule %s: expected HOST|METHODS|PATHS\n", optarg);
                free(spec);
                goto out;
            }
            policy.request_rules = grown;
            struct al_reqrule *r = &policy.request_rules[policy.n_request_rules++];
            memset(r, 0, sizeof(*r));
            r->host = strdup(f[0]);
            for (int k = 1; k < 3; k++)
                for (char *t = f[k], *comma; t && *t; t = comma ? comma + 1 : NULL) {
                    comma = strchr(t, ',');
                    if (comma)
                        *comma = '\0';
                    al_strlist_push(k == 1 ? &r->methods : &r->paths, t);
                }
            free(spec);
            break;
        }
        default:
            fputs(serve_usage, stderr);
            goto out;
        }
    }
    if (!port_file) {
        fputs(serve_usage, stderr);
        goto out;
    }
    int hfd = -1, sfd = -1;
    if (np_proxy_new(&g_proxy, &cfg) < 0 || (split && !(ks = test_split_start(g_proxy))) ||
        np_proxy_set_policy(g_proxy, "s1", &policy) < 0 ||
        np_proxy_set_credentials(g_proxy, "s1", &creds) < 0) {
        fprintf(stderr, "setup: %s\n", al_error_last());
        goto out;
    }
    for (size_t i = 0; i < hosts.len; i++) {
        char *eq = strchr(hosts.items[i], '=');
        if (!eq)
            goto out;
        *eq = '\0';
        if (np_proxy_add_host_override(g_proxy, hosts.items[i], eq + 1) < 0)
            goto out;
    }
    if (!no_ca) {
        char *cert = NULL, *key = NULL, *trust = trust_file ? read_text(trust_file) : NULL;
        int err = np_ca_generate(&cert, &key, "airlock test session CA");
        if (!err)
            err = np_proxy_set_tls(g_proxy, "s1", cert, key, trust);
        if (!err && ks)
            err = np_kh_sessions_put(ks, "s1", &creds, cert, key, trust);
        if (!err && ks)
            err = np_kh_sessions_set_plaintext(ks, "s1", policy.allow_plaintext_inject);
        if (!err && ca_out && write_file(ca_out, cert, strlen(cert)) < 0)
            err = -1;
        if (key)
            explicit_bzero(key, strlen(key));
        free(key);
        free(cert);
        free(trust);
        if (err < 0) {
            fprintf(stderr, "tls: %s\n", al_error_last());
            goto out;
        }
    }
    if (sent_out) {
        FILE *f = fopen(sent_out, "w");
        if (!f)
            goto out;
        for (size_t i = 0; i < creds.len; i++)
            fprintf(f, "%s=%s\n", creds.v[i].name, creds.v[i].sentinel);
        fclose(f);
    }
    if (np_listener_open_in_netns(&hfd, -1, 0) < 0 || np_listener_open_in_netns(&sfd, -1, 0) < 0) {
        fprintf(stderr, "listen: %s\n", al_error_last());
        goto out;
    }
    struct sockaddr_in hs, ss;
    socklen_t hl = sizeof(hs), sl = sizeof(ss);
    getsockname(hfd, (struct sockaddr *)&hs, &hl);
    getsockname(sfd, (struct sockaddr *)&ss, &sl);
    if (np_proxy_add_listener(g_proxy, hfd, NP_HTTP, "s1") < 0 ||
        np_proxy_add_listener(g_proxy, sfd, NP_SOCKS5, "s1") < 0)
        goto out;
    char ports[64];
    int n = snprintf(ports, sizeof(ports), "http=%u\nsocks=%u\n", ntohs(hs.sin_port),
                     ntohs(ss.sin_port));
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
    if (write_file(tmp, ports, (size_t)n) < 0 || rename(tmp, port_file) < 0)
        goto out;
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGPIPE, SIG_IGN);
    g_ks = ks;
    pthread_t remover;
    bool has_remover = g_remove_when && pthread_create(&remover, NULL, remover_main, NULL) == 0;
    if (!g_stop)
        np_proxy_run(g_proxy);
    g_stop = 1;
    if (has_remover)
        pthread_join(remover, NULL);
    rc = 0;
out:
    np_proxy_free(g_proxy);
    g_proxy = NULL;
    if (ks) {
        test_split_stop();
        g_ks = NULL;
    }
    al_netpolicy_free(&policy);
    al_credset_free(&creds);
    al_strlist_free(&hosts);
    if (logfd >= 0)
        close(logfd);
    return rc;
}

int main(int argc, char **argv)
{
    int ready[2], go[2], rc = 1;

    if (argc > 1 && strcmp(argv[1], "serve") == 0)
        return serve_main(argc - 1, argv + 1);
    if (argc > 1) {
        fputs(serve_usage, stderr);
        return 2;
    }
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sin);

    /* the upstream listens before the fork so the child knows its port */
    int up = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.2", &sin.sin_addr);
    if (up < 0 || bind(up, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(up, 64) < 0 ||
        getsockname(up, (struct sockaddr *)&sin, &slen) < 0) {
        perror("upstream");
        return 1;
    }
    uint16_t up_port = ntohs(sin.sin_port);
    if (pipe(ready) < 0 || pipe(go) < 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(up);
        _exit(child_main(ready[1], go[0], up_port));
    }
    char c;
    if (read(ready[0], &c, 1) != 1 || c != 'R') {
        waitpid(pid, NULL, 0);
        printf("skip: cannot create a network namespace\n");
        return 77;
    }

    pthread_t up_thread, proxy_thread;
    pthread_create(&up_thread, NULL, upstream_main, &up);

    struct np_config cfg;
    np_config_init(&cfg);
    cfg.approval_timeout_ms = 500;
    cfg.hosts_only = 1;
    struct al_netpolicy policy;
    al_netpolicy_init(&policy); /* require_sni_match is on by default */
    al_strlist_push(&policy.allowed_domains, "allowed.test");
    al_strlist_push(&policy.denied_domains, "denied.test");
    al_strlist_push(&policy.allowed_addresses, "127.0.0.2/32");

    char nspath[64];
    snprintf(nspath, sizeof(nspath), "/proc/%d/ns/net", (int)pid);
    int nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
    int lfd = -1;
    if (nsfd < 0 || np_proxy_new(&g_proxy, &cfg) < 0 ||
        np_proxy_set_policy(g_proxy, "s1", &policy) < 0 ||
        np_listener_open_in_netns(&lfd, nsfd, 0) < 0) {
        printf("setup: %s\n", al_error_last());
        kill(pid, SIGKILL);
        goto out;
    }
    static const char *names[] = {"allowed.test", "ask.test",     "no.test",
                                  "slow.test",    "session.test", "denied.test"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        np_proxy_add_host_override(g_proxy, names[i], "127.0.0.2");
    slen = sizeof(sin);
    getsockname(lfd, (struct sockaddr *)&sin, &slen);
    uint16_t proxy_port = ntohs(sin.sin_port);
    np_proxy_set_approver(g_proxy, approver, NULL);
    np_proxy_set_decision_hook(g_proxy, on_decision, NULL);
    if (np_proxy_add_listener(g_proxy, lfd, NP_HTTP, "s1") < 0)
        goto out;
    pthread_create(&proxy_thread, NULL, proxy_main, g_proxy);
    if (write(go[1], &proxy_port, sizeof(proxy_port)) != sizeof(proxy_port))
        goto out;

    int status;
    waitpid(pid, &status, 0);
    np_proxy_stop(g_proxy);
    pthread_join(proxy_thread, NULL);
    int calls = atomic_load(&approver_calls);
    printf("%s approver called %d times (want 4)\n", calls == 4 ? "ok" : "FAIL", calls);
    int denials = atomic_load(&denials_seen);
    printf("%s decision hook saw %d denials (want 3)\n", denials == 3 ? "ok" : "FAIL", denials);
    rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 && calls == 4 && denials == 3 ? 0 : 1;
out:
    np_proxy_free(g_proxy);
    al_netpolicy_free(&policy);
    if (nsfd >= 0)
        close(nsfd);
    return rc;
}
