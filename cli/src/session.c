/* `airlock session`: sessions, processes and approvals of airlockd. */
#include "session.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/termtext.h"
#include "airlock/version.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define LIST_PAGE "500"

/* Each command: its name, arguments and what it does. */
static const struct session_usage {
    const char *name, *args, *what;
} session_usages[] = {
    {"create",
     "[--repo URL [--base BRANCH] [--branch BRANCH]]\n"
     "         [--settings FILE] [--memory MB] [--pids N] [--cpu F] [--ttl S] [--idle S]\n"
     "         [--env K=V]... [--mode auto-allow|regular] [--meta K=V]...\n"
     "         [--credential ENV=SECRET@HOST[,HOST]...]... [--idempotency-key K] [--json]",
     "create a session, print its id"},
    {"ls", "[--state STATE] [--json] | ID [PATH] [-l] [--json]",
     "list sessions; with ID: the workspace's files"},
    {"show", "ID", "print a session (JSON)"},
    {"rm", "ID...", "delete sessions"},
    {"keepalive", "ID", "reset the idle timer"},
    {"exec",
     "ID [--background] [--timeout S] [--cwd DIR] [--env K=V]... [--stdin]\n"
     "         [--merge-stderr] [--json] (-- ARGV... | --shell CMD)",
     "run a command; exit with its status"},
    {"shell", "ID [--cwd DIR] [--env K=V]... [-- CMD...]",
     "an interactive shell (or CMD) on a terminal; exit with its status"},
    {"ps", "ID [--json]", "list processes"},
    {"output", "ID PID [--offset N] [--follow] [--stream stdout|stderr]",
     "print a process's output"},
    {"kill", "ID PID [--signal SIG]", "signal a process (TERM)"},
    {"cp", "[-r] LOCAL ID:PATH | [-r] ID:PATH LOCAL",
     "copy a file ('-' = stdin/out); -r: directories"},
    {"policy",
     "ID [--json] | ID [--allow-domain D] [--deny-domain D] [--forget-domain D]\n"
     "         [--allow-address A] [--forget-address A] [--allow-all-domains on|off]",
     "show or change the session's network policy"},
    {"events", "[ID] [--last-event-id N] [--count N]", "print events as JSON lines"},
    {"approve", "ID [AID [--deny]] [--json]", "list or decide approvals"},
};

/* How the user ran us: "airlock session" (argv[0] "airlock", as the
 * airlock command runs us) or "airlock-session". Set once by main. */
static const char *session_prog = "airlock session";

static void usage_tail(FILE *f)
{
    fputs("\n"
          "AIRLOCK_URL (default " CL_DEFAULT_URL ") and AIRLOCK_API_KEY say where and who.\n"
          "Exit status: 0; 1 when the API refused or failed; 2 for a bad command line;\n"
          "exec, shell: the command's own (128+N for signal N, 124 timeout, 137 memory).\n",
          f);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: %s <command> [options]\n\n", session_prog);
    for (size_t i = 0; i < sizeof(session_usages) / sizeof(session_usages[0]); i++)
        fprintf(f, "  %s %s\n      %s\n", session_usages[i].name, session_usages[i].args,
                session_usages[i].what);
    usage_tail(f);
}

/* Prints the usage of the command `name` to `f`. */
static void command_usage(FILE *f, const char *name)
{
    for (size_t i = 0; i < sizeof(session_usages) / sizeof(session_usages[0]); i++)
        if (strcmp(name, session_usages[i].name) == 0)
            fprintf(f, "usage: %s %s %s\n  %s\n", session_prog, name, session_usages[i].args,
                    session_usages[i].what);
    usage_tail(f);
}

int session_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
    char spec[64];
    snprintf(spec, sizeof(spec), ":h%s", shortopts);
    opterr = 0;
    int opt = getopt_long(argc, argv, spec, longopts, NULL);
    if (opt == 'h') {
        command_usage(stdout, argv[0]);
    } else if (opt == ':' || opt == '?') {
        fprintf(stderr, "%s %s: ", session_prog, argv[0]);
        if (opt == ':')
            fprintf(stderr, "%s needs a value\n", argv[optind - 1]);
        else if (optopt && optopt < 256)
            fprintf(stderr, "unknown option \"-%c\"\n", optopt);
        else
            fprintf(stderr, "unknown option \"%s\"\n", argv[optind - 1]);
        fprintf(stderr, "(%s %s --help for the usage)\n", session_prog, argv[0]);
        opt = '?';
    }
    return opt;
}

int session_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", session_prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(%s --help for the usage)\n", session_prog);
    va_end(ap);
    return CL_EXIT_USAGE;
}

int session_path(struct al_buf *out, const char *id, const char *suffix)
{
    int err;
    al_buf_init(out, 16384);
    if ((err = al_buf_puts(out, "/v1/sessions/")) < 0 || (err = cl_url_escape(out, id, 0)) < 0 ||
        (err = al_buf_puts(out, suffix)) < 0)
        al_buf_free(out);
    return err;
}

int session_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return al_error_set_errno(AL_EIO, errno, "write");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int session_kv_add(void *obj, const char *kv, const char *what)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return al_error_set(AL_EINVAL, "%s wants K=V, got \"%s\"", what, kv);
    cleanup_free char *key = strndup(kv, (size_t)(eq - kv));
    if (!key || json_object_set_new(obj, key, json_string(eq + 1)) < 0)
        return al_error_set(AL_EINVAL, "%s: \"%s\" is not valid UTF-8", what, kv);
    return 0;
}

int session_parse_u64(unsigned long long *out, const char *s)
{
    char *end;
    if (!*s || !isdigit((unsigned char)*s))
        return AL_EINVAL;
    errno = 0;
    *out = strtoull(s, &end, 10);
    if (errno || *end)
        return AL_EINVAL;
    return 0;
}

void session_warnings_print(json_t *doc)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "warnings"), i, v)
    {
        const char *w = json_string_value(v);
        if (!w)
            continue;
        fputs("airlock: warning: ", stderr);
        al_term_put(stderr, w, AL_TERM_KEEP_UTF8);
        fputc('\n', stderr);
    }
}

static void print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (s) {
        puts(s);
        free(s);
    }
}

/* GET/POST/DELETE on /v1/sessions/ID<suffix> with an optional body; prints
 * the result as JSON when `print` is set. Returns an exit status. */
static int simple_call(struct cl_client *c, const char *method, const char *id, const char *suffix,
                       json_t *body, int print)
{
    struct al_buf path;
    json_t *doc = NULL;
    if (session_path(&path, id, suffix) < 0)
        return CL_EXIT_API;
    int err = cl_call_json((void **)&doc, c, method, path.ptr, body, NULL, NULL);
    al_buf_free(&path);
    if (err < 0)
        return CL_EXIT_API;
    if (print)
        print_json(doc);
    json_decref(doc);
    return 0;
}

static int add_limit(json_t *limits, const char *name, const char *value, int is_float)
{
    if (is_float) {
        char *end;
        errno = 0;
        double d = strtod(value, &end);
        if (errno || *end || end == value || !(d > 0))
            return AL_EINVAL;
        return json_object_set_new(limits, name, json_real(d));
    }
    unsigned long long n;
    if (session_parse_u64(&n, value) < 0 || n > (1ULL << 53))
        return AL_EINVAL;
    return json_object_set_new(limits, name, json_integer((json_int_t)n));
}

/* --credential ENV=SECRET@HOST[,HOST]...: one entry of the create's
 * "credentials" (docs/api.md), appended to `creds`; the server checks the
 * names and hosts. AL_EINVAL when it has not that shape. */
static int credential_add(json_t *creds, const char *arg)
{
    const char *eq = strchr(arg, '='), *at = eq ? strchr(eq + 1, '@') : NULL;
    if (!eq || eq == arg || !at || at == eq + 1 || !at[1])
        return al_error_set(AL_EINVAL, "--credential \"%s\": expected ENV=SECRET@HOST[,HOST]...",
                            arg);
    json_t *hosts = json_array();
    for (const char *h = at + 1; hosts;) {
        const char *comma = strchr(h, ',');
        size_t n = comma ? (size_t)(comma - h) : strlen(h);
        json_array_append_new(hosts, json_stringn(h, n));
        if (!comma)
            break;
        h = comma + 1;
    }
    json_t *entry = json_pack("{s:s%, s:s%, s:o}", "env", arg, (size_t)(eq - arg), "secret", eq + 1,
                              (size_t)(at - eq - 1), "injectHosts", hosts);
    if (!entry || json_array_append_new(creds, entry) < 0)
        return AL_ENOMEM;
    return 0;
}

static int cmd_create(struct cl_client *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"settings", required_argument, NULL, 's'},
        {"memory", required_argument, NULL, 'm'},
        {"pids", required_argument, NULL, 'p'},
        {"cpu", required_argument, NULL, 'c'},
        {"ttl", required_argument, NULL, 't'},
        {"idle", required_argument, NULL, 'i'},
        {"env", required_argument, NULL, 'e'},
        {"mode", required_argument, NULL, 'M'},
        {"meta", required_argument, NULL, 'k'},
        {"idempotency-key", required_argument, NULL, 'K'},
        {"json", no_argument, NULL, 'j'},
        {"repo", required_argument, NULL, 'r'},
        {"base", required_argument, NULL, 'b'},
        {"branch", required_argument, NULL, 'B'},
        {"credential", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const limit_names[] = {
        ['m'] = "memory_mb", ['p'] = "pids", ['c'] = "cpu", ['t'] = "ttl_s", ['i'] = "idle_s"};
    json_t *body = json_object(), *limits = json_object(), *env = json_object(),
           *meta = json_object(), *creds = json_array(), *doc = NULL;
    cleanup_free char *idem = NULL;
    struct cl_response resp = {0};
    int rc = CL_EXIT_USAGE, json_out = 0, opt;
    if (!body || !limits || !env || !meta || !creds) {
        rc = CL_EXIT_API;
        goto out;
    }
    while ((opt = session_getopt(argc, argv, "", opts)) != -1) {
        json_error_t jerr;
        json_t *settings;
        switch (opt) {
        case 's':
            if (!(settings = json_load_file(optarg, JSON_REJECT_DUPLICATES, &jerr))) {
                session_usage_error("%s:%d: %s", optarg, jerr.line, jerr.text);
                goto out;
            }
            json_object_set_new(body, "settings", settings);
            break;
        case 'm':
        case 'p':
        case 'c':
        case 't':
        case 'i':
            if (add_limit(limits, limit_names[opt], optarg, opt == 'c') < 0) {
                session_usage_error("--%s: \"%s\" is not a valid value",
                                    opt == 'm'   ? "memory"
                                    : opt == 'p' ? "pids"
                                    : opt == 'c' ? "cpu"
                                    : opt == 't' ? "ttl"
                                                 : "idle",
                                    optarg);
                goto out;
            }
            break;
        case 'e':
        case 'k':
            if (session_kv_add(opt == 'e' ? env : meta, optarg, opt == 'e' ? "--env" : "--meta") <
                0) {
                session_usage_error("%s", al_error_last());
                goto out;
            }
            break;
        case 'M':
            json_object_set_new(body, "mode", json_string(optarg));
            break;
        case 'C':
            if (credential_add(creds, optarg) < 0) {
                session_usage_error("%s", al_error_last());
                goto out;
            }
            break;
        case 'r':
        case 'b':
        case 'B':
            /* checked by the server (docs/api.md) */
            json_object_set_new(body,
                                opt == 'r'   ? "repo"
                                : opt == 'b' ? "base"
                                             : "branch",
                                json_string(optarg));
            break;
        case 'K': {
            size_t n = strlen(optarg) + sizeof("Idempotency-Key: ");
            free(idem);
            if (strpbrk(optarg, "\r\n") || !(idem = malloc(n))) {
                session_usage_error("--idempotency-key: not a header value");
                goto out;
            }
            snprintf(idem, n, "Idempotency-Key: %s", optarg);
            break;
        }
        case 'j':
            json_out = 1;
            break;
        case 'h':
            rc = 0;
            goto out;
        default:
            goto out;
        }
    }
    if (optind != argc) {
        session_usage_error("create takes no arguments (got \"%s\")", argv[optind]);
        goto out;
    }
    if (json_object_size(limits))
        json_object_set(body, "limits", limits);
    if (json_object_size(env))
        json_object_set(body, "env", env);
    if (json_object_size(meta))
        json_object_set(body, "metadata", meta);
    if (json_array_size(creds))
        json_object_set(body, "credentials", creds);
    if (cl_call_json((void **)&doc, c, "POST", "/v1/sessions", body, idem, &resp) < 0) {
        rc = CL_EXIT_API;
        goto out;
    }
    const char *id = json_string_value(json_object_get(doc, "id"));
    session_warnings_print(doc);
    if (json_out) {
        print_json(doc);
    } else if (id) {
        puts(id);
    } else {
        fprintf(stderr, "airlock: session: the created session has no id\n");
        rc = CL_EXIT_API;
        goto out;
    }
    rc = 0;
out:
    cl_response_free(&resp);
    json_decref(doc);
    json_decref(body);
    json_decref(limits);
    json_decref(env);
    json_decref(creds);
    json_decref(meta);
    return rc;
}

static const char *str_or(json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : dflt;
}

static int cmd_ls(struct cl_client *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"long", no_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *state = NULL;
    int json_out = 0, long_fmt = 0, opt, rc = CL_EXIT_API;
    json_t *all = json_array();
    cleanup_free char *cursor = NULL;
    while ((opt = session_getopt(argc, argv, "l", opts)) != -1) {
        if (opt == 's')
            state = optarg;
        else if (opt == 'j')
            json_out = 1;
        else if (opt == 'l')
            long_fmt = 1;
        else
            return json_decref(all), opt == 'h' ? 0 : CL_EXIT_USAGE;
    }
    if (optind < argc && (state || argc - optind > 2))
        return json_decref(all),
               session_usage_error("ls takes a session id and a path, or --state");
    if (optind < argc) /* a session's files */
        return json_decref(all),
               session_files_ls(c, argv[optind], optind + 1 < argc ? argv[optind + 1] : "",
                                long_fmt, json_out);
    do {
        struct al_buf path;
        json_t *doc = NULL;
        al_buf_init(&path, 16384);
        int err = al_buf_puts(&path, "/v1/sessions?limit=" LIST_PAGE);
        if (!err && state && !(err = al_buf_puts(&path, "&state=")))
            err = cl_url_escape(&path, state, 0);
        if (!err && cursor && !(err = al_buf_puts(&path, "&cursor=")))
            err = cl_url_escape(&path, cursor, 0);
        if (!err)
            err = cl_call_json((void **)&doc, c, "GET", path.ptr, NULL, NULL, NULL);
        al_buf_free(&path);
        if (err < 0)
            goto out;
        json_array_extend(all, json_object_get(doc, "sessions"));
        free(cursor);
        const char *next = json_string_value(json_object_get(doc, "next_cursor"));
        cursor = next ? strdup(next) : NULL;
        json_decref(doc);
    } while (cursor);
    if (json_out) {
        print_json(all);
    } else {
        size_t i;
        json_t *s;
        printf("%-24s %-9s %-12s %-10s %s\n", "ID", "STATE", "USER", "MODE", "CREATED");
        json_array_foreach(all, i, s)
        {
            printf("%-24s %-9s %-12s %-10s %s\n", str_or(s, "id", "?"), str_or(s, "state", "?"),
                   str_or(s, "user", "?"), str_or(s, "mode", "?"), str_or(s, "created_at", "?"));
        }
    }
    rc = 0;
out:
    json_decref(all);
    return rc;
}

/* Commands of the form `NAME ID` with only a --json flag: 0 with *id set,
 * -1 after --help (the usage printed), or CL_EXIT_USAGE. */
static int one_id(int argc, char **argv, const char **id, int *json_out)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    *json_out = 0;
    while ((opt = session_getopt(argc, argv, "", opts)) != -1) {
        if (opt == 'h')
            return -1;
        if (opt != 'j')
            return CL_EXIT_USAGE;
        *json_out = 1;
    }
    if (optind + 1 != argc)
        return session_usage_error("%s wants one session id", argv[0]);
    *id = argv[optind];
    return 0;
}

static int cmd_show(struct cl_client *c, int argc, char **argv)
{
    const char *id;
    int json_out, rc = one_id(argc, argv, &id, &json_out);
    return rc < 0 ? 0 : rc ? rc : simple_call(c, "GET", id, "", NULL, 1);
}

static int cmd_keepalive(struct cl_client *c, int argc, char **argv)
{
    const char *id;
    int json_out, rc = one_id(argc, argv, &id, &json_out);
    return rc < 0 ? 0 : rc ? rc : simple_call(c, "POST", id, "/keepalive", NULL, json_out);
}

static int cmd_rm(struct cl_client *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int rc = 0, opt;
    while ((opt = session_getopt(argc, argv, "", opts)) != -1)
        return opt == 'h' ? 0 : CL_EXIT_USAGE;
    if (optind >= argc)
        return session_usage_error("rm wants at least one session id");
    for (int i = optind; i < argc; i++) {
        if (simple_call(c, "DELETE", argv[i], "", NULL, 0) != 0)
            rc = CL_EXIT_API;
        else
            puts(argv[i]);
    }
    return rc;
}

/* Appends `s` (`n` bytes) to `out` with every byte that could break the
 * line or the terminal escaped: \n, \r, \t, \\ and \xHH for the other
 * control bytes and DEL. */
static void escape_into(struct al_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n')
            al_buf_puts(out, "\\n");
        else if (ch == '\r')
            al_buf_puts(out, "\\r");
        else if (ch == '\t')
            al_buf_puts(out, "\\t");
        else if (ch == '\\')
            al_buf_puts(out, "\\\\");
        else if (ch < 0x20 || ch == 0x7f)
            al_buf_printf(out, "\\x%02x", ch);
        else
            al_buf_append(out, (const char *)&ch, 1);
    }
}

/* Prints a command (JSON argv) on what is left of one line: escaped, and
 * cut to `room` bytes with "..." (0: no limit). */
static void print_argv(json_t *argv, size_t room)
{
    size_t i;
    json_t *a;
    struct al_buf line;
    al_buf_init(&line, 1 << 20);
    json_array_foreach(argv, i, a)
    {
        if (i)
            al_buf_puts(&line, " ");
        if (json_is_string(a))
            escape_into(&line, json_string_value(a), json_string_length(a));
        else
            al_buf_puts(&line, "?");
    }
    size_t n = line.len;
    if (room > 3 && n > room) {
        n = room - 3;
        while (n > 0 && ((unsigned char)line.ptr[n] & 0xc0) == 0x80)
            n--; /* not inside a UTF-8 character */
        printf("%.*s...", (int)n, line.ptr);
    } else if (n) {
        printf("%.*s", (int)n, line.ptr);
    }
    al_buf_free(&line);
}

/* The terminal's width when stdout is one, else 0 (no limit). */
static size_t term_width(void)
{
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

static int cmd_ps(struct cl_client *c, int argc, char **argv)
{
    const char *id;
    int json_out, rc = one_id(argc, argv, &id, &json_out);
    struct al_buf path;
    json_t *doc = NULL, *p;
    size_t i;
    if (rc)
        return rc < 0 ? 0 : rc;
    if (session_path(&path, id, "/processes") < 0)
        return CL_EXIT_API;
    int err = cl_call_json((void **)&doc, c, "GET", path.ptr, NULL, NULL, NULL);
    al_buf_free(&path);
    if (err < 0)
        return CL_EXIT_API;
    if (json_out) {
        print_json(doc);
    } else {
        printf("%-10s %-7s %-8s %-6s %s\n", "PROCESS", "PID", "STATE", "EXIT", "COMMAND");
        json_array_foreach(json_object_get(doc, "processes"), i, p)
        {
            json_t *ex = json_object_get(p, "exit");
            char exit_s[32] = "-";
            if (json_is_integer(json_object_get(ex, "code")))
                snprintf(exit_s, sizeof(exit_s), "%lld",
                         (long long)json_integer_value(json_object_get(ex, "code")));
            else if (json_is_object(ex))
                snprintf(exit_s, sizeof(exit_s), "%s", str_or(ex, "reason", "?"));
            int used = printf("%-10s %-7lld %-8s %-6s ", str_or(p, "id", "?"),
                              (long long)json_integer_value(json_object_get(p, "pid")),
                              str_or(p, "state", "?"), exit_s);
            size_t width = term_width();
            print_argv(json_object_get(p, "argv"), width > (size_t)used + 8 ? width - (size_t)used
                                                   : width                  ? 8
                                                                            : 0);
            putchar('\n');
        }
    }
    json_decref(doc);
    return 0;
}

static int cmd_kill(struct cl_client *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"signal", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *sig = "TERM";
    int opt;
    while ((opt = session_getopt(argc, argv, "s:", opts)) != -1) {
        if (opt != 's')
            return opt == 'h' ? 0 : CL_EXIT_USAGE;
        sig = optarg;
    }
    if (optind + 2 != argc)
        return session_usage_error("kill wants a session id and a process id");
    struct al_buf suffix;
    al_buf_init(&suffix, 4096);
    if (al_buf_puts(&suffix, "/processes/") < 0 || cl_url_escape(&suffix, argv[optind + 1], 0) ||
        al_buf_puts(&suffix, "/signal") < 0) {
        al_buf_free(&suffix);
        return CL_EXIT_API;
    }
    unsigned long long num;
    if (strncmp(sig, "SIG", 3) == 0)
        sig += 3;
    json_t *body =
        json_pack("{s:o}", "signal",
                  session_parse_u64(&num, sig) == 0 && num <= 64 ? json_integer((json_int_t)num)
                                                                 : json_string(sig));
    int rc = simple_call(c, "POST", argv[optind], suffix.ptr, body, 0);
    json_decref(body);
    al_buf_free(&suffix);
    return rc;
}

static int cmd_approve(struct cl_client *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"deny", no_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int deny = 0, json_out = 0, opt, rc;
    struct al_buf suffix;
    while ((opt = session_getopt(argc, argv, "", opts)) != -1) {
        if (opt == 'd')
            deny = 1;
        else if (opt == 'j')
            json_out = 1;
        else
            return opt == 'h' ? 0 : CL_EXIT_USAGE;
    }
    if (optind + 1 != argc && optind + 2 != argc)
        return session_usage_error("approve wants a session id and an optional approval id");
    al_buf_init(&suffix, 4096);
    if (al_buf_puts(&suffix, "/approvals") < 0) {
        al_buf_free(&suffix);
        return CL_EXIT_API;
    }
    if (optind + 1 == argc) {
        /* No approval id: list them. */
        struct al_buf path;
        json_t *doc = NULL, *a;
        size_t i;
        rc = CL_EXIT_API;
        if (session_path(&path, argv[optind], suffix.ptr) == 0) {
            if (cl_call_json((void **)&doc, c, "GET", path.ptr, NULL, NULL, NULL) == 0)
                rc = 0;
            al_buf_free(&path);
        }
        if (rc == 0 && json_out) {
            print_json(doc);
        } else if (rc == 0) {
            printf("%-20s %-10s %-8s %s\n", "APPROVAL", "STATE", "KIND", "WHAT");
            json_array_foreach(json_object_get(doc, "approvals"), i, a)
            {
                const char *kind = str_or(a, "kind", "exec");
                printf("%-20s %-10s %-8s ", str_or(a, "id", "?"), str_or(a, "state", "?"), kind);
                if (strcmp(kind, "exec") == 0) {
                    print_argv(json_object_get(a, "argv"), 0);
                } else {
                    /* network: HOST:PORT (the host as the sandbox asked) */
                    struct al_buf hp;
                    const char *host = str_or(a, "host", "?");
                    al_buf_init(&hp, 4096);
                    escape_into(&hp, host, strlen(host));
                    printf("%.*s:%lld", (int)hp.len, hp.ptr ? hp.ptr : "",
                           (long long)json_integer_value(json_object_get(a, "port")));
                    al_buf_free(&hp);
                }
                putchar('\n');
            }
        }
        json_decref(doc);
        al_buf_free(&suffix);
        return rc;
    }
    if (al_buf_puts(&suffix, "/") < 0 || cl_url_escape(&suffix, argv[optind + 1], 0) < 0) {
        al_buf_free(&suffix);
        return CL_EXIT_API;
    }
    json_t *body = json_pack("{s:s}", "decision", deny ? "deny" : "allow");
    rc = simple_call(c, "POST", argv[optind], suffix.ptr, body, json_out);
    json_decref(body);
    al_buf_free(&suffix);
    return rc;
}

/* The entry point of airlock-session, reached as `airlock session ...`. */
int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(struct cl_client *, int, char **);
    } cmds[] = {
        {"create", cmd_create},
        {"ls", cmd_ls},
        {"show", cmd_show},
        {"rm", cmd_rm},
        {"keepalive", cmd_keepalive},
        {"exec", session_cmd_exec},
        {"shell", session_cmd_shell},
        {"ps", cmd_ps},
        {"output", session_cmd_output},
        {"kill", cmd_kill},
        {"cp", session_cmd_cp},
        {"events", session_cmd_events},
        {"approve", cmd_approve},
        {"policy", session_cmd_policy},
    };
    struct cl_client client;
    /* argv[0] is "airlock-session", or "airlock" when run by airlock */
    const char *base = strrchr(argv[0], '/');
    if (strcmp(base ? base + 1 : argv[0], "airlock") != 0)
        session_prog = "airlock-session";
    if (argc < 2) {
        usage(stderr);
        return CL_EXIT_USAGE;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        puts("airlock-session " AL_VERSION_LINE);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) != 0)
            continue;
        /* A reader that went away (| head) ends us with EPIPE, not a
         * signal, so the transfer is closed cleanly. */
        signal(SIGPIPE, SIG_IGN);
        if (cl_client_init(&client) < 0)
            return CL_EXIT_API;
        int rc = cmds[i].fn(&client, argc - 1, argv + 1);
        cl_client_free(&client);
        fflush(stdout);
        return rc;
    }
    fprintf(stderr, "%s: unknown command \"%s\"\n", session_prog, argv[1]);
    usage(stderr);
    return CL_EXIT_USAGE;
}
