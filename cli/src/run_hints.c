/* Hints after a failed sandboxed command: see run_hints.h. */
#include "run_hints.h"

#include "airlock/path.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int has_git_dir(const char *cwd)
{
    char p[PATH_MAX];
    struct stat st;
    return al_path_join(p, sizeof(p), cwd, ".git") == 0 && lstat(p, &st) == 0;
}

void run_hints_print(const struct sb_result *res, const struct al_policy *policy, const char *cwd,
                     const char *name, int networked)
{
    if (res->outcome != SB_EXITED || res->code == 0)
        return;
    const char *prefix = policy->key_prefix;
    if (!networked)
        fprintf(stderr,
                "airlock: note: this sandbox has no network (%s); to allow a host add it to "
                "%snetwork.allowedDomains%s%s\n",
                policy->net_file ? "no allowed domains" : "no network settings", prefix,
                policy->net_file ? " in " : "", policy->net_file ? policy->net_file : "");
    if (!policy->allow_git_config && strcmp(name, "git") == 0 && has_git_dir(cwd))
        fprintf(stderr,
                "airlock: note: .git/config is read-only in the sandbox (a write to it fails "
                "with \"Device or resource busy\"); to allow it set "
                "\"%sfilesystem.allowGitConfig\": true\n",
                prefix);
}
