/* The built-in part of every policy: the workspace is writable and the
 * well-known credential stores are hidden, whatever the settings say. */
#include "airlock/sandbox.h"

#include "airlock/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "~/" is the caller's home. */
static const char *const builtin_denied[] = {
    "~/.ssh",
    "~/.aws",
    "~/.gnupg",
    "~/.kube",
    "~/.docker",
    "~/.netrc",
    "~/.git-credentials",
    "~/.config/gh",
    "~/.config/gcloud",
    "~/.config/hub",
    "~/.azure",
    "~/.npmrc",
    "~/.pypirc",
    "~/.cargo/credentials",
    "~/.cargo/credentials.toml",
    "~/.terraform.d/credentials.tfrc.json",
    "~/.vault-token",
    "~/.password-store",
    "~/.local/share/keyrings",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/ssh/*_key",
    "/etc/ssl/private",
};

int sb_policy_add_defaults(struct al_policy *policy, const char *cwd, const char *home)
{
    int err = al_strlist_push_unique(&policy->allow_write, cwd);
    for (size_t i = 0; i < sizeof(builtin_denied) / sizeof(*builtin_denied) && err == 0; i++) {
        const char *p = builtin_denied[i];
        if (p[0] != '~') {
            err = al_strlist_push_unique(&policy->deny_read, p);
            continue;
        }
        if (!home || home[0] != '/')
            continue;
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s%s", strcmp(home, "/") ? home : "", p + 1);
        if (n > 0 && (size_t)n < sizeof(path))
            err = al_strlist_push_unique(&policy->deny_read, path);
    }
    return err < 0 ? al_error_set(err, "out of memory") : 0;
}
