#include "airlockd/core/gitpolicy.h"

#include "airlock/error.h"
#include "airlock/refname.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEADS     "refs/heads/"
#define HEADS_LEN (sizeof(HEADS) - 1)
/* a session id of the longest form, to check a session_ref with */
#define SAMPLE_ID "s_0123456789abcdef0123"

int ald_gitpolicy_init(struct ald_gitpolicy *g)
{
    memset(g, 0, sizeof(*g));
    g->session_ref = strdup(HEADS "airlock/" ALD_SESSION_PLACEHOLDER);
    g->branch_pattern = strdup("airlock/*");
    if (!g->session_ref || !g->branch_pattern || al_strlist_push(&g->protected_refs, "main") < 0 ||
        al_strlist_push(&g->protected_refs, "master") < 0 ||
        al_strlist_push(&g->protected_refs, "release/*") < 0) {
        ald_gitpolicy_free(g);
        return AL_ENOMEM;
    }
    return 0;
}

void ald_gitpolicy_free(struct ald_gitpolicy *g)
{
    free(g->session_ref);
    free(g->branch_pattern);
    al_strlist_free(&g->protected_refs);
    memset(g, 0, sizeof(*g));
}

/* The length of the directory part of a prefix pattern ("x/" + "*"), or the whole length
 * for an exact name. */
static size_t pattern_base(const char *p, int *wild)
{
    size_t n = strlen(p);
    *wild = n >= 2 && strcmp(p + n - 2, "/*") == 0;
    return *wild ? n - 2 : n;
}

int ald_branch_pattern_match(const char *pattern, const char *branch)
{
    int wild;
    size_t n = pattern_base(pattern, &wild);
    if (!wild)
        return strcmp(pattern, branch) == 0;
    return strncmp(pattern, branch, n) == 0 && branch[n] == '/' && branch[n + 1] != '\0';
}

/* 1 when a[0..an) and b[0..bn) collide (see ald_branch_collides). */
static int collides_n(const char *a, size_t an, const char *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    if (strncasecmp(a, b, n) != 0)
        return 0;
    return an == bn || (an < bn ? b[an] == '/' : a[bn] == '/');
}

int ald_branch_collides(const char *a, const char *b)
{
    return collides_n(a, strlen(a), b, strlen(b));
}

/* 1 when a branch collides with a protected pattern: for "x/" + "*" anything
 * colliding with "x" (so "x" itself, which would block every "x/…", and
 * a directory of "x"); for an exact name, that name's collisions. */
static int protected_match(const char *pattern, const char *branch)
{
    int wild;
    size_t n = pattern_base(pattern, &wild);
    return collides_n(pattern, n, branch, strlen(branch));
}

/* 1 when s[0..n) is pre + "s_" + hex digits + post, ignoring ASCII case. */
static int session_form(const char *s, size_t n, const char *pre, size_t lpre, const char *post,
                        size_t lpost)
{
    if (n < lpre + 3 + lpost || strncasecmp(s, pre, lpre) != 0 ||
        strncasecmp(s + n - lpost, post, lpost) != 0)
        return 0;
    const char *id = s + lpre;
    size_t idn = n - lpre - lpost;
    if (tolower((unsigned char)id[0]) != 's' || id[1] != '_')
        return 0;
    for (size_t i = 2; i < idn; i++)
        if (!isxdigit((unsigned char)id[i]))
            return 0;
    return 1;
}

/* 1 when `branch` collides with the branch of some session (the
 * session_ref form, for any id "s_" + hex). */
static int session_reserved(const struct ald_gitpolicy *g, const char *branch)
{
    const char *form = g->session_ref + HEADS_LEN;
    const char *ph = strstr(form, ALD_SESSION_PLACEHOLDER);
    if (!ph)
        return 0;
    size_t lpre = (size_t)(ph - form);
    const char *post = ph + strlen(ALD_SESSION_PLACEHOLDER);
    size_t lpost = strlen(post), n = strlen(branch);
    /* a directory of every session's branch ("airlock" for "airlock/…") */
    if (n < lpre && form[n] == '/' && strncasecmp(form, branch, n) == 0)
        return 1;
    /* a session's branch, or below one: the branch or one of its
     * directories has the form */
    for (size_t i = 1; i <= n; i++)
        if ((i == n || branch[i] == '/') && session_form(branch, i, form, lpre, post, lpost))
            return 1;
    /* a directory of a session's branch that ends inside `post` */
    for (size_t k = 0; k < lpost; k++)
        if (post[k] == '/' && session_form(branch, n, form, lpre, post, k))
            return 1;
    return 0;
}

int ald_gitpolicy_check_branch(const struct ald_gitpolicy *g, const char *branch, char *why,
                               size_t whysz)
{
    /* the most telling reason first: protected, then reserved, then outside */
    for (size_t i = 0; i < g->protected_refs.len; i++) {
        if (protected_match(g->protected_refs.items[i], branch)) {
            snprintf(why, whysz, "\"%.200s\" is protected (git.protected_refs has \"%.200s\")",
                     branch, g->protected_refs.items[i]);
            return AL_EPERM;
        }
    }
    if (session_reserved(g, branch)) {
        snprintf(why, whysz,
                 "\"%.200s\" has the form of a session's own branch (git.session_ref \"%.200s\"):"
                 " only that session pushes there",
                 branch, g->session_ref);
        return AL_EPERM;
    }
    if (!g->branch_pattern) {
        snprintf(why, whysz,
                 "\"%.200s\": this server does not let API users name a branch"
                 " (git.branch_pattern is null)",
                 branch);
        return AL_EPERM;
    }
    if (!ald_branch_pattern_match(g->branch_pattern, branch)) {
        snprintf(why, whysz, "\"%.200s\" is outside git.branch_pattern \"%.200s\"", branch,
                 g->branch_pattern);
        return AL_EPERM;
    }
    return 0;
}

int ald_gitpolicy_session_branch(const struct ald_gitpolicy *g, const char *id, char *out,
                                 size_t size)
{
    const char *form = g->session_ref + HEADS_LEN;
    const char *ph = strstr(form, ALD_SESSION_PLACEHOLDER);
    if (!ph)
        return al_error_set(AL_EINVAL, "git.session_ref has no %s", ALD_SESSION_PLACEHOLDER);
    int n = snprintf(out, size, "%.*s%s%s", (int)(ph - form), form, id,
                     ph + strlen(ALD_SESSION_PLACEHOLDER));
    if (n < 0 || (size_t)n >= size)
        return al_error_set(AL_ETOOBIG, "the session's branch is too long");
    return 0;
}

static int fail(const char *name, const char *key, const char *why)
{
    return al_error_set(AL_EINVAL, "%s: %s: %s", name, key, why);
}

/* A pattern: a valid branch name, or one followed by "/" + "*". */
static int pattern_valid(const char *p)
{
    int wild;
    size_t n = pattern_base(p, &wild);
    return n > 0 && al_refname_branch_valid(p, n);
}

static int get_pattern(const char *name, const char *key, json_t *v, char **out)
{
    const char *s = json_string_value(v);
    if (!s)
        return fail(name, key, "expected a string");
    if (strlen(s) != json_string_length(v) || !pattern_valid(s))
        return fail(name, key, "expected a branch name, or one followed by \"/*\"");
    char *dup = strdup(s);
    if (!dup)
        return AL_ENOMEM;
    free(*out);
    *out = dup;
    return 0;
}

static int load_protected(struct ald_gitpolicy *g, const char *name, json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) > 256)
        return fail(name, "git.protected_refs", "expected an array of at most 256 patterns");
    struct al_strlist list = AL_STRLIST_INIT;
    int err = 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        char key[48], *p = NULL;
        snprintf(key, sizeof(key), "git.protected_refs[%zu]", i);
        if ((err = get_pattern(name, key, e, &p)) < 0 ||
            (err = al_strlist_push_owned(&list, p)) < 0)
            break;
    }
    if (err < 0) {
        al_strlist_free(&list);
        return err;
    }
    al_strlist_free(&g->protected_refs);
    g->protected_refs = list;
    return 0;
}

static int load_session_ref(struct ald_gitpolicy *g, const char *name, json_t *v)
{
    static const char key[] = "git.session_ref";
    const char *s = json_string_value(v);
    if (!s || strlen(s) != json_string_length(v))
        return fail(name, key, "expected a string");
    const char *ph = strstr(s, ALD_SESSION_PLACEHOLDER);
    if (strncmp(s, HEADS, HEADS_LEN) != 0 || !ph || strstr(ph + 1, ALD_SESSION_PLACEHOLDER))
        return fail(name, key, "expected \"refs/heads/…\" holding \"{session}\" once");
    char sample[AL_REFNAME_MAX + 64];
    int n = snprintf(sample, sizeof(sample), "%.*s%s%s", (int)(ph - s), s, SAMPLE_ID,
                     ph + strlen(ALD_SESSION_PLACEHOLDER));
    if (n < 0 || (size_t)n >= sizeof(sample) ||
        !al_refname_branch_valid(sample + HEADS_LEN, (size_t)n - HEADS_LEN))
        return fail(name, key, "not a valid ref name once \"{session}\" is a session id");
    char *dup = strdup(s);
    if (!dup)
        return AL_ENOMEM;
    free(g->session_ref);
    g->session_ref = dup;
    return 0;
}

int ald_gitpolicy_load(struct ald_gitpolicy *g, const char *name, json_t *v)
{
    if (!json_is_object(v))
        return fail(name, "git", "expected an object");
    const char *k;
    json_t *x;
    int err = 0;
    json_object_foreach(v, k, x)
    {
        if (strcmp(k, "session_ref") == 0) {
            err = load_session_ref(g, name, x);
        } else if (strcmp(k, "branch_pattern") == 0) {
            if (json_is_null(x)) {
                free(g->branch_pattern);
                g->branch_pattern = NULL;
            } else {
                err = get_pattern(name, "git.branch_pattern", x, &g->branch_pattern);
            }
        } else if (strcmp(k, "protected_refs") == 0) {
            err = load_protected(g, name, x);
        } else {
            char key[80];
            snprintf(key, sizeof(key), "git.%.40s", k);
            err = fail(name, key, "unknown key");
        }
        if (err < 0)
            return err;
    }
    /* the sessions' own branches are never protected ones */
    char branch[AL_REFNAME_MAX + 64];
    if ((err = ald_gitpolicy_session_branch(g, SAMPLE_ID, branch, sizeof(branch))) < 0)
        return err;
    for (size_t i = 0; i < g->protected_refs.len; i++) {
        if (protected_match(g->protected_refs.items[i], branch)) {
            char why[300];
            snprintf(why, sizeof(why), "its branches collide with git.protected_refs \"%.200s\"",
                     g->protected_refs.items[i]);
            return fail(name, "git.session_ref", why);
        }
    }
    return 0;
}

/* A host, owner or repository name: 1..100 of [A-Za-z0-9._-], not "." or
 * "..", not starting with '-'. */
static int name_ok(const char *s, size_t n)
{
    if (n < 1 || n > 100 || s[0] == '-' || (n == 1 && s[0] == '.') ||
        (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return 0;
    return 1;
}

int ald_repo_parse(const char *url, char *host, char *owner, char *name, size_t size)
{
    if (strncmp(url, "https://", 8) != 0)
        return AL_EINVAL;
    const char *p = url + 8;
    const char *parts[3];
    size_t lens[3];
    for (int i = 0; i < 3; i++) {
        size_t n = strcspn(p, "/");
        parts[i] = p;
        lens[i] = n;
        p += n;
        if (i < 2) {
            if (*p != '/')
                return AL_EINVAL;
            p++;
        }
    }
    if (*p != '\0')
        return AL_EINVAL;
    if (lens[2] > 4 && memcmp(parts[2] + lens[2] - 4, ".git", 4) == 0)
        lens[2] -= 4;
    char *outs[3] = {host, owner, name};
    for (int i = 0; i < 3; i++) {
        if (!name_ok(parts[i], lens[i]) || lens[i] >= size)
            return AL_EINVAL;
        memcpy(outs[i], parts[i], lens[i]);
        outs[i][lens[i]] = '\0';
    }
    return 0;
}
