/* A front worker's request (worker.c, worker_push.c): one client connection,
 * one HTTP request, one channel to the key holder. */
#ifndef GP_WORKER_H
#define GP_WORKER_H

#include "gp_chan.h"
#include "gp_front.h"
#include "gp_http.h"

#include "airlock/buf.h"

struct wrq {
    const struct gp_front_cfg *cfg;
    struct gp_conn conn; /* the client */
    struct gp_http_req http;
    int ch;           /* to the key holder */
    int status;       /* what the client was answered, for the log */
    char reason[256]; /* why, when status >= 400 (the text it was told) */
    char host[256];
    char owner[128];
    char name[128];
    char git_protocol[256];
    int gzip;
    /* from AUTH_OK */
    char session[160];
    char user[256];
    char repo[520];
    /* the key holder's answer being relayed */
    int head_sent; /* the client got a status line */
    int done;      /* DONE or FAIL arrived */
    int ok;        /* DONE with ok */
    int inject;    /* add no-thin to a receive-pack advertisement */
    int quiet;     /* an aborted request: its answer is not for the client */
    int direct;    /* the key holder writes the answer to the client itself */
    int sub_fd;    /* a second channel the key holder sent (CHANNEL), or -1 */
    struct al_buf adv;
    uint8_t in[GP_CHAN_MSG_MAX];
    uint8_t out[GP_CHAN_MSG_MAX];
};

/* Answers the client with a plain-text message (and status). */
int wk_respond_text(struct wrq *rq, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads one message from the key holder: HEAD/DATA/DONE/FAIL are relayed to
 * the client (rq->done set by DONE and FAIL), CHANNEL's descriptor is kept
 * in rq->sub_fd; any other type is returned unread (its bytes are in rq->in, length in *len) for
 * the caller. Returns the message type, or a negative code when the key holder went away or broke
 * the protocol. */
int wk_recv(struct wrq *rq, size_t *len);

/* Sends `w` to the key holder, reading and relaying its answers while its
 * buffer is full, so neither side ever waits for the other. 0, or AL_EIO. */
int wk_send(struct wrq *rq, const struct gp_wire *w);

/* Reads and relays the key holder's answers until DONE or FAIL. */
int wk_relay_rest(struct wrq *rq);

/* Discards the rest of the client's request body (at most `max` bytes). */
void wk_body_drain(struct wrq *rq, uint64_t max);

/* Serves a POST git-receive-pack (worker_push.c). */
void wk_receive_pack(struct wrq *rq);

#endif
