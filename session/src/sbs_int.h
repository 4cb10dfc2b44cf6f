/* Internal interfaces shared by the files of the long-lived sandboxes
 * (sbs_start.c, sbs_conn.c). */
#ifndef AIRLOCK_SBS_INT_H
#define AIRLOCK_SBS_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "airlock/sbsession.h"

/* Bytes of input buffered per connection (messages from init are small). */
#define SBS_RBUF_CAP 4096

/* The start time of `pid` (/proc/PID/stat field 22) in *out. AL_ENOTFOUND
 * when there is no such process. */
int sbs_proc_start_time(pid_t pid, uint64_t *out);

/* Sets up `c` around the connected socket `fd` (taken over): allocates the
 * input buffer and reads init's HELLO (waiting at most `timeout_ms`).
 * On failure `fd` is closed and `c` is zeroed with fd = -1. */
int sbs_conn_open(struct sbs_conn *c, int fd, const struct sbs_record *rec, int timeout_ms);

/* Connects to the control socket at `path` (a connected fd, CLOEXEC).
 * AL_ENOTFOUND when nothing listens there. */
int sbs_control_connect(int *out_fd, const char *path);

#endif
