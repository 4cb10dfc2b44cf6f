/* Hexadecimal digits, as git and key files write them (either case). */
#ifndef AIRLOCK_HEX_H
#define AIRLOCK_HEX_H

#include <stddef.h>

/* The value of one hex digit, or -1. */
int al_hex_digit(int c);

/* Decodes exactly 2 * n hex digits of `hex` into out[0..n). 0, or AL_EINVAL
 * at the first byte that is not a hex digit (out then partly written). */
int al_hex_decode(unsigned char *out, const char *hex, size_t n);

#endif
