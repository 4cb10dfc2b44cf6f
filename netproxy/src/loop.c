/* The proxy object: sessions, listeners, the epoll loop, timers and the
 * thread-safe entry points of netproxy.h. */
#include "internal.h"

#include "airlock/error.h"
#include "airlock/log.h"
#include "tls_ca.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_MS 100

uint64_t np_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t np_now_ms(void)
{
    return np_now_us() / 1000u;
}

void np_config_init(struct np_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->connect_timeout_ms = 10000;
    cfg->idle_timeout_ms = 300000;
    cfg->header_timeout_ms = 10000;
    cfg->approval_timeout_ms = 60000;
    cfg->max_conns_per_session = 512;
    snprintf(cfg->settings_key, sizeof(cfg->settings_key), "sandbox.network");
    cfg->resolver_threads = 4;
    cfg->log_fd = -1;
}

static void wake(struct np_proxy *p)
{
    uint64_t one = 1;
    if (write(p->wakefd, &one, sizeof(one)) < 0) {
        /* counter saturated: the loop is awake anyway */
    }
}

int np_proxy_new(np_proxy **out, const struct np_config *cfg)
{
    struct np_proxy *p = calloc(1, sizeof(*p));
    int err = 0;

    if (!p)
        return AL_ENOMEM;
    p->cfg = *cfg;
    memset(p->cfg.dns_servers, 0, sizeof(p->cfg.dns_servers)); /* the caller's strings */
    p->cfg.settings_key[sizeof(p->cfg.settings_key) - 1] = '\0';
    if (!p->cfg.settings_key[0])
        snprintf(p->cfg.settings_key, sizeof(p->cfg.settings_key), "sandbox.network");
    p->epfd = -1;
    p->wakefd = -1;
    p->next_approval_id = 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->log_lock, NULL);
    pthread_mutex_init(&p->wk_lock, NULL);
    pthread_cond_init(&p->wk_cond, NULL);
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    p->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->epfd < 0 || p->wakefd < 0) {
        err = al_error_set_errno(AL_EIO, errno, "epoll/eventfd");
        goto out;
    }
    struct sockaddr_storage dns[NP_DNS_SERVERS_MAX];
    size_t n_dns = 0;
    for (size_t i = 0; i < NP_DNS_SERVERS_MAX; i++)
        if (cfg->dns_servers[i] &&
            (err = np_resolver_parse_server(&dns[n_dns++], cfg->dns_servers[i])) < 0)
            goto out;
    if ((err = np_resolver_new(&p->resolver, cfg->resolver_threads, cfg->hosts_only, dns, n_dns)) <
        0)
        goto out;
    p->wake_ep.type = EP_WAKE;
    p->resolver_ep.type = EP_RESOLVER;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &p->wake_ep};
    struct epoll_event rev = {.events = EPOLLIN, .data.ptr = &p->resolver_ep};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wakefd, &ev) < 0 ||
        epoll_ctl(p->epfd, EPOLL_CTL_ADD, np_resolver_fd(p->resolver), &rev) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "epoll_ctl");
        goto out;
    }
    *out = p;
    p = NULL;
out:
    if (p)
        np_proxy_free(p);
    return err;
}

int np_proxy_add_host_override(np_proxy *proxy, const char *name, const char *addrs)
{
    return np_resolver_add_override(proxy->resolver, name, addrs);
}

/* Finds (or creates) a session. Caller holds p->lock. */
struct np_session *np_session_get(struct np_proxy *p, const char *id, bool create)
{
    for (struct np_session *s = p->sessions; s; s = s->next)
        if (!s->removed && strcmp(s->id, id) == 0)
            return s;
    if (!create)
        return NULL;
    struct np_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (!(s->id = strdup(id))) {
        free(s);
        return NULL;
    }
    s->next = p->sessions;
    p->sessions = s;
    return s;
}

int np_proxy_set_policy(np_proxy *proxy, const char *session_id, const struct al_netpolicy *policy)
{
    struct np_rules rules;
    struct np_polsnap *snap = NULL, *oldsnap;
    struct al_netpolicy copy, old;
    int err;

    if ((err = np_rules_build(&rules, policy)) < 0)
        return err;
    if ((err = al_netpolicy_copy(&copy, policy)) < 0) {
        np_rules_free(&rules);
        return err;
    }
    if ((err = np_polsnap_new(&snap, policy)) < 0) {
        np_rules_free(&rules);
        al_netpolicy_free(&copy);
        return err;
    }
    al_netpolicy_init(&old);
    pthread_mutex_lock(&proxy->lock);
    struct np_session *s = np_session_get(proxy, session_id, true);
    if (!s) {
        pthread_mutex_unlock(&proxy->lock);
        np_rules_free(&rules);
        al_netpolicy_free(&copy);
        np_polsnap_unref(snap);
        return AL_ENOMEM;
    }
    if (s->has_policy) {
        np_rules_free(&s->rules);
        old = s->pol;
    }
    s->rules = rules;
    s->pol = copy;
    s->has_policy = true;
    oldsnap = s->snap;
    s->snap = snap;
    pthread_mutex_unlock(&proxy->lock);
    al_netpolicy_free(&old);
    np_polsnap_unref(oldsnap);
    return 0;
}

int np_proxy_remove_session(np_proxy *proxy, const char *session_id)
{
    pthread_mutex_lock(&proxy->lock);
    struct np_session *s = np_session_get(proxy, session_id, false);
    if (s)
        s->removed = true;
    pthread_mutex_unlock(&proxy->lock);
    if (!s)
        return AL_ENOTFOUND;
    np_tt_kill(proxy, s); /* terminated connections run outside the loop */
    wake(proxy);
    return 0;
}

/* Registers listener `l` (filled by the caller) for `session_id`. Owns `l`
 * and its fd from this call on. */
static int listener_register(struct np_proxy *proxy, struct np_listener *l, const char *session_id)
{
    int err = 0, one = 1;

    /* Accepted sockets inherit TCP_NODELAY from the listener: one call here
     * instead of one per connection. (Small answers such as the CONNECT 200
     * must not wait for Nagle.) */
    setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    l->ep.type = EP_LISTENER;
    l->ep.obj = l;
    pthread_mutex_lock(&proxy->lock);
    l->session = np_session_get(proxy, session_id, true);
    if (!l->session) {
        pthread_mutex_unlock(&proxy->lock);
        err = AL_ENOMEM;
        goto out;
    }
    /* Registered here (epoll_ctl is thread-safe); the loop may accept at once. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->ep};
    if (epoll_ctl(proxy->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
        pthread_mutex_unlock(&proxy->lock);
        err = al_error_set_errno(AL_EIO, errno, "epoll_ctl(listener)");
        goto out;
    }
    l->registered = true;
    l->next = proxy->listeners;
    proxy->listeners = l;
    pthread_mutex_unlock(&proxy->lock);
    l = NULL;
out:
    if (l) {
        close(l->fd);
        free(l);
    }
    return err;
}

int np_proxy_add_listener(np_proxy *proxy, int listen_fd, enum np_kind kind, const char *session_id)
{
    struct np_listener *l;

    if (listen_fd < 0 || (kind != NP_HTTP && kind != NP_SOCKS5)) {
        if (listen_fd >= 0)
            close(listen_fd);
        return al_error_set(AL_EINVAL, "np_proxy_add_listener: bad fd or kind");
    }
    if (!(l = calloc(1, sizeof(*l)))) {
        close(listen_fd);
        return AL_ENOMEM;
    }
    l->fd = listen_fd;
    l->kind = kind;
    return listener_register(proxy, l, session_id);
}

/* Parses "IPv4:PORT" or "[IPv6]:PORT" (numeric only: a relay never looks a
 * name up). 0 or AL_EINVAL. */
static int parse_target(struct al_addr *out_addr, uint16_t *out_port, const char *target)
{
    const char *colon = strrchr(target, ':');
    char *end;

    if (!colon || colon == target)
        return al_error_set(AL_EINVAL, "relay target \"%s\": expected IP:PORT", target);
    size_t hlen = (size_t)(colon - target);
    if (target[0] == '[') {
        if (hlen < 3 || target[hlen - 1] != ']')
            return al_error_set(AL_EINVAL, "relay target \"%s\": expected [IPv6]:PORT", target);
    } else if (memchr(target, ':', hlen)) {
        return al_error_set(AL_EINVAL, "relay target \"%s\": put an IPv6 address in brackets",
                            target);
    }
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port == 0 || port > 65535 || colon[1] == '-' ||
        al_addr_parse(out_addr, target, hlen) != 0)
        return al_error_set(AL_EINVAL, "relay target \"%s\": expected IP:PORT", target);
    *out_port = (uint16_t)port;
    return 0;
}

int np_proxy_add_relay_listener(np_proxy *proxy, int listen_fd, const char *target,
                                const char *session_id)
{
    struct np_listener *l = NULL;
    int err = 0;

    if (listen_fd < 0) {
        err = al_error_set(AL_EINVAL, "np_proxy_add_relay_listener: bad fd");
        goto out;
    }
    if (!(l = calloc(1, sizeof(*l)))) {
        err = AL_ENOMEM;
        goto out;
    }
    if ((err = parse_target(&l->relay_addr, &l->relay_port, target)) < 0)
        goto out;
    l->fd = listen_fd;
    l->kind = NP_RELAY;
    err = listener_register(proxy, l, session_id);
    l = NULL;
    listen_fd = -1;
out:
    free(l);
    if (listen_fd >= 0)
        close(listen_fd);
    return err;
}

void np_proxy_set_approver(np_proxy *proxy, np_approver_fn fn, void *payload)
{
    pthread_mutex_lock(&proxy->lock);
    proxy->approver = fn;
    proxy->approver_payload = payload;
    pthread_mutex_unlock(&proxy->lock);
}

void np_proxy_set_decision_hook(np_proxy *proxy, np_decision_fn fn, void *payload)
{
    pthread_mutex_lock(&proxy->lock);
    proxy->decision_hook = fn;
    proxy->decision_payload = payload;
    pthread_mutex_unlock(&proxy->lock);
}

int np_proxy_approve(np_proxy *proxy, uint64_t id, enum np_verdict verdict)
{
    struct np_pending_answer *a = calloc(1, sizeof(*a));
    if (!a)
        return AL_ENOMEM;
    a->id = id;
    a->verdict = verdict;
    pthread_mutex_lock(&proxy->lock);
    a->next = proxy->answers;
    proxy->answers = a;
    pthread_mutex_unlock(&proxy->lock);
    wake(proxy);
    return 0;
}

void np_proxy_stop(np_proxy *proxy)
{
    proxy->stopping = 1;
    wake(proxy);
}

/* Applies approver answers and session removals. */
static void handle_wake(struct np_proxy *p)
{
    uint64_t v;
    if (read(p->wakefd, &v, sizeof(v)) < 0) {
        /* EAGAIN: spurious */
    }
    pthread_mutex_lock(&p->lock);
    struct np_pending_answer *answers = p->answers;
    p->answers = NULL;
    pthread_mutex_unlock(&p->lock);

    while (answers) {
        struct np_pending_answer *a = answers;
        answers = a->next;
        for (struct np_conn *c = p->conns; c; c = c->next) {
            if (!c->dead && c->state == ST_APPROVAL && c->approval_id == a->id) {
                np_conn_approval_answer(c, a->verdict);
                break;
            }
        }
        free(a);
    }
    for (struct np_conn *c = p->conns; c; c = c->next)
        if (!c->dead && c->session->removed)
            np_conn_close(c);
}

static void handle_resolved(struct np_proxy *p)
{
    struct np_resolve_job *list = np_resolver_take(p->resolver);
    while (list) {
        struct np_resolve_job *job = list;
        list = job->next;
        struct np_conn *c = job->owner;
        if (!c) {
            free(job); /* its connection went away meanwhile */
            continue;
        }
        np_conn_resolved(c);
        /* A refusal queues its reply (403/502, SOCKS5 0x02) without writing
         * it; nothing else would wake the connection to send it. */
        if (!c->dead)
            np_conn_pump(c);
    }
}

/* Timers: connection deadlines and idle timeouts, checked every SWEEP_MS. */
static void sweep(struct np_proxy *p)
{
    if (p->listeners_paused) {
        p->listeners_paused = false;
        pthread_mutex_lock(&p->lock);
        for (struct np_listener *l = p->listeners; l; l = l->next) {
            if (!l->paused)
                continue;
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->ep};
            epoll_ctl(p->epfd, EPOLL_CTL_MOD, l->fd, &ev);
            l->paused = false;
        }
        pthread_mutex_unlock(&p->lock);
    }
    for (struct np_conn *c = p->conns; c; c = c->next) {
        if (c->dead)
            continue;
        if (c->deadline_ms && p->now_ms >= c->deadline_ms)
            np_conn_timeout(c);
        else if (c->state != ST_APPROVAL && p->cfg.idle_timeout_ms &&
                 p->now_ms - c->last_ms >= p->cfg.idle_timeout_ms)
            np_conn_close(c);
    }
}

/* Frees connections closed during this iteration (they may still have been
 * referenced by events of the same epoll_wait batch). */
static void reap(struct np_proxy *p)
{
    if (p->n_dead == 0)
        return; /* with thousands of idle tunnels, do not walk them each round */
    p->n_dead = 0;
    for (struct np_conn *c = p->conns, *next; c; c = next) {
        next = c->next;
        if (!c->dead)
            continue;
        if (c->prev)
            c->prev->next = c->next;
        else
            p->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        p->n_conns--;
        free(c);
    }
}

/* Closes the listeners of removed sessions. Runs after a batch of events,
 * not inside it: an event of the listener may still be pending in the batch
 * that carried the wake-up. Taken out of epoll first: airlockd keeps a copy
 * of each listening socket, and close() does not deregister a descriptor
 * while another one refers to the same socket. */
static void listeners_reap(struct np_proxy *p)
{
    pthread_mutex_lock(&p->lock);
    for (struct np_listener **lp = &p->listeners; *lp;) {
        struct np_listener *l = *lp;
        if (l->session->removed) {
            *lp = l->next;
            epoll_ctl(p->epfd, EPOLL_CTL_DEL, l->fd, NULL);
            close(l->fd);
            free(l);
        } else {
            lp = &l->next;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

int np_proxy_run(np_proxy *p)
{
    struct epoll_event evs[256];
    int err = 0;

    p->now_ms = np_now_ms();
    p->last_sweep_ms = p->now_ms;
    while (!p->stopping) {
        int n = epoll_wait(p->epfd, evs, 256, SWEEP_MS);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = al_error_set_errno(AL_EIO, errno, "epoll_wait");
            break;
        }
        p->now_ms = np_now_ms();
        bool woke = false;
        for (int i = 0; i < n; i++) {
            struct np_ep *ep = evs[i].data.ptr;
            switch (ep->type) {
            case EP_LISTENER:
                np_conn_accept(p, ep->obj);
                break;
            case EP_CLIENT:
            case EP_UPSTREAM: {
                struct np_conn *c = ep->obj;
                if (!c->dead)
                    np_conn_event(c, ep->type == EP_CLIENT, evs[i].events);
                break;
            }
            case EP_WAKE:
                handle_wake(p);
                woke = true;
                break;
            case EP_RESOLVER:
                handle_resolved(p);
                break;
            }
        }
        if (p->now_ms - p->last_sweep_ms >= SWEEP_MS) {
            p->last_sweep_ms = p->now_ms;
            sweep(p);
        }
        if (woke)
            listeners_reap(p);
        reap(p);
    }
    for (struct np_conn *c = p->conns; c; c = c->next)
        if (!c->dead)
            np_conn_close(c);
    reap(p);
    np_tt_kill(p, NULL);
    return err;
}

void np_proxy_free(np_proxy *p)
{
    if (!p)
        return;
    for (struct np_conn *c = p->conns; c; c = c->next)
        if (!c->dead)
            np_conn_close(c);
    reap(p);
    np_tt_kill(p, NULL);
    np_tt_wait(p);
    np_resolver_free(p->resolver);
    np_pipe_pool_free(p);
    while (p->listeners) {
        struct np_listener *l = p->listeners;
        p->listeners = l->next;
        close(l->fd);
        free(l);
    }
    while (p->sessions) {
        struct np_session *s = p->sessions;
        p->sessions = s->next;
        if (s->has_policy) {
            np_rules_free(&s->rules);
            al_netpolicy_free(&s->pol);
        }
        np_rules_free(&s->extra);
        np_tls_unref(s->tls);
        np_creds_unref(s->creds);
        np_polsnap_unref(s->snap);
        free(s->id);
        free(s);
    }
    while (p->answers) {
        struct np_pending_answer *a = p->answers;
        p->answers = a->next;
        free(a);
    }
    if (p->epfd >= 0)
        close(p->epfd);
    if (p->wakefd >= 0)
        close(p->wakefd);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->log_lock);
    pthread_mutex_destroy(&p->wk_lock);
    pthread_cond_destroy(&p->wk_cond);
    free(p);
}
