/* A WebSocket client connection to airlockd (RFC 6455) for `airlock session
 * shell`: libcurl connects (http or https, like every other call, with
 * CURLOPT_CONNECT_ONLY) and we speak the handshake and the frames
 * ourselves (airlock/wsframe.h). Frames we send are masked; frames from
 * the server are parsed with a bounded buffer (CL_WS_MAX_FRAME). */
#ifndef AIRLOCK_CLIENT_WS_H
#define AIRLOCK_CLIENT_WS_H

#include <stddef.h>

#include "airlock/wsframe.h"
#include "client.h"

#define CL_WS_MAX_FRAME (1024 * 1024) /* payload of one server frame */

struct cl_ws {
    void *curl;        /* CURL *, its own handle */
    int fd;            /* the connected socket, for poll() */
    unsigned char *in; /* received bytes not yet parsed (CL_WS_MAX_FRAME + header) */
    size_t in_len, in_off;
    struct al_ws_msgstate ms;
};

/* Connects to `path` (percent-encoded, "/v1/...") on c->base with c's key,
 * offering protocol airlock.v1, and checks the 101 answer. 0; AL_EAUTH /
 * AL_ENOTFOUND / AL_EINVAL... with a printable message in al_error_last()
 * when the server refused (its JSON error's message) or the handshake
 * failed. The caller frees `ws` with cl_ws_close() in every case. */
int cl_ws_connect(struct cl_ws *ws, struct cl_client *c, const char *path);

/* Sends one frame (masked with fresh random bytes). 0 or AL_EIO. */
int cl_ws_send(struct cl_ws *ws, enum al_ws_opcode op, const void *data, size_t len);

/* Reads what the socket has now. 0 (possibly nothing), AL_EIO when the
 * connection closed or failed. */
int cl_ws_fill(struct cl_ws *ws);

/* Takes the next whole frame out of what was read: 1 with *f and *payload
 * (unmasked, valid until the next call), 0 when none is whole yet,
 * AL_EINVAL / AL_ETOOBIG for a frame the server must not send. */
int cl_ws_next(struct cl_ws *ws, struct al_ws_frame *f, unsigned char **payload);

void cl_ws_close(struct cl_ws *ws);

#endif
