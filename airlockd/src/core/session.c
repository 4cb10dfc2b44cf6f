/* Session lifecycle: create (workspace, uid, policy, sandbox), lookup,
 * teardown, TTL/idle expiry by the reaper thread, quotas. */
#include "airlockd/core/daemon.h"

#include "airlockd/core/approval.h"
#include "airlockd/core/cluster.h"
#include "airlockd/core/webhook.h"

#include "airlockd/core/control.h"
#include "airlockd/core/process.h"
#include "airlockd/core/session.h"
#include "airlockd/core/tty.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/path.h"
#include "airlock/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const state_names[] = {
    [ALD_CREATING] = "creating", [ALD_READY] = "ready",     [ALD_DELETING] = "deleting",
    [ALD_DELETED] = "deleted",   [ALD_EXPIRED] = "expired", [ALD_FAILED] = "failed",
    [ALD_LOST] = "lost",
};

const char *ald_state_name(enum ald_state st)
{
    return state_names[st];
}

int ald_state_parse(const char *name)
{
    for (int i = 0; i <= ALD_LOST; i++)
        if (strcmp(name, state_names[i]) == 0)
            return i;
    return -1;
}

void ald_session_path(const struct ald *d, const char *id, const char *leaf, char *out, size_t size)
{
    int n = leaf ? snprintf(out, size, "%s/%s/%s", d->sessions_dir, id, leaf)
                 : snprintf(out, size, "%s/%s", d->sessions_dir, id);
    if (n < 0 || (size_t)n >= size)
        out[0] = '\0';
}

/* The session object's "credentials": [{secret, env, injectHosts}] (the
 * sentinel and the value are never in it). */
static json_t *creds_pub(const struct ald_session *s)
{
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(s->creds.rec, "list"), i, c)
    {
        json_array_append_new(out,
                              json_pack("{s:O, s:O, s:O}", "secret", json_object_get(c, "secret"),
                                        "env", json_object_get(c, "env"), "injectHosts",
                                        json_object_get(c, "inject_hosts")));
    }
    return out;
}

json_t *ald_session_json(const struct ald_session *s)
{
    uint64_t expires = s->created_ms + s->limits.ttl_s * 1000;
    uint64_t idle_end = s->last_active_ms + s->limits.idle_s * 1000;
    if (idle_end < expires)
        expires = idle_end;
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o,"
        " s:{s:I, s:I, s:f, s:I, s:I}, s:O, s:s, s:o, s:o, s:o}",
        "id", s->id, "user", s->user, "state", ald_state_name(s->state), "mode",
        s->mode == AL_MODE_REGULAR ? "regular" : "auto-allow", "created_at",
        ald_time_json(s->created_ms), "last_active_at", ald_time_json(s->last_active_ms),
        "expires_at", ALD_STATE_ENDED(s->state) ? json_null() : ald_time_json(expires), "ended_at",
        ald_time_json(s->ended_ms), "end_reason",
        s->end_reason[0] ? json_string(s->end_reason) : json_null(), "limits", "memory_mb",
        (json_int_t)s->limits.memory_mb, "pids", (json_int_t)s->limits.pids, "cpu", s->limits.cpu,
        "ttl_s", (json_int_t)s->limits.ttl_s, "idle_s", (json_int_t)s->limits.idle_s, "metadata",
        s->metadata, "workspace", "/workspace", "repo",
        s->git.repo ? json_incref(json_object_get(s->git.repo, "repo")) : json_null(), "branch",
        s->git.repo ? json_incref(json_object_get(s->git.repo, "branch")) : json_null(),
        "credentials", creds_pub(s));
}

static json_t *record_json(const struct sbs_record *r)
{
    return json_pack("{s:I, s:I, s:s, s:[s, s, s], s:i}", "init_pid", (json_int_t)r->init_pid,
                     "init_start_time", (json_int_t)r->init_start_time, "control_path",
                     r->control_path, "cgroup_paths", r->cgroup_paths[0], r->cgroup_paths[1],
                     r->cgroup_paths[2], "cgroup_version", r->cgroup_version);
}

/* Private fields the daemon needs after a restart (and, in a cluster, the
 * node that owns it: the store writes the row only while it names this
 * node). Caller holds d->lock. */
static json_t *session_priv_json(const struct ald *d, const struct ald_session *s)
{
    json_t *priv = json_pack(
        "{s:I, s:I, s:I, s:O, s:o, s:b, s:I, s:I, s:O?, s:O?, s:O?}", "uid", (json_int_t)s->uid,
        "next_proc", (json_int_t)s->procs.next, "ended_ms", (json_int_t)s->ended_ms, "env", s->env,
        "record", s->sandbox.have_record ? record_json(&s->sandbox.conn.rec) : json_null(),
        "workspace_kept", s->workspace_kept, "last_active_ms", (json_int_t)s->last_active_ms,
        "created_ms", (json_int_t)s->created_ms, "netpolicy", s->px.netpolicy, "git", s->git.repo,
        "creds", s->creds.rec);
    if (priv && s->webhook && json_object_set(priv, "webhook", s->webhook) < 0) {
        json_decref(priv);
        priv = NULL;
    }
    const char *self = ald_cluster_self(d);
    if (priv && self && json_object_set_new(priv, "node", json_string(self)) < 0) {
        json_decref(priv);
        priv = NULL;
    }
    return priv;
}

int ald_session_save(struct ald *d, struct ald_session *s)
{
    pthread_mutex_lock(&d->lock);
    json_t *pub = ald_session_json(s);
    json_t *priv = session_priv_json(d, s);
    pthread_mutex_unlock(&d->lock);
    int err = pub && priv ? d->hooks.store.session_put(d->st, pub, priv) : AL_ENOMEM;
    if (err == AL_ESTALE) {
        /* fenced: the cluster gave the session away (or lost it); the
         * heartbeat thread ends it here without writing again */
        al_log(AL_LOG_WARN, "session %s: its row is no longer this node's (%s)", s->id,
               al_error_last());
        ald_cluster_note_stale(d);
    } else if (err < 0) {
        al_log(AL_LOG_ERROR, "saving session %s: %s", s->id, al_error_last());
    }
    json_decref(pub);
    json_decref(priv);
    return err;
}

void ald_session_creds_clear(struct ald_session_creds *c)
{
    json_decref(c->rec);
    json_decref(c->env);
    al_credset_free(&c->set);
    free(c->ca_cert);
    if (c->ca_key) {
        explicit_bzero(c->ca_key, strlen(c->ca_key));
        free(c->ca_key);
    }
    memset(c, 0, sizeof(*c));
}

static void session_free(struct ald_session *s)
{
    while (s->approvals.list) {
        struct ald_approval *a = s->approvals.list;
        s->approvals.list = a->next;
        json_decref(a->argv);
        free(a->host);
        free(a);
    }
    for (int i = 0; i < 3; i++)
        if (s->px.lfd[i] >= 0)
            close(s->px.lfd[i]);
    json_decref(s->px.netpolicy);
    json_decref(s->git.repo);
    json_decref(s->git.env);
    json_decref(s->metadata);
    json_decref(s->env);
    json_decref(s->webhook);
    ald_session_creds_clear(&s->creds);
    pthread_mutex_destroy(&s->sandbox.send_lock);
    pthread_mutex_destroy(&s->sandbox.recv_lock);
    free(s);
}

void ald_session_unref(struct ald *d, struct ald_session *s)
{
    pthread_mutex_lock(&d->lock);
    int last = --s->refs == 0;
    pthread_mutex_unlock(&d->lock);
    if (last)
        session_free(s);
}

static int visible(const struct ald_principal *who, const char *user)
{
    return who->admin || strcmp(who->user, user) == 0;
}

struct ald_session *ald_session_get(struct ald *d, const struct ald_principal *who, const char *id)
{
    pthread_mutex_lock(&d->lock);
    struct ald_session *s = d->sessions;
    while (s && strcmp(s->id, id) != 0)
        s = s->next;
    if (s && !visible(who, s->user))
        s = NULL;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&d->lock);
    return s;
}

int ald_session_lookup_json(struct ald *d, const struct ald_principal *who, const char *id,
                            json_t **out, struct ald_fault *f)
{
    *out = NULL;
    struct ald_session *s = ald_session_get(d, who, id);
    if (s) {
        pthread_mutex_lock(&d->lock);
        *out = ald_session_json(s);
        pthread_mutex_unlock(&d->lock);
        ald_session_unref(d, s);
        return *out ? 0 : ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
    }
    int err = d->hooks.store.session_get(d->st, id, who->admin ? NULL : who->user, out, NULL);
    if (err == AL_ENOTFOUND) {
        char shown[260]; /* the id comes from a URL: any bytes, quoted */
        return ald_fault_set(f, ALD_FAULT_NOT_FOUND, "not_found", NULL, "no session %s",
                             ald_str_quote(shown, sizeof(shown), id, strlen(id)));
    }
    if (err < 0)
        return ald_fault_store(f, err);
    return 0;
}

void ald_session_touch(struct ald *d, struct ald_session *s)
{
    pthread_mutex_lock(&d->lock);
    s->last_active_ms = ald_now_ms();
    pthread_mutex_unlock(&d->lock);
}

/* Allocates a host uid from the range, not used by a live session. Caller
 * holds d->lock. 0 when the range is exhausted. */
static uid_t uid_alloc(struct ald *d)
{
    const struct ald_config *c = d->cfg;
    for (uint32_t tries = 0; tries < c->uid_count; tries++) {
        uid_t uid = d->next_uid;
        d->next_uid = uid + 1 >= c->uid_start + c->uid_count ? c->uid_start : uid + 1;
        int used = 0;
        for (struct ald_session *s = d->sessions; s && !used; s = s->next)
            used = s->uid == uid;
        if (!used)
            return uid;
    }
    return 0;
}

/* Checks the user's quotas against the live sessions. Caller holds d->lock. */
static int quota_check(struct ald *d, const struct ald_principal *who, uint64_t memory_mb,
                       struct ald_fault *f)
{
    uint64_t max_s =
        who->max_sessions >= 0 ? (uint64_t)who->max_sessions : d->cfg->quota_max_sessions;
    uint64_t max_m =
        who->max_memory_mb >= 0 ? (uint64_t)who->max_memory_mb : d->cfg->quota_max_memory_mb;
    uint64_t n = 0, mem = 0;
    for (struct ald_session *s = d->sessions; s; s = s->next) {
        if (strcmp(s->user, who->user) == 0) {
            n++;
            mem += s->limits.memory_mb;
        }
    }
    if (n + 1 > max_s)
        return ald_fault_set(f, ALD_FAULT_QUOTA, "quota_exceeded", NULL,
                             "user %s has %llu sessions (quota %llu)", who->user,
                             (unsigned long long)n, (unsigned long long)max_s);
    if (mem + memory_mb > max_m)
        return ald_fault_set(f, ALD_FAULT_QUOTA, "quota_exceeded", "limits.memory_mb",
                             "user %s would use %llu MiB (quota %llu MiB)", who->user,
                             (unsigned long long)(mem + memory_mb), (unsigned long long)max_m);
    return 0;
}

struct ald_session *ald_session_new(const char *id, const char *user)
{
    struct ald_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    snprintf(s->id, sizeof(s->id), "%s", id);
    snprintf(s->user, sizeof(s->user), "%s", user);
    pthread_mutex_init(&s->sandbox.send_lock, NULL);
    pthread_mutex_init(&s->sandbox.recv_lock, NULL);
    s->sandbox.conn.fd = -1;
    s->px.lfd[0] = s->px.lfd[1] = s->px.lfd[2] = -1;
    s->refs = 1; /* the live list's */
    s->procs.next = 1;
    return s;
}

/* Inserts a new session into the live list. Caller holds d->lock. */
void ald_session_link(struct ald *d, struct ald_session *s)
{
    s->tag = ++d->next_tag;
    s->next = d->sessions;
    d->sessions = s;
}

/* Removes a session from the live list. Caller holds d->lock. */
static int session_unlink(struct ald *d, struct ald_session *s)
{
    for (struct ald_session **pp = &d->sessions; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            s->next = NULL;
            return 1;
        }
    }
    return 0;
}

/* Makes <state>/sessions/<id>/{workspace,out}: the workspace belongs to the
 * session's uid; the rest to root (the sandbox never sees it). */
static int make_dirs(struct ald *d, const struct ald_session *s)
{
    char path[PATH_MAX];
    ald_session_path(d, s->id, NULL, path, sizeof(path));
    if (mkdir(path, 0711) < 0)
        return al_error_set_errno(AL_EIO, errno, "mkdir %s", path);
    ald_session_path(d, s->id, "out", path, sizeof(path));
    if (mkdir(path, 0700) < 0)
        return al_error_set_errno(AL_EIO, errno, "mkdir %s", path);
    ald_session_path(d, s->id, "workspace", path, sizeof(path));
    if (mkdir(path, 0755) < 0)
        return al_error_set_errno(AL_EIO, errno, "mkdir %s", path);
    if (chown(path, s->uid, s->uid) < 0)
        return al_error_set_errno(AL_EIO, errno, "chown %s", path);
    return 0;
}

/* Moves every policy path inside "/workspace" (as API users write them) to
 * the host workspace `ws`; the runtime maps them back when it mounts it. */
static int remap_list(struct al_strlist *list, const char *ws)
{
    for (size_t i = 0; i < list->len; i++) {
        char *p = list->items[i];
        if (!al_path_within(p, "/workspace"))
            continue;
        char *moved = NULL;
        if (asprintf(&moved, "%s%s", ws, p + strlen("/workspace")) < 0)
            return AL_ENOMEM;
        free(p);
        list->items[i] = moved;
    }
    return 0;
}

/* Turns the create request's policy (loaded and checked once, in sandbox
 * paths) into the sandbox policy in host paths, with the runtime's defaults
 * for the workspace `ws`. */
static int build_policy(struct al_policy *pol, const char *ws)
{
    int err = 0;
    struct al_strlist *lists[] = {&pol->allow_write, &pol->deny_read, &pol->allow_read,
                                  &pol->deny_write};
    for (size_t i = 0; i < sizeof(lists) / sizeof(*lists) && err == 0; i++)
        err = remap_list(lists[i], ws);
    if (err == 0)
        err = sb_policy_add_defaults(pol, ws, NULL);
    return err;
}

/* Starts the sandbox of a session in state creating, with `pol` (the create
 * request's, taken: freed here). */
static int start_sandbox(struct ald *d, struct ald_session *s, struct al_policy *pol_in)
{
    struct al_policy pol = *pol_in;
    al_policy_init(pol_in);
    char workspace[PATH_MAX], control[PATH_MAX], cgroup[64];
    struct al_strlist bind_src = AL_STRLIST_INIT, bind_dst = AL_STRLIST_INIT;
    struct sb_file_bind *binds = NULL;
    ald_session_path(d, s->id, "workspace", workspace, sizeof(workspace));
    int err = build_policy(&pol, workspace);
    if (err < 0)
        goto out;
    /* every control socket in one root-only directory, hidden from every
     * sandbox (the runtime hides the socket's directory) */
    int n = snprintf(control, sizeof(control), "%s/run/%s.sock", d->cfg->state_dir, s->id);
    if (n < 0 || (size_t)n >= sizeof(control)) {
        err = al_error_set(AL_ETOOBIG, "state_dir path too long");
        goto out;
    }
    snprintf(cgroup, sizeof(cgroup), "airlock-%s", s->id);
    const char *hide[ALD_MAX_HIDDEN + 1] = {d->cfg->state_dir};
    for (size_t i = 0; i < d->cfg->n_hidden_paths; i++)
        hide[i + 1] = d->cfg->hidden_paths[i];
    struct sbs_spec spec = {
        .policy = &pol,
        .workspace = workspace,
        .workspace_mount = "/workspace",
        .rootfs = d->cfg->rootfs,
        .control_path = control,
        .cgroup_name = cgroup,
        .init_path = d->init_path,
        .host_uid = s->uid,
        .host_gid = s->uid,
        .memory_mb = s->limits.memory_mb,
        .pids = s->limits.pids,
        .cpus = s->limits.cpu,
        .hide = hide,
        .n_hide = d->cfg->n_hidden_paths + 1,
    };
    spec.n_tcp_connect_ports = d->hooks.px.ports(d, &spec.tcp_connect_ports);
    /* The remote helper of the session's repository: read-only, so the
     * sandbox cannot replace what git runs for origin. */
    const char *helper[1] = {d->git_helper};
    if (s->git.repo && d->git_helper[0]) {
        spec.ro_paths = helper;
        spec.n_ro_paths = 1;
    }
    /* A session with a CA trusts it as `airlock run`'s sandbox does: the
     * CA, a bundle of it and the root's CAs, and a Java truststore, made in
     * the session's directory and bound read-only under /run/airlock; the
     * bundle over the root's own bundles too, where every client looks by
     * default (and the variables of s->creds.env point at them). */
    if (s->creds.ca_cert) {
        char dir[PATH_MAX];
        ald_session_path(d, s->id, NULL, dir, sizeof(dir));
        if ((err = d->hooks.creds.trust_files(d, s, dir, &bind_src, &bind_dst)) < 0)
            goto out;
        if (!(binds = calloc(bind_src.len, sizeof(*binds)))) {
            err = AL_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < bind_src.len; i++)
            binds[i] = (struct sb_file_bind){bind_src.items[i], bind_dst.items[i]};
        spec.file_binds = binds;
        spec.n_file_binds = bind_src.len;
    }
    struct sbs_conn conn;
    memset(&conn, 0, sizeof(conn));
    conn.fd = -1;
    if ((err = sbs_start(&conn, &spec)) < 0)
        goto out;
    pthread_mutex_lock(&d->lock);
    int creating = s->state == ALD_CREATING;
    if (creating) {
        s->sandbox.conn = conn;
        s->sandbox.open = 1;
        s->sandbox.have_record = 1;
    }
    pthread_mutex_unlock(&d->lock);
    if (!creating) {
        /* deleted while it was being built: its teardown did not see this */
        sbs_destroy(&conn);
        err = al_error_set(AL_ERROR, "deleted while being created");
        goto out;
    }
    err = ald_ctl_add(d, s);
    if (err == 0)
        err = d->hooks.px.session_add(d, s, conn.rec.init_pid, 1);
out:
    free(binds);
    al_strlist_free(&bind_src);
    al_strlist_free(&bind_dst);
    al_policy_free(&pol);
    return err;
}

static int idem_key_valid(const char *k)
{
    size_t n = strlen(k);
    if (n < 1 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e)
            return 0;
    return 1;
}

/* Returns the session an earlier create with this key made (200), or a
 * conflict for another body. */
static int idem_replay(struct ald *d, const struct ald_principal *who, const char *sid,
                       const char *hash, const char *body_hash, json_t **out, struct ald_fault *f)
{
    if (strcmp(hash, body_hash) != 0)
        return ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", NULL,
                             "Idempotency-Key was used with another body");
    return ald_session_lookup_json(d, who, sid, out, f);
}

/* A failed create that made no live session: its idempotency key is
 * released and, in a cluster, its `placed` row (if any) becomes failed. */
static void create_undo(struct ald *d, const struct ald_principal *who, const char *id,
                        const char *idem_key, int placed_row, const struct ald_fault *f)
{
    if (idem_key)
        d->hooks.store.idem_release(d->st, who->user, idem_key);
    if (placed_row && d->cluster) {
        char reason[300];
        snprintf(reason, sizeof(reason), "create-failed: %.280s", f ? f->message : "");
        if (d->hooks.cluster.place_fail(d->st, id, reason) < 0)
            al_log(AL_LOG_WARN, "session %s: marking its placed row failed: %s", id,
                   al_error_last());
    }
}

/* The owner's check of a `placed` row before it starts the session: the row
 * exists, is `who`'s, is still `placed` and names this node. */
static int placed_row_check(struct ald *d, const struct ald_principal *who, const char *id,
                            struct ald_fault *f)
{
    json_t *pub = NULL, *priv = NULL;
    int err = d->hooks.store.session_get(d->st, id, NULL, &pub, &priv);
    if (err == AL_ENOTFOUND)
        err = ald_fault_set(f, ALD_FAULT_NOT_FOUND, "not_found", NULL, "no session %s", id);
    else if (err < 0)
        err = ald_fault_store(f, err);
    const char *user = json_string_value(json_object_get(pub, "user"));
    const char *state = json_string_value(json_object_get(pub, "state"));
    const char *node = json_string_value(json_object_get(priv, "node"));
    const char *self = ald_cluster_self(d);
    if (err == 0 && (!user || strcmp(user, who->user) != 0))
        err = ald_fault_set(f, ALD_FAULT_NOT_FOUND, "not_found", NULL, "no session %s", id);
    else if (err == 0 &&
             (!state || strcmp(state, "placed") != 0 || !node || !self || strcmp(node, self) != 0))
        err = ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", NULL,
                            "session %s is not placed on node %s (state %s, node %s)", id,
                            self ? self : "-", state ? state : "-", node ? node : "-");
    json_decref(pub);
    json_decref(priv);
    return err;
}

/* Every create: a single machine's (remote NULL, placed 0, no cluster),
 * a cluster entry node's (placement first; ALD_CREATE_REMOTE when the
 * session went elsewhere; with remote NULL it is placed here), and the
 * owner's half of a create another node placed here (`given_id`, placed
 * 1: no idempotency, no quota, no placement). */
static int session_create(struct ald *d, const struct ald_principal *who,
                          struct ald_create_req *req, const char *given_id, const char *idem_key,
                          const char *body_hash, json_t **out_pub, int *replayed,
                          struct ald_place_out *remote, int placed, struct ald_fault *f)
{
    *out_pub = NULL;
    *replayed = 0;
    char id[32] = "s_";
    if (given_id) {
        snprintf(id, sizeof(id), "%s", given_id);
    } else if (ald_random_hex(id + 2, 20) < 0) {
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
    }
    int cluster = d->cluster != NULL;
    int placed_row = placed; /* a `placed` row exists for this id */
    if (placed) {
        idem_key = NULL;
        if (!cluster)
            return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "not a cluster node");
        int err = placed_row_check(d, who, id, f);
        if (err < 0)
            return err;
    }
    if (idem_key) {
        if (!idem_key_valid(idem_key))
            return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "Idempotency-Key",
                                 "Idempotency-Key must be 1-128 printable ASCII characters");
        char prev_sid[32], prev_hash[72];
        int err = d->hooks.store.idem_claim(d->st, who->user, idem_key, body_hash, id, ald_now_ms(),
                                            prev_sid, prev_hash);
        if (err == AL_EEXISTS) {
            *replayed = 1;
            return idem_replay(d, who, prev_sid, prev_hash, body_hash, out_pub, f);
        }
        if (err < 0)
            return ald_fault_store(f, err);
    }
    if (atomic_load(&d->draining)) {
        ald_fault_set(f, ALD_FAULT_UNAVAILABLE, "unavailable", NULL, "airlockd is shutting down");
        create_undo(d, who, id, idem_key, placed_row, f);
        return AL_EINVAL;
    }

    /* the network policy in its wire form, what the netproxy is sent */
    json_t *netpolicy = al_netpolicy_to_json(&req->policy.net);
    struct ald_session *s = netpolicy ? ald_session_new(id, who->user) : NULL;
    if (!s) {
        json_decref(netpolicy);
        ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
        create_undo(d, who, id, idem_key, placed_row, f);
        return AL_ENOMEM;
    }
    /* Its HTTP secrets (checked against the store: a 4xx makes no session)
     * and its CA, before anything of it is saved or built. */
    int cerr = d->hooks.creds.prepare(d, s, req, f);
    /* its webhook: URL checked (SSRF guard), secret sealed */
    if (cerr == 0 && req->webhook)
        cerr = ald_webhook_session_prepare(d, id, req->webhook, &s->webhook, f);
    if (cerr < 0) {
        json_decref(netpolicy);
        create_undo(d, who, id, idem_key, placed_row, f);
        session_free(s);
        return cerr;
    }
    s->limits = req->limits;
    s->mode = req->mode;
    s->metadata = json_incref(req->metadata);
    s->env = json_incref(req->env);
    s->px.netpolicy = netpolicy;
    s->created_ms = s->last_active_ms = ald_now_ms();
    s->state = ALD_CREATING;
    if (req->policy.mode == AL_MODE_REGULAR) /* the settings' own "mode" */
        s->mode = AL_MODE_REGULAR;

    /* The branch is claimed before the session is linked and saved: checked
     * against the recorded sessions, then the live ones in the same hold of
     * d->lock as the link, and its row carries the branch from the start. */
    json_t *git = NULL;
    int err = req->repo ? d->hooks.git.plan(d, id, req, &git, f) : 0;
    if (err == 0 && cluster && !placed) {
        /* Placement (docs/cluster.md): the user's quota, the branch and the
         * nodes' room in one store transaction that writes the `placed`
         * row; here unless another node has more room (remote set). */
        s->git.repo = git;
        json_t *pub0 = ald_session_json(s);
        json_t *priv0 = session_priv_json(d, s);
        s->git.repo = NULL;
        struct ald_place_out where;
        char exclude[64] = ""; /* a retry's: the node that did not answer */
        if (remote)
            snprintf(exclude, sizeof(exclude), "%.63s", remote->node);
        if (!pub0 || !priv0 || json_object_set_new(pub0, "state", json_string("placed")) < 0)
            err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
        else
            err =
                ald_cluster_place(d, who, req, id, pub0, priv0, remote ? NULL : ald_cluster_self(d),
                                  exclude[0] ? exclude : NULL, &where, f);
        json_decref(priv0);
        if (err == 0 && strcmp(where.node, ald_cluster_self(d)) != 0) {
            if (remote) {
                *remote = where;
                *out_pub = pub0;
                json_decref(git);
                session_free(s);
                al_log(AL_LOG_INFO, "session %s placed on node %s (%s)", id, where.node,
                       where.address);
                return ALD_CREATE_REMOTE;
            }
            err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL,
                                "session %s placed on node %s, not here", id, where.node);
            placed_row = 1;
        }
        json_decref(pub0);
        if (err == 0)
            placed_row = 1;
    }
    pthread_mutex_lock(&d->lock);
    if (err == 0 && !cluster) /* a cluster checked the quota in the placement */
        err = quota_check(d, who, s->limits.memory_mb, f);
    if (err == 0 && git)
        err = d->hooks.git.live_clash(d, git, f);
    if (err == 0 && (s->uid = uid_alloc(d)) == 0)
        err = ald_fault_set(f, ALD_FAULT_UNAVAILABLE, "unavailable", NULL,
                            "no free uid in uid_range");
    if (err == 0) {
        s->git.repo = git;
        git = NULL;
        ald_session_link(d, s);
        s->refs++; /* ours */
    }
    pthread_mutex_unlock(&d->lock);
    json_decref(git);
    if (err < 0) {
        create_undo(d, who, id, idem_key, placed_row, f);
        session_free(s);
        return err;
    }

    uint64_t t0 = ald_mono_ms();
    ald_session_save(d, s);
    ald_event(d, s->id, s->user, "state", json_pack("{s:s, s:n}", "state", "creating", "reason"));
    err = make_dirs(d, s);
    uint64_t t1 = ald_mono_ms();
    if (err == 0 && req->repo)
        err = d->hooks.git.setup(d, s);
    if (err == 0)
        err = start_sandbox(d, s, &req->policy);
    int refused = 0, cloning = 0;
    if (err == 0) {
        cloning = req->repo != NULL;
        refused = (err = d->hooks.git.clone(d, s)) == AL_EEXISTS;
    }
    al_log(AL_LOG_DEBUG, "session %s: saved and dirs made in %llu ms, sandbox in %llu ms", s->id,
           (unsigned long long)(t1 - t0), (unsigned long long)(ald_mono_ms() - t1));
    pthread_mutex_lock(&d->lock);
    int deleted = s->state != ALD_CREATING;
    pthread_mutex_unlock(&d->lock);
    if (deleted) {
        ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", NULL,
                      "session %s was deleted while being created", s->id);
        ald_session_unref(d, s);
        return AL_EEXISTS;
    }
    if (err < 0) {
        /* torn down at once either way: a refused branch is the caller's
         * conflict (409), anything else the host's failure (500) */
        char reason[256], msg[1000];
        snprintf(msg, sizeof(msg), "%s", al_error_last());
        snprintf(reason, sizeof(reason), "%s: %.230s", refused ? "create-refused" : "create-failed",
                 msg);
        al_log(AL_LOG_WARN, "session %s: %s", s->id, reason);
        ald_session_end(d, s, ALD_FAILED, reason);
        if (refused)
            ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", "branch", "%s", msg);
        else if (cloning) /* the upstream's or the request's, said in full */
            ald_fault_set(f, ALD_FAULT_UPSTREAM, "clone_failed", NULL, "%s", msg);
        else
            ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", reason);
        ald_session_unref(d, s);
        return refused ? AL_EEXISTS : AL_EIO;
    }
    pthread_mutex_lock(&d->lock);
    if (s->state == ALD_CREATING)
        s->state = ALD_READY;
    pthread_mutex_unlock(&d->lock);
    ald_session_save(d, s);
    ald_event(d, s->id, s->user, "state", json_pack("{s:s, s:n}", "state", "ready", "reason"));
    al_log(AL_LOG_INFO, "session %s created for %s (uid %u)", s->id, s->user, (unsigned)s->uid);
    pthread_mutex_lock(&d->lock);
    *out_pub = ald_session_json(s);
    pthread_mutex_unlock(&d->lock);
    ald_session_unref(d, s);
    return *out_pub ? 0 : ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
}

int ald_session_create_ex(struct ald *d, const struct ald_principal *who,
                          struct ald_create_req *req, const char *idem_key, const char *body_hash,
                          json_t **out_pub, int *replayed, struct ald_place_out *remote,
                          struct ald_fault *f)
{
    return session_create(d, who, req, NULL, idem_key, body_hash, out_pub, replayed, remote, 0, f);
}

int ald_session_create(struct ald *d, const struct ald_principal *who, struct ald_create_req *req,
                       const char *idem_key, const char *body_hash, json_t **out_pub, int *replayed,
                       struct ald_fault *f)
{
    /* without a place for a remote answer: placed here (a cluster's jobs) */
    return session_create(d, who, req, NULL, idem_key, body_hash, out_pub, replayed, NULL, 0, f);
}

int ald_session_create_placed(struct ald *d, const struct ald_principal *who,
                              struct ald_create_req *req, const char *id, json_t **out_pub,
                              struct ald_fault *f)
{
    int replayed = 0;
    return session_create(d, who, req, id, NULL, NULL, out_pub, &replayed, NULL, 1, f);
}

int ald_session_end(struct ald *d, struct ald_session *s, enum ald_state final, const char *reason)
{
    return ald_session_end_ex(d, s, final, reason, 0);
}

int ald_session_end_ex(struct ald *d, struct ald_session *s, enum ald_state final,
                       const char *reason, unsigned flags)
{
    pthread_mutex_lock(&d->lock);
    while (s->state == ALD_DELETING)
        pthread_cond_wait(&d->cond, &d->lock);
    if (ALD_STATE_ENDED(s->state)) {
        pthread_mutex_unlock(&d->lock);
        return 0;
    }
    s->state = ALD_DELETING;
    s->refs++;
    pthread_mutex_unlock(&d->lock);
    ald_event(d, s->id, s->user, "state",
              json_pack("{s:s, s:s?}", "state", "deleting", "reason", reason));

    /* the proxies forget it first: its token and listeners are dead */
    d->hooks.px.session_remove(d, s);
    /* no more messages from init: then destroy (kills every process) */
    ald_ctl_remove(d, s);
    pthread_mutex_lock(&s->sandbox.recv_lock);
    pthread_mutex_lock(&s->sandbox.send_lock);
    if (s->sandbox.open) {
        if (sbs_destroy(&s->sandbox.conn) < 0)
            al_log(AL_LOG_ERROR, "session %s: teardown: %s", s->id, al_error_last());
        s->sandbox.open = 0;
    } else if (s->sandbox.have_record) {
        if (sbs_destroy_record(&s->sandbox.conn.rec) < 0)
            al_log(AL_LOG_ERROR, "session %s: teardown: %s", s->id, al_error_last());
    }
    pthread_mutex_unlock(&s->sandbox.send_lock);
    pthread_mutex_unlock(&s->sandbox.recv_lock);

    /* every process still known ends with the session */
    struct ald_proc *ended[64];
    size_t n_ended;
    do {
        n_ended = 0;
        pthread_mutex_lock(&d->lock);
        for (struct ald_proc *p = s->procs.list; p && n_ended < 64; p = p->next) {
            if (ald_proc_set_exit(d, p, -1, 0, "session-ended", ald_mono_ms() - p->start_mono))
                ended[n_ended++] = p; /* with its running reference */
        }
        pthread_mutex_unlock(&d->lock);
        for (size_t i = 0; i < n_ended; i++) {
            ald_proc_exited(d, ended[i]);
            ald_proc_unref(d, ended[i]);
        }
    } while (n_ended == 64);
    ald_tty_release_holds(d, s); /* terminals nobody came to read */

    char dir[PATH_MAX];
    ald_session_path(d, s->id, NULL, dir, sizeof(dir));
    int keep = d->cfg->workspace_retention_s > 0 && final != ALD_FAILED;
    if (!keep)
        ald_rm_tree(dir);

    pthread_mutex_lock(&d->lock);
    s->state = final;
    s->workspace_kept = keep;
    snprintf(s->end_reason, sizeof(s->end_reason), "%s", reason ? reason : "");
    s->ended_ms = ald_now_ms();
    for (struct ald_approval *a = s->approvals.list; a; a = a->next)
        if (strcmp(a->state, "pending") == 0)
            a->state = "timed-out";
    int was_linked = session_unlink(d, s);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    if (!(flags & ALD_END_NOSAVE))
        ald_session_save(d, s);
    ald_event(d, s->id, s->user, "state",
              json_pack("{s:s, s:s?}", "state", ald_state_name(final), "reason", reason));
    al_log(AL_LOG_INFO, "session %s %s%s%s", s->id, ald_state_name(final), reason ? ": " : "",
           reason ? reason : "");
    if (was_linked)
        ald_session_unref(d, s); /* the live list's */
    ald_session_unref(d, s);
    return 0;
}

/* Removes workspaces kept after their retention. */
static void purge_kept(struct ald *d)
{
    json_t *kept = NULL;
    if (d->hooks.store.session_kept(d->st, &kept) < 0) {
        json_decref(kept);
        return;
    }
    uint64_t now = ald_now_ms();
    size_t i;
    json_t *row;
    json_array_foreach(kept, i, row)
    {
        const char *id = json_string_value(json_array_get(row, 0));
        uint64_t ended = (uint64_t)json_integer_value(json_array_get(row, 1));
        if (!id || ended + d->cfg->workspace_retention_s * 1000 > now)
            continue;
        json_t *pub = NULL, *priv = NULL;
        const char *self = ald_cluster_self(d);
        if (d->hooks.store.session_get(d->st, id, NULL, &pub, &priv) == 0 &&
            (!self || strcmp(self, json_string_value(json_object_get(priv, "node"))
                                       ? json_string_value(json_object_get(priv, "node"))
                                       : "") == 0)) {
            /* in a cluster only this node's: the others' are on their disks */
            char dir[PATH_MAX];
            ald_session_path(d, id, NULL, dir, sizeof(dir));
            ald_rm_tree(dir);
            json_object_set_new(priv, "workspace_kept", json_false());
            d->hooks.store.session_put(d->st, pub, priv);
        }
        json_decref(pub);
        json_decref(priv);
    }
    json_decref(kept);
}

/* Picks one session to expire now (with a reference), or NULL. */
static struct ald_session *next_expired(struct ald *d, const char **reason)
{
    uint64_t now = ald_now_ms();
    struct ald_session *found = NULL;
    pthread_mutex_lock(&d->lock);
    for (struct ald_session *s = d->sessions; s && !found; s = s->next) {
        if (s->state != ALD_READY)
            continue;
        int running = 0;
        for (struct ald_proc *p = s->procs.list; p && !running; p = p->next)
            running = p->state != ALD_P_EXITED;
        if (now >= s->created_ms + s->limits.ttl_s * 1000) {
            *reason = "ttl";
            found = s;
        } else if (!running && now >= s->last_active_ms + s->limits.idle_s * 1000) {
            *reason = "idle";
            found = s;
        }
    }
    if (found)
        found->refs++;
    pthread_mutex_unlock(&d->lock);
    return found;
}

/* Network approvals the netproxy has given up on (it refuses the held
 * request after proxies.approval_timeout_s) become timed-out. */
static void expire_net_approvals(struct ald *d)
{
    uint64_t cutoff = ald_now_ms() - d->cfg->px_approval_timeout_s * 1000;
    for (;;) {
        struct ald_session *hit = NULL;
        struct ald_approval *a = NULL;
        pthread_mutex_lock(&d->lock);
        for (struct ald_session *s = d->sessions; s && !hit; s = s->next) {
            for (a = s->approvals.list; a; a = a->next) {
                if (a->kind && strcmp(a->state, "pending") == 0 && a->created_ms < cutoff) {
                    a->state = "timed-out";
                    hit = s;
                    s->refs++;
                    break;
                }
            }
        }
        pthread_mutex_unlock(&d->lock);
        if (!hit)
            return;
        ald_approval_event(d, hit, a);
        ald_session_unref(d, hit);
    }
}

static void *reaper_main(void *arg)
{
    struct ald *d = arg;
    uint64_t last_purge = 0;
    while (!atomic_load(&d->stopping)) {
        struct pollfd pfd = {d->stop_fd, POLLIN, 0};
        if (poll(&pfd, 1, 1000) > 0)
            break;
        const char *reason = NULL;
        struct ald_session *s;
        while ((s = next_expired(d, &reason)) && !atomic_load(&d->stopping)) {
            ald_session_end(d, s, ALD_EXPIRED, reason);
            ald_session_unref(d, s);
        }
        if (s)
            ald_session_unref(d, s);
        ald_procs_trim_output(d);
        expire_net_approvals(d);
        if (d->hooks.store.checkpoint(d->st) < 0)
            al_log(AL_LOG_WARN, "%s", al_error_last());
        uint64_t now = ald_mono_ms();
        if (now - last_purge >= 60000) {
            last_purge = now;
            d->hooks.store.idem_purge(d->st, ald_now_ms() - 24ULL * 3600 * 1000);
            purge_kept(d);
        }
    }
    return NULL;
}

int ald_sessions_start(struct ald *d)
{
    int err = 0;
    d->next_uid = d->cfg->uid_start;
    if ((err = ald_ctl_start(d)) < 0)
        return err;
    if ((err = d->hooks.px.start(d)) < 0)
        return err;
    if ((err = ald_adopt_all(d)) < 0)
        return err;
    ald_adopt_orphans(d);
    if ((errno = pthread_create(&d->reaper_thread, NULL, reaper_main, d)) != 0)
        return al_error_set_errno(AL_EIO, errno, "starting the reaper thread");
    return 0;
}

void ald_sessions_stop(struct ald *d)
{
    atomic_store(&d->stopping, 1);
    uint64_t one = 1;
    if (write(d->stop_fd, &one, sizeof(one)) < 0)
        al_log(AL_LOG_WARN, "stop: %s", strerror(errno));
    pthread_mutex_lock(&d->lock);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->reaper_thread, NULL);
    d->hooks.px.stop(d);
    ald_ctl_stop(d);
    /* the sandboxes keep running: close our ends only */
    pthread_mutex_lock(&d->lock);
    while (d->sessions) {
        struct ald_session *s = d->sessions;
        d->sessions = s->next;
        if (s->sandbox.open) {
            close(s->sandbox.conn.fd);
            free(s->sandbox.conn.rbuf);
            s->sandbox.open = 0;
        }
        while (s->procs.list) {
            struct ald_proc *p = s->procs.list;
            s->procs.list = p->next;
            if (p->stdin_fd >= 0)
                close(p->stdin_fd);
            if (p->exit_efd >= 0)
                close(p->exit_efd);
            json_decref(p->argv);
            free(p);
            s->refs--; /* the process's */
        }
        if (--s->refs == 0)
            session_free(s);
    }
    pthread_mutex_unlock(&d->lock);
}
