/* Hints after a failed sandboxed command: see run_hints.h. */
#include "run_hints.h"

#include "airlock/path.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Writes git's subcommand (the first word after "git" that is not an
 * option or the value of -C/-c) into `out`, "" when there is none. */
static void git_subcommand(char *out, size_t size, char *const *argv, const char *shell_string)
{
    char words[8][64];
    size_t n = 0;
    if (shell_string) {
        const char *s = shell_string;
        while (*s && n < 8) {
            s += strspn(s, " \t\n");
            size_t len = strcspn(s, " \t\n;&|<>()");
            if (!len)
                break;
            snprintf(words[n++], sizeof(words[0]), "%.*s", (int)len, s);
            s += len;
        }
    } else {
        for (; argv[n] && n < 8; n++)
            snprintf(words[n], sizeof(words[0]), "%s", argv[n]);
    }
    out[0] = '\0';
    for (size_t i = 1; i < n; i++) {
        if (strcmp(words[i], "-C") == 0 || strcmp(words[i], "-c") == 0) {
            i++;
            continue;
        }
        if (words[i][0] == '-')
            continue;
        snprintf(out, size, "%s", words[i]);
        return;
    }
}

/* git subcommands that never use the network. */
static int git_is_local(const char *sub)
{
    static const char *const local[] = {"config", "add",    "commit", "status", "init",
                                        "log",    "diff",   "branch", "switch", "checkout",
                                        "reset",  "rebase", "merge",  "tag",    "stash",
                                        "rm",     "mv",     "show",   "restore"};
    for (size_t i = 0; i < sizeof(local) / sizeof(*local); i++)
        if (strcmp(sub, local[i]) == 0)
            return 1;
    return 0;
}

/* git subcommands that may write .git/config (git config, git remote add,
 * git push -u, git branch --set-upstream-to, git submodule init, ...). */
static int git_may_write_config(const char *sub)
{
    static const char *const writers[] = {"config", "remote",   "branch",      "checkout",
                                          "switch", "push",     "submodule",   "init",
                                          "pull",   "worktree", "maintenance", "lfs"};
    for (size_t i = 0; i < sizeof(writers) / sizeof(*writers); i++)
        if (strcmp(sub, writers[i]) == 0)
            return 1;
    return 0;
}

static int has_git_dir(const char *cwd)
{
    char p[PATH_MAX];
    struct stat st;
    return al_path_join(p, sizeof(p), cwd, ".git") == 0 && lstat(p, &st) == 0;
}

void run_hints_print(const struct sb_result *res, const struct al_policy *policy, const char *cwd,
                     const char *name, char *const *argv, const char *shell_string, int networked)
{
    char sub[64] = "";
    if (res->outcome != SB_EXITED || res->code == 0)
        return;
    const char *prefix = policy->key_prefix;
    int git = strcmp(name, "git") == 0;
    if (git)
        git_subcommand(sub, sizeof(sub), argv, shell_string);
    if (!networked && !(git && git_is_local(sub)))
        fprintf(stderr,
                "airlock: note: this sandbox has no network (%s); to allow a host add it to "
                "%snetwork.allowedDomains%s%s\n",
                policy->net_file ? "no allowed domains" : "no network settings", prefix,
                policy->net_file ? " in " : "", policy->net_file ? policy->net_file : "");
    if (!policy->allow_git_config && git && git_may_write_config(sub) && has_git_dir(cwd))
        fprintf(stderr,
                "airlock: note: .git/config is read-only in the sandbox (a write to it fails "
                "with \"Device or resource busy\"); to allow it set "
                "\"%sfilesystem.allowGitConfig\": true\n",
                prefix);
}
