/* Growable byte buffer with a hard maximum (after curl's dynbuf).
 *
 * Every buffer filled from the network or a file is created with the largest
 * size it may ever reach; an append past it fails with AL_ETOOBIG and leaves
 * the buffer as it was. The content is always NUL-terminated (the NUL is not
 * counted in `len` nor in `max`).
 */
#ifndef AIRLOCK_BUF_H
#define AIRLOCK_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct al_buf {
    char *ptr;  /* NULL until the first append; then NUL-terminated */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated (excluding the NUL) */
    size_t max; /* hard limit for len */
};

/* Initialises an empty buffer that may grow to `max` bytes. */
void al_buf_init(struct al_buf *buf, size_t max);

/* Frees the storage; the buffer is empty and usable again. When `wipe` is
 * non-zero the bytes are overwritten first (for secrets). */
void al_buf_free(struct al_buf *buf);
void al_buf_wipe_free(struct al_buf *buf);

/* Appends `len` bytes. 0, AL_ENOMEM or AL_ETOOBIG (buffer unchanged). */
int al_buf_append(struct al_buf *buf, const void *data, size_t len);

/* Appends a NUL-terminated string. */
int al_buf_puts(struct al_buf *buf, const char *s);

/* Appends formatted text. */
int al_buf_printf(struct al_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Empties the buffer, keeping its storage. */
void al_buf_reset(struct al_buf *buf);

/* Hands the storage to the caller (who frees it) and empties the buffer.
 * Returns an allocated "" for an empty buffer; NULL only on ENOMEM. */
char *al_buf_detach(struct al_buf *buf);

/* Reads the whole file at `path` into `buf` (appending), failing with
 * AL_ETOOBIG when it would pass buf->max. Errors are described in
 * al_error_last(). */
int al_buf_read_file(struct al_buf *buf, const char *path);

#endif
