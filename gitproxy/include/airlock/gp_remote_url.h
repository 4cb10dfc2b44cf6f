/* The URL rewrite of git-remote-airlock (gitproxy/tools/remote_airlock.c):
 * a pure function over untrusted bytes (the remote's URL comes from a
 * .git/config the sandboxed code may write), unit-tested and fuzzed. */
#ifndef AIRLOCK_GP_REMOTE_URL_H
#define AIRLOCK_GP_REMOTE_URL_H

#include <stddef.h>

#define GP_REMOTE_URL_MAX   2048 /* longest URL accepted, bytes */
#define GP_REMOTE_HOSTS_MAX 1024 /* longest host list accepted, bytes */

enum gp_remote_route {
    GP_REMOTE_PROXY,  /* served by the session's git listener: git remote-http */
    GP_REMOTE_DIRECT, /* another https URL, unchanged: git remote-https */
};

/* Decides where git should fetch/push `url[0..url_len)`.
 *
 * `url` must be "https://HOST[:PORT]/PATH" with printable ASCII only (no
 * space, control or non-ASCII byte), no userinfo ("user@"), HOST made of
 * letters, digits, '-' and '.', PATH made of letters, digits and
 * "-._~/+=,:" with no empty, "." or ".." segment and no '%', '?', '#' or
 * '\\'. `proxy` is the git listener's base, "http://HOST:PORT" (one trailing
 * '/' allowed), `hosts` a comma-separated list of the hosts it serves
 * (either may be empty: nothing is proxied).
 *
 * When HOST (without a port, compared case-insensitively) is in `hosts`,
 * *route = GP_REMOTE_PROXY and `out` = PROXY "/" HOST PATH, HOST as written
 * in `hosts`; otherwise *route = GP_REMOTE_DIRECT and `out` = the URL.
 * Returns 0, AL_EINVAL (malformed URL, proxy or host list) or AL_ETOOBIG
 * (an input over its bound, or `out` too small); then *why is a static
 * one-line reason and `out` holds "". */
int gp_remote_url_rewrite(char *out, size_t out_size, enum gp_remote_route *route, const char **why,
                          const char *url, size_t url_len, const char *proxy, size_t proxy_len,
                          const char *hosts, size_t hosts_len);

#endif
