/* Parsers for what airlockd streams back to the `airlock session` client:
 * NDJSON lines (the output of an exec) and server-sent events (the event
 * streams). Both take input in arbitrary chunks, as it arrives, keep at most
 * a fixed number of bytes of a partial line or event, and treat every byte
 * as untrusted. No network code here: the unit tests and the fuzz target
 * link this file alone.
 */
#ifndef AIRLOCK_CLIENT_STREAM_H
#define AIRLOCK_CLIENT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "airlock/buf.h"

/* The largest line the client accepts from an exec stream. airlockd sends
 * output in chunks of at most 64 KiB, which JSON escaping can blow up six
 * times; this leaves room for that. */
#define CL_NDJSON_MAX_LINE (1024 * 1024)

/* Called for each complete line, without its '\n' (a trailing '\r' is
 * removed too); `line` is NUL-terminated at line[len]. Returns 0 to go on,
 * a negative code to stop the feed (that code is returned by feed()). */
typedef int (*cl_line_fn)(const char *line, size_t len, void *payload);

struct cl_ndjson {
    struct al_buf partial; /* the bytes of an unfinished line */
    int failed;            /* a previous feed failed: every later one fails */
    int keep_empty;        /* deliver empty lines too (SSE needs them) */
};

/* Initialises a splitter whose lines may be at most `max_line` bytes. */
void cl_ndjson_init(struct cl_ndjson *p, size_t max_line);
void cl_ndjson_free(struct cl_ndjson *p);

/* Splits `len` bytes of input into lines and calls `fn` for each complete
 * one; empty lines are skipped. Returns 0, AL_ETOOBIG when a line passes
 * the limit, or what `fn` returned. After an error the splitter refuses
 * all further input. */
int cl_ndjson_feed(struct cl_ndjson *p, const char *data, size_t len, cl_line_fn fn, void *payload);

/* At the end of the input: AL_EINVAL when an unfinished line is left. */
int cl_ndjson_finish(struct cl_ndjson *p);

/* One line of an exec stream, decoded. */
enum cl_exec_kind {
    CL_EXEC_START = 1,
    CL_EXEC_STDOUT,
    CL_EXEC_STDERR,
    CL_EXEC_EXIT,
    CL_EXEC_NOTICE, /* asked for with "notices": something the command waits for or was refused */
};

/* What a NOTICE line says. */
enum cl_notice_kind {
    CL_NOTICE_APPROVAL = 1, /* a network request waits for an approval */
    CL_NOTICE_NETWORK,      /* the egress proxy refused a request */
};

struct cl_exec_event {
    enum cl_exec_kind kind;
    /* STDOUT/STDERR: the bytes (from "data" or "data_b64"); allocated,
     * owned by the event (cl_exec_event_free). */
    unsigned char *data;
    size_t data_len;
    /* START */
    char process[32]; /* "p_7" */
    long long pid;
    /* EXIT */
    int has_code;
    int code;
    int signal; /* 0 when null */
    char reason[32];
    /* NOTICE: the event's fields (strings as sent, "" when absent; may hold
     * any UTF-8 but NUL: the printer makes them terminal-safe) */
    enum cl_notice_kind notice;
    char id[48];    /* approval id ("n_3") */
    char host[256]; /* host asked for */
    long long port; /* -1 when absent */
    char decision[32];
    char why[64];   /* the refusal's reason ("blocked-by-policy", ...) */
    char rule[256]; /* the rule that refused it ("" or "?" when none) */
    char addr[64];  /* the address it resolved to */
};

/* Parses one NDJSON line of an exec stream into *out. A "notice" line is
 * {"type":"notice","event":"approval"|"network","data":{...}}: a notice of
 * another event, or a field too long for its buffer, is AL_EINVAL like any
 * other malformed line. AL_EINVAL (detail in
 * al_error_last()) when the line is not a JSON object, has no known "type",
 * or a field has the wrong type or a bad value (bad base64, a code outside
 * 0..255, a signal outside 1..64). Unknown fields are ignored, so a newer
 * daemon may add some. On success the caller frees with
 * cl_exec_event_free(). */
int cl_exec_event_parse(struct cl_exec_event *out, const char *line, size_t len);
void cl_exec_event_free(struct cl_exec_event *ev);

/* The exit status the client reports for an "exit" line, as a shell would:
 * the code; 128+N for a signal; 124 for a timeout; 137 for the memory
 * limit; 127/126 for not-found/not-executable; 125 when the session ended
 * under the command without a code. */
int cl_exec_event_status(const struct cl_exec_event *ev);

/* Server-sent events (text/event-stream). */
#define CL_SSE_MAX_EVENT (1024 * 1024)

/* A complete event: `id` and `event` are NUL-terminated ("" when absent;
 * event names default to "message"), `data` holds the data lines joined by
 * '\n' and is NUL-terminated at data[data_len]. */
typedef int (*cl_sse_fn)(const char *id, const char *event, const char *data, size_t data_len,
                         void *payload);

struct cl_sse {
    struct cl_ndjson lines; /* the line splitter, bounded by the same max */
    struct al_buf data;     /* the data of the event being read */
    char id[64];
    char event[64];
    int has_data;
    size_t max;
    cl_sse_fn fn;
    void *payload;
};

/* Initialises a parser delivering events to `fn`; an event (all its lines)
 * may be at most `max` bytes. */
void cl_sse_init(struct cl_sse *p, size_t max, cl_sse_fn fn, void *payload);
void cl_sse_free(struct cl_sse *p);

/* Feeds `len` bytes. Returns 0, AL_ETOOBIG when an event or a line passes
 * the limit, AL_EINVAL for a NUL byte or an over-long id or event name, or
 * what the callback returned. Comment lines (":...") are ignored. */
int cl_sse_feed(struct cl_sse *p, const char *data, size_t len);

#endif
