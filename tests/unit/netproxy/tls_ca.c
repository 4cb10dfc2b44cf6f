#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/error.h"
#include "airlock/netproxy.h"
#include "tls_ca.h"

static void test_generate_and_mint(void **state)
{
    (void)state;
    char *cert = NULL, *key = NULL;
    struct np_tls *t = NULL;

    assert_int_equal(np_ca_generate(&cert, &key, "airlock session test"), 0);
    assert_non_null(strstr(cert, "BEGIN CERTIFICATE"));
    assert_non_null(strstr(key, "PRIVATE KEY"));
    assert_int_equal(np_tls_new(&t, cert, key, NULL), 0);

    X509 *leaf = np_tls_leaf_mint(t, "api.example.com", false);
    assert_non_null(leaf);
    assert_int_equal(X509_check_host(leaf, "api.example.com", 0, 0, NULL), 1);
    assert_int_not_equal(X509_check_host(leaf, "other.example.com", 0, 0, NULL), 1);
    /* signed by the CA */
    BIO *b = BIO_new_mem_buf(cert, -1);
    X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(ca);
    EVP_PKEY *capub = X509_get_pubkey(ca);
    assert_int_equal(X509_verify(leaf, capub), 1);
    assert_int_equal(X509_check_ca(leaf), 0);
    EVP_PKEY_free(capub);
    X509_free(leaf);

    X509 *ipleaf = np_tls_leaf_mint(t, "10.1.2.3", true);
    assert_non_null(ipleaf);
    assert_int_equal(X509_check_ip_asc(ipleaf, "10.1.2.3", 0), 1);
    X509_free(ipleaf);

    /* the cache hands out the same context for a host */
    SSL_CTX *a = np_tls_server_ctx(t, "api.example.com", false);
    SSL_CTX *a2 = np_tls_server_ctx(t, "api.example.com", false);
    assert_non_null(a);
    assert_ptr_equal(a, a2);
    SSL_CTX_free(a);
    SSL_CTX_free(a2);
    np_tls_unref(t);
    X509_free(ca);
    free(cert);
    free(key);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    char *c1, *k1, *c2, *k2;
    struct np_tls *t = NULL;

    assert_int_equal(np_ca_generate(&c1, &k1, "one"), 0);
    assert_int_equal(np_ca_generate(&c2, &k2, "two"), 0);
    assert_int_equal(np_tls_new(&t, c1, k2, NULL), AL_EINVAL);
    assert_non_null(strstr(al_error_last(), "does not match"));
    assert_int_equal(np_tls_new(&t, "junk", k1, NULL), AL_EINVAL);
    assert_int_equal(np_tls_new(&t, c1, "junk", NULL), AL_EINVAL);
    assert_int_equal(np_tls_new(&t, c1, k1, "no pem here"), AL_EINVAL);
    assert_int_equal(np_tls_new(&t, c1, k1, c2), 0);
    np_tls_unref(t);

    /* a leaf is not a CA */
    struct np_tls *t1 = NULL;
    assert_int_equal(np_tls_new(&t1, c1, k1, NULL), 0);
    X509 *leaf = np_tls_leaf_mint(t1, "x.example", false);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, leaf);
    char *lp;
    long n = BIO_get_mem_data(b, &lp);
    char *leafpem = strndup(lp, (size_t)n);
    BIO_free(b);
    X509_free(leaf);
    np_tls_unref(t1);
    /* the leaf's key is not k1, so pair it with... any key: refused either way */
    assert_int_equal(np_tls_new(&t, leafpem, k1, NULL), AL_EINVAL);
    free(leafpem);

    np_proxy *p;
    struct np_config cfg;
    np_config_init(&cfg);
    assert_int_equal(np_proxy_new(&p, &cfg), 0);
    assert_int_equal(np_proxy_set_tls(p, "s1", c1, k1, NULL), 0);
    assert_int_equal(np_proxy_set_tls(p, "s1", c1, k2, NULL), AL_EINVAL);
    struct al_credset none = {0};
    assert_int_equal(np_proxy_set_credentials(p, "s1", &none), 0);
    np_proxy_free(p);
    free(c1);
    free(k1);
    free(c2);
    free(k2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_and_mint),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
