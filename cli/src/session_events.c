/* `airlock session events`: the server-sent event stream as JSON lines. */
#include "session.h"

#include "airlock/error.h"
#include "client_stream.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct events {
    struct cl_sse sse;
    unsigned long long count; /* stop after this many; 0: never */
    unsigned long long seen;
};

static int on_event(const char *id, const char *event, const char *data, size_t data_len,
                    void *payload)
{
    struct events *ev = payload;
    json_error_t jerr;
    unsigned long long num;
    json_t *line = json_object();
    json_t *doc = json_loadb(data, data_len, 0, &jerr);
    int err = 0;
    if (!line)
        return AL_ENOMEM;
    json_object_set_new(line, "id",
                        session_parse_u64(&num, id) == 0 ? json_integer((json_int_t)num)
                        : *id                            ? json_string(id)
                                                         : json_null());
    json_object_set_new(line, "event", json_string(event));
    json_object_set_new(line, "data", doc ? doc : json_stringn(data, data_len));
    char *s = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(line);
    if (!s)
        return AL_ENOMEM;
    size_t n = strlen(s);
    s[n] = '\n';
    err = session_write_all(STDOUT_FILENO, s, n + 1);
    free(s);
    if (err < 0)
        return err;
    /* After --count events: stop the transfer (the caller sees seen ==
     * count and knows it was no failure). */
    if (ev->count && ++ev->seen >= ev->count)
        return AL_ERROR;
    return 0;
}

static int events_sink(const char *data, size_t len, void *payload)
{
    struct events *ev = payload;
    return cl_sse_feed(&ev->sse, data, len);
}

int session_cmd_events(struct cl_client *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"last-event-id", required_argument, NULL, 'l'},
        {"count", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct events ev = {0};
    struct al_buf path = {0};
    char header[128] = "";
    struct cl_response resp = {0};
    unsigned long long n;
    int opt, rc = CL_EXIT_API;
    while ((opt = session_getopt(argc, argv, "", opts)) != -1) {
        switch (opt) {
        case 'l':
            if (session_parse_u64(&n, optarg) < 0)
                return session_usage_error("--last-event-id: \"%s\" is not an event id", optarg);
            snprintf(header, sizeof(header), "Last-Event-ID: %llu", n);
            break;
        case 'n':
            if (session_parse_u64(&ev.count, optarg) < 0 || ev.count == 0)
                return session_usage_error("--count: \"%s\" is not a positive number", optarg);
            break;
        case 'h':
            return 0;
        default:
            return CL_EXIT_USAGE;
        }
    }
    if (optind + 1 < argc)
        return session_usage_error("events wants at most one session id");
    cl_sse_init(&ev.sse, CL_SSE_MAX_EVENT, on_event, &ev);
    if (optind < argc) {
        if (session_path(&path, argv[optind], "/events") < 0)
            goto out;
    } else {
        al_buf_init(&path, 64);
        if (al_buf_puts(&path, "/v1/events") < 0)
            goto out;
    }
    struct cl_request req = {
        .method = "GET",
        .path = path.ptr,
        .extra_header = header[0] ? header : NULL,
        .sink = events_sink,
        .payload = &ev,
    };
    int err = cl_request_do(c, &req, &resp);
    if (err < 0 && !(ev.count && ev.seen >= ev.count)) {
        fprintf(stderr, "airlock: session: %s\n", al_error_last());
        goto out;
    }
    if (resp.status < 200 || resp.status >= 300) {
        cl_response_print_error(&resp);
        goto out;
    }
    rc = 0;
out:
    cl_sse_free(&ev.sse);
    cl_response_free(&resp);
    al_buf_free(&path);
    return rc;
}
