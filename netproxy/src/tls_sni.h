/* Reads the server name (SNI) from the first TLS ClientHello of a stream. */
#ifndef NP_TLS_SNI_H
#define NP_TLS_SNI_H

#include <stddef.h>

#define NP_TLS_HELLO_MAX (16384 + 5) /* one TLS record */

enum np_sni_result {
    NP_SNI_NEED_MORE = 0, /* feed more bytes */
    NP_SNI_FOUND = 1,     /* `out` holds the host name */
    NP_SNI_NONE = 2,      /* a ClientHello without server_name */
    NP_SNI_NOT_TLS = 3,   /* the stream does not start with a TLS handshake */
    NP_SNI_MALFORMED = 4, /* a broken or oversized ClientHello */
};

/* Parses the first record of a stream (`len` bytes from its start). The
 * ClientHello must fit in one record (16 KiB). On NP_SNI_FOUND writes the
 * server name, NUL-terminated, into `out` (`size` bytes; a longer name or
 * one with NUL is NP_SNI_MALFORMED). */
enum np_sni_result np_tls_sni_parse(const unsigned char *buf, size_t len, char *out, size_t size);

#endif
