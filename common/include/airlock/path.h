/* Small path helpers on caller buffers. */
#ifndef AIRLOCK_PATH_H
#define AIRLOCK_PATH_H

#include <stddef.h>

/* Writes "dir/name" into out (size `size`); "/" + name when dir is "/".
 * Returns 0, or AL_ETOOBIG when it does not fit (out then holds ""). */
int al_path_join(char *out, size_t size, const char *dir, const char *name);

/* 1 when `path` is `root` or lies below it (component-wise). */
int al_path_within(const char *path, const char *root);

/* 1 for the directory entries "." and "..". */
int al_path_is_dot(const char *name);

#endif
