/* Resolver thread pool and override table. */
#include "resolve.h"

#include "airlock/error.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct override_answer {
    struct al_addr addrs[NP_RESOLVE_MAX];
    size_t n;
};

struct override {
    char name[NP_HOST_MAX];
    struct override_answer *answers;
    size_t n_answers;
    size_t next; /* rotation: which answer the next lookup gets */
};

struct np_resolver {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct np_resolve_job *queue_head, *queue_tail;
    struct np_resolve_job *done;
    bool stopping;
    pthread_t *threads;
    unsigned n_threads;
    int efd;
    int hosts_only;
    struct override *overrides;
    size_t n_overrides;
    struct sockaddr_storage servers[MAXNS]; /* configured DNS servers */
    size_t n_servers;                       /* 0: getaddrinfo() */
};

static void job_finish(struct np_resolver *r, struct np_resolve_job *job)
{
    uint64_t one = 1;
    pthread_mutex_lock(&r->lock);
    job->next = r->done;
    r->done = job;
    pthread_mutex_unlock(&r->lock);
    if (write(r->efd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow in practice; nothing to do */
    }
}

static void job_getaddrinfo(struct np_resolve_job *job)
{
    struct addrinfo hints, *res = NULL;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(job->name, NULL, &hints, &res);
    if (rc != 0) {
        job->err = (rc == EAI_NONAME || rc == EAI_NODATA) ? AL_ENOTFOUND : AL_EIO;
        return;
    }
    for (struct addrinfo *ai = res; ai && job->n < NP_RESOLVE_MAX; ai = ai->ai_next) {
        struct al_addr a;
        if (al_addr_from_sockaddr(&a, ai->ai_addr) < 0)
            continue;
        bool dup = false;
        for (size_t i = 0; i < job->n; i++)
            if (memcmp(&job->addrs[i], &a, sizeof(a)) == 0)
                dup = true;
        if (!dup)
            job->addrs[job->n++] = a;
    }
    freeaddrinfo(res);
    job->err = job->n ? 0 : AL_ENOTFOUND;
}

/* Sets up a thread's private resolver state to ask exactly r->servers
 * (nothing from /etc/resolv.conf's server list; no search domains: names
 * are absolute). IPv6 servers go where res_ninit() itself puts them (a
 * heap sockaddr_in6 in _u._ext.nsaddrs, freed by res_nclose()). */
static int dns_state_init(struct __res_state *st, const struct np_resolver *r)
{
    memset(st, 0, sizeof(*st));
    if (res_ninit(st) < 0)
        return AL_EIO;
    for (int i = 0; i < MAXNS; i++) {
        free(st->_u._ext.nsaddrs[i]);
        st->_u._ext.nsaddrs[i] = NULL;
    }
    st->_u._ext.nscount = 0;
    memset(st->nsaddr_list, 0, sizeof(st->nsaddr_list));
    for (size_t i = 0; i < r->n_servers; i++) {
        if (r->servers[i].ss_family == AF_INET) {
            memcpy(&st->nsaddr_list[i], &r->servers[i], sizeof(struct sockaddr_in));
        } else {
            struct sockaddr_in6 *s6 = malloc(sizeof(*s6));
            if (!s6) {
                st->nscount = (int)i;
                return AL_ENOMEM;
            }
            memcpy(s6, &r->servers[i], sizeof(*s6));
            st->_u._ext.nsaddrs[i] = s6;
        }
    }
    st->nscount = (int)r->n_servers;
    st->options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
    st->retrans = 2; /* seconds per try; connect_timeout_ms bounds the whole wait */
    st->retry = 2;
    return 0;
}

/* Appends the records of `type` (A or AAAA) for job->name from the
 * configured servers. Returns 0, AL_ENOTFOUND (no such name or no records)
 * or AL_EIO (no answer). The answer is parsed by libresolv's ns_parserr(),
 * which bounds every read by the message length. */
static int dns_query(struct __res_state *st, struct np_resolve_job *job, ns_type type)
{
    unsigned char msg[4096];
    ns_msg h;
    int len = res_nquery(st, job->name, ns_c_in, (int)type, msg, sizeof(msg));
    if (len < 0)
        return st->res_h_errno == HOST_NOT_FOUND || st->res_h_errno == NO_DATA ? AL_ENOTFOUND
                                                                               : AL_EIO;
    if (ns_initparse(msg, len < (int)sizeof(msg) ? len : (int)sizeof(msg), &h) < 0)
        return AL_EIO;
    for (int i = 0; i < ns_msg_count(h, ns_s_an) && job->n < NP_RESOLVE_MAX; i++) {
        ns_rr rr;
        struct al_addr a;
        if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
            return AL_EIO;
        if (ns_rr_class(rr) != ns_c_in || ns_rr_type(rr) != type)
            continue; /* the CNAME chain leading to the answer */
        memset(&a, 0, sizeof(a));
        if (type == ns_t_a && ns_rr_rdlen(rr) == 4) {
            a.family = AF_INET;
            memcpy(a.bytes, ns_rr_rdata(rr), 4);
        } else if (type == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
            a.family = AF_INET6;
            memcpy(a.bytes, ns_rr_rdata(rr), 16);
        } else {
            continue;
        }
        bool dup = false;
        for (size_t k = 0; k < job->n; k++)
            dup |= memcmp(&job->addrs[k], &a, sizeof(a)) == 0;
        if (!dup)
            job->addrs[job->n++] = a;
    }
    return 0;
}

static void job_res_query(struct __res_state *st, struct np_resolve_job *job)
{
    int e4 = dns_query(st, job, ns_t_a);
    int e6 = job->n < NP_RESOLVE_MAX ? dns_query(st, job, ns_t_aaaa) : 0;
    if (job->n)
        job->err = 0;
    else
        job->err = e4 == AL_EIO || e6 == AL_EIO ? AL_EIO : AL_ENOTFOUND;
}

static void *worker(void *arg)
{
    struct np_resolver *r = arg;
    struct __res_state st;
    bool use_res = false;

    if (r->n_servers) {
        if (dns_state_init(&st, r) == 0)
            use_res = true;
        else
            res_nclose(&st);
    }
    for (;;) {
        pthread_mutex_lock(&r->lock);
        while (!r->stopping && !r->queue_head)
            pthread_cond_wait(&r->cond, &r->lock);
        if (r->stopping) {
            pthread_mutex_unlock(&r->lock);
            break;
        }
        struct np_resolve_job *job = r->queue_head;
        r->queue_head = job->next;
        if (!r->queue_head)
            r->queue_tail = NULL;
        pthread_mutex_unlock(&r->lock);
        if (use_res)
            job_res_query(&st, job);
        else if (r->n_servers)
            job->err = AL_EIO; /* never fall back to servers nobody configured */
        else
            job_getaddrinfo(job);
        job_finish(r, job);
    }
    if (use_res)
        res_nclose(&st);
    return NULL;
}

int np_resolver_parse_server(struct sockaddr_storage *out, const char *spec)
{
    char host[INET6_ADDRSTRLEN + 2];
    unsigned long port = 53;
    const char *h = spec, *port_s = NULL;
    size_t hlen;

    memset(out, 0, sizeof(*out));
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || (close[1] != '\0' && close[1] != ':'))
            goto bad;
        h = spec + 1;
        hlen = (size_t)(close - h);
        port_s = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strchr(spec, ':');
        if (colon && strchr(colon + 1, ':')) {
            hlen = strlen(spec); /* a bare IPv6 address */
        } else {
            hlen = colon ? (size_t)(colon - spec) : strlen(spec);
            port_s = colon ? colon + 1 : NULL;
        }
    }
    if (hlen == 0 || hlen >= sizeof(host))
        goto bad;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (port_s) {
        char *end;
        errno = 0;
        port = strtoul(port_s, &end, 10);
        if (errno || end == port_s || *end || port == 0 || port > 65535 || *port_s == '-')
            goto bad;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
    if (spec[0] != '[' && inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        return 0;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        return 0;
    }
bad:
    return al_error_set(AL_EINVAL, "DNS server \"%s\": expected IP, IP:PORT or [IPv6]:PORT", spec);
}

int np_resolver_new(struct np_resolver **out, unsigned threads, int hosts_only,
                    const struct sockaddr_storage *servers, size_t n_servers)
{
    struct np_resolver *r;
    int err = 0;

    if (n_servers > MAXNS)
        return al_error_set(AL_EINVAL, "at most %d DNS servers", MAXNS);
    if (!(r = calloc(1, sizeof(*r))))
        return AL_ENOMEM;
    if (n_servers)
        memcpy(r->servers, servers, n_servers * sizeof(*servers));
    r->n_servers = n_servers;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->hosts_only = hosts_only;
    r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->efd < 0) {
        err = al_error_set_errno(AL_EIO, errno, "eventfd");
        goto out;
    }
    if (threads == 0)
        threads = 1;
    r->threads = calloc(threads, sizeof(*r->threads));
    if (!r->threads) {
        err = AL_ENOMEM;
        goto out;
    }
    for (unsigned i = 0; i < threads; i++) {
        int rc = pthread_create(&r->threads[i], NULL, worker, r);
        if (rc != 0) {
            err = al_error_set_errno(AL_EIO, rc, "pthread_create");
            goto out;
        }
        r->n_threads++;
    }
    *out = r;
    r = NULL;
out:
    if (r)
        np_resolver_free(r);
    return err;
}

void np_resolver_free(struct np_resolver *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    for (unsigned i = 0; i < r->n_threads; i++)
        pthread_join(r->threads[i], NULL);
    while (r->queue_head) {
        struct np_resolve_job *j = r->queue_head;
        r->queue_head = j->next;
        free(j);
    }
    while (r->done) {
        struct np_resolve_job *j = r->done;
        r->done = j->next;
        free(j);
    }
    for (size_t i = 0; i < r->n_overrides; i++)
        free(r->overrides[i].answers);
    free(r->overrides);
    free(r->threads);
    if (r->efd >= 0)
        close(r->efd);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}

int np_resolver_fd(const struct np_resolver *r)
{
    return r->efd;
}

int np_resolver_add_override(struct np_resolver *r, const char *name, const char *addrs)
{
    char norm[NP_HOST_MAX];
    struct override_answer ans;
    const char *p = addrs;
    int err = 0;

    if (np_host_normalize(norm, name, strlen(name)) < 0)
        return al_error_set(AL_EINVAL, "hosts override: \"%s\" is not a host name", name);
    memset(&ans, 0, sizeof(ans));
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (ans.n == NP_RESOLVE_MAX || al_addr_parse(&ans.addrs[ans.n], p, len) != 0)
            return al_error_set(AL_EINVAL, "hosts override for %s: bad address list \"%s\"", name,
                                addrs);
        ans.n++;
        p += len + (comma ? 1 : 0);
    }
    if (ans.n == 0)
        return al_error_set(AL_EINVAL, "hosts override for %s: no address", name);

    pthread_mutex_lock(&r->lock);
    struct override *o = NULL;
    for (size_t i = 0; i < r->n_overrides; i++)
        if (strcmp(r->overrides[i].name, norm) == 0)
            o = &r->overrides[i];
    if (!o) {
        struct override *grown = realloc(r->overrides, (r->n_overrides + 1) * sizeof(*grown));
        if (!grown) {
            err = AL_ENOMEM;
            goto unlock;
        }
        r->overrides = grown;
        o = &r->overrides[r->n_overrides++];
        memset(o, 0, sizeof(*o));
        memcpy(o->name, norm, sizeof(norm));
    }
    struct override_answer *a = realloc(o->answers, (o->n_answers + 1) * sizeof(*a));
    if (!a) {
        err = AL_ENOMEM;
        goto unlock;
    }
    o->answers = a;
    o->answers[o->n_answers++] = ans;
unlock:
    pthread_mutex_unlock(&r->lock);
    return err;
}

int np_resolver_submit(struct np_resolver *r, struct np_resolve_job *job)
{
    bool found = false;

    job->n = 0;
    job->err = 0;
    job->next = NULL;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n_overrides; i++) {
        struct override *o = &r->overrides[i];
        if (strcmp(o->name, job->name) != 0)
            continue;
        const struct override_answer *a = &o->answers[o->next];
        o->next = (o->next + 1) % o->n_answers;
        memcpy(job->addrs, a->addrs, a->n * sizeof(a->addrs[0]));
        job->n = a->n;
        found = true;
        break;
    }
    if (!found && r->hosts_only)
        job->err = AL_ENOTFOUND;
    if (found || r->hosts_only) {
        pthread_mutex_unlock(&r->lock);
        return 1;
    }
    if (r->queue_tail)
        r->queue_tail->next = job;
    else
        r->queue_head = job;
    r->queue_tail = job;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

struct np_resolve_job *np_resolver_take(struct np_resolver *r)
{
    uint64_t v;
    if (read(r->efd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing signalled; the list may still hold jobs */
    }
    pthread_mutex_lock(&r->lock);
    struct np_resolve_job *list = r->done;
    r->done = NULL;
    pthread_mutex_unlock(&r->lock);
    return list;
}
