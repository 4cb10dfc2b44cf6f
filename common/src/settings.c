/* Settings files: shape detection, a table per JSON object describing its
 * keys, and one walker that validates every value against its table and
 * applies it to the policy. docs/settings.md lists the same keys for users. */
#include "airlock/settings.h"
#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/glob.h"
#include "settings_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Claude Code's managed settings on Linux (its settings documentation). */
#define CC_MANAGED_SETTINGS "/etc/claude-code/managed-settings.json"

struct load_ctx {
    struct al_policy *policy;
    const char *name; /* file name for messages */
    const char *home;
    const char *cwd;
    const char *rule_base; /* what "/x" in a permission rule is relative to */
    int check_host;        /* paths are the host's: warn about missing ones */
    int cc;                /* the file is a Claude Code settings.json */
    int managed;           /* the file is Claude Code's managed settings */
};

enum kind {
    K_BOOL,           /* true/false; stored in an int field */
    K_INT,            /* integer in [min, max]; stored in an int field */
    K_STRING,         /* string; stored in a char * field (replaced) */
    K_ENUM,           /* one of `choices` */
    K_STRINGS,        /* list of strings */
    K_PATHS,          /* list of paths, expanded, appended to a strlist */
    K_DOMAINS,        /* list of domain patterns */
    K_DENIED_DOMAINS, /* list of domain patterns, "*" allowed */
    K_ADDRESSES,      /* list of IP/CIDR literals */
    K_OBJECT,         /* object whose keys are `sub` */
    K_OBJECTS,        /* list of objects whose keys are `sub` */
    K_MAP_STRINGS,    /* object with any keys, each a list of strings */
    K_MAP_STRING,     /* object with any keys, each a non-empty string */
    K_PORT_RANGE,     /* [low, high], 1..65535 */
    K_CUSTOM,         /* `apply` checks and stores */
};

enum {
    F_NULLABLE = 1, /* null resets the field to its "none" value */
    F_NONEMPTY = 2, /* strings must not be "" */
    F_ABSOLUTE = 4, /* strings must be absolute paths */
    F_REQUIRED = 8, /* in K_OBJECTS entries: the key must be present */
    F_NOSLASH = 16, /* strings must not contain '/' */
};

#define NO_FIELD ((size_t)-1)
#define FIELD(f) offsetof(struct al_policy, f)

struct key;
typedef int (*apply_fn)(struct load_ctx *ctx, const char *kp, json_t *value);

struct key {
    const char *name;
    enum kind kind;
    size_t field;               /* offset in struct al_policy, or NO_FIELD */
    int flags;                  /* F_* */
    const struct key *sub;      /* K_OBJECT, K_OBJECTS */
    apply_fn apply;             /* K_CUSTOM; for K_OBJECT(S) run after validation */
    long min, max;              /* K_INT */
    const char *const *choices; /* K_ENUM, NULL-terminated */
};

static int walk_object(struct load_ctx *ctx, const char *kp, json_t *obj, const struct key *keys);

/* --- messages ------------------------------------------------------------ */

/* "name: kp: message"; kp may be "" for the top level. */
static int __attribute__((format(printf, 4, 5)))
fail(struct load_ctx *ctx, int code, const char *kp, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (kp[0])
        return al_error_set(code, "%s: %s: %s", ctx->name, kp, msg);
    return al_error_set(code, "%s: %s", ctx->name, msg);
}

/* Adds "name: kp: message" to the policy's warnings (once). Returns 0, or
 * AL_ENOMEM. */
static int __attribute__((format(printf, 3, 4)))
warn(struct load_ctx *ctx, const char *kp, const char *fmt, ...)
{
    char msg[768], line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (kp[0])
        snprintf(line, sizeof(line), "%s: %s: %s", ctx->name, kp, msg);
    else
        snprintf(line, sizeof(line), "%s: %s", ctx->name, msg);
    if (al_strlist_push_unique(&ctx->policy->warnings, line) < 0)
        return al_error_set(AL_ENOMEM, "out of memory");
    return 0;
}

/* Like fail() with the reason a check left in al_error_last(). */
static int fail_last(struct load_ctx *ctx, int code, const char *kp)
{
    char reason[512];
    snprintf(reason, sizeof(reason), "%s", al_error_last());
    return fail(ctx, code, kp, "%s", reason);
}

/* Key paths are built in fixed buffers; a key of a path longer than this is
 * cut (only messages see it). */
#define KP_MAX 256

/* Writes "<kp>.<key>" (or "<key>" at the top level), with `key` made safe to
 * print. */
static void kp_child(char *out, const char *kp, const char *key)
{
    char q[96];
    const char *shown = key;
    for (const char *c = key; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '"') {
            shown = al_settings_quote(q, sizeof(q), key);
            break;
        }
    if (kp[0])
        snprintf(out, KP_MAX, "%.*s.%.96s", KP_MAX - 100, kp, shown);
    else
        snprintf(out, KP_MAX, "%.96s", shown);
}

static void kp_index(char *out, const char *kp, size_t i)
{
    snprintf(out, KP_MAX, "%.*s[%zu]", KP_MAX - 24, kp, i);
}

/* Edit distance between `a` and `b` (both short), for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[65];
    if (la > 64 || lb > 64)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost =
                tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest of `names` to `key` when it is close enough to be a typo of
 * it (edit distance at most a third of the key's length, at least 2), or
 * NULL. */
static const char *near_miss(const char *key, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(key, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    size_t limit = strlen(key) / 3 > 2 ? strlen(key) / 3 : 2;
    return best && best_d <= limit ? best : NULL;
}

#define UNKNOWN_MAX_NAMES 64

/* Refuses `key` of the object at `kp`, suggesting the closest of `keys` (and
 * of `extra`, NULL-terminated, when given). */
static int unknown_key_in(struct load_ctx *ctx, const char *kp, const char *key,
                          const struct key *keys, const char *const *extra)
{
    char child[KP_MAX];
    const char *names[UNKNOWN_MAX_NAMES];
    size_t n = 0;
    for (const struct key *k = keys; k->name && n < UNKNOWN_MAX_NAMES; k++)
        names[n++] = k->name;
    for (size_t i = 0; extra && extra[i] && n < UNKNOWN_MAX_NAMES; i++)
        names[n++] = extra[i];
    kp_child(child, kp, key);
    const char *best = near_miss(key, names, n);
    if (best)
        return fail(ctx, AL_EINVAL, child, "unknown key (did you mean \"%s\"?)", best);
    return fail(ctx, AL_EINVAL, child, "unknown key");
}

static int unknown_key(struct load_ctx *ctx, const char *kp, const char *key,
                       const struct key *keys)
{
    return unknown_key_in(ctx, kp, key, keys, NULL);
}

/* --- storing ------------------------------------------------------------- */

static struct al_strlist *field_list(struct load_ctx *ctx, size_t field)
{
    return (struct al_strlist *)((char *)ctx->policy + field);
}

static int *field_int(struct load_ctx *ctx, size_t field)
{
    return (int *)((char *)ctx->policy + field);
}

/* Appends `s` (owned) unless already there. */
static int push_unique_owned(struct al_strlist *list, char *s)
{
    if (!s)
        return AL_ENOMEM;
    if (al_strlist_find(list, s) >= 0) {
        free(s);
        return 0;
    }
    return al_strlist_push_owned(list, s);
}

static int oom(struct load_ctx *ctx, const char *kp)
{
    return fail(ctx, AL_ENOMEM, kp, "out of memory");
}

/* Checks one string of a list of `kind`, and when `list` is given appends
 * its stored form. */
static int list_item(struct load_ctx *ctx, const char *kp, const struct key *key,
                     struct al_strlist *list, const char *s)
{
    char q[96];
    char *copy;

    switch (key->kind) {
    case K_PATHS:
        copy = al_settings_expand_path(s, ctx->home, ctx->cwd);
        if (!copy)
            return fail_last(ctx, AL_EINVAL, kp);
        break;
    case K_DOMAINS:
    case K_DENIED_DOMAINS:
        if ((key->kind == K_DOMAINS ? al_settings_check_domain(s)
                                    : al_settings_check_denied_domain(s)) < 0)
            return fail_last(ctx, AL_EINVAL, kp);
        copy = strdup(s);
        if (copy)
            for (char *c = copy; *c; c++)
                *c = (char)((*c >= 'A' && *c <= 'Z') ? *c - 'A' + 'a' : *c);
        break;
    case K_ADDRESSES:
        if (al_settings_check_address(s) < 0)
            return fail_last(ctx, AL_EINVAL, kp);
        copy = strdup(s);
        break;
    default:
        if ((key->flags & F_NONEMPTY) && s[0] == '\0')
            return fail(ctx, AL_EINVAL, kp, "expected a non-empty string");
        if ((key->flags & F_NOSLASH) && strchr(s, '/'))
            return fail(ctx, AL_EINVAL, kp, "%s: expected a command name, not a path",
                        al_settings_quote(q, sizeof(q), s));
        copy = strdup(s);
        break;
    }
    if (!list) {
        free(copy);
        return 0;
    }
    if (push_unique_owned(list, copy) < 0)
        return oom(ctx, kp);
    return 0;
}

/* True when `path` (absolute, expanded) names nothing on the host. A glob
 * pattern is never "missing": what it matches is found when a sandbox
 * starts. */
static int path_missing(const char *path)
{
    struct stat st;
    return !al_glob_has_magic(path) && lstat(path, &st) < 0 && errno == ENOENT;
}

/* Collects the host paths of one list that do not exist, for one warning
 * per list. */
struct missing {
    char text[600]; /* "\"/a\", \"/b\"" (cut with "..." when long) */
    size_t n;
};

static void missing_add(struct missing *m, const char *path)
{
    char q[200];
    size_t len = strlen(m->text);
    al_settings_quote(q, sizeof(q), path);
    if (len + strlen(q) + 8 < sizeof(m->text))
        snprintf(m->text + len, sizeof(m->text) - len, "%s%s", m->n ? ", " : "", q);
    else if (!strstr(m->text, ", ..."))
        snprintf(m->text + len, sizeof(m->text) - len, ", ...");
    m->n++;
}

static int is_deny_field(size_t field)
{
    return field == FIELD(deny_read) || field == FIELD(deny_write);
}

/* The warning for the missing paths `m` of the list at `kp`: a grant of a
 * missing path does nothing (airlock creates nothing); a denial is kept, and
 * hides the path in sandboxes started once it exists. */
static int missing_warn(struct load_ctx *ctx, const char *kp, const struct missing *m, int deny)
{
    if (!m->n)
        return 0;
    if (deny)
        return warn(ctx, kp, "%s %s: %s kept and %s to sandboxes started after %s", m->text,
                    m->n > 1 ? "do not exist (yet)" : "does not exist (yet)",
                    m->n > 1 ? "the rules are" : "the rule is", m->n > 1 ? "apply" : "applies",
                    m->n > 1 ? "they appear" : "it appears");
    return warn(ctx, kp,
                "%s %s not exist: the entry has no effect (airlock creates nothing; "
                "create it first, or fix the path)",
                m->text, m->n > 1 ? "do" : "does");
}

/* Claude Code's documentation gives "/x" in sandbox.filesystem as relative
 * to the settings file's folder (its settings schema: "// (absolute), ~/
 * (home directory), / (relative to settings file)"), where airlock (and srt)
 * read it as absolute. In a settings.json read from disk:
 *  - in a deny list the settings-relative path is denied as well, so
 *    neither reading leaves a file readable or writable;
 *  - a grant keeps the absolute reading, and when the settings-relative
 *    path exists (so the two readings name different things) a warning says
 *    which one was granted and how to write the other. */
static int settings_relative(struct load_ctx *ctx, const char *kp, struct al_strlist *list,
                             int deny, const char *s)
{
    char buf[AL_SETTINGS_PATH_MAX + 8], q[200], qa[200];
    if (!ctx->cc || !ctx->rule_base || s[0] != '/' || s[1] == '/' ||
        strcmp(ctx->rule_base, "/") == 0)
        return 0;
    if ((size_t)snprintf(buf, sizeof(buf), "%s%s", ctx->rule_base, s) >= sizeof(buf))
        return 0; /* too long to exist */
    char *path = al_settings_expand_path(buf, ctx->home, ctx->cwd);
    if (!path)
        return fail_last(ctx, AL_EINVAL, kp);
    if (deny) {
        if (push_unique_owned(list, path) < 0)
            return oom(ctx, kp);
        return 0;
    }
    int err = 0;
    if (ctx->check_host && !path_missing(path) && !al_glob_has_magic(path))
        err =
            warn(ctx, kp,
                 "%s is the absolute path here; Claude Code reads it relative to the settings "
                 "file, as %s, which exists and is NOT granted: write %s to grant that, or "
                 "\"/%s\" to keep the absolute path and silence this",
                 al_settings_quote(qa, sizeof(qa), s), al_settings_quote(q, sizeof(q), path), q, s);
    free(path);
    return err;
}

static int walk_list(struct load_ctx *ctx, const char *kp, json_t *value, const struct key *key)
{
    char child[KP_MAX];
    size_t i;
    json_t *item;
    struct al_strlist *list = key->field == NO_FIELD ? NULL : field_list(ctx, key->field);
    struct missing missing = {{0}, 0};

    if (!json_is_array(value))
        return fail(ctx, AL_EINVAL, kp, "expected a list of strings");
    json_array_foreach(value, i, item)
    {
        kp_index(child, kp, i);
        if (!json_is_string(item))
            return fail(ctx, AL_EINVAL, child, "expected a string (in a list of strings)");
        size_t before = list ? list->len : 0;
        int err = list_item(ctx, child, key, list, json_string_value(item));
        if (err < 0)
            return err;
        if (key->kind == K_PATHS && ctx->check_host && list && list->len > before &&
            path_missing(list->items[list->len - 1]))
            missing_add(&missing, list->items[list->len - 1]);
        if (key->kind == K_PATHS && list &&
            (err = settings_relative(ctx, child, list, is_deny_field(key->field),
                                     json_string_value(item))) < 0)
            return err;
    }
    return missing_warn(ctx, kp, &missing, list && is_deny_field(key->field));
}

/* --- the walker ---------------------------------------------------------- */

static int walk_string(struct load_ctx *ctx, const char *kp, json_t *value, const struct key *key)
{
    char q[96];
    if (json_is_null(value) && (key->flags & F_NULLABLE)) {
        if (key->field != NO_FIELD) {
            char **slot = (char **)((char *)ctx->policy + key->field);
            free(*slot);
            *slot = NULL;
        }
        return 0;
    }
    if (!json_is_string(value))
        return fail(ctx, AL_EINVAL, kp, "expected a string");
    const char *s = json_string_value(value);
    if ((key->flags & F_NONEMPTY) && s[0] == '\0')
        return fail(ctx, AL_EINVAL, kp, "expected a non-empty string");
    if ((key->flags & F_ABSOLUTE) && s[0] != '/')
        return fail(ctx, AL_EINVAL, kp, "%s: expected an absolute path",
                    al_settings_quote(q, sizeof(q), s));
    if (key->field != NO_FIELD) {
        char **slot = (char **)((char *)ctx->policy + key->field);
        char *copy = strdup(s);
        if (!copy)
            return oom(ctx, kp);
        free(*slot);
        *slot = copy;
    }
    return 0;
}

static int walk_enum(struct load_ctx *ctx, const char *kp, json_t *value, const struct key *key)
{
    char want[256];
    size_t n = 0;
    if (json_is_string(value))
        for (size_t i = 0; key->choices[i]; i++)
            if (strcmp(json_string_value(value), key->choices[i]) == 0)
                return 0;
    want[0] = '\0';
    for (size_t i = 0; key->choices[i] && n < sizeof(want); i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n, "%s\"%s\"", i ? ", " : "",
                              key->choices[i]);
    return fail(ctx, AL_EINVAL, kp, "expected one of %s", want);
}

static int walk_int(struct load_ctx *ctx, const char *kp, json_t *value, const struct key *key)
{
    if (json_is_null(value) && (key->flags & F_NULLABLE)) {
        if (key->field != NO_FIELD)
            *field_int(ctx, key->field) = 0;
        return 0;
    }
    if (!json_is_integer(value) || json_integer_value(value) < key->min ||
        json_integer_value(value) > key->max)
        return fail(ctx, AL_EINVAL, kp, "expected an integer from %ld to %ld", key->min, key->max);
    if (key->field != NO_FIELD)
        *field_int(ctx, key->field) = (int)json_integer_value(value);
    return 0;
}

static int walk_map(struct load_ctx *ctx, const char *kp, json_t *value, const struct key *key)
{
    char child[KP_MAX];
    const char *k;
    json_t *v;
    static const struct key strings = {"", K_STRINGS, NO_FIELD, 0, NULL, NULL, 0, 0, NULL};

    if (!json_is_object(value))
        return fail(ctx, AL_EINVAL, kp, "expected an object");
    json_object_foreach(value, k, v)
    {
        kp_child(child, kp, k);
        if (key->kind == K_MAP_STRINGS) {
            int err = walk_list(ctx, child, v, &strings);
            if (err < 0)
                return err;
        } else if (!json_is_string(v) || json_string_value(v)[0] == '\0') {
            return fail(ctx, AL_EINVAL, child, "expected a non-empty string");
        }
    }
    return 0;
}

static int walk_port_range(struct load_ctx *ctx, const char *kp, json_t *value)
{
    json_t *lo = json_array_get(value, 0), *hi = json_array_get(value, 1);
    if (!json_is_array(value) || json_array_size(value) != 2 || !json_is_integer(lo) ||
        !json_is_integer(hi) || json_integer_value(lo) < 1 || json_integer_value(hi) > 65535 ||
        json_integer_value(lo) > json_integer_value(hi))
        return fail(ctx, AL_EINVAL, kp, "expected [low, high] with 1 <= low <= high <= 65535");
    return 0;
}

static int walk_value(struct load_ctx *ctx, const char *kp, json_t *value, const struct key *key)
{
    char child[KP_MAX];
    size_t i;
    json_t *item;
    int err;

    switch (key->kind) {
    case K_BOOL:
        if (!json_is_boolean(value))
            return fail(ctx, AL_EINVAL, kp, "expected true or false");
        if (key->field != NO_FIELD)
            *field_int(ctx, key->field) = json_is_true(value);
        return 0;
    case K_INT:
        return walk_int(ctx, kp, value, key);
    case K_STRING:
        return walk_string(ctx, kp, value, key);
    case K_ENUM:
        return walk_enum(ctx, kp, value, key);
    case K_STRINGS:
    case K_PATHS:
    case K_DOMAINS:
    case K_DENIED_DOMAINS:
    case K_ADDRESSES:
        return walk_list(ctx, kp, value, key);
    case K_OBJECT:
        if ((err = walk_object(ctx, kp, value, key->sub)) < 0)
            return err;
        return key->apply ? key->apply(ctx, kp, value) : 0;
    case K_OBJECTS:
        if (!json_is_array(value))
            return fail(ctx, AL_EINVAL, kp, "expected a list of objects");
        json_array_foreach(value, i, item)
        {
            kp_index(child, kp, i);
            if ((err = walk_object(ctx, child, item, key->sub)) < 0)
                return err;
            if (key->apply && (err = key->apply(ctx, child, item)) < 0)
                return err;
        }
        return 0;
    case K_MAP_STRINGS:
    case K_MAP_STRING:
        return walk_map(ctx, kp, value, key);
    case K_PORT_RANGE:
        return walk_port_range(ctx, kp, value);
    case K_CUSTOM:
        return key->apply(ctx, kp, value);
    }
    return fail(ctx, AL_ERROR, kp, "internal error: unhandled key kind");
}

/* Validates `obj` against `keys` and applies it. Unknown keys are refused
 * before anything of this object is applied; known keys are then handled in
 * table order, so the result does not depend on the order in the file. */
static int walk_object(struct load_ctx *ctx, const char *kp, json_t *obj, const struct key *keys)
{
    char child[KP_MAX];
    const char *k;
    json_t *v;
    int err;

    if (!json_is_object(obj))
        return fail(ctx, AL_EINVAL, kp, "expected an object");
    json_object_foreach(obj, k, v)
    {
        const struct key *key;
        for (key = keys; key->name; key++)
            if (strcmp(key->name, k) == 0)
                break;
        if (!key->name)
            return unknown_key(ctx, kp, k, keys);
    }
    for (const struct key *key = keys; key->name; key++) {
        kp_child(child, kp, key->name);
        v = json_object_get(obj, key->name);
        if (!v) {
            if (key->flags & F_REQUIRED)
                return fail(ctx, AL_EINVAL, child, "missing");
            continue;
        }
        if ((err = walk_value(ctx, child, v, key)) < 0)
            return err;
    }
    return 0;
}

/* --- keys with their own rules ------------------------------------------- */

static int apply_mode(struct load_ctx *ctx, const char *kp, json_t *value)
{
    const char *s = json_is_string(value) ? json_string_value(value) : "";
    if (strcmp(s, "auto-allow") == 0)
        ctx->policy->mode = AL_MODE_AUTO_ALLOW;
    else if (strcmp(s, "regular") == 0)
        ctx->policy->mode = AL_MODE_REGULAR;
    else
        return fail(ctx, AL_EINVAL, kp, "expected \"auto-allow\" or \"regular\"");
    return 0;
}

/* A list of socket paths: appended; turns NONE into LIST (ALL stays ALL). */
static int unix_socket_list(struct load_ctx *ctx, const char *kp, json_t *value)
{
    static const struct key paths = {"", K_PATHS, FIELD(unix_socket_paths), 0, NULL, NULL, 0,
                                     0,  NULL};
    int err = walk_list(ctx, kp, value, &paths);
    if (err < 0)
        return err;
    if (ctx->policy->unix_sockets == AL_UNIX_SOCKETS_NONE)
        ctx->policy->unix_sockets = AL_UNIX_SOCKETS_LIST;
    return 0;
}

/* sandbox.allowUnixSockets: false, true, or a list of socket paths. */
static int apply_unix_sockets(struct load_ctx *ctx, const char *kp, json_t *value)
{
    if (json_is_true(value)) {
        ctx->policy->unix_sockets = AL_UNIX_SOCKETS_ALL;
        return 0;
    }
    if (json_is_false(value)) {
        ctx->policy->unix_sockets = AL_UNIX_SOCKETS_NONE;
        return 0;
    }
    if (!json_is_array(value))
        return fail(ctx, AL_EINVAL, kp, "expected false, true or a list of socket paths");
    return unix_socket_list(ctx, kp, value);
}

/* allowAllUnixSockets: true is ALL; false undoes an earlier ALL only. */
static int apply_all_unix_sockets(struct load_ctx *ctx, const char *kp, json_t *value)
{
    struct al_policy *p = ctx->policy;
    if (!json_is_boolean(value))
        return fail(ctx, AL_EINVAL, kp, "expected true or false");
    if (json_is_true(value))
        p->unix_sockets = AL_UNIX_SOCKETS_ALL;
    else if (p->unix_sockets == AL_UNIX_SOCKETS_ALL)
        p->unix_sockets = p->unix_socket_paths.len ? AL_UNIX_SOCKETS_LIST : AL_UNIX_SOCKETS_NONE;
    return 0;
}

/* srt filesystem.disabled: turning every filesystem rule off is not offered. */
static int apply_fs_disabled(struct load_ctx *ctx, const char *kp, json_t *value)
{
    if (!json_is_boolean(value))
        return fail(ctx, AL_EINVAL, kp, "expected true or false");
    if (json_is_true(value))
        return fail(ctx, AL_EINVAL, kp,
                    "true is not supported: airlock always enforces a filesystem policy");
    return 0;
}

/* --- credentials (issue 15) ---------------------------------------------- */

/* Lower-cases the ASCII letters of `s` in place. */
static void ascii_lower(char *s)
{
    for (char *c = s; *c; c++)
        *c = (char)((*c >= 'A' && *c <= 'Z') ? *c - 'A' + 'a' : *c);
}

/* The injectHosts of a credential entry at `kp` (already type-checked as
 * domain patterns) into `out`: not empty, host names without a port,
 * lower-cased. Absent: `out` stays empty, which means every allowedDomains
 * entry (al_masked_inject_hosts), as in Claude Code and sandbox-runtime; a
 * warning says so. */
static int inject_hosts_get(struct load_ctx *ctx, const char *kp, json_t *obj,
                            struct al_strlist *out)
{
    char child[KP_MAX], item_kp[KP_MAX], q[96];
    json_t *hosts = json_object_get(obj, "injectHosts");
    size_t i;
    json_t *h;

    kp_child(child, kp, "injectHosts");
    if (!hosts)
        return warn(ctx, kp,
                    "mode \"mask\" without injectHosts: the real value may be sent to every "
                    "allowedDomains entry (as in Claude Code and sandbox-runtime); list the hosts "
                    "it is for to narrow it");
    if (json_array_size(hosts) == 0)
        return fail(ctx, AL_EINVAL, child,
                    "is empty: the real value would never be sent; list the hosts it is for");
    json_array_foreach(hosts, i, h)
    {
        const char *s = json_string_value(h);
        kp_index(item_kp, child, i);
        if (strchr(s, ':'))
            return fail(ctx, AL_EINVAL, item_kp,
                        "%s: expected a host name without a port (a credential is put back for "
                        "the host on any port allowedDomains allows)",
                        al_settings_quote(q, sizeof(q), s));
        char *copy = strdup(s);
        if (!copy)
            return oom(ctx, kp);
        ascii_lower(copy);
        if (push_unique_owned(out, copy) < 0)
            return oom(ctx, kp);
    }
    return 0;
}

/* Adds or replaces (same name: the later entry wins) a masked credential in
 * `*v` / `*n`, taking `hosts` and `extract` (NULL allowed). */
static int masked_put(struct al_masked **v, size_t *n, const char *name, struct al_strlist *hosts,
                      const char *extract)
{
    struct al_masked *m = NULL;
    char *ex = extract ? strdup(extract) : NULL;
    if (extract && !ex)
        return AL_ENOMEM;
    for (size_t i = 0; i < *n && !m; i++)
        if (strcmp((*v)[i].name, name) == 0)
            m = &(*v)[i];
    if (!m) {
        char *nm = strdup(name);
        struct al_masked *grown = nm ? realloc(*v, (*n + 1) * sizeof(**v)) : NULL;
        if (!grown) {
            free(nm);
            free(ex);
            return AL_ENOMEM;
        }
        *v = grown;
        m = &grown[(*n)++];
        memset(m, 0, sizeof(*m));
        m->name = nm;
    }
    al_strlist_free(&m->inject_hosts);
    m->inject_hosts = *hosts;
    memset(hosts, 0, sizeof(*hosts));
    free(m->extract);
    m->extract = ex;
    return 0;
}

/* The keys of a credential entry that mean something only with mode "mask". */
static const char *const mask_only_keys[] = {"extract",    "onExtractNoMatch", "decode",
                                             "maskClaims", "maskDuplicates",   "injectHosts"};

/* A "deny" entry: keys that mean something only for "mask" are warned
 * about (sandbox-runtime accepts and ignores them). */
static int deny_entry_extras(struct load_ctx *ctx, const char *kp, json_t *obj)
{
    char child[KP_MAX];
    for (size_t i = 0; i < sizeof(mask_only_keys) / sizeof(*mask_only_keys); i++) {
        if (!json_object_get(obj, mask_only_keys[i]))
            continue;
        kp_child(child, kp, mask_only_keys[i]);
        int err = warn(ctx, child, "ignored: it means something only with mode \"mask\"");
        if (err < 0)
            return err;
    }
    return 0;
}

/* Refuses what sandbox-runtime's masking does and airlock's does not, for a
 * "mask" entry at `kp` (files: `file` 1). */
static int mask_entry_refusals(struct load_ctx *ctx, const char *kp, json_t *obj, int file)
{
    char child[KP_MAX];
    json_t *v;
    if (json_object_get(obj, "decode")) {
        kp_child(child, kp, "decode");
        return fail(ctx, AL_EINVAL, child,
                    "not supported: airlock does not decode JWTs; it masks the whole %s; "
                    "remove it, or use mode \"deny\"",
                    file ? "file (or what extract matches)" : "value");
    }
    if (json_object_get(obj, "maskClaims")) {
        kp_child(child, kp, "maskClaims");
        return fail(ctx, AL_EINVAL, child,
                    "not supported: airlock does not decode JWTs to mask single claims; remove "
                    "it, or use mode \"deny\"");
    }
    if (json_is_true(json_object_get(obj, "maskDuplicates"))) {
        kp_child(child, kp, "maskDuplicates");
        return fail(ctx, AL_EINVAL, child,
                    "true is not supported: airlock replaces only what extract matches; remove "
                    "it, or use mode \"deny\"");
    }
    if (!file && json_object_get(obj, "extract")) {
        kp_child(child, kp, "extract");
        return fail(ctx, AL_EINVAL, child,
                    "not supported for envVars: airlock masks a variable's whole value; remove "
                    "it, or use mode \"deny\"");
    }
    if ((v = json_object_get(obj, "onExtractNoMatch"))) {
        kp_child(child, kp, "onExtractNoMatch");
        const char *s = json_string_value(v);
        if (strcmp(s, "warn") == 0)
            return fail(ctx, AL_EINVAL, child,
                        "\"warn\" is not supported: airlock never leaves a credential unmasked; "
                        "use \"error\" (airlock's behaviour: a file extract does not match stops "
                        "the sandbox from starting)");
        if (strcmp(s, "deny") == 0 && file && json_object_get(obj, "extract"))
            return warn(ctx, child,
                        "\"deny\": airlock refuses to start when extract matches nothing, "
                        "rather than hiding the file");
    }
    return 0;
}

/* credentials.files[i] (both shapes): "deny" hides the path (denyRead);
 * "mask" gives the sandbox the file with its secret(s) replaced by
 * sentinels (policy->mask_files). */
static int apply_credential_file(struct load_ctx *ctx, const char *kp, json_t *obj)
{
    char child[KP_MAX], q[200];
    struct al_strlist hosts = {0};
    int err;

    kp_child(child, kp, "path");
    const char *given = json_string_value(json_object_get(obj, "path"));
    char *path = al_settings_expand_path(given, ctx->home, ctx->cwd);
    if (!path)
        return fail_last(ctx, AL_EINVAL, child);
    if (strcmp(json_string_value(json_object_get(obj, "mode")), "deny") == 0) {
        if (push_unique_owned(&ctx->policy->deny_read, path) < 0)
            return oom(ctx, kp);
        return deny_entry_extras(ctx, kp, obj);
    }
    al_settings_quote(q, sizeof(q), path);
    if (given[strlen(given) - 1] == '/')
        err = fail(ctx, AL_EINVAL, child,
                   "%s: mode \"mask\" applies to one file, not a directory: use mode \"deny\" "
                   "for it, or name the credential file inside it",
                   q);
    else if (al_glob_has_magic(path))
        err = fail(ctx, AL_EINVAL, child,
                   "%s: mode \"mask\" applies to one file, not a pattern: name the file", q);
    else
        err = mask_entry_refusals(ctx, kp, obj, 1);
    json_t *ex = json_object_get(obj, "extract");
    if (err == 0 && ex) {
        regex_t re;
        int rc = regcomp(&re, json_string_value(ex), REG_EXTENDED);
        if (rc != 0) {
            char why[128];
            regerror(rc, &re, why, sizeof(why));
            kp_child(child, kp, "extract");
            err =
                fail(ctx, AL_EINVAL, child, "%s: not a valid POSIX extended regular expression: %s",
                     al_settings_quote(q, sizeof(q), json_string_value(ex)), why);
        } else {
            regfree(&re);
        }
    }
    if (err == 0)
        err = inject_hosts_get(ctx, kp, obj, &hosts);
    if (err == 0 && ctx->check_host && path_missing(path))
        err = warn(ctx, child, "%s does not exist: there is nothing to mask", q);
    if (err == 0 && masked_put(&ctx->policy->mask_files, &ctx->policy->n_mask_files, path, &hosts,
                               ex ? json_string_value(ex) : NULL) < 0)
        err = oom(ctx, kp);
    al_strlist_free(&hosts);
    free(path);
    return err;
}

/* credentials.envVars[i] (both shapes): "deny" never passes the variable
 * (deny_env); "mask" passes a sentinel (policy->mask_env). */
static int apply_credential_env(struct load_ctx *ctx, const char *kp, json_t *obj)
{
    char child[KP_MAX], q[96];
    struct al_strlist hosts = {0};
    int err;

    const char *name = json_string_value(json_object_get(obj, "name"));
    kp_child(child, kp, "name");
    if (!name[0] || (!isalpha((unsigned char)name[0]) && name[0] != '_') ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
            strlen(name))
        return fail(ctx, AL_EINVAL, child, "%s: expected a variable name ([A-Za-z_][A-Za-z0-9_]*)",
                    al_settings_quote(q, sizeof(q), name));
    if (strcmp(json_string_value(json_object_get(obj, "mode")), "deny") == 0) {
        if (push_unique_owned(&ctx->policy->deny_env, strdup(name)) < 0)
            return oom(ctx, kp);
        return deny_entry_extras(ctx, kp, obj);
    }
    if ((err = mask_entry_refusals(ctx, kp, obj, 0)) < 0)
        return err;
    if ((err = inject_hosts_get(ctx, kp, obj, &hosts)) == 0 &&
        masked_put(&ctx->policy->mask_env, &ctx->policy->n_mask_env, name, &hosts, NULL) < 0)
        err = oom(ctx, kp);
    al_strlist_free(&hosts);
    if (err == 0 &&
        (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0 || strcmp(name, "AWS_SESSION_TOKEN") == 0))
        err = warn(ctx, kp,
                   "%s: airlock does not re-sign AWS SigV4 requests, so a request signed with "
                   "the sentinel is refused by AWS; use mode \"deny\" for AWS keys",
                   name);
    return err;
}

/* credentials.awsPairs and credentials.sigv4: an empty value changes
 * nothing; anything else asks for SigV4 re-signing, which airlock does not
 * do. */
static int refuse_aws(struct load_ctx *ctx, const char *kp, json_t *value)
{
    int pairs = strcmp(strrchr(kp, '.') + 1, "awsPairs") == 0;
    if (pairs ? !json_is_array(value) : !json_is_object(value))
        return fail(ctx, AL_EINVAL, kp,
                    pairs ? "expected a list of objects" : "expected an object");
    if (json_array_size(value) == 0 && json_object_size(value) == 0)
        return 0;
    return fail(ctx, AL_EINVAL, kp,
                "not supported: airlock does not re-sign AWS requests; use mode \"deny\" for the "
                "AWS variables");
}

/* Removes from `*v` / `*n` every entry whose name `denied` says is denied,
 * with a warning for each: deny wins over mask, whichever file said it. */
static int masked_prune(struct load_ctx *ctx, struct al_masked *v, size_t *n, const char *key,
                        int (*denied)(const struct al_policy *, const char *))
{
    char kp[KP_MAX], q[200];
    size_t kept = 0;
    int err = 0;
    snprintf(kp, sizeof(kp), "%scredentials.%s", ctx->cc ? "sandbox." : "", key);
    for (size_t i = 0; i < *n; i++) {
        if (!denied(ctx->policy, v[i].name)) {
            v[kept++] = v[i];
            continue;
        }
        if (err == 0)
            err = warn(ctx, kp, "%s is both masked and denied: deny wins, %s",
                       al_settings_quote(q, sizeof(q), v[i].name),
                       key[0] == 'e' ? "the variable is not passed in" : "the file is hidden");
        free(v[i].name);
        free(v[i].extract);
        al_strlist_free(&v[i].inject_hosts);
    }
    *n = kept;
    return err;
}

static int env_denied(const struct al_policy *p, const char *name)
{
    return al_strlist_find(&p->deny_env, name) >= 0;
}

/* A path is denied when a denyRead entry is it, a folder above it, or a
 * pattern matching it. */
static int file_denied(const struct al_policy *p, const char *path)
{
    for (size_t i = 0; i < p->deny_read.len; i++) {
        const char *d = p->deny_read.items[i];
        size_t dl = strlen(d);
        if (strcmp(d, path) == 0 || (strncmp(d, path, dl) == 0 && (path[dl] == '/' || dl == 1)) ||
            (al_glob_has_magic(d) && al_glob_match(d, path)))
            return 1;
    }
    return 0;
}

/* network.tlsTerminate (both shapes): the proxy terminates TLS. caCertPath
 * and caKeyPath come together; in a file read from disk both must be
 * readable files now. */
static int apply_tls_terminate(struct load_ctx *ctx, const char *kp, json_t *obj)
{
    static const char *const names[] = {"caCertPath", "caKeyPath"};
    struct al_policy *p = ctx->policy;
    char child[KP_MAX], q[200];
    char *paths[2] = {NULL, NULL};
    json_t *cert = json_object_get(obj, names[0]), *key = json_object_get(obj, names[1]);
    json_t *v;
    int err = 0;

    if (!cert != !key) {
        kp_child(child, kp, cert ? names[1] : names[0]);
        return fail(ctx, AL_EINVAL, child,
                    "missing: caCertPath and caKeyPath must be given together");
    }
    for (int i = 0; cert && i < 2 && err == 0; i++) {
        kp_child(child, kp, names[i]);
        const char *s = json_string_value(i ? key : cert);
        if (!(paths[i] = al_settings_expand_path(s, ctx->home, ctx->cwd))) {
            err = fail_last(ctx, AL_EINVAL, child);
            break;
        }
        int fd = ctx->check_host ? open(paths[i], O_RDONLY | O_CLOEXEC) : -1;
        if (ctx->check_host && fd < 0)
            err = fail(ctx, AL_EINVAL, child, "%s: cannot be read: %s",
                       al_settings_quote(q, sizeof(q), paths[i]), strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    if (err == 0) {
        p->net.tls_terminate = 1;
        if (cert) {
            free(p->tls.ca_cert_path);
            free(p->tls.ca_key_path);
            p->tls.ca_cert_path = paths[0];
            p->tls.ca_key_path = paths[1];
            paths[0] = paths[1] = NULL;
        }
        if ((v = json_object_get(obj, "maxTunnels")))
            p->tls.max_tunnels = (unsigned)json_integer_value(v);
        if ((v = json_object_get(obj, "handshakeTimeoutMs")))
            p->tls.handshake_timeout_ms = (unsigned)json_integer_value(v);
        /* kept in the policy, but no proxy interface takes them (yet):
         * said so rather than silently ignored */
        for (int i = 0; i < 2 && err == 0; i++) {
            const char *k = i ? "handshakeTimeoutMs" : "maxTunnels";
            kp_child(child, kp, k);
            if (json_object_get(obj, k))
                err = warn(ctx, child,
                           "not applied: airlock's proxy uses its own limits for terminated "
                           "tunnels; remove it to silence this");
        }
    }
    free(paths[0]);
    free(paths[1]);
    return err;
}

/* One string list of a request rule, each entry checked by `check`. An
 * explicit empty list is refused when `nonempty` ("any" is said by leaving
 * the key out). */
static int reqrule_list(struct load_ctx *ctx, const char *kp, json_t *obj, const char *key,
                        int (*check)(const char *, size_t), int nonempty, struct al_strlist *out,
                        int *present)
{
    char child[KP_MAX], item_kp[KP_MAX];
    json_t *arr = json_object_get(obj, key), *v;
    size_t i;
    kp_child(child, kp, key);
    if (present)
        *present = arr != NULL;
    if (!arr)
        return 0;
    if (nonempty && json_array_size(arr) == 0)
        return fail(ctx, AL_EINVAL, child, "is empty: leave the key out to allow any");
    json_array_foreach(arr, i, v)
    {
        kp_index(item_kp, child, i);
        if (check(json_string_value(v), json_string_length(v)) < 0)
            return fail_last(ctx, AL_EINVAL, item_kp);
        if (al_strlist_find(out, json_string_value(v)) < 0 &&
            al_strlist_push(out, json_string_value(v)) < 0)
            return oom(ctx, kp);
    }
    return 0;
}

/* network.requestRules[i] (airlock's own key, both shapes): appended to
 * net.request_rules. */
static int apply_request_rule(struct load_ctx *ctx, const char *kp, json_t *obj)
{
    struct al_netpolicy *np = &ctx->policy->net;
    struct al_reqrule r;
    char child[KP_MAX];
    int err;

    memset(&r, 0, sizeof(r));
    kp_child(child, kp, "host");
    const char *host = json_string_value(json_object_get(obj, "host"));
    if (al_settings_check_domain(host) < 0)
        return fail_last(ctx, AL_EINVAL, child);
    if (!(r.host = strdup(host)))
        return oom(ctx, kp);
    ascii_lower(r.host);
    err = reqrule_list(ctx, kp, obj, "methods", al_reqrule_check_method, 1, &r.methods, NULL);
    if (err == 0)
        err = reqrule_list(ctx, kp, obj, "paths", al_reqrule_check_path, 1, &r.paths, NULL);
    if (err == 0)
        err = reqrule_list(ctx, kp, obj, "queryKeys", al_reqrule_check_query_key, 0, &r.query_keys,
                           &r.has_query_keys);
    if (err == 0) {
        struct al_reqrule *grown =
            realloc(np->request_rules, (np->n_request_rules + 1) * sizeof(*grown));
        if (!grown) {
            err = oom(ctx, kp);
        } else {
            np->request_rules = grown;
            grown[np->n_request_rules++] = r;
            return 0;
        }
    }
    al_reqrule_free(&r);
    return err;
}

/* Keys that configure something only another OS has: a warning when set to
 * anything but their default (false, an empty list or object). */
static int apply_other_os(struct load_ctx *ctx, const char *kp, json_t *value)
{
    const char *key = strrchr(kp, '.') ? strrchr(kp, '.') + 1 : kp;
    int is_list = strcmp(key, "allowMachLookup") == 0;
    if (is_list) {
        static const struct key strings = {"", K_STRINGS, NO_FIELD, 0, NULL, NULL, 0, 0, NULL};
        int err = walk_list(ctx, kp, value, &strings);
        if (err < 0 || json_array_size(value) == 0)
            return err;
    } else {
        if (!json_is_boolean(value))
            return fail(ctx, AL_EINVAL, kp, "expected true or false");
        if (!json_is_true(value))
            return 0;
    }
    return warn(ctx, kp, "ignored: macOS only (no effect on Linux, where airlock runs)");
}

/* --- keys airlock does not honour: said so by name ------------------------ */

/* sandbox.enabled: false is Claude Code's switch to run commands
 * unsandboxed; airlock always sandboxes. */
static int apply_cc_enabled(struct load_ctx *ctx, const char *kp, json_t *value)
{
    if (!json_is_boolean(value))
        return fail(ctx, AL_EINVAL, kp, "expected true or false");
    return json_is_false(value)
               ? warn(ctx, kp,
                      "ignored: false turns Claude Code's sandbox off; airlock always runs the "
                      "command sandboxed")
               : 0;
}

/* sandbox.autoAllowBashIfSandboxed: Claude Code's prompt for its Bash tool. */
static int apply_cc_auto_allow(struct load_ctx *ctx, const char *kp, json_t *value)
{
    if (!json_is_boolean(value))
        return fail(ctx, AL_EINVAL, kp, "expected true or false");
    return json_is_false(value)
               ? warn(ctx, kp,
                      "ignored: it configures Claude Code's permission prompt for its Bash tool; "
                      "use sandbox.mode \"regular\" to have airlock ask before running")
               : 0;
}

/* sandbox.enabledPlatforms: airlock applies the sandbox block on Linux
 * whatever the list says. */
static int apply_cc_platforms(struct load_ctx *ctx, const char *kp, json_t *value)
{
    static const struct key strings = {"", K_STRINGS, NO_FIELD, F_NONEMPTY, NULL, NULL, 0, 0, NULL};
    int err = walk_list(ctx, kp, value, &strings);
    size_t i;
    json_t *v;
    if (err < 0)
        return err;
    json_array_foreach(value, i, v)
    {
        if (strcmp(json_string_value(v), "linux") == 0)
            return 0;
    }
    return warn(ctx, kp,
                "ignored: \"linux\" is not in the list, so Claude Code would not sandbox here; "
                "airlock always does");
}

/* ignoreViolations: silences violation reports per command in Claude Code
 * and srt; airlock reports none per command. */
static int apply_ignore_violations(struct load_ctx *ctx, const char *kp, json_t *value)
{
    static const struct key map = {"", K_MAP_STRINGS, NO_FIELD, 0, NULL, NULL, 0, 0, NULL};
    int err = walk_map(ctx, kp, value, &map);
    if (err < 0 || json_object_size(value) == 0)
        return err;
    return warn(ctx, kp,
                "ignored: airlock does not report filesystem violations per command, so there "
                "is nothing to silence");
}

/* network.deniedDomainReasons: text srt shows the agent for a denial. */
static int apply_denied_reasons(struct load_ctx *ctx, const char *kp, json_t *value)
{
    static const struct key map = {"", K_MAP_STRING, NO_FIELD, 0, NULL, NULL, 0, 0, NULL};
    int err = walk_map(ctx, kp, value, &map);
    if (err < 0 || json_object_size(value) == 0)
        return err;
    return warn(ctx, kp,
                "not shown: airlock's refusal names the deniedDomains entry that matched, not "
                "this text");
}

/* Keys whose absence of effect would send traffic somewhere the user did
 * not mean, or skip a check they asked for: refused with the reason. */
static int apply_refused(struct load_ctx *ctx, const char *kp, json_t *value)
{
    static const struct {
        const char *key;
        const char *why;
    } reasons[] = {
        {"mitmProxy", "not supported: airlock does not hand domains to another proxy (its own "
                      "proxy and policy handle every domain; network.tlsTerminate inspects "
                      "HTTPS itself); remove it"},
        {"parentProxy", "not supported: airlock's proxy connects to upstreams directly and "
                        "cannot chain through another proxy; remove it"},
        {"deniedResolvedAddresses",
         "not supported: airlock's address guard refuses loopback, private, link-local and "
         "metadata addresses itself and takes no list of further ones; remove it, or deny the "
         "host names in deniedDomains"},
    };
    const char *key = strrchr(kp, '.') ? strrchr(kp, '.') + 1 : kp;
    (void)value;
    for (size_t i = 0; i < sizeof(reasons) / sizeof(*reasons); i++)
        if (strcmp(key, reasons[i].key) == 0)
            return fail(ctx, AL_EINVAL, kp, "%s", reasons[i].why);
    return fail(ctx, AL_EINVAL, kp, "not supported");
}

/* srt's windows block. */
static int apply_windows(struct load_ctx *ctx, const char *kp, json_t *value)
{
    (void)value;
    return warn(ctx, kp, "ignored: Windows only (no effect on Linux, where airlock runs)");
}

/* srt's git.safeDirectories. */
static int apply_git(struct load_ctx *ctx, const char *kp, json_t *value)
{
    if (json_array_size(json_object_get(value, "safeDirectories")) == 0)
        return 0;
    return warn(ctx, kp,
                "safeDirectories ignored: airlock does not set git's safe.directory; set it "
                "with git config inside the sandbox if git asks for it");
}

/* allowManagedDomainsOnly, allowManagedReadPathsOnly: Claude Code honours
 * them only in its managed settings, where they make the other scopes'
 * domains (read paths) not count. `airlock run` does not layer managed
 * settings under the others, so it cannot honour them: true is refused in
 * the managed file, and warned about (it means nothing there in Claude Code
 * either) anywhere else. */
static int apply_managed_only(struct load_ctx *ctx, const char *kp, json_t *value)
{
    if (!json_is_boolean(value))
        return fail(ctx, AL_EINVAL, kp, "expected true or false");
    if (!json_is_true(value))
        return 0;
    if (ctx->managed)
        return fail(ctx, AL_EINVAL, kp,
                    "true is not supported: airlock reads only the settings files it is given "
                    "and cannot make the other files' entries not count; remove it, or run "
                    "with only this file (--settings " CC_MANAGED_SETTINGS ")");
    return warn(
        ctx, kp,
        "ignored: it has an effect only in Claude Code's managed settings (" CC_MANAGED_SETTINGS
        "), and airlock honours every file it is given");
}

static int apply_not_applicable(struct load_ctx *ctx, const char *kp, json_t *value);

/* --- permissions (Claude Code's rules for its own tools) ----------------- */

/* The folder a permission rule's "/x" is relative to: the settings file's
 * folder, or the project folder for a file inside ".claude" (Claude Code's
 * permissions documentation). Returns a new string or NULL. */
static char *rule_base_of(const char *file, const char *home, const char *cwd)
{
    char *path = al_settings_expand_path(file, home, cwd);
    if (!path)
        return NULL;
    char *slash = strrchr(path, '/');
    *(slash == path ? slash + 1 : slash) = '\0';
    slash = strrchr(path, '/');
    if (slash && strcmp(slash + 1, ".claude") == 0)
        *(slash == path ? slash + 1 : slash) = '\0';
    return path;
}

/* The sandbox path pattern of a Read()/Edit() rule's path `spec`, as Claude
 * Code reads it (gitignore-style): "//x" absolute, "~/x" in the home
 * directory, "/x" relative to the settings file (ctx->rule_base), "x" and
 * "./x" relative to the working directory; a pattern with no "/" but a
 * trailing one matches at any depth below the working directory, like a
 * .gitignore line: "*.pem" becomes "<cwd>/STARSTAR/STAR.pem" (STAR being "*").
 * A trailing "/" or "/STARSTAR" is
 * dropped when the rest has no glob: hiding the folder hides all below it.
 * Returns a new string or NULL with al_error_last() set. */
static char *rule_path(struct load_ctx *ctx, const char *spec)
{
    char buf[AL_SETTINGS_PATH_MAX + 8];
    const char *base = "";
    const char *rest = spec;
    const char *sep = "";

    if (strncmp(spec, "//", 2) == 0) {
        rest = spec + 1;
    } else if (spec[0] == '~') {
        rest = spec;
    } else {
        if (spec[0] == '/') {
            base = ctx->rule_base ? ctx->rule_base : ctx->cwd;
        } else {
            if (strncmp(spec, "./", 2) == 0)
                rest = spec + 2;
            else if (!strchr(spec, '/') || strchr(spec, '/') == spec + strlen(spec) - 1)
                sep = "**/";
            base = ctx->cwd;
        }
        if (!base || base[0] != '/') {
            char q[96];
            al_error_set(AL_EINVAL, "%s: not absolute after expansion (no absolute folder)",
                         al_settings_quote(q, sizeof(q), spec));
            return NULL;
        }
    }
    if ((size_t)snprintf(buf, sizeof(buf), "%s%s%s%s", base, base[0] && rest[0] != '/' ? "/" : "",
                         sep, rest) >= sizeof(buf)) {
        al_error_set(AL_EINVAL, "longer than %d bytes", AL_SETTINGS_PATH_MAX);
        return NULL;
    }
    char *path = al_settings_expand_path(buf, ctx->home, ctx->cwd);
    if (!path)
        return NULL;
    size_t len = strlen(path);
    if (len > 3 && strcmp(path + len - 3, "/**") == 0) {
        path[len - 3] = '\0';
        if (al_glob_has_magic(path))
            path[len - 3] = '/';
    }
    return path;
}

/* Splits "Tool(spec)" into the tool name (in `tool`, cut to its size) and a
 * pointer to the spec, NUL-terminated in `spec_buf`; a bare "Tool" gives an
 * empty spec. Returns -1 when the rule is not of this form. */
static int rule_split(const char *rule, char *tool, size_t tool_size, char *spec_buf,
                      size_t spec_size)
{
    const char *open = strchr(rule, '(');
    size_t len = strlen(rule);
    spec_buf[0] = '\0';
    if (!open) {
        snprintf(tool, tool_size, "%s", rule);
        return 0;
    }
    if (len < 2 || rule[len - 1] != ')' || (size_t)(open - rule) >= tool_size)
        return -1;
    snprintf(tool, tool_size, "%.*s", (int)(open - rule), rule);
    size_t sl = (size_t)(rule + len - 1 - (open + 1));
    if (sl >= spec_size)
        return -1;
    memcpy(spec_buf, open + 1, sl);
    spec_buf[sl] = '\0';
    return 0;
}

/* permissions.deny[i]: Read(path) hides the path from sandboxed commands
 * (denyRead), Edit(path) and Write(path) make it read-only (denyWrite), as
 * Claude Code's sandbox merges them. Other tools' rules are the agent's. */
static int apply_deny_rule(struct load_ctx *ctx, const char *kp, const char *rule,
                           struct missing *miss_read, struct missing *miss_write)
{
    char tool[32], spec[AL_SETTINGS_PATH_MAX + 1], q[160];
    if (rule_split(rule, tool, sizeof(tool), spec, sizeof(spec)) < 0)
        return 0; /* not a tool rule airlock knows the shape of: the agent's */
    int read = strcmp(tool, "Read") == 0;
    if (!read && strcmp(tool, "Edit") != 0 && strcmp(tool, "Write") != 0)
        return 0;
    if (!spec[0] || strcmp(spec, "**") == 0 || strcmp(spec, "//**") == 0)
        return warn(ctx, kp,
                    "%s: denies Claude's %s tool everywhere; airlock does not turn it into a "
                    "sandbox rule (it would %s every file); name paths, e.g. %s(~/.secrets/**)",
                    al_settings_quote(q, sizeof(q), rule), tool, read ? "hide" : "write-protect",
                    tool);
    char *path = rule_path(ctx, spec);
    if (!path)
        return fail_last(ctx, AL_EINVAL, kp);
    struct missing *m = read ? miss_read : miss_write;
    if (ctx->check_host && path_missing(path))
        missing_add(m, path);
    if (push_unique_owned(read ? &ctx->policy->deny_read : &ctx->policy->deny_write, path) < 0)
        return oom(ctx, kp);
    return 0;
}

/* permissions.allow[i]: WebFetch(domain:x) adds x to the allowed domains, as
 * Claude Code's sandbox does; a pattern airlock refuses in allowedDomains is
 * skipped with a warning (skipping narrows). Edit(path) outside the working
 * directory is warned about: Claude Code makes it writable for sandboxed
 * commands, airlock does not. */
static int apply_allow_rule(struct load_ctx *ctx, const char *kp, const char *rule)
{
    char tool[32], spec[AL_SETTINGS_PATH_MAX + 1], q[160];
    if (rule_split(rule, tool, sizeof(tool), spec, sizeof(spec)) < 0)
        return 0;
    al_settings_quote(q, sizeof(q), rule);
    if (strcmp(tool, "WebFetch") == 0 && strncmp(spec, "domain:", 7) == 0) {
        const char *d = spec + 7;
        if (al_settings_check_domain(d) < 0) {
            char reason[512];
            snprintf(reason, sizeof(reason), "%s", al_error_last());
            return warn(ctx, kp, "%s: not added to the allowed domains: %s", q, reason);
        }
        char *copy = strdup(d);
        if (!copy)
            return oom(ctx, kp);
        for (char *c = copy; *c; c++)
            *c = (char)((*c >= 'A' && *c <= 'Z') ? *c - 'A' + 'a' : *c);
        if (push_unique_owned(&ctx->policy->net.allowed_domains, copy) < 0)
            return oom(ctx, kp);
        return 0;
    }
    if ((strcmp(tool, "Edit") == 0 || strcmp(tool, "Write") == 0) && spec[0]) {
        char *path = rule_path(ctx, spec);
        if (!path) /* a grant airlock does not apply: nothing to refuse */
            return 0;
        size_t cl = ctx->cwd ? strlen(ctx->cwd) : 0;
        int inside = cl && strncmp(path, ctx->cwd, cl) == 0 && (path[cl] == '/' || !path[cl]);
        free(path);
        if (!inside)
            return warn(ctx, kp,
                        "%s: not made writable for sandboxed commands (airlock takes only "
                        "Read/Edit deny rules and WebFetch domains from permissions); add the "
                        "path to sandbox.filesystem.allowWrite",
                        q);
    }
    return 0;
}

/* The "permissions" block of a settings.json: deny and allow rules as above;
 * "ask" and the other keys (defaultMode, additionalDirectories, ...) are
 * Claude Code's own and change nothing here. */
static int apply_permissions(struct load_ctx *ctx, const char *kp, json_t *value)
{
    static const char *const lists[] = {"allow", "deny", "ask"};
    char child[KP_MAX], item_kp[KP_MAX];
    struct missing miss_read = {{0}, 0}, miss_write = {{0}, 0};
    size_t i;
    json_t *item;
    int err = 0;

    if (!json_is_object(value))
        return fail(ctx, AL_EINVAL, kp, "expected an object");
    for (size_t l = 0; l < sizeof(lists) / sizeof(*lists); l++) {
        json_t *list = json_object_get(value, lists[l]);
        kp_child(child, kp, lists[l]);
        if (!list)
            continue;
        if (!json_is_array(list))
            return fail(ctx, AL_EINVAL, child, "expected a list of strings");
        json_array_foreach(list, i, item)
        {
            kp_index(item_kp, child, i);
            if (!json_is_string(item))
                return fail(ctx, AL_EINVAL, item_kp, "expected a string (in a list of strings)");
            if (l == 0)
                err = apply_allow_rule(ctx, item_kp, json_string_value(item));
            else if (l == 1)
                err =
                    apply_deny_rule(ctx, item_kp, json_string_value(item), &miss_read, &miss_write);
            if (err < 0)
                return err;
        }
    }
    kp_child(child, kp, "deny");
    char read_kp[KP_MAX + 16], write_kp[KP_MAX + 16];
    snprintf(read_kp, sizeof(read_kp), "%s (Read)", child);
    snprintf(write_kp, sizeof(write_kp), "%s (Edit)", child);
    if ((err = missing_warn(ctx, read_kp, &miss_read, 1)) < 0)
        return err;
    return missing_warn(ctx, write_kp, &miss_write, 1);
}

/* --- the key tables ------------------------------------------------------ */

#define BOOL(n, f)                                                                                 \
    {                                                                                              \
        n, K_BOOL, f, 0, NULL, NULL, 0, 0, NULL                                                    \
    }
#define INT(n, f, fl, lo, hi)                                                                      \
    {                                                                                              \
        n, K_INT, f, fl, NULL, NULL, lo, hi, NULL                                                  \
    }
#define STRING(n, f, fl)                                                                           \
    {                                                                                              \
        n, K_STRING, f, fl, NULL, NULL, 0, 0, NULL                                                 \
    }
#define LIST(n, k, f, fl)                                                                          \
    {                                                                                              \
        n, k, f, fl, NULL, NULL, 0, 0, NULL                                                        \
    }
#define OBJECT(n, sub)                                                                             \
    {                                                                                              \
        n, K_OBJECT, NO_FIELD, 0, sub, NULL, 0, 0, NULL                                            \
    }
#define OBJECTS(n, sub, fn)                                                                        \
    {                                                                                              \
        n, K_OBJECTS, NO_FIELD, 0, sub, fn, 0, 0, NULL                                             \
    }
#define ENUM(n, fl, ch)                                                                            \
    {                                                                                              \
        n, K_ENUM, NO_FIELD, fl, NULL, NULL, 0, 0, ch                                              \
    }
#define CUSTOM(n, fn)                                                                              \
    {                                                                                              \
        n, K_CUSTOM, NO_FIELD, 0, NULL, fn, 0, 0, NULL                                             \
    }
#define OTHER(n, k)                                                                                \
    {                                                                                              \
        n, k, NO_FIELD, 0, NULL, NULL, 0, 0, NULL                                                  \
    }
#define END                                                                                        \
    {                                                                                              \
        NULL, K_BOOL, NO_FIELD, 0, NULL, NULL, 0, 0, NULL                                          \
    }

#define OBJECT_FN(n, sub, fn)                                                                      \
    {                                                                                              \
        n, K_OBJECT, NO_FIELD, 0, sub, fn, 0, 0, NULL                                              \
    }

static const char *const cred_modes[] = {"deny", "mask", NULL};
static const char *const no_match_modes[] = {"warn", "deny", "error", NULL};

/* network.tlsTerminate (both shapes: Claude Code's `{}` and srt's fields;
 * maxTunnels and handshakeTimeoutMs from srt's documentation). */
static const struct key tls_keys[] = {
    STRING("caCertPath", NO_FIELD, F_NONEMPTY),
    STRING("caKeyPath", NO_FIELD, F_NONEMPTY),
    LIST("excludeDomains", K_DOMAINS, FIELD(net.tls_exclude), 0),
    LIST("extraCaCertPaths", K_PATHS, FIELD(tls.extra_ca_paths), 0),
    INT("maxTunnels", NO_FIELD, 0, 1, 1000000),
    INT("handshakeTimeoutMs", NO_FIELD, 0, 1, 600000),
    END,
};

/* network.requestRules[i] (airlock's own, both shapes). */
static const struct key reqrule_keys[] = {
    STRING("host", NO_FIELD, F_NONEMPTY | F_REQUIRED),
    LIST("methods", K_STRINGS, NO_FIELD, 0),
    LIST("paths", K_STRINGS, NO_FIELD, 0),
    LIST("queryKeys", K_STRINGS, NO_FIELD, 0),
    END,
};

/* Shape 1: the "sandbox" block of a settings.json. srt's filesystem names
 * are accepted there too, so --print-policy output loads back. */
static const struct key cc_filesystem_keys[] = {
    LIST("allowedPaths", K_PATHS, FIELD(allow_write), 0),
    LIST("deniedPaths", K_PATHS, FIELD(deny_read), 0),
    LIST("allowWrite", K_PATHS, FIELD(allow_write), 0),
    LIST("denyRead", K_PATHS, FIELD(deny_read), 0),
    LIST("allowRead", K_PATHS, FIELD(allow_read), 0),
    LIST("denyWrite", K_PATHS, FIELD(deny_write), 0),
    BOOL("allowGitConfig", FIELD(allow_git_config)),
    INT("mandatoryDenySearchDepth", FIELD(mandatory_deny_depth), 0, 1, 10),
    CUSTOM("allowManagedReadPathsOnly", apply_managed_only),
    END,
};

static const struct key cc_network_keys[] = {
    LIST("allowedDomains", K_DOMAINS, FIELD(net.allowed_domains), 0),
    LIST("deniedDomains", K_DENIED_DOMAINS, FIELD(net.denied_domains), 0),
    BOOL("allowAllDomains", FIELD(net.allow_all_domains)),
    BOOL("strictAllowlist", FIELD(net.strict_allowlist)),
    CUSTOM("allowManagedDomainsOnly", apply_managed_only),
    CUSTOM("allowMachLookup", apply_other_os),
    LIST("allowedAddresses", K_ADDRESSES, FIELD(net.allowed_addresses), 0),
    INT("httpProxyPort", FIELD(http_proxy_port), F_NULLABLE, 1, 65535),
    INT("socksProxyPort", FIELD(socks_proxy_port), F_NULLABLE, 1, 65535),
    STRING("customProxy", FIELD(custom_proxy), F_NULLABLE | F_NONEMPTY),
    BOOL("allowLocalBinding", FIELD(allow_local_binding)),
    BOOL("requireSniMatch", FIELD(net.require_sni_match)),
    CUSTOM("allowUnixSockets", unix_socket_list),
    CUSTOM("allowAllUnixSockets", apply_all_unix_sockets),
    OBJECT_FN("tlsTerminate", tls_keys, apply_tls_terminate),
    OBJECTS("requestRules", reqrule_keys, apply_request_rule),
    BOOL("reportOnly", FIELD(net.report_only)),
    END,
};

/* Shape 2: sandbox-runtime's settings file (SandboxRuntimeConfig). */
static const struct key srt_filesystem_keys[] = {
    CUSTOM("disabled", apply_fs_disabled),
    LIST("allowWrite", K_PATHS, FIELD(allow_write), 0),
    LIST("denyRead", K_PATHS, FIELD(deny_read), 0),
    LIST("allowRead", K_PATHS, FIELD(allow_read), 0),
    LIST("denyWrite", K_PATHS, FIELD(deny_write), 0),
    BOOL("allowGitConfig", FIELD(allow_git_config)),
    END,
};

static const struct key srt_network_keys[] = {
    LIST("allowedDomains", K_DOMAINS, FIELD(net.allowed_domains), 0),
    LIST("deniedDomains", K_DENIED_DOMAINS, FIELD(net.denied_domains), 0),
    CUSTOM("deniedDomainReasons", apply_denied_reasons),
    BOOL("strictAllowlist", FIELD(net.strict_allowlist)),
    BOOL("allowAllDomains", FIELD(net.allow_all_domains)),
    CUSTOM("allowUnixSockets", unix_socket_list),
    CUSTOM("allowAllUnixSockets", apply_all_unix_sockets),
    BOOL("allowLocalBinding", FIELD(allow_local_binding)),
    CUSTOM("allowMachLookup", apply_other_os),
    INT("httpProxyPort", FIELD(http_proxy_port), F_NULLABLE, 1, 65535),
    INT("socksProxyPort", FIELD(socks_proxy_port), F_NULLABLE, 1, 65535),
    CUSTOM("mitmProxy", apply_refused),
    OBJECT_FN("tlsTerminate", tls_keys, apply_tls_terminate),
    CUSTOM("parentProxy", apply_refused),
    CUSTOM("deniedResolvedAddresses", apply_refused),
    LIST("allowedAddresses", K_ADDRESSES, FIELD(net.allowed_addresses), 0),
    BOOL("requireSniMatch", FIELD(net.require_sni_match)),
    OBJECTS("requestRules", reqrule_keys, apply_request_rule),
    BOOL("reportOnly", FIELD(net.report_only)),
    END,
};

/* credentials.files[i] and credentials.envVars[i], both shapes (Claude
 * Code's are a subset of srt's); what "mask" does not support is refused by
 * apply_credential_file/env, naming the key. */
static const struct key cred_file_keys[] = {
    STRING("path", NO_FIELD, F_NONEMPTY | F_REQUIRED),
    ENUM("mode", F_REQUIRED, cred_modes),
    STRING("extract", NO_FIELD, F_NONEMPTY),
    ENUM("onExtractNoMatch", 0, no_match_modes),
    STRING("decode", NO_FIELD, 0),
    LIST("maskClaims", K_STRINGS, NO_FIELD, F_NONEMPTY),
    BOOL("maskDuplicates", NO_FIELD),
    LIST("injectHosts", K_DOMAINS, NO_FIELD, 0),
    END,
};

static const struct key cred_env_keys[] = {
    STRING("name", NO_FIELD, F_NONEMPTY | F_REQUIRED),
    ENUM("mode", F_REQUIRED, cred_modes),
    STRING("extract", NO_FIELD, F_NONEMPTY),
    ENUM("onExtractNoMatch", 0, no_match_modes),
    STRING("decode", NO_FIELD, 0),
    LIST("maskClaims", K_STRINGS, NO_FIELD, F_NONEMPTY),
    LIST("injectHosts", K_DOMAINS, NO_FIELD, 0),
    END,
};

static const struct key credentials_keys[] = {
    OBJECTS("files", cred_file_keys, apply_credential_file),
    OBJECTS("envVars", cred_env_keys, apply_credential_env),
    BOOL("allowPlaintextInject", FIELD(net.allow_plaintext_inject)),
    CUSTOM("awsPairs", refuse_aws),
    CUSTOM("sigv4", refuse_aws),
    END,
};

static const struct key srt_ripgrep_keys[] = {
    STRING("command", NO_FIELD, F_NONEMPTY | F_REQUIRED),
    LIST("args", K_STRINGS, NO_FIELD, 0),
    STRING("argv0", NO_FIELD, 0),
    END,
};

static const struct key srt_seccomp_keys[] = {
    STRING("applyPath", NO_FIELD, 0),
    STRING("argv0", NO_FIELD, 0),
    END,
};

/* ripgrep, seccomp, bwrapPath, socatPath, javaAgentJarPath: paths of Claude
 * Code's or srt's own sandbox helpers. Type-checked, and said not to
 * apply. */
static int apply_not_applicable(struct load_ctx *ctx, const char *kp, json_t *value)
{
    static const struct key object = {"", K_OBJECT, NO_FIELD, 0, NULL, NULL, 0, 0, NULL};
    const char *last = strrchr(kp, '.') ? strrchr(kp, '.') + 1 : kp;
    int err;
    if (strcmp(last, "ripgrep") == 0 || strcmp(last, "seccomp") == 0) {
        struct key k = object;
        k.sub = last[0] == 'r' ? srt_ripgrep_keys : srt_seccomp_keys;
        if ((err = walk_value(ctx, kp, value, &k)) < 0)
            return err;
    } else if (!json_is_string(value) || json_string_value(value)[0] != '/') {
        return fail(ctx, AL_EINVAL, kp, "expected an absolute path");
    }
    return warn(ctx, kp,
                "does not apply: it configures %s own sandbox helpers; airlock builds its "
                "sandbox itself",
                ctx->cc ? "Claude Code's" : "sandbox-runtime's");
}

/* Shape 1's "sandbox" block (after the srt tables it shares). */
static const struct key cc_sandbox_keys[] = {
    CUSTOM("enabled", apply_cc_enabled),
    CUSTOM("autoAllowBashIfSandboxed", apply_cc_auto_allow),
    BOOL("failIfUnavailable", NO_FIELD),
    OBJECT("filesystem", cc_filesystem_keys),
    OBJECT("network", cc_network_keys),
    CUSTOM("allowUnixSockets", apply_unix_sockets),
    CUSTOM("allowAllUnixSockets", apply_all_unix_sockets),
    BOOL("enableWeakerNestedSandbox", FIELD(weaker_nested)),
    OBJECT("credentials", credentials_keys),
    CUSTOM("enabledPlatforms", apply_cc_platforms),
    CUSTOM("allowAppleEvents", apply_other_os),
    CUSTOM("enableWeakerNetworkIsolation", apply_other_os),
    CUSTOM("ripgrep", apply_not_applicable),
    CUSTOM("bwrapPath", apply_not_applicable),
    CUSTOM("socatPath", apply_not_applicable),
    LIST("excludedCommands", K_STRINGS, FIELD(excluded_commands), F_NONEMPTY | F_NOSLASH),
    BOOL("allowUnsandboxedCommands", FIELD(allow_unsandboxed)),
    CUSTOM("mode", apply_mode),
    CUSTOM("ignoreViolations", apply_ignore_violations),
    LIST("deniedEnv", K_STRINGS, FIELD(deny_env), F_NONEMPTY),
    END,
};

static const struct key srt_win_keys[] = {
    STRING("path", NO_FIELD, F_NONEMPTY | F_REQUIRED),
    END,
};

static const struct key srt_windows_keys[] = {
    STRING("sandboxUser", NO_FIELD, F_NONEMPTY),
    STRING("sublayerGuid", NO_FIELD, F_NONEMPTY),
    STRING("wfpSublayerGuid", NO_FIELD, F_NONEMPTY),
    OTHER("proxyPortRange", K_PORT_RANGE),
    OBJECT("srtWin", srt_win_keys),
    END,
};

static const struct key srt_git_keys[] = {
    LIST("safeDirectories", K_STRINGS, NO_FIELD, 0),
    END,
};

static const struct key srt_keys[] = {
    OBJECT("network", srt_network_keys),
    OBJECT("filesystem", srt_filesystem_keys),
    OBJECT("credentials", credentials_keys),
    CUSTOM("ignoreViolations", apply_ignore_violations),
    BOOL("enableWeakerNestedSandbox", FIELD(weaker_nested)),
    CUSTOM("enableWeakerNetworkIsolation", apply_other_os),
    CUSTOM("allowAppleEvents", apply_other_os),
    CUSTOM("ripgrep", apply_not_applicable),
    INT("mandatoryDenySearchDepth", FIELD(mandatory_deny_depth), 0, 1, 10),
    CUSTOM("allowPty", apply_other_os),
    CUSTOM("seccomp", apply_not_applicable),
    CUSTOM("bwrapPath", apply_not_applicable),
    CUSTOM("socatPath", apply_not_applicable),
    CUSTOM("javaAgentJarPath", apply_not_applicable),
    OBJECT_FN("windows", srt_windows_keys, apply_windows),
    OBJECT_FN("git", srt_git_keys, apply_git),
    END,
};

/* Top-level keys of Claude Code's settings.json other than "sandbox" and
 * "permissions" (its settings documentation, code.claude.com/docs/en/settings,
 * and its JSON schema, json.schemastore.org/claude-code-settings.json, late
 * 2026): they configure Claude Code itself, not the sandbox, and are
 * accepted without a word. A file holding any of them is shape 1 even
 * without a sandbox block, so settings.local.json with only "permissions"
 * loads. Any other top-level key of a shape-1 file is warned about. */
static const char *const cc_top_keys[] = {
    "$schema",
    "apiKeyHelper",
    "autoMemoryEnabled",
    "autoMemoryDirectory",
    "autoUpdatesChannel",
    "awsCredentialExport",
    "awsAuthRefresh",
    "gcpAuthRefresh",
    "claudeMdExcludes",
    "claudeMd",
    "cleanupPeriodDays",
    "env",
    "attribution",
    "includeGitInstructions",
    "includeCoAuthoredBy",
    "plansDirectory",
    "respectGitignore",
    "language",
    "model",
    "availableModels",
    "enforceAvailableModels",
    "modelOverrides",
    "fallbackModel",
    "advisorModel",
    "effortLevel",
    "fastMode",
    "fastModePerSessionOptIn",
    "feedbackSurveyRate",
    "enableAllProjectMcpServers",
    "enabledMcpjsonServers",
    "disabledMcpjsonServers",
    "allowedMcpServers",
    "deniedMcpServers",
    "managedMcpServers",
    "allowManagedMcpServersOnly",
    "allowAllClaudeAiMcps",
    "disableClaudeAiConnectors",
    "httpHookAllowedEnvVars",
    "allowedHttpHookUrls",
    "hooks",
    "disableAllHooks",
    "allowManagedHooksOnly",
    "allowManagedPermissionRulesOnly",
    "allowedChannelPlugins",
    "channelsEnabled",
    "statusLine",
    "subagentStatusLine",
    "fileSuggestion",
    "enabledPlugins",
    "extraKnownMarketplaces",
    "strictKnownMarketplaces",
    "blockedMarketplaces",
    "skippedMarketplaces",
    "skippedPlugins",
    "pluginTrustMessage",
    "pluginConfigs",
    "pluginSuggestionMarketplaces",
    "strictPluginOnlyCustomization",
    "forceLoginMethod",
    "forceLoginOrgUUID",
    "otelHeadersHelper",
    "outputStyle",
    "skipWebFetchPreflight",
    "spinnerVerbs",
    "spinnerTipsEnabled",
    "spinnerTipsOverride",
    "terminalProgressBarEnabled",
    "showTurnDuration",
    "skillOverrides",
    "skillListingMaxDescChars",
    "skillListingBudgetFraction",
    "disableBundledSkills",
    "disableSkillShellExecution",
    "prefersReducedMotion",
    "prUrlTemplate",
    "alwaysThinkingEnabled",
    "showThinkingSummaries",
    "companyAnnouncements",
    "teammateMode",
    "worktree",
    "parentSettingsBehavior",
    "agent",
    "autoMode",
    "useAutoModeDuringPlan",
    "disableAutoMode",
    "defaultShell",
    "disableDeepLinkRegistration",
    "forceRemoteSettingsRefresh",
    "minimumVersion",
    "requiredMinimumVersion",
    "requiredMaximumVersion",
    "showClearContextOnPlanAccept",
    "skipDangerousModePermissionPrompt",
    "tui",
    "viewMode",
    "verbose",
    "voiceEnabled",
    "voice",
    "wslInheritsWindowsSettings",
    "autoCompactEnabled",
    "autoCompactWindow",
    "disableAgentView",
    "editorMode",
    "fileCheckpointingEnabled",
    "preferredNotifChannel",
    "respondToBashCommands",
    "sshConfigs",
    "sshHostAllowlist",
    "theme",
    "wheelScrollAccelerationEnabled",
    "awaySummaryEnabled",
    "autoScrollEnabled",
    "agentPushNotifEnabled",
    "inputNeededNotifEnabled",
    "axScreenReader",
    "disableArtifact",
    "disableRemoteControl",
    "remoteControlAtStartup",
    "disableWorkflows",
    "workflowKeywordTriggerEnabled",
    "footerLinksRegexes",
    "policyHelper",
    "syntaxHighlightingDisabled",
    "leftArrowOpensAgents",
    NULL,
};

#define CC_TOP_MAX 256

/* The top level of a shape-1 file: "sandbox" and "permissions" are applied,
 * Claude Code's other keys accepted, anything else warned about by name
 * (Claude Code ignores unknown keys, so the file may be shared with it).
 * A near-miss of "sandbox" in a file with no "sandbox" block is refused: the
 * sandbox settings the user wrote, denials included, would otherwise be
 * dropped for the default policy. */
static int walk_cc_top(struct load_ctx *ctx, json_t *root)
{
    static const char *const applied[] = {"sandbox", "permissions", NULL};
    const char *names[CC_TOP_MAX];
    size_t n = 0;
    const char *k;
    json_t *v;
    int err;

    for (size_t i = 0; applied[i]; i++)
        names[n++] = applied[i];
    for (size_t i = 0; cc_top_keys[i] && n < CC_TOP_MAX; i++)
        names[n++] = cc_top_keys[i];
    json_object_foreach(root, k, v)
    {
        int known = 0;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(k, names[i]) == 0;
        if (known)
            continue;
        char kp[KP_MAX];
        kp_child(kp, "", k);
        const char *best = near_miss(k, names, n);
        if (best && strcmp(best, "sandbox") == 0 && !json_object_get(root, "sandbox"))
            return fail(ctx, AL_EINVAL, kp,
                        "unknown key (did you mean \"sandbox\"?): refused, as without a "
                        "\"sandbox\" block the sandbox would run with the default policy");
        const struct key *srt;
        for (srt = srt_keys; srt->name && strcmp(srt->name, k) != 0; srt++)
            ;
        if (srt->name)
            err = warn(ctx, kp,
                       "ignored: a sandbox-runtime key; in a settings.json it goes inside "
                       "\"sandbox\" (\"sandbox\": {\"%s\": ...})",
                       k);
        else if (best)
            err = warn(ctx, kp, "unknown key, ignored (did you mean \"%s\"?)", best);
        else
            err = warn(ctx, kp, "unknown key, ignored (not a Claude Code or airlock setting)");
        if (err < 0)
            return err;
    }
    json_t *perm = json_object_get(root, "permissions");
    if (perm && (err = apply_permissions(ctx, "permissions", perm)) < 0)
        return err;
    json_t *sandbox = json_object_get(root, "sandbox");
    return sandbox ? walk_object(ctx, "sandbox", sandbox, cc_sandbox_keys) : 0;
}

/* --- entry points -------------------------------------------------------- */

static int settings_is_claude_code(json_t *root)
{
    if (json_object_get(root, "sandbox") || json_object_get(root, "permissions"))
        return 1;
    for (size_t i = 0; srt_keys[i].name; i++)
        if (json_object_get(root, srt_keys[i].name))
            return 0;
    for (size_t i = 0; cc_top_keys[i]; i++)
        if (json_object_get(root, cc_top_keys[i]))
            return 1;
    return 0;
}

/* Loads `data` with `ctx` set up by the caller. */
static int load_ctx_buffer(struct load_ctx *ctx, const char *data, size_t len);

int al_settings_load_buffer(struct al_policy *policy, const char *name, const char *data,
                            size_t len, const char *home, const char *cwd)
{
    struct load_ctx ctx = {policy, name, home, cwd, NULL, 0, 0, 0};
    return load_ctx_buffer(&ctx, data, len);
}

static int load_ctx_buffer(struct load_ctx *ctx_in, const char *data, size_t len)
{
    struct load_ctx ctx = *ctx_in;
    struct al_policy *policy = ctx.policy;
    const char *name = ctx.name;
    json_error_t jerr;
    json_t *root = NULL;
    int err;

    if (len > AL_SETTINGS_FILE_MAX) {
        err = fail(&ctx, AL_ETOOBIG, "", "larger than 1 MiB");
        goto out;
    }
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        err = al_error_set(AL_EINVAL, "%s:%d:%d: invalid JSON: %s", name, jerr.line, jerr.column,
                           jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        err = fail(&ctx, AL_EINVAL, "", "expected a JSON object at the top level");
        goto out;
    }
    const char *key_path = NULL; /* of a network block in this file */
    static const char *const cc_extra[] = {"sandbox", NULL};
    int cc = settings_is_claude_code(root);
    ctx.cc = cc;
    if (cc) {
        json_t *sandbox = json_object_get(root, "sandbox");
        err = walk_cc_top(&ctx, root);
        if (json_object_get(sandbox, "network"))
            key_path = "sandbox.network";
    } else {
        /* a near-miss of "sandbox" alone in a file reads as srt: suggest it */
        const char *k;
        json_t *v;
        err = 0;
        json_object_foreach(root, k, v)
        {
            const struct key *key;
            for (key = srt_keys; key->name && strcmp(key->name, k) != 0; key++)
                ;
            if (!key->name) {
                err = unknown_key_in(&ctx, "", k, srt_keys, cc_extra);
                break;
            }
        }
        if (err == 0)
            err = walk_object(&ctx, "", root, srt_keys);
        if (json_object_get(root, "network"))
            key_path = "network";
    }
    /* deny wins over mask: lists of denials only grow, so pruning after
     * every file is the same as pruning once after the last */
    if (err == 0)
        err = masked_prune(&ctx, policy->mask_env, &policy->n_mask_env, "envVars", env_denied);
    if (err == 0)
        err = masked_prune(&ctx, policy->mask_files, &policy->n_mask_files, "files", file_denied);
    if (err == 0)
        snprintf(policy->key_prefix, sizeof(policy->key_prefix), "%s", cc ? "sandbox." : "");
    if (err == 0 && key_path) {
        char *file = strdup(name);
        if (!file) {
            err = al_error_set(AL_ENOMEM, "out of memory");
            goto out;
        }
        free(policy->net_file);
        policy->net_file = file;
        snprintf(policy->net_key_path, sizeof(policy->net_key_path), "%s", key_path);
    }
out:
    json_decref(root);
    return err;
}

int al_settings_load_file(struct al_policy *policy, const char *path, const char *home,
                          const char *cwd)
{
    struct al_buf buf;
    int err;

    al_buf_init(&buf, AL_SETTINGS_FILE_MAX);
    err = al_buf_read_file(&buf, path);
    if (err == AL_ETOOBIG)
        err = al_error_set(AL_ETOOBIG, "%s: larger than 1 MiB", path);
    if (err < 0)
        goto out;
    struct load_ctx ctx = {policy, path, home, cwd, NULL, 1, 0, 0};
    char *base = rule_base_of(path, home, cwd);
    ctx.rule_base = base;
    ctx.managed = base && strcmp(path, CC_MANAGED_SETTINGS) == 0;
    err = load_ctx_buffer(&ctx, buf.ptr, buf.len);
    free(base);
out:
    al_buf_free(&buf);
    return err;
}

/* --- checks across every loaded file ------------------------------------- */

/* 1 when the domain pattern `a` (an allowedDomains-style entry; a ":PORT"
 * is ignored when `any_port`, else an entry with a port covers nothing)
 * covers every host the pattern `h` (no port) names
 * (al_settings_domain_covers); deniedDomains' "*" covers every host. */
static int pattern_covers(const char *a, const char *h, int any_port)
{
    const char *colon = strchr(a, ':');
    if (strcmp(a, "*") == 0)
        return 1;
    if (!colon || !any_port)
        return al_settings_domain_covers(a, h);
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - a), a);
    return al_settings_domain_covers(host, h);
}

/* The first entry of `list` covering `h`, or NULL. */
static const char *list_covers(const struct al_strlist *list, const char *h, int any_port)
{
    for (size_t i = 0; i < list->len; i++)
        if (pattern_covers(list->items[i], h, any_port))
            return list->items[i];
    return NULL;
}

/* Checks one masked credential `m`, named in messages as `what`. */
static int check_masked(const struct al_policy *p, const char *what, const struct al_masked *m)
{
    const char *net = p->net_key_path;
    char qn[200], qh[160], qe[160];
    al_settings_quote(qn, sizeof(qn), m->name);
    if (!p->net.tls_terminate)
        return al_error_set(AL_EINVAL,
                            "%s (%s): mode \"mask\" needs %s.tlsTerminate: without it the proxy "
                            "cannot see HTTPS requests to put the real value back",
                            what, qn, net);
    if (m->inject_hosts.len == 0 && p->net.allow_all_domains)
        return al_error_set(AL_EINVAL,
                            "%s (%s): mode \"mask\" with %s.allowAllDomains needs injectHosts: "
                            "without it the real value could be sent to any host",
                            what, qn, net);
    for (size_t i = 0; i < m->inject_hosts.len; i++) {
        const char *h = m->inject_hosts.items[i];
        const char *e;
        al_settings_quote(qh, sizeof(qh), h);
        if ((e = list_covers(&p->net.denied_domains, h, 0)))
            return al_error_set(AL_EINVAL,
                                "%s (%s): injectHosts %s is denied by %s.deniedDomains %s", what,
                                qn, qh, net, al_settings_quote(qe, sizeof(qe), e));
        if (!p->net.allow_all_domains && !list_covers(&p->net.allowed_domains, h, 1))
            return al_error_set(AL_EINVAL,
                                "%s (%s): injectHosts %s is not covered by %s.allowedDomains: add "
                                "it (or a wildcard covering it) there, or remove it from "
                                "injectHosts",
                                what, qn, qh, net);
        if ((e = list_covers(&p->net.tls_exclude, h, 1)))
            return al_error_set(AL_EINVAL,
                                "%s (%s): injectHosts %s is covered by "
                                "%s.tlsTerminate.excludeDomains %s: TLS to it is not terminated, "
                                "so the real value could never be put back; remove it from one "
                                "of the two lists",
                                what, qn, qh, net, al_settings_quote(qe, sizeof(qe), e));
    }
    return 0;
}

int al_masked_inject_hosts(const struct al_policy *p, const struct al_masked *m,
                           struct al_strlist *out)
{
    const struct al_strlist *src = m->inject_hosts.len ? &m->inject_hosts : &p->net.allowed_domains;
    for (size_t i = 0; i < src->len; i++) {
        const char *e = src->items[i];
        const char *colon = strchr(e, ':');
        char *host = colon ? strndup(e, (size_t)(colon - e)) : strdup(e);
        if (!host || (!m->inject_hosts.len && (list_covers(&p->net.tls_exclude, host, 1) ||
                                               list_covers(&p->net.denied_domains, host, 0)))) {
            free(host); /* a default entry TLS never reaches is left out */
            if (!host)
                return al_error_set(AL_ENOMEM, "out of memory");
            continue;
        }
        if (push_unique_owned(out, host) < 0)
            return al_error_set(AL_ENOMEM, "out of memory");
    }
    return 0;
}

int al_policy_check_credentials(const struct al_policy *p)
{
    char what[64];
    const char *net = p->net_key_path;
    int err;
    for (size_t i = 0; i < p->n_mask_env; i++) {
        snprintf(what, sizeof(what), "%scredentials.envVars", p->key_prefix);
        if ((err = check_masked(p, what, &p->mask_env[i])) < 0)
            return err;
    }
    for (size_t i = 0; i < p->n_mask_files; i++) {
        snprintf(what, sizeof(what), "%scredentials.files", p->key_prefix);
        if ((err = check_masked(p, what, &p->mask_files[i])) < 0)
            return err;
    }
    for (size_t i = 0; i < p->net.n_request_rules; i++) {
        char qh[160], qe[160];
        const char *host = p->net.request_rules[i].host, *e;
        al_settings_quote(qh, sizeof(qh), host);
        if (!p->net.tls_terminate)
            return al_error_set(AL_EINVAL,
                                "%s.requestRules[%zu] (%s): needs %s.tlsTerminate: without it "
                                "the proxy cannot see the method and path of HTTPS requests",
                                net, i, qh, net);
        if ((e = list_covers(&p->net.tls_exclude, host, 1)))
            return al_error_set(AL_EINVAL,
                                "%s.requestRules[%zu] (%s): the host is covered by "
                                "%s.tlsTerminate.excludeDomains %s: its HTTPS requests are not "
                                "inspected, so the rule could not be enforced; remove it from "
                                "one of the two lists",
                                net, i, qh, net, al_settings_quote(qe, sizeof(qe), e));
    }
    return 0;
}
