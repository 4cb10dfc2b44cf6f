/* airlockd: the session manager daemon.
 *
 *   airlockd [--config FILE] [--state-dir DIR] [--listen HOST:PORT]
 *            [--log-level LEVEL] [--check-config]
 *   airlockd up [options]   (= airlock up: set a state dir up, then run)
 *   airlockd admin …        (= airlock admin)
 *
 * Start-up: configuration, state dir, database, the control and reaper
 * threads (re-adopting the sandboxes of an earlier daemon), then the HTTP
 * server. SIGTERM/SIGINT drain: stop accepting, let requests in flight finish
 * up to drain_timeout_s, then stop; sandboxes keep running (so does a
 * SIGKILL) and are re-adopted by the next start.
 */
#include "airlockd/adapters/admin.h"
#include "airlockd/adapters/credsync.h"
#include "airlockd/adapters/db.h"
#include "airlockd/adapters/forge.h"
#include "airlockd/adapters/gitrepo.h"
#include "airlockd/adapters/proxies.h"
#include "airlockd/adapters/secrets.h"
#include "airlockd/adapters/reaper.h"
#include "airlockd/adapters/store.h"
#include "airlockd/adapters/store_jobs.h"
#include "airlockd/adapters/store_nodes.h"
#include "airlockd/adapters/uidrange.h"
#include "airlockd/adapters/up.h"
#include "airlockd/adapters/webhooks.h"
#include "airlockd/api/body.h"
#include "airlockd/api/http.h"
#include "airlockd/api/jobs_api.h"
#include "airlockd/core/cluster.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/evbus.h"
#include "airlockd/core/jobs.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/version.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <unistd.h>

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [--config FILE] [--state-dir DIR] [--listen HOST:PORT]\n"
            "                [--log-level error|warn|info|debug] [--log-format text|json]\n"
            "                [--check-config]\n"
            "       %s --version\n"
            "       %s up --help\n"
            "       %s admin --help\n",
            prog, prog, prog, prog);
}

static void up_usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s up [--state-dir DIR] [--listen HOST:PORT]\n"
            "                  [--log-level error|warn|info|debug] [--log-format text|json]\n"
            "                  [--config FILE]\n"
            "\n"
            "Sets DIR (default /var/lib/airlock) up on first use: master and token keys,\n"
            "the gitproxy and airlockd configurations, and an admin user whose API key\n"
            "is printed once. Then runs airlockd and its proxies in the foreground.\n",
            prog);
}

/* The daemon's command line (`airlockd [options]` or `airlockd up
 * [options]`), read before anything else happens. */
struct daemon_args {
    const char *prog; /* "airlock" (run by the airlock command) or "airlockd" */
    int up, check, help, version;
    const char *config, *state_dir, *listen, *level, *format;
};

/* Prints "<prog>[ up]: <message>" and the usage hint on stderr; returns 2. */
__attribute__((format(printf, 2, 3))) static int bad_usage(const struct daemon_args *a,
                                                           const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s%s: ", a->prog, a->up ? " up" : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(%s%s --help for the usage)\n", a->prog, a->up ? " up" : "");
    return 2;
}

/* Parses argv into `a`; touches nothing. 0, or 2 after saying what is
 * wrong. --help (-h) anywhere wins over any mistake; --version over those
 * after it. */
static int daemon_args_parse(struct daemon_args *a, int argc, char **argv)
{
    for (int i = a->up ? 2 : 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            a->help = 1;
            return 0;
        }
    }
    for (int i = a->up ? 2 : 1; i < argc; i++) {
        const char **slot = NULL, *what = NULL;
        if (strcmp(argv[i], "--config") == 0)
            slot = &a->config, what = "a configuration file";
        else if (strcmp(argv[i], "--state-dir") == 0)
            slot = &a->state_dir, what = "a directory";
        else if (strcmp(argv[i], "--listen") == 0)
            slot = &a->listen, what = "HOST:PORT";
        else if (strcmp(argv[i], "--log-level") == 0)
            slot = &a->level, what = "error, warn, info or debug";
        else if (strcmp(argv[i], "--log-format") == 0)
            slot = &a->format, what = "text or json";
        else if (strcmp(argv[i], "--check-config") == 0 && !a->up) {
            a->check = 1;
            continue;
        } else if (strcmp(argv[i], "--version") == 0) {
            a->version = 1;
            return 0;
        } else {
            return bad_usage(a, "unknown %s \"%s\"", argv[i][0] == '-' ? "option" : "argument",
                             argv[i]);
        }
        if (i + 1 >= argc)
            return bad_usage(a, "%s needs a value (%s)", argv[i], what);
        *slot = argv[++i];
    }
    return 0;
}

/* Loads the command line's --state-dir, --listen, --log-level and --log-format into
 * `cfg`: the same checks as the configuration file's. 0 or AL_E*. */
static int config_apply_args(struct ald_config *cfg, const struct daemon_args *a)
{
    json_t *o = json_object();
    if (!o)
        return AL_ENOMEM;
    if (a->state_dir)
        json_object_set_new(o, "state_dir", json_string(a->state_dir));
    if (a->listen)
        json_object_set_new(o, "listen", json_string(a->listen));
    if (a->level)
        json_object_set_new(o, "log_level", json_string(a->level));
    if (a->format)
        json_object_set_new(o, "log_format", json_string(a->format));
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!txt)
        return AL_ENOMEM;
    int err = ald_config_load_buffer(cfg, "command line", txt, strlen(txt));
    free(txt);
    return err;
}

/* The name the user typed: "airlock" when the airlock command runs us for
 * `airlock up|admin` (it passes argv[0] "airlock"), else "airlockd". */
static const char *prog_name(const char *argv0)
{
    const char *base = argv0 ? strrchr(argv0, '/') : NULL;
    base = base ? base + 1 : argv0;
    return base && strcmp(base, "airlock") == 0 ? "airlock" : "airlockd";
}

static enum al_log_level level_of(const char *name)
{
    if (strcmp(name, "error") == 0)
        return AL_LOG_ERROR;
    if (strcmp(name, "warn") == 0)
        return AL_LOG_WARN;
    if (strcmp(name, "debug") == 0)
        return AL_LOG_DEBUG;
    return AL_LOG_INFO;
}

/* Writes "<state>/airlockd.addr" with the bound address, for scripts. */
static void write_addr(const struct ald_config *cfg, const char *bound)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/airlockd.addr", cfg->state_dir);
    int m = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || m < 0 || (size_t)m >= sizeof(tmp))
        return;
    FILE *f = fopen(tmp, "we");
    if (!f)
        return;
    fprintf(f, "%s\n", bound);
    if (fclose(f) == 0)
        rename(tmp, path);
}

/* Drain: no new connections, requests in flight finish (up to the
 * deadline), long polls (events, output follow) end at once. */
static void drain(struct ald *d)
{
    atomic_store(&d->draining, 1);
    uint64_t one = 1;
    if (write(d->drain_fd, &one, sizeof(one)) < 0)
        al_log(AL_LOG_WARN, "drain: %s", strerror(errno));
    ald_http_quiesce(d);
    evbus_close(d->bus);
    /* idle keep-alive connections do not hold the drain up: requests do */
    unsigned waited = 0;
    unsigned limit = (unsigned)d->cfg->drain_timeout_s * 20;
    while (atomic_load(&d->inflight) > 0 && waited < limit) {
        poll(NULL, 0, 50);
        waited++;
    }
    if (atomic_load(&d->inflight) > 0)
        al_log(AL_LOG_WARN, "drain: %d requests still running after %llu s; closing them",
               atomic_load(&d->inflight), (unsigned long long)d->cfg->drain_timeout_s);
}

/* Core's hooks (airlockd/core/hooks.h): the store, the proxy supervisor and
 * git repositories of the adapters, the settings check of the api. */
static const struct ald_hooks hooks = {
    .store =
        {
            .checkpoint = ald_store_checkpoint,
            .session_put = ald_store_session_put,
            .session_get = ald_store_session_get,
            .session_live = ald_store_session_live,
            .session_kept = ald_store_session_kept,
            .proc_put = ald_store_proc_put,
            .proc_put_audit = ald_store_proc_put_audit,
            .proc_running = ald_store_proc_running,
            .proc_max = ald_store_proc_max,
            .idem_claim = ald_store_idem_claim,
            .idem_release = ald_store_idem_release,
            .idem_purge = ald_store_idem_purge,
        },
    .cluster =
        {
            .node_register = ald_store_node_register,
            .node_heartbeat = ald_store_node_heartbeat,
            .node_sweep = ald_store_node_sweep,
            .node_list = ald_store_node_list,
            .node_set_state = ald_store_node_set_state,
            .place = ald_store_place,
            .place_fail = ald_store_place_fail,
            .session_live_on = ald_store_session_live_on,
            .session_gone_on = ald_store_session_gone_on,
            .session_rows = ald_store_session_rows,
            .meta_check = ald_store_meta_check,
            .approval_put = ald_store_approval_put,
            .approval_list = ald_store_approval_list,
            .approvals_expire = ald_store_approvals_expire,
        },
    .px =
        {
            .start = ald_px_start,
            .stop = ald_px_stop,
            .ports = ald_px_ports,
            .session_add = ald_px_session_add,
            .session_remove = ald_px_session_remove,
        },
    .git =
        {
            .plan = ald_git_plan,
            .live_clash = ald_git_live_clash,
            .setup = ald_git_setup,
            .load = ald_git_load,
            .clone = ald_git_clone,
        },
    .creds =
        {
            .prepare = ald_secrets_prepare,
            .load = ald_secrets_load,
            .trust_files = ald_secrets_trust_files,
        },
    .forge =
        {
            .open_pr = ald_forge_open_pr,
        },
};

/* The user as the store has them now, for a job about to start. */
static int jobs_user_get(struct ald_store *st, const char *user, struct ald_principal *out)
{
    struct ald_user u;
    memset(out, 0, sizeof(*out));
    int err = ald_store_user_get(st, user, &u);
    if (err < 0)
        return err;
    snprintf(out->user, sizeof(out->user), "%s", u.name);
    out->admin = u.admin;
    out->max_sessions = u.max_sessions;
    out->max_memory_mb = u.max_memory_mb;
    return 0;
}

/* What jobs need of the adapters and the api (airlockd/core/jobs.h). */
static const struct ald_jobs_ops jobs_ops = {
    .put = ald_jobstore_put,
    .get = ald_jobstore_get,
    .page = ald_jobstore_page,
    .in_state = ald_jobstore_in_state,
    .proc_get = ald_store_proc_get,
    .create_req = ald_api_job_create_req,
    .user_get = jobs_user_get,
    .claim = ald_jobstore_claim,           /* cluster mode */
    .running_on = ald_jobstore_running_on, /* cluster mode */
};

/* The sessions whose sandboxes keep running when the daemon stops: every
 * live one (not ended). */
static size_t sessions_live(struct ald *d)
{
    size_t n = 0;
    pthread_mutex_lock(&d->lock);
    for (const struct ald_session *s = d->sessions; s; s = s->next)
        n += !ALD_STATE_ENDED(s->state);
    pthread_mutex_unlock(&d->lock);
    return n;
}

/* Runs the daemon until SIGTERM or SIGINT; then drains. *live: how many
 * sessions keep running after it. 0, or 1 when the start failed. */
static int serve(struct ald_config *cfg, size_t *live)
{
    struct ald d;
    memset(&d, 0, sizeof(d));
    d.hooks = hooks;
    d.cfg = cfg;
    d.epfd = d.stop_fd = d.drain_fd = -1;
    int rc = 1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d.cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&d.lock, NULL);
    snprintf(d.sessions_dir, sizeof(d.sessions_dir), "%s/sessions", cfg->state_dir);
    char db[PATH_MAX];
    snprintf(db, sizeof(db), "%s/airlockd.db", cfg->state_dir);
    int started = 0, http = 0;
    struct ald_uidr_claim uidr = {.record_fd = -1};
    struct ald_jobstore *jobstore = NULL;

    /* Each session holds a few descriptors here (control socket, proxy
     * listeners): 500 sessions need more than the usual soft limit of 1024.
     * Sandboxes set their own limit (session/src/privs.c). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            al_log(AL_LOG_WARN, "cannot raise the open file limit: %s", strerror(errno));
    }

    /* signals are taken by sigwait() below; every thread inherits the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP); /* taken and ignored: the terminal going away is no reason to stop */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* airlock-init: in the build tree it is session/airlock-init, beside
     * airlockd/ */
    if (ald_find_binary(cfg->init_path, "init_path", "airlock-init", "../session",
                        "/usr/libexec/airlock", d.init_path, sizeof(d.init_path)) < 0 ||
        ald_state_prepare(cfg->state_dir) < 0 || ald_store_open_config(&d.st, cfg, db) < 0 ||
        ald_webhooks_open(&d) < 0) {
        al_log(AL_LOG_ERROR, "%s", al_error_last());
        goto out;
    }
    /* The session uid range, checked against the host's accounts and
     * subordinate ranges and the other airlockd processes, and recorded
     * under /run for the daemon's life: before any sandbox is adopted or
     * created. */
    if (ald_uidr_claim(&uidr, &ald_uidr_system, cfg->state_dir, cfg->uid_range_explicit,
                       cfg->uid_start, cfg->uid_count) < 0) {
        al_log(AL_LOG_ERROR, "%s", al_error_last());
        goto out;
    }
    cfg->uid_start = (uid_t)uidr.start;
    al_log(AL_LOG_INFO, "session uids and gids %llu…%llu (uid_range %llu+%llu%s)",
           (unsigned long long)uidr.start, (unsigned long long)(uidr.start + uidr.count - 1),
           (unsigned long long)uidr.start, (unsigned long long)uidr.count,
           cfg->uid_range_explicit ? "" : ", chosen by airlockd");
    d.stop_fd = eventfd(0, EFD_CLOEXEC);
    d.drain_fd = eventfd(0, EFD_CLOEXEC);
    d.bus = evbus_new(cfg->event_retention);
    /* Event 1 marks the start and belongs to nobody (no user: only an
     * admin subscription could see it, and replays start after it), so
     * that "Last-Event-ID: 0" can replay every event from id 2 on. */
    if (d.stop_fd < 0 || d.drain_fd < 0 || !d.bus ||
        evbus_publish(d.bus, NULL, NULL, "daemon", json_pack("{s:s}", "state", "started")) != 1) {
        al_log(AL_LOG_ERROR, "out of resources");
        goto out;
    }
    /* cluster mode: key checks, this node's row, heartbeats; before the
     * sessions are re-adopted (only this node's rows) */
    if (ald_cluster_start(&d, AL_VERSION) < 0) {
        al_log(AL_LOG_ERROR, "%s", al_error_last());
        goto out;
    }
    /* cluster mode: the credential store file in step with the cluster's */
    if (ald_credsync_start(&d) < 0) {
        al_log(AL_LOG_ERROR, "%s", al_error_last());
        goto out;
    }
    if (ald_sessions_start(&d) < 0) {
        al_log(AL_LOG_ERROR, "%s", al_error_last());
        goto out;
    }
    started = 1;
    struct ald_db *jobs_db = ald_store_sibling(d.st);
    int jerr = jobs_db ? ald_jobstore_open_db(&jobstore, jobs_db) : AL_EIO;
    ald_db_unref(jobs_db);
    if (ald_webhooks_start(&d) < 0 || jerr < 0 || ald_jobs_start(&d, &jobs_ops, jobstore) < 0) {
        al_log(AL_LOG_ERROR, "%s", al_error_last());
        goto out;
    }
    char bound[300] = "";
    if (ald_http_start(&d, bound, sizeof(bound)) < 0) {
        al_log(AL_LOG_ERROR, "%s", al_error_last());
        goto out;
    }
    http = 1;
    write_addr(cfg, bound);
    al_log(AL_LOG_INFO, "listening on %s (state %s, init %s)", bound, cfg->state_dir, d.init_path);

    int sig = 0;
    while (sigwait(&set, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
        ;
    al_log(AL_LOG_INFO, "signal %d: draining (sandboxes keep running)", sig);
    drain(&d);
    *live = sessions_live(&d);
    al_log(AL_LOG_INFO, "stopped: %zu session%s keep%s running; the next start on %s re-adopts %s",
           *live, *live == 1 ? "" : "s", *live == 1 ? "s" : "", cfg->state_dir,
           *live == 1 ? "it" : "them");
    rc = 0;
out:
    atomic_store(&d.stopping, 1);
    if (d.stop_fd >= 0) {
        uint64_t one = 1;
        if (write(d.stop_fd, &one, sizeof(one)) < 0)
            al_log(AL_LOG_WARN, "stop: %s", strerror(errno));
    }
    /* wakes requests waiting for an approval or a spawn */
    pthread_mutex_lock(&d.lock);
    pthread_cond_broadcast(&d.cond);
    pthread_mutex_unlock(&d.lock);
    if (http)
        ald_http_stop(&d);
    ald_cluster_stop(&d); /* no more heartbeats: down after down_after_ms unless back */
    ald_credsync_stop(&d);
    ald_jobs_stop(&d); /* running jobs go on in their sandboxes */
    ald_jobstore_close(jobstore);
    if (started)
        ald_sessions_stop(&d);
    ald_webhooks_stop(&d);
    ald_uidr_release(&uidr);
    evbus_free(d.bus);
    ald_store_close(d.st);
    if (d.stop_fd >= 0)
        close(d.stop_fd);
    if (d.drain_fd >= 0)
        close(d.drain_fd);
    pthread_cond_destroy(&d.cond);
    pthread_mutex_destroy(&d.lock);
    return rc;
}

int main(int argc, char **argv)
{
    struct daemon_args a = {.prog = prog_name(argv[0])};
    al_log_init("airlockd", AL_LOG_INFO);
    if (argc > 1 && strcmp(argv[1], "admin") == 0)
        return ald_admin_main(a.prog, argc - 1, argv + 1);
    a.up = argc > 1 && strcmp(argv[1], "up") == 0;
    int rc = daemon_args_parse(&a, argc, argv);
    if (rc != 0)
        return rc;
    if (a.help) {
        if (a.up)
            up_usage(stdout, a.prog);
        else
            usage(stdout, a.prog);
        return 0;
    }
    if (a.version) {
        puts("airlockd " AL_VERSION_LINE);
        return 0;
    }
    struct ald_config cfg;
    if (ald_config_init(&cfg) < 0)
        return 1;
    rc = 1;
    char up_config[PATH_MAX] = "";
    if (a.up) {
        /* up prepares the state dir once, then runs as `airlockd --config
         * DIR/airlockd.json` with the same options. The command line is
         * checked first: a mistake creates no directory, key or user. */
        if (config_apply_args(&cfg, &a) < 0) {
            fprintf(stderr, "%s up: %s\n", a.prog, al_error_last());
            goto out;
        }
        if (ald_up_prepare(a.state_dir ? a.state_dir : "/var/lib/airlock", up_config,
                           sizeof(up_config)) < 0) {
            fprintf(stderr, "%s up: %s\n", a.prog, al_error_last());
            goto out;
        }
        if (!a.config)
            a.config = up_config;
        ald_config_free(&cfg);
        if (ald_config_init(&cfg) < 0)
            return 1;
    }
    if (a.config && ald_config_load_file(&cfg, a.config) < 0) {
        fprintf(stderr, "airlockd: %s\n", al_error_last());
        goto out;
    }
    /* command-line values go through the same checks as the file's */
    if (config_apply_args(&cfg, &a) < 0) {
        fprintf(stderr, "airlockd: %s\n", al_error_last());
        goto out;
    }
    if (a.check) {
        puts("configuration ok");
        rc = 0;
        goto out;
    }
    al_log_set_level(level_of(cfg.log_level));
    if (cfg.log_format) {
        /* the proxies inherit it (px_env_keep, adapters/proxies.c), so
         * that their lines on the shared stderr are in the same format */
        enum al_log_format fmt;
        if (al_log_format_parse(&fmt, cfg.log_format) == 0) {
            al_log_set_format(fmt);
            setenv("AIRLOCK_LOG_FORMAT", cfg.log_format, 1);
        }
    }
    /* Under systemd's Delegate=yes on cgroup v2 the service's cgroup holds
     * the controllers: move into a leaf so that the sandboxes' cgroups,
     * made beside it, can have them. Before any thread or proxy starts,
     * and before the split, so that the front and the reaper are in the
     * leaf too. */
    int moved = sbs_cgroup_delegate_self("airlockd");
    if (moved == 1)
        al_log(AL_LOG_INFO, "cgroup v2: moved into the leaf \"airlockd\"; sandbox cgroups "
                            "go beside it");
    else if (moved < 0)
        al_log(AL_LOG_WARN, "cgroup v2: cannot pass the controllers on to sandboxes: %s",
               al_error_last());
    /* Front, reaper, daemon (airlockd/adapters/reaper.h): sandboxes that
     * outlive this daemon are reaped by the reaper, not left as zombies. */
    int front_status = 1;
    int split = ald_reaper_split(&front_status);
    if (split == 1) {
        rc = front_status; /* the front: the daemon has ended */
        goto out;
    }
    if (split < 0)
        al_log(AL_LOG_WARN,
               "no reaper process (%s): sandboxes that outlive this daemon are "
               "left to whoever adopts them",
               al_error_last());
    size_t live = 0;
    rc = serve(&cfg, &live);
    if (rc == 0 && a.up) {
        /* what the person at the terminal needs to know, whatever the log
         * level and format */
        if (live == 0)
            fprintf(stderr, "%s up: stopped; no session was running\n", a.prog);
        else
            fprintf(stderr,
                    "%s up: stopped; %zu session%s keep%s running (sandboxes and their "
                    "processes). `%s up --state-dir %s` re-adopts %s; to end %s, run "
                    "`airlock session rm ID...` against it (`airlock session ls` lists "
                    "them)\n",
                    a.prog, live, live == 1 ? "" : "s", live == 1 ? "s" : "", a.prog, cfg.state_dir,
                    live == 1 ? "it" : "them", live == 1 ? "it" : "them");
    }
out:
    ald_config_free(&cfg);
    return rc;
}
