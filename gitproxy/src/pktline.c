#include "airlock/gp_pktline.h"
#include "airlock/error.h"
#include "airlock/hex.h"

#include <stdarg.h>
#include <stdio.h>

ssize_t gp_pktline_parse(struct gp_pkt *out, const char *buf, size_t len)
{
    if (len < 4)
        return 0;
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        int v = al_hex_digit((unsigned char)buf[i]);
        if (v < 0)
            return al_error_set(AL_EINVAL, "bad pkt-line length");
        n = n * 16 + (size_t)v;
    }
    if (n < 4) {
        if (n == 3)
            return al_error_set(AL_EINVAL, "bad pkt-line length");
        out->type = n == 0 ? GP_PKT_FLUSH : n == 1 ? GP_PKT_DELIM : GP_PKT_RESPONSE_END;
        out->data = buf + 4;
        out->len = 0;
        return 4;
    }
    if (n > GP_PKT_MAX)
        return al_error_set(AL_EINVAL, "pkt-line too long");
    if (len < n)
        return 0;
    out->type = GP_PKT_DATA;
    out->data = buf + 4;
    out->len = n - 4;
    return (ssize_t)n;
}

int gp_pktline_append(struct al_buf *out, const void *data, size_t len)
{
    char hdr[5];
    if (len > GP_PKT_MAX - 4)
        return AL_ETOOBIG;
    snprintf(hdr, sizeof(hdr), "%04zx", len + 4);
    int err = al_buf_append(out, hdr, 4);
    if (err < 0)
        return err;
    return al_buf_append(out, data, len);
}

int gp_pktline_printf(struct al_buf *out, const char *fmt, ...)
{
    char line[GP_PKT_MAX - 4];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return AL_EINVAL;
    if ((size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    return gp_pktline_append(out, line, (size_t)n);
}

int gp_pktline_flush(struct al_buf *out)
{
    return al_buf_append(out, "0000", 4);
}
