/* airlock-creds: operator tool for the credential store and scoped tokens.
 *
 *   airlock-creds key generate FILE
 *   airlock-creds creds add  --store F --master-key F --scope S
 *                            [--username U] (token read from stdin)
 *   airlock-creds creds add  ... --app-id N --installation-id N --private-key PEM
 *                            [--api URL] [--ca-file F]
 *   airlock-creds creds add  --store F --master-key F --kind http --name NAME
 *                            --hosts DOMAIN[,DOMAIN...] (value read from stdin)
 *   airlock-creds creds list|ls --store F --master-key F
 *   airlock-creds creds rm   --store F --master-key F --scope S
 *   airlock-creds creds rm   --store F --master-key F --kind http --name NAME
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
#include "airlock/version.h"

#include <getopt.h>
#include <openssl/crypto.h>
#include <stdarg.h>
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
    const char *kind;  /* --kind: NULL (git credential), "http" */
    const char *name;  /* --name: an HTTP secret's */
    const char *hosts; /* --hosts: an HTTP secret's domains */
    int64_t app_id;
    int64_t installation_id;
    long ttl;
    int64_t iat;
    struct al_strlist repos;
    struct al_strlist refs;
    int help;            /* --help or -h */
    const char *missing; /* an option given without its value */
    const char *unknown; /* an option we do not know */
    const char *bad;     /* an option whose value is not a positive number */
};

/* The commands: noun, verb, arguments. */
static const struct tool_usage {
    const char *noun, *verb, *args;
} tool_usages[] = {
    {"key", "generate", "FILE\n      write a new master or token key to FILE (mode 0600)"},
    {"creds", "add",
     "--store FILE --master-key FILE --scope S [--username U]\n"
     "      add a token (read from stdin) for the upstream scope S\n"
     "    or: --store FILE --master-key FILE --scope S --app-id N --installation-id N\n"
     "        --private-key PEMFILE [--api URL] [--ca-file FILE]\n"
     "      add a GitHub App\n"
     "    or: --store FILE --master-key FILE --kind http --name NAME --hosts DOMAIN[,DOMAIN...]\n"
     "      add an HTTP secret (value read from stdin) that airlockd sessions granted it\n"
     "      may use for those domains (docs/airlockd.md, \"HTTP secrets\")"},
    {"creds", "list", "--store FILE --master-key FILE\n      list scopes and kinds (no secrets)"},
    {"creds", "ls", "--store FILE --master-key FILE\n      the same as list"},
    {"creds", "rm",
     "--store FILE --master-key FILE --scope S | --kind http --name NAME\n"
     "      remove a scope or an HTTP secret"},
    {"token", "mint",
     "--key FILE --kid ID --session S [--user U] --repo host/owner/name...\n"
     "        [--push-ref REF...] [--ops fetch,push] [--ttl SEC] [--iat UNIXTIME]\n"
     "      print a scoped token"},
    {"token", "inspect", "[--key FILE --kid ID] TOKEN\n      print (and verify) a token's claims"},
};

#define N_USAGES (sizeof(tool_usages) / sizeof(tool_usages[0]))

/* Prints to `f` the usage of `<prog> [noun [verb]]` (prog is "airlock" or
 * "airlock-creds"): every command, a noun's, or one command. */
static void usage(FILE *f, const char *prog, const char *noun, const char *verb)
{
    if (verb)
        fprintf(f, "usage: %s %s %s ", prog, noun, verb);
    else if (noun)
        fprintf(f, "usage: %s %s COMMAND [options]\n\n", prog, noun);
    else
        fprintf(f, "usage: %s key|creds|token COMMAND [options]\n\n", prog);
    for (size_t i = 0; i < N_USAGES; i++) {
        const struct tool_usage *u = &tool_usages[i];
        if ((noun && strcmp(noun, u->noun) != 0) || (verb && strcmp(verb, u->verb) != 0))
            continue;
        if (verb)
            fprintf(f, "%s\n", u->args);
        else
            fprintf(f, "  %s %s %s\n", u->noun, u->verb, u->args);
    }
    fputs("\nSecrets are read from stdin or files, never from the command line.\n", f);
}

/* Prints "<prog> <noun> [verb]: <message>" and the usage hint on stderr;
 * returns 2 (a bad command line). */
__attribute__((format(printf, 4, 5))) static int bad_usage(const char *prog, const char *noun,
                                                           const char *verb, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s%s%s%s%s: ", prog, noun ? " " : "", noun ? noun : "", verb ? " " : "",
            verb ? verb : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(%s%s%s%s%s --help for the usage)\n", prog, noun ? " " : "",
            noun ? noun : "", verb ? " " : "", verb ? verb : "");
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
        {"kind", required_argument, NULL, 'N'},
        {"name", required_argument, NULL, 'n'},
        {"hosts", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    o->ttl = 3600;
    o->ops = "fetch,push";
    optind = 1;
    opterr = 0;
    /* ":" first: a missing value is ':', an unknown option '?' */
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
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
        case 'i':
            if (parse_int(optarg) <= 0) {
                o->bad = c == 'a' ? "--app-id" : "--installation-id";
                return -1;
            }
            *(c == 'a' ? &o->app_id : &o->installation_id) = parse_int(optarg);
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
            if (o->ttl <= 0) {
                o->bad = "--ttl";
                return -1;
            }
            break;
        case 'I':
            o->iat = parse_int(optarg);
            if (o->iat <= 0) {
                o->bad = "--iat";
                return -1;
            }
            break;
        case 'N':
            o->kind = optarg;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 'H':
            o->hosts = optarg;
            break;
        case 'h':
            o->help = 1;
            return 0;
        case ':':
            o->missing = argv[optind - 1];
            return -1;
        default:
            o->unknown = argv[optind - 1];
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
    if ((err = creds_store_open(&store, o->store, o->master_key)) < 0)
        return err;
    if (strcmp(verb, "list") == 0 || strcmp(verb, "ls") == 0) {
        for (size_t i = 0; i < creds_store_count(store); i++) {
            const struct creds_entry *e = creds_store_at(store, i);
            if (e->kind == CREDS_KIND_HTTP) {
                printf("%s\thttp\thosts=", e->scope);
                for (size_t k = 0; k < e->hosts.len; k++)
                    printf("%s%s", k ? "," : "", e->hosts.items[k]);
                putchar('\n');
            } else if (e->kind == CREDS_KIND_GITHUB_APP)
                printf("%s\tgithub_app\tapp_id=%lld\tinstallation_id=%lld\tapi=%s\n", e->scope,
                       (long long)e->app_id, (long long)e->installation_id,
                       e->api ? e->api : "https://api.github.com");
            else
                printf("%s\ttoken\tusername=%s\n", e->scope, e->username);
        }
    } else if (strcmp(verb, "rm") == 0) {
        char scope[sizeof(CREDS_HTTP_PREFIX) + CREDS_HTTP_NAME_MAX];
        const struct creds_entry *found;
        if (o->kind) {
            if ((err = creds_store_http_find(&found, store, o->name)) < 0)
                goto out;
            snprintf(scope, sizeof(scope), "%s", found->scope);
        } else if (!o->scope) {
            err = al_error_set(AL_EINVAL, "--scope is required");
            goto out;
        }
        if ((err = creds_store_remove(store, o->kind ? scope : o->scope)) < 0 ||
            (err = creds_store_save(store)) < 0)
            goto out;
    } else if (strcmp(verb, "add") == 0 && o->kind) {
        char scope[sizeof(CREDS_HTTP_PREFIX) + CREDS_HTTP_NAME_MAX];
        struct creds_entry e = {0};
        snprintf(scope, sizeof(scope), CREDS_HTTP_PREFIX "%s", o->name);
        if ((err = creds_http_hosts_parse(&e.hosts, o->hosts, strlen(o->hosts))) < 0 ||
            (err = read_stdin_secret(&secret)) < 0 ||
            (err = creds_http_value_check(secret.ptr, secret.len)) < 0) {
            al_strlist_free(&e.hosts);
            goto out;
        }
        e.kind = CREDS_KIND_HTTP;
        e.scope = scope;
        e.secret = secret.ptr;
        err = creds_store_put(store, &e);
        al_strlist_free(&e.hosts);
        if (err < 0 || (err = creds_store_save(store)) < 0)
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

/* Checks that `verb` of `noun` got what it needs; 0, or 2 after saying
 * what is missing. Nothing has been read or written yet. */
static int check_args(const char *prog, const char *noun, const char *verb,
                      const struct tool_opts *o, int nargs)
{
    int creds = strcmp(noun, "creds") == 0;
    if (creds && (!o->store || !o->master_key))
        return bad_usage(prog, noun, verb, "--store and --master-key are required");
    int listing = strcmp(verb, "list") == 0 || strcmp(verb, "ls") == 0;
    if (creds && o->kind && strcmp(o->kind, "http") != 0)
        return bad_usage(prog, noun, verb,
                         "--kind takes \"http\" (git credentials take --scope, no --kind)");
    if (creds && !listing && o->kind && (o->scope || o->username || o->app_id || o->private_key))
        return bad_usage(prog, noun, verb,
                         "an HTTP secret takes --name and --hosts, not --scope, --username or "
                         "GitHub App options");
    if (creds && !listing && o->kind && !o->name)
        return bad_usage(prog, noun, verb, "--kind http needs --name");
    if (creds && !listing && o->kind && !creds_http_name_valid(o->name))
        return bad_usage(prog, noun, verb,
                         "--name must match [A-Za-z][A-Za-z0-9_-]* (at most %d bytes)",
                         CREDS_HTTP_NAME_MAX);
    if (creds && strcmp(verb, "add") == 0 && o->kind && !o->hosts)
        return bad_usage(prog, noun, verb,
                         "--kind http needs --hosts DOMAIN[,DOMAIN...] (where the secret may go)");
    if (creds && (o->name || o->hosts) && !o->kind)
        return bad_usage(prog, noun, verb, "--name and --hosts are for --kind http");
    if (creds && strcmp(verb, "rm") == 0 && o->hosts)
        return bad_usage(prog, noun, verb, "rm takes no --hosts");
    if (creds && !listing && !o->kind && !o->scope)
        return bad_usage(prog, noun, verb, "--scope is required");
    if (creds && strcmp(verb, "add") == 0 && (o->app_id || o->installation_id || o->private_key) &&
        !(o->app_id && o->installation_id && o->private_key))
        return bad_usage(prog, noun, verb,
                         "a GitHub App needs --app-id, --installation-id and --private-key");
    if (strcmp(verb, "mint") == 0 && (!o->key || !o->session || o->repos.len == 0))
        return bad_usage(prog, noun, verb, "mint needs --key, --session and --repo");
    int wants = strcmp(verb, "generate") == 0 || strcmp(verb, "inspect") == 0;
    if (wants && nargs != 1)
        return bad_usage(prog, noun, verb, "wants one %s",
                         strcmp(verb, "generate") == 0 ? "FILE" : "TOKEN");
    if (!wants && nargs != 0)
        return bad_usage(prog, noun, verb, "takes no operands");
    return 0;
}

/* The name the user typed: "airlock" when run by the airlock command (it
 * passes argv[0] "airlock"), else "airlock-creds". */
static const char *prog_name(const char *argv0)
{
    const char *base = argv0 ? strrchr(argv0, '/') : NULL;
    base = base ? base + 1 : argv0;
    return base && strcmp(base, "airlock") == 0 ? "airlock" : "airlock-creds";
}

static int is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
}

int main(int argc, char **argv)
{
    struct tool_opts o = {0};
    const char *prog = prog_name(argv[0]);
    const char *noun = argc > 1 ? argv[1] : NULL, *verb = argc > 2 ? argv[2] : NULL;
    int err = 0, rc = 2;
    /* The whole command line is read and checked before any key, store or
     * stdin is touched. */
    if (!noun) {
        usage(stderr, prog, NULL, NULL);
        return 2;
    }
    if (is_help(noun)) {
        usage(stdout, prog, NULL, NULL);
        return 0;
    }
    if (strcmp(noun, "--version") == 0 && argc == 2) {
        puts("airlock-creds " AL_VERSION_LINE);
        return 0;
    }
    int noun_known = 0, verb_known = 0;
    for (size_t i = 0; i < N_USAGES; i++) {
        if (strcmp(noun, tool_usages[i].noun) == 0) {
            noun_known = 1;
            verb_known |= verb && strcmp(verb, tool_usages[i].verb) == 0;
        }
    }
    if (!noun_known)
        return bad_usage(prog, NULL, NULL, "unknown command \"%s\"", noun);
    /* --help (-h) anywhere after the noun wins over any mistake */
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i]) && (i == 2 || argv[i][0] == '-')) {
            usage(stdout, prog, noun, verb_known ? verb : NULL);
            return 0;
        }
    }
    if (!verb_known)
        return verb ? bad_usage(prog, noun, NULL, "unknown %s command \"%s\"", noun, verb)
                    : bad_usage(prog, noun, NULL, "which %s command?", noun);
    if (parse_opts(&o, argc - 2, argv + 2) < 0) {
        if (o.missing)
            bad_usage(prog, noun, verb, "%s needs a value", o.missing);
        else if (o.bad)
            bad_usage(prog, noun, verb, "%s wants a positive number", o.bad);
        else
            bad_usage(prog, noun, verb, "unknown option \"%s\"", o.unknown);
        goto out;
    }
    if (o.help) {
        usage(stdout, prog, noun, verb);
        rc = 0;
        goto out;
    }
    if ((rc = check_args(prog, noun, verb, &o, argc - 2 - optind)) != 0)
        goto out;
    if (strcmp(noun, "key") == 0)
        err = creds_key_generate(argv[2 + optind]);
    else if (strcmp(noun, "creds") == 0)
        err = cmd_creds(verb, &o);
    else
        err = cmd_token(verb, &o, argc - 2, argv + 2);
    rc = 0;
    if (err < 0) {
        fprintf(stderr, "%s %s %s: %s\n", prog, noun, verb,
                al_error_last()[0] ? al_error_last() : al_error_name(err));
        rc = 1;
    }
out:
    al_strlist_free(&o.repos);
    al_strlist_free(&o.refs);
    return rc;
}
