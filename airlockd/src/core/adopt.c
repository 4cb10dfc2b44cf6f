/* Re-adoption after a restart: every session the store says is live (in
 * a cluster: live and this node's) is reconnected to its sandbox
 * (sbs_attach) or, when the sandbox is gone, cleaned up and marked failed.
 * Processes that were running are loaded back so that the exits init kept
 * while no daemon was connected complete them. In a cluster, the sandboxes
 * of sessions the cluster gave up on while this node was away are ended
 * (ald_adopt_orphans), and so are session directories no row owns. */
#include "airlockd/core/approval.h"
#include "airlockd/core/cluster.h"
#include "airlockd/core/daemon.h"

#include "airlockd/core/control.h"
#include "airlockd/core/process.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/netpolicy.h"
#include "airlock/settings.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <unistd.h>

static uint64_t u64(json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 ? (uint64_t)v : 0;
}

static int record_parse(struct sbs_record *rec, json_t *j)
{
    memset(rec, 0, sizeof(*rec));
    if (!json_is_object(j))
        return AL_ENOTFOUND;
    rec->init_pid = (pid_t)u64(j, "init_pid");
    rec->init_start_time = u64(j, "init_start_time");
    rec->cgroup_version = (int)json_integer_value(json_object_get(j, "cgroup_version"));
    const char *cp = json_string_value(json_object_get(j, "control_path"));
    snprintf(rec->control_path, sizeof(rec->control_path), "%s", cp ? cp : "");
    json_t *paths = json_object_get(j, "cgroup_paths");
    for (size_t i = 0; i < 3; i++) {
        const char *p = json_string_value(json_array_get(paths, i));
        snprintf(rec->cgroup_paths[i], sizeof(rec->cgroup_paths[i]), "%s", p ? p : "");
    }
    return 0;
}

/* The session's network policy in its wire form (a new reference, NULL on
 * ENOMEM) from the stored `np`: the typed policy, or a settings document as
 * stored before the policy was typed (loaded once here, as it was checked
 * when the session was created). What neither decodes becomes the default
 * policy (nothing allowed), with a warning: a restart never widens one.
 * *converted: 1 when the result is not what was stored (to be saved). */
static json_t *stored_netpolicy(const char *id, json_t *np, int *converted)
{
    *converted = 0;
    struct al_netpolicy typed;
    if (al_netpolicy_from_json(&typed, np) == 0) {
        al_netpolicy_free(&typed);
        return json_incref(np);
    }
    struct al_policy pol;
    al_policy_init(&pol);
    char *text = json_is_object(np) ? json_dumps(np, JSON_COMPACT) : NULL;
    if (text && al_settings_load_buffer(&pol, "stored settings", text, strlen(text), "/workspace",
                                        "/workspace") == 0) {
        al_log(AL_LOG_INFO, "session %s: network policy read from its stored settings", id);
    } else {
        al_log(AL_LOG_WARN, "session %s: stored network policy unreadable (%s): nothing allowed",
               id, al_error_last());
        al_policy_free(&pol);
        al_policy_init(&pol);
    }
    free(text);
    *converted = 1;
    json_t *wire = al_netpolicy_to_json(&pol.net);
    al_policy_free(&pol);
    return wire;
}

/* The session object from its stored row; *resave: 1 when what was stored
 * is in an older form (the caller saves the session once it is linked). */
static struct ald_session *session_load(const struct ald *d, json_t *pub, json_t *priv, int *resave)
{
    const char *id = json_string_value(json_object_get(pub, "id"));
    const char *user = json_string_value(json_object_get(pub, "user"));
    const char *state = json_string_value(json_object_get(pub, "state"));
    if (!id || !user || !state)
        return NULL;
    json_t *netpolicy = stored_netpolicy(id, json_object_get(priv, "netpolicy"), resave);
    struct ald_session *s = netpolicy ? ald_session_new(id, user) : NULL;
    if (!s) {
        json_decref(netpolicy);
        return NULL;
    }
    int st = ald_state_parse(state);
    s->state = st < 0 ? ALD_FAILED : (enum ald_state)st;
    const char *mode = json_string_value(json_object_get(pub, "mode"));
    s->mode = mode && strcmp(mode, "regular") == 0 ? AL_MODE_REGULAR : AL_MODE_AUTO_ALLOW;
    json_t *l = json_object_get(pub, "limits");
    s->limits.memory_mb = u64(l, "memory_mb");
    s->limits.pids = u64(l, "pids");
    s->limits.cpu = json_number_value(json_object_get(l, "cpu"));
    s->limits.ttl_s = u64(l, "ttl_s");
    s->limits.idle_s = u64(l, "idle_s");
    json_t *md = json_object_get(pub, "metadata");
    s->metadata = json_is_object(md) ? json_incref(md) : json_object();
    json_t *env = json_object_get(priv, "env");
    s->env = json_is_object(env) ? json_incref(env) : json_object();
    s->px.netpolicy = netpolicy;
    json_t *wh = json_object_get(priv, "webhook");
    s->webhook = json_is_object(wh) ? json_incref(wh) : NULL;
    json_t *git = json_object_get(priv, "git");
    if (json_is_object(git) && d->hooks.git.load(s, git) < 0)
        al_log(AL_LOG_WARN, "session %s: bad stored repository", s->id);
    /* its HTTP secrets (values read again from the store) and its CA
     * (unsealed): the netproxy gets them with the session below */
    json_t *creds = json_object_get(priv, "creds");
    if (json_is_object(creds) && d->hooks.creds.load(d, s, creds) < 0)
        al_log(AL_LOG_WARN, "session %s: credentials: %s", s->id, al_error_last());
    s->uid = (uid_t)u64(priv, "uid");
    s->procs.next = u64(priv, "next_proc");
    if (s->procs.next == 0)
        s->procs.next = 1;
    s->created_ms = u64(priv, "created_ms");
    s->last_active_ms = u64(priv, "last_active_ms");
    s->sandbox.have_record =
        record_parse(&s->sandbox.conn.rec, json_object_get(priv, "record")) == 0;
    return s;
}

/* Loads the session's running processes back into memory. */
static void procs_load(struct ald *d, struct ald_session *s)
{
    json_t *rows = NULL;
    if (d->hooks.store.proc_running(d->st, s->id, &rows) < 0) {
        json_decref(rows);
        return;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_t *pub = json_array_get(row, 0), *priv = json_array_get(row, 1);
        const char *id = json_string_value(json_object_get(pub, "id"));
        uint64_t num = 0;
        if (!id || strncmp(id, "p_", 2) != 0 || ald_parse_u64(id + 2, UINT32_MAX, &num) < 0)
            continue;
        struct ald_proc *p = calloc(1, sizeof(*p));
        if (!p)
            break;
        p->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        p->s = s;
        p->num = num;
        p->init_id = (uint32_t)u64(priv, "init_id");
        p->pid = (pid_t)u64(pub, "pid");
        p->state = ALD_P_RUNNING;
        p->background = json_is_true(json_object_get(pub, "background"));
        p->stdin_fd = -1; /* our end of its stdin went with the old daemon */
        p->tty_fd = -1;   /* and so did its terminal's master, if it had one */
        p->tty = json_is_true(json_object_get(pub, "tty"));
        p->argv = json_incref(json_object_get(pub, "argv"));
        p->started_ms = u64(priv, "started_ms");
        p->start_mono = ald_mono_ms();
        p->code = -1;
        json_t *e = json_object_get(priv, "earliest");
        p->earliest[0] = (uint64_t)json_integer_value(json_array_get(e, 0));
        p->earliest[1] = (uint64_t)json_integer_value(json_array_get(e, 1));
        p->refs = 1;
        pthread_mutex_lock(&d->lock);
        p->next = s->procs.list;
        s->procs.list = p;
        s->refs++;
        pthread_mutex_unlock(&d->lock);
    }
    json_decref(rows);
}

/* Ends a session that cannot be re-adopted. */
static void give_up(struct ald *d, struct ald_session *s, enum ald_state final, const char *reason)
{
    pthread_mutex_lock(&d->lock);
    s->state = ALD_READY; /* so that ald_session_end() tears it down */
    s->refs++;
    pthread_mutex_unlock(&d->lock);
    ald_session_end(d, s, final, reason);
    ald_session_unref(d, s);
}

int ald_adopt_all(struct ald *d)
{
    json_t *live = NULL;
    const char *self = ald_cluster_self(d);
    int err = self ? d->hooks.cluster.session_live_on(d->st, self, &live)
                   : d->hooks.store.session_live(d->st, &live);
    if (err < 0) {
        json_decref(live);
        return err;
    }
    size_t i, adopted = 0, failed = 0;
    json_t *row;
    json_array_foreach(live, i, row)
    {
        int resave = 0;
        /* `placed` (a cluster's create that had not started): as creating */
        const char *st = json_string_value(json_object_get(json_array_get(row, 0), "state"));
        int was_placed = st && strcmp(st, "placed") == 0;
        struct ald_session *s =
            session_load(d, json_array_get(row, 0), json_array_get(row, 1), &resave);
        if (!s)
            continue;
        pthread_mutex_lock(&d->lock);
        ald_session_link(d, s);
        pthread_mutex_unlock(&d->lock);
        if (resave)
            ald_session_save(d, s);
        procs_load(d, s);
        if (ald_approvals_expire_stored(d, s->id) < 0)
            al_log(AL_LOG_WARN, "session %s: pending approvals not expired: %s", s->id,
                   al_error_last());
        uint64_t max = 0;
        if (d->hooks.store.proc_max(d->st, s->id, &max) == 0 && max >= s->procs.next)
            s->procs.next = max + 1;
        if (s->state == ALD_CREATING || was_placed) {
            give_up(d, s, ALD_FAILED, "create-interrupted");
            failed++;
            continue;
        }
        if (s->state == ALD_DELETING) {
            give_up(d, s, ALD_DELETED, NULL);
            continue;
        }
        struct sbs_conn conn;
        memset(&conn, 0, sizeof(conn));
        conn.fd = -1;
        int rc = s->sandbox.have_record ? sbs_attach(&conn, &s->sandbox.conn.rec) : AL_ENOTFOUND;
        if (rc < 0) {
            al_log(AL_LOG_WARN, "session %s: sandbox gone (%s)", s->id,
                   rc == AL_ENOTFOUND ? "not found" : al_error_last());
            give_up(d, s, ALD_FAILED, "sandbox-died");
            failed++;
            continue;
        }
        pthread_mutex_lock(&d->lock);
        s->sandbox.conn = conn;
        s->sandbox.open = 1;
        pthread_mutex_unlock(&d->lock);
        if (ald_ctl_add(d, s) < 0 || d->hooks.px.session_add(d, s, conn.rec.init_pid, 0) < 0) {
            al_log(AL_LOG_WARN, "session %s: %s", s->id, al_error_last());
            give_up(d, s, ALD_FAILED, "sandbox-died");
            failed++;
            continue;
        }
        adopted++;
        ald_event(d, s->id, s->user, "state",
                  json_pack("{s:s, s:s}", "state", "ready", "reason", "re-adopted"));
    }
    json_decref(live);
    if (adopted || failed)
        al_log(AL_LOG_INFO, "re-adopted %zu sessions, %zu were gone", adopted, failed);
    return 0;
}

/* Ends the sandboxes of this node's sessions that the cluster gave up on
 * (lost, failed, deleted or expired while this node was away) and that
 * still run. */
static void end_gone(struct ald *d, const char *self)
{
    json_t *gone = NULL;
    if (d->hooks.cluster.session_gone_on(d->st, self, &gone) < 0) {
        al_log(AL_LOG_WARN, "cluster: the sessions given up on: %s", al_error_last());
        json_decref(gone);
        return;
    }
    size_t i, ended = 0;
    json_t *row;
    json_array_foreach(gone, i, row)
    {
        json_t *pub = json_is_array(row) ? json_array_get(row, 0) : json_object_get(row, "pub");
        json_t *priv = json_is_array(row) ? json_array_get(row, 1) : json_object_get(row, "priv");
        const char *id = json_string_value(json_object_get(pub, "id"));
        const char *reason = json_string_value(json_object_get(pub, "end_reason"));
        struct sbs_record rec;
        if (!id || record_parse(&rec, json_object_get(priv, "record")) < 0)
            continue;
        struct sbs_conn conn;
        memset(&conn, 0, sizeof(conn));
        conn.fd = -1;
        if (sbs_attach(&conn, &rec) < 0)
            continue; /* nothing runs for it */
        al_log(AL_LOG_WARN, "session %s: the cluster gave it up (%s); its sandbox is ended", id,
               reason ? reason : "no reason");
        if (sbs_destroy(&conn) < 0)
            al_log(AL_LOG_ERROR, "session %s: teardown: %s", id, al_error_last());
        ended++;
        if (!json_is_true(json_object_get(priv, "workspace_kept")) &&
            d->cfg->workspace_retention_s == 0) {
            char dir[PATH_MAX];
            ald_session_path(d, id, NULL, dir, sizeof(dir));
            ald_rm_tree(dir);
        }
    }
    json_decref(gone);
    if (ended)
        al_log(AL_LOG_INFO, "cluster: ended %zu sandboxes of sessions given up on", ended);
}

/* Removes <state_dir>/sessions/<id> directories that no row owns (a crash
 * between making them and the first save), and those of this node's ended
 * sessions whose workspace is not kept. */
static void sweep_dirs(struct ald *d, const char *self)
{
    DIR *dir = opendir(d->sessions_dir);
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (strncmp(e->d_name, "s_", 2) != 0 || strlen(e->d_name) >= 32)
            continue;
        int live = 0;
        pthread_mutex_lock(&d->lock);
        for (struct ald_session *s = d->sessions; s && !live; s = s->next)
            live = strcmp(s->id, e->d_name) == 0;
        pthread_mutex_unlock(&d->lock);
        if (live)
            continue;
        json_t *pub = NULL, *priv = NULL;
        int err = d->hooks.store.session_get(d->st, e->d_name, NULL, &pub, &priv);
        const char *state = json_string_value(json_object_get(pub, "state"));
        const char *node = json_string_value(json_object_get(priv, "node"));
        int st = state ? ald_state_parse(state) : -1;
        int drop = err == AL_ENOTFOUND ||
                   (err == 0 && node && strcmp(node, self) == 0 && st >= 0 && ALD_STATE_ENDED(st) &&
                    !json_is_true(json_object_get(priv, "workspace_kept")) &&
                    d->cfg->workspace_retention_s == 0);
        if (drop) {
            char path[PATH_MAX];
            ald_session_path(d, e->d_name, NULL, path, sizeof(path));
            al_log(AL_LOG_INFO, "session %s: its directory has no live row here; removed",
                   e->d_name);
            ald_rm_tree(path);
        }
        json_decref(pub);
        json_decref(priv);
    }
    closedir(dir);
}

void ald_adopt_orphans(struct ald *d)
{
    const char *self = ald_cluster_self(d);
    if (!self || !d->cluster)
        return; /* a single machine: ald_adopt_all() saw every row */
    end_gone(d, self);
    sweep_dirs(d, self);
}
