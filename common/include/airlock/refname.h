/* Git ref names, after `git check-ref-format` (without --allow-onelevel and
 * without --refspec-pattern), for every component that must judge a ref or
 * branch name it did not make. Pure functions over (pointer, length). */
#ifndef AIRLOCK_REFNAME_H
#define AIRLOCK_REFNAME_H

#include <stddef.h>

#define AL_REFNAME_MAX 1024

/* True when name[0..len) is a valid full ref name: starts with "refs/", has
 * at least two components, no empty component (no leading, trailing or
 * double '/'), no component starting with '.' or ending in ".lock", no "..",
 * no "@{", not "@", no control byte (< 0x20, 0x7f), space, ~ ^ : ? * [ \,
 * does not end in '.', is valid UTF-8 (no overlong form, surrogate, code
 * point above U+10FFFF or cut sequence; git itself takes any byte above
 * 0x7f), at most AL_REFNAME_MAX bytes. NUL bytes inside `len` are refused. */
int al_refname_valid(const char *name, size_t len);

/* True when branch[0..len) is a name `git branch` would create: refs/heads/
 * followed by it is al_refname_valid(), and it neither starts with '-' nor
 * is "HEAD" or "@" (git's names for the current commit). */
int al_refname_branch_valid(const char *branch, size_t len);

#endif
