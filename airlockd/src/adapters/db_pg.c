/* The PostgreSQL driver of the stores' database (db.h): a fixed pool of
 * libpq connections under a mutex and condition variable. A connection
 * is made when first needed and made again after it broke, no sooner than
 * an exponential backoff (100 ms doubling to 5 s) after the last failed
 * attempt; every connection has SET statement_timeout; a caller waits for
 * a free connection at most the connect timeout, and for an answer at most
 * the statement timeout plus the connect timeout (libpq's asynchronous
 * calls and poll(): a server that stopped answering, even on a unix socket
 * or behind a live TCP peer, costs the connection, never a hung thread). */
#include "db_impl.h"

#include "airlock/error.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS 5000
#define PG_OID_BYTEA      17
#define PG_OID_INT8       20
#define PG_OID_TEXT       25

struct pg_conn {
    struct ald_db_conn base;
    PGconn *pg;
    int busy;
};

struct pg_db {
    struct ald_db base;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    struct pg_conn *slots;
    unsigned nslots;
    char *conninfo;
    unsigned stmt_ms, connect_ms;
    uint64_t next_try_ms; /* no connection attempt before (monotonic) */
    unsigned backoff_ms;
    int down;
    char why[256];
};

static struct pg_db *pg_of(struct ald_db *db)
{
    return (struct pg_db *)db;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* libpq's message on one line: each run of white space (its lines end in
 * newlines, its hints start with a tab) one space, none at the ends. */
static void one_line(char *msg)
{
    size_t o = 0;
    for (size_t i = 0; msg[i]; i++) {
        int ws = msg[i] == '\n' || msg[i] == '\t' || msg[i] == '\r' || msg[i] == ' ';
        if (!ws)
            msg[o++] = msg[i];
        else if (o > 0 && msg[o - 1] != ' ')
            msg[o++] = ' ';
    }
    while (o > 0 && msg[o - 1] == ' ')
        o--;
    msg[o] = '\0';
}

/* libpq's message, on one line, into p->why. Caller holds the lock. */
static void set_why(struct pg_db *p, const char *msg)
{
    snprintf(p->why, sizeof(p->why), "%s", msg && *msg ? msg : "unknown error");
    one_line(p->why);
}

/* Waits for the answers to what was sent on c->pg, at most the statement
 * timeout plus the connect timeout: the first failed result, else the
 * last (PQclear() it). NULL when the connection failed or no answer came
 * in time (then c->base.broken, and c->base.late for the time). */
static PGresult *pg_wait(struct pg_db *p, struct pg_conn *c)
{
    uint64_t deadline = mono_ms() + p->stmt_ms + p->connect_ms;
    PGresult *keep = NULL;
    for (;;) {
        while (!PQisBusy(c->pg)) {
            PGresult *r = PQgetResult(c->pg);
            if (!r)
                return keep;
            ExecStatusType ks = keep ? PQresultStatus(keep) : PGRES_COMMAND_OK;
            if (ks != PGRES_COMMAND_OK && ks != PGRES_TUPLES_OK && ks != PGRES_EMPTY_QUERY) {
                PQclear(r); /* the first failure is what the caller hears */
            } else {
                PQclear(keep);
                keep = r;
            }
        }
        uint64_t now = mono_ms();
        if (now >= deadline) {
            c->base.late = 1;
            break;
        }
        struct pollfd pfd = {PQsocket(c->pg), POLLIN, 0};
        if ((poll(&pfd, 1, (int)(deadline - now)) < 0 && errno != EINTR) ||
            PQconsumeInput(c->pg) == 0)
            break;
    }
    c->base.broken = 1;
    PQclear(keep);
    return NULL;
}

/* Connects c->pg: connect timeout, keepalives and a TCP user timeout (so
 * that a peer that vanished is noticed), then the statement timeout. */
static int pg_connect(struct pg_db *p, struct pg_conn *c)
{
    char ct[16], tut[24], set[64];
    unsigned secs = (p->connect_ms + 999) / 1000;
    snprintf(ct, sizeof(ct), "%u", secs < 2 ? 2 : secs); /* libpq's minimum */
    snprintf(tut, sizeof(tut), "%u", p->stmt_ms + p->connect_ms);
    const char *const keys[] = {"dbname",           "connect_timeout",     "keepalives",
                                "keepalives_idle",  "keepalives_interval", "keepalives_count",
                                "tcp_user_timeout", "application_name",    NULL};
    const char *const vals[] = {p->conninfo, ct, "1", "5", "2", "2", tut, "airlockd", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    int err = 0;
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        pthread_mutex_lock(&p->lock);
        set_why(p, pg ? PQerrorMessage(pg) : "out of memory");
        err = al_error_set(AL_EAGAIN, "database unavailable: %s", p->why);
        pthread_mutex_unlock(&p->lock);
        PQfinish(pg);
        return err;
    }
    snprintf(set, sizeof(set), "SET statement_timeout = %u", p->stmt_ms);
    c->pg = pg;
    PGresult *r = PQsendQuery(pg, set) ? pg_wait(p, c) : NULL;
    c->pg = NULL;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(pg));
        one_line(msg);
        err = al_error_set(AL_EAGAIN, "database unavailable: %s", msg);
        PQfinish(pg);
        pg = NULL;
    }
    PQclear(r);
    c->pg = pg;
    return err;
}

static int pg_acquire(struct ald_db *db, struct ald_db_conn **out)
{
    struct pg_db *p = pg_of(db);
    struct pg_conn *c = NULL;
    *out = NULL;
    uint64_t deadline = mono_ms() + p->connect_ms;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(p->connect_ms / 1000);
    ts.tv_nsec += (long)(p->connect_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    for (;;) {
        for (unsigned i = 0; i < p->nslots && !c; i++)
            if (!p->slots[i].busy)
                c = &p->slots[i];
        if (c || mono_ms() >= deadline)
            break;
        pthread_cond_timedwait(&p->freed, &p->lock, &ts);
    }
    if (!c) {
        pthread_mutex_unlock(&p->lock);
        return al_error_set(AL_EAGAIN,
                            "database busy: no connection of the pool (%u) free within %u ms",
                            p->nslots, p->connect_ms);
    }
    c->busy = 1;
    c->base.fresh = 0;
    c->base.broken = 0;
    c->base.late = 0;
    int err = 0;
    if (c->pg && PQstatus(c->pg) != CONNECTION_OK) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    if (!c->pg) {
        uint64_t now = mono_ms();
        if (now < p->next_try_ms) {
            err = al_error_set(AL_EAGAIN, "database unavailable: %s (next attempt in %llu ms)",
                               p->why, (unsigned long long)(p->next_try_ms - now));
        }
        pthread_mutex_unlock(&p->lock);
        if (err == 0)
            err = pg_connect(p, c);
        pthread_mutex_lock(&p->lock);
        if (err == 0) {
            c->base.fresh = 1;
            p->down = 0;
            p->backoff_ms = 0;
            p->next_try_ms = 0;
        } else if (now >= p->next_try_ms) {
            p->down = 1;
            p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : PG_BACKOFF_MIN_MS;
            if (p->backoff_ms > PG_BACKOFF_MAX_MS)
                p->backoff_ms = PG_BACKOFF_MAX_MS;
            p->next_try_ms = mono_ms() + p->backoff_ms;
        }
        if (err < 0) {
            c->busy = 0;
            pthread_cond_signal(&p->freed);
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (err == 0)
        *out = &c->base;
    return err;
}

static void pg_release(struct ald_db *db, struct ald_db_conn *bc)
{
    struct pg_db *p = pg_of(db);
    struct pg_conn *c = (struct pg_conn *)bc;
    if (c->pg && !c->base.broken && PQstatus(c->pg) == CONNECTION_OK &&
        PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        /* never hand on an open transaction */
        PGresult *r = PQsendQuery(c->pg, "ROLLBACK") ? pg_wait(p, c) : NULL;
        PQclear(r);
    }
    if (c->pg && (c->base.broken || PQstatus(c->pg) != CONNECTION_OK)) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    pthread_mutex_lock(&p->lock);
    c->busy = 0;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

/* Decodes bytea's text form \x<hex> into a new buffer. */
static char *unhex(const char *v, size_t *len)
{
    size_t n = strlen(v);
    if (n < 2 || v[0] != '\\' || v[1] != 'x')
        return ald_db_copy(v, (*len = n));
    size_t out_n = (n - 2) / 2;
    char *out = malloc(out_n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < out_n; i++) {
        unsigned hi = 0, lo = 0;
        char h = v[2 + 2 * i], l = v[3 + 2 * i];
        hi = (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
        lo = (unsigned)(l <= '9' ? l - '0' : (l | 0x20) - 'a' + 10);
        out[i] = (char)((hi << 4) | lo);
    }
    out[out_n] = '\0';
    *len = out_n;
    return out;
}

static int pg_rows(PGresult *res, struct ald_db_rows *rows)
{
    int n = PQntuples(res), nc = PQnfields(res);
    if (ald_db_rows_init(rows, n, nc) < 0)
        return AL_ENOMEM;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < nc; k++) {
            size_t cell = (size_t)i * (size_t)nc + (size_t)k;
            if (PQgetisnull(res, i, k))
                continue;
            const char *v = PQgetvalue(res, i, k);
            size_t len = (size_t)PQgetlength(res, i, k);
            rows->val[cell] =
                PQftype(res, k) == PG_OID_BYTEA ? unhex(v, &len) : ald_db_copy(v, len);
            rows->len[cell] = len;
            if (!rows->val[cell])
                return AL_ENOMEM;
        }
    return 0;
}

/* The error of a failed result: a constraint (SQLSTATE class 23) is
 * AL_EEXISTS; a lost connection (08, 57P), a cancelled statement (57014,
 * the statement timeout) or a server that cannot take work (53) AL_EAGAIN. */
static int pg_fail(struct pg_conn *c, PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
    one_line(msg);
    if (!*msg) {
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->pg));
        one_line(msg);
    }
    if (c->base.late)
        snprintf(msg, sizeof(msg), "no answer within %u ms",
                 pg_of(c->base.db)->stmt_ms + pg_of(c->base.db)->connect_ms);
    if (c->base.broken || PQstatus(c->pg) != CONNECTION_OK) {
        c->base.broken = 1;
        struct pg_db *p = pg_of(c->base.db);
        pthread_mutex_lock(&p->lock);
        set_why(p, msg);
        p->down = 1;
        pthread_mutex_unlock(&p->lock);
        return al_error_set(AL_EAGAIN, "database unavailable: %s", msg);
    }
    if (state && strncmp(state, "23", 2) == 0)
        return al_error_set(AL_EEXISTS, "database: %s", msg);
    if (state && (strcmp(state, "57014") == 0 || strncmp(state, "08", 2) == 0 ||
                  strncmp(state, "57P", 3) == 0 || strncmp(state, "53", 2) == 0))
        return al_error_set(AL_EAGAIN, "database unavailable: %s", msg);
    return al_error_set(AL_EIO, "database: %s", msg);
}

static int pg_exec(struct ald_db_conn *bc, const struct ald_sql *q, const struct ald_db_arg *args,
                   int n, struct ald_db_rows *rows)
{
    struct pg_conn *c = (struct pg_conn *)bc;
    enum { MAXP = 16 };
    if (n > MAXP)
        return al_error_set(AL_EINVAL, "database: %d parameters", n);
    const char *vals[MAXP];
    int lens[MAXP], fmts[MAXP];
    unsigned types[MAXP];
    char nums[MAXP][24];
    for (int i = 0; i < n; i++) {
        const struct ald_db_arg *a = &args[i];
        vals[i] = NULL;
        lens[i] = 0;
        fmts[i] = 0;
        types[i] = 0;
        if (a->type == ALD_DB_INT) {
            snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)a->i);
            vals[i] = nums[i];
            types[i] = PG_OID_INT8;
        } else if ((a->type == ALD_DB_TEXT || a->type == ALD_DB_BLOB) && a->s) {
            vals[i] = a->s;
            lens[i] = (int)(a->len < 0 ? (long long)strlen(a->s) : a->len);
            fmts[i] = 1; /* binary: the bytes as they are, no NUL needed */
            types[i] = a->type == ALD_DB_BLOB ? PG_OID_BYTEA : PG_OID_TEXT;
        }
    }
    PGresult *res = PQsendQueryParams(c->pg, q->pg ? q->pg : q->sql, n, types, vals, lens, fmts, 0)
                        ? pg_wait(pg_of(bc->db), c)
                        : NULL;
    ExecStatusType rs = PQresultStatus(res);
    int err = 0;
    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
        err = pg_fail(c, res);
    } else if (rows) {
        err = pg_rows(res, rows);
        const char *ch = PQcmdTuples(res);
        rows->changes = ch && *ch ? (int64_t)strtoll(ch, NULL, 10) : 0;
    }
    PQclear(res);
    return err;
}

static int pg_script(struct ald_db_conn *bc, const char *sql)
{
    struct pg_conn *c = (struct pg_conn *)bc;
    PGresult *res = PQsendQuery(c->pg, sql) ? pg_wait(pg_of(bc->db), c) : NULL;
    ExecStatusType rs = PQresultStatus(res);
    int err = rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK ? 0 : pg_fail(c, res);
    PQclear(res);
    return err;
}

static int pg_down(struct ald_db *db, char *why, size_t whysz)
{
    struct pg_db *p = pg_of(db);
    pthread_mutex_lock(&p->lock);
    int down = p->down;
    snprintf(why, whysz, "%s", down ? p->why : "");
    pthread_mutex_unlock(&p->lock);
    return down;
}

static void pg_close(struct ald_db *db)
{
    struct pg_db *p = pg_of(db);
    for (unsigned i = 0; p->slots && i < p->nslots; i++)
        PQfinish(p->slots[i].pg);
    free(p->slots);
    if (p->conninfo)
        explicit_bzero(p->conninfo, strlen(p->conninfo)); /* may hold a password */
    free(p->conninfo);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static const struct db_ops pg_ops = {
    .acquire = pg_acquire,
    .release = pg_release,
    .exec = pg_exec,
    .script = pg_script,
    .down = pg_down,
    .close = pg_close,
};

int ald_dbpg_open(struct ald_db **out, const struct ald_db_cfg *cfg)
{
    *out = NULL;
    if (!cfg->conninfo)
        return al_error_set(AL_EINVAL, "database: no PostgreSQL conninfo");
    struct pg_db *p = calloc(1, sizeof(*p));
    if (!p)
        return AL_ENOMEM;
    p->base.ops = &pg_ops;
    p->base.driver = ALD_DB_POSTGRES;
    atomic_init(&p->base.refs, 1);
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->freed, &ca);
    pthread_condattr_destroy(&ca);
    p->nslots = cfg->pool_size ? cfg->pool_size : 4;
    p->stmt_ms = cfg->statement_timeout_ms ? cfg->statement_timeout_ms : 5000;
    p->connect_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 3000;
    p->slots = calloc(p->nslots, sizeof(*p->slots));
    p->conninfo = ald_db_copy(cfg->conninfo, strlen(cfg->conninfo));
    int err = p->slots && p->conninfo ? 0 : AL_ENOMEM;
    for (unsigned i = 0; err == 0 && i < p->nslots; i++)
        p->slots[i].base.db = &p->base;
    struct ald_db_conn *c = NULL;
    if (err == 0 && (err = pg_acquire(&p->base, &c)) == 0) /* a wrong conninfo fails here */
        pg_release(&p->base, c);
    if (err < 0) {
        pg_close(&p->base);
        return err;
    }
    *out = &p->base;
    return 0;
}
