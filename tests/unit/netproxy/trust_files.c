/* The files by which a sandbox trusts its session CA (trust_files.c): the
 * Java truststore read back with OpenSSL's own PKCS#12 parser, the bundle,
 * the binds, malformed PEM input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/netproxy.h"

#define JDK_TRUSTED_USAGE_OID "2.16.840.1.113894.746875.1.1"

static char *g_ca, *g_other; /* two CA certificates (PEM) */

static int setup(void **state)
{
    (void)state;
    char *key = NULL;
    if (np_ca_generate(&g_ca, &key, "trust test session CA") < 0)
        return -1;
    free(key);
    key = NULL;
    if (np_ca_generate(&g_other, &key, "trust test other CA") < 0)
        return -1;
    free(key);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_ca);
    free(g_other);
    return 0;
}

static X509 *pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

/* The attribute with OID `oid` of `bag`, or NULL. */
static const X509_ATTRIBUTE *bag_attr(const PKCS12_SAFEBAG *bag, const char *oid)
{
    const STACK_OF(X509_ATTRIBUTE) *attrs = PKCS12_SAFEBAG_get0_attrs(bag);
    for (int i = 0; i < sk_X509_ATTRIBUTE_num(attrs); i++) {
        X509_ATTRIBUTE *a = sk_X509_ATTRIBUTE_value(attrs, i);
        char txt[64];
        OBJ_obj2txt(txt, sizeof(txt), X509_ATTRIBUTE_get0_object(a), 1);
        if (strcmp(txt, oid) == 0)
            return a;
    }
    return NULL;
}

/* Checks that `der` is a PKCS#12 file with MAC password `pass` holding
 * exactly the certificates of `want` (in order), each a trusted entry for
 * Java named as np_trust_p12 promises. */
static void check_p12(const unsigned char *der, size_t len, const char *pass, X509 **want,
                      int n_want)
{
    const unsigned char *p = der;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    assert_non_null(p12);
    assert_ptr_equal(p, der + len);
    assert_int_equal(PKCS12_verify_mac(p12, pass, -1), 1);
    assert_int_equal(PKCS12_verify_mac(p12, "wrong", -1), 0);

    /* what a PKCS#12 reader makes of it: no key, every certificate */
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL;
    assert_int_equal(PKCS12_parse(p12, pass, &pkey, &cert, &ca), 1);
    assert_null(pkey);
    assert_null(cert);
    assert_int_equal(sk_X509_num(ca), n_want);
    sk_X509_pop_free(ca, X509_free);

    /* bag by bag: the certificate, its name, the trusted-usage attribute */
    STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
    assert_int_equal(sk_PKCS7_num(safes), 1);
    STACK_OF(PKCS12_SAFEBAG) *bags = PKCS12_unpack_p7data(sk_PKCS7_value(safes, 0));
    assert_int_equal(sk_PKCS12_SAFEBAG_num(bags), n_want);
    for (int i = 0; i < n_want; i++) {
        const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
        assert_int_equal(PKCS12_SAFEBAG_get_nid(bag), NID_certBag);
        X509 *x = PKCS12_SAFEBAG_get1_cert(bag);
        assert_non_null(x);
        assert_int_equal(X509_cmp(x, want[i]), 0);
        X509_free(x);
        char *name = PKCS12_get_friendlyname((PKCS12_SAFEBAG *)bag);
        char expect[32];
        snprintf(expect, sizeof(expect), i == 0 ? "airlock-session-ca" : "ca-%d", i);
        assert_non_null(name);
        assert_string_equal(name, expect);
        OPENSSL_free(name);
        const X509_ATTRIBUTE *a = bag_attr(bag, JDK_TRUSTED_USAGE_OID);
        assert_non_null(a);
        assert_int_equal(X509_ATTRIBUTE_count(a), 1);
        ASN1_TYPE *v = X509_ATTRIBUTE_get0_type((X509_ATTRIBUTE *)a, 0);
        assert_non_null(v);
        assert_int_equal(ASN1_TYPE_get(v), V_ASN1_OBJECT);
        assert_int_equal(OBJ_obj2nid(v->value.object), NID_anyExtendedKeyUsage);
    }
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    PKCS12_free(p12);
}

static void test_p12_two_certificates(void **state)
{
    (void)state;
    struct al_buf b;
    al_buf_init(&b, 1 << 20);
    /* a key block and junk text between the certificates are skipped */
    assert_int_equal(
        al_buf_printf(&b,
                      "%s\n# a comment line\n-----BEGIN PRIVATE KEY-----\n"
                      "MC4CAQAwBQYDK2VwBCIEIBcmOQ3W7Zqd0B/7ljjWd2mRWnzkQCVd5ng7h44f+Lp4\n"
                      "-----END PRIVATE KEY-----\n%s",
                      g_ca, g_other),
        0);
    X509 *want[2] = {pem_cert(g_ca), pem_cert(g_other)};
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(np_trust_p12(b.ptr, b.len, NP_TRUST_P12_PASSWORD, &der, &len), 0);
    assert_true(len > 0);
    check_p12(der, len, NP_TRUST_P12_PASSWORD, want, 2);
    free(der);
    /* the input need not be NUL-terminated: the length bounds it (the
     * second certificate is cut off by it, so only the first is read) */
    assert_int_equal(np_trust_p12(b.ptr, strlen(g_ca), "pw", &der, &len), 0);
    check_p12(der, len, "pw", want, 1);
    free(der);
    X509_free(want[0]);
    X509_free(want[1]);
    al_buf_free(&b);
}

/* `pem` with the character at `at` (inside the base64 body) replaced. */
static char *corrupt(const char *pem, size_t at, char c)
{
    char *s = strdup(pem);
    assert_non_null(s);
    assert_true(at < strlen(s));
    s[at] = c;
    return s;
}

static void expect_einval(const char *pem, size_t len, const char *msg)
{
    unsigned char *der = (unsigned char *)"unchanged";
    size_t n = 7;
    assert_int_equal(np_trust_p12(pem, len, "changeit", &der, &n), AL_EINVAL);
    assert_null(der);
    assert_int_equal(n, 0);
    if (!strstr(al_error_last(), msg))
        fail_msg("message \"%s\" lacks \"%s\"", al_error_last(), msg);
}

static void test_p12_malformed(void **state)
{
    (void)state;
    size_t body = strlen("-----BEGIN CERTIFICATE-----\n") + 40;
    expect_einval("", 0, "no certificate in the bundle");
    expect_einval("not PEM at all\n", 15, "no certificate in the bundle");
    expect_einval(g_ca, 0, "no certificate in the bundle");
    /* a block that is not a certificate alone: none */
    static const char key[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MC4CAQAwBQYDK2VwBCIEIBcmOQ3W7Zqd0B/7ljjWd2mRWnzkQCVd5ng7h44f+Lp4\n"
                              "-----END PRIVATE KEY-----\n";
    expect_einval(key, strlen(key), "no certificate in the bundle");
    /* bad base64 in the first certificate */
    char *bad = corrupt(g_ca, body, '*');
    expect_einval(bad, strlen(bad), "certificate 1 of the bundle is malformed");
    free(bad);
    /* valid base64 but not DER of a certificate (the SEQUENCE tag gone),
     * after a good one: an error, not a store that silently holds only the
     * first */
    size_t head = strlen("-----BEGIN CERTIFICATE-----\n");
    assert_int_equal(g_ca[head], 'M');
    bad = corrupt(g_ca, head, 'A');
    struct al_buf b;
    al_buf_init(&b, 1 << 20);
    assert_int_equal(al_buf_printf(&b, "%s%s", g_other, bad), 0);
    expect_einval(b.ptr, b.len, "certificate 2 of the bundle is malformed");
    free(bad);
    /* a certificate cut off before its end line */
    al_buf_reset(&b);
    assert_int_equal(al_buf_printf(&b, "%s%.*s", g_other, (int)(strlen(g_ca) / 2), g_ca), 0);
    expect_einval(b.ptr, b.len, "certificate 2 of the bundle is malformed");
    /* no end line at all */
    static const char open_only[] = "-----BEGIN CERTIFICATE-----\nMIIB\n";
    expect_einval(open_only, strlen(open_only), "certificate 1 of the bundle is malformed");
    /* NUL bytes inside the input */
    al_buf_reset(&b);
    assert_int_equal(al_buf_append(&b, g_ca, 40), 0);
    assert_int_equal(al_buf_append(&b, "\0\0\0", 3), 0);
    assert_int_equal(al_buf_puts(&b, g_ca + 40), 0);
    expect_einval(b.ptr, b.len, "certificate 1 of the bundle is malformed");
    al_buf_free(&b);
    /* no input, no password */
    unsigned char *der = NULL;
    size_t n = 0;
    assert_int_equal(np_trust_p12(NULL, 0, "changeit", &der, &n), AL_EINVAL);
    assert_int_equal(np_trust_p12(g_ca, strlen(g_ca), NULL, &der, &n), AL_EINVAL);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    struct al_buf b;
    al_buf_init(&b, 1 << 24);
    assert_int_equal(al_buf_read_file(&b, path), 0);
    return al_buf_detach(&b);
}

/* A fake root: /etc/pki/tls/certs/ca-bundle.crt (g_other), /etc/ssl/cert.pem
 * an absolute link to it (which, followed from outside the root, would be
 * the host's file), /etc/ssl/certs/ca-certificates.crt a relative link out
 * of the root to the host's /etc/hostname (inside the root: nothing). */
static void make_root(char *root, size_t size)
{
    snprintf(root, size, "/tmp/airlock-trust-root.XXXXXX");
    assert_non_null(mkdtemp(root));
    char p[PATH_MAX];
    static const char *const dirs[] = {"/etc",     "/etc/ssl",     "/etc/ssl/certs",
                                       "/etc/pki", "/etc/pki/tls", "/etc/pki/tls/certs"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
        snprintf(p, sizeof(p), "%s%s", root, dirs[i]);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    snprintf(p, sizeof(p), "%s/etc/pki/tls/certs/ca-bundle.crt", root);
    write_text(p, g_other);
    snprintf(p, sizeof(p), "%s/etc/ssl/cert.pem", root);
    assert_int_equal(symlink("/etc/pki/tls/certs/ca-bundle.crt", p), 0);
    snprintf(p, sizeof(p), "%s/etc/ssl/certs/ca-certificates.crt", root);
    assert_int_equal(symlink("../../../../../../../../../../etc/hostname", p), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 ? -1 : 0;
}

static void rm_rf(const char *path)
{
    assert_int_equal(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void test_bundle(void **state)
{
    (void)state;
    char root[256];
    make_root(root, sizeof(root));
    char *out = NULL;
    size_t len = 0;
    /* the CA, then the root's first bundle (the link that leaves the root
     * is not one: it would be the host's /etc/hostname), then extra */
    assert_int_equal(np_trust_bundle(&out, &len, g_ca, root, "EXTRA\n"), 0);
    assert_int_equal(strlen(out), len);
    assert_memory_equal(out, g_ca, strlen(g_ca));
    char *second = strstr(out + strlen(g_ca), "-----BEGIN CERTIFICATE-----");
    assert_non_null(second);
    assert_memory_equal(second, g_other, strlen(g_other));
    assert_non_null(strstr(out, "\nEXTRA\n"));
    free(out);
    /* a root without any bundle: the CA alone */
    char empty[] = "/tmp/airlock-trust-empty.XXXXXX";
    assert_non_null(mkdtemp(empty));
    assert_int_equal(np_trust_bundle(&out, &len, g_ca, empty, NULL), 0);
    assert_string_equal(out, g_ca);
    free(out);
    rmdir(empty);
    rm_rf(root);
}

static void test_files_write(void **state)
{
    (void)state;
    char root[256], p[PATH_MAX];
    make_root(root, sizeof(root));
    char dir[] = "/tmp/airlock-trust-dir.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct np_trust_files f;
    assert_int_equal(np_trust_files_write(&f, dir, root, g_ca, NULL), 0);
    /* the same paths as airlock run's: /run/airlock/..., and the bundle
     * over the root's bundle at its real path inside the root (of the two
     * links, one is that file as seen inside the root, the other leads
     * nowhere there) */
    static const char *const dst[] = {NP_TRUST_CA_PEM, NP_TRUST_BUNDLE, NP_TRUST_P12,
                                      "/etc/pki/tls/certs/ca-bundle.crt"};
    static const char *const src[] = {"ca.pem", "ca-bundle.pem", "truststore.p12", "ca-bundle.pem"};
    assert_int_equal(f.dst.len, 4);
    assert_int_equal(f.src.len, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(f.dst.items[i], dst[i]);
        snprintf(p, sizeof(p), "%s/%s", dir, src[i]);
        assert_string_equal(f.src.items[i], p);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0444);
    }
    char *ca = read_text(f.src.items[0]);
    assert_string_equal(ca, g_ca);
    free(ca);
    char *bundle = read_text(f.src.items[1]);
    assert_non_null(strstr(bundle, g_other));
    /* the truststore holds the bundle's certificates, the CA first */
    struct al_buf b;
    al_buf_init(&b, 1 << 20);
    assert_int_equal(al_buf_read_file(&b, f.src.items[2]), 0);
    X509 *want[2] = {pem_cert(g_ca), pem_cert(g_other)};
    check_p12((const unsigned char *)b.ptr, b.len, NP_TRUST_P12_PASSWORD, want, 2);
    X509_free(want[0]);
    X509_free(want[1]);
    al_buf_free(&b);
    free(bundle);
    np_trust_files_free(&f);
    /* the files exist already: refused, nothing bound */
    assert_int_equal(np_trust_files_write(&f, dir, root, g_ca, NULL), AL_EEXISTS);
    assert_int_equal(f.dst.len, 0);
    /* a root bundle that is malformed: refused, naming it */
    snprintf(p, sizeof(p), "%s/etc/pki/tls/certs/ca-bundle.crt", root);
    write_text(p, "-----BEGIN CERTIFICATE-----\nMIIB\n");
    char dir2[] = "/tmp/airlock-trust-dir2.XXXXXX";
    assert_non_null(mkdtemp(dir2));
    assert_int_equal(np_trust_files_write(&f, dir2, root, g_ca, NULL), AL_EINVAL);
    assert_non_null(strstr(al_error_last(), "certificate 2 of the bundle is malformed"));
    assert_int_equal(f.dst.len, 0);
    /* no directory */
    assert_int_equal(np_trust_files_write(&f, "", root, g_ca, NULL), AL_EINVAL);
    rm_rf(dir2);
    rm_rf(dir);
    rm_rf(root);
}

static void test_java_options(void **state)
{
    (void)state;
    char out[512];
    static const char store[] = "-Djavax.net.ssl.trustStore=/run/airlock/truststore.p12 "
                                "-Djavax.net.ssl.trustStoreType=PKCS12 "
                                "-Djavax.net.ssl.trustStorePassword=changeit";
    assert_int_equal(np_trust_java_options(out, sizeof(out), NULL), 0);
    assert_string_equal(out, store);
    assert_int_equal(np_trust_java_options(out, sizeof(out), ""), 0);
    assert_string_equal(out, store);
    assert_int_equal(np_trust_java_options(out, sizeof(out), "-Dhttps.proxyPort=3128"), 0);
    assert_string_equal(out, "-Dhttps.proxyPort=3128 -Djavax.net.ssl.trustStore="
                             "/run/airlock/truststore.p12 -Djavax.net.ssl.trustStoreType=PKCS12 "
                             "-Djavax.net.ssl.trustStorePassword=changeit");
    assert_int_equal(np_trust_java_options(out, 20, NULL), AL_ETOOBIG);
    assert_string_equal(out, "");
    /* the variables: the bundle, Node the CA alone */
    int seen = 0;
    for (size_t i = 0; i < np_trust_n_vars; i++) {
        const char *want = strcmp(np_trust_vars[i].name, "NODE_EXTRA_CA_CERTS") == 0
                               ? NP_TRUST_CA_PEM
                               : NP_TRUST_BUNDLE;
        assert_string_equal(np_trust_vars[i].value, want);
        seen++;
    }
    assert_int_equal(seen, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p12_two_certificates),
        cmocka_unit_test(test_p12_malformed),
        cmocka_unit_test(test_bundle),
        cmocka_unit_test(test_files_write),
        cmocka_unit_test(test_java_options),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
