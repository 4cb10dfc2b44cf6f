/* Outgoing webhooks: the sealing key, the outbox hooks and the delivery
 * thread (adapters/webhooks.h, docs/webhooks.md). */
#include "airlockd/adapters/webhooks.h"

#include "airlockd/adapters/db.h"
#include "airlockd/adapters/store.h"

#include "airlockd/core/cluster.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/util.h"

#include "airlock/creds_store.h"
#include "airlock/error.h"
#include "airlock/ipaddr.h"
#include "airlock/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct ald_webhooks {
    struct ald_whstore *st;
    creds_store *seal; /* only its master key is used (creds_store_seal) */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled by an enqueue and by stop */
    int kick, started;
    atomic_int stop;
    pthread_t thread;
};

/* The key deliveries' secrets are sealed with: the proxies' master key
 * (proxies.master_key, default <state_dir>/master.key) when it exists,
 * else <state_dir>/webhook.key, made here (32 random bytes, 0600). */
static int seal_key_path(char *out, size_t size, const struct ald_config *c)
{
    int n = c->px_master_key ? snprintf(out, size, "%s", c->px_master_key)
                             : snprintf(out, size, "%s/master.key", c->state_dir);
    if (n < 0 || (size_t)n >= size)
        return al_error_set(AL_ETOOBIG, "master key path too long");
    if (access(out, F_OK) == 0)
        return 0;
    n = snprintf(out, size, "%s/webhook.key", c->state_dir);
    if (n < 0 || (size_t)n >= size)
        return al_error_set(AL_ETOOBIG, "webhook key path too long");
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errno == EEXIST ? 0 : al_error_set(AL_EIO, "%s: %s", out, strerror(errno));
    unsigned char key[32];
    int err = getrandom(key, sizeof(key), 0) == (ssize_t)sizeof(key) &&
                      write(fd, key, sizeof(key)) == (ssize_t)sizeof(key) && fsync(fd) == 0
                  ? 0
                  : al_error_set(AL_EIO, "%s: %s", out, strerror(errno));
    OPENSSL_cleanse(key, sizeof(key));
    close(fd);
    if (err < 0)
        unlink(out);
    return err;
}

static int wh_seal(struct ald *d, const char *aad, const char *plain, char **out)
{
    return creds_store_seal(out, d->webhooks->seal, aad, plain, strlen(plain));
}

static int wh_unseal(struct ald *d, const char *aad, const char *sealed, char **out)
{
    unsigned char *p = NULL;
    size_t n = 0;
    int err = creds_store_unseal(&p, &n, d->webhooks->seal, aad, sealed, strlen(sealed));
    if (err == 0 && memchr(p, '\0', n)) {
        creds_secret_free((char *)p);
        return al_error_set(AL_EINVAL, "sealed secret holds a NUL");
    }
    *out = (char *)p;
    return err;
}

static void delivery_aad(char *out, size_t size, const char *id)
{
    snprintf(out, size, "airlock-webhook:%s", id);
}

static int wh_enqueue(struct ald *d, const struct ald_webhook_item *it, struct ald_fault *f)
{
    struct ald_webhooks *w = d->webhooks;
    char aad[64], *sealed = NULL;
    delivery_aad(aad, sizeof(aad), it->id);
    if (wh_seal(d, aad, it->secret, &sealed) < 0)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL,
                             "cannot seal the webhook secret: %s", al_error_last());
    int err = ald_whstore_insert(w->st, it, sealed);
    free(sealed);
    if (err < 0)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
    al_log(AL_LOG_INFO, "webhook %s: %s for %s queued", it->id, it->event, it->subject);
    pthread_mutex_lock(&w->lock);
    w->kick = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

/* The outbox beside the main store (its own SQLite connection, or the
 * PostgreSQL pool). */
static int open_outbox(struct ald *d, struct ald_whstore **out)
{
    struct ald_db *db = ald_store_sibling(d->st);
    int err = db ? ald_whstore_open_db(out, db) : AL_EIO;
    ald_db_unref(db);
    return err;
}

int ald_webhooks_open(struct ald *d)
{
    char key[PATH_MAX], none[PATH_MAX];
    int err;
    struct ald_webhooks *w = calloc(1, sizeof(*w));
    if (!w)
        return AL_ENOMEM;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    d->webhooks = w;
    /* the outbox is in the main store's database (d->st); a store file that is never written:
     * creds_store_open() takes a missing one as empty, and only the key is wanted */
    int n2 = snprintf(none, sizeof(none), "%s/webhook-seal.unused", d->cfg->state_dir);
    if (n2 < 0 || (size_t)n2 >= sizeof(none))
        return al_error_set(AL_ETOOBIG, "state_dir too long");
    if ((err = seal_key_path(key, sizeof(key), d->cfg)) < 0 ||
        (err = creds_store_open(&w->seal, none, key)) < 0 || (err = open_outbox(d, &w->st)) < 0)
        return err;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return al_error_set(AL_ERROR, "libcurl initialisation failed");
    d->hooks.webhook.enqueue = wh_enqueue;
    d->hooks.webhook.seal = wh_seal;
    d->hooks.webhook.unseal = wh_unseal;
    return 0;
}

/* ---- one attempt ---- */

struct attempt {
    struct ald *d;
    int allow_private;
    char refused[160]; /* the opensocket callback's refusal */
};

/* The last guard: the address curl is about to connect to (after
 * CURLOPT_RESOLVE pinned it) must still pass, so no later lookup, IPv6
 * fallback or literal form can reach a refused one. */
static curl_socket_t open_socket(void *payload, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct attempt *at = payload;
    struct al_addr addr;
    (void)purpose;
    if (al_addr_from_sockaddr(&addr, &a->addr) < 0 ||
        !ald_webhook_addr_ok(&addr, at->allow_private)) {
        char txt[64] = "?";
        if (a->family == AF_INET || a->family == AF_INET6)
            al_addr_format(&addr, txt, sizeof(txt));
        snprintf(at->refused, sizeof(at->refused), "connection to %s refused (SSRF guard)", txt);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Ends an attempt at once when the daemon stops. */
static int progress(void *payload, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct attempt *at = payload;
    (void)dt, (void)dn, (void)ut, (void)un;
    return atomic_load(&at->d->stopping) || at->d->webhooks->stop;
}

static size_t discard(char *p, size_t size, size_t n, void *payload)
{
    (void)p, (void)payload;
    return size * n;
}

/* Sends `row` once: 0 and *status (HTTP status, 0: no answer) with `err`
 * saying why when there was no 2xx. */
static void attempt_send(struct ald *d, json_t *row, long *status, char *why, size_t whysz)
{
    const char *id = json_string_value(json_object_get(row, "id"));
    const char *url = json_string_value(json_object_get(row, "url"));
    const char *body = json_string_value(json_object_get(row, "body"));
    const char *sealed = json_string_value(json_object_get(row, "secret"));
    json_t *doc = json_loads(body, 0, NULL);
    const char *event = json_string_value(json_object_get(doc, "event"));
    struct attempt at = {.d = d, .allow_private = d->cfg->webhooks.allow_private};
    struct ald_webhook_url u;
    struct al_addr addrs[ALD_WEBHOOK_ADDR_MAX];
    size_t n_addrs = 0;
    char aad[64], sig[72], *secret = NULL, hdr[512], resolve[1024], txt[64];
    struct curl_slist *headers = NULL, *pin = NULL;
    CURL *c = NULL;
    *status = 0;
    why[0] = '\0';
    delivery_aad(aad, sizeof(aad), id);
    if (!event || wh_unseal(d, aad, sealed, &secret) < 0 ||
        ald_webhook_sign(sig, secret, body, strlen(body)) < 0) {
        snprintf(why, whysz, "cannot sign: %s", event ? al_error_last() : "bad body");
        goto out;
    }
    /* resolved (and vetted) at each attempt, and pinned: the connection
     * goes to the address vetted here, not to a second lookup's answer */
    if (ald_webhook_url_parse(&u, url, strlen(url), why, whysz) < 0 ||
        ald_webhook_resolve(addrs, ALD_WEBHOOK_ADDR_MAX, &n_addrs, u.host, at.allow_private, why,
                            whysz) < 0)
        goto out;
    /* a name is pinned to the addresses vetted ("HOST:PORT:A,[B]"); a
     * literal is not looked up */
    struct al_addr lit;
    int is_name = al_addr_parse(&lit, u.host, strlen(u.host)) == AL_ENOTFOUND;
    size_t rl = (size_t)snprintf(resolve, sizeof(resolve), "%s:%u:", u.host, u.port);
    for (size_t i = 0; i < n_addrs && rl < sizeof(resolve); i++) {
        al_addr_format(&addrs[i], txt, sizeof(txt));
        int w = snprintf(resolve + rl, sizeof(resolve) - rl,
                         addrs[i].family == AF_INET6 ? "%s[%s]" : "%s%s", i ? "," : "", txt);
        rl = w < 0 ? sizeof(resolve) : rl + (size_t)w;
    }
    if (rl >= sizeof(resolve)) {
        snprintf(why, whysz, "too many addresses for %s", u.host);
        goto out;
    }
    if (!(c = curl_easy_init())) {
        snprintf(why, whysz, "out of memory");
        goto out;
    }
    struct {
        const char *name, *value;
    } hs[] = {
        {"Content-Type", "application/json"}, {"User-Agent", "airlock-webhook/" AIRLOCK_VERSION},
        {"X-Airlock-Event", event},           {"X-Airlock-Delivery", id},
        {"X-Airlock-Signature-256", sig},     {"Expect", ""}};
    for (size_t i = 0; i < sizeof(hs) / sizeof(*hs); i++) {
        snprintf(hdr, sizeof(hdr), "%s:%s%s", hs[i].name, *hs[i].value ? " " : "", hs[i].value);
        headers = curl_slist_append(headers, hdr);
    }
    snprintf(hdr, sizeof(hdr), "X-Airlock-Timestamp: %lld", (long long)time(NULL));
    headers = curl_slist_append(headers, hdr);
    if ((is_name && !(pin = curl_slist_append(NULL, resolve))) || !headers) {
        snprintf(why, whysz, "out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (pin)
        curl_easy_setopt(c, CURLOPT_RESOLVE, pin);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &at);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)d->cfg->webhooks.timeout_s);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)d->cfg->webhooks.timeout_s);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &at);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (rc != CURLE_OK)
        snprintf(why, whysz, "%s", at.refused[0] ? at.refused : curl_easy_strerror(rc));
    else if (*status < 200 || *status > 299)
        snprintf(why, whysz, "HTTP status %ld", *status);
out:
    if (c)
        curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    curl_slist_free_all(pin);
    if (secret)
        creds_secret_free(secret);
    json_decref(doc);
}

static uint32_t rand32(void)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint32_t)ald_now_ms();
    return r;
}

/* One attempt at `row` and its record: delivered right after a 2xx (so a
 * restart does not send it again); else the next attempt, or failed once
 * webhooks.retry_for_s since it was queued would pass. An attempt cut short
 * by the daemon's stop is not recorded (the row stays due). 0, or AL_E*
 * when the record could not be written. */
/* The attempt's record: on a cluster node only while this node still
 * holds the delivery's lease (else another node has taken it over: this
 * attempt is not recorded, which at worst sends the delivery twice). */
static int record(struct ald *d, const char *id, long status, const char *error, const char *state,
                  uint64_t next_ms, uint64_t delivered_ms)
{
    const char *self = ald_cluster_self(d);
    if (!self)
        return ald_whstore_attempt(d->webhooks->st, id, status, error, state, next_ms,
                                   delivered_ms);
    int err = ald_whstore_attempt_leased(d->webhooks->st, self, id, status, error, state, next_ms,
                                         delivered_ms);
    if (err == AL_ESTALE) {
        al_log(AL_LOG_WARN, "webhook %s: its lease ran out during the attempt; another node has it",
               id);
        err = 0;
    }
    return err;
}

static int deliver(struct ald *d, json_t *row)
{
    const struct ald_webhook_config *c = &d->cfg->webhooks;
    const char *id = json_string_value(json_object_get(row, "id"));
    uint64_t created = (uint64_t)json_integer_value(json_object_get(row, "created_ms"));
    unsigned attempts = (unsigned)json_integer_value(json_object_get(row, "attempts")) + 1;
    long status = 0;
    char why[512];
    attempt_send(d, row, &status, why, sizeof(why));
    uint64_t now = ald_now_ms();
    int err, ok = status >= 200 && status <= 299;
    if (!ok && (atomic_load(&d->stopping) || d->webhooks->stop))
        return 0; /* abandoned: stays pending, sent again after the restart */
    if (ok) {
        err = record(d, id, status, "", "delivered", 0, now);
        al_log(AL_LOG_INFO, "webhook %s: delivered (HTTP %ld, attempt %u)", id, status, attempts);
    } else {
        uint64_t delay = ald_webhook_backoff_ms(attempts, c->retry_initial_ms,
                                                c->retry_max_delay_s * 1000, rand32());
        int give_up = now + delay > created + c->retry_for_s * 1000;
        err = record(d, id, status, why, give_up ? "failed" : "pending", give_up ? 0 : now + delay,
                     0);
        al_log(AL_LOG_WARN, "webhook %s: attempt %u: %s; %s", id, attempts, why,
               give_up ? "given up" : "will retry");
    }
    if (err < 0)
        al_log(AL_LOG_ERROR, "webhook %s: %s", id, al_error_last());
    return err;
}

static void *delivery_thread(void *arg)
{
    struct ald *d = arg;
    struct ald_webhooks *w = d->webhooks;
    for (;;) {
        json_t *row = NULL;
        uint64_t wait_ms = 60 * 1000;
        pthread_mutex_lock(&w->lock);
        int stop = w->stop;
        w->kick = 0;
        pthread_mutex_unlock(&w->lock);
        if (stop)
            break;
        /* a cluster node claims the due delivery under a lease (the
         * attempt's timeout + 30 s), so that two nodes never send it at
         * once; one that dies mid-send leaves the lease to run out */
        const char *self = ald_cluster_self(d);
        if (self) {
            uint64_t lease_ms = d->cfg->webhooks.timeout_s * 1000 + 30000;
            if (ald_whstore_claim(w->st, self, lease_ms, &row) < 0) {
                al_log(AL_LOG_ERROR, "webhooks: %s", al_error_last());
                row = NULL;
            } else if (row) {
                int err = deliver(d, row);
                json_decref(row);
                if (err == 0)
                    continue;
                row = NULL;
            }
            /* a row another node queued wakes nobody here: look again soon */
            wait_ms = 5000;
        }
        if (ald_whstore_next(w->st, &row) < 0) {
            al_log(AL_LOG_ERROR, "webhooks: %s", al_error_last());
            wait_ms = 1000;
        } else if (row) {
            uint64_t due = (uint64_t)json_integer_value(json_object_get(row, "next_ms"));
            uint64_t now = ald_now_ms();
            if (due <= now && self) {
                wait_ms = 2000; /* due, but another node holds its lease */
            } else if (due <= now) {
                int err = deliver(d, row);
                json_decref(row);
                if (err == 0)
                    continue;
                row = NULL;
                wait_ms = 1000; /* the database refused: not straight at it again */
            } else
                wait_ms = due - now < wait_ms ? due - now : wait_ms;
        }
        json_decref(row);
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += (time_t)(wait_ms / 1000);
        dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&w->lock);
        while (!w->stop && !w->kick)
            if (pthread_cond_timedwait(&w->cond, &w->lock, &dl) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

int ald_webhooks_start(struct ald *d)
{
    struct ald_webhooks *w = d->webhooks;
    int rc = pthread_create(&w->thread, NULL, delivery_thread, d);
    if (rc != 0)
        return al_error_set(AL_EIO, "webhook thread: %s", strerror(rc));
    w->started = 1;
    return 0;
}

void ald_webhooks_stop(struct ald *d)
{
    struct ald_webhooks *w = d->webhooks;
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    if (w->started)
        pthread_join(w->thread, NULL);
    ald_whstore_close(w->st);
    creds_store_free(w->seal);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
    d->webhooks = NULL;
    d->hooks.webhook.enqueue = NULL;
    d->hooks.webhook.seal = NULL;
    d->hooks.webhook.unseal = NULL;
}

static int subject_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int ald_webhooks_list(struct ald *d, const char *subject, const char *user, int admin, json_t **out,
                      struct ald_fault *f)
{
    *out = NULL;
    if (!subject)
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "subject",
                             "the query needs subject=ID (a job or session id)");
    if (!subject_valid(subject))
        return ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "subject",
                             "expected a job or session id (1 to 64 of A-Z a-z 0-9 _ -)");
    if (!d->webhooks)
        return ald_fault_set(f, ALD_FAULT_UNAVAILABLE, "unavailable", NULL,
                             "webhooks are not set up");
    if (ald_whstore_list(d->webhooks->st, subject, admin ? NULL : user, out) < 0)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
    return 0;
}
