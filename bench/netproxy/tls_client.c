/* tls_client: the HTTPS client of bench/netproxy/tls_term. The same code
 * for every path: it opens a TCP connection to --addr, optionally asks for
 * a tunnel there (--connect HOST:PORT: "CONNECT HOST:PORT", waits for the
 * 2xx), does a TLS handshake (SNI and certificate name --name, trust
 * --ca, ALPN http/1.1, no session resumption), then sends keep-alive
 * "GET PATH" requests with "Authorization: AUTH" and reads each response
 * (Content-Length or chunked) before the next one. A response that is not
 * 200 or a connection that breaks counts as an error.
 *
 * Two modes:
 *   keep-alive (default): --conns C threads, each with one connection, all
 *     set up before timing starts; then each sends requests for --secs S
 *     seconds, one at a time. Prints
 *       "requests N errors E secs T rps R p50 P50 p99 P99" (latency in µs)
 *     and, with --lat FILE, every request's latency (µs) one per line.
 *   --new N: N new connections one after another, each: connect, CONNECT,
 *     handshake, one request, its response, close. Prints
 *       "conns N errors E p50 P50 p99 P99 hs_p50 H" (µs; hs = until the
 *     handshake is done) and, with --lat FILE, "total_us hs_us" per
 *     connection. --name may hold one "%d": connection i uses the name with
 *     i + --first (so each connection can go to a host never seen before).
 *
 *   tls_client --addr IP:PORT [--connect HOST:PORT] --name NAME --ca FILE
 *              [--path /p] [--auth "Bearer X"] [--conns C --secs S | --new N
 *              [--first K]] [--lat FILE]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in g_addr;
static const char *g_connect; /* tunnel target "HOST:PORT" or NULL */
static const char *g_name;    /* SNI and certificate name (may hold %d) */
static const char *g_path = "/";
static const char *g_auth;
static const char *g_host_hdr; /* Host header (default: --connect, else --name) */
static SSL_CTX *g_ctx;
static double g_secs = 5;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

struct conn {
    int fd;
    SSL *ssl;
    char buf[16384];
    size_t off, len; /* unread bytes buf[off..len) */
};

static void conn_close(struct conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

/* Reads more bytes into c->buf (compacting it first). 0 or -1. */
static int fill(struct conn *c)
{
    if (c->off > 0) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->len == sizeof(c->buf))
        return -1;
    int n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 0;
}

/* Reads one line (without CRLF) into line[size]. 0 or -1. */
static int read_line(struct conn *c, char *line, size_t size)
{
    for (;;) {
        char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
        if (nl) {
            size_t n = (size_t)(nl - (c->buf + c->off));
            if (n > 0 && c->buf[c->off + n - 1] == '\r')
                n--;
            if (n >= size)
                return -1;
            memcpy(line, c->buf + c->off, n);
            line[n] = '\0';
            c->off = (size_t)(nl - c->buf) + 1;
            return 0;
        }
        if (fill(c) < 0)
            return -1;
    }
}

static int skip_bytes(struct conn *c, size_t n)
{
    while (n > 0) {
        if (c->off == c->len && fill(c) < 0)
            return -1;
        size_t k = c->len - c->off < n ? c->len - c->off : n;
        c->off += k;
        n -= k;
    }
    return 0;
}

/* Reads one response; returns its status, or -1 when the connection broke
 * or the response cannot be framed. */
static int read_response(struct conn *c)
{
    char line[8192];
    int status = -1, chunked = 0;
    long long clen = -1;

    if (read_line(c, line, sizeof(line)) < 0 || strncmp(line, "HTTP/1.", 7) != 0 ||
        strlen(line) < 12)
        return -1;
    status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    for (;;) {
        if (read_line(c, line, sizeof(line)) < 0)
            return -1;
        if (line[0] == '\0')
            break;
        if (strncasecmp(line, "content-length:", 15) == 0)
            clen = strtoll(line + 15, NULL, 10);
        else if (strncasecmp(line, "transfer-encoding:", 18) == 0 && strcasestr(line, "chunked"))
            chunked = 1;
    }
    if (chunked) {
        for (;;) {
            if (read_line(c, line, sizeof(line)) < 0)
                return -1;
            long long n = strtoll(line, NULL, 16);
            if (n < 0)
                return -1;
            if (n == 0) { /* trailers until the blank line */
                do {
                    if (read_line(c, line, sizeof(line)) < 0)
                        return -1;
                } while (line[0] != '\0');
                break;
            }
            if (skip_bytes(c, (size_t)n) < 0 || read_line(c, line, sizeof(line)) < 0)
                return -1;
        }
    } else if (clen >= 0) {
        if (skip_bytes(c, (size_t)clen) < 0)
            return -1;
    } else {
        return -1; /* no framing: a keep-alive client cannot use it */
    }
    return status;
}

/* Sends one request and reads its response: 0 for a 200, else -1. */
static int request(struct conn *c, const char *host)
{
    char req[4096];
    int n = snprintf(
        req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n%s%s%sUser-Agent: tls_client\r\n\r\n",
        g_path, host, g_auth ? "Authorization: " : "", g_auth ? g_auth : "", g_auth ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(req))
        return -1;
    if (SSL_write(c->ssl, req, n) != n)
        return -1;
    return read_response(c) == 200 ? 0 : -1;
}

/* Opens a connection for `name` (SNI, certificate name, and the CONNECT
 * host when --connect's host is "%"): TCP, CONNECT, TLS. *hs_us (if not
 * NULL) gets the time from start to the finished handshake. 0 or -1. */
static int conn_open(struct conn *c, const char *name, const char *connect_to, double t0,
                     double *hs_us)
{
    int one = 1;
    c->fd = -1;
    c->ssl = NULL;
    c->off = c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&g_addr, sizeof(g_addr)) < 0)
        goto fail;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect_to) {
        char req[1024], resp[1024];
        size_t got = 0;
        int n = snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", connect_to,
                         connect_to);
        if (n < 0 || (size_t)n >= sizeof(req) || write(c->fd, req, (size_t)n) != n)
            goto fail;
        /* read the proxy's answer byte by byte up to the blank line, so no
         * TLS byte that follows is taken */
        while (got < 4 || memcmp(resp + got - 4, "\r\n\r\n", 4) != 0) {
            if (got == sizeof(resp) - 1 || read(c->fd, resp + got, 1) != 1)
                goto fail;
            got++;
        }
        resp[got] = '\0';
        if (strncmp(resp, "HTTP/1.1 2", 10) != 0 && strncmp(resp, "HTTP/1.0 2", 10) != 0)
            goto fail;
    }
    c->ssl = SSL_new(g_ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
        goto fail;
    struct in_addr ia;
    if (inet_pton(AF_INET, name, &ia) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name);
    } else {
        SSL_set_tlsext_host_name(c->ssl, name);
        SSL_set1_host(c->ssl, name);
    }
    if (SSL_connect(c->ssl) != 1)
        goto fail;
    if (hs_us)
        *hs_us = now_us() - t0;
    return 0;
fail:
    if (getenv("TLS_CLIENT_DEBUG"))
        ERR_print_errors_fp(stderr);
    conn_close(c);
    return -1;
}

struct worker {
    pthread_t th;
    struct conn c;
    int ok;
    double *lat;
    size_t n, cap;
    long errors;
    pthread_barrier_t *ready;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const char *host = g_host_hdr ? g_host_hdr : g_connect ? g_connect : g_name;
    w->ok = conn_open(&w->c, g_name, g_connect, now_us(), NULL) == 0;
    /* one request before timing: the proxies may open their upstream
     * connection only at the first request */
    if (w->ok && request(&w->c, host) < 0)
        w->ok = 0;
    pthread_barrier_wait(w->ready);
    double end = now_us() + g_secs * 1e6;
    while (w->ok) {
        double t = now_us();
        if (t >= end)
            break;
        if (request(&w->c, host) < 0) {
            w->errors++;
            break; /* the connection is unusable now */
        }
        double d = now_us() - t;
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 65536;
            double *p = realloc(w->lat, cap * sizeof(*p));
            if (!p)
                break;
            w->lat = p;
            w->cap = cap;
        }
        w->lat[w->n++] = d;
    }
    conn_close(&w->c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static int run_keepalive(int conns, const char *lat_file)
{
    struct worker *w = calloc((size_t)conns, sizeof(*w));
    pthread_barrier_t ready;
    long errors = 0;
    size_t total = 0;

    if (!w)
        return 1;
    pthread_barrier_init(&ready, NULL, (unsigned)conns + 1);
    for (int i = 0; i < conns; i++) {
        w[i].ready = &ready;
        pthread_create(&w[i].th, NULL, worker_main, &w[i]);
    }
    pthread_barrier_wait(&ready);
    double t0 = now_us();
    for (int i = 0; i < conns; i++) {
        pthread_join(w[i].th, NULL);
        errors += w[i].errors + !w[i].ok;
        total += w[i].n;
    }
    double secs = (now_us() - t0) / 1e6;
    double *all = malloc((total ? total : 1) * sizeof(*all));
    size_t k = 0;
    for (int i = 0; i < conns; i++) {
        if (w[i].n)
            memcpy(all + k, w[i].lat, w[i].n * sizeof(*all));
        k += w[i].n;
        free(w[i].lat);
    }
    if (lat_file) {
        FILE *f = fopen(lat_file, "w");
        for (size_t i = 0; f && i < total; i++)
            fprintf(f, "%.1f\n", all[i]);
        if (f)
            fclose(f);
    }
    qsort(all, total, sizeof(*all), cmp_double);
    printf("requests %zu errors %ld secs %.3f rps %.0f p50 %.1f p99 %.1f\n", total, errors, secs,
           (double)total / secs, pct(all, total, 0.5), pct(all, total, 0.99));
    free(all);
    free(w);
    pthread_barrier_destroy(&ready);
    return errors ? 2 : 0;
}

/* out = pattern with its first "%d" replaced by i (pattern unchanged
 * when it has none). */
static void with_number(char *out, size_t size, const char *pattern, int i)
{
    const char *p = strstr(pattern, "%d");
    if (!p)
        snprintf(out, size, "%s", pattern);
    else
        snprintf(out, size, "%.*s%d%s", (int)(p - pattern), pattern, i, p + 2);
}

/* --connect HOST:PORT where HOST may hold the same "%d" as --name. */
static int run_new(int n, int first, const char *lat_file)
{
    double *tot = calloc((size_t)n, sizeof(double)), *hs = calloc((size_t)n, sizeof(double));
    FILE *f = lat_file ? fopen(lat_file, "w") : NULL;
    long errors = 0;
    int k = 0;

    for (int i = 0; i < n; i++) {
        char name[256], target[300], hosthdr[300];
        struct conn c;
        with_number(name, sizeof(name), g_name, i + first);
        if (g_connect)
            with_number(target, sizeof(target), g_connect, i + first);
        snprintf(hosthdr, sizeof(hosthdr), "%s",
                 g_host_hdr  ? g_host_hdr
                 : g_connect ? target
                             : name);
        double t0 = now_us(), h = 0;
        if (conn_open(&c, name, g_connect ? target : NULL, t0, &h) < 0 ||
            request(&c, hosthdr) < 0) {
            errors++;
            conn_close(&c);
            continue;
        }
        double t = now_us() - t0;
        conn_close(&c);
        tot[k] = t;
        hs[k] = h;
        k++;
        if (f)
            fprintf(f, "%.1f %.1f\n", t, h);
    }
    if (f)
        fclose(f);
    qsort(tot, (size_t)k, sizeof(double), cmp_double);
    qsort(hs, (size_t)k, sizeof(double), cmp_double);
    printf("conns %d errors %ld p50 %.1f p99 %.1f hs_p50 %.1f\n", k, errors,
           pct(tot, (size_t)k, 0.5), pct(tot, (size_t)k, 0.99), pct(hs, (size_t)k, 0.5));
    free(tot);
    free(hs);
    return errors ? 2 : 0;
}

static void usage(void)
{
    fputs("usage: tls_client --addr IP:PORT [--connect HOST:PORT] --name NAME --ca FILE\n"
          "                  [--path /p] [--auth VALUE] [--host HOST]\n"
          "                  [--conns C] [--secs S] | [--new N [--first K]]  [--lat FILE]\n",
          stderr);
    exit(64);
}

int main(int argc, char **argv)
{
    const char *ca = NULL, *addr = NULL, *lat = NULL;
    int conns = 1, new_conns = 0, first = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--addr"))
            addr = v;
        else if (!strcmp(a, "--connect"))
            g_connect = v;
        else if (!strcmp(a, "--name"))
            g_name = v;
        else if (!strcmp(a, "--ca"))
            ca = v;
        else if (!strcmp(a, "--path"))
            g_path = v;
        else if (!strcmp(a, "--auth"))
            g_auth = v;
        else if (!strcmp(a, "--host"))
            g_host_hdr = v;
        else if (!strcmp(a, "--conns"))
            conns = (int)strtol(v, NULL, 10);
        else if (!strcmp(a, "--secs"))
            g_secs = strtod(v, NULL);
        else if (!strcmp(a, "--new"))
            new_conns = (int)strtol(v, NULL, 10);
        else if (!strcmp(a, "--first"))
            first = (int)strtol(v, NULL, 10);
        else if (!strcmp(a, "--lat"))
            lat = v;
        else
            usage();
    }
    if (!addr || !g_name || !ca || conns < 1)
        usage();
    char ip[64];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(ip))
        usage();
    memcpy(ip, addr, (size_t)(colon - addr));
    ip[colon - addr] = '\0';
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)strtol(colon + 1, NULL, 10));
    if (inet_pton(AF_INET, ip, &g_addr.sin_addr) != 1)
        usage();

    g_ctx = SSL_CTX_new(TLS_client_method());
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    if (!g_ctx || SSL_CTX_load_verify_locations(g_ctx, ca, NULL) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_verify(g_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_min_proto_version(g_ctx, TLS1_2_VERSION);
    SSL_CTX_set_alpn_protos(g_ctx, alpn, sizeof(alpn));
    /* every connection does a full handshake: no session cache, no tickets */
    SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(g_ctx, SSL_OP_NO_TICKET);

    int rc = new_conns > 0 ? run_new(new_conns, first, lat) : run_keepalive(conns, lat);
    SSL_CTX_free(g_ctx);
    return rc;
}
