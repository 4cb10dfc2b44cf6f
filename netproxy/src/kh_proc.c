/* The process half of airlock-netproxy's privilege split (docs/netproxy.md,
 * "Processes"; the same shape as airlock-gitproxy's, docs/gitproxy.md).
 *
 * Key holder (`--control FD`, what airlockd starts): execs itself as the
 * front (`--front FD --conns FD`, a fresh image: none of this process's
 * memory) while still root, then drops to the proxy user and makes itself
 * not dumpable. Threads:
 *   - main: airlockd's control protocol (ctl_serve). session_add's
 *     credentials are decoded here (with their values) into the sessions
 *     (np_kh_sessions_put); every message then goes to the front over a
 *     private control pair with each credential's "value" removed, and the
 *     front's ack is the answer to airlockd. session_remove drops the
 *     session's values first.
 *   - front reader: the front's acks (to main) and events (on to airlockd).
 *   - connections: OPEN messages (with the dialled upstream socket and one
 *     end of a channel pair) on the SOCK_SEQPACKET connections socket; each
 *     is served by np_kh_conn_serve on a detached thread of its own
 *     (np_kh_accept_one).
 *   - watcher: when the front dies, this process exits (airlockd restarts
 *     the proxy). When this process dies, the front sees its control pair
 *     close (and PDEATHSIG) and exits.
 *
 * Front: control.c's np_control_main with np_front_harden() before it reads
 * a message. */
#include "kh_proc.h"
#include "ctl_creds.h"
#include "kh_conn.h"

#include "airlock/ctlmsg.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/netpolicy.h"
#include "airlock/seccomp_deny.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KH_EVENT_QUEUE_MAX 4096 /* the front's events waiting for airlockd */
#define KH_FRONT_START_S   15   /* the front's hello, at most */
#define KH_FRONT_ACK_S     60   /* the front's ack of one request, at most */

struct kh {
    int front; /* private control pair (stream, ctlmsg frames) */
    int conns; /* connections socket (SOCK_SEQPACKET) */
    pid_t front_pid;
    ctl_outq *q; /* the front's events, sent to airlockd by ctl_serve */
    struct np_kh_sessions *ks;
    atomic_int stopping; /* airlockd closed: the front's end is expected */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int ready;   /* the front said hello */
    int waiting; /* main waits for the ack of want_seq */
    json_int_t want_seq;
    json_t *ack; /* the awaited ack, owned */
};

/* Ends this process because the front is gone (or its side of a socket
 * broke): without it nothing is served, and airlockd restarts the proxy. */
static void front_gone(struct kh *kh, const char *what)
{
    if (atomic_load(&kh->stopping))
        return;
    int status = 0;
    pid_t w;
    while ((w = waitpid(kh->front_pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (atomic_load(&kh->stopping))
        return;
    if (w == kh->front_pid && WIFSIGNALED(status))
        al_log(AL_LOG_ERROR, "the front (pid %d) was killed by signal %d (%s); exiting",
               (int)kh->front_pid, WTERMSIG(status), what);
    else if (w == kh->front_pid)
        al_log(AL_LOG_ERROR, "the front (pid %d) exited with status %d (%s); exiting",
               (int)kh->front_pid, WEXITSTATUS(status), what);
    else
        al_log(AL_LOG_ERROR, "the front (pid %d) is gone (%s); exiting", (int)kh->front_pid, what);
    _exit(1);
}

static void *watch_thread(void *arg)
{
    front_gone(arg, "watcher");
    return NULL;
}

/* The front's frames: acks for main, events on to airlockd. */
static void *reader_thread(void *arg)
{
    struct kh *kh = arg;
    struct ctl_reader r;
    ctl_reader_init(&r);
    for (;;) {
        json_t *msg = NULL;
        int fds[CTL_FDS_MAX];
        size_t nfds = 0;
        int err = ctl_recv(&r, kh->front, &msg, fds, &nfds);
        if (err == AL_EAGAIN)
            continue;
        if (err < 0)
            break;
        ctl_fds_close(fds, nfds); /* the front sends none */
        const char *type = ctl_msg_type(msg);
        if (strcmp(type, "ack") == 0) {
            json_t *js = json_object_get(msg, "seq");
            json_int_t seq = json_is_integer(js) ? json_integer_value(js) : -1;
            pthread_mutex_lock(&kh->lock);
            if (kh->waiting && !kh->ack && seq == kh->want_seq) {
                kh->ack = msg;
                msg = NULL;
                pthread_cond_broadcast(&kh->cond);
            }
            pthread_mutex_unlock(&kh->lock);
            json_decref(msg);
        } else if (strcmp(type, "hello") == 0) {
            pthread_mutex_lock(&kh->lock);
            kh->ready = 1;
            pthread_cond_broadcast(&kh->cond);
            pthread_mutex_unlock(&kh->lock);
            json_decref(msg);
        } else if (strcmp(type, "event") == 0) {
            ctl_outq_push(kh->q, msg);
        } else {
            al_log(AL_LOG_WARN, "front: unexpected message \"%s\" dropped", type);
            json_decref(msg);
        }
    }
    ctl_reader_clear(&r);
    front_gone(kh, "its control pair closed");
    return NULL;
}

/* OPENs from the front, each served on a detached thread of its own
 * (np_kh_accept_one). */
static void *conns_thread(void *arg)
{
    struct kh *kh = arg;
    int rc;
    while ((rc = np_kh_accept_one(kh->ks, kh->conns, -1)) == 0 || rc == AL_ENOMEM)
        if (rc == AL_ENOMEM)
            al_log(AL_LOG_ERROR, "connections: out of memory; one dropped");
    front_gone(kh, "its connections socket closed");
    return NULL;
}

/* Sends `msg` (with fds) to the front and waits for its ack: 0 when ok, else
 * the front's error. The caller keeps its descriptors. */
static int forward(struct kh *kh, json_t *msg, const int *fds, size_t nfds)
{
    json_t *js = json_object_get(msg, "seq");
    json_int_t seq = json_is_integer(js) ? json_integer_value(js) : -1;
    pthread_mutex_lock(&kh->lock);
    kh->waiting = 1;
    kh->want_seq = seq;
    pthread_mutex_unlock(&kh->lock);
    int err = ctl_send(kh->front, msg, fds, nfds);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += KH_FRONT_ACK_S;
    pthread_mutex_lock(&kh->lock);
    while (err == 0 && !kh->ack)
        if (pthread_cond_timedwait(&kh->cond, &kh->lock, &until) == ETIMEDOUT)
            err = al_error_set(AL_ETIMEOUT, "the front did not answer within %d s", KH_FRONT_ACK_S);
    json_t *ack = kh->ack;
    kh->ack = NULL;
    kh->waiting = 0;
    pthread_mutex_unlock(&kh->lock);
    if (err == 0 && !json_is_true(json_object_get(ack, "ok"))) {
        const char *why = json_string_value(json_object_get(ack, "error"));
        err = al_error_set(AL_EINVAL, "%s", why ? why : "refused by the front");
    }
    json_decref(ack);
    return err;
}

/* session_add's part for the key holder: the CA and the credentials with
 * their values, into the sessions. */
static int session_put(struct kh *kh, const char *id, const json_t *msg)
{
    const char *ca_cert = NULL, *ca_key = NULL;
    struct al_credset creds = {0};
    int err;
    if ((err = np_ctl_tls_decode(&ca_cert, &ca_key, json_object_get(msg, "tls"))) < 0 ||
        (err = np_ctl_creds_decode(&creds, json_object_get(msg, "credentials"))) < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", al_error_last());
        err = al_error_set(AL_EINVAL, "session %s: %s", id, why);
    } else if (creds.len && !ca_cert) {
        err = al_error_set(AL_EINVAL, "session %s: credentials without tls", id);
    } else if (!ca_cert) {
        /* not terminated: no connection of it ever comes here */
        np_kh_sessions_remove(kh->ks, id);
    } else {
        err = np_kh_sessions_put(kh->ks, id, &creds, ca_cert, ca_key, NULL);
    }
    al_credset_free(&creds);
    return err;
}

/* Whether msg["policy"] allows a value on plain HTTP (allowPlaintextInject);
 * false for a policy that does not decode (the front refuses it too). */
static bool policy_plaintext(const json_t *msg)
{
    struct al_netpolicy pol;
    if (al_netpolicy_from_json(&pol, json_object_get(msg, "policy")) < 0)
        return false;
    bool allow = pol.allow_plaintext_inject != 0;
    al_netpolicy_free(&pol);
    return allow;
}

/* One request from airlockd (ctl_serve's handler). */
static int handle(json_t *msg, int *fds, size_t nfds, void *payload)
{
    struct kh *kh = payload;
    const char *type = ctl_msg_type(msg);
    const char *id = json_string_value(json_object_get(msg, "session"));
    int valid = ctl_session_id_valid(id), put = 0, err = 0;
    bool add = valid && strcmp(type, "session_add") == 0;
    bool policy = valid && strcmp(type, "session_policy") == 0;
    bool plaintext = (add || policy) && policy_plaintext(msg);
    if (add) {
        /* the key holder's own failure is the answer; the front never
         * sees this message */
        if ((err = session_put(kh, id, msg)) < 0)
            goto out;
        put = 1;
        np_ctl_creds_strip(json_object_get(msg, "credentials"));
    } else if (valid && strcmp(type, "session_remove") == 0) {
        np_kh_sessions_remove(kh->ks, id);
    } else if (policy && !plaintext) {
        /* off before the front's new policy, on only after it (fail closed) */
        np_kh_sessions_set_plaintext(kh->ks, id, false);
    }
    err = forward(kh, msg, fds, nfds);
    if (err < 0 && put)
        np_kh_sessions_remove(kh->ks, id); /* fail closed: no values without the front's session */
    if (err == 0 && plaintext)
        np_kh_sessions_set_plaintext(kh->ks, id, true); /* AL_ENOTFOUND: not terminated */
out:
    ctl_fds_close(fds, nfds);
    np_ctl_msg_wipe(msg);
    return err;
}

/* The front's command line: ours without --control/--control-path, with
 * --front and --conns first. NULL on ENOMEM; free the array only (its
 * strings are argv's or fdargs). */
static char **front_argv(int argc, char **argv, char *ctl_arg, char *conns_arg)
{
    char **out = calloc((size_t)argc + 6, sizeof(char *));
    size_t n = 0;
    if (!out)
        return NULL;
    out[n++] = (char *)"airlock-netproxy";
    out[n++] = (char *)"--front";
    out[n++] = ctl_arg;
    out[n++] = (char *)"--conns";
    out[n++] = conns_arg;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--control") == 0 || strcmp(argv[i], "--control-path") == 0) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--control=", 10) == 0 || strncmp(argv[i], "--control-path=", 15) == 0)
            continue;
        out[n++] = argv[i];
    }
    out[n] = NULL;
    return out;
}

/* Starts the front: a fresh image of this program (/proc/self/exe), as
 * gitproxy's gp_front_start does. Sets kh->front, kh->conns, kh->front_pid. */
static int front_exec(struct kh *kh, int argc, char **argv)
{
    int cp[2], np[2];
    char ctl_arg[16], conns_arg[16];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cp) < 0)
        return al_error_set_errno(AL_EIO, errno, "socketpair");
    int err = np_kh_pair(np);
    if (err < 0) {
        close(cp[0]);
        close(cp[1]);
        return err;
    }
    snprintf(ctl_arg, sizeof(ctl_arg), "%d", cp[1]);
    snprintf(conns_arg, sizeof(conns_arg), "%d", np[1]);
    char **fargv = front_argv(argc, argv, ctl_arg, conns_arg);
    pid_t pid = fargv ? fork() : -1;
    if (pid == 0) {
        /* only async-signal-safe calls until exec */
        if (fcntl(cp[1], F_SETFD, 0) < 0 || fcntl(np[1], F_SETFD, 0) < 0)
            _exit(127);
        execv("/proc/self/exe", fargv);
        _exit(127);
    }
    int e = errno;
    free(fargv);
    close(cp[1]);
    close(np[1]);
    if (pid < 0) {
        close(cp[0]);
        close(np[0]);
        return al_error_set_errno(AL_EIO, fargv ? e : ENOMEM, "cannot start the front");
    }
    kh->front = cp[0];
    kh->conns = np[0];
    kh->front_pid = pid;
    return 0;
}

/* Waits for the front's hello (it is hardened and serving by then). */
static int front_wait_ready(struct kh *kh)
{
    struct timespec until;
    int err = 0;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += KH_FRONT_START_S;
    pthread_mutex_lock(&kh->lock);
    while (!kh->ready && err == 0)
        if (pthread_cond_timedwait(&kh->cond, &kh->lock, &until) == ETIMEDOUT)
            err =
                al_error_set(AL_ETIMEOUT, "the front did not start within %d s", KH_FRONT_START_S);
    pthread_mutex_unlock(&kh->lock);
    return err;
}

/* Ends the front after airlockd closed: its control pair closes, so it
 * exits; SIGKILL when it has not within a few seconds. */
static void front_stop(struct kh *kh)
{
    atomic_store(&kh->stopping, 1);
    shutdown(kh->front, SHUT_RDWR);
    shutdown(kh->conns, SHUT_RDWR);
    for (int i = 0; i < 250; i++) {
        pid_t w = waitpid(kh->front_pid, NULL, WNOHANG);
        if (w == kh->front_pid || (w < 0 && errno == ECHILD))
            return;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(kh->front_pid, SIGKILL);
    waitpid(kh->front_pid, NULL, 0);
}

static int thread_start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0)
        return al_error_set(AL_ERROR, "cannot start a thread");
    pthread_detach(t);
    return 0;
}

int np_kh_proc_main(int ctl, const char *user, const char *group, int argc, char **argv)
{
    struct kh kh;
    int rc = 1, err;
    memset(&kh, 0, sizeof(kh));
    kh.front = kh.conns = -1;
    pthread_mutex_init(&kh.lock, NULL);
    pthread_cond_init(&kh.cond, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((err = front_exec(&kh, argc, argv)) < 0)
        goto fail;
    /* The front is started (as root: it drops to the proxy user itself);
     * nothing more here needs root. Not dumpable: no process of the proxy
     * user (the front included) may read this memory. */
    if (user) {
        if ((err = ctl_privs_drop(user, group)) < 0)
            goto fail_front;
        al_log(AL_LOG_INFO, "running as %s (uid %u)", user, (unsigned)getuid());
    }
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if ((err = ctl_outq_new(&kh.q, KH_EVENT_QUEUE_MAX)) < 0 ||
        (err = np_kh_sessions_new(&kh.ks)) < 0 || (err = thread_start(watch_thread, &kh)) < 0 ||
        (err = thread_start(reader_thread, &kh)) < 0 ||
        (err = thread_start(conns_thread, &kh)) < 0 || (err = front_wait_ready(&kh)) < 0)
        goto fail_front;
    al_log(AL_LOG_INFO, "key holder: front started (pid %d)", (int)kh.front_pid);
    err = ctl_serve(ctl, kh.q, "netproxy", handle, &kh);
    front_stop(&kh);
    if (err == AL_EIO) {
        al_log(AL_LOG_INFO, "control socket closed (%s); exiting", al_error_last());
        rc = 0;
    } else {
        al_log(AL_LOG_ERROR, "%s", al_error_last());
    }
    /* the connection threads may still hold the sessions: the process ends
     * here without freeing them (their values go with the process) */
    close(ctl);
    return rc;
fail_front:
    front_stop(&kh);
fail:
    al_log(AL_LOG_ERROR, "%s", al_error_last()[0] ? al_error_last() : "failed");
    close(ctl);
    return rc;
}

/* ---- the front ---- */

/* Denied with EPERM on top of the shared list (airlock/seccomp_deny.h):
 * the front dials upstreams and accepts on its listeners, so sockets stay
 * allowed (unlike gitproxy's front); it never runs a program nor changes
 * its identity. */
static const char *const front_denied[] = {
    "execve",   "execveat",  "setuid",      "setgid",    "setreuid",
    "setregid", "setresuid", "setresgid",   "setgroups", "setfsuid",
    "setfsgid", "capset",    "personality", "mknod",     "mknodat",
};

int np_front_harden(const char *user, const char *group)
{
    int err;
    pid_t parent = getppid();
    if (geteuid() == 0) {
        if ((err = ctl_privs_drop(user ? user : "nobody", group)) < 0)
            return err;
    } else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        return al_error_set_errno(AL_EPERM, errno, "PR_SET_NO_NEW_PRIVS");
    }
    /* the key holder is our parent: when it goes, so do we (set after the
     * drop, which clears it) */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        return al_error_set(AL_EIO, "the key holder went away");
    return al_seccomp_deny_load(front_denied, sizeof(front_denied) / sizeof(*front_denied));
}
