#include "airlockd/core/config.h"

#include "airlockd/core/util.h"

#include "airlock/buf.h"
#include "airlock/error.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ald_config_init(struct ald_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = strdup("127.0.0.1:7070");
    cfg->state_dir = strdup("/var/lib/airlock");
    cfg->log_level = strdup("info");
    cfg->proxy_user = strdup("nobody");
    if (!cfg->listen || !cfg->state_dir || !cfg->log_level || !cfg->proxy_user) {
        ald_config_free(cfg);
        return AL_ENOMEM;
    }
    cfg->uid_start = 200000;
    cfg->uid_count = 60000;
    cfg->limits_default = (struct ald_limits){512, 256, 1.0, 3600, 900};
    cfg->limits_max = (struct ald_limits){8192, 4096, 4.0, 7 * 86400, 86400};
    cfg->quota_max_sessions = 20;
    cfg->quota_max_memory_mb = 16384;
    cfg->max_body_bytes = 1024 * 1024;
    cfg->max_upload_bytes = 64 * 1024 * 1024;
    cfg->max_output_bytes = 16 * 1024 * 1024;
    cfg->approval_timeout_s = 300;
    cfg->workspace_retention_s = 0;
    cfg->max_connections = 1024;
    cfg->drain_timeout_s = 30;
    cfg->event_retention = 1024;
    cfg->px_enabled = 1;
    cfg->px_approval_timeout_s = 60;
    cfg->jobs = (struct ald_jobs_config){4, 2, 1024 * 1024, 3600, 86400, 100};
    cfg->webhooks = (struct ald_webhook_config){0, 10, 1000, 600, 86400};
    cfg->store = (struct ald_store_config){0, NULL, 4, 5000, 3000};
    cfg->cluster = (struct ald_cluster_config){.heartbeat_ms = 2000,
                                               .down_after_ms = 15000,
                                               .cap_sessions = 500,
                                               .forward_timeout_ms = 10000};
    if (ald_gitpolicy_init(&cfg->git) < 0 || ald_forgecfg_init(&cfg->forge) < 0) {
        ald_config_free(cfg);
        return AL_ENOMEM;
    }
    /* A server's private places: other users' homes, logs, databases,
     * scratch files. The sandbox sees the rest of the host read-only. */
    static const char *const hidden[] = {"/home",      "/root",        "/mnt",     "/media",
                                         "/srv",       "/var/lib",     "/var/log", "/var/mail",
                                         "/var/spool", "/var/backups", "/var/tmp"};
    for (size_t i = 0; i < sizeof(hidden) / sizeof(*hidden); i++)
        if (!(cfg->hidden_paths[cfg->n_hidden_paths++] = strdup(hidden[i])))
            return AL_ENOMEM;
    return 0;
}

static void hosts_free(char **hosts)
{
    for (size_t i = 0; hosts && hosts[i]; i++)
        free(hosts[i]);
    free(hosts);
}

static void hidden_paths_clear(struct ald_config *cfg)
{
    for (size_t i = 0; i < cfg->n_hidden_paths; i++)
        free(cfg->hidden_paths[i]);
    cfg->n_hidden_paths = 0;
}

void ald_config_free(struct ald_config *cfg)
{
    free(cfg->listen);
    free(cfg->state_dir);
    free(cfg->rootfs);
    free(cfg->init_path);
    free(cfg->log_level);
    free(cfg->log_format);
    free(cfg->netproxy_path);
    free(cfg->gitproxy_path);
    free(cfg->gitproxy_config);
    free(cfg->proxy_user);
    free(cfg->proxy_group);
    free(cfg->px_home_dir);
    for (size_t i = 0; i < cfg->n_px_token_keys; i++)
        free(cfg->px_token_keys[i].file);
    free(cfg->px_credential_store);
    free(cfg->px_master_key);
    free(cfg->store.conninfo_file);
    free(cfg->cluster.node_id);
    free(cfg->cluster.listen);
    free(cfg->cluster.advertise);
    free(cfg->cluster.key_file);
    hosts_free(cfg->px_hosts);
    hidden_paths_clear(cfg);
    ald_gitpolicy_free(&cfg->git);
    ald_grants_free(&cfg->grants);
    ald_forgecfg_free(&cfg->forge);
    memset(cfg, 0, sizeof(*cfg));
}

struct cfg_ctx {
    const char *name;
    struct ald_config *cfg;
};

static int fail(const struct cfg_ctx *c, const char *key, const char *what)
{
    return al_error_set(AL_EINVAL, "%s: %s: %s", c->name, key, what);
}

static int get_u64(const struct cfg_ctx *c, const char *key, json_t *v, uint64_t min, uint64_t max,
                   uint64_t *out)
{
    char why[96];
    switch (ald_json_u64(v, min, max, out, why, sizeof(why))) {
    case ALD_U64_NOT_INTEGER:
        return fail(c, key, "expected an integer");
    case ALD_U64_OUT_OF_RANGE:
        return fail(c, key, why);
    case ALD_U64_OK:
        break;
    }
    return 0;
}

static int get_str(const struct cfg_ctx *c, const char *key, json_t *v, int nullable, char **out)
{
    if (nullable && json_is_null(v)) {
        free(*out);
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return fail(c, key, nullable ? "expected a string or null" : "expected a string");
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || strlen(s) == 0 || strlen(s) > 4000)
        return fail(c, key, "must be a non-empty string without NUL (at most 4000 bytes)");
    char *dup = strdup(s);
    if (!dup)
        return AL_ENOMEM;
    free(*out);
    *out = dup;
    return 0;
}

static int get_abs_path(const struct cfg_ctx *c, const char *key, json_t *v, int nullable,
                        char **out)
{
    int err = get_str(c, key, v, nullable, out);
    if (err == 0 && *out && (*out)[0] != '/')
        err = fail(c, key, "must be an absolute path");
    return err;
}

static int load_limits(const struct cfg_ctx *c, const char *kp, json_t *obj, struct ald_limits *l)
{
    if (!json_is_object(obj))
        return fail(c, kp, "expected an object");
    const char *k;
    json_t *v;
    char key[64];
    json_object_foreach(obj, k, v)
    {
        snprintf(key, sizeof(key), "%s.%.32s", kp, k);
        int err;
        if (strcmp(k, "memory_mb") == 0)
            err = get_u64(c, key, v, 16, 1024 * 1024, &l->memory_mb);
        else if (strcmp(k, "pids") == 0)
            err = get_u64(c, key, v, 8, 1 << 22, &l->pids);
        else if (strcmp(k, "ttl_s") == 0)
            err = get_u64(c, key, v, 1, 365ULL * 86400, &l->ttl_s);
        else if (strcmp(k, "idle_s") == 0)
            err = get_u64(c, key, v, 1, 365ULL * 86400, &l->idle_s);
        else if (strcmp(k, "cpu") == 0) {
            if (!json_is_number(v))
                return fail(c, key, "expected a number");
            double d = json_number_value(v);
            if (!isfinite(d) || d < 0.01 || d > 1024)
                return fail(c, key, "must be between 0.01 and 1024");
            l->cpu = d;
            err = 0;
        } else
            err = fail(c, key, "unknown key");
        if (err < 0)
            return err;
    }
    return 0;
}

static int load_section(const struct cfg_ctx *c, const char *kp, json_t *obj,
                        const char *const *names)
{
    if (!json_is_object(obj))
        return fail(c, kp, "expected an object");
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        int known = 0;
        for (size_t i = 0; names[i]; i++)
            known |= strcmp(k, names[i]) == 0;
        if (!known) {
            char key[80];
            snprintf(key, sizeof(key), "%s.%.40s", kp, k);
            return fail(c, key, "unknown key");
        }
    }
    return 0;
}

/* "proxies.hosts": ["NAME=IP[,IP]", ...] (at most 256, passed to the
 * netproxy's --hosts, which checks the values). */
static int load_hosts(const struct cfg_ctx *c, json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) > 256)
        return fail(c, "proxies.hosts", "expected an array of at most 256 \"NAME=IP\" strings");
    char **hosts = calloc(json_array_size(v) + 1, sizeof(char *));
    if (!hosts)
        return AL_ENOMEM;
    int err = 0;
    size_t i;
    json_t *h;
    json_array_foreach(v, i, h)
    {
        const char *str = json_string_value(h);
        if (!str || strlen(str) != json_string_length(h) || !strchr(str, '=') ||
            strlen(str) > 1024 || str[0] == '-') {
            err = fail(c, "proxies.hosts", "expected \"NAME=IP[,IP]\" strings");
            break;
        }
        if (!(hosts[i] = strdup(str))) {
            err = AL_ENOMEM;
            break;
        }
    }
    if (err < 0) {
        hosts_free(hosts);
        return err;
    }
    hosts_free(c->cfg->px_hosts);
    c->cfg->px_hosts = hosts;
    return 0;
}

/* "proxies.token_keys": [{"kid": "k2", "file": "/abs/k2.key"}, ...], 1 to 4
 * keys, the first one signing. The files are read at start. */
static int load_token_keys(const struct cfg_ctx *c, json_t *v)
{
    struct ald_config *cfg = c->cfg;
    size_t max = sizeof(cfg->px_token_keys) / sizeof(cfg->px_token_keys[0]);
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > max)
        return fail(c, "proxies.token_keys", "expected an array of 1 to 4 {\"kid\", \"file\"}");
    for (size_t i = 0; i < cfg->n_px_token_keys; i++)
        free(cfg->px_token_keys[i].file);
    cfg->n_px_token_keys = 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        char key[48];
        snprintf(key, sizeof(key), "proxies.token_keys[%zu]", i);
        static const char *const names[] = {"kid", "file", NULL};
        int err = load_section(c, key, e, names);
        if (err < 0)
            return err;
        const char *kid = json_string_value(json_object_get(e, "kid"));
        struct ald_token_key *k = &cfg->px_token_keys[i];
        if (!kid || !kid[0] || strlen(kid) >= sizeof(k->kid) ||
            strspn(kid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                strlen(kid))
            return fail(c, key, "\"kid\" must be 1-31 of [A-Za-z0-9_-]");
        for (size_t k2 = 0; k2 < i; k2++)
            if (strcmp(cfg->px_token_keys[k2].kid, kid) == 0)
                return fail(c, key, "the same kid twice");
        snprintf(k->kid, sizeof(k->kid), "%s", kid);
        k->file = NULL;
        if ((err = get_abs_path(c, key, json_object_get(e, "file"), 0, &k->file)) < 0) {
            free(k->file); /* a relative path is kept by get_abs_path */
            k->file = NULL;
            return err;
        }
        cfg->n_px_token_keys++;
    }
    return 0;
}

static int load_proxies(const struct cfg_ctx *c, json_t *v)
{
    static const char *const names[] = {"enabled",
                                        "netproxy",
                                        "gitproxy",
                                        "gitproxy_config",
                                        "user",
                                        "group",
                                        "hosts",
                                        "approval_timeout_s",
                                        "home_dir",
                                        "token_keys",
                                        "credential_store",
                                        "master_key",
                                        NULL};
    struct ald_config *cfg = c->cfg;
    int err = load_section(c, "proxies", v, names);
    json_t *x;
    if (err == 0 && (x = json_object_get(v, "enabled"))) {
        if (!json_is_boolean(x))
            err = fail(c, "proxies.enabled", "expected true or false");
        cfg->px_enabled = json_is_true(x);
    }
    /* false: not run; null: found beside airlockd; else its path */
    if (err == 0 && (x = json_object_get(v, "netproxy"))) {
        cfg->px_no_net = json_is_false(x);
        if (!cfg->px_no_net)
            err = get_abs_path(c, "proxies.netproxy", x, 1, &cfg->netproxy_path);
    }
    if (err == 0 && (x = json_object_get(v, "gitproxy"))) {
        cfg->px_no_git = json_is_false(x);
        if (!cfg->px_no_git)
            err = get_abs_path(c, "proxies.gitproxy", x, 1, &cfg->gitproxy_path);
    }
    if (err == 0 && (x = json_object_get(v, "gitproxy_config")))
        err = get_abs_path(c, "proxies.gitproxy_config", x, 1, &cfg->gitproxy_config);
    if (err == 0 && (x = json_object_get(v, "user"))) {
        err = get_str(c, "proxies.user", x, 0, &cfg->proxy_user);
        if (err == 0 && (strcmp(cfg->proxy_user, "root") == 0 || cfg->proxy_user[0] == '-'))
            err = fail(c, "proxies.user", "must be an unprivileged user");
    }
    if (err == 0 && (x = json_object_get(v, "group")))
        err = get_str(c, "proxies.group", x, 1, &cfg->proxy_group);
    if (err == 0 && (x = json_object_get(v, "hosts")))
        err = load_hosts(c, x);
    if (err == 0 && (x = json_object_get(v, "approval_timeout_s")))
        err = get_u64(c, "proxies.approval_timeout_s", x, 1, 3600, &cfg->px_approval_timeout_s);
    if (err == 0 && (x = json_object_get(v, "home_dir")))
        err = get_abs_path(c, "proxies.home_dir", x, 1, &cfg->px_home_dir);
    if (err == 0 && (x = json_object_get(v, "token_keys")))
        err = load_token_keys(c, x);
    if (err == 0 && (x = json_object_get(v, "credential_store")))
        err = get_abs_path(c, "proxies.credential_store", x, 1, &cfg->px_credential_store);
    if (err == 0 && (x = json_object_get(v, "master_key")))
        err = get_abs_path(c, "proxies.master_key", x, 1, &cfg->px_master_key);
    return err;
}

/* "jobs": {"max_running", "max_running_per_user", "max_queued_per_user",
 * "max_output_bytes", "default_timeout_s", "max_timeout_s"} (docs/jobs.md). */
static int load_jobs(const struct cfg_ctx *c, json_t *v)
{
    static const char *const names[] = {"max_running",
                                        "max_running_per_user",
                                        "max_queued_per_user",
                                        "max_output_bytes",
                                        "default_timeout_s",
                                        "max_timeout_s",
                                        NULL};
    struct ald_jobs_config *j = &c->cfg->jobs;
    int err = load_section(c, "jobs", v, names);
    json_t *x;
    if (err == 0 && (x = json_object_get(v, "max_running")))
        err = get_u64(c, "jobs.max_running", x, 1, 100000, &j->max_running);
    if (err == 0 && (x = json_object_get(v, "max_running_per_user")))
        err = get_u64(c, "jobs.max_running_per_user", x, 1, 100000, &j->max_running_per_user);
    if (err == 0 && (x = json_object_get(v, "max_queued_per_user")))
        err = get_u64(c, "jobs.max_queued_per_user", x, 1, 100000, &j->max_queued_per_user);
    if (err == 0 && (x = json_object_get(v, "max_output_bytes")))
        err = get_u64(c, "jobs.max_output_bytes", x, 1024, 1ULL << 32, &j->max_output_bytes);
    if (err == 0 && (x = json_object_get(v, "default_timeout_s")))
        err = get_u64(c, "jobs.default_timeout_s", x, 1, 30ULL * 86400, &j->default_timeout_s);
    if (err == 0 && (x = json_object_get(v, "max_timeout_s")))
        err = get_u64(c, "jobs.max_timeout_s", x, 1, 30ULL * 86400, &j->max_timeout_s);
    if (err == 0 && j->default_timeout_s > j->max_timeout_s)
        err = fail(c, "jobs.default_timeout_s", "above jobs.max_timeout_s");
    return err;
}

/* "store": {"driver": "sqlite"|"postgres", "conninfo_file", "pool_size",
 * "statement_timeout_ms", "connect_timeout_ms"} (docs/airlockd.md). */
static int load_store(const struct cfg_ctx *c, json_t *v)
{
    static const char *const names[] = {
        "driver", "conninfo_file", "pool_size", "statement_timeout_ms", "connect_timeout_ms", NULL};
    struct ald_store_config *s = &c->cfg->store;
    int err = load_section(c, "store", v, names);
    json_t *x;
    if (err == 0 && (x = json_object_get(v, "driver"))) {
        const char *d = json_string_value(x);
        if (d && strcmp(d, "sqlite") == 0)
            s->postgres = 0;
        else if (d && strcmp(d, "postgres") == 0)
            s->postgres = 1;
        else
            err = fail(c, "store.driver", "expected \"sqlite\" or \"postgres\"");
    }
    if (err == 0 && (x = json_object_get(v, "conninfo_file")))
        err = get_abs_path(c, "store.conninfo_file", x, 1, &s->conninfo_file);
    if (err == 0 && (x = json_object_get(v, "pool_size")))
        err = get_u64(c, "store.pool_size", x, 1, 256, &s->pool_size);
    if (err == 0 && (x = json_object_get(v, "statement_timeout_ms")))
        err = get_u64(c, "store.statement_timeout_ms", x, 100, 600000, &s->statement_timeout_ms);
    if (err == 0 && (x = json_object_get(v, "connect_timeout_ms")))
        err = get_u64(c, "store.connect_timeout_ms", x, 100, 600000, &s->connect_timeout_ms);
    if (err == 0 && s->postgres && !s->conninfo_file)
        err = fail(c, "store.conninfo_file", "required with \"driver\": \"postgres\"");
    return err;
}

/* A node id: 1..63 bytes of [A-Za-z0-9._-], not starting with '.' or '-'
 * (it appears in log lines, metrics labels and HTTP headers). */
static int node_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

/* A "HOST:PORT" key of the cluster section; `wild_ok`: 0.0.0.0 / [::] allowed. */
static int get_hostport(const struct cfg_ctx *c, const char *key, json_t *v, int wild_ok,
                        char **out)
{
    int err = get_str(c, key, v, 0, out);
    char host[256];
    uint16_t port;
    if (err == 0 && (ald_config_listen_split(*out, host, sizeof(host), &port) < 0 || port == 0))
        err = fail(c, key, "expected \"HOST:PORT\" with a port (\"[::1]:PORT\" for IPv6)");
    if (err == 0 && !wild_ok && (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0))
        err = fail(c, key, "must be an address other nodes can dial, not a wildcard");
    return err;
}

/* "cluster": {"node_id", "listen", "advertise", "key_file", "heartbeat_ms",
 * "down_after_ms", "capacity": {"sessions", "memory_mb", "cpus"},
 * "forward_timeout_ms"} (docs/cluster.md). Checks that need other sections
 * are in check_cluster(). */
static int load_cluster(const struct cfg_ctx *c, json_t *v)
{
    static const char *const names[] = {
        "node_id",       "listen",   "advertise",          "key_file", "heartbeat_ms",
        "down_after_ms", "capacity", "forward_timeout_ms", NULL};
    static const char *const cap_names[] = {"sessions", "memory_mb", "cpus", NULL};
    struct ald_cluster_config *k = &c->cfg->cluster;
    int err = load_section(c, "cluster", v, names);
    json_t *x;
    k->enabled = 1;
    if (err == 0 && (x = json_object_get(v, "node_id"))) {
        err = get_str(c, "cluster.node_id", x, 0, &k->node_id);
        if (err == 0 && !node_id_ok(k->node_id))
            err = fail(c, "cluster.node_id",
                       "1 to 63 of A-Z a-z 0-9 . _ -, not starting with . or -");
    }
    if (err == 0 && (x = json_object_get(v, "listen")))
        err = get_hostport(c, "cluster.listen", x, 1, &k->listen);
    if (err == 0 && (x = json_object_get(v, "advertise")))
        err = get_hostport(c, "cluster.advertise", x, 0, &k->advertise);
    if (err == 0 && (x = json_object_get(v, "key_file")))
        err = get_abs_path(c, "cluster.key_file", x, 0, &k->key_file);
    if (err == 0 && (x = json_object_get(v, "heartbeat_ms")))
        err = get_u64(c, "cluster.heartbeat_ms", x, 100, 60000, &k->heartbeat_ms);
    if (err == 0 && (x = json_object_get(v, "down_after_ms")))
        err = get_u64(c, "cluster.down_after_ms", x, 300, 3600000, &k->down_after_ms);
    if (err == 0 && (x = json_object_get(v, "forward_timeout_ms")))
        err = get_u64(c, "cluster.forward_timeout_ms", x, 100, 600000, &k->forward_timeout_ms);
    json_t *cap = json_object_get(v, "capacity");
    if (err == 0 && cap)
        err = load_section(c, "cluster.capacity", cap, cap_names);
    if (err == 0 && cap && (x = json_object_get(cap, "sessions")))
        err = get_u64(c, "cluster.capacity.sessions", x, 1, 1000000, &k->cap_sessions);
    if (err == 0 && cap && (x = json_object_get(cap, "memory_mb")))
        err = get_u64(c, "cluster.capacity.memory_mb", x, 0, 1ULL << 40, &k->cap_memory_mb);
    if (err == 0 && cap && (x = json_object_get(cap, "cpus")))
        err = get_u64(c, "cluster.capacity.cpus", x, 0, 100000, &k->cap_cpus);
    return err;
}

/* The cluster section's rules that involve other keys (run after all keys). */
static int check_cluster(const struct cfg_ctx *c)
{
    struct ald_cluster_config *k = &c->cfg->cluster;
    if (!k->enabled)
        return 0;
    if (!c->cfg->store.postgres)
        return fail(c, "cluster", "needs \"store\": {\"driver\": \"postgres\"}");
    if (!k->listen)
        return fail(c, "cluster.listen", "required (the node-to-node listener)");
    if (!k->key_file)
        return fail(c, "cluster.key_file", "required (the key shared by every node)");
    if (!k->advertise) {
        char host[256];
        uint16_t port;
        if (ald_config_listen_split(k->listen, host, sizeof(host), &port) == 0 &&
            (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0))
            return fail(c, "cluster.advertise", "required when cluster.listen is a wildcard");
    }
    if (k->down_after_ms < 3 * k->heartbeat_ms)
        return fail(c, "cluster.down_after_ms", "must be at least 3 x cluster.heartbeat_ms");
    if (!k->advertise && !(k->advertise = strdup(k->listen)))
        return AL_ENOMEM;
    if (!k->node_id) {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) < 0 || !node_id_ok(host))
            return fail(
                c, "cluster.node_id",
                "required: the host name is no valid node id (1 to 63 of A-Z a-z 0-9 . _ -)");
        if (!(k->node_id = strdup(host)))
            return AL_ENOMEM;
    }
    return 0;
}

/* "hidden_paths": replaces the default list. */
static int load_hidden_paths(const struct cfg_ctx *c, const char *k, json_t *v)
{
    if (!json_is_array(v))
        return fail(c, k, "expected an array of absolute paths");
    if (json_array_size(v) > ALD_MAX_HIDDEN)
        return fail(c, k, "at most 14 paths");
    hidden_paths_clear(c->cfg);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        char key[48];
        snprintf(key, sizeof(key), "%s[%zu]", k, i);
        char *path = NULL;
        int err = get_abs_path(c, key, e, 0, &path);
        if (err < 0)
            return err;
        c->cfg->hidden_paths[c->cfg->n_hidden_paths++] = path;
    }
    return 0;
}

/* "webhooks": {"allow_private", "timeout_s", "retry_initial_ms",
 * "retry_max_delay_s", "retry_for_s"} (docs/webhooks.md). */
static int load_webhooks(const struct cfg_ctx *c, json_t *v)
{
    static const char *const names[] = {"allow_private",     "timeout_s",   "retry_initial_ms",
                                        "retry_max_delay_s", "retry_for_s", NULL};
    struct ald_webhook_config *w = &c->cfg->webhooks;
    int err = load_section(c, "webhooks", v, names);
    json_t *x;
    if (err == 0 && (x = json_object_get(v, "allow_private"))) {
        if (!json_is_boolean(x))
            return fail(c, "webhooks.allow_private", "expected true or false");
        w->allow_private = json_is_true(x);
    }
    if (err == 0 && (x = json_object_get(v, "timeout_s")))
        err = get_u64(c, "webhooks.timeout_s", x, 1, 300, &w->timeout_s);
    if (err == 0 && (x = json_object_get(v, "retry_initial_ms")))
        err = get_u64(c, "webhooks.retry_initial_ms", x, 10, 3600 * 1000, &w->retry_initial_ms);
    if (err == 0 && (x = json_object_get(v, "retry_max_delay_s")))
        err = get_u64(c, "webhooks.retry_max_delay_s", x, 1, 86400, &w->retry_max_delay_s);
    if (err == 0 && (x = json_object_get(v, "retry_for_s")))
        err = get_u64(c, "webhooks.retry_for_s", x, 1, 30ULL * 86400, &w->retry_for_s);
    return err;
}

static int load_top(const struct cfg_ctx *c, const char *k, json_t *v)
{
    struct ald_config *cfg = c->cfg;
    if (strcmp(k, "listen") == 0) {
        int err = get_str(c, k, v, 0, &cfg->listen);
        char host[256];
        uint16_t port;
        if (err == 0 && ald_config_listen_split(cfg->listen, host, sizeof(host), &port) < 0)
            err = fail(c, k, "expected \"HOST:PORT\" (\"[::1]:PORT\" for IPv6)");
        return err;
    }
    if (strcmp(k, "state_dir") == 0)
        return get_abs_path(c, k, v, 0, &cfg->state_dir);
    if (strcmp(k, "rootfs") == 0)
        return get_abs_path(c, k, v, 1, &cfg->rootfs);
    if (strcmp(k, "init_path") == 0)
        return get_abs_path(c, k, v, 1, &cfg->init_path);
    if (strcmp(k, "hidden_paths") == 0)
        return load_hidden_paths(c, k, v);
    if (strcmp(k, "log_level") == 0) {
        int err = get_str(c, k, v, 0, &cfg->log_level);
        if (err == 0 && strcmp(cfg->log_level, "error") && strcmp(cfg->log_level, "warn") &&
            strcmp(cfg->log_level, "info") && strcmp(cfg->log_level, "debug"))
            err = fail(c, k, "expected \"error\", \"warn\", \"info\" or \"debug\"");
        return err;
    }
    if (strcmp(k, "log_format") == 0) {
        int err = get_str(c, k, v, 0, &cfg->log_format);
        if (err == 0 && strcmp(cfg->log_format, "text") && strcmp(cfg->log_format, "json"))
            err = fail(c, k, "expected \"text\" or \"json\"");
        return err;
    }
    if (strcmp(k, "proxies") == 0)
        return load_proxies(c, v);
    if (strcmp(k, "git") == 0)
        return ald_gitpolicy_load(&cfg->git, c->name, v);
    if (strcmp(k, "grants") == 0)
        return ald_grants_load(&cfg->grants, c->name, v);
    if (strcmp(k, "jobs") == 0)
        return load_jobs(c, v);
    if (strcmp(k, "webhooks") == 0)
        return load_webhooks(c, v);
    if (strcmp(k, "store") == 0)
        return load_store(c, v);
    if (strcmp(k, "cluster") == 0)
        return load_cluster(c, v);
    if (strcmp(k, "forge") == 0)
        return ald_forgecfg_load_forge(&cfg->forge, c->name, v);
    if (strcmp(k, "hooks") == 0)
        return ald_forgecfg_load_hooks(&cfg->forge, c->name, v);
    if (strcmp(k, "uid_range") == 0) {
        static const char *const names[] = {"start", "count", NULL};
        int err = load_section(c, k, v, names);
        uint64_t x;
        json_t *s = json_object_get(v, "start"), *n = json_object_get(v, "count");
        if (err == 0 && s && (err = get_u64(c, "uid_range.start", s, 1000, 0xfffe0000, &x)) == 0) {
            cfg->uid_start = (uid_t)x;
            cfg->uid_range_explicit = 1;
        }
        if (err == 0 && n && (err = get_u64(c, "uid_range.count", n, 1, 1 << 24, &x)) == 0)
            cfg->uid_count = (uint32_t)x;
        if (err == 0 && (uint64_t)cfg->uid_start + cfg->uid_count > 0xffff0000ULL)
            err = fail(c, "uid_range", "start + count passes the largest uid");
        return err;
    }
    if (strcmp(k, "limits") == 0) {
        static const char *const names[] = {"default", "max", NULL};
        int err = load_section(c, k, v, names);
        json_t *d = json_object_get(v, "default"), *m = json_object_get(v, "max");
        if (err == 0 && d)
            err = load_limits(c, "limits.default", d, &cfg->limits_default);
        if (err == 0 && m)
            err = load_limits(c, "limits.max", m, &cfg->limits_max);
        return err;
    }
    if (strcmp(k, "quotas") == 0) {
        static const char *const names[] = {"max_sessions", "max_memory_mb", NULL};
        int err = load_section(c, k, v, names);
        json_t *s = json_object_get(v, "max_sessions"), *m = json_object_get(v, "max_memory_mb");
        if (err == 0 && s)
            err = get_u64(c, "quotas.max_sessions", s, 0, 1000000, &cfg->quota_max_sessions);
        if (err == 0 && m)
            err = get_u64(c, "quotas.max_memory_mb", m, 0, 1ULL << 40, &cfg->quota_max_memory_mb);
        return err;
    }
    static const struct {
        const char *name;
        size_t off;
        uint64_t min, max;
    } nums[] = {
        {"max_body_bytes", offsetof(struct ald_config, max_body_bytes), 1024, 1ULL << 30},
        {"max_upload_bytes", offsetof(struct ald_config, max_upload_bytes), 1024, 1ULL << 40},
        {"max_output_bytes", offsetof(struct ald_config, max_output_bytes), 65536, 1ULL << 40},
        {"approval_timeout_s", offsetof(struct ald_config, approval_timeout_s), 1, 86400},
        {"workspace_retention_s", offsetof(struct ald_config, workspace_retention_s), 0,
         365ULL * 86400},
        {"max_connections", offsetof(struct ald_config, max_connections), 1, 65536},
        {"drain_timeout_s", offsetof(struct ald_config, drain_timeout_s), 0, 3600},
        {"event_retention", offsetof(struct ald_config, event_retention), 1, 1000000},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(*nums); i++)
        if (strcmp(k, nums[i].name) == 0)
            return get_u64(c, k, v, nums[i].min, nums[i].max,
                           (uint64_t *)((char *)cfg + nums[i].off));
    return fail(c, k, "unknown key");
}

static int check_limits(const struct cfg_ctx *c)
{
    const struct ald_limits *d = &c->cfg->limits_default, *m = &c->cfg->limits_max;
    if (d->memory_mb > m->memory_mb)
        return fail(c, "limits.default.memory_mb", "above limits.max.memory_mb");
    if (d->pids > m->pids)
        return fail(c, "limits.default.pids", "above limits.max.pids");
    if (d->cpu > m->cpu)
        return fail(c, "limits.default.cpu", "above limits.max.cpu");
    if (d->ttl_s > m->ttl_s)
        return fail(c, "limits.default.ttl_s", "above limits.max.ttl_s");
    if (d->idle_s > m->idle_s)
        return fail(c, "limits.default.idle_s", "above limits.max.idle_s");
    return 0;
}

int ald_config_load_buffer(struct ald_config *cfg, const char *name, const char *data, size_t len)
{
    struct cfg_ctx c = {name, cfg};
    if (len > ALD_CONFIG_MAX_BYTES)
        return al_error_set(AL_ETOOBIG, "%s: larger than %d bytes", name, ALD_CONFIG_MAX_BYTES);
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return al_error_set(AL_EINVAL, "%s: line %d: %s", name, jerr.line, jerr.text);
    int err = 0;
    if (!json_is_object(root)) {
        err = al_error_set(AL_EINVAL, "%s: expected a JSON object", name);
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if ((err = load_top(&c, k, v)) < 0)
            goto out;
    }
    err = check_limits(&c);
    if (err == 0)
        err = check_cluster(&c);
out:
    json_decref(root);
    return err;
}

int ald_config_load_file(struct ald_config *cfg, const char *path)
{
    struct al_buf buf;
    al_buf_init(&buf, ALD_CONFIG_MAX_BYTES);
    int err = al_buf_read_file(&buf, path);
    if (err == 0)
        err = ald_config_load_buffer(cfg, path, buf.ptr ? buf.ptr : "", buf.len);
    al_buf_free(&buf);
    return err;
}

int ald_config_listen_split(const char *listen, char *host, size_t hostsz, uint16_t *port)
{
    const char *colon;
    const char *h = listen;
    size_t hlen;
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (!end || end[1] != ':')
            return AL_EINVAL;
        h = listen + 1;
        hlen = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return AL_EINVAL;
        hlen = (size_t)(colon - listen);
    }
    if (hlen == 0 || hlen >= hostsz)
        return AL_EINVAL;
    const char *p = colon + 1;
    if (!*p || strlen(p) > 5)
        return AL_EINVAL;
    unsigned v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return AL_EINVAL;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > 65535)
        return AL_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)v;
    return 0;
}
