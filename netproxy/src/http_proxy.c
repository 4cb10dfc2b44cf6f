/* HTTP proxy side of a connection: request heads (absolute-form and
 * CONNECT), the rewritten head sent upstream, and request bodies. */
#include "internal.h"

#include "airlock/error.h"

#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/* Builds the origin-form head for upstream: request line, Host from the
 * target, then the client's headers minus Host and every Proxy-* header. */
static int build_forward_head(struct np_conn *c, const char *buf, const struct np_http_request *r)
{
    struct al_buf *h = &c->fwd_head;
    const char *path = buf + r->path.off;
    int err = 0;

    al_buf_reset(h);
    err |= al_buf_append(h, buf + r->method.off, r->method.len);
    err |= al_buf_puts(h, " ");
    if (r->path.len == 0 || path[0] == '?')
        err |= al_buf_puts(h, "/");
    err |= al_buf_append(h, path, r->path.len);
    err |= al_buf_printf(h, " HTTP/1.%d\r\nHost: %s%s%s", r->minor, r->host_is_v6 ? "[" : "",
                         r->host, r->host_is_v6 ? "]" : "");
    if (r->port != 80)
        err |= al_buf_printf(h, ":%u", r->port);
    err |= al_buf_puts(h, "\r\n");
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct np_http_header *hd = &r->headers[i];
        if (np_http_header_is(buf, hd, "host"))
            continue;
        /* Proxy-Authorization, Proxy-Connection, ...: meant for us only */
        if (hd->name.len >= 6 && strncasecmp(buf + hd->name.off, "proxy-", 6) == 0)
            continue;
        err |= al_buf_append(h, buf + hd->name.off, hd->name.len);
        err |= al_buf_puts(h, ": ");
        err |= al_buf_append(h, buf + hd->value.off, hd->value.len);
        err |= al_buf_puts(h, "\r\n");
    }
    err |= al_buf_puts(h, "\r\n");
    return err ? AL_ETOOBIG : 0;
}

/* Sets c->host from the wire form: IP literals (every inet_aton form
 * included) become their canonical text; names are normalised. 0 or AL_EINVAL. */
static int set_host(struct np_conn *c, const char *host)
{
    struct np_addr ip;
    int rc = np_addr_parse(&ip, host, strlen(host));

    c->host_is_ip = false;
    if (rc == 0) {
        c->host_is_ip = true;
        c->host_ip = ip;
        np_addr_format(&ip, c->host, sizeof(c->host));
        return 0;
    }
    if (rc != AL_ENOTFOUND)
        return AL_EINVAL;
    return np_host_normalize(c->host, host, strlen(host));
}

void np_http_on_data(struct np_conn *c)
{
    struct np_http_request r;
    int n = np_http_parse_request(&r, c->in, c->in_len);

    if (n == 0) {
        if (!c->deadline_ms)
            c->deadline_ms = c->proxy->now_ms + c->proxy->cfg.header_timeout_ms;
        return;
    }
    np_log_begin(c, n > 0 && r.connect ? "connect" : "http");
    c->deadline_ms = 0;
    if (n < 0) {
        np_conn_refuse(c, r.status, "bad-request", 0, "airlock: bad request: %s", r.error);
        return;
    }
    if (set_host(c, r.host) < 0) {
        snprintf(c->log.host, sizeof(c->log.host), "%s", "-");
        np_conn_refuse(c, 400, "bad-request", 0, "airlock: bad request: invalid host name");
        return;
    }
    c->port = r.port;
    c->is_connect = r.connect;
    if (!r.connect) {
        if (build_forward_head(c, c->in, &r) < 0) {
            np_conn_refuse(c, 431, "bad-request", 0, "airlock: request head too large");
            return;
        }
        c->body_left = r.has_content_length ? r.content_length : 0;
        c->body_chunked = r.chunked;
        np_chunked_init(&c->chunked);
        c->close_after = r.conn_close;
        c->upgrade = r.upgrade;
        np_plain_creds_free(c); /* the previous request's */
        if (np_plain_creds_head(c) < 0)
            return;
    }
    np_conn_consume(c, (size_t)n);
    np_conn_decide(c);
}

void np_http_on_connected(struct np_conn *c)
{
    if (al_buf_append(&c->up.pend, c->fwd_head.ptr, c->fwd_head.len) < 0) {
        np_conn_close(c);
        return;
    }
    c->state = (c->body_left || c->body_chunked) ? ST_HTTP_BODY : ST_HEAD;
    c->deadline_ms = 0;
    if (c->upgrade && c->state == ST_HEAD) {
        /* Upgrade (websocket, h2c): whatever follows belongs to this
         * upstream, which the policy allowed, so it is relayed raw like a
         * tunnel; it can reach no other host. */
        if (np_conn_enter_relay(c) < 0)
            return;
        c->up_reusable = false;
    }
    if (c->state == ST_HTTP_BODY)
        np_http_body_pump(c);
}

void np_http_body_pump(struct np_conn *c)
{
    size_t take;
    bool done;

    if (c->in_len == 0 || c->up.pend_off < c->up.pend.len)
        return;
    if (c->body_chunked) {
        int rc = np_chunked_feed(&c->chunked, c->in, c->in_len, &take);
        if (rc < 0) {
            np_conn_refuse(c, 400, "bad-request", 0,
                           "airlock: bad request: malformed chunked body");
            return;
        }
        done = rc == 1;
    } else {
        take = c->in_len < c->body_left ? c->in_len : (size_t)c->body_left;
        c->body_left -= take;
        done = c->body_left == 0;
    }
    if (np_plain_creds_body(c, c->in, take) < 0)
        return;
    if (al_buf_append(&c->up.pend, c->in, take) < 0) {
        np_conn_close(c);
        return;
    }
    np_conn_consume(c, take);
    if (done)
        c->state = ST_HEAD;
}
