/* Fuzzes what the `airlock session` client parses from airlockd: the input
 * is fed in chunks (sizes taken from the first byte) to the NDJSON splitter,
 * each line to the exec event parser, and the same bytes to the SSE parser.
 * Small limits so the too-long paths are reached. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "client_stream.h"

static int on_line(const char *line, size_t len, void *payload)
{
    struct cl_exec_event ev;
    if (line[len] != '\0')
        __builtin_trap();
    if (cl_exec_event_parse(&ev, line, len) == 0) {
        (void)cl_exec_event_status(&ev);
        cl_exec_event_free(&ev);
    }
    return 0;
}

static int on_event(const char *id, const char *event, const char *data, size_t len, void *payload)
{
    if (data[len] != '\0' || strlen(id) >= 64 || strlen(event) >= 64)
        __builtin_trap();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    struct cl_ndjson nd;
    struct cl_sse sse;
    cl_ndjson_init(&nd, 4096);
    cl_sse_init(&sse, 4096, on_event, NULL);
    int nd_err = 0, sse_err = 0;
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        if (nd_err == 0)
            nd_err = cl_ndjson_feed(&nd, in + i, n, on_line, NULL);
        if (sse_err == 0)
            sse_err = cl_sse_feed(&sse, in + i, n);
    }
    (void)cl_ndjson_finish(&nd);
    cl_ndjson_free(&nd);
    cl_sse_free(&sse);
    return 0;
}
