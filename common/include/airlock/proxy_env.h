/* The environment that sends a sandbox's traffic to its proxies on the
 * sandbox's own loopback (HTTP and SOCKS5 on the ports of airlock/ports.h),
 * in both cases, and Java's proxy properties (the JVM reads no *_PROXY
 * variable); shared by `airlock run` and airlockd's sessions. */
#ifndef AIRLOCK_PROXY_ENV_H
#define AIRLOCK_PROXY_ENV_H

#include "airlock/ports.h"

#define AL_PROXY_ENV_HTTP  "http://127.0.0.1:" AL_PORT_HTTP_PROXY_STR
#define AL_PROXY_ENV_SOCKS "socks5h://127.0.0.1:" AL_PORT_SOCKS_PROXY_STR
/* JAVA_TOOL_OPTIONS's value */
#define AL_PROXY_ENV_JAVA                                                                          \
    "-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=" AL_PORT_HTTP_PROXY_STR                          \
    " -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=" AL_PORT_HTTP_PROXY_STR

static const char *const al_proxy_env[] = {
    "HTTP_PROXY=" AL_PROXY_ENV_HTTP,
    "HTTPS_PROXY=" AL_PROXY_ENV_HTTP,
    "http_proxy=" AL_PROXY_ENV_HTTP,
    "https_proxy=" AL_PROXY_ENV_HTTP,
    "ALL_PROXY=" AL_PROXY_ENV_SOCKS,
    "all_proxy=" AL_PROXY_ENV_SOCKS,
    "NO_PROXY=localhost,127.0.0.1,::1",
    "no_proxy=localhost,127.0.0.1,::1",
    /* one string; parenthesised for clang's -Wstring-concatenation */
    ("JAVA_TOOL_OPTIONS=" AL_PROXY_ENV_JAVA),
};
#define AL_PROXY_ENV_LEN (sizeof(al_proxy_env) / sizeof(*al_proxy_env))

#endif
