/* A push, in a front worker (docs/gitproxy.md, "Push"):
 *   1. the command list is parsed and sent to the key holder, which checks
 *      every command against the token (and records refusals);
 *   2. the pack streams upstream as it arrives (the key holder re-encodes
 *      the command list and sends it first), and is indexed here at the
 *      same time; its last bytes are held back;
 *   3. at its end every object is scanned for secrets and every update's
 *      fast-forward is decided (from the pack's commits; a mirror only when
 *      they do not reach the old tip);
 *   4. all passed: the held bytes go, and upstream's answer comes back.
 *      Anything refused: the upload is aborted, so upstream gets an
 *      incomplete pack and updates nothing, and git gets per-ref reasons.
 */
#include "gp_worker.h"
#include "gp_inspect.h"

#include "airlock/error.h"
#include "airlock/gp_packscan.h"
#include "airlock/gp_pktline.h"
#include "airlock/gp_receive.h"
#include "airlock/gp_scan.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CT_RECEIVE_RESULT "application/x-git-receive-pack-result"
#define GP_IO_CHUNK       (64u << 10)
#define HOLD_BYTES        4096 /* the end of the pack, sent only once every check passed */
#define KEEPALIVE_S       20   /* during long checks, one held byte this often */

struct push {
    struct wrq *rq;
    struct gp_receive r;
    char **reasons; /* per command, NULL = fine */
    gp_secretset *secrets;
    gp_pack *pack;
    gp_packscan *scan;  /* the leak guard and commits over the pack as it streams */
    int spool_fd;       /* the pack as it came, for libgit2 when it is needed */
    int upload_aborted; /* a secret was seen: nothing more goes upstream */
    uint8_t hold[HOLD_BYTES];
    size_t hold_len;
    uint64_t pack_bytes;
    time_t last_sent;
    int streaming; /* REQUEST sent */
    int fault;     /* a server-side failure: its HTTP status (never the push's fault) */
    char fault_msg[400];
};

/* A check could not run here (or upstream could not be read): the push is
 * not the client's fault, so it gets a 5xx and the reason goes to the log. */
static void fault_set(struct push *ps, int status, const char *why)
{
    if (ps->fault)
        return;
    ps->fault = status;
    snprintf(ps->fault_msg, sizeof(ps->fault_msg), "%s", why);
    al_log(AL_LOG_ERROR, "session=%s repo=%s: push not forwarded (%d): %s", ps->rq->session,
           ps->rq->repo, status, why);
}

/* Sends report-status with every command refused (or an ERR line when
 * the client asked for no report). */
static int send_refusal(struct wrq *rq, const struct gp_receive *r, char **reasons)
{
    struct al_buf inner, outer;
    int err = 0;
    const char *first = NULL;
    al_buf_init(&inner, 8u << 20);
    al_buf_init(&outer, 8u << 20);
    for (size_t i = 0; i < r->ncmds && !first; i++)
        first = reasons[i];
    if (!gp_receive_has_cap(r, "report-status") && !gp_receive_has_cap(r, "report-status-v2")) {
        err = gp_pktline_printf(&outer, "ERR airlock: %s", first ? first : "push refused");
        goto send;
    }
    gp_pktline_printf(&inner, "unpack ok\n");
    for (size_t i = 0; i < r->ncmds; i++)
        gp_pktline_printf(&inner, "ng %s airlock: %s\n", r->cmds[i].ref,
                          reasons[i] ? reasons[i] : "refused because another ref was refused");
    gp_pktline_flush(&inner);
    if (gp_receive_has_cap(r, "side-band-64k") || gp_receive_has_cap(r, "side-band")) {
        size_t max = gp_receive_has_cap(r, "side-band-64k") ? 65515 : 995;
        static char band[65520];
        for (size_t off = 0; off < inner.len;) {
            size_t n = inner.len - off < max ? inner.len - off : max;
            band[0] = 1;
            memcpy(band + 1, inner.ptr + off, n);
            gp_pktline_append(&outer, band, n + 1);
            off += n;
        }
        err = gp_pktline_flush(&outer);
    } else {
        err = al_buf_append(&outer, inner.ptr, inner.len);
    }
send:
    if (err == 0) {
        rq->status = 200;
        rq->head_sent = 1;
        err = gp_http_respond(&rq->conn, 200, CT_RECEIVE_RESULT, NULL, outer.ptr, outer.len);
    }
    al_buf_free(&inner);
    al_buf_free(&outer);
    return err;
}

/* Tells the key holder why the push was refused, for its audit log. */
static void outcome_send(struct push *ps, const char *decision, const char *reason)
{
    struct wrq *rq = ps->rq;
    struct gp_wire w;
    char safe[500];
    for (size_t i = 0; ps->reasons && i < ps->r.ncmds; i++) {
        if (!ps->reasons[i])
            continue;
        gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_REFUSE_REF);
        gp_wire_u16(&w, (uint16_t)i);
        snprintf(safe, sizeof(safe), "%s", ps->reasons[i]);
        gp_wire_str(&w, safe);
        gp_chan_send(rq->ch, &w, NULL, 0);
    }
    gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_OUTCOME);
    gp_wire_str(&w, decision);
    snprintf(safe, sizeof(safe), "%s", reason ? reason : "");
    for (char *s = safe; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
    gp_wire_str(&w, safe);
    gp_chan_send(rq->ch, &w, NULL, 0);
}

/* Refuses every command that has no reason yet with `why`. */
static void refuse_all(struct push *ps, const char *why)
{
    for (size_t i = 0; i < ps->r.ncmds; i++)
        if (!ps->reasons[i])
            ps->reasons[i] = strdup(why);
}

static int any_refused(const struct push *ps)
{
    for (size_t i = 0; i < ps->r.ncmds; i++)
        if (ps->reasons[i])
            return 1;
    return 0;
}

/* 1: the command list went to the key holder and every command is
 * allowed; 0: refused (reasons set); < 0: the key holder failed (the client
 * was answered). */
static int commands_check(struct push *ps)
{
    struct wrq *rq = ps->rq;
    struct gp_receive *r = &ps->r;
    struct gp_wire w;
    int err = 0;
    for (size_t i = 0; i < r->shallow.len && err == 0; i++) {
        gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_PUSH_SHALLOW);
        gp_wire_str(&w, r->shallow.items[i]);
        err = gp_chan_send(rq->ch, &w, NULL, 0);
    }
    for (size_t i = 0; i < r->ncmds && err == 0; i++) {
        gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_PUSH_CMD);
        gp_wire_str(&w, r->cmds[i].old_oid);
        gp_wire_str(&w, r->cmds[i].new_oid);
        gp_wire_str(&w, r->cmds[i].ref);
        if (w.err) {
            /* a ref name with control bytes: refused by name, here */
            ps->reasons[i] = strdup("invalid ref name");
            continue;
        }
        err = gp_chan_send(rq->ch, &w, NULL, 0);
    }
    for (size_t i = 0; i < r->options.len && err == 0; i++) {
        gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_PUSH_OPT);
        gp_wire_str(&w, r->options.items[i]);
        if (w.err) {
            wk_respond_text(rq, 400,
                            "airlock: malformed receive-pack request: a push option"
                            " holds control bytes");
            return AL_EINVAL;
        }
        err = gp_chan_send(rq->ch, &w, NULL, 0);
    }
    if (err == 0 && any_refused(ps))
        return 0;
    struct al_buf caps;
    al_buf_init(&caps, 4000);
    for (size_t i = 0; i < r->caps.len && err == 0; i++)
        err = al_buf_printf(&caps, "%s%s", i ? " " : "", r->caps.items[i]);
    gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_PUSH_HEAD);
    gp_wire_str(&w, caps.ptr ? caps.ptr : "");
    al_buf_free(&caps);
    if (err < 0 || w.err) {
        wk_respond_text(rq, 400, "airlock: malformed receive-pack request: bad capabilities");
        return AL_EINVAL;
    }
    if ((err = gp_chan_send(rq->ch, &w, NULL, 0)) < 0) {
        wk_respond_text(rq, 503, "airlock: the git proxy is restarting; try again");
        return err;
    }
    for (;;) {
        size_t len;
        int type = wk_recv(rq, &len);
        struct gp_rd rd;
        char why[512];
        if (type == GP_CH_FAIL)
            return AL_EPERM;
        if (type == GP_CH_VERDICT) {
            gp_rd_init(&rd, rq->in, len);
            unsigned idx = gp_rd_u16(&rd);
            gp_rd_str(&rd, why, sizeof(why));
            if (gp_rd_end(&rd, "VERDICT") < 0 || idx >= r->ncmds)
                break;
            free(ps->reasons[idx]);
            ps->reasons[idx] = strdup(why);
            continue;
        }
        if (type == GP_CH_VERDICTS_END) {
            gp_rd_init(&rd, rq->in, len);
            unsigned refused = gp_rd_u16(&rd);
            if (gp_rd_end(&rd, "VERDICTS_END") < 0)
                break;
            return refused || any_refused(ps) ? 0 : 1;
        }
        break;
    }
    wk_respond_text(rq, 502, "airlock: the git proxy's key holder did not answer");
    return AL_EIO;
}

/* The fingerprints of the key holder's real credentials (SECRETS parts). */
static int secrets_receive(struct push *ps)
{
    struct wrq *rq = ps->rq;
    struct al_buf blob;
    al_buf_init(&blob, GP_CHAN_BLOB_MAX);
    int err = AL_EIO;
    for (;;) {
        size_t len, plen;
        int type = wk_recv(rq, &len);
        struct gp_rd rd;
        if (type != GP_CH_SECRETS)
            break;
        gp_rd_init(&rd, rq->in, len);
        unsigned last = gp_rd_u8(&rd);
        const uint8_t *part = gp_rd_bin(&rd, &plen);
        if (gp_rd_end(&rd, "SECRETS") < 0 || al_buf_append(&blob, part, plen) < 0)
            break;
        if (last) {
            err = gp_secretset_load(&ps->secrets, blob.ptr, blob.len);
            break;
        }
    }
    al_buf_free(&blob);
    return err;
}

/* Sends `len` bytes of the pack upstream, keeping the last HOLD_BYTES of
 * everything seen so far back. */
static int pack_forward(struct push *ps, const uint8_t *data, size_t len)
{
    struct wrq *rq = ps->rq;
    struct gp_wire w;
    size_t total = ps->hold_len + len;
    if (total <= HOLD_BYTES) {
        memcpy(ps->hold + ps->hold_len, data, len);
        ps->hold_len = total;
        return 0;
    }
    size_t send = total - HOLD_BYTES; /* from hold first, then data */
    size_t from_hold = send < ps->hold_len ? send : ps->hold_len;
    gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_DATA);
    gp_wire_raw(&w, ps->hold, from_hold);
    gp_wire_raw(&w, data, send - from_hold);
    int err = wk_send(rq, &w);
    /* what is left: the rest of hold, then the rest of data */
    memmove(ps->hold, ps->hold + from_hold, ps->hold_len - from_hold);
    ps->hold_len -= from_hold;
    memcpy(ps->hold + ps->hold_len, data + (send - from_hold), len - (send - from_hold));
    ps->hold_len += len - (send - from_hold);
    ps->last_sent = time(NULL);
    return err;
}

/* During long checks: one held byte now and then keeps upstream from
 * timing the upload out; the last one is never sent before the checks
 * pass. */
static void keepalive(void *payload)
{
    struct push *ps = payload;
    if (!ps->streaming || ps->upload_aborted || ps->hold_len < 2 ||
        time(NULL) - ps->last_sent < KEEPALIVE_S)
        return;
    struct gp_wire w;
    gp_wire_init(&w, ps->rq->out, sizeof(ps->rq->out), GP_CH_DATA);
    gp_wire_raw(&w, ps->hold, 1);
    if (wk_send(ps->rq, &w) == 0) {
        memmove(ps->hold, ps->hold + 1, --ps->hold_len);
        ps->last_sent = time(NULL);
    }
}

/* A second channel of this connection, for the mirror's fetches. Asked
 * for while the upload is held open: the key holder answers it between
 * reads of the pack. */
static int channel_open(struct wrq *rq)
{
    if (rq->sub_fd >= 0)
        return rq->sub_fd;
    if (gp_chan_send_type(rq->ch, GP_CH_CHANNEL) < 0)
        return AL_EIO;
    while (rq->sub_fd < 0 && !rq->done) {
        size_t len;
        int type = wk_recv(rq, &len);
        if (type < 0)
            return type;
    }
    return rq->sub_fd >= 0 ? rq->sub_fd : al_error_set(AL_EIO, "upstream ended the upload early");
}

/* Every check that needs the whole pack. */
static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Indexes the spooled pack with libgit2 (only when the streaming scan
 * cannot decide alone: deltas, a hit to name, a history that leaves the
 * pack), with keep-alives. 0, AL_EINVAL (the pack is refused: reasons
 * set) or a fault. */
static int pack_index(struct push *ps)
{
    struct wrq *rq = ps->rq;
    if (ps->pack)
        return 0;
    double t0 = mono_ms();
    int err = gp_pack_new(&ps->pack, rq->cfg->cache_dir);
    if (err < 0) {
        fault_set(ps, 503, al_error_last());
        return err;
    }
    uint8_t *chunk = malloc(GP_IO_CHUNK);
    if (!chunk) {
        fault_set(ps, 500, "out of memory");
        return AL_ENOMEM;
    }
    for (off_t off = 0; err == 0 && (uint64_t)off < ps->pack_bytes;) {
        ssize_t n = pread(ps->spool_fd, chunk, GP_IO_CHUNK, off);
        if (n <= 0) {
            err = al_error_set_errno(AL_EIO, n < 0 ? errno : EIO, "reading the spooled pack");
            fault_set(ps, 503, al_error_last());
            break;
        }
        if (gp_pack_append(ps->pack, chunk, (size_t)n) < 0) {
            err = AL_EINVAL;
            refuse_all(ps, al_error_last());
            break;
        }
        off += n;
        if ((off >> 20) % 64 == 0)
            keepalive(ps);
    }
    free(chunk);
    if (err == 0 && (err = gp_pack_commit(ps->pack, ps->pack_bytes == 0)) < 0)
        refuse_all(ps, al_error_last());
    al_log(AL_LOG_DEBUG, "%s: pack of %llu bytes indexed after the stream in %.1f ms", rq->repo,
           (unsigned long long)ps->pack_bytes, mono_ms() - t0);
    return err;
}

/* Every check that needs the whole pack. The streaming scan has already
 * looked into every whole object and knows the pack's commits: a pack
 * without deltas whose commits reach each old tip is decided without
 * indexing it. */
static void pack_checks(struct push *ps)
{
    struct wrq *rq = ps->rq;
    char *why = NULL;
    double t0 = mono_ms();
    if (ps->pack_bytes && gp_packscan_finish(ps->scan) < 0) {
        refuse_all(ps, al_error_last());
        return;
    }
    if (rq->cfg->leak_guard) {
        uint64_t off;
        enum gp_obj_type type;
        const char *what;
        size_t n;
        const uint64_t *later = gp_packscan_later(ps->scan, &n);
        int hit = 0, found = gp_packscan_hit(ps->scan, &off, &type, &what);
        if ((found || n) && pack_index(ps) < 0)
            return;
        if (found)
            hit = gp_pack_describe(ps->pack, off, (int)type, what, &why);
        else if (n)
            hit = gp_pack_scan_at(ps->pack, later, n, ps->secrets, &why, keepalive, ps);
        al_log(AL_LOG_DEBUG, "%s: leak guard finished %.1f ms after the pack", rq->repo,
               mono_ms() - t0);
        if (hit < 0) {
            fault_set(ps, 503, al_error_last());
            return;
        }
        if (hit) {
            for (size_t i = 0; i < ps->r.ncmds; i++)
                if (!ps->reasons[i] && !gp_oid_is_zero(ps->r.cmds[i].new_oid))
                    ps->reasons[i] = strdup(why);
            free(why);
            return;
        }
    }
    if (!rq->cfg->check_ff)
        return;
    int sub = -1;
    for (size_t i = 0; i < ps->r.ncmds; i++) {
        const struct gp_command *c = &ps->r.cmds[i];
        if (ps->reasons[i] || gp_oid_is_zero(c->old_oid) || strcmp(c->old_oid, c->new_oid) == 0)
            continue;
        int fault = 503;
        int ff = gp_packscan_descends(ps->scan, c->new_oid, c->old_oid);
        if (ff == AL_EAGAIN) {
            if (pack_index(ps) < 0)
                return;
            ff = gp_pack_descends(ps->pack, c->new_oid, c->old_oid);
        }
        if (ff == GP_FF_UNKNOWN) {
            keepalive(ps);
            if (ps->pack_bytes && pack_index(ps) < 0)
                return;
            if (sub < 0 && (sub = channel_open(rq)) < 0)
                ff = sub;
            else
                ff = gp_mirror_descends(&fault, rq->cfg->cache_dir, rq->repo, sub, ps->pack,
                                        c->new_oid, c->old_oid);
        }
        if (ff == GP_FF_NO) {
            ps->reasons[i] = strdup("non-fast-forward update refused");
        } else if (ff == GP_FF_UNKNOWN) {
            ps->reasons[i] = strdup("upstream changed; fetch first");
        } else if (ff < 0) {
            fault_set(ps, fault, al_error_last());
            return;
        }
    }
    al_log(AL_LOG_DEBUG, "%s: checks finished %.1f ms after the pack", rq->repo, mono_ms() - t0);
}

/* Leak guard over what is not in the pack: ref names and push options. */
static void names_scan(struct push *ps)
{
    const char *what;
    for (size_t i = 0; i < ps->r.ncmds; i++)
        if (!ps->reasons[i] &&
            gp_scan_buffer2(&what, ps->r.cmds[i].ref, strlen(ps->r.cmds[i].ref), ps->secrets)) {
            char msg[200];
            snprintf(msg, sizeof(msg), "the ref name contains %s", what);
            ps->reasons[i] = strdup(msg);
        }
    for (size_t i = 0; i < ps->r.options.len; i++) {
        const char *o = ps->r.options.items[i];
        if (gp_scan_buffer2(&what, o, strlen(o), ps->secrets)) {
            char msg[200];
            snprintf(msg, sizeof(msg), "a push option contains %s", what);
            refuse_all(ps, msg);
            return;
        }
    }
}

/* Streams the pack (head.ptr[skip..] first, then the client's body) to the
 * key holder and the indexer. 0 at its end; AL_ETOOBIG past max_push;
 * AL_EINVAL for a malformed body or pack (reasons set); AL_EIO when upstream
 * answered early (rq->done) or a side went away. */
static double mono_ms(void);

/* Appends to the spooled pack; a failure is the proxy's (503). */
static int spool_write(struct push *ps, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(ps->spool_fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            al_error_set_errno(AL_EIO, w < 0 ? errno : ENOSPC, "spooling the pushed pack");
            fault_set(ps, 503, al_error_last());
            return AL_EIO;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* An unlinked file under cache_dir/tmp for the pack. */
static int spool_open(struct push *ps)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/tmp", ps->rq->cfg->cache_dir);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return al_error_set_errno(AL_EIO, errno, "mkdir %s", path);
    snprintf(path, sizeof(path), "%s/tmp/pack-XXXXXX", ps->rq->cfg->cache_dir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "a spool file under %s/tmp",
                                  ps->rq->cfg->cache_dir);
    unlink(path);
    ps->spool_fd = fd;
    return 0;
}

static int pack_stream(struct push *ps, const char *pre, size_t pre_len)
{
    struct wrq *rq = ps->rq;
    uint8_t *chunk = malloc(GP_CHAN_DATA_MAX);
    int err = 0;
    double t_read = 0, t_index = 0, t_scan = 0, t_send = 0, t;
    if (!chunk)
        return AL_ENOMEM;
    for (;;) {
        const uint8_t *data;
        ssize_t n;
        if (pre_len) {
            data = (const uint8_t *)pre;
            n = (ssize_t)pre_len;
            pre_len = 0;
        } else {
            t = mono_ms();
            n = gp_http_read_body(&rq->conn, chunk, GP_CHAN_DATA_MAX);
            t_read += mono_ms() - t;
            data = chunk;
        }
        if (n < 0) {
            err = al_error_set(AL_EINVAL, "malformed request body");
            break;
        }
        if (n == 0)
            break;
        ps->pack_bytes += (uint64_t)n;
        if (ps->pack_bytes > rq->cfg->max_push) {
            err = al_error_set(AL_ETOOBIG, "push larger than %llu bytes",
                               (unsigned long long)rq->cfg->max_push);
            break;
        }
        t = mono_ms();
        if (ps->spool_fd >= 0 && spool_write(ps, data, (size_t)n) < 0) {
            err = AL_EIO;
            break;
        }
        t_index += mono_ms() - t;
        if (ps->scan) {
            /* after a hit the scanner only follows the pack to its end */
            t = mono_ms();
            int hit = gp_packscan_feed(ps->scan, data, (size_t)n);
            t_scan += mono_ms() - t;
            if (hit < 0) {
                err = AL_EINVAL;
                refuse_all(ps, al_error_last());
                break;
            }
            if (hit && !ps->upload_aborted) {
                /* A secret: not one more byte of this pack goes upstream.
                 * The rest is still read (and indexed) to name the file. */
                struct gp_wire w;
                gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_ABORT);
                gp_wire_str(&w, "push refused");
                gp_chan_send(rq->ch, &w, NULL, 0);
                ps->upload_aborted = 1;
            }
        }
        if (ps->upload_aborted)
            continue;
        t = mono_ms();
        for (size_t off = 0; off < (size_t)n && err == 0;) {
            size_t k = (size_t)n - off < GP_CHAN_DATA_MAX - HOLD_BYTES
                           ? (size_t)n - off
                           : GP_CHAN_DATA_MAX - HOLD_BYTES;
            err = pack_forward(ps, data + off, k);
            off += k;
        }
        t_send += mono_ms() - t;
        if (err == 0 && rq->done)
            err = AL_EIO; /* upstream answered before the end: relayed */
        if (err < 0)
            break;
    }
    free(chunk);
    if (ps->spool_fd >= 0)
        al_log(AL_LOG_DEBUG,
               "%s: inspected stream: %.0f ms waiting for the client, %.0f ms spooling,"
               " %.0f ms scanning, %.0f ms sending upstream",
               rq->repo, t_read, t_index, t_scan, t_send);
    return err;
}

void wk_receive_pack(struct wrq *rq)
{
    struct push ps = {.rq = rq, .spool_fd = -1};
    struct al_buf head;
    char *chunk = NULL;
    int err;
    al_buf_init(&head, GP_RECEIVE_HEAD_MAX + GP_CHAN_DATA_MAX);
    if (rq->gzip) {
        wk_respond_text(rq, 415, "airlock: compressed push requests are not supported");
        goto out;
    }
    if (!(chunk = malloc(GP_CHAN_DATA_MAX))) {
        wk_respond_text(rq, 500, "airlock: out of memory");
        goto out;
    }
    /* Read until the command list (and push options) are complete. */
    for (;;) {
        err = gp_receive_parse(&ps.r, head.ptr ? head.ptr : "", head.len);
        if (err != AL_EAGAIN)
            break;
        ssize_t n = gp_http_read_body(&rq->conn, chunk, GP_CHAN_DATA_MAX);
        if (n <= 0) {
            err = al_error_set(AL_EINVAL, "request ended inside the command list");
            break;
        }
        if (al_buf_append(&head, chunk, (size_t)n) < 0) {
            err = al_error_set(AL_ETOOBIG, "command list too long");
            break;
        }
    }
    if (err < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "malformed receive-pack request: %s", al_error_last());
        wk_respond_text(rq, 400, "airlock: %s", msg);
        outcome_send(&ps, "refused", msg);
        goto out;
    }
    if (ps.r.probe) {
        rq->status = 200;
        rq->head_sent = 1;
        gp_http_send_head(&rq->conn, 200, CT_RECEIVE_RESULT, NULL);
        goto out;
    }
    if (!(ps.reasons = calloc(ps.r.ncmds, sizeof(*ps.reasons)))) {
        wk_respond_text(rq, 500, "airlock: out of memory");
        goto out;
    }
    int ok = commands_check(&ps);
    if (ok < 0)
        goto out;
    if (ok == 0) {
        /* the key holder refused (and recorded) them */
        wk_body_drain(rq, rq->cfg->max_push);
        send_refusal(rq, &ps.r, ps.reasons);
        goto out;
    }
    if (rq->cfg->leak_guard) {
        if (secrets_receive(&ps) < 0) {
            wk_respond_text(rq, 502, "airlock: the git proxy's key holder did not answer");
            goto out;
        }
        names_scan(&ps);
        if (any_refused(&ps)) {
            wk_body_drain(rq, rq->cfg->max_push);
            send_refusal(rq, &ps.r, ps.reasons);
            outcome_send(&ps, "refused", NULL);
            goto out;
        }
    }
    int need_ff = 0;
    for (size_t i = 0; i < ps.r.ncmds; i++)
        need_ff |= !gp_oid_is_zero(ps.r.cmds[i].old_oid);
    need_ff &= rq->cfg->check_ff;
    if ((ps.secrets || need_ff) &&
        (err = gp_packscan_new(&ps.scan, ps.secrets, rq->cfg->leak_guard)) < 0) {
        wk_respond_text(rq, 500, "airlock: out of memory");
        goto out;
    }
    if ((ps.secrets || need_ff) && (err = spool_open(&ps)) < 0) {
        fault_set(&ps, 503, al_error_last());
        wk_body_drain(rq, rq->cfg->max_push);
        wk_respond_text(rq, 503, "airlock: the git proxy cannot check pushes now (see its log)");
        outcome_send(&ps, "failed", ps.fault_msg);
        goto out;
    }
    /* Upstream gets the pack as it arrives, all but its last bytes. */
    struct gp_wire w;
    gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_REQUEST);
    gp_wire_u8(&w, GP_REQ_RECEIVE_PACK);
    gp_wire_str(&w, "");
    gp_wire_u8(&w, GP_ENC_NONE);
    gp_wire_u64(&w, rq->http.chunked || rq->http.content_length < 0
                        ? GP_LEN_CHUNKED
                        : (uint64_t)rq->http.content_length - ps.r.head_len);
    gp_wire_u8(&w, 0); /* upstream's report comes back through the worker */
    if (gp_chan_send(rq->ch, &w, NULL, 0) < 0) {
        wk_respond_text(rq, 503, "airlock: the git proxy is restarting; try again");
        goto out;
    }
    ps.streaming = 1;
    ps.last_sent = time(NULL);
    double t0 = mono_ms();
    err = pack_stream(&ps, head.ptr + ps.r.head_len, head.len - ps.r.head_len);
    al_log(AL_LOG_DEBUG, "%s: %llu bytes of pack streamed in %.1f ms", rq->repo,
           (unsigned long long)ps.pack_bytes, mono_ms() - t0);
    if (err == AL_EIO && rq->done) {
        /* upstream answered early (and the client got it) */
        wk_body_drain(rq, rq->cfg->max_push);
        goto out;
    }
    const char *abort_why = NULL;
    if (err == AL_ETOOBIG) {
        abort_why = al_error_last();
    } else if (err < 0 && !any_refused(&ps)) {
        refuse_all(&ps, al_error_last());
    } else if (err == 0 && ps.scan) {
        pack_checks(&ps);
    }
    if (!abort_why && !ps.fault && !any_refused(&ps)) {
        /* every check passed: the end of the pack, then upstream's answer */
        gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_DATA);
        gp_wire_raw(&w, ps.hold, ps.hold_len);
        if ((ps.hold_len == 0 || wk_send(rq, &w) == 0) && gp_chan_send_type(rq->ch, GP_CH_END) == 0)
            err = wk_relay_rest(rq);
        else
            err = AL_EIO;
        if (err < 0 && !rq->head_sent)
            wk_respond_text(rq, 502, "airlock: %s", al_error_last());
        goto out;
    }
    /* Refused: upstream never gets the end of the pack. */
    char reason[300];
    snprintf(reason, sizeof(reason), "%s", abort_why ? abort_why : "push refused");
    gp_wire_init(&w, rq->out, sizeof(rq->out), GP_CH_ABORT);
    gp_wire_str(&w, "push refused");
    gp_chan_send(rq->ch, &w, NULL, 0);
    /* The key holder ends the aborted request with FAIL or DONE: read it
     * without relaying it. */
    rq->quiet = 1;
    while (!rq->done) {
        size_t len;
        if (wk_recv(rq, &len) < 0)
            break;
    }
    rq->quiet = 0;
    wk_body_drain(rq, rq->cfg->max_push);
    if (abort_why) {
        wk_respond_text(rq, 413, "airlock: %s", reason);
        outcome_send(&ps, "refused", reason);
    } else if (ps.fault) {
        if (ps.fault == 502)
            wk_respond_text(
                rq, 502, "airlock: cannot verify the push: %s could not be fetched from upstream",
                rq->repo);
        else
            wk_respond_text(rq, ps.fault,
                            "airlock: the git proxy cannot check pushes now (see its"
                            " log)");
        outcome_send(&ps, "failed", ps.fault_msg);
    } else {
        send_refusal(rq, &ps.r, ps.reasons);
        const char *first = NULL;
        for (size_t i = 0; i < ps.r.ncmds && !first; i++)
            first = ps.reasons[i];
        outcome_send(&ps, "refused", first);
    }
out:
    if (ps.reasons)
        for (size_t i = 0; i < ps.r.ncmds; i++)
            free(ps.reasons[i]);
    free(ps.reasons);
    gp_packscan_free(ps.scan);
    if (ps.spool_fd >= 0)
        close(ps.spool_fd);
    gp_secretset_free(ps.secrets);
    gp_pack_free(ps.pack);
    free(chunk);
    gp_receive_clear(&ps.r);
    al_buf_free(&head);
}
