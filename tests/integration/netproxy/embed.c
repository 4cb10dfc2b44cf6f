/* Embeds libairlock_netproxy like `airlock run` does:
 *  - a child process unshares a network namespace with only loopback (the
 *    "sandbox");
 *  - the parent creates the HTTP listener inside that namespace with
 *    np_listener_open_in_netns() and runs the proxy in a thread;
 *  - the child reaches an upstream in the parent's namespace only through
 *    the proxy, and the approver decides hosts that are in neither list.
 * Exit 0 on success, 1 on failure, 77 when namespaces are not available. */
#include "airlock/netproxy.h"

#include "airlock/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
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

int main(void)
{
    int ready[2], go[2], rc = 1;
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
