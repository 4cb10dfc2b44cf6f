/* Control messages between airlockd and the proxy daemons (docs/control-protocol.md).
 *
 * A frame is a 4-byte big-endian length and one compact JSON object of that
 * many bytes (at most CTL_FRAME_MAX), sent over a unix stream socket with up
 * to CTL_FDS_MAX descriptors attached by SCM_RIGHTS. Every object has
 * "v": CTL_VERSION and a string "type"; a frame that carries descriptors says
 * how many in "fds" (ctl_send() adds it). A request carries an integer "seq"
 * and is answered by {"type": "ack", "seq": N, "ok": true|false, "error": ...}.
 *
 * Reading side: ctl_recv() on a (blocking or non-blocking) socket, driven by
 * a struct ctl_reader that keeps a partial frame between calls; it never reads
 * past the end of the current frame, so the descriptors it receives belong to
 * that frame. ctl_reader_feed() is the byte-level parser under it (fuzzed).
 *
 * Proxy side: ctl_serve() runs the whole protocol loop on the calling thread
 * (hello, acks, events queued from other threads with ctl_outq_push()), and
 * calls a handler per request.
 */
#ifndef AIRLOCK_CTLMSG_H
#define AIRLOCK_CTLMSG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "airlock/buf.h"

#define CTL_VERSION   1
#define CTL_FRAME_MAX (1u << 20) /* bytes of JSON in one frame */
#define CTL_FDS_MAX   8          /* descriptors attached to one frame */

struct ctl_reader {
    unsigned char hdr[4];
    size_t hdr_len;       /* bytes of hdr[] received */
    size_t body_len;      /* valid once hdr_len == 4 */
    struct al_buf body;   /* bytes of the body received */
    int fds[CTL_FDS_MAX]; /* received with the current frame, owned */
    size_t nfds;
};

/* Prepares an empty reader. */
void ctl_reader_init(struct ctl_reader *r);

/* Frees the partial frame and closes the descriptors the reader holds. */
void ctl_reader_clear(struct ctl_reader *r);

/* How many more bytes complete the header or the body of the current frame
 * (never 0). */
size_t ctl_reader_want(const struct ctl_reader *r);

/* Consumes up to ctl_reader_want() bytes of data[0..len) (*used says how
 * many). Returns 0 and a new reference in *out when a frame is complete (the
 * reader is then ready for the next one), AL_EAGAIN when more bytes are
 * needed, AL_ETOOBIG for a length over CTL_FRAME_MAX or zero, AL_EINVAL for a
 * body that ctl_msg_parse() refuses (the frame is consumed either way; after
 * AL_ETOOBIG the stream cannot be resynchronised). Descriptors are not
 * touched. */
int ctl_reader_feed(struct ctl_reader *r, const void *data, size_t len, size_t *used, json_t **out);

/* Parses one frame body: a JSON object with "v" == CTL_VERSION, a non-empty
 * string "type", optional integer "seq" >= 0 and optional integer "fds" in
 * 0..CTL_FDS_MAX. Returns 0 and a new reference in *out, or AL_EINVAL with
 * al_error_last() set. */
int ctl_msg_parse(json_t **out, const void *data, size_t len);

/* A new message {"v": CTL_VERSION, "type": type}; NULL on ENOMEM. */
json_t *ctl_msg_new(const char *type);

/* The "type" of a message parsed by ctl_msg_parse() (never NULL). */
const char *ctl_msg_type(const json_t *msg);

/* Sends `msg` as one frame with fds[0..nfds) attached (nfds <= CTL_FDS_MAX;
 * the caller keeps its descriptors). When nfds > 0 it sets "fds": nfds in
 * `msg`. Waits (poll) while a non-blocking socket is full. Returns 0, AL_EIO
 * (peer gone, al_error_last() says why), AL_ETOOBIG or AL_EINVAL. */
int ctl_send(int fd, json_t *msg, const int *fds, size_t nfds);

/* Reads what is available of the next frame from `fd`. Returns 0 with a new
 * reference in *msg and its descriptors in fds[0..*nfds) (fds has room for
 * CTL_FDS_MAX; the caller owns them; MSG_CMSG_CLOEXEC is set), AL_EAGAIN when
 * the frame is not complete yet (a non-blocking socket had nothing more),
 * AL_EIO when the peer closed or the read failed, AL_EINVAL for a malformed
 * frame, truncated control data (MSG_CTRUNC) or fewer descriptors than the
 * message declares (AL_ETOOBIG for a bad length). Descriptors beyond what the
 * message declares are closed. On errors no descriptor is handed out. */
int ctl_recv(struct ctl_reader *r, int fd, json_t **msg, int *fds, size_t *nfds);

/* Sends {"type": "ack", "seq": seq, "ok": err == 0} plus "error":
 * al_error_last() (or al_error_name(err)) when err < 0. seq < 0 sends null. */
int ctl_ack_send(int fd, json_int_t seq, int err);

/* ---- proxy side ---- */

/* True for a usable session id: 1..128 bytes of [A-Za-z0-9._:-]. */
int ctl_session_id_valid(const char *id);

/* One entry of a message's "listeners": {"kind": "...", "fd": index}. */
struct ctl_listener {
    const char *kind; /* borrowed from the message */
    size_t index;     /* into the frame's descriptors */
};

/* Reads msg["listeners"] (an array of at most CTL_FDS_MAX entries) into
 * out[]: every "kind" a string, every "fd" an index < nfds used once, and
 * fds[index] a listening stream socket. Returns the count or AL_EINVAL with
 * al_error_last() set. */
int ctl_listeners_get(struct ctl_listener *out, const json_t *msg, const int *fds, size_t nfds);

/* Closes fds[i] that are >= 0 (a handler marks those it keeps with -1). */
void ctl_fds_close(int *fds, size_t nfds);

/* A thread-safe bounded queue of messages for the control socket: threads
 * that must not block (event loops, connection threads) push; ctl_serve()
 * sends them. */
typedef struct ctl_outq ctl_outq;

/* Creates a queue that holds at most `max` messages. 0 or AL_ENOMEM/AL_EIO. */
int ctl_outq_new(ctl_outq **out, size_t max);

/* Frees the queue and the messages still in it. */
void ctl_outq_free(ctl_outq *q);

/* Queues `msg` (steals the reference, also on failure). Returns 0, or
 * AL_ETOOBIG when the queue is full: the message is dropped and counted. */
int ctl_outq_push(ctl_outq *q, json_t *msg);

/* Handles one request. `fds[0..nfds)` are owned by the handler, which closes
 * every one it does not keep (also on failure). Returns 0 (ack ok) or a
 * negative code (ack with "error": al_error_last()). */
typedef int (*ctl_handler_fn)(json_t *msg, int *fds, size_t nfds, void *payload);

/* Runs the control protocol on `sockfd` on the calling thread: sends
 * {"type": "hello", "proxy": proxy, "pid": getpid(), "v": CTL_VERSION},
 * answers the daemon's "hello" with an ack, passes every other request to
 * `fn` and acks it, ignores acks, and sends what `q` (may be NULL) holds.
 * Returns AL_EIO when the daemon closed the socket (or a write failed), or
 * AL_EINVAL / AL_ETOOBIG for a malformed frame (al_error_last() says which):
 * either way the caller should exit. */
int ctl_serve(int sockfd, ctl_outq *q, const char *proxy, ctl_handler_fn fn, void *payload);

/* The control socket named on a proxy's command line: "--control FD" (an
 * inherited, connected unix stream socket: checked, made close-on-exec) or
 * "--control-path PATH" (connects to it). Exactly one of fd_arg / path is
 * non-NULL. Returns the descriptor or a negative code. */
int ctl_socket_open(const char *fd_arg, const char *path);

/* Drops root for good: supplementary groups cleared, gid of `group` (or the
 * user's primary group when NULL), uid of `user`, no_new_privs; then checks
 * that setuid(0) fails. Call after every privileged step (keys read, ports
 * bound). Returns 0, AL_ENOTFOUND (no such user/group) or AL_EPERM. */
int ctl_privs_drop(const char *user, const char *group);

/* Looks up the ids ctl_privs_drop() would switch to. 0 or AL_ENOTFOUND. */
int ctl_privs_lookup(uid_t *uid, gid_t *gid, const char *user, const char *group);

#endif
