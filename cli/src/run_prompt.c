/* Quoting and answer editing for airlock's terminal questions (see
 * run_prompt.h). */
#include "run_prompt.h"

#include <string.h>

static int shell_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("_@%+=:,./-", c) != NULL;
}

/* Appends `s` (`n` bytes) to out[*len] if it fits before `limit`. */
static int put(char *out, size_t *len, size_t limit, const char *s, size_t n)
{
    if (*len + n > limit)
        return -1;
    memcpy(out + *len, s, n);
    *len += n;
    return 0;
}

size_t run_prompt_quote(char *out, size_t size, const char *const *argv, size_t argc)
{
    /* room for "..." and the NUL */
    size_t limit = size - 4, len = 0;
    int cut = 0;
    for (size_t i = 0; i < argc && !cut; i++) {
        const char *w = argv[i] ? argv[i] : "";
        size_t wl = strlen(w);
        int plain = wl > 0;
        for (size_t j = 0; j < wl && plain; j++)
            plain = shell_safe((unsigned char)w[j]);
        if (i > 0 && put(out, &len, limit, " ", 1) < 0)
            cut = 1;
        if (!cut && !plain && put(out, &len, limit, "'", 1) < 0)
            cut = 1;
        for (size_t j = 0; j < wl && !cut; j++) {
            unsigned char c = (unsigned char)w[j];
            if (c == '\'' && !plain)
                cut = put(out, &len, limit, "'\\''", 4) < 0;
            else if (c < 0x20 || c >= 0x7f)
                cut = put(out, &len, limit, "?", 1) < 0;
            else
                cut = put(out, &len, limit, (const char *)&w[j], 1) < 0;
        }
        if (!cut && !plain && put(out, &len, limit, "'", 1) < 0)
            cut = 1;
    }
    if (cut) {
        memcpy(out + len, "...", 3);
        len += 3;
    }
    out[len] = '\0';
    return len;
}

/* Appends `s` to the NUL-terminated `echo` of `size` while it fits. */
static void echo_add(char *echo, size_t size, const char *s)
{
    if (size == 0)
        return;
    size_t have = strlen(echo), n = strlen(s);
    if (have + n < size)
        memcpy(echo + have, s, n + 1);
}

enum run_prompt_state run_prompt_feed(struct run_prompt_line *line, const char *in, size_t len,
                                      size_t *used, char *echo, size_t echo_size)
{
    enum run_prompt_state st = RUN_PROMPT_MORE;
    size_t i = 0;
    if (echo_size)
        echo[0] = '\0';
    for (; i < len && st == RUN_PROMPT_MORE; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\r' || c == '\n') {
            st = RUN_PROMPT_DONE;
        } else if (c == 0x03 || (c == 0x04 && line->len == 0)) {
            st = RUN_PROMPT_ABORT;
        } else if (c == 0x7f || c == 0x08) {
            if (line->len > 0) {
                line->text[--line->len] = '\0';
                echo_add(echo, echo_size, "\b \b");
            }
        } else if (c == 0x15) {
            for (; line->len > 0; line->len--)
                echo_add(echo, echo_size, "\b \b");
            line->text[0] = '\0';
        } else if (c >= 0x20 && c < 0x7f && line->len < RUN_PROMPT_LINE_MAX) {
            char s[2] = {(char)c, '\0'};
            line->text[line->len++] = (char)c;
            line->text[line->len] = '\0';
            echo_add(echo, echo_size, s);
        }
    }
    *used = i;
    return st;
}

char run_prompt_verdict(const struct run_prompt_line *line)
{
    const char *t = line->text;
    size_t n = strspn(t, " \t");
    t += n;
    char c = t[0] | 0x20;
    if (c != 'y' && c != 'a')
        return 'n';
    const char *word = c == 'y' ? "yes" : "always";
    size_t wl = strcspn(t, " \t");
    if (wl > strlen(word))
        return 'n';
    for (size_t i = 0; i < wl; i++)
        if ((t[i] | 0x20) != word[i])
            return 'n';
    return c;
}
