/* Running a command in a session's sandbox: a process in the table, its
 * stdin/stdout/stderr, SPAWN sent to the session's init and its answer
 * awaited. The api streams a foreground command's output (routes_exec.c);
 * background output goes to files in the state dir. */
#ifndef ALD_CORE_EXEC_H
#define ALD_CORE_EXEC_H

#include <stdint.h>

#include <jansson.h>

#include "airlockd/core/requests.h"

#include "airlock/sbsession.h"

struct ald;
struct ald_session;
struct ald_proc;

/* The descriptors of one command: child[] for init, the rest ours. */
struct ald_exec_stdio {
    int child[4];     /* 0-2 and the watch socket: sent to init, closed by us after */
    int out_r, err_r; /* foreground: our read ends */
    int in_w;         /* background without stdin data: our write end */
    int watch;        /* foreground: our end of the watch socket, or -1 */
};

#define ALD_EXEC_STDIO_INIT                                                                        \
    {                                                                                              \
        {-1, -1, -1, -1}, -1, -1, -1, -1                                                           \
    }

/* A new process of `s` in state spawning: references: running + caller's;
 * the process holds one on the session. NULL when out of memory. */
struct ald_proc *ald_exec_proc_new(struct ald *d, struct ald_session *s,
                                   const struct ald_exec_req *req);
/* Opens the command's stdio (foreground: pipes and, when init can, a watch
 * socket; background: the output files). 0 or AL_E*; `io` is the caller's
 * to close either way (ald_exec_stdio_close and the kept ends). */
int ald_exec_stdio_setup(struct ald *d, struct ald_session *s, struct ald_proc *p,
                         const struct ald_exec_req *req, struct ald_exec_stdio *io);
/* Closes the child's ends (init has its copies once SPAWN is sent). */
void ald_exec_stdio_close(struct ald_exec_stdio *io);
/* Sends SPAWN and waits for init's answer. 0 once the process runs or has
 * failed to start (p->state tells); AL_E* when it could not be sent. */
int ald_exec_spawn(struct ald *d, struct ald_session *s, struct ald_proc *p,
                   const struct ald_exec_req *req, struct ald_exec_stdio *io);
/* Takes one message from a command's watch socket: 1 with an EXITED in *m
 * that says all there is to say (every exit but a SIGKILL, which may be the
 * OOM killer's: only the control thread can tell); 0 when there is nothing
 * new (nothing waiting, or a SPAWNED, applied already); -1 when the watch
 * is of no more use (closed, malformed, or that SIGKILL). */
int ald_exec_watch_exit(int watch, struct sbs_msg *m);

/* Waits briefly (QUICK_EXIT_MS) for a foreground command that prints
 * nothing to exit, on its watch socket, so that a quick command's whole
 * answer goes out at once. 1 with its EXITED in *m; 0 otherwise (the
 * watch may then be closed: io->watch -1). */
int ald_exec_wait_quick_exit(struct ald *d, struct ald_exec_stdio *io, struct sbs_msg *m);
/* Applies an exit heard on a command's watch socket (an EXITED in *m),
 * as the control thread would: 1 when this call made the process exited
 * (the caller then owns its running reference: ald_exec_exit_done), 0
 * when it had exited already. */
int ald_exec_claim_exit(struct ald *d, struct ald_proc *p, const struct sbs_msg *m);
/* After a claimed exit: saves the process row when `save` (else it was
 * saved with the request's audit row), publishes the exit, drops the
 * running reference. */
void ald_exec_exit_done(struct ald *d, struct ald_proc *p, int save);
/* Returns once an exit applied by another thread (the control thread, or a
 * session's end) is saved and published, or the daemon stops. The exit is
 * marked under d->lock first and saved after, outside it: an exit line sent
 * in between let a client asking next find the process running, or not at
 * all, in the store, and a limit not counted yet. Not for an exit the
 * caller claimed and has yet to publish (ald_exec_exit_done). */
void ald_exec_wait_published(struct ald *d, struct ald_proc *p);

/* Runs argv as a background process of the session (output kept like any
 * other, env: object of extra variables) and waits for its exit: *code,
 * and *num the process's number (0 when it never started). */
int ald_exec_wait(struct ald *d, struct ald_session *s, char **argv, json_t *env,
                  uint32_t timeout_s, int *code, uint64_t *num);

#endif
