/* The config's "forge" and "hooks" sections (core/forgecfg.h). */
#include "airlockd/core/forgecfg.h"

#include "airlock/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int ald_forgecfg_init(struct ald_forgecfg *fc)
{
    memset(fc, 0, sizeof(*fc));
    return 0;
}

static void repos_free(struct ald_forgecfg *fc)
{
    for (size_t i = 0; i < fc->n_repos; i++) {
        free(fc->repos[i].name);
        free(fc->repos[i].user);
        json_decref(fc->repos[i].job);
    }
    free(fc->repos);
    fc->repos = NULL;
    fc->n_repos = 0;
}

static void hosts_free(struct ald_forgecfg *fc)
{
    for (size_t i = 0; i < fc->n_hosts; i++) {
        free(fc->hosts[i].host);
        free(fc->hosts[i].api);
        free(fc->hosts[i].ca_file);
    }
    free(fc->hosts);
    fc->hosts = NULL;
    fc->n_hosts = 0;
}

static void hooks_clear(struct ald_forgecfg *fc)
{
    repos_free(fc);
    free(fc->gh_secret_file);
    free(fc->gh_command);
    free(fc->gh_host);
    fc->gh_secret_file = fc->gh_command = fc->gh_host = NULL;
    al_strlist_free(&fc->gh_associations);
    fc->gh_enabled = 0;
}

void ald_forgecfg_free(struct ald_forgecfg *fc)
{
    hosts_free(fc);
    hooks_clear(fc);
}

static int fail(const char *name, const char *key, const char *what)
{
    return al_error_set(AL_EINVAL, "%s: %s: %s", name, key, what);
}

/* Lower-cases a host name; 0 when it is [a-z0-9.-]+ with an optional
 * ":PORT" (1..253 bytes). */
static int host_norm(char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (h[i] >= 'A' && h[i] <= 'Z')
            h[i] = (char)(h[i] - 'A' + 'a');
        if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= '0' && h[i] <= '9') || h[i] == '.' ||
              h[i] == '-' || h[i] == ':'))
            return -1;
    }
    return 0;
}

/* A non-empty string of at most `max` bytes without NUL, copied. */
static int str_dup(const char *name, const char *key, json_t *v, size_t max, char **out)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) != json_string_length(v) || !s[0] || strlen(s) > max)
        return fail(name, key, "expected a non-empty string");
    if (!(*out = strdup(s)))
        return AL_ENOMEM;
    return 0;
}

/* An API base: https://HOST[:PORT][/PATH], no userinfo, query or fragment,
 * no control or space characters; trailing slashes dropped. */
static int api_check(char *api)
{
    if (strncmp(api, "https://", 8) != 0 || !api[8] || api[8] == '/')
        return -1;
    for (const char *p = api; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '@' || *p == '?' || *p == '#' ||
            *p == '\\')
            return -1;
    size_t n = strlen(api);
    while (n > 8 && api[n - 1] == '/')
        api[--n] = '\0';
    return 0;
}

static int load_host(struct ald_forge_host *h, const char *name, const char *host, json_t *v)
{
    char key[320];
    snprintf(key, sizeof(key), "forge.hosts.%.253s", host);
    if (!json_is_object(v))
        return fail(name, key, "expected an object");
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (strcmp(k, "api") && strcmp(k, "ca_file")) {
            char kk[400];
            snprintf(kk, sizeof(kk), "%s.%.40s", key, k);
            return fail(name, kk, "unknown key");
        }
    }
    int err;
    if ((err = str_dup(name, key, json_object_get(v, "api"), 512, &h->api)) < 0)
        return err == AL_ENOMEM ? err : fail(name, key, "\"api\": expected a string");
    if (api_check(h->api) < 0)
        return fail(name, key, "\"api\" must be an https:// URL without user, query or fragment");
    x = json_object_get(v, "ca_file");
    if (x && !json_is_null(x)) {
        if ((err = str_dup(name, key, x, 4000, &h->ca_file)) < 0)
            return err;
        if (h->ca_file[0] != '/')
            return fail(name, key, "\"ca_file\" must be an absolute path");
    }
    return 0;
}

int ald_forgecfg_load_forge(struct ald_forgecfg *fc, const char *name, json_t *v)
{
    if (!json_is_object(v))
        return fail(name, "forge", "expected an object");
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (strcmp(k, "hosts")) {
            char key[64];
            snprintf(key, sizeof(key), "forge.%.40s", k);
            return fail(name, key, "unknown key");
        }
    }
    json_t *hosts = json_object_get(v, "hosts");
    if (!hosts)
        return 0;
    if (!json_is_object(hosts) || json_object_size(hosts) > ALD_FORGE_MAX_HOSTS)
        return fail(name, "forge.hosts", "expected an object of at most 64 hosts");
    hosts_free(fc);
    if (!(fc->hosts = calloc(json_object_size(hosts) + 1, sizeof(*fc->hosts))))
        return AL_ENOMEM;
    json_object_foreach(hosts, k, x)
    {
        struct ald_forge_host *h = &fc->hosts[fc->n_hosts++];
        int err;
        if (!(h->host = strdup(k)))
            return AL_ENOMEM;
        if (host_norm(h->host) < 0)
            return fail(name, "forge.hosts",
                        "keys must be host names ([a-z0-9.-], optional :PORT)");
        if ((err = load_host(h, name, h->host, x)) < 0)
            return err;
    }
    return 0;
}

/* "owner/name": [A-Za-z0-9._-]+ "/" [A-Za-z0-9._-]+, lower-cased. */
static int repo_norm(char *r)
{
    size_t n = strlen(r), slash = 0, at = 0;
    if (n < 3 || n > 200)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (r[i] >= 'A' && r[i] <= 'Z')
            r[i] = (char)(r[i] - 'A' + 'a');
        if (r[i] == '/') {
            slash++;
            at = i;
        } else if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '.' ||
                     r[i] == '_' || r[i] == '-'))
            return -1;
    }
    return slash == 1 && at > 0 && at < n - 1 ? 0 : -1;
}

/* An airlockd user name: [a-z0-9][a-z0-9._-]{0,62} (adapters/store.h). */
static int user_valid(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > 63 || u[0] == '.' || u[0] == '_' || u[0] == '-')
        return 0;
    return strspn(u, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int load_repo(struct ald_hook_repo *r, const char *name, const char *full, json_t *v)
{
    char key[300];
    snprintf(key, sizeof(key), "hooks.github.repos.%.200s", full);
    if (!json_is_object(v))
        return fail(name, key, "expected an object {\"user\", \"job\"}");
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (strcmp(k, "user") && strcmp(k, "job")) {
            char kk[360];
            snprintf(kk, sizeof(kk), "%s.%.40s", key, k);
            return fail(name, kk, "unknown key");
        }
    }
    int err = str_dup(name, key, json_object_get(v, "user"), 63, &r->user);
    if (err == AL_ENOMEM)
        return err;
    if (err < 0 || !user_valid(r->user))
        return fail(name, key, "\"user\" must name an airlockd user");
    json_t *job = json_object_get(v, "job");
    if (!json_is_object(job))
        return fail(name, key, "\"job\" must be an object (a POST /v1/jobs body)");
    r->job = json_incref(job);
    return 0;
}

static int load_github(struct ald_forgecfg *fc, const char *name, json_t *v)
{
    static const char *const names[] = {"secret_file",  "command", "host",
                                        "associations", "repos",   NULL};
    if (!json_is_object(v))
        return fail(name, "hooks.github", "expected an object");
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        int known = 0;
        for (size_t i = 0; names[i]; i++)
            known |= strcmp(k, names[i]) == 0;
        if (!known) {
            char key[80];
            snprintf(key, sizeof(key), "hooks.github.%.40s", k);
            return fail(name, key, "unknown key");
        }
    }
    hooks_clear(fc);
    fc->gh_enabled = 1;
    int err;
    if ((err = str_dup(name, "hooks.github.secret_file", json_object_get(v, "secret_file"), 4000,
                       &fc->gh_secret_file)) < 0)
        return err;
    if (fc->gh_secret_file[0] != '/')
        return fail(name, "hooks.github.secret_file", "must be an absolute path");
    x = json_object_get(v, "command");
    err = x ? str_dup(name, "hooks.github.command", x, 64, &fc->gh_command)
            : ((fc->gh_command = strdup("/airlock")) ? 0 : AL_ENOMEM);
    if (err < 0)
        return err;
    for (const char *p = fc->gh_command; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return fail(name, "hooks.github.command", "must be one word (no space)");
    x = json_object_get(v, "host");
    err = x ? str_dup(name, "hooks.github.host", x, 253, &fc->gh_host)
            : ((fc->gh_host = strdup("github.com")) ? 0 : AL_ENOMEM);
    if (err < 0)
        return err;
    if (host_norm(fc->gh_host) < 0)
        return fail(name, "hooks.github.host", "must be a host name");
    x = json_object_get(v, "associations");
    if (x) {
        size_t i;
        json_t *e;
        if (!json_is_array(x) || json_array_size(x) > 16)
            return fail(name, "hooks.github.associations", "expected an array of strings");
        json_array_foreach(x, i, e)
        {
            const char *s = json_string_value(e);
            if (!s || !s[0] || strlen(s) > 32 ||
                strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != strlen(s))
                return fail(name, "hooks.github.associations",
                            "expected GitHub author_association values (\"OWNER\", ...)");
            if ((err = al_strlist_push(&fc->gh_associations, s)) < 0)
                return err;
        }
    } else {
        static const char *const def[] = {"OWNER", "MEMBER", "COLLABORATOR"};
        for (size_t i = 0; i < 3; i++)
            if ((err = al_strlist_push(&fc->gh_associations, def[i])) < 0)
                return err;
    }
    json_t *repos = json_object_get(v, "repos");
    if (!repos)
        return 0;
    if (!json_is_object(repos) || json_object_size(repos) > ALD_HOOK_MAX_REPOS)
        return fail(name, "hooks.github.repos", "expected an object of at most 1024 repositories");
    if (!(fc->repos = calloc(json_object_size(repos) + 1, sizeof(*fc->repos))))
        return AL_ENOMEM;
    json_object_foreach(repos, k, x)
    {
        struct ald_hook_repo *r = &fc->repos[fc->n_repos++];
        if (!(r->name = strdup(k)))
            return AL_ENOMEM;
        if (repo_norm(r->name) < 0)
            return fail(name, "hooks.github.repos", "keys must be \"owner/name\"");
        for (size_t i = 0; i + 1 < fc->n_repos; i++)
            if (strcmp(fc->repos[i].name, r->name) == 0)
                return fail(name, "hooks.github.repos", "the same repository twice");
        if ((err = load_repo(r, name, k, x)) < 0)
            return err;
    }
    return 0;
}

int ald_forgecfg_load_hooks(struct ald_forgecfg *fc, const char *name, json_t *v)
{
    if (!json_is_object(v))
        return fail(name, "hooks", "expected an object");
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (strcmp(k, "github")) {
            char key[64];
            snprintf(key, sizeof(key), "hooks.%.40s", k);
            return fail(name, key, "unknown key");
        }
    }
    x = json_object_get(v, "github");
    return x ? load_github(fc, name, x) : 0;
}

const char *ald_forgecfg_api(const struct ald_forgecfg *fc, const char *host, const char **ca_file)
{
    *ca_file = NULL;
    for (size_t i = 0; i < fc->n_hosts; i++)
        if (strcasecmp(fc->hosts[i].host, host) == 0) {
            *ca_file = fc->hosts[i].ca_file;
            return fc->hosts[i].api;
        }
    return strcasecmp(host, "github.com") == 0 ? "https://api.github.com" : NULL;
}

const struct ald_hook_repo *ald_forgecfg_repo(const struct ald_forgecfg *fc, const char *full_name)
{
    for (size_t i = 0; i < fc->n_repos; i++)
        if (strcasecmp(fc->repos[i].name, full_name) == 0)
            return &fc->repos[i];
    return NULL;
}
