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
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* srt credentials.files[i]: "deny" and "mask" both make the path unreadable
 * (airlock does not mask file contents). */
static int apply_credential_file(struct load_ctx *ctx, const char *kp, json_t *obj)
{
    char child[KP_MAX];
    kp_child(child, kp, "path");
    char *path = al_settings_expand_path(json_string_value(json_object_get(obj, "path")), ctx->home,
                                         ctx->cwd);
    if (!path)
        return fail_last(ctx, AL_EINVAL, child);
    if (push_unique_owned(&ctx->policy->deny_read, path) < 0)
        return oom(ctx, kp);
    return 0;
}

/* srt credentials.envVars[i]: the variable never enters the sandbox. */
static int apply_credential_env(struct load_ctx *ctx, const char *kp, json_t *obj)
{
    char child[KP_MAX], q[96];
    const char *name = json_string_value(json_object_get(obj, "name"));
    kp_child(child, kp, "name");
    if (!name[0] || (!isalpha((unsigned char)name[0]) && name[0] != '_') ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
            strlen(name))
        return fail(ctx, AL_EINVAL, child, "%s: expected a variable name ([A-Za-z_][A-Za-z0-9_]*)",
                    al_settings_quote(q, sizeof(q), name));
    if (push_unique_owned(&ctx->policy->deny_env, strdup(name)) < 0)
        return oom(ctx, kp);
    return 0;
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

static const char *const cred_modes[] = {"deny", "mask", NULL};
static const char *const no_match_modes[] = {"warn", "deny", "error", NULL};
static const char *const decode_modes[] = {"jwt", NULL};
static const char *const sigv4_modes[] = {"deny", "passthrough", NULL};

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
    LIST("allowMachLookup", K_STRINGS, NO_FIELD, 0),
    LIST("allowedAddresses", K_ADDRESSES, FIELD(net.allowed_addresses), 0),
    INT("httpProxyPort", FIELD(http_proxy_port), F_NULLABLE, 1, 65535),
    INT("socksProxyPort", FIELD(socks_proxy_port), F_NULLABLE, 1, 65535),
    STRING("customProxy", FIELD(custom_proxy), F_NULLABLE | F_NONEMPTY),
    BOOL("allowLocalBinding", FIELD(allow_local_binding)),
    BOOL("requireSniMatch", FIELD(net.require_sni_match)),
    CUSTOM("allowUnixSockets", unix_socket_list),
    CUSTOM("allowAllUnixSockets", apply_all_unix_sockets),
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

static const struct key srt_mitm_keys[] = {
    STRING("socketPath", NO_FIELD, F_NONEMPTY | F_REQUIRED),
    LIST("domains", K_DOMAINS, NO_FIELD, F_REQUIRED),
    END,
};

static const struct key srt_tls_keys[] = {
    STRING("caCertPath", NO_FIELD, F_NONEMPTY),
    STRING("caKeyPath", NO_FIELD, F_NONEMPTY),
    LIST("excludeDomains", K_DOMAINS, NO_FIELD, 0),
    LIST("extraCaCertPaths", K_STRINGS, NO_FIELD, F_NONEMPTY),
    END,
};

static const struct key srt_parent_proxy_keys[] = {
    STRING("http", NO_FIELD, F_NONEMPTY),
    STRING("https", NO_FIELD, F_NONEMPTY),
    STRING("noProxy", NO_FIELD, 0),
    END,
};

static const struct key srt_network_keys[] = {
    LIST("allowedDomains", K_DOMAINS, FIELD(net.allowed_domains), 0),
    LIST("deniedDomains", K_DENIED_DOMAINS, FIELD(net.denied_domains), 0),
    OTHER("deniedDomainReasons", K_MAP_STRING),
    BOOL("strictAllowlist", FIELD(net.strict_allowlist)),
    BOOL("allowAllDomains", FIELD(net.allow_all_domains)),
    CUSTOM("allowUnixSockets", unix_socket_list),
    CUSTOM("allowAllUnixSockets", apply_all_unix_sockets),
    BOOL("allowLocalBinding", FIELD(allow_local_binding)),
    LIST("allowMachLookup", K_STRINGS, NO_FIELD, 0),
    INT("httpProxyPort", FIELD(http_proxy_port), F_NULLABLE, 1, 65535),
    INT("socksProxyPort", FIELD(socks_proxy_port), F_NULLABLE, 1, 65535),
    OBJECT("mitmProxy", srt_mitm_keys),
    OBJECT("tlsTerminate", srt_tls_keys),
    OBJECT("parentProxy", srt_parent_proxy_keys),
    LIST("allowedAddresses", K_ADDRESSES, FIELD(net.allowed_addresses), 0),
    BOOL("requireSniMatch", FIELD(net.require_sni_match)),
    END,
};

static const struct key srt_cred_file_keys[] = {
    STRING("path", NO_FIELD, F_NONEMPTY | F_REQUIRED),
    ENUM("mode", F_REQUIRED, cred_modes),
    STRING("extract", NO_FIELD, 0),
    ENUM("onExtractNoMatch", 0, no_match_modes),
    ENUM("decode", 0, decode_modes),
    LIST("maskClaims", K_STRINGS, NO_FIELD, F_NONEMPTY),
    BOOL("maskDuplicates", NO_FIELD),
    LIST("injectHosts", K_DOMAINS, NO_FIELD, 0),
    END,
};

static const struct key srt_cred_env_keys[] = {
    STRING("name", NO_FIELD, F_NONEMPTY | F_REQUIRED),
    ENUM("mode", F_REQUIRED, cred_modes),
    STRING("extract", NO_FIELD, 0),
    ENUM("onExtractNoMatch", 0, no_match_modes),
    ENUM("decode", 0, decode_modes),
    LIST("maskClaims", K_STRINGS, NO_FIELD, F_NONEMPTY),
    LIST("injectHosts", K_DOMAINS, NO_FIELD, 0),
    END,
};

static const struct key srt_aws_pair_keys[] = {
    STRING("accessKeyIdVar", NO_FIELD, F_NONEMPTY | F_REQUIRED),
    STRING("secretAccessKeyVar", NO_FIELD, F_NONEMPTY | F_REQUIRED),
    STRING("sessionTokenVar", NO_FIELD, F_NONEMPTY),
    END,
};

static const struct key srt_sigv4_keys[] = {
    ENUM("streaming", 0, sigv4_modes),
    ENUM("presigned", 0, sigv4_modes),
    ENUM("sigv4a", 0, sigv4_modes),
    END,
};

static const struct key srt_credentials_keys[] = {
    OBJECTS("files", srt_cred_file_keys, apply_credential_file),
    OBJECTS("envVars", srt_cred_env_keys, apply_credential_env),
    BOOL("allowPlaintextInject", NO_FIELD),
    OBJECTS("awsPairs", srt_aws_pair_keys, NULL),
    OBJECT("sigv4", srt_sigv4_keys),
    END,
};

static const struct key srt_ripgrep_keys[] = {
    STRING("command", NO_FIELD, F_NONEMPTY | F_REQUIRED),
    LIST("args", K_STRINGS, NO_FIELD, 0),
    STRING("argv0", NO_FIELD, 0),
    END,
};

/* ripgrep, bwrapPath, socatPath in a settings.json: paths of Claude Code's
 * own sandbox helpers. Type-checked like srt's, and said not to apply. */
static int apply_not_applicable(struct load_ctx *ctx, const char *kp, json_t *value)
{
    static const struct key ripgrep = {"", K_OBJECT, NO_FIELD, 0, NULL, NULL, 0, 0, NULL};
    const char *last = strrchr(kp, '.');
    int err;
    if (last && strcmp(last + 1, "ripgrep") == 0) {
        struct key k = ripgrep;
        k.sub = srt_ripgrep_keys;
        if ((err = walk_value(ctx, kp, value, &k)) < 0)
            return err;
    } else if (!json_is_string(value) || json_string_value(value)[0] != '/') {
        return fail(ctx, AL_EINVAL, kp, "expected an absolute path");
    }
    return warn(ctx, kp,
                "does not apply: it configures Claude Code's own sandbox helpers; "
                "airlock builds its sandbox itself");
}

/* Shape 1's "sandbox" block (after the srt tables it shares). */
static const struct key cc_sandbox_keys[] = {
    BOOL("enabled", NO_FIELD),
    BOOL("autoAllowBashIfSandboxed", NO_FIELD),
    BOOL("failIfUnavailable", NO_FIELD),
    OBJECT("filesystem", cc_filesystem_keys),
    OBJECT("network", cc_network_keys),
    CUSTOM("allowUnixSockets", apply_unix_sockets),
    CUSTOM("allowAllUnixSockets", apply_all_unix_sockets),
    BOOL("enableWeakerNestedSandbox", FIELD(weaker_nested)),
    OBJECT("credentials", srt_credentials_keys),
    LIST("enabledPlatforms", K_STRINGS, NO_FIELD, F_NONEMPTY),
    BOOL("allowAppleEvents", NO_FIELD),
    BOOL("enableWeakerNetworkIsolation", NO_FIELD),
    CUSTOM("ripgrep", apply_not_applicable),
    CUSTOM("bwrapPath", apply_not_applicable),
    CUSTOM("socatPath", apply_not_applicable),
    LIST("excludedCommands", K_STRINGS, FIELD(excluded_commands), F_NONEMPTY | F_NOSLASH),
    BOOL("allowUnsandboxedCommands", FIELD(allow_unsandboxed)),
    CUSTOM("mode", apply_mode),
    OTHER("ignoreViolations", K_MAP_STRINGS),
    LIST("deniedEnv", K_STRINGS, FIELD(deny_env), F_NONEMPTY),
    END,
};

static const struct key srt_seccomp_keys[] = {
    STRING("applyPath", NO_FIELD, 0),
    STRING("argv0", NO_FIELD, 0),
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
    OBJECT("credentials", srt_credentials_keys),
    OTHER("ignoreViolations", K_MAP_STRINGS),
    BOOL("enableWeakerNestedSandbox", FIELD(weaker_nested)),
    BOOL("enableWeakerNetworkIsolation", NO_FIELD),
    BOOL("allowAppleEvents", NO_FIELD),
    OBJECT("ripgrep", srt_ripgrep_keys),
    INT("mandatoryDenySearchDepth", FIELD(mandatory_deny_depth), 0, 1, 10),
    BOOL("allowPty", NO_FIELD),
    OBJECT("seccomp", srt_seccomp_keys),
    STRING("bwrapPath", NO_FIELD, F_NONEMPTY | F_ABSOLUTE),
    STRING("socatPath", NO_FIELD, F_NONEMPTY | F_ABSOLUTE),
    OBJECT("windows", srt_windows_keys),
    OBJECT("git", srt_git_keys),
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
