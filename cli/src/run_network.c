/* The egress proxy of `airlock run` (see run_network.h). */
#include "run_network.h"

#include "cli.h"

#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/path.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int run_network_wanted(const struct al_policy *policy)
{
    return policy->allowed_domains.len > 0 || policy->allowed_addresses.len > 0 ||
           policy->allow_all_domains;
}

/* Every signal airlock supervises stays blocked in the proxy's threads, so
 * the main thread's sigwaitinfo() sees them. */
static void block_all_signals(void)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
}

static void *loop_main(void *arg)
{
    block_all_signals();
    int err = np_proxy_run(arg);
    if (err < 0)
        al_log(AL_LOG_ERROR, "network proxy stopped: %s", al_error_last());
    return NULL;
}

/* Appends `host:port` to allowedDomains in settings.local.json. */
static void persist_always(const char *dir, const char *host, unsigned port)
{
    char path[PATH_MAX], entry[300];
    if (!dir || al_path_join(path, sizeof(path), dir, "settings.local.json") < 0)
        return;
    snprintf(entry, sizeof(entry), port == 443 || port == 80 ? "%s" : "%s:%u", host, port);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        root = json_object();
    json_t *sb = json_object_get(root, "sandbox");
    if (!json_is_object(sb)) {
        sb = json_object();
        json_object_set_new(root, "sandbox", sb);
    }
    json_t *net = json_object_get(sb, "network");
    if (!json_is_object(net)) {
        net = json_object();
        json_object_set_new(sb, "network", net);
    }
    json_t *list = json_object_get(net, "allowedDomains");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(net, "allowedDomains", list);
    }
    json_array_append_new(list, json_string(entry));
    if (json_dump_file(root, path, JSON_INDENT(2)) < 0)
        al_log(AL_LOG_WARN, "cannot save %s to %s", entry, path);
    else
        fprintf(stderr, "airlock: added %s to %s\n", entry, path);
    json_decref(root);
}

struct approval_job {
    struct run_network *net;
    uint64_t id;
    char host[256];
    unsigned port;
};

/* Asks on the terminal, one question at a time, off the proxy's loop. */
static void *ask_main(void *arg)
{
    static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER;
    struct approval_job *job = arg;
    block_all_signals();
    pthread_mutex_lock(&one_at_a_time);
    enum np_verdict v = NP_VERDICT_DENY;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) {
        dprintf(fd, "airlock: allow network access to %s:%u? [y]es/[a]lways/[N]o ", job->host,
                job->port);
        char answer[16] = {0};
        if (read(fd, answer, sizeof(answer) - 1) > 0) {
            if (answer[0] == 'y' || answer[0] == 'Y')
                v = NP_VERDICT_ALLOW_SESSION;
            else if (answer[0] == 'a' || answer[0] == 'A')
                v = NP_VERDICT_ALLOW_ALWAYS;
        }
        close(fd);
    }
    if (v == NP_VERDICT_ALLOW_ALWAYS)
        persist_always(job->net->settings_dir, job->host, job->port);
    np_proxy_approve(job->net->proxy, job->id, v);
    pthread_mutex_unlock(&one_at_a_time);
    free(job);
    return NULL;
}

static void approver(const struct np_approval *req, void *payload)
{
    struct run_network *net = payload;
    struct approval_job *job = calloc(1, sizeof(*job));
    pthread_t t;
    if (!job) {
        np_proxy_approve(net->proxy, req->id, NP_VERDICT_DENY);
        return;
    }
    job->net = net;
    job->id = req->id;
    job->port = req->port;
    snprintf(job->host, sizeof(job->host), "%s", req->host);
    if (pthread_create(&t, NULL, ask_main, job) != 0) {
        np_proxy_approve(net->proxy, req->id, NP_VERDICT_DENY);
        free(job);
        return;
    }
    pthread_detach(t);
}

/* Reads the decision log and prints every denial on stderr. */
static void *log_main(void *arg)
{
    struct run_network *net = arg;
    block_all_signals();
    FILE *f = fdopen(net->log_pipe[0], "r");
    if (!f)
        return NULL;
    char line[8192];
    while (fgets(line, sizeof(line), f)) {
        json_t *o = json_loads(line, 0, NULL);
        const char *decision = json_string_value(json_object_get(o, "decision"));
        if (decision && strcmp(decision, "allow") != 0) {
            const char *host = json_string_value(json_object_get(o, "host"));
            const char *reason = json_string_value(json_object_get(o, "reason"));
            json_int_t port = json_integer_value(json_object_get(o, "port"));
            fprintf(stderr, "airlock: blocked network: %s:%lld (%s)\n", host ? host : "?",
                    (long long)port, reason ? reason : decision);
        }
        json_decref(o);
        if (al_log_enabled(AL_LOG_DEBUG))
            fprintf(stderr, "airlock: debug: netproxy: %s", line);
    }
    fclose(f);
    net->log_pipe[0] = -1;
    return NULL;
}

int run_network_prepare(struct run_network *net, const struct al_policy *policy,
                        const struct al_strlist *hosts, const char *settings_dir)
{
    memset(net, 0, sizeof(*net));
    net->log_pipe[0] = net->log_pipe[1] = -1;
    net->settings_dir = settings_dir;
    if (pipe2(net->log_pipe, O_CLOEXEC) < 0) {
        fprintf(stderr, "airlock: pipe: %s\n", strerror(errno));
        return AL_EIO;
    }
    struct np_config cfg;
    np_config_init(&cfg);
    cfg.resolver_threads = 2;
    cfg.log_fd = net->log_pipe[1];
    int err = np_proxy_new(&net->proxy, &cfg);
    if (err == 0)
        err = np_proxy_set_policy(net->proxy, "run", policy);
    for (size_t i = 0; i < hosts->len && err == 0; i++) {
        char *eq = strchr(hosts->items[i], '=');
        if (!eq) {
            fprintf(stderr, "airlock: --add-host %s: expected NAME=IP[,IP]\n", hosts->items[i]);
            return AL_EINVAL;
        }
        *eq = '\0';
        err = np_proxy_add_host_override(net->proxy, hosts->items[i], eq + 1);
        *eq = '=';
    }
    if (err < 0) {
        fprintf(stderr, "airlock: network proxy: %s\n", al_error_last());
        return err;
    }
    int tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (tty >= 0) {
        close(tty);
        net->ask = 1;
        np_proxy_set_approver(net->proxy, approver, net);
    }
    return 0;
}

int run_network_on_netns(int netns_fd, void *payload)
{
    struct run_network *net = payload;
    int http = -1, socks = -1;
    if (np_listener_open_in_netns(&http, netns_fd, RUN_NET_HTTP_PORT) < 0 ||
        np_proxy_add_listener(net->proxy, http, NP_HTTP, "run") < 0 ||
        np_listener_open_in_netns(&socks, netns_fd, RUN_NET_SOCKS_PORT) < 0 ||
        np_proxy_add_listener(net->proxy, socks, NP_SOCKS5, "run") < 0) {
        al_error_set(AL_EIO, "network proxy listeners: %s", al_error_last());
        return -1;
    }
    if (pthread_create(&net->log_thread, NULL, log_main, net) != 0)
        return al_error_set(AL_EIO, "cannot start the network log thread");
    net->log_started = 1;
    if (pthread_create(&net->loop_thread, NULL, loop_main, net->proxy) != 0)
        return al_error_set(AL_EIO, "cannot start the network proxy thread");
    net->loop_started = 1;
    return 0;
}

#define JAVA_PROXY_OPTIONS                                                                         \
    ("JAVA_TOOL_OPTIONS=-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=3128 "                         \
     "-Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=3128")

int run_network_env(struct al_strlist *env)
{
    static const char *const vars[] = {
        "HTTP_PROXY=http://127.0.0.1:3128",
        "HTTPS_PROXY=http://127.0.0.1:3128",
        "http_proxy=http://127.0.0.1:3128",
        "https_proxy=http://127.0.0.1:3128",
        "ALL_PROXY=socks5h://127.0.0.1:1080",
        "all_proxy=socks5h://127.0.0.1:1080",
        "NO_PROXY=localhost,127.0.0.1,::1",
        "no_proxy=localhost,127.0.0.1,::1",
        JAVA_PROXY_OPTIONS,
    };
    for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++)
        if (al_strlist_push(env, vars[i]) < 0)
            return AL_ENOMEM;
    return 0;
}

void run_network_stop(struct run_network *net)
{
    if (!net->proxy)
        return;
    np_proxy_stop(net->proxy);
    if (net->loop_started)
        pthread_join(net->loop_thread, NULL);
    np_proxy_free(net->proxy);
    net->proxy = NULL;
    if (net->log_pipe[1] >= 0)
        close(net->log_pipe[1]); /* EOF for the log thread */
    if (net->log_started)
        pthread_join(net->log_thread, NULL);
    else if (net->log_pipe[0] >= 0)
        close(net->log_pipe[0]);
}
