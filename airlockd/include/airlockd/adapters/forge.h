/* Pull requests through a forge's REST API (docs/forge.md): GitHub's wire
 * format (GitHub.com and GitHub Enterprise Server). The request carries the
 * REAL upstream credential airlockd holds for the repository's host, the
 * one the gitproxy injects (the credential store, adapters/secrets.c opens
 * the same file): it never passes through a sandbox. Core reaches this
 * through struct ald_hooks (core/hooks.h, `forge.open_pr`). */
#ifndef ALD_ADAPTERS_FORGE_H
#define ALD_ADAPTERS_FORGE_H

#include <stddef.h>

#include "airlockd/core/fault.h"

struct ald;

/* Opens a pull request for head_branch -> base on the repository repo_url
 * (https://HOST/OWNER/NAME, an optional ".git" suffix allowed) through the
 * forge's REST API: POST {api}/repos/OWNER/NAME/pulls with {"title",
 * "head", "base", "body"}, Authorization: Bearer <the credential the
 * credential store resolves for HOST/OWNER/NAME, a static token or a
 * GitHub App installation token>, never anything from a sandbox. {api} is
 * forge.hosts.HOST.api of the config (default https://api.github.com for
 * github.com; no default for other hosts), TLS verified (forge.hosts.HOST.
 * ca_file or the system's CAs), no redirects followed. `body` may be NULL.
 * `base` NULL: the repository's default branch as the forge says it (GET
 * {api}/repos/OWNER/NAME, "default_branch", the same credential), never a
 * name from a sandbox.
 * On success *url_out is the pull request's html_url (malloc'd, the caller
 * frees; its number is logged). Otherwise
 * AL_E* with `f` saying why: ALD_FAULT_INVALID for a repo_url or branch it
 * cannot use or no API configured for the host, ALD_FAULT_CONFLICT for 422
 * (a pull request already exists, or GitHub's validation failed; its
 * message quoted), ALD_FAULT_FORBIDDEN for 401/403 (the credential was
 * refused), ALD_FAULT_NOT_FOUND for 404, ALD_FAULT_UPSTREAM for any other
 * answer or a transport failure. The token never appears in `f` or in a
 * log line. */
int ald_forge_open_pr(struct ald *d, const char *repo_url, const char *head_branch,
                      const char *base, const char *title, const char *body, char **url_out,
                      struct ald_fault *f);

#endif
