/* airlock/base64.h: both alphabets against RFC 4648's vectors, round trips
 * of every length, output bounds, and malformed input of every kind each
 * decoder must refuse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "airlock/base64.h"
#include "airlock/error.h"

static const char *const rfc[][3] = {
    /* input, standard, url-safe unpadded (RFC 4648 section 10) */
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void rfc_vectors(void **state)
{
    (void)state;
    unsigned char out[16];
    for (size_t i = 0; i < sizeof(rfc) / sizeof(*rfc); i++) {
        const char *in = rfc[i][0];
        size_t n = strlen(in);
        char *std = al_base64_encode((const unsigned char *)in, n);
        char *url = al_base64url_encode((const unsigned char *)in, n);
        assert_non_null(std);
        assert_non_null(url);
        assert_string_equal(std, rfc[i][1]);
        assert_string_equal(url, rfc[i][2]);
        free(std);
        free(url);
        assert_int_equal(al_base64_decode(out, rfc[i][1], strlen(rfc[i][1])), (long)n);
        assert_memory_equal(out, in, n);
        assert_int_equal(al_base64url_decode(out, rfc[i][2], strlen(rfc[i][2])), (long)n);
        assert_memory_equal(out, in, n);
    }
}

/* The two alphabets differ in 62 and 63 only. */
static void alphabets(void **state)
{
    (void)state;
    static const unsigned char bytes[] = {0xfb, 0xff, 0xbf};
    unsigned char out[8];
    char *std = al_base64_encode(bytes, 3);
    char *url = al_base64url_encode(bytes, 3);
    assert_string_equal(std, "+/+/");
    assert_string_equal(url, "-_-_");
    free(std);
    free(url);
    assert_int_equal(al_base64_decode(out, "+/+/", 4), 3);
    assert_memory_equal(out, bytes, 3);
    assert_int_equal(al_base64url_decode(out, "-_-_", 4), 3);
    assert_memory_equal(out, bytes, 3);
    /* each decoder refuses the other's two characters */
    assert_int_equal(al_base64_decode(out, "-_-_", 4), AL_EINVAL);
    assert_int_equal(al_base64url_decode(out, "+/+/", 4), AL_EINVAL);
}

/* Every length from 0 to 200 bytes of every byte value: encode, decode into
 * a buffer of exactly the documented size plus a canary, compare. */
static void round_trips_within_bounds(void **state)
{
    (void)state;
    unsigned char data[200];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(data); n++) {
        char *std = al_base64_encode(data, n);
        char *url = al_base64url_encode(data, n);
        assert_non_null(std);
        assert_non_null(url);
        size_t slen = strlen(std), ulen = strlen(url);
        assert_int_equal(slen + 1, AL_BASE64_ENCODED_SIZE(n));
        assert_int_equal(ulen, (n * 4 + 2) / 3); /* unpadded: ceil(8n / 6) */
        assert_null(strchr(url, '='));

        size_t scap = slen / 4 * 3, ucap = ulen / 4 * 3 + 2;
        unsigned char *out = malloc(scap + ucap + 8);
        assert_non_null(out);
        memset(out, 0xa5, scap + ucap + 8);
        assert_int_equal(al_base64_decode(out, std, slen), (long)n);
        assert_memory_equal(out, data, n);
        for (size_t k = scap; k < scap + 8; k++)
            assert_int_equal(out[k], 0xa5);
        memset(out, 0xa5, scap + ucap + 8);
        assert_int_equal(al_base64url_decode(out, url, ulen), (long)n);
        assert_memory_equal(out, data, n);
        for (size_t k = ucap; k < ucap + 8; k++)
            assert_int_equal(out[k], 0xa5);
        free(out);
        free(std);
        free(url);
    }
}

static void encode_into_buffer(void **state)
{
    (void)state;
    char buf[16];
    assert_int_equal(AL_BASE64_ENCODED_SIZE(5), 9);
    assert_int_equal(al_base64_encode_buf(buf, 9, (const unsigned char *)"fooba", 5), 8);
    assert_string_equal(buf, "Zm9vYmE=");
    /* one byte short: refused, nothing written */
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(al_base64_encode_buf(buf, 8, (const unsigned char *)"fooba", 5), AL_ETOOBIG);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 'x');
    assert_int_equal(al_base64_encode_buf(buf, 1, (const unsigned char *)"", 0), 0);
    assert_string_equal(buf, "");
    assert_int_equal(al_base64_encode_buf(buf, 0, (const unsigned char *)"", 0), AL_ETOOBIG);
}

/* Malformed standard base64: each must be AL_EINVAL with a message. */
static void standard_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
    } bad[] = {
        {"Zg=", 3},        /* not a multiple of 4 */
        {"Zg", 2},         /* padding left out */
        {"Z", 1},          /* one character */
        {"Zm9vY", 5},      /* 5 */
        {"====", 4},       /* padding alone */
        {"Z===", 4},       /* three pad characters */
        {"=Zg=", 4},       /* padding first */
        {"Z=g=", 4},       /* padding inside */
        {"Zg=x", 4},       /* data after padding */
        {"Zg==Zg==", 8},   /* padding in a group that is not the last */
        {"Zm9v\nYmFy", 9}, /* newline */
        {"Zm9v YmE", 8},   /* space */
        {"Zm9\tvYmFy", 9}, /* tab */
        {"Zm\0v", 4},      /* NUL inside: the length counts, not the NUL */
        {"Zm9-", 4},       /* url-safe character */
        {"Zm9_", 4},       /* url-safe character */
        {"Zm9\x80", 4},    /* 8-bit */
        {"Zm9\xff", 4},    /* 8-bit */
        {"Zm9.", 4},       /* punctuation */
    };
    unsigned char out[16];
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        al_error_clear();
        assert_int_equal(al_base64_decode(out, bad[i].in, bad[i].len), AL_EINVAL);
        assert_string_not_equal(al_error_last(), "");
        unsigned char *p = (unsigned char *)"x";
        size_t n = 7;
        assert_int_equal(al_base64_decode_alloc(&p, &n, bad[i].in, bad[i].len), AL_EINVAL);
        assert_null(p);
        assert_int_equal(n, 0);
    }
}

/* Malformed or non-canonical base64url: each must be AL_EINVAL. */
static void url_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
    } bad[] = {
        {"A", 1},                        /* 1 mod 4: no byte ends there */
        {"Zm9vY", 5},                    /* 1 mod 4 */
        {"Zg==", 4},                     /* padding */
        {"Zm8=", 4},                     /* padding */
        {"=", 1},                        /* padding alone */
        {"Zh", 2},                       /* unused bits set: "f" is only "Zg" */
        {"Zm9", 3},                      /* unused bits set: "fo" is only "Zm8" */
        {"AB", 2},                       /* unused bits set */
        {"Zm9v+mFy", 8},                 /* standard character */
        {"Zm9v/mFy", 8},                 /* standard character */
        {"Zm9v YmFy", 9},                /* space */
        {"Zm9vYmFy\n", 9}, {"Zm\0v", 4}, /* NUL inside */
        {"Zm9\x80", 4},    {"Zm9\xff", 4}, {"Zm9%", 4},
    };
    unsigned char out[16];
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        al_error_clear();
        assert_int_equal(al_base64url_decode(out, bad[i].in, bad[i].len), AL_EINVAL);
        assert_string_not_equal(al_error_last(), "");
    }
    /* and the canonical spellings of the same bytes pass */
    assert_int_equal(al_base64url_decode(out, "Zg", 2), 1);
    assert_int_equal(al_base64url_decode(out, "Zm8", 3), 2);
    assert_int_equal(al_base64url_decode(out, "", 0), 0);
}

/* The decoders read exactly `len` bytes: no NUL is needed or looked for. */
static void reads_only_len(void **state)
{
    (void)state;
    unsigned char out[8];
    char *in = malloc(4);
    assert_non_null(in);
    memcpy(in, "Zm8x", 4); /* no NUL after it: ASan sees any read past */
    assert_int_equal(al_base64_decode(out, in, 4), 3);
    assert_int_equal(al_base64url_decode(out, in, 4), 3);
    assert_int_equal(al_base64url_decode(out, in, 3), 2);         /* "Zm8" is "fo" */
    assert_int_equal(al_base64url_decode(out, in, 2), AL_EINVAL); /* "Zm": unused bits */
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc_vectors),
        cmocka_unit_test(alphabets),
        cmocka_unit_test(round_trips_within_bounds),
        cmocka_unit_test(encode_into_buffer),
        cmocka_unit_test(standard_malformed),
        cmocka_unit_test(url_malformed),
        cmocka_unit_test(reads_only_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
