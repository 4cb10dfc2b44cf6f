/* What a client asks of core, once the api has parsed and checked it: a
 * session to create, a command to run. Each owns what it points to. */
#ifndef ALD_CORE_REQUESTS_H
#define ALD_CORE_REQUESTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "airlock/settings.h"

#include "airlockd/core/config.h"

#define ALD_CREDS_MAX        16 /* "credentials" entries of one session */
#define ALD_INJECT_HOSTS_MAX 32 /* injectHosts of one entry */

/* One entry of a create's "credentials": the HTTP secret `secret` of the
 * credential store, given to every command as `env`=its sentinel, whose
 * real value the egress proxy puts back only in requests to
 * `inject_hosts`. Checked by the api (names, grant, hosts covered by the
 * session's allowedDomains); the secret's existence and its stored hosts by
 * the store's adapter at create. */
struct ald_cred_req {
    char *secret;
    char *env;
    struct al_strlist inject_hosts; /* lower case, allowedDomains syntax */
};

/* A session to create (POST /v1/sessions). Owns everything it points to; free with
 * ald_create_req_free(). */
struct ald_create_req {
    /* the settings, loaded and checked once (home and cwd "/workspace");
     * al_policy_init() defaults when the body has none. The sandbox and the
     * netproxy are built from this, never from the document again. */
    struct al_policy policy;
    struct ald_limits limits;
    json_t *env;                /* object of strings (never NULL after success) */
    int mode;                   /* AL_MODE_AUTO_ALLOW or AL_MODE_REGULAR */
    json_t *metadata;           /* object of strings (never NULL after success) */
    char *repo;                 /* NULL or "https://HOST/OWNER/NAME[.git]" */
    char *base;                 /* NULL: the upstream's default branch */
    char *branch;               /* NULL: the config's git.session_ref for the session */
    struct ald_cred_req *creds; /* "credentials", n_creds of them */
    size_t n_creds;
    json_t *webhook; /* "webhook" as given (checked by ald_webhook_session_prepare), or NULL */
};

void ald_create_req_free(struct ald_create_req *r);

/* A command to run (POST /v1/sessions/{id}/exec). Free with
 * ald_exec_req_free(). */
struct ald_exec_req {
    char **argv;       /* NULL-terminated; for `shell`: /bin/sh -c CMD */
    json_t *argv_json; /* the same as a JSON array (for the process object) */
    json_t *env;       /* object of strings, never NULL after success */
    char *cwd;         /* absolute inside the sandbox */
    unsigned char *stdin_data;
    size_t stdin_len;
    int has_stdin;
    uint32_t timeout_s;
    int background;
    int merge_stderr;
    int notices;         /* foreground: "notice" lines for the session's network
                            approvals and refusals while the command runs */
    int tty;             /* "tty": run on a terminal of rows x cols */
    uint32_t rows, cols; /* 1..SBS_TTY_MAX_DIM */
};

void ald_exec_req_free(struct ald_exec_req *r);

#endif
