/* The wire format between airlockd and airlock-init (docs/init-protocol.md):
 * encoders and bounded parsers for both directions. Shared by the daemon
 * side (sbs_conn.c) and airlock-init; no allocation, no global state.
 *
 * Every message: an 8-byte header (u32 body length, u32 type, both
 * little-endian) and a body of exactly that length. Integers little-endian. */
#ifndef AIRLOCK_SBS_PROTO_H
#define AIRLOCK_SBS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "airlock/sbsession.h"

/* Version 2 added SPAWN_WATCHED, version 3 SPAWN_TTY and RESIZE; a daemon
 * accepts an init of version 1 (a sandbox started before an upgrade) and
 * sends no request newer than the version its HELLO gave. */
#define SBS_PROTO_VERSION     3
#define SBS_PROTO_VERSION_MIN 1
#define SBS_HDR_LEN           8

/* Daemon -> init. */
enum sbs_req_type {
    SBS_REQ_SPAWN = 16,  /* req, timeout_s, argc, envc, cwd, argv, envp; 3 fds */
    SBS_REQ_SIGNAL = 17, /* proc, sig */
    /* SPAWN plus a 4th fd, the watch socket: init also sends this command's
     * SPAWNED / SPAWN_FAILED and EXITED on it (v2) */
    SBS_REQ_SPAWN_WATCHED = 18,
    /* rows, cols, then as SPAWN; 1 fd, the watch socket: the command runs on
     * a new terminal of the sandbox's devpts, whose master init sends back
     * with SPAWNED on the watch socket (v3) */
    SBS_REQ_SPAWN_TTY = 19,
    SBS_REQ_RESIZE = 20, /* proc, rows, cols (v3) */
};

/* A parsed request. Strings point into the parsed buffer. */
struct sbs_req {
    enum sbs_req_type type;
    uint32_t req;        /* SPAWN */
    uint32_t timeout_s;  /* SPAWN */
    const char *cwd;     /* SPAWN: "" = the default (the workspace) */
    uint32_t argc;       /* SPAWN: argv[0..argc-1], argv[argc] = NULL */
    uint32_t envc;       /* SPAWN: envp[0..envc-1], envp[envc] = NULL */
    uint32_t proc;       /* SIGNAL, RESIZE */
    int sig;             /* SIGNAL */
    uint32_t rows, cols; /* SPAWN_TTY, RESIZE: 1..SBS_TTY_MAX_DIM */
};

/* Parses one request from `buf` (`len` bytes). argv and envp must hold
 * SBS_MAX_ARGS + 1 pointers each; they are filled with pointers into `buf`.
 * Returns the bytes consumed, 0 when more input is needed, AL_EINVAL when
 * malformed (the connection must be dropped). */
long sbs_req_parse(const unsigned char *buf, size_t len, struct sbs_req *out, const char **argv,
                   const char **envp);

/* Encoders: write one whole message into `buf` (`cap` bytes) and return its
 * length, or AL_ETOOBIG when it does not fit (or exceeds SBS_MAX_MSG). */
long sbs_msg_encode(unsigned char *buf, size_t cap, const struct sbs_msg *msg);
long sbs_req_encode_spawn(unsigned char *buf, size_t cap, uint32_t req, uint32_t timeout_s,
                          const char *cwd, char *const *argv, char *const *envp, int watched);
long sbs_req_encode_signal(unsigned char *buf, size_t cap, uint32_t proc, int sig);
/* SPAWN_TTY: as SPAWN, on a terminal of rows x cols (1..SBS_TTY_MAX_DIM). */
long sbs_req_encode_spawn_tty(unsigned char *buf, size_t cap, uint32_t req, uint32_t timeout_s,
                              uint32_t rows, uint32_t cols, const char *cwd, char *const *argv,
                              char *const *envp);
long sbs_req_encode_resize(unsigned char *buf, size_t cap, uint32_t proc, uint32_t rows,
                           uint32_t cols);

/* Sends all `len` bytes of `buf` on the stream socket `fd`, the first
 * chunk with `n_fds` descriptors attached (SCM_RIGHTS, at most 4); never
 * raises SIGPIPE. Waits up to `timeout_ms` each time the socket is full.
 * 0, AL_ETIMEOUT, or AL_EIO (errno says why). */
int sbs_sock_send(int fd, const unsigned char *buf, size_t len, const int *fds, size_t n_fds,
                  int timeout_ms);

struct msghdr;

/* Takes the descriptors a recvmsg() returned in `mh`: up to `cap` into
 * `out` (in order), the rest closed. Returns how many were stored; sets
 * *dropped to how many were closed. */
size_t sbs_cmsg_take_fds(struct msghdr *mh, int *out, size_t cap, size_t *dropped);

#endif
