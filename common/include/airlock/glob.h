/* Path glob patterns as settings use them:
 *   `*`  any run of characters within one path component (not '/')
 *   `?`  one character other than '/'
 *   `**` any run of whole components, zero or more ("/a/ ** /b" matches "/a/b")
 * A leading '.' in a component is matched by `*` (unlike the shell), so
 * "~/.*_key" and "**" + "/.env*" work as users expect.
 */
#ifndef AIRLOCK_GLOB_H
#define AIRLOCK_GLOB_H

#include <stddef.h>

/* True when `pattern` holds any glob metacharacter. */
int al_glob_has_magic(const char *pattern);

/* 1 when the absolute `path` matches the absolute `pattern`, else 0. */
int al_glob_match(const char *pattern, const char *path);

/* The longest leading run of whole components of `pattern` without magic
 * ("/home/u/ ** /.env*" -> "/home/u"), newly allocated; the caller frees it.
 * "/" when the first component has magic. NULL on ENOMEM. */
char *al_glob_literal_prefix(const char *pattern);

#endif
