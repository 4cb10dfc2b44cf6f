/* NDJSON and server-sent-event parsing for the `airlock session` client. */
#include "client_stream.h"

#include "airlock/base64.h"
#include "airlock/error.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

void cl_ndjson_init(struct cl_ndjson *p, size_t max_line)
{
    memset(p, 0, sizeof(*p));
    al_buf_init(&p->partial, max_line);
}

void cl_ndjson_free(struct cl_ndjson *p)
{
    al_buf_free(&p->partial);
}

/* `line` is the partial buffer's content (or "" when it is empty). */
static int deliver(struct cl_ndjson *p, char *line, size_t len, cl_line_fn fn, void *payload)
{
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (len == 0 && !p->keep_empty)
        return 0;
    return fn(line, len, payload);
}

int cl_ndjson_feed(struct cl_ndjson *p, const char *data, size_t len, cl_line_fn fn, void *payload)
{
    int err = 0;
    if (p->failed)
        return AL_EINVAL;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (p->partial.len + take > p->partial.max) {
            err = al_error_set(AL_ETOOBIG, "stream: a line longer than %zu bytes", p->partial.max);
            goto out;
        }
        if ((err = al_buf_append(&p->partial, data, take)) < 0)
            goto out;
        if (!nl)
            break;
        char empty[1] = "";
        err = deliver(p, p->partial.ptr ? p->partial.ptr : empty, p->partial.len, fn, payload);
        al_buf_reset(&p->partial);
        if (err < 0)
            goto out;
        data += take + 1;
        len -= take + 1;
    }
out:
    if (err < 0)
        p->failed = 1;
    return err;
}

int cl_ndjson_finish(struct cl_ndjson *p)
{
    if (p->failed)
        return AL_EINVAL;
    if (p->partial.len > 0)
        return al_error_set(AL_EINVAL, "stream: ends inside a line");
    return 0;
}

static int field_string(json_t *obj, const char *name, const char **out)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return al_error_set(AL_EINVAL, "stream: \"%s\" is not a string", name);
    *out = json_string_value(v);
    return 0;
}

/* Fills ev->data from "data" (UTF-8 text) or "data_b64". */
static int parse_data(struct cl_exec_event *ev, json_t *obj)
{
    json_t *text = json_object_get(obj, "data");
    json_t *b64 = json_object_get(obj, "data_b64");
    if (text && json_is_string(text)) {
        size_t n = json_string_length(text);
        if (!(ev->data = malloc(n + 1)))
            return AL_ENOMEM;
        memcpy(ev->data, json_string_value(text), n);
        ev->data_len = n;
        return 0;
    }
    if (b64 && json_is_string(b64)) {
        size_t n = json_string_length(b64);
        if (!(ev->data = malloc(n / 4 * 3 + 1)))
            return AL_ENOMEM;
        long got = al_base64_decode(ev->data, json_string_value(b64), n);
        if (got < 0)
            return al_error_set(AL_EINVAL, "stream: \"data_b64\" is not base64");
        ev->data_len = (size_t)got;
        return 0;
    }
    return al_error_set(AL_EINVAL, "stream: an output line without \"data\" or \"data_b64\"");
}

static int signal_number(json_t *v, int *out)
{
    static const struct {
        const char *name;
        int num;
    } names[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ABRT", SIGABRT},
                 {"KILL", SIGKILL}, {"SEGV", SIGSEGV}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},
                 {"TERM", SIGTERM}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"BUS", SIGBUS},
                 {"XCPU", SIGXCPU}, {"SYS", SIGSYS},   {"ILL", SIGILL},   {"FPE", SIGFPE},
                 {"TRAP", SIGTRAP}};
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 1 || n > 64)
            return al_error_set(AL_EINVAL, "stream: signal %lld out of range", (long long)n);
        *out = (int)n;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strncmp(s, "SIG", 3) == 0)
            s += 3;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (strcmp(s, names[i].name) == 0) {
                *out = names[i].num;
                return 0;
            }
    }
    return al_error_set(AL_EINVAL, "stream: \"signal\" is not a signal");
}

static int parse_exit(struct cl_exec_event *ev, json_t *obj)
{
    json_t *code = json_object_get(obj, "code");
    const char *reason;
    int err;
    if (code && !json_is_null(code)) {
        if (!json_is_integer(code) || json_integer_value(code) < 0 ||
            json_integer_value(code) > 255)
            return al_error_set(AL_EINVAL, "stream: \"code\" is not an exit status");
        ev->has_code = 1;
        ev->code = (int)json_integer_value(code);
    }
    if ((err = signal_number(json_object_get(obj, "signal"), &ev->signal)) < 0)
        return err;
    if ((err = field_string(obj, "reason", &reason)) < 0)
        return err;
    if (reason && strlen(reason) >= sizeof(ev->reason))
        return al_error_set(AL_EINVAL, "stream: \"reason\" too long");
    snprintf(ev->reason, sizeof(ev->reason), "%s", reason ? reason : "exited");
    return 0;
}

/* Copies the string field `name` of `obj` into out[size] ("" when absent);
 * AL_EINVAL when it is not a string, holds a NUL or does not fit. */
static int field_copy(json_t *obj, const char *name, char *out, size_t size)
{
    json_t *v = json_object_get(obj, name);
    out[0] = '\0';
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return al_error_set(AL_EINVAL, "stream: \"%s\" is not a string", name);
    size_t n = json_string_length(v);
    if (n >= size || strlen(json_string_value(v)) != n)
        return al_error_set(AL_EINVAL, "stream: \"%s\" is too long or holds a NUL", name);
    memcpy(out, json_string_value(v), n + 1);
    return 0;
}

/* A notice line: {"event": "approval"|"network", "data": {...}}. */
static int parse_notice(struct cl_exec_event *ev, json_t *obj)
{
    const char *event;
    int err = field_string(obj, "event", &event);
    json_t *data = json_object_get(obj, "data");
    if (err < 0)
        return err;
    if (!event || !json_is_object(data))
        return al_error_set(AL_EINVAL, "stream: a notice without \"event\" or \"data\"");
    if (strcmp(event, "approval") == 0)
        ev->notice = CL_NOTICE_APPROVAL;
    else if (strcmp(event, "network") == 0)
        ev->notice = CL_NOTICE_NETWORK;
    else
        return al_error_set(AL_EINVAL, "stream: unknown notice");
    json_t *port = json_object_get(data, "port");
    if (port && !json_is_null(port) &&
        (!json_is_integer(port) || json_integer_value(port) < 0 ||
         json_integer_value(port) > 65535))
        return al_error_set(AL_EINVAL, "stream: bad \"port\" in a notice");
    ev->port = port && json_is_integer(port) ? json_integer_value(port) : -1;
    const char *id_key = ev->notice == CL_NOTICE_APPROVAL ? "approval" : "id";
    if ((err = field_copy(data, id_key, ev->id, sizeof(ev->id))) < 0 ||
        (err = field_copy(data, "host", ev->host, sizeof(ev->host))) < 0 ||
        (err = field_copy(data, "decision", ev->decision, sizeof(ev->decision))) < 0 ||
        (err = field_copy(data, "reason", ev->why, sizeof(ev->why))) < 0 ||
        (err = field_copy(data, "rule", ev->rule, sizeof(ev->rule))) < 0 ||
        (err = field_copy(data, "addr", ev->addr, sizeof(ev->addr))) < 0)
        return err;
    if (ev->notice == CL_NOTICE_APPROVAL && !ev->id[0])
        return al_error_set(AL_EINVAL, "stream: an approval notice without its id");
    return 0;
}

int cl_exec_event_parse(struct cl_exec_event *out, const char *line, size_t len)
{
    json_error_t jerr;
    const char *type;
    int err = 0;
    memset(out, 0, sizeof(*out));
    json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!obj || !json_is_object(obj)) {
        err = al_error_set(AL_EINVAL, "stream: a line is not a JSON object");
        goto out;
    }
    if ((err = field_string(obj, "type", &type)) < 0)
        goto out;
    if (!type) {
        err = al_error_set(AL_EINVAL, "stream: a line without \"type\"");
        goto out;
    }
    if (strcmp(type, "stdout") == 0 || strcmp(type, "stderr") == 0) {
        out->kind = type[3] == 'o' ? CL_EXEC_STDOUT : CL_EXEC_STDERR;
        err = parse_data(out, obj);
    } else if (strcmp(type, "start") == 0) {
        const char *proc;
        json_t *pid = json_object_get(obj, "pid");
        out->kind = CL_EXEC_START;
        if ((err = field_string(obj, "process", &proc)) < 0)
            goto out;
        if (proc && strlen(proc) >= sizeof(out->process)) {
            err = al_error_set(AL_EINVAL, "stream: \"process\" too long");
            goto out;
        }
        snprintf(out->process, sizeof(out->process), "%s", proc ? proc : "");
        if (pid && json_is_integer(pid))
            out->pid = json_integer_value(pid);
    } else if (strcmp(type, "exit") == 0) {
        out->kind = CL_EXEC_EXIT;
        err = parse_exit(out, obj);
    } else if (strcmp(type, "notice") == 0) {
        out->kind = CL_EXEC_NOTICE;
        err = parse_notice(out, obj);
    } else {
        err = al_error_set(AL_EINVAL, "stream: unknown line type");
    }
out:
    if (err < 0)
        cl_exec_event_free(out);
    json_decref(obj);
    return err;
}

void cl_exec_event_free(struct cl_exec_event *ev)
{
    free(ev->data);
    ev->data = NULL;
    ev->data_len = 0;
}

int cl_exec_event_status(const struct cl_exec_event *ev)
{
    if (strcmp(ev->reason, "timeout") == 0)
        return 124;
    if (strcmp(ev->reason, "memory") == 0)
        return 137;
    if (strcmp(ev->reason, "not-found") == 0)
        return 127;
    if (strcmp(ev->reason, "not-executable") == 0)
        return 126;
    if (ev->has_code)
        return ev->code;
    if (ev->signal > 0)
        return 128 + ev->signal;
    return 125;
}

/* SSE: https://html.spec.whatwg.org/multipage/server-sent-events.html */

static int sse_dispatch(struct cl_sse *p)
{
    int err = 0;
    if (p->has_data) {
        const char *data = p->data.ptr ? p->data.ptr : "";
        err = p->fn(p->id, p->event[0] ? p->event : "message", data, p->data.len, p->payload);
    }
    /* The id persists across events (the spec's last event id); the rest
     * is per event. */
    al_buf_reset(&p->data);
    p->event[0] = '\0';
    p->has_data = 0;
    return err;
}

static int sse_line(const char *line, size_t len, void *payload)
{
    struct cl_sse *p = payload;
    if (memchr(line, '\0', len))
        return al_error_set(AL_EINVAL, "events: a NUL byte in the stream");
    if (len == 0)
        return sse_dispatch(p);
    if (line[0] == ':')
        return 0;
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = colon ? len - name_len - 1 : 0;
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        int err;
        if (p->has_data && (err = al_buf_append(&p->data, "\n", 1)) < 0)
            return al_error_set(err, "events: an event larger than %zu bytes", p->max);
        if ((err = al_buf_append(&p->data, value, value_len)) < 0)
            return al_error_set(err, "events: an event larger than %zu bytes", p->max);
        p->has_data = 1;
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        if (value_len >= sizeof(p->event))
            return al_error_set(AL_EINVAL, "events: an event name too long");
        memcpy(p->event, value, value_len);
        p->event[value_len] = '\0';
    } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
        if (value_len >= sizeof(p->id))
            return al_error_set(AL_EINVAL, "events: an event id too long");
        memcpy(p->id, value, value_len);
        p->id[value_len] = '\0';
    }
    /* "retry" and unknown fields are ignored, as the spec says. */
    return 0;
}

void cl_sse_init(struct cl_sse *p, size_t max, cl_sse_fn fn, void *payload)
{
    memset(p, 0, sizeof(*p));
    cl_ndjson_init(&p->lines, max);
    p->lines.keep_empty = 1;
    al_buf_init(&p->data, max);
    p->max = max;
    p->fn = fn;
    p->payload = payload;
}

void cl_sse_free(struct cl_sse *p)
{
    cl_ndjson_free(&p->lines);
    al_buf_free(&p->data);
}

int cl_sse_feed(struct cl_sse *p, const char *data, size_t len)
{
    return cl_ndjson_feed(&p->lines, data, len, sse_line, p);
}
