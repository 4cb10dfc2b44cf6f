/* The key holder's side of one client connection: answers the connection's
 * front worker over its channel (gp_chan.h). It verifies the scoped token,
 * checks push commands against it, and makes the upstream requests with the
 * real credential, built from validated pieces only: the URL from the
 * configured upstream and the token's canonical repository, the headers from
 * fixed strings and re-checked values, a push's command list re-encoded from
 * the commands it checked. The worker's bytes are forwarded (pack data) but
 * never interpreted here. */
#include "gp_keyd.h"
#include "gp_chan.h"
#include "gp_http.h"

#include "airlock/base64.h"
#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/gp_hdrcheck.h"
#include "airlock/gp_pktline.h"
#include "airlock/gp_receive.h"
#include "airlock/gp_refname.h"
#include "airlock/gp_scan.h"
#include "airlock/log.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CT_TEXT "text/plain; charset=utf-8"

/* One connection's state in the key holder. */
struct kconn {
    gp_proxy *p;
    int ch;
    int client; /* the client's socket, written only by a direct answer; -1 on a second channel */
    const char *listener_session;
    int sub; /* a second channel (mirror fetches): fetch requests only */
    /* after AUTH */
    int authed;
    unsigned op;
    struct creds_claims claims;
    char host[256];
    char repo[520]; /* canonical "host/owner/name": the claim's spelling */
    char path[400]; /* "owner/name" as sent upstream */
    const struct gp_upstream *up;
    char *real_user;
    char *real_secret;
    unsigned revoke_gen;
    struct gp_sess *sess;
    /* a push being assembled */
    struct al_strlist shallow;
    struct gp_command *cmds;
    size_t ncmds;
    struct al_strlist opts;
    char caps[4096];
    int push_checked; /* PUSH_HEAD seen and every command allowed */
    char **worker_reasons;
    uint8_t in[GP_CHAN_MSG_MAX];
    uint8_t out[GP_CHAN_MSG_MAX];
};

static int send_fail(struct kconn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* FAIL status message: the answer the worker gives its client. Returns
 * AL_EPERM so callers can `return send_fail(...)`. */
static int send_fail(struct kconn *c, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *s = msg; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
    struct gp_wire w;
    gp_wire_init(&w, c->out, sizeof(c->out), GP_CH_FAIL);
    gp_wire_u16(&w, (uint16_t)status);
    gp_wire_str(&w, msg);
    gp_chan_send(c->ch, &w, NULL, 0);
    return AL_EPERM;
}

static void conn_clear(struct kconn *c)
{
    creds_claims_clear(&c->claims);
    free(c->real_user);
    creds_secret_free(c->real_secret);
    c->real_user = c->real_secret = NULL;
    if (c->sess)
        gp_sess_put(c->p, c->sess);
    c->sess = NULL;
    al_strlist_free(&c->shallow);
    al_strlist_free(&c->opts);
    for (size_t i = 0; i < c->ncmds; i++) {
        free(c->cmds[i].ref);
        if (c->worker_reasons)
            free(c->worker_reasons[i]);
    }
    free(c->cmds);
    free(c->worker_reasons);
    c->cmds = NULL;
    c->worker_reasons = NULL;
    c->ncmds = 0;
    OPENSSL_cleanse(c->in, sizeof(c->in));
}

/* ---- AUTH ---- */

static int handle_auth(struct kconn *c, const uint8_t *msg, size_t len)
{
    struct gp_msg_auth m;
    int err = gp_msg_auth_decode(&m, msg, len);
    unsigned op = m.op;
    const char *owner = m.owner, *name = m.name, *token = m.token;
    snprintf(c->host, sizeof(c->host), "%s", m.host);
    struct gp_route route;
    char full[520];
    int n = snprintf(full, sizeof(full), "%s/%s/%s", c->host, owner, name);
    /* the same grammar the worker checked: never trust that it did */
    if (err == 0 && (c->authed || (op != CREDS_OP_FETCH && op != CREDS_OP_PUSH) || n < 0 ||
                     (size_t)n >= sizeof(full) || gp_repo_parse(&route, full, (size_t)n) < 0))
        err = al_error_set(AL_EINVAL, "bad AUTH message");
    if (err < 0)
        goto out;
    snprintf(c->host, sizeof(c->host), "%s", route.host);
    c->up = gp_upstream_for(c->p, c->host);
    c->revoke_gen = atomic_load(&c->p->revoke_gen);
    pthread_rwlock_rdlock(&c->p->keys_lock);
    if (!c->p->have_keys) {
        pthread_rwlock_unlock(&c->p->keys_lock);
        err = send_fail(c, 503, "airlock: the git proxy has no token keys yet; try again");
        goto out;
    }
    err = creds_token_verify(&c->claims, token, strlen(token), &c->p->cfg.keys, time(NULL),
                             gp_proxy_is_revoked, c->p);
    pthread_rwlock_unlock(&c->p->keys_lock);
    if (err < 0) {
        err = send_fail(c, 403, "airlock: %s", al_error_last());
        goto out;
    }
    if (strcmp(c->listener_session, "*") != 0 &&
        strcmp(c->claims.session, c->listener_session) != 0) {
        err = send_fail(c, 403, "airlock: token belongs to another session");
        goto out;
    }
    snprintf(full, sizeof(full), "%s/%s/%s", route.host, route.owner, route.name);
    const char *canon = creds_claims_repo_find(&c->claims, full, c->up && c->up->fold_case);
    if (!canon) {
        err = send_fail(c, 403, "airlock: token does not grant access to %s/%s/%s", c->host, owner,
                        name);
        goto out;
    }
    /* From here on the repository is the claim's spelling, never the
     * client's: that is what goes upstream. */
    snprintf(c->repo, sizeof(c->repo), "%s/%s", c->host, canon + strlen(c->host) + 1);
    snprintf(c->path, sizeof(c->path), "%s", canon + strlen(c->host) + 1);
    if (!(c->claims.ops & op)) {
        err = send_fail(c, 403, "airlock: token does not allow %s",
                        op == CREDS_OP_PUSH ? "push" : "fetch");
        goto out;
    }
    gp_store_refresh(c->p);
    err = creds_store_resolve(&c->real_user, &c->real_secret, c->p->cfg.store, c->repo, time(NULL));
    if (err < 0) {
        al_log(AL_LOG_WARN, "no upstream credential for %s: %s", c->repo, al_error_last());
        /* the owner's scope is what an operator usually adds */
        const char *slash = strchr(c->repo + strlen(c->host) + 1, '/');
        int owner_len = slash ? (int)(slash - c->repo) : (int)strlen(c->repo);
        err = err == AL_ENOTFOUND
                  ? send_fail(c, 502,
                              "airlock: no upstream credential for %s: an operator adds one for"
                              " its owner with `airlock creds add --scope %.*s` (or for the"
                              " repository alone: --scope %s)",
                              c->repo, owner_len, c->repo, c->repo)
                  : send_fail(c, 502, "airlock: cannot obtain an upstream credential for %s: %s",
                              c->repo, al_error_last());
        goto out;
    }
    if (!(c->sess = gp_sess_get(c->p, c->claims.session))) {
        err = send_fail(c, 500, "airlock: out of memory");
        goto out;
    }
    c->op = op;
    c->authed = 1;
    struct gp_wire w;
    gp_wire_init(&w, c->out, sizeof(c->out), GP_CH_AUTH_OK);
    gp_wire_str(&w, c->claims.session);
    gp_wire_str(&w, c->claims.user);
    gp_wire_str(&w, c->repo);
    err = gp_chan_send(c->ch, &w, NULL, 0);
out:
    OPENSSL_cleanse(&m, sizeof(m));
    return err;
}

/* ---- push commands ---- */

/* Checks one command against the token; returns a reason or NULL. */
static const char *command_check(const struct creds_claims *claims, const struct gp_command *cmd)
{
    if (!gp_refname_valid(cmd->ref, strlen(cmd->ref)))
        return "invalid ref name";
    if (gp_oid_is_zero(cmd->new_oid))
        return "deleting refs is not allowed";
    int allowed = creds_claims_allow_ref(claims, cmd->ref);
    if (strncmp(cmd->ref, "refs/tags/", 10) == 0 && !allowed)
        return "pushing tags is not allowed";
    if (strncmp(cmd->ref, "refs/heads/", 11) != 0 && !allowed)
        return "only branches (refs/heads/) may be pushed";
    if (!allowed)
        return "this token may not push to this branch";
    return NULL;
}

static int oid_ok(const char *s)
{
    if (strlen(s) != GP_OID_HEX)
        return 0;
    for (const char *q = s; *q; q++)
        if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f')))
            return 0;
    return 1;
}

/* A capability or push option keeps to printable ASCII; a capability also
 * has no space (they are space-separated). */
static int caps_ok(const char *caps)
{
    for (const char *q = caps; *q; q++)
        if ((unsigned char)*q < 0x21 && *q != ' ')
            return 0;
    return 1;
}

static void audit_push(struct kconn *c, char **reasons, const char *decision, const char *reason,
                       uint64_t bytes, long upstream, const char *upstream_report)
{
    json_t *refs = json_array();
    for (size_t i = 0; i < c->ncmds; i++)
        json_array_append_new(refs, json_pack("{s:s, s:s, s:s, s:s?}", "ref", c->cmds[i].ref, "old",
                                              c->cmds[i].old_oid, "new", c->cmds[i].new_oid,
                                              "refused", reasons ? reasons[i] : NULL));
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:o, s:s, s:s?, s:I, s:I, s:s?}", "event",
                          "push", "time", (json_int_t)time(NULL), "session", c->claims.session,
                          "user", c->claims.user, "repo", c->repo, "refs", refs, "decision",
                          decision, "reason", reason, "bytes", (json_int_t)bytes, "upstream_status",
                          (json_int_t)upstream, "upstream_report", upstream_report);
    if (o)
        gp_audit_write(c->p, c->claims.session, o);
    json_decref(o);
}

static int collect_secret(const char *secret, void *payload)
{
    return al_strlist_push_unique(payload, secret) < 0;
}

/* SECRETS: the fingerprints of every real credential this process holds,
 * in parts. */
static int send_secrets(struct kconn *c)
{
    struct al_strlist secrets = AL_STRLIST_INIT;
    struct al_buf blob;
    al_buf_init(&blob, GP_CHAN_BLOB_MAX);
    int err = 0;
    if (creds_store_foreach_secret(c->p->cfg.store, collect_secret, &secrets) != 0 ||
        al_strlist_push_unique(&secrets, c->real_secret) < 0)
        err = AL_ENOMEM;
    if (err == 0)
        err = gp_secretset_build(&blob, (const char *const *)secrets.items, secrets.len);
    for (size_t i = 0; i < secrets.len; i++)
        OPENSSL_cleanse(secrets.items[i], strlen(secrets.items[i]));
    al_strlist_free(&secrets);
    size_t off = 0;
    const size_t part = GP_CHAN_DATA_MAX - 16;
    do {
        size_t n = blob.len - off < part ? blob.len - off : part;
        struct gp_wire w;
        gp_wire_init(&w, c->out, sizeof(c->out), GP_CH_SECRETS);
        gp_wire_u8(&w, err == 0 && off + n == blob.len);
        gp_wire_bin(&w, blob.ptr ? blob.ptr + off : "", err == 0 ? n : 0);
        if (gp_chan_send(c->ch, &w, NULL, 0) < 0)
            break;
        off += n;
    } while (err == 0 && off < blob.len);
    al_buf_free(&blob);
    return err;
}

static int handle_push_part(struct kconn *c, int type, const uint8_t *msg, size_t len)
{
    char a[4096];
    if (!c->authed || c->op != CREDS_OP_PUSH || c->push_checked || c->sub)
        return al_error_set(AL_EINVAL, "push message out of order");
    if (type == GP_CH_PUSH_SHALLOW) {
        if (gp_msg_str_decode(type, a, sizeof(a), msg, len) < 0 || !oid_ok(a) ||
            c->shallow.len >= GP_RECEIVE_MAX_SHALLOW)
            return al_error_set(AL_EINVAL, "bad PUSH_SHALLOW message");
        return al_strlist_push(&c->shallow, a);
    }
    if (type == GP_CH_PUSH_OPT) {
        if (gp_msg_str_decode(type, a, sizeof(a), msg, len) < 0 || c->opts.len >= 100)
            return al_error_set(AL_EINVAL, "bad PUSH_OPT message");
        return al_strlist_push(&c->opts, a);
    }
    if (type == GP_CH_PUSH_CMD) {
        struct gp_msg_cmd m;
        if (gp_msg_cmd_decode(&m, msg, len) < 0 || !oid_ok(m.old_oid) || !oid_ok(m.new_oid) ||
            !m.ref[0] || c->ncmds >= GP_RECEIVE_MAX_CMDS || c->opts.len)
            return al_error_set(AL_EINVAL, "bad PUSH_CMD message");
        struct gp_command *cmds = realloc(c->cmds, (c->ncmds + 1) * sizeof(*cmds));
        if (!cmds)
            return AL_ENOMEM;
        c->cmds = cmds;
        memcpy(cmds[c->ncmds].old_oid, m.old_oid, GP_OID_HEX + 1);
        memcpy(cmds[c->ncmds].new_oid, m.new_oid, GP_OID_HEX + 1);
        if (!(cmds[c->ncmds].ref = strdup(m.ref)))
            return AL_ENOMEM;
        c->ncmds++;
        return 0;
    }
    /* PUSH_HEAD: the list is complete; check every command. */
    if (gp_msg_str_decode(type, c->caps, sizeof(c->caps), msg, len) < 0 || c->ncmds == 0 ||
        !caps_ok(c->caps))
        return al_error_set(AL_EINVAL, "bad PUSH_HEAD message");
    char **reasons = calloc(c->ncmds, sizeof(*reasons));
    if (!reasons)
        return AL_ENOMEM;
    uint16_t refused = 0;
    int err = 0;
    for (size_t i = 0; i < c->ncmds && err == 0; i++) {
        const char *why = command_check(&c->claims, &c->cmds[i]);
        if (!why)
            continue;
        refused++;
        reasons[i] = (char *)why;
        struct gp_wire w;
        gp_wire_init(&w, c->out, sizeof(c->out), GP_CH_VERDICT);
        gp_wire_u16(&w, (uint16_t)i);
        gp_wire_str(&w, why);
        err = gp_chan_send(c->ch, &w, NULL, 0);
    }
    if (refused) {
        const char *first = NULL;
        for (size_t i = 0; i < c->ncmds && !first; i++)
            first = reasons[i];
        audit_push(c, reasons, "refused", first, 0, 0, NULL);
    }
    free(reasons);
    struct gp_wire w;
    gp_wire_init(&w, c->out, sizeof(c->out), GP_CH_VERDICTS_END);
    gp_wire_u16(&w, refused);
    if (err == 0)
        err = gp_chan_send(c->ch, &w, NULL, 0);
    if (err == 0 && !refused) {
        c->push_checked = 1;
        if (c->p->cfg.leak_guard)
            err = send_secrets(c);
    }
    return err;
}

/* The receive-pack request head, re-encoded from the checked commands. */
static int push_head_build(struct kconn *c, struct al_buf *out)
{
    int err = 0;
    for (size_t i = 0; i < c->shallow.len && err == 0; i++)
        err = gp_pktline_printf(out, "shallow %s\n", c->shallow.items[i]);
    for (size_t i = 0; i < c->ncmds && err == 0; i++) {
        const struct gp_command *cmd = &c->cmds[i];
        if (i == 0)
            err = gp_pktline_printf(out, "%s %s %s%c%s", cmd->old_oid, cmd->new_oid, cmd->ref, 0,
                                    c->caps);
        else
            err = gp_pktline_printf(out, "%s %s %s", cmd->old_oid, cmd->new_oid, cmd->ref);
    }
    if (err == 0)
        err = gp_pktline_flush(out);
    if (err == 0 && c->opts.len) {
        for (size_t i = 0; i < c->opts.len && err == 0; i++)
            err = gp_pktline_printf(out, "%s", c->opts.items[i]);
        if (err == 0)
            err = gp_pktline_flush(out);
    }
    return err;
}

static int handle_channel(struct kconn *c);

/* ---- upstream transfer ---- */

struct kxfer {
    struct kconn *c;
    enum gp_req_kind kind;
    int direct; /* the answer goes straight to the client's socket */
    long status;
    char ctype[128];
    int head_sent;
    /* request body: pre[] (a push's head), then the worker's DATA */
    const char *pre;
    size_t pre_len, pre_off;
    const uint8_t *pend;
    size_t pend_len;
    int body_ended;
    int aborted; /* the worker sent ABORT (or went away) */
    char abort_reason[256];
    int revoked;
    int send_failed; /* the worker's end is gone */
    uint64_t up_bytes, down_bytes;
    struct al_buf report; /* the start of a push's answer, for the audit */
};

/* True when the session or token was revoked since the token check:
 * checked before every piece of the body goes upstream, so an upload cut
 * short by a revocation never completes and upstream updates no ref. */
static int kx_revoked(struct kxfer *x)
{
    gp_proxy *p = x->c->p;
    unsigned gen = atomic_load(&p->revoke_gen);
    if (gen != x->c->revoke_gen) {
        x->c->revoke_gen = gen;
        x->revoked = gp_proxy_is_revoked(x->c->claims.session, x->c->claims.jti, p);
    }
    return x->revoked;
}

static size_t kx_read(char *dst, size_t size, size_t nmemb, void *u)
{
    struct kxfer *x = u;
    size_t max = size * nmemb;
    if (kx_revoked(x) || x->aborted)
        return CURL_READFUNC_ABORT;
    if (x->pre_off < x->pre_len) {
        size_t n = x->pre_len - x->pre_off < max ? x->pre_len - x->pre_off : max;
        memcpy(dst, x->pre + x->pre_off, n);
        x->pre_off += n;
        x->up_bytes += n;
        return n;
    }
    while (x->pend_len == 0 && !x->body_ended) {
        int fds[1];
        size_t nfds;
        ssize_t n = gp_chan_recv(x->c->ch, x->c->in, sizeof(x->c->in), fds, 0, &nfds);
        struct gp_rd r;
        int type = n > 0 ? gp_rd_init(&r, x->c->in, (size_t)n) : 0;
        if (type == GP_CH_DATA) {
            x->pend = gp_rd_rest(&r, &x->pend_len);
        } else if (type == GP_CH_CHANNEL && gp_rd_end(&r, "CHANNEL") == 0) {
            /* a push's checks want the mirror while its upload is held */
            int err = handle_channel(x->c);
            if (err < 0 && err != AL_EPERM) {
                x->aborted = 1;
                snprintf(x->abort_reason, sizeof(x->abort_reason), "the front worker went away");
                return CURL_READFUNC_ABORT;
            }
        } else if (type == GP_CH_END && gp_rd_end(&r, "END") == 0) {
            x->body_ended = 1;
        } else {
            if (type == GP_CH_ABORT) {
                if (gp_msg_str_decode(type, x->abort_reason, sizeof(x->abort_reason), x->c->in,
                                      (size_t)n) < 0)
                    snprintf(x->abort_reason, sizeof(x->abort_reason), "aborted");
            } else {
                snprintf(x->abort_reason, sizeof(x->abort_reason), "%s",
                         n <= 0 ? "the front worker went away" : "unexpected message");
            }
            x->aborted = 1;
            return CURL_READFUNC_ABORT;
        }
    }
    if (x->body_ended && x->pend_len == 0)
        return 0;
    if (kx_revoked(x))
        return CURL_READFUNC_ABORT;
    size_t n = x->pend_len < max ? x->pend_len : max;
    memcpy(dst, x->pend, n);
    x->pend += n;
    x->pend_len -= n;
    x->up_bytes += n;
    return n;
}

static size_t kx_header(char *data, size_t size, size_t nmemb, void *u)
{
    struct kxfer *x = u;
    size_t len = size * nmemb;
    if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
        x->ctype[0] = '\0';
        const char *sp = memchr(data, ' ', len);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if (len > 13 && strncasecmp(data, "Content-Type:", 13) == 0) {
        const char *v = data + 13;
        size_t vl = len - 13;
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        /* Only a plain printable media type is relayed. */
        if (vl < sizeof(x->ctype)) {
            int ok = 1;
            for (size_t i = 0; i < vl; i++)
                ok &= v[i] >= 0x20 && v[i] < 0x7f;
            if (ok) {
                memcpy(x->ctype, v, vl);
                x->ctype[vl] = '\0';
            }
        }
    }
    return len;
}

static size_t kx_write(char *data, size_t size, size_t nmemb, void *u)
{
    struct kxfer *x = u;
    size_t len = size * nmemb;
    if (x->status < 200 || x->status >= 300)
        return len; /* swallowed; our own answer follows */
    struct gp_wire w;
    if (!x->head_sent) {
        const char *ctype = x->ctype[0] ? x->ctype : "application/octet-stream";
        gp_wire_init(&w, x->c->out, sizeof(x->c->out), GP_CH_HEAD);
        gp_wire_u16(&w, 200);
        gp_wire_str(&w, ctype);
        gp_wire_u8(&w, (uint8_t)x->direct);
        if (gp_chan_send(x->c->ch, &w, NULL, 0) < 0) {
            x->send_failed = 1;
            return 0;
        }
        x->head_sent = 1;
        if (x->direct) {
            char head[300];
            int n = snprintf(head, sizeof(head),
                             "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n"
                             "Connection: close\r\n\r\n",
                             ctype);
            if (gp_write_all(x->c->client, head, (size_t)n) < 0) {
                x->send_failed = 1;
                return 0;
            }
        }
    }
    if (x->direct) {
        if (gp_write_all(x->c->client, data, len) < 0) {
            x->send_failed = 1;
            return 0;
        }
        x->down_bytes += len;
        return len;
    }
    if (x->kind == GP_REQ_RECEIVE_PACK && x->report.len < 4096)
        al_buf_append(&x->report, data, len < 4096 - x->report.len ? len : 4096 - x->report.len);
    for (size_t off = 0; off < len;) {
        size_t n = len - off < GP_CHAN_DATA_MAX ? len - off : GP_CHAN_DATA_MAX;
        gp_wire_init(&w, x->c->out, sizeof(x->c->out), GP_CH_DATA);
        gp_wire_raw(&w, data + off, n);
        if (gp_chan_send(x->c->ch, &w, NULL, 0) < 0) {
            x->send_failed = 1;
            return 0;
        }
        off += n;
    }
    x->down_bytes += len;
    return len;
}

/* "Authorization: Basic base64(user:secret)"; allocated; wipe when done. */
static char *auth_header_make(const char *user, const char *secret)
{
    size_t plain_len = strlen(user) + 1 + strlen(secret);
    char *plain = malloc(plain_len + 1);
    size_t enc_cap = AL_BASE64_ENCODED_SIZE(plain_len);
    char *hdr = malloc(enc_cap + 21);
    if (!plain || !hdr) {
        free(plain);
        free(hdr);
        return NULL;
    }
    snprintf(plain, plain_len + 1, "%s:%s", user, secret);
    memcpy(hdr, "Authorization: Basic ", 21);
    long n = al_base64_encode_buf(hdr + 21, enc_cap, (const unsigned char *)plain, plain_len);
    OPENSSL_cleanse(plain, plain_len);
    free(plain);
    if (n < 0) { /* cannot happen: enc_cap is the size it needs */
        free(hdr);
        return NULL;
    }
    return hdr;
}

static enum gp_endpoint kind_endpoint(enum gp_req_kind kind)
{
    switch (kind) {
    case GP_REQ_INFO_RECEIVE:
        return GP_EP_INFO_REFS_RECEIVE;
    case GP_REQ_UPLOAD_PACK:
        return GP_EP_UPLOAD_PACK;
    case GP_REQ_RECEIVE_PACK:
        return GP_EP_RECEIVE_PACK;
    default:
        return GP_EP_INFO_REFS_UPLOAD;
    }
}

/* The answer to a transfer that did not relay an upstream body. */
static void kx_finish_fail(struct kxfer *x, CURLcode rc)
{
    struct kconn *c = x->c;
    if (x->revoked) {
        send_fail(c, 403, "airlock: session %s was revoked", c->claims.session);
    } else if (x->aborted) {
        send_fail(c, 400, "airlock: %s", x->abort_reason);
    } else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
        al_log(AL_LOG_WARN, "%s: upstream: %s", c->repo, curl_easy_strerror(rc));
        send_fail(c, 502,
                  "airlock: upstream %s unreachable: unknown host (the name does not resolve)",
                  c->host);
    } else if (rc == CURLE_COULDNT_CONNECT) {
        al_log(AL_LOG_WARN, "%s: upstream: %s", c->repo, curl_easy_strerror(rc));
        send_fail(c, 502,
                  "airlock: upstream %s unreachable: connection refused (nothing listens there)"
                  " or no route to it",
                  c->host);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        al_log(AL_LOG_WARN, "%s: upstream: %s", c->repo, curl_easy_strerror(rc));
        send_fail(c, 502, "airlock: upstream %s unreachable: no answer in time", c->host);
    } else if (rc != CURLE_OK) {
        al_log(AL_LOG_WARN, "%s: upstream: %s", c->repo, curl_easy_strerror(rc));
        send_fail(c, 502, "airlock: upstream %s unreachable: %s", c->host, curl_easy_strerror(rc));
    } else if (x->status == 401 || x->status == 403) {
        al_log(AL_LOG_WARN, "%s: upstream refused airlock's credential (%ld)", c->repo, x->status);
        send_fail(c, 502,
                  "airlock: upstream refused airlock's credential for %s (HTTP %ld: the"
                  " credential is wrong, expired, or has no access to the repository)",
                  c->repo, x->status);
    } else if (x->status == 404) {
        send_fail(c, 404, "airlock: %s not found upstream (404)", c->repo);
    } else if (x->status >= 300 && x->status < 400) {
        send_fail(c, 502, "airlock: upstream redirected; redirects are not followed");
    } else {
        send_fail(c, 502, "airlock: upstream answered %ld", x->status);
    }
}

static int handle_request(struct kconn *c, const uint8_t *msg, size_t len)
{
    struct gp_msg_request m;
    int err = gp_msg_request_decode(&m, msg, len);
    unsigned kind = m.kind, enc = m.encoding;
    uint64_t length = m.length;
    const char *gproto = m.git_protocol;
    if (err == 0 && m.direct &&
        (c->client < 0 || (kind != GP_REQ_INFO_UPLOAD && kind != GP_REQ_UPLOAD_PACK)))
        err = al_error_set(AL_EINVAL, "a direct answer is for fetches on the first channel");
    int post = kind == GP_REQ_UPLOAD_PACK || kind == GP_REQ_RECEIVE_PACK;
    if (err == 0 &&
        (!c->authed || kind < GP_REQ_INFO_UPLOAD || kind > GP_REQ_RECEIVE_PACK ||
         enc > GP_ENC_GZIP || (gproto[0] && gp_hdr_git_protocol_check(gproto, strlen(gproto)) < 0)))
        err = al_error_set(AL_EINVAL, "bad REQUEST message");
    if (err == 0 && (kind == GP_REQ_RECEIVE_PACK || kind == GP_REQ_INFO_RECEIVE) &&
        c->op != CREDS_OP_PUSH)
        err = al_error_set(AL_EINVAL, "REQUEST for push on a fetch channel");
    if (err == 0 && kind == GP_REQ_RECEIVE_PACK && (!c->push_checked || enc != GP_ENC_NONE))
        err = al_error_set(AL_EINVAL, "REQUEST for a push whose commands were not checked");
    if (err == 0 && c->sub && kind != GP_REQ_INFO_UPLOAD && kind != GP_REQ_UPLOAD_PACK)
        err = al_error_set(AL_EINVAL, "a second channel only fetches");
    if (err < 0)
        return err;
    struct kxfer x = {.c = c, .kind = kind, .direct = m.direct != 0};
    al_buf_init(&x.report, 4096);
    struct al_buf head;
    al_buf_init(&head, GP_RECEIVE_HEAD_MAX);
    char url[2048], hdr[300];
    struct curl_slist *headers = NULL;
    char *auth = NULL;
    CURL *curl = NULL;
    const struct gp_upstream *up = c->up;
    enum gp_endpoint ep = kind_endpoint(kind);
    int n = up ? snprintf(url, sizeof(url), "%s/%s.git/%s", up->url, c->path, gp_endpoint_path(ep))
               : snprintf(url, sizeof(url), "https://%s/%s.git/%s", c->host, c->path,
                          gp_endpoint_path(ep));
    if (n < 0 || (size_t)n >= sizeof(url)) {
        send_fail(c, 500, "airlock: upstream URL too long");
        goto out;
    }
    if (kind == GP_REQ_RECEIVE_PACK && push_head_build(c, &head) < 0) {
        send_fail(c, 500, "airlock: cannot encode the push");
        goto out;
    }
    if (!(auth = auth_header_make(c->real_user, c->real_secret)) || !(curl = curl_easy_init())) {
        send_fail(c, 500, "airlock: out of memory");
        goto out;
    }
    /* Every header is ours: fixed strings, or values checked above. */
    headers = curl_slist_append(headers, auth);
    snprintf(hdr, sizeof(hdr), "Accept: %s", gp_endpoint_accept(ep));
    headers = curl_slist_append(headers, hdr);
    if (post) {
        snprintf(hdr, sizeof(hdr), "Content-Type: %s", gp_endpoint_content_type(ep));
        headers = curl_slist_append(headers, hdr);
    }
    if (gproto[0]) {
        snprintf(hdr, sizeof(hdr), "Git-Protocol: %s", gproto);
        headers = curl_slist_append(headers, hdr);
    }
    if (post && enc == GP_ENC_GZIP)
        headers = curl_slist_append(headers, "Content-Encoding: gzip");
    headers = curl_slist_append(headers, "Expect:");
    if (post && length == GP_LEN_CHUNKED)
        headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "git/2 (airlock-gitproxy)");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L); /* never carry the token elsewhere */
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)GP_CONN_TIMEOUT_SEC);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, kx_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, kx_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, (long)GP_IO_CHUNK);
    curl_easy_setopt(curl, CURLOPT_SHARE, c->sess->share);
    if (up && up->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, up->ca_file);
    if (post) {
        x.pre = head.ptr;
        x.pre_len = head.len;
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, kx_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, &x);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         length == GP_LEN_CHUNKED ? (curl_off_t)-1
                                                  : (curl_off_t)(length + head.len));
        curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, (long)GP_IO_CHUNK);
    }
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    CURLcode rc = curl_easy_perform(curl);
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    if (al_log_enabled(AL_LOG_DEBUG)) {
        double pre = 0, start = 0, total = 0;
        curl_easy_getinfo(curl, CURLINFO_PRETRANSFER_TIME, &pre);
        curl_easy_getinfo(curl, CURLINFO_STARTTRANSFER_TIME, &start);
        curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME, &total);
        al_log(AL_LOG_DEBUG,
               "%s: upstream %s: %llu bytes up, %llu down; connected %.1f ms, first answer byte"
               " %.1f ms, done %.1f ms",
               c->repo, gp_endpoint_path(ep), (unsigned long long)x.up_bytes,
               (unsigned long long)x.down_bytes, pre * 1e3, start * 1e3, total * 1e3);
    }
    if (x.revoked)
        al_log(AL_LOG_WARN, "%s: session %s revoked during the request; upload aborted", c->repo,
               c->claims.session);
    if (x.send_failed) {
        err = AL_EIO;
    } else if (x.head_sent && !x.revoked) {
        if (rc != CURLE_OK)
            al_log(AL_LOG_WARN, "%s: transfer cut short: %s", c->repo, curl_easy_strerror(rc));
        struct gp_wire w;
        gp_wire_init(&w, c->out, sizeof(c->out), GP_CH_DONE);
        gp_wire_u8(&w, rc == CURLE_OK);
        gp_wire_str(&w, rc == CURLE_OK ? "" : curl_easy_strerror(rc));
        err = gp_chan_send(c->ch, &w, NULL, 0);
    } else if (!x.head_sent && !x.revoked && !x.aborted && rc == CURLE_OK && x.status >= 200 &&
               x.status < 300) {
        /* an empty 2xx body */
        struct gp_wire w;
        gp_wire_init(&w, c->out, sizeof(c->out), GP_CH_HEAD);
        gp_wire_u16(&w, 200);
        gp_wire_str(&w, x.ctype[0] ? x.ctype : "application/octet-stream");
        gp_wire_u8(&w, 0); /* nothing to relay: the worker answers */
        err = gp_chan_send(c->ch, &w, NULL, 0);
        gp_wire_init(&w, c->out, sizeof(c->out), GP_CH_DONE);
        gp_wire_u8(&w, 1);
        gp_wire_str(&w, "");
        if (err == 0)
            err = gp_chan_send(c->ch, &w, NULL, 0);
    } else {
        kx_finish_fail(&x, rc);
    }
    if (kind == GP_REQ_RECEIVE_PACK && !x.aborted) {
        /* The report is pkt-lines, possibly side-band: only printable bytes
         * go into the audit record. */
        for (size_t i = 0; i < x.report.len; i++)
            if (!isprint((unsigned char)x.report.ptr[i]))
                x.report.ptr[i] = ' ';
        const char *decision = x.revoked                           ? "refused"
                               : x.status >= 200 && x.status < 300 ? "forwarded"
                                                                   : "failed";
        audit_push(c, NULL, decision, x.revoked ? "the session was revoked" : NULL, x.up_bytes,
                   x.status, x.report.ptr);
    }
    if (kind == GP_REQ_RECEIVE_PACK)
        c->push_checked = 0; /* one pack per checked command list */
out:
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    creds_secret_free(auth);
    al_buf_free(&head);
    al_buf_free(&x.report);
    return err;
}

/* REFUSE_REF / OUTCOME: a push the worker refused after the fact (leak
 * guard, fast-forward check, malformed pack): recorded in the audit log. */
static int handle_outcome(struct kconn *c, int type, const uint8_t *msg, size_t len)
{
    if (!c->authed || c->op != CREDS_OP_PUSH)
        return al_error_set(AL_EINVAL, "OUTCOME out of order");
    if (type == GP_CH_REFUSE_REF) {
        struct gp_msg_refuse m;
        if (gp_msg_refuse_decode(&m, msg, len) < 0 || m.index >= c->ncmds)
            return al_error_set(AL_EINVAL, "bad REFUSE_REF message");
        if (!c->worker_reasons && !(c->worker_reasons = calloc(c->ncmds, sizeof(char *))))
            return AL_ENOMEM;
        free(c->worker_reasons[m.index]);
        return (c->worker_reasons[m.index] = strdup(m.reason)) ? 0 : AL_ENOMEM;
    }
    struct gp_msg_outcome m;
    if (gp_msg_outcome_decode(&m, msg, len) < 0 ||
        (strcmp(m.decision, "refused") != 0 && strcmp(m.decision, "failed") != 0))
        return al_error_set(AL_EINVAL, "bad OUTCOME message");
    audit_push(c, c->worker_reasons, m.decision, m.reason[0] ? m.reason : NULL, 0, 0, NULL);
    if (c->worker_reasons)
        for (size_t i = 0; i < c->ncmds; i++) {
            free(c->worker_reasons[i]);
            c->worker_reasons[i] = NULL;
        }
    return 0;
}

struct sub_arg {
    gp_proxy *p;
    int ch;
    struct kconn *parent; /* only read before the thread signals `ready` */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int ready;
    int ok;
};

static void serve_loop(struct kconn *c);

/* A second channel of an authorised connection (the worker's mirror
 * fetches): same session, repository and credential, fetches only. */
static void *sub_main(void *arg)
{
    struct sub_arg *a = arg;
    struct kconn *c = calloc(1, sizeof(*c));
    struct kconn *par = a->parent;
    int ok = 0;
    if (c) {
        c->p = a->p;
        c->ch = a->ch;
        c->client = -1;
        c->listener_session = par->listener_session;
        c->sub = 1;
        c->authed = 1;
        c->op = CREDS_OP_FETCH;
        c->up = par->up;
        c->revoke_gen = par->revoke_gen;
        memcpy(c->host, par->host, sizeof(c->host));
        memcpy(c->repo, par->repo, sizeof(c->repo));
        memcpy(c->path, par->path, sizeof(c->path));
        c->claims.session = strdup(par->claims.session);
        c->claims.user = strdup(par->claims.user);
        c->claims.jti = strdup(par->claims.jti);
        c->real_user = strdup(par->real_user);
        c->real_secret = strdup(par->real_secret);
        c->sess = gp_sess_get(c->p, par->claims.session);
        ok = c->claims.session && c->claims.user && c->claims.jti && c->real_user &&
             c->real_secret && c->sess;
    }
    pthread_mutex_lock(&a->lock);
    a->ready = 1;
    a->ok = ok;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    /* `a` belongs to the parent from here on; the channel's end is ours */
    int ch = a->ch;
    if (ok)
        serve_loop(c);
    if (c) {
        conn_clear(c);
        free(c);
    }
    close(ch);
    return NULL;
}

static int handle_channel(struct kconn *c)
{
    int sv[2];
    if (!c->authed || c->sub)
        return al_error_set(AL_EINVAL, "CHANNEL before AUTH");
    if (gp_chan_pair(sv) < 0)
        return send_fail(c, 500, "airlock: %s", al_error_last());
    struct sub_arg a = {.p = c->p, .ch = sv[0], .parent = c};
    pthread_mutex_init(&a.lock, NULL);
    pthread_cond_init(&a.cond, NULL);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, sub_main, &a);
    pthread_attr_destroy(&attr);
    int ok = 0;
    if (rc == 0) {
        pthread_mutex_lock(&a.lock);
        while (!a.ready)
            pthread_cond_wait(&a.cond, &a.lock);
        ok = a.ok;
        pthread_mutex_unlock(&a.lock);
    }
    pthread_mutex_destroy(&a.lock);
    pthread_cond_destroy(&a.cond);
    int err;
    if (ok) {
        struct gp_wire w;
        gp_wire_init(&w, c->out, sizeof(c->out), GP_CH_CHANNEL);
        err = gp_chan_send(c->ch, &w, &sv[1], 1);
    } else {
        err = send_fail(c, 500, "airlock: cannot open a second channel");
        if (rc != 0)
            close(sv[0]); /* else the thread closes its end as it ends */
    }
    close(sv[1]);
    return err;
}

/* Reads and answers the worker's messages until it closes the channel or
 * breaks the protocol (then the channel is shut down). */
static void serve_loop(struct kconn *c)
{
    for (;;) {
        int fds[1];
        size_t nfds;
        ssize_t n = gp_chan_recv(c->ch, c->in, sizeof(c->in), fds, 0, &nfds);
        if (n <= 0)
            break;
        struct gp_rd r;
        int type = gp_rd_init(&r, c->in, (size_t)n);
        int err;
        switch (type) {
        case GP_CH_AUTH:
            err = handle_auth(c, c->in, (size_t)n);
            if (err == AL_EPERM)
                err = 0; /* refused: FAIL was sent */
            break;
        case GP_CH_PUSH_SHALLOW:
        case GP_CH_PUSH_CMD:
        case GP_CH_PUSH_OPT:
        case GP_CH_PUSH_HEAD:
            err = handle_push_part(c, type, c->in, (size_t)n);
            break;
        case GP_CH_REQUEST:
            err = handle_request(c, c->in, (size_t)n);
            break;
        case GP_CH_REFUSE_REF:
        case GP_CH_OUTCOME:
            err = handle_outcome(c, type, c->in, (size_t)n);
            break;
        case GP_CH_CHANNEL:
            err = gp_rd_end(&r, "CHANNEL");
            if (err == 0)
                err = handle_channel(c);
            if (err == AL_EPERM)
                err = 0;
            break;
        case GP_CH_DATA:
        case GP_CH_END:
        case GP_CH_ABORT:
            /* the rest of a body whose request already ended */
            err = 0;
            break;
        default:
            err = al_error_set(AL_EINVAL, "unknown message type %d", type);
        }
        if (err < 0 && err != AL_EIO) {
            al_log(AL_LOG_WARN, "session %s: front worker: %s; closing its channel",
                   c->listener_session, al_error_last());
            break;
        }
        if (err == AL_EIO)
            break;
    }
    shutdown(c->ch, SHUT_RDWR);
}

void gp_keyd_conn_serve(gp_proxy *p, int ch, int client, const char *session)
{
    struct kconn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->p = p;
    c->ch = ch;
    c->client = client;
    c->listener_session = session;
    serve_loop(c);
    if (c->authed)
        al_log(AL_LOG_INFO, "session=%s user=%s repo=%s done", c->claims.session, c->claims.user,
               c->repo);
    conn_clear(c);
    free(c);
}
