/* `airlock session exec` and `airlock session output`. */
#include "session.h"

#include "airlock/error.h"
#include "airlock/termtext.h"
#include "client_stream.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STDIN_MAX (64u * 1024 * 1024) /* --stdin: the daemon bounds the body */

/* The state of a foreground exec stream. */
struct exec_stream {
    struct cl_ndjson lines;
    int have_exit;
    int status;
    const char *id;      /* the session, for the commands the notices name */
    const char *argv0;   /* the command, for "not found" */
    const char *timeout; /* --timeout as given, NULL when none */
    json_t *argv;        /* the command as the server lists it */
    uint64_t next_check; /* when to look for its approval (ms, monotonic) */
    int told;            /* its approval was told, or cannot be */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* While the exec's response has not started (a regular-mode session holds
 * the command for its approval before anything is sent): from a second on,
 * once a second, looks for a pending exec approval of this very command,
 * over a connection of its own, and says once how to give it. */
static int exec_waiting(void *payload)
{
    struct exec_stream *st = payload;
    uint64_t now = mono_ms();
    if (st->told || now < st->next_check)
        return 0;
    st->next_check = now + 1000;
    struct cl_client c2;
    struct cl_response resp = {0};
    struct al_buf path = {0};
    json_t *doc = NULL, *a, *found = NULL;
    size_t i;
    if (cl_client_init(&c2) < 0) {
        st->told = 1;
        return 0;
    }
    struct cl_request req = {.method = "GET"};
    if (session_path(&path, st->id, "/approvals") == 0) {
        req.path = path.ptr;
        if (cl_request_do(&c2, &req, &resp) == 0 && resp.status == 200)
            doc = json_loadb(resp.body.ptr ? resp.body.ptr : "", resp.body.len, 0, NULL);
    }
    json_array_foreach(json_object_get(doc, "approvals"), i, a)
    {
        const char *kind = json_string_value(json_object_get(a, "kind"));
        const char *state = json_string_value(json_object_get(a, "state"));
        if (kind && strcmp(kind, "exec") == 0 && state && strcmp(state, "pending") == 0 &&
            json_equal(json_object_get(a, "argv"), st->argv))
            found = a; /* the newest of equal ones: most likely ours */
    }
    if (found) {
        char aid[52], sid[80];
        al_term_line(aid, sizeof(aid), json_string_value(json_object_get(found, "id")),
                     AL_TERM_ASCII);
        al_term_line(sid, sizeof(sid), st->id, AL_TERM_ASCII);
        fprintf(stderr,
                "airlock: waiting for approval of the command (approve with: airlock session"
                " approve %s %s; refuse with --deny)\n",
                sid, aid);
        st->told = 1;
    }
    json_decref(doc);
    al_buf_free(&path);
    cl_response_free(&resp);
    cl_client_free(&c2);
    return 0;
}

/* One notice on stderr, as it happens: the approval the command waits for
 * (and the command that gives it), or a refused request and what to change
 * in the session's policy to allow it (the line `airlock run` prints, with
 * the session's command in place of the settings file). */
static void print_notice(const struct exec_stream *st, const struct cl_exec_event *ev)
{
    char host[260], id[52], rule[260], addr[68], why[68], sid[80];
    al_term_line(host, sizeof(host), ev->host, AL_TERM_ASCII);
    al_term_line(id, sizeof(id), ev->id, AL_TERM_ASCII);
    al_term_line(rule, sizeof(rule), ev->rule, AL_TERM_ASCII);
    al_term_line(addr, sizeof(addr), ev->addr, AL_TERM_ASCII);
    al_term_line(why, sizeof(why), ev->why[0] ? ev->why : ev->decision, AL_TERM_ASCII);
    al_term_line(sid, sizeof(sid), st->id, AL_TERM_ASCII);
    long long port = ev->port;
    if (ev->notice == CL_NOTICE_APPROVAL) {
        fprintf(stderr,
                "airlock: waiting for approval of %s:%lld (approve with: airlock session approve"
                " %s %s; refuse with --deny)\n",
                host, port, sid, id);
        return;
    }
    if (strcmp(why, "dns-failure") == 0)
        fprintf(stderr, "airlock: network: %s:%lld: the name does not resolve (DNS)\n", host, port);
    else if (strcmp(why, "blocked-address") == 0)
        fprintf(stderr,
                "airlock: blocked network: %s:%lld resolved to %s: to allow it, add \"%s\" to the"
                " session's network.allowedAddresses (airlock session policy %s"
                " --allow-address %s; the operator must grant it)\n",
                host, port, addr, addr, sid, addr);
    else if (strcmp(why, "blocked-by-policy") == 0 && strcmp(rule, "strictAllowlist") == 0)
        fprintf(stderr,
                "airlock: blocked network: %s:%lld (not in the allowlist, and the session's"
                " network.strictAllowlist is set: nobody is asked): to allow it, add \"%s\" to"
                " the session's network.allowedDomains (airlock session policy %s"
                " --allow-domain %s)\n",
                host, port, host, sid, host);
    else if (strcmp(why, "blocked-by-policy") == 0 && rule[0] && strcmp(rule, "?") != 0)
        fprintf(stderr,
                "airlock: blocked network: %s:%lld (denied by the session's network.deniedDomains"
                " entry \"%s\": airlock session policy %s --forget-domain %s)\n",
                host, port, rule, sid, rule);
    else if (strcmp(why, "blocked-by-policy") == 0 || strcmp(why, "needs-approval-timeout") == 0)
        fprintf(stderr,
                "airlock: blocked network: %s:%lld (%s): to allow it, add \"%s\" to the session's"
                " network.allowedDomains (airlock session policy %s --allow-domain %s)\n",
                host, port, why[0] == 'b' ? "not in the allowlist" : "nobody approved it in time",
                host, sid, host);
    else
        fprintf(stderr, "airlock: blocked network: %s:%lld (%s)\n", host, port, why);
}

/* After the exit line: says on stderr why the command ended when it was
 * not its own doing, as `airlock run` does. */
static void explain_exit(const struct exec_stream *st, const struct cl_exec_event *ev)
{
    char cmd[200];
    al_term_line(cmd, sizeof(cmd), st->argv0, AL_TERM_ASCII);
    if (strcmp(ev->reason, "timeout") == 0) {
        if (st->timeout)
            fprintf(stderr, "airlock: timed out after %s s (--timeout): killed the command\n",
                    st->timeout);
        else
            fprintf(stderr, "airlock: timed out: killed the command\n");
    } else if (strcmp(ev->reason, "memory") == 0)
        fprintf(stderr, "airlock: killed: the session's memory limit was reached (session"
                        " create --memory MB)\n");
    else if (strcmp(ev->reason, "not-found") == 0)
        fprintf(stderr, "airlock: %s: command not found in the sandbox\n", cmd);
    else if (strcmp(ev->reason, "not-executable") == 0)
        fprintf(stderr, "airlock: %s: not executable in the sandbox (permission denied)\n", cmd);
    else if (strcmp(ev->reason, "session-ended") == 0)
        fprintf(stderr, "airlock: session: the session ended under the command\n");
}

static int exec_line(const char *line, size_t len, void *payload)
{
    struct exec_stream *st = payload;
    struct cl_exec_event ev;
    int err = cl_exec_event_parse(&ev, line, len);
    if (err < 0)
        return err;
    switch (ev.kind) {
    case CL_EXEC_STDOUT:
    case CL_EXEC_STDERR:
        err = session_write_all(ev.kind == CL_EXEC_STDOUT ? STDOUT_FILENO : STDERR_FILENO, ev.data,
                                ev.data_len);
        break;
    case CL_EXEC_EXIT:
        st->have_exit = 1;
        st->status = cl_exec_event_status(&ev);
        explain_exit(st, &ev);
        break;
    case CL_EXEC_NOTICE:
        print_notice(st, &ev);
        break;
    case CL_EXEC_START:
        break;
    }
    cl_exec_event_free(&ev);
    return err;
}

static int exec_sink(const char *data, size_t len, void *payload)
{
    struct exec_stream *st = payload;
    return cl_ndjson_feed(&st->lines, data, len, exec_line, st);
}

/* 1 when the error response `r` names `field` as the one refused. */
static int refused_field(const struct cl_response *r, const char *field)
{
    json_t *doc = json_loadb(r->body.ptr ? r->body.ptr : "", r->body.len, 0, NULL);
    const char *f = json_string_value(json_object_get(json_object_get(doc, "error"), "field"));
    int yes = f && strcmp(f, field) == 0;
    json_decref(doc);
    return yes;
}

/* Reads all of stdin into *out (base64 for the JSON body). */
static int read_stdin_b64(json_t **out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    struct al_buf in, enc;
    char chunk[65536];
    int err = 0;
    al_buf_init(&in, STDIN_MAX);
    al_buf_init(&enc, STDIN_MAX / 3 * 4 + 4);
    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
        if (n == 0)
            break;
        if (n < 0) {
            err = al_error_set_errno(AL_EIO, errno, "reading stdin");
            goto out;
        }
        if ((err = al_buf_append(&in, chunk, (size_t)n)) < 0) {
            al_error_set(err, "stdin is larger than %u bytes", STDIN_MAX);
            goto out;
        }
    }
    const unsigned char *p = (const unsigned char *)in.ptr;
    for (size_t i = 0; i < in.len && err == 0; i += 3) {
        unsigned long w = (unsigned long)p[i] << 16;
        size_t rest = in.len - i;
        if (rest > 1)
            w |= (unsigned long)p[i + 1] << 8;
        if (rest > 2)
            w |= p[i + 2];
        char q[4] = {tbl[(w >> 18) & 63], tbl[(w >> 12) & 63], rest > 1 ? tbl[(w >> 6) & 63] : '=',
                     rest > 2 ? tbl[w & 63] : '='};
        err = al_buf_append(&enc, q, 4);
    }
    if (err == 0 && !(*out = json_stringn(enc.ptr ? enc.ptr : "", enc.len)))
        err = AL_ENOMEM;
out:
    al_buf_free(&in);
    al_buf_free(&enc);
    return err;
}

int session_cmd_exec(struct cl_client *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"background", no_argument, NULL, 'b'},   {"timeout", required_argument, NULL, 't'},
        {"cwd", required_argument, NULL, 'C'},    {"env", required_argument, NULL, 'e'},
        {"stdin", no_argument, NULL, 'i'},        {"shell", required_argument, NULL, 's'},
        {"merge-stderr", no_argument, NULL, 'm'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    json_t *body = json_object(), *env = json_object();
    struct exec_stream st = {0};
    struct cl_response resp = {0};
    struct al_buf path = {0};
    char *text = NULL;
    int rc = CL_EXIT_USAGE, opt, background = 0, want_stdin = 0, json_out = 0;
    const char *shell = NULL;
    unsigned long long n;
    cl_ndjson_init(&st.lines, CL_NDJSON_MAX_LINE);
    if (!body || !env) {
        rc = CL_EXIT_API;
        goto out;
    }
    while ((opt = session_getopt(argc, argv, "", opts)) != -1) {
        switch (opt) {
        case 'b':
            background = 1;
            break;
        case 't':
            if (session_parse_u64(&n, optarg) < 0 || n > 0xffffffffULL) {
                session_usage_error("--timeout: \"%s\" is not a number of seconds", optarg);
                goto out;
            }
            json_object_set_new(body, "timeout_s", json_integer((json_int_t)n));
            st.timeout = optarg;
            break;
        case 'C':
            json_object_set_new(body, "cwd", json_string(optarg));
            break;
        case 'e':
            if (session_kv_add(env, optarg, "--env") < 0) {
                session_usage_error("%s", al_error_last());
                goto out;
            }
            break;
        case 'i':
            want_stdin = 1;
            break;
        case 's':
            shell = optarg;
            break;
        case 'm':
            json_object_set_new(body, "merge_stderr", json_true());
            break;
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
    if (optind >= argc) {
        session_usage_error("exec wants a session id");
        goto out;
    }
    const char *id = argv[optind++];
    if (shell && optind < argc) {
        session_usage_error("exec: --shell and a command cannot go together");
        goto out;
    }
    if (!shell && optind >= argc) {
        session_usage_error("exec wants a command: exec ID -- ARGV... or exec ID --shell CMD");
        goto out;
    }
    st.id = id;
    st.argv0 = shell ? "/bin/sh" : argv[optind];
    if (shell) {
        json_object_set_new(body, "shell", json_string(shell));
    } else {
        json_t *args = json_array();
        for (int i = optind; i < argc; i++)
            json_array_append_new(args, json_string(argv[i]));
        json_object_set_new(body, "argv", args);
    }
    if (json_object_size(env))
        json_object_set(body, "env", env);
    if (background)
        json_object_set_new(body, "background", json_true());
    rc = CL_EXIT_API;
    if (want_stdin) {
        json_t *data = NULL;
        if (read_stdin_b64(&data) < 0) {
            fprintf(stderr, "airlock: session: %s\n", al_error_last());
            goto out;
        }
        json_object_set_new(body, "stdin_b64", data);
    }
    if (session_path(&path, id, "/exec") < 0)
        goto out;
    if (background) {
        json_t *doc = NULL;
        if (cl_call_json((void **)&doc, c, "POST", path.ptr, body, NULL, NULL) < 0)
            goto out;
        if (json_out) {
            char *s = json_dumps(doc, JSON_INDENT(2));
            if (s)
                puts(s);
            free(s);
        } else {
            puts(json_string_value(json_object_get(doc, "id")) ?: "?");
        }
        json_decref(doc);
        rc = 0;
        goto out;
    }
    /* approvals waited for and requests refused, told as they happen */
    json_object_set_new(body, "notices", json_true());
    st.argv = shell ? json_pack("[s, s, s]", "/bin/sh", "-c", shell)
                    : json_incref(json_object_get(body, "argv"));
    st.next_check = mono_ms() + 1000;
    if (!(text = json_dumps(body, JSON_COMPACT)))
        goto out;
    struct cl_request req = {
        .method = "POST",
        .path = path.ptr,
        .content_type = "application/json",
        .body = text,
        .body_len = strlen(text),
        .sink = exec_sink,
        .payload = &st,
        .waiting = exec_waiting,
    };
    if (cl_request_do(c, &req, &resp) < 0) {
        fprintf(stderr, "airlock: session: %s\n", al_error_last());
        goto out;
    }
    if (resp.status == 400 && refused_field(&resp, "notices")) {
        /* an airlockd older than this client: the same exec without them */
        free(text);
        cl_response_free(&resp);
        memset(&resp, 0, sizeof(resp));
        json_object_del(body, "notices");
        if (!(text = json_dumps(body, JSON_COMPACT)))
            goto out;
        req.body = text;
        req.body_len = strlen(text);
        if (cl_request_do(c, &req, &resp) < 0) {
            fprintf(stderr, "airlock: session: %s\n", al_error_last());
            goto out;
        }
    }
    if (resp.status < 200 || resp.status >= 300) {
        cl_response_print_error(&resp);
        goto out;
    }
    if (cl_ndjson_finish(&st.lines) < 0 || !st.have_exit) {
        fprintf(stderr, "airlock: session: the output stream ended before the command's exit\n");
        goto out;
    }
    rc = st.status;
out:
    cl_response_free(&resp);
    cl_ndjson_free(&st.lines);
    json_decref(st.argv);
    al_buf_free(&path);
    free(text);
    json_decref(body);
    json_decref(env);
    return rc;
}

static int raw_sink(const char *data, size_t len, void *payload)
{
    return session_write_all(STDOUT_FILENO, data, len);
}

int session_cmd_output(struct cl_client *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"offset", required_argument, NULL, 'o'},
        {"follow", no_argument, NULL, 'f'},
        {"stream", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned long long offset = 0;
    int follow = 0, opt, rc = CL_EXIT_API;
    const char *stream = "stdout";
    struct al_buf suffix, path = {0};
    struct cl_response resp = {0};
    while ((opt = session_getopt(argc, argv, "f", opts)) != -1) {
        switch (opt) {
        case 'o':
            if (session_parse_u64(&offset, optarg) < 0)
                return session_usage_error("--offset: \"%s\" is not a byte offset", optarg);
            break;
        case 'f':
            follow = 1;
            break;
        case 's':
            if (strcmp(optarg, "stdout") != 0 && strcmp(optarg, "stderr") != 0)
                return session_usage_error("--stream is stdout or stderr");
            stream = optarg;
            break;
        case 'h':
            return 0;
        default:
            return CL_EXIT_USAGE;
        }
    }
    if (optind + 2 != argc)
        return session_usage_error("output wants a session id and a process id");
    al_buf_init(&suffix, 4096);
    if (al_buf_puts(&suffix, "/processes/") < 0 || cl_url_escape(&suffix, argv[optind + 1], 0) ||
        al_buf_printf(&suffix, "/output?stream=%s&offset=%llu%s", stream, offset,
                      follow ? "&follow=1" : "") < 0 ||
        session_path(&path, argv[optind], suffix.ptr) < 0)
        goto out;
    struct cl_request req = {.method = "GET", .path = path.ptr, .sink = raw_sink};
    if (cl_request_run(c, &req, &resp) < 0)
        goto out;
    rc = 0;
out:
    cl_response_free(&resp);
    al_buf_free(&suffix);
    al_buf_free(&path);
    return rc;
}
