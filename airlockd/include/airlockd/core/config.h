/* airlockd's configuration: one JSON file, every key optional, documented
 * with its default in docs/airlockd.md. Unknown keys and wrong types are
 * errors that name the key. */
#ifndef ALD_CONFIG_H
#define ALD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "airlockd/core/forgecfg.h"
#include "airlockd/core/gitpolicy.h"
#include "airlockd/core/grants.h"

#define ALD_CONFIG_MAX_BYTES (1024 * 1024)
#define ALD_MAX_HIDDEN       14

struct ald_limits {
    uint64_t memory_mb;
    uint64_t pids;
    double cpu;
    uint64_t ttl_s;
    uint64_t idle_s;
};

struct ald_config {
    char *listen;    /* "HOST:PORT" (IPv6 as "[::1]:7070"); port 0 = any */
    char *state_dir; /* absolute */
    uid_t uid_start; /* host uids given to sessions: [start, start+count) */
    uint32_t uid_count;
    /* uid_range.start was set; else the range is chosen at start (uidrange.h) */
    int uid_range_explicit;
    char *rootfs; /* NULL: host system dirs */
    /* host paths hidden in every sandbox (besides the state dir, always
     * hidden): at most ALD_MAX_HIDDEN, absolute */
    char *hidden_paths[ALD_MAX_HIDDEN];
    size_t n_hidden_paths;
    char *init_path;  /* NULL: found beside airlockd */
    char *log_level;  /* "error", "warn", "info", "debug" */
    char *log_format; /* "text", "json"; NULL: AIRLOCK_LOG_FORMAT, else text */
    struct ald_limits limits_default, limits_max;
    uint64_t quota_max_sessions;  /* per user, unless the user row says */
    uint64_t quota_max_memory_mb; /* per user, sum of memory_mb */
    uint64_t max_body_bytes;
    uint64_t max_upload_bytes;
    uint64_t max_output_bytes; /* kept per background stream */
    uint64_t approval_timeout_s;
    uint64_t workspace_retention_s;
    uint64_t max_connections;
    uint64_t drain_timeout_s;
    uint64_t event_retention; /* events kept for Last-Event-ID replay */
    /* "proxies" */
    int px_enabled;           /* default 1 */
    char *netproxy_path;      /* NULL: found beside airlockd */
    char *gitproxy_path;      /* NULL: found beside airlockd */
    char *gitproxy_config;    /* NULL: no gitproxy */
    int px_no_net, px_no_git; /* "netproxy": false / "gitproxy": false */
    char *proxy_user;         /* default "nobody" */
    char *proxy_group;        /* NULL: the user's primary group */
    char **px_hosts;          /* netproxy --hosts NAME=IP[,IP], NULL-terminated; may be NULL */
    uint64_t px_approval_timeout_s; /* netproxy --approval-timeout */
    struct ald_gitpolicy git;       /* "git": the sessions' branches (gitpolicy.h) */
    struct ald_grants grants;       /* "grants": what each user may widen (grants.h) */
    char *px_home_dir;              /* the proxies' homes' parent; NULL: "<state_dir>-proxy-home" */
    /* "proxies.token_keys": the scoped-token keys (the first signs; all are
     * sent to the gitproxy); none given: one, "k1" in <state_dir>/token.key */
    struct ald_token_key {
        char kid[32];
        char *file;
    } px_token_keys[4];
    size_t n_px_token_keys;
    char *px_credential_store; /* sent to the gitproxy on request; NULL: <state_dir>/creds.store */
    char *px_master_key;       /* the store's key, read for HTTP secrets (sessions'
                                  "credentials"); NULL: <state_dir>/master.key */
    /* "jobs" (docs/jobs.md): how many run at once, machine-wide and per
     * user (the rest wait queued), what each keeps and may take */
    struct ald_jobs_config {
        uint64_t max_running;          /* machine-wide, default 4 */
        uint64_t max_running_per_user; /* default 2 */
        uint64_t max_output_bytes;     /* kept per job (the last bytes), default 1 MiB */
        uint64_t default_timeout_s;    /* a job without timeout_s, default 3600 */
        uint64_t max_timeout_s;        /* default 86400 */
        uint64_t max_queued_per_user;  /* jobs of one user waiting queued, default 100 */
    } jobs;
    /* "webhooks" (docs/webhooks.md) */
    struct ald_webhook_config {
        int allow_private;          /* deliver to loopback/private/... addresses (false) */
        uint64_t timeout_s;         /* one attempt, connect to end (10) */
        uint64_t retry_initial_ms;  /* first retry delay (1000) */
        uint64_t retry_max_delay_s; /* the delays' ceiling (600) */
        uint64_t retry_for_s;       /* given up this long after it was queued (86400) */
    } webhooks;
    struct ald_forgecfg forge; /* "forge" and "hooks" (forgecfg.h, docs/forge.md) */
    /* "store" (docs/airlockd.md "Store"): where the state is kept */
    struct ald_store_config {
        int postgres;                  /* "driver": 0 "sqlite" (default), 1 "postgres" */
        char *conninfo_file;           /* postgres: the file holding the libpq conninfo */
        uint64_t pool_size;            /* postgres: connections (4) */
        uint64_t statement_timeout_ms; /* postgres: per statement (5000) */
        uint64_t connect_timeout_ms;   /* postgres: connecting, or a free connection (3000) */
    } store;
    /* "cluster" (docs/cluster.md): present = this daemon is one node of a
     * cluster sharing the PostgreSQL store; absent = a single machine */
    struct ald_cluster_config {
        int enabled;                 /* the section is present */
        char *node_id;               /* default: gethostname(); [A-Za-z0-9._-], at most 63 bytes */
        char *listen;                /* the node-to-node listener, "HOST:PORT" (signed requests) */
        char *advertise;             /* what other nodes dial; default: listen (no wildcard) */
        char *key_file;              /* the cluster key (32+ bytes, the same on every node) */
        uint64_t heartbeat_ms;       /* 2000 */
        uint64_t down_after_ms;      /* 15000; at least 3 heartbeats */
        uint64_t cap_sessions;       /* capacity: live sessions (500) */
        uint64_t cap_memory_mb;      /* capacity: sum of memory_mb; 0: MemTotal - 1 GiB */
        uint64_t cap_cpus;           /* capacity: CPUs; 0: the online CPUs */
        uint64_t forward_timeout_ms; /* connect + reply head of a forwarded request (10000) */
    } cluster;
};

/* Fills `cfg` with the defaults (no file needed). */
int ald_config_init(struct ald_config *cfg);

/* Frees what `cfg` owns. */
void ald_config_free(struct ald_config *cfg);

/* Applies a JSON document (`len` bytes, at most ALD_CONFIG_MAX_BYTES) on top
 * of `cfg`. AL_EINVAL with "NAME: KEY: reason" in al_error_last() on bad
 * JSON, unknown keys, wrong types, out-of-range values, default limits above
 * the maximum. `cfg` may be partly changed on error. */
int ald_config_load_buffer(struct ald_config *cfg, const char *name, const char *data, size_t len);

/* Reads the file at `path` and applies it (as above). */
int ald_config_load_file(struct ald_config *cfg, const char *path);

/* Splits cfg->listen into host and port. 0 or AL_EINVAL. */
int ald_config_listen_split(const char *listen, char *host, size_t hostsz, uint16_t *port);

#endif
