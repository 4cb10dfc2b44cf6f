/* The config's "forge" and "hooks" sections (docs/forge.md):
 *
 * "forge": {"hosts": {"ghe.example.com": {"api": "https://ghe.example.com/api/v3",
 *                                         "ca_file": "/etc/ssl/ghe-ca.pem"}}}
 *   the REST API base of each git host pull requests are opened on;
 *   github.com defaults to https://api.github.com.
 * "hooks": {"github": {"secret_file": "/etc/airlock/github-hook.secret",
 *                      "command": "/airlock", "host": "github.com",
 *                      "associations": ["OWNER", "MEMBER", "COLLABORATOR"],
 *                      "repos": {"octo/widget": {"user": "alice",
 *                                                "job": {POST /v1/jobs body}}}}}
 *   which repositories' comments start which job, as which user.
 */
#ifndef ALD_FORGECFG_H
#define ALD_FORGECFG_H

#include <stddef.h>

#include <jansson.h>

#include "airlock/strlist.h"

#define ALD_FORGE_MAX_HOSTS 64
#define ALD_HOOK_MAX_REPOS  1024

/* One git host's REST API. */
struct ald_forge_host {
    char *host;    /* lower case, as in a repository URL (no port) */
    char *api;     /* https://..., no trailing slash */
    char *ca_file; /* NULL: the system's CAs */
};

/* One repository's job template. */
struct ald_hook_repo {
    char *name;  /* "owner/name", lower case (GitHub's names fold case) */
    char *user;  /* the airlockd user the job runs as */
    json_t *job; /* a POST /v1/jobs body (owned); checked when a job starts */
};

struct ald_forgecfg {
    struct ald_forge_host *hosts;
    size_t n_hosts;
    /* "hooks.github"; gh_enabled: the section is there (else the route says 404) */
    int gh_enabled;
    char *gh_secret_file;              /* read at each delivery, so a new secret needs no restart */
    char *gh_command;                  /* default "/airlock" */
    char *gh_host;                     /* default "github.com": the host of the repos' URLs */
    struct al_strlist gh_associations; /* author_association values allowed */
    struct ald_hook_repo *repos;
    size_t n_repos;
};

/* Defaults: no hosts beyond github.com's built-in one, hooks off. */
int ald_forgecfg_init(struct ald_forgecfg *fc);
void ald_forgecfg_free(struct ald_forgecfg *fc);

/* Loads "forge" / "hooks" (`v`) of the config file `name`. AL_EINVAL with
 * "NAME: KEY: reason" in al_error_last(); AL_ENOMEM. */
int ald_forgecfg_load_forge(struct ald_forgecfg *fc, const char *name, json_t *v);
int ald_forgecfg_load_hooks(struct ald_forgecfg *fc, const char *name, json_t *v);

/* The API base for `host` (compared ignoring case) and its CA file (may be
 * NULL), or NULL when none is configured. Borrowed from `fc`. */
const char *ald_forgecfg_api(const struct ald_forgecfg *fc, const char *host, const char **ca_file);

/* The template of repository `full_name` ("owner/name", any case), or NULL. */
const struct ald_hook_repo *ald_forgecfg_repo(const struct ald_forgecfg *fc, const char *full_name);

#endif
