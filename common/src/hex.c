#include "airlock/hex.h"
#include "airlock/error.h"

int al_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int al_hex_decode(unsigned char *out, const char *hex, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = al_hex_digit((unsigned char)hex[2 * i]);
        int lo = hi < 0 ? -1 : al_hex_digit((unsigned char)hex[2 * i + 1]);
        if (lo < 0)
            return AL_EINVAL;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}
