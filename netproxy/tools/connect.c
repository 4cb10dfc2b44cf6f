/* airlock-connect: ssh's ProxyCommand through airlock's HTTP proxy.
 *
 *   airlock-connect [-p PROXY_IP:PORT] HOST PORT
 *
 * Opens the proxy (default: the sandbox's HTTP listener, 127.0.0.1 on
 * AL_PORT_HTTP_PROXY), asks for "CONNECT HOST:PORT", and on "200" relays
 * stdin -> proxy and proxy -> stdout until both directions are closed; end
 * of stdin is passed on as a half-close. A refusal is printed on stderr with
 * the proxy's reason (X-Airlock-Error and the one-line body) and the exit
 * status is 1; a usage error is 2. `airlock run` sets
 *   GIT_SSH_COMMAND="ssh -o ProxyCommand='<this> %h %p'"
 * so that git over ssh to an allowed host works from inside the sandbox. */
#include "connect_reply.h"

#include "airlock/ports.h"
#include "airlock/version.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY_MAX  1024 /* refusal text shown */
#define RELAY_BUF 65536

static void usage(FILE *f)
{
    fputs("usage: airlock-connect [-p PROXY_IP:PORT] HOST PORT\n"
          "Connects stdin and stdout to HOST:PORT through the egress proxy\n"
          "(ssh's ProxyCommand inside the sandbox).\n",
          f);
}

/* Writes all of buf; 0 or -1. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Connects to "IPv4:PORT" or "[IPv6]:PORT". The fd, or -1 with a message. */
static int dial_proxy(const char *spec)
{
    char host[64];
    const char *colon = strrchr(spec, ':');
    struct sockaddr_storage ss;
    socklen_t slen;
    char *end;

    memset(&ss, 0, sizeof(ss));
    if (!colon || (size_t)(colon - spec) >= sizeof(host))
        goto bad;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port == 0 || port > 65535)
        goto bad;
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            goto bad;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        slen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            goto bad;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        slen = sizeof(*s4);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, slen) < 0) {
        fprintf(stderr, "airlock-connect: cannot reach the proxy at %s: %s\n", spec,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
bad:
    fprintf(stderr, "airlock-connect: bad proxy address \"%s\" (expected IP:PORT)\n", spec);
    return -1;
}

/* A host ssh may pass: a name or an IP literal. No bytes that could end the
 * request line or smuggle a header. */
static int host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return 0;
    return strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_:") == n;
}

/* Prints the refusal: status, X-Airlock-Error and the body's first line. */
static void report_refusal(int fd, const struct np_connect_reply *r, const char *rest,
                           size_t rest_len, const char *target)
{
    char body[BODY_MAX + 1];
    size_t want = r->has_length && r->content_length < BODY_MAX ? r->content_length : BODY_MAX;
    size_t have = rest_len < want ? rest_len : want;
    memcpy(body, rest, have);
    while (have < want) {
        ssize_t n = read(fd, body + have, want - have);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    body[have] = '\0';
    body[strcspn(body, "\r\n")] = '\0';
    for (char *p = body; *p; p++)
        if ((unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f)
            *p = '?';
    fprintf(stderr, "airlock-connect: the proxy refused CONNECT %s: %d %s%s%s\n", target, r->status,
            r->error[0] ? r->error : "(no X-Airlock-Error)", body[0] ? ": " : "", body);
}

/* Relays until both directions ended. 0, or 1 on an error. */
static int relay(int sock)
{
    static char buf[RELAY_BUF];
    int in_open = 1, out_open = 1;

    while (in_open || out_open) {
        struct pollfd pf[2] = {{.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN},
                               {.fd = out_open ? sock : -1, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (pf[0].revents) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                shutdown(sock, SHUT_WR); /* half-close: the server sees EOF */
                in_open = 0;
            } else if (write_all(sock, buf, (size_t)n) < 0) {
                return 1;
            }
        }
        if (pf[1].revents) {
            ssize_t n = read(sock, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(STDOUT_FILENO);
                out_open = 0;
                if (n < 0)
                    return 1;
            } else if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0) {
                return 1;
            }
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *proxy = "127.0.0.1:" AL_PORT_HTTP_PROXY_STR;
    char head[NP_CONNECT_REPLY_MAX];
    char target[300];
    size_t len = 0;
    int opt;

    /* --help as well as -h, and --version: the long options */
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        puts("airlock-connect " AL_VERSION_LINE);
        return 0;
    }
    while ((opt = getopt(argc, argv, "p:h")) != -1) {
        if (opt == 'p') {
            proxy = optarg;
        } else {
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        return 2;
    }
    const char *host = argv[optind], *port_s = argv[optind + 1];
    char *end;
    unsigned long port = strtoul(port_s, &end, 10);
    if (!host_ok(host) || *end || end == port_s || port == 0 || port > 65535) {
        fprintf(stderr, "airlock-connect: bad target \"%s\" \"%s\"\n", host, port_s);
        return 2;
    }
    snprintf(target, sizeof(target), strchr(host, ':') ? "[%s]:%lu" : "%s:%lu", host, port);
    signal(SIGPIPE, SIG_IGN);
    int fd = dial_proxy(proxy);
    if (fd < 0)
        return 1;
    int n = snprintf(head, sizeof(head), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target);
    if (write_all(fd, head, (size_t)n) < 0) {
        fprintf(stderr, "airlock-connect: write to the proxy: %s\n", strerror(errno));
        return 1;
    }
    /* Read the reply head; bytes after it already belong to the tunnel. */
    struct np_connect_reply r;
    int hl;
    while ((hl = np_connect_reply_parse(&r, head, len)) == 0) {
        ssize_t got = read(fd, head + len, sizeof(head) - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            fprintf(stderr, "airlock-connect: the proxy closed the connection before answering\n");
            return 1;
        }
        len += (size_t)got;
    }
    if (hl < 0) {
        fprintf(stderr, "airlock-connect: malformed answer from the proxy\n");
        return 1;
    }
    if (r.status != 200) {
        report_refusal(fd, &r, head + hl, len - (size_t)hl, target);
        return 1;
    }
    if ((size_t)hl < len && write_all(STDOUT_FILENO, head + hl, len - (size_t)hl) < 0)
        return 1;
    return relay(fd);
}
