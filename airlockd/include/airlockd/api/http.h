/* airlockd's HTTP API server (libmicrohttpd, a thread per connection): what
 * main.c starts and stops. The routes are in src/api/. */
#ifndef ALD_API_HTTP_H
#define ALD_API_HTTP_H

#include <stddef.h>

struct ald;

/* Starts serving on cfg->listen (port 0: any; the bound address is written
 * to *bound, "HOST:PORT"). */
int ald_http_start(struct ald *d, char *bound, size_t boundsz);
/* Stops accepting connections (connections already open go on). */
void ald_http_quiesce(struct ald *d);
/* Closes everything. */
void ald_http_stop(struct ald *d);

#endif
