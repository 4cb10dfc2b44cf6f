/* Logging: one function, printf-checked, level tested before formatting,
 * every line prefixed with the process name ("airlock: ", "airlock-netproxy: ").
 */
#ifndef AIRLOCK_LOG_H
#define AIRLOCK_LOG_H

enum al_log_level {
    AL_LOG_ERROR = 0,
    AL_LOG_WARN = 1,
    AL_LOG_INFO = 2,
    AL_LOG_DEBUG = 3,
};

/* Sets the prefix (copied) and the most verbose level that is printed.
 * Before the first call the prefix is "airlock" and the level AL_LOG_WARN. */
void al_log_init(const char *procname, enum al_log_level level);

/* Sets the level only. */
void al_log_set_level(enum al_log_level level);

/* True when a message at `level` would be printed. */
int al_log_enabled(enum al_log_level level);

/* Writes "<procname>: [<level>: ]<message>\n" to stderr in one write(2),
 * when `level` is enabled. Errors and warnings carry "error: "/"warning: ". */
void al_log_write(enum al_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define al_log(level, ...)                                                                         \
    do {                                                                                           \
        if (al_log_enabled(level))                                                                 \
            al_log_write(level, __VA_ARGS__);                                                      \
    } while (0)

#endif
