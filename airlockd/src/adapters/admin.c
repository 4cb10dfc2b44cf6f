#include "airlockd/adapters/admin.h"

#include "airlockd/adapters/auth.h"
#include "airlockd/adapters/store.h"
#include "airlockd/core/config.h"
#include "airlockd/core/util.h"

#include "airlock/error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static void usage(FILE *f)
{
    fputs("usage: airlockd admin [--config FILE | --state-dir DIR] COMMAND\n"
          "  user add NAME [--admin] [--max-sessions N] [--max-memory-mb N]\n"
          "  user ls [--json]\n"
          "  user rm NAME                 (also revokes the user's keys)\n"
          "  key create --user NAME [--name LABEL]   prints the key once\n"
          "  key ls [--user NAME] [--json]\n"
          "  key revoke KEY_ID\n",
          f);
}

/* Value of "--opt VALUE" at argv[*i]; advances *i. */
static const char *opt_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "airlockd admin: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int parse_count(const char *s, int64_t *out)
{
    uint64_t v;
    if (!s || ald_parse_u64(s, (uint64_t)1 << 40, &v) < 0) {
        fprintf(stderr, "airlockd admin: \"%s\" is not a number\n", s ? s : "");
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static void print_json(json_t *v)
{
    char *txt = json_dumps(v, JSON_INDENT(2));
    if (txt)
        puts(txt);
    free(txt);
}

static int user_cmd(struct ald_store *st, int argc, char **argv)
{
    if (argc < 1) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[0], "add") == 0) {
        struct ald_user u = {.max_sessions = -1, .max_memory_mb = -1};
        const char *name = NULL;
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--admin") == 0)
                u.admin = 1;
            else if (strcmp(argv[i], "--max-sessions") == 0) {
                if (parse_count(opt_value(argc, argv, &i), &u.max_sessions) < 0)
                    return 2;
            } else if (strcmp(argv[i], "--max-memory-mb") == 0) {
                if (parse_count(opt_value(argc, argv, &i), &u.max_memory_mb) < 0)
                    return 2;
            } else if (argv[i][0] != '-' && !name)
                name = argv[i];
            else {
                fprintf(stderr, "airlockd admin: unexpected \"%s\"\n", argv[i]);
                return 2;
            }
        }
        if (!name || !ald_user_name_valid(name)) {
            fprintf(stderr, "airlockd admin: a user name is [a-z0-9][a-z0-9._-]{0,62}\n");
            return 2;
        }
        snprintf(u.name, sizeof(u.name), "%s", name);
        u.created_ms = ald_now_ms();
        if (ald_store_user_add(st, &u) < 0) {
            fprintf(stderr, "airlockd admin: %s\n", al_error_last());
            return 1;
        }
        printf("user %s added%s\n", name, u.admin ? " (admin)" : "");
        return 0;
    }
    if (strcmp(argv[0], "ls") == 0) {
        json_t *users = NULL;
        if (ald_store_user_list(st, &users) < 0) {
            fprintf(stderr, "airlockd admin: %s\n", al_error_last());
            return 1;
        }
        if (argc > 1 && strcmp(argv[1], "--json") == 0) {
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
    if (strcmp(argv[0], "rm") == 0 && argc == 2) {
        if (ald_store_user_remove(st, argv[1], ald_now_ms()) < 0) {
            fprintf(stderr, "airlockd admin: %s\n", al_error_last());
            return 1;
        }
        printf("user %s removed, keys revoked\n", argv[1]);
        return 0;
    }
    usage(stderr);
    return 2;
}

static int key_cmd(struct ald_store *st, int argc, char **argv)
{
    if (argc < 1) {
        usage(stderr);
        return 2;
    }
    const char *user = NULL, *name = "";
    int as_json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--user") == 0) {
            if (!(user = opt_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(argv[i], "--name") == 0) {
            if (!(name = opt_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else if (strcmp(argv[0], "revoke") == 0 && argv[i][0] != '-') {
            continue;
        } else {
            fprintf(stderr, "airlockd admin: unexpected \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (strcmp(argv[0], "create") == 0) {
        if (!user) {
            fprintf(stderr, "airlockd admin: key create needs --user NAME\n");
            return 2;
        }
        if (strlen(name) > 128) {
            fprintf(stderr, "airlockd admin: --name is at most 128 bytes\n");
            return 2;
        }
        char key[ALD_KEY_LEN + 1], id[24];
        unsigned char hash[32];
        if (ald_auth_key_new(key, id, hash) < 0 ||
            ald_store_key_add(st, id, user, name, hash, ald_now_ms()) < 0) {
            fprintf(stderr, "airlockd admin: %s\n", al_error_last());
            explicit_bzero(key, sizeof(key));
            return 1;
        }
        /* the key on stdout alone (for scripts); it is not stored */
        printf("%s\n", key);
        fflush(stdout);
        fprintf(stderr, "created key %s for %s (shown once; only its SHA-256 is kept)\n", id, user);
        explicit_bzero(key, sizeof(key));
        return 0;
    }
    if (strcmp(argv[0], "ls") == 0) {
        json_t *keys = NULL;
        if (ald_store_key_list(st, user, &keys) < 0) {
            fprintf(stderr, "airlockd admin: %s\n", al_error_last());
            return 1;
        }
        if (as_json) {
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
    if (strcmp(argv[0], "revoke") == 0 && argc == 2) {
        if (ald_store_key_revoke(st, argv[1], ald_now_ms()) < 0) {
            fprintf(stderr, "airlockd admin: %s\n", al_error_last());
            return 1;
        }
        printf("key %s revoked\n", argv[1]);
        return 0;
    }
    usage(stderr);
    return 2;
}

int ald_admin_main(int argc, char **argv)
{
    const char *config = NULL, *state_dir = NULL;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int n = 0, rc = 2;
    struct ald_config cfg;
    struct ald_store *st = NULL;
    if (!rest || ald_config_init(&cfg) < 0) {
        free(rest);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--state-dir") == 0) {
            const char *v = opt_value(argc, argv, &i);
            if (!v)
                goto out;
            if (argv[i - 1][2] == 'c')
                config = v;
            else
                state_dir = v;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else {
            rest[n++] = argv[i];
        }
    }
    if (n < 1) {
        usage(stderr);
        goto out;
    }
    rc = 1;
    if (config && ald_config_load_file(&cfg, config) < 0) {
        fprintf(stderr, "airlockd admin: %s\n", al_error_last());
        goto out;
    }
    if (!state_dir)
        state_dir = cfg.state_dir;
    char db[PATH_MAX];
    snprintf(db, sizeof(db), "%s/airlockd.db", state_dir);
    if (ald_state_prepare(state_dir) < 0 || ald_store_open(&st, db) < 0) {
        fprintf(stderr, "airlockd admin: %s\n", al_error_last());
        goto out;
    }
    if (strcmp(rest[0], "user") == 0)
        rc = user_cmd(st, n - 1, rest + 1);
    else if (strcmp(rest[0], "key") == 0)
        rc = key_cmd(st, n - 1, rest + 1);
    else {
        usage(stderr);
        rc = 2;
    }
out:
    ald_store_close(st);
    ald_config_free(&cfg);
    free(rest);
    return rc;
}
