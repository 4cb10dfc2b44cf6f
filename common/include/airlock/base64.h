/* Standard base64 (RFC 4648 section 4, "+/", padded), as used in the JSON
 * of the airlockd API (stdin_b64, data_b64). creds/ has its own url-safe,
 * unpadded, canonical variant for tokens. */
#ifndef AIRLOCK_BASE64_H
#define AIRLOCK_BASE64_H

#include <stddef.h>

/* Encodes `len` bytes; returns a NUL-terminated string the caller frees, or
 * NULL on ENOMEM. */
char *al_base64_encode(const unsigned char *data, size_t len);

/* Decodes `len` characters (a multiple of 4; padding only at the end; no
 * whitespace) into `out`, which must hold len / 4 * 3 bytes. Returns the
 * decoded length, or AL_EINVAL (message in al_error_last()). */
long al_base64_decode(unsigned char *out, const char *in, size_t len);

/* Same into a new buffer (*out, *out_len; the caller frees *out). On error
 * *out is NULL. 0, AL_EINVAL or AL_ENOMEM. */
int al_base64_decode_alloc(unsigned char **out, size_t *out_len, const char *in, size_t len);

#endif
