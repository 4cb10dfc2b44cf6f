/* Why a repository's clone failed, in words for the API and a terminal:
 * a pure function over the clone's stderr (untrusted), unit-tested and
 * fuzzed (it links nothing else of airlockd). */
#ifndef ALD_ADAPTERS_CLONEMSG_H
#define ALD_ADAPTERS_CLONEMSG_H

#include <stddef.h>

/* Why a clone failed, for the API's error and a terminal: from `len` bytes
 * of the clone's stderr (untrusted: the sandbox and the upstream write it)
 * and its exit `code`, writes into `out` (`size` > 0, always NUL-terminated)
 * "cannot clone REPO: CAUSE" and the last lines git printed, each line
 * "  | ...", printable ASCII only (every other byte shown as '?'), at most
 * ALD_CLONE_TAIL_LINES lines of at most ALD_CLONE_LINE_MAX bytes. CAUSE is
 * the git proxy's own reason ("remote: airlock: ..." lines) when it gave
 * one, a missing `base` branch when git says so, else the exit status.
 * `repo` and `base` (NULL: none) are the create's validated values. */
#define ALD_CLONE_TAIL_LINES 4
#define ALD_CLONE_LINE_MAX   200
void ald_git_clone_explain(char *out, size_t size, const char *repo, const char *base, int code,
                           const char *err, size_t len);

#endif
