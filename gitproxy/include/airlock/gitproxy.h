/* airlock-gitproxy: the git smart-HTTP proxy that turns scoped tokens into
 * real upstream credentials. This interface is the key holder's: the only
 * process that holds real secrets. It never parses what a client sends: a
 * front (an exec'd zygote forking one worker per connection) does, and asks
 * it over fixed-format channels (docs/gitproxy.md, "Processes").
 *
 * In:  http://<listener>/<host>/<owner>/<name>.git/info/refs?service=…,
 *      POST …/git-upload-pack, POST …/git-receive-pack
 * Out: <upstream url of host>/<owner>/<name>.git/… with the real credential.
 */
#ifndef AIRLOCK_GITPROXY_H
#define AIRLOCK_GITPROXY_H

#include <jansson.h>
#include <stdint.h>

#include "airlock/creds.h"
#include "airlock/creds_store.h"

#define GP_UPSTREAM_URL_MAX 1024 /* longest base URL: repository URLs always fit 2 KiB */

struct gp_upstream {
    char *host;    /* as it appears in request paths, e.g. "github.com" */
    char *url;     /* base URL, e.g. "https://github.com" or "http://127.0.0.1:8080" */
    char *ca_file; /* CA bundle for https, or NULL for the system one */
    int fold_case; /* the forge's owner and repository names fold case (GitHub):
                      a token's repository matches in any case, and its spelling
                      is what goes upstream; otherwise names are byte-exact */
};

struct gp_config {
    struct creds_keyring keys;
    creds_store *store;            /* owned by the proxy once passed in */
    char *store_path;              /* the store's file, watched for changes */
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
 * the proxy, also on failure) whose connections belong to `session`; "*"
 * accepts any session (an operator listener). Starts its accept thread. */
int gp_proxy_listen_fd(gp_proxy *p, int fd, const char *session);

/* Replaces the token keys (control mode: they come from airlockd). The
 * ring is copied; the caller wipes its own. 0 or AL_EINVAL (empty). */
int gp_proxy_set_keys(gp_proxy *p, const struct creds_keyring *ring);

/* Standalone mode: reads cfg.revoked_file now and watches its directory, so
 * a change is read again (once) before the next token check. Call while
 * the file's directory is still readable. 0, or an error reading it. */
int gp_proxy_revoked_file_watch(gp_proxy *p);

/* Marks a session as revoked: its tokens are refused from now on, and a
 * request of that session still uploading to upstream is aborted before the
 * end of its body (so upstream updates no ref). */
int gp_proxy_revoke_session(gp_proxy *p, const char *session);

/* Removes a session: revokes it (above), closes its listeners (connects to
 * them are refused from now on) and shuts down its open connections. Safe
 * from any thread. Returns 0 or AL_ENOMEM. */
int gp_proxy_remove_session(gp_proxy *p, const char *session);

/* Closes the listeners of `session` without revoking it (a session whose
 * listeners are being replaced), except those on the same socket as one of
 * keep[0..nkeep). Connections already accepted go on. A later
 * gp_proxy_listen_fd() of a socket already served for the session just
 * closes the new descriptor. */
void gp_proxy_close_listeners(gp_proxy *p, const char *session, const int *keep, size_t nkeep);

/* True when `session` was revoked through this proxy (not the revoked file). */
int gp_proxy_session_is_revoked(gp_proxy *p, const char *session);

/* Credential store reloads. The proxy loads the store at start and then
 * watches its directory (inotify, set up by gp_proxy_store_watch() while
 * still privileged). A request that needs a credential first checks the
 * watch (one non-blocking read); when the file changed it asks for a reload
 * and waits up to GP_STORE_RELOAD_WAIT_S for it, so a credential added
 * before the request is the one used. Without a hook the proxy re-reads the
 * file itself (it must still be able to read it); with one (control mode)
 * the hook is called with a generation number and the reload comes back
 * through gp_proxy_store_reload(). */
#define GP_STORE_RELOAD_WAIT_S 5
typedef void (*gp_store_fn)(uint64_t gen, void *payload);
void gp_proxy_set_store_hook(gp_proxy *p, gp_store_fn fn, void *payload);

/* Starts watching cfg.store_path's directory, then re-reads the store once
 * (closing the window since the configuration was loaded). Call before
 * dropping privileges. 0 or AL_EIO. */
int gp_proxy_store_watch(gp_proxy *p);

/* Replaces the credentials with those of the store file open at `fd` (kept
 * by the caller), or with none when `fd` is -1 (the file was removed), and
 * marks reload `gen` done (also on failure: the waiting requests go on with
 * the old credentials). A file that cannot be read, decrypted or parsed
 * leaves the old credentials in place: logged, and returned. */
int gp_proxy_store_reload(gp_proxy *p, int fd, uint64_t gen);

/* Marks reload `gen` done without loading anything (the daemon could not
 * open the file: `why` is logged). */
void gp_proxy_store_reload_failed(gp_proxy *p, uint64_t gen, const char *why);

/* Called from connection threads with every push audit record (the JSON
 * object also written to the audit log; borrowed, valid during the call) and
 * the session of the token. Must not block for long. NULL removes it. */
typedef void (*gp_event_fn)(const char *session, json_t *record, void *payload);
void gp_proxy_set_event_hook(gp_proxy *p, gp_event_fn fn, void *payload);

/* Serves the control protocol (docs/control-protocol.md) on `sockfd` on the
 * calling thread until the daemon closes it. Returns AL_EIO when it was
 * closed, AL_EINVAL / AL_ETOOBIG after a malformed frame. */
int gp_control_run(gp_proxy *p, int sockfd);

/* Frees the configuration (listener threads must not be running). */
void gp_config_clear(struct gp_config *cfg);

#endif
