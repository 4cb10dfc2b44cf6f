/* The HTTP client of `airlock session`: one libcurl handle talking to
 * airlockd (AIRLOCK_URL, AIRLOCK_API_KEY), reused across requests so a
 * command making several calls keeps one connection.
 *
 * Responses are either buffered (bounded by CL_MAX_RESPONSE) or, for the
 * streaming routes, handed to a sink as they arrive. Error responses (any
 * status >= 400) are always buffered so their JSON error can be printed.
 */
#ifndef AIRLOCK_CLIENT_H
#define AIRLOCK_CLIENT_H

#include <stddef.h>
#include <stdio.h>

#include "airlock/buf.h"

#define CL_DEFAULT_URL  "http://127.0.0.1:7070"
#define CL_MAX_RESPONSE (64 * 1024 * 1024) /* a buffered response body */
#define CL_MAX_ERROR    (64 * 1024)        /* an error body */
#define CL_EXIT_API     1                  /* the API refused or failed */
#define CL_EXIT_USAGE   2                  /* bad command line */
#define CL_CONNECT_SECS 10L

struct cl_client {
    void *curl; /* CURL * */
    char *base; /* AIRLOCK_URL without a trailing '/' */
    char *auth; /* "Authorization: Bearer ..." or NULL */
};

/* An idle client: reads nothing and starts nothing, so a command parses its
 * command line (and answers --help) whatever AIRLOCK_URL says; the first
 * request starts it (cl_client_start). Returns 0: nothing can fail before
 * that. Free with cl_client_free(). */
int cl_client_init(struct cl_client *c);

/* Starts the client once: reads AIRLOCK_URL and AIRLOCK_API_KEY and creates
 * the handle. 0 (also when already started), or AL_EINVAL for a malformed
 * environment, AL_ENOMEM; the reason in al_error_last(). cl_request_do()
 * and cl_ws_connect() call it. */
int cl_client_start(struct cl_client *c);

/* Frees what the client holds (wiping the API key); `c` is idle again. */
void cl_client_free(struct cl_client *c);

/* Receives the body of a successful (2xx) streamed response as it arrives.
 * Returns 0 to go on, a negative code to abort the transfer. */
typedef int (*cl_sink_fn)(const char *data, size_t len, void *payload);

struct cl_request {
    const char *method;       /* "GET", "POST", "PUT", "DELETE" */
    const char *path;         /* "/v1/sessions/…", already percent-encoded */
    const char *content_type; /* of the body; NULL: none */
    const void *body;         /* in-memory body, or */
    size_t body_len;
    FILE *upload;             /* a body read from this stream (PUT/POST) */
    long long upload_len;     /* its size, -1 when unknown (chunked) */
    const char *extra_header; /* one more "Name: value", or NULL */
    cl_sink_fn sink;          /* streams a 2xx body; NULL: buffer it */
    void *payload;
    /* Called (with `payload`) about once a second while the request waits
     * for the response to start (no status line yet); NULL: none. It may
     * make requests of its own with another cl_client, never with this
     * one. Its return value is ignored. */
    int (*waiting)(void *payload);
};

struct cl_response {
    long status;        /* 0 when no HTTP response came */
    struct al_buf body; /* buffered body (error bodies always) */
    char content_type[128];
    int replayed;     /* Idempotent-Replayed: true */
    long long offset; /* X-Airlock-Offset, -1 when absent */
    int sink_err;     /* what the sink returned when it stopped us */
};

void cl_response_free(struct cl_response *r);

/* Performs the request. Returns 0 when a response came (whatever its
 * status: look at out->status), AL_EIO when the server could not be reached
 * or the transfer broke (detail in al_error_last()), or the sink's error.
 * The caller frees *out with cl_response_free() in every case. */
int cl_request_do(struct cl_client *c, const struct cl_request *req, struct cl_response *out);

/* cl_request_do() for a command: prints why it failed ("airlock: session:
 * ..." for a transport error, the API's error line for a status outside
 * 2xx) and returns AL_ERROR; 0 for a 2xx response. *out as in
 * cl_request_do(). */
int cl_request_run(struct cl_client *c, const struct cl_request *req, struct cl_response *out);

/* Buffered JSON call: `json_body` (may be NULL) is sent as
 * application/json. Returns the parsed 2xx body (caller decrefs) in *out;
 * on an HTTP error prints "airlock: session: STATUS CODE: MESSAGE" and
 * returns AL_ERROR. `extra_header` as in cl_request. `out_resp` (may be
 * NULL) receives status and headers. */
int cl_call_json(void **out /* json_t ** */, struct cl_client *c, const char *method,
                 const char *path, const void *json_body, const char *extra_header,
                 struct cl_response *out_resp);

/* Prints the one-line error of a failed response (status >= 400) to
 * stderr: "airlock: session: 404 not_found: no such session" (plus
 * earliest_offset when given). */
void cl_response_print_error(const struct cl_response *r);

/* Appends `s` to `buf` percent-encoded; '/' is kept when `keep_slash`. */
int cl_url_escape(struct al_buf *buf, const char *s, int keep_slash);

#endif
