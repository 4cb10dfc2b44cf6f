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

#endif
