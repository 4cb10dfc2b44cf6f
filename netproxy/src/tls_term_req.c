/* Request heads of TLS-terminated tunnels: parse, check, rewrite. Pure
 * functions over bounded input (fuzzed: tests/fuzz/netproxy/
 * fuzz_tls_term_request.c). */
#include "tls_term.h"

#include "airlock/error.h"
#include "http_parse.h"
#include "reqrule.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void np_tt_req_init(struct np_tt_req *r)
{
    memset(r, 0, sizeof(*r));
    al_buf_init(&r->head, NP_HTTP_HEAD_MAX + AL_CRED_VALUE_MAX * 4);
}

void np_tt_req_free(struct np_tt_req *r)
{
    al_buf_wipe_free(&r->head); /* may hold real values */
}

/* Resets `r` for the next request, keeping the buffer's storage. */
static void req_reset(struct np_tt_req *r)
{
    struct al_buf keep = r->head;
    memset(r, 0, sizeof(*r));
    r->head = keep;
    if (r->head.ptr)
        memset(r->head.ptr, 0, r->head.len);
    al_buf_reset(&r->head);
}

static void refuse(struct np_tt_req *r, int status, const char *error, const char *reason,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void refuse(struct np_tt_req *r, int status, const char *error, const char *reason,
                   const char *fmt, ...)
{
    va_list ap;
    r->status = status;
    r->error = error;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
}

void np_tt_cred_refusal(struct np_tt_req *r, const struct al_credset *set, size_t culprit,
                        const char *host)
{
    char hosts[256] = "";
    size_t off = 0;
    const struct al_cred *c = &set->v[culprit];

    for (size_t i = 0; i < c->inject_hosts.len && off < sizeof(hosts); i++) {
        int n = snprintf(hosts + off, sizeof(hosts) - off, "%s%s", i ? ", " : "",
                         c->inject_hosts.items[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    snprintf(r->credential, sizeof(r->credential), "%s", c->name);
    refuse(r, 403, "credential-not-allowed-here", "credential-not-allowed-here",
           "airlock: credential %s is not allowed for %s (its hosts: %s)", c->name, host,
           hosts[0] ? hosts : "none");
}

void np_tt_cred_names(char *out, size_t cap, const struct al_credset *set, uint64_t used)
{
    size_t off = 0;

    out[0] = '\0';
    for (size_t i = 0; set && i < set->len && i < AL_CRED_MAX && off < cap; i++) {
        if (!(used & ((uint64_t)1 << i)))
            continue;
        int n = snprintf(out + off, cap - off, "%s%s", off ? "," : "", set->v[i].name);
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

/* Media types whose bodies get sentinels replaced (decision 4). */
static bool body_is_substituted(const char *v, size_t len)
{
    size_t end = 0;
    while (end < len && v[end] != ';' && v[end] != ' ' && v[end] != '\t')
        end++;
    if ((end == 16 && strncasecmp(v, "application/json", 16) == 0) ||
        (end == 33 && strncasecmp(v, "application/x-www-form-urlencoded", 33) == 0))
        return true;
    /* application/<anything>+json */
    return end > 17 && strncasecmp(v, "application/", 12) == 0 &&
           strncasecmp(v + end - 5, "+json", 5) == 0;
}

/* Whether header `h` is left out because the response must come back
 * uncompressed: to a host where a credential may be put back, an echo of the
 * real value inside gzip (or any other coding) would pass the re-masker,
 * which sees only bytes. Accept-Encoding is replaced by "identity" and TE
 * (transfer codings) dropped. */
static bool coding_header(const char *buf, const struct np_http_header *h)
{
    return np_http_header_is(buf, h, "accept-encoding") || np_http_header_is(buf, h, "te");
}

/* Whether the Host header names the tunnel's host (and port, if written). */
static bool host_matches(const struct np_tt_ctx *ctx, const struct np_http_request *rq)
{
    char norm[NP_HOST_MAX];
    struct al_addr ip;

    if (rq->port && rq->port != ctx->port)
        return false;
    if (al_addr_parse(&ip, rq->host, strlen(rq->host)) == 0) {
        al_addr_format(&ip, norm, sizeof(norm));
        return ctx->host_is_ip && strcmp(norm, ctx->host) == 0;
    }
    return !ctx->host_is_ip && np_host_normalize(norm, rq->host, strlen(rq->host)) == 0 &&
           strcmp(norm, ctx->host) == 0;
}

int np_tt_request_process(const struct np_tt_ctx *ctx, const char *buf, size_t len,
                          struct np_tt_req *out)
{
    struct np_http_request *rq = malloc(sizeof(*rq));
    struct al_buf pre;
    char *norm = NULL;
    size_t plen = 0;
    int n, ret;

    if (!rq)
        return AL_ENOMEM;
    req_reset(out);
    al_buf_init(&pre, NP_HTTP_HEAD_MAX + NP_PATH_MAX + 512);
    n = np_http_parse_origin_request(rq, buf, len);
    if (n == 0) {
        ret = 0;
        goto out;
    }
    if (n < 0) {
        out->head_len = len;
        refuse(out, rq->status, "bad-request", "bad-request", "airlock: bad request: %s",
               rq->error);
        ret = len ? (int)len : 1;
        goto out;
    }
    ret = n;
    out->head_len = (size_t)n;
    snprintf(out->method, sizeof(out->method), "%.*s", (int)rq->method.len, buf + rq->method.off);
    const char *target = buf + rq->path.off;
    size_t tlen = rq->path.len;
    size_t qpos = 0;
    while (qpos < tlen && target[qpos] != '?')
        qpos++;
    snprintf(out->path, sizeof(out->path), "%.*s", (int)qpos, target);
    if (rq->host[0] && !host_matches(ctx, rq)) {
        refuse(out, 421, "host-mismatch", "host-mismatch",
               "airlock: the Host header does not name %s, the host this connection was "
               "opened for",
               ctx->host);
        goto out;
    }

    /* request rules, on the normalised target (decision 10) */
    bool has_rules = ctx->pol && np_reqrules_has_host(ctx->pol, ctx->host);
    if (!(norm = malloc(NP_PATH_MAX))) {
        ret = AL_ENOMEM;
        goto out;
    }
    if (np_path_normalise(target, tlen, norm, NP_PATH_MAX, &plen) < 0) {
        if (has_rules) {
            refuse(out, 400, "bad-path", "bad-path", "airlock: bad request path: %s",
                   al_error_last());
            goto out;
        }
        norm[0] = '\0';
    } else {
        snprintf(out->path, sizeof(out->path), "%.*s", (int)plen, norm);
    }
    if (has_rules) {
        char why[sizeof(out->why)];
        enum np_rules_verdict v =
            np_reqrules_check(ctx->pol, ctx->host, out->method, norm, plen, why, sizeof(why));
        if (v == NP_RULES_MISS) {
            if (!ctx->pol->report_only) {
                refuse(out, 403, "blocked-by-request-rule", "blocked-by-request-rule",
                       "airlock: %.600s", why);
                goto out;
            }
            out->would_deny = true; /* reportOnly: logged, let through */
            snprintf(out->reason, sizeof(out->reason), "blocked-by-request-rule");
            snprintf(out->why, sizeof(out->why), "airlock: %.600s", why);
        } else if (v == NP_RULES_MATCH) {
            snprintf(out->rule, sizeof(out->rule), "%.159s", why);
        }
    }

    bool have_creds = ctx->creds && ctx->creds->len > 0;
    out->upgrade = rq->upgrade;
    if (rq->upgrade && (have_creds || has_rules)) {
        refuse(out, 403, "upgrade-not-inspected", "upgrade-not-inspected",
               "airlock: %s cannot be inspected after an Upgrade (masked credentials or request "
               "rules apply), so it is refused",
               ctx->host);
        goto out;
    }

    out->has_body = rq->chunked || (rq->has_content_length && rq->content_length > 0);
    out->chunked = rq->chunked;
    out->content_length = rq->has_content_length ? rq->content_length : 0;
    out->close_after = rq->conn_close;
    out->head_method = strcmp(out->method, "HEAD") == 0;
    for (size_t i = 0; i < rq->nheaders; i++)
        if (np_http_header_is(buf, &rq->headers[i], "content-type"))
            out->body_subst =
                body_is_substituted(buf + rq->headers[i].value.off, rq->headers[i].value.len);
    out->body_subst = out->body_subst && out->has_body && have_creds;
    /* a body whose length may change is buffered and sent with a new
     * Content-Length (decision 6): its framing headers are left out here */
    out->rebuffer = out->body_subst && !al_credset_same_length(ctx->creds, ctx->inject_ok);
    /* and with credentials in the session, a body of known length up to
     * the limit is read whole before anything goes upstream, so a request
     * refused for a sentinel in its body never reaches the host at all
     * (longer or chunked bodies are streamed behind their head) */
    if (have_creds && !rq->chunked && rq->has_content_length && rq->content_length > 0 &&
        rq->content_length <= NP_TT_BODY_MAX)
        out->rebuffer = true;

    /* the head sent upstream: the normalised target for a host with rules */
    int err = 0;
    err |= al_buf_append(&pre, buf + rq->method.off, rq->method.len);
    err |= al_buf_puts(&pre, " ");
    if (has_rules)
        err |= al_buf_puts(&pre, norm);
    else
        err |= al_buf_append(&pre, target, tlen);
    err |= al_buf_printf(&pre, " HTTP/1.%d\r\n", rq->minor);
    if (!rq->host[0])
        err |= al_buf_printf(&pre, "Host: %s%s%s\r\n",
                             ctx->host_is_ip && strchr(ctx->host, ':') ? "[" : "", ctx->host,
                             ctx->host_is_ip && strchr(ctx->host, ':') ? "]" : "");
    bool identity = have_creds && ctx->inject_ok != 0;
    if (identity)
        err |= al_buf_puts(&pre, "Accept-Encoding: identity\r\n");
    for (size_t i = 0; i < rq->nheaders; i++) {
        const struct np_http_header *h = &rq->headers[i];
        if (np_http_header_is(buf, h, "proxy-connection") || (identity && coding_header(buf, h)))
            continue;
        if (np_http_header_is(buf, h, "expect") && h->value.len == 12 &&
            strncasecmp(buf + h->value.off, "100-continue", 12) == 0) {
            /* answered by the proxy itself (np_tt_req.expect_continue) */
            out->expect_continue = out->has_body;
            continue;
        }
        if (out->rebuffer && (np_http_header_is(buf, h, "content-length") ||
                              np_http_header_is(buf, h, "transfer-encoding")))
            continue;
        err |= al_buf_append(&pre, buf + h->name.off, h->name.len);
        err |= al_buf_puts(&pre, ": ");
        err |= al_buf_append(&pre, buf + h->value.off, h->value.len);
        err |= al_buf_puts(&pre, "\r\n");
    }
    err |= al_buf_puts(&pre, "\r\n");
    if (err) {
        refuse(out, 431, "bad-request", "bad-request", "airlock: request head too large");
        goto out;
    }

    /* credentials (decisions 3-4): replaced for inject hosts, else refused */
    if (have_creds) {
        size_t culprit = 0;
        err = al_cred_subst_head(ctx->creds, ctx->inject_ok, pre.ptr, pre.len, &out->head,
                                 &out->used, &culprit);
        if (err == AL_EPERM) {
            np_tt_cred_refusal(out, ctx->creds, culprit, ctx->host);
            goto out;
        }
        if (err < 0) {
            ret = err == AL_ENOMEM ? AL_ENOMEM : ret;
            if (err != AL_ENOMEM)
                refuse(out, 431, "bad-request", "bad-request", "airlock: request head too large");
            goto out;
        }
        np_tt_cred_names(out->credential, sizeof(out->credential), ctx->creds, out->used);
    } else if (al_buf_append(&out->head, pre.ptr, pre.len) < 0) {
        ret = AL_ENOMEM;
    }
out:
    free(norm);
    free(rq);
    al_buf_free(&pre);
    return ret;
}
