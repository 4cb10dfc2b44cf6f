/* The one error enum of airlock, and a per-thread last-error message.
 *
 * Functions return 0 on success or a negative `al_error` code. Where a code
 * alone does not say enough, the function also calls `al_error_set()`, and the
 * caller reads the detail with `al_error_last()`.
 */
#ifndef AIRLOCK_ERROR_H
#define AIRLOCK_ERROR_H

#include <stdarg.h>

enum al_error {
    AL_OK = 0,
    AL_ERROR = -1,     /* generic failure; detail in al_error_last() */
    AL_ENOMEM = -2,    /* allocation failed */
    AL_EINVAL = -3,    /* invalid argument or malformed input */
    AL_ENOTFOUND = -4, /* a named thing does not exist */
    AL_EEXISTS = -5,   /* a named thing already exists */
    AL_EPERM = -6,     /* denied by policy or by the kernel */
    AL_EIO = -7,       /* read/write/syscall failure */
    AL_ETOOBIG = -8,   /* input exceeds a hard limit */
    AL_EAUTH = -9,     /* authentication failed */
    AL_ETIMEOUT = -10, /* a deadline passed */
    AL_EAGAIN = -11,   /* would block; try again later */
    AL_EUNSUPP = -12,  /* the kernel or build lacks a feature */
    AL_ESTALE = -13,   /* fenced: the shared store gave this node's claim to a row away */
};

/* Sets this thread's last-error message (printf format). Returns `code` so a
 * caller can write `return al_error_set(AL_EINVAL, "bad %s", x);`. */
int al_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like al_error_set() and appends ": strerror(errnum)". */
int al_error_set_errno(int code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* This thread's last-error message; never NULL, "" when none was set. The
 * string stays valid until the next al_error_* call on this thread. */
const char *al_error_last(void);

/* Clears this thread's last-error message. */
void al_error_clear(void);

/* A short fixed name for an error code ("invalid argument", ...). */
const char *al_error_name(int code);

#endif
