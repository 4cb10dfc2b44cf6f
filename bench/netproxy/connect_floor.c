/* The least an HTTP CONNECT proxy can do, as a floor for bench/netproxy.
 *
 *   connect_floor PORT UPSTREAM_PORT            latency floor
 *   connect_floor PORT UPSTREAM_PORT --relay    bulk floor
 *
 * Latency floor: accept one client at a time (blocking), read its request
 * without parsing it, connect to the fixed upstream 127.0.0.1:UPSTREAM,
 * answer "200", close both. No policy, no event loop, no relay.
 * Bulk floor (--relay): the same, then relay the tunnel both ways with
 * splice(2) through a 1 MiB pipe per direction, one blocking thread per
 * direction (no event loop, no policy, no accounting), half-close passed
 * on. What a userspace relay on this machine can do at best.
 * Built by bench/netproxy/run. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PIPE_SIZE (1 << 20)

static struct sockaddr_in loopback(const char *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)strtoul(port, NULL, 10))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

struct dir {
    int from, to;
    pthread_t peer; /* the other direction's thread (joined by the 2nd) */
};

/* Moves bytes from->to until EOF or an error, then half-closes `to`. */
static void pump(int from, int to)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return;
    (void)fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE);
    for (;;) {
        ssize_t n = splice(from, NULL, p[1], NULL, PIPE_SIZE, SPLICE_F_MOVE);
        if (n <= 0)
            break;
        while (n > 0) {
            ssize_t m = splice(p[0], NULL, to, NULL, (size_t)n, SPLICE_F_MOVE);
            if (m <= 0)
                goto out;
            n -= m;
        }
    }
out:
    shutdown(to, SHUT_WR);
    close(p[0]);
    close(p[1]);
}

static void *upstream_to_client(void *arg)
{
    struct dir *d = arg;
    pump(d->from, d->to);
    return NULL;
}

static void *tunnel(void *arg)
{
    struct dir *d = arg; /* from = client, to = upstream */
    struct dir back = {.from = d->to, .to = d->from};
    pthread_t t;
    if (pthread_create(&t, NULL, upstream_to_client, &back) == 0) {
        pump(d->from, d->to);
        pthread_join(t, NULL);
    }
    close(d->from);
    close(d->to);
    free(d);
    return NULL;
}

int main(int argc, char **argv)
{
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    int one = 1;
    int relay = argc == 4 && strcmp(argv[3], "--relay") == 0;
    if (argc != 3 && !relay) {
        fputs("usage: connect_floor PORT UPSTREAM_PORT [--relay]\n", stderr);
        return 2;
    }
    struct sockaddr_in me = loopback(argv[1]), up = loopback(argv[2]);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(l, (struct sockaddr *)&me, sizeof(me)) < 0 || listen(l, 128) < 0) {
        perror("bind/listen");
        return 1;
    }
    for (;;) {
        char buf[2048];
        int c = accept(l, NULL, NULL);
        if (c < 0)
            continue;
        int u = -1, ok_sent = 0;
        if (read(c, buf, sizeof(buf)) > 0 && (u = socket(AF_INET, SOCK_STREAM, 0)) >= 0 &&
            connect(u, (struct sockaddr *)&up, sizeof(up)) == 0) {
            if (write(c, ok, sizeof(ok) - 1) == (ssize_t)sizeof(ok) - 1)
                ok_sent = 1;
            else
                perror("write");
        }
        struct dir *d = relay && ok_sent ? malloc(sizeof(*d)) : NULL;
        pthread_t t;
        if (d) {
            d->from = c;
            d->to = u;
            if (pthread_create(&t, NULL, tunnel, d) == 0) {
                pthread_detach(t);
                continue;
            }
            free(d);
        }
        close(c);
        if (u >= 0)
            close(u);
    }
}
