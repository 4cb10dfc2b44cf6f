/* The channel between the front of airlock-netproxy and its key holder, one
 * per terminated (or plain-HTTP injecting) connection (docs/netproxy.md,
 * "Processes"). The front parses everything the sandbox sends and holds no
 * real credential; the key holder holds the real values, makes the upstream
 * connection and parses only these messages (and the upstream's answers).
 *
 * Transport: a SOCK_SEQPACKET pair, so one send is one whole message and a
 * message never spans two reads; every message is at most NP_KH_MSG_MAX
 * bytes. A message is one type byte, then the fields of that type in order:
 * u8, u16/u64 little-endian, `str` (u16 length + that many printable ASCII
 * bytes, never NUL or a control byte), `bin` (u32 length + bytes), `raw`
 * (the rest of the message). A reader refuses a message with a field
 * missing or out of its bounds, a string too long for its field or not
 * printable, an unknown flag bit, a type the other side may not send, or
 * bytes left over.
 *
 *   front → key holder                        key holder → front
 *   OPEN      session str, host str, port u16, OPEN_OK    (none)
 *             flags u8 (NP_KH_OPEN_*)          RESP_HEAD  status u16, framing u8,
 *   REQ_HEAD  flags u8 (NP_KH_REQ_*),                     length u64, used u64,
 *             framing u8, length u64,                     head bin
 *             head bin                         RESP_BODY  raw
 *   BODY      raw                              RESP_END   close u8
 *   BODY_END  (none)                           ERROR      status u16, close u8,
 *   ABORT     reason str                                  used u64, error str,
 *   RELAY     raw (after a 101)                           why str
 *   CLOSE     (none)                           RELAY      raw (after a 101)
 *                                              CLOSE      (none)
 *
 * OPEN comes with two descriptors (SCM_RIGHTS: the upstream socket and the
 * key holder's end of the pair) on the front's connections socket; every
 * other message goes over the pair and carries no descriptor.
 *
 * Pure: no I/O. Unit-tested (unit_netproxy_kh_wire), fuzzed (fuzz_kh_wire).
 */
#ifndef NP_KH_WIRE_H
#define NP_KH_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_KH_DATA_MAX      (64u << 10)                /* BODY, RESP_BODY, RELAY payload */
#define NP_KH_REQ_HEAD_MAX  (32u << 10)                /* a REQ_HEAD head */
#define NP_KH_RESP_HEAD_MAX (64u << 10)                /* a RESP_HEAD head */
#define NP_KH_MSG_MAX       (NP_KH_RESP_HEAD_MAX + 64) /* any message on the wire */
#define NP_KH_SESSION_MAX   128                        /* session id, bytes */
#define NP_KH_HOST_MAX      255                        /* host name or IP text, bytes */
#define NP_KH_TOKEN_MAX     63                         /* ERROR error, ABORT reason */
#define NP_KH_WHY_MAX       639                        /* ERROR why */

enum np_kh_type {
    /* front → key holder */
    NP_KH_OPEN = 1,
    NP_KH_REQ_HEAD,
    NP_KH_BODY,
    NP_KH_BODY_END,
    NP_KH_ABORT,
    /* key holder → front */
    NP_KH_OPEN_OK,
    NP_KH_RESP_HEAD,
    NP_KH_RESP_BODY,
    NP_KH_RESP_END,
    NP_KH_ERROR,
    /* either way */
    NP_KH_RELAY,
    NP_KH_CLOSE,
};

/* Who sent a message: a decoder refuses the types the other side sends. */
enum np_kh_from {
    NP_KH_FROM_FRONT = 1,
    NP_KH_FROM_KEYHOLDER = 2,
};

/* OPEN flags */
#define NP_KH_OPEN_TLS     0x01u /* terminated tunnel: the key holder speaks TLS upstream */
#define NP_KH_OPEN_HOST_IP 0x02u /* host is an IP literal (verified as an IP SAN) */
#define NP_KH_OPEN_ALL     0x03u

/* REQ_HEAD flags */
#define NP_KH_REQ_BODY_SUBST  0x01u /* json/form body: sentinels replaced in it */
#define NP_KH_REQ_HEAD_METHOD 0x02u /* HEAD: the response has no body */
#define NP_KH_REQ_UPGRADE     0x04u /* an Upgrade request: a 101 switches to RELAY */
#define NP_KH_REQ_CLOSE       0x08u /* the client asked for Connection: close */
#define NP_KH_REQ_ALL         0x0fu

/* Body framing. A request's head comes without Content-Length and
 * Transfer-Encoding: the key holder writes the framing header itself from
 * these fields. A response's head comes without them too: the front frames
 * the body for its client. */
enum np_kh_framing {
    NP_KH_FRAME_NONE = 0,    /* no body (length 0) */
    NP_KH_FRAME_LENGTH = 1,  /* exactly `length` bytes of BODY / RESP_BODY */
    NP_KH_FRAME_CHUNKED = 2, /* length unknown (request: chunked; response: chunked upstream) */
    NP_KH_FRAME_CLOSE = 3,   /* response only: the body ends when the upstream closes */
};

/* One decoded (or to-be-encoded) message. Which fields mean something
 * depends on `type` (the table above); the others are zero after decoding
 * and ignored when encoding. `data` is borrowed: it points into the buffer
 * that was decoded (or is read from while encoding). */
struct np_kh_msg {
    uint8_t type; /* enum np_kh_type */
    /* OPEN */
    char session[NP_KH_SESSION_MAX + 1];
    char host[NP_KH_HOST_MAX + 1];
    uint16_t port; /* 1..65535 */
    uint8_t flags; /* OPEN: NP_KH_OPEN_*; REQ_HEAD: NP_KH_REQ_* */
    /* REQ_HEAD, RESP_HEAD */
    uint8_t framing; /* enum np_kh_framing */
    uint64_t length; /* with NP_KH_FRAME_LENGTH, else 0 */
    /* RESP_HEAD, ERROR */
    uint16_t status; /* RESP_HEAD 100..599; ERROR 400..599 */
    uint64_t used;   /* credentials put into this request (bit i = credential i) */
    /* RESP_END, ERROR */
    uint8_t close; /* 0 or 1: the connection cannot be reused */
    /* ERROR: X-Airlock-Error token and the body text; ABORT: reason (error) */
    char error[NP_KH_TOKEN_MAX + 1];
    char why[NP_KH_WHY_MAX + 1];
    /* REQ_HEAD, RESP_HEAD: the head; BODY, RESP_BODY, RELAY: the bytes */
    const uint8_t *data;
    size_t data_len;
};

/* Writes message `m` into buf[0..cap) and sets *out_len. Every bound the
 * decoder checks is checked here too, so what encodes decodes. Returns 0,
 * AL_EINVAL (a field out of its bounds, an unknown type or flag) or
 * AL_ETOOBIG (does not fit in cap); on error *out_len is 0. */
int np_kh_msg_encode(size_t *out_len, uint8_t *buf, size_t cap, const struct np_kh_msg *m);

/* Decodes msg[0..len), a message sent by `from`, into *out (cleared
 * first; out->data borrows from msg). Returns 0, or AL_EINVAL with the
 * reason in al_error_last() (never quoting the message's bytes). */
int np_kh_msg_decode(struct np_kh_msg *out, const void *msg, size_t len, enum np_kh_from from);

/* --- I/O (kh_chan.c): one message per SOCK_SEQPACKET datagram --- */

/* A new channel pair (SOCK_SEQPACKET, close-on-exec, buffers for a few
 * whole messages). 0 or AL_EIO. */
int np_kh_pair(int sv[2]);

/* Encodes `m` into buf (the caller's scratch of NP_KH_MSG_MAX bytes; `m`
 * may borrow its data from elsewhere, not from buf) and sends it as one
 * datagram, with `nfds` (at most 2) descriptors attached (SCM_RIGHTS; the
 * caller keeps its own copies). Blocks until sent. 0, AL_EINVAL /
 * AL_ETOOBIG (from np_kh_msg_encode), or AL_EIO (the peer is gone). */
int np_kh_send(int fd, uint8_t *buf, const struct np_kh_msg *m, const int *fds, size_t nfds);

/* Receives one message sent by `from` into *out, decoded from buf (at
 * least NP_KH_MSG_MAX bytes, which out->data then borrows from), waiting
 * at most timeout_ms (-1: no limit). An OPEN must come with exactly two
 * descriptors (fds[0] the upstream socket, fds[1] the channel), every other
 * message with none: the received descriptors are the caller's (*nfds of
 * them, close-on-exec) only when 0 is returned; on any other return none
 * are open. Returns 0; 1 when the peer closed the channel; AL_ETIMEOUT;
 * AL_EINVAL (a malformed, truncated or oversized message, or descriptors
 * that do not belong to it); AL_EIO. */
int np_kh_recv(struct np_kh_msg *out, int fd, uint8_t *buf, enum np_kh_from from, int fds[2],
               size_t *nfds, int timeout_ms);

#endif
