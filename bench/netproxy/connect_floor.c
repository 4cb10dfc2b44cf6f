/* The least an HTTP CONNECT proxy can do, as a latency floor for
 * bench/netproxy: accept one client at a time (blocking), read its request
 * without parsing it, connect to the fixed upstream 127.0.0.1:UPSTREAM,
 * answer "200", close both. No policy, no event loop, no relay.
 *   connect_floor PORT UPSTREAM_PORT        (built by bench/netproxy/run) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in loopback(const char *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)strtoul(port, NULL, 10))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

int main(int argc, char **argv)
{
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    int one = 1;
    if (argc != 3) {
        fputs("usage: connect_floor PORT UPSTREAM_PORT\n", stderr);
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
        int u = -1;
        if (read(c, buf, sizeof(buf)) > 0 && (u = socket(AF_INET, SOCK_STREAM, 0)) >= 0 &&
            connect(u, (struct sockaddr *)&up, sizeof(up)) == 0 && write(c, ok, sizeof(ok) - 1) < 0)
            perror("write");
        close(c);
        if (u >= 0)
            close(u);
    }
}
