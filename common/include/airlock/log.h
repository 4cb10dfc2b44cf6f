/* Logging: one function, printf-checked, level tested before formatting,
 * every line prefixed with the process name ("airlock: ", "airlock-netproxy: ").
 *
 * Two formats. Text (the default): "<procname>: [<level>: ]<message>".
 * JSON (al_log_set_format(AL_LOG_FORMAT_JSON), or AIRLOCK_LOG_FORMAT=json in
 * the environment when al_log_init() runs): one object per line,
 *   {"time": "2026-01-02T03:04:05.678Z", "level": "info",
 *    "component": "<procname>", "message": "...", "fields": {"pid": N, ...}}
 * "fields" always has "pid"; "session" when the message is about one
 * session (it starts "session <id>"); "truncated": true when the message
 * was cut to fit. Every byte of the message is escaped: quotes, backslashes,
 * newlines and other control bytes, and invalid UTF-8 (as U+FFFD), so a
 * message is always one valid line (docs/airlockd.md, "Logs").
 */
#ifndef AIRLOCK_LOG_H
#define AIRLOCK_LOG_H

enum al_log_level {
    AL_LOG_ERROR = 0,
    AL_LOG_WARN = 1,
    AL_LOG_INFO = 2,
    AL_LOG_DEBUG = 3,
};

enum al_log_format {
    AL_LOG_FORMAT_TEXT = 0,
    AL_LOG_FORMAT_JSON = 1,
};

/* Sets the prefix (copied) and the most verbose level that is printed, and
 * the format from AIRLOCK_LOG_FORMAT ("json"; anything else: text). Before
 * the first call the prefix is "airlock", the level AL_LOG_WARN, the format
 * text. */
void al_log_init(const char *procname, enum al_log_level level);

/* Sets the level only. */
void al_log_set_level(enum al_log_level level);

/* Sets the format only. */
void al_log_set_format(enum al_log_format format);

/* Parses "text" or "json" into *out; 0, or AL_EINVAL for anything else. */
int al_log_format_parse(enum al_log_format *out, const char *name);

/* True when a message at `level` would be printed. */
int al_log_enabled(enum al_log_level level);

/* Writes one line to stderr in one write(2), when `level` is enabled: in
 * text "<procname>: [<level>: ]<message>\n" (errors and warnings carry
 * "error: "/"warning: "), in JSON the object above. A message longer than
 * about 2 KiB is cut. */
void al_log_write(enum al_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define al_log(level, ...)                                                                         \
    do {                                                                                           \
        if (al_log_enabled(level))                                                                 \
            al_log_write(level, __VA_ARGS__);                                                      \
    } while (0)

#endif
