/* One-line hints after a sandboxed command failed, for settings that may be
 * why: no network at all, a write-protected .git/config. */
#ifndef AIRLOCK_CLI_RUN_HINTS_H
#define AIRLOCK_CLI_RUN_HINTS_H

#include "airlock/sandbox.h"
#include "airlock/settings.h"

/* Prints at most one "airlock: note: ..." line per hint on stderr, and only
 * when the command exited with a non-zero status:
 *  - `networked` is 0 (the sandbox had no network at all): which key to add
 *    a host to, in the shape of the user's settings (not for a git
 *    subcommand that never uses the network, such as `git config`; `argv`
 *    or `shell_string` give the subcommand);
 *  - the command is git (`name`, argv[0]'s basename or a -c string's first
 *    word) with a subcommand that may write .git/config (config, remote,
 *    push, branch, ...), .git/config is write-protected (no allowGitConfig)
 *    and `cwd` holds a .git: the allowGitConfig key. */
void run_hints_print(const struct sb_result *res, const struct al_policy *policy, const char *cwd,
                     const char *name, char *const *argv, const char *shell_string, int networked);

#endif
