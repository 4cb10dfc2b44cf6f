/* libFuzzer: al_refname_valid() and al_refname_branch_valid() on any bytes.
 * Besides not crashing or reading past `size`, an accepted name must keep
 * the promises the callers rely on: no "..", no "@{", no control byte or
 * space, no empty component, and "refs/heads/" + an accepted branch is an
 * accepted ref. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/refname.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c == 0x7f || c == '\\' || c == '*' || c == '?' || c == '[' || c == ':')
            __builtin_trap();
        if (i + 1 < n && ((c == '.' && s[i + 1] == '.') || (c == '@' && s[i + 1] == '{') ||
                          (c == '/' && s[i + 1] == '/')))
            __builtin_trap();
    }
    if (n == 0 || s[n - 1] == '/' || s[n - 1] == '.')
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > AL_REFNAME_MAX + 16)
        return 0;
    /* an exact-size copy, so ASan sees any read past the end */
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    if (al_refname_valid(s, size)) {
        check_accepted(s, size);
        if (size < 5 || memcmp(s, "refs/", 5) != 0)
            __builtin_trap();
    }
    if (al_refname_branch_valid(s, size)) {
        check_accepted(s, size);
        if (s[0] == '-' || s[0] == '/')
            __builtin_trap();
        char ref[AL_REFNAME_MAX + 32];
        memcpy(ref, "refs/heads/", 11);
        memcpy(ref + 11, s, size);
        if (!al_refname_valid(ref, 11 + size))
            __builtin_trap();
    }
    free(s);
    return 0;
}
