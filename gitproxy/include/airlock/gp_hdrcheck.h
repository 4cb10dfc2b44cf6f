/* Request hygiene: the grammar of every value the git proxy takes from a
 * client's request and puts into the request it sends upstream with the
 * real credential (the repository path and the Git-Protocol, Accept,
 * Content-Type and Content-Encoding headers). A value outside its grammar
 * is refused, never cleaned up: the proxy answers 400 (404 for a path).
 *
 * Pure functions on (pointer, length): no I/O, no locale, no allocation;
 * callable from any process. Errors are AL_EINVAL with al_error_last()
 * naming the header, safe to show the client. */
#ifndef AIRLOCK_GP_HDRCHECK_H
#define AIRLOCK_GP_HDRCHECK_H

#include <stddef.h>

#include "airlock/gp_http_head.h"

/* The four requests of git's smart HTTP protocol. */
enum gp_endpoint {
    GP_EP_INFO_REFS_UPLOAD,  /* GET info/refs?service=git-upload-pack */
    GP_EP_INFO_REFS_RECEIVE, /* GET info/refs?service=git-receive-pack */
    GP_EP_UPLOAD_PACK,       /* POST git-upload-pack */
    GP_EP_RECEIVE_PACK,      /* POST git-receive-pack */
};

/* What follows "<host>/<owner>/<name>.git/" in a request path. */
enum gp_route_rest {
    GP_REST_INFO_REFS,
    GP_REST_UPLOAD_PACK,
    GP_REST_RECEIVE_PACK,
};

#define GP_HOST_MAX         255
#define GP_SEGMENT_MAX      127
#define GP_GIT_PROTOCOL_MAX 255

/* A request path split into its parts; every part is NUL-terminated and
 * made only of [A-Za-z0-9._-] (the host also ':'), not starting with '.'.
 * The host is lower-cased (DNS names fold case); owner and name keep the
 * client's spelling. */
struct gp_route {
    char host[GP_HOST_MAX + 1];
    char owner[GP_SEGMENT_MAX + 1];
    char name[GP_SEGMENT_MAX + 1]; /* without ".git" */
    enum gp_route_rest rest;
};

/* Parses path[0..len), "/<host>/<owner>/<name>.git/<rest>" with rest one of
 * "info/refs", "git-upload-pack", "git-receive-pack". No decoding: a '%'
 * (or any byte outside the sets above) refuses the path, so percent-encoded
 * and non-ASCII names never match a token's repository. 0, AL_EINVAL (not
 * such a path) or AL_ENOTFOUND (a repository path with another rest). */
int gp_route_parse(struct gp_route *out, const char *path, size_t len);

/* Parses repo[0..len), a canonical "host/owner/name" (a token's claim), into
 * out->host (lower-cased), owner and name under the same rules; out->rest is
 * left as it was. 0 or AL_EINVAL. */
int gp_repo_parse(struct gp_route *out, const char *repo, size_t len);

/* Git-Protocol: items separated by ':', each "key" or "key=value" (git's
 * GIT_PROTOCOL: keys with optional values), key [A-Za-z0-9][A-Za-z0-9._-]*,
 * value [A-Za-z0-9._,+-]*; "version" at most once and then "0", "1" or "2";
 * 1 to GP_GIT_PROTOCOL_MAX bytes. Git 2.39 sends "version=1" or "version=2"
 * (nothing for v0). 0 or AL_EINVAL. */
int gp_hdr_git_protocol_check(const char *v, size_t len);

/* Accept: a media type git or libgit2 sends for the endpoint, ASCII case
 * aside: for GET info/refs the wildcard (star slash star: git, curl's
 * default) or "application/x-git-<service>-advertisement" (libgit2); for a
 * POST "application/x-git-<service>-result" or the wildcard. len 0 (absent)
 * is fine. 0 or AL_EINVAL. */
int gp_hdr_accept_check(const char *v, size_t len, enum gp_endpoint ep);

/* Content-Type: a POST's is "application/x-git-<service>-request" (ASCII
 * case aside) and required; a GET has none. 0 or AL_EINVAL. */
int gp_hdr_content_type_check(const char *v, size_t len, enum gp_endpoint ep);

/* Content-Encoding: absent, "identity" or "gzip" (ASCII case aside); sets
 * *out_gzip. 0 or AL_EINVAL. */
int gp_hdr_content_encoding_check(int *out_gzip, const char *v, size_t len);

/* True when s[0..len) holds only bytes 0x20..0x7e: what may go into a line
 * of an upstream request. */
int gp_hdr_printable(const char *s, size_t len);

/* The fixed values that go upstream for the endpoint: its path after
 * "<name>.git/" (with the query), Accept, and Content-Type (NULL for GET). */
const char *gp_endpoint_path(enum gp_endpoint ep);
const char *gp_endpoint_accept(enum gp_endpoint ep);
const char *gp_endpoint_content_type(enum gp_endpoint ep);

/* The headers a request may carry upstream, each either a fixed string of
 * the endpoint or a copy of a client value that passed its check. */
struct gp_upstream_headers {
    const char *content_type;                   /* fixed; NULL for GET */
    const char *accept;                         /* fixed */
    char git_protocol[GP_GIT_PROTOCOL_MAX + 1]; /* checked copy, or "" */
    int gzip;                                   /* POST body is gzip-encoded */
};

/* Checks the four headers of `req` for endpoint `ep` and fills `out` with
 * what may go upstream. 0 or AL_EINVAL (al_error_last() names the header). */
int gp_hdrcheck_request(struct gp_upstream_headers *out, const struct gp_http_req *req,
                        enum gp_endpoint ep);

#endif
