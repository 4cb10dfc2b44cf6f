/* A session's repository: the scoped token (creds/), the git configuration
 * every command of the session gets, and the clone made inside the sandbox
 * through the git proxy at creation. */
#include "airlockd/adapters/gitrepo.h"

#include "airlockd/adapters/clonemsg.h"

#include "airlockd/adapters/store.h"
#include "airlockd/core/exec.h"

#include "airlockd/core/daemon.h"
#include "airlockd/core/process.h"
#include "airlockd/core/session.h"
#include "airlockd/core/util.h"

#include "airlock/creds.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/refname.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The signing key: the first of proxies.token_keys (loaded at start; the
 * gitproxy gets all of them over its control socket). */
static int signing_key(const struct ald *d, struct creds_keyring *ring)
{
    memset(ring, 0, sizeof(*ring));
    if (d->token_keys.len == 0)
        return al_error_set(AL_EINVAL, "no token keys: the gitproxy is not enabled");
    ring->keys[0] = d->token_keys.keys[0];
    ring->len = 1;
    return 0;
}

/* The session's git listener, as the sandbox sees it. */
#define GIT_LISTENER "http://127.0.0.1:7418"

/* The environment that points git at the session's git listener. The
 * repository's remote keeps its real URL (remote.origin.vcs=airlock, see
 * clone_script): git runs git-remote-airlock (gitproxy/tools), which sends
 * https://HOST/... for the hosts in AIRLOCK_GIT_HOSTS to the listener in
 * AIRLOCK_GIT_PROXY. Git configuration comes as GIT_CONFIG_COUNT/KEY_n/
 * VALUE_n (git >= 2.31), so no file is needed: an empty credential.helper
 * clears inherited helpers, then a helper scoped to the listener's URL
 * answers the scoped token (never the real one), so a 401 from any other
 * host never gets it. */
static json_t *git_env(const char *host, const char *token)
{
    char helper[4096];
    snprintf(helper, sizeof(helper),
             "!f() { test \"$1\" = get && echo username=x-access-token && echo password=%s; }; f",
             token);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "GIT_CONFIG_COUNT", "2",
                     "GIT_CONFIG_KEY_0", "credential.helper", "GIT_CONFIG_VALUE_0", "",
                     "GIT_CONFIG_KEY_1", "credential." GIT_LISTENER ".helper", "GIT_CONFIG_VALUE_1",
                     helper, "AIRLOCK_GIT_PROXY", GIT_LISTENER, "AIRLOCK_GIT_HOSTS", host);
}

int ald_git_load(struct ald_session *s, json_t *git)
{
    const char *url = json_string_value(json_object_get(git, "repo"));
    const char *branch = json_string_value(json_object_get(git, "branch"));
    const char *token = json_string_value(json_object_get(git, "token"));
    char host[128], owner[128], name[128];
    if (!url || !branch || !token || ald_repo_parse(url, host, owner, name, sizeof(host)) < 0)
        return AL_EINVAL;
    json_t *env = git_env(host, token);
    if (!env)
        return AL_ENOMEM;
    json_decref(s->git.repo);
    json_decref(s->git.env);
    s->git.repo = json_incref(git);
    s->git.env = env;
    return 0;
}

/* "host/owner/name" of a repository URL, lower-cased (GitHub names are
 * case-insensitive, as the token check has them). 0 or AL_EINVAL. */
static int repo_key(const char *url, char *out, size_t size)
{
    char host[128], owner[128], name[128];
    if (ald_repo_parse(url, host, owner, name, sizeof(host)) < 0)
        return AL_EINVAL;
    int n = snprintf(out, size, "%s/%s/%s", host, owner, name);
    if (n < 0 || (size_t)n >= size)
        return AL_EINVAL;
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return 0;
}

static int same_repo(const char *a, const char *b)
{
    char ka[400], kb[400];
    return a && b && repo_key(a, ka, sizeof(ka)) == 0 && repo_key(b, kb, sizeof(kb)) == 0 &&
           strcmp(ka, kb) == 0;
}

static int clash(struct ald_fault *f, const char *branch)
{
    return ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", "branch",
                         "branch \"%.200s\" is, or collides with, the branch of another session"
                         " on this repository: a session's branch is its own",
                         branch);
}

int ald_git_plan(struct ald *d, const char *id, const struct ald_create_req *req, json_t **out,
                 struct ald_fault *f)
{
    *out = NULL;
    char branch[AL_REFNAME_MAX + 64];
    if (req->branch)
        snprintf(branch, sizeof(branch), "%s", req->branch);
    else if (ald_gitpolicy_session_branch(&d->cfg->git, id, branch, sizeof(branch)) < 0)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
    /* every session ever recorded on this repository, but for those that
     * never became ready (their token never reached a command) */
    json_t *rows = NULL;
    if (ald_store_session_branch_clash(d->st, branch, &rows) < 0) {
        json_decref(rows);
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
    }
    int err = 0;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *rid = json_string_value(json_array_get(row, 0));
        if (rid && strcmp(rid, id) == 0)
            continue; /* this session's own placed row */
        if (same_repo(json_string_value(json_array_get(row, 1)), req->repo)) {
            err = clash(f, branch);
            break;
        }
    }
    json_decref(rows);
    if (err < 0)
        return err;
    *out = json_pack("{s:s, s:s, s:s?}", "repo", req->repo, "branch", branch, "base", req->base);
    return *out ? 0 : ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
}

int ald_git_live_clash(struct ald *d, json_t *git, struct ald_fault *f)
{
    const char *repo = json_string_value(json_object_get(git, "repo"));
    const char *branch = json_string_value(json_object_get(git, "branch"));
    for (struct ald_session *o = d->sessions; o; o = o->next) {
        const char *ob = json_string_value(json_object_get(o->git.repo, "branch"));
        if (ob && ald_branch_collides(ob, branch) &&
            same_repo(json_string_value(json_object_get(o->git.repo, "repo")), repo))
            return clash(f, branch);
    }
    return 0;
}

int ald_git_setup(struct ald *d, struct ald_session *s)
{
    char host[128], owner[128], name[128], repo_id[400], ref[AL_REFNAME_MAX + 80];
    pthread_mutex_lock(&d->lock);
    json_t *plan = json_deep_copy(s->git.repo);
    pthread_mutex_unlock(&d->lock);
    const char *repo = json_string_value(json_object_get(plan, "repo"));
    const char *branch = json_string_value(json_object_get(plan, "branch"));
    int err = 0;
    if (!repo || !branch || ald_repo_parse(repo, host, owner, name, sizeof(host)) < 0) {
        json_decref(plan);
        return al_error_set(AL_EINVAL, "bad repo");
    }
    snprintf(repo_id, sizeof(repo_id), "%s/%s/%s", host, owner, name);
    snprintf(ref, sizeof(ref), "refs/heads/%s", branch);
    struct creds_keyring ring;
    if ((err = signing_key(d, &ring)) < 0) {
        json_decref(plan);
        return err;
    }
    struct creds_claims c;
    memset(&c, 0, sizeof(c));
    char *token = NULL;
    c.session = strdup(s->id);
    c.user = strdup(s->user);
    c.ops = CREDS_OP_FETCH | CREDS_OP_PUSH;
    c.exp = (int64_t)(s->created_ms / 1000 + s->limits.ttl_s);
    json_int_t c_exp = (json_int_t)c.exp;
    if (!c.session || !c.user || al_strlist_push(&c.repos, repo_id) < 0 ||
        al_strlist_push(&c.push_refs, ref) < 0)
        err = AL_ENOMEM;
    if (err == 0)
        err = creds_token_mint(&token, &c, &ring);
    creds_claims_clear(&c);
    creds_keyring_clear(&ring);
    /* token_exp: how long a revocation of this session must be kept */
    if (err == 0 && (json_object_set_new(plan, "token", json_string(token)) < 0 ||
                     json_object_set_new(plan, "token_exp", json_integer(c_exp)) < 0))
        err = AL_ENOMEM;
    free(token);
    if (err == 0) {
        pthread_mutex_lock(&d->lock);
        err = ald_git_load(s, plan);
        pthread_mutex_unlock(&d->lock);
    }
    json_decref(plan);
    return err;
}

/* Exit codes of clone_script that refuse the session's branch (409). */
#define CLONE_DEFAULT_BRANCH 90
#define CLONE_BRANCH_EXISTS  91

/* Fetches the repository into /workspace from inside the sandbox (through
 * the git listener) and checks out the session's branch from the base. The
 * values come in the environment, never in the script. `-c` writes
 * remote.origin.vcs=airlock into the new .git/config before the first fetch
 * (git 2.39 runs the helper for it), so origin's URL stays the real one.
 * Before the checkout, with every upstream branch now in refs/remotes/origin
 * (the clone fetched them all): the branch must not be the upstream's
 * default branch (origin/HEAD), nor exist upstream, nor collide there with
 * a branch it would be a directory of or below, ignoring case (exit codes
 * above; the token grants this one branch, so a session only ever pushes to
 * a branch it made). */
static const char clone_script[] =
    "set -e\n"
    "git clone -q -c remote.origin.vcs=airlock ${AIRLOCK_BASE:+--branch \"$AIRLOCK_BASE\"} -- "
    "\"$AIRLOCK_REPO\" .\n"
    "o=refs/remotes/origin\n"
    "if [ \"$(git symbolic-ref -q $o/HEAD || :)\" = \"$o/$AIRLOCK_BRANCH\" ]; then\n"
    "  echo \"airlock: $AIRLOCK_BRANCH is the repository's default branch\" >&2; exit 90\n"
    "fi\n"
    "c=$(git for-each-ref --ignore-case --count=1 --format='%(refname)' \"$o/$AIRLOCK_BRANCH\")\n"
    "p=$AIRLOCK_BRANCH\n"
    "while [ -z \"$c\" ] && [ \"${p%/*}\" != \"$p\" ]; do\n"
    "  p=${p%/*}\n"
    "  for r in $(git for-each-ref --ignore-case --format='%(refname)' \"$o/$p\"); do\n"
    "    if [ ${#r} -eq $((${#o} + 1 + ${#p})) ]; then c=$r; fi\n"
    "  done\n"
    "done\n"
    "if [ -n \"$c\" ]; then\n"
    "  echo \"airlock: $AIRLOCK_BRANCH collides with ${c#$o/} upstream\" >&2; exit 91\n"
    "fi\n"
    "git checkout -q -b \"$AIRLOCK_BRANCH\"\n"
    "git config push.default current\n";

/* The last bytes (at most `max`) of the clone's stderr file, allocated
 * into *out (caller frees); *len 0 and *out NULL when there is none. */
static void clone_stderr_tail(struct ald *d, const char *sid, uint64_t num, size_t max, char **out,
                              size_t *len)
{
    char path[PATH_MAX];
    *out = NULL;
    *len = 0;
    ald_proc_out_path(d, sid, num, 2, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0)
        return;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (buf = malloc(max))) {
        off_t from = st.st_size > (off_t)max ? st.st_size - (off_t)max : 0;
        ssize_t n = pread(fd, buf, max, from);
        if (n > 0) {
            *out = buf;
            *len = (size_t)n;
            buf = NULL;
        }
    }
    free(buf);
    close(fd);
}

int ald_git_clone(struct ald *d, struct ald_session *s)
{
    pthread_mutex_lock(&d->lock);
    json_t *git = json_incref(s->git.repo);
    pthread_mutex_unlock(&d->lock);
    if (!git)
        return 0;
    json_t *base = json_object_get(git, "base");
    const char *branch = json_string_value(json_object_get(git, "branch"));
    char branch_copy[AL_REFNAME_MAX + 64], base_copy[AL_REFNAME_MAX + 64], repo_copy[400];
    snprintf(branch_copy, sizeof(branch_copy), "%s", branch ? branch : "");
    snprintf(base_copy, sizeof(base_copy), "%s",
             json_is_string(base) ? json_string_value(base) : "");
    snprintf(repo_copy, sizeof(repo_copy), "%s",
             json_string_value(json_object_get(git, "repo")) ?: "");
    /* The git proxy serves HOST/OWNER/NAME.git/...: a repository given
     * without ".git" (the create allows both) is cloned with it, so that
     * origin's URL works for every later fetch and push too. */
    size_t rlen = strlen(repo_copy);
    char clone_url[sizeof(repo_copy) + 8];
    snprintf(clone_url, sizeof(clone_url), "%s%s", repo_copy,
             rlen >= 4 && strcmp(repo_copy + rlen - 4, ".git") == 0 ? "" : ".git");
    json_t *env = json_pack("{s:s, s:O, s:s}", "AIRLOCK_REPO", clone_url, "AIRLOCK_BRANCH",
                            json_object_get(git, "branch"), "AIRLOCK_BASE",
                            json_is_string(base) ? json_string_value(base) : "");
    json_decref(git);
    if (!env)
        return AL_ENOMEM;
    int code = -1;
    uint64_t num = 0;
    char *argv[] = {"/bin/sh", "-c", (char *)clone_script, NULL};
    int err = ald_exec_wait(d, s, argv, env, 600, &code, &num);
    json_decref(env);
    if (err == AL_EEXISTS)
        err = AL_EIO; /* AL_EEXISTS says "refused" to the caller */
    if (err == 0 && code == CLONE_DEFAULT_BRANCH)
        err = al_error_set(AL_EEXISTS,
                           "branch \"%.200s\" is the repository's default branch (always one of"
                           " git.protected_refs)",
                           branch_copy);
    else if (err == 0 && code == CLONE_BRANCH_EXISTS)
        err = al_error_set(AL_EEXISTS,
                           "branch \"%.200s\" already exists upstream, or collides there with"
                           " another branch: a session pushes only to a branch it made",
                           branch_copy);
    else if (err == 0 && code != 0) {
        /* The session ends with this failure and its process output with
         * it: the error itself says why (the git proxy's reason, git's last
         * lines). */
        char *tail;
        size_t len;
        char why[900];
        clone_stderr_tail(d, s->id, num, 8192, &tail, &len);
        ald_git_clone_explain(why, sizeof(why), repo_copy, base_copy[0] ? base_copy : NULL, code,
                              tail ? tail : "", len);
        free(tail);
        err = al_error_set(AL_EIO, "%s", why);
    }
    return err;
}
