/* Test-only driver: the netproxy library with a policy built in C from
 * flags, for policy fields that the settings files cannot express yet in
 * this tree (request rules, reportOnly). Listens on 127.0.0.1 (HTTP and
 * SOCKS5), writes "http=N\nsocks=N\n" to PORT_FILE, logs decisions to
 * LOG_FILE, and runs until SIGTERM or SIGINT.
 *
 * usage: policy_proxy PORT_FILE LOG_FILE [options]
 *   --allow D | --deny D | --allow-address A   as airlock-netproxy
 *   --hosts NAME=IP                             host override (names not
 *                                               listed fail DNS)
 *   --report-only | --tls-terminate | --strict
 *   --tls-exclude D
 *   --rule 'HOST|METHODS|PATHS[|KEYS]'          one request rule: METHODS
 *        and PATHS comma-separated (empty: any); KEYS absent: any query,
 *        present: the allowed query keys (empty: no query at all)
 * Exit 0 after a signal, 1 on a setup error. */
#include "airlock/netproxy.h"
#include "split.h"

#include "airlock/error.h"
#include "airlock/strlist.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

/* Pushes each comma-separated item of s[0..n) to list. */
static int push_items(struct al_strlist *list, const char *s, size_t n)
{
    char item[256];
    size_t i = 0;
    while (i < n) {
        const char *comma = memchr(s + i, ',', n - i);
        size_t end = comma ? (size_t)(comma - s) : n;
        if (end - i >= sizeof(item))
            return AL_EINVAL;
        memcpy(item, s + i, end - i);
        item[end - i] = '\0';
        if (end > i && al_strlist_push(list, item) < 0)
            return AL_ENOMEM;
        i = end + 1;
    }
    return 0;
}

/* Appends the rule "HOST|METHODS|PATHS[|KEYS]" to pol. */
static int add_rule(struct al_netpolicy *pol, const char *spec)
{
    const char *f[4] = {spec, NULL, NULL, NULL};
    size_t nf = 1;
    for (const char *p = spec; *p && nf < 4; p++)
        if (*p == '|')
            f[nf++] = p + 1;
    if (nf < 3)
        return al_error_set(AL_EINVAL, "--rule %s: want HOST|METHODS|PATHS[|KEYS]", spec);
    struct al_reqrule *grown =
        realloc(pol->request_rules, (pol->n_request_rules + 1) * sizeof(*grown));
    if (!grown)
        return AL_ENOMEM;
    pol->request_rules = grown;
    struct al_reqrule *r = &grown[pol->n_request_rules++];
    memset(r, 0, sizeof(*r));
    size_t hlen = (size_t)(f[1] - f[0] - 1);
    if (!(r->host = strndup(f[0], hlen)))
        return AL_ENOMEM;
    int err = push_items(&r->methods, f[1], (size_t)(f[2] - f[1] - 1));
    size_t plen = nf == 4 ? (size_t)(f[3] - f[2] - 1) : strlen(f[2]);
    if (!err)
        err = push_items(&r->paths, f[2], plen);
    if (!err && nf == 4) {
        r->has_query_keys = 1;
        err = push_items(&r->query_keys, f[3], strlen(f[3]));
    }
    return err;
}

static int listen_local(uint16_t *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sin);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &slen) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

static void *run_main(void *arg)
{
    np_proxy_run(arg);
    return NULL;
}

int main(int argc, char **argv)
{
    struct al_netpolicy pol;
    struct np_config cfg;
    np_proxy *proxy = NULL;
    int rc = 1, err = 0, log_fd = -1;
    sigset_t set;

    if (argc < 3) {
        fprintf(stderr, "usage: policy_proxy PORT_FILE LOG_FILE [options]\n");
        return 1;
    }
    al_netpolicy_init(&pol);
    np_config_init(&cfg);
    cfg.hosts_only = 1;
    log_fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    cfg.log_fd = log_fd;
    snprintf(cfg.settings_key, sizeof(cfg.settings_key), "network");
    if (log_fd < 0 || np_proxy_new(&proxy, &cfg) < 0)
        goto out;
    for (int i = 3; i < argc && !err; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--report-only") == 0) {
            pol.report_only = 1;
            continue;
        }
        if (strcmp(a, "--tls-terminate") == 0) {
            pol.tls_terminate = 1;
            continue;
        }
        if (strcmp(a, "--split") == 0) {
            /* the key-holder split in this process (split.c) */
            err = test_split_start(proxy) ? 0 : AL_EIO;
            continue;
        }
        if (strcmp(a, "--strict") == 0) {
            pol.strict_allowlist = 1;
            continue;
        }
        if (!v) {
            err = al_error_set(AL_EINVAL, "%s: missing value", a);
            break;
        }
        i++;
        if (strcmp(a, "--allow") == 0) {
            err = al_strlist_push(&pol.allowed_domains, v);
        } else if (strcmp(a, "--deny") == 0) {
            err = al_strlist_push(&pol.denied_domains, v);
        } else if (strcmp(a, "--allow-address") == 0) {
            err = al_strlist_push(&pol.allowed_addresses, v);
        } else if (strcmp(a, "--tls-exclude") == 0) {
            err = al_strlist_push(&pol.tls_exclude, v);
        } else if (strcmp(a, "--rule") == 0) {
            err = add_rule(&pol, v);
        } else if (strcmp(a, "--hosts") == 0) {
            char name[256];
            const char *eq = strchr(v, '=');
            size_t n = eq ? (size_t)(eq - v) : 0;
            if (!eq || n >= sizeof(name)) {
                err = al_error_set(AL_EINVAL, "--hosts %s: want NAME=IP", v);
                break;
            }
            memcpy(name, v, n);
            name[n] = '\0';
            err = np_proxy_add_host_override(proxy, name, eq + 1);
        } else {
            err = al_error_set(AL_EINVAL, "unknown option %s", a);
        }
    }
    if (err < 0 || np_proxy_set_policy(proxy, "test", &pol) < 0) {
        fprintf(stderr, "policy_proxy: %s\n", al_error_last());
        goto out;
    }
    uint16_t hp = 0, sp = 0;
    int hfd = listen_local(&hp), sfd = listen_local(&sp);
    if (hfd < 0 || sfd < 0 || np_proxy_add_listener(proxy, hfd, NP_HTTP, "test") < 0 ||
        np_proxy_add_listener(proxy, sfd, NP_SOCKS5, "test") < 0) {
        fprintf(stderr, "policy_proxy: listeners: %s\n", al_error_last());
        goto out;
    }
    char tmp[4096], ports[64];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
    int n = snprintf(ports, sizeof(ports), "http=%u\nsocks=%u\n", hp, sp);
    FILE *f = fopen(tmp, "w");
    if (!f || fwrite(ports, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0 ||
        rename(tmp, argv[1]) < 0) {
        fprintf(stderr, "policy_proxy: cannot write %s\n", argv[1]);
        goto out;
    }
    /* signals are waited for here; the proxy thread never sees them */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, run_main, proxy) != 0)
        goto out;
    int sig;
    sigwait(&set, &sig);
    np_proxy_stop(proxy);
    pthread_join(t, NULL);
    rc = 0;
out:
    np_proxy_free(proxy);
    al_netpolicy_free(&pol);
    if (log_fd >= 0)
        close(log_fd);
    return rc;
}
