/* SOCKS5 side of a connection: greeting, request, replies. */
#include "internal.h"

#include "airlock/error.h"
#include "socks5.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void on_greeting(struct np_conn *c)
{
    bool noauth;
    int n = np_socks5_parse_greeting((const uint8_t *)c->in, c->in_len, &noauth);

    if (n == 0)
        return;
    if (n < 0) {
        np_conn_close(c);
        return;
    }
    np_conn_consume(c, (size_t)n);
    if (!noauth) {
        /* only "no authentication" is offered; 0xFF: no acceptable method */
        np_log_begin(c, "socks5");
        c->log.decision = "deny";
        snprintf(c->log.reason, sizeof(c->log.reason), "bad-request");
        snprintf(c->log.detail, sizeof(c->log.detail), "client offered no no-auth method");
        np_log_finish(c);
        (void)al_buf_append(&c->down.pend, "\x05\xff", 2);
        c->state = ST_LINGER;
        c->deadline_ms = c->proxy->now_ms + NP_LINGER_MS;
        return;
    }
    (void)al_buf_append(&c->down.pend, "\x05\x00", 2);
    c->state = ST_SOCKS_REQ;
}

static void on_request(struct np_conn *c)
{
    struct np_socks5_request r;
    struct al_addr ip;
    int n = np_socks5_parse_request(&r, (const uint8_t *)c->in, c->in_len);

    if (n == 0)
        return;
    np_log_begin(c, "socks5");
    c->deadline_ms = 0;
    if (n < 0) {
        np_conn_refuse(c, 400, "bad-request", r.reply, "airlock: refused SOCKS5 request (reply %u)",
                       r.reply);
        return;
    }
    np_conn_consume(c, (size_t)n);
    c->is_connect = true;
    c->port = r.port;
    c->host_is_ip = false;
    if (r.is_ip) {
        c->host_is_ip = true;
        c->host_ip = r.addr;
        snprintf(c->host, sizeof(c->host), "%s", r.host);
    } else {
        int rc = al_addr_parse(&ip, r.host, strlen(r.host));
        if (rc == 0) {
            /* a numeric "domain" is the address it spells, never a name */
            c->host_is_ip = true;
            c->host_ip = ip;
            al_addr_format(&ip, c->host, sizeof(c->host));
        } else if (rc != AL_ENOTFOUND || np_host_normalize(c->host, r.host, strlen(r.host)) < 0) {
            np_conn_refuse(c, 400, "bad-request", 0x02,
                           "airlock: invalid host name in SOCKS5 request");
            return;
        }
    }
    np_conn_decide(c);
}

void np_socks_on_data(struct np_conn *c)
{
    if (c->state == ST_SOCKS_GREET)
        on_greeting(c);
    if (!c->dead && c->state == ST_SOCKS_REQ && c->in_len)
        on_request(c);
}

void np_socks_on_connected(struct np_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct al_addr bound;
    uint16_t port = 0;
    uint8_t rep[32];

    memset(&bound, 0, sizeof(bound));
    bound.family = AF_INET;
    if (getsockname(c->ufd, (struct sockaddr *)&ss, &len) == 0 &&
        al_addr_from_sockaddr(&bound, (struct sockaddr *)&ss) == 0)
        port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                             : ((struct sockaddr_in6 *)&ss)->sin6_port);
    size_t n = np_socks5_reply(rep, NP_SOCKS5_SUCCEEDED, &bound, port);
    if (al_buf_append(&c->down.pend, rep, n) < 0)
        np_conn_close(c);
}
