/* The key holder's side of one connection (netproxy/src/kh_conn.c)
 * against a lying front, over real sockets: a TLS upstream on loopback
 * (certificates for api.test and evil.test from a test CA, given to the
 * key holder as extra trust anchors), a SOCK_SEQPACKET pair, and
 * np_kh_conn_serve on a thread. The test plays the front. Each lie must
 * end with an ERROR and not one byte of a request (let alone a real value)
 * written upstream; the honest request gets the value put back and its
 * echo re-masked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "kh_conn.h"
#include "tls_ca.h"

#include "airlock/error.h"
#include "airlock/netproxy.h"

#define REAL_A "ghp_R3alValueAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define SENT_A "ghp_s3ntinelQQQQQQQQQQQQQQQQQQQQQQQQQQQ9"
#define REAL_B "npm_R3alValueBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
#define SENT_B "npm_s3ntinelZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"

static struct np_kh_sessions *g_ks;
static struct np_tls *g_up_ca; /* mints the upstream's certificates */
static const char *g_session = "s1";
static uint8_t g_open_flags = NP_KH_OPEN_TLS;

/* --- the upstream: one TLS connection, what it read recorded --- */

struct upstream {
    int lfd;
    uint16_t port;
    SSL_CTX *ctx;
    pthread_t t;
    char got[65536]; /* decrypted request bytes */
    size_t got_len;
    bool handshake_ok;
};

static void *upstream_main(void *arg)
{
    struct upstream *u = arg;
    int fd = accept(u->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(u->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        u->handshake_ok = true;
        for (;;) {
            int n = SSL_read(ssl, u->got + u->got_len, (int)(sizeof(u->got) - 1 - u->got_len));
            if (n <= 0)
                break;
            u->got_len += (size_t)n;
            u->got[u->got_len] = '\0';
            if (strstr(u->got, "\r\n\r\n")) {
                /* echo what came in the Authorization header (a real
                 * value, which must not reach the front) */
                char body[512];
                const char *a = strstr(u->got, "Authorization: ");
                int bl = snprintf(body, sizeof(body), "auth=%.*s", a ? 50 : 0, a ? a + 15 : "");
                char resp[1024];
                int rl = snprintf(resp, sizeof(resp),
                                  "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", bl, body);
                SSL_write(ssl, resp, rl);
                break;
            }
        }
        /* wait for the key holder to close */
        char b[256];
        while (SSL_read(ssl, b, sizeof(b)) > 0)
            ;
    }
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static void upstream_start(struct upstream *u, const char *name)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    memset(u, 0, sizeof(*u));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    u->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(u->lfd >= 0);
    assert_int_equal(bind(u->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(u->lfd, 4), 0);
    assert_int_equal(getsockname(u->lfd, (struct sockaddr *)&a, &al), 0);
    u->port = ntohs(a.sin_port);
    u->ctx = np_tls_server_ctx(g_up_ca, name, false);
    assert_non_null(u->ctx);
    assert_int_equal(pthread_create(&u->t, NULL, upstream_main, u), 0);
}

static void upstream_end(struct upstream *u)
{
    pthread_join(u->t, NULL);
    SSL_CTX_free(u->ctx);
    close(u->lfd);
}

/* --- the key holder on a thread --- */

struct khrun {
    struct np_kh_msg open;
    int pair_fd, up_fd;
    pthread_t t;
    int rc;
};

static void *kh_main(void *arg)
{
    struct khrun *r = arg;
    r->rc = np_kh_conn_serve(g_ks, &r->open, r->pair_fd, r->up_fd);
    return NULL;
}

/* Connects to the upstream on `port`, opens the connection to the key
 * holder as `host`; returns the front's end of the pair. */
static int front_open(struct khrun *r, const char *host, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int sv[2];
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(r, 0, sizeof(*r));
    r->up_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(r->up_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(np_kh_pair(sv), 0);
    r->pair_fd = sv[1];
    r->open.type = NP_KH_OPEN;
    snprintf(r->open.session, sizeof(r->open.session), "%s", g_session);
    snprintf(r->open.host, sizeof(r->open.host), "%s", host);
    r->open.port = port;
    r->open.flags = g_open_flags;
    assert_int_equal(pthread_create(&r->t, NULL, kh_main, r), 0);
    return sv[0];
}

static void send_req(int fd, const char *head)
{
    uint8_t *buf = malloc(NP_KH_MSG_MAX);
    struct np_kh_msg m = {.type = NP_KH_REQ_HEAD,
                          .framing = NP_KH_FRAME_NONE,
                          .data = (const uint8_t *)head,
                          .data_len = strlen(head)};
    struct np_kh_msg end = {.type = NP_KH_BODY_END};
    assert_non_null(buf);
    assert_int_equal(np_kh_send(fd, buf, &m, NULL, 0), 0);
    assert_int_equal(np_kh_send(fd, buf, &end, NULL, 0), 0);
    free(buf);
}

/* Reads what the key holder answers until RESP_END, ERROR or the end:
 * every message's bytes appended to `all`; the ERROR's status and token. */
static void read_answer(int fd, char *all, size_t cap, int *err_status, char *err_token)
{
    uint8_t *buf = malloc(NP_KH_MSG_MAX);
    size_t len = 0;
    assert_non_null(buf);
    *err_status = 0;
    all[0] = '\0';
    for (;;) {
        struct np_kh_msg m;
        int fds[2];
        size_t nfds = 0;
        if (np_kh_recv(&m, fd, buf, NP_KH_FROM_KEYHOLDER, fds, &nfds, 20000) != 0)
            break;
        if (m.data_len && len + m.data_len < cap) {
            memcpy(all + len, m.data, m.data_len);
            len += m.data_len;
            all[len] = '\0';
        }
        if (m.type == NP_KH_ERROR) {
            *err_status = m.status;
            snprintf(err_token, NP_KH_TOKEN_MAX + 1, "%s", m.error);
            /* the error text must not carry a value either */
            assert_null(strstr(m.why, REAL_A));
            assert_null(strstr(m.why, REAL_B));
            break;
        }
        if (m.type == NP_KH_RESP_END)
            break;
    }
    free(buf);
}

/* One whole exchange: a front that says `host`, an upstream presenting a
 * certificate for `cert_name`, the request head `head`. */
static void exchange(const char *host, const char *cert_name, const char *head, char *answer,
                     size_t cap, int *err_status, char *err_token, struct upstream *u)
{
    struct khrun r;
    upstream_start(u, cert_name);
    int fd = front_open(&r, host, u->port);
    send_req(fd, head);
    read_answer(fd, answer, cap, err_status, err_token);
    close(fd);
    pthread_join(r.t, NULL);
    upstream_end(u);
}

static int setup(void **state)
{
    (void)state;
    char *up_cert = NULL, *up_key = NULL, *s_cert = NULL, *s_key = NULL;
    struct al_credset set = {0};
    struct al_strlist api = {0}, other = {0};

    signal(SIGPIPE, SIG_IGN); /* the upstream thread writes to closed sockets */
    assert_int_equal(np_ca_generate(&up_cert, &up_key, "kh_conn test upstream CA"), 0);
    assert_int_equal(np_tls_new(&g_up_ca, up_cert, up_key, NULL), 0);
    assert_int_equal(np_ca_generate(&s_cert, &s_key, "kh_conn test session CA"), 0);
    al_strlist_push(&api, "api.test");
    al_strlist_push(&other, "other.test");
    assert_int_equal(al_credset_add(&set, "A", REAL_A, strlen(REAL_A), &api, SENT_A), 0);
    assert_int_equal(al_credset_add(&set, "B", REAL_B, strlen(REAL_B), &other, SENT_B), 0);
    assert_int_equal(np_kh_sessions_new(&g_ks), 0);
    /* the upstream's CA as the session's extra trust anchor */
    assert_int_equal(np_kh_sessions_put(g_ks, "s1", &set, s_cert, s_key, up_cert), 0);
    al_credset_free(&set);
    al_strlist_free(&api);
    al_strlist_free(&other);
    free(up_cert);
    free(up_key);
    free(s_cert);
    free(s_key);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    np_kh_sessions_free(g_ks);
    np_tls_unref(g_up_ca);
    return 0;
}

/* The honest front: the value goes in, its echo comes back re-masked. */
static void honest_request(void **state)
{
    (void)state;
    struct upstream u;
    char answer[8192], token[NP_KH_TOKEN_MAX + 1] = "";
    int st;
    exchange("api.test", "api.test",
             "GET /x HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " SENT_A "\r\n\r\n",
             answer, sizeof(answer), &st, token, &u);
    assert_int_equal(st, 0);
    assert_non_null(strstr(u.got, "Authorization: Bearer " REAL_A "\r\n"));
    assert_null(strstr(u.got, SENT_A));
    assert_non_null(strstr(answer, "HTTP/1.1 200 OK\r\n"));
    assert_null(strstr(answer, "Content-Length")); /* the front frames the body */
    assert_non_null(strstr(answer, "auth=Bearer " SENT_A));
    assert_null(strstr(answer, REAL_A));
}

/* Each lie: ERROR `status` / `token`, and the upstream read nothing. */
static void lie(const char *host, const char *cert_name, const char *head, int status,
                const char *token)
{
    struct upstream u;
    char answer[8192], got_token[NP_KH_TOKEN_MAX + 1] = "";
    int st;
    exchange(host, cert_name, head, answer, sizeof(answer), &st, got_token, &u);
    assert_int_equal(st, status);
    assert_string_equal(got_token, token);
    assert_int_equal(u.got_len, 0);
    assert_null(strstr(u.got, REAL_A));
    assert_null(strstr(u.got, REAL_B));
    assert_null(strstr(answer, REAL_A));
    assert_null(strstr(answer, REAL_B));
}

/* A Host other than the OPEN host (a server behind a shared address picks
 * the site by it). */
static void wrong_host(void **state)
{
    (void)state;
    lie("api.test", "api.test",
        "GET / HTTP/1.1\r\nHost: other.test\r\nAuthorization: Bearer " SENT_A "\r\n\r\n", 400,
        "bad-request");
}

/* A framing header of the front's own (smuggling a second request). */
static void framing_header(void **state)
{
    (void)state;
    lie("api.test", "api.test",
        "POST / HTTP/1.1\r\nHost: api.test\r\nContent-Length: 0\r\nAuthorization: Bearer " SENT_A
        "\r\n\r\n",
        400, "bad-request");
}

/* A sentinel of a credential that may not go to this host (B is for
 * other.test): the key holder's own mask refuses it. */
static void non_inject_sentinel(void **state)
{
    (void)state;
    lie("api.test", "api.test",
        "GET / HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " SENT_B "\r\n\r\n", 403,
        "credential-not-allowed-here");
}

/* OPEN names the inject host, the socket goes to another server (a valid
 * certificate, for evil.test): the certificate check fails before a byte. */
static void socket_to_another_address(void **state)
{
    (void)state;
    lie("api.test", "evil.test",
        "GET / HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " SENT_A "\r\n\r\n", 502,
        "upstream-certificate");
}

/* An OPEN without TLS (plain HTTP: no certificate binds the value to the
 * name) for a session that does not allow credentials on plain HTTP: the
 * front's word is not enough. */
static void plain_not_allowed(void **state)
{
    (void)state;
    g_open_flags = 0;
    lie("api.test", "api.test",
        "GET / HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " SENT_A "\r\n\r\n", 403,
        "credential-not-allowed-here");
    g_open_flags = NP_KH_OPEN_TLS;
}

/* A session the key holder does not know (or removed): nothing is
 * written upstream. */
static void unknown_session(void **state)
{
    (void)state;
    g_session = "nope";
    lie("api.test", "api.test",
        "GET / HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " SENT_A "\r\n\r\n", 502,
        "keyholder-no-session");
    g_session = "s1";
}

/* The connections socket: a message that is not an OPEN is dropped and
 * the socket stays usable; an OPEN is served (here: an unknown session's
 * ERROR comes back on its pair); the front closing ends it. */
static void accept_one(void **state)
{
    (void)state;
    int conns[2], sv[2], up[2];
    uint8_t *buf = malloc(NP_KH_MSG_MAX);
    assert_non_null(buf);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, conns), 0);
    struct np_kh_msg end = {.type = NP_KH_BODY_END};
    assert_int_equal(np_kh_send(conns[0], buf, &end, NULL, 0), 0);
    assert_int_equal(np_kh_accept_one(g_ks, conns[1], 1000), 0);
    /* an OPEN whose "upstream" is not a TCP socket: refused on its pair */
    assert_int_equal(np_kh_pair(sv), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, up), 0);
    struct np_kh_msg open = {.type = NP_KH_OPEN, .port = 443, .flags = NP_KH_OPEN_TLS};
    snprintf(open.session, sizeof(open.session), "s1");
    snprintf(open.host, sizeof(open.host), "api.test");
    int fds[2] = {up[0], sv[1]};
    assert_int_equal(np_kh_send(conns[0], buf, &open, fds, 2), 0);
    close(up[0]);
    close(sv[1]);
    assert_int_equal(np_kh_accept_one(g_ks, conns[1], 1000), 0);
    struct np_kh_msg m;
    int got[2];
    size_t n = 0;
    assert_int_equal(np_kh_recv(&m, sv[0], buf, NP_KH_FROM_KEYHOLDER, got, &n, 20000), 0);
    assert_int_equal(m.type, NP_KH_ERROR);
    assert_int_equal(m.status, 502);
    close(sv[0]);
    close(up[1]);
    close(conns[0]);
    assert_int_equal(np_kh_accept_one(g_ks, conns[1], 1000), 1);
    close(conns[1]);
    free(buf);
}

/* The front of a split proxy keeps no value: credential sets given after
 * np_proxy_set_keyholder are sentinel-only (each "real value" is its
 * sentinel), and the switch is refused once a session has credentials. */
static void front_keeps_no_value(void **state)
{
    (void)state;
    struct np_config cfg;
    np_proxy *p = NULL;
    struct al_credset set = {0};
    struct al_strlist api = {0};
    int conns[2];

    np_config_init(&cfg);
    al_strlist_push(&api, "api.test");
    assert_int_equal(al_credset_add(&set, "A", REAL_A, strlen(REAL_A), &api, SENT_A), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, conns), 0);
    assert_int_equal(np_proxy_new(&p, &cfg), 0);
    assert_int_equal(np_proxy_set_keyholder(p, conns[0]), 0);
    assert_int_equal(np_proxy_set_credentials(p, "s1", &set), 0);
    pthread_mutex_lock(&p->lock);
    struct np_session *s = np_session_get(p, "s1", false);
    assert_non_null(s);
    assert_non_null(s->creds);
    assert_int_equal(s->creds->set.len, 1);
    assert_int_equal(s->creds->set.v[0].real_len, strlen(SENT_A));
    assert_string_equal(s->creds->set.v[0].real, SENT_A);
    assert_string_equal(s->creds->set.v[0].sentinel, SENT_A);
    /* the inject mask still comes from the names */
    assert_int_equal(np_creds_inject_mask(s->creds, "api.test", false, 443), 1);
    pthread_mutex_unlock(&p->lock);
    np_proxy_free(p);

    /* after credentials: refused (they would hold values) */
    assert_int_equal(np_proxy_new(&p, &cfg), 0);
    assert_int_equal(np_proxy_set_credentials(p, "s1", &set), 0);
    assert_int_equal(np_proxy_set_keyholder(p, conns[0]), AL_EINVAL);
    np_proxy_free(p);
    close(conns[0]);
    close(conns[1]);
    al_credset_free(&set);
    al_strlist_free(&api);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(honest_request),       cmocka_unit_test(wrong_host),
        cmocka_unit_test(framing_header),       cmocka_unit_test(socket_to_another_address),
        cmocka_unit_test(non_inject_sentinel),  cmocka_unit_test(unknown_session),
        cmocka_unit_test(accept_one),           cmocka_unit_test(plain_not_allowed),
        cmocka_unit_test(front_keeps_no_value),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
