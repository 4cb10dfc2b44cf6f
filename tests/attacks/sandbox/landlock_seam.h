/* The one place tests/attacks/sandbox/landlock_only.c reaches into the
 * sandbox runtime's internals (session/src): build the mount plan for a
 * policy the way sb_run() and sb_run_weaker() do, and apply the Landlock
 * ruleset made from it to the calling thread. When session/src moves or is
 * restructured, re-point landlock_seam.c and nothing else. */
#ifndef AIRLOCK_LANDLOCK_SEAM_H
#define AIRLOCK_LANDLOCK_SEAM_H

#include "airlock/settings.h"

enum seam_landlock_mode {
    SEAM_LANDLOCK_SANDBOX, /* the rules of a full sandbox (sb_landlock_apply) */
    SEAM_LANDLOCK_WEAKER,  /* the weaker mode's: denied paths hidden too */
};

/* Builds the plan for `policy` (after sb_policy_add_defaults()) with
 * workspace `cwd` and home `home`, and restricts the calling thread with
 * the Landlock rules of `mode`. Irreversible; meant for a child process.
 * Returns 0, AL_EUNSUPP when the kernel has no Landlock, or another AL_E*
 * code (al_error_last()). Placeholders the plan made are removed before it
 * returns. */
int seam_landlock_restrict(const struct al_policy *policy, const char *cwd, const char *home,
                           enum seam_landlock_mode mode);

#endif
