/* Helpers shared by the settings sources; not part of the public interface. */
#ifndef AIRLOCK_SETTINGS_INTERNAL_H
#define AIRLOCK_SETTINGS_INTERNAL_H

#include <stddef.h>

/* Longest path or glob pattern accepted, after expansion (bytes). */
#define AL_SETTINGS_PATH_MAX 4096

/* Largest settings file read (bytes). */
#define AL_SETTINGS_FILE_MAX (1024 * 1024)

/* Writes `s` into `out` (`size` bytes, at least 16) as a double-quoted string
 * safe to print on a terminal: control and non-UTF-8-looking bytes become
 * \xNN, '"' and '\\' are escaped, and a long value is cut with "...".
 * Returns `out`. */
char *al_settings_quote(char *out, size_t size, const char *s);

/* Longest HTTP method or query parameter name in a request rule (bytes). */
#define AL_REQRULE_TOKEN_MAX 64

/* Checks for one entry of a request rule (network.requestRules[i]), shared
 * by the settings loader and the wire decoder (netpolicy.c). Each takes the
 * string and its length (a JSON string may hold a NUL byte) and returns 0,
 * or AL_EINVAL with a reason quoting the value in al_error_last().
 *   method: an HTTP token in upper case ("GET"; "get" is refused);
 *   path: starts with "/", no NUL, CR, LF, "\\" or "?", at most 4096 bytes;
 *   query key: 1..64 bytes, no control characters, spaces, "&=#?". */
int al_reqrule_check_method(const char *s, size_t len);
int al_reqrule_check_path(const char *s, size_t len);
int al_reqrule_check_query_key(const char *s, size_t len);

#endif
