/* Sandbox settings: the effective policy, read from settings files of two
 * shapes and layered.
 *
 * Shapes (detected per file):
 *  1. a `settings.json` with a top-level "sandbox" object or "permissions"
 *     (its Read/Edit deny rules and WebFetch domains are applied; Claude
 *     Code's other top-level keys are accepted; unknown ones are warned
 *     about in `warnings`, a near-miss of "sandbox" is refused);
 *  2. sandbox-runtime's settings file (top-level "filesystem", "network", ...).
 *
 * Layering: al_settings_load_file() applies one file on top of the policy it
 * is given. A scalar present in the file replaces the current value; a list is
 * appended to the current list (duplicates dropped). Paths are expanded when
 * loaded: "~" and "~/x" against `home`, relative paths against `cwd`; after
 * expansion every path must be absolute. Globs (`*` inside one component, `**`
 * across components) are kept as patterns; see glob.h.
 *
 * Every key, its type and default are documented in docs/settings.md.
 *
 * network.strictAllowlist is net.strict_allowlist: a host outside the
 * allowlist is refused without asking (on the terminal in `airlock run`, for
 * an approval in an airlockd session).
 *
 * Added to the first draft of this interface (all default to "nothing"):
 * allow_all_domains, mandatory_deny_depth and deny_env (srt's
 * network.allowAllDomains, mandatoryDenySearchDepth, credentials.envVars
 * with mode "deny"); credentials.files entries with mode "deny" are added to
 * deny_read. Domain patterns are stored with ASCII letters lower-cased.
 *
 * Issue 15 (both shapes): credentials.envVars/files with mode "mask" fill
 * mask_env / mask_files (a later file's entry of the same name replaces an
 * earlier one; a name or path denied by any loaded file is dropped, with a
 * warning, after each file); network.tlsTerminate fills net.tls_terminate,
 * net.tls_exclude and tls (scalars replaced, lists appended);
 * network.requestRules appends to net.request_rules; network.reportOnly and
 * credentials.allowPlaintextInject are scalars. What needs every file
 * (a mask without tlsTerminate, injectHosts outside allowedDomains, ...) is
 * checked by al_policy_check_credentials() once the last file is loaded.
 */
#ifndef AIRLOCK_SETTINGS_H
#define AIRLOCK_SETTINGS_H

#include "airlock/netpolicy.h"
#include "airlock/strlist.h"

enum al_sandbox_mode {
    AL_MODE_AUTO_ALLOW = 0, /* run without asking */
    AL_MODE_REGULAR = 1,    /* ask before running */
};

enum al_unix_sockets {
    AL_UNIX_SOCKETS_NONE = 0, /* no host unix socket reachable (default) */
    AL_UNIX_SOCKETS_ALL = 1,  /* every host unix socket path reachable */
    AL_UNIX_SOCKETS_LIST = 2, /* only the paths in unix_socket_paths */
};

/* A credentials.envVars[i] or credentials.files[i] entry with mode "mask"
 * (deny entries go to deny_env / deny_read; deny wins: a name or path that
 * any layer denies is not kept here). */
struct al_masked {
    char *name;                     /* variable name, or absolute path for a file */
    struct al_strlist inject_hosts; /* domain patterns, each covered by allowedDomains;
                                       empty: the key was left out, meaning every
                                       allowedDomains entry (al_masked_inject_hosts) */
    char *extract;                  /* files only: POSIX ERE whose first group (or whole
                                       match) is the secret; NULL = the whole file */
};

/* network.tlsTerminate (both shapes); see also al_netpolicy.tls_terminate. */
struct al_tlsterm {
    char *ca_cert_path;               /* caCertPath: use this CA (with ca_key_path) */
    char *ca_key_path;                /*   instead of one made for the session */
    struct al_strlist extra_ca_paths; /* extraCaCertPaths: more upstream trust anchors */
    unsigned handshake_timeout_ms;    /* handshakeTimeoutMs, 0 = default (10000) */
    unsigned max_tunnels;             /* maxTunnels, 0 = no limit beyond the proxy's */
};

struct al_policy {
    /* filesystem: all entries absolute after expansion, maybe glob patterns */
    struct al_strlist allow_write; /* writable (and readable) */
    struct al_strlist deny_read;   /* neither readable nor writable */
    struct al_strlist allow_read;  /* readable again inside a deny_read dir */
    struct al_strlist deny_write;  /* readable, never writable */
    int allow_git_config;          /* .git/config writable (default 0) */
    int mandatory_deny_depth;      /* depth searched for protected files (default 3, 1..10) */

    /* network: what the egress proxy enforces (computed here, sent to the
     * netproxy as this structure: airlock/netpolicy.h) */
    struct al_netpolicy net;
    /* network: how the sandbox reaches a proxy */
    int http_proxy_port;     /* 0 = airlock's own proxy */
    int socks_proxy_port;    /* 0 = airlock's own proxy */
    char *custom_proxy;      /* NULL = none */
    int allow_local_binding; /* default 0 */
    /* where the network settings came from, for messages that say what to
     * change: the key path of the network block in the last loaded file that
     * had one ("sandbox.network" in a settings.json, "network" in an srt
     * file; default "sandbox.network") and that file's name as it was given
     * to the loader (NULL when no file had a network block; owned by the
     * policy, freed by al_policy_free()) */
    char net_key_path[16];
    char *net_file;
    /* the key prefix of the filesystem and network blocks in the shape of the
     * last loaded file: "sandbox." (settings.json, the default) or "" (srt),
     * so a message can name "sandbox.filesystem.allowGitConfig" or
     * "filesystem.allowGitConfig" as the user would write it */
    char key_prefix[16];

    enum al_unix_sockets unix_sockets;
    struct al_strlist unix_socket_paths; /* for AL_UNIX_SOCKETS_LIST */

    int weaker_nested;                   /* enableWeakerNestedSandbox, default 0 */
    struct al_strlist excluded_commands; /* basenames run outside the sandbox */
    int allow_unsandboxed;               /* allowUnsandboxedCommands, default 1 */
    enum al_sandbox_mode mode;           /* default auto-allow */

    /* environment variables never passed in, even by --pass-env (srt
     * credentials.envVars; names checked as [A-Za-z_][A-Za-z0-9_]*) */
    struct al_strlist deny_env;

    /* credentials with mode "mask" (issue 15) */
    struct al_masked *mask_env;
    size_t n_mask_env;
    struct al_masked *mask_files;
    size_t n_mask_files;
    struct al_tlsterm tls; /* meaningful when net.tls_terminate */

    /* Warnings about the files loaded into this policy, in load order, each
     * a full line without "airlock: " ("settings.json: sandbx: unknown key,
     * ignored (did you mean \"sandbox\"?)"): settings that mean nothing or
     * less than they seem to. Not part of the policy's meaning; the caller
     * shows them. */
    struct al_strlist warnings;
};

/* Fills `policy` with the defaults above (nothing allowed, nothing denied:
 * the built-in credential denials are added by the runtime, not here). */
void al_policy_init(struct al_policy *policy);

/* Frees everything `policy` owns; it may be re-initialised afterwards. */
void al_policy_free(struct al_policy *policy);

/* Reads the JSON settings file `path` (at most 1 MiB) and applies it on top
 * of `policy`. On error returns AL_ENOTFOUND (no such file), AL_EINVAL (bad
 * JSON, unknown key, wrong type, too-broad domain wildcard, non-absolute
 * path), AL_ETOOBIG or AL_EIO, with a message in al_error_last() that names
 * the file and the key, e.g.
 *   "settings.json: sandbox.network.allowedDomains[1]: \"*.com\" is too broad"
 * On error `policy` may hold part of the file; the caller discards it.
 *
 * Paths in the file are also checked against the host: an allowWrite,
 * allowRead, denyRead or denyWrite entry (or a Read()/Edit() deny rule) that
 * does not exist adds a line to policy->warnings. `/x` in a permission rule
 * is relative to the settings file's folder (the project folder for a file
 * in `.claude/`), as Claude Code defines it. */
int al_settings_load_file(struct al_policy *policy, const char *path, const char *home,
                          const char *cwd);

/* Same as al_settings_load_file() for a buffer already in memory (`len`
 * bytes, need not be NUL-terminated). `name` is used in messages. Paths are
 * not checked against the host (the buffer may describe another machine's
 * files), and a permission rule's `/x` is relative to `cwd`. */
int al_settings_load_buffer(struct al_policy *policy, const char *name, const char *data,
                            size_t len, const char *home, const char *cwd);

/* Checks what only the whole layered policy can tell, once every file is
 * loaded (`airlock run` after its last settings file, airlockd after a
 * session's settings): a masked credential (mask_env, mask_files) or a
 * request rule without net.tls_terminate; an injectHosts entry denied by
 * deniedDomains, not covered by allowedDomains (equal, or a "*.x" entry
 * covering it; allowAllDomains covers every host not denied) or covered by
 * tlsTerminate.excludeDomains; a request rule whose host excludeDomains
 * covers. Returns 0, or AL_EINVAL with a message naming the keys as the
 * user wrote them (policy->key_prefix, net_key_path), e.g.
 *   "sandbox.credentials.envVars (\"GITHUB_TOKEN\"): mode \"mask\" needs
 *    sandbox.network.tlsTerminate: without it the proxy cannot see HTTPS
 *    requests to put the real value back" */
int al_policy_check_credentials(const struct al_policy *p);

/* The hosts masked credential `m` may be put back for: its injectHosts, or,
 * when it has none (the settings left the key out), every allowedDomains
 * entry without its ":PORT", less those tlsTerminate.excludeDomains or
 * deniedDomains cover (as Claude Code and sandbox-runtime default it).
 * Appended to `out` (no duplicates). 0 or AL_ENOMEM. */
int al_masked_inject_hosts(const struct al_policy *p, const struct al_masked *m,
                           struct al_strlist *out);

/* Expands `path` ("~", "~/x", relative, absolute; globs kept) into a newly
 * allocated absolute, lexically normalised path ("//", "/./" and "/x/.."
 * folded). Returns NULL and sets al_error_last() when the result is not
 * absolute or on ENOMEM. The caller frees the result. */
char *al_settings_expand_path(const char *path, const char *home, const char *cwd);

/* Checks one domain pattern: returns 0, or AL_EINVAL with a reason in
 * al_error_last() for "", "*", "*.com"-style (wildcard over a single label),
 * a wildcard not in the leftmost position, bad characters, bad port. */
int al_settings_check_domain(const char *pattern);

/* 1 when the domain pattern `outer` (allowedDomains syntax: "host",
 * "*.domain", either with ":PORT"; ASCII case ignored) matches every host
 * the pattern `inner` matches: equal; or `outer` is "*.D" and `inner` is a
 * subdomain of D or a wildcard below it; and `outer` has no port or the
 * same port as `inner`. A bare "*" covers nothing here (callers that take
 * deniedDomains' "*" check it themselves). */
int al_settings_domain_covers(const char *outer, const char *inner);

/* Like al_settings_check_domain() and also accepts "*" and "*:PORT", which
 * in a deny list mean "every domain" (on that port). */
int al_settings_check_denied_domain(const char *pattern);

/* Checks one allowedAddresses entry: an IPv4 or IPv6 literal, optionally
 * with "/PREFIX" (1..32 or 1..128; "/0" is refused as too broad). Returns 0
 * or AL_EINVAL with a reason in al_error_last(). */
int al_settings_check_address(const char *cidr);

/* The effective policy as a pretty-printed JSON object (for --print-policy):
 * a shape-1 settings file with every field present, documented in
 * docs/settings.md; loading it back gives the same policy. Bytes of a string
 * that is not valid UTF-8 are shown as '?'. The caller frees the string;
 * NULL on ENOMEM. */
char *al_policy_to_json(const struct al_policy *policy);

#endif
