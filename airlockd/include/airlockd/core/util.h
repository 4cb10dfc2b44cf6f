/* Small helpers shared by the airlockd modules: clocks, RFC 3339 times,
 * random ids, base64, UTF-8 checks. */
#ifndef ALD_UTIL_H
#define ALD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Wall-clock milliseconds since the epoch. */
uint64_t ald_now_ms(void);

/* Monotonic milliseconds (for durations). */
uint64_t ald_mono_ms(void);

/* Writes "2026-11-23T18:05:35.123Z" (24 bytes + NUL) into out. */
void ald_time_format(char out[32], uint64_t ms);

/* A JSON string of the time, or JSON null for 0. New reference. */
json_t *ald_time_json(uint64_t ms);

/* Fills out with `nhex` random lowercase hex digits and a NUL (out holds
 * nhex + 1 bytes). 0 or AL_EIO. */
int ald_random_hex(char *out, size_t nhex);

/* Finds an executable and writes its path to `out`: `configured` when set
 * (it must be executable; `key`, the config key that set it, names it in
 * the error), else `name` beside airlockd, in the build tree (`build_rel`,
 * relative to airlockd's directory), in ../libexec/airlock beside it, then
 * in `system_dir`. 0, or AL_ENOTFOUND (the message names the key when
 * there is one). */
int ald_find_binary(const char *configured, const char *key, const char *name,
                    const char *build_rel, const char *system_dir, char *out, size_t size);

/* Lowercase hex of `len` bytes into out (2 * len + 1 bytes). */
void ald_hex(char *out, const unsigned char *data, size_t len);

/* base64: airlock/base64.h */

/* Length of the longest prefix of `data` that is valid UTF-8, stopping
 * before an invalid or incomplete sequence. */
size_t ald_utf8_valid_prefix(const unsigned char *data, size_t len);

/* 1 when `len` bytes at `data` end in the first bytes of a sequence that
 * could still become valid: returns how many bytes (1..3) form that
 * incomplete tail, 0 otherwise. */
size_t ald_utf8_incomplete_tail(const unsigned char *data, size_t len);

/* Writes the `len` bytes at `in` (untrusted: any bytes, NULs included) into
 * `out` (`size` bytes, at least 1) as text fit for an error message, a JSON
 * string or a log line: a valid UTF-8 character is copied unless it is a
 * control character (C0, DEL, C1); a backslash becomes "\\"; every other
 * byte (a control, a byte of no valid sequence) becomes "\xHH". Escapes
 * and characters are never cut: when the text does not fit, it ends at a
 * character boundary with "..." (as much of it as fits). The result is
 * always NUL-terminated, valid UTF-8 and free of control bytes. Returns
 * `out`, which the caller owns. */
const char *ald_str_quote(char *out, size_t size, const char *in, size_t len);

/* Replaces, in place, each of the `len` bytes at `s` that is not part of a
 * complete, valid UTF-8 sequence with '?', so the text can always be a JSON
 * string (a `%.40s` that cut a character, a value not quoted with
 * ald_str_quote). Returns how many bytes it replaced. */
size_t ald_utf8_scrub(char *s, size_t len);

/* Parses a decimal unsigned integer of the whole string (no sign, no
 * spaces, at most `max`). 0 or AL_EINVAL. */
int ald_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* How a JSON value fared as an integer in a range (ald_json_u64). */
enum ald_u64_check {
    ALD_U64_OK,
    ALD_U64_NOT_INTEGER,  /* not a JSON integer */
    ALD_U64_OUT_OF_RANGE, /* an integer outside [min, max] */
};

/* Reads the JSON integer `v` into *out when min <= v <= max. Otherwise
 * *out is left alone and, when out of range, `why` (size bytes) says
 * "must be between MIN and MAX". The one range check of the config
 * (config.c) and of request bodies (api/body.c). */
enum ald_u64_check ald_json_u64(json_t *v, uint64_t min, uint64_t max, uint64_t *out, char *why,
                                size_t size);

/* Percent-decodes `len` bytes of `in` once into a new NUL-terminated string
 * (*out; the caller frees). AL_EINVAL on a bad escape or a decoded NUL. */
int ald_percent_decode(char **out, const char *in, size_t len);

/* Removes the directory tree `path`, as much of it as it can, never
 * following symlinks or crossing mounts; errors are ignored. */
void ald_rm_tree(const char *path);

#endif
