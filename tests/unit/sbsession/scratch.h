/* Scratch directory trees for the sandbox's unit tests (plan.c, protect.c,
 * landlock_rules.c): a fresh directory under /tmp, files and directories
 * made in it by relative path, and its removal. Every helper fails the
 * running cmocka test when the file system says no, so callers check
 * nothing. */
#ifndef AIRLOCK_TEST_SBSESSION_SCRATCH_H
#define AIRLOCK_TEST_SBSESSION_SCRATCH_H

#include <limits.h>

struct scratch {
    char root[PATH_MAX]; /* realpath of the scratch directory */
};

/* Makes a fresh directory /tmp/<prefix>-XXXXXX and records its realpath. */
void scratch_make(struct scratch *s, const char *prefix);

/* out (PATH_MAX bytes) = root/rel. */
void scratch_path(char *out, const struct scratch *s, const char *rel);

/* Makes root/rel and its missing parents (mkdir -p). */
void scratch_mkdirs(const struct scratch *s, const char *rel);

/* Makes root/rel an empty file, unless it exists. */
void scratch_touch(const struct scratch *s, const char *rel);

/* Writes `text` to root/rel, replacing what was there. */
void scratch_put(const struct scratch *s, const char *rel, const char *text);

/* Removes the tree (symbolic links, not what they point to). */
void scratch_remove(const struct scratch *s);

#endif
