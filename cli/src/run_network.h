/* The egress proxy of `airlock run`: airlock-netproxy's library running in a
 * thread of the airlock process, with its listeners inside the sandbox's
 * network namespace (127.0.0.1:3128 HTTP, 127.0.0.1:1080 SOCKS5). */
#ifndef AIRLOCK_RUN_NETWORK_H
#define AIRLOCK_RUN_NETWORK_H

#include <pthread.h>

#include "airlock/netproxy.h"
#include "airlock/settings.h"
#include "airlock/strlist.h"

#define RUN_NET_HTTP_PORT  3128
#define RUN_NET_SOCKS_PORT 1080

struct run_network {
    np_proxy *proxy;
    pthread_t loop_thread, log_thread;
    int loop_started, log_started;
    int log_pipe[2];
    const char *settings_dir; /* "always" answers go to settings.local.json here */
    int ask;                  /* a terminal to ask on */
};

/* 1 when the policy lets the sandbox reach anything (so a proxy is needed). */
int run_network_wanted(const struct al_policy *policy);

/* Creates the proxy with the policy and the DNS overrides ("NAME=IP[,IP]").
 * Prints "airlock: ..." and returns a negative code on error. */
int run_network_prepare(struct run_network *net, const struct al_policy *policy,
                        const struct al_strlist *hosts, const char *settings_dir);

/* sb_netns_fn: opens the listeners inside the sandbox's network namespace
 * and starts the proxy's threads. `payload` is the struct run_network. */
int run_network_on_netns(int netns_fd, void *payload);

/* Adds the proxy variables to the sandbox's environment. */
int run_network_env(struct al_strlist *env);

/* Stops the threads and frees the proxy. Safe on a zeroed struct. */
void run_network_stop(struct run_network *net);

#endif
