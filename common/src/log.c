#include "airlock/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char log_procname[64] = "airlock";
static enum al_log_level log_level = AL_LOG_WARN;

void al_log_init(const char *procname, enum al_log_level level)
{
    snprintf(log_procname, sizeof(log_procname), "%s", procname);
    log_level = level;
}

void al_log_set_level(enum al_log_level level)
{
    log_level = level;
}

int al_log_enabled(enum al_log_level level)
{
    return level <= log_level;
}

void al_log_write(enum al_log_level level, const char *fmt, ...)
{
    static const char *const tags[] = {"error: ", "warning: ", "", "debug: "};
    char line[2048];
    int saved_errno = errno;
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
