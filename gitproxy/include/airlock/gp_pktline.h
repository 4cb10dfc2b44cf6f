/* git pkt-lines: 4 hex digits of length (including themselves), then data.
 * "0000" flush, "0001" delimiter, "0002" response-end; 65520 bytes at most.
 */
#ifndef AIRLOCK_GP_PKTLINE_H
#define AIRLOCK_GP_PKTLINE_H

#include <stddef.h>
#include <sys/types.h>

#include "airlock/buf.h"

#define GP_PKT_MAX 65520

enum gp_pkt_type {
    GP_PKT_DATA = 0,
    GP_PKT_FLUSH = 1,
    GP_PKT_DELIM = 2,
    GP_PKT_RESPONSE_END = 3,
};

struct gp_pkt {
    enum gp_pkt_type type;
    const char *data; /* points into the parsed buffer; not NUL-terminated */
    size_t len;
};

/* Parses one pkt-line at the start of buf[0..len). Returns the bytes it
 * spans (> 0), 0 when buf holds only part of it, or AL_EINVAL when it is
 * malformed (bad hex, length 3 or below 4 other than 0/1/2, above GP_PKT_MAX). */
ssize_t gp_pktline_parse(struct gp_pkt *out, const char *buf, size_t len);

/* Appends one data pkt-line holding data[0..len) (len <= GP_PKT_MAX - 4). */
int gp_pktline_append(struct al_buf *out, const void *data, size_t len);

/* Appends a data pkt-line with formatted text. */
int gp_pktline_printf(struct al_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends "0000". */
int gp_pktline_flush(struct al_buf *out);

#endif
