/* GitHub App installation tokens. */
#ifndef AIRLOCK_CREDS_GITHUB_H
#define AIRLOCK_CREDS_GITHUB_H

#include <stdint.h>
#include <time.h>

/* Makes an RS256 JWT for App `app_id` signed with `pem` (PKCS#1 or PKCS#8),
 * iat = now - 60, exp = now + 540. `*out` allocated; caller frees. */
int creds_github_jwt_make(char **out, int64_t app_id, const char *pem, time_t now);

/* POSTs {api}/app/installations/{id}/access_tokens narrowed to repository
 * `repo_name` with contents:write. On success `*out_token` (allocated, wipe
 * with creds_secret_free) and `*out_expires`. `ca_file` may be NULL. */
int creds_github_installation_token(char **out_token, time_t *out_expires, const char *api,
                                    const char *ca_file, int64_t app_id, int64_t installation_id,
                                    const char *pem, const char *repo_name, time_t now);

/* Parses GitHub's "2026-01-01T00:00:00Z" into `*out`. */
int creds_github_time_parse(time_t *out, const char *s);

#endif
