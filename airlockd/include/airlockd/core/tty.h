/* Commands on a terminal (exec with "tty"): airlock-init opens the terminal
 * in the sandbox's own devpts and hands its master to us with SPAWNED; the
 * process keeps our copy (p->tty_fd) until it is freed. One reader at a
 * time takes the terminal: the exec's own output stream (foreground) or a
 * WebSocket (background). The window size changes through init (RESIZE),
 * which holds the master too. Fields of struct ald_proc under d->lock.
 *
 * A background command may be over before its first reader attaches (a
 * quick `shell -- CMD`): its process then stays in memory, with what it
 * wrote waiting in the terminal, until that first reader is done or the
 * session ends (at most ALD_TTY_MAX_HELD per session; beyond, a command's
 * output is lost when it ends unread). */
#ifndef ALD_CORE_TTY_H
#define ALD_CORE_TTY_H

#include <stdint.h>

#include "airlock/sbsession.h"

#include "airlockd/core/exec.h"
#include "airlockd/core/fault.h"

#define ALD_TTY_MAX_HELD 16

struct ald;
struct ald_session;
struct ald_proc;

/* The descriptors of a terminal command: only the watch socket (required:
 * the master comes back on it). AL_EUNSUPP when the session's init is older
 * than protocol version 3 (a sandbox started before an upgrade). */
int ald_tty_stdio_setup(struct ald_session *s, struct ald_exec_stdio *io);

/* Waits on the watch socket for init's answer to SPAWN_TTY: a SPAWNED with
 * the master is applied at once and the master kept in p->tty_fd;
 * anything else is left to the control thread (as for other commands). */
void ald_tty_spawn_watch(struct ald *d, struct ald_session *s, struct ald_proc *p, int watch);

/* After the spawn: a process that runs without a master in our hands (init
 * did not send one, or sent something else) is killed: AL_EIO. 0 otherwise. */
int ald_tty_check_started(struct ald *d, struct ald_session *s, struct ald_proc *p);

/* Once an exec on a terminal runs: its stdin (POST …/stdin) writes to the
 * terminal; a foreground one reads the terminal as its output stream
 * (io->out_r, a new descriptor of the master, non-blocking) and so holds
 * the terminal. */
void ald_tty_exec_started(struct ald *d, struct ald_proc *p, struct ald_exec_stdio *io,
                          int foreground);

/* Takes the terminal of a process for one reader: *out_fd is a new
 * descriptor of its master (non-blocking, CLOEXEC; the caller closes it and
 * calls ald_tty_detach). A process that exited is taken only by its first
 * reader (what it wrote is still in the terminal). 0, or AL_E* with the
 * refusal in *f: not on a terminal, exited, or read by someone else
 * already (409). */
int ald_tty_attach(struct ald *d, struct ald_proc *p, int *out_fd, struct ald_fault *f);
/* Gives the terminal back (another reader may take it while the process
 * runs); the first reader's detach drops the hold (may free p when the
 * caller's reference goes too). */
void ald_tty_detach(struct ald *d, struct ald_proc *p);

/* The session ends: drops the holds of its terminals nobody read. */
void ald_tty_release_holds(struct ald *d, struct ald_session *s);

/* Sets the window size of the process's terminal (the kernel sends it
 * SIGWINCH). 0, or AL_E* with the refusal in *f (409: not on a terminal or
 * exited; 500: init unreachable). */
int ald_tty_resize(struct ald *d, struct ald_session *s, struct ald_proc *p, uint32_t rows,
                   uint32_t cols, struct ald_fault *f);

/* The reader went away while the process runs: SIGHUP to its process group,
 * as a terminal that hangs up. */
void ald_tty_hangup(struct ald *d, struct ald_session *s, struct ald_proc *p);

#endif
