/* Why a clone failed (clonemsg.h). */
#include "airlockd/adapters/clonemsg.h"

#include <stdio.h>
#include <string.h>

/* Appends to out[size] at *off, never past the end (out stays
 * NUL-terminated; what does not fit is dropped). */
static void put(char *out, size_t size, size_t *off, const char *s, size_t n)
{
    if (*off + 1 >= size)
        return;
    if (n > size - 1 - *off)
        n = size - 1 - *off;
    memcpy(out + *off, s, n);
    *off += n;
    out[*off] = '\0';
}

/* Appends `n` bytes of untrusted text as printable ASCII ('?' for every
 * other byte), at most ALD_CLONE_LINE_MAX of them ("..." when cut). */
static void put_shown(char *out, size_t size, size_t *off, const char *s, size_t n)
{
    int cut = n > ALD_CLONE_LINE_MAX;
    if (cut)
        n = ALD_CLONE_LINE_MAX;
    for (size_t i = 0; i < n; i++) {
        char c = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
        put(out, size, off, &c, 1);
    }
    if (cut)
        put(out, size, off, "...", 3);
}

static int has(const char *s, size_t n, const char *what)
{
    size_t w = strlen(what);
    for (size_t i = 0; i + w <= n; i++)
        if (memcmp(s + i, what, w) == 0)
            return 1;
    return 0;
}

void ald_git_clone_explain(char *out, size_t size, const char *repo, const char *base, int code,
                           const char *err, size_t len)
{
    static const char proxy_says[] = "remote: airlock: ";
    const size_t said = sizeof(proxy_says) - 1;
    struct {
        const char *p;
        size_t n;
    } tail[ALD_CLONE_TAIL_LINES];
    size_t ntail = 0, off = 0;
    const char *cause = NULL;
    size_t cause_len = 0;
    int base_missing = 0;
    out[0] = '\0';
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && err[j] != '\n' && err[j] != '\r')
            j++;
        const char *ln = err + i;
        size_t n = j - i;
        while (n > 0 && (ln[n - 1] == ' ' || ln[n - 1] == '\t'))
            n--;
        i = j + 1;
        if (n == 0)
            continue;
        if (!cause && n > said && memcmp(ln, proxy_says, said) == 0) {
            cause = ln + said;
            cause_len = n - said;
        }
        if (base && has(ln, n, "emote branch ") && (has(ln, n, "not found") || has(ln, n, "find")))
            base_missing = 1;
        if (ntail == ALD_CLONE_TAIL_LINES) {
            memmove(tail, tail + 1, sizeof(tail[0]) * (ALD_CLONE_TAIL_LINES - 1));
            ntail--;
        }
        tail[ntail].p = ln;
        tail[ntail].n = n;
        ntail++;
    }
    char head[600];
    int h = snprintf(head, sizeof(head), "cannot clone %.300s: ", repo ? repo : "?");
    put(out, size, &off, head, h > 0 ? (size_t)h : 0);
    if (cause) {
        put_shown(out, size, &off, cause, cause_len);
    } else if (base_missing) {
        h = snprintf(head, sizeof(head),
                     "the base branch \"%.250s\" does not exist upstream (create's \"base\")",
                     base);
        put(out, size, &off, head, h > 0 ? (size_t)h : 0);
    } else {
        h = snprintf(head, sizeof(head), "git clone exited with status %d", code);
        put(out, size, &off, head, h > 0 ? (size_t)h : 0);
    }
    if (ntail)
        put(out, size, &off, "; git said:", 11);
    for (size_t k = 0; k < ntail; k++) {
        put(out, size, &off, "\n  | ", 5);
        put_shown(out, size, &off, tail[k].p, tail[k].n);
    }
}
