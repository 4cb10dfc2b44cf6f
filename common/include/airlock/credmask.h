/* Masked credentials: per-sandbox sentinels that stand in for real secrets,
 * and the byte-level substitutions the egress proxy applies (issue 15).
 *
 * The sandbox only ever sees a credential's sentinel. The egress proxy puts
 * the real value back in a request only when the request's host is in that
 * credential's injectHosts (the caller decides that per credential and
 * passes the answer as a bit mask, `inject_ok`: bit i set = credential i may
 * be replaced in this request). A sentinel bound anywhere else makes the
 * rewrite fail with AL_EPERM and names the credential; the caller refuses
 * the request. Responses go the other way: any real value echoed by the
 * upstream is re-masked before the sandbox sees it.
 *
 * Sentinel shape (al_sentinel_make): a known prefix of the real value is kept
 * ("ghp_", "github_pat_", "sk-ant-", "npm_", "AKIA", "xoxb-", ...; else a
 * leading run of letters ended by '_' or '-', at most 16 bytes); every other
 * byte is replaced by a random byte of the same class (digit, lower, upper;
 * '-', '_' and '.' kept; any other byte becomes a random letter or digit), so
 * client-side format checks pass and only URL-safe characters appear. When
 * that gives fewer than 128 random bits, random letters and digits are
 * appended until it does: the sentinel is then longer than the real value.
 * Sentinels are never logged as secrets, but real values never appear in any
 * message, log line or error text of this module.
 */
#ifndef AIRLOCK_CREDMASK_H
#define AIRLOCK_CREDMASK_H

#include <stddef.h>
#include <stdint.h>

#include "airlock/buf.h"
#include "airlock/strlist.h"

#define AL_CRED_MAX       64          /* credentials per sandbox (bits of inject_ok) */
#define AL_CRED_VALUE_MAX (64 * 1024) /* longest real value */

/* One masked credential. */
struct al_cred {
    char *name; /* for messages and audit ("GITHUB_TOKEN",
                   "file:/root/.npmrc"); never the value */
    char *real; /* real value, `real_len` bytes + NUL */
    size_t real_len;
    char *sentinel; /* what the sandbox sees, NUL-terminated */
    size_t sentinel_len;
    struct al_strlist inject_hosts; /* domain patterns (allowedDomains syntax) */
};

struct al_credset {
    struct al_cred *v;
    size_t len;
};

/* Makes a sentinel for `real` (shape above). Returns 0 and *out (NUL-
 * terminated, caller frees) with *out_len, AL_EINVAL for an empty or too long
 * value, or AL_EIO when the random source fails. */
int al_sentinel_make(char **out, size_t *out_len, const char *real, size_t real_len);

/* Adds a credential; `real` is copied, `inject_hosts` deep-copied.
 * `sentinel` NULL: one is made with al_sentinel_make(). A given sentinel must
 * be non-empty, URL-safe ([A-Za-z0-9._~-]) and differ from the value. No
 * sentinel of a set contains another (so matches never nest). Returns 0,
 * AL_EINVAL (empty or too long value, more than AL_CRED_MAX credentials, a
 * duplicate name, a bad or clashing sentinel), AL_ENOMEM, AL_EIO. */
int al_credset_add(struct al_credset *set, const char *name, const char *real, size_t real_len,
                   const struct al_strlist *inject_hosts, const char *sentinel);

/* Deep copy; `dst` need not be initialised. 0 or AL_ENOMEM (dst empty). */
int al_credset_copy(struct al_credset *dst, const struct al_credset *src);

/* Frees every credential, wiping real values first (explicit_bzero). */
void al_credset_free(struct al_credset *set);

/* Masks a credential file for the sandbox. `content` is the real file.
 * extract NULL: the whole content (without one trailing "\n" or "\r\n",
 * which is kept) is one secret. Otherwise `extract` is a POSIX extended
 * regular expression compiled with REG_NEWLINE (so '.' stops at a newline and
 * ^ $ match at each line): every match's first group (or the whole match
 * when it has no group) is a secret (empty ones are skipped); each distinct
 * value becomes one credential named "file:PATH" (then "file:PATH#2", ...).
 * Every occurrence of a secret in the file (also where the expression did not
 * find it) is replaced in the output by its sentinel; the secrets are added
 * to `set` with `inject_hosts`.
 * Returns 0 and *out (caller frees) / *out_len; AL_EINVAL with a message
 * naming `path` (never the content) for a bad regex, no match, an empty
 * secret, a file over 1 MiB, or a secret al_credset_add() refuses (then `set`
 * is as it was); AL_ENOMEM. */
int al_cred_mask_file(struct al_credset *set, const char *path, const char *content, size_t len,
                      const char *extract, const struct al_strlist *inject_hosts, char **out,
                      size_t *out_len);

/* Rewrites an HTTP request head (request line and header lines, up to and
 * including the blank line; `len` bytes, bounded by the caller) for sending
 * upstream: every sentinel found in it (anywhere, and also inside the
 * base64 credentials of an "Authorization: Basic" or "Proxy-Authorization:
 * Basic" header, which is decoded, rewritten and re-encoded) is replaced by
 * its real value when bit i of `inject_ok` is set. Appends the result to
 * `out`. *used (may be NULL) is set to a bit per credential replaced (for
 * audit), 0 on an error.
 * Lines end at "\n" (a "\r" before it is kept); the Basic header name and
 * scheme are case-insensitive, with optional whitespace around them, and
 * the token may leave out its '=' padding (the rewrite is padded). A token
 * that is not base64 is left alone (only the plain scan applies to it).
 * Returns 0; AL_EPERM when a sentinel of a credential whose bit is clear
 * was found (*culprit = its index, nothing appended); AL_ENOMEM; AL_ETOOBIG
 * when `out` would pass its max (nothing appended). */
int al_cred_subst_head(const struct al_credset *set, uint64_t inject_ok, const char *head,
                       size_t len, struct al_buf *out, uint64_t *used, size_t *culprit);

/* Whether any credential's sentinel occurs in data[0..len) (and inside the
 * Basic credentials of any Authorization / Proxy-Authorization line in it).
 * Returns the lowest index found, or -1. */
long al_cred_find_sentinel(const struct al_credset *set, const char *data, size_t len);

/* A streaming rewriter for bodies, where a match may straddle two reads.
 * AL_SUBST_REQUEST: sentinels -> real values (bits of inject_ok as above).
 * AL_SUBST_RESPONSE: real values -> their sentinel when both have the same
 * length, else a run of '*' of the real value's length, so a response's
 * length never changes (every credential's real value, whatever inject_ok).
 * A response stream also replaces by '*'s the base64 forms of each real
 * value (the characters that depend only on the value, for each of the
 * three alignments, when at least AL_CRED_B64_MIN long): the proxy puts
 * real values inside "Authorization: Basic" base64, which a server may echo.
 * A request rewrite changes the length only when a replaced sentinel is
 * longer than its real value (al_credset_same_length() says whether that can
 * happen for `inject_ok`).
 * Matching: one greedy scan, left to right; matches do not overlap; at a
 * position the longest pattern wins. The output is the same however the
 * input is split into feeds. */
enum al_subst_dir { AL_SUBST_REQUEST = 1, AL_SUBST_RESPONSE = 2 };

#define AL_CRED_B64_MIN 8 /* shortest base64 form a response stream masks */

struct al_subst_stream {
    const struct al_credset *set;
    struct al_credset *b64; /* AL_SUBST_RESPONSE: `set` followed by the base64
                               forms of its real values (owned; the entries
                               of `set` are shared), scanned instead of it */
    enum al_subst_dir dir;
    uint64_t inject_ok;
    uint64_t used; /* credentials replaced so far (request) or re-masked
                      (response; base64 forms not counted) */
    char *carry;   /* bytes held back: a match may start in them */
    size_t carry_len;
    size_t carry_cap; /* longest pattern - 1 */
};

/* Initialises `st`; `set` must outlive it. 0 or AL_ENOMEM. */
int al_subst_stream_init(struct al_subst_stream *st, const struct al_credset *set,
                         enum al_subst_dir dir, uint64_t inject_ok);

/* Feeds `len` bytes; appends what is final to `out` (some bytes may be held
 * back until the next call). Returns 0, AL_EPERM (request: a sentinel whose
 * bit is clear; *culprit set; the stream is then unusable: later calls return
 * AL_EINVAL) or AL_ENOMEM / AL_ETOOBIG (from `out`). On any error nothing
 * is appended by this call. */
int al_subst_stream_feed(struct al_subst_stream *st, const char *data, size_t len,
                         struct al_buf *out, size_t *culprit);

/* Flushes the held-back bytes to `out` at the end of the body (a response's
 * shorter real value may still be re-masked in them). 0, AL_ENOMEM /
 * AL_ETOOBIG, or AL_EINVAL after an AL_EPERM. The held-back bytes never
 * hold a whole sentinel (sentinels do not contain one another), so a
 * request stream gets no AL_EPERM here. */
int al_subst_stream_finish(struct al_subst_stream *st, struct al_buf *out);

void al_subst_stream_free(struct al_subst_stream *st);

/* 1 when every credential whose bit is set in `inject_ok` has a sentinel as
 * long as its real value (a body rewrite keeps Content-Length), else 0. */
int al_credset_same_length(const struct al_credset *set, uint64_t inject_ok);

#endif
