/* The control thread: one epoll over every session's control socket, the
 * messages of each sandbox's init applied to the process table
 * (control.c). */
#ifndef ALD_CORE_CONTROL_H
#define ALD_CORE_CONTROL_H

#include <stdint.h>

#include "airlock/sbsession.h"

struct ald;
struct ald_session;

int ald_ctl_start(struct ald *d);
void ald_ctl_stop(struct ald *d);
/* Watches a session's control socket (sets it non-blocking). */
int ald_ctl_add(struct ald *d, struct ald_session *s);
void ald_ctl_remove(struct ald *d, struct ald_session *s);
/* Sends SIGNAL to a process (no-op when the connection is closed). */
int ald_ctl_signal(struct ald *d, struct ald_session *s, uint32_t init_id, int sig);
/* Applies SPAWNED as the control thread does (idempotent): for a request
 * thread that heard it first on the command's watch socket. */
void ald_ctl_spawned(struct ald *d, struct ald_session *s, const struct sbs_msg *m);
/* What an EXITED message means: exit code (-1 none), signal (0 none) and
 * reason ("exited", "signaled", "timeout"). Returns 1 when the process was
 * SIGKILLed and only the session's cgroup can tell whether the OOM killer
 * did it (the control thread then says "memory"), else 0. */
int ald_exit_decode(const struct sbs_msg *m, int *code, int *sig, const char **reason);

#endif
