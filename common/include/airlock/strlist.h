/* A growable list of owned, NUL-terminated strings. */
#ifndef AIRLOCK_STRLIST_H
#define AIRLOCK_STRLIST_H

#include <stddef.h>

struct al_strlist {
    char **items; /* owned; items[len] is NULL when len > 0 */
    size_t len;
    size_t cap;
};

#define AL_STRLIST_INIT                                                                            \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Appends a copy of `s`. 0 or AL_ENOMEM. */
int al_strlist_push(struct al_strlist *list, const char *s);

/* Appends a copy of `s` unless an equal string is already there. */
int al_strlist_push_unique(struct al_strlist *list, const char *s);

/* Appends `s` itself (ownership passes to the list, even on failure). */
int al_strlist_push_owned(struct al_strlist *list, char *s);

/* Index of the first item equal to `s`, or -1. */
long al_strlist_find(const struct al_strlist *list, const char *s);

/* Frees every item and the array; the list is empty and reusable. */
void al_strlist_free(struct al_strlist *list);

#endif
