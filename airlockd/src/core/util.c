#include "airlockd/core/util.h"

#include "airlock/error.h"
#include "airlock/hex.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t ald_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t ald_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void ald_time_format(char out[32], uint64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
}

json_t *ald_time_json(uint64_t ms)
{
    if (ms == 0)
        return json_null();
    char buf[32];
    ald_time_format(buf, ms);
    return json_string(buf);
}

void ald_hex(char *out, const unsigned char *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = '\0';
}

int ald_random_hex(char *out, size_t nhex)
{
    unsigned char raw[64];
    size_t nbytes = (nhex + 1) / 2;
    if (nbytes > sizeof(raw))
        return al_error_set(AL_EINVAL, "random id too long");
    size_t got = 0;
    while (got < nbytes) {
        ssize_t n = getrandom(raw + got, nbytes - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return al_error_set_errno(AL_EIO, errno, "getrandom");
        got += (size_t)n;
    }
    char hex[129];
    ald_hex(hex, raw, nbytes);
    memcpy(out, hex, nhex);
    out[nhex] = '\0';
    explicit_bzero(raw, sizeof(raw));
    explicit_bzero(hex, sizeof(hex));
    return 0;
}

/* Length of the UTF-8 sequence at data[i] when it is complete and valid,
 * 0 when invalid, -1 when it is a valid start cut off by the end. */
static int utf8_seq(const unsigned char *d, size_t len, size_t i)
{
    unsigned char c = d[i];
    if (c < 0x80)
        return 1;
    int n;
    uint32_t min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    uint32_t cp = c & (0x7f >> n);
    for (int k = 1; k < n; k++) {
        if (i + (size_t)k >= len)
            return -1;
        unsigned char cc = d[i + (size_t)k];
        if ((cc & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (cc & 0x3f);
        /* reject overlongs and surrogates as early as the second byte */
        if (k == 1 && n == 3 && c == 0xe0 && cc < 0xa0)
            return 0;
        if (k == 1 && n == 3 && c == 0xed && cc >= 0xa0)
            return 0;
        if (k == 1 && n == 4 && c == 0xf0 && cc < 0x90)
            return 0;
        if (k == 1 && n == 4 && c == 0xf4 && cc >= 0x90)
            return 0;
    }
    if (cp < min || cp > 0x10ffff)
        return 0;
    return n;
}

size_t ald_utf8_valid_prefix(const unsigned char *data, size_t len)
{
    size_t i = 0;
    while (i < len) {
        int n = utf8_seq(data, len, i);
        if (n <= 0)
            break;
        i += (size_t)n;
    }
    return i;
}

size_t ald_utf8_incomplete_tail(const unsigned char *data, size_t len)
{
    size_t i = ald_utf8_valid_prefix(data, len);
    if (i < len && len - i <= 3 && utf8_seq(data, len, i) == -1)
        return len - i;
    return 0;
}

/* Whether the valid `n`-byte sequence at d is a control character (C0,
 * DEL or C1). */
static int utf8_is_control(const unsigned char *d, int n)
{
    if (n == 1)
        return d[0] < 0x20 || d[0] == 0x7f;
    return n == 2 && d[0] == 0xc2 && d[1] < 0xa0;
}

const char *ald_str_quote(char *out, size_t size, const char *in, size_t len)
{
    static const char digits[] = "0123456789ABCDEF";
    const unsigned char *d = (const unsigned char *)in;
    if (size == 0)
        return out;
    size_t o = 0, cut = 0;
    for (size_t i = 0; i < len;) {
        char piece[4];
        const char *src = piece;
        size_t n;
        int k = utf8_seq(d, len, i);
        if (k > 0 && d[i] != '\\' && !utf8_is_control(d + i, k)) {
            src = in + i;
            n = (size_t)k;
        } else if (d[i] == '\\') {
            piece[0] = piece[1] = '\\';
            n = 2;
            k = 1;
        } else {
            piece[0] = '\\';
            piece[1] = 'x';
            piece[2] = digits[d[i] >> 4];
            piece[3] = digits[d[i] & 15];
            n = 4;
            k = 1;
        }
        if (o + 4 <= size)
            cut = o; /* "..." and the NUL still fit after what is written */
        if (o + n + 1 > size) {
            o = cut;
            for (int dots = 0; dots < 3 && o + 1 < size; dots++)
                out[o++] = '.';
            break;
        }
        memcpy(out + o, src, n);
        o += n;
        i += (size_t)k;
    }
    out[o] = '\0';
    return out;
}

size_t ald_utf8_scrub(char *s, size_t len)
{
    const unsigned char *d = (const unsigned char *)s;
    size_t replaced = 0;
    for (size_t i = 0; i < len;) {
        int k = utf8_seq(d, len, i);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        s[i++] = '?';
        replaced++;
    }
    return replaced;
}

int ald_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 20)
        return AL_EINVAL;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return AL_EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return AL_EINVAL;
        v = v * 10 + d;
    }
    if (v > max)
        return AL_EINVAL;
    *out = v;
    return 0;
}

enum ald_u64_check ald_json_u64(json_t *v, uint64_t min, uint64_t max, uint64_t *out, char *why,
                                size_t size)
{
    if (!json_is_integer(v))
        return ALD_U64_NOT_INTEGER;
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < min || (uint64_t)i > max) {
        snprintf(why, size, "must be between %llu and %llu", (unsigned long long)min,
                 (unsigned long long)max);
        return ALD_U64_OUT_OF_RANGE;
    }
    *out = (uint64_t)i;
    return ALD_U64_OK;
}

int ald_percent_decode(char **out, const char *in, size_t len)
{
    *out = NULL;
    char *buf = malloc(len + 1);
    if (!buf)
        return AL_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            int hi = i + 2 < len ? al_hex_digit((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < len ? al_hex_digit((unsigned char)in[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(buf);
                return AL_EINVAL;
            }
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0') {
            free(buf);
            return AL_EINVAL;
        }
        buf[o++] = c;
    }
    buf[o] = '\0';
    *out = buf;
    return 0;
}

int ald_find_binary(const char *configured, const char *key, const char *name,
                    const char *build_rel, const char *system_dir, char *out, size_t size)
{
    if (configured) {
        snprintf(out, size, "%s", configured);
        if (access(out, X_OK) == 0)
            return 0;
        return al_error_set_errno(AL_ENOTFOUND, errno, "%s%s%s", key ? key : "", key ? " " : "",
                                  out);
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash = n > 0 ? (self[n] = '\0', strrchr(self, '/')) : NULL;
    if (slash) {
        *slash = '\0';
        const char *rel[] = {NULL, build_rel, "../libexec/airlock"};
        for (size_t i = 0; i < 3; i++) {
            int len = rel[i] ? snprintf(out, size, "%s/%s/%s", self, rel[i], name)
                             : snprintf(out, size, "%s/%s", self, name);
            if (len > 0 && (size_t)len < size && access(out, X_OK) == 0)
                return 0;
        }
    }
    snprintf(out, size, "%s/%s", system_dir, name);
    if (access(out, X_OK) == 0)
        return 0;
    return al_error_set(AL_ENOTFOUND, "%s not found%s%s%s", name, key ? " (set " : "",
                        key ? key : "", key ? ")" : "");
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void ald_rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}
