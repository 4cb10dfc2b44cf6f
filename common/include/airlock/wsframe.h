/* WebSocket frames (RFC 6455, section 5): a bounded (pointer, length)
 * parser of frame headers, the unmasking, the order of a message's
 * fragments, the encoder, and close frames. No I/O and no allocation:
 * airlockd's terminal endpoint and the `airlock session shell` client both
 * use it, and fuzz_wsframe fuzzes it.
 *
 * A frame is parsed only once it is whole in the buffer (header and
 * payload), so a reader keeps at most max_payload + AL_WS_MAX_HEADER
 * bytes; a payload length over the limit is refused from the header
 * alone, before its bytes arrive. */
#ifndef AIRLOCK_WSFRAME_H
#define AIRLOCK_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

#define AL_WS_MAX_HEADER  14  /* 2 + 8 (64-bit length) + 4 (mask) */
#define AL_WS_MAX_CONTROL 125 /* payload of a control frame */

enum al_ws_opcode {
    AL_WS_CONT = 0x0,
    AL_WS_TEXT = 0x1,
    AL_WS_BINARY = 0x2,
    AL_WS_CLOSE = 0x8,
    AL_WS_PING = 0x9,
    AL_WS_PONG = 0xa,
};

/* Close codes (RFC 6455, 7.4.1). */
enum al_ws_close_code {
    AL_WS_CLOSE_NORMAL = 1000,
    AL_WS_CLOSE_GOING_AWAY = 1001,
    AL_WS_CLOSE_PROTOCOL = 1002,
    AL_WS_CLOSE_INVALID_DATA = 1007,
    AL_WS_CLOSE_POLICY = 1008,
    AL_WS_CLOSE_TOO_BIG = 1009,
    AL_WS_CLOSE_INTERNAL = 1011,
};

struct al_ws_frame {
    int fin;
    enum al_ws_opcode opcode;
    int masked;
    unsigned char mask[4];
    size_t header_len; /* the payload starts at buf + header_len */
    size_t payload_len;
};

/* Parses the frame at the start of `buf` (`len` bytes). `masked`: 1 when
 * the frames come from a client (they must be masked), 0 from a server
 * (they must not be). Returns the whole frame's length when all of it is
 * in `buf` (*out filled; the payload is still masked: al_ws_unmask), 0
 * when more bytes are needed, AL_ETOOBIG when the payload is over
 * `max_payload` (close with 1009), AL_EINVAL for any other breach of the
 * RFC (close with 1002): reserved bits set, an unknown opcode, a control
 * frame fragmented or over 125 bytes, the wrong masking, a length not in
 * its shortest form or with the top bit set. Both errors are decided as
 * soon as the header is in. */
long al_ws_frame_parse(struct al_ws_frame *out, const unsigned char *buf, size_t len, int masked,
                       size_t max_payload);

/* XORs `len` bytes of payload with the frame's mask; `offset` is the
 * position of data[0] in the payload (to unmask in pieces). */
void al_ws_unmask(unsigned char *data, size_t len, const unsigned char mask[4], size_t offset);

/* The order of a message's frames: a data frame (TEXT/BINARY) starts a
 * message; CONT frames continue the one under way; control frames may come
 * between fragments. The state is 0 between messages. */
struct al_ws_msgstate {
    enum al_ws_opcode opcode; /* of the message under way; 0: none */
};

/* Steps the state for data frame `f` (not a control frame): returns the
 * opcode of the message its payload belongs to (AL_WS_TEXT or
 * AL_WS_BINARY), AL_EINVAL for a CONT with no message under way or a new
 * message before the last one ended (close with 1002). */
int al_ws_msg_step(struct al_ws_msgstate *st, const struct al_ws_frame *f);

/* Writes a frame header for a payload of `payload_len` bytes into `buf`
 * (`cap` bytes; AL_WS_MAX_HEADER always suffices): masked with `mask`
 * when it is not NULL (the caller masks the payload with al_ws_unmask).
 * Returns the header's length, AL_ETOOBIG when `cap` is too small,
 * AL_EINVAL for a control frame that is fragmented or over 125 bytes, or
 * an opcode outside the enum. */
long al_ws_header_encode(unsigned char *buf, size_t cap, int fin, enum al_ws_opcode opcode,
                         uint64_t payload_len, const unsigned char *mask);

/* The payload of a close frame: `code` (1000-4999) then `reason` cut to
 * fit 125 bytes in all (never inside a UTF-8 sequence). Returns its
 * length; `out` holds AL_WS_MAX_CONTROL bytes. */
size_t al_ws_close_payload(unsigned char *out, uint16_t code, const char *reason);

/* Reads a close frame's payload: *code (1005, "no status", when empty).
 * 0, or AL_EINVAL for a 1-byte payload or a code a peer may not send
 * (outside 1000-1003, 1007-1011 and 3000-4999). */
int al_ws_close_parse(const unsigned char *payload, size_t len, uint16_t *code);

#endif
