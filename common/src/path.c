#include "airlock/path.h"
#include "airlock/error.h"

#include <stdio.h>
#include <string.h>

int al_path_join(char *out, size_t size, const char *dir, const char *name)
{
    const char *sep = (dir[0] && dir[strlen(dir) - 1] == '/') ? "" : "/";
    int n = snprintf(out, size, "%s%s%s", dir, sep, name);
    if (n < 0 || (size_t)n >= size) {
        if (size)
            out[0] = '\0';
        return AL_ETOOBIG;
    }
    return 0;
}

int al_path_within(const char *path, const char *root)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return path[0] == '/';
    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int al_path_is_dot(const char *name)
{
    return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}
