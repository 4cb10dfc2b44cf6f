/* airlock-creds: operator tool for the credential store and scoped tokens.
 *
 *   airlock-creds key generate FILE
 *   airlock-creds creds add  --store F --master-key F --scope S
 *                            [--username U] (token read from stdin)
 *   airlock-creds creds add  ... --app-id N --installation-id N --private-key PEM
 *                            [--api URL] [--ca-file F]
 *   airlock-creds creds list --store F --master-key F
 *   airlock-creds creds rm   --store F --master-key F --scope S
 *   airlock-creds token mint --key F --kid K --session S [--user U]
 *                            --repo host/owner/name... [--push-ref R...]
 *                            [--ops fetch,push] [--ttl SECONDS] [--iat UNIXTIME]
 *   airlock-creds token inspect [--key F --kid K] TOKEN
 *
 * Secrets are read from stdin or files, never from the command line, and never
 * printed (list shows scopes and kinds only).
 */
#include "airlock/creds.h"
#include "airlock/creds_store.h"
#include "airlock/buf.h"
#include "airlock/cleanup.h"
#include "airlock/error.h"

#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tool_opts {
    const char *store;
    const char *master_key;
    const char *scope;
    const char *username;
    const char *private_key;
    const char *api;
    const char *ca_file;
    const char *key;
    const char *kid;
    const char *session;
    const char *user;
    const char *ops;
    int64_t app_id;
    int64_t installation_id;
    long ttl;
    int64_t iat;
    struct al_strlist repos;
    struct al_strlist refs;
};

static int usage(void)
{
    fputs("usage: airlock-creds key generate FILE\n"
          "       airlock-creds creds add|list|rm --store FILE --master-key FILE [--scope S]\n"
          "             add: token on stdin [--username U], or --app-id N --installation-id N\n"
          "                  --private-key PEMFILE [--api URL] [--ca-file FILE]\n"
          "       airlock-creds token mint --key FILE --kid ID --session S [--user U]\n"
          "             --repo host/owner/name... [--push-ref REF...] [--ops fetch,push]"
          " [--ttl SEC]\n"
          "       airlock-creds token inspect [--key FILE --kid ID] TOKEN\n",
          stderr);
    return 2;
}

static int64_t parse_int(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    return (*s && !*end) ? (int64_t)v : -1;
}

static int parse_opts(struct tool_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, NULL, 's'},
        {"master-key", required_argument, NULL, 'm'},
        {"scope", required_argument, NULL, 'S'},
        {"username", required_argument, NULL, 'u'},
        {"private-key", required_argument, NULL, 'p'},
        {"app-id", required_argument, NULL, 'a'},
        {"installation-id", required_argument, NULL, 'i'},
        {"api", required_argument, NULL, 'A'},
        {"ca-file", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"kid", required_argument, NULL, 'K'},
        {"session", required_argument, NULL, 'x'},
        {"user", required_argument, NULL, 'U'},
        {"repo", required_argument, NULL, 'r'},
        {"push-ref", required_argument, NULL, 'R'},
        {"ops", required_argument, NULL, 'o'},
        {"ttl", required_argument, NULL, 't'},
        {"iat", required_argument, NULL, 'I'},
        {NULL, 0, NULL, 0},
    };
    int c;
    o->ttl = 3600;
    o->ops = "fetch,push";
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o->store = optarg;
            break;
        case 'm':
            o->master_key = optarg;
            break;
        case 'S':
            o->scope = optarg;
            break;
        case 'u':
            o->username = optarg;
            break;
        case 'p':
            o->private_key = optarg;
            break;
        case 'a':
            o->app_id = parse_int(optarg);
            break;
        case 'i':
            o->installation_id = parse_int(optarg);
            break;
        case 'A':
            o->api = optarg;
            break;
        case 'c':
            o->ca_file = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 'K':
            o->kid = optarg;
            break;
        case 'x':
            o->session = optarg;
            break;
        case 'U':
            o->user = optarg;
            break;
        case 'r':
            al_strlist_push(&o->repos, optarg);
            break;
        case 'R':
            al_strlist_push(&o->refs, optarg);
            break;
        case 'o':
            o->ops = optarg;
            break;
        case 't':
            o->ttl = (long)parse_int(optarg);
            break;
        case 'I':
            o->iat = parse_int(optarg);
            break;
        default:
            return -1;
        }
    }
    return 0;
}

/* Reads a secret from stdin (first line, without the newline). */
static int read_stdin_secret(struct al_buf *buf)
{
    char chunk[4096];
    ssize_t n;
    while ((n = read(STDIN_FILENO, chunk, sizeof(chunk))) > 0) {
        if (al_buf_append(buf, chunk, (size_t)n) < 0) {
            OPENSSL_cleanse(chunk, sizeof(chunk));
            return al_error_set(AL_ETOOBIG, "secret too long");
        }
    }
    OPENSSL_cleanse(chunk, sizeof(chunk));
    while (buf->len > 0 && (buf->ptr[buf->len - 1] == '\n' || buf->ptr[buf->len - 1] == '\r'))
        buf->ptr[--buf->len] = '\0';
    if (buf->len == 0)
        return al_error_set(AL_EINVAL, "no secret on stdin");
    return 0;
}

static int cmd_creds(const char *verb, struct tool_opts *o)
{
    creds_store *store = NULL;
    struct al_buf secret;
    int err;
    al_buf_init(&secret, 64 << 10);
    if (!o->store || !o->master_key)
        return al_error_set(AL_EINVAL, "--store and --master-key are required");
    if ((err = creds_store_open(&store, o->store, o->master_key)) < 0)
        return err;
    if (strcmp(verb, "list") == 0) {
        for (size_t i = 0; i < creds_store_count(store); i++) {
            const struct creds_entry *e = creds_store_at(store, i);
            if (e->kind == CREDS_KIND_GITHUB_APP)
                printf("%s\tgithub_app\tapp_id=%lld\tinstallation_id=%lld\tapi=%s\n", e->scope,
                       (long long)e->app_id, (long long)e->installation_id,
                       e->api ? e->api : "https://api.github.com");
            else
                printf("%s\ttoken\tusername=%s\n", e->scope, e->username);
        }
    } else if (strcmp(verb, "rm") == 0) {
        if (!o->scope) {
            err = al_error_set(AL_EINVAL, "--scope is required");
            goto out;
        }
        if ((err = creds_store_remove(store, o->scope)) < 0 || (err = creds_store_save(store)) < 0)
            goto out;
    } else if (strcmp(verb, "add") == 0) {
        struct creds_entry e = {0};
        if (!o->scope) {
            err = al_error_set(AL_EINVAL, "--scope is required");
            goto out;
        }
        e.scope = (char *)o->scope;
        e.username = (char *)o->username;
        if (o->private_key) {
            unsigned char *pem = NULL;
            size_t pem_len = 0;
            if ((err = creds_file_read_private(&pem, &pem_len, o->private_key, 64 << 10)) < 0)
                goto out;
            err = al_buf_append(&secret, pem, pem_len);
            OPENSSL_cleanse(pem, pem_len);
            free(pem);
            if (err < 0)
                goto out;
            e.kind = CREDS_KIND_GITHUB_APP;
            e.app_id = o->app_id;
            e.installation_id = o->installation_id;
            e.api = (char *)o->api;
            e.ca_file = (char *)o->ca_file;
        } else {
            if ((err = read_stdin_secret(&secret)) < 0)
                goto out;
            e.kind = CREDS_KIND_TOKEN;
        }
        e.secret = secret.ptr;
        if ((err = creds_store_put(store, &e)) < 0 || (err = creds_store_save(store)) < 0)
            goto out;
    } else {
        err = al_error_set(AL_EINVAL, "unknown creds command '%s'", verb);
    }
out:
    al_buf_wipe_free(&secret);
    creds_store_free(store);
    return err;
}

static void print_claims(const struct creds_claims *c)
{
    printf("session: %s\nuser: %s\njti: %s\nkid: %s\niat: %lld\nexp: %lld\nops:%s%s\n", c->session,
           c->user, c->jti, c->kid, (long long)c->iat, (long long)c->exp,
           (c->ops & CREDS_OP_FETCH) ? " fetch" : "", (c->ops & CREDS_OP_PUSH) ? " push" : "");
    for (size_t i = 0; i < c->repos.len; i++)
        printf("repo: %s\n", c->repos.items[i]);
    for (size_t i = 0; i < c->push_refs.len; i++)
        printf("push_ref: %s\n", c->push_refs.items[i]);
}

static int cmd_token(const char *verb, struct tool_opts *o, int argc, char **argv)
{
    struct creds_keyring ring = {0};
    struct creds_claims c = {0};
    cleanup_free char *tok = NULL;
    int err = 0;
    if (o->key) {
        if ((err = creds_key_load(&ring.keys[0], o->kid ? o->kid : "k1", o->key)) < 0)
            goto out;
        ring.len = 1;
    }
    if (strcmp(verb, "mint") == 0) {
        if (!o->key || !o->session || o->repos.len == 0 || o->ttl <= 0) {
            err = al_error_set(AL_EINVAL, "mint needs --key, --session, --repo and --ttl > 0");
            goto out;
        }
        if (!(c.session = strdup(o->session)) || !(c.user = strdup(o->user ? o->user : ""))) {
            err = AL_ENOMEM;
            goto out;
        }
        c.repos = o->repos;
        c.push_refs = o->refs;
        memset(&o->repos, 0, sizeof(o->repos));
        memset(&o->refs, 0, sizeof(o->refs));
        c.ops = (strstr(o->ops, "fetch") ? CREDS_OP_FETCH : 0) |
                (strstr(o->ops, "push") ? CREDS_OP_PUSH : 0);
        c.iat = o->iat > 0 ? o->iat : time(NULL);
        c.exp = c.iat + o->ttl;
        if ((err = creds_token_mint(&tok, &c, &ring)) < 0)
            goto out;
        printf("%s\n", tok);
    } else if (strcmp(verb, "inspect") == 0) {
        if (optind >= argc) {
            err = al_error_set(AL_EINVAL, "inspect needs a TOKEN");
            goto out;
        }
        const char *t = argv[optind];
        if (ring.len) {
            err = creds_token_verify(&c, t, strlen(t), &ring, time(NULL), NULL, NULL);
            printf("verified: %s\n", err == 0 ? "yes" : al_error_last());
            if (err < 0) {
                creds_claims_clear(&c);
                if (creds_token_decode(&c, t, strlen(t)) < 0)
                    goto out;
            }
        } else if ((err = creds_token_decode(&c, t, strlen(t))) < 0) {
            goto out;
        }
        print_claims(&c);
    } else {
        err = al_error_set(AL_EINVAL, "unknown token command '%s'", verb);
    }
out:
    creds_claims_clear(&c);
    creds_keyring_clear(&ring);
    return err;
}

int main(int argc, char **argv)
{
    struct tool_opts o = {0};
    int err;
    if (argc < 3)
        return usage();
    const char *noun = argv[1], *verb = argv[2];
    if (strcmp(noun, "key") == 0 && strcmp(verb, "generate") == 0 && argc == 4) {
        err = creds_key_generate(argv[3]);
    } else {
        if (parse_opts(&o, argc - 2, argv + 2) < 0)
            return usage();
        if (strcmp(noun, "creds") == 0)
            err = cmd_creds(verb, &o);
        else if (strcmp(noun, "token") == 0)
            err = cmd_token(verb, &o, argc - 2, argv + 2);
        else
            return usage();
    }
    al_strlist_free(&o.repos);
    al_strlist_free(&o.refs);
    if (err < 0) {
        fprintf(stderr, "airlock-creds: %s\n",
                al_error_last()[0] ? al_error_last() : al_error_name(err));
        return 1;
    }
    return 0;
}
