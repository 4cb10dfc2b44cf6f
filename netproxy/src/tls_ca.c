/* Session CA, leaf certificates and the SSL_CTXs of TLS termination. */
#include "tls_ca.h"

#include "airlock/error.h"
#include "airlock/netproxy.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEAF_DAYS_MAX 30

struct leaf_entry {
    char *host;
    bool is_ip;
    SSL_CTX *ctx;
    uint64_t used; /* LRU stamp */
};

/* an upstream's last TLS session, for resumption */
struct sess_entry {
    char *key; /* "dns:" or "ip:", host, ":" port */
    SSL_SESSION *sess;
    uint64_t used; /* LRU stamp */
};

struct np_tls {
    atomic_int refs;
    X509 *ca;
    EVP_PKEY *ca_key;
    EVP_PKEY *leaf_key; /* one key for every leaf of the session */
    SSL_CTX *client;
    pthread_mutex_t lock; /* guards the cache */
    struct leaf_entry cache[NP_TLS_LEAF_CACHE];
    size_t n_cache;
    struct sess_entry sess[NP_TLS_SESS_CACHE];
    size_t n_sess;
    uint64_t tick;
};

/* SSL ex_data index of the upstream's key on an upstream SSL */
static int g_key_idx = -1;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

static void key_idx_init(void)
{
    g_key_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* OpenSSL hands each session the upstream gives (after a handshake that
 * verified it: the client context verifies peers) to this; it is kept under
 * the key np_tls_client_session set, replacing the one before. Returns 1
 * when the reference is taken. */
static int sess_new_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct np_tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    const char *key = g_key_idx >= 0 ? SSL_get_ex_data(ssl, g_key_idx) : NULL;
    struct sess_entry *slot = NULL;

    if (!t || !key || SSL_get_verify_result(ssl) != X509_V_OK || !SSL_SESSION_is_resumable(sess))
        return 0;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n_sess && !slot; i++)
        if (strcmp(t->sess[i].key, key) == 0)
            slot = &t->sess[i];
    if (!slot) {
        char *copy = strdup(key);
        if (!copy) {
            pthread_mutex_unlock(&t->lock);
            return 0;
        }
        if (t->n_sess < NP_TLS_SESS_CACHE) {
            slot = &t->sess[t->n_sess++];
        } else {
            slot = &t->sess[0];
            for (size_t i = 1; i < t->n_sess; i++)
                if (t->sess[i].used < slot->used)
                    slot = &t->sess[i];
            free(slot->key);
        }
        slot->key = copy;
        slot->sess = NULL;
    }
    SSL_SESSION_free(slot->sess);
    slot->sess = sess;
    slot->used = ++t->tick;
    pthread_mutex_unlock(&t->lock);
    return 1;
}

/* Sets an error naming `what` with OpenSSL's first queued reason. */
static int ssl_error(int code, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return al_error_set(code, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

static int set_random_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    int ok = bn && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : AL_EIO;
}

/* Adds extension `nid` with value `value` (OpenSSL config syntax). */
static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return AL_EIO;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : AL_EIO;
}

static char *pem_of(int (*write)(BIO *, void *), void *obj)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL, *data;
    if (b && write(b, obj)) {
        long n = BIO_get_mem_data(b, &data);
        if (n > 0 && (out = malloc((size_t)n + 1))) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(b);
    return out;
}

static int write_cert(BIO *b, void *x)
{
    return PEM_write_bio_X509(b, x);
}

static int write_key(BIO *b, void *k)
{
    return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

int np_ca_generate(char **cert_pem, char **key_pem, const char *common_name)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    int err = 0;

    *cert_pem = *key_pem = NULL;
    if (!key || !x) {
        err = ssl_error(AL_EIO, "CA key");
        goto out;
    }
    name = X509_get_subject_name(x);
    if (!X509_set_version(x, 2) || set_random_serial(x) < 0 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)LEAF_DAYS_MAX * 86400) ||
        !X509_set_pubkey(x, key) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name,
                                    -1, -1, 0) ||
        !X509_set_issuer_name(x, name) ||
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
        add_ext(x, x, NID_subject_key_identifier, "hash") < 0 ||
        add_ext(x, x, NID_authority_key_identifier, "keyid:always") < 0 ||
        !X509_sign(x, key, EVP_sha256())) {
        err = ssl_error(AL_EIO, "CA certificate");
        goto out;
    }
    *cert_pem = pem_of(write_cert, x);
    *key_pem = pem_of(write_key, key);
    if (!*cert_pem || !*key_pem) {
        free(*cert_pem);
        if (*key_pem)
            OPENSSL_clear_free(*key_pem, strlen(*key_pem));
        *cert_pem = *key_pem = NULL;
        err = AL_ENOMEM;
    }
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return err;
}

/* ALPN (server side): http/1.1 only. A client that offers no http/1.1 gets
 * no ALPN answer and speaks HTTP/1.1 by default; h2 is never selected. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen;) {
        unsigned n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static int load_extra_trust(X509_STORE *store, const char *pem)
{
    BIO *b;
    int n = 0, err = 0;

    if (!pem || !*pem)
        return 0;
    if (!(b = BIO_new_mem_buf(pem, -1)))
        return AL_ENOMEM;
    for (;;) {
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
            break;
        if (!X509_STORE_add_cert(store, x))
            ERR_clear_error(); /* a duplicate is fine */
        X509_free(x);
        n++;
    }
    ERR_clear_error();
    if (n == 0)
        err = al_error_set(AL_EINVAL, "extra trust anchors: no PEM certificate found");
    BIO_free(b);
    return err;
}

int np_tls_new(struct np_tls **out, const char *ca_cert_pem, const char *ca_key_pem,
               const char *extra_trust_pem)
{
    struct np_tls *t = calloc(1, sizeof(*t));
    BIO *b = NULL;
    int err = 0;

    if (!t)
        return AL_ENOMEM;
    atomic_init(&t->refs, 1);
    pthread_mutex_init(&t->lock, NULL);
    if (!ca_cert_pem || !ca_key_pem) {
        err = al_error_set(AL_EINVAL, "session CA: certificate and key are required");
        goto out;
    }
    if (!(b = BIO_new_mem_buf(ca_cert_pem, -1)) ||
        !(t->ca = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        err = ssl_error(AL_EINVAL, "session CA: bad certificate PEM");
        goto out;
    }
    BIO_free(b);
    if (!(b = BIO_new_mem_buf(ca_key_pem, -1)) ||
        !(t->ca_key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL))) {
        err = ssl_error(AL_EINVAL, "session CA: bad key PEM");
        goto out;
    }
    if (X509_check_private_key(t->ca, t->ca_key) != 1) {
        err = ssl_error(AL_EINVAL, "session CA: the key does not match the certificate");
        goto out;
    }
    if (X509_check_ca(t->ca) == 0) {
        err = al_error_set(AL_EINVAL, "session CA: the certificate is not a CA");
        goto out;
    }
    if (!(t->leaf_key = EVP_EC_gen("P-256"))) {
        err = ssl_error(AL_EIO, "leaf key");
        goto out;
    }
    if (!(t->client = SSL_CTX_new(TLS_client_method()))) {
        err = ssl_error(AL_ENOMEM, "SSL_CTX_new");
        goto out;
    }
    SSL_CTX_set_min_proto_version(t->client, TLS1_2_VERSION);
    SSL_CTX_set_verify(t->client, SSL_VERIFY_PEER, NULL);
    /* OpenSSL's default paths: SSL_CERT_FILE / SSL_CERT_DIR in the proxy's
     * environment replace the system store */
    if (!SSL_CTX_set_default_verify_paths(t->client))
        ERR_clear_error();
    if ((err = load_extra_trust(SSL_CTX_get_cert_store(t->client), extra_trust_pem)) < 0)
        goto out;
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(t->client, alpn, sizeof(alpn) - 1);
    /* upstream sessions are kept per upstream (sess_new_cb) and offered by
     * np_tls_client_session; OpenSSL's own store stays unused */
    SSL_CTX_set_session_cache_mode(t->client,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_set_app_data(t->client, t);
    SSL_CTX_sess_set_new_cb(t->client, sess_new_cb);
    *out = t;
    t = NULL;
out:
    BIO_free(b);
    np_tls_unref(t);
    return err;
}

void np_tls_ref(struct np_tls *t)
{
    atomic_fetch_add(&t->refs, 1);
}

void np_tls_unref(struct np_tls *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    for (size_t i = 0; i < t->n_cache; i++) {
        free(t->cache[i].host);
        SSL_CTX_free(t->cache[i].ctx);
    }
    for (size_t i = 0; i < t->n_sess; i++) {
        free(t->sess[i].key);
        SSL_SESSION_free(t->sess[i].sess);
    }
    SSL_CTX_free(t->client);
    EVP_PKEY_free(t->leaf_key);
    EVP_PKEY_free(t->ca_key);
    X509_free(t->ca);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

X509 *np_tls_leaf_mint(struct np_tls *t, const char *host, bool is_ip)
{
    X509 *x = X509_new();
    char san[NP_TLS_SAN_MAX];
    time_t now = time(NULL);
    time_t until = now + (time_t)LEAF_DAYS_MAX * 86400;
    const ASN1_TIME *ca_end = X509_get0_notAfter(t->ca);
    int day = 0, sec = 0;

    if (!x)
        return NULL;
    /* never past the CA's own end */
    if (ASN1_TIME_diff(&day, &sec, NULL, ca_end) && (long)day * 86400 + sec < until - now)
        until = now + (time_t)day * 86400 + sec;
    snprintf(san, sizeof(san), "%s:%s", is_ip ? "IP" : "DNS", host);
    X509_NAME *name = X509_get_subject_name(x);
    if (!X509_set_version(x, 2) || set_random_serial(x) < 0 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), until) || !X509_set_pubkey(x, t->leaf_key) ||
        (strlen(host) <= 64 &&
         !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)host, -1, -1,
                                     0)) ||
        !X509_set_issuer_name(x, X509_get_subject_name(t->ca)) ||
        add_ext(x, t->ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(x, t->ca, NID_key_usage, "critical,digitalSignature") < 0 ||
        add_ext(x, t->ca, NID_ext_key_usage, "serverAuth") < 0 ||
        add_ext(x, t->ca, NID_subject_alt_name, san) < 0 ||
        add_ext(x, t->ca, NID_authority_key_identifier, "keyid:always") < 0 ||
        !X509_sign(x, t->ca_key, EVP_sha256())) {
        ssl_error(AL_EIO, "leaf certificate");
        X509_free(x);
        return NULL;
    }
    return x;
}

static SSL_CTX *server_ctx_make(struct np_tls *t, const char *host, bool is_ip)
{
    X509 *leaf = np_tls_leaf_mint(t, host, is_ip);
    SSL_CTX *ctx = NULL;

    if (!leaf)
        return NULL;
    if (!(ctx = SSL_CTX_new(TLS_server_method())) || !SSL_CTX_use_certificate(ctx, leaf) ||
        !SSL_CTX_use_PrivateKey(ctx, t->leaf_key)) {
        ssl_error(AL_EIO, "server SSL_CTX");
        SSL_CTX_free(ctx);
        ctx = NULL;
    } else {
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
        /* tickets and the session cache would outlive the session's CA
         * replacement; a handshake with a cached leaf is cheap enough */
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    X509_free(leaf);
    return ctx;
}

SSL_CTX *np_tls_server_ctx(struct np_tls *t, const char *host, bool is_ip)
{
    SSL_CTX *ctx = NULL;

    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n_cache; i++) {
        struct leaf_entry *e = &t->cache[i];
        if (e->is_ip == is_ip && strcmp(e->host, host) == 0) {
            e->used = ++t->tick;
            ctx = e->ctx;
            SSL_CTX_up_ref(ctx);
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (ctx)
        return ctx;

    /* minted outside the lock: two threads may both mint for a new host;
     * the second one's context replaces nothing and is simply cached too */
    if (!(ctx = server_ctx_make(t, host, is_ip)))
        return NULL;
    char *copy = strdup(host);
    if (!copy)
        return ctx; /* usable, just not cached */
    pthread_mutex_lock(&t->lock);
    struct leaf_entry *slot;
    if (t->n_cache < NP_TLS_LEAF_CACHE) {
        slot = &t->cache[t->n_cache++];
    } else {
        slot = &t->cache[0];
        for (size_t i = 1; i < t->n_cache; i++)
            if (t->cache[i].used < slot->used)
                slot = &t->cache[i];
        free(slot->host);
        SSL_CTX_free(slot->ctx);
    }
    slot->host = copy;
    slot->is_ip = is_ip;
    slot->ctx = ctx;
    slot->used = ++t->tick;
    SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&t->lock);
    return ctx;
}

SSL_CTX *np_tls_client_ctx(struct np_tls *t)
{
    SSL_CTX_up_ref(t->client);
    return t->client;
}

int np_tls_client_session(struct np_tls *t, SSL *ssl, const char *key)
{
    SSL_SESSION *sess = NULL;

    pthread_once(&g_key_once, key_idx_init);
    if (g_key_idx < 0 || !SSL_set_ex_data(ssl, g_key_idx, (void *)key))
        return al_error_set(AL_ENOMEM, "SSL_set_ex_data");
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n_sess; i++) {
        if (strcmp(t->sess[i].key, key) == 0) {
            SSL_SESSION *c = t->sess[i].sess;
            /* past the lifetime the upstream gave it: not offered */
            if (time(NULL) < (time_t)(SSL_SESSION_get_time(c) + SSL_SESSION_get_timeout(c))) {
                t->sess[i].used = ++t->tick;
                sess = c;
                SSL_SESSION_up_ref(sess);
            }
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (sess) {
        if (!SSL_set_session(ssl, sess))
            ERR_clear_error(); /* a full handshake then */
        SSL_SESSION_free(sess);
    }
    return 0;
}
