/* base64 (RFC 4648), in the two forms airlock uses:
 *  - standard ("+/", padded, section 4): the JSON of the airlockd API
 *    (stdin_b64, data_b64) and HTTP Basic authentication;
 *  - url-safe ("-_", unpadded, section 5), canonical: scoped tokens and
 *    JWTs, where each byte string must have exactly one encoding.
 * Decoders take (pointer, length), need no NUL, accept no whitespace and
 * never write more than the documented output size. */
#ifndef AIRLOCK_BASE64_H
#define AIRLOCK_BASE64_H

#include <stddef.h>

/* Bytes al_base64_encode_buf() needs for `n` input bytes, NUL included. */
#define AL_BASE64_ENCODED_SIZE(n) (((n) + 2) / 3 * 4 + 1)

/* Encodes `len` bytes; returns a NUL-terminated string the caller frees, or
 * NULL on ENOMEM. */
char *al_base64_encode(const unsigned char *data, size_t len);

/* Encodes `len` bytes into `out` of `size` bytes, NUL-terminated (for
 * callers that keep secrets in their own buffers). Returns the encoded
 * length, or AL_ETOOBIG when `size` < AL_BASE64_ENCODED_SIZE(len) (then
 * nothing is written). */
long al_base64_encode_buf(char *out, size_t size, const unsigned char *data, size_t len);

/* Decodes `len` characters (a multiple of 4; padding only at the end; no
 * whitespace) into `out`, which must hold len / 4 * 3 bytes. Returns the
 * decoded length, or AL_EINVAL (message in al_error_last()). Unused bits of
 * the last group are not checked (as most decoders do). */
long al_base64_decode(unsigned char *out, const char *in, size_t len);

/* Same into a new buffer (*out, *out_len; the caller frees *out). On error
 * *out is NULL. 0, AL_EINVAL or AL_ENOMEM. */
int al_base64_decode_alloc(unsigned char **out, size_t *out_len, const char *in, size_t len);

/* base64url without padding; returns a NUL-terminated string the caller
 * frees, or NULL on ENOMEM. */
char *al_base64url_encode(const unsigned char *data, size_t len);

/* Decodes `len` characters of unpadded base64url into `out`, which must
 * hold len / 4 * 3 + 2 bytes. Only the canonical form is accepted: the
 * url-safe alphabet alone (no '=', '+', '/', whitespace or NUL), a length
 * that is not 1 modulo 4, and zero unused bits in the last character.
 * Returns the decoded length, or AL_EINVAL (message in al_error_last()). */
long al_base64url_decode(unsigned char *out, const char *in, size_t len);

#endif
