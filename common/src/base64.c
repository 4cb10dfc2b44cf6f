/* base64, standard (padded) and url-safe (unpadded, canonical). */
#include "airlock/base64.h"

#include "airlock/error.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

static const char std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Characters the encoding of `len` bytes takes, without the NUL; 0 with
 * *overflow set when that does not fit a size_t. */
static size_t encoded_len(size_t len, int pad, int *overflow)
{
    *overflow = len / 3 > (SIZE_MAX - 8) / 4;
    if (*overflow)
        return 0;
    size_t full = len / 3 * 4, rest = len % 3;
    if (rest == 0)
        return full;
    return full + (pad ? 4 : rest + 1);
}

/* Writes the encoding and a NUL into `out`, which holds encoded_len() + 1. */
static size_t encode(char *out, const unsigned char *data, size_t len, const char *alphabet,
                     int pad)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        size_t left = len - i;
        uint32_t v = (uint32_t)data[i] << 16;
        if (left > 1)
            v |= (uint32_t)data[i + 1] << 8;
        if (left > 2)
            v |= data[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (left > 1)
            out[o++] = alphabet[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (left > 2)
            out[o++] = alphabet[v & 63];
        else if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static char *encode_alloc(const unsigned char *data, size_t len, const char *alphabet, int pad)
{
    int overflow;
    size_t n = encoded_len(len, pad, &overflow);
    char *out = overflow ? NULL : malloc(n + 1);
    if (out)
        encode(out, data, len, alphabet, pad);
    return out;
}

char *al_base64_encode(const unsigned char *data, size_t len)
{
    return encode_alloc(data, len, std_alphabet, 1);
}

char *al_base64url_encode(const unsigned char *data, size_t len)
{
    return encode_alloc(data, len, url_alphabet, 0);
}

long al_base64_encode_buf(char *out, size_t size, const unsigned char *data, size_t len)
{
    int overflow;
    size_t n = encoded_len(len, 1, &overflow);
    if (overflow || n >= size || n > (size_t)LONG_MAX)
        return al_error_set(AL_ETOOBIG, "base64: %zu bytes do not fit a %zu-byte buffer", len,
                            size);
    return (long)encode(out, data, len, std_alphabet, 1);
}

/* The value of `c` in the standard (`url` 0) or url-safe alphabet; -1 when
 * it is not part of it. */
static int value_of(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

long al_base64_decode(unsigned char *out, const char *in, size_t len)
{
    if (len % 4 != 0)
        return al_error_set(AL_EINVAL, "base64 length is not a multiple of 4");
    if (len / 4 * 3 > (size_t)LONG_MAX)
        return al_error_set(AL_EINVAL, "base64 too long");
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad > 0 || (v[k] = value_of(c, 0)) < 0)
                return al_error_set(AL_EINVAL, "invalid base64");
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)w;
    }
    return (long)o;
}

int al_base64_decode_alloc(unsigned char **out, size_t *out_len, const char *in, size_t len)
{
    *out = NULL;
    *out_len = 0;
    unsigned char *buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return AL_ENOMEM;
    long n = al_base64_decode(buf, in, len);
    if (n < 0) {
        free(buf);
        return (int)n;
    }
    *out = buf;
    *out_len = (size_t)n;
    return 0;
}

long al_base64url_decode(unsigned char *out, const char *in, size_t len)
{
    if (len % 4 == 1)
        return al_error_set(AL_EINVAL, "base64url length %zu is impossible", len);
    if (len / 4 * 3 > (size_t)LONG_MAX - 2)
        return al_error_set(AL_EINVAL, "base64url too long");
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = value_of((unsigned char)in[i], 1);
        if (v < 0)
            return al_error_set(AL_EINVAL, "invalid base64url character at %zu", i);
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Unused bits must be zero, so that every byte string has one encoding. */
    if (acc != 0)
        return al_error_set(AL_EINVAL, "base64url: non-zero unused bits");
    return (long)o;
}
