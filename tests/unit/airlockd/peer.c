/* Node-to-node request signing (adapters/peer.h, docs/cluster.md
 * "Forwarding"): a fixed vector computed outside the C code, the round
 * trip, tampering with each signed part, the 30 s window, nonce replay, a
 * full nonce set, malformed headers and the key file's checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "airlockd/adapters/peer.h"

#include "airlock/error.h"
#include "airlock/hex.h"

#define T0 1765135200123ULL

static const char nonce0[] = "00112233445566778899aabbccddeeff";

/* A request's headers: "Name: value" strings. */
struct hdrs {
    char *name[16];
    char *value[16];
    int n;
};

static const char *hdr_fn(void *cls, const char *name)
{
    struct hdrs *h = cls;
    for (int i = 0; i < h->n; i++)
        if (strcasecmp(h->name[i], name) == 0)
            return h->value[i];
    return NULL;
}

static void hdrs_from(struct hdrs *h, const struct al_strlist *l)
{
    memset(h, 0, sizeof(*h));
    for (size_t i = 0; i < l->len && h->n < 16; i++) {
        const char *colon = strchr(l->items[i], ':');
        assert_non_null(colon);
        h->name[h->n] = strndup(l->items[i], (size_t)(colon - l->items[i]));
        h->value[h->n] = strdup(colon + 2);
        h->n++;
    }
}

static void hdrs_free(struct hdrs *h)
{
    for (int i = 0; i < h->n; i++) {
        free(h->name[i]);
        free(h->value[i]);
    }
    memset(h, 0, sizeof(*h));
}

static void hdr_set(struct hdrs *h, const char *name, const char *value)
{
    for (int i = 0; i < h->n; i++)
        if (strcasecmp(h->name[i], name) == 0) {
            free(h->value[i]);
            h->value[i] = strdup(value);
            return;
        }
    h->name[h->n] = strdup(name);
    h->value[h->n++] = strdup(value);
}

static void hdr_del(struct hdrs *h, const char *name)
{
    for (int i = 0; i < h->n; i++)
        if (strcasecmp(h->name[i], name) == 0) {
            free(h->value[i]);
            h->value[i] = NULL; /* hdr_fn then returns NULL */
        }
}

static unsigned char k_req[32];
static struct ald_principal alice = {
    .user = "alice", .key_id = "k_1", .max_sessions = 5, .max_memory_mb = 1024};

static void key0(void)
{
    /* K_req of the key bytes 0..31 (HMAC-SHA256 computed with Python) */
    assert_int_equal(al_hex_decode(k_req,
                                   "2fd231ec4bf1ec9328e1a9b890801c9f"
                                   "3abd14871b65500a6dca28d026178bac",
                                   32),
                     0);
}

/* Signs POST /v1/sessions/s_1/exec?x=1 with body "hello" at T0. */
static void sign0(struct hdrs *h, uint64_t t, const char *nonce)
{
    unsigned char sha[32];
    SHA256((const unsigned char *)"hello", 5, sha);
    struct al_strlist l = {0};
    assert_int_equal(ald_peer_sign_at(k_req, "n1", "n2", "POST", "/v1/sessions/s_1/exec?x=1",
                                      &alice, sha, "WebSocket", t, nonce, &l),
                     0);
    hdrs_from(h, &l);
    al_strlist_free(&l);
}

/* key0() and a new guard of `slots` nonces; the caller frees it. */
static struct ald_peer_guard *guard0(size_t slots)
{
    key0();
    struct ald_peer_guard *g = NULL;
    assert_int_equal(ald_peer_guard_new(slots, &g), 0);
    return g;
}

static int verify(struct ald_peer_guard *g, struct hdrs *h, const char *method, const char *uri,
                  const char *upgrade, uint64_t now, const char **reason)
{
    struct ald_principal who;
    unsigned char want[32];
    char node[64];
    return ald_peer_verify(g, k_req, "n2", method, uri, upgrade, hdr_fn, h, now, &who, want, node,
                           reason);
}

static void test_vector(void **state)
{
    (void)state;
    key0();
    struct hdrs h;
    sign0(&h, T0, nonce0);
    assert_string_equal(hdr_fn(&h, "X-Airlock-Signature"),
                        "v1=a8ea37a09d1bd6506b4cadb44dfa9b23ed19892b5fc2c5b39d4d425a0a0dffce");
    assert_string_equal(hdr_fn(&h, "X-Airlock-Principal"),
                        "eyJ1c2VyIjoiYWxpY2UiLCJrZXlfaWQiOiJrXzEiLCJhZG1pbiI6ZmFsc2UsIm1heF9zZXNz"
                        "aW9ucyI6NSwibWF4X21lbW9yeV9tYiI6MTAyNH0");
    assert_string_equal(hdr_fn(&h, "X-Airlock-Body-SHA256"),
                        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    assert_string_equal(hdr_fn(&h, "X-Airlock-Time"), "1765135200123");
    assert_string_equal(hdr_fn(&h, "X-Airlock-Node"), "n1");
    hdrs_free(&h);
}

static void test_roundtrip(void **state)
{
    (void)state;
    struct ald_peer_guard *g = guard0(16);
    struct hdrs h;
    sign0(&h, T0, nonce0);
    struct ald_principal who;
    unsigned char want[32], sha[32];
    char node[64];
    const char *reason = "x";
    assert_int_equal(ald_peer_verify(g, k_req, "n2", "POST", "/v1/sessions/s_1/exec?x=1",
                                     "websocket", hdr_fn, &h, T0 + 1000, &who, want, node, &reason),
                     0);
    SHA256((const unsigned char *)"hello", 5, sha);
    assert_memory_equal(want, sha, 32);
    assert_string_equal(node, "n1");
    assert_string_equal(who.user, "alice");
    assert_string_equal(who.key_id, "k_1");
    assert_int_equal(who.admin, 0);
    assert_int_equal(who.max_sessions, 5);
    assert_int_equal(who.max_memory_mb, 1024);
    assert_null(reason);
    /* the same request again: a replay */
    assert_int_equal(
        verify(g, &h, "POST", "/v1/sessions/s_1/exec?x=1", "websocket", T0 + 2000, &reason),
        AL_EAUTH);
    assert_string_equal(reason, "replay");
    hdrs_free(&h);
    ald_peer_guard_free(g);
}

static void test_tamper(void **state)
{
    (void)state;
    struct ald_peer_guard *g = guard0(64);
    const char *reason;
    struct hdrs h;
    const char *uri = "/v1/sessions/s_1/exec?x=1";
    /* the request line and the upgrade header are signed */
    sign0(&h, T0, nonce0);
    assert_int_equal(verify(g, &h, "PUT", uri, "websocket", T0, &reason), AL_EAUTH);
    assert_string_equal(reason, "signature");
    assert_int_equal(verify(g, &h, "POST", "/v1/sessions/s_2/exec?x=1", "websocket", T0, &reason),
                     AL_EAUTH);
    assert_int_equal(verify(g, &h, "POST", "/v1/sessions/s_1/exec?x=2", "websocket", T0, &reason),
                     AL_EAUTH);
    assert_int_equal(verify(g, &h, "POST", uri, NULL, T0, &reason), AL_EAUTH);
    /* each signed header */
    static const char *const names[] = {"X-Airlock-Node", "X-Airlock-Time", "X-Airlock-Nonce",
                                        "X-Airlock-Principal", "X-Airlock-Body-SHA256"};
    /* {"user":"root","key_id":"k_1","admin":true,...} */
    static const char root_principal[] =
        "eyJ1c2VyIjoicm9vdCIsImtleV9pZCI6ImtfMSIsImFkbWluIjp0cnVlLCJtYXhfc2Vzc2lvbnMiOjUsIm1heF9tZW"
        "1vcnlfbWIiOjEwMjR9";
    static const char *const forged[] = {
        "n2", "1765135200124", "00112233445566778899aabbccddeef0", root_principal,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9825"};
    for (int i = 0; i < 5; i++) {
        struct hdrs t;
        sign0(&t, T0, nonce0);
        hdr_set(&t, names[i], forged[i]);
        assert_int_equal(verify(g, &t, "POST", uri, "websocket", T0, &reason), AL_EAUTH);
        assert_string_equal(reason, "signature");
        hdrs_free(&t);
    }
    /* another key */
    unsigned char k2[32];
    memcpy(k2, k_req, 32);
    k_req[0] ^= 1;
    assert_int_equal(verify(g, &h, "POST", uri, "websocket", T0, &reason), AL_EAUTH);
    memcpy(k_req, k2, 32);
    /* none of the refused ones took the nonce: the genuine one passes */
    assert_int_equal(verify(g, &h, "POST", uri, "websocket", T0, &reason), 0);
    hdrs_free(&h);
    ald_peer_guard_free(g);
}

/* A request signed for node n2 is refused by every other node (a copy
 * taken off the node network cannot be replayed at n3 within the 30 s,
 * where n3's nonce set has not seen it), and by a node without an id; the
 * refusals do not take the nonce, so n2 still accepts it. */
static void test_other_receiver(void **state)
{
    (void)state;
    key0();
    struct ald_peer_guard *g3, *g2;
    assert_int_equal(ald_peer_guard_new(16, &g3), 0);
    assert_int_equal(ald_peer_guard_new(16, &g2), 0);
    struct hdrs h;
    sign0(&h, T0, nonce0);
    const char *uri = "/v1/sessions/s_1/exec?x=1";
    struct ald_principal who;
    unsigned char want[32];
    char node[64];
    const char *reason = NULL;
    static const char *const others[] = {"n3", "n1", "n22", "N2", "n"};
    for (size_t i = 0; i < sizeof(others) / sizeof(*others); i++) {
        assert_int_equal(ald_peer_verify(g3, k_req, others[i], "POST", uri, "websocket", hdr_fn, &h,
                                         T0, &who, want, node, &reason),
                         AL_EAUTH);
        assert_string_equal(reason, "signature");
        assert_string_equal(who.user, "");
    }
    assert_int_equal(ald_peer_verify(g3, k_req, NULL, "POST", uri, "websocket", hdr_fn, &h, T0,
                                     &who, want, node, &reason),
                     AL_EAUTH);
    assert_int_equal(ald_peer_verify(g2, k_req, "n2", "POST", uri, "websocket", hdr_fn, &h, T0,
                                     &who, want, node, &reason),
                     0);
    assert_string_equal(who.user, "alice");
    /* and the signer refuses a bad receiver id */
    struct al_strlist l = {0};
    unsigned char sha[32] = {0};
    assert_int_equal(
        ald_peer_sign_at(k_req, "n1", "n 2", "GET", "/x", &alice, sha, NULL, T0, nonce0, &l),
        AL_EINVAL);
    assert_int_equal(
        ald_peer_sign_at(k_req, "n1", NULL, "GET", "/x", &alice, sha, NULL, T0, nonce0, &l),
        AL_EINVAL);
    al_strlist_free(&l);
    hdrs_free(&h);
    ald_peer_guard_free(g3);
    ald_peer_guard_free(g2);
}

static void test_skew(void **state)
{
    (void)state;
    struct ald_peer_guard *g = guard0(64);
    const char *reason;
    const char *uri = "/v1/sessions/s_1/exec?x=1";
    struct hdrs h;
    sign0(&h, T0, "10000000000000000000000000000001");
    assert_int_equal(verify(g, &h, "POST", uri, "websocket", T0 + 30001, &reason), AL_EAUTH);
    assert_string_equal(reason, "skew");
    assert_int_equal(verify(g, &h, "POST", uri, "websocket", T0 - 30001, &reason), AL_EAUTH);
    assert_string_equal(reason, "skew");
    assert_int_equal(verify(g, &h, "POST", uri, "websocket", T0 + 30000, &reason), 0);
    hdrs_free(&h);
    sign0(&h, T0, "10000000000000000000000000000002");
    assert_int_equal(verify(g, &h, "POST", uri, "websocket", T0 - 30000, &reason), 0);
    hdrs_free(&h);
    ald_peer_guard_free(g);
}

static void test_full(void **state)
{
    (void)state;
    struct ald_peer_guard *g = guard0(4);
    const char *reason;
    const char *uri = "/v1/sessions/s_1/exec?x=1";
    char nonce[33];
    for (int i = 0; i < 5; i++) {
        snprintf(nonce, sizeof(nonce), "%032x", i + 1);
        struct hdrs h;
        sign0(&h, T0, nonce);
        int err = verify(g, &h, "POST", uri, "websocket", T0, &reason);
        if (i < 4) {
            assert_int_equal(err, 0);
        } else {
            assert_int_equal(err, AL_EAGAIN);
            assert_string_equal(reason, "full");
        }
        hdrs_free(&h);
    }
    /* once the first ones are past the window, they are swept */
    struct hdrs h;
    sign0(&h, T0 + 40000, "000000000000000000000000000000ff");
    assert_int_equal(verify(g, &h, "POST", uri, "websocket", T0 + 40000, &reason), 0);
    hdrs_free(&h);
    /* and an old nonce is a replay only while it could still be accepted */
    sign0(&h, T0 + 40000, "000000000000000000000000000000ff");
    assert_int_equal(verify(g, &h, "POST", uri, "websocket", T0 + 40000, &reason), AL_EAUTH);
    assert_string_equal(reason, "replay");
    hdrs_free(&h);
    ald_peer_guard_free(g);
}

static void test_malformed(void **state)
{
    (void)state;
    struct ald_peer_guard *g = guard0(64);
    const char *reason;
    const char *uri = "/v1/sessions/s_1/exec?x=1";
    struct {
        const char *name, *value;
    } bad[] = {
        {"X-Airlock-Node", "n1\r\nX-Evil: 1"},
        {"X-Airlock-Node", "n1\n"},
        {"X-Airlock-Node", "n 1"},
        {"X-Airlock-Node", "n1/.."},
        {"X-Airlock-Node", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
        {"X-Airlock-Node", ""},
        {"X-Airlock-Time", "-1765135200123"},
        {"X-Airlock-Time", "1765135200123x"},
        {"X-Airlock-Time", "99999999999999999999999"},
        {"X-Airlock-Time", " 1765135200123"},
        {"X-Airlock-Nonce", "00112233445566778899AABBCCDDEEFF"},
        {"X-Airlock-Nonce", "00112233445566778899aabbccddeef"},
        {"X-Airlock-Nonce", "00112233445566778899aabbccddeefg"},
        {"X-Airlock-Nonce", "00112233445566778899aabbccddeeff00"},
        {"X-Airlock-Body-SHA256", "zz"},
        {"X-Airlock-Body-SHA256",
         "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824"},
        {"X-Airlock-Signature", "7aabe0dd5d5af9ea18e7fc5fa4958353f92eef67cca5b4dbc8023128c450e0ab"},
        {"X-Airlock-Signature",
         "v2=7aabe0dd5d5af9ea18e7fc5fa4958353f92eef67cca5b4dbc8023128c450e0ab"},
        {"X-Airlock-Signature",
         "v1=7AABE0DD5D5AF9EA18E7FC5FA4958353F92EEF67CCA5B4DBC8023128C450E0AB"},
        {"X-Airlock-Signature",
         "v1=7aabe0dd5d5af9ea18e7fc5fa4958353f92eef67cca5b4dbc8023128c450e0a"},
        {"X-Airlock-Principal", "eyJ1c2VyIjoiYWxpY2UifQ=="},
        {"X-Airlock-Principal", "!!!!"},
        {"X-Airlock-Principal", "a"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct hdrs h;
        sign0(&h, T0, nonce0);
        hdr_set(&h, bad[i].name, bad[i].value);
        reason = NULL;
        assert_int_equal(verify(g, &h, "POST", uri, "websocket", T0, &reason), AL_EAUTH);
        assert_non_null(reason);
        hdrs_free(&h);
    }
    /* an over-long principal */
    char *longp = malloc(ALD_PEER_PRINCIPAL_MAX + 2);
    memset(longp, 'A', ALD_PEER_PRINCIPAL_MAX + 1);
    longp[ALD_PEER_PRINCIPAL_MAX + 1] = '\0';
    struct hdrs h;
    sign0(&h, T0, nonce0);
    hdr_set(&h, "X-Airlock-Principal", longp);
    assert_int_equal(verify(g, &h, "POST", uri, "websocket", T0, &reason), AL_EAUTH);
    assert_string_equal(reason, "malformed");
    free(longp);
    hdrs_free(&h);
    /* each header missing; none at all */
    static const char *const names[] = {"X-Airlock-Node",        "X-Airlock-Time",
                                        "X-Airlock-Nonce",       "X-Airlock-Principal",
                                        "X-Airlock-Body-SHA256", "X-Airlock-Signature"};
    for (int i = 0; i < 6; i++) {
        sign0(&h, T0, nonce0);
        hdr_del(&h, names[i]);
        assert_int_equal(verify(g, &h, "POST", uri, "websocket", T0, &reason), AL_EAUTH);
        assert_string_equal(reason, "malformed");
        hdrs_free(&h);
    }
    struct hdrs none = {0};
    assert_int_equal(verify(g, &none, "POST", uri, "websocket", T0, &reason), AL_EAUTH);
    assert_string_equal(reason, "missing");
    /* a principal that is signed but not what the sender should send: a
     * user name too long, a JSON that is not an object */
    ald_peer_guard_free(g);
}

static void test_bad_principal_signed(void **state)
{
    (void)state;
    struct ald_peer_guard *g = guard0(64);
    struct ald_principal nobody = {.user = ""};
    unsigned char sha[32] = {0};
    struct al_strlist l = {0};
    assert_int_equal(
        ald_peer_sign_at(k_req, "n1", "n2", "GET", "/x", &nobody, sha, NULL, T0, nonce0, &l), 0);
    struct hdrs h;
    hdrs_from(&h, &l);
    al_strlist_free(&l);
    const char *reason;
    assert_int_equal(verify(g, &h, "GET", "/x", NULL, T0, &reason), AL_EAUTH);
    assert_string_equal(reason, "malformed");
    hdrs_free(&h);
    /* a bad node id is refused when signing */
    assert_int_equal(
        ald_peer_sign_at(k_req, "n 1", "n2", "GET", "/x", &alice, sha, NULL, T0, nonce0, &l),
        AL_EINVAL);
    ald_peer_guard_free(g);
}

static void test_key_load(void **state)
{
    (void)state;
    char path[] = "/tmp/peer-key-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unsigned char key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)i;
    assert_int_equal(write(fd, key, 31), 31);
    unsigned char k[32], want[32];
    assert_int_equal(fchmod(fd, 0600), 0);
    assert_int_equal(ald_peer_key_load(path, k), AL_EINVAL); /* 31 bytes */
    assert_int_equal(write(fd, key + 31, 1), 1);
    assert_int_equal(ald_peer_key_load(path, k), 0);
    assert_int_equal(al_hex_decode(want,
                                   "2fd231ec4bf1ec9328e1a9b890801c9f"
                                   "3abd14871b65500a6dca28d026178bac",
                                   32),
                     0);
    assert_memory_equal(k, want, 32);
    assert_int_equal(fchmod(fd, 0640), 0);
    assert_int_equal(ald_peer_key_load(path, k), AL_EINVAL);
    assert_int_equal(fchmod(fd, 0604), 0);
    assert_int_equal(ald_peer_key_load(path, k), AL_EINVAL);
    if (geteuid() == 0) {
        assert_int_equal(fchmod(fd, 0600), 0);
        assert_int_equal(fchown(fd, 65534, 0), 0);
        assert_int_equal(ald_peer_key_load(path, k), AL_EINVAL);
    }
    close(fd);
    unlink(path);
    assert_int_equal(ald_peer_key_load("/nonexistent/key", k), AL_EIO);
    assert_int_equal(ald_peer_key_load("/tmp", k), AL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector),    cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_tamper),    cmocka_unit_test(test_other_receiver),
        cmocka_unit_test(test_skew),      cmocka_unit_test(test_full),
        cmocka_unit_test(test_malformed), cmocka_unit_test(test_bad_principal_signed),
        cmocka_unit_test(test_key_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
