/* airlock-gitproxy: the git proxy daemon.
 *
 *   airlock-gitproxy --config FILE [--listen ADDR:PORT=SESSION]...
 *                    [--listen-fd FD=SESSION]... [--control FD | --control-path PATH]
 *                    [--user NAME [--group NAME]] [-v]
 *
 * --control FD / --control-path PATH: serve airlockd's control protocol
 * (docs/control-protocol.md) on an inherited connected unix socket or on one
 * connected to PATH; sessions and their listeners then come from airlockd,
 * and the proxy exits when the socket closes (its supervisor restarts it).
 * --user NAME: once the keys, the credential store and the listeners are
 * open and the store's directory is watched, create the cache dir, chown it
 * to NAME and drop to it for good. Later versions of the store come from
 * airlockd as descriptors (control mode; docs/gitproxy.md). With or without
 * --user, the proxy then checks that it can create and remove a file in the
 * cache dir, and exits naming the path and the reason when it cannot.
 * No git configuration is read (gp_inspect_global_init()), whatever HOME
 * and XDG_CONFIG_HOME say.
 *
 * Two processes (docs/gitproxy.md, "Processes"): this one is the key holder;
 * before dropping privileges it execs itself with --front FD (front.c), the
 * process tree that parses what clients send, as the proxy user (nobody
 * when started as root without --user), which owns the cache dir; the front
 * checks the cache dir as that user.
 *
 * The configuration file (JSON):
 *   {"token_keys": [{"kid": "k2", "file": "/state/k2.key"}, {"kid": "k1", ...}],
 *    "store": "/state/creds.store", "master_key": "/state/master.key",
 *    "upstreams": {"github.com": {"url": "https://github.com", "ca_file": null,
 *                                 "fold_case": true}},
 *    "cache_dir": "/state/gitproxy", "revoked_file": "/state/revoked",
 *    "audit_log": "/state/gitproxy-audit.jsonl", "leak_guard": true,
 *    "check_fast_forward": true, "max_push_bytes": 4294967296,
 *    "listeners": [{"address": "127.0.0.1:7418", "session": "*"},
 *                  {"fd": 3, "session": "s-1234"}]}
 * The first token key signs; the others are accepted during rotation. Under
 * airlockd (--control) the token keys come from airlockd over the control
 * socket instead (token_keys, if present, is warned about and not used).
 * Bad configuration is fatal at start-up; nothing after that is.
 */
#include "airlock/gitproxy.h"
#include "gp_front.h"
#include "gp_keyd.h"
#include "airlock/cleanup.h"
#include "airlock/ctlmsg.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/version.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? strdup(s) : NULL;
}

static int config_load(struct gp_config *cfg, json_t **listeners, const char *path, int control)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    json_t *v;
    size_t i;
    const char *key;
    int err = 0;
    if (!root)
        return al_error_set(AL_EINVAL, "%s:%d: %s", path, jerr.line, jerr.text);
    json_t *keys = json_object_get(root, "token_keys");
    if (control && keys) {
        al_log(AL_LOG_WARN,
               "%s: token_keys: not used under airlockd (--control): airlockd sends"
               " the token keys (its proxies.token_keys)",
               path);
        keys = NULL;
    }
    if (!keys && control) {
        /* the keys come over the control socket */
    } else if (!json_is_array(keys) || json_array_size(keys) == 0 ||
               json_array_size(keys) > sizeof(cfg->keys.keys) / sizeof(cfg->keys.keys[0])) {
        err = al_error_set(AL_EINVAL, "%s: token_keys must list 1-4 keys", path);
        goto out;
    }
    json_array_foreach(keys, i, v)
    {
        const char *kid = json_string_value(json_object_get(v, "kid"));
        const char *file = json_string_value(json_object_get(v, "file"));
        if (!kid || !file) {
            err = al_error_set(AL_EINVAL, "%s: token key %zu needs kid and file", path, i);
            goto out;
        }
        if ((err = creds_key_load(&cfg->keys.keys[i], kid, file)) < 0)
            goto out;
        cfg->keys.len++;
    }
    const char *store = json_string_value(json_object_get(root, "store"));
    const char *mkey = json_string_value(json_object_get(root, "master_key"));
    if (!store || !mkey) {
        err = al_error_set(AL_EINVAL, "%s: store and master_key are required", path);
        goto out;
    }
    if ((err = creds_store_open(&cfg->store, store, mkey)) < 0)
        goto out;
    if (!(cfg->store_path = strdup(store))) {
        err = AL_ENOMEM;
        goto out;
    }
    json_t *ups = json_object_get(root, "upstreams");
    if (ups && !json_is_object(ups)) {
        err = al_error_set(AL_EINVAL, "%s: upstreams must be an object", path);
        goto out;
    }
    if (ups && !(cfg->upstreams = calloc(json_object_size(ups) + 1, sizeof(*cfg->upstreams)))) {
        err = AL_ENOMEM;
        goto out;
    }
    json_object_foreach(ups, key, v)
    {
        struct gp_upstream *u = &cfg->upstreams[cfg->nupstreams++];
        u->host = strdup(key);
        u->url = jstr(v, "url");
        u->ca_file = jstr(v, "ca_file");
        if (!u->host || !u->url) {
            err = al_error_set(AL_EINVAL, "%s: upstream %s needs a url", path, key);
            goto out;
        }
        json_t *fold = json_object_get(v, "fold_case");
        if (fold && !json_is_boolean(fold)) {
            err = al_error_set(AL_EINVAL, "%s: upstream %s: fold_case must be true or false", path,
                               key);
            goto out;
        }
        u->fold_case = json_is_true(fold);
        size_t n = strlen(u->url);
        while (n > 0 && u->url[n - 1] == '/')
            u->url[--n] = '\0';
        if (n == 0 || n > GP_UPSTREAM_URL_MAX) {
            err = al_error_set(AL_EINVAL, "%s: upstream %s: url must be 1-%d bytes", path, key,
                               GP_UPSTREAM_URL_MAX);
            goto out;
        }
    }
    cfg->cache_dir = jstr(root, "cache_dir");
    cfg->revoked_file = jstr(root, "revoked_file");
    cfg->audit_path = jstr(root, "audit_log");
    v = json_object_get(root, "leak_guard");
    cfg->leak_guard = v ? json_is_true(v) : 1;
    v = json_object_get(root, "check_fast_forward");
    cfg->check_ff = v ? json_is_true(v) : 1;
    v = json_object_get(root, "max_push_bytes");
    cfg->max_push = json_is_integer(v) ? (uint64_t)json_integer_value(v) : (4ull << 30);
    if (!cfg->cache_dir) {
        err = al_error_set(AL_EINVAL, "%s: cache_dir is required", path);
        goto out;
    }
    *listeners = json_incref(json_object_get(root, "listeners"));
out:
    json_decref(root);
    return err;
}

/* "ADDR:PORT" → a listening TCP socket. */
static int listen_on(const char *spec)
{
    char host[64];
    const char *colon = strrchr(spec, ':');
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (!colon || (size_t)(colon - spec) >= sizeof(host))
        return al_error_set(AL_EINVAL, "bad listen address '%s'", spec);
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return al_error_set(AL_EINVAL, "bad listen address '%s'", spec);
    sa.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        return al_error_set_errno(AL_EIO, e, "listen on %s", spec);
    }
    return fd;
}

static int add_listener(gp_proxy *p, const char *spec, int is_fd)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", spec);
    char *eq = strchr(buf, '=');
    if (!eq || !eq[1])
        return al_error_set(AL_EINVAL, "'%s': expected ...=SESSION", spec);
    *eq = '\0';
    int fd;
    if (is_fd) {
        char *end;
        long v = strtol(buf, &end, 10);
        int type = 0;
        socklen_t tl = sizeof(type);
        if (*end || v < 0 || v > 65535 || getsockopt((int)v, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
            type != SOCK_STREAM)
            return al_error_set(AL_EINVAL, "'%s' is not a stream socket", buf);
        fd = (int)v;
    } else if ((fd = listen_on(buf)) < 0) {
        return fd;
    }
    al_log(AL_LOG_INFO, "listening on %s%s for session %s", is_fd ? "fd " : "", buf, eq + 1);
    return gp_proxy_listen_fd(p, fd, eq + 1);
}

/* Creates the cache dir (0700) and the parents it lacks (0755 whatever the
 * umask, so that the proxy user can search them). Existing directories are
 * kept as they are: whether the proxy user can reach them is
 * cache_dir_check()'s. */
static int cache_dir_create(const char *dir)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s", dir);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return al_error_set(AL_EINVAL, "cache_dir %s: path too long", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) == 0 ? chmod(tmp, 0755) < 0 : errno != EEXIST)
            return al_error_set_errno(AL_EIO, errno, "cache_dir %s: mkdir %s", dir, tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return al_error_set_errno(AL_EIO, errno, "cache_dir %s: mkdir", dir);
    return 0;
}

static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)flag;
    (void)ftw;
    if (st->st_uid == chown_uid && st->st_gid == chown_gid)
        return 0;
    /* A second name of a file is not the cache's to give away (a hard
     * link made to a file elsewhere). */
    if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
        al_log(AL_LOG_WARN, "cache_dir: %s has other links; not handed over", path);
        return 0;
    }
    if (lchown(path, chown_uid, chown_gid) < 0)
        return al_error_set_errno(AL_EIO, errno, "cache_dir: chown %s", path);
    return 0;
}

/* Hands the cache dir (mirrors, spool files) and everything in it to
 * uid:gid, the user the proxy is about to run as: libgit2 opens only
 * mirrors owned by that user (owner validation, inspect.c). As root only. */
static int cache_dir_hand_over(const char *cache_dir, uid_t uid, gid_t gid)
{
    chown_uid = uid;
    chown_gid = gid;
    al_error_clear();
    if (nftw(cache_dir, chown_one, 16, FTW_PHYS) != 0)
        return al_error_last()[0] ? AL_EIO : al_error_set_errno(AL_EIO, errno, "%s", cache_dir);
    return 0;
}

/* Makes the cache dir (mirrors, pushed packs) and hands it to the user the
 * front will run as (`user`, or the current one): only the front uses it,
 * and it checks the dir as that user when it starts. */
static int cache_prepare(const char *cache_dir, const char *user, const char *group)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    int err = 0;
    if (user && (err = ctl_privs_lookup(&uid, &gid, user, group)) < 0)
        return err;
    if ((err = cache_dir_create(cache_dir)) < 0)
        return err;
    if (geteuid() == 0 && (err = cache_dir_hand_over(cache_dir, uid, gid)) < 0)
        return err;
    return 0;
}

/* Drops to `user` for good. Everything that needs root has been done by
 * now; nobody of that uid (the front) may read this process's memory. */
static int privs_drop(const char *user, const char *group)
{
    int err = ctl_privs_drop(user, group);
    if (err < 0)
        return err;
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    al_log(AL_LOG_INFO, "running as %s (uid %u)", user, (unsigned)getuid());
    return 0;
}

static gp_proxy *g_proxy; /* lives until exit */

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        puts("airlock-gitproxy " AL_VERSION_LINE);
        return 0;
    }
    /* The front: exec'd by the key holder (below), nothing else in it. */
    if (argc == 3 && strcmp(argv[1], "--front") == 0) {
        char *end;
        long fd = strtol(argv[2], &end, 10);
        if (*end || fd < 3 || fd > 65535)
            return 2;
        return gp_front_main((int)fd);
    }
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"listen-fd", required_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},
        {"control", required_argument, NULL, 'C'},
        {"control-path", required_argument, NULL, 'P'},
        {"user", required_argument, NULL, 'u'},
        {"group", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char usage[] = "usage: airlock-gitproxy --config FILE [--listen ADDR:PORT=SESSION]"
                                " [--listen-fd FD=SESSION] [--control FD | --control-path PATH]"
                                " [--user NAME [--group NAME]] [-v]\n"
                                "       airlock-gitproxy --version\n";
    const char *config = NULL, *control = NULL, *control_path = NULL, *user = NULL, *group = NULL;
    int ctl = -1;
    char cache_dir[4096];
    struct al_strlist listen = AL_STRLIST_INIT, listen_fd = AL_STRLIST_INIT;
    struct gp_config cfg = {0};
    json_t *listeners = NULL;
    gp_proxy *p = NULL;
    int c, level = AL_LOG_INFO, err;
    while ((c = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'l':
            al_strlist_push(&listen, optarg);
            break;
        case 'f':
            al_strlist_push(&listen_fd, optarg);
            break;
        case 'v':
            level = AL_LOG_DEBUG;
            break;
        case 'C':
            control = optarg;
            break;
        case 'P':
            control_path = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'g':
            group = optarg;
            break;
        default:
            fputs(usage, c == 'h' ? stdout : stderr);
            al_strlist_free(&listen);
            al_strlist_free(&listen_fd);
            return c == 'h' ? 0 : 2;
        }
    }
    al_log_init("airlock-gitproxy", (enum al_log_level)level);
    signal(SIGPIPE, SIG_IGN);
    if (!config || (control && control_path) || (group && !user)) {
        al_log(AL_LOG_ERROR, "--config is required; --control and --control-path exclude each"
                             " other; --group needs --user");
        return 2;
    }
    if ((control || control_path) && (ctl = ctl_socket_open(control, control_path)) < 0) {
        al_log(AL_LOG_ERROR, "%s", al_error_last());
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        al_log(AL_LOG_ERROR, "curl init failed");
        return 1;
    }
    if ((err = config_load(&cfg, &listeners, config, ctl >= 0)) < 0)
        goto fail;
    snprintf(cache_dir, sizeof(cache_dir), "%s", cfg.cache_dir);
    if ((err = gp_proxy_new(&p, &cfg)) < 0)
        goto fail;
    g_proxy = p;
    size_t i;
    json_t *v;
    json_array_foreach(listeners, i, v)
    {
        const char *session = json_string_value(json_object_get(v, "session"));
        const char *addr = json_string_value(json_object_get(v, "address"));
        json_t *fd = json_object_get(v, "fd");
        char spec[256];
        if (!session || (!addr && !json_is_integer(fd))) {
            err = al_error_set(AL_EINVAL, "listener %zu needs session and address or fd", i);
            goto fail;
        }
        if (addr)
            snprintf(spec, sizeof(spec), "%s=%s", addr, session);
        else
            snprintf(spec, sizeof(spec), "%lld=%s", (long long)json_integer_value(fd), session);
        if ((err = add_listener(p, spec, addr == NULL)) < 0)
            goto fail;
    }
    for (i = 0; i < listen.len; i++)
        if ((err = add_listener(p, listen.items[i], 0)) < 0)
            goto fail;
    for (i = 0; i < listen_fd.len; i++)
        if ((err = add_listener(p, listen_fd.items[i], 1)) < 0)
            goto fail;
    /* the watches need to see into the (root-only) state dir: before the drop */
    if ((err = gp_proxy_store_watch(p)) < 0 || (err = gp_proxy_revoked_file_watch(p)) < 0)
        goto fail;
    /* The front runs as the proxy user (as root without --user: nobody); it
     * is exec'd while this process is still root, and drops at once. */
    const char *front_user = user ? user : geteuid() == 0 ? "nobody" : NULL;
    const char *front_group = user ? group : NULL;
    if ((err = cache_prepare(cache_dir, front_user, front_group)) < 0 ||
        (err = gp_front_start(p, "/proc/self/exe", front_user, front_group)) < 0)
        goto fail;
    if (user && (err = privs_drop(user, group)) < 0)
        goto fail;
    al_log(AL_LOG_INFO, "ready");
    if (ctl >= 0) {
        err = gp_control_run(p, ctl);
        if (err == AL_EIO) {
            al_log(AL_LOG_INFO, "control socket closed (%s); exiting", al_error_last());
            return 0;
        }
        goto fail;
    }
    for (;;)
        pause();
fail:
    al_log(AL_LOG_ERROR, "%s", al_error_last()[0] ? al_error_last() : al_error_name(err));
    gp_config_clear(&cfg);
    json_decref(listeners);
    return 1;
}
