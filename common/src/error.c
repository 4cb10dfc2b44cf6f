#include "airlock/error.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

/* Formats into a scratch buffer first: a caller may pass al_error_last()
 * as an argument ("context: %s"), which must not be overwritten while it
 * is read. */
static void __attribute__((format(printf, 1, 0))) error_vformat(const char *fmt, va_list ap)
{
    char next[sizeof(last_error)];
    vsnprintf(next, sizeof(next), fmt, ap);
    memcpy(last_error, next, sizeof(next));
}

int al_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vformat(fmt, ap);
    va_end(ap);
    return code;
}

int al_error_set_errno(int code, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vformat(fmt, ap);
    va_end(ap);
    size_t len = strlen(last_error);
    snprintf(last_error + len, sizeof(last_error) - len, ": %s", strerror(errnum));
    return code;
}

const char *al_error_last(void)
{
    return last_error;
}

void al_error_clear(void)
{
    last_error[0] = '\0';
}

const char *al_error_name(int code)
{
    switch (code) {
    case AL_OK:
        return "ok";
    case AL_ENOMEM:
        return "out of memory";
    case AL_EINVAL:
        return "invalid argument";
    case AL_ENOTFOUND:
        return "not found";
    case AL_EEXISTS:
        return "already exists";
    case AL_EPERM:
        return "permission denied";
    case AL_EIO:
        return "i/o error";
    case AL_ETOOBIG:
        return "too big";
    case AL_EAUTH:
        return "authentication failed";
    case AL_ETIMEOUT:
        return "timed out";
    case AL_EAGAIN:
        return "try again";
    case AL_EUNSUPP:
        return "not supported";
    case AL_ESTALE:
        return "fenced";
    default:
        return "error";
    }
}
