/* The credential store shared through the cluster's database
 * (credsync.h; docs/cluster.md "Credentials across nodes"). */
#include "airlockd/adapters/credsync.h"
#include "airlockd/adapters/secrets.h"

#include "airlockd/adapters/store_nodes.h"
#include "airlockd/core/cluster.h"
#include "airlockd/core/config.h"
#include "airlockd/core/daemon.h"

#include "airlock/base64.h"
#include "airlock/creds_store.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CREDSYNC_PERIOD_S 2
#define CREDSYNC_AAD      "airlock cred v1:"

struct ald_credsync {
    struct ald_store *st;
    char *path, *key_path;
    int started;         /* a first pass has completed */
    int64_t applied_gen; /* the rows up to this generation are in the file */
    json_t *known;       /* scope -> entry JSON as last synced (holds secrets) */
    int have_stat;       /* file_* below describe the file as the last pass left it */
    dev_t file_dev;
    ino_t file_ino;
    off_t file_size;
    struct timespec file_mtime;
    /* the thread (ald_credsync_start) */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop, running;
};

/* Wipes every "secret" string of an entry JSON (jansson copies strings). */
static void entry_wipe(json_t *e)
{
    json_t *sec = json_object_get(e, "secret");
    if (json_is_string(sec))
        OPENSSL_cleanse((char *)json_string_value(sec), json_string_length(sec));
}

static void known_free(json_t *known)
{
    const char *k;
    json_t *v;
    json_object_foreach(known, k, v)
    {
        entry_wipe(v);
    }
    json_decref(known);
}

/* An entry as the creds library writes it in the store file (a new
 * reference holding the secret; NULL when out of memory). */
static json_t *entry_json(const struct creds_entry *e)
{
    json_t *o = json_pack("{s:s, s:s, s:s?, s:s?}", "scope", e->scope, "kind",
                          e->kind == CREDS_KIND_GITHUB_APP ? "github_app"
                          : e->kind == CREDS_KIND_HTTP     ? "http"
                                                           : "token",
                          "username", e->username, "secret", e->secret);
    if (o && e->kind == CREDS_KIND_HTTP) {
        json_t *hosts = json_array();
        for (size_t k = 0; hosts && k < e->hosts.len; k++)
            json_array_append_new(hosts, json_string(e->hosts.items[k]));
        json_object_set_new(o, "hosts", hosts);
    }
    if (o && e->kind == CREDS_KIND_GITHUB_APP) {
        json_object_set_new(o, "app_id", json_integer(e->app_id));
        json_object_set_new(o, "installation_id", json_integer(e->installation_id));
        if (e->api)
            json_object_set_new(o, "api", json_string(e->api));
        if (e->ca_file)
            json_object_set_new(o, "ca_file", json_string(e->ca_file));
    }
    return o;
}

/* Puts the entry JSON `o` (as entry_json makes it, for `scope`) into the
 * store. 0, AL_EINVAL for a malformed one, or creds_store_put's error. */
static int entry_put(creds_store *s, const char *scope, json_t *o)
{
    struct creds_entry e = {0};
    const char *sc = NULL, *kind = NULL, *user = NULL, *secret = NULL, *api = NULL, *ca = NULL;
    json_int_t app = 0, inst = 0;
    json_t *hosts = NULL;
    if (json_unpack(o, "{s:s, s:s, s?s, s:s, s?I, s?I, s?s, s?s, s?o}", "scope", &sc, "kind", &kind,
                    "username", &user, "secret", &secret, "app_id", &app, "installation_id", &inst,
                    "api", &api, "ca_file", &ca, "hosts", &hosts) < 0 ||
        strcmp(sc, scope) != 0)
        return al_error_set(AL_EINVAL, "credential %s: malformed entry in the database", scope);
    e.scope = (char *)sc;
    e.kind = strcmp(kind, "github_app") == 0 ? CREDS_KIND_GITHUB_APP
             : strcmp(kind, "http") == 0     ? CREDS_KIND_HTTP
                                             : CREDS_KIND_TOKEN;
    int err = 0;
    size_t k;
    json_t *h;
    json_array_foreach(hosts, k, h)
    {
        if (err == 0 && (!json_is_string(h) || al_strlist_push(&e.hosts, json_string_value(h)) < 0))
            err = al_error_set(AL_EINVAL, "credential %s: malformed hosts", scope);
    }
    e.username = (char *)user;
    e.secret = (char *)secret;
    e.app_id = app;
    e.installation_id = inst;
    e.api = (char *)api;
    e.ca_file = (char *)ca;
    if (err == 0)
        err = creds_store_put(s, &e);
    al_strlist_free(&e.hosts);
    return err;
}

/* The entry JSON of `scope` in the store, a new reference, or NULL. */
static json_t *store_entry(const creds_store *s, const char *scope)
{
    for (size_t i = 0; i < creds_store_count(s); i++) {
        const struct creds_entry *e = creds_store_at(s, i);
        if (strcmp(e->scope, scope) == 0)
            return entry_json(e);
    }
    return NULL;
}

/* Seals entry `o` and writes its row (a new generation). */
static int row_put(struct ald_credsync *cs, creds_store *s, const char *scope, json_t *o)
{
    if (!o)
        return ald_store_cred_put(cs->st, scope, NULL, 0, 1);
    char aad[320], *sealed = NULL;
    snprintf(aad, sizeof(aad), CREDSYNC_AAD "%s", scope);
    char *plain = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    int err = plain ? creds_store_seal(&sealed, s, aad, plain, strlen(plain)) : AL_ENOMEM;
    if (plain) {
        OPENSSL_cleanse(plain, strlen(plain));
        free(plain);
    }
    if (err == 0)
        err = ald_store_cred_put(cs->st, scope, sealed, strlen(sealed), 0);
    free(sealed);
    return err;
}

/* The entry JSON a row holds (a new reference), NULL for a tombstone; err
 * set for a row that cannot be unsealed (another master key, tampered). */
static json_t *row_entry(creds_store *s, json_t *row, int *err)
{
    const char *scope = json_string_value(json_object_get(row, "scope"));
    const char *b64 = json_string_value(json_object_get(row, "sealed"));
    *err = 0;
    if (json_is_true(json_object_get(row, "deleted")) || !b64)
        return NULL;
    unsigned char *sealed = NULL, *plain = NULL;
    size_t n = 0, plen = 0;
    char aad[320];
    snprintf(aad, sizeof(aad), CREDSYNC_AAD "%s", scope);
    json_t *o = NULL;
    if ((*err = al_base64_decode_alloc(&sealed, &n, b64, strlen(b64))) == 0 &&
        (*err = creds_store_unseal(&plain, &plen, s, aad, (const char *)sealed, n)) == 0 &&
        !(o = json_loadb((const char *)plain, plen, 0, NULL)))
        *err = al_error_set(AL_EINVAL, "credential %s: its row is not an entry", scope);
    if (plain) {
        OPENSSL_cleanse(plain, plen);
        free(plain);
    }
    free(sealed);
    return o;
}

/* The file as it is now: 1 when it differs from what the last pass left
 * (or there was none), 0 when the same. A missing file is "no file". */
static int file_changed(struct ald_credsync *cs, int record)
{
    struct stat sb;
    int have = stat(cs->path, &sb) == 0;
    int changed = !cs->have_stat || !have || sb.st_dev != cs->file_dev ||
                  sb.st_ino != cs->file_ino || sb.st_size != cs->file_size ||
                  sb.st_mtim.tv_sec != cs->file_mtime.tv_sec ||
                  sb.st_mtim.tv_nsec != cs->file_mtime.tv_nsec;
    if (record) {
        cs->have_stat = have;
        if (have) {
            cs->file_dev = sb.st_dev;
            cs->file_ino = sb.st_ino;
            cs->file_size = sb.st_size;
            cs->file_mtime = sb.st_mtim;
        }
    }
    return changed;
}

/* file -> database: the entries of `s` that differ from `known` (or, on
 * the first pass, whose scope the database never had: `db_scopes`), and
 * the scopes of `known` gone from the file. Updates `known`. */
static int push_local(struct ald_credsync *cs, creds_store *s, json_t *known, json_t *db_scopes)
{
    int err = 0;
    for (size_t i = 0; err == 0 && i < creds_store_count(s); i++) {
        const struct creds_entry *e = creds_store_at(s, i);
        if (db_scopes && json_object_get(db_scopes, e->scope))
            continue; /* first pass: the database's entry wins */
        json_t *o = entry_json(e);
        if (!o)
            return AL_ENOMEM;
        if (!json_equal(o, json_object_get(known, e->scope))) {
            err = row_put(cs, s, e->scope, o);
            if (err == 0) {
                al_log(AL_LOG_INFO, "credentials: %s from this node's store to the cluster",
                       e->scope);
                json_t *old = json_object_get(known, e->scope);
                if (old)
                    entry_wipe(old);
                json_object_set_new(known, e->scope, o); /* known holds it now */
                continue;
            }
        }
        entry_wipe(o);
        json_decref(o);
    }
    if (db_scopes)
        return err;
    /* removed here since the last pass: tombstones */
    const char *scope;
    json_t *v, *gone = json_array();
    json_object_foreach(known, scope, v)
    {
        json_t *here = store_entry(s, scope);
        if (!here)
            json_array_append_new(gone, json_string(scope));
        entry_wipe(here);
        json_decref(here);
    }
    size_t k;
    json_t *g;
    json_array_foreach(gone, k, g)
    {
        const char *sc = json_string_value(g);
        if (err == 0 && (err = row_put(cs, s, sc, NULL)) == 0) {
            al_log(AL_LOG_INFO, "credentials: %s removed on this node, removed in the cluster", sc);
            entry_wipe(json_object_get(known, sc));
            json_object_del(known, sc);
        }
    }
    json_decref(gone);
    return err;
}

/* database -> file: `rows` (ordered by gen) into `s` and `known`;
 * *changed when the file must be written. */
static int apply_rows(creds_store *s, json_t *rows, json_t *known, int *changed)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *scope = json_string_value(json_object_get(row, "scope"));
        int err;
        json_t *o = row_entry(s, row, &err);
        if (err < 0) {
            /* one bad row (another master key, tampered) must not stop the
             * others: it is logged and left out */
            al_log(AL_LOG_ERROR, "credentials: %s: %s (left out)", scope, al_error_last());
            continue;
        }
        json_t *here = store_entry(s, scope);
        if (!o) {
            if (here && creds_store_remove(s, scope) == 0) {
                *changed = 1;
                al_log(AL_LOG_INFO, "credentials: %s removed (from the cluster)", scope);
            }
            json_t *old = json_object_get(known, scope);
            if (old)
                entry_wipe(old);
            json_object_del(known, scope);
        } else {
            if (!json_equal(o, here)) {
                if ((err = entry_put(s, scope, o)) < 0) {
                    al_log(AL_LOG_ERROR, "credentials: %s: %s (left out)", scope, al_error_last());
                } else {
                    *changed = 1;
                    al_log(AL_LOG_INFO, "credentials: %s from the cluster", scope);
                }
            }
            json_t *old = json_object_get(known, scope);
            if (err == 0 && old)
                entry_wipe(old);
            if (err == 0) {
                json_object_set_new(known, scope, o); /* known holds it now */
            } else {
                entry_wipe(o);
                json_decref(o);
            }
        }
        entry_wipe(here);
        json_decref(here);
    }
    return 0;
}

int ald_credsync_run_once(struct ald_credsync *cs)
{
    creds_store *s = NULL;
    json_t *rows = NULL, *db_scopes = NULL, *known = NULL;
    int64_t max_gen = cs->applied_gen;
    int changed = 0;
    struct stat before, now;
    int had = stat(cs->path, &before) == 0;
    /* work on a copy of `known`: an error leaves the old one for a retry */
    int err = creds_store_open(&s, cs->path, cs->key_path);
    if (err == 0 && !(known = json_deep_copy(cs->known)))
        err = AL_ENOMEM;
    if (err == 0 && !cs->started) {
        /* first pass: every row; scopes the database has (or had) win */
        err = ald_store_cred_rows(cs->st, 0, &rows, &max_gen);
        db_scopes = err == 0 ? json_object() : NULL;
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            json_object_set_new(db_scopes, json_string_value(json_object_get(row, "scope")),
                                json_true());
        }
        if (err == 0)
            err = push_local(cs, s, known, db_scopes);
    } else if (err == 0) {
        if (file_changed(cs, 0))
            err = push_local(cs, s, known, NULL);
        if (err == 0)
            err = ald_store_cred_rows(cs->st, cs->applied_gen, &rows, &max_gen);
    }
    if (err == 0)
        err = apply_rows(s, rows, known, &changed);
    /* `airlock creds` wrote the file while this pass ran: not over it; the
     * next pass reads it (and its rows are applied again) */
    if (err == 0 && changed &&
        (had != (stat(cs->path, &now) == 0) ||
         (had && (now.st_ino != before.st_ino || now.st_size != before.st_size ||
                  now.st_mtim.tv_sec != before.st_mtim.tv_sec ||
                  now.st_mtim.tv_nsec != before.st_mtim.tv_nsec))))
        err = al_error_set(AL_EAGAIN, "%s changed during the sync; again in %d s", cs->path,
                           CREDSYNC_PERIOD_S);
    if (err == 0 && changed)
        err = creds_store_save(s); /* temp + rename: readers see old or new */
    if (err == 0) {
        file_changed(cs, 1);
        known_free(cs->known);
        cs->known = known;
        known = NULL;
        cs->applied_gen = max_gen;
        cs->started = 1;
    }
    known_free(known);
    json_decref(rows);
    json_decref(db_scopes);
    creds_store_free(s);
    return err;
}

int ald_credsync_new(struct ald_credsync **out, struct ald_store *st, const char *path,
                     const char *key_path)
{
    struct ald_credsync *cs = calloc(1, sizeof(*cs));
    *out = NULL;
    if (!cs)
        return AL_ENOMEM;
    cs->st = st;
    cs->path = strdup(path);
    cs->key_path = strdup(key_path);
    cs->known = json_object();
    pthread_mutex_init(&cs->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* sync_main's waits */
    pthread_cond_init(&cs->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (!cs->path || !cs->key_path || !cs->known) {
        ald_credsync_free(cs);
        return AL_ENOMEM;
    }
    *out = cs;
    return 0;
}

void ald_credsync_free(struct ald_credsync *cs)
{
    if (!cs)
        return;
    known_free(cs->known);
    free(cs->path);
    free(cs->key_path);
    pthread_mutex_destroy(&cs->lock);
    pthread_cond_destroy(&cs->cond);
    free(cs);
}

static void *sync_main(void *arg)
{
    struct ald_credsync *cs = arg;
    int failing = 0;
    pthread_mutex_lock(&cs->lock);
    while (!cs->stop) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += CREDSYNC_PERIOD_S;
        while (!cs->stop && pthread_cond_timedwait(&cs->cond, &cs->lock, &dl) != ETIMEDOUT)
            ;
        if (cs->stop)
            break;
        pthread_mutex_unlock(&cs->lock);
        if (ald_credsync_run_once(cs) < 0) {
            /* said once per outage, not every 2 s */
            if (!failing)
                al_log(AL_LOG_WARN, "credentials: not in step with the cluster: %s",
                       al_error_last());
            failing = 1;
        } else if (failing) {
            al_log(AL_LOG_INFO, "credentials: in step with the cluster again");
            failing = 0;
        }
        pthread_mutex_lock(&cs->lock);
    }
    pthread_mutex_unlock(&cs->lock);
    return NULL;
}

/* One daemon per process: the running sync (ald_credsync_start/stop). */
static struct ald_credsync *running_sync;

int ald_credsync_start(struct ald *d)
{
    const struct ald_config *c = d->cfg;
    if (!ald_cluster_self(d) || running_sync)
        return 0;
    char store[PATH_MAX], key[PATH_MAX];
    struct ald_credsync *cs = NULL;
    int err = ald_secrets_store_paths(c, store, key);
    if (err == 0)
        err = ald_credsync_new(&cs, d->st, store, key);
    if (err == 0 && (err = ald_credsync_run_once(cs)) < 0)
        err = al_error_set(err, "credentials: %s", al_error_last());
    if (err == 0) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_JOINABLE);
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old); /* signals stay the main thread's */
        int rc = pthread_create(&cs->thread, &attr, sync_main, cs);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            err = al_error_set(AL_EIO, "credentials sync thread: %s", strerror(rc));
    }
    if (err < 0) {
        ald_credsync_free(cs);
        return err;
    }
    cs->running = 1;
    running_sync = cs;
    al_log(AL_LOG_INFO, "credentials: %s kept in step with the cluster every %d s", store,
           CREDSYNC_PERIOD_S);
    return 0;
}

void ald_credsync_stop(struct ald *d)
{
    (void)d;
    struct ald_credsync *cs = running_sync;
    if (!cs)
        return;
    pthread_mutex_lock(&cs->lock);
    cs->stop = 1;
    pthread_cond_broadcast(&cs->cond);
    pthread_mutex_unlock(&cs->lock);
    if (cs->running)
        pthread_join(cs->thread, NULL);
    running_sync = NULL;
    ald_credsync_free(cs);
}
