/* airlock-gitproxy: the git smart-HTTP proxy that turns scoped tokens into
 * real upstream credentials. The only process that holds real secrets.
 *
 * In:  http://<listener>/<host>/<owner>/<name>.git/info/refs?service=…,
 *      POST …/git-upload-pack, POST …/git-receive-pack
 * Out: <upstream url of host>/<owner>/<name>.git/… with the real credential.
 */
#ifndef AIRLOCK_GITPROXY_H
#define AIRLOCK_GITPROXY_H

#include <stdint.h>

#include "airlock/creds.h"
#include "airlock/creds_store.h"

struct gp_upstream {
    char *host;    /* as it appears in request paths, e.g. "github.com" */
    char *url;     /* base URL, e.g. "https://github.com" or "http://127.0.0.1:8080" */
    char *ca_file; /* CA bundle for https, or NULL for the system one */
};

struct gp_config {
    struct creds_keyring keys;
    creds_store *store;            /* owned by the proxy once passed in */
    struct gp_upstream *upstreams; /* owned */
    size_t nupstreams;
    char *cache_dir;    /* mirrors and push spool files */
    char *revoked_file; /* one revoked session id or token id per line; may be NULL */
    char *audit_path;   /* JSON lines, one per push; NULL logs them instead */
    int leak_guard;     /* scan pushed blobs for secrets */
    int check_ff;       /* refuse non-fast-forward updates */
    uint64_t max_push;  /* largest receive-pack body accepted */
};

typedef struct gp_proxy gp_proxy;

/* Creates a proxy; takes ownership of everything `cfg` points to (cfg is
 * zeroed). It lives until the process exits. */
int gp_proxy_new(gp_proxy **out, struct gp_config *cfg);

/* Adds a listening socket (already bound and listening; ownership passes to
 * the proxy) whose connections belong to `session`; "*" accepts any
 * session (an operator listener). Starts its accept thread. */
int gp_proxy_listen_fd(gp_proxy *p, int fd, const char *session);

/* Serves one accepted connection to completion on the calling thread and
 * closes it. */
void gp_proxy_serve(gp_proxy *p, int fd, const char *session);

/* Marks a session as revoked: its tokens are refused from now on. */
int gp_proxy_revoke_session(gp_proxy *p, const char *session);

/* Frees the configuration (listener threads must not be running). */
void gp_config_clear(struct gp_config *cfg);

#endif
