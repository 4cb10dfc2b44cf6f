/* The channel between a front worker and the key holder of airlock-gitproxy.
 *
 * The front (gitproxy/src/front.c) parses everything a sandbox sends and
 * holds no key and no real credential; the key holder (keyd.c) holds the
 * token keys, the credential store and the upstream connections and parses
 * only these fixed-format messages (and the upstream's answers). One channel
 * per client connection: a SOCK_SEQPACKET socketpair, so every send is one
 * whole message and a message never spans two reads.
 *
 * A message is one type byte, then the fields of that type in order:
 * u8, u16/u32/u64 little-endian, `str` (u16 length + that many printable
 * ASCII bytes, never NUL or a control byte), `bin` (u32 length + bytes).
 * A reader refuses a message with a field missing, a string that is too
 * long for its destination or not printable, or bytes left over.
 *
 *   worker → key holder                       key holder → worker
 *   AUTH         op u8, host str, owner str,  AUTH_OK      session str, user str,
 *                name str, token str                       repo str (canonical)
 *   PUSH_SHALLOW oid str                      VERDICT      index u16, reason str
 *   PUSH_CMD     old str, new str, ref str    VERDICTS_END refused u16
 *   PUSH_OPT     option str                   SECRETS      last u8, part bin
 *   PUSH_HEAD    caps str (ends the list)     HEAD         status u16, ctype str,
 *   REQUEST      kind u8, git_protocol str,                direct u8
 *                encoding u8, length u64,     DATA         bytes (the rest)
 *                direct u8                    DONE         ok u8, message str
 *   DATA         bytes (the rest)             FAIL         status u16, message str
 *   END                                       CHANNEL      (a descriptor attached)
 *   ABORT        reason str
 *   REFUSE_REF   index u16, reason str
 *   OUTCOME      decision str, reason str
 *   CHANNEL      (asks for a second channel of the same connection)
 *
 * A push: PUSH_SHALLOW*, PUSH_CMD+, PUSH_OPT*, PUSH_HEAD; the key holder
 * checks every command against the token and answers VERDICT* VERDICTS_END,
 * then (leak guard on) SECRETS parts: the fingerprints of every real
 * credential it holds (gp_scan.h). The pack then goes as REQUEST
 * (RECEIVE_PACK), DATA*, END or ABORT: the key holder builds the request
 * head itself from the commands it checked. A push the worker refuses after
 * the fact sends REFUSE_REF* OUTCOME for the audit log.
 *
 * FAIL ends what the worker asked for with an answer for the client (status
 * and a plain message, safe to show); DONE ends an upstream request whose
 * HEAD (and DATA) were sent.
 *
 * A fetch's answer is upstream's bytes, which the worker has nothing to do
 * with: REQUEST with `direct` set (upload-pack and its advertisement only)
 * has the key holder write the answer's status line and body straight to
 * the client's socket (it writes to that socket, never reads it), and send
 * the worker just HEAD with `direct` set, then DONE or FAIL.
 */
#ifndef GP_CHAN_H
#define GP_CHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GP_CHAN_DATA_MAX (64u << 10)             /* payload of one DATA message */
#define GP_CHAN_MSG_MAX  (GP_CHAN_DATA_MAX + 64) /* any message, on the wire */
#define GP_CHAN_BLOB_MAX (16u << 20)             /* a SECRETS blob, all parts */
#define GP_LEN_CHUNKED   UINT64_MAX

enum gp_chan_type {
    GP_CH_AUTH = 1,
    GP_CH_AUTH_OK,
    GP_CH_PUSH_SHALLOW,
    GP_CH_PUSH_CMD,
    GP_CH_PUSH_OPT,
    GP_CH_PUSH_HEAD,
    GP_CH_VERDICT,
    GP_CH_VERDICTS_END,
    GP_CH_SECRETS,
    GP_CH_REQUEST,
    GP_CH_HEAD,
    GP_CH_DATA,
    GP_CH_END,
    GP_CH_DONE,
    GP_CH_ABORT,
    GP_CH_FAIL,
    GP_CH_REFUSE_REF,
    GP_CH_OUTCOME,
    GP_CH_CHANNEL,
    /* key holder → front zygote */
    GP_CH_ZYGOTE_INIT,
    GP_CH_ZYGOTE_CONN,
    /* front zygote → key holder, once, after its start: READY, or FAIL */
    GP_CH_ZYGOTE_READY,
};

/* What a REQUEST asks the upstream for. */
enum gp_req_kind {
    GP_REQ_INFO_UPLOAD = 1,  /* GET info/refs?service=git-upload-pack */
    GP_REQ_INFO_RECEIVE = 2, /* GET info/refs?service=git-receive-pack */
    GP_REQ_UPLOAD_PACK = 3,  /* POST git-upload-pack */
    GP_REQ_RECEIVE_PACK = 4, /* POST git-receive-pack (after COMMANDS) */
};

enum gp_req_encoding {
    GP_ENC_NONE = 0,
    GP_ENC_GZIP = 1,
};

/* A message being written into a caller's buffer. Errors are sticky: the
 * first field that does not fit sets err (AL_ETOOBIG / AL_EINVAL) and
 * gp_chan_send() refuses the message. */
struct gp_wire {
    uint8_t *buf;
    size_t len, cap;
    int err;
};

void gp_wire_init(struct gp_wire *w, uint8_t *buf, size_t cap, enum gp_chan_type type);
void gp_wire_u8(struct gp_wire *w, uint8_t v);
void gp_wire_u16(struct gp_wire *w, uint16_t v);
void gp_wire_u64(struct gp_wire *w, uint64_t v);
/* A printable string (AL_EINVAL for control bytes or more than 65535). */
void gp_wire_str(struct gp_wire *w, const char *s);
void gp_wire_strn(struct gp_wire *w, const char *s, size_t n);
void gp_wire_bin(struct gp_wire *w, const void *p, size_t n);
/* Raw bytes to the end of the message (DATA). */
void gp_wire_raw(struct gp_wire *w, const void *p, size_t n);

/* A received message being read. Errors are sticky as for gp_wire. */
struct gp_rd {
    const uint8_t *p;
    size_t len, off;
    int err;
};

/* Starts reading msg[0..len): returns the type byte (0 when len is 0). */
int gp_rd_init(struct gp_rd *r, const void *msg, size_t len);
uint8_t gp_rd_u8(struct gp_rd *r);
uint16_t gp_rd_u16(struct gp_rd *r);
uint64_t gp_rd_u64(struct gp_rd *r);
/* Copies a string into dst (cap bytes with its NUL); a longer or
 * non-printable one sets AL_EINVAL. */
void gp_rd_str(struct gp_rd *r, char *dst, size_t cap);
/* A bin field, borrowed from the message. */
const uint8_t *gp_rd_bin(struct gp_rd *r, size_t *len);
/* The rest of the message, borrowed. */
const uint8_t *gp_rd_rest(struct gp_rd *r, size_t *len);
/* 0 when every field was read without error and nothing is left; else
 * AL_EINVAL with a reason in al_error_last(). */
int gp_rd_end(struct gp_rd *r, const char *what);

/* Decoders of the messages a worker sends, each checking the type byte,
 * every field's bounds and that nothing is left over: 0 or AL_EINVAL. */
struct gp_msg_auth {
    unsigned op; /* CREDS_OP_FETCH or CREDS_OP_PUSH, unchecked here */
    char host[256];
    char owner[128];
    char name[128];
    char token[8193]; /* CREDS_TOKEN_MAX + 1 */
};
int gp_msg_auth_decode(struct gp_msg_auth *out, const void *msg, size_t len);

struct gp_msg_cmd {
    char old_oid[64];
    char new_oid[64];
    char ref[4096];
};
int gp_msg_cmd_decode(struct gp_msg_cmd *out, const void *msg, size_t len);

/* PUSH_SHALLOW, PUSH_OPT, PUSH_HEAD, ABORT: one string, for message `type`. */
int gp_msg_str_decode(int type, char *dst, size_t cap, const void *msg, size_t len);

struct gp_msg_request {
    unsigned kind; /* enum gp_req_kind, unchecked here */
    char git_protocol[256];
    unsigned encoding; /* enum gp_req_encoding, unchecked here */
    uint64_t length;
    unsigned direct; /* the answer goes to the client's socket */
};
int gp_msg_request_decode(struct gp_msg_request *out, const void *msg, size_t len);

struct gp_msg_refuse {
    unsigned index;
    char reason[512];
};
int gp_msg_refuse_decode(struct gp_msg_refuse *out, const void *msg, size_t len);

struct gp_msg_outcome {
    char decision[32];
    char reason[512];
};
int gp_msg_outcome_decode(struct gp_msg_outcome *out, const void *msg, size_t len);

/* Sends one message with up to 2 descriptors attached. 0 or AL_EIO. */
int gp_chan_send(int fd, const struct gp_wire *w, const int *fds, size_t nfds);
/* gp_chan_send() that does not wait: AL_EAGAIN when the peer's buffer is
 * full (nothing was sent). */
int gp_chan_trysend(int fd, const struct gp_wire *w);

/* Sends a message of just a type byte. */
int gp_chan_send_type(int fd, enum gp_chan_type type);

/* Receives one message into buf (cap >= GP_CHAN_MSG_MAX) with at most
 * `maxfds` descriptors (*nfds set; extra ones are closed). Returns its
 * length, 0 when the peer closed, AL_EIO, or AL_EINVAL for a truncated
 * message. Blocks unless the socket is non-blocking (then AL_EAGAIN). */
ssize_t gp_chan_recv(int fd, uint8_t *buf, size_t cap, int *fds, size_t maxfds, size_t *nfds);

/* A connected SOCK_SEQPACKET pair, close-on-exec, send buffers large enough
 * for the biggest message. */
int gp_chan_pair(int sv[2]);

#endif
