#include "airlock/log.h"

#include "airlock/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The longest message kept; longer ones are cut (and marked in JSON). */
#define LOG_MSG_MAX 2048

static char log_procname[64] = "airlock";
static enum al_log_level log_level = AL_LOG_WARN;
static enum al_log_format log_format = AL_LOG_FORMAT_TEXT;

void al_log_init(const char *procname, enum al_log_level level)
{
    snprintf(log_procname, sizeof(log_procname), "%s", procname);
    log_level = level;
    const char *f = getenv("AIRLOCK_LOG_FORMAT");
    log_format = f && strcmp(f, "json") == 0 ? AL_LOG_FORMAT_JSON : AL_LOG_FORMAT_TEXT;
}

void al_log_set_level(enum al_log_level level)
{
    log_level = level;
}

void al_log_set_format(enum al_log_format format)
{
    log_format = format;
}

int al_log_format_parse(enum al_log_format *out, const char *name)
{
    if (strcmp(name, "text") == 0)
        *out = AL_LOG_FORMAT_TEXT;
    else if (strcmp(name, "json") == 0)
        *out = AL_LOG_FORMAT_JSON;
    else
        return al_error_set(AL_EINVAL, "log format \"%s\": expected \"text\" or \"json\"", name);
    return 0;
}

int al_log_enabled(enum al_log_level level)
{
    return level <= log_level;
}

/* The length of the valid UTF-8 sequence at s[0..n) (n > 0), or 0 when it
 * is not one (overlong forms, surrogates and code points past U+10FFFF are
 * not). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* Appends s[0..n) to out[*at..size) as the inside of a JSON string: every
 * control byte, quote and backslash escaped, invalid UTF-8 replaced by
 * \ufffd. Stops before a character that does not fit whole; returns 1 when
 * all of s fit, else 0. */
static int json_escape_append(char *out, size_t size, size_t *at, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        char esc[8];
        const char *piece = esc;
        size_t plen, step = 1;
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, plen = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2), plen = 2;
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2), plen = 2;
        } else if (c == '\r') {
            memcpy(esc, "\\r", 2), plen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15], plen = 6;
        } else if ((step = utf8_seq(u + i, n - i)) > 0) {
            piece = s + i, plen = step;
        } else {
            memcpy(esc, "\\ufffd", 6), plen = 6, step = 1;
        }
        if (*at + plen >= size)
            return 0;
        memcpy(out + *at, piece, plen);
        *at += plen;
        i += step;
    }
    return 1;
}

/* Appends the text `s` (no escaping needed); 0 when it does not fit. */
static int put(char *out, size_t size, size_t *at, const char *s)
{
    size_t n = strlen(s);
    if (*at + n >= size)
        return 0;
    memcpy(out + *at, s, n);
    *at += n;
    return 1;
}

/* The session id a message is about: "session <id>" at its start, <id> of
 * [A-Za-z0-9_.-], ended by a space, a colon or the end. Sets *len. */
static const char *msg_session(const char *msg, size_t *len)
{
    if (strncmp(msg, "session ", 8) != 0)
        return NULL;
    const char *id = msg + 8;
    size_t n = strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
    if (n == 0 || n > 64 || (id[n] != '\0' && id[n] != ' ' && id[n] != ':'))
        return NULL;
    *len = n;
    return id;
}

/* Formats the JSON line of `msg` (cut: the message was cut) into out;
 * returns its length, newline included. */
static size_t json_line(char *out, size_t size, enum al_log_level level, const char *msg, int cut)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char head[160], tail[96];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(head, sizeof(head), "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"", when,
             ts.tv_nsec / 1000000, names[level]);
    size_t at = 0, sid_len = 0;
    const char *sid = msg_session(msg, &sid_len);
    /* head and tail always fit: out is far larger than they are */
    put(out, size, &at, head);
    json_escape_append(out, size, &at, log_procname, strlen(log_procname));
    put(out, size, &at, "\",\"message\":\"");
    snprintf(tail, sizeof(tail), "\",\"fields\":{\"pid\":%ld", (long)getpid());
    /* room kept for the tail: fields, the session id (escaped: at most 6
     * bytes per byte of it) and the end */
    size_t reserve = strlen(tail) + 16 + 6 * sid_len + 32;
    if (!json_escape_append(out, size - reserve, &at, msg, strlen(msg)))
        cut = 1;
    put(out, size, &at, tail);
    if (sid) {
        put(out, size, &at, ",\"session\":\"");
        json_escape_append(out, size, &at, sid, sid_len);
        put(out, size, &at, "\"");
    }
    if (cut)
        put(out, size, &at, ",\"truncated\":true");
    put(out, size, &at, "}}\n");
    return at;
}

void al_log_write(enum al_log_level level, const char *fmt, ...)
{
    static const char *const tags[] = {"error: ", "warning: ", "", "debug: "};
    int saved_errno = errno;
    if ((unsigned)level > AL_LOG_DEBUG)
        level = AL_LOG_DEBUG;
    if (log_format == AL_LOG_FORMAT_JSON) {
        char msg[LOG_MSG_MAX], line[6 * LOG_MSG_MAX + 512];
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (m < 0)
            msg[0] = '\0';
        size_t len = json_line(line, sizeof(line), level, msg, m >= (int)sizeof(msg));
        ssize_t w = write(STDERR_FILENO, line, len);
        (void)w;
        errno = saved_errno;
        return;
    }
    char line[LOG_MSG_MAX];
    int n = snprintf(line, sizeof(line), "%s: %s", log_procname, tags[level]);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
    errno = saved_errno;
}
