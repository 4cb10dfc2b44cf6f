/* Connection lifecycle: accept, decide, resolve, dial, relay, refuse, close.
 *
 * Sockets are registered edge-triggered for both directions once; the
 * readiness bits (cr/cw/ur/uw) remember what the kernel said and are cleared
 * on EAGAIN, so np_conn_pump() only issues calls that can make progress.
 * Tunnels move bytes with splice(2) through one pipe per direction, created
 * when the direction first carries data. */
#include "internal.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "socks5.h"

#define EP_FLAGS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

static void dial_next(struct np_conn *c);
static void relay_start(struct np_conn *c, const struct np_listener *l);

static void set_deadline(struct np_conn *c, unsigned ms)
{
    c->deadline_ms = ms ? c->proxy->now_ms + ms : 0;
}

static void dir_init(struct np_dir *d)
{
    memset(d, 0, sizeof(*d));
    d->pipe[0] = d->pipe[1] = -1;
    al_buf_init(&d->pend, NP_PEND_MAX);
}

/* A direction holds a pipe only while bytes sit in it; empty pipes go back
 * to a proxy-wide pool. An idle tunnel thus costs two descriptors, not six. */
static int pipe_get(struct np_proxy *p, struct np_dir *d)
{
    if (p->n_pipes) {
        p->n_pipes--;
        d->pipe[0] = p->pipes[p->n_pipes][0];
        d->pipe[1] = p->pipes[p->n_pipes][1];
        return 0;
    }
    if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        d->pipe[0] = d->pipe[1] = -1;
        return AL_EIO;
    }
    /* bigger pipes: fewer splice calls per megabyte; failure is fine */
    (void)fcntl(d->pipe[1], F_SETPIPE_SZ, (int)NP_PIPE_SIZE);
    return 0;
}

static void pipe_put(struct np_proxy *p, struct np_dir *d)
{
    if (d->pipe[0] < 0)
        return;
    if (d->in_pipe == 0 && p->n_pipes < NP_PIPE_POOL) {
        if (p->n_pipes == p->cap_pipes) {
            size_t cap = p->cap_pipes ? p->cap_pipes * 2 : 64;
            int(*grown)[2] = realloc(p->pipes, cap * sizeof(*grown));
            if (grown) {
                p->pipes = grown;
                p->cap_pipes = cap;
            }
        }
        if (p->n_pipes < p->cap_pipes) {
            p->pipes[p->n_pipes][0] = d->pipe[0];
            p->pipes[p->n_pipes][1] = d->pipe[1];
            p->n_pipes++;
            d->pipe[0] = d->pipe[1] = -1;
            return;
        }
    }
    /* bytes still inside (discarded) or pool full */
    close(d->pipe[0]);
    close(d->pipe[1]);
    d->pipe[0] = d->pipe[1] = -1;
    d->in_pipe = 0;
}

void np_pipe_pool_free(struct np_proxy *p)
{
    for (size_t i = 0; i < p->n_pipes; i++) {
        close(p->pipes[i][0]);
        close(p->pipes[i][1]);
    }
    free(p->pipes);
    p->pipes = NULL;
    p->n_pipes = p->cap_pipes = 0;
}

static void dir_close_pipe(struct np_proxy *p, struct np_dir *d)
{
    pipe_put(p, d);
    d->in_pipe = 0;
}

void np_conn_accept(struct np_proxy *p, struct np_listener *l)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t slen = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The listener stays readable while the backlog is full:
                 * stop polling it until the next sweep instead of spinning. */
                struct epoll_event ev = {.events = 0, .data.ptr = &l->ep};
                epoll_ctl(p->epfd, EPOLL_CTL_MOD, l->fd, &ev);
                l->paused = true;
                p->listeners_paused = true;
                if (p->now_ms - p->last_emfile_log_ms >= 1000) {
                    p->last_emfile_log_ms = p->now_ms;
                    al_log(AL_LOG_WARN, "accept: %s (pausing new connections)", strerror(errno));
                }
            } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                al_log(AL_LOG_WARN, "accept: %s", strerror(errno));
            }
            return;
        }
        struct np_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            return;
        }
        /* TCP_NODELAY is inherited from the listener (listener_register) */
        c->proxy = p;
        c->session = l->session;
        c->kind = l->kind;
        c->cfd = fd;
        c->ufd = -1;
        c->cep.type = EP_CLIENT;
        c->cep.obj = c;
        c->uep.type = EP_UPSTREAM;
        c->uep.obj = c;
        dir_init(&c->up);
        dir_init(&c->down);
        al_buf_init(&c->fwd_head, NP_HTTP_HEAD_MAX + 512);
        struct al_addr a;
        char ip[48] = "?";
        uint16_t port = 0;
        if (al_addr_from_sockaddr(&a, (struct sockaddr *)&ss) == 0) {
            al_addr_format(&a, ip, sizeof(ip));
            port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                 : ((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        snprintf(c->client, sizeof(c->client), "%s:%u", ip, port);
        c->state = c->kind == NP_HTTP ? ST_HEAD : ST_SOCKS_GREET;
        c->last_ms = p->now_ms;
        set_deadline(c, p->cfg.header_timeout_ms);
        c->next = p->conns;
        if (p->conns)
            p->conns->prev = c;
        p->conns = c;
        p->n_conns++;
        c->session->n_conns++;
        /* Most clients send their request right after connecting: read and
         * answer it now; the socket joins epoll afterwards (np_conn_pump),
         * off the path to the first answer. */
        c->c_unreg = true;
        c->cr = c->cw = true;
        if (c->session->removed) {
            np_conn_close(c);
        } else if (p->cfg.max_conns_per_session &&
                   c->session->n_conns + np_tt_count(c->session) > p->cfg.max_conns_per_session) {
            if (c->kind == NP_HTTP) {
                np_log_begin(c, "http");
                np_conn_refuse(c, 429, "limit", 0,
                               "airlock: too many connections for this session (limit %u)",
                               p->cfg.max_conns_per_session);
                np_conn_pump(c);
            } else {
                np_conn_close(c);
            }
        } else if (c->kind == NP_RELAY) {
            relay_start(c, l);
            if (!c->dead)
                np_conn_pump(c);
        } else {
            np_conn_pump(c);
        }
    }
}

void np_conn_consume(struct np_conn *c, size_t n)
{
    if (n >= c->in_len) {
        c->in_len = 0;
        return;
    }
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

void np_conn_drop_upstream(struct np_conn *c)
{
    if (c->ufd >= 0)
        close(c->ufd); /* removes it from epoll */
    c->ufd = -1;
    c->ur = c->uw = false;
    c->u_unreg = false;
    dir_close_pipe(c->proxy, &c->up);
    dir_close_pipe(c->proxy, &c->down);
    al_buf_reset(&c->up.pend);
    c->up.pend_off = 0;
    c->up.eof = c->up.shut = c->up.splice = false;
    c->down.eof = c->down.shut = c->down.splice = false;
    c->up_host[0] = '\0';
    c->up_port = 0;
    c->up_reusable = false;
    np_plain_remask_free(c);
}

void np_conn_close(struct np_conn *c)
{
    if (c->dead)
        return;
    np_log_finish(c);
    if (c->job) {
        c->job->owner = NULL; /* the resolver hands it back; freed then */
        c->job = NULL;
    }
    np_conn_drop_upstream(c);
    if (c->cfd >= 0)
        close(c->cfd);
    c->cfd = -1;
    free(c->in);
    c->in = NULL;
    al_buf_free(&c->up.pend);
    al_buf_free(&c->down.pend);
    al_buf_free(&c->fwd_head);
    np_plain_creds_free(c);
    c->session->n_conns--;
    c->dead = true;
    c->proxy->n_dead++;
}

void np_conn_refuse(struct np_conn *c, int status, const char *error, uint8_t socks_reply,
                    const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->job) {
        c->job->owner = NULL;
        c->job = NULL;
    }
    np_conn_drop_upstream(c);
    if (!c->log.active)
        np_log_begin(c, c->kind == NP_SOCKS5 ? "socks5" : "http");
    c->log.decision = "deny";
    c->log.status = c->kind == NP_SOCKS5 ? socks_reply : status;
    snprintf(c->log.reason, sizeof(c->log.reason), "%s", error);
    snprintf(c->log.detail, sizeof(c->log.detail), "%s", msg);
    np_log_finish(c);
    if (c->kind == NP_RELAY) {
        /* a raw relay has no protocol of its own to answer in */
        np_conn_close(c);
        return;
    }

    /* appended: a SOCKS5 method reply may still be queued in front of it */
    if (c->kind == NP_SOCKS5) {
        uint8_t rep[32];
        size_t n = np_socks5_reply(rep, socks_reply, NULL, 0);
        (void)al_buf_append(&c->down.pend, rep, n);
    } else {
        (void)al_buf_printf(&c->down.pend,
                            "HTTP/1.1 %d %s\r\nX-Airlock-Error: %s\r\n"
                            "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
                            "Connection: close\r\n\r\n%s\n",
                            status, np_http_status_text(status), error, strlen(msg) + 1, msg);
    }
    c->state = ST_LINGER;
    c->in_len = 0;
    set_deadline(c, NP_LINGER_MS);
}

/* Moves bytes along one direction. Returns true on progress; closes the
 * connection on a hard error (caller checks c->dead). */
static bool dir_pump(struct np_conn *c, struct np_dir *d, int src, int dst, bool *src_ready,
                     bool *dst_ready)
{
    bool progress = false;

    for (;;) {
        if (d->pend_off < d->pend.len) {
            if (dst < 0 || !*dst_ready)
                break;
            ssize_t n =
                send(dst, d->pend.ptr + d->pend_off, d->pend.len - d->pend_off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    *dst_ready = false;
                    break;
                }
                np_conn_close(c);
                return true;
            }
            d->pend_off += (size_t)n;
            d->bytes += (uint64_t)n;
            progress = true;
            if (d->pend_off == d->pend.len) {
                al_buf_reset(&d->pend);
                d->pend_off = 0;
            }
            continue;
        }
        if (d->in_pipe) {
            if (dst < 0 || !*dst_ready)
                break;
            ssize_t n =
                splice(d->pipe[0], NULL, dst, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    *dst_ready = false;
                    break;
                }
                np_conn_close(c);
                return true;
            }
            d->in_pipe -= (size_t)n;
            d->bytes += (uint64_t)n;
            progress = true;
            continue;
        }
        if (d == &c->down && c->remask && !d->eof && src >= 0 && *src_ready) {
            int r = np_plain_remask_pump(c, src, src_ready);
            if (r < 0) {
                np_conn_close(c);
                return true;
            }
            if (r == 0)
                break;
            progress = true;
            continue;
        }
        if (!d->splice || d->eof || src < 0 || !*src_ready)
            break;
        if (d->pipe[0] < 0 && pipe_get(c->proxy, d) < 0) {
            al_log(AL_LOG_WARN, "pipe2: %s", strerror(errno));
            np_conn_close(c);
            return true;
        }
        /* The pipe is empty here, so EAGAIN means the socket is. */
        ssize_t n =
            splice(src, NULL, d->pipe[1], NULL, NP_PIPE_SIZE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n == 0) {
            d->eof = true;
            progress = true;
            break;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                *src_ready = false;
                break;
            }
            np_conn_close(c);
            return true;
        }
        d->in_pipe = (size_t)n;
        progress = true;
    }
    if (d->in_pipe == 0)
        pipe_put(c->proxy, d);
    if (d->eof && !d->shut && d->in_pipe == 0 && d->pend_off >= d->pend.len && dst >= 0) {
        shutdown(dst, SHUT_WR);
        d->shut = true;
        progress = true;
    }
    if (progress)
        c->last_ms = c->proxy->now_ms;
    return progress;
}

static bool wants_client_input(const struct np_conn *c)
{
    switch (c->state) {
    case ST_HEAD:
    case ST_SOCKS_GREET:
    case ST_SOCKS_REQ:
    case ST_SNI:
    case ST_LINGER:
        return c->in_len < NP_IN_MAX;
    case ST_HTTP_BODY:
        /* back-pressure: read more body only when the last piece is sent */
        return c->up.pend_off >= c->up.pend.len && c->in_len < NP_IN_MAX;
    default:
        return false;
    }
}

static void client_eof(struct np_conn *c)
{
    if (c->state == ST_HEAD && c->ufd >= 0 && c->in_len == 0) {
        /* keep-alive client done: let the last response finish */
        c->up.eof = true;
        return;
    }
    np_conn_close(c);
}

int np_conn_enter_relay(struct np_conn *c)
{
    if (c->in_len && al_buf_append(&c->up.pend, c->in, c->in_len) < 0) {
        np_conn_close(c);
        return -1;
    }
    c->in_len = 0;
    free(c->in);
    c->in = NULL;
    c->up.splice = true;
    c->state = ST_RELAY;
    c->deadline_ms = 0;
    return 0;
}

static void sni_check(struct np_conn *c)
{
    char sni[NP_HOST_MAX] = "", norm[NP_HOST_MAX];
    const char *why = NULL;

    switch (np_tls_sni_parse((const unsigned char *)c->in, c->in_len, sni, sizeof(sni))) {
    case NP_SNI_NEED_MORE:
        if (c->in_len < NP_TLS_HELLO_MAX)
            return;
        why = "TLS ClientHello too large";
        break;
    case NP_SNI_NOT_TLS:
        break;
    case NP_SNI_NONE:
        why = "TLS ClientHello without a server name";
        break;
    case NP_SNI_MALFORMED:
        why = "malformed TLS ClientHello";
        break;
    case NP_SNI_FOUND:
        if (np_host_normalize(norm, sni, strlen(sni)) < 0 || strcmp(norm, c->host) != 0)
            why = "TLS server name differs from the CONNECT host";
        break;
    }
    if (why) {
        /* The client already has its 200; all that is left is to cut it. */
        c->log.decision = "deny";
        snprintf(c->log.reason, sizeof(c->log.reason), "sni-mismatch");
        snprintf(c->log.detail, sizeof(c->log.detail), "%s (sni \"%.100s\")", why, sni);
        np_conn_close(c);
        return;
    }
    np_conn_enter_relay(c);
}

/* Tunnel established (HTTP CONNECT after the 200 is queued, or SOCKS5 after
 * its reply): check the ClientHello if required, then relay. */
static void tunnel_start(struct np_conn *c)
{
    c->down.splice = true;
    if (c->require_sni) {
        c->state = ST_SNI;
        set_deadline(c, c->proxy->cfg.header_timeout_ms);
        if (!c->in)
            c->in = malloc(NP_IN_MAX);
        if (!c->in) {
            np_conn_close(c);
            return;
        }
        if (c->in_len)
            sni_check(c);
        return;
    }
    /* not required: hand over whatever arrived early, then splice */
    np_conn_enter_relay(c);
}

static void process_input(struct np_conn *c)
{
    switch (c->state) {
    case ST_HEAD:
        if (c->in_len)
            np_http_on_data(c);
        break;
    case ST_SOCKS_GREET:
    case ST_SOCKS_REQ:
        if (c->in_len)
            np_socks_on_data(c);
        break;
    case ST_SNI:
        if (c->in_len)
            sni_check(c);
        break;
    case ST_HTTP_BODY:
        np_http_body_pump(c);
        break;
    case ST_LINGER:
        c->in_len = 0;
        break;
    default:
        break;
    }
}

static void pump(struct np_conn *c)
{
    bool progress = true;

    while (progress && !c->dead) {
        progress = false;
        if (c->cr && wants_client_input(c)) {
            if (!c->in && !(c->in = malloc(NP_IN_MAX))) {
                np_conn_close(c);
                return;
            }
            ssize_t n = read(c->cfd, c->in + c->in_len, NP_IN_MAX - c->in_len);
            if (n > 0) {
                c->in_len += (size_t)n;
                c->last_ms = c->proxy->now_ms;
                progress = true;
            } else if (n == 0) {
                c->cr = false;
                client_eof(c);
                if (c->dead)
                    return;
                progress = true;
            } else if (errno == EAGAIN || errno == EINTR) {
                c->cr = false;
            } else {
                np_conn_close(c);
                return;
            }
        }
        enum np_state before = c->state;
        size_t in_before = c->in_len;
        process_input(c);
        if (c->dead)
            return;
        if (c->state != before || c->in_len != in_before)
            progress = true;
        /* Towards the client first: a queued answer (the CONNECT 200, a
         * refusal) leaves before anything else is tried. */
        progress |= dir_pump(c, &c->down, c->ufd, c->cfd, &c->ur, &c->cw);
        if (c->dead)
            return;
        if (c->ufd >= 0 && c->state != ST_CONNECTING)
            progress |= dir_pump(c, &c->up, c->cfd, c->ufd, &c->cr, &c->uw);
        if (c->dead)
            return;

        if (c->state == ST_LINGER && c->down.pend_off >= c->down.pend.len && !c->down.shut) {
            shutdown(c->cfd, SHUT_WR);
            c->down.shut = true;
        }
        if (c->state == ST_RELAY && c->up.shut && c->down.shut) {
            np_conn_close(c);
            return;
        }
        /* HTTP forwarding: the upstream closed and everything it sent is
         * delivered; the response framing is the upstream's business, so
         * the client connection ends here too. */
        if (c->ufd >= 0 && !c->is_connect && c->kind == NP_HTTP &&
            (c->state == ST_HEAD || c->state == ST_HTTP_BODY) && c->down.eof &&
            c->down.in_pipe == 0 && c->down.pend_off >= c->down.pend.len) {
            np_conn_close(c);
            return;
        }
    }
}

/* Adds sockets whose registration was put off (see c_unreg) to epoll,
 * edge-triggered: an edge that happened before is reported at once. */
static void register_fds(struct np_conn *c)
{
    struct np_proxy *p = c->proxy;
    struct epoll_event cev = {.events = EP_FLAGS, .data.ptr = &c->cep};
    struct epoll_event uev = {.events = EP_FLAGS, .data.ptr = &c->uep};

    if (c->dead)
        return;
    if (c->c_unreg) {
        c->c_unreg = false;
        if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, c->cfd, &cev) < 0) {
            np_conn_close(c);
            return;
        }
    }
    if (c->u_unreg && c->ufd >= 0) {
        int one = 1;
        c->u_unreg = false;
        setsockopt(c->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, c->ufd, &uev) < 0)
            np_conn_close(c);
    }
}

void np_conn_pump(struct np_conn *c)
{
    pump(c);
    register_fds(c);
}

static void connect_done(struct np_conn *c);

void np_conn_event(struct np_conn *c, bool is_client, uint32_t events)
{
    bool in = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    bool out = events & (EPOLLOUT | EPOLLHUP | EPOLLERR);

    if (is_client) {
        c->cr |= in;
        c->cw |= out;
    } else {
        c->ur |= in;
        c->uw |= out;
        if (c->state == ST_CONNECTING) {
            if (!out)
                return;
            connect_done(c);
            if (c->dead)
                return;
        }
    }
    np_conn_pump(c);
}

static void connected(struct np_conn *c)
{
    al_addr_format(&c->cands[c->next_cand - 1], c->log.addr, sizeof(c->log.addr));
    c->log.connect_us = np_now_us() - c->log.t_connect;
    c->log.decision = c->log.would_deny ? "would-deny" : "allow";
    c->deadline_ms = 0;
    snprintf(c->up_host, sizeof(c->up_host), "%s", c->host);
    c->up_port = c->port;
    int term = np_tt_wanted(c); /* TLS termination (tls_term.c) */
    if (term < 0) {
        np_conn_refuse(c, 502, "tls-not-configured", NP_SOCKS5_REFUSED,
                       "airlock: TLS termination is on for this session but it has no CA");
        return;
    }
    if (c->kind == NP_RELAY) {
        c->down.splice = true;
        np_conn_enter_relay(c);
    } else if (c->kind == NP_SOCKS5) {
        np_socks_on_connected(c);
        if (!c->dead)
            term ? np_tt_start(c) : tunnel_start(c);
    } else if (c->is_connect) {
        if (al_buf_puts(&c->down.pend, "HTTP/1.1 200 Connection established\r\n\r\n") < 0) {
            np_conn_close(c);
            return;
        }
        term ? np_tt_start(c) : tunnel_start(c);
    } else {
        c->down.splice = true;
        c->up_reusable = true;
        np_http_on_connected(c);
    }
}

static void connect_done(struct np_conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);

    if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr == 0) {
        connected(c);
        return;
    }
    close(c->ufd);
    c->ufd = -1;
    c->ur = c->uw = false;
    dial_next(c);
}

/* Dials the next checked address. Only addresses in c->cands are ever
 * dialled: they are exactly the ones that passed the policy and SSRF checks. */
static void dial_next(struct np_conn *c)
{
    struct np_proxy *p = c->proxy;

    while (c->next_cand < c->n_cands) {
        const struct al_addr *a = &c->cands[c->next_cand++];
        struct sockaddr_storage ss;
        socklen_t slen = al_addr_to_sockaddr(a, c->port, &ss);
        int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        c->log.t_connect = np_now_us();
        if (connect(fd, (struct sockaddr *)&ss, slen) < 0 && errno != EINPROGRESS) {
            close(fd);
            continue;
        }
        /* A loopback or LAN handshake is often complete already: ask with
         * a second connect() (EISCONN: done; EALREADY: still going) rather
         * than waiting for the next epoll round. When done, the client's
         * answer goes first; TCP_NODELAY and the epoll registration of the
         * upstream socket follow (register_fds). */
        int rc = connect(fd, (struct sockaddr *)&ss, slen);
        if (rc < 0 && errno != EISCONN && errno != EALREADY && errno != EINPROGRESS) {
            close(fd); /* failed already; this call consumed the error */
            continue;
        }
        c->ufd = fd;
        c->ur = false;
        c->u_unreg = true;
        if (rc == 0 || errno == EISCONN) {
            c->uw = true;
            connected(c);
            return;
        }
        c->uw = false;
        c->state = ST_CONNECTING;
        set_deadline(c, p->cfg.connect_timeout_ms);
        register_fds(c); /* now: the handshake's end comes as an epoll event */
        return;
    }
    np_conn_refuse(c, 502, "connect-failure", NP_SOCKS5_REFUSED, "airlock: cannot connect to %s:%u",
                   c->host, c->port);
}

void np_conn_resolved(struct np_conn *c)
{
    struct np_resolve_job *job = c->job;
    char first_bad[48] = "";
    const char *bad_class = NULL;

    c->job = NULL;
    c->log.dns_us = np_now_us() - c->log.t_dns;
    if (job->err < 0) {
        free(job);
        np_conn_refuse(c, 502, "dns-failure", NP_SOCKS5_HOST_UNREACHABLE,
                       "airlock: %s does not resolve (DNS lookup failed)", c->host);
        return;
    }
    c->n_cands = 0;
    c->next_cand = 0;
    pthread_mutex_lock(&c->proxy->lock);
    for (size_t i = 0; i < job->n; i++) {
        const struct al_addr *a = &job->addrs[i];
        enum al_addr_class cls = al_addr_classify(a);
        const char *rule = NULL;
        if (cls == AL_ADDR_PUBLIC ||
            (c->session->has_policy && np_rules_addr_allowed(&c->session->rules, a, &rule))) {
            c->cands[c->n_cands++] = *a;
        } else if (!bad_class) {
            bad_class = al_addr_class_name(cls);
            al_addr_format(a, first_bad, sizeof(first_bad));
        }
    }
    pthread_mutex_unlock(&c->proxy->lock);
    free(job);
    if (c->n_cands == 0) {
        snprintf(c->log.addr, sizeof(c->log.addr), "%s", first_bad);
        c->log.addr_class = bad_class;
        np_conn_refuse(c, 403, "blocked-address", NP_SOCKS5_NOT_ALLOWED,
                       "airlock: %s resolves to %s address %s; add it to "
                       "%s.allowedAddresses if this is intended",
                       c->host, bad_class ? bad_class : "no usable", first_bad,
                       c->proxy->cfg.settings_key);
        return;
    }
    dial_next(c);
}

static void start_resolve(struct np_conn *c)
{
    struct np_proxy *p = c->proxy;

    c->log.t_dns = np_now_us();
    if (c->host_is_ip) {
        /* an IP literal reached here only through an allowedAddresses entry */
        c->cands[0] = c->host_ip;
        c->n_cands = 1;
        c->next_cand = 0;
        c->log.dns_us = 0;
        dial_next(c);
        return;
    }
    struct np_resolve_job *job = calloc(1, sizeof(*job));
    if (!job) {
        np_conn_close(c);
        return;
    }
    memcpy(job->name, c->host, sizeof(job->name));
    job->owner = c;
    c->job = job;
    if (np_resolver_submit(p->resolver, job) == 1) {
        np_conn_resolved(c);
        return;
    }
    c->state = ST_RESOLVING;
    set_deadline(c, p->cfg.connect_timeout_ms);
}

/* NP_RELAY: there is no request to read or decide; the listener's fixed
 * target (the user's own proxy on the host) is dialled at once and every
 * byte is relayed. Policy is that proxy's business. */
static void relay_start(struct np_conn *c, const struct np_listener *l)
{
    np_log_begin(c, "relay");
    al_addr_format(&l->relay_addr, c->host, sizeof(c->host));
    c->port = l->relay_port;
    c->is_connect = true;
    c->require_sni = false;
    snprintf(c->log.host, sizeof(c->log.host), "%s", c->host);
    c->log.port = c->port;
    snprintf(c->log.reason, sizeof(c->log.reason), "external-proxy");
    c->cands[0] = l->relay_addr;
    c->n_cands = 1;
    c->next_cand = 0;
    c->log.t_dns = np_now_us();
    dial_next(c);
}

/* Starts (or restarts, for keep-alive) the upstream side once allowed. */
static void proceed(struct np_conn *c)
{
    if (c->kind != NP_RELAY && np_http_request_rules(c) < 0)
        return;
    if (c->ufd >= 0 && c->up_reusable && !c->is_connect && c->up_port == c->port &&
        strcmp(c->up_host, c->host) == 0) {
        if (np_plain_creds_inject(c) < 0)
            return;
        c->log.decision = c->log.would_deny ? "would-deny" : "allow";
        snprintf(c->log.addr, sizeof(c->log.addr), "reused");
        np_http_on_connected(c);
        return;
    }
    np_conn_drop_upstream(c);
    /* after the drop: the re-masking it starts belongs to the new upstream */
    if (c->kind != NP_RELAY && np_plain_creds_inject(c) < 0)
        return;
    start_resolve(c);
}

void np_conn_decide(struct np_conn *c)
{
    struct np_proxy *p = c->proxy;
    const char *rule = NULL;
    enum np_match m = NP_MATCH_NONE;
    np_approver_fn approver;
    void *payload;
    bool strict = false, report_only = false;

    snprintf(c->log.host, sizeof(c->log.host), "%s", c->host);
    c->log.port = c->port;
    pthread_mutex_lock(&p->lock);
    struct np_session *s = c->session;
    if (s->has_policy) {
        m = np_rules_match(&s->rules, c->host, c->host_is_ip ? &c->host_ip : NULL, c->port, &rule);
        if (m == NP_MATCH_NONE && !c->host_is_ip &&
            np_rules_match(&s->extra, c->host, NULL, c->port, &rule) == NP_MATCH_ALLOW)
            m = NP_MATCH_ALLOW;
        c->require_sni = s->rules.require_sni_match && !c->host_is_ip;
        strict = s->rules.strict;
        report_only = s->pol.report_only != 0;
    } else {
        c->require_sni = !c->host_is_ip;
    }
    if (rule)
        snprintf(c->log.rule, sizeof(c->log.rule), "%s", rule);
    approver = p->approver;
    payload = p->approver_payload;
    pthread_mutex_unlock(&p->lock);

    /* reportOnly: a domain-policy denial is logged "would-deny" and the
     * request goes on (nobody is asked). A public IP literal only: the
     * address guard is not part of the domain policy and is never relaxed
     * (an IP literal is dialled without the resolver's address check). */
    if (report_only && m != NP_MATCH_ALLOW &&
        (!c->host_is_ip || al_addr_classify(&c->host_ip) == AL_ADDR_PUBLIC)) {
        c->log.would_deny = true;
        snprintf(c->log.reason, sizeof(c->log.reason), "blocked-by-policy");
        if (m != NP_MATCH_DENY)
            snprintf(c->log.rule, sizeof(c->log.rule), "%s",
                     strict && !c->host_is_ip ? "strictAllowlist" : "");
        if (m == NP_MATCH_DENY)
            snprintf(c->log.detail, sizeof(c->log.detail),
                     "reportOnly: %s:%u would be blocked by %s.deniedDomains entry \"%s\"", c->host,
                     c->port, p->cfg.settings_key, rule);
        else
            snprintf(c->log.detail, sizeof(c->log.detail),
                     "reportOnly: %s:%u would be blocked: not in %s.%s", c->host, c->port,
                     p->cfg.settings_key, c->host_is_ip ? "allowedAddresses" : "allowedDomains");
        proceed(c);
        return;
    }
    if (m == NP_MATCH_DENY) {
        np_conn_refuse(c, 403, "blocked-by-policy", NP_SOCKS5_NOT_ALLOWED,
                       "airlock: %s:%u is blocked by %s.deniedDomains entry \"%s\"", c->host,
                       c->port, p->cfg.settings_key, rule);
        return;
    }
    if (m == NP_MATCH_ALLOW) {
        snprintf(c->log.reason, sizeof(c->log.reason), "%s",
                 c->host_is_ip ? "allowed-address" : "allowed-domain");
        proceed(c);
        return;
    }
    if (strict && !c->host_is_ip) {
        /* strictAllowlist: refused here, before the approver, so nobody is
         * asked and nothing is held; the log's rule says why */
        snprintf(c->log.rule, sizeof(c->log.rule), "strictAllowlist");
        np_conn_refuse(c, 403, "blocked-by-policy", NP_SOCKS5_NOT_ALLOWED,
                       "airlock: %s:%u is not allowed and %s.strictAllowlist is set, so it is "
                       "not asked about; add \"%s\" to %s.allowedDomains to allow it",
                       c->host, c->port, p->cfg.settings_key, c->host, p->cfg.settings_key);
        return;
    }
    if (approver && !c->host_is_ip) {
        struct np_approval req = {
            .id = p->next_approval_id++,
            .session_id = s->id,
            .host = c->host,
            .port = c->port,
        };
        c->approval_id = req.id;
        c->state = ST_APPROVAL;
        set_deadline(c, p->cfg.approval_timeout_ms);
        approver(&req, payload);
        return;
    }
    if (c->host_is_ip)
        np_conn_refuse(c, 403, "blocked-by-policy", NP_SOCKS5_NOT_ALLOWED,
                       "airlock: %s:%u is an IP address; add it to "
                       "%s.allowedAddresses to allow it",
                       c->host, c->port, p->cfg.settings_key);
    else
        np_conn_refuse(c, 403, "blocked-by-policy", NP_SOCKS5_NOT_ALLOWED,
                       "airlock: %s:%u is not allowed; add \"%s\" to "
                       "%s.allowedDomains to allow it",
                       c->host, c->port, c->host, p->cfg.settings_key);
}

void np_conn_approval_answer(struct np_conn *c, enum np_verdict v)
{
    char entry[NP_HOST_MAX + 8];

    c->deadline_ms = 0;
    switch (v) {
    case NP_VERDICT_ALLOW_SESSION:
    case NP_VERDICT_ALLOW_ALWAYS:
        snprintf(entry, sizeof(entry), "%s:%u", c->host, c->port);
        pthread_mutex_lock(&c->proxy->lock);
        int err = np_rules_add_allow(&c->session->extra, entry);
        pthread_mutex_unlock(&c->proxy->lock);
        if (err < 0) {
            np_conn_close(c);
            return;
        }
        snprintf(c->log.reason, sizeof(c->log.reason), "approved");
        snprintf(c->log.rule, sizeof(c->log.rule), "%s",
                 v == NP_VERDICT_ALLOW_ALWAYS ? "approval:always" : "approval:session");
        proceed(c);
        break;
    case NP_VERDICT_ALLOW_ONCE:
        snprintf(c->log.reason, sizeof(c->log.reason), "approved");
        snprintf(c->log.rule, sizeof(c->log.rule), "approval:once");
        proceed(c);
        break;
    default:
        np_conn_refuse(c, 403, "blocked-by-policy", NP_SOCKS5_NOT_ALLOWED,
                       "airlock: %s:%u was denied at the approval prompt", c->host, c->port);
        break;
    }
    if (!c->dead)
        np_conn_pump(c);
}

void np_conn_timeout(struct np_conn *c)
{
    switch (c->state) {
    case ST_HEAD:
        if (c->kind == NP_HTTP && (c->in_len > 0 || !c->log.active))
            np_conn_refuse(c, 408, "header-timeout", 0,
                           "airlock: the request head did not arrive in time");
        else
            c->deadline_ms = 0;
        break;
    case ST_APPROVAL:
        np_conn_refuse(c, 403, "needs-approval-timeout", NP_SOCKS5_NOT_ALLOWED,
                       "airlock: nobody approved %s:%u in time; add \"%s\" to "
                       "%s.allowedDomains to allow it",
                       c->host, c->port, c->host, c->proxy->cfg.settings_key);
        break;
    case ST_RESOLVING:
    case ST_CONNECTING:
        np_conn_refuse(c, 504, "connect-timeout", NP_SOCKS5_HOST_UNREACHABLE,
                       "airlock: connecting to %s:%u timed out", c->host, c->port);
        break;
    case ST_SNI:
        c->log.decision = "deny";
        snprintf(c->log.reason, sizeof(c->log.reason), "sni-timeout");
        np_conn_close(c);
        return;
    default:
        np_conn_close(c);
        return;
    }
    if (!c->dead)
        np_conn_pump(c);
}
