/* Pull requests through GitHub's REST API (adapters/forge.h). */
#include "airlockd/adapters/forge.h"

#include "airlockd/core/daemon.h"

#include "airlock/error.h"

int ald_forge_open_pr(struct ald *d, const char *repo_url, const char *head_branch,
                      const char *base, const char *title, const char *body, char **url_out,
                      struct ald_fault *f)
{
    (void)d, (void)repo_url, (void)head_branch, (void)base, (void)title, (void)body;
    *url_out = NULL;
    return ald_fault_set(f, ALD_FAULT_UNAVAILABLE, "unavailable", NULL,
                         "pull requests are not implemented yet");
}
