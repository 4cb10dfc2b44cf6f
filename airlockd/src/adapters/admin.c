#include "airlockd/adapters/admin.h"

#include "airlockd/adapters/auth.h"
#include "airlockd/adapters/store.h"
#include "airlockd/adapters/store_nodes.h"
#include "airlockd/core/config.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ald_state_prepare(const char *state_dir)
{
    char path[PATH_MAX];
    /* Root only: the database holds every user's sessions and key hashes
     * (no umask: sandboxes inherit it). Sandboxes never see the state dir
     * either (it is hidden in each of them). */
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
        return al_error_set_errno(AL_EIO, errno, "mkdir %s", state_dir);
    if (chmod(state_dir, 0700) < 0)
        return al_error_set_errno(AL_EIO, errno, "chmod %s", state_dir);
    snprintf(path, sizeof(path), "%s/sessions", state_dir);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return al_error_set_errno(AL_EIO, errno, "mkdir %s", path);
    snprintf(path, sizeof(path), "%s/run", state_dir);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return al_error_set_errno(AL_EIO, errno, "mkdir %s", path);
    return 0;
}

/* The commands of `admin`: noun, verb and what follows them. */
static const struct admin_usage {
    const char *noun, *verb, *args, *what;
} admin_usages[] = {
    {"user", "add", "NAME [--admin] [--max-sessions N] [--max-memory-mb N]", "add a user"},
    {"user", "ls", "[--json]", "list users"},
    {"user", "rm", "NAME", "remove a user and revoke its keys"},
    {"key", "create", "--user NAME [--name LABEL]", "create an API key (printed once)"},
    {"key", "ls", "[--user NAME] [--json]", "list API keys"},
    {"key", "revoke", "KEY_ID", "revoke an API key"},
    {"node", "ls", "[--json]",
     "list the cluster's nodes: state, sessions, capacity, heartbeat age"},
    {"node", "drain", "NODE [--wait [--timeout S]]",
     "place no new sessions on NODE; --wait: until its sessions have ended"},
    {"node", "undrain", "NODE", "place sessions on a drained NODE again"},
    {"node", "rm", "NODE", "remove a NODE that is down (refused while it heartbeats)"},
};

/* Prints the usage of `<prog> admin [noun [verb]]` to `f`: every command
 * when `noun` is NULL (or not a noun), the noun's when `verb` is NULL (or
 * not one of its verbs), else that one command. */
static void usage(FILE *f, const char *prog, const char *noun, const char *verb)
{
    size_t n = sizeof(admin_usages) / sizeof(admin_usages[0]);
    int noun_known = 0, verb_known = 0;
    for (size_t i = 0; i < n; i++) {
        if (noun && strcmp(noun, admin_usages[i].noun) == 0) {
            noun_known = 1;
            if (verb && strcmp(verb, admin_usages[i].verb) == 0)
                verb_known = 1;
        }
    }
    if (!noun_known)
        noun = NULL;
    if (!verb_known)
        verb = NULL;
    if (!verb)
        fprintf(f, "usage: %s admin %s%sCOMMAND [--config FILE | --state-dir DIR]\n\n", prog,
                noun ? noun : "", noun ? " " : "");
    for (size_t i = 0; i < n; i++) {
        const struct admin_usage *u = &admin_usages[i];
        if ((noun && strcmp(noun, u->noun) != 0) || (verb && strcmp(verb, u->verb) != 0))
            continue;
        if (verb)
            fprintf(f, "usage: %s admin %s %s %s [--config FILE | --state-dir DIR]\n  %s\n", prog,
                    noun, verb, u->args, u->what);
        else
            fprintf(f, "  %s %s %s\n      %s\n", u->noun, u->verb, u->args, u->what);
    }
    fputs("\n  --config FILE    the daemon's configuration (its state_dir)\n"
          "  --state-dir DIR  the state dir (default /var/lib/airlock)\n"
          "Users and keys live in DIR/airlockd.db (or the config's PostgreSQL store);\n"
          "this works while the daemon runs. Nodes exist only in a cluster's PostgreSQL\n"
          "store (docs/cluster.md): give the --config of one of its nodes.\n",
          f);
}

/* One parsed `admin` command line: what to do and with which arguments. */
struct admin_req {
    const char *prog;      /* "airlock" or "airlockd", for messages */
    const char *config;    /* --config, or NULL */
    const char *state_dir; /* --state-dir, or NULL */
    const char *noun, *verb;
    const char *name;  /* user add/rm: the user; key revoke: the key id */
    const char *user;  /* key create/ls --user */
    const char *label; /* key create --name */
    int admin, json, help;
    int64_t max_sessions, max_memory_mb;
    int wait;          /* node drain --wait */
    int64_t timeout_s; /* node drain --wait --timeout S; -1: none */
};

/* Prints "<prog> admin: <message>" and the usage hint on stderr; returns
 * 2 (a bad command line). */
__attribute__((format(printf, 2, 3))) static int bad_usage(const struct admin_req *r,
                                                           const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s admin: ", r->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(%s admin%s%s%s%s --help for the usage)\n", r->prog, r->noun ? " " : "",
            r->noun ? r->noun : "", r->verb ? " " : "", r->verb ? r->verb : "");
    return 2;
}

/* A node id as config.c accepts cluster.node_id: [A-Za-z0-9._-]{1,63}. */
static int node_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

static int parse_count(const struct admin_req *r, const char *opt, const char *s, int64_t *out)
{
    uint64_t v;
    if (ald_parse_u64(s, (uint64_t)1 << 40, &v) < 0)
        return bad_usage(r, "%s: \"%s\" is not a number", opt, s);
    *out = (int64_t)v;
    return 0;
}

/* Parses argv (argv[0] is "admin") into `r` without touching anything:
 * 0, or 2 after printing why the command line is wrong. Sets r->help for
 * --help/-h anywhere. */
static int admin_parse(struct admin_req *r, int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL}; /* noun, verb, operand */
    int npos = 0, rc;
    r->max_sessions = r->max_memory_mb = r->timeout_s = -1;
    r->label = "";
    /* --help wins over any mistake around it */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            r->help = 1;
        else if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else if (argv[i][0] == '-' && i + 1 < argc &&
                 (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--state-dir") == 0 ||
                  strcmp(argv[i], "--user") == 0 || strcmp(argv[i], "--name") == 0 ||
                  strcmp(argv[i], "--max-sessions") == 0 ||
                  strcmp(argv[i], "--max-memory-mb") == 0 || strcmp(argv[i], "--timeout") == 0))
            i++;
    }
    if (r->help) {
        r->noun = pos[0];
        r->verb = pos[1];
        return 0;
    }
    npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--config") == 0)
            slot = &r->config;
        else if (strcmp(a, "--state-dir") == 0)
            slot = &r->state_dir;
        else if (strcmp(a, "--user") == 0)
            slot = &r->user;
        else if (strcmp(a, "--name") == 0)
            slot = &r->label;
        else if (strcmp(a, "--max-sessions") == 0 || strcmp(a, "--max-memory-mb") == 0) {
            if (i + 1 >= argc)
                return bad_usage(r, "%s needs a value (a number)", a);
            int64_t *v = a[6] == 's' ? &r->max_sessions : &r->max_memory_mb;
            if ((rc = parse_count(r, a, argv[++i], v)) != 0)
                return rc;
            continue;
        } else if (strcmp(a, "--timeout") == 0) {
            if (i + 1 >= argc)
                return bad_usage(r, "--timeout needs a value (seconds)");
            if ((rc = parse_count(r, a, argv[++i], &r->timeout_s)) != 0)
                return rc;
            continue;
        } else if (strcmp(a, "--wait") == 0) {
            r->wait = 1;
            continue;
        } else if (strcmp(a, "--admin") == 0) {
            r->admin = 1;
            continue;
        } else if (strcmp(a, "--json") == 0) {
            r->json = 1;
            continue;
        } else if (a[0] == '-') {
            return bad_usage(r, "unknown option \"%s\"", a);
        } else if (npos < 3) {
            pos[npos++] = a;
            r->noun = pos[0];
            r->verb = pos[1];
            continue;
        } else {
            return bad_usage(r, "unexpected \"%s\"", a);
        }
        if (i + 1 >= argc)
            return bad_usage(r, "%s needs a value (%s)", a,
                             slot == &r->config      ? "a configuration file"
                             : slot == &r->state_dir ? "a directory"
                             : slot == &r->user      ? "a user name"
                                                     : "a label");
        *slot = argv[++i];
    }
    if (!r->noun)
        return bad_usage(r, "which command? (user, key or node)");
    const struct admin_usage *u = NULL;
    for (size_t i = 0; i < sizeof(admin_usages) / sizeof(admin_usages[0]); i++)
        if (strcmp(r->noun, admin_usages[i].noun) == 0 && r->verb &&
            strcmp(r->verb, admin_usages[i].verb) == 0)
            u = &admin_usages[i];
    if (strcmp(r->noun, "user") != 0 && strcmp(r->noun, "key") != 0 &&
        strcmp(r->noun, "node") != 0) {
        const char *noun = r->noun;
        r->noun = NULL;
        return bad_usage(r, "unknown command \"%s\"", noun);
    }
    if (!u) {
        const char *verb = r->verb;
        r->verb = NULL;
        return verb ? bad_usage(r, "unknown %s command \"%s\"", r->noun, verb)
                    : bad_usage(r, "which %s command?", r->noun);
    }
    r->name = pos[2];
    int is_user = strcmp(r->noun, "user") == 0;
    int is_node = strcmp(r->noun, "node") == 0;
    int wants_operand = strcmp(r->verb, "rm") == 0 || strcmp(r->verb, "revoke") == 0 ||
                        (is_user && strcmp(r->verb, "add") == 0) ||
                        (is_node && strcmp(r->verb, "ls") != 0);
    if (wants_operand && !r->name)
        return bad_usage(r, "%s %s wants %s", r->noun, r->verb, u->args);
    if (!wants_operand && r->name)
        return bad_usage(r, "unexpected \"%s\"", r->name);
    /* options that the command does not take */
    int add = is_user && strcmp(r->verb, "add") == 0;
    int create = !is_user && strcmp(r->verb, "create") == 0;
    int ls = strcmp(r->verb, "ls") == 0;
    if (!add && (r->admin || r->max_sessions >= 0 || r->max_memory_mb >= 0))
        return bad_usage(r, "%s %s takes no --admin, --max-sessions or --max-memory-mb", r->noun,
                         r->verb);
    if (!ls && r->json)
        return bad_usage(r, "%s %s takes no --json", r->noun, r->verb);
    int drain = is_node && strcmp(r->verb, "drain") == 0;
    if (!drain && r->wait)
        return bad_usage(r, "%s %s takes no --wait", r->noun, r->verb);
    if (r->timeout_s >= 0 && !r->wait)
        return bad_usage(r, "--timeout goes with node drain --wait");
    if (is_node && r->name && !node_name_valid(r->name))
        return bad_usage(r, "a node name is [A-Za-z0-9._-]{1,63}");
    if (r->user && !create && !(ls && !is_user && !is_node))
        return bad_usage(r, "%s %s takes no --user", r->noun, r->verb);
    if (r->label[0] && !create)
        return bad_usage(r, "%s %s takes no --name", r->noun, r->verb);
    if (add && !ald_user_name_valid(r->name))
        return bad_usage(r, "a user name is [a-z0-9][a-z0-9._-]{0,62}");
    if (create && !r->user)
        return bad_usage(r, "key create needs --user NAME");
    if (create && strlen(r->label) > 128)
        return bad_usage(r, "--name is at most 128 bytes");
    if (r->config && r->state_dir)
        return bad_usage(r, "give --config or --state-dir, not both");
    return 0;
}

static void print_json(json_t *v)
{
    char *txt = json_dumps(v, JSON_INDENT(2));
    if (txt)
        puts(txt);
    free(txt);
}

static int user_cmd(struct ald_store *st, const struct admin_req *r)
{
    if (strcmp(r->verb, "add") == 0) {
        struct ald_user u = {
            .admin = r->admin, .max_sessions = r->max_sessions, .max_memory_mb = r->max_memory_mb};
        snprintf(u.name, sizeof(u.name), "%s", r->name);
        u.created_ms = ald_now_ms();
        if (ald_store_user_add(st, &u) < 0) {
            fprintf(stderr, "%s admin: %s\n", r->prog, al_error_last());
            return 1;
        }
        printf("user %s added%s\n", r->name, u.admin ? " (admin)" : "");
        return 0;
    }
    if (strcmp(r->verb, "ls") == 0) {
        json_t *users = NULL;
        if (ald_store_user_list(st, &users) < 0) {
            fprintf(stderr, "%s admin: %s\n", r->prog, al_error_last());
            return 1;
        }
        if (r->json) {
            print_json(users);
        } else {
            printf("%-24s %-5s %-12s %-13s %s\n", "NAME", "ADMIN", "MAX_SESSIONS", "MAX_MEMORY_MB",
                   "CREATED");
            size_t i;
            json_t *u;
            json_array_foreach(users, i, u)
            {
                json_t *ms = json_object_get(u, "max_sessions");
                json_t *mm = json_object_get(u, "max_memory_mb");
                char s1[24] = "default", s2[24] = "default";
                if (json_is_integer(ms))
                    snprintf(s1, sizeof(s1), "%lld", (long long)json_integer_value(ms));
                if (json_is_integer(mm))
                    snprintf(s2, sizeof(s2), "%lld", (long long)json_integer_value(mm));
                printf("%-24s %-5s %-12s %-13s %s\n", json_string_value(json_object_get(u, "name")),
                       json_is_true(json_object_get(u, "admin")) ? "yes" : "no", s1, s2,
                       json_string_value(json_object_get(u, "created_at")));
            }
        }
        json_decref(users);
        return 0;
    }
    /* rm */
    if (ald_store_user_remove(st, r->name, ald_now_ms()) < 0) {
        fprintf(stderr, "%s admin: %s\n", r->prog, al_error_last());
        return 1;
    }
    printf("user %s removed, keys revoked\n", r->name);
    return 0;
}

static int key_cmd(struct ald_store *st, const struct admin_req *r)
{
    if (strcmp(r->verb, "create") == 0) {
        char key[ALD_KEY_LEN + 1], id[24];
        unsigned char hash[32];
        if (ald_auth_key_new(key, id, hash) < 0 ||
            ald_store_key_add(st, id, r->user, r->label, hash, ald_now_ms()) < 0) {
            fprintf(stderr, "%s admin: %s\n", r->prog, al_error_last());
            explicit_bzero(key, sizeof(key));
            return 1;
        }
        /* the key on stdout alone (for scripts); it is not stored */
        printf("%s\n", key);
        fflush(stdout);
        fprintf(stderr, "created key %s for %s (shown once; only its SHA-256 is kept)\n", id,
                r->user);
        explicit_bzero(key, sizeof(key));
        return 0;
    }
    if (strcmp(r->verb, "ls") == 0) {
        json_t *keys = NULL;
        if (ald_store_key_list(st, r->user, &keys) < 0) {
            fprintf(stderr, "%s admin: %s\n", r->prog, al_error_last());
            return 1;
        }
        if (r->json) {
            print_json(keys);
        } else {
            printf("%-18s %-24s %-16s %-24s %s\n", "ID", "USER", "NAME", "CREATED", "REVOKED");
            size_t i;
            json_t *k;
            json_array_foreach(keys, i, k)
            {
                const char *rev = json_string_value(json_object_get(k, "revoked_at"));
                printf("%-18s %-24s %-16s %-24s %s\n", json_string_value(json_object_get(k, "id")),
                       json_string_value(json_object_get(k, "user")),
                       json_string_value(json_object_get(k, "name")),
                       json_string_value(json_object_get(k, "created_at")), rev ? rev : "-");
            }
        }
        json_decref(keys);
        return 0;
    }
    /* revoke */
    if (ald_store_key_revoke(st, r->name, ald_now_ms()) < 0) {
        fprintf(stderr, "%s admin: %s\n", r->prog, al_error_last());
        return 1;
    }
    printf("key %s revoked\n", r->name);
    return 0;
}

static int64_t jint(json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* The row of node `id` in `nodes` (borrowed), or NULL. */
static json_t *node_find(json_t *nodes, const char *id)
{
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        if (strcmp(jstr(n, "id"), id) == 0)
            return n;
    }
    return NULL;
}

static void node_table(json_t *nodes)
{
    printf("%-20s %-9s %-16s %-20s %-6s %-10s %s\n", "NODE", "STATE", "SESSIONS", "MEMORY_MB",
           "CPUS", "HEARTBEAT", "ADDRESS");
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        json_t *cap = json_object_get(n, "capacity");
        char sess[40], mem[48], age[32];
        snprintf(sess, sizeof(sess), "%lld/%lld", (long long)jint(n, "sessions"),
                 (long long)jint(cap, "sessions"));
        snprintf(mem, sizeof(mem), "%lld/%lld", (long long)jint(n, "memory_mb"),
                 (long long)jint(cap, "memory_mb"));
        int64_t a = jint(n, "heartbeat_age_ms");
        snprintf(age, sizeof(age), "%lld.%llds ago", (long long)(a / 1000),
                 (long long)((a % 1000) / 100));
        printf("%-20s %-9s %-16s %-20s %-6.1f %-10s %s", jstr(n, "id"), jstr(n, "state"), sess, mem,
               (double)jint(cap, "cpu_m") / 1000.0, age, jstr(n, "address"));
        const char *why = jstr(n, "down_reason");
        if (why[0])
            printf("  (%s)", why);
        putchar('\n');
    }
}

/* node drain --wait: polls the node list every second until `id` has no
 * live session (0) or the timeout passes (1). A database outage while
 * waiting is reported once and waited through. */
static int node_wait(struct ald_store *st, const struct admin_req *r)
{
    uint64_t start = ald_mono_ms();
    long long last = -1;
    int down = 0;
    for (;;) {
        json_t *nodes = NULL;
        if (ald_store_node_list(st, &nodes) < 0) {
            if (!down)
                fprintf(stderr, "%s admin: %s (still waiting)\n", r->prog, al_error_last());
            down = 1;
        } else {
            down = 0;
            json_t *n = node_find(nodes, r->name);
            long long k = n ? (long long)jint(n, "sessions") : 0;
            json_decref(nodes);
            if (k != last)
                printf("%s: %lld session%s left\n", r->name, k, k == 1 ? "" : "s");
            fflush(stdout);
            last = k;
            if (k == 0)
                return 0;
        }
        if (r->timeout_s >= 0 && ald_mono_ms() - start >= (uint64_t)r->timeout_s * 1000) {
            fprintf(stderr, "%s admin: node %s: still %lld session%s after %lld s\n", r->prog,
                    r->name, last < 0 ? 0 : last, last == 1 ? "" : "s", (long long)r->timeout_s);
            return 1;
        }
        sleep(1);
    }
}

static int node_cmd(struct ald_store *st, const struct admin_req *r, const struct ald_config *cfg)
{
    json_t *nodes = NULL;
    int rc = 1;
    if (ald_store_node_list(st, &nodes) < 0) {
        fprintf(stderr, "%s admin: %s\n", r->prog, al_error_last());
        goto out;
    }
    if (json_array_size(nodes) == 0) {
        fprintf(stderr, "%s admin: no cluster: this store has no nodes\n", r->prog);
        goto out;
    }
    if (strcmp(r->verb, "ls") == 0) {
        if (r->json)
            print_json(nodes);
        else
            node_table(nodes);
        rc = 0;
        goto out;
    }
    json_t *n = node_find(nodes, r->name);
    if (!n) {
        fprintf(stderr, "%s admin: no node %s\n", r->prog, r->name);
        goto out;
    }
    const char *to = strcmp(r->verb, "drain") == 0     ? "draining"
                     : strcmp(r->verb, "undrain") == 0 ? "up"
                                                       : "left";
    if (strcmp(r->verb, "rm") == 0) {
        /* a node that is alive would keep running (and re-register): only
         * a node whose heartbeat stopped can leave */
        const char *state = jstr(n, "state");
        int64_t age = jint(n, "heartbeat_age_ms");
        if ((strcmp(state, "up") == 0 || strcmp(state, "draining") == 0) &&
            age < (int64_t)cfg->cluster.down_after_ms) {
            fprintf(stderr,
                    "%s admin: node %s is %s (heartbeat %lld ms ago); stop its airlockd first, "
                    "or drain it\n",
                    r->prog, r->name, state, (long long)age);
            goto out;
        }
    }
    if (strcmp(r->verb, "undrain") == 0 && strcmp(jstr(n, "state"), "draining") != 0) {
        fprintf(stderr, "%s admin: node %s is %s, not draining\n", r->prog, r->name,
                jstr(n, "state"));
        goto out;
    }
    if (ald_store_node_set_state(st, r->name, to) < 0) {
        fprintf(stderr, "%s admin: node %s: %s\n", r->prog, r->name, al_error_last());
        goto out;
    }
    printf("node %s: %s\n", r->name, strcmp(to, "left") == 0 ? "removed" : to);
    fflush(stdout);
    rc = r->wait ? node_wait(st, r) : 0;
out:
    json_decref(nodes);
    return rc;
}

int ald_admin_main(const char *prog, int argc, char **argv)
{
    struct admin_req r = {.prog = prog};
    struct ald_config cfg;
    struct ald_store *st = NULL;
    char db[PATH_MAX];
    /* The whole command line is read and checked before the state dir or
     * its database is touched: a mistake or --help changes nothing. */
    int rc = admin_parse(&r, argc, argv);
    if (rc != 0)
        return rc;
    if (r.help) {
        usage(stdout, prog, r.noun, r.verb);
        return 0;
    }
    if (ald_config_init(&cfg) < 0)
        return 1;
    rc = 1;
    if (r.config && ald_config_load_file(&cfg, r.config) < 0) {
        fprintf(stderr, "%s admin: %s\n", prog, al_error_last());
        goto out;
    }
    /* nodes are rows of a cluster's PostgreSQL store; a SQLite state dir
     * never has any (and is neither opened nor created for the question) */
    if (strcmp(r.noun, "node") == 0 && !cfg.store.postgres) {
        fprintf(stderr, "%s admin: no cluster: this store has no nodes (%s)\n", prog,
                r.config ? "its store is SQLite" : "give the --config of a cluster node");
        goto out;
    }
    const char *state_dir = r.state_dir ? r.state_dir : cfg.state_dir;
    int n = snprintf(db, sizeof(db), "%s/airlockd.db", state_dir);
    if (n < 0 || (size_t)n >= sizeof(db)) {
        fprintf(stderr, "%s admin: state dir path too long\n", prog);
        goto out;
    }
    /* A listing only reads: a state dir without a database has nothing to
     * list, and is not created for it. */
    if (strcmp(r.verb, "ls") == 0 && !cfg.store.postgres && access(db, F_OK) < 0) {
        fprintf(stderr,
                "%s admin: no airlockd state in %s (%s: %s); give --state-dir or --config\n", prog,
                state_dir, db, strerror(errno));
        goto out;
    }
    if ((strcmp(r.verb, "ls") != 0 && ald_state_prepare(state_dir) < 0) ||
        ald_store_open_config(&st, &cfg, db) < 0) {
        fprintf(stderr, "%s admin: %s\n", prog, al_error_last());
        goto out;
    }
    rc = strcmp(r.noun, "user") == 0   ? user_cmd(st, &r)
         : strcmp(r.noun, "node") == 0 ? node_cmd(st, &r, &cfg)
                                       : key_cmd(st, &r);
out:
    ald_store_close(st);
    ald_config_free(&cfg);
    return rc;
}
