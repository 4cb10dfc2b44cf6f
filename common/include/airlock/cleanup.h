/* Scope-bound cleanup for locals (after bubblewrap's utils.h).
 *
 *   cleanup_free char *s = strdup(x);     freed when s leaves scope
 *   cleanup_fd int fd = open(...);        closed when fd leaves scope (if >= 0)
 *   return steal_pointer(&s);             hands ownership on; s becomes NULL
 *   int keep = steal_fd(&fd);             same for descriptors; fd becomes -1
 */
#ifndef AIRLOCK_CLEANUP_H
#define AIRLOCK_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>

static inline void al_cleanup_freep(void *p)
{
    free(*(void **)p);
}

static inline void al_cleanup_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}

static inline void al_cleanup_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

static inline void *al_steal_pointer(void *pp)
{
    void **p = (void **)pp;
    void *v = *p;
    *p = NULL;
    return v;
}

static inline int al_steal_fd(int *fd)
{
    int v = *fd;
    *fd = -1;
    return v;
}

#define cleanup_free      __attribute__((cleanup(al_cleanup_freep)))
#define cleanup_fd        __attribute__((cleanup(al_cleanup_closep)))
#define cleanup_fclose    __attribute__((cleanup(al_cleanup_fclosep)))
#define steal_pointer(pp) al_steal_pointer(pp)
#define steal_fd(pfd)     al_steal_fd(pfd)

#endif
