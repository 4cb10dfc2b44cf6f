/* The environment that sends a sandbox's traffic to its proxies on the
 * sandbox's own loopback (HTTP 127.0.0.1:3128, SOCKS5 127.0.0.1:1080), in
 * both cases, and Java's proxy properties (the JVM reads no *_PROXY
 * variable); shared by `airlock run` and airlockd's sessions. */
#ifndef AIRLOCK_PROXY_ENV_H
#define AIRLOCK_PROXY_ENV_H

static const char *const al_proxy_env[] = {
    "HTTP_PROXY=http://127.0.0.1:3128",
    "HTTPS_PROXY=http://127.0.0.1:3128",
    "http_proxy=http://127.0.0.1:3128",
    "https_proxy=http://127.0.0.1:3128",
    "ALL_PROXY=socks5h://127.0.0.1:1080",
    "all_proxy=socks5h://127.0.0.1:1080",
    "NO_PROXY=localhost,127.0.0.1,::1",
    "no_proxy=localhost,127.0.0.1,::1",
    /* one string; parenthesised for clang's -Wstring-concatenation */
    ("JAVA_TOOL_OPTIONS=-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=3128 "
     "-Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=3128"),
};
#define AL_PROXY_ENV_LEN (sizeof(al_proxy_env) / sizeof(*al_proxy_env))

#endif
