/* Cluster mode (cluster.h, docs/cluster.md): this node's row, its
 * heartbeat thread (heartbeats, the down sweep, self-fencing, the cached
 * node list) and placement. Every store access goes through
 * d->hooks.cluster (adapters/store_nodes.c). */
#include "airlockd/core/cluster.h"

#include "airlockd/core/config.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/evbus.h"
#include "airlockd/core/jobs.h"
#include "airlockd/core/requests.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NODES_EVERY 5 /* beats between two reads of the node list */

struct ald_cluster {
    struct ald *d;
    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t cond;
    int stop, kick, stale, started;
    pthread_t thread;
    int64_t epoch;
    int registered;                   /* 0 after a fence until the next register succeeds */
    atomic_int state;                 /* enum ald_node_state */
    struct ald_cluster_streak streak; /* the heartbeat thread's */
    int db_down;                      /* the last heartbeat failed (logged once) */
    unsigned beats;
    json_t *nodes; /* the last node list, or NULL */
    struct ald_node_caps caps;
    char version[64];
};

const char *ald_cluster_self(const struct ald *d)
{
    return d->cfg->cluster.enabled ? d->cfg->cluster.node_id : NULL;
}

enum ald_node_state ald_cluster_state(const struct ald *d)
{
    return d->cluster ? (enum ald_node_state)atomic_load(&d->cluster->state) : ALD_NODE_UP;
}

json_t *ald_cluster_nodes_cached(struct ald *d)
{
    struct ald_cluster *C = d->cluster;
    if (!C)
        return NULL;
    pthread_mutex_lock(&C->lock);
    json_t *out = json_incref(C->nodes);
    pthread_mutex_unlock(&C->lock);
    return out;
}

int ald_cluster_streak_beat(struct ald_cluster_streak *s, uint64_t now_ms, int ok,
                            uint64_t down_after_ms)
{
    if (!ok) {
        s->since = 0;
        return 0;
    }
    if (s->since == 0 || now_ms - s->last_ok > down_after_ms / 2)
        s->since = now_ms;
    s->last_ok = now_ms;
    return now_ms - s->since >= down_after_ms;
}

int ald_cluster_caps_default(const struct ald_cluster_config *k, const char *meminfo, size_t n,
                             long ncpus, struct ald_node_caps *out)
{
    out->sessions = (int64_t)k->cap_sessions;
    out->memory_mb = (int64_t)k->cap_memory_mb;
    if (out->memory_mb == 0) {
        const char *key = "MemTotal:";
        size_t kl = strlen(key);
        uint64_t kib = 0;
        int found = 0;
        for (size_t i = 0; i + kl <= n && !found; i++) {
            if ((i > 0 && meminfo[i - 1] != '\n') || memcmp(meminfo + i, key, kl) != 0)
                continue;
            size_t j = i + kl;
            while (j < n && meminfo[j] == ' ')
                j++;
            while (j < n && meminfo[j] >= '0' && meminfo[j] <= '9' && kib < (1ULL << 50)) {
                kib = kib * 10 + (uint64_t)(meminfo[j] - '0');
                found = 1;
                j++;
            }
        }
        if (!found)
            return al_error_set(AL_EINVAL, "no MemTotal in /proc/meminfo: set "
                                           "cluster.capacity.memory_mb");
        int64_t mb = (int64_t)(kib / 1024) - 1024;
        out->memory_mb = mb < 256 ? 256 : mb;
    }
    int64_t cpus = (int64_t)k->cap_cpus;
    if (cpus == 0)
        cpus = ncpus > 0 ? ncpus : 1;
    out->cpu_m = cpus * 1000;
    return 0;
}

/* Reads at most `size` bytes of file `path` into buf; *n the length. */
static int read_small(const char *path, unsigned char *buf, size_t size, size_t *n)
{
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "%s", path);
    int err = 0;
    for (;;) {
        ssize_t r = read(fd, buf + *n, size - *n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = al_error_set_errno(AL_EIO, errno, "%s", path);
            break;
        }
        if (r == 0)
            break;
        *n += (size_t)r;
        if (*n == size) {
            err = al_error_set(AL_ETOOBIG, "%s: larger than %zu bytes", path, size);
            break;
        }
    }
    close(fd);
    return err;
}

/* hex(HMAC-SHA256(key, msg)) into out[65]. */
static void hmac_hex(const unsigned char *key, size_t klen, const char *msg, char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), mac, &mlen);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    OPENSSL_cleanse(mac, sizeof(mac));
}

/* The check value of the key in `path` (cluster_meta `k`), compared with the
 * cluster's. `what` names the key in messages. */
static int key_check(struct ald *d, const char *path, const char *what, const char *k, int derive)
{
    unsigned char key[4096], kreq[EVP_MAX_MD_SIZE];
    size_t n = 0;
    char check[65];
    int err = read_small(path, key, sizeof(key), &n);
    if (err == 0 && n < 32)
        err = al_error_set(AL_EINVAL, "%s %s: %zu bytes; at least 32 are needed", what, path, n);
    if (err < 0) {
        err = al_error_set(err,
                           "cluster: the %s cannot be read (%s): every node needs the same "
                           "one",
                           what, al_error_last());
        goto out;
    }
    if (derive) {
        /* K_req (the key requests are signed with), never the raw key */
        unsigned int mlen = 0;
        HMAC(EVP_sha256(), key, (int)n, (const unsigned char *)"airlock node request v1",
             strlen("airlock node request v1"), kreq, &mlen);
        hmac_hex(kreq, 32, "check", check);
    } else {
        hmac_hex(key, n, "airlock master key check v1", check);
    }
    err = d->hooks.cluster.meta_check(d->st, k, check);
    if (err == AL_EINVAL)
        err = al_error_set(AL_EINVAL,
                           "cluster: the %s %s differs from the one the cluster uses (%s in "
                           "cluster_meta): every node needs the same %s",
                           what, path, k, what);
    else if (err < 0)
        err = al_error_set(err, "cluster: checking the %s: %s", what, al_error_last());
out:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(kreq, sizeof(kreq));
    return err;
}

static enum ald_node_state state_of(const char *s)
{
    return strcmp(s, "draining") == 0 ? ALD_NODE_DRAINING : ALD_NODE_UP;
}

/* Registers (again): a new epoch. */
static int node_register(struct ald_cluster *C)
{
    struct ald *d = C->d;
    const struct ald_cluster_config *k = &d->cfg->cluster;
    char state[16] = "";
    int64_t epoch = 0;
    int err =
        d->hooks.cluster.node_register(d->st, k->node_id, k->advertise ? k->advertise : k->listen,
                                       d->cfg->listen, C->version, &C->caps, &epoch, state);
    if (err < 0)
        return err;
    pthread_mutex_lock(&C->lock);
    C->epoch = epoch;
    C->registered = 1;
    pthread_mutex_unlock(&C->lock);
    atomic_store(&C->state, (int)state_of(state));
    al_log(AL_LOG_INFO,
           "cluster: node %s registered (epoch %lld, %s; capacity %lld sessions, %lld MiB, "
           "%lld mCPU)",
           k->node_id, (long long)epoch, state, (long long)C->caps.sessions,
           (long long)C->caps.memory_mb, (long long)C->caps.cpu_m);
    return 0;
}

/* Ends the local sessions whose rows are no longer live and this node's
 * (lost, or given to another node), without writing their rows. */
static void fence_sessions(struct ald_cluster *C)
{
    struct ald *d = C->d;
    const char *self = ald_cluster_self(d);
    /* what is local first, then the store: a session linked later was
     * placed (its row written) before it was linked */
    size_t n = 0, cap = 16;
    struct ald_session **local = malloc(cap * sizeof(*local));
    pthread_mutex_lock(&d->lock);
    for (struct ald_session *s = d->sessions; s && local; s = s->next) {
        if (ALD_STATE_ENDED(s->state))
            continue;
        if (n == cap) {
            struct ald_session **more = realloc(local, 2 * cap * sizeof(*local));
            if (!more)
                break;
            local = more;
            cap *= 2;
        }
        s->refs++;
        local[n++] = s;
    }
    pthread_mutex_unlock(&d->lock);
    json_t *live = NULL;
    if (!local || d->hooks.cluster.session_live_on(d->st, self, &live) < 0) {
        al_log(AL_LOG_WARN, "cluster: cannot check which sessions are still mine: %s",
               al_error_last());
        pthread_mutex_lock(&C->lock);
        C->stale = 1; /* again at the next beat */
        pthread_mutex_unlock(&C->lock);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct ald_session *s = local[i];
        int mine = 0;
        size_t j;
        json_t *row;
        json_array_foreach(live, j, row)
        {
            const char *id = json_string_value(json_object_get(json_array_get(row, 0), "id"));
            if (id && strcmp(id, s->id) == 0)
                mine = 1;
        }
        if (mine)
            continue;
        char reason[256] = "node-fenced: the cluster gave this session to no node";
        json_t *pub = NULL;
        if (d->hooks.store.session_get(d->st, s->id, NULL, &pub, NULL) == 0) {
            const char *r = json_string_value(json_object_get(pub, "end_reason"));
            if (r && r[0])
                snprintf(reason, sizeof(reason), "%s", r);
        }
        json_decref(pub);
        al_log(AL_LOG_WARN, "session %s: the cluster gave it up (%s); ending it here", s->id,
               reason);
        ald_session_end_ex(d, s, ALD_LOST, reason, ALD_END_NOSAVE);
    }
out:
    for (size_t i = 0; i < n; i++)
        ald_session_unref(d, local[i]);
    free(local);
    json_decref(live);
}

/* The store marked this node down (or removed it) while it ran. */
static void self_fence(struct ald_cluster *C)
{
    if (atomic_load(&C->state) != ALD_NODE_FENCED)
        al_log(AL_LOG_ERROR,
               "cluster: node %s was marked down by the cluster while it ran: "
               "fenced; its sessions there are ended, then it registers again",
               C->d->cfg->cluster.node_id);
    atomic_store(&C->state, (int)ALD_NODE_FENCED);
    pthread_mutex_lock(&C->lock);
    C->registered = 0;
    C->stale = 0;
    pthread_mutex_unlock(&C->lock);
    fence_sessions(C);
    if (node_register(C) < 0)
        al_log(AL_LOG_WARN, "cluster: registering again: %s", al_error_last());
}

/* Marks the nodes whose heartbeat is too old down and reports what became of
 * their sessions and jobs (this node alone sees those rows). */
static void sweep(struct ald_cluster *C)
{
    struct ald *d = C->d;
    json_t *lost = NULL;
    if (d->hooks.cluster.node_sweep(d->st, d->cfg->cluster.node_id,
                                    (int64_t)d->cfg->cluster.down_after_ms, &lost) < 0) {
        al_log(AL_LOG_WARN, "cluster: sweep: %s", al_error_last());
        json_decref(lost);
        return;
    }
    size_t i;
    json_t *node;
    json_array_foreach(lost, i, node)
    {
        const char *id = json_string_value(json_object_get(node, "node"));
        const char *why = json_string_value(json_object_get(node, "reason"));
        json_t *sessions = json_object_get(node, "sessions");
        /* the store's reason is already "node-down: ID: why" (the rows' end_reason) */
        char reason[256];
        snprintf(reason, sizeof(reason), "%s", why ? why : "node-down");
        al_log(AL_LOG_WARN, "cluster: node %s is down (%s): %zu sessions lost", id ? id : "?",
               why ? why : "", json_array_size(sessions));
        if (d->bus)
            evbus_publish(
                d->bus, NULL, NULL, "node",
                json_pack("{s:s?, s:s, s:s?}", "node", id, "state", "down", "reason", why));
        size_t j;
        json_t *s;
        json_array_foreach(sessions, j, s)
        {
            const char *sid = json_string_value(json_object_get(s, "id"));
            const char *user = json_string_value(json_object_get(s, "user"));
            const char *r =
                json_string_value(json_object_get(json_object_get(s, "pub"), "end_reason"));
            if (!sid || !user)
                continue;
            ald_event(d, sid, user, "state",
                      json_pack("{s:s, s:s}", "state", "lost", "reason", r && r[0] ? r : reason));
        }
        ald_jobs_fail_lost(d, json_object_get(node, "jobs"), reason);
    }
    json_decref(lost);
}

static void refresh_nodes(struct ald_cluster *C)
{
    json_t *list = NULL;
    if (C->d->hooks.cluster.node_list(C->d->st, &list) < 0) {
        json_decref(list);
        return;
    }
    pthread_mutex_lock(&C->lock);
    json_decref(C->nodes);
    C->nodes = list;
    pthread_mutex_unlock(&C->lock);
}

/* One heartbeat and what follows from it. */
static void beat(struct ald_cluster *C)
{
    struct ald *d = C->d;
    const struct ald_cluster_config *k = &d->cfg->cluster;
    pthread_mutex_lock(&C->lock);
    int64_t epoch = C->epoch;
    int registered = C->registered, stale = C->stale;
    C->stale = 0;
    pthread_mutex_unlock(&C->lock);
    if (!registered) {
        self_fence(C);
        return;
    }
    char state[16] = "";
    int err = d->hooks.cluster.node_heartbeat(d->st, k->node_id, epoch, state);
    if (err == AL_ESTALE) {
        ald_cluster_streak_beat(&C->streak, ald_mono_ms(), 0, k->down_after_ms);
        self_fence(C);
        return;
    }
    int may_sweep = ald_cluster_streak_beat(&C->streak, ald_mono_ms(), err == 0, k->down_after_ms);
    if (err < 0) {
        if (!C->db_down)
            al_log(AL_LOG_WARN,
                   "cluster: heartbeat failed: %s (no sweep until heartbeats have "
                   "succeeded for down_after_ms again)",
                   al_error_last());
        C->db_down = 1;
        return;
    }
    if (C->db_down)
        al_log(AL_LOG_INFO, "cluster: heartbeats reach the store again");
    C->db_down = 0;
    enum ald_node_state now = state_of(state), was = ald_cluster_state(d);
    if (now != was)
        al_log(AL_LOG_INFO, "cluster: node %s is %s", k->node_id,
               now == ALD_NODE_DRAINING ? "draining" : "up");
    atomic_store(&C->state, (int)now);
    if (stale)
        fence_sessions(C);
    if (may_sweep)
        sweep(C);
    if (++C->beats % NODES_EVERY == 0)
        refresh_nodes(C);
}

static void *hb_main(void *arg)
{
    struct ald_cluster *C = arg;
    uint64_t every = C->d->cfg->cluster.heartbeat_ms;
    pthread_mutex_lock(&C->lock);
    while (!C->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (every % 1000) * 1000000ULL;
        ts.tv_sec += (time_t)(every / 1000 + ns / 1000000000ULL);
        ts.tv_nsec = (long)(ns % 1000000000ULL);
        while (!C->stop && !C->kick)
            if (pthread_cond_timedwait(&C->cond, &C->lock, &ts) == ETIMEDOUT)
                break;
        C->kick = 0;
        if (C->stop)
            break;
        pthread_mutex_unlock(&C->lock);
        beat(C);
        pthread_mutex_lock(&C->lock);
    }
    pthread_mutex_unlock(&C->lock);
    return NULL;
}

void ald_cluster_note_stale(struct ald *d)
{
    struct ald_cluster *C = d->cluster;
    if (!C)
        return;
    pthread_mutex_lock(&C->lock);
    C->stale = C->kick = 1;
    pthread_cond_broadcast(&C->cond);
    pthread_mutex_unlock(&C->lock);
}

static void cluster_free(struct ald_cluster *C)
{
    if (!C)
        return;
    json_decref(C->nodes);
    pthread_cond_destroy(&C->cond);
    pthread_mutex_destroy(&C->lock);
    free(C);
}

int ald_cluster_start(struct ald *d, const char *version)
{
    const struct ald_config *cfg = d->cfg;
    if (!cfg->cluster.enabled)
        return 0;
    struct ald_cluster *C = calloc(1, sizeof(*C));
    if (!C)
        return al_error_set(AL_ENOMEM, "cluster: out of memory");
    C->d = d;
    snprintf(C->version, sizeof(C->version), "%s", version ? version : "unknown");
    pthread_mutex_init(&C->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&C->cond, &ca);
    pthread_condattr_destroy(&ca);

    unsigned char meminfo[16384];
    size_t n = 0;
    if (cfg->cluster.cap_memory_mb == 0 &&
        read_small("/proc/meminfo", meminfo, sizeof(meminfo), &n) < 0 && n == 0)
        al_log(AL_LOG_WARN, "cluster: %s", al_error_last());
    int err = ald_cluster_caps_default(&cfg->cluster, (const char *)meminfo, n,
                                       sysconf(_SC_NPROCESSORS_ONLN), &C->caps);
    char master[PATH_MAX];
    int m = cfg->px_master_key ? snprintf(master, sizeof(master), "%s", cfg->px_master_key)
                               : snprintf(master, sizeof(master), "%s/master.key", cfg->state_dir);
    if (err == 0 && (m < 0 || (size_t)m >= sizeof(master)))
        err = al_error_set(AL_ETOOBIG, "master key path too long");
    if (err == 0)
        err = key_check(d, cfg->cluster.key_file, "cluster key", "cluster_key_check", 1);
    if (err == 0)
        err = key_check(d, master, "master key", "master_key_check", 0);
    if (err == 0)
        err = node_register(C);
    if (err < 0) {
        cluster_free(C);
        return err;
    }
    refresh_nodes(C);
    d->cluster = C;
    if ((errno = pthread_create(&C->thread, NULL, hb_main, C)) != 0) {
        d->cluster = NULL;
        cluster_free(C);
        return al_error_set_errno(AL_EIO, errno, "cluster: starting the heartbeat thread");
    }
    C->started = 1;
    return 0;
}

void ald_cluster_stop(struct ald *d)
{
    struct ald_cluster *C = d->cluster;
    if (!C)
        return;
    pthread_mutex_lock(&C->lock);
    C->stop = 1;
    pthread_cond_broadcast(&C->cond);
    pthread_mutex_unlock(&C->lock);
    if (C->started)
        pthread_join(C->thread, NULL);
    d->cluster = NULL;
    cluster_free(C);
}

int ald_cluster_place(struct ald *d, const struct ald_principal *who,
                      const struct ald_create_req *req, const char *id, json_t *pub0, json_t *priv0,
                      const char *force_node, const char *exclude_node, struct ald_place_out *out,
                      struct ald_fault *f)
{
    memset(out, 0, sizeof(*out));
    if (!d->cluster)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "not a cluster node");
    json_t *git = json_object_get(priv0, "git");
    struct ald_place_req q = {
        .id = id,
        .user = who->user,
        .max_sessions =
            who->max_sessions >= 0 ? who->max_sessions : (int64_t)d->cfg->quota_max_sessions,
        .max_memory_mb =
            who->max_memory_mb >= 0 ? who->max_memory_mb : (int64_t)d->cfg->quota_max_memory_mb,
        .memory_mb = (int64_t)req->limits.memory_mb,
        .cpu_m = (int64_t)(req->limits.cpu * 1000.0 + 0.5),
        .repo = json_string_value(json_object_get(git, "repo")),
        .branch = json_string_value(json_object_get(git, "branch")),
        .force_node = force_node,
        .exclude_node = exclude_node,
        .down_after_ms = (int64_t)d->cfg->cluster.down_after_ms,
        .pub = pub0,
        .priv = priv0,
    };
    if (!q.repo)
        q.repo = req->repo;
    f->kind = ALD_FAULT_INTERNAL;
    f->message[0] = '\0';
    int err = d->hooks.cluster.place(d->st, &q, out, f);
    if (err < 0 && f->kind == ALD_FAULT_INTERNAL && !f->message[0])
        ald_fault_store(f, err);
    return err;
}
