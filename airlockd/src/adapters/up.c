/* `airlockd up` (= `airlock up`): the single-machine default. Prepares a
 * state dir once (master key, token key, gitproxy and airlockd
 * configurations, an admin user with an API key printed once), then the
 * caller runs the daemon with both proxies in the foreground. */
#include "airlockd/adapters/up.h"

#include "airlockd/adapters/admin.h"

#include "airlock/creds.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes `doc` to `path` (mode 0600) unless the file exists. */
static int write_once(const char *path, json_t *doc)
{
    int err = 0;
    if (!doc)
        return AL_ENOMEM;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = errno == EEXIST ? 0 : al_error_set_errno(AL_EIO, errno, "%s", path);
    } else {
        char *text = json_dumps(doc, JSON_INDENT(2));
        size_t len = text ? strlen(text) : 0;
        if (!text || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
            err = al_error_set_errno(AL_EIO, errno, "writing %s", path);
        free(text);
        close(fd);
    }
    json_decref(doc);
    return err;
}

/* A gitproxy.json written by an earlier `airlock up` lists the token key
 * the gitproxy now gets from airlockd: that entry (exactly what was
 * written: "k1" in the state dir's token.key) is removed, atomically, the
 * rest kept. An operator's own token_keys stay (the gitproxy warns about
 * them by name). */
static int gitproxy_conf_migrate(const char *gp, const char *token)
{
    json_error_t je;
    json_t *conf = json_load_file(gp, JSON_REJECT_DUPLICATES, &je);
    if (!conf)
        return al_error_set(AL_EINVAL, "%s: %s", gp, je.text);
    json_t *keys = json_object_get(conf, "token_keys");
    json_t *k0 = json_array_get(keys, 0);
    const char *kid = json_string_value(json_object_get(k0, "kid"));
    const char *file = json_string_value(json_object_get(k0, "file"));
    int ours = json_array_size(keys) == 1 && json_object_size(k0) == 2 && kid &&
               strcmp(kid, "k1") == 0 && file && strcmp(file, token) == 0;
    int err = 0;
    if (ours) {
        char tmp[PATH_MAX + 8];
        json_object_del(conf, "token_keys");
        snprintf(tmp, sizeof(tmp), "%s.new", gp);
        unlink(tmp);
        if (json_dump_file(conf, tmp, JSON_INDENT(2)) < 0 || chmod(tmp, 0600) < 0 ||
            rename(tmp, gp) < 0) {
            err = al_error_set_errno(AL_EIO, errno, "rewriting %s", gp);
            unlink(tmp);
        } else {
            al_log(AL_LOG_INFO, "%s: token_keys removed (airlockd sends the token key now)", gp);
        }
    }
    json_decref(conf);
    return err;
}

static int path_in(char *out, size_t size, const char *dir, const char *leaf)
{
    int n = snprintf(out, size, "%s/%s", dir, leaf);
    return n > 0 && (size_t)n < size ? 0 : al_error_set(AL_ETOOBIG, "state dir path too long");
}

int ald_up_prepare(const char *state_dir, char *config_out, size_t size)
{
    char master[PATH_MAX], token[PATH_MAX], gp[PATH_MAX], store[PATH_MAX], cache[PATH_MAX],
        audit[PATH_MAX];
    if (state_dir[0] != '/')
        return al_error_set(AL_EINVAL, "--state-dir must be an absolute path");
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
        return al_error_set_errno(AL_EIO, errno, "mkdir %s", state_dir);
    int err = 0;
    if ((err = path_in(master, sizeof(master), state_dir, "master.key")) < 0 ||
        (err = path_in(token, sizeof(token), state_dir, "token.key")) < 0 ||
        (err = path_in(gp, sizeof(gp), state_dir, "gitproxy.json")) < 0 ||
        (err = path_in(store, sizeof(store), state_dir, "creds.store")) < 0 ||
        (err = path_in(audit, sizeof(audit), state_dir, "git-audit.jsonl")) < 0 ||
        (err = path_in(config_out, size, state_dir, "airlockd.json")) < 0)
        return err;
    /* The cache lives beside the state dir, not in it: the state dir is
     * root-only (0700) and the gitproxy spools pushes there as its user. */
    size_t len = strlen(state_dir);
    while (len > 1 && state_dir[len - 1] == '/')
        len--;
    int n = snprintf(cache, sizeof(cache), "%.*s-gitproxy-cache", (int)len, state_dir);
    if (n < 0 || (size_t)n >= sizeof(cache))
        return al_error_set(AL_ETOOBIG, "state dir path too long");
    const char *keys[] = {master, token};
    for (int i = 0; i < 2; i++) {
        if (access(keys[i], F_OK) == 0)
            continue;
        if ((err = creds_key_generate(keys[i])) < 0)
            return err;
        al_log(AL_LOG_INFO, "generated %s", keys[i]);
    }
    /* The token key is airlockd's: it mints with it and sends it to the
     * gitproxy over the control socket (no component reads the other's
     * configuration). */
    err = write_once(gp, json_pack("{s:s, s:s, s:{s:{s:s, s:b}}, s:s, s:s, s:b}", "store", store,
                                   "master_key", master, "upstreams", "github.com", "url",
                                   "https://github.com", "fold_case", 1, "cache_dir", cache,
                                   "audit_log", audit, "leak_guard", 1));
    if (err == 0)
        err = gitproxy_conf_migrate(gp, token);
    if (err == 0)
        err = write_once(config_out,
                         json_pack("{s:s, s:{s:s, s:[{s:s, s:s}], s:s}}", "state_dir", state_dir,
                                   "proxies", "gitproxy_config", gp, "token_keys", "kid", "k1",
                                   "file", token, "credential_store", store));
    if (err < 0)
        return err;
    /* the admin user and its key, once: the key is shown only now */
    char *add[] = {"admin", "--state-dir", (char *)state_dir, "user",
                   "add",   "admin",       "--admin",         NULL};
    int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved >= 0 && null >= 0)
        dup2(null, STDERR_FILENO); /* "exists" is the normal case after the first run */
    int added = ald_admin_main("airlockd", 7, add) == 0;
    if (saved >= 0) {
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
    if (null >= 0)
        close(null);
    if (added) {
        char *key[] = {"admin",  "--state-dir", (char *)state_dir, "key",        "create",
                       "--user", "admin",       "--name",          "airlock-up", NULL};
        printf("admin API key (shown once, keep it):\n");
        fflush(stdout);
        if (ald_admin_main("airlockd", 9, key) != 0)
            return al_error_set(AL_EIO, "could not create the admin API key");
    }
    fflush(stdout);
    return 0;
}
