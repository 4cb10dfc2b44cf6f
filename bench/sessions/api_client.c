/* The latency client of bench/sessions: one kept-alive HTTP/1.1
 * connection to airlockd, as a client library in a compiled language
 * would hold one, so that the figures are the daemon's and not a Python
 * client's (http.client and json cost ~0.4 ms per call on this machine).
 *
 *   api_client PORT creates N       create -> first output, N times
 *   api_client PORT execs N SESSION exec round trips of `true`, N times,
 *                                   each followed by a host spawn
 *
 * The API key comes from $AIRLOCK_API_KEY (not argv, which ps shows).
 * creates: POST /v1/sessions, then at once POST .../exec {"argv":["echo",
 * "x"]}, timed until the decoded NDJSON holds a stdout line; then DELETE.
 * execs: POST .../exec {"argv":["true"]} until the chunked response ends
 * (its exit line must say code 0), back to back (whatever the daemon does
 * after a response competes with the next request, as it would for a busy
 * client), in blocks of BLOCK alternating with blocks of posix_spawn +
 * waitpid of /usr/bin/true from this process: the baseline sees the same
 * machine, whose speed drifts, minute by minute. Prints one line per
 * sample: "create MS", or "exec MS" and "host MS". Exits 1 with a message
 * on any unexpected answer.
 * Built by bench/sessions/run. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define BUF_MAX (1 << 20)
#define WARMUP  20
#define BLOCK   25

static int sock = -1;
static const char *key;
static char raw[BUF_MAX]; /* bytes read, not yet consumed */
static size_t raw_len;
static char body[BUF_MAX]; /* the current response's decoded body */
static size_t body_len;

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("api_client: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void send_request(const char *method, const char *path, const char *json)
{
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, key, json ? strlen(json) : 0, json ? json : "");
    if (n < 0 || (size_t)n >= sizeof(req))
        die("request too long");
    for (int off = 0; off < n;) {
        ssize_t w = write(sock, req + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write: %s", strerror(errno));
        off += (int)w;
    }
}

/* Reads more bytes into raw[]; dies at end of stream. */
static void fill(void)
{
    if (raw_len == sizeof(raw))
        die("response larger than %d bytes", BUF_MAX);
    ssize_t r;
    while ((r = read(sock, raw + raw_len, sizeof(raw) - raw_len)) < 0 && errno == EINTR)
        ;
    if (r <= 0)
        die("connection closed by airlockd");
    raw_len += (size_t)r;
}

static void consume(size_t n)
{
    memmove(raw, raw + n, raw_len - n);
    raw_len -= n;
}

/* Reads one response into body[]. When `marker` is given, *seen gets the
 * time the decoded body first contains it. Returns the status code. */
static int read_response(const char *marker, double *seen)
{
    char *end;
    while (!(end = memmem(raw, raw_len, "\r\n\r\n", 4)))
        fill();
    size_t hlen = (size_t)(end - raw) + 4;
    int status = 0;
    if (sscanf(raw, "HTTP/1.1 %d", &status) != 1)
        die("not an HTTP/1.1 response");
    int chunked = memmem(raw, hlen, "Transfer-Encoding: chunked", 26) != NULL;
    char *cl = memmem(raw, hlen, "Content-Length: ", 16);
    size_t length = cl ? strtoul(cl + 16, NULL, 10) : 0;
    consume(hlen);
    body_len = 0;
    if (!chunked) {
        if (length >= sizeof(body))
            die("body of %zu bytes", length);
        while (raw_len < length)
            fill();
        memcpy(body, raw, length);
        body_len = length;
        body[body_len] = 0;
        consume(length);
        return status;
    }
    for (;;) {
        char *crlf;
        while (!(crlf = memmem(raw, raw_len, "\r\n", 2)))
            fill();
        size_t size = strtoul(raw, NULL, 16);
        size_t head = (size_t)(crlf - raw) + 2;
        if (size >= sizeof(body) - body_len)
            die("chunked body too large");
        while (raw_len < head + size + 2)
            fill();
        memcpy(body + body_len, raw + head, size);
        body_len += size;
        body[body_len] = 0;
        consume(head + size + 2);
        if (marker && *seen == 0 && strstr(body, marker))
            *seen = now_ms();
        if (size == 0)
            return status;
    }
}

static void connect_to(const char *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)strtoul(port, NULL, 10))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect to 127.0.0.1:%s: %s", port, strerror(errno));
}

static double create_then_echo(void)
{
    double t0 = now_ms(), seen = 0;
    send_request("POST", "/v1/sessions", "{}");
    if (read_response(NULL, NULL) != 201)
        die("create: %s", body);
    char *id = strstr(body, "\"id\":\"");
    char sid[64], path[128];
    if (!id || sscanf(id + 6, "%63[^\"]", sid) != 1)
        die("create: no id in %s", body);
    snprintf(path, sizeof(path), "/v1/sessions/%s/exec", sid);
    send_request("POST", path, "{\"argv\":[\"echo\",\"x\"]}");
    if (read_response("\"type\":\"stdout\"", &seen) != 200 || seen == 0)
        die("exec of echo x: %s", body);
    snprintf(path, sizeof(path), "/v1/sessions/%s", sid);
    send_request("DELETE", path, NULL);
    if (read_response(NULL, NULL) != 200)
        die("delete: %s", body);
    return seen - t0;
}

static double exec_true(const char *path)
{
    double t0 = now_ms();
    send_request("POST", path, "{\"argv\":[\"true\"]}");
    int status = read_response(NULL, NULL);
    double t = now_ms() - t0;
    if (status != 200 || !strstr(body, "\"type\":\"exit\",\"code\":0,"))
        die("exec of true: %d %s", status, body);
    return t;
}

static double host_true(void)
{
    char *argv[] = {"/usr/bin/true", NULL};
    double t0 = now_ms();
    pid_t pid;
    int st;
    if ((errno = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ)) != 0)
        die("posix_spawn: %s", strerror(errno));
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return now_ms() - t0;
}

int main(int argc, char **argv)
{
    key = getenv("AIRLOCK_API_KEY");
    long n = argc >= 4 ? strtol(argv[3], NULL, 10) : 0;
    int creates = argc == 4 && strcmp(argv[2], "creates") == 0;
    int execs = argc == 5 && strcmp(argv[2], "execs") == 0;
    if (!key || n <= 0 || (!creates && !execs) || (execs && strlen(argv[4]) > 64)) {
        fprintf(stderr, "usage: AIRLOCK_API_KEY=KEY api_client PORT creates N\n"
                        "       AIRLOCK_API_KEY=KEY api_client PORT execs N SESSION\n");
        return 2;
    }
    connect_to(argv[1]);
    if (creates) {
        for (long i = 0; i < n; i++)
            printf("create %.4f\n", create_then_echo());
        return 0;
    }
    char path[128];
    snprintf(path, sizeof(path), "/v1/sessions/%s/exec", argv[4]);
    for (int i = 0; i < WARMUP; i++) {
        exec_true(path);
        host_true();
    }
    for (long i = 0; i < n; i += BLOCK) {
        long m = n - i < BLOCK ? n - i : BLOCK;
        for (long j = 0; j < m; j++)
            printf("exec %.4f\n", exec_true(path));
        for (long j = 0; j < m; j++)
            printf("host %.4f\n", host_true());
    }
    return 0;
}
