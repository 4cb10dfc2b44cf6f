/* The egress proxy of `airlock run` (see run_network.h). */
#include "run_network.h"

#include "cli.h"
#include "run_prompt.h"

#include "airlock/proxy_env.h"
#include "airlock/termtext.h"
#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/glob.h"
#include "airlock/log.h"
#include "airlock/path.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define CUSTOM_PROXY_START_MS 10000 /* customProxy must listen within this */
#define CUSTOM_PROXY_STOP_MS  2000  /* then SIGKILL */

int run_network_wanted(const struct al_policy *policy)
{
    return policy->net.allowed_domains.len > 0 || policy->net.allowed_addresses.len > 0 ||
           policy->net.allow_all_domains || policy->http_proxy_port > 0 ||
           policy->socks_proxy_port > 0 || policy->custom_proxy;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* 1 when something accepts TCP connections on 127.0.0.1:port. */
static int port_open(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* Starts customProxy with /bin/sh in its own process group (stdin from
 * /dev/null, stdout joined to stderr, so the sandboxed command keeps its
 * terminal input and output), with AIRLOCK_HTTP_PROXY_PORT /
 * AIRLOCK_SOCKS_PROXY_PORT in its environment, and waits until every
 * configured port accepts connections. 0 or AL_EIO / AL_ENOMEM. */
static int custom_proxy_start(struct run_network *net, const char *command)
{
    extern char **environ;
    struct al_strlist env = AL_STRLIST_INIT;
    char var[64];
    int err = 0;

    /* Everything the child needs is made before fork(): the proxy's
     * threads already run, so the child only calls async-signal-safe
     * functions. */
    for (char **e = environ; *e && err == 0; e++)
        if (strncmp(*e, "AIRLOCK_HTTP_PROXY_PORT=", 24) != 0 &&
            strncmp(*e, "AIRLOCK_SOCKS_PROXY_PORT=", 25) != 0)
            err = al_strlist_push(&env, *e);
    if (err == 0 && net->http_port) {
        snprintf(var, sizeof(var), "AIRLOCK_HTTP_PROXY_PORT=%d", net->http_port);
        err = al_strlist_push(&env, var);
    }
    if (err == 0 && net->socks_port) {
        snprintf(var, sizeof(var), "AIRLOCK_SOCKS_PROXY_PORT=%d", net->socks_port);
        err = al_strlist_push(&env, var);
    }
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (err < 0 || devnull < 0) {
        fprintf(stderr, "airlock: customProxy: %s\n", err < 0 ? "out of memory" : strerror(errno));
        al_strlist_free(&env);
        if (devnull >= 0)
            close(devnull);
        return err < 0 ? err : AL_EIO;
    }
    char *const argv[] = {"sh", "-c", (char *)command, NULL};
    sigset_t none;
    sigemptyset(&none);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        /* airlock dying (even by SIGKILL) takes the proxy with it */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(devnull, STDIN_FILENO);
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execve("/bin/sh", argv, env.items);
        _exit(127);
    }
    int fork_errno = errno;
    close(devnull);
    al_strlist_free(&env);
    if (pid < 0) {
        fprintf(stderr, "airlock: customProxy: fork: %s\n", strerror(fork_errno));
        return AL_EIO;
    }
    setpgid(pid, pid); /* also here: no race with the kill in stop */
    net->custom_pid = pid;
    uint64_t deadline = now_ms() + CUSTOM_PROXY_START_MS;
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            net->custom_pid = 0;
            kill(-pid, SIGTERM); /* whatever it left behind */
            fprintf(stderr, "airlock: customProxy \"%s\" exited (status %d) before listening\n",
                    command, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            return AL_EIO;
        }
        if ((!net->http_port || port_open(net->http_port)) &&
            (!net->socks_port || port_open(net->socks_port)))
            return 0;
        if (now_ms() >= deadline) {
            fprintf(stderr,
                    "airlock: customProxy \"%s\" is not listening on 127.0.0.1:%d after %d s\n",
                    command, net->http_port ? net->http_port : net->socks_port,
                    CUSTOM_PROXY_START_MS / 1000);
            return AL_EIO;
        }
        poll(NULL, 0, 20);
    }
}

static void custom_proxy_stop(struct run_network *net)
{
    pid_t pid = net->custom_pid;
    if (pid <= 0)
        return;
    net->custom_pid = 0;
    kill(-pid, SIGTERM);
    uint64_t deadline = now_ms() + CUSTOM_PROXY_STOP_MS;
    while (waitpid(pid, NULL, WNOHANG) == 0) {
        if (now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, NULL, 0);
            break;
        }
        poll(NULL, 0, 10);
    }
    kill(-pid, SIGKILL); /* children that outlived the shell */
}

/* Host directories the sandbox does not see at the same path (airlock
 * replaces them: see session/src/mounts.c); the helper is bound read-only
 * into the sandbox (sb_config.ro_paths), except into these. */
static const char *const not_in_sandbox[] = {"/proc", "/dev", "/sys"};

/* Finds airlock-connect next to the airlock binary (installed: same bin/;
 * build tree: ../netproxy/) and keeps it unless the policy hides it or its
 * path is under /proc, /dev or /sys or needs quoting in GIT_SSH_COMMAND.
 * run.c binds it read-only at the same path into the sandbox (a build tree
 * under /tmp included). */
static void find_connect_helper(struct run_network *net, const struct al_policy *policy)
{
    static const char *const rel[] = {"airlock-connect", "../netproxy/airlock-connect",
                                      "../libexec/airlock/airlock-connect"};
    char exe[PATH_MAX], cand[PATH_MAX], real[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0';
    for (size_t i = 0; i < sizeof(rel) / sizeof(*rel); i++) {
        if (al_path_join(cand, sizeof(cand), exe, rel[i]) < 0 || !realpath(cand, real) ||
            access(real, X_OK) < 0)
            continue;
        if (strspn(real, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._+-") !=
                strlen(real) ||
            strlen(real) >= sizeof(net->connect_helper))
            break;
        for (size_t d = 0; d < sizeof(not_in_sandbox) / sizeof(*not_in_sandbox); d++)
            if (al_path_within(real, not_in_sandbox[d]))
                goto hidden;
        for (size_t d = 0; d < policy->deny_read.len; d++) {
            const char *pat = policy->deny_read.items[d];
            if (al_glob_has_magic(pat) ? al_glob_match(pat, real) : al_path_within(real, pat))
                goto hidden;
        }
        snprintf(net->connect_helper, sizeof(net->connect_helper), "%s", real);
        return;
    hidden:
        al_log(AL_LOG_DEBUG, "%s is not visible inside the sandbox: no GIT_SSH_COMMAND", real);
        return;
    }
    al_log(AL_LOG_DEBUG, "airlock-connect not found next to %s: no GIT_SSH_COMMAND", exe);
}

/* Every signal airlock supervises stays blocked in the proxy's threads, so
 * the main thread's sigwaitinfo() sees them. */
static void block_all_signals(void)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
}

/* `s` (NULL: "?") as one line of printable ASCII: see al_term_line(). */
static void term_safe(char *out, size_t n, const char *s)
{
    al_term_line(out, n, s ? s : "?", AL_TERM_ASCII);
}

/* Prints airlock's line `fmt` (no newline) on stderr, or between the
 * command's output when the relay owns the terminal. */
static void say(const struct run_network *net, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const struct run_network *net, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (run_pty_say(net->pty, line) < 0)
        fprintf(stderr, "%s\n", line);
}

static void *loop_main(void *arg)
{
    block_all_signals();
    int err = np_proxy_run(arg);
    if (err < 0)
        al_log(AL_LOG_ERROR, "network proxy stopped: %s", al_error_last());
    return NULL;
}

/* Appends `host:port` to allowedDomains in settings.local.json (which the
 * next run with the same settings folder reads: settings_load.c). */
static void persist_always(const struct run_network *net, const char *host, unsigned port)
{
    const char *dir = net->settings_dir;
    char path[PATH_MAX], entry[300];
    if (!dir || al_path_join(path, sizeof(path), dir, "settings.local.json") < 0)
        return;
    snprintf(entry, sizeof(entry), port == 443 || port == 80 ? "%s" : "%s:%u", host, port);
    json_error_t jerr;
    char safe[PATH_MAX];
    term_safe(safe, sizeof(safe), path);
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root && access(path, F_OK) == 0) {
        /* never overwrite a file of the user's that we cannot read */
        say(net, "airlock: warning: %s is not valid JSON: \"%s\" not saved", safe, entry);
        return;
    }
    if (!root)
        root = json_object();
    json_t *sb = json_object_get(root, "sandbox");
    if (!json_is_object(sb)) {
        sb = json_object();
        json_object_set_new(root, "sandbox", sb);
    }
    json_t *jnet = json_object_get(sb, "network");
    if (!json_is_object(jnet)) {
        jnet = json_object();
        json_object_set_new(sb, "network", jnet);
    }
    json_t *list = json_object_get(jnet, "allowedDomains");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(jnet, "allowedDomains", list);
    }
    json_array_append_new(list, json_string(entry));
    if (json_dump_file(root, path, JSON_INDENT(2)) < 0)
        say(net, "airlock: warning: cannot save \"%s\" to %s", entry, safe);
    else
        say(net, "airlock: added \"%s\" to sandbox.network.allowedDomains in %s", entry, safe);
    json_decref(root);
}

struct approval_job {
    struct run_network *net;
    uint64_t id;
    char host[256];
    unsigned port;
};

/* The answer already given in this run for host:port: 1 allow, 0 deny,
 * -1 none. */
static int answer_find(struct run_network *net, const char *host, unsigned port)
{
    int found = -1;
    pthread_mutex_lock(&net->answers_lock);
    for (size_t i = 0; i < net->n_answers && found < 0; i++)
        if (net->answers[i].port == port && strcmp(net->answers[i].host, host) == 0)
            found = net->answers[i].allow;
    pthread_mutex_unlock(&net->answers_lock);
    return found;
}

static void answer_keep(struct run_network *net, const char *host, unsigned port, int allow)
{
    pthread_mutex_lock(&net->answers_lock);
    size_t max = sizeof(net->answers) / sizeof(*net->answers);
    struct run_net_answer *a = &net->answers[net->n_answers < max ? net->n_answers++ : max - 1];
    snprintf(a->host, sizeof(a->host), "%s", host);
    a->port = port;
    a->allow = allow;
    pthread_mutex_unlock(&net->answers_lock);
}

/* Asks on /dev/tty (no relay: the command shares the terminal) and waits
 * up to `timeout_s`: 'y', 'a', 'n', 0 (no answer in time, said on a line
 * of its own) or -1 (no terminal). */
static int ask_dev_tty(const char *question, unsigned timeout_s)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    /* A line of its own: whatever the command left on the current one. */
    dprintf(fd, "\n%s ", question);
    int result = 'n';
    struct pollfd p = {fd, POLLIN, 0};
    int r;
    while ((r = poll(&p, 1, (int)(timeout_s * 1000u))) < 0 && errno == EINTR)
        ;
    if (r == 0) {
        tcflush(fd, TCIFLUSH); /* a half-typed answer is not the command's */
        dprintf(fd, "\nairlock: no answer in %u s: denied\n", timeout_s);
        result = 0;
    } else {
        struct run_prompt_line line = {0};
        char answer[64] = {0}, echo[8];
        size_t used;
        ssize_t n = read(fd, answer, sizeof(answer) - 1);
        if (n > 0 &&
            run_prompt_feed(&line, answer, (size_t)n, &used, echo, sizeof(echo)) == RUN_PROMPT_DONE)
            result = run_prompt_verdict(&line);
    }
    close(fd);
    return result;
}

/* Asks on the terminal, one question at a time, off the proxy's loop. */
static void *ask_main(void *arg)
{
    static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER;
    struct approval_job *job = arg;
    struct run_network *net = job->net;
    block_all_signals();
    pthread_mutex_lock(&one_at_a_time);
    enum np_verdict v = NP_VERDICT_DENY;
    int before = answer_find(net, job->host, job->port);
    if (before >= 0) {
        v = before ? NP_VERDICT_ALLOW_SESSION : NP_VERDICT_DENY;
    } else {
        char host[300], question[400];
        term_safe(host, sizeof(host), job->host);
        snprintf(question, sizeof(question),
                 "airlock: allow network access to %s:%u? [y]es/[a]lways/[N]o", host, job->port);
        int a = net->pty ? run_pty_ask(net->pty, question, net->ask_timeout_s)
                         : ask_dev_tty(question, net->ask_timeout_s);
        if (a == 'y')
            v = NP_VERDICT_ALLOW_SESSION;
        else if (a == 'a')
            v = NP_VERDICT_ALLOW_ALWAYS;
        if (a != -1)
            answer_keep(net, job->host, job->port, v != NP_VERDICT_DENY);
    }
    if (v == NP_VERDICT_ALLOW_ALWAYS)
        persist_always(net, job->host, job->port);
    np_proxy_approve(net->proxy, job->id, v);
    pthread_mutex_unlock(&one_at_a_time);
    free(job);
    pthread_mutex_lock(&net->answers_lock);
    net->asking--;
    pthread_cond_broadcast(&net->asked);
    pthread_mutex_unlock(&net->answers_lock);
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
    pthread_mutex_lock(&net->answers_lock);
    net->asking++;
    pthread_mutex_unlock(&net->answers_lock);
    if (pthread_create(&t, NULL, ask_main, job) != 0) {
        np_proxy_approve(net->proxy, req->id, NP_VERDICT_DENY);
        free(job);
        pthread_mutex_lock(&net->answers_lock);
        net->asking--;
        pthread_mutex_unlock(&net->answers_lock);
        return;
    }
    pthread_detach(t);
}

/* Prints the terminal line for one refused request (decision log record `o`,
 * not a relay): what happened and, for a policy refusal, what to add to which
 * key of which settings file. */
static void print_refusal(const struct run_network *net, json_t *o, const char *decision)
{
    char host[300], addr[64], cls[32], rule[200], reason[64];
    const char *rsn = json_string_value(json_object_get(o, "reason"));
    json_int_t port = json_integer_value(json_object_get(o, "port"));
    const char *r = rsn ? rsn : decision;
    const char *key = net->key_path;
    const char *in = net->settings_file;

    term_safe(host, sizeof(host), json_string_value(json_object_get(o, "host")));
    term_safe(addr, sizeof(addr), json_string_value(json_object_get(o, "addr")));
    term_safe(cls, sizeof(cls), json_string_value(json_object_get(o, "addr_class")));
    term_safe(rule, sizeof(rule), json_string_value(json_object_get(o, "rule")));
    term_safe(reason, sizeof(reason), r);
    struct in6_addr ip;
    int host_is_ip = inet_pton(AF_INET, host, &ip) == 1 || inet_pton(AF_INET6, host, &ip) == 1;
    char hp[320]; /* host:port, an IPv6 address in brackets */
    if (strchr(host, ':'))
        snprintf(hp, sizeof(hp), "[%s]:%lld", host, (long long)port);
    else
        snprintf(hp, sizeof(hp), "%s:%lld", host, (long long)port);

    if (strcmp(r, "dns-failure") == 0)
        say(net, "airlock: network: %s: the name does not resolve (DNS)", hp);
    else if (strcmp(r, "blocked-address") == 0)
        say(net,
            "airlock: blocked network: %s resolved to %s (%s address): to allow it, "
            "add \"%s\" to %s.allowedAddresses%s",
            hp, addr, cls, addr, key, in);
    else if (strcmp(r, "blocked-by-policy") == 0 && strcmp(rule, "strictAllowlist") == 0)
        say(net,
            "airlock: blocked network: %s (not in the allowlist, and %s.strictAllowlist is "
            "set: not asked): add \"%s\" to %s.allowedDomains%s",
            hp, key, host, key, in);
    else if (strcmp(r, "blocked-by-policy") == 0 && rule[0] && strcmp(rule, "?") != 0)
        say(net,
            "airlock: blocked network: %s (denied by %s.deniedDomains entry "
            "\"%s\"%s)",
            hp, key, rule, in);
    else if (strcmp(r, "blocked-by-policy") == 0 && host_is_ip)
        say(net,
            "airlock: blocked network: %s (an IP address, not in the allowlist): "
            "to allow it, add \"%s\" to %s.allowedAddresses%s",
            hp, host, key, in);
    else if (strcmp(r, "blocked-by-policy") == 0 || strcmp(r, "needs-approval-timeout") == 0)
        /* With a terminal to ask on, a host in neither list was asked
         * about: blocked-by-policy without a rule is an answer. */
        say(net, "airlock: blocked network: %s (%s): add \"%s\" to %s.allowedDomains%s", hp,
            r[0] != 'b' ? "nobody approved it in time"
            : net->ask  ? "not approved at the prompt"
                        : "not in the allowlist",
            host, key, in);
    else if (strcmp(r, "blocked-by-request-rule") == 0 || strcmp(r, "bad-path") == 0 ||
             strcmp(r, "upgrade-not-inspected") == 0) {
        /* the proxy's one-line reason names the request and the rules */
        char detail[400];
        const char *d = json_string_value(json_object_get(o, "detail"));
        if (d && strncmp(d, "airlock: ", 9) == 0)
            d += 9;
        term_safe(detail, sizeof(detail), d);
        say(net, "airlock: blocked network: %s (%s): %s", hp, reason, detail);
    } else
        say(net, "airlock: blocked network: %s (%s)", hp, reason);
}

/* reportOnly: one line per host:port and run for requests that were let
 * through but would have been refused (decision "would-deny"). */
static void print_would_deny(struct run_network *net, json_t *o)
{
    char host[sizeof(net->would[0].host)], reason[64];
    json_int_t port = json_integer_value(json_object_get(o, "port"));

    term_safe(host, sizeof(host), json_string_value(json_object_get(o, "host")));
    term_safe(reason, sizeof(reason), json_string_value(json_object_get(o, "reason")));
    for (size_t i = 0; i < net->n_would; i++)
        if (net->would[i].port == (unsigned)port && strcmp(net->would[i].host, host) == 0)
            return;
    if (net->n_would < sizeof(net->would) / sizeof(net->would[0])) {
        snprintf(net->would[net->n_would].host, sizeof(net->would[0].host), "%s", host);
        net->would[net->n_would++].port = (unsigned)port;
    }
    say(net, "airlock: would block (reportOnly): %s%s%s:%lld (%s)", strchr(host, ':') ? "[" : "",
        host, strchr(host, ':') ? "]" : "", (long long)port, reason);
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
        if (net->decision_open) {
            size_t len = strlen(line);
            /* the record as the proxy wrote it, in one write; on a terminal
             * the sandbox's relay owns, between the command's lines */
            if (net->decision_fd == STDERR_FILENO && net->pty && len > 0 && len < 2000 &&
                line[len - 1] == '\n') {
                line[len - 1] = '\0';
                say(net, "%s", line);
                line[len - 1] = '\n';
            } else {
                ssize_t w = write(net->decision_fd, line, len);
                (void)w;
            }
            if (net->decision_fd == STDERR_FILENO)
                continue; /* the records are the report on stderr */
        }
        json_t *o = json_loads(line, 0, NULL);
        const char *decision = json_string_value(json_object_get(o, "decision"));
        const char *proxy = json_string_value(json_object_get(o, "proxy"));
        if (decision && strcmp(decision, "would-deny") == 0) {
            print_would_deny(net, o);
        } else if (decision && strcmp(decision, "allow") != 0) {
            const char *host = json_string_value(json_object_get(o, "host"));
            const char *reason = json_string_value(json_object_get(o, "reason"));
            json_int_t port = json_integer_value(json_object_get(o, "port"));
            if (proxy && strcmp(proxy, "relay") == 0)
                say(net, "airlock: cannot reach the external proxy at %s:%lld (%s)",
                    host ? host : "?", (long long)port, reason ? reason : decision);
            else
                print_refusal(net, o, decision);
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
                        const struct al_strlist *hosts, const char *settings_dir,
                        unsigned ask_timeout_s)
{
    memset(net, 0, sizeof(*net));
    pthread_mutex_init(&net->answers_lock, NULL);
    pthread_cond_init(&net->asked, NULL);
    net->sync_ready = 1;
    net->ask_timeout_s = ask_timeout_s;
    net->log_pipe[0] = net->log_pipe[1] = -1;
    net->settings_dir = settings_dir;
    net->http_port = policy->http_proxy_port;
    net->socks_port = policy->socks_proxy_port;
    if (policy->custom_proxy && !net->http_port && !net->socks_port) {
        fprintf(stderr, "airlock: sandbox.network.customProxy needs httpProxyPort or "
                        "socksProxyPort: the port(s) it listens on\n");
        return AL_EINVAL;
    }
    if (pipe2(net->log_pipe, O_CLOEXEC) < 0) {
        fprintf(stderr, "airlock: pipe: %s\n", strerror(errno));
        return AL_EIO;
    }
    struct np_config cfg;
    np_config_init(&cfg);
    snprintf(cfg.settings_key, sizeof(cfg.settings_key), "%s", policy->net_key_path);
    snprintf(net->key_path, sizeof(net->key_path), "%s", policy->net_key_path);
    if (policy->net_file) {
        char file[480];
        term_safe(file, sizeof(file), policy->net_file);
        snprintf(net->settings_file, sizeof(net->settings_file), " in %s", file);
    }
    cfg.resolver_threads = 2;
    /* The question on the terminal ends first (and says so); the proxy's
     * own deadline is for a request queued behind other questions. */
    cfg.approval_timeout_ms = (ask_timeout_s + 5) * 1000u;
    cfg.log_fd = net->log_pipe[1];
    int err = np_proxy_new(&net->proxy, &cfg);
    if (err == 0)
        err = np_proxy_set_policy(net->proxy, "run", &policy->net);
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
    /* strictAllowlist: a host outside the list is refused, never asked about */
    int tty = policy->net.strict_allowlist ? -1 : open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (tty >= 0) {
        close(tty);
        net->ask = 1;
        np_proxy_set_approver(net->proxy, approver, net);
    }
    if (policy->custom_proxy && (err = custom_proxy_start(net, policy->custom_proxy)) < 0)
        return err;
    find_connect_helper(net, policy);
    return 0;
}

/* Opens 127.0.0.1:port inside the sandbox and serves it: airlock's own
 * proxy of `kind`, or, with an external port, a plain relay to it. */
static int open_listener(struct run_network *net, int netns_fd, uint16_t port, enum np_kind kind,
                         int external_port)
{
    int fd = -1;
    char target[32];
    if (np_listener_open_in_netns(&fd, netns_fd, port) < 0)
        return -1;
    if (!external_port)
        return np_proxy_add_listener(net->proxy, fd, kind, "run");
    snprintf(target, sizeof(target), "127.0.0.1:%d", external_port);
    return np_proxy_add_relay_listener(net->proxy, fd, target, "run");
}

int run_network_on_netns(int netns_fd, void *payload)
{
    struct run_network *net = payload;
    if (open_listener(net, netns_fd, RUN_NET_HTTP_PORT, NP_HTTP, net->http_port) < 0 ||
        open_listener(net, netns_fd, RUN_NET_SOCKS_PORT, NP_SOCKS5, net->socks_port) < 0) {
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

/* 1 if `env` already sets the variable of `assignment` ("NAME=value"). */
static int env_has(const struct al_strlist *env, const char *assignment)
{
    size_t n = strcspn(assignment, "=");
    for (size_t i = 0; i < env->len; i++)
        if (strncmp(env->items[i], assignment, n) == 0 && env->items[i][n] == '=')
            return 1;
    return 0;
}

int run_network_env(const struct run_network *net, struct al_strlist *env)
{
    /* A variable the user passed with --pass-env wins over airlock's own
     * (NO_PROXY= for a service on the host's loopback, a JAVA_TOOL_OPTIONS
     * of their own): the network namespace, not the variables, is what keeps
     * traffic on the proxy. */
    for (size_t i = 0; i < AL_PROXY_ENV_LEN; i++)
        if (!env_has(env, al_proxy_env[i]) && al_strlist_push(env, al_proxy_env[i]) < 0)
            return AL_ENOMEM;
    if (!net->connect_helper[0])
        return 0;
    if (env_has(env, "GIT_SSH_COMMAND="))
        return 0; /* the user's own (--pass-env) wins */
    /* git runs this with the shell, ssh runs the ProxyCommand with it too:
     * the helper's path holds only characters that need no quoting. */
    char var[PATH_MAX + 64];
    snprintf(var, sizeof(var), "GIT_SSH_COMMAND=ssh -o ProxyCommand='%s %%h %%p'",
             net->connect_helper);
    return al_strlist_push(env, var) < 0 ? AL_ENOMEM : 0;
}

int run_network_decision_log(struct run_network *net, const char *path)
{
    if (strcmp(path, "-") == 0) {
        net->decision_fd = STDERR_FILENO;
    } else {
        net->decision_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
        if (net->decision_fd < 0) {
            fprintf(stderr, "airlock: --decision-log %s: %s\n", path, strerror(errno));
            return AL_EIO;
        }
    }
    net->decision_open = 1;
    return 0;
}

void run_network_stop(struct run_network *net)
{
    custom_proxy_stop(net);
    /* Questions on the relay end as soon as it stopped (they answer -1);
     * on /dev/tty they may wait for a key: those are left to exit(). */
    if (net->sync_ready && net->pty) {
        pthread_mutex_lock(&net->answers_lock);
        while (net->asking > 0)
            pthread_cond_wait(&net->asked, &net->answers_lock);
        pthread_mutex_unlock(&net->answers_lock);
    }
    if (!net->proxy) {
        if (net->decision_open && net->decision_fd != STDERR_FILENO)
            close(net->decision_fd);
        net->decision_open = 0;
        return;
    }
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
    if (net->decision_open && net->decision_fd != STDERR_FILENO)
        close(net->decision_fd);
    net->decision_open = 0;
}
