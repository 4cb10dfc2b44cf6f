/* Node-to-node request signing (peer.h, docs/cluster.md "Forwarding"). */
#include "airlockd/adapters/peer.h"

#include "airlockd/core/util.h"

#include "airlock/base64.h"
#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/hex.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define KEY_MAX 4096
static const char k_label[] = "airlock node request v1";

int ald_peer_key_load(const char *path, unsigned char k_req[32])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "cluster key %s", path);
    unsigned char key[KEY_MAX + 1];
    struct stat st;
    int err = 0;
    ssize_t n = 0;
    if (fstat(fd, &st) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "cluster key %s", path);
    } else if (!S_ISREG(st.st_mode)) {
        err = al_error_set(AL_EINVAL, "cluster key %s: not a regular file", path);
    } else if (st.st_uid != 0) {
        err = al_error_set(AL_EINVAL, "cluster key %s: not owned by root", path);
    } else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        err = al_error_set(AL_EINVAL, "cluster key %s: group or others may access it (chmod 600)",
                           path);
    } else {
        size_t got = 0;
        while (got < sizeof(key)) {
            n = read(fd, key + got, sizeof(key) - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (n < 0)
            err = al_error_set_errno(AL_EIO, errno, "cluster key %s", path);
        else if (got < 32 || got > KEY_MAX)
            err =
                al_error_set(AL_EINVAL, "cluster key %s: %zu bytes (32 to %d)", path, got, KEY_MAX);
        else if (!HMAC(EVP_sha256(), key, (int)got, (const unsigned char *)k_label, strlen(k_label),
                       k_req, NULL))
            err = al_error_set(AL_ERROR, "cluster key: HMAC failed");
    }
    explicit_bzero(key, sizeof(key));
    close(fd);
    return err;
}

/* The signed text (peer.h), into b. */
static int signed_text(struct al_buf *b, const char *method, const char *uri, const char *time_s,
                       const char *nonce, const char *node, const char *to, const char *principal,
                       const char *body_hex, const char *upgrade)
{
    if (al_buf_printf(b, "airlock-node-v1\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n", method, uri, time_s,
                      nonce, node, to, principal, body_hex) < 0)
        return AL_ENOMEM;
    for (const char *c = upgrade ? upgrade : ""; *c; c++) {
        char l = (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : *c;
        if (al_buf_append(b, &l, 1) < 0)
            return AL_ENOMEM;
    }
    return 0;
}

static void hmac_hex(const unsigned char k[32], const struct al_buf *b, char out[65])
{
    unsigned char mac[32];
    unsigned int len = 32;
    HMAC(EVP_sha256(), k, 32, (const unsigned char *)b->ptr, b->len, mac, &len);
    ald_hex(out, mac, 32);
}

static int node_ok(const char *s, size_t len)
{
    if (len == 0 || len > 63)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* The principal's JSON, base64url: a new string or NULL. */
static char *principal_encode(const struct ald_principal *who)
{
    json_t *o = json_pack("{s:s, s:s, s:b, s:I, s:I}", "user", who->user, "key_id", who->key_id,
                          "admin", who->admin, "max_sessions", (json_int_t)who->max_sessions,
                          "max_memory_mb", (json_int_t)who->max_memory_mb);
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *enc = txt ? al_base64url_encode((const unsigned char *)txt, strlen(txt)) : NULL;
    free(txt);
    return enc;
}

static int push_hdr(struct al_strlist *out, const char *name, const char *value)
{
    struct al_buf b;
    al_buf_init(&b, 8192);
    if (al_buf_printf(&b, "%s: %s", name, value) < 0 || al_strlist_push(out, b.ptr) < 0) {
        al_buf_free(&b);
        return AL_ENOMEM;
    }
    al_buf_free(&b);
    return 0;
}

int ald_peer_sign_at(const unsigned char k_req[32], const char *node, const char *to,
                     const char *method, const char *uri, const struct ald_principal *who,
                     const unsigned char body_sha[32], const char *upgrade, uint64_t time_ms,
                     const char *nonce, struct al_strlist *headers_out)
{
    if (!node || !node_ok(node, strlen(node)) || !to || !node_ok(to, strlen(to)))
        return al_error_set(AL_EINVAL, "peer: bad node id");
    char time_s[24], body_hex[65], sig[65], sigv[70];
    snprintf(time_s, sizeof(time_s), "%llu", (unsigned long long)time_ms);
    ald_hex(body_hex, body_sha, 32);
    char *principal = principal_encode(who);
    if (!principal)
        return al_error_set(AL_ENOMEM, "peer: out of memory");
    struct al_buf b;
    al_buf_init(&b, 64 * 1024);
    int err = signed_text(&b, method, uri, time_s, nonce, node, to, principal, body_hex, upgrade);
    if (err == 0) {
        hmac_hex(k_req, &b, sig);
        snprintf(sigv, sizeof(sigv), "v1=%s", sig);
        if (push_hdr(headers_out, "X-Airlock-Node", node) < 0 ||
            push_hdr(headers_out, "X-Airlock-Time", time_s) < 0 ||
            push_hdr(headers_out, "X-Airlock-Nonce", nonce) < 0 ||
            push_hdr(headers_out, "X-Airlock-Principal", principal) < 0 ||
            push_hdr(headers_out, "X-Airlock-Body-SHA256", body_hex) < 0 ||
            push_hdr(headers_out, "X-Airlock-Signature", sigv) < 0)
            err = AL_ENOMEM;
    }
    if (err < 0)
        err = al_error_set(err, "peer: out of memory");
    al_buf_free(&b);
    free(principal);
    return err;
}

int ald_peer_sign(const unsigned char k_req[32], const char *node, const char *to,
                  const char *method, const char *uri, const struct ald_principal *who,
                  const unsigned char body_sha[32], const char *upgrade,
                  struct al_strlist *headers_out)
{
    char nonce[33];
    int err = ald_random_hex(nonce, 32);
    if (err < 0)
        return err;
    return ald_peer_sign_at(k_req, node, to, method, uri, who, body_sha, upgrade, ald_now_ms(),
                            nonce, headers_out);
}

/* ---- the nonce guard: open addressing, rebuilt without the expired
 * entries when it fills ---- */
struct nonce_slot {
    unsigned char nonce[16];
    uint64_t expiry; /* 0: empty */
};

struct ald_peer_guard {
    pthread_mutex_t lock;
    struct nonce_slot *slots;
    size_t nslots, count, cap;
};

int ald_peer_guard_new(size_t cap, struct ald_peer_guard **out)
{
    *out = NULL;
    if (cap == 0)
        cap = ALD_PEER_NONCES_MAX;
    size_t nslots = 16;
    while (nslots < 2 * cap)
        nslots *= 2;
    struct ald_peer_guard *g = calloc(1, sizeof(*g));
    struct nonce_slot *slots = calloc(nslots, sizeof(*slots));
    if (!g || !slots) {
        free(g);
        free(slots);
        return al_error_set(AL_ENOMEM, "peer: out of memory");
    }
    pthread_mutex_init(&g->lock, NULL);
    g->slots = slots;
    g->nslots = nslots;
    g->cap = cap;
    *out = g;
    return 0;
}

void ald_peer_guard_free(struct ald_peer_guard *g)
{
    if (!g)
        return;
    pthread_mutex_destroy(&g->lock);
    free(g->slots);
    free(g);
}

static size_t slot_of(const struct ald_peer_guard *g, const unsigned char nonce[16])
{
    uint64_t h;
    memcpy(&h, nonce, sizeof(h)); /* random bytes: any 8 of them hash well */
    return (size_t)(h & (g->nslots - 1));
}

/* Rebuilds the table without the entries expired at `now`. */
static void guard_sweep(struct ald_peer_guard *g, uint64_t now)
{
    struct nonce_slot *old = g->slots;
    struct nonce_slot *fresh = calloc(g->nslots, sizeof(*fresh));
    if (!fresh)
        return; /* stays full: requests get 503 until memory comes back */
    g->slots = fresh;
    g->count = 0;
    for (size_t i = 0; i < g->nslots; i++) {
        if (!old[i].expiry || old[i].expiry <= now)
            continue;
        size_t k = slot_of(g, old[i].nonce);
        while (fresh[k].expiry)
            k = (k + 1) & (g->nslots - 1);
        fresh[k] = old[i];
        g->count++;
    }
    free(old);
}

/* Records a nonce: 0, AL_EAUTH (seen and not expired) or AL_EAGAIN (full). */
static int guard_add(struct ald_peer_guard *g, const unsigned char nonce[16], uint64_t expiry,
                     uint64_t now)
{
    pthread_mutex_lock(&g->lock);
    int err = 0;
    size_t k = slot_of(g, nonce);
    size_t free_slot = SIZE_MAX;
    while (g->slots[k].expiry) {
        if (memcmp(g->slots[k].nonce, nonce, 16) == 0) {
            if (g->slots[k].expiry > now) {
                err = AL_EAUTH;
                goto out;
            }
            free_slot = k; /* an expired entry of the same nonce: reuse it */
            break;
        }
        k = (k + 1) & (g->nslots - 1);
    }
    if (free_slot != SIZE_MAX) {
        g->slots[free_slot].expiry = expiry;
        goto out;
    }
    if (g->count >= g->cap) {
        guard_sweep(g, now);
        if (g->count >= g->cap) {
            err = AL_EAGAIN;
            goto out;
        }
        k = slot_of(g, nonce);
        while (g->slots[k].expiry)
            k = (k + 1) & (g->nslots - 1);
    }
    memcpy(g->slots[k].nonce, nonce, 16);
    g->slots[k].expiry = expiry;
    g->count++;
out:
    pthread_mutex_unlock(&g->lock);
    return err;
}

/* A header value that is present, at most `max` bytes and free of control
 * bytes; its length in *len. */
static const char *hdr_get(const char *(*hdr)(void *, const char *), void *cls, const char *name,
                           size_t max, size_t *len)
{
    const char *v = hdr(cls, name);
    if (!v)
        return NULL;
    size_t n = strnlen(v, max + 1);
    if (n == 0 || n > max)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] == 0x7f)
            return NULL;
    *len = n;
    return v;
}

static int lower_hex(const char *s, size_t len, size_t want)
{
    if (len != want)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Decodes the principal block into *who: 0 or AL_EINVAL. */
static int principal_decode(const char *enc, size_t len, struct ald_principal *who)
{
    unsigned char raw[ALD_PEER_PRINCIPAL_MAX / 4 * 3 + 2];
    long n = al_base64url_decode(raw, enc, len);
    if (n < 0)
        return AL_EINVAL;
    json_error_t je;
    json_t *o = json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    int err = AL_EINVAL;
    json_t *user = json_object_get(o, "user"), *kid = json_object_get(o, "key_id"),
           *admin = json_object_get(o, "admin"), *ms = json_object_get(o, "max_sessions"),
           *mm = json_object_get(o, "max_memory_mb");
    if (json_is_object(o) && json_is_string(user) && json_is_string(kid) &&
        json_is_boolean(admin) && json_is_integer(ms) && json_is_integer(mm) &&
        json_string_length(user) > 0 && json_string_length(user) < sizeof(who->user) &&
        strlen(json_string_value(user)) == json_string_length(user) &&
        json_string_length(kid) < sizeof(who->key_id) &&
        strlen(json_string_value(kid)) == json_string_length(kid)) {
        memset(who, 0, sizeof(*who));
        snprintf(who->user, sizeof(who->user), "%s", json_string_value(user));
        snprintf(who->key_id, sizeof(who->key_id), "%s", json_string_value(kid));
        who->admin = json_is_true(admin);
        who->max_sessions = (int64_t)json_integer_value(ms);
        who->max_memory_mb = (int64_t)json_integer_value(mm);
        err = 0;
    }
    json_decref(o);
    return err;
}

#define FAIL(why, label)                                                                           \
    do {                                                                                           \
        *reason = (label);                                                                         \
        err = al_error_set(AL_EAUTH, "node signature: %s", (why));                                 \
        goto out;                                                                                  \
    } while (0)

int ald_peer_verify(struct ald_peer_guard *g, const unsigned char k_req[32], const char *self,
                    const char *method, const char *uri, const char *upgrade,
                    const char *(*hdr)(void *cls, const char *name), void *cls, uint64_t now_ms,
                    struct ald_principal *who, unsigned char want_body_sha[32], char node_out[64],
                    const char **reason)
{
    static const char *unused;
    if (!reason)
        reason = &unused;
    *reason = NULL;
    node_out[0] = '\0';
    int err = 0;
    struct al_buf b;
    al_buf_init(&b, 64 * 1024);
    size_t nl = 0, tl = 0, ncl = 0, pl = 0, bl = 0, sl = 0;
    const char *node = hdr_get(hdr, cls, "X-Airlock-Node", 63, &nl);
    const char *time_s = hdr_get(hdr, cls, "X-Airlock-Time", 20, &tl);
    const char *nonce = hdr_get(hdr, cls, "X-Airlock-Nonce", 32, &ncl);
    const char *principal = hdr_get(hdr, cls, "X-Airlock-Principal", ALD_PEER_PRINCIPAL_MAX, &pl);
    const char *body = hdr_get(hdr, cls, "X-Airlock-Body-SHA256", 64, &bl);
    const char *sig = hdr_get(hdr, cls, "X-Airlock-Signature", 67, &sl);
    if (!node && !time_s && !nonce && !principal && !body && !sig)
        FAIL("no signature headers", "missing");
    if (!node || !time_s || !nonce || !principal || !body || !sig)
        FAIL("a signature header is missing, too long or holds control bytes", "malformed");
    if (!node_ok(node, nl))
        FAIL("bad node id", "malformed");
    if (!self || !node_ok(self, strlen(self)))
        FAIL("this node has no id", "missing");
    uint64_t t = 0;
    if (tl > 15 || ald_parse_u64(time_s, UINT64_MAX, &t) < 0 || strspn(time_s, "0123456789") != tl)
        FAIL("bad time", "malformed");
    if (!lower_hex(nonce, ncl, 32) || !lower_hex(body, bl, 64))
        FAIL("bad nonce or body hash", "malformed");
    if (sl != 67 || memcmp(sig, "v1=", 3) != 0 || !lower_hex(sig + 3, 64, 64))
        FAIL("bad signature format", "malformed");
    char mac[65];
    if (signed_text(&b, method, uri, time_s, nonce, node, self, principal, body, upgrade) < 0) {
        *reason = "malformed";
        err = al_error_set(AL_ENOMEM, "node signature: out of memory");
        goto out;
    }
    hmac_hex(k_req, &b, mac);
    if (CRYPTO_memcmp(mac, sig + 3, 64) != 0)
        FAIL("signature mismatch", "signature");
    if ((t > now_ms && t - now_ms > ALD_PEER_SKEW_MS) ||
        (t <= now_ms && now_ms - t > ALD_PEER_SKEW_MS))
        FAIL("time outside 30 s", "skew");
    if (principal_decode(principal, pl, who) < 0)
        FAIL("bad principal", "malformed");
    unsigned char nraw[16];
    if (al_hex_decode(nraw, nonce, 16) < 0 || al_hex_decode(want_body_sha, body, 32) < 0)
        FAIL("bad hex", "malformed");
    int gerr = guard_add(g, nraw, t + ALD_PEER_SKEW_MS + 1000, now_ms);
    if (gerr == AL_EAGAIN) {
        *reason = "full";
        err = al_error_set(AL_EAGAIN, "node signature: the nonce set is full");
        goto out;
    }
    if (gerr < 0)
        FAIL("nonce replayed", "replay");
    snprintf(node_out, 64, "%.*s", (int)nl, node);
out:
    al_buf_free(&b);
    if (err < 0)
        memset(who, 0, sizeof(*who));
    return err;
}

int ald_peer_connect(const char *address, unsigned timeout_ms)
{
    char host[256], port[8];
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port))
        return al_error_set(AL_EINVAL, "peer: bad address \"%s\"", address);
    size_t hl = (size_t)(colon - address);
    if (address[0] == '[' && hl >= 2 && address[hl - 1] == ']') {
        address++;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return al_error_set(AL_EINVAL, "peer: bad address");
    memcpy(host, address, hl);
    host[hl] = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
        return al_error_set(AL_EIO, "cannot resolve %s", host);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int err = 0;
    if (fd < 0) {
        err = al_error_set_errno(AL_EIO, errno, "socket");
    } else if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
        err = al_error_set_errno(AL_EIO, errno, "connect");
    } else {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n;
        do
            n = poll(&p, 1, (int)timeout_ms);
        while (n < 0 && errno == EINTR);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (n == 0)
            err = al_error_set(AL_EIO, "connect: timed out after %u ms", timeout_ms);
        else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            err = al_error_set_errno(AL_EIO, errno, "connect");
        else if (soerr)
            err = al_error_set_errno(AL_EIO, soerr, "connect");
    }
    freeaddrinfo(ai);
    if (err == 0) {
        int flags = fcntl(fd, F_GETFL);
        int one = 1;
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
    }
    if (fd >= 0)
        close(fd);
    return err;
}
