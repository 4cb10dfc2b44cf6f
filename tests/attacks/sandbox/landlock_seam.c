/* See landlock_seam.h. */
#include "landlock_seam.h"

#include "sandbox_int.h"

int seam_landlock_restrict(const struct al_policy *policy, const char *cwd, const char *home,
                           enum seam_landlock_mode mode)
{
    struct sb_config cfg = {.policy = policy, .cwd = cwd, .home = home};
    struct sb_plan plan = {0};
    int err = sb_plan_build(&plan, &cfg);
    if (err < 0)
        goto out;
    err = mode == SEAM_LANDLOCK_WEAKER ? sb_landlock_apply_weaker(&plan) : sb_landlock_apply(&plan);
out:
    sb_plan_remove_placeholders(&plan);
    sb_plan_free(&plan);
    return err;
}
