#include "airlock/gp_refname.h"

#include <string.h>

static int refname_bad_char(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' ||
           c == '*' || c == '[' || c == '\\';
}

int gp_refname_valid(const char *name, size_t len)
{
    if (len == 0 || len > GP_REFNAME_MAX)
        return 0;
    if (len < 5 || memcmp(name, "refs/", 5) != 0)
        return 0;
    if (len == 1 && name[0] == '@')
        return 0;
    if (name[len - 1] == '.' || name[len - 1] == '/')
        return 0;
    size_t components = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '/') {
            unsigned char c = (unsigned char)name[i];
            if (refname_bad_char(c))
                return 0;
            if (c == '.' && i + 1 < len && name[i + 1] == '.')
                return 0;
            if (c == '@' && i + 1 < len && name[i + 1] == '{')
                return 0;
            continue;
        }
        size_t clen = i - start;
        if (clen == 0)
            return 0; /* leading or double slash */
        if (name[start] == '.')
            return 0;
        if (clen >= 5 && memcmp(name + i - 5, ".lock", 5) == 0)
            return 0;
        components++;
        start = i + 1;
    }
    return components >= 2;
}
