/* libFuzzer: the request hygiene checks (gp_hdrcheck.h). The first byte
 * picks the endpoint; the rest is a request path, a repository name and each
 * header value in turn, and also a whole request head whose checked headers
 * then go through gp_hdrcheck_request(). Whatever is accepted must be
 * printable, since it may go upstream. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/gp_hdrcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must_be_printable(const char *s)
{
    if (s && !gp_hdr_printable(s, strlen(s)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum gp_endpoint ep = (enum gp_endpoint)(data[0] % 4);
    const char *v = (const char *)data + 1;
    size_t len = size - 1;
    struct gp_route r = {0};
    if (gp_route_parse(&r, v, len) == 0) {
        must_be_printable(r.host);
        must_be_printable(r.owner);
        must_be_printable(r.name);
    }
    if (gp_repo_parse(&r, v, len) == 0)
        must_be_printable(r.name);
    if (gp_hdr_git_protocol_check(v, len) == 0 && !gp_hdr_printable(v, len))
        abort();
    if (gp_hdr_accept_check(v, len, ep) == 0 && !gp_hdr_printable(v, len))
        abort();
    (void)gp_hdr_content_type_check(v, len, ep);
    int gzip;
    (void)gp_hdr_content_encoding_check(&gzip, v, len);
    struct gp_http_req req;
    struct gp_upstream_headers up;
    if (gp_http_head_parse(&req, v, len) == 0 && gp_hdrcheck_request(&up, &req, ep) == 0) {
        must_be_printable(up.git_protocol);
        must_be_printable(up.accept);
        must_be_printable(up.content_type);
    }
    return 0;
}
