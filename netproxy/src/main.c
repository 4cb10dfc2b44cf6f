/* airlock-netproxy: the egress proxy as a standalone daemon.
 *
 * Two modes: one session from command-line options (tests, benchmarks), or,
 * with --control FD / --control-path PATH, sessions and their listeners from
 * airlockd over the control socket (control.c, docs/control-protocol.md). */
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/netproxy.h"
#include "airlock/settings.h"
#include "airlock/buf.h"
#include "airlock/strlist.h"
#include "airlock/version.h"
#include "control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static np_proxy *g_proxy;

static void on_signal(int sig)
{
    (void)sig;
    if (g_proxy)
        np_proxy_stop(g_proxy);
}

static void usage(FILE *f)
{
    fputs("usage: airlock-netproxy [options]\n"
          "  --listen-http ADDR:PORT    HTTP proxy listener (PORT 0: any free port)\n"
          "  --listen-socks ADDR:PORT   SOCKS5 listener\n"
          "  --port-file FILE           write the bound ports as http=N / socks=N\n"
          "  --session ID               session name in the log (default \"default\")\n"
          "  --policy FILE.json         settings file (settings.json with \"sandbox\", or\n"
          "                             sandbox-runtime's with \"network\"); repeatable,\n"
          "                             later files layer on earlier ones\n"
          "  --allow DOMAIN             add to allowedDomains (repeatable)\n"
          "  --deny DOMAIN              add to deniedDomains (repeatable)\n"
          "  --allow-address IP[/N]     add to allowedAddresses (repeatable)\n"
          "  --no-sni-check             requireSniMatch off\n"
          "  --hosts NAME=IP[,IP]       DNS override (repeat a NAME to rotate answers)\n"
          "  --hosts-only               names without an override fail to resolve\n"
          "  --control FD | --control-path PATH\n"
          "                             control mode: sessions from airlockd\n"
          "                             (docs/control-protocol.md)\n"
          "  --dns-server IP[:PORT]     ask this DNS server instead of resolv.conf's\n"
          "                             (repeatable, up to 3; [IPv6]:PORT)\n"
          "  --log FILE                 decision log (JSON lines; \"-\" for stdout)\n"
          "  --connect-timeout MS  --idle-timeout MS  --header-timeout MS\n"
          "  --max-conns N              per-session connection limit\n"
          "  -v                         verbose\n"
          "  --version                  print the version and commit, and exit\n",
          f);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max)
        return al_error_set(AL_EINVAL, "\"%s\" is not a number up to %lu", s, max);
    *out = v;
    return 0;
}

/* Opens a listening socket on "ADDR:PORT" (IPv4 or [IPv6]). */
static int listen_on(const char *spec, int *out_fd, uint16_t *out_port)
{
    char host[64];
    const char *colon = strrchr(spec, ':');
    unsigned long port;
    struct sockaddr_storage ss;
    socklen_t slen;
    int one = 1;

    if (!colon || (size_t)(colon - spec) >= sizeof(host) || parse_uint(colon + 1, 65535, &port))
        return al_error_set(AL_EINVAL, "bad listen address \"%s\"", spec);
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    memset(&ss, 0, sizeof(ss));
    if (host[0] == '[') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        size_t hl = strlen(host);
        if (hl < 3 || host[hl - 1] != ']')
            return al_error_set(AL_EINVAL, "bad listen address \"%s\"", spec);
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return al_error_set(AL_EINVAL, "bad listen address \"%s\"", spec);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        slen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return al_error_set(AL_EINVAL, "bad listen address \"%s\"", spec);
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        slen = sizeof(*s4);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        return al_error_set_errno(AL_EIO, e, "bind/listen %s", spec);
    }
    slen = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &slen);
    *out_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    *out_fd = fd;
    return 0;
}

/* Applies the settings file `file` (either shape: a settings.json with
 * "sandbox", or sandbox-runtime's file with top-level "network") on top of
 * `policy` with common/'s loader; the proxy reads only the network keys. */
static int load_policy(struct al_policy *policy, const char *file)
{
    char cwd[4096];
    const char *home = getenv("HOME");

    if (!getcwd(cwd, sizeof(cwd)))
        snprintf(cwd, sizeof(cwd), "/");
    return al_settings_load_file(policy, file, home && home[0] == '/' ? home : "/", cwd);
}

enum {
    OPT_HTTP = 256,
    OPT_SOCKS,
    OPT_PORT_FILE,
    OPT_SESSION,
    OPT_POLICY,
    OPT_ALLOW,
    OPT_DENY,
    OPT_ALLOW_ADDR,
    OPT_NO_SNI,
    OPT_HOSTS,
    OPT_HOSTS_ONLY,
    OPT_LOG,
    OPT_CONNECT_TO,
    OPT_IDLE_TO,
    OPT_HEADER_TO,
    OPT_MAX_CONNS,
    OPT_DNS_SERVER,
};

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        puts("airlock-netproxy " AL_VERSION_LINE);
        return 0;
    }
    static const struct option opts[] = {
        {"listen-http", required_argument, NULL, OPT_HTTP},
        {"listen-socks", required_argument, NULL, OPT_SOCKS},
        {"port-file", required_argument, NULL, OPT_PORT_FILE},
        {"session", required_argument, NULL, OPT_SESSION},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"allow", required_argument, NULL, OPT_ALLOW},
        {"deny", required_argument, NULL, OPT_DENY},
        {"allow-address", required_argument, NULL, OPT_ALLOW_ADDR},
        {"no-sni-check", no_argument, NULL, OPT_NO_SNI},
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {"hosts-only", no_argument, NULL, OPT_HOSTS_ONLY},
        {"log", required_argument, NULL, OPT_LOG},
        {"connect-timeout", required_argument, NULL, OPT_CONNECT_TO},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TO},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TO},
        {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
        {"dns-server", required_argument, NULL, OPT_DNS_SERVER},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct al_policy policy;
    struct np_config cfg;
    struct al_strlist http = AL_STRLIST_INIT, socks = AL_STRLIST_INIT, hosts = AL_STRLIST_INIT;
    const char *session = "default", *log_path = NULL, *port_file = NULL;
    unsigned long v;
    int opt, rc = 1, log_fd = -1;
    struct al_buf ports;

    if (np_control_wanted(argc, argv))
        return np_control_main(argc, argv);
    al_log_init("airlock-netproxy", AL_LOG_WARN);
    al_buf_init(&ports, 4096);
    al_policy_init(&policy);
    np_config_init(&cfg);
    while ((opt = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        int err = 0;
        switch (opt) {
        case OPT_HTTP:
            err = al_strlist_push(&http, optarg);
            break;
        case OPT_SOCKS:
            err = al_strlist_push(&socks, optarg);
            break;
        case OPT_PORT_FILE:
            port_file = optarg;
            break;
        case OPT_SESSION:
            session = optarg;
            break;
        case OPT_POLICY:
            err = load_policy(&policy, optarg);
            break;
        case OPT_ALLOW:
            err = al_strlist_push(&policy.net.allowed_domains, optarg);
            break;
        case OPT_DENY:
            err = al_strlist_push(&policy.net.denied_domains, optarg);
            break;
        case OPT_ALLOW_ADDR:
            err = al_strlist_push(&policy.net.allowed_addresses, optarg);
            break;
        case OPT_NO_SNI:
            policy.net.require_sni_match = 0;
            break;
        case OPT_HOSTS:
            err = al_strlist_push(&hosts, optarg);
            break;
        case OPT_HOSTS_ONLY:
            cfg.hosts_only = 1;
            break;
        case OPT_LOG:
            log_path = optarg;
            break;
        case OPT_CONNECT_TO:
            if (!(err = parse_uint(optarg, 86400000, &v)))
                cfg.connect_timeout_ms = (unsigned)v;
            break;
        case OPT_IDLE_TO:
            if (!(err = parse_uint(optarg, 86400000, &v)))
                cfg.idle_timeout_ms = (unsigned)v;
            break;
        case OPT_HEADER_TO:
            if (!(err = parse_uint(optarg, 86400000, &v)))
                cfg.header_timeout_ms = (unsigned)v;
            break;
        case OPT_DNS_SERVER: {
            size_t n = 0;
            while (n < NP_DNS_SERVERS_MAX && cfg.dns_servers[n])
                n++;
            if (n == NP_DNS_SERVERS_MAX)
                err =
                    al_error_set(AL_EINVAL, "--dns-server: at most %d servers", NP_DNS_SERVERS_MAX);
            else
                cfg.dns_servers[n] = optarg;
            break;
        }
        case OPT_MAX_CONNS:
            if (!(err = parse_uint(optarg, 10000000, &v)))
                cfg.max_conns_per_session = (unsigned)v;
            break;
        case 'v':
            al_log_set_level(AL_LOG_DEBUG);
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        default:
            usage(stderr);
            rc = 2;
            goto out;
        }
        if (err < 0) {
            al_log(AL_LOG_ERROR, "%s", al_error_last()[0] ? al_error_last() : al_error_name(err));
            rc = 2;
            goto out;
        }
    }
    if (optind != argc || (http.len == 0 && socks.len == 0)) {
        usage(stderr);
        rc = 2;
        goto out;
    }
    if (log_path) {
        log_fd = strcmp(log_path, "-") == 0
                     ? dup(STDOUT_FILENO)
                     : open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0) {
            al_log(AL_LOG_ERROR, "%s: %s", log_path, strerror(errno));
            goto out;
        }
        cfg.log_fd = log_fd;
    }
    raise_nofile();
    if (np_proxy_new(&g_proxy, &cfg) < 0 ||
        np_proxy_set_policy(g_proxy, session, &policy.net) < 0) {
        al_log(AL_LOG_ERROR, "%s", al_error_last());
        goto out;
    }
    for (size_t i = 0; i < hosts.len; i++) {
        char *eq = strchr(hosts.items[i], '=');
        if (!eq) {
            al_log(AL_LOG_ERROR, "--hosts %s: expected NAME=IP[,IP]", hosts.items[i]);
            goto out;
        }
        *eq = '\0';
        if (np_proxy_add_host_override(g_proxy, hosts.items[i], eq + 1) < 0) {
            al_log(AL_LOG_ERROR, "%s", al_error_last());
            goto out;
        }
    }
    for (int kind = 0; kind < 2; kind++) {
        struct al_strlist *l = kind == 0 ? &http : &socks;
        for (size_t i = 0; i < l->len; i++) {
            int fd = -1;
            uint16_t port = 0;
            if (listen_on(l->items[i], &fd, &port) < 0 ||
                np_proxy_add_listener(g_proxy, fd, kind == 0 ? NP_HTTP : NP_SOCKS5, session) < 0) {
                al_log(AL_LOG_ERROR, "%s", al_error_last());
                goto out;
            }
            al_buf_printf(&ports, "%s=%u\n", kind == 0 ? "http" : "socks", port);
        }
    }
    if (port_file) {
        /* written whole, then renamed, so a waiting test never reads half */
        struct al_buf tmp;
        al_buf_init(&tmp, 4096);
        al_buf_printf(&tmp, "%s.tmp", port_file);
        int fd = tmp.ptr ? open(tmp.ptr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
        bool ok = fd >= 0 && write(fd, ports.ptr, ports.len) == (ssize_t)ports.len;
        if (fd >= 0)
            close(fd);
        ok = ok && rename(tmp.ptr, port_file) == 0;
        al_buf_free(&tmp);
        if (!ok) {
            al_log(AL_LOG_ERROR, "%s: %s", port_file, strerror(errno));
            goto out;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    al_log(AL_LOG_INFO, "serving session %s", session);
    if (np_proxy_run(g_proxy) < 0) {
        al_log(AL_LOG_ERROR, "%s", al_error_last());
        goto out;
    }
    rc = 0;
out:
    np_proxy_free(g_proxy);
    g_proxy = NULL;
    al_policy_free(&policy);
    al_strlist_free(&http);
    al_strlist_free(&socks);
    al_strlist_free(&hosts);
    al_buf_free(&ports);
    if (log_fd >= 0)
        close(log_fd);
    return rc;
}
