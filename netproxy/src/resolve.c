/* Resolver thread pool and override table. */
#include "resolve.h"

#include "airlock/error.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct override_answer {
    struct np_addr addrs[NP_RESOLVE_MAX];
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
        struct np_addr a;
        if (np_addr_from_sockaddr(&a, ai->ai_addr) < 0)
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

static void *worker(void *arg)
{
    struct np_resolver *r = arg;

    for (;;) {
        pthread_mutex_lock(&r->lock);
        while (!r->stopping && !r->queue_head)
            pthread_cond_wait(&r->cond, &r->lock);
        if (r->stopping) {
            pthread_mutex_unlock(&r->lock);
            return NULL;
        }
        struct np_resolve_job *job = r->queue_head;
        r->queue_head = job->next;
        if (!r->queue_head)
            r->queue_tail = NULL;
        pthread_mutex_unlock(&r->lock);
        job_getaddrinfo(job);
        job_finish(r, job);
    }
}

int np_resolver_new(struct np_resolver **out, unsigned threads, int hosts_only)
{
    struct np_resolver *r = calloc(1, sizeof(*r));
    int err = 0;

    if (!r)
        return AL_ENOMEM;
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
        if (ans.n == NP_RESOLVE_MAX || np_addr_parse(&ans.addrs[ans.n], p, len) != 0)
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
