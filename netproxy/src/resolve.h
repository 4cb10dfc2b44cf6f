/* DNS off the event loop: a small pool of resolver threads (getaddrinfo()
 * with the system configuration, or res_nquery() against configured
 * servers), and a hosts-style override table consulted first. */
#ifndef NP_RESOLVE_H
#define NP_RESOLVE_H

#include <stddef.h>
#include <sys/socket.h>

#include "airlock/ipaddr.h"
#include "domain.h"

#define NP_RESOLVE_MAX 8 /* answers kept per lookup */

struct np_resolve_job {
    char name[NP_HOST_MAX];               /* in: normalised host name */
    struct al_addr addrs[NP_RESOLVE_MAX]; /* out */
    size_t n;                             /* out: number of answers */
    int err;                              /* out: 0, AL_ENOTFOUND, AL_EIO */
    void *owner;                          /* caller's; touched only by the loop thread */
    struct np_resolve_job *next;          /* resolver-internal */
};

struct np_resolver;

/* Parses a DNS server "IPv4[:PORT]" or "IPv6" or "[IPv6]:PORT" (port
 * default 53) into `out`. 0 or AL_EINVAL. */
int np_resolver_parse_server(struct sockaddr_storage *out, const char *spec);

/* Starts `threads` resolver threads. When `hosts_only` is set, names not in
 * the override table fail with AL_ENOTFOUND without asking DNS. With
 * n_servers > 0 (at most 3) the threads ask those servers (A, then AAAA
 * records) instead of the system resolver configuration.
 * Returns 0 and *out, or AL_ENOMEM / AL_EIO. */
int np_resolver_new(struct np_resolver **out, unsigned threads, int hosts_only,
                    const struct sockaddr_storage *servers, size_t n_servers);

/* Stops the threads and frees the resolver, with any jobs still queued or
 * done (their owners must not be used after). */
void np_resolver_free(struct np_resolver *r);

/* An eventfd that is readable while finished jobs wait in np_resolver_take(). */
int np_resolver_fd(const struct np_resolver *r);

/* Adds an override answer for `name` (comma-separated IP literals); see
 * np_proxy_add_host_override(). Thread-safe. 0, AL_EINVAL or AL_ENOMEM. */
int np_resolver_add_override(struct np_resolver *r, const char *name, const char *addrs);

/* Starts resolving job->name. Returns 1 when the job finished at once (an
 * override answer, or hosts_only), 0 when queued: it then comes back from
 * np_resolver_take(). The resolver owns a queued job until it is taken. */
int np_resolver_submit(struct np_resolver *r, struct np_resolve_job *job);

/* Takes the list of finished jobs (linked by `next`), or NULL. Clears the eventfd. */
struct np_resolve_job *np_resolver_take(struct np_resolver *r);

#endif
