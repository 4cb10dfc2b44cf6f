/* Validation of API request bodies (untrusted JSON, at most max_body_bytes).
 *
 * Every parser takes (pointer, length), refuses unknown fields, wrong types
 * and out-of-range values, and describes the first problem in an ald_apierr
 * that the HTTP layer sends as the documented error body. */
#ifndef ALD_BODY_H
#define ALD_BODY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "airlockd/core/config.h"
#include "airlockd/core/requests.h"

#include "airlock/settings.h"

/* One API error: HTTP status, error code ("invalid_json", ...), the field it
 * is about ("" when none) and a message. */
struct ald_apierr {
    int status;
    const char *code;
    char field[128];
    char message[1024];
    int64_t earliest_offset; /* output_truncated: the first byte kept; else -1 */
};

/* Fills `e` and returns AL_EINVAL (for `return ald_apierr_set(...)`). */
int ald_apierr_set(struct ald_apierr *e, int status, const char *code, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define ALD_METADATA_MAX_KEYS  32
#define ALD_METADATA_MAX_BYTES 256
#define ALD_ENV_MAX            256
#define ALD_ARGV_MAX           4096

/* Parses and checks a create body against the config's default and maximum
 * limits; an empty body is `{}`. Settings are checked with
 * ald_settings_restrict_check() against the grant of `user` (NULL: none).
 * `base` and `branch` must be valid branch names (400); a `branch` outside
 * the config's git rules (ald_gitpolicy_check_branch) is a 409 conflict.
 * What depends on other sessions or the upstream is checked later. */
int ald_body_create(struct ald_create_req *out, const char *data, size_t len,
                    const struct ald_config *cfg, const char *user, struct ald_apierr *e);

/* Loads the session settings document into `policy` (home and cwd
 * `workspace`, e.g. "/workspace"; a malformed document is 400) and checks
 * that it only restricts, in either shape: a key that widens what the
 * session reaches is 403 "forbidden" naming it, unless `grant` (NULL: none)
 * grants it (grants.h): allowedAddresses entries inside the granted ranges
 * and never a never-grantable address, allowLocalBinding / allowAllDomains
 * true, requireSniMatch false; never httpProxyPort, socksProxyPort,
 * customProxy, parentProxy, mitmProxy, unix sockets, weaker isolation,
 * excludedCommands, allowUnsandboxedCommands true. allowWrite/allowRead
 * entries inside `workspace`, denyRead/denyWrite outside (400). `policy` is
 * initialised by the caller. */
int ald_settings_restrict_check(struct al_policy *policy, json_t *settings, const char *workspace,
                                const struct ald_grant *grant, struct ald_apierr *e);

int ald_body_exec(struct ald_exec_req *out, const char *data, size_t len, const char *workspace,
                  struct ald_apierr *e);

/* POST …/resize: {"rows": R, "cols": C}, each 1..SBS_TTY_MAX_DIM (4096),
 * nothing else. */
int ald_body_resize(uint32_t *rows, uint32_t *cols, const char *data, size_t len,
                    struct ald_apierr *e);

/* A text message on a terminal's WebSocket: {"resize": {"rows": R,
 * "cols": C}} (the only one so far); anything else is 400-shaped in *e. */
int ald_body_tty_message(uint32_t *rows, uint32_t *cols, const char *data, size_t len,
                         struct ald_apierr *e);

/* POST …/signal: {"signal": "TERM" | number}. */
int ald_body_signal(int *sig, const char *data, size_t len, struct ald_apierr *e);

/* Signal name ("TERM", "SIGTERM") or decimal number to a signal; -1 if none. */
int ald_signal_parse(const char *name);

/* PATCH …/policy: a settings document with only network rules
 * ({"network": {...}} or {"sandbox": {"network": {...}}}), checked like a
 * create's settings with the grant of `user`, the session's owner (NULL:
 * none). On success *settings is a new reference to the document (for the
 * "policy" event) and `net` (initialised here, freed by the caller with
 * al_netpolicy_free) the network policy it gives; on error both hold
 * nothing. On success the settings loader's warnings about the document
 * are appended to `warnings` (may be NULL; the caller frees it). */
int ald_body_policy(json_t **settings, struct al_netpolicy *net, struct al_strlist *warnings,
                    const char *data, size_t len, const struct ald_config *cfg, const char *user,
                    struct ald_apierr *e);

/* POST …/approvals/{aid}: {"decision": "allow" | "deny"} → *allow 1 or 0. */
int ald_body_decision(int *allow, const char *data, size_t len, struct ald_apierr *e);

/* 1 when `name` matches [A-Za-z_][A-Za-z0-9_]* (at most 255 bytes). */
int ald_env_name_valid(const char *name);

#endif
