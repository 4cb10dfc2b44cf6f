#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "airlock/ctlmsg.h"
#include "airlock/error.h"

static int open_fd_count(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the DIR's own descriptor */
}

static void pair(int sv[2], int nonblock)
{
    assert_int_equal(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0, sv), 0);
}

/* Writes a raw frame: length header then body (no descriptors). */
static void raw_frame(int fd, uint32_t len, const char *body, size_t body_len)
{
    unsigned char h[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                          (unsigned char)(len >> 8), (unsigned char)len};
    assert_int_equal(write(fd, h, 4), 4);
    if (body_len)
        assert_int_equal(write(fd, body, body_len), (ssize_t)body_len);
}

static int recv_one(int fd, json_t **msg, int *fds, size_t *nfds)
{
    struct ctl_reader r;
    ctl_reader_init(&r);
    int err = ctl_recv(&r, fd, msg, fds, nfds);
    ctl_reader_clear(&r);
    return err;
}

static void roundtrip_with_descriptors(void **state)
{
    int sv[2], p[2], fds[CTL_FDS_MAX];
    size_t nfds;
    json_t *msg;
    pair(sv, 0);
    assert_int_equal(pipe(p), 0);
    json_t *m = ctl_msg_new("session_add");
    json_object_set_new(m, "seq", json_integer(7));
    json_object_set_new(m, "session", json_string("s1"));
    assert_int_equal(ctl_send(sv[0], m, &p[1], 1), 0);
    json_decref(m);
    assert_int_equal(recv_one(sv[1], &msg, fds, &nfds), 0);
    assert_string_equal(ctl_msg_type(msg), "session_add");
    assert_string_equal(json_string_value(json_object_get(msg, "session")), "s1");
    assert_int_equal(json_integer_value(json_object_get(msg, "seq")), 7);
    assert_int_equal(nfds, 1);
    assert_true(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
    assert_int_equal(write(fds[0], "x", 1), 1);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(c, 'x');
    close(fds[0]);
    close(p[0]);
    close(p[1]);
    json_decref(msg);
    close(sv[0]);
    close(sv[1]);
}

/* Two frames written back to back, each with its own descriptor: each
 * descriptor is handed out with its own frame. */
static void descriptors_stay_with_their_frame(void **state)
{
    int sv[2], a[2], b[2], fds[CTL_FDS_MAX];
    size_t nfds;
    json_t *msg;
    struct ctl_reader r;
    pair(sv, 1);
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    json_t *m1 = ctl_msg_new("one"), *m2 = ctl_msg_new("two"), *m3 = ctl_msg_new("three");
    assert_int_equal(ctl_send(sv[0], m1, &a[1], 1), 0);
    assert_int_equal(ctl_send(sv[0], m2, NULL, 0), 0);
    assert_int_equal(ctl_send(sv[0], m3, &b[1], 1), 0);
    ctl_reader_init(&r);
    const char *want[] = {"one", "two", "three"};
    int *pipes[] = {a, NULL, b};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ctl_recv(&r, sv[1], &msg, fds, &nfds), 0);
        assert_string_equal(ctl_msg_type(msg), want[i]);
        assert_int_equal(nfds, pipes[i] ? 1 : 0);
        if (pipes[i]) {
            char c;
            assert_int_equal(write(fds[0], "y", 1), 1);
            assert_int_equal(read(pipes[i][0], &c, 1), 1);
            close(fds[0]);
        }
        json_decref(msg);
    }
    assert_int_equal(ctl_recv(&r, sv[1], &msg, fds, &nfds), AL_EAGAIN);
    ctl_reader_clear(&r);
    json_decref(m1);
    json_decref(m2);
    json_decref(m3);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
    close(sv[0]);
    close(sv[1]);
}

/* A frame trickling in byte by byte on a non-blocking socket. */
static void partial_reads(void **state)
{
    int sv[2], fds[CTL_FDS_MAX];
    size_t nfds;
    json_t *msg = NULL;
    struct ctl_reader r;
    const char body[] = "{\"v\":1,\"type\":\"hello\",\"seq\":1}";
    unsigned char frame[64] = {0, 0, 0, (unsigned char)(sizeof(body) - 1)};
    memcpy(frame + 4, body, sizeof(body) - 1);
    pair(sv, 1);
    ctl_reader_init(&r);
    assert_int_equal(ctl_recv(&r, sv[1], &msg, fds, &nfds), AL_EAGAIN);
    for (size_t i = 0; i < sizeof(body) + 3; i++) {
        assert_int_equal(write(sv[0], frame + i, 1), 1);
        int err = ctl_recv(&r, sv[1], &msg, fds, &nfds);
        if (i + 1 < sizeof(body) + 3)
            assert_int_equal(err, AL_EAGAIN);
        else
            assert_int_equal(err, 0);
    }
    assert_string_equal(ctl_msg_type(msg), "hello");
    json_decref(msg);
    ctl_reader_clear(&r);
    close(sv[0]);
    close(sv[1]);
}

static void malformed_bodies(void **state)
{
    static const char *bad[] = {
        "garbage",
        "[1,2]",
        "{\"type\":\"hello\"}",
        "{\"v\":2,\"type\":\"hello\"}",
        "{\"v\":\"1\",\"type\":\"hello\"}",
        "{\"v\":1}",
        "{\"v\":1,\"type\":\"\"}",
        "{\"v\":1,\"type\":7}",
        "{\"v\":1,\"type\":\"x\",\"seq\":-1}",
        "{\"v\":1,\"type\":\"x\",\"seq\":\"1\"}",
        "{\"v\":1,\"type\":\"x\",\"fds\":9}",
        "{\"v\":1,\"type\":\"x\",\"fds\":-1}",
        "{\"v\":1,\"type\":\"x\",\"v\":1}",
        "{\"v\":1,\"type\":\"x\"} trailing",
        "{\"v\":1,\"type\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        "{\"v\":1,\"type\":\"x\"\0}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *msg = NULL;
        size_t len = strlen(bad[i]);
        if (i == sizeof(bad) / sizeof(bad[0]) - 1)
            len += 2;
        assert_int_equal(ctl_msg_parse(&msg, bad[i], len), AL_EINVAL);
        assert_null(msg);
    }
    json_t *ok = NULL;
    const char good[] = "{\"v\":1,\"type\":\"x\",\"seq\":0,\"fds\":8,\"extra\":[1]}";
    assert_int_equal(ctl_msg_parse(&ok, good, strlen(good)), 0);
    json_decref(ok);
}

static void bad_lengths(void **state)
{
    int sv[2], fds[CTL_FDS_MAX];
    size_t nfds;
    json_t *msg;
    pair(sv, 0);
    raw_frame(sv[0], CTL_FRAME_MAX + 1, NULL, 0);
    assert_int_equal(recv_one(sv[1], &msg, fds, &nfds), AL_ETOOBIG);
    close(sv[0]);
    close(sv[1]);
    pair(sv, 0);
    raw_frame(sv[0], 0, NULL, 0);
    assert_int_equal(recv_one(sv[1], &msg, fds, &nfds), AL_ETOOBIG);
    close(sv[0]);
    close(sv[1]);
    /* Garbage body of a valid length. */
    pair(sv, 0);
    raw_frame(sv[0], 5, "hello", 5);
    assert_int_equal(recv_one(sv[1], &msg, fds, &nfds), AL_EINVAL);
    close(sv[0]);
    close(sv[1]);
    /* The largest frame passes. */
    size_t big = CTL_FRAME_MAX;
    char *body = malloc(big + 1);
    const char head[] = "{\"v\":1,\"type\":\"big\",\"pad\":\"";
    memset(body, 'a', big);
    memcpy(body, head, sizeof(head) - 1);
    memcpy(body + big - 2, "\"}", 2);
    pair(sv, 0);
    int sz = 4 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    raw_frame(sv[0], (uint32_t)big, body, big);
    assert_int_equal(recv_one(sv[1], &msg, fds, &nfds), 0);
    assert_string_equal(ctl_msg_type(msg), "big");
    json_decref(msg);
    free(body);
    close(sv[0]);
    close(sv[1]);
}

/* ctl_send refuses a message that serialises to more than the maximum. */
static void send_too_big(void **state)
{
    int sv[2];
    pair(sv, 0);
    char *pad = malloc(CTL_FRAME_MAX + 1);
    memset(pad, 'a', CTL_FRAME_MAX);
    pad[CTL_FRAME_MAX] = '\0';
    json_t *m = ctl_msg_new("x");
    json_object_set_new(m, "pad", json_string(pad));
    assert_int_equal(ctl_send(sv[0], m, NULL, 0), AL_ETOOBIG);
    json_decref(m);
    free(pad);
    close(sv[0]);
    close(sv[1]);
}

static void descriptor_count_mismatch(void **state)
{
    int sv[2], p[2], fds[CTL_FDS_MAX];
    size_t nfds;
    json_t *msg;
    int before;
    pair(sv, 0);
    assert_int_equal(pipe(p), 0);
    before = open_fd_count();
    /* Declares two, carries one: refused, nothing leaks. */
    json_t *m = ctl_msg_new("x");
    json_object_set_new(m, "fds", json_integer(2));
    char *body = json_dumps(m, JSON_COMPACT);
    struct iovec iov[2];
    unsigned char h[4] = {0, 0, 0, (unsigned char)strlen(body)};
    iov[0] = (struct iovec){h, 4};
    iov[1] = (struct iovec){body, strlen(body)};
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int) * 3)];
    } cm;
    memset(&cm, 0, sizeof(cm));
    struct msghdr mh = {.msg_iov = iov,
                        .msg_iovlen = 2,
                        .msg_control = cm.buf,
                        .msg_controllen = CMSG_SPACE(sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[0], sizeof(int));
    assert_true(sendmsg(sv[0], &mh, 0) > 0);
    assert_int_equal(recv_one(sv[1], &msg, fds, &nfds), AL_EINVAL);
    assert_int_equal(open_fd_count(), before);
    free(body);
    json_decref(m);
    /* Carries three, declares one: the extra two are closed. */
    m = ctl_msg_new("y");
    json_object_set_new(m, "fds", json_integer(1));
    body = json_dumps(m, JSON_COMPACT);
    h[3] = (unsigned char)strlen(body);
    iov[1] = (struct iovec){body, strlen(body)};
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * 3);
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_len = CMSG_LEN(sizeof(int) * 3);
    int three[3] = {p[0], p[1], p[0]};
    memcpy(CMSG_DATA(c), three, sizeof(three));
    assert_true(sendmsg(sv[0], &mh, 0) > 0);
    assert_int_equal(recv_one(sv[1], &msg, fds, &nfds), 0);
    assert_int_equal(nfds, 1);
    assert_int_equal(open_fd_count(), before + 1);
    close(fds[0]);
    json_decref(msg);
    free(body);
    json_decref(m);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

/* More descriptors than the reader takes: MSG_CTRUNC is an error. */
static void too_many_descriptors(void **state)
{
    int sv[2], fds[CTL_FDS_MAX], many[CTL_FDS_MAX + 4];
    size_t nfds;
    json_t *msg;
    pair(sv, 0);
    int before = open_fd_count();
    for (int i = 0; i < CTL_FDS_MAX + 4; i++)
        many[i] = sv[0];
    const char body[] = "{\"v\":1,\"type\":\"x\"}";
    unsigned char frame[64] = {0, 0, 0, sizeof(body) - 1};
    memcpy(frame + 4, body, sizeof(body) - 1);
    struct iovec iov = {frame, sizeof(body) + 3};
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(many))];
    } cm;
    memset(&cm, 0, sizeof(cm));
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = cm.buf,
                        .msg_controllen = CMSG_SPACE(sizeof(many))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(many));
    memcpy(CMSG_DATA(c), many, sizeof(many));
    assert_true(sendmsg(sv[0], &mh, 0) > 0);
    assert_int_equal(recv_one(sv[1], &msg, fds, &nfds), AL_EINVAL);
    assert_int_equal(open_fd_count(), before);
    close(sv[0]);
    close(sv[1]);
}

static void peer_closed(void **state)
{
    int sv[2], fds[CTL_FDS_MAX];
    size_t nfds;
    json_t *msg;
    pair(sv, 0);
    raw_frame(sv[0], 100, "{\"v\":1", 6);
    close(sv[0]);
    assert_int_equal(recv_one(sv[1], &msg, fds, &nfds), AL_EIO);
    close(sv[1]);
}

static void feed_byte_by_byte(void **state)
{
    struct ctl_reader r;
    json_t *msg = NULL;
    const char body[] = "{\"v\":1,\"type\":\"t\"}";
    unsigned char stream[2 * (sizeof(body) + 3)];
    for (int k = 0; k < 2; k++) {
        unsigned char *f = stream + k * (sizeof(body) + 3);
        f[0] = f[1] = f[2] = 0;
        f[3] = sizeof(body) - 1;
        memcpy(f + 4, body, sizeof(body) - 1);
    }
    ctl_reader_init(&r);
    int frames = 0;
    for (size_t off = 0; off < sizeof(stream);) {
        size_t used;
        assert_true(ctl_reader_want(&r) > 0);
        int err = ctl_reader_feed(&r, stream + off, sizeof(stream) - off, &used, &msg);
        assert_true(used > 0);
        off += used;
        if (err == 0) {
            frames++;
            json_decref(msg);
        } else {
            assert_int_equal(err, AL_EAGAIN);
        }
    }
    assert_int_equal(frames, 2);
    ctl_reader_clear(&r);
}

static void outq_bounded(void **state)
{
    ctl_outq *q;
    assert_int_equal(ctl_outq_new(&q, 2), 0);
    assert_int_equal(ctl_outq_push(q, ctl_msg_new("event")), 0);
    assert_int_equal(ctl_outq_push(q, ctl_msg_new("event")), 0);
    assert_int_equal(ctl_outq_push(q, ctl_msg_new("event")), AL_ETOOBIG);
    ctl_outq_free(q);
}

/* ---- ctl_serve: a handler that accepts "good" and keeps no fds ---- */

static int handler(json_t *msg, int *fds, size_t nfds, void *payload)
{
    int *calls = payload;
    (*calls)++;
    for (size_t i = 0; i < nfds; i++)
        close(fds[i]);
    if (strcmp(ctl_msg_type(msg), "good") == 0)
        return 0;
    return al_error_set(AL_EINVAL, "unknown message type \"%s\"", ctl_msg_type(msg));
}

struct serve_args {
    int fd;
    ctl_outq *q;
    int calls;
    int result;
};

static void *serve_thread(void *arg)
{
    struct serve_args *a = arg;
    a->result = ctl_serve(a->fd, a->q, "testproxy", handler, &a->calls);
    return NULL;
}

static json_t *expect(int fd, struct ctl_reader *r, const char *type)
{
    json_t *msg;
    int fds[CTL_FDS_MAX];
    size_t nfds;
    assert_int_equal(ctl_recv(r, fd, &msg, fds, &nfds), 0);
    assert_string_equal(ctl_msg_type(msg), type);
    return msg;
}

static void serve_protocol(void **state)
{
    int sv[2];
    pthread_t t;
    struct ctl_reader r;
    struct serve_args a = {0};
    pair(sv, 0);
    a.fd = sv[1];
    assert_int_equal(ctl_outq_new(&a.q, 8), 0);
    assert_int_equal(pthread_create(&t, NULL, serve_thread, &a), 0);
    ctl_reader_init(&r);
    json_t *m = expect(sv[0], &r, "hello");
    assert_string_equal(json_string_value(json_object_get(m, "proxy")), "testproxy");
    assert_int_equal(json_integer_value(json_object_get(m, "pid")), getpid());
    json_decref(m);

    const char *types[] = {"hello", "good", "bogus"};
    for (int i = 0; i < 3; i++) {
        json_t *req = ctl_msg_new(types[i]);
        json_object_set_new(req, "seq", json_integer(i + 1));
        assert_int_equal(ctl_send(sv[0], req, NULL, 0), 0);
        json_decref(req);
        m = expect(sv[0], &r, "ack");
        assert_int_equal(json_integer_value(json_object_get(m, "seq")), i + 1);
        assert_int_equal(json_is_true(json_object_get(m, "ok")), i < 2);
        if (i == 2)
            assert_non_null(strstr(json_string_value(json_object_get(m, "error")), "bogus"));
        json_decref(m);
    }
    /* A request without seq is refused without reaching the handler. */
    json_t *req = ctl_msg_new("good");
    assert_int_equal(ctl_send(sv[0], req, NULL, 0), 0);
    json_decref(req);
    m = expect(sv[0], &r, "ack");
    assert_true(json_is_null(json_object_get(m, "seq")));
    assert_true(json_is_false(json_object_get(m, "ok")));
    json_decref(m);
    /* Events queued from elsewhere reach the daemon. */
    json_t *ev = ctl_msg_new("event");
    json_object_set_new(ev, "session", json_string("s1"));
    assert_int_equal(ctl_outq_push(a.q, ev), 0);
    m = expect(sv[0], &r, "event");
    assert_string_equal(json_string_value(json_object_get(m, "session")), "s1");
    json_decref(m);
    /* A malformed frame ends the loop with AL_EINVAL. */
    raw_frame(sv[0], 3, "{{{", 3);
    pthread_join(t, NULL);
    assert_int_equal(a.result, AL_EINVAL);
    assert_int_equal(a.calls, 2);
    ctl_reader_clear(&r);
    ctl_outq_free(a.q);
    close(sv[0]);
    close(sv[1]);
}

static void serve_ends_on_close(void **state)
{
    int sv[2];
    pthread_t t;
    struct serve_args a = {0};
    pair(sv, 0);
    a.fd = sv[1];
    assert_int_equal(pthread_create(&t, NULL, serve_thread, &a), 0);
    close(sv[0]);
    pthread_join(t, NULL);
    assert_int_equal(a.result, AL_EIO);
    close(sv[1]);
}

static void socket_open_checks(void **state)
{
    int sv[2], p[2];
    char arg[32];
    pair(sv, 0);
    assert_int_equal(pipe(p), 0);
    snprintf(arg, sizeof(arg), "%d", sv[0]);
    assert_int_equal(ctl_socket_open(arg, NULL), sv[0]);
    snprintf(arg, sizeof(arg), "%d", p[0]);
    assert_int_equal(ctl_socket_open(arg, NULL), AL_EINVAL);
    assert_int_equal(ctl_socket_open("3x", NULL), AL_EINVAL);
    assert_int_equal(ctl_socket_open("-1", NULL), AL_EINVAL);
    assert_true(ctl_socket_open(NULL, "/nonexistent/ctl.sock") < 0);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

static void session_ids(void **state)
{
    assert_true(ctl_session_id_valid("s-1234_ab.c:d"));
    assert_false(ctl_session_id_valid(""));
    assert_false(ctl_session_id_valid(NULL));
    assert_false(ctl_session_id_valid("../x"));
    assert_false(ctl_session_id_valid("a b"));
    char big[130];
    memset(big, 'a', sizeof(big) - 1);
    big[129] = '\0';
    assert_false(ctl_session_id_valid(big));
    big[128] = '\0';
    assert_true(ctl_session_id_valid(big));
}

static void listeners(void **state)
{
    struct ctl_listener ls[CTL_FDS_MAX];
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), notl, sv[2];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 1), 0);
    pair(sv, 0);
    notl = sv[0];
    int fds[2] = {notl, l};
    json_t *m = json_pack("{s:[{s:s,s:i}]}", "listeners", "kind", "http", "fd", 1);
    assert_int_equal(ctl_listeners_get(ls, m, fds, 2), 1);
    assert_string_equal(ls[0].kind, "http");
    assert_int_equal(ls[0].index, 1);
    json_decref(m);
    static const char *bad[] = {
        "{\"listeners\": [{\"kind\": \"http\", \"fd\": 0}]}",  /* not listening */
        "{\"listeners\": [{\"kind\": \"http\", \"fd\": 2}]}",  /* out of range */
        "{\"listeners\": [{\"kind\": \"http\", \"fd\": -1}]}", /* negative */
        "{\"listeners\": [{\"kind\": \"http\", \"fd\": 1}, {\"kind\": \"socks5\", \"fd\": 1}]}",
        "{\"listeners\": [{\"fd\": 1}]}",
        "{\"listeners\": [{\"kind\": 3, \"fd\": 1}]}",
        "{\"listeners\": {}}",
        "{}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = json_loads(bad[i], 0, NULL);
        assert_non_null(m);
        assert_int_equal(ctl_listeners_get(ls, m, fds, 2), AL_EINVAL);
        json_decref(m);
    }
    int mine[2] = {dup(l), -1};
    ctl_fds_close(mine, 2);
    assert_int_equal(mine[0], -1);
    close(l);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_with_descriptors),
        cmocka_unit_test(descriptors_stay_with_their_frame),
        cmocka_unit_test(partial_reads),
        cmocka_unit_test(malformed_bodies),
        cmocka_unit_test(bad_lengths),
        cmocka_unit_test(send_too_big),
        cmocka_unit_test(descriptor_count_mismatch),
        cmocka_unit_test(too_many_descriptors),
        cmocka_unit_test(peer_closed),
        cmocka_unit_test(feed_byte_by_byte),
        cmocka_unit_test(outq_bounded),
        cmocka_unit_test(serve_protocol),
        cmocka_unit_test(serve_ends_on_close),
        cmocka_unit_test(socket_open_checks),
        cmocka_unit_test(session_ids),
        cmocka_unit_test(listeners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
