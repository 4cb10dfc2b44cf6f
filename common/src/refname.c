#include "airlock/refname.h"

#include <stdint.h>
#include <string.h>

static int bad_char(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' ||
           c == '*' || c == '[' || c == '\\';
}

/* Length of the valid UTF-8 sequence of a non-ASCII byte at s[i], 0 when it
 * is invalid (stray continuation, overlong, surrogate, above U+10FFFF) or
 * cut off by the end. */
static size_t utf8_len(const unsigned char *s, size_t len, size_t i)
{
    unsigned char c = s[i];
    size_t n;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0; /* continuation byte, 0xc0/0xc1 (always overlong), 0xf5.. */
    }
    if (len - i < n)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[i + k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int al_refname_valid(const char *name, size_t len)
{
    const unsigned char *s = (const unsigned char *)name;
    if (len < 5 || len > AL_REFNAME_MAX || memcmp(name, "refs/", 5) != 0)
        return 0;
    if (s[len - 1] == '.' || s[len - 1] == '/')
        return 0;
    size_t components = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '/') {
            if (s[i] >= 0x80) {
                size_t n = utf8_len(s, len, i);
                if (n == 0)
                    return 0;
                i += n - 1;
                continue;
            }
            if (bad_char(s[i]))
                return 0;
            if (s[i] == '.' && i + 1 < len && s[i + 1] == '.')
                return 0;
            if (s[i] == '@' && i + 1 < len && s[i + 1] == '{')
                return 0;
            continue;
        }
        size_t clen = i - start;
        if (clen == 0)
            return 0; /* leading or double slash */
        if (s[start] == '.')
            return 0;
        if (clen >= 5 && memcmp(name + i - 5, ".lock", 5) == 0)
            return 0;
        components++;
        start = i + 1;
    }
    return components >= 2;
}

int al_refname_branch_valid(const char *branch, size_t len)
{
    static const char heads[] = "refs/heads/";
    char ref[AL_REFNAME_MAX + 1];
    if (len == 0 || len > AL_REFNAME_MAX - (sizeof(heads) - 1) || branch[0] == '-' ||
        (len == 4 && memcmp(branch, "HEAD", 4) == 0) || (len == 1 && branch[0] == '@'))
        return 0;
    memcpy(ref, heads, sizeof(heads) - 1);
    memcpy(ref + sizeof(heads) - 1, branch, len);
    return al_refname_valid(ref, sizeof(heads) - 1 + len);
}
