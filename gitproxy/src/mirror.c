/* The fast-forward check's fallback (gp_inspect.h): when the pushed commits
 * do not reach the old tip, a mirror of the upstream repository under
 * cache_dir/mirrors answers it. The worker holds no credential, so libgit2
 * fetches through a transport of our own ("airlock-keyd://"): every
 * request of the fetch goes to the key holder over a second channel of the
 * connection, which sends it upstream with the real credential exactly as
 * it does a sandbox's fetch. Workers of other connections may update the
 * same mirror: an flock on <mirror>.lock serialises them. */
#include "gp_chan.h"
#include "gp_inspect.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <git2/sys/odb_backend.h>
#include <git2/sys/transport.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIRROR_URL "airlock-keyd://upstream"

/* One request/response exchange on the channel. */
struct kstream {
    git_smart_subtransport_stream parent;
    struct ksub *sub;
    git_smart_service_t action;
    int sent;  /* REQUEST sent */
    int ended; /* END sent (UPLOADPACK) */
    const uint8_t *pend;
    size_t pend_len;
};

struct ksub {
    git_smart_subtransport parent;
    int ch;
    int busy; /* a response not read to its end */
    uint8_t in[GP_CHAN_MSG_MAX];
    uint8_t out[GP_CHAN_MSG_MAX];
};

static int g_mirror_ch = -1; /* the channel of the fetch in progress (one per process) */

static int ksub_error(const char *msg)
{
    git_error_set_str(GIT_ERROR_NET, msg);
    return -1;
}

/* Reads the rest of a response (DONE or FAIL). */
static int ksub_drain(struct ksub *s)
{
    while (s->busy) {
        size_t nfds;
        ssize_t n = gp_chan_recv(s->ch, s->in, sizeof(s->in), NULL, 0, &nfds);
        struct gp_rd r;
        int type = n > 0 ? gp_rd_init(&r, s->in, (size_t)n) : 0;
        if (type <= 0)
            return ksub_error("the key holder went away");
        if (type == GP_CH_DONE || type == GP_CH_FAIL)
            s->busy = 0;
    }
    return 0;
}

static int kstream_send_request(struct kstream *st)
{
    struct ksub *s = st->sub;
    struct gp_wire w;
    if (ksub_drain(s) < 0)
        return -1;
    gp_wire_init(&w, s->out, sizeof(s->out), GP_CH_REQUEST);
    gp_wire_u8(&w,
               st->action == GIT_SERVICE_UPLOADPACK_LS ? GP_REQ_INFO_UPLOAD : GP_REQ_UPLOAD_PACK);
    gp_wire_str(&w, "");
    gp_wire_u8(&w, GP_ENC_NONE);
    gp_wire_u64(&w, st->action == GIT_SERVICE_UPLOADPACK_LS ? 0 : GP_LEN_CHUNKED);
    gp_wire_u8(&w, 0); /* the answer is the mirror's */
    if (gp_chan_send(s->ch, &w, NULL, 0) < 0)
        return ksub_error("the key holder went away");
    st->sent = 1;
    s->busy = 1;
    return 0;
}

static int kstream_write(git_smart_subtransport_stream *stream, const char *buf, size_t len)
{
    struct kstream *st = (struct kstream *)stream;
    struct ksub *s = st->sub;
    if (st->action != GIT_SERVICE_UPLOADPACK || st->ended)
        return ksub_error("airlock-keyd: unexpected write");
    if (!st->sent && kstream_send_request(st) < 0)
        return -1;
    while (len > 0) {
        size_t n = len < GP_CHAN_DATA_MAX ? len : GP_CHAN_DATA_MAX;
        struct gp_wire w;
        gp_wire_init(&w, s->out, sizeof(s->out), GP_CH_DATA);
        gp_wire_raw(&w, buf, n);
        if (gp_chan_send(s->ch, &w, NULL, 0) < 0)
            return ksub_error("the key holder went away");
        buf += n;
        len -= n;
    }
    return 0;
}

static int kstream_read(git_smart_subtransport_stream *stream, char *buf, size_t size, size_t *got)
{
    struct kstream *st = (struct kstream *)stream;
    struct ksub *s = st->sub;
    *got = 0;
    if (!st->sent && kstream_send_request(st) < 0)
        return -1;
    if (st->action == GIT_SERVICE_UPLOADPACK && !st->ended) {
        if (gp_chan_send_type(s->ch, GP_CH_END) < 0)
            return ksub_error("the key holder went away");
        st->ended = 1;
    }
    while (st->pend_len == 0) {
        if (!s->busy)
            return 0; /* the end of the response */
        size_t nfds;
        ssize_t n = gp_chan_recv(s->ch, s->in, sizeof(s->in), NULL, 0, &nfds);
        struct gp_rd r;
        int type = n > 0 ? gp_rd_init(&r, s->in, (size_t)n) : 0;
        char msg[1024];
        switch (type) {
        case GP_CH_HEAD:
            break;
        case GP_CH_DATA:
            st->pend = gp_rd_rest(&r, &st->pend_len);
            break;
        case GP_CH_DONE:
            s->busy = 0;
            if (gp_rd_u8(&r) == 0)
                return ksub_error("upstream transfer cut short");
            break;
        case GP_CH_FAIL:
            s->busy = 0;
            gp_rd_u16(&r);
            gp_rd_str(&r, msg, sizeof(msg));
            return ksub_error(msg[0] ? msg : "upstream refused the mirror fetch");
        default:
            s->busy = 0;
            return ksub_error("the key holder went away");
        }
    }
    size_t n = st->pend_len < size ? st->pend_len : size;
    memcpy(buf, st->pend, n);
    st->pend += n;
    st->pend_len -= n;
    *got = n;
    return 0;
}

static void kstream_free(git_smart_subtransport_stream *stream)
{
    free(stream);
}

static int ksub_action(git_smart_subtransport_stream **out, git_smart_subtransport *transport,
                       const char *url, git_smart_service_t action)
{
    (void)url;
    if (action != GIT_SERVICE_UPLOADPACK_LS && action != GIT_SERVICE_UPLOADPACK)
        return ksub_error("the mirror only fetches");
    struct kstream *st = calloc(1, sizeof(*st));
    if (!st)
        return -1;
    st->parent.subtransport = transport;
    st->parent.read = kstream_read;
    st->parent.write = kstream_write;
    st->parent.free = kstream_free;
    st->sub = (struct ksub *)transport;
    st->action = action;
    *out = &st->parent;
    return 0;
}

static int ksub_close(git_smart_subtransport *transport)
{
    return ksub_drain((struct ksub *)transport);
}

static void ksub_free(git_smart_subtransport *transport)
{
    free(transport);
}

static int ksub_new(git_smart_subtransport **out, git_transport *owner, void *param)
{
    (void)owner;
    (void)param;
    struct ksub *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->parent.action = ksub_action;
    s->parent.close = ksub_close;
    s->parent.free = ksub_free;
    s->ch = g_mirror_ch;
    *out = &s->parent;
    return 0;
}

static int transport_new(git_transport **out, git_remote *owner, void *param)
{
    static git_smart_subtransport_definition def = {ksub_new, 1, NULL};
    (void)param;
    return git_transport_smart(out, owner, &def);
}

static int git_fail(int code, const char *what)
{
    const git_error *e = git_error_last();
    al_log(AL_LOG_WARN, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
    return al_error_set(code, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                return al_error_set_errno(AL_EIO, errno, "mkdir %s", tmp);
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return al_error_set_errno(AL_EIO, errno, "mkdir %s", tmp);
    return 0;
}

int gp_mirror_descends(int *fault, const char *cache_dir, const char *repo_name, int ch,
                       gp_pack *pk, const char *new_hex, const char *old_hex)
{
    static int registered;
    char path[4096], lock[4200];
    git_repository *repo = NULL;
    git_remote *remote = NULL;
    git_odb *odb = NULL;
    git_odb_backend *be = NULL;
    int lockfd = -1, err = 0;
    *fault = 503;
    int n = snprintf(path, sizeof(path), "%s/mirrors/%s.git", cache_dir, repo_name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return al_error_set(AL_EINVAL, "mirror path too long");
    if (!registered) {
        if (git_transport_register("airlock-keyd", transport_new, NULL) < 0)
            return git_fail(AL_ERROR, "cannot register the mirror transport");
        registered = 1;
    }
    if ((err = mkdir_p(path)) < 0)
        return err;
    snprintf(lock, sizeof(lock), "%s.lock", path);
    if ((lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        return al_error_set_errno(AL_EIO, errno, "%s", lock);
    while (flock(lockfd, LOCK_EX) < 0 && errno == EINTR)
        ;
    if (git_repository_open_bare(&repo, path) < 0 && git_repository_init(&repo, path, 1) < 0) {
        err = git_fail(AL_EIO, "cannot create the mirror");
        goto out;
    }
    char *refspecs[] = {"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"};
    git_strarray specs = {refspecs, 2};
    git_fetch_options fo;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.prune = GIT_FETCH_PRUNE;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    g_mirror_ch = ch;
    git_remote_create_options ro;
    git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    ro.repository = repo;
    ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF; /* the URL is ours, whatever a config says */
    if (git_remote_create_with_opts(&remote, MIRROR_URL, &ro) < 0) {
        err = git_fail(AL_EIO, "cannot open the mirror");
        goto out;
    }
    if (git_remote_fetch(remote, &specs, &fo, NULL) < 0) {
        *fault = 502;
        err = git_fail(AL_EIO, "cannot fetch upstream into the mirror");
        goto out;
    }
    git_oid old, new;
    if (git_oid_fromstr(&old, old_hex) < 0 || git_oid_fromstr(&new, new_hex) < 0) {
        err = al_error_set(AL_EINVAL, "bad object id");
        goto out;
    }
    if (git_repository_odb(&odb, repo) < 0) {
        err = git_fail(AL_EIO, "cannot open the mirror");
        goto out;
    }
    if (!git_odb_exists(odb, &old)) {
        err = GP_FF_UNKNOWN; /* the old tip is not upstream: fetch first */
        goto out;
    }
    const char *idx = gp_pack_idx_path(pk);
    /* The pushed objects are attached in memory only: never written into
     * the mirror. */
    if (idx && (git_odb_backend_one_pack(&be, idx) < 0 || git_odb_add_backend(odb, be, 1000) < 0)) {
        err = git_fail(AL_EIO, "cannot open the pushed pack");
        goto out;
    }
    be = NULL;
    int d = git_graph_descendant_of(repo, &new, &old);
    err = d == 1 ? GP_FF_YES : d == 0 ? GP_FF_NO : git_fail(AL_EIO, "cannot walk the history");
out:
    g_mirror_ch = -1;
    if (be)
        be->free(be);
    git_odb_free(odb);
    git_remote_free(remote);
    git_repository_free(repo);
    if (lockfd >= 0)
        close(lockfd);
    return err;
}
