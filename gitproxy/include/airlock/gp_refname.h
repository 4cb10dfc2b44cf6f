/* Ref name validation after `git check-ref-format` (without --allow-onelevel
 * and without --refspec-pattern). */
#ifndef AIRLOCK_GP_REFNAME_H
#define AIRLOCK_GP_REFNAME_H

#include <stddef.h>

#define GP_REFNAME_MAX 1024

/* True when name[0..len) is a valid full ref name: starts with "refs/", has
 * at least two components, no component starting with '.' or ending in
 * ".lock", no "..", no "@{", not "@", no control chars, space, ~ ^ : ? * [ \,
 * no leading/trailing/double '/', does not end in '.', at most
 * GP_REFNAME_MAX bytes. */
int gp_refname_valid(const char *name, size_t len);

#endif
