/* The web console's files (docs/console.md): looked up in the table built
 * into the program, served with a strict Content-Security-Policy. */
#include "airlockd/api/console.h"

#include "request.h"

#include <string.h>

/* What every console reply carries. The console is plain files: scripts
 * and styles only from /console/ itself (no inline code, no eval), data
 * only from this server (fetch, WebSocket), never framed. */
#define CONSOLE_CSP                                                                                \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "                    \
    "form-action 'self'; frame-ancestors 'none'"

/* Sets the headers of every console reply. */
static void console_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Content-Security-Policy", CONSOLE_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
}

/* A reply with no body but headers (redirect, 304). */
static enum MHD_Result reply_empty(struct ald_req *r, int status, const char *name,
                                   const char *value, const char *etag)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    console_headers(resp);
    if (name)
        MHD_add_response_header(resp, name, value);
    if (etag)
        MHD_add_response_header(resp, "ETag", etag);
    return ald_reply(r, status, resp);
}

/* Whether an If-None-Match header lists `etag` (or is "*"). */
static int etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return 0;
    size_t n = strlen(etag);
    for (const char *p = inm; *p;) {
        p += strspn(p, " \t,");
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        size_t l = strcspn(p, " \t,");
        if ((l == 1 && p[0] == '*') || (l == n && strncmp(p, etag, n) == 0))
            return 1;
        p += l;
    }
    return 0;
}

enum MHD_Result ald_route_console(struct ald_req *r)
{
    const char *uri = r->raw_uri ? r->raw_uri : "/";
    size_t plen = strcspn(uri, "?");
    static const char prefix[] = "/console/";
    if (plen < sizeof(prefix) - 1) /* "/console": the files name each other relatively */
        return reply_empty(r, 301, "Location", "/console/", NULL);
    const char *rest = uri + sizeof(prefix) - 1;
    const struct ald_console_asset *a = ald_console_find(rest, plen - (sizeof(prefix) - 1));
    if (!a)
        return ald_reply_error(r, 404, "not_found", NULL, "no such console file");
    if (etag_matches(ald_req_header(r, "If-None-Match"), a->etag))
        return reply_empty(r, 304, NULL, NULL, a->etag);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    console_headers(resp);
    MHD_add_response_header(resp, "Content-Type", a->type);
    MHD_add_response_header(resp, "ETag", a->etag);
    return ald_reply(r, 200, resp);
}
