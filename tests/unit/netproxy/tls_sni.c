#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tls_sni.h"

/* Builds a minimal ClientHello record with an optional server_name. */
static size_t hello(unsigned char *out, const char *sni)
{
    unsigned char body[512];
    size_t n = 0;
    body[n++] = 3;
    body[n++] = 3;
    memset(body + n, 0x11, 32);
    n += 32;
    body[n++] = 0; /* session id */
    body[n++] = 0;
    body[n++] = 2; /* cipher suites length */
    body[n++] = 0x13;
    body[n++] = 0x01;
    body[n++] = 1; /* compression */
    body[n++] = 0;
    size_t ext_len_at = n;
    n += 2;
    if (sni) {
        size_t l = strlen(sni);
        body[n++] = 0;
        body[n++] = 0; /* type server_name */
        body[n++] = (unsigned char)((l + 5) >> 8);
        body[n++] = (unsigned char)(l + 5);
        body[n++] = (unsigned char)((l + 3) >> 8);
        body[n++] = (unsigned char)(l + 3);
        body[n++] = 0; /* host_name */
        body[n++] = (unsigned char)(l >> 8);
        body[n++] = (unsigned char)l;
        memcpy(body + n, sni, l);
        n += l;
    }
    size_t ext_len = n - ext_len_at - 2;
    body[ext_len_at] = (unsigned char)(ext_len >> 8);
    body[ext_len_at + 1] = (unsigned char)ext_len;
    out[0] = 0x16;
    out[1] = 3;
    out[2] = 1;
    out[3] = (unsigned char)((n + 4) >> 8);
    out[4] = (unsigned char)(n + 4);
    out[5] = 1;
    out[6] = 0;
    out[7] = (unsigned char)(n >> 8);
    out[8] = (unsigned char)n;
    memcpy(out + 9, body, n);
    return n + 9;
}

static void finds_sni(void **state)
{
    unsigned char rec[600];
    char name[256];
    size_t len = hello(rec, "allowed.com");
    assert_int_equal(np_tls_sni_parse(rec, len, name, sizeof(name)), NP_SNI_FOUND);
    assert_string_equal(name, "allowed.com");
    for (size_t i = 0; i < len; i++)
        assert_int_equal(np_tls_sni_parse(rec, i, name, sizeof(name)), NP_SNI_NEED_MORE);
    len = hello(rec, NULL);
    assert_int_equal(np_tls_sni_parse(rec, len, name, sizeof(name)), NP_SNI_NONE);
}

static void not_tls_and_malformed(void **state)
{
    unsigned char rec[600];
    char name[256];
    assert_int_equal(np_tls_sni_parse((const unsigned char *)"SSH-2.0-x\r\n", 11, name, 256),
                     NP_SNI_NOT_TLS);
    size_t len = hello(rec, "a.com");
    rec[8] = 0xff; /* handshake longer than the record */
    assert_int_equal(np_tls_sni_parse(rec, len, name, sizeof(name)), NP_SNI_MALFORMED);
    len = hello(rec, "a.com");
    rec[len - 3] = 0; /* NUL inside the name */
    assert_int_equal(np_tls_sni_parse(rec, len, name, sizeof(name)), NP_SNI_MALFORMED);
    len = hello(rec, "a.com");
    assert_int_equal(np_tls_sni_parse(rec, len, name, 4), NP_SNI_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_sni),
        cmocka_unit_test(not_tls_and_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
