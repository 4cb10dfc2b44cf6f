#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void al_buf_init(struct al_buf *buf, size_t max)
{
    buf->ptr = NULL;
    buf->len = 0;
    buf->cap = 0;
    buf->max = max;
}

void al_buf_free(struct al_buf *buf)
{
    free(buf->ptr);
    buf->ptr = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void al_buf_wipe_free(struct al_buf *buf)
{
    if (buf->ptr)
        explicit_bzero(buf->ptr, buf->cap + 1);
    al_buf_free(buf);
}

static int buf_reserve(struct al_buf *buf, size_t extra)
{
    if (extra > buf->max || buf->len > buf->max - extra)
        return AL_ETOOBIG;
    size_t need = buf->len + extra;
    if (buf->ptr && need <= buf->cap)
        return 0;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < need)
        cap = cap > buf->max / 2 ? buf->max : cap * 2;
    char *p = realloc(buf->ptr, cap + 1);
    if (!p)
        return AL_ENOMEM;
    buf->ptr = p;
    buf->cap = cap;
    return 0;
}

int al_buf_append(struct al_buf *buf, const void *data, size_t len)
{
    int err = buf_reserve(buf, len);
    if (err < 0)
        return err;
    if (len)
        memcpy(buf->ptr + buf->len, data, len);
    buf->len += len;
    buf->ptr[buf->len] = '\0';
    return 0;
}

int al_buf_puts(struct al_buf *buf, const char *s)
{
    return al_buf_append(buf, s, strlen(s));
}

int al_buf_printf(struct al_buf *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return AL_EINVAL;
    int err = buf_reserve(buf, (size_t)n);
    if (err < 0)
        return err;
    va_start(ap, fmt);
    vsnprintf(buf->ptr + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return 0;
}

void al_buf_reset(struct al_buf *buf)
{
    buf->len = 0;
    if (buf->ptr)
        buf->ptr[0] = '\0';
}

char *al_buf_detach(struct al_buf *buf)
{
    char *p = buf->ptr ? buf->ptr : strdup("");
    buf->ptr = NULL;
    buf->len = 0;
    buf->cap = 0;
    return p;
}

int al_buf_read_file(struct al_buf *buf, const char *path)
{
    cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return al_error_set_errno(errno == ENOENT ? AL_ENOTFOUND : AL_EIO, errno, "%s", path);
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return al_error_set_errno(AL_EIO, errno, "%s", path);
        }
        if (n == 0)
            break;
        int err = al_buf_append(buf, chunk, (size_t)n);
        if (err == AL_ETOOBIG)
            return al_error_set(err, "%s: larger than %zu bytes", path, buf->max);
        if (err < 0)
            return al_error_set(err, "%s: out of memory", path);
    }
    if (!buf->ptr)
        return al_buf_append(buf, "", 0);
    return 0;
}
