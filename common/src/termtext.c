/* Untrusted text for a terminal line: see airlock/termtext.h. */
#include "airlock/termtext.h"

#include <string.h>

static char term_char(unsigned char c, enum al_term_bytes bytes)
{
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && bytes == AL_TERM_ASCII))
        return '?';
    return (char)c;
}

const char *al_term_line(char *out, size_t size, const char *s, enum al_term_bytes bytes)
{
    size_t i = 0;
    if (!s)
        s = "";
    for (; s[i] && i < size - 1; i++)
        out[i] = term_char((unsigned char)s[i], bytes);
    out[i] = '\0';
    if (s[i])
        memcpy(out + size - 4, "...", 4);
    return out;
}

void al_term_put(FILE *f, const char *s, enum al_term_bytes bytes)
{
    for (; s && *s; s++)
        fputc(term_char((unsigned char)*s, bytes), f);
}
