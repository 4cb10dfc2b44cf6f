/* The text side of airlock's questions on the terminal, with no terminal
 * in it: the command quoted for a question, and the answer line edited
 * key by key. Pure functions over (pointer, length) input, unit-tested
 * (tests/unit/cli/run_prompt.c) and fuzzed (tests/fuzz/run_prompt.c). */
#ifndef AIRLOCK_RUN_PROMPT_H
#define AIRLOCK_RUN_PROMPT_H

#include <stddef.h>

/* Writes `argv` (`argc` words) to `out` (of `size` >= 8 bytes, always
 * NUL-terminated) as one line a user can read and a shell would take back:
 * a word of only [A-Za-z0-9_@%+=:,./-] as it is, any other in single
 * quotes (a ' inside as '\''); a control byte, DEL or a byte >= 0x80
 * inside a word becomes '?' (never a terminal escape). A line that does
 * not fit ends in "...". Returns the length written. */
size_t run_prompt_quote(char *out, size_t size, const char *const *argv, size_t argc);

/* An answer being typed: at most RUN_PROMPT_LINE_MAX printable bytes. */
#define RUN_PROMPT_LINE_MAX 15
struct run_prompt_line {
    char text[RUN_PROMPT_LINE_MAX + 1];
    size_t len;
};

/* What run_prompt_feed() saw. */
enum run_prompt_state {
    RUN_PROMPT_MORE = 0, /* keep reading */
    RUN_PROMPT_DONE = 1, /* Enter: the answer is line->text */
    RUN_PROMPT_ABORT = 2 /* Ctrl-C, or Ctrl-D on an empty line: "no" */
};

/* Feeds the `len` keyboard bytes at `in` to the answer `line` (start
 * zeroed): printable ASCII is added (beyond the maximum: dropped), DEL or
 * BS removes the last byte, Ctrl-U empties the line, CR or LF ends it,
 * any other byte is ignored (an escape sequence's ESC is; the printable
 * bytes after it are typed). Writes what to
 * show in return (the typed bytes, "\b \b" per erased byte) to `echo` (of
 * `echo_size`, NUL-terminated; cut when full; none when 0). Stops at the end of the
 * line; *used says how many input bytes were taken. */
enum run_prompt_state run_prompt_feed(struct run_prompt_line *line, const char *in, size_t len,
                                      size_t *used, char *echo, size_t echo_size);

/* The verdict of a finished answer: 'y' (y, yes), 'a' (a, always), else
 * 'n'; case-insensitive. */
char run_prompt_verdict(const struct run_prompt_line *line);

#endif
