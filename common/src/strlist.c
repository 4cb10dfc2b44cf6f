#include "airlock/strlist.h"
#include "airlock/error.h"

#include <stdlib.h>
#include <string.h>

int al_strlist_push_owned(struct al_strlist *list, char *s)
{
    if (!s)
        return AL_ENOMEM;
    if (list->len + 1 >= list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 8;
        char **items = realloc(list->items, cap * sizeof(*items));
        if (!items) {
            free(s);
            return AL_ENOMEM;
        }
        list->items = items;
        list->cap = cap;
    }
    list->items[list->len++] = s;
    list->items[list->len] = NULL;
    return 0;
}

int al_strlist_push(struct al_strlist *list, const char *s)
{
    return al_strlist_push_owned(list, strdup(s));
}

long al_strlist_find(const struct al_strlist *list, const char *s)
{
    for (size_t i = 0; i < list->len; i++)
        if (strcmp(list->items[i], s) == 0)
            return (long)i;
    return -1;
}

int al_strlist_push_unique(struct al_strlist *list, const char *s)
{
    if (al_strlist_find(list, s) >= 0)
        return 0;
    return al_strlist_push(list, s);
}

void al_strlist_free(struct al_strlist *list)
{
    for (size_t i = 0; i < list->len; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->len = 0;
    list->cap = 0;
}
