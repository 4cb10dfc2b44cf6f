/* airlock-gitproxy's side of the control protocol (docs/control-protocol.md):
 * sessions and their git listeners, the token keys and the revoked sessions
 * come from airlockd; push audit records go back to it as events. */
#include "airlock/gitproxy.h"
#include "airlock/ctlmsg.h"
#include "airlock/error.h"
#include "airlock/hex.h"
#include "airlock/log.h"

#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define EVENT_QUEUE_MAX 1024 /* events waiting for the daemon; more are dropped */

struct gp_control {
    gp_proxy *proxy;
    ctl_outq *q;
};

static void on_push(const char *session, json_t *record, void *payload)
{
    struct gp_control *c = payload;
    json_t *ev = ctl_msg_new("event");
    if (!ev)
        return;
    json_object_set_new(ev, "session", json_string(session));
    json_object_set_new(ev, "kind", json_string("push"));
    json_object_set(ev, "data", record);
    ctl_outq_push(c->q, ev);
}

/* The store file changed: ask airlockd (which can read it) for a fresh
 * descriptor of it; the answer is a store_reload request. */
static void on_store_changed(uint64_t gen, void *payload)
{
    struct gp_control *c = payload;
    json_t *m = ctl_msg_new("store_request");
    if (!m)
        return;
    json_object_set_new(m, "gen", json_integer((json_int_t)gen));
    if (ctl_outq_push(c->q, m) < 0)
        al_log(AL_LOG_WARN, "credential store changed; cannot ask for a reload: %s",
               al_error_last());
}

/* store_reload {gen, fds: 1} | {gen, missing: true} | {gen, error}: the
 * answer to a store_request. */
static int store_reload(struct gp_control *c, json_t *msg, int *fds, size_t nfds)
{
    json_t *jgen = json_object_get(msg, "gen");
    const char *why = json_string_value(json_object_get(msg, "error"));
    if (!json_is_integer(jgen) || json_integer_value(jgen) < 0 || nfds > 1)
        return al_error_set(AL_EINVAL, "store_reload needs \"gen\" and at most one descriptor");
    uint64_t gen = (uint64_t)json_integer_value(jgen);
    if (nfds == 1)
        return gp_proxy_store_reload(c->proxy, fds[0], gen);
    if (json_is_true(json_object_get(msg, "missing")))
        return gp_proxy_store_reload(c->proxy, -1, gen);
    gp_proxy_store_reload_failed(c->proxy, gen, why ? why : "no descriptor sent");
    return al_error_set(AL_EINVAL, "store_reload without a descriptor: %s",
                        why ? why : "no descriptor sent");
}

/* keys {keys: [{kid, key: 64 hex digits}, ...]}: the token keys, the first
 * one current. Replaces the ones in use. */
static int keys_set(struct gp_control *c, json_t *msg)
{
    json_t *arr = json_object_get(msg, "keys");
    struct creds_keyring ring;
    size_t i;
    json_t *v;
    int err = 0;
    memset(&ring, 0, sizeof(ring));
    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > sizeof(ring.keys) / sizeof(ring.keys[0]))
        return al_error_set(AL_EINVAL, "keys: expected 1-4 keys");
    json_array_foreach(arr, i, v)
    {
        const char *kid = json_string_value(json_object_get(v, "kid"));
        const char *hex = json_string_value(json_object_get(v, "key"));
        if (!kid || !hex || strlen(kid) == 0 || strlen(kid) >= sizeof(ring.keys[i].kid) ||
            strlen(hex) != 2 * CREDS_KEY_LEN) {
            err = al_error_set(AL_EINVAL, "keys[%zu]: expected kid and a 64-hex-digit key", i);
            break;
        }
        snprintf(ring.keys[i].kid, sizeof(ring.keys[i].kid), "%s", kid);
        if (al_hex_decode(ring.keys[i].key, hex, CREDS_KEY_LEN) < 0)
            err = al_error_set(AL_EINVAL, "keys[%zu]: bad hex digit", i);
        ring.len++;
    }
    if (err == 0)
        err = gp_proxy_set_keys(c->proxy, &ring);
    if (err == 0)
        al_log(AL_LOG_INFO, "token keys set (%zu, current %s)", ring.len, ring.keys[0].kid);
    else
        creds_keyring_clear(&ring);
    return err;
}

/* session_add: replaces the session's listeners with the attached ones. */
static int session_add(struct gp_control *c, const char *session, json_t *msg, int *fds,
                       size_t nfds)
{
    struct ctl_listener ls[CTL_FDS_MAX];
    int n = ctl_listeners_get(ls, msg, fds, nfds), err = 0;
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++)
        if (strcmp(ls[i].kind, "git") != 0)
            return al_error_set(
                AL_EINVAL, "listener kind \"%s\": the git proxy serves only \"git\"", ls[i].kind);
    /* A removed session stays removed: its tokens must never work again. */
    if (gp_proxy_session_is_revoked(c->proxy, session))
        return al_error_set(AL_EPERM, "session %s was removed", session);
    int keep[CTL_FDS_MAX];
    for (int i = 0; i < n; i++)
        keep[i] = fds[ls[i].index];
    gp_proxy_close_listeners(c->proxy, session, keep, (size_t)n);
    for (int i = 0; i < n; i++) {
        int fd = fds[ls[i].index];
        fds[ls[i].index] = -1;
        if ((err = gp_proxy_listen_fd(c->proxy, fd, session)) < 0)
            return err;
    }
    al_log(AL_LOG_INFO, "session %s added with %d listener%s", session, n, n == 1 ? "" : "s");
    return 0;
}

static int handle(json_t *msg, int *fds, size_t nfds, void *payload)
{
    struct gp_control *c = payload;
    const char *type = ctl_msg_type(msg);
    const char *session = json_string_value(json_object_get(msg, "session"));
    int err;
    if (strcmp(type, "store_reload") == 0) {
        err = store_reload(c, msg, fds, nfds);
        goto out;
    }
    if (strcmp(type, "keys") == 0) {
        err = nfds ? al_error_set(AL_EINVAL, "keys: no descriptors expected") : keys_set(c, msg);
        json_object_del(msg, "keys"); /* nothing of it lingers in the message */
        goto out;
    }
    if (strcmp(type, "session_add") != 0 && strcmp(type, "session_policy") != 0 &&
        strcmp(type, "session_remove") != 0 && strcmp(type, "approve") != 0 &&
        strcmp(type, "revoke") != 0) {
        err = al_error_set(AL_EINVAL, "unknown message type \"%s\"", type);
        goto out;
    }
    if (!ctl_session_id_valid(session)) {
        err = al_error_set(AL_EINVAL, "%s: \"session\" must be 1-128 of [A-Za-z0-9._:-]", type);
        goto out;
    }
    if (strcmp(type, "session_add") == 0) {
        err = session_add(c, session, msg, fds, nfds);
    } else if (strcmp(type, "session_policy") == 0) {
        /* The network policy is the egress proxy's business; git access is
         * what the session's scoped token says. */
        err = gp_proxy_session_is_revoked(c->proxy, session)
                  ? al_error_set(AL_ENOTFOUND, "session %s was removed", session)
                  : 0;
    } else if (strcmp(type, "session_remove") == 0) {
        err = gp_proxy_remove_session(c->proxy, session);
        al_log(AL_LOG_INFO, "session %s removed", session);
    } else if (strcmp(type, "revoke") == 0) {
        /* a session that ended while this proxy was not running: its
         * tokens must not work on an operator "*" listener */
        err = gp_proxy_revoke_session(c->proxy, session);
    } else {
        err = al_error_set(AL_EINVAL, "the git proxy has no approvals");
    }
out:
    ctl_fds_close(fds, nfds);
    return err;
}

int gp_control_run(gp_proxy *p, int sockfd)
{
    struct gp_control c = {.proxy = p};
    int err = ctl_outq_new(&c.q, EVENT_QUEUE_MAX);
    if (err < 0)
        return err;
    gp_proxy_set_event_hook(p, on_push, &c);
    gp_proxy_set_store_hook(p, on_store_changed, &c);
    err = ctl_serve(sockfd, c.q, "gitproxy", handle, &c);
    gp_proxy_set_store_hook(p, NULL, NULL);
    gp_proxy_set_event_hook(p, NULL, NULL);
    ctl_outq_free(c.q);
    return err;
}
