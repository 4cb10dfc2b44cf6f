/* Untrusted text made fit for one line of a terminal: hostnames, file names,
 * messages and ids that came from a sandbox, a proxy or an API answer and
 * are printed by the CLI. */
#ifndef AIRLOCK_TERMTEXT_H
#define AIRLOCK_TERMTEXT_H

#include <stddef.h>
#include <stdio.h>

enum al_term_bytes {
    AL_TERM_ASCII = 0,    /* bytes >= 0x80 become '?' too */
    AL_TERM_KEEP_UTF8 = 1 /* bytes >= 0x80 pass (file names, user text) */
};

/* Copies `s` (NULL: "") into `out` of `size` >= 4 bytes: every control byte
 * and DEL becomes '?' (and, with AL_TERM_ASCII, every byte >= 0x80); a
 * string longer than `size` - 1 bytes is cut and ends in "...". Returns
 * `out`. */
const char *al_term_line(char *out, size_t size, const char *s, enum al_term_bytes bytes);

/* Writes `s` (NULL: nothing) to `f` as al_term_line() would show it, without
 * a length limit. */
void al_term_put(FILE *f, const char *s, enum al_term_bytes bytes);

#endif
