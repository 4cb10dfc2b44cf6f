/* The decision log: one JSON object per line for every request or tunnel
 * (after smokescreen's canonical proxy decision line). */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void np_log_begin(struct np_conn *c, const char *proxy)
{
    if (c->log.active)
        np_log_finish(c);
    memset(&c->log, 0, sizeof(c->log));
    c->log.active = true;
    c->log.proxy = proxy;
    c->log.t_start = np_now_us();
    c->log.up0 = c->up.bytes;
    c->log.down0 = c->down.bytes;
}

/* Appends `s` as a JSON string (quoted, escaped). */
static void json_str(struct al_buf *b, const char *s)
{
    al_buf_puts(b, "\"");
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            al_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            al_buf_printf(b, "\\u%04x", ch);
        else
            al_buf_append(b, s, 1);
    }
    al_buf_puts(b, "\"");
}

static void json_field(struct al_buf *b, const char *key, const char *val)
{
    al_buf_printf(b, ",\"%s\":", key);
    if (val && *val)
        json_str(b, val);
    else
        al_buf_puts(b, "null");
}

void np_log_finish(struct np_conn *c)
{
    struct np_logrec *l = &c->log;

    if (!l->active)
        return;
    l->active = false;
    np_log_write(c->proxy, c->session->id, c->client, l, c->up.bytes - l->up0,
                 c->down.bytes - l->down0);
}

void np_log_write(struct np_proxy *p, const char *session_id, const char *client,
                  const struct np_logrec *l, uint64_t bytes_up, uint64_t bytes_down)
{
    struct al_buf b;
    char ts[40];
    struct timespec now;
    struct tm tm;

    pthread_mutex_lock(&p->lock);
    np_decision_fn hook = p->decision_hook;
    void *payload = p->decision_payload;
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_lock(&p->log_lock);
    if (hook) {
        struct np_decision d = {
            .session_id = session_id,
            .client = client,
            .proxy = l->proxy ? l->proxy : "",
            .host = l->host,
            .port = l->port,
            .addr = l->addr,
            .addr_class = l->addr_class ? l->addr_class : "",
            .decision = l->decision ? l->decision : "abort",
            .reason = l->reason,
            .rule = l->rule,
            .detail = l->detail,
            .status = l->status,
            .method = l->method,
            .path = l->path,
            .credential = l->credential,
            .bytes_up = bytes_up,
            .bytes_down = bytes_down,
        };
        hook(&d, payload);
    }
    if (p->cfg.log_fd < 0)
        goto out;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    al_buf_init(&b, 8192);
    al_buf_printf(&b, "{\"ts\":\"%s.%03ldZ\"", ts, now.tv_nsec / 1000000);
    json_field(&b, "session", session_id);
    json_field(&b, "client", client);
    json_field(&b, "proxy", l->proxy);
    json_field(&b, "host", l->host);
    al_buf_printf(&b, ",\"port\":%u", l->port);
    json_field(&b, "addr", l->addr);
    if (l->addr_class)
        json_field(&b, "addr_class", l->addr_class);
    json_field(&b, "decision", l->decision ? l->decision : "abort");
    json_field(&b, "reason", l->reason);
    json_field(&b, "rule", l->rule);
    json_field(&b, "detail", l->detail);
    if (l->method[0]) {
        json_field(&b, "method", l->method);
        json_field(&b, "path", l->path);
        json_field(&b, "credential", l->credential);
    }
    al_buf_printf(&b, ",\"status\":%d", l->status);
    al_buf_printf(&b, ",\"dns_ms\":%.3f,\"connect_ms\":%.3f", (double)l->dns_us / 1000.0,
                  (double)l->connect_us / 1000.0);
    al_buf_printf(&b, ",\"bytes_up\":%llu,\"bytes_down\":%llu", (unsigned long long)bytes_up,
                  (unsigned long long)bytes_down);
    al_buf_printf(&b, ",\"duration_ms\":%.3f}\n", (double)(np_now_us() - l->t_start) / 1000.0);
    if (b.ptr && write(p->cfg.log_fd, b.ptr, b.len) < 0) {
        /* a full disk must not stop the proxy */
    }
    al_buf_free(&b);
out:
    pthread_mutex_unlock(&p->log_lock);
}
