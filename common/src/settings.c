/* Settings files: shape detection, a table per JSON object describing its
 * keys, and one walker that validates every value against its table and
 * applies it to the policy. docs/settings.md lists the same keys for users. */
#include "airlock/settings.h"
#include "airlock/buf.h"
#include "airlock/error.h"
#include "settings_internal.h"

#include <ctype.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct load_ctx {
    struct al_policy *policy;
    const char *name; /* file name for messages */
    const char *home;
    const char *cwd;
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

static int unknown_key(struct load_ctx *ctx, const char *kp, const char *key,
                       const struct key *keys)
{
    char child[KP_MAX];
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    kp_child(child, kp, key);
    for (const struct key *k = keys; k->name; k++) {
        size_t d = edit_distance(key, k->name);
        if (d < best_d) {
            best_d = d;
            best = k->name;
        }
    }
    size_t limit = strlen(key) / 3 > 2 ? strlen(key) / 3 : 2;
    if (best && best_d <= limit)
        return fail(ctx, AL_EINVAL, child, "unknown key (did you mean \"%s\"?)", best);
    return fail(ctx, AL_EINVAL, child, "unknown key");
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

static int walk_list(struct load_ctx *ctx, const char *kp, json_t *value, const struct key *key)
{
    char child[KP_MAX];
    size_t i;
    json_t *item;
    struct al_strlist *list = key->field == NO_FIELD ? NULL : field_list(ctx, key->field);

    if (!json_is_array(value))
        return fail(ctx, AL_EINVAL, kp, "expected a list of strings");
    json_array_foreach(value, i, item)
    {
        kp_index(child, kp, i);
        if (!json_is_string(item))
            return fail(ctx, AL_EINVAL, child, "expected a string (in a list of strings)");
        int err = list_item(ctx, child, key, list, json_string_value(item));
        if (err < 0)
            return err;
    }
    return 0;
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
    END,
};

static const struct key cc_network_keys[] = {
    LIST("allowedDomains", K_DOMAINS, FIELD(net.allowed_domains), 0),
    LIST("deniedDomains", K_DENIED_DOMAINS, FIELD(net.denied_domains), 0),
    BOOL("allowAllDomains", FIELD(net.allow_all_domains)),
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

static const struct key cc_sandbox_keys[] = {
    BOOL("enabled", NO_FIELD),
    BOOL("autoAllowBashIfSandboxed", NO_FIELD),
    OBJECT("filesystem", cc_filesystem_keys),
    OBJECT("network", cc_network_keys),
    CUSTOM("allowUnixSockets", apply_unix_sockets),
    CUSTOM("allowAllUnixSockets", apply_all_unix_sockets),
    BOOL("enableWeakerNestedSandbox", FIELD(weaker_nested)),
    LIST("excludedCommands", K_STRINGS, FIELD(excluded_commands), F_NONEMPTY | F_NOSLASH),
    BOOL("allowUnsandboxedCommands", FIELD(allow_unsandboxed)),
    CUSTOM("mode", apply_mode),
    OTHER("ignoreViolations", K_MAP_STRINGS),
    LIST("deniedEnv", K_STRINGS, FIELD(deny_env), F_NONEMPTY),
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
    BOOL("strictAllowlist", NO_FIELD),
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

/* Top-level keys of Claude Code's settings.json other than "sandbox": a file
 * holding any of them is shape 1 even without a sandbox block (it then
 * changes nothing), so settings.local.json with only "permissions" loads. */
static const char *const cc_top_keys[] = {
    "$schema",
    "permissions",
    "env",
    "hooks",
    "model",
    "apiKeyHelper",
    "statusLine",
    "outputStyle",
    "cleanupPeriodDays",
    "includeCoAuthoredBy",
    "enableAllProjectMcpServers",
    "enabledMcpjsonServers",
    "disabledMcpjsonServers",
    "forceLoginMethod",
    "awsAuthRefresh",
    "awsCredentialExport",
    "disableAllHooks",
    "enabledPlugins",
    "alwaysThinkingEnabled",
    NULL,
};

/* --- entry points -------------------------------------------------------- */

static int settings_is_claude_code(json_t *root)
{
    if (json_object_get(root, "sandbox"))
        return 1;
    for (size_t i = 0; srt_keys[i].name; i++)
        if (json_object_get(root, srt_keys[i].name))
            return 0;
    for (size_t i = 0; cc_top_keys[i]; i++)
        if (json_object_get(root, cc_top_keys[i]))
            return 1;
    return 0;
}

int al_settings_load_buffer(struct al_policy *policy, const char *name, const char *data,
                            size_t len, const char *home, const char *cwd)
{
    struct load_ctx ctx = {policy, name, home, cwd};
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
    if (settings_is_claude_code(root)) {
        json_t *sandbox = json_object_get(root, "sandbox");
        err = sandbox ? walk_object(&ctx, "sandbox", sandbox, cc_sandbox_keys) : 0;
        if (json_object_get(sandbox, "network"))
            key_path = "sandbox.network";
    } else {
        err = walk_object(&ctx, "", root, srt_keys);
        if (json_object_get(root, "network"))
            key_path = "network";
    }
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
    err = al_settings_load_buffer(policy, path, buf.ptr, buf.len, home, cwd);
out:
    al_buf_free(&buf);
    return err;
}
