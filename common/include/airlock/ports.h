/* The TCP ports a sandbox reaches its proxies on, on its own loopback
 * (127.0.0.1): the same in every sandbox, since each sandbox has a network
 * namespace of its own (docs/cloud.md, docs/run.md). Written once, here;
 * the _STR forms are the same numbers as string literals, for URLs and
 * environment strings built at compile time. */
#ifndef AIRLOCK_PORTS_H
#define AIRLOCK_PORTS_H

/* Plain decimal literals: the _STR forms stringify them as written. */
#define AL_PORT_HTTP_PROXY  3128 /* airlock-netproxy, HTTP (absolute-form, CONNECT) */
#define AL_PORT_SOCKS_PROXY 1080 /* airlock-netproxy, SOCKS5 */
#define AL_PORT_GIT_PROXY   7418 /* airlock-gitproxy, git smart HTTP */

#define AL_PORT_STR_(n) #n
#define AL_PORT_STR(n)  AL_PORT_STR_(n)

#define AL_PORT_HTTP_PROXY_STR  AL_PORT_STR(AL_PORT_HTTP_PROXY)
#define AL_PORT_SOCKS_PROXY_STR AL_PORT_STR(AL_PORT_SOCKS_PROXY)
#define AL_PORT_GIT_PROXY_STR   AL_PORT_STR(AL_PORT_GIT_PROXY)

#endif
