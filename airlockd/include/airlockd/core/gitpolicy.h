/* The operator's rules for the branches sessions push to: the config's "git"
 * section and the pure checks of a branch an API user asks for.
 *
 * Patterns are branch names without "refs/heads/" ("main"), or such a
 * name followed by a slash and an asterisk ("airlock/" + "*"): any valid
 * name below that prefix, as in a scoped token's push_refs. A branch
 * pattern is matched exactly; protected refs and other sessions' branches
 * are matched by collision, ignoring ASCII case: two names collide when they
 * are equal or one is a directory of the other, because an upstream on a
 * case-insensitive file system stores "Main" as "main", and git cannot hold
 * both "a" and "a/b". */
#ifndef ALD_GITPOLICY_H
#define ALD_GITPOLICY_H

#include <stddef.h>

#include <jansson.h>

#include "airlock/strlist.h"

#define ALD_SESSION_PLACEHOLDER "{session}"

struct ald_gitpolicy {
    char *session_ref;                /* "refs/heads/…{session}…": the push ref of a session */
    char *branch_pattern;             /* what an API user may name; NULL: nothing */
    struct al_strlist protected_refs; /* never a session's branch */
};

/* The defaults: session_ref "refs/heads/airlock/{session}", branch_pattern
 * "airlock/" + "*", protected_refs "main", "master", "release/" + "*".
 * 0 or AL_ENOMEM. */
int ald_gitpolicy_init(struct ald_gitpolicy *g);
void ald_gitpolicy_free(struct ald_gitpolicy *g);

/* Applies the config's "git" object `v` (`name`: the file, for messages).
 * Every key optional; unknown keys, wrong types and bad patterns are
 * AL_EINVAL with "NAME: git.KEY: reason" in al_error_last(). A session_ref
 * must be "refs/heads/" + a branch holding "{session}" once, valid for any
 * session id and outside protected_refs. `g` may be partly changed on
 * error. */
int ald_gitpolicy_load(struct ald_gitpolicy *g, const char *name, json_t *v);

/* Writes the branch of session `id` (session_ref without "refs/heads/").
 * 0, or AL_ETOOBIG when it does not fit in `size`. */
int ald_gitpolicy_session_branch(const struct ald_gitpolicy *g, const char *id, char *out,
                                 size_t size);

/* Checks a branch an API user named (already a valid branch name), in this
 * order: not colliding with protected_refs; not of the session_ref form
 * (those are the sessions' own branches, whoever asks); inside
 * branch_pattern. 0, or AL_EPERM with the reason in `why` (it names the
 * config key). */
int ald_gitpolicy_check_branch(const struct ald_gitpolicy *g, const char *branch, char *why,
                               size_t whysz);

/* 1 when `branch` matches `pattern` ("x": equal; "x/" + "*": below "x/"),
 * case-sensitively. */
int ald_branch_pattern_match(const char *pattern, const char *branch);

/* 1 when branches `a` and `b` cannot both exist upstream: equal, or one is
 * a directory of the other, ignoring ASCII case. */
int ald_branch_collides(const char *a, const char *b);

/* Splits "https://HOST/OWNER/NAME[.git]" into its names (each < size
 * bytes of [A-Za-z0-9._-]). 0 or AL_EINVAL. */
int ald_repo_parse(const char *url, char *host, char *owner, char *name, size_t size);

#endif
