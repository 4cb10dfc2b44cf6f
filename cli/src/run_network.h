/* The egress proxy of `airlock run`: airlock-netproxy's library running in a
 * thread of the airlock process, with its listeners inside the sandbox's
 * network namespace (127.0.0.1, the HTTP and SOCKS5 ports of airlock/ports.h).
 *
 * With sandbox.network.httpProxyPort / socksProxyPort set, that listener
 * relays raw bytes to the user's own proxy on the host at 127.0.0.1:PORT
 * instead (it filters; airlock only carries bytes), so the sandbox still has
 * no route out and sees the same addresses. customProxy is a shell command
 * started on the host before the sandbox (it must listen on those ports) and
 * stopped when the run ends. */
#ifndef AIRLOCK_RUN_NETWORK_H
#define AIRLOCK_RUN_NETWORK_H

#include <pthread.h>
#include <sys/types.h>

#include "run_pty.h"

#include "airlock/netproxy.h"
#include "airlock/ports.h"
#include "airlock/settings.h"
#include "airlock/strlist.h"

#define RUN_NET_HTTP_PORT  AL_PORT_HTTP_PROXY
#define RUN_NET_SOCKS_PORT AL_PORT_SOCKS_PROXY

struct run_network {
    np_proxy *proxy;
    pthread_t loop_thread, log_thread;
    int loop_started, log_started;
    int log_pipe[2];
    const char *settings_dir; /* "always" answers go to settings.local.json here */
    int ask;                  /* a terminal to ask on */
    unsigned ask_timeout_s;   /* how long a question waits for its answer */
    struct run_pty *pty;      /* the relay that owns the terminal, or NULL
                                 (then /dev/tty); set by the caller */
    int sync_ready;           /* answers_lock and asked are initialised */
    pthread_mutex_t answers_lock;
    pthread_cond_t asked;   /* `asking` went down */
    size_t asking;          /* question threads still running */
    struct run_net_answer { /* what was answered in this run, so that the
                               requests queued behind a question for the
                               same host:port are not asked again */
        char host[256];
        unsigned port;
        int allow;
    } answers[32];
    size_t n_answers;
    int http_port, socks_port; /* external proxy ports on the host; 0 = ours */
    pid_t custom_pid;          /* customProxy's process group leader; 0 = none */
    char connect_helper[256];  /* airlock-connect as seen inside; "" = none */
    char key_path[16];         /* "sandbox.network" or "network" (srt shape) */
    char settings_file[512];   /* " in FILE" naming the file to edit, safe to
                                  print; "" when no file had a network block */
    int decision_fd;           /* --decision-log: where records go, while */
    int decision_open;         /* this is 1 (fd 2 for "-": not closed) */
    struct run_net_seen {      /* reportOnly: host:port already reported as
                                  "would block" in this run (log thread only) */
        char host[256];
        unsigned port;
    } would[64];
    size_t n_would;
};

/* 1 when the policy lets the sandbox reach anything (so a proxy is needed):
 * allowed domains or addresses, or an external proxy. */
int run_network_wanted(const struct al_policy *policy);

/* Creates the proxy with the policy and the DNS overrides ("NAME=IP[,IP]"),
 * starts customProxy (and waits until its ports accept connections) and
 * finds the airlock-connect helper. A host in neither list is asked about
 * on the terminal (through net->pty once the caller sets it, else
 * /dev/tty) for up to `ask_timeout_s` seconds. Prints "airlock: ..." and returns a
 * negative code on error; run_network_stop() cleans up either way. */
int run_network_prepare(struct run_network *net, const struct al_policy *policy,
                        const struct al_strlist *hosts, const char *settings_dir,
                        unsigned ask_timeout_s);

/* sb_netns_fn: opens the listeners inside the sandbox's network namespace
 * and starts the proxy's threads. `payload` is the struct run_network. */
int run_network_on_netns(int netns_fd, void *payload);

/* --decision-log PATH: every decision record from now on is also written,
 * as the JSON line it is and nothing else, to PATH (appended; created mode
 * 0600), or with PATH "-" to stderr in place of the "blocked network"
 * lines. Call after run_network_prepare() (or on a zeroed struct, when the
 * sandbox has no network: the file is created and stays empty). Prints
 * "airlock: ..." and returns a negative code when PATH cannot be opened;
 * run_network_stop() closes it. */
int run_network_decision_log(struct run_network *net, const char *path);

/* Adds the proxy variables to the sandbox's environment (each one `env`
 * does not set yet: a --pass-env value wins), and
 * GIT_SSH_COMMAND (ssh through airlock-connect) when the helper is visible
 * inside the sandbox and `env` has no GIT_SSH_COMMAND yet. */
int run_network_env(const struct run_network *net, struct al_strlist *env);

/* Stops the threads, frees the proxy and stops customProxy (SIGTERM to its
 * process group, SIGKILL after 2 s). Safe on a zeroed struct. */
void run_network_stop(struct run_network *net);

#endif
