/* A session's git repository: its branch, its scoped token, the clone into
 * the workspace. Core reaches it through struct ald_hooks (core/hooks.h). */
#ifndef ALD_ADAPTERS_GITREPO_H
#define ALD_ADAPTERS_GITREPO_H

#include <jansson.h>

struct ald;
struct ald_session;
struct ald_create_req;
#include "airlockd/core/fault.h"

/* Decides the branch of a new session `id` on req->repo (req->branch, or
 * the config's git.session_ref) and refuses (ALD_FAULT_CONFLICT in `f`) one that is, or
 * collides with, the branch of a session recorded in the store on the same
 * repository. *out: {repo, branch, base} for s->git (new reference). */
int ald_git_plan(struct ald *d, const char *id, const struct ald_create_req *req, json_t **out,
                 struct ald_fault *f);
/* The same against the live sessions (caller holds d->lock, and links the
 * new session in the same hold, so two creates cannot both claim one). */
int ald_git_live_clash(struct ald *d, json_t *git, struct ald_fault *f);
/* Mints the session's scoped token for the repository and branch in s->git
 * (fetch, push to that branch only, expiry = TTL) and sets s->git (adding
 * the token) and s->gitenv. */
int ald_git_setup(struct ald *d, struct ald_session *s);
/* Sets s->git / s->gitenv from a stored {repo, branch, base, token}. */
int ald_git_load(struct ald_session *s, json_t *git);
/* Clones the repository into /workspace from inside the sandbox, on the
 * session's branch (no-op without a repository). AL_EEXISTS (message in
 * al_error_last()) when the clone shows the branch is the upstream's
 * default branch or exists there: the create is refused (409). */
int ald_git_clone(struct ald *d, struct ald_session *s);

#endif
