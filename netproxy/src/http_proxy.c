/* HTTP proxy side of a connection: request heads (absolute-form and
 * CONNECT), the rewritten head sent upstream, and request bodies. */
#include "internal.h"

#include "airlock/error.h"
#include "reqrule.h"
#include "socks5.h"

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
    struct al_addr ip;
    int rc = al_addr_parse(&ip, host, strlen(host));

    c->host_is_ip = false;
    if (rc == 0) {
        c->host_is_ip = true;
        c->host_ip = ip;
        al_addr_format(&ip, c->host, sizeof(c->host));
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
        /* for the log: the method and the path as sent, without the query
         * (the normalised path replaces it for a host with request rules) */
        const char *path = c->in + r.path.off;
        size_t plen = 0;
        while (plen < r.path.len && path[plen] != '?')
            plen++;
        snprintf(c->log.method, sizeof(c->log.method), "%.*s", (int)r.method.len,
                 c->in + r.method.off);
        snprintf(c->log.path, sizeof(c->log.path), "%.*s", (int)plen, path);
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

/* Copies the NUL-terminated src into dst (cap > 0 bytes), cut to fit. */
static void str_trunc(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* A request-rule refusal, or with reportOnly the note that it would have
 * been one (the first reason a request would have been denied is kept).
 * Returns -1 when refused, 0 to go on. */
static int rule_deny(struct np_conn *c, bool report_only, int status, const char *error,
                     const char *msg)
{
    if (!report_only) {
        np_conn_refuse(c, status, error, NP_SOCKS5_NOT_ALLOWED, "%s", msg);
        return -1;
    }
    if (!c->log.would_deny) {
        c->log.would_deny = true;
        snprintf(c->log.reason, sizeof(c->log.reason), "%s", error);
        snprintf(c->log.detail, sizeof(c->log.detail), "reportOnly: %s", msg);
    }
    return 0;
}

/* Whether `host` is covered by tlsTerminate.excludeDomains. */
static bool tls_excluded(const struct al_netpolicy *pol, const char *host)
{
    for (size_t i = 0; i < pol->tls_exclude.len; i++)
        if (np_domain_pattern_match(pol->tls_exclude.items[i], host))
            return true;
    return false;
}

/* Replaces the request target in the first line of c->fwd_head (between
 * `off` and `off + len`) by `target`. 0 or AL_ETOOBIG / AL_ENOMEM. */
static int head_set_target(struct np_conn *c, size_t off, size_t len, const char *target)
{
    struct al_buf h;
    int err = 0;

    al_buf_init(&h, NP_HTTP_HEAD_MAX + 512);
    err |= al_buf_append(&h, c->fwd_head.ptr, off);
    err |= al_buf_puts(&h, target);
    err |= al_buf_append(&h, c->fwd_head.ptr + off + len, c->fwd_head.len - off - len);
    if (err) {
        al_buf_free(&h);
        return AL_ETOOBIG;
    }
    al_buf_free(&c->fwd_head);
    c->fwd_head = h;
    return 0;
}

int np_http_request_rules(struct np_conn *c)
{
    struct np_proxy *p = c->proxy;
    struct np_session *s = c->session;
    const char *key = p->cfg.settings_key;
    char msg[640], why[512], method[64], norm[NP_PATH_MAX + 1];
    size_t path_len = 0;
    int rc = 0;

    pthread_mutex_lock(&p->lock);
    if (!s->has_policy || !np_reqrules_has_host(&s->pol, c->host)) {
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    bool report_only = s->pol.report_only != 0;
    if (c->kind == NP_SOCKS5 || c->is_connect) {
        /* a tunnel's requests can be checked only when it is terminated */
        bool checked = s->pol.tls_terminate && !tls_excluded(&s->pol, c->host);
        pthread_mutex_unlock(&p->lock);
        if (checked)
            return 0;
        snprintf(msg, sizeof(msg),
                 "airlock: %s has request rules (%s.requestRules), which a tunnel can only be "
                 "checked against with %s.tlsTerminate (and the host not in its "
                 "excludeDomains); tunnel refused",
                 c->host, key, key);
        snprintf(c->log.rule, sizeof(c->log.rule), "%s.requestRules", key);
        return rule_deny(c, report_only, 403, "blocked-by-request-rule", msg);
    }

    /* the first line of the head built for upstream: METHOD SP target SP HTTP/1.x */
    const char *h = c->fwd_head.ptr;
    const char *eol = memchr(h, '\r', c->fwd_head.len);
    const char *sp1 = eol ? memchr(h, ' ', (size_t)(eol - h)) : NULL;
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2) {
        pthread_mutex_unlock(&p->lock);
        np_conn_refuse(c, 400, "bad-request", 0, "airlock: bad request");
        return -1;
    }
    size_t mlen = (size_t)(sp1 - h);
    snprintf(method, sizeof(method), "%.*s", (int)(mlen < sizeof(method) ? mlen : 0), h);
    if (mlen >= sizeof(method))
        snprintf(method, sizeof(method), "(too-long)");
    const char *target = sp1 + 1;
    size_t tlen = (size_t)(sp2 - target);

    if (np_path_normalise(target, tlen, norm, sizeof(norm), &path_len) < 0) {
        pthread_mutex_unlock(&p->lock);
        snprintf(msg, sizeof(msg), "airlock: bad request path for %s (it has request rules): %s",
                 c->host, al_error_last());
        /* reportOnly: forwarded as sent */
        return rule_deny(c, report_only, 400, "bad-path", msg);
    }
    enum np_rules_verdict v =
        np_reqrules_check(&s->pol, c->host, method, norm, path_len, why, sizeof(why));
    pthread_mutex_unlock(&p->lock);
    snprintf(c->log.path, sizeof(c->log.path), "%.*s", (int)path_len, norm);
    if (v == NP_RULES_MATCH) {
        str_trunc(c->log.rule, sizeof(c->log.rule), why);
    } else if (v == NP_RULES_MISS) {
        /* the log's rule: the host's rules, the part of why in parentheses */
        const char *rules = strstr(why, " matches no request rule for ");
        rules = rules ? strstr(rules, " (") : NULL;
        str_trunc(c->log.rule, sizeof(c->log.rule), rules ? rules + 2 : why);
        size_t rl = strlen(c->log.rule);
        if (rl && c->log.rule[rl - 1] == ')')
            c->log.rule[rl - 1] = '\0';
        snprintf(msg, sizeof(msg), "airlock: %s", why);
        if (rule_deny(c, report_only, 403, "blocked-by-request-rule", msg) < 0)
            return -1;
    }
    if (c->upgrade) {
        /* the bytes after an Upgrade are relayed raw: no request in them
         * would be checked */
        snprintf(msg, sizeof(msg),
                 "airlock: %s has request rules; an Upgrade request is refused because what "
                 "follows it could not be checked",
                 c->host);
        if (rule_deny(c, report_only, 403, "upgrade-not-inspected", msg) < 0)
            return -1;
    }
    /* what was checked is what goes upstream */
    if ((rc = head_set_target(c, (size_t)(target - h), tlen, norm)) < 0) {
        np_conn_refuse(c, 431, "bad-request", 0, "airlock: request head too large");
        return -1;
    }
    return 0;
}
